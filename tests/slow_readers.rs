//! Slow and stalled readers: a client that opens 100 server-streaming calls of 1 MiB messages
//! and never reads, and a server that never reads an upload. What must hold: memory bounded by
//! the flow-control windows and one message per call (the bound is stated and measured below),
//! the handler's `send` (or the client's upload) waits, other connections are served at normal
//! latency meanwhile, and `Builder::send_stall_timeout` ends the stalled calls with
//! RESOURCE_EXHAUSTED on both sides. The client's counterpart, `ChannelBuilder::send_stall_timeout`,
//! ends client-streaming and bidi uploads that our server or a grpc-go server
//! (`tests/go/src/bare-grpc-kit/never-read-server`) never reads, with the same code, and the
//! channel serves on.

mod client_support;
mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bare_grpc::codegen::{
    BidiMethod, CallKind, ClientStreamingMethod, Route, ServerStreamingMethod, Service, serve_bidi,
    serve_client_streaming, serve_server_streaming,
};
use bare_grpc::{Channel, Code, Request, Response, ResponseSink, Server, Status, Streaming};
use client_support::{IterStream, UNARY, bounded, start_echo};
use tokio::sync::mpsc;

/// Server streaming: 1 MiB messages for ever, until `send` fails.
const FLOOD: &str = "/test.Slow/Flood";
/// Client streaming: never reads the upload; answers when the call is cancelled (never).
const IGNORE: &str = "/test.Slow/Ignore";
/// Bidi: never reads the request stream, never answers.
const IGNORE_BIDI: &str = "/test.Slow/IgnoreBidi";
const MESSAGE: usize = 1 << 20;
const CALLS: usize = 100;

/// The test service: counts completed sends and reports how each `Flood` ended.
struct Slow {
    sent: Arc<AtomicUsize>,
    ended: mpsc::UnboundedSender<Status>,
}

impl Service for Slow {
    const NAME: &'static str = "test.Slow";
    const ROUTES: &'static [Route<Self>] = &[
        Route {
            path: FLOOD,
            method: "Flood",
            kind: CallKind::ServerStreaming,
            handler: serve_server_streaming::<Self, 0>,
        },
        Route {
            path: IGNORE,
            method: "Ignore",
            kind: CallKind::ClientStreaming,
            handler: serve_client_streaming::<Self, 1>,
        },
        Route {
            path: IGNORE_BIDI,
            method: "IgnoreBidi",
            kind: CallKind::Bidi,
            handler: serve_bidi::<Self, 2>,
        },
    ];
}

impl ServerStreamingMethod<0> for Slow {
    type In = String;
    type Out = String;

    async fn call(
        &self,
        _request: Request<String>,
        mut sink: ResponseSink<String>,
    ) -> Result<(), Status> {
        let message = "m".repeat(MESSAGE);
        loop {
            if let Err(status) = sink.send(&message).await {
                let _ = self.ended.send(status.clone());
                return Err(status);
            }
            self.sent.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl ClientStreamingMethod<1> for Slow {
    type In = String;
    type Out = String;

    async fn call(&self, _request: Request<Streaming<String>>) -> Result<Response<String>, Status> {
        std::future::pending().await
    }
}

impl BidiMethod<2> for Slow {
    type In = String;
    type Out = String;

    async fn call(
        &self,
        _request: Request<Streaming<String>>,
        _sink: ResponseSink<String>,
    ) -> Result<(), Status> {
        std::future::pending().await
    }
}

/// A server of `Slow` on a free loopback port.
struct SlowServer {
    addr: SocketAddr,
    sent: Arc<AtomicUsize>,
    ended: mpsc::UnboundedReceiver<Status>,
    _task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start_slow(stall: Option<Duration>) -> SlowServer {
    let sent = Arc::new(AtomicUsize::new(0));
    let (ended_tx, ended) = mpsc::unbounded_channel();
    let mut builder = Server::builder().add_service(Slow {
        sent: sent.clone(),
        ended: ended_tx,
    });
    if let Some(stall) = stall {
        builder = builder.send_stall_timeout(stall);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(builder.build().serve(listener));
    SlowServer {
        addr,
        sent,
        ended,
        _task: task,
    }
}

/// Resident memory of this process (server and clients), in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0)
        * 4096
}

/// The latency of a unary call on a fresh connection to an echo server on the same runtime:
/// "other connections keep being served".
async fn other_call_latency() -> Duration {
    let echo = start_echo().await;
    let channel = bounded(Channel::connect(&echo.addr.to_string()))
        .await
        .unwrap();
    let start = Instant::now();
    let answer = bounded(channel.unary::<String, String>(UNARY, Request::new("x".into())))
        .await
        .unwrap();
    assert_eq!(answer.into_inner(), "x");
    start.elapsed()
}

/// 100 server-streaming calls of 1 MiB messages on one raw h2 connection that never reads
/// (h2's default windows: 64 KiB per stream and for the connection). The bound: the client's
/// connection window (64 KiB) is all that can leave, so every handler waits in its first
/// `send` holding that message and its encoded copy: about 2 MiB per call, 200 MiB for the
/// 100, whatever the handlers would like to send. A server that buffered past the window would
/// pass that in well under a second (the handlers produce 1 MiB per `send`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_readers_cost_one_message_per_call() {
    let server = start_slow(None).await;
    let before = rss();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut responses = Vec::new();
    for _ in 0..CALLS {
        let mut client = bounded(client.clone().ready()).await.unwrap();
        let request = http::Request::builder()
            .method("POST")
            .uri(format!("http://localhost{FLOOD}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())
            .unwrap();
        let (response, mut body) = client.send_request(request, false).unwrap();
        // An empty StringValue message: the 5-octet prefix alone.
        body.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)
            .unwrap();
        responses.push(response);
    }
    // Give the handlers time to push as much as they can.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = server.sent.load(Ordering::SeqCst);
    let grown = rss().saturating_sub(before);
    let latency = other_call_latency().await;
    eprintln!(
        "stalled readers: {CALLS} calls, {sent} sends completed, RSS +{} MiB \
         ({} KiB per call), another connection's call took {latency:?}",
        grown >> 20,
        (grown / CALLS) >> 10
    );
    assert!(sent <= 1, "sends went past the window: {sent}");
    let bound = CALLS * (2 * MESSAGE + 128 * 1024) + (32 << 20);
    assert!(grown < bound, "RSS grew by {grown}, bound {bound}");
    assert!(latency < Duration::from_millis(500), "{latency:?}");
    drop(responses);
    connection.abort();
}

/// The same 100 calls, from our own client this time, with a send stall timeout of 300 ms:
/// every handler's `send` fails RESOURCE_EXHAUSTED, and the client, reading at last, gets what
/// its window let through and then RESOURCE_EXHAUSTED (RST_STREAM ENHANCE_YOUR_CALM).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_stall_timeout_ends_stalled_calls() {
    let mut server = start_slow(Some(Duration::from_millis(300))).await;
    let channel = bounded(Channel::connect(&server.addr.to_string()))
        .await
        .unwrap();
    let mut streams = Vec::new();
    for _ in 0..CALLS {
        let stream =
            bounded(channel.server_streaming::<String, String>(FLOOD, Request::new(String::new())))
                .await
                .unwrap();
        streams.push(stream);
    }
    let start = Instant::now();
    for _ in 0..CALLS {
        let status = bounded(server.ended.recv()).await.unwrap();
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert!(status.message().contains("stall"), "{status:?}");
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(5), "{took:?}");
    for mut stream in streams {
        let status = loop {
            match bounded(stream.message()).await {
                Ok(Some(message)) => assert_eq!(message.len(), MESSAGE),
                Ok(None) => panic!("a stalled call ended OK"),
                Err(status) => break status,
            }
        };
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    }
    // The connection is still good.
    let more =
        bounded(channel.server_streaming::<String, String>(FLOOD, Request::new(String::new())))
            .await;
    assert!(more.is_ok());
}

/// The client side: a server that never reads a client stream of 1 MiB messages. The upload
/// waits for window (the stream of messages is pulled only as the window allows: the
/// server's 1 MiB stream window, so about two messages, not 200), other calls are served,
/// and the call ends DEADLINE_EXCEEDED at its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_reads_holds_the_upload_to_the_window() {
    let server = start_slow(None).await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let messages = (0..200).map(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        "u".repeat(MESSAGE)
    });
    let mut request = Request::new(IterStream(messages));
    let deadline = Duration::from_millis(1500);
    request.set_timeout(deadline);
    let start = Instant::now();
    let call = tokio::spawn({
        let channel = channel.clone();
        async move {
            channel
                .client_streaming::<String, String, _>(IGNORE, request)
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    let latency = other_call_latency().await;
    let outcome = bounded(call).await.unwrap();
    let took = start.elapsed();
    let pulled = pulled.load(Ordering::SeqCst);
    eprintln!("never-read upload: {pulled} of 200 messages pulled, ended after {took:?}");
    assert_eq!(outcome.unwrap_err().code(), Code::DeadlineExceeded);
    assert!(took < deadline + Duration::from_millis(500), "{took:?}");
    assert!(
        pulled <= 4,
        "the upload ran ahead of the window: {pulled} messages"
    );
    assert!(latency < Duration::from_millis(500), "{latency:?}");
}

// ---- the client's send stall timeout ------------------------------------------------------

/// The stall timeout of the client tests: long enough that a loaded machine's scheduling
/// delays are not a stall, short enough for a quick test.
const CLIENT_STALL: Duration = Duration::from_millis(400);

/// A channel to `addr` with the client's send stall timeout set.
fn stalling_channel(addr: SocketAddr) -> Channel {
    Channel::builder(&addr.to_string())
        .unwrap()
        .send_stall_timeout(CLIENT_STALL)
        .lazy()
}

/// A client stream of up to 200 messages of 1 MiB to `path` of a server that never reads it:
/// the call ends RESOURCE_EXHAUSTED ("send stall timeout") once the window stays closed for
/// [`CLIENT_STALL`], long before the call's 30 s deadline. Returns how many messages were
/// pulled from the caller's stream.
async fn stalled_client_stream(channel: &Channel, path: &'static str) -> usize {
    let pulled = Arc::new(AtomicUsize::new(0));
    let counter = pulled.clone();
    let messages = (0..200).map(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        "u".repeat(MESSAGE)
    });
    let mut request = Request::new(IterStream(messages));
    request.set_timeout(Duration::from_secs(30));
    let start = Instant::now();
    let outcome = bounded(channel.client_streaming::<String, String, _>(path, request)).await;
    let took = start.elapsed();
    let status = outcome.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("send stall timeout"),
        "{status:?}"
    );
    assert!(took >= CLIENT_STALL, "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    let pulled = pulled.load(Ordering::SeqCst);
    assert!(pulled < 200, "the whole upload went out: {pulled}");
    eprintln!("{path}: client stream stalled after {pulled} of 200 messages, ended after {took:?}");
    pulled
}

/// A bidi call to `path` of a server that never reads: 1 MiB messages are sent until `send`
/// fails, which must be RESOURCE_EXHAUSTED from the stall timeout; the response side then
/// ends RESOURCE_EXHAUSTED too.
async fn stalled_bidi(channel: &Channel, path: &'static str) {
    let mut request = Request::new(());
    request.set_timeout(Duration::from_secs(30));
    let (mut sink, mut responses) = bounded(channel.bidi::<String, String>(path, request))
        .await
        .unwrap();
    let message = "b".repeat(MESSAGE);
    let start = Instant::now();
    let mut sent = 0;
    let failed = loop {
        match bounded(sink.send(message.clone())).await {
            Ok(()) => sent += 1,
            Err(status) => break status,
        }
        assert!(sent < 200, "200 MiB went to a server that reads nothing");
    };
    let took = start.elapsed();
    assert_eq!(failed.code(), Code::ResourceExhausted, "{failed:?}");
    assert!(
        failed.message().contains("send stall timeout"),
        "{failed:?}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");
    let status = bounded(responses.message()).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("send stall timeout"),
        "{status:?}"
    );
    eprintln!("{path}: bidi stalled after {sent} messages sent, ended after {took:?}");
}

/// Our server, whose client-streaming and bidi handlers never read: both uploads end
/// RESOURCE_EXHAUSTED after the client's stall timeout, and the channel then serves a
/// server-streaming call on the same connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_send_stall_timeout_ends_uploads_our_server_never_reads() {
    let server = start_slow(None).await;
    let channel = stalling_channel(server.addr);
    stalled_client_stream(&channel, IGNORE).await;
    stalled_bidi(&channel, IGNORE_BIDI).await;
    let mut stream =
        bounded(channel.server_streaming::<String, String>(FLOOD, Request::new(String::new())))
            .await
            .unwrap();
    let first = bounded(stream.message()).await.unwrap().unwrap();
    assert_eq!(first.len(), MESSAGE);
}

/// Without the stall timeout the same upload is only bounded by its deadline
/// (`a_server_that_never_reads_holds_the_upload_to_the_window` above): the timeout is what
/// ends it early, so this is the same call with a short deadline and no stall timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_client_stall_timeout_a_never_read_bidi_waits_for_its_deadline() {
    let server = start_slow(None).await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let mut request = Request::new(());
    request.set_timeout(Duration::from_millis(1500));
    let (mut sink, _responses) = bounded(channel.bidi::<String, String>(IGNORE_BIDI, request))
        .await
        .unwrap();
    let message = "b".repeat(MESSAGE);
    let start = Instant::now();
    let failed = loop {
        if let Err(status) = bounded(sink.send(message.clone())).await {
            break status;
        }
    };
    assert_eq!(failed.code(), Code::DeadlineExceeded, "{failed:?}");
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "{:?}",
        start.elapsed()
    );
}

/// grpc-go's never-reading server (`bare-grpc-never-read-server`), built once per test binary
/// by `tests/go/kit-build.sh`.
fn never_read_server() -> SocketAddr {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    let binary = BINARY.get_or_init(|| {
        let script = common::repo_root().join("tests/go/kit-build.sh");
        let out = common::run_peer(Command::new(&script), Duration::from_secs(300));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed; run tests/peers/setup.sh if Go is missing\n{stdout}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .find(|line| line.ends_with("/bare-grpc-never-read-server"))
            .map(PathBuf::from)
            .expect("kit-build.sh printed the never-read server's path")
    });
    let mut cmd = Command::new(binary);
    cmd.args(["--port", "0", "--stop_on_stdin_eof"]);
    common::interop::start_peer_server(cmd, "the grpc-go never-read server")
}

/// A grpc-go server whose handler never calls `RecvMsg`: grpc-go then never returns the
/// stream's window (it may grow it once by its BDP estimate), the client stream and the bidi
/// upload stall, both end RESOURCE_EXHAUSTED after the client's stall timeout, and the
/// channel then completes a call on the same server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_send_stall_timeout_ends_uploads_grpc_go_never_reads() {
    let addr = tokio::task::spawn_blocking(never_read_server)
        .await
        .unwrap();
    let channel = stalling_channel(addr);
    stalled_client_stream(&channel, IGNORE).await;
    stalled_bidi(&channel, IGNORE_BIDI).await;
    let mut done = bounded(
        channel.server_streaming::<String, String>("/test.Slow/Done", Request::new(String::new())),
    )
    .await
    .unwrap();
    assert_eq!(bounded(done.message()).await.unwrap(), None);
}

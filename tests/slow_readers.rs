//! Slow and stalled readers: a client that opens 100 server-streaming calls of 1 MiB messages
//! and never reads, and a server that never reads an upload. What must hold: memory bounded by
//! the flow-control windows and one message per call (the bound is stated and measured below),
//! the handler's `send` (or the client's upload) waits, other connections are served at normal
//! latency meanwhile, and `Builder::send_stall_timeout` ends the stalled calls with
//! RESOURCE_EXHAUSTED on both sides.

mod client_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bare_grpc::codegen::{
    CallKind, ClientStreamingMethod, Route, ServerStreamingMethod, Service, serve_client_streaming,
    serve_server_streaming,
};
use bare_grpc::{Channel, Code, Request, Response, ResponseSink, Server, Status, Streaming};
use client_support::{IterStream, UNARY, bounded, start_echo};
use tokio::sync::mpsc;

/// Server streaming: 1 MiB messages for ever, until `send` fails.
const FLOOD: &str = "/test.Slow/Flood";
/// Client streaming: never reads the upload; answers when the call is cancelled (never).
const IGNORE: &str = "/test.Slow/Ignore";
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

/// A server of `Slow` and the echo service's unary method on one port.
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

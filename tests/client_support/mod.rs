//! Support for the client tests: a small echo service written against the dispatch-table API
//! the way generated code is (so these tests need no codegen), served by our own `Server` on
//! `127.0.0.1:0` with a connection counter. Messages are `String`s: prost implements
//! `Message` for it as the `google.protobuf.StringValue` wrapper, so no `.proto` is needed.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bare_grpc::codegen::{
    BidiMethod, CallKind, ClientStreamingMethod, Route, ServerStreamingMethod, Service,
    UnaryMethod, serve_bidi, serve_client_streaming, serve_server_streaming, serve_unary,
};
use bare_grpc::{Request, Response, ResponseSink, Server, Status, Streaming};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Unary echo; copies request metadata `x-echo` into the response headers and `x-trail` into
/// the trailers.
pub const UNARY: &str = "/test.Echo/Unary";
/// Server streaming: the request is "N:text"; answers N messages "text-0" .. "text-{N-1}".
pub const SERVER_STREAM: &str = "/test.Echo/ServerStream";
/// Client streaming: answers the concatenation of every request message.
pub const CLIENT_STREAM: &str = "/test.Echo/ClientStream";
/// Bidi: echoes each message as it arrives.
pub const BIDI: &str = "/test.Echo/Bidi";
/// Unary that never answers; reports on the `dropped` channel when its handler is dropped
/// (which is how the server tells a handler that the client cancelled).
pub const HANG: &str = "/test.Echo/Hang";
/// Unary that fails with the code given as the request message (a decimal number).
pub const FAIL: &str = "/test.Echo/Fail";

/// The echo service.
pub struct Echo {
    /// Told when a `Hang` handler starts.
    started: mpsc::UnboundedSender<()>,
    /// Told when a `Hang` handler is dropped.
    dropped: mpsc::UnboundedSender<()>,
}

/// Sends on drop.
struct DropSignal(mpsc::UnboundedSender<()>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl Service for Echo {
    const NAME: &'static str = "test.Echo";
    const ROUTES: &'static [Route<Self>] = &[
        Route {
            path: BIDI,
            method: "Bidi",
            kind: CallKind::Bidi,
            handler: serve_bidi::<Self, 5>,
        },
        Route {
            path: CLIENT_STREAM,
            method: "ClientStream",
            kind: CallKind::ClientStreaming,
            handler: serve_client_streaming::<Self, 4>,
        },
        Route {
            path: FAIL,
            method: "Fail",
            kind: CallKind::Unary,
            handler: serve_unary::<Self, 1>,
        },
        Route {
            path: HANG,
            method: "Hang",
            kind: CallKind::Unary,
            handler: serve_unary::<Self, 2>,
        },
        Route {
            path: SERVER_STREAM,
            method: "ServerStream",
            kind: CallKind::ServerStreaming,
            handler: serve_server_streaming::<Self, 3>,
        },
        Route {
            path: UNARY,
            method: "Unary",
            kind: CallKind::Unary,
            handler: serve_unary::<Self, 0>,
        },
    ];
}

/// `Unary`: the echo.
impl UnaryMethod<0> for Echo {
    type In = String;
    type Out = String;

    async fn call(&self, request: Request<String>) -> Result<Response<String>, Status> {
        let echo = request.metadata().get("x-echo").map(str::to_owned);
        let trail = request.metadata().get("x-trail").map(str::to_owned);
        let mut response = Response::new(request.into_inner());
        if let Some(value) = echo {
            response.metadata_mut().insert("x-echo", &value)?;
        }
        if let Some(value) = trail {
            response.trailers_mut().insert("x-trail", &value)?;
        }
        Ok(response)
    }
}

/// `Fail`: the code asked for.
impl UnaryMethod<1> for Echo {
    type In = String;
    type Out = String;

    async fn call(&self, request: Request<String>) -> Result<Response<String>, Status> {
        let code: i32 = request.get_ref().parse().unwrap_or(2);
        Err(Status::new(
            bare_grpc::Code::from_i32(code),
            "failing as asked",
        ))
    }
}

/// `Hang`: never answers; says when it starts and when it is dropped.
impl UnaryMethod<2> for Echo {
    type In = String;
    type Out = String;

    async fn call(&self, _request: Request<String>) -> Result<Response<String>, Status> {
        let _signal = DropSignal(self.dropped.clone());
        let _ = self.started.send(());
        std::future::pending::<()>().await;
        Ok(Response::new(String::new()))
    }
}

/// `ServerStream`: "N:text" in, N messages out.
impl ServerStreamingMethod<3> for Echo {
    type In = String;
    type Out = String;

    async fn call(
        &self,
        request: Request<String>,
        mut sink: ResponseSink<String>,
    ) -> Result<(), Status> {
        let text = request.into_inner();
        let (count, word) = text.split_once(':').unwrap_or(("1", text.as_str()));
        let count: usize = count
            .parse()
            .map_err(|_| Status::invalid_argument("count"))?;
        for i in 0..count {
            sink.send(format!("{word}-{i}")).await?;
        }
        Ok(())
    }
}

/// `ClientStream`: everything it read, concatenated.
impl ClientStreamingMethod<4> for Echo {
    type In = String;
    type Out = String;

    async fn call(&self, request: Request<Streaming<String>>) -> Result<Response<String>, Status> {
        let mut stream = request.into_inner();
        let mut all = String::new();
        while let Some(part) = stream.message().await? {
            all.push_str(&part);
        }
        Ok(Response::new(all))
    }
}

/// `Bidi`: each message back as it arrives.
impl BidiMethod<5> for Echo {
    type In = String;
    type Out = String;

    async fn call(
        &self,
        request: Request<Streaming<String>>,
        mut sink: ResponseSink<String>,
    ) -> Result<(), Status> {
        let mut stream = request.into_inner();
        while let Some(message) = stream.message().await? {
            sink.send(message).await?;
        }
        Ok(())
    }
}

/// A running echo server.
pub struct EchoServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How many TCP connections it has accepted.
    pub connections: Arc<AtomicUsize>,
    /// One message per started `Hang` handler.
    pub started: mpsc::UnboundedReceiver<()>,
    /// One message per dropped `Hang` handler.
    pub dropped: mpsc::UnboundedReceiver<()>,
    /// The accept loop; aborted on drop.
    task: JoinHandle<()>,
}

impl EchoServer {
    /// Connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Stops the server: the listener and every connection are closed when this returns.
    pub async fn shutdown(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the echo server on a fresh loopback port.
pub async fn start_echo() -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    start_echo_on(listener)
}

/// Starts the echo server on `listener`.
pub fn start_echo_on(listener: TcpListener) -> EchoServer {
    start_echo_configured(listener, |builder| builder)
}

/// Starts the echo server on a fresh loopback port, with `configure` applied to its builder.
pub async fn start_echo_with(
    configure: impl FnOnce(bare_grpc::server::Builder) -> bare_grpc::server::Builder,
) -> EchoServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    start_echo_configured(listener, configure)
}

/// Starts the echo server on `listener`, with `configure` applied to its builder.
pub fn start_echo_configured(
    listener: TcpListener,
    configure: impl FnOnce(bare_grpc::server::Builder) -> bare_grpc::server::Builder,
) -> EchoServer {
    let addr = listener.local_addr().expect("local addr");
    let (started_tx, started) = mpsc::unbounded_channel();
    let (dropped_tx, dropped) = mpsc::unbounded_channel();
    let echo = Echo {
        started: started_tx,
        dropped: dropped_tx,
    };
    let server = Arc::new(configure(Server::builder().add_service(echo)).build());
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let task = tokio::spawn(async move {
        let mut connection_tasks = tokio::task::JoinSet::new();
        while let Ok((tcp, peer)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let server = server.clone();
            connection_tasks.spawn(async move { server.serve_connection(tcp, Some(peer)).await });
        }
    });
    EchoServer {
        addr,
        connections,
        started,
        dropped,
        task,
    }
}

/// A `Stream` over an iterator (the tests need no futures-util).
pub struct IterStream<I>(pub I);

impl<I: Iterator + Unpin> futures_core::Stream for IterStream<I> {
    type Item = I::Item;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<I::Item>> {
        std::task::Poll::Ready(self.get_mut().0.next())
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("local addr")
}

/// A bound on how long any single test step may take.
pub const STEP: Duration = Duration::from_secs(10);

/// Runs `fut` with the step bound: every step of a client test is bounded in time.
pub async fn bounded<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(STEP, fut)
        .await
        .expect("step took longer than its bound")
}

/// Drops a bidi call's sink before finishing it: the server sees the call cancelled and the
/// caller reads CANCELLED. Run on both runtime flavours (`client_calls`, `client_relay`).
pub async fn dropping_the_bidi_sink_unfinished_cancels_the_call() {
    use bare_grpc::{Channel, Code};
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let (mut sink, mut responses) = bounded(channel.bidi::<String, String>(BIDI, Request::new(())))
        .await
        .unwrap();
    bounded(sink.send("one".into())).await.unwrap();
    assert_eq!(
        bounded(responses.message()).await.unwrap().as_deref(),
        Some("one")
    );
    drop(sink);
    let status = bounded(responses.message()).await.unwrap_err();
    assert_eq!(status.code(), Code::Cancelled);
}

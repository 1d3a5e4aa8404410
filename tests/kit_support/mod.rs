//! Support for the interceptor, auth, retry and metrics tests: a small service `test.Kit`
//! written against the dispatch-table API the way generated code is (so no codegen is needed),
//! with `String` messages (prost's `google.protobuf.StringValue`), served by our own `Server`
//! on `127.0.0.1:0`. The server builder comes from the test, so each test installs the
//! interceptors it is about.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bare_grpc::codegen::{
    BidiMethod, CallKind, ClientStreamingMethod, Route, ServerStreamingMethod, Service,
    UnaryMethod, serve_bidi, serve_client_streaming, serve_server_streaming, serve_unary,
};
use bare_grpc::server::Builder;
use bare_grpc::{Code, Request, Response, ResponseSink, Status, Streaming};
use tokio::net::TcpListener;
use tokio::time::Instant;

/// Unary: answers `message;tags` where tags are the request's `x-tag` values joined by ",".
pub const ECHO: &str = "/test.Kit/Echo";
/// Unary: fails with the code given as the request message (a decimal number).
pub const FAIL: &str = "/test.Kit/Fail";
/// Unary: fails with UNAVAILABLE (plus the configured pushback trailer) while
/// `fail_first` is above 0, then echoes.
pub const FLAKY: &str = "/test.Kit/Flaky";
/// Server streaming: the request is "N:word"; answers "word-0" .. "word-{N-1}".
pub const COUNT: &str = "/test.Kit/Count";
/// Server streaming: like `Count`, but fails (trailers-only) like `Flaky` first.
pub const FLAKY_COUNT: &str = "/test.Kit/FlakyCount";
/// Server streaming: sends the response headers, then fails with UNAVAILABLE (counts as a
/// flaky call).
pub const HEADERS_THEN_FAIL: &str = "/test.Kit/HeadersThenFail";
/// Client streaming: answers the concatenation of every request message.
pub const CONCAT: &str = "/test.Kit/Concat";
/// Client streaming: reads every message, records them, then fails like `Flaky` first.
pub const FLAKY_CONCAT: &str = "/test.Kit/FlakyConcat";
/// Bidi: echoes each message as it arrives.
pub const CHAT: &str = "/test.Kit/Chat";

/// What the tests set and observe.
#[derive(Default)]
pub struct KitState {
    /// How many more flaky calls fail.
    pub fail_first: AtomicUsize,
    /// `grpc-retry-pushback-ms` to attach to flaky failures.
    pub pushback: Mutex<Option<String>>,
    /// Each flaky call's arrival time and `grpc-timeout`.
    pub arrivals: Mutex<Vec<(Instant, Option<Duration>)>>,
    /// The messages each `FlakyConcat` call received.
    pub concat_attempts: Mutex<Vec<Vec<String>>>,
}

impl KitState {
    /// Records a flaky call; `Err` while it should still fail.
    fn flaky(&self, timeout: Option<Duration>) -> Result<(), Status> {
        self.arrivals
            .lock()
            .unwrap()
            .push((Instant::now(), timeout));
        let failing = self
            .fail_first
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if !failing {
            return Ok(());
        }
        let mut status = Status::unavailable("flaky: failing as asked");
        if let Some(value) = self.pushback.lock().unwrap().as_deref() {
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", value)?;
        }
        Err(status)
    }

    /// How many flaky calls arrived.
    pub fn attempts(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    /// The gaps between consecutive flaky calls.
    pub fn gaps(&self) -> Vec<Duration> {
        let arrivals = self.arrivals.lock().unwrap();
        arrivals.windows(2).map(|w| w[1].0 - w[0].0).collect()
    }
}

/// The service.
pub struct Kit {
    state: Arc<KitState>,
}

impl Service for Kit {
    const NAME: &'static str = "test.Kit";
    const ROUTES: &'static [Route<Self>] = &[
        Route {
            path: CHAT,
            method: "Chat",
            kind: CallKind::Bidi,
            handler: serve_bidi::<Self, 8>,
        },
        Route {
            path: CONCAT,
            method: "Concat",
            kind: CallKind::ClientStreaming,
            handler: serve_client_streaming::<Self, 6>,
        },
        Route {
            path: COUNT,
            method: "Count",
            kind: CallKind::ServerStreaming,
            handler: serve_server_streaming::<Self, 3>,
        },
        Route {
            path: ECHO,
            method: "Echo",
            kind: CallKind::Unary,
            handler: serve_unary::<Self, 0>,
        },
        Route {
            path: FAIL,
            method: "Fail",
            kind: CallKind::Unary,
            handler: serve_unary::<Self, 1>,
        },
        Route {
            path: FLAKY,
            method: "Flaky",
            kind: CallKind::Unary,
            handler: serve_unary::<Self, 2>,
        },
        Route {
            path: FLAKY_CONCAT,
            method: "FlakyConcat",
            kind: CallKind::ClientStreaming,
            handler: serve_client_streaming::<Self, 7>,
        },
        Route {
            path: FLAKY_COUNT,
            method: "FlakyCount",
            kind: CallKind::ServerStreaming,
            handler: serve_server_streaming::<Self, 4>,
        },
        Route {
            path: HEADERS_THEN_FAIL,
            method: "HeadersThenFail",
            kind: CallKind::ServerStreaming,
            handler: serve_server_streaming::<Self, 5>,
        },
    ];
}

/// "N:word" → N messages "word-i".
async fn count_into(text: &str, sink: &mut ResponseSink<String>) -> Result<(), Status> {
    let (count, word) = text.split_once(':').unwrap_or(("1", text));
    let count: usize = count
        .parse()
        .map_err(|_| Status::invalid_argument("count"))?;
    for i in 0..count {
        sink.send(format!("{word}-{i}")).await?;
    }
    Ok(())
}

/// `Echo`: the message and its `x-tag` values.
impl UnaryMethod<0> for Kit {
    type In = String;
    type Out = String;

    async fn call(&self, request: Request<String>) -> Result<Response<String>, Status> {
        let tags = request.metadata().get_all("x-tag").join(",");
        Ok(Response::new(format!("{};{tags}", request.get_ref())))
    }
}

/// `Fail`: the code asked for.
impl UnaryMethod<1> for Kit {
    type In = String;
    type Out = String;

    async fn call(&self, request: Request<String>) -> Result<Response<String>, Status> {
        let code: i32 = request.get_ref().parse().unwrap_or(2);
        Err(Status::new(Code::from_i32(code), "failing as asked"))
    }
}

/// `Flaky`: fails while the state says so, then echoes.
impl UnaryMethod<2> for Kit {
    type In = String;
    type Out = String;

    async fn call(&self, request: Request<String>) -> Result<Response<String>, Status> {
        self.state.flaky(request.timeout())?;
        Ok(Response::new(request.into_inner()))
    }
}

/// `Count`: "N:word" in, N messages out.
impl ServerStreamingMethod<3> for Kit {
    type In = String;
    type Out = String;

    async fn call(
        &self,
        request: Request<String>,
        mut sink: ResponseSink<String>,
    ) -> Result<(), Status> {
        count_into(request.get_ref(), &mut sink).await
    }
}

/// `FlakyCount`: `Count` after the state's failures.
impl ServerStreamingMethod<4> for Kit {
    type In = String;
    type Out = String;

    async fn call(
        &self,
        request: Request<String>,
        mut sink: ResponseSink<String>,
    ) -> Result<(), Status> {
        self.state.flaky(request.timeout())?;
        count_into(request.get_ref(), &mut sink).await
    }
}

/// `HeadersThenFail`: response headers, then UNAVAILABLE.
impl ServerStreamingMethod<5> for Kit {
    type In = String;
    type Out = String;

    async fn call(
        &self,
        request: Request<String>,
        mut sink: ResponseSink<String>,
    ) -> Result<(), Status> {
        self.state
            .arrivals
            .lock()
            .unwrap()
            .push((Instant::now(), request.timeout()));
        sink.send_headers().await?;
        Err(Status::unavailable("failing after the response headers"))
    }
}

/// `Concat`: everything it read, concatenated.
impl ClientStreamingMethod<6> for Kit {
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

/// `FlakyConcat`: `Concat` after the state's failures; records each attempt's parts.
impl ClientStreamingMethod<7> for Kit {
    type In = String;
    type Out = String;

    async fn call(&self, request: Request<Streaming<String>>) -> Result<Response<String>, Status> {
        let timeout = request.timeout();
        let mut stream = request.into_inner();
        let mut parts = Vec::new();
        while let Some(part) = stream.message().await? {
            parts.push(part);
        }
        self.state
            .concat_attempts
            .lock()
            .unwrap()
            .push(parts.clone());
        self.state.flaky(timeout)?;
        Ok(Response::new(parts.concat()))
    }
}

/// `Chat`: each message back as it arrives.
impl BidiMethod<8> for Kit {
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

/// A running `test.Kit` server; shuts down when dropped.
pub struct KitServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What the service saw, and what it should do.
    pub state: Arc<KitState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl KitServer {
    /// `http://addr`, for `Channel::builder`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for KitServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Adds `test.Kit` to `builder` and serves it on a fresh loopback port.
pub async fn start(builder: Builder) -> KitServer {
    let state = Arc::new(KitState::default());
    let server = builder
        .add_service(Kit {
            state: state.clone(),
        })
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.serve_with_shutdown(listener, async move {
        let _ = stopped.await;
    }));
    KitServer {
        addr,
        state,
        stop: Some(stop),
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

/// A bound on how long any single test step may take.
pub const STEP: Duration = Duration::from_secs(10);

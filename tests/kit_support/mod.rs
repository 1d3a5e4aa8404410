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
    CallFuture, CallKind, Route, ServerCall, Service, serve_bidi, serve_client_streaming,
    serve_server_streaming, serve_unary,
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
            handler: Kit::chat,
        },
        Route {
            path: CONCAT,
            method: "Concat",
            kind: CallKind::ClientStreaming,
            handler: Kit::concat,
        },
        Route {
            path: COUNT,
            method: "Count",
            kind: CallKind::ServerStreaming,
            handler: Kit::count,
        },
        Route {
            path: ECHO,
            method: "Echo",
            kind: CallKind::Unary,
            handler: Kit::echo,
        },
        Route {
            path: FAIL,
            method: "Fail",
            kind: CallKind::Unary,
            handler: Kit::fail,
        },
        Route {
            path: FLAKY,
            method: "Flaky",
            kind: CallKind::Unary,
            handler: Kit::flaky,
        },
        Route {
            path: FLAKY_CONCAT,
            method: "FlakyConcat",
            kind: CallKind::ClientStreaming,
            handler: Kit::flaky_concat,
        },
        Route {
            path: FLAKY_COUNT,
            method: "FlakyCount",
            kind: CallKind::ServerStreaming,
            handler: Kit::flaky_count,
        },
        Route {
            path: HEADERS_THEN_FAIL,
            method: "HeadersThenFail",
            kind: CallKind::ServerStreaming,
            handler: Kit::headers_then_fail,
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

impl Kit {
    fn echo(_kit: Arc<Self>, call: ServerCall) -> CallFuture {
        serve_unary(call, |request: Request<String>| async move {
            let tags = request.metadata().get_all("x-tag").join(",");
            Ok(Response::new(format!("{};{tags}", request.get_ref())))
        })
    }

    fn fail(_kit: Arc<Self>, call: ServerCall) -> CallFuture {
        serve_unary(call, |request: Request<String>| async move {
            let code: i32 = request.get_ref().parse().unwrap_or(2);
            Err::<Response<String>, _>(Status::new(Code::from_i32(code), "failing as asked"))
        })
    }

    fn flaky(kit: Arc<Self>, call: ServerCall) -> CallFuture {
        serve_unary(call, move |request: Request<String>| async move {
            kit.state.flaky(request.timeout())?;
            Ok(Response::new(request.into_inner()))
        })
    }

    fn count(_kit: Arc<Self>, call: ServerCall) -> CallFuture {
        serve_server_streaming(
            call,
            |request: Request<String>, mut sink: ResponseSink<String>| async move {
                count_into(request.get_ref(), &mut sink).await
            },
        )
    }

    fn flaky_count(kit: Arc<Self>, call: ServerCall) -> CallFuture {
        serve_server_streaming(
            call,
            move |request: Request<String>, mut sink: ResponseSink<String>| async move {
                kit.state.flaky(request.timeout())?;
                count_into(request.get_ref(), &mut sink).await
            },
        )
    }

    fn headers_then_fail(kit: Arc<Self>, call: ServerCall) -> CallFuture {
        serve_server_streaming(
            call,
            move |request: Request<String>, mut sink: ResponseSink<String>| async move {
                kit.state
                    .arrivals
                    .lock()
                    .unwrap()
                    .push((Instant::now(), request.timeout()));
                sink.send_headers().await?;
                Err(Status::unavailable("failing after the response headers"))
            },
        )
    }

    fn concat(_kit: Arc<Self>, call: ServerCall) -> CallFuture {
        serve_client_streaming(call, |request: Request<Streaming<String>>| async move {
            let mut stream = request.into_inner();
            let mut all = String::new();
            while let Some(part) = stream.message().await? {
                all.push_str(&part);
            }
            Ok(Response::new(all))
        })
    }

    fn flaky_concat(kit: Arc<Self>, call: ServerCall) -> CallFuture {
        serve_client_streaming(
            call,
            move |request: Request<Streaming<String>>| async move {
                let timeout = request.timeout();
                let mut stream = request.into_inner();
                let mut parts = Vec::new();
                while let Some(part) = stream.message().await? {
                    parts.push(part);
                }
                kit.state
                    .concat_attempts
                    .lock()
                    .unwrap()
                    .push(parts.clone());
                kit.state.flaky(timeout)?;
                Ok(Response::new(parts.concat()))
            },
        )
    }

    fn chat(_kit: Arc<Self>, call: ServerCall) -> CallFuture {
        serve_bidi(
            call,
            |request: Request<Streaming<String>>, mut sink: ResponseSink<String>| async move {
                let mut stream = request.into_inner();
                while let Some(message) = stream.message().await? {
                    sink.send(message).await?;
                }
                Ok(())
            },
        )
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

//! Async interceptors (`AsyncInterceptor`) between our own client and server: the start hook
//! awaits before the handler exists; deadline, cancellation and panics while it waits; the
//! declared order across sync and async hooks; streaming calls held until the hook decides.
//! (tests/async_auth.rs runs the same hooks against grpc-go and grpcio.)

#[path = "kit_support/mod.rs"]
mod kit_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bare_grpc::interceptor::{AsyncInterceptor, CallInfo, Interceptor};
use bare_grpc::{Channel, Code, Metadata, Request, Server, Status};
use kit_support::{CHAT, ECHO, KitServer};
use tokio::time::timeout;

type Log = Arc<Mutex<Vec<String>>>;

/// Sync: logs its start and end.
struct SyncLog(&'static str, Log);

impl Interceptor for SyncLog {
    type State = ();
    fn on_start(&self, _: &CallInfo, md: &mut Metadata) -> Result<(), Status> {
        self.1.lock().unwrap().push(format!("{} start", self.0));
        md.append("x-tag", self.0)?;
        Ok(())
    }
    fn on_end(&self, _: (), _: &CallInfo, status: &Status, _: Duration) {
        let line = format!("{} end {}", self.0, status.code().name());
        self.1.lock().unwrap().push(line);
    }
}

/// Counts the checks that were dropped before they finished.
struct DropCount(Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Async: waits `delay` (a slow store), then decides from `x-user`: "ok" passes (and adds a
/// tag), "panic" panics, anything else is PERMISSION_DENIED.
struct SlowCheck {
    name: &'static str,
    delay: Duration,
    log: Log,
    abandoned: Arc<AtomicUsize>,
}

impl AsyncInterceptor for SlowCheck {
    type State = ();
    async fn on_start(&self, call: &CallInfo, md: &mut Metadata) -> Result<(), Status> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} start", self.name));
        assert!(call.remote_addr().is_some(), "the server knows the peer");
        let guard = DropCount(self.abandoned.clone());
        tokio::time::sleep(self.delay).await;
        std::mem::forget(guard);
        match md.get("x-user") {
            Some("ok") => {
                md.append("x-tag", self.name)?;
                Ok(())
            }
            Some("panic") => panic!("the store exploded"),
            _ => Err(Status::permission_denied("not allowed")),
        }
    }
    fn on_end(&self, _: (), _: &CallInfo, status: &Status, _: Duration) {
        let line = format!("{} end {}", self.name, status.code().name());
        self.log.lock().unwrap().push(line);
    }
}

struct Setup {
    server: KitServer,
    channel: Channel,
    log: Log,
    abandoned: Arc<AtomicUsize>,
}

/// A server with `outer` (sync) ─ `check` (async, `delay`) ─ `inner` (sync).
async fn setup(delay: Duration) -> Setup {
    let log: Log = Arc::default();
    let abandoned = Arc::new(AtomicUsize::new(0));
    let builder = Server::builder()
        .interceptor(SyncLog("outer", log.clone()))
        .async_interceptor(SlowCheck {
            name: "check",
            delay,
            log: log.clone(),
            abandoned: abandoned.clone(),
        })
        .interceptor(SyncLog("inner", log.clone()));
    let server = kit_support::start(builder).await;
    let channel = Channel::connect(&server.url()).await.unwrap();
    Setup {
        server,
        channel,
        log,
        abandoned,
    }
}

fn request(user: &str, text: &str) -> Request<String> {
    let mut request = Request::new(text.to_owned());
    request.metadata_mut().insert("x-user", user).unwrap();
    request
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn allowed_rejected_and_order_across_sync_and_async_hooks() {
    let s = setup(Duration::from_millis(30)).await;
    let reply = s
        .channel
        .unary::<String, String>(ECHO, request("ok", "hi"))
        .await
        .unwrap();
    // The metadata each hook added reached the handler, in declared order.
    assert_eq!(reply.into_inner(), "hi;outer,check,inner");
    wait_for("on_end", || s.log.lock().unwrap().len() == 6).await;
    assert_eq!(
        *s.log.lock().unwrap(),
        [
            "outer start",
            "check start",
            "inner start",
            "inner end OK",
            "check end OK",
            "outer end OK"
        ]
    );
    s.log.lock().unwrap().clear();

    let err = s
        .channel
        .unary::<String, String>(ECHO, request("eve", "hi"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(err.message(), "not allowed");
    wait_for("on_end", || s.log.lock().unwrap().len() == 3).await;
    assert_eq!(
        *s.log.lock().unwrap(),
        ["outer start", "check start", "outer end PERMISSION_DENIED"]
    );
    drop(s.server);
}

#[tokio::test]
async fn deadline_during_the_check_is_deadline_exceeded_and_the_check_is_dropped() {
    let s = setup(Duration::from_secs(3)).await;
    let mut req = request("ok", "late");
    req.set_timeout(Duration::from_millis(100));
    let err = s
        .channel
        .unary::<String, String>(ECHO, req)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    wait_for("the check to be dropped", || {
        s.abandoned.load(Ordering::SeqCst) == 1
    })
    .await;
    wait_for("outer on_end", || {
        s.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.starts_with("outer end"))
    })
    .await;
    // The server keeps serving.
    let s2 = setup(Duration::from_millis(1)).await;
    assert!(
        s2.channel
            .unary::<String, String>(ECHO, request("ok", "x"))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn client_reset_during_the_check_frees_the_work() {
    let s = setup(Duration::from_secs(30)).await;
    // No deadline: the caller gives up by dropping the call, which resets the stream.
    let call = s
        .channel
        .unary::<String, String>(ECHO, request("ok", "gone"));
    assert!(timeout(Duration::from_millis(100), call).await.is_err());
    wait_for("the check to be dropped", || {
        s.abandoned.load(Ordering::SeqCst) == 1
    })
    .await;
    wait_for("outer on_end", || {
        s.log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l == "outer end CANCELLED")
    })
    .await;
}

#[tokio::test]
async fn a_panicking_check_is_internal_and_the_server_keeps_serving() {
    let s = setup(Duration::from_millis(1)).await;
    let err = s
        .channel
        .unary::<String, String>(ECHO, request("panic", "boom"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Internal, "{err}");
    assert!(err.message().contains("panicked"), "{err}");
    let ok = s
        .channel
        .unary::<String, String>(ECHO, request("ok", "after"))
        .await
        .unwrap();
    assert_eq!(ok.into_inner(), "after;outer,check,inner");
}

#[tokio::test]
async fn a_bidi_call_is_held_until_the_check_decides() {
    let s = setup(Duration::from_millis(300)).await;
    let mut req = Request::new(());
    req.metadata_mut().insert("x-user", "ok").unwrap();
    let started = tokio::time::Instant::now();
    let (mut sink, mut stream) = s.channel.bidi::<String, String>(CHAT, req).await.unwrap();
    // Sent at once; the handler cannot see it before the check has decided.
    sink.send("early".to_owned()).await.unwrap();
    let first = timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.as_deref(), Some("early"));
    assert!(started.elapsed() >= Duration::from_millis(300));
    sink.finish();
    while timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap()
        .is_some()
    {}
    // Rejected: the handler never runs, the messages sent are never delivered.
    let mut req = Request::new(());
    req.metadata_mut().insert("x-user", "eve").unwrap();
    let (mut sink, mut stream) = s.channel.bidi::<String, String>(CHAT, req).await.unwrap();
    let _ = sink.send("never".to_owned()).await;
    let err = timeout(Duration::from_secs(5), stream.message())
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

/// Client side: an async start hook that waits, adds metadata, and may time out.
struct ClientWait(Duration);

impl AsyncInterceptor for ClientWait {
    type State = ();
    async fn on_start(&self, call: &CallInfo, md: &mut Metadata) -> Result<(), Status> {
        assert!(call.remote_addr().is_none());
        tokio::time::sleep(self.0).await;
        md.append("x-tag", "client-async")?;
        Ok(())
    }
}

#[tokio::test]
async fn client_async_hook_runs_in_order_and_under_the_deadline() {
    let server = kit_support::start(Server::builder()).await;
    let log: Log = Arc::default();
    let channel = Channel::builder(&server.url())
        .unwrap()
        .interceptor(SyncLog("first", log.clone()))
        .async_interceptor(ClientWait(Duration::from_millis(20)))
        .interceptor(SyncLog("last", log.clone()))
        .connect()
        .await
        .unwrap();
    let reply = channel
        .unary::<String, String>(ECHO, Request::new("c".to_owned()))
        .await
        .unwrap();
    assert_eq!(reply.into_inner(), "c;first,client-async,last");

    let slow = Channel::builder(&server.url())
        .unwrap()
        .interceptor(SyncLog("first", log.clone()))
        .async_interceptor(ClientWait(Duration::from_secs(5)))
        .connect()
        .await
        .unwrap();
    log.lock().unwrap().clear();
    let mut req = Request::new("late".to_owned());
    req.set_timeout(Duration::from_millis(50));
    let err = slow.unary::<String, String>(ECHO, req).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    assert_eq!(
        *log.lock().unwrap(),
        ["first start", "first end DEADLINE_EXCEEDED"]
    );
}

/// The server's own timer, seen on the wire: a raw HTTP/2 client sends `grpc-timeout: 100m`
/// and keeps no timer of its own; the answer is the server's trailers-only
/// DEADLINE_EXCEEDED, sent while the check is still waiting.
#[tokio::test]
async fn the_server_answers_deadline_exceeded_itself() {
    let s = setup(Duration::from_secs(30)).await;
    let tcp = tokio::net::TcpStream::connect(s.server.addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("http://{}{ECHO}", s.server.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "100m")
        .header("x-user", "ok")
        .body(())
        .unwrap();
    let started = tokio::time::Instant::now();
    let (response, _send) = client.send_request(request, false).unwrap();
    let response = timeout(Duration::from_secs(5), response)
        .await
        .expect("the server answers by its own deadline")
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    assert_eq!(response.headers()["grpc-status"], "4");
    wait_for("the check to be dropped", || {
        s.abandoned.load(Ordering::SeqCst) == 1
    })
    .await;
}

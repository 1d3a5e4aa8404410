//! Interceptors end to end: our client and our server over loopback, with recording interceptors
//! on either side, for the four call kinds (docs/interceptors.md describes the hook order).

#[path = "kit_support/mod.rs"]
mod kit_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bare_grpc::interceptor::{CallInfo, Interceptor, MessageView};
use bare_grpc::{Channel, Code, Metadata, Request, Response, ResponseStream, Server, Status};
use kit_support::{CHAT, CONCAT, COUNT, ECHO, IterStream, STEP};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// Writes one line per hook into a shared log, and reports each end on a channel.
struct Recorder {
    name: &'static str,
    log: Arc<Mutex<Vec<String>>>,
    ends: mpsc::UnboundedSender<(String, Code, Duration)>,
    /// Rejects calls whose metadata has `x-deny`, with PERMISSION_DENIED.
    deny: bool,
    /// Appends this to the request's `x-tag` values.
    tag: Option<&'static str>,
}

fn text(message: MessageView<'_>) -> String {
    message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_else(|| "<not a String>".into())
}

impl Interceptor for Recorder {
    type State = u32;

    fn on_start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<u32, Status> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{} start {}", self.name, call.method()));
        if self.deny && metadata.get("x-deny").is_some() {
            return Err(Status::permission_denied("denied by interceptor"));
        }
        if let Some(tag) = self.tag {
            metadata.append("x-tag", tag)?;
        }
        Ok(0)
    }

    fn on_request(&self, n: &mut u32, _: &CallInfo, message: MessageView<'_>) {
        *n += 1;
        let line = format!(
            "{} request {} {}",
            self.name,
            text(message),
            message.wire_len()
        );
        self.log.lock().unwrap().push(line);
    }

    fn on_response(&self, n: &mut u32, _: &CallInfo, message: MessageView<'_>) {
        *n += 1;
        let line = format!("{} response {}", self.name, text(message));
        self.log.lock().unwrap().push(line);
    }

    fn on_end(&self, n: u32, call: &CallInfo, status: &Status, elapsed: Duration) {
        let line = format!("{} end {} ({n} messages)", self.name, status.code().name());
        self.log.lock().unwrap().push(line);
        let _ = self
            .ends
            .send((call.method().to_owned(), status.code(), elapsed));
    }
}

/// Two recorders `a` (outer) and `b` (inner) sharing one log.
struct Pair {
    log: Arc<Mutex<Vec<String>>>,
    ends: mpsc::UnboundedReceiver<(String, Code, Duration)>,
    a: Recorder,
    b: Recorder,
}

fn pair() -> Pair {
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, ends) = mpsc::unbounded_channel();
    let recorder = |name| Recorder {
        name,
        log: log.clone(),
        ends: tx.clone(),
        deny: false,
        tag: None,
    };
    Pair {
        a: recorder("a"),
        b: recorder("b"),
        log,
        ends,
    }
}

/// Waits for `n` ends and returns the log so far (then empties it).
async fn settle(
    log: &Arc<Mutex<Vec<String>>>,
    ends: &mut mpsc::UnboundedReceiver<(String, Code, Duration)>,
    n: usize,
) -> Vec<String> {
    for _ in 0..n {
        timeout(STEP, ends.recv())
            .await
            .expect("an end is reported")
            .expect("recorder alive");
    }
    std::mem::take(&mut *log.lock().unwrap())
}

async fn channel(url: &str) -> Channel {
    Channel::connect(url).await.expect("connect")
}

/// Runs one call of each kind; returns what the client got.
async fn one_of_each(channel: &Channel) -> Vec<String> {
    let mut got = Vec::new();
    let reply: Response<String> = channel
        .unary(ECHO, Request::new("hi".to_owned()))
        .await
        .expect("unary");
    got.push(reply.into_inner());

    let mut stream: ResponseStream<String> = channel
        .server_streaming(COUNT, Request::new("2:n".to_owned()))
        .await
        .expect("server streaming");
    while let Some(message) = stream.message().await.expect("count message") {
        got.push(message);
    }

    let parts = IterStream(["x".to_owned(), "yz".to_owned()].into_iter());
    let reply: Response<String> = channel
        .client_streaming(CONCAT, Request::new(parts))
        .await
        .expect("client streaming");
    got.push(reply.into_inner());

    let (mut sink, mut stream) = channel
        .bidi::<String, String>(CHAT, Request::new(()))
        .await
        .expect("bidi");
    for word in ["p", "q"] {
        sink.send(word.to_owned()).await.expect("send");
        let echoed = stream.message().await.expect("echo").expect("a message");
        got.push(echoed);
    }
    sink.finish();
    assert_eq!(stream.message().await.expect("clean end"), None);
    got
}

#[tokio::test]
async fn server_chain_sees_every_message_of_the_four_kinds_in_order() {
    let Pair {
        log,
        mut ends,
        a,
        b,
    } = pair();
    let server = kit_support::start(Server::builder().interceptor(a).interceptor(b)).await;
    let channel = channel(&server.url()).await;

    let got = timeout(STEP, one_of_each(&channel)).await.expect("in time");
    assert_eq!(got, ["hi;", "n-0", "n-1", "xyz", "p", "q"]);
    let log = settle(&log, &mut ends, 8).await;
    // StringValue "hi" is 4 bytes on the wire: tag, length, two bytes.
    let want: Vec<&str> = vec![
        // unary: request direction outer first, response direction inner first.
        "a start Echo",
        "b start Echo",
        "a request hi 4",
        "b request hi 4",
        "b response hi;",
        "a response hi;",
        "b end OK (2 messages)",
        "a end OK (2 messages)",
        // server streaming: every response message, not only the first.
        "a start Count",
        "b start Count",
        "a request 2:n 5",
        "b request 2:n 5",
        "b response n-0",
        "a response n-0",
        "b response n-1",
        "a response n-1",
        "b end OK (3 messages)",
        "a end OK (3 messages)",
        // client streaming: every request message.
        "a start Concat",
        "b start Concat",
        "a request x 3",
        "b request x 3",
        "a request yz 4",
        "b request yz 4",
        "b response xyz",
        "a response xyz",
        "b end OK (3 messages)",
        "a end OK (3 messages)",
        // bidi: interleaved as they happened.
        "a start Chat",
        "b start Chat",
        "a request p 3",
        "b request p 3",
        "b response p",
        "a response p",
        "a request q 3",
        "b request q 3",
        "b response q",
        "a response q",
        "b end OK (4 messages)",
        "a end OK (4 messages)",
    ];
    assert_eq!(log, want);
}

#[tokio::test]
async fn client_chain_sees_every_message_of_the_four_kinds_in_order() {
    let Pair {
        log,
        mut ends,
        a,
        b,
    } = pair();
    let server = kit_support::start(Server::builder()).await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .interceptor(a)
        .interceptor(b)
        .connect()
        .await
        .expect("connect");

    let got = timeout(STEP, one_of_each(&channel)).await.expect("in time");
    assert_eq!(got, ["hi;", "n-0", "n-1", "xyz", "p", "q"]);
    let log = settle(&log, &mut ends, 8).await;
    let want: Vec<&str> = vec![
        "a start Echo",
        "b start Echo",
        "a request hi 4",
        "b request hi 4",
        "b response hi;",
        "a response hi;",
        "b end OK (2 messages)",
        "a end OK (2 messages)",
        "a start Count",
        "b start Count",
        "a request 2:n 5",
        "b request 2:n 5",
        "b response n-0",
        "a response n-0",
        "b response n-1",
        "a response n-1",
        "b end OK (3 messages)",
        "a end OK (3 messages)",
        "a start Concat",
        "b start Concat",
        "a request x 3",
        "b request x 3",
        "a request yz 4",
        "b request yz 4",
        "b response xyz",
        "a response xyz",
        "b end OK (3 messages)",
        "a end OK (3 messages)",
        "a start Chat",
        "b start Chat",
        "a request p 3",
        "b request p 3",
        "b response p",
        "a response p",
        "a request q 3",
        "b request q 3",
        "b response q",
        "a response q",
        "b end OK (4 messages)",
        "a end OK (4 messages)",
    ];
    assert_eq!(log, want);
}

#[tokio::test]
async fn interceptors_change_metadata_the_other_side_sees() {
    let Pair { mut a, mut b, .. } = pair();
    a.tag = Some("client-side");
    b.tag = Some("server-side");
    let server = kit_support::start(Server::builder().interceptor(b)).await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .interceptor(a)
        .connect()
        .await
        .expect("connect");
    let mut request = Request::new("m".to_owned());
    request.metadata_mut().insert("x-tag", "caller").unwrap();
    let reply: Response<String> = timeout(STEP, channel.unary(ECHO, request))
        .await
        .expect("in time")
        .expect("unary");
    // The handler sees the caller's entry, the client interceptor's, then the server's.
    assert_eq!(reply.into_inner(), "m;caller,client-side,server-side");
}

#[tokio::test]
async fn a_server_rejection_stops_every_kind_before_the_handler() {
    let Pair {
        log,
        mut ends,
        a,
        mut b,
    } = pair();
    b.deny = true;
    let server = kit_support::start(Server::builder().interceptor(a).interceptor(b)).await;
    let channel = channel(&server.url()).await;
    let denied = || {
        let mut request = Request::new("x".to_owned());
        request.metadata_mut().insert("x-deny", "1").unwrap();
        request
    };

    let unary = channel.unary::<String, String>(ECHO, denied()).await;
    assert_eq!(unary.unwrap_err().code(), Code::PermissionDenied);
    let streaming = channel
        .server_streaming::<String, String>(COUNT, denied())
        .await;
    assert_eq!(streaming.unwrap_err().code(), Code::PermissionDenied);
    let mut request = Request::new(IterStream(vec!["x".to_owned()].into_iter()));
    request.metadata_mut().insert("x-deny", "1").unwrap();
    let concat = channel
        .client_streaming::<String, String, _>(CONCAT, request)
        .await;
    assert_eq!(concat.unwrap_err().code(), Code::PermissionDenied);
    let mut request = Request::new(());
    request.metadata_mut().insert("x-deny", "1").unwrap();
    let (_sink, mut stream) = channel.bidi::<String, String>(CHAT, request).await.unwrap();
    let first = timeout(STEP, stream.message()).await.expect("in time");
    assert_eq!(first.unwrap_err().code(), Code::PermissionDenied);

    // Only the outer interceptor ends, once per call, and no message ever passed.
    let log = settle(&log, &mut ends, 4).await;
    let mut want = Vec::new();
    for method in ["Echo", "Count", "Concat", "Chat"] {
        want.push(format!("a start {method}"));
        want.push(format!("b start {method}"));
        want.push("a end PERMISSION_DENIED (0 messages)".to_owned());
    }
    assert_eq!(log, want);
}

#[tokio::test]
async fn a_client_rejection_sends_nothing() {
    let server_side = pair();
    let Pair { mut a, .. } = pair();
    a.deny = true;
    let server = kit_support::start(Server::builder().interceptor(server_side.a)).await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .interceptor(a)
        .connect()
        .await
        .expect("connect");
    let mut request = Request::new("x".to_owned());
    request.metadata_mut().insert("x-deny", "1").unwrap();
    let err = channel
        .unary::<String, String>(ECHO, request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(err.message(), "denied by interceptor");
    // A call that is let through shows the server interceptor ran for it alone.
    let reply: Response<String> = channel
        .unary(ECHO, Request::new("ok".to_owned()))
        .await
        .unwrap();
    assert_eq!(reply.into_inner(), "ok;");
    let mut ends = server_side.ends;
    let log = settle(&server_side.log, &mut ends, 1).await;
    assert_eq!(log.first().map(String::as_str), Some("a start Echo"));
    assert_eq!(log.iter().filter(|l| l.contains("start")).count(), 1);
}

#[tokio::test]
async fn failures_cancellations_and_elapsed_time_reach_on_end() {
    let server_pair = pair();
    let client_pair = pair();
    let server = kit_support::start(Server::builder().interceptor(server_pair.a)).await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .interceptor(client_pair.a)
        .connect()
        .await
        .expect("connect");
    let (mut server_ends, mut client_ends) = (server_pair.ends, client_pair.ends);

    // A handler error: both sides end with its code.
    let started = Instant::now();
    let err = channel
        .unary::<String, String>(kit_support::FAIL, Request::new("5".to_owned()))
        .await
        .unwrap_err();
    let wall = started.elapsed();
    assert_eq!(err.code(), Code::NotFound);
    let (method, code, elapsed) = client_ends.recv().await.unwrap();
    assert_eq!((method.as_str(), code), ("Fail", Code::NotFound));
    assert!(elapsed <= wall, "{elapsed:?} > {wall:?}");
    let (_, code, elapsed) = timeout(STEP, server_ends.recv()).await.unwrap().unwrap();
    assert_eq!(code, Code::NotFound);
    assert!(elapsed <= started.elapsed());

    // A bidi call the caller drops: CANCELLED on both sides.
    let (sink, mut stream) = channel
        .bidi::<String, String>(CHAT, Request::new(()))
        .await
        .unwrap();
    let mut sink = sink;
    sink.send("one".to_owned()).await.unwrap();
    assert_eq!(stream.message().await.unwrap().as_deref(), Some("one"));
    drop(stream);
    drop(sink);
    let (_, code, _) = timeout(STEP, client_ends.recv()).await.unwrap().unwrap();
    assert_eq!(code, Code::Cancelled);
    let (_, code, _) = timeout(STEP, server_ends.recv()).await.unwrap().unwrap();
    assert_eq!(code, Code::Cancelled);

    // A server stream dropped half-read ends as CANCELLED on the client.
    let mut stream: ResponseStream<String> = channel
        .server_streaming(COUNT, Request::new("5:k".to_owned()))
        .await
        .unwrap();
    assert_eq!(stream.message().await.unwrap().as_deref(), Some("k-0"));
    drop(stream);
    let (method, code, _) = timeout(STEP, client_ends.recv()).await.unwrap().unwrap();
    assert_eq!((method.as_str(), code), ("Count", Code::Cancelled));

    // A deadline the server cannot meet: DEADLINE_EXCEEDED on the client.
    let mut request = Request::new(());
    request.set_timeout(Duration::from_millis(50));
    let (_sink, mut stream) = channel.bidi::<String, String>(CHAT, request).await.unwrap();
    let err = timeout(STEP, stream.message()).await.unwrap().unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    let (_, code, elapsed) = timeout(STEP, client_ends.recv()).await.unwrap().unwrap();
    assert_eq!(code, Code::DeadlineExceeded);
    assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
}

#[tokio::test]
async fn call_info_describes_the_call() {
    /// Checks what it is told, and reports it.
    struct Describe(mpsc::UnboundedSender<String>);
    impl Interceptor for Describe {
        type State = ();
        fn on_start(&self, call: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
            let line = format!(
                "{:?} {:?} {} {} {} remote={} deadline={}",
                call.side(),
                call.kind(),
                call.path(),
                call.service(),
                call.method(),
                call.remote_addr().is_some(),
                call.deadline().is_some(),
            );
            let _ = self.0.send(line);
            Ok(())
        }
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let server = kit_support::start(Server::builder().interceptor(Describe(tx.clone()))).await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .interceptor(Describe(tx))
        .connect()
        .await
        .unwrap();
    let mut request = Request::new("2:w".to_owned());
    request.set_timeout(Duration::from_secs(30));
    let mut stream: ResponseStream<String> =
        channel.server_streaming(COUNT, request).await.unwrap();
    while stream.message().await.unwrap().is_some() {}
    let client = rx.recv().await.unwrap();
    let server_line = rx.recv().await.unwrap();
    assert_eq!(
        client,
        "Client ServerStreaming /test.Kit/Count test.Kit Count remote=false deadline=true"
    );
    assert_eq!(
        server_line,
        "Server ServerStreaming /test.Kit/Count test.Kit Count remote=true deadline=true"
    );
}

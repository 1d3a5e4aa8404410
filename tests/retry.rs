//! Retry with back-off end to end: our client with a `RetryPolicy` against our server, which
//! fails the first N calls of a method with UNAVAILABLE (docs/retry.md; gRFC A6's rules).
//!
//! Real time with small delays: the server is real (sockets), and tokio's paused clock would
//! jump through every timer the moment the runtime waits on a socket. Lower bounds are exact
//! (a back-off never ends early); upper bounds get slack for a loaded machine.

#[path = "kit_support/mod.rs"]
mod kit_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bare_grpc::client::RetryPolicy;
use bare_grpc::interceptor::{CallInfo, Interceptor, MessageView};
use bare_grpc::{Channel, Code, Metadata, Request, Response, ResponseStream, Server, Status};
use kit_support::{
    FAIL, FLAKY, FLAKY_CONCAT, FLAKY_COUNT, HEADERS_THEN_FAIL, IterStream, KitServer, STEP,
};
use tokio::time::{Instant, timeout};

/// How much later than its bound a wait may end on a busy 2-core machine.
const SLACK: Duration = Duration::from_millis(400);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Counts hooks: starts, request messages, ends (with the last end's code).
#[derive(Default)]
struct Counter {
    starts: AtomicUsize,
    requests: AtomicUsize,
    ends: AtomicUsize,
    last_code: std::sync::Mutex<Option<Code>>,
}

impl Interceptor for Counter {
    type State = ();
    fn on_start(&self, _: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
        self.starts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
    fn on_request(&self, _: &mut (), _: &CallInfo, _: MessageView<'_>) {
        self.requests.fetch_add(1, Ordering::SeqCst);
    }
    fn on_end(&self, _: (), _: &CallInfo, status: &Status, _: Duration) {
        self.ends.fetch_add(1, Ordering::SeqCst);
        *self.last_code.lock().unwrap() = Some(status.code());
    }
}

async fn channel(server: &KitServer, policy: Option<RetryPolicy>) -> Channel {
    let mut builder = Channel::builder(&server.url()).unwrap();
    if let Some(policy) = policy {
        builder = builder.retry(policy);
    }
    builder.connect().await.expect("connect")
}

fn failing(server: &KitServer, n: usize) {
    server.state.fail_first.store(n, Ordering::SeqCst);
}

#[tokio::test]
async fn unary_succeeds_after_n_failures_with_backoff_within_bounds() {
    let server = kit_support::start(Server::builder()).await;
    failing(&server, 3);
    let policy = RetryPolicy::new()
        .initial_backoff(ms(40))
        .min_backoff(ms(30))
        .max_backoff(ms(120))
        .max_attempts(5)
        .jitter(0.2);
    let counter = Arc::new(Counter::default());
    let channel = Channel::builder(&server.url())
        .unwrap()
        .retry(policy.clone())
        .interceptor(counter.clone())
        .connect()
        .await
        .unwrap();

    let mut request = Request::new("hello".to_owned());
    request.set_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let reply: Response<String> = timeout(STEP, channel.unary(FLAKY, request))
        .await
        .expect("in time")
        .expect("succeeds after three retries");
    let elapsed = started.elapsed();
    assert_eq!(reply.into_inner(), "hello");
    assert_eq!(server.state.attempts(), 4);

    // Each wait is within the policy's bounds for its retry: about 40, 80, then 160 ms capped
    // at 120 ms.
    let gaps = server.state.gaps();
    let mut floor = Duration::ZERO;
    for (n, gap) in gaps.iter().enumerate() {
        let (low, high) = policy.delay_bounds(n as u32);
        assert!(*gap >= low, "retry {n}: waited {gap:?}, less than {low:?}");
        assert!(
            *gap <= high + SLACK,
            "retry {n}: waited {gap:?}, more than {high:?}"
        );
        floor += low;
    }
    assert_eq!(
        policy.delay_bounds(2),
        (ms(120), ms(120)),
        "the cap applies"
    );
    assert!(elapsed >= floor, "{elapsed:?} < {floor:?}");

    // Every attempt carries what is left of the deadline, not the original timeout.
    let timeouts: Vec<Duration> = server
        .state
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .map(|(_, t)| t.expect("grpc-timeout sent"))
        .collect();
    assert_eq!(timeouts[0], Duration::from_secs(10));
    assert!(timeouts.windows(2).all(|w| w[1] < w[0]), "{timeouts:?}");

    // Interceptors see one call: one start, the message once, one end.
    assert_eq!(counter.starts.load(Ordering::SeqCst), 1);
    assert_eq!(counter.requests.load(Ordering::SeqCst), 1);
    assert_eq!(counter.ends.load(Ordering::SeqCst), 1);
    assert_eq!(*counter.last_code.lock().unwrap(), Some(Code::Ok));
}

#[tokio::test]
async fn max_attempts_bounds_the_attempts_and_no_policy_means_one() {
    let server = kit_support::start(Server::builder()).await;
    failing(&server, 100);
    let policy = RetryPolicy::new()
        .initial_backoff(ms(5))
        .max_backoff(ms(10))
        .max_attempts(3);
    let channel = channel(&server, Some(policy)).await;
    let err = channel
        .unary::<String, String>(FLAKY, Request::new("x".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(server.state.attempts(), 3);

    // The same connection without a policy: one attempt.
    let once = channel.with_retry(None);
    assert!(once.retry_policy().is_none());
    let err = once
        .unary::<String, String>(FLAKY, Request::new("x".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(server.state.attempts(), 4);
}

#[tokio::test]
async fn only_the_named_codes_are_retried() {
    let counter = Arc::new(Counter::default());
    let server = kit_support::start(Server::builder().interceptor(counter.clone())).await;
    let policy = RetryPolicy::new().initial_backoff(ms(5)).max_attempts(4);
    let channel = channel(&server, Some(policy.clone())).await;
    // NOT_FOUND is not UNAVAILABLE: one attempt.
    let err = channel
        .unary::<String, String>(FAIL, Request::new("5".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(counter.starts.load(Ordering::SeqCst), 1);

    // Named, it is retried until `max_attempts`.
    let channel = channel.with_retry(Some(policy.retry_on([Code::NotFound])));
    let err = channel
        .unary::<String, String>(FAIL, Request::new("5".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(counter.starts.load(Ordering::SeqCst), 1 + 4);
}

#[tokio::test]
async fn the_deadline_stops_retrying() {
    let server = kit_support::start(Server::builder()).await;
    failing(&server, 100);
    let policy = RetryPolicy::new()
        .initial_backoff(ms(100))
        .min_backoff(ms(100))
        .max_backoff(ms(100))
        .jitter(0.0)
        .max_attempts(50);
    let channel = channel(&server, Some(policy)).await;
    let mut request = Request::new("x".to_owned());
    let deadline = ms(350);
    request.set_timeout(deadline);
    let started = Instant::now();
    let err = channel
        .unary::<String, String>(FLAKY, request)
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    // Attempts at about 0, 100, 200 and 300 ms; a fifth would start after the deadline, so the
    // call ends with the last attempt's status instead of waiting for it.
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    let attempts = server.state.attempts();
    assert!((2..=4).contains(&attempts), "{attempts} attempts");
    assert!(elapsed < deadline, "returned after {elapsed:?}");
}

#[tokio::test]
async fn a_pushback_sets_the_wait_and_a_bad_one_stops_retrying() {
    let server = kit_support::start(Server::builder()).await;
    let policy = RetryPolicy::new()
        .initial_backoff(ms(5))
        .max_backoff(ms(10))
        .max_attempts(3);
    let channel = channel(&server, Some(policy)).await;

    failing(&server, 1);
    *server.state.pushback.lock().unwrap() = Some("150".into());
    let reply: Response<String> = timeout(STEP, channel.unary(FLAKY, Request::new("p".to_owned())))
        .await
        .unwrap()
        .expect("retried after the pushback");
    assert_eq!(reply.into_inner(), "p");
    let gaps = server.state.gaps();
    assert_eq!(gaps.len(), 1);
    assert!(gaps[0] >= ms(150), "waited {:?}", gaps[0]);
    assert!(gaps[0] <= ms(150) + SLACK, "waited {:?}", gaps[0]);

    for refusal in ["-1", "soon"] {
        server.state.arrivals.lock().unwrap().clear();
        failing(&server, 1);
        *server.state.pushback.lock().unwrap() = Some(refusal.into());
        let err = channel
            .unary::<String, String>(FLAKY, Request::new("p".to_owned()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert_eq!(
            server.state.attempts(),
            1,
            "pushback {refusal:?} means no retry"
        );
    }
}

#[tokio::test]
async fn server_streaming_is_retried_until_response_headers_arrive() {
    let server = kit_support::start(Server::builder()).await;
    let policy = RetryPolicy::new().initial_backoff(ms(5)).max_attempts(4);
    let channel = channel(&server, Some(policy)).await;

    // Trailers-only failures: nothing was answered, so the call is retried.
    failing(&server, 2);
    let mut stream: ResponseStream<String> = timeout(
        STEP,
        channel.server_streaming(FLAKY_COUNT, Request::new("3:r".to_owned())),
    )
    .await
    .unwrap()
    .expect("retried into a stream");
    let mut got = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        got.push(message);
    }
    assert_eq!(got, ["r-0", "r-1", "r-2"]);
    assert_eq!(server.state.attempts(), 3);

    // Response headers, then UNAVAILABLE: the call was committed; never retried.
    server.state.arrivals.lock().unwrap().clear();
    let outcome = async {
        let mut stream: ResponseStream<String> = channel
            .server_streaming(HEADERS_THEN_FAIL, Request::new("h".to_owned()))
            .await?;
        stream.message().await
    }
    .await;
    assert_eq!(outcome.unwrap_err().code(), Code::Unavailable);
    assert_eq!(server.state.attempts(), 1);
}

#[tokio::test]
async fn client_streams_are_replayed_only_from_a_buffer() {
    let server = kit_support::start(Server::builder()).await;
    let parts = || IterStream(["a".to_owned(), "b".to_owned(), "c".to_owned()].into_iter());
    let policy = RetryPolicy::new().initial_backoff(ms(5)).max_attempts(4);

    // Without buffering, the messages left the caller's stream: no retry.
    failing(&server, 2);
    let plain = channel(&server, Some(policy.clone())).await;
    let err = plain
        .client_streaming::<String, String, _>(FLAKY_CONCAT, Request::new(parts()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(server.state.attempts(), 1);

    // With a buffer big enough, the same messages go out again.
    server.state.arrivals.lock().unwrap().clear();
    server.state.concat_attempts.lock().unwrap().clear();
    failing(&server, 2);
    let buffered = plain.with_retry(Some(policy.clone().buffer_client_stream(1024)));
    let reply: Response<String> = timeout(
        STEP,
        buffered.client_streaming(FLAKY_CONCAT, Request::new(parts())),
    )
    .await
    .unwrap()
    .expect("replayed from the buffer");
    assert_eq!(reply.into_inner(), "abc");
    let attempts = server.state.concat_attempts.lock().unwrap().clone();
    assert_eq!(attempts, vec![vec!["a", "b", "c"]; 3]);

    // A stream that outgrows the buffer is not replayable any more.
    server.state.arrivals.lock().unwrap().clear();
    failing(&server, 2);
    let small = plain.with_retry(Some(policy.buffer_client_stream(4)));
    let err = small
        .client_streaming::<String, String, _>(FLAKY_CONCAT, Request::new(parts()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(server.state.attempts(), 1);
}

#[tokio::test]
async fn bidi_retries_opening_the_stream() {
    // Nothing listens on this port: every attempt fails with UNAVAILABLE before a stream opens.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap();
    drop(free);
    let policy = RetryPolicy::new()
        .initial_backoff(ms(30))
        .min_backoff(ms(30))
        .max_backoff(ms(30))
        .jitter(0.0)
        .max_attempts(3);
    let channel = Channel::builder(&format!("http://{addr}"))
        .unwrap()
        .retry(policy)
        .lazy();
    let started = Instant::now();
    let err = timeout(
        STEP,
        channel.bidi::<String, String>("/test.Kit/Chat", Request::new(())),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    // Two waits of 30 ms between three attempts.
    assert!(started.elapsed() >= ms(60), "{:?}", started.elapsed());

    let started = Instant::now();
    let once = channel.with_retry(None);
    let err = timeout(
        STEP,
        once.bidi::<String, String>("/test.Kit/Chat", Request::new(())),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert!(started.elapsed() < ms(60), "{:?}", started.elapsed());
}

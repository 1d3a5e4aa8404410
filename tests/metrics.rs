//! Prometheus metrics end to end (feature `metrics`): a known mix of calls through our client
//! and server, both counted by one `Metrics`, then `/metrics` scraped over HTTP/1.1 and parsed
//! by Python's `prometheus_client` text parser (tests/python/metrics_check.py), with exact
//! counts asserted per method and code (docs/metrics.md).
//!
//! Run with `cargo test --features metrics --test metrics`.
#![cfg(feature = "metrics")]

#[path = "kit_support/mod.rs"]
mod kit_support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use bare_grpc::interceptor::auth::{BearerAuth, BearerToken};
use bare_grpc::interceptor::{CallInfo, Interceptor};
use bare_grpc::metrics::Metrics;
use bare_grpc::{Channel, Code, Metadata, Request, Response, ResponseStream, Server, Status};
use kit_support::{CHAT, CONCAT, COUNT, ECHO, FAIL, IterStream, STEP};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Tells the test when the server has finished a call (it sits outside the metrics
/// interceptor, so its `on_end` runs after the metrics were updated).
struct Done(mpsc::UnboundedSender<()>);

impl Interceptor for Done {
    type State = ();
    fn on_start(&self, _: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
        Ok(())
    }
    fn on_end(&self, _: (), _: &CallInfo, _: &Status, _: Duration) {
        let _ = self.0.send(());
    }
}

/// The known mix: 11 calls, three of them failing on purpose and one rejected by auth.
async fn make_calls(channel: &Channel, anonymous: &Channel) {
    for word in ["a", "b", "c"] {
        let reply: Response<String> = channel
            .unary(ECHO, Request::new(word.to_owned()))
            .await
            .unwrap();
        assert_eq!(reply.into_inner(), format!("{word};"));
    }
    for code in ["5", "5", "14"] {
        let err = channel
            .unary::<String, String>(FAIL, Request::new(code.to_owned()))
            .await
            .unwrap_err();
        assert_ne!(err.code(), Code::Ok);
    }
    let mut stream: ResponseStream<String> = channel
        .server_streaming(COUNT, Request::new("3:x".to_owned()))
        .await
        .unwrap();
    while stream.message().await.unwrap().is_some() {}
    let parts = IterStream(["p".to_owned(), "q".to_owned()].into_iter());
    let reply: Response<String> = channel
        .client_streaming(CONCAT, Request::new(parts))
        .await
        .unwrap();
    assert_eq!(reply.into_inner(), "pq");
    let (mut sink, mut stream) = channel
        .bidi::<String, String>(CHAT, Request::new(()))
        .await
        .unwrap();
    for word in ["m", "n"] {
        sink.send(word.to_owned()).await.unwrap();
        assert!(stream.message().await.unwrap().is_some());
    }
    sink.finish();
    assert_eq!(stream.message().await.unwrap(), None);
    let err = anonymous
        .unary::<String, String>(ECHO, Request::new("no token".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

/// Runs the Python checker against `url`; returns its lines.
fn scrape_with_python(url: &str) -> Vec<String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let python = root.join("target/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/peers/setup.sh (it installs prometheus_client)",
        python.display()
    );
    let output = Command::new(python)
        .arg(root.join("tests/python/metrics_check.py"))
        .arg(url)
        .output()
        .expect("run metrics_check.py");
    assert!(
        output.status.success(),
        "metrics_check.py failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The samples as "name labels" -> value.
fn samples(lines: &[String]) -> BTreeMap<String, f64> {
    lines
        .iter()
        .filter_map(|line| line.strip_prefix("SAMPLE "))
        .map(|rest| {
            let (key, value) = rest.rsplit_once(' ').unwrap();
            (key.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// The label string the checker prints for one method.
fn labels(kind: &str, method: &str) -> String {
    format!("grpc_method={method},grpc_service=test.Kit,grpc_type={kind}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_parses_exact_counts_for_a_known_mix_of_calls() {
    let metrics = Metrics::new();
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let server = kit_support::start(
        Server::builder()
            .interceptor(Done(done_tx))
            .interceptor(metrics.clone())
            .interceptor(BearerAuth::new(["t0ken"])),
    )
    .await;
    let channel = Channel::builder(&server.url())
        .unwrap()
        .interceptor(metrics.clone())
        .interceptor(BearerToken::new("t0ken").unwrap().allow_plaintext())
        .connect()
        .await
        .unwrap();
    let anonymous = Channel::builder(&server.url())
        .unwrap()
        .interceptor(metrics.clone())
        .connect()
        .await
        .unwrap();
    timeout(STEP, make_calls(&channel, &anonymous))
        .await
        .expect("calls in time");
    for _ in 0..10 {
        timeout(STEP, done.recv())
            .await
            .expect("server call ended")
            .unwrap();
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let endpoint = tokio::spawn(metrics.clone().serve_with_shutdown(listener, async move {
        let _ = stopped.await;
    }));
    let lines = tokio::task::spawn_blocking(move || scrape_with_python(&url))
        .await
        .unwrap();
    let _ = stop.send(());
    endpoint.await.unwrap().unwrap();

    for family in ["started", "handled", "msg_received", "msg_sent"] {
        for side in ["server", "client"] {
            let line = format!("TYPE grpc_{side}_{family} counter");
            assert!(lines.contains(&line), "missing {line:?}\n{lines:#?}");
        }
    }
    for side in ["server", "client"] {
        let line = format!("TYPE grpc_{side}_handling_seconds histogram");
        assert!(lines.contains(&line), "missing {line:?}");
    }
    assert!(lines.contains(&"HTTP GET / 404".to_owned()));
    assert!(lines.contains(&"HTTP POST /metrics 405".to_owned()));

    let got = samples(&lines);
    let unary = |m| labels("unary", m);
    let (count, concat, chat) = (
        labels("server_stream", "Count"),
        labels("client_stream", "Concat"),
        labels("bidi_stream", "Chat"),
    );
    let mut want: Vec<(String, f64)> = Vec::new();
    // (method labels, started, received by server, sent by server)
    let rows = [
        (unary("Echo"), 4.0, 3.0, 3.0),
        (unary("Fail"), 3.0, 3.0, 0.0),
        (count.clone(), 1.0, 1.0, 3.0),
        (concat.clone(), 1.0, 2.0, 1.0),
        (chat.clone(), 1.0, 2.0, 2.0),
    ];
    for (labels, started, server_received, server_sent) in &rows {
        want.push((format!("grpc_server_started_total {labels}"), *started));
        want.push((format!("grpc_client_started_total {labels}"), *started));
        want.push((
            format!("grpc_server_msg_received_total {labels}"),
            *server_received,
        ));
        want.push((format!("grpc_server_msg_sent_total {labels}"), *server_sent));
        want.push((
            format!("grpc_server_handling_seconds_count {labels}"),
            *started,
        ));
        want.push((
            format!("grpc_client_handling_seconds_count {labels}"),
            *started,
        ));
        let inf = format!("grpc_server_handling_seconds_bucket {labels},le=+Inf");
        want.push((inf, *started));
    }
    // The client sent the rejected call's message before the server said no.
    want.push((format!("grpc_client_msg_sent_total {}", unary("Echo")), 4.0));
    want.push((
        format!("grpc_client_msg_received_total {}", unary("Echo")),
        3.0,
    ));
    want.push((format!("grpc_client_msg_sent_total {concat}"), 2.0));
    want.push((format!("grpc_client_msg_received_total {count}"), 3.0));
    want.push((format!("grpc_client_msg_received_total {chat}"), 2.0));
    let handled = [
        ("Echo", "unary", "OK", 3.0),
        ("Echo", "unary", "UNAUTHENTICATED", 1.0),
        ("Fail", "unary", "NOT_FOUND", 2.0),
        ("Fail", "unary", "UNAVAILABLE", 1.0),
        ("Count", "server_stream", "OK", 1.0),
        ("Concat", "client_stream", "OK", 1.0),
        ("Chat", "bidi_stream", "OK", 1.0),
    ];
    for (method, kind, code, n) in handled {
        let labels = format!("grpc_code={code},{}", labels(kind, method));
        want.push((format!("grpc_server_handled_total {labels}"), n));
        want.push((format!("grpc_client_handled_total {labels}"), n));
    }
    for (key, value) in &want {
        assert_eq!(got.get(key), Some(value), "{key}\n{lines:#?}");
    }
    // Exactly these handled series, on each side: no code that did not happen.
    for side in ["server", "client"] {
        let prefix = format!("grpc_{side}_handled_total ");
        let n = got.keys().filter(|k| k.starts_with(&prefix)).count();
        assert_eq!(n, handled.len(), "{side}: {lines:#?}");
    }
}

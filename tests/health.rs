//! `grpc.health.v1.Health` against real peers: grpc-go's health client (Debian's grpc-go 1.33,
//! `tests/go/src/bare-grpc-kit/health-client`) checks and watches our server while the test
//! flips statuses through a `HealthReporter`; grpc-go's own client-side health checking follows
//! them; and our client checks the rules the peers cannot see (health-checking.md).
//!
//! ```text
//!   test ── HealthReporter::set_* ──▶ server (in-process, 127.0.0.1:0) ◀── Go health-client
//!     ▲                                                                       │ stdout lines
//!     └──────────────── "status SERVING" / "state READY" ◀────────────────────┘
//! ```
//!
//! Each change is made only after the peer has reported the previous one, so the test never
//! sleeps, and every wait is bounded by `STEP`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use bare_grpc::services::health::{
    HealthCheckRequest, HealthClient, HealthReporter, ServingStatus, health_service,
};
use bare_grpc::{Channel, Code, Request, Server};
use common::TestServer;
use tokio::sync::mpsc;
use tokio::time::timeout;

/// Bound on each awaited event.
const STEP: Duration = Duration::from_secs(15);
/// Bound on the Go build (a cold build compiles grpc-go from source).
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Builds the Go peers once per test binary (`tests/go/kit-build.sh`).
fn health_client_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let script = common::repo_root().join("tests/go/kit-build.sh");
        let out = common::run_peer(Command::new(&script), BUILD_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed; run tests/peers/setup.sh if Go is missing\n{stdout}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .find(|line| line.ends_with("/bare-grpc-health-client"))
            .map(PathBuf::from)
            .expect("kit-build.sh printed the health client's path")
    })
}

/// Our server with health only; the reporter starts with `""` SERVING.
async fn start() -> (TestServer, HealthReporter) {
    let (reporter, health) = health_service();
    let server = TestServer::start(Server::builder().add_service(health).build()).await;
    (server, reporter)
}

/// One `health-client check` run: (exit code, stdout).
async fn go_check(server: &TestServer, service: &str, deadline: &str) -> (i32, String) {
    let mut cmd = Command::new(health_client_binary());
    cmd.args(["check", "--addr", &server.addr.to_string()])
        .args(["--service", service, "--timeout", deadline]);
    let out = tokio::task::spawn_blocking(move || common::run_peer(cmd, STEP))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let code = out.status.code().unwrap_or(-1);
    eprintln!("{stdout} ({code}) {}", String::from_utf8_lossy(&out.stderr));
    (code, stdout)
}

/// A long-running Go peer: its stdout lines arrive on a channel; closing its stdin stops it.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let mut child = Command::new(health_client_binary())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Go health client");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    /// The next line, within `STEP`.
    async fn next(&mut self) -> String {
        match timeout(STEP, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the Go peer exited early"),
            Err(_) => panic!("no line from the Go peer within {STEP:?}"),
        }
    }

    /// Closes stdin (the peer's stop signal) and returns the lines it prints until it exits.
    async fn stop(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        while let Ok(Some(line)) = timeout(STEP, self.lines.recv()).await {
            rest.push(line);
        }
        rest
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        // Only reached with the peer still running when an assertion failed.
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Kubernetes-style probe: connect, then one Check with a 100 ms deadline
/// (grpc_health_probe's exit codes: 0 SERVING, 4 another status, 3 the call failed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_probe_checks_under_a_short_deadline() {
    let (server, reporter) = start().await;
    reporter.set_serving("grpc.testing.TestService");
    reporter.set_not_serving("paused.Svc");

    assert_eq!(
        go_check(&server, "", "100ms").await,
        (0, "status SERVING".into())
    );
    assert_eq!(
        go_check(&server, "grpc.testing.TestService", "100ms").await,
        (0, "status SERVING".into())
    );
    assert_eq!(
        go_check(&server, "paused.Svc", "100ms").await,
        (4, "status NOT_SERVING".into())
    );
    let (code, out) = go_check(&server, "no.Such", "100ms").await;
    assert_eq!(code, 3, "{out}");
    assert!(out.starts_with("error NOT_FOUND: "), "{out}");

    // The probe sees a change at once: no caching between the reporter and Check.
    reporter.set_not_serving("");
    assert_eq!(
        go_check(&server, "", "100ms").await,
        (4, "status NOT_SERVING".into())
    );
}

/// grpc-go's Watch: the current status at once, then exactly one message per change, and
/// SERVICE_UNKNOWN (not an error) for a service with no status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_watch_gets_every_change() {
    let (server, reporter) = start().await;
    let addr = server.addr.to_string();
    let mut peer = Peer::spawn(&["watch", "--addr", &addr, "--service", "flip.Svc"]);

    assert_eq!(peer.next().await, "status SERVICE_UNKNOWN");
    reporter.set_serving("flip.Svc");
    assert_eq!(peer.next().await, "status SERVING");
    reporter.set_not_serving("flip.Svc");
    assert_eq!(peer.next().await, "status NOT_SERVING");
    // Setting the status it already has sends nothing: the next line is the next change.
    reporter.set_not_serving("flip.Svc");
    reporter.set_serving("flip.Svc");
    assert_eq!(peer.next().await, "status SERVING");
    reporter.clear_status("flip.Svc");
    assert_eq!(peer.next().await, "status SERVICE_UNKNOWN");

    // The client cancels (its context ends when stdin closes); the call ends CANCELLED on
    // its side and our handler is dropped.
    assert_eq!(peer.stop().await, ["end CANCELED"]);
}

/// grpc-go's client-side health checking (`healthCheckConfig` in the service config): grpc-go
/// itself runs Watch on our server and takes the connection out of service while it reports
/// NOT_SERVING.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_client_side_health_checking_follows_the_status() {
    let (server, reporter) = start().await;
    reporter.set_not_serving("lb.Svc");
    let addr = server.addr.to_string();
    let mut peer = Peer::spawn(&["balancer", "--addr", &addr, "--service", "lb.Svc"]);

    assert_eq!(peer.next().await, "state TRANSIENT_FAILURE");
    reporter.set_serving("lb.Svc");
    assert_eq!(peer.next().await, "state READY");
    reporter.set_not_serving("lb.Svc");
    assert_eq!(peer.next().await, "state TRANSIENT_FAILURE");
    reporter.set_serving("lb.Svc");
    assert_eq!(peer.next().await, "state READY");
    peer.stop().await;
}

/// Our own client: NOT_FOUND for an unknown service, a 100 ms deadline is plenty, and a Watch
/// of an unknown service stays open and sees the service appear.
#[tokio::test]
async fn check_and_watch_from_our_client() {
    let (server, reporter) = start().await;
    let client = HealthClient::new(Channel::lazy(&server.addr.to_string()).unwrap());
    let ask = |service: &str| {
        let mut request = Request::new(HealthCheckRequest {
            service: service.into(),
        });
        request.set_timeout(Duration::from_millis(100));
        request
    };

    let serving = timeout(STEP, client.check(ask(""))).await.unwrap().unwrap();
    assert_eq!(serving.get_ref().status(), ServingStatus::Serving);
    let unknown = timeout(STEP, client.check(ask("no.Such")))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);

    let mut watch = timeout(
        STEP,
        client.watch(HealthCheckRequest {
            service: "late.Svc".into(),
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let first = timeout(STEP, watch.message()).await.unwrap().unwrap();
    assert_eq!(
        first.map(|m| m.status()),
        Some(ServingStatus::ServiceUnknown)
    );
    reporter.set_serving("late.Svc");
    let second = timeout(STEP, watch.message()).await.unwrap().unwrap();
    assert_eq!(second.map(|m| m.status()), Some(ServingStatus::Serving));

    // Check now finds it.
    let found = timeout(STEP, client.check(ask("late.Svc")))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.get_ref().status(), ServingStatus::Serving);
}

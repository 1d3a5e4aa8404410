//! Keepalive (gRFC A8) and connection age (gRFC A9) against grpc-go (Debian's grpc-go 1.33,
//! `tests/go/src/bare-grpc-kit/keepalive-peer`, built by `tests/go/keepalive-build.sh`), with
//! `tests/ping_relay` between the two to see each PING and GOAWAY on the wire.
//!
//! ```text
//!   grpc-go client (ClientParameters) ──▶ ping_relay ──▶ our server (keepalive_enforcement)
//!   our client (ChannelBuilder::keepalive) ──▶ ping_relay ──▶ grpc-go server (EnforcementPolicy,
//!                                                             ServerParameters)
//! ```
//!
//! - grpc-go's client pinging every 10 s with a Watch call open, against our policy of one
//!   ping per 60 s: the third strike gets GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"); the
//!   Watch call in flight on that connection still gets the next status; grpc-go's next
//!   connection pings every 20 s, not 10 (it doubled its time, as A8 says).
//! - our client pinging every 10 s against grpc-go's EnforcementPolicy (MinTime 60 s): grpc-go
//!   answers too_many_pings, our channel doubles its keepalive time, and calls go on.
//! - grpc-go's MaxConnectionAge (1 s) closes our connection gracefully: calls made throughout
//!   never fail, over several connections.
//!
//! Time: grpc-go and A8 keep keepalive at 10 s or more, so the first two tests take about a
//! minute and 40 s; they run in parallel.

mod common;
mod ping_relay;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use bare_grpc::services::health::{HealthCheckRequest, HealthClient, health_service};
use bare_grpc::{Channel, Request, Server};
use common::TestServer;
use ping_relay::PingRelay;
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout};

/// Bound on the Go build (a cold build compiles grpc-go from source).
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);
/// ENHANCE_YOUR_CALM (RFC 9113 §7).
const ENHANCE_YOUR_CALM: u32 = 0xb;

/// Builds the Go peer once per test binary.
fn peer_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let script = common::repo_root().join("tests/go/keepalive-build.sh");
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
            .find(|line| line.ends_with("/bare-grpc-keepalive-peer"))
            .map(PathBuf::from)
            .expect("keepalive-build.sh printed the peer's path")
    })
}

/// A running Go peer: its stdout lines on a channel; closing stdin stops it.
struct Peer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Peer {
    fn spawn(args: &[&str]) -> Peer {
        let mut child = Command::new(peer_binary())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Go keepalive peer");
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

    /// The next line, within `bound`.
    async fn next(&mut self, bound: Duration) -> String {
        match timeout(bound, self.lines.recv()).await {
            Ok(Some(line)) => line,
            Ok(None) => panic!("the Go peer exited early"),
            Err(_) => panic!("no line from the Go peer within {bound:?}"),
        }
    }

    /// Closes stdin and returns the lines printed until it exits.
    async fn stop(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let mut rest = Vec::new();
        while let Ok(Some(line)) = timeout(Duration::from_secs(10), self.lines.recv()).await {
            rest.push(line);
        }
        rest
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (bounded) until `check` holds, looking every 100 ms.
async fn eventually(bound: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + bound;
    while !check() {
        assert!(Instant::now() < end, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// grpc-go's keepalive client (Time 10 s, PermitWithoutStream) against our enforcement
/// (one ping per 60 s): see the module doc. Strikes: grpc-go's first keepalive ping follows
/// the server's DATA (A8 forgives it), the next three are strikes, the third answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_go_client_gets_too_many_pings_and_backs_off() {
    let (reporter, health) = health_service();
    let server = TestServer::start(
        Server::builder()
            .add_service(health)
            .keepalive_enforcement(Duration::from_secs(60), false)
            .drain_timeout(Duration::from_secs(60))
            .build(),
    )
    .await;
    let relay = PingRelay::start(server.addr).await;
    let mut client = Peer::spawn(&[
        "client",
        "--addr",
        &relay.addr.to_string(),
        "--time",
        "10s",
        "--timeout",
        "5s",
        "--permit",
    ]);
    let step = Duration::from_secs(15);
    assert_eq!(client.next(step).await, "check SERVING");
    assert_eq!(client.next(step).await, "status SERVING");
    eventually(Duration::from_secs(60), "our too_many_pings GOAWAY", || {
        !relay.goaways(0).is_empty()
    })
    .await;
    let (last, code, debug, answered_at) = relay.goaways(0).remove(0);
    assert_eq!(code, ENHANCE_YOUR_CALM);
    assert_eq!(debug, b"too_many_pings");
    assert_eq!(last, 3, "the Check (1) and the Watch (3) were processed");
    // The Watch call in flight on the answered connection is not lost: it sees the next change.
    reporter.set_not_serving("");
    assert_eq!(client.next(step).await, "status NOT_SERVING");
    // grpc-go reconnects at once; its new connection pings after 20 s (doubled), not 10 s.
    eventually(
        Duration::from_secs(10),
        "grpc-go's second connection",
        || relay.opened(1).is_some(),
    )
    .await;
    let second = relay.opened(1).unwrap();
    tokio::time::sleep_until(second + Duration::from_secs(25)).await;
    let pings = relay.pings(1);
    assert!(
        !pings.is_empty(),
        "grpc-go kept pinging on its new connection"
    );
    let first = pings[0] - second;
    assert!(
        first >= Duration::from_secs(19),
        "first ping on the new connection after {first:?}: the time was not doubled"
    );
    for (last, ..) in relay.goaways(0) {
        assert_eq!(last, 3, "a later GOAWAY raised the last-stream-id");
    }
    assert!(answered_at - relay.opened(0).unwrap() < Duration::from_secs(45));
    let rest = client.stop().await;
    assert!(
        rest.iter()
            .all(|l| !l.starts_with("end ") || l == "end Canceled"),
        "{rest:?}"
    );
}

/// Our keepalive client (10 s, without calls permitted) against grpc-go's EnforcementPolicy
/// (MinTime 60 s, PermitWithoutStream): grpc-go's third strike gets GOAWAY too_many_pings and
/// closes; our channel doubles its keepalive time, and the next call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_doubles_its_keepalive_time_on_grpc_go_too_many_pings() {
    let mut server = Peer::spawn(&["server", "--min_time", "60s", "--permit"]);
    let line = server.next(Duration::from_secs(30)).await;
    let port: u16 = line
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let relay = PingRelay::start(([127, 0, 0, 1], port).into()).await;
    let channel = Channel::builder(&relay.addr.to_string())
        .unwrap()
        .keepalive(Duration::from_secs(10), Duration::from_secs(5))
        .unwrap()
        .keepalive_permit_without_calls(true)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let health = HealthClient::new(channel.clone());
    health
        .check(Request::new(HealthCheckRequest::default()))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(60),
        "grpc-go's too_many_pings GOAWAY",
        || !relay.goaways(0).is_empty(),
    )
    .await;
    let (_, code, debug, _) = relay.goaways(0).remove(0);
    assert_eq!(
        (code, debug.as_slice()),
        (ENHANCE_YOUR_CALM, &b"too_many_pings"[..])
    );
    eventually(
        Duration::from_secs(10),
        "our doubled keepalive time",
        || channel.keepalive_time() == Some(Duration::from_secs(20)),
    )
    .await;
    let reply = health
        .check(Request::new(HealthCheckRequest::default()))
        .await
        .unwrap();
    assert_eq!(reply.get_ref().status, 1, "SERVING");
    let rest = server.stop().await;
    assert!(rest.iter().any(|l| l == "calls 2"), "{rest:?}");
}

/// grpc-go's MaxConnectionAge (1 s, grace 5 s) against our client making calls for 4 s: the
/// server's graceful GOAWAYs move us to new connections and no call fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_go_max_connection_age_closes_our_connection_gracefully() {
    let mut server = Peer::spawn(&["server", "--max_age", "1s", "--max_age_grace", "5s"]);
    let line = server.next(Duration::from_secs(30)).await;
    let port: u16 = line
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let channel = Channel::lazy(&format!("127.0.0.1:{port}")).unwrap();
    let health = HealthClient::new(channel);
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < Duration::from_secs(4) {
        let mut request = Request::new(HealthCheckRequest::default());
        request.set_timeout(Duration::from_secs(5));
        health.check(request).await.unwrap();
        calls += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut lines = Vec::new();
    lines.extend(server.stop().await);
    let begins = lines.iter().filter(|l| *l == "conn begin").count();
    assert!(begins >= 3, "connections replaced by age: {lines:?}");
    assert!(lines.contains(&format!("calls {calls}")), "{lines:?}");
}

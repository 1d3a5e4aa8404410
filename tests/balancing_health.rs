//! Health-checked round_robin (gRFC A17) against real servers: two of ours (their
//! `HealthReporter` flipped by the test) and a grpc-go server with grpc-go's own health server
//! (`tests/go/src/bare-grpc-kit/health-server`, Debian's grpc-go 1.33, flipped through its
//! stdin), all on loopback ports chosen by the system.
//!
//! ```text
//!   test ── set_not_serving ──▶ ours A, ours B ◀── Watch("bare.Backend") ── our channel
//!     └──── "not_serving" ────▶ grpc-go G     ◀── Watch("bare.Backend") ──┘  round_robin
//!                                            ◀── Health/Check("") calls (the counted workload)
//! ```
//!
//! - a NOT_SERVING backend stops getting calls, and gets them again once SERVING; a stream of
//!   `wait_for_ready` calls running through every flip never fails;
//! - every backend NOT_SERVING: a fail-fast call gets UNAVAILABLE naming the service and the
//!   answer, the channel is TRANSIENT_FAILURE, a `wait_for_ready` call waits and succeeds
//!   once one backend is SERVING again (the config given as a service config JSON);
//! - servers without the health service (ours, and grpc-go's interop server) answer Watch
//!   with UNIMPLEMENTED and count as healthy.
//!
//! A17 allows calls already under way when a backend flips to reach it (one round trip), so
//! each check first waits, bounded, until the flipped backend's count stops moving.

mod common;
mod go;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, mpsc};
use std::time::{Duration, Instant};

use bare_grpc::client::{ConnectivityState, LoadBalancingPolicy};
use bare_grpc::interceptor::{CallInfo, Interceptor};
use bare_grpc::services::health::{
    HealthCheckRequest, HealthClient, HealthReporter, health_service,
};
use bare_grpc::{Channel, Code, Metadata, Request, Server, Status};

/// The service every backend's health is watched under.
const SERVICE: &str = "bare.Backend";
/// The workload's method; counted on our servers.
const CHECK: &str = "/grpc.health.v1.Health/Check";
/// Bound on each wait in a test.
const STEP: Duration = Duration::from_secs(15);
/// Bound on the Go build (a cold build compiles grpc-go from source).
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Counts the workload's calls a server admitted (not the Watch streams).
#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

impl Interceptor for Count {
    type State = ();
    fn on_start(&self, info: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
        if info.path() == CHECK || info.path() == EMPTY_CALL {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// A backend whose health the test flips.
enum Backend {
    /// Ours: its reporter and its count.
    Ours(HealthReporter, Count),
    /// grpc-go's, driven over stdin/stdout; killed on drop.
    Go(GoHealthServer),
}

impl Backend {
    /// Our server with the health service, `SERVICE` SERVING, counting.
    async fn ours() -> (Backend, SocketAddr) {
        let (reporter, health) = health_service();
        reporter.set_serving(SERVICE);
        let count = Count::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::builder()
            .add_service(health)
            .interceptor(count.clone())
            .build();
        tokio::spawn(server.serve(listener));
        (Backend::Ours(reporter, count), addr)
    }

    /// The grpc-go health server, `SERVICE` SERVING.
    fn go() -> (Backend, SocketAddr) {
        let (go, addr) = GoHealthServer::start();
        (Backend::Go(go), addr)
    }

    fn set_serving(&mut self, serving: bool) {
        match self {
            Backend::Ours(reporter, _) if serving => reporter.set_serving(SERVICE),
            Backend::Ours(reporter, _) => reporter.set_not_serving(SERVICE),
            Backend::Go(go) => {
                let answer = go.command(if serving { "serving" } else { "not_serving" });
                assert_eq!(answer, "ok");
            }
        }
    }

    fn count(&mut self) -> usize {
        match self {
            Backend::Ours(_, count) => count.0.load(Ordering::SeqCst),
            Backend::Go(go) => {
                let answer = go.command("count");
                answer
                    .strip_prefix("count ")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("grpc-go health-server said {answer:?}"))
            }
        }
    }
}

/// `tests/go/kit-build.sh`'s health server, built once per test binary.
fn go_binary() -> &'static PathBuf {
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
            .find(|line| line.ends_with("/bare-grpc-health-server"))
            .map(PathBuf::from)
            .expect("kit-build.sh printed the health server's path")
    })
}

/// The grpc-go health server process.
struct GoHealthServer {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
}

impl GoHealthServer {
    fn start() -> (GoHealthServer, SocketAddr) {
        let mut child = Command::new(go_binary())
            .args(["--service", SERVICE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the grpc-go health server");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut go = GoHealthServer {
            child,
            stdin,
            lines,
        };
        let first = go.line();
        let port: u16 = first
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("grpc-go health-server said {first:?}"));
        (go, SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn line(&mut self) -> String {
        self.lines
            .recv_timeout(STEP)
            .expect("the grpc-go health server answers")
    }

    /// One command, one answer line.
    fn command(&mut self, command: &str) -> String {
        writeln!(self.stdin, "{command}").unwrap();
        self.stdin.flush().unwrap();
        self.line()
    }
}

impl Drop for GoHealthServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One workload call: `Check("")`, which every backend answers SERVING.
async fn check(channel: &Channel, wait_for_ready: bool) -> Result<(), Status> {
    let mut request = Request::new(HealthCheckRequest {
        service: String::new(),
    });
    request.set_timeout(Duration::from_secs(5));
    request.set_wait_for_ready(wait_for_ready);
    HealthClient::new(channel.clone())
        .check(request)
        .await
        .map(|_| ())
}

/// Each backend's count.
fn counts(backends: &mut [Backend]) -> Vec<usize> {
    backends.iter_mut().map(Backend::count).collect()
}

/// `n` fail-fast calls; returns how many each backend got.
async fn spread(channel: &Channel, backends: &mut [Backend], n: usize) -> Vec<usize> {
    let before = counts(backends);
    for _ in 0..n {
        check(channel, false).await.expect("a fail-fast call");
    }
    let after = counts(backends);
    after.iter().zip(&before).map(|(a, b)| a - b).collect()
}

/// Waits (bounded) until 15 calls in a row send nothing to backend `which`: calls picked
/// before the channel heard NOT_SERVING may still reach it (A17 § Race Conditions).
async fn settle_away_from(channel: &Channel, backends: &mut [Backend], which: usize) {
    let start = Instant::now();
    loop {
        let got = spread(channel, backends, 15).await;
        if got[which] == 0 {
            return;
        }
        assert!(
            start.elapsed() < STEP,
            "backend {which} still gets calls {STEP:?} after NOT_SERVING"
        );
    }
}

/// Waits (bounded) until backend `which` gets calls again.
async fn settle_onto(channel: &Channel, backends: &mut [Backend], which: usize) {
    let start = Instant::now();
    loop {
        let got = spread(channel, backends, 15).await;
        if got[which] > 0 {
            return;
        }
        assert!(
            start.elapsed() < STEP,
            "backend {which} gets no calls {STEP:?} after SERVING"
        );
    }
}

fn ipv4_target(addrs: &[SocketAddr]) -> String {
    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    format!("ipv4:{}", list.join(","))
}

/// wait_for_ready calls in a loop until `stop`: (succeeded, failures).
fn background_calls(
    channel: Channel,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, Vec<Status>)> {
    tokio::spawn(async move {
        let (mut ok, mut failed) = (0, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            match check(&channel, true).await {
                Ok(()) => ok += 1,
                Err(status) => failed.push(status),
            }
        }
        (ok, failed)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_serving_backends_get_no_calls_until_serving_again() {
    let (a, a_addr) = Backend::ours().await;
    let (b, b_addr) = Backend::ours().await;
    let (g, g_addr) = Backend::go();
    let mut backends = [a, b, g];
    let channel = Channel::builder(&ipv4_target(&[a_addr, b_addr, g_addr]))
        .unwrap()
        .load_balancing(LoadBalancingPolicy::RoundRobin)
        .health_check(SERVICE)
        .lazy();

    // Every backend answers SERVING: all three get calls.
    check(&channel, true).await.unwrap();
    settle_onto(&channel, &mut backends, 1).await;
    settle_onto(&channel, &mut backends, 2).await;
    let got = spread(&channel, &mut backends, 60).await;
    assert!(got.iter().all(|&n| n > 0), "all serving: {got:?}");

    let stop = Arc::new(AtomicBool::new(false));
    let background = background_calls(channel.clone(), stop.clone());

    // Ours B says NOT_SERVING: it gets no calls, A and grpc-go share them.
    backends[1].set_serving(false);
    settle_away_from(&channel, &mut backends, 1).await;
    let got = spread(&channel, &mut backends, 60).await;
    assert!(
        got[1] == 0 && got[0] > 0 && got[2] > 0,
        "B not serving: {got:?}"
    );

    // grpc-go's health server says NOT_SERVING too: only A is left.
    backends[2].set_serving(false);
    settle_away_from(&channel, &mut backends, 2).await;
    let got = spread(&channel, &mut backends, 60).await;
    // (A's count includes the background calls.)
    assert!(
        got[0] >= 60 && got[1] == 0 && got[2] == 0,
        "B and grpc-go not serving: {got:?}"
    );

    // Both SERVING again: both get calls again.
    backends[1].set_serving(true);
    backends[2].set_serving(true);
    settle_onto(&channel, &mut backends, 1).await;
    settle_onto(&channel, &mut backends, 2).await;
    let got = spread(&channel, &mut backends, 60).await;
    assert!(got.iter().all(|&n| n > 0), "all serving again: {got:?}");

    stop.store(true, Ordering::SeqCst);
    let (ok, failed) = background.await.unwrap();
    assert!(failed.is_empty(), "wait_for_ready calls failed: {failed:?}");
    assert!(ok > 0, "the wait_for_ready calls ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_not_serving_fails_fast_naming_the_health_answer() {
    let (a, a_addr) = Backend::ours().await;
    let (b, b_addr) = Backend::ours().await;
    let mut backends = [a, b];
    // As grpc-go takes it: round_robin and healthCheckConfig from a service config.
    let config = format!(
        r#"{{"loadBalancingConfig": [{{"round_robin": {{}}}}], "healthCheckConfig": {{"serviceName": "{SERVICE}"}}}}"#
    );
    let channel = Channel::builder(&ipv4_target(&[a_addr, b_addr]))
        .unwrap()
        .service_config(&config)
        .unwrap()
        .lazy();
    check(&channel, true).await.unwrap();

    for backend in backends.iter_mut() {
        backend.set_serving(false);
    }
    let start = Instant::now();
    let status = loop {
        match check(&channel, false).await {
            Err(status) => break status,
            Ok(()) => assert!(start.elapsed() < STEP, "calls still succeed"),
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("NOT_SERVING") && status.message().contains(SERVICE),
        "{status:?}"
    );
    assert_eq!(
        channel.get_state(false),
        ConnectivityState::TransientFailure
    );
    // Fail-fast calls keep failing at once; the message stays the health answer.
    let status = check(&channel, false).await.unwrap_err();
    assert!(status.message().contains("NOT_SERVING"), "{status:?}");

    // A wait_for_ready call waits, and goes through once B is SERVING again.
    let waiting = tokio::spawn({
        let channel = channel.clone();
        async move { check(&channel, true).await }
    });
    let before = backends[1].count();
    backends[1].set_serving(true);
    tokio::time::timeout(STEP, waiting)
        .await
        .expect("the wait_for_ready call ends")
        .unwrap()
        .expect("the wait_for_ready call succeeds");
    assert_eq!(backends[1].count(), before + 1);
    assert_eq!(channel.get_state(false), ConnectivityState::Ready);
}

/// The interop test service's EmptyCall (counted on our server).
const EMPTY_CALL: &str = "/grpc.testing.TestService/EmptyCall";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_without_the_health_service_count_as_healthy() {
    // Ours with only the interop test service, and grpc-go's interop server: neither has
    // grpc.health.v1, so Watch ends UNIMPLEMENTED (A17: use the subchannel, do not retry).
    let count = Count::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ours = listener.local_addr().unwrap();
    let server = Server::builder()
        .add_service(common::test_service::test_service())
        .interceptor(count.clone())
        .build();
    tokio::spawn(server.serve(listener));
    let go = go::go_server();
    let channel = Channel::builder(&ipv4_target(&[ours, go]))
        .unwrap()
        .load_balancing(LoadBalancingPolicy::RoundRobin)
        .health_check(SERVICE)
        .lazy();

    let call = |wait_for_ready: bool| {
        let channel = channel.clone();
        async move {
            let mut request = Request::new(());
            request.set_timeout(Duration::from_secs(5));
            request.set_wait_for_ready(wait_for_ready);
            channel
                .unary::<(), ()>(EMPTY_CALL, request)
                .await
                .map(|_| ())
        }
    };
    call(true).await.unwrap();
    // Both subchannels usable: fail-fast calls succeed and reach both servers (grpc-go's
    // count is what ours did not get).
    let start = Instant::now();
    loop {
        let before = count.0.load(Ordering::SeqCst);
        for _ in 0..20 {
            call(false).await.expect("a fail-fast call");
        }
        let ours_got = count.0.load(Ordering::SeqCst) - before;
        if ours_got > 0 && ours_got < 20 {
            break;
        }
        assert!(
            start.elapsed() < STEP,
            "calls do not spread over both: ours got {ours_got} of 20"
        );
    }
    assert_eq!(channel.get_state(false), ConnectivityState::Ready);
}

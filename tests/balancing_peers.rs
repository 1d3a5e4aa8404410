//! Load balancing and Unix sockets with other implementations: grpc-go 1.33 (Debian's, built by
//! `tests/go/build.sh`) and grpcio (target/venv), each started here on loopback or a socket
//! in a fresh temporary directory, each stopped at the end.
//!
//! - grpc-go's client with round_robin (its manual resolver given three addresses) over three
//!   of our servers: 300 calls, each server's count within 100 ± 15, counted on our servers.
//! - our interop client (`--target ipv4:... --lb_policy round_robin`, `rpc_soak`) over two of
//!   our servers and one grpc-go server: our two are counted, the grpc-go server gets the
//!   rest (it counts nothing itself), each within 100 ± 15 of 300.
//! - Unix sockets: grpc-go's and grpcio's clients (`unix:///path`) against our `serve_unix`;
//!   our interop client (`--target unix:///path`, `rpc_soak` and `channel_soak`) against a
//!   grpc-go server listening on a socket.

mod common;
mod go;
mod python;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bare_grpc::interceptor::{CallInfo, Interceptor};
use bare_grpc::{Metadata, Server, Status};

/// Bound on one peer run.
const PEER_TIMEOUT: Duration = Duration::from_secs(120);

/// Counts the calls a server admitted.
#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

impl Interceptor for Count {
    type State = ();
    fn on_start(&self, _: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl Count {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Our interop server on a fresh loopback port, counting calls; stops when the runtime ends.
async fn ours(count: &Count) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .add_service(common::test_service::test_service())
        .interceptor(count.clone())
        .build();
    tokio::spawn(server.serve(listener));
    addr
}

/// A fresh directory for sockets, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("bare-grpc-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a peer to completion on the blocking pool; asserts it printed `PASS`.
async fn run_passing(cmd: Command, who: &'static str) -> String {
    let out = tokio::task::spawn_blocking(move || common::run_peer(cmd, PEER_TIMEOUT))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && stdout.contains("PASS"),
        "{who}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A grpc-go server, killed on drop.
struct GoServer(Child);

impl GoServer {
    /// Starts the grpc-go interop server with `args`; returns it and its first line.
    fn start(args: &[&str]) -> (GoServer, String) {
        let mut child = Command::new(&go::binaries().server)
            .args(args)
            .arg("--stop_on_stdin_eof")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the grpc-go server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let server = GoServer(child);
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(Ok(line))) => line,
            other => panic!("grpc-go server did not start: {other:?}"),
        };
        (server, line)
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn assert_near(counts: &[usize], total: usize, slack: usize) {
    let each = total / counts.len();
    for (i, n) in counts.iter().enumerate() {
        assert!(
            n.abs_diff(each) <= slack,
            "backend {i} got {n} of {total} calls (counts {counts:?})"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_go_client_round_robin_over_three_of_ours() {
    let counts = [Count::default(), Count::default(), Count::default()];
    let mut addrs = Vec::new();
    for count in &counts {
        addrs.push(ours(count).await.to_string());
    }
    let mut cmd = Command::new(&go::binaries().client);
    cmd.args([
        "--addresses",
        &addrs.join(","),
        "--lb_policy",
        "round_robin",
        "--test_case",
        "large_unary",
        "--repeat",
        "300",
        "--case_timeout",
        "60s",
    ]);
    run_passing(cmd, "grpc-go client, round_robin").await;
    // grpc-go sends its calls only once a subchannel is READY; the first few may all go to
    // the first one READY, hence the slack.
    assert_near(&counts.map(|c| c.get()), 300, 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_round_robin_over_two_of_ours_and_grpc_go() {
    let counts = [Count::default(), Count::default()];
    let a = ours(&counts[0]).await;
    let b = ours(&counts[1]).await;
    let (_go, line) = GoServer::start(&["--port", "0"]);
    let port: u16 = line.strip_prefix("listening on ").unwrap().parse().unwrap();
    let target = format!("ipv4:{a},{b},127.0.0.1:{port}");
    let mut cmd = Command::new(common::interop::rust_interop_client());
    cmd.args([
        "--target",
        &target,
        "--lb_policy",
        "round_robin",
        "--test_case",
        "rpc_soak",
        "--soak_iterations",
        "300",
    ]);
    run_passing(cmd, "our interop client, round_robin").await;
    let (x, y) = (counts[0].get(), counts[1].get());
    assert_near(&[x, y, 300 - x - y], 300, 15);
}

/// Our server on a Unix socket at `path`.
async fn ours_on_socket(path: &Path) {
    let listener = tokio::net::UnixListener::bind(path).unwrap();
    let server = Server::builder()
        .add_service(common::test_service::test_service())
        .build();
    tokio::spawn(server.serve_unix(listener));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_go_and_grpcio_clients_over_a_unix_socket() {
    let dir = TempDir::new("unix-ours");
    let path = dir.0.join("ours.sock");
    ours_on_socket(&path).await;
    let target = format!("unix://{}", path.display());
    assert!(target.starts_with("unix:///"));

    let mut cmd = Command::new(&go::binaries().client);
    cmd.args(["--target", &target, "--test_case", "large_unary"]);
    run_passing(cmd, "grpc-go client over a Unix socket").await;
    let mut cmd = Command::new(&go::binaries().client);
    cmd.args(["--target", &target, "--test_case", "ping_pong"]);
    run_passing(cmd, "grpc-go client over a Unix socket").await;

    // grpcio's own default `:authority` for a Unix socket is the percent-encoded path, which
    // the `http` crate (under h2) refuses, so h2 resets such a stream with PROTOCOL_ERROR
    // before our server sees it: the client sets `localhost` (tests/python/target_client.py).
    assert!(http::uri::Authority::try_from("tmp%2Fours.sock").is_err());
    let python = python::interpreter().clone();
    let mut cmd = Command::new(python);
    cmd.arg(common::repo_root().join("tests/python/target_client.py"))
        .arg(&target)
        .arg("20");
    run_passing(cmd, "grpcio client over a Unix socket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_to_grpc_go_over_a_unix_socket() {
    let dir = TempDir::new("unix-go");
    let path = dir.0.join("go.sock");
    let path_str = path.to_str().unwrap().to_owned();
    let (_go, line) = GoServer::start(&["--unix", &path_str]);
    assert!(line.contains(&path_str), "{line}");
    for (case, target) in [
        ("rpc_soak", format!("unix://{path_str}")),
        ("channel_soak", format!("unix:{path_str}")),
    ] {
        let mut cmd = Command::new(common::interop::rust_interop_client());
        cmd.args([
            "--target",
            &target,
            "--test_case",
            case,
            "--soak_iterations",
            "20",
        ]);
        run_passing(cmd, "our client to grpc-go over a Unix socket").await;
    }
}

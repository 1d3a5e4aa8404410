//! The ecommerce seeds (ProductInfo, OrderManagement) against grpc-go 1.33, both ways:
//! a grpc-go client checks our servers, and our generated clients run against a grpc-go server.
//!
//! ```text
//!   grpc-go client (tests/go/src/seeds/client) ──▶ bare-grpc server, in this process
//!   bare-grpc clients (the tour's demos)       ──▶ grpc-go server (tests/go/src/seeds/server)
//!                                              ──▶ bare-grpc server: same lines, word for word
//! ```
//!
//! The rule: a runtime is interoperable when a real peer cannot tell it from its own kind. The
//! grpc-go server implements the same behaviour as `examples/seeds/` (ids, sample orders,
//! status codes and messages), so the demos must print the same lines against either, and the
//! grpc-go client's checks must pass against either (the control run against grpc-go itself
//! proves the checks describe grpc-go's behaviour, not just ours).
//!
//! The peers are built by `tests/go/src/seeds/build.sh` from Debian's grpc-go and protoc, once
//! per test binary; every wait is bounded.

mod common;
#[path = "../examples/seeds/mod.rs"]
mod seeds;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use bare_grpc::{Channel, Server};
use common::TestServer;
use seeds::order_management::{self, OrderManagementService};
use seeds::product_info::{self, ProductInfoService};

/// Bound on the Go build (a cold build compiles grpc-go from source).
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Bound on one client run or server start.
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// The checks the grpc-go client runs, in order.
const CHECKS: [&str; 10] = [
    "product_add_get",
    "product_not_found",
    "product_concurrent_adds",
    "order_add_get",
    "order_not_found",
    "search_orders",
    "update_orders",
    "update_unknown_changes_nothing",
    "process_orders",
    "process_unknown",
];

/// The client and server binaries, built once per test binary.
fn go_peers() -> &'static (PathBuf, PathBuf) {
    static PEERS: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PEERS.get_or_init(|| {
        let script = common::repo_root().join("tests/go/src/seeds/build.sh");
        let out = common::run_peer(Command::new(&script), BUILD_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed ({}); run tests/peers/setup.sh if a tool is missing\n{stdout}\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let find = |suffix: &str| {
            let line = stdout
                .lines()
                .find(|l| l.ends_with(suffix))
                .unwrap_or_else(|| panic!("build.sh printed no {suffix}:\n{stdout}"));
            PathBuf::from(line)
        };
        (find("/seeds-client"), find("/seeds-server"))
    })
}

/// Our two ecommerce services, fresh.
async fn our_server() -> TestServer {
    let server = Server::builder()
        .add_service(ProductInfoService::server())
        .add_service(OrderManagementService::server())
        .build();
    TestServer::start(server).await
}

/// The grpc-go server, fresh; killed when dropped.
struct GoServer {
    child: Child,
    addr: SocketAddr,
}

impl GoServer {
    fn start() -> GoServer {
        let mut child = Command::new(&go_peers().1)
            .args(["--port", "0", "--stop_on_stdin_eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the grpc-go seeds server");
        let stdout = child.stdout.take().expect("stdout");
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = line_tx.send(line);
        });
        let line = match line_rx.recv_timeout(PEER_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("the grpc-go server printed no port within {PEER_TIMEOUT:?}");
            }
        };
        let port: u16 = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the grpc-go server: {line:?}"));
        GoServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }
}

impl Drop for GoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the grpc-go client's checks against `addr` and asserts every one passed.
async fn go_client_passes(addr: SocketAddr) {
    let client = go_peers().0.clone();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(client);
        cmd.arg(format!("--server_addr={addr}"));
        common::run_peer(cmd, PEER_TIMEOUT)
    })
    .await
    .expect("client runner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let expected: Vec<String> = CHECKS.iter().map(|c| format!("PASS {c}")).collect();
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        expected,
        "grpc-go client against {addr} ({})\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success());
}

/// The lines the ProductInfo and OrderManagement demos print against `addr`.
async fn demo_lines(addr: SocketAddr) -> Vec<String> {
    let channel = Channel::connect(&addr.to_string()).await.expect("connect");
    let mut lines = Vec::new();
    let mut say = |l: String| lines.push(l);
    product_info::demo(&channel, &mut say)
        .await
        .expect("ProductInfo demo");
    order_management::demo(&channel, &mut say)
        .await
        .expect("OrderManagement demo");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_go_client_passes_against_our_servers() {
    let server = our_server().await;
    go_client_passes(server.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_go_client_checks_hold_against_grpc_go_itself() {
    let go = tokio::task::spawn_blocking(GoServer::start)
        .await
        .expect("start");
    go_client_passes(go.addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_clients_see_the_same_from_grpc_go_as_from_us() {
    let go = tokio::task::spawn_blocking(GoServer::start)
        .await
        .expect("start");
    let ours = our_server().await;
    let from_go = demo_lines(go.addr).await;
    let from_us = demo_lines(ours.addr).await;
    assert_eq!(from_go, from_us);
    // And what they agree on is the documented behaviour, not a shared mistake.
    for line in [
        "<- NOT_FOUND no product with id \"0\"",
        "<- StringValue \"102, 103\"",
        "<- CombinedShipment shipment-1 to Mountain View, CA (full): 102, 104, 106",
        "<- CombinedShipment shipment-2 to San Jose, CA (remainder): 103, 105",
    ] {
        assert!(
            from_go.iter().any(|l| l == line),
            "missing {line:?} in {from_go:#?}"
        );
    }
}

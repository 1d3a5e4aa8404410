//! What the six interop suites share: the 18 case names (one macro, so every suite runs the
//! same list), the `PASS <case>` check, our interop client binary, and starting a peer server
//! that announces its port.
//!
//! ```text
//!  interop_go.rs          grpc-go client  ─▶ our server       ┐
//!  interop_python.rs      grpcio client   ─▶ our server       │ interop_cases!(run_case)
//!  interop_go_server.rs   our client      ─▶ grpc-go server   │ → one #[test] per case
//!  interop_python_server.rs our client    ─▶ grpcio server    │
//!  interop_node.rs        grpc-js client  ─▶ our server       │
//!  interop_node_server.rs our client      ─▶ grpc-js server   ┘
//! ```
//!
//! Peer servers are started with `--port 0 --stop_on_stdin_eof`: they pick their own port and
//! print `listening on <port>` (the event we wait for, no sleeping), and they stop when our test
//! binary exits and their stdin closes, so nothing outlives the test run.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::Duration;

/// One `#[test]` per case of gRPC's interop-test-descriptions.md, each calling `$run("case")`.
#[allow(unused_macros)] // used by the interop suites only; every test binary compiles common
macro_rules! interop_cases {
    ($run:path) => {
        /// Zero-size messages both ways (EmptyCall).
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#empty_unary>
        #[test]
        fn empty_unary() {
            $run("empty_unary");
        }
        /// A 271828-byte request and a 314159-byte response: flow control on one unary call.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#large_unary>
        #[test]
        fn large_unary() {
            $run("large_unary");
        }
        /// Four request messages, one response carrying their aggregated size (74922).
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_streaming>
        #[test]
        fn client_streaming() {
            $run("client_streaming");
        }
        /// One request, four responses of sizes 31415, 9, 2653, 58979, then OK.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_streaming>
        #[test]
        fn server_streaming() {
            $run("server_streaming");
        }
        /// Full duplex, one response per request in lock step, then half-close and OK.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#ping_pong>
        #[test]
        fn ping_pong() {
            $run("ping_pong");
        }
        /// A bidi call with no messages either way still ends with OK.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#empty_stream>
        #[test]
        fn empty_stream() {
            $run("empty_stream");
        }
        /// A 1 ms `grpc-timeout` on a call the server never answers ends DEADLINE_EXCEEDED.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#timeout_on_sleeping_server>
        #[test]
        fn timeout_on_sleeping_server() {
            $run("timeout_on_sleeping_server");
        }
        /// A client-streaming call cancelled before any message ends CANCELLED.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#cancel_after_begin>
        #[test]
        fn cancel_after_begin() {
            $run("cancel_after_begin");
        }
        /// A bidi call cancelled after its first response ends CANCELLED.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#cancel_after_first_response>
        #[test]
        fn cancel_after_first_response() {
            $run("cancel_after_first_response");
        }
        /// `grpc-status` and `grpc-message` chosen by the request come back, unary and bidi.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#status_code_and_message>
        #[test]
        fn status_code_and_message() {
            $run("status_code_and_message");
        }
        /// A status message with tabs, CR LF and non-ASCII survives percent-encoding exactly.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#special_status_message>
        #[test]
        fn special_status_message() {
            $run("special_status_message");
        }
        /// ASCII metadata echoed in headers and `-bin` metadata echoed in trailers, unary and bidi.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#custom_metadata>
        #[test]
        fn custom_metadata() {
            $run("custom_metadata");
        }
        /// An unknown method of a known service ends UNIMPLEMENTED.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#unimplemented_method>
        #[test]
        fn unimplemented_method() {
            $run("unimplemented_method");
        }
        /// A method of an unknown service ends UNIMPLEMENTED.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#unimplemented_service>
        #[test]
        fn unimplemented_service() {
            $run("unimplemented_service");
        }
        /// The server checks each request's compressed flag against `expect_compressed`: an
        /// uncompressed probe is refused with INVALID_ARGUMENT, a gzip request is accepted.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_compressed_unary>
        #[test]
        fn client_compressed_unary() {
            $run("client_compressed_unary");
        }
        /// The server sets the compressed flag of the response exactly when asked.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_compressed_unary>
        #[test]
        fn server_compressed_unary() {
            $run("server_compressed_unary");
        }
        /// One compressed and one uncompressed message on the same `grpc-encoding: gzip` stream.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_compressed_streaming>
        #[test]
        fn client_compressed_streaming() {
            $run("client_compressed_streaming");
        }
        /// The server compresses one streamed response and not the next, as each one asks.
        /// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_compressed_streaming>
        #[test]
        fn server_compressed_streaming() {
            $run("server_compressed_streaming");
        }
    };
}
#[allow(unused_imports)]
pub(crate) use interop_cases;

/// Bound on one client run: its calls carry 10 s deadlines; the rest is process start-up and
/// slack for a loaded 2-core machine.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs an interop client program (`client`: the binary plus any leading arguments) for one
/// case against `addr`, and asserts it exited 0 having printed `PASS <case>`.
pub fn run_client_case(mut client: Command, addr: SocketAddr, case: &str, who: &str) {
    client
        .arg(format!("--server_host={}", addr.ip()))
        .arg(format!("--server_port={}", addr.port()))
        .arg(format!("--test_case={case}"));
    // A TLS suite gives its own `--use_tls` flags (tests/tls_go.rs and the others).
    if !client
        .get_args()
        .any(|a| a.to_string_lossy().starts_with("--use_tls"))
    {
        client.arg("--use_tls=false");
    }
    let out = super::run_peer(client, CASE_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pass = format!("PASS {case}");
    assert!(
        out.status.success() && stdout.lines().any(|line| line.trim_end() == pass),
        "{who}, case {case}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
}

/// Our interop client (`examples/interop-client.rs`), built once per test binary with the
/// cargo that runs the tests (same profile, same target dir): `cargo test --test X` alone does
/// not build examples.
pub fn rust_interop_client() -> &'static PathBuf {
    static CLIENT: OnceLock<PathBuf> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(super::repo_root()).args([
            "build",
            "--quiet",
            "--example",
            "interop-client",
            "--message-format=json-render-diagnostics",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        // The TLS suites are built with `--features tls`, and so is their client.
        if cfg!(feature = "tls") {
            cmd.args(["--features", "tls"]);
        }
        let out = super::run_peer(cmd, Duration::from_secs(600));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "cargo build --example interop-client failed ({})\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
        );
        // One JSON object per line; the example's artifact line names its executable.
        stdout
            .lines()
            .filter(|line| line.contains("\"name\":\"interop-client\""))
            .find_map(|line| {
                let key = "\"executable\":\"";
                let rest = &line[line.find(key)? + key.len()..];
                Some(PathBuf::from(&rest[..rest.find('"')?]))
            })
            .unwrap_or_else(|| panic!("cargo reported no interop-client executable:\n{stdout}"))
    })
}

/// Stdin pipes of the peer servers started by this test binary: held until it exits, when
/// closing them stops the servers.
static PEER_STDINS: Mutex<Vec<ChildStdin>> = Mutex::new(Vec::new());

/// Starts a peer server (`cmd` already has `--port 0 --stop_on_stdin_eof`), waits for its
/// `listening on <port>` line, and returns its loopback address.
pub fn start_peer_server(mut cmd: Command, who: &str) -> SocketAddr {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {who}: {e}"));
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    // Read the first line on a thread so the wait has a bound; then keep draining stdout so
    // the server never blocks on a full pipe.
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = line_tx.send(lines.next());
        for _ in lines {}
    });
    let line = match line_rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Some(Ok(line))) => line,
        other => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{who} did not report its port: {other:?}");
        }
    };
    let port: u16 = line
        .strip_prefix("listening on ")
        .and_then(|port| port.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected first line from {who}: {line:?}"));
    PEER_STDINS.lock().unwrap().push(stdin);
    SocketAddr::from(([127, 0, 0, 1], port))
}

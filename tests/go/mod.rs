//! The grpc-go peers of the interop tests, for `tests/interop_go.rs` (grpc-go client against
//! our server) and `tests/interop_go_server.rs` (our client against the grpc-go server).
//!
//! ```text
//!   tests/go/build.sh ──► target/go/bin/bare-grpc-interop-client   (once per test binary)
//!                     └─► target/go/bin/bare-grpc-interop-server
//!
//!   go_server():  spawn server --port 0 --stop_on_stdin_eof
//!                 read "listening on <port>"  ──►  127.0.0.1:<port>
//!                 keep its stdin open; the test binary's exit closes it, the server stops
//! ```
//!
//! Why this shape: Debian ships grpc-go 1.33 as source and no interop programs, so our own
//! Go client and server (`tests/go/src/bare-grpc-interop/`) are built from Debian's packages
//! at test time, in GOPATH mode, with no network and nothing generated or compiled committed.
//! The server picks its own port (`--port 0`) and prints it, so there is no window between
//! choosing a free port and binding it, and no sleep: the first line of its stdout is the
//! event we wait for.
//!
//! What it does not do: install Go (`tests/peers/setup.sh` does), or stop the server before
//! the test binary exits (one server serves every case of the binary).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common;

/// Bound on `tests/go/build.sh`. A cold build compiles grpc-go from source (about 15 s
/// on an idle 2-core machine, longer while cargo builds beside it); a warm one, a second.
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// The two Go programs, built.
pub struct Binaries {
    /// The grpc-go interop client (`--server_host --server_port --test_case --use_tls`).
    pub client: PathBuf,
    /// The grpc-go interop server (`--port`, prints `listening on <port>`).
    pub server: PathBuf,
}

/// Builds the Go peers once per test binary (`tests/go/build.sh`) and returns their paths.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        if Command::new("go").arg("version").output().is_err() {
            panic!("`go` is not installed: run tests/peers/setup.sh");
        }
        let script = common::repo_root().join("tests/go/build.sh");
        let out = common::run_peer(Command::new(&script), BUILD_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed ({}); run tests/peers/setup.sh if a tool is missing\nstdout:\n{stdout}\nstderr:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr),
        );
        let find = |name: &str| {
            stdout
                .lines()
                .find(|line| line.ends_with(name))
                .map(PathBuf::from)
                .unwrap_or_else(|| panic!("build.sh printed no path ending in {name}:\n{stdout}"))
        };
        Binaries {
            client: find("/bare-grpc-interop-client"),
            server: find("/bare-grpc-interop-server"),
        }
    })
}

/// Starts the grpc-go interop server once per test binary on a free loopback port and
/// returns its address. It stops when the test binary exits (its stdin closes).
pub fn go_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let mut cmd = Command::new(&binaries().server);
        cmd.args(["--port", "0", "--stop_on_stdin_eof"]);
        common::interop::start_peer_server(cmd, "the grpc-go interop server")
    })
}

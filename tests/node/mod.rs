//! The grpc-js (Node) peers of the interop and seed tests, for `tests/interop_node.rs`
//! (grpc-js client against our server), `tests/interop_node_server.rs` (our client against a
//! grpc-js server) and `tests/seeds_node.rs` (grpc-js clients of the seed services).
//!
//! ```text
//!   tests/peers/setup.sh ──► target/node/node_modules/@grpc/{grpc-js,proto-loader}
//!                            (npm ci from tests/node/package-lock.json; never global)
//!   node()               ──► the `node` on the PATH, checked once per test binary
//!   script("x.js")       ──► tests/node/x.js (loads the contracts from proto/ at run time)
//!   node_server()        ──► interop_server.js --port 0 --stop_on_stdin_eof
//!                            "listening on <port>" ──► 127.0.0.1:<port>
//! ```
//!
//! Nothing is generated: the scripts read `proto/` with `@grpc/proto-loader`, as a grpc-js
//! user does. Without `node`, or without the packages under `target/node`, the tests fail and
//! say to run `tests/peers/setup.sh`; nothing is skipped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use crate::common;

/// The `node` binary, after checking once per test binary that it runs and that grpc-js and
/// proto-loader are installed under `target/node`.
pub fn node() -> &'static str {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        let version = Command::new("node").arg("--version").output();
        let version = match version {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            other => panic!("`node` does not run ({other:?}): run tests/peers/setup.sh"),
        };
        let modules = common::repo_root().join("target/node/node_modules/@grpc");
        for package in ["grpc-js", "proto-loader"] {
            let manifest = modules.join(package).join("package.json");
            assert!(
                manifest.exists(),
                "@grpc/{package} is not installed ({} missing; node {}): run tests/peers/setup.sh",
                manifest.display(),
                version.trim()
            );
        }
    });
    "node"
}

/// A script of `tests/node/`.
pub fn script(name: &str) -> PathBuf {
    common::repo_root().join("tests/node").join(name)
}

/// A `node tests/node/<name>` command.
pub fn command(name: &str) -> Command {
    let mut cmd = Command::new(node());
    cmd.arg(script(name));
    cmd
}

/// Starts the grpc-js interop server once per test binary; it stops when the binary exits.
pub fn node_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let mut cmd = command("interop_server.js");
        cmd.args(["--port", "0", "--stop_on_stdin_eof"]);
        common::interop::start_peer_server(cmd, "the grpc-js interop server")
    })
}

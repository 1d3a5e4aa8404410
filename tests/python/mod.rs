//! The grpcio peers of the interop tests, for `tests/interop_python.rs` (grpcio client against
//! our server) and `tests/interop_python_server.rs` (our client against a grpcio server).
//!
//! ```text
//!   tests/python/gen.sh ──► target/py-gen/grpc/testing/*_pb2*.py   (once per test binary)
//!   interpreter()       ──► target/venv/bin/python                 (tests/peers/setup.sh)
//!   python_server()     ──► interop_server.py --port 0 --stop_on_stdin_eof
//!                           "listening on <port>" ──► 127.0.0.1:<port>
//! ```
//!
//! The stubs are generated at test time from Debian's grpc-proto contracts; nothing generated is
//! committed. Without the venv the tests fail and say to run `tests/peers/setup.sh`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::common;

/// `gen.sh` runs grpc_tools.protoc over three small files.
const GEN_TIMEOUT: Duration = Duration::from_secs(120);

/// The venv's interpreter, after generating the grpc.testing stubs once per test binary.
pub fn interpreter() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let root = common::repo_root();
        let python = root.join("target/venv/bin/python");
        assert!(
            python.exists(),
            "no Python venv at {}: run tests/peers/setup.sh",
            python.display()
        );
        let mut gen_sh = Command::new("bash");
        gen_sh.arg(root.join("tests/python/gen.sh"));
        let out = common::run_peer(gen_sh, GEN_TIMEOUT);
        assert!(
            out.status.success(),
            "tests/python/gen.sh failed ({}); run tests/peers/setup.sh\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        python
    })
}

/// Starts the grpcio interop server once per test binary; it stops when the binary exits.
pub fn python_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let mut cmd = Command::new(interpreter());
        cmd.arg(common::repo_root().join("tests/python/interop_server.py"))
            .args(["--port", "0", "--stop_on_stdin_eof"]);
        common::interop::start_peer_server(cmd, "the grpcio interop server")
    })
}

//! Interop with grpcio, the other way round: bare-grpc's interop client
//! (`examples/interop-client.rs`) runs each case of gRPC's [interop-test-descriptions.md]
//! against a real Python `grpcio` server (`tests/python/interop_server.py`, ours, on grpcio
//! from PyPI).
//!
//! ```text
//!   cargo test process                   children
//!   python::python_server() (once) ────► interop_server.py --port 0 --stop_on_stdin_eof
//!   rust_interop_client()   (once)       (prints "listening on <port>")
//!   run_case(name) (per test) ─────────► interop-client --test_case=<name> ─► "PASS <name>"
//! ```
//!
//! A grpcio server cannot see a request message's compressed flag, so the Python server sits
//! behind a small relay that reads the flags off the DATA frames (`tests/python/frame_tap.py`);
//! the compression cases therefore check our client's flags on the wire.
//!
//! [interop-test-descriptions.md]: https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md

mod common;
mod python;

use std::process::Command;

/// Runs one interop case with our client against the grpcio server and asserts it passed.
fn run_case(case: &str) {
    let client = Command::new(common::interop::rust_interop_client());
    common::interop::run_client_case(
        client,
        python::python_server(),
        case,
        "bare-grpc client vs grpcio",
    );
}

common::interop::interop_cases!(run_case);

//! Python `grpcio` as the client, our Rust interop server as the server: one test per
//! case of gRPC's interop-test-descriptions.md.
//!
//! Protocol rule: the "Client" cases of
//! [interop-test-descriptions.md](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md),
//! played by `tests/python/interop_client.py` (our own client on grpcio from PyPI, with
//! the standard `--server_host`, `--server_port`, `--test_case`, `--use_tls` flags) against
//! `grpc.testing.TestService` served by bare-grpc. A case passes when the client exits 0
//! and prints `PASS <case>`.
//!
//! ```text
//!  cargo test thread            python (target/venv)                  bare-grpc
//!  ─────────────────            ────────────────────                  ─────────
//!  gen.sh (once) ──────────────> target/py-gen/grpc/testing/*_pb2*.py
//!  run_peer(interop_client.py --test_case X) ── h2c ──────────────> interop server
//!                                  (compression cases via frame_tap,    (127.0.0.1:0,
//!                                   which records each message's        once per binary)
//!                                   compressed flag on the wire)
//!  <─── exit 0 + "PASS X" ─────────
//! ```
//!
//! Why this shape: the peer is a real gRPC implementation we did not write, so each case
//! proves that grpcio accepts what our server puts on the wire, not only that our own
//! client and server agree. The Python stubs are generated at test time from Debian's
//! grpc-proto contracts (`tests/python/gen.sh`, once per test binary), and nothing built is
//! committed. grpcio hides the compressed flag from its application, so the compression
//! cases route the channel through a byte-for-byte loopback relay that reads the flag off
//! the HTTP/2 DATA frames.
//!
//! What it does not do: TLS (`--use_tls=false` only) and the cloud-to-prod auth cases. It
//! does not start the Python venv: without `target/venv` it fails and says to run
//! `tests/peers/setup.sh`. grpcio's client cannot compress one message of a stream and not
//! the next, so in client_compressed_streaming its second message goes compressed (and is
//! marked expect_compressed=true) instead of plain; a stream that mixes flags is left to our
//! Rust client's tests.

mod common;
mod python;

use std::process::Command;

/// Runs `interop_client.py --test_case <case>` against our interop server and asserts
/// that it exits 0 having printed `PASS <case>`.
fn run_case(case: &str) {
    let mut client = Command::new(python::interpreter());
    client.arg(common::repo_root().join("tests/python/interop_client.py"));
    common::interop::run_client_case(client, common::interop_server(), case, "grpcio client");
}

common::interop::interop_cases!(run_case);

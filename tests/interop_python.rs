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

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// One run of the Python client: interpreter start-up plus a case whose calls carry
/// 10 s deadlines.
const CASE_TIMEOUT: Duration = Duration::from_secs(60);
/// `gen.sh` runs grpc_tools.protoc over three small files.
const GEN_TIMEOUT: Duration = Duration::from_secs(120);

/// The venv's interpreter, after generating the grpc.testing stubs once per test binary.
fn python() -> &'static PathBuf {
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

/// Runs `interop_client.py --test_case <case>` against our interop server and asserts
/// that it exits 0 having printed `PASS <case>`.
fn run_case(case: &str) {
    let python = python();
    let server = common::interop_server();
    let mut client = Command::new(python);
    client
        .arg(common::repo_root().join("tests/python/interop_client.py"))
        .arg(format!("--server_host={}", server.ip()))
        .arg(format!("--server_port={}", server.port()))
        .arg(format!("--test_case={case}"))
        .arg("--use_tls=false");
    let out = common::run_peer(client, CASE_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "grpcio client, case {case}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let pass = format!("PASS {case}");
    assert!(
        stdout.lines().any(|line| line.trim_end() == pass),
        "grpcio client, case {case}: exit 0 without `{pass}`\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
}

/// [empty_unary](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#empty_unary):
/// a zero-byte request and response.
#[test]
fn empty_unary() {
    run_case("empty_unary");
}

/// [large_unary](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#large_unary):
/// 271828 zero bytes up, 314159 down, through flow control.
#[test]
fn large_unary() {
    run_case("large_unary");
}

/// [client_streaming](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_streaming):
/// four requests, one response with aggregated_payload_size 74922.
#[test]
fn client_streaming() {
    run_case("client_streaming");
}

/// [server_streaming](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_streaming):
/// one request, four responses of 31415, 9, 2653 and 58979 bytes, in order.
#[test]
fn server_streaming() {
    run_case("server_streaming");
}

/// [ping_pong](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#ping_pong):
/// full duplex, each request sent only after the previous response arrived.
#[test]
fn ping_pong() {
    run_case("ping_pong");
}

/// [empty_stream](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#empty_stream):
/// a bidi call with zero messages each way ends OK.
#[test]
fn empty_stream() {
    run_case("empty_stream");
}

/// [timeout_on_sleeping_server](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#timeout_on_sleeping_server):
/// a 1 ms deadline on an open bidi call ends DEADLINE_EXCEEDED.
#[test]
fn timeout_on_sleeping_server() {
    run_case("timeout_on_sleeping_server");
}

/// [cancel_after_begin](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#cancel_after_begin):
/// a client-streaming call cancelled before any message ends CANCELLED.
#[test]
fn cancel_after_begin() {
    run_case("cancel_after_begin");
}

/// [cancel_after_first_response](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#cancel_after_first_response):
/// a bidi call cancelled after its first response ends CANCELLED.
#[test]
fn cancel_after_first_response() {
    run_case("cancel_after_first_response");
}

/// [status_code_and_message](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#status_code_and_message):
/// the echoed code 2 and message come back on a unary and on a bidi call.
#[test]
fn status_code_and_message() {
    run_case("status_code_and_message");
}

/// [special_status_message](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#special_status_message):
/// a grpc-message with tabs, CR LF, a BMP and a non-BMP character survives
/// percent-encoding intact.
#[test]
fn special_status_message() {
    run_case("special_status_message");
}

/// [custom_metadata](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#custom_metadata):
/// `x-grpc-test-echo-initial` comes back in the headers and the binary
/// `x-grpc-test-echo-trailing-bin` in the trailers, on unary and bidi calls.
#[test]
fn custom_metadata() {
    run_case("custom_metadata");
}

/// [unimplemented_method](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#unimplemented_method):
/// `TestService/UnimplementedCall` ends UNIMPLEMENTED.
#[test]
fn unimplemented_method() {
    run_case("unimplemented_method");
}

/// [unimplemented_service](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#unimplemented_service):
/// a method of a service the server does not have ends UNIMPLEMENTED.
#[test]
fn unimplemented_service() {
    run_case("unimplemented_service");
}

/// [client_compressed_unary](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_compressed_unary):
/// an uncompressed request with expect_compressed=true is refused INVALID_ARGUMENT; gzip
/// and plain requests are then served.
#[test]
fn client_compressed_unary() {
    run_case("client_compressed_unary");
}

/// [server_compressed_unary](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_compressed_unary):
/// the response's compressed flag on the wire follows response_compressed.
#[test]
fn server_compressed_unary() {
    run_case("server_compressed_unary");
}

/// [client_compressed_streaming](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_compressed_streaming):
/// the uncompressed probe is refused INVALID_ARGUMENT; a gzip stream of 27182 and 45904
/// bytes then aggregates 73086 (both messages compressed: see the module doc).
#[test]
fn client_compressed_streaming() {
    run_case("client_compressed_streaming");
}

/// [server_compressed_streaming](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_compressed_streaming):
/// two responses, the first with the compressed flag set and the second without.
#[test]
fn server_compressed_streaming() {
    run_case("server_compressed_streaming");
}

//! Interop with grpc-go: a real grpc-go 1.33 client runs each case of gRPC's
//! [interop-test-descriptions.md] against bare-grpc's interop server.
//!
//! The rule: a gRPC server is interoperable when the official client cases pass against it,
//! each case checking what the descriptions say (payload sizes, status codes and messages,
//! echoed metadata, deadlines, cancellation, per-message compression).
//!
//! ```text
//!   cargo test process                         child process, one per case
//!   ┌──────────────────────────────┐           ┌──────────────────────────────────┐
//!   │ common::interop_server()     │  HTTP/2   │ target/go/bin/                   │
//!   │ bare-grpc TestService        │◄──────────│   bare-grpc-interop-client       │
//!   │ 127.0.0.1:<port 0>           │ loopback  │ --test_case=<name>               │
//!   └──────────────────────────────┘           │ prints "PASS <name>", exit 0     │
//!                                              └──────────────────────────────────┘
//! ```
//!
//! Why it is shaped this way: Debian ships grpc-go as source but no interop programs, so
//! `tests/go/` holds our own client, built by `tests/go/build.sh` from Debian's packages in
//! GOPATH mode (no network, no committed binaries or generated code; see `tests/go/mod.rs`).
//! The build runs once per test binary; every case then spawns the client against the one in-process server,
//! under a time bound, and asserts on its exit status and its `PASS` line, so a failure
//! shows grpc-go's own words about what our server did wrong.
//!
//! What it does not do: TLS (the client refuses `--use_tls=true`), the cloud-only auth
//! cases, `cacheable_unary`. The reverse direction, our Rust client against the grpc-go
//! server, is `tests/interop_go_server.rs`.
//!
//! [interop-test-descriptions.md]: https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md

mod common;
mod go;

use std::process::Command;
use std::time::Duration;

/// Bound on one client run. The client gives each case a 10 s deadline of its own; the
/// rest is process start-up and slack for a loaded 2-core machine.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one interop case with the grpc-go client against our server and asserts it passed.
fn run_case(case: &str) {
    let addr = common::interop_server();
    let mut cmd = Command::new(&go::binaries().client);
    cmd.arg(format!("--server_host={}", addr.ip()))
        .arg(format!("--server_port={}", addr.port()))
        .arg(format!("--test_case={case}"))
        .arg("--use_tls=false");
    let out = common::run_peer(cmd, CASE_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pass_line = format!("PASS {case}");
    assert!(
        out.status.success() && stdout.lines().any(|line| line == pass_line),
        "grpc-go client, case {case}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
}

/// Zero-size messages both ways (EmptyCall).
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#empty_unary>
#[test]
fn empty_unary() {
    run_case("empty_unary");
}

/// A 271828-byte request and a 314159-byte response: flow control on one unary call.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#large_unary>
#[test]
fn large_unary() {
    run_case("large_unary");
}

/// Four request messages, one response carrying their aggregated size (74922).
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_streaming>
#[test]
fn client_streaming() {
    run_case("client_streaming");
}

/// One request, four responses of sizes 31415, 9, 2653, 58979, then OK.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_streaming>
#[test]
fn server_streaming() {
    run_case("server_streaming");
}

/// Full duplex, one response per request in lock step, then half-close and OK.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#ping_pong>
#[test]
fn ping_pong() {
    run_case("ping_pong");
}

/// A bidi call with no messages either way still ends with OK.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#empty_stream>
#[test]
fn empty_stream() {
    run_case("empty_stream");
}

/// A 1 ms `grpc-timeout` on a call the server never answers ends DEADLINE_EXCEEDED.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#timeout_on_sleeping_server>
#[test]
fn timeout_on_sleeping_server() {
    run_case("timeout_on_sleeping_server");
}

/// A client-streaming call cancelled before any message ends CANCELLED.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#cancel_after_begin>
#[test]
fn cancel_after_begin() {
    run_case("cancel_after_begin");
}

/// A bidi call cancelled after its first response ends CANCELLED.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#cancel_after_first_response>
#[test]
fn cancel_after_first_response() {
    run_case("cancel_after_first_response");
}

/// `grpc-status` and `grpc-message` chosen by the request come back, unary and bidi.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#status_code_and_message>
#[test]
fn status_code_and_message() {
    run_case("status_code_and_message");
}

/// A status message with tabs, CR LF and non-ASCII survives percent-encoding exactly.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#special_status_message>
#[test]
fn special_status_message() {
    run_case("special_status_message");
}

/// ASCII metadata echoed in headers and `-bin` metadata echoed in trailers, unary and bidi.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#custom_metadata>
#[test]
fn custom_metadata() {
    run_case("custom_metadata");
}

/// An unknown method of a known service ends UNIMPLEMENTED.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#unimplemented_method>
#[test]
fn unimplemented_method() {
    run_case("unimplemented_method");
}

/// A method of an unknown service ends UNIMPLEMENTED.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#unimplemented_service>
#[test]
fn unimplemented_service() {
    run_case("unimplemented_service");
}

/// The server checks each request's compressed flag against `expect_compressed`: an
/// uncompressed probe is refused with INVALID_ARGUMENT, a gzip request is accepted.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_compressed_unary>
#[test]
fn client_compressed_unary() {
    run_case("client_compressed_unary");
}

/// The server sets the compressed flag of the response exactly when asked.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_compressed_unary>
#[test]
fn server_compressed_unary() {
    run_case("server_compressed_unary");
}

/// One compressed and one uncompressed message on the same `grpc-encoding: gzip` stream.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_compressed_streaming>
#[test]
fn client_compressed_streaming() {
    run_case("client_compressed_streaming");
}

/// The server compresses one streamed response and not the next, as each one asks.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_compressed_streaming>
#[test]
fn server_compressed_streaming() {
    run_case("server_compressed_streaming");
}

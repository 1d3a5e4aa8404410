//! Interop with grpc-go, the other way round: bare-grpc's interop client
//! (`examples/interop-client.rs`) runs each case of gRPC's [interop-test-descriptions.md]
//! against a real grpc-go 1.33 server.
//!
//! The rule: a gRPC client is interoperable when the official cases pass against another
//! implementation's server, each case checking what the descriptions say.
//!
//! ```text
//!   cargo test process                     children
//!   ┌────────────────────────────┐  spawn  ┌─────────────────────────────────────────┐
//!   │ go::go_server()  (once)    │────────►│ target/go/bin/bare-grpc-interop-server  │
//!   │ rust_client()    (once)    │         │   127.0.0.1:<port it chose>             │
//!   │ run_case(name)  (per test) │  spawn  └─────────────────▲───────────────────────┘
//!   │                            │────────►┌─────────────────┴───────────────────────┐
//!   └────────────────────────────┘         │ target/<profile>/examples/interop-client│
//!                                          │ --test_case=<name>  ──► "PASS <name>"   │
//!                                          └─────────────────────────────────────────┘
//! ```
//!
//! Why it is shaped this way: the interop client is an example binary, which the test builds
//! once with the cargo that is running it (`cargo build --example interop-client`, same
//! profile and target directory), rather than relying on `cargo test` having built examples:
//! `cargo test --test interop_go_server` alone does not. The Go server is built and started
//! by `tests/go/mod.rs`; each case is a separate client process under a time bound, and the
//! test asserts on its exit status and `PASS` line, so a failure shows our client's words.
//!
//! What it does not do: TLS, the cloud-only auth cases, `cacheable_unary`. The grpc-go
//! server sends `grpc-encoding: gzip` on every response (see
//! `tests/go/src/bare-grpc-interop/server/compress.go`), with the compressed flag set only
//! on messages asked to be compressed; our client must accept that.
//!
//! [interop-test-descriptions.md]: https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md

mod common;
mod go;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Bound on one client run: its cases wait 10 s at most; the rest is start-up and slack.
const CASE_TIMEOUT: Duration = Duration::from_secs(30);

/// Bound on building the example (usually already built by `cargo test`: a second).
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Our interop client, built once per test binary with the running cargo.
fn rust_client() -> &'static PathBuf {
    static CLIENT: OnceLock<PathBuf> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.current_dir(common::repo_root()).args([
            "build",
            "--quiet",
            "--example",
            "interop-client",
            "--message-format=json-render-diagnostics",
        ]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let out = common::run_peer(cmd, BUILD_TIMEOUT);
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
                let rest = &line[line.find("\"executable\":\"")? + "\"executable\":\"".len()..];
                Some(PathBuf::from(&rest[..rest.find('"')?]))
            })
            .unwrap_or_else(|| panic!("cargo reported no interop-client executable:\n{stdout}"))
    })
}

/// Runs one interop case with our client against the grpc-go server and asserts it passed.
fn run_case(case: &str) {
    let addr = go::go_server();
    let mut cmd = Command::new(rust_client());
    cmd.arg(format!("--server_host={}", addr.ip()))
        .arg(format!("--server_port={}", addr.port()))
        .arg(format!("--test_case={case}"))
        .arg("--use_tls=false");
    let out = common::run_peer(cmd, CASE_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pass_line = format!("PASS {case}");
    assert!(
        out.status.success() && stdout.lines().any(|line| line == pass_line),
        "bare-grpc client against grpc-go, case {case}: {}\nstdout:\n{stdout}\nstderr:\n{}",
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

/// A 271828-byte request and a 314159-byte response on one unary call.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#large_unary>
#[test]
fn large_unary() {
    run_case("large_unary");
}

/// Four request messages, one response with their aggregated size (74922).
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

/// A bidi call with no messages either way ends with OK.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#empty_stream>
#[test]
fn empty_stream() {
    run_case("empty_stream");
}

/// Our 1 ms deadline on a call grpc-go never answers ends DEADLINE_EXCEEDED.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#timeout_on_sleeping_server>
#[test]
fn timeout_on_sleeping_server() {
    run_case("timeout_on_sleeping_server");
}

/// Our client-streaming call cancelled before any message ends CANCELLED.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#cancel_after_begin>
#[test]
fn cancel_after_begin() {
    run_case("cancel_after_begin");
}

/// Our bidi call cancelled after its first response ends CANCELLED.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#cancel_after_first_response>
#[test]
fn cancel_after_first_response() {
    run_case("cancel_after_first_response");
}

/// grpc-go's `grpc-status` and `grpc-message` reach our client intact, unary and bidi.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#status_code_and_message>
#[test]
fn status_code_and_message() {
    run_case("status_code_and_message");
}

/// A status message with tabs, CR LF and non-ASCII is percent-decoded exactly.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#special_status_message>
#[test]
fn special_status_message() {
    run_case("special_status_message");
}

/// Our ASCII and `-bin` metadata come back in grpc-go's headers and trailers.
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

/// grpc-go accepts our gzip request and refuses our uncompressed probe.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_compressed_unary>
#[test]
fn client_compressed_unary() {
    run_case("client_compressed_unary");
}

/// We decode grpc-go's gzip response and see its compressed flag.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_compressed_unary>
#[test]
fn server_compressed_unary() {
    run_case("server_compressed_unary");
}

/// One compressed and one uncompressed message on one gzip stream of ours.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#client_compressed_streaming>
#[test]
fn client_compressed_streaming() {
    run_case("client_compressed_streaming");
}

/// grpc-go compresses one streamed response and not the next; we see which.
/// <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md#server_compressed_streaming>
#[test]
fn server_compressed_streaming() {
    run_case("server_compressed_streaming");
}

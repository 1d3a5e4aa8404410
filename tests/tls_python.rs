//! TLS interop with Python grpcio (feature `tls`): grpcio's `ssl_channel_credentials` client
//! against our interop server over TLS and mutual TLS, and our interop client against a grpcio
//! server made with `ssl_server_credentials` (with `require_client_auth` for mutual TLS).
//!
//! ```text
//!  interop_client.py --use_tls --use_test_ca --ca_file … ──TLS──▶ our server (tls_support)
//!  our interop-client --use_tls … ─────────────────────────TLS──▶ interop_server.py --use_tls
//! ```
//!
//! The cases are gRPC's interop cases but the four compression ones: the grpcio peers check
//! compressed flags through a plaintext wire tap (`tests/python/frame_tap.py`), which cannot read
//! TLS records; those cases run over h2c in `interop_python*.rs`.
#![cfg(feature = "tls")]

mod common;
mod python;
mod tls_support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::OnceLock;

/// The cases that do not need the wire tap.
const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "status_code_and_message",
    "special_status_message",
    "custom_metadata",
    "unimplemented_method",
    "unimplemented_service",
];

fn python_client(mutual: bool) -> Command {
    let mut client = Command::new(python::interpreter());
    client
        .arg(common::repo_root().join("tests/python/interop_client.py"))
        .args(tls_support::client_flags(mutual));
    client
}

/// The grpcio server over TLS (mutual: requiring client certificates), once per mode.
fn python_tls_server(mutual: bool) -> SocketAddr {
    static PLAIN: OnceLock<SocketAddr> = OnceLock::new();
    static MUTUAL: OnceLock<SocketAddr> = OnceLock::new();
    let cell = if mutual { &MUTUAL } else { &PLAIN };
    *cell.get_or_init(|| {
        let files = tls_support::files();
        let mut cmd = Command::new(python::interpreter());
        cmd.arg(common::repo_root().join("tests/python/interop_server.py"))
            .args(["--port", "0", "--stop_on_stdin_eof", "--use_tls"])
            .arg(format!("--tls_cert_file={}", files.server_cert.display()))
            .arg(format!("--tls_key_file={}", files.server_key.display()));
        if mutual {
            cmd.arg(format!("--tls_client_ca_file={}", files.ca.display()));
        }
        common::interop::start_peer_server(cmd, "the grpcio TLS interop server")
    })
}

#[test]
fn grpcio_client_to_our_tls_server() {
    let addr = tls_support::interop_server_tls(false);
    for case in CASES {
        common::interop::run_client_case(python_client(false), addr, case, "grpcio TLS client");
    }
}

#[test]
fn grpcio_client_to_our_mtls_server() {
    let addr = tls_support::interop_server_tls(true);
    for case in CASES {
        common::interop::run_client_case(python_client(true), addr, case, "grpcio mTLS client");
    }
}

#[test]
fn grpcio_client_without_certificate_is_refused_by_our_mtls_server() {
    let addr = tls_support::interop_server_tls(true);
    let mut client = python_client(false);
    client.args([
        &format!("--server_host={}", addr.ip()),
        &format!("--server_port={}", addr.port()),
        "--test_case=empty_unary",
    ]);
    let out = common::run_peer(client, common::interop::CASE_TIMEOUT);
    assert!(!out.status.success(), "must be refused");
    common::interop::run_client_case(python_client(true), addr, "empty_unary", "grpcio mTLS");
}

#[test]
fn our_client_to_grpcio_tls_server() {
    let addr = python_tls_server(false);
    for case in CASES {
        let mut client = Command::new(common::interop::rust_interop_client());
        client.args(tls_support::client_flags(false));
        common::interop::run_client_case(client, addr, case, "bare-grpc TLS client vs grpcio");
    }
}

#[test]
fn our_client_to_grpcio_mtls_server() {
    let addr = python_tls_server(true);
    for case in CASES {
        let mut client = Command::new(common::interop::rust_interop_client());
        client.args(tls_support::client_flags(true));
        common::interop::run_client_case(client, addr, case, "bare-grpc mTLS client vs grpcio");
    }
}

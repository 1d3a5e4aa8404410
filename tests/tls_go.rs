//! TLS interop with grpc-go (feature `tls`): a real grpc-go 1.33 client
//! (`credentials.NewClientTLSFromFile`, or a `tls.Config` with a client certificate) runs every
//! case of gRPC's [interop-test-descriptions.md] against our interop server over TLS, then over
//! mutual TLS; and a grpc-go client without a certificate is refused by the mutual-TLS server.
//!
//! ```text
//!   cargo test process                               child process, one per case
//!   ┌────────────────────────────────────┐  TLS 1.3  ┌───────────────────────────────────┐
//!   │ tls_support::interop_server_tls()  │◄──────────│ bare-grpc-interop-client --use_tls│
//!   │ test PKI from rcgen (target/…)     │  ALPN h2  │ --ca_file --server_host_override  │
//!   └────────────────────────────────────┘           └───────────────────────────────────┘
//! ```
//!
//! The rule: gRPC over TLS is HTTP/2 over TLS with ALPN "h2" (RFC 9113 §3.2); the client
//! checks the server's name (here the override, as the client dials 127.0.0.1), and under
//! mutual TLS the server refuses a client without a certificate at the handshake.
//!
//! [interop-test-descriptions.md]: https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md
#![cfg(feature = "tls")]

mod common;
mod go;
mod tls_support;

use std::process::Command;

/// The grpc-go client with the TLS flags (and the client certificate when `mutual`).
fn go_client(mutual: bool) -> Command {
    let mut client = Command::new(&go::binaries().client);
    client.args(tls_support::client_flags(mutual));
    client
}

/// One case over TLS.
fn run_case(case: &str) {
    let addr = tls_support::interop_server_tls(false);
    common::interop::run_client_case(go_client(false), addr, case, "grpc-go TLS client");
}

/// One case over mutual TLS.
fn run_mtls_case(case: &str) {
    let addr = tls_support::interop_server_tls(true);
    common::interop::run_client_case(go_client(true), addr, case, "grpc-go mTLS client");
}

common::interop::interop_cases!(run_case);

/// Every case again, the client presenting its certificate to a server that requires one.
mod mutual {
    super::common::interop::interop_cases!(super::run_mtls_case);
}

/// A grpc-go client with no certificate against the mutual-TLS server: refused at the
/// handshake (grpc-go sees UNAVAILABLE), and the server goes on serving the next good client.
#[test]
fn mutual_tls_refuses_a_client_without_certificate() {
    let addr = tls_support::interop_server_tls(true);
    let mut client = go_client(false);
    client
        .arg(format!("--server_host={}", addr.ip()))
        .arg(format!("--server_port={}", addr.port()))
        .arg("--test_case=empty_unary");
    let out = common::run_peer(client, common::interop::CASE_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must be refused; stderr:\n{stderr}");
    assert!(
        stderr.contains("Unavailable") && !stderr.contains("PASS"),
        "grpc-go should report the refused handshake as UNAVAILABLE:\n{stderr}"
    );
    run_mtls_case("empty_unary");
}

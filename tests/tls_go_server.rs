//! TLS interop with grpc-go, the other way round (feature `tls`): our interop client runs every
//! case of gRPC's [interop-test-descriptions.md] against a real grpc-go 1.33 server made with
//! `credentials.NewServerTLSFromFile` and Debian grpc-go's own test certificate (`server1.pem`,
//! valid for `*.test.google.fr`, so the client dials 127.0.0.1 with `--server_host_override`);
//! then against a grpc-go server that requires a client certificate (mutual TLS).
//!
//! ```text
//!   our interop-client --use_tls --use_test_ca --ca_file ca.pem          grpc-go server
//!     --server_host_override foo.test.google.fr     ── TLS, ALPN h2 ──▶  server1.pem/.key
//!   our interop-client ... --client_cert_file F --client_key_file F ──▶  + RequireAndVerify
//! ```
//!
//! [interop-test-descriptions.md]: https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md
#![cfg(feature = "tls")]

mod common;
mod go;
mod tls_support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::OnceLock;

/// Debian grpc-go's test credentials (golang-google-grpc-dev).
const TESTDATA: &str = "/usr/share/gocode/src/google.golang.org/grpc/testdata";

/// The grpc-go server over TLS with Debian's server1.pem, once per test binary.
fn go_tls_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let mut cmd = Command::new(&go::binaries().server);
        cmd.args(["--port", "0", "--stop_on_stdin_eof", "--use_tls"])
            .arg(format!("--tls_cert_file={TESTDATA}/server1.pem"))
            .arg(format!("--tls_key_file={TESTDATA}/server1.key"));
        common::interop::start_peer_server(cmd, "the grpc-go TLS interop server")
    })
}

/// The grpc-go server requiring client certificates from the test PKI's CA.
fn go_mtls_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let files = tls_support::files();
        let mut cmd = Command::new(&go::binaries().server);
        cmd.args(["--port", "0", "--stop_on_stdin_eof", "--use_tls"])
            .arg(format!("--tls_cert_file={}", files.server_cert.display()))
            .arg(format!("--tls_key_file={}", files.server_key.display()))
            .arg(format!("--tls_client_ca_file={}", files.ca.display()));
        common::interop::start_peer_server(cmd, "the grpc-go mTLS interop server")
    })
}

/// One case, our client against grpc-go over TLS, checking the name `foo.test.google.fr`.
fn run_case(case: &str) {
    let mut client = Command::new(common::interop::rust_interop_client());
    client.args([
        "--use_tls",
        "--use_test_ca",
        &format!("--ca_file={TESTDATA}/ca.pem"),
        "--server_host_override=foo.test.google.fr",
    ]);
    common::interop::run_client_case(client, go_tls_server(), case, "bare-grpc TLS client");
}

/// One case over mutual TLS.
fn run_mtls_case(case: &str) {
    let mut client = Command::new(common::interop::rust_interop_client());
    client.args(tls_support::client_flags(true));
    common::interop::run_client_case(client, go_mtls_server(), case, "bare-grpc mTLS client");
}

common::interop::interop_cases!(run_case);

/// Every case again over mutual TLS.
mod mutual {
    super::common::interop::interop_cases!(super::run_mtls_case);
}

/// Without the override the name checked is 127.0.0.1, which server1.pem does not hold: the
/// connection fails UNAVAILABLE with rustls' reason, and nothing is sent in plain text.
#[test]
fn wrong_server_name_is_unavailable_with_the_reason() {
    let addr = go_tls_server();
    let mut client = Command::new(common::interop::rust_interop_client());
    client.args([
        "--use_tls",
        "--use_test_ca",
        &format!("--ca_file={TESTDATA}/ca.pem"),
        &format!("--server_host={}", addr.ip()),
        &format!("--server_port={}", addr.port()),
        "--test_case=empty_unary",
    ]);
    let out = common::run_peer(client, common::interop::CASE_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("UNAVAILABLE") && stderr.contains("not valid for name"),
        "{stderr}"
    );
}

/// Our client without its certificate against the mutual-TLS grpc-go server: refused.
#[test]
fn mutual_tls_server_refuses_our_client_without_certificate() {
    let addr = go_mtls_server();
    let mut client = Command::new(common::interop::rust_interop_client());
    client.args(tls_support::client_flags(false)).args([
        &format!("--server_host={}", addr.ip()),
        &format!("--server_port={}", addr.port()),
        "--test_case=empty_unary",
    ]);
    let out = common::run_peer(client, common::interop::CASE_TIMEOUT);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "must be refused:\n{all}");
    assert!(all.contains("UNAVAILABLE"), "{all}");
}

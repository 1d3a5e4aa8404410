//! bare-grpc behind nginx with TLS (feature `tls`): nginx terminates TLS (`listen … ssl
//! http2`, ALPN h2) and passes to two bare-grpc instances over h2c (`grpc_pass grpc://`), or
//! over TLS again to our TLS server (`grpc_pass grpcs://`, nginx checking our certificate
//! against the test CA). Every interop case of gRPC's [interop-test-descriptions.md] passes,
//! with grpc-go's client and ours, both ways of running the upstream.
//!
//! ```text
//!   grpc-go / our client ──TLS (test CA, name foo.test.bare-grpc.example)──▶ nginx
//!        nginx ──h2c──────────────────────────▶ 2 × bare-grpc            (mod h2c_upstream)
//!        nginx ──TLS (grpc_ssl_verify, name localhost)──▶ 2 × bare-grpc TLS (mod tls_upstream)
//! ```
//!
//! The rule: gRPC over TLS is HTTP/2 over TLS with ALPN "h2" (RFC 9113 §3.2) on each hop; the
//! certificates come from the run-time test PKI (`tests/tls_support`), nothing is checked in.
//!
//! [interop-test-descriptions.md]: https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md
#![cfg(feature = "tls")]

mod common;
mod go;
mod nginx_support;
mod tls_support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::OnceLock;

use nginx_support::{Nginx, Options};

/// nginx with TLS in front of two h2c instances, once per test binary.
fn tls_to_h2c() -> SocketAddr {
    static NGINX: OnceLock<Nginx> = OnceLock::new();
    NGINX
        .get_or_init(|| {
            let files = tls_support::files();
            Nginx::start(&Options {
                upstreams: nginx_support::start_backends(2),
                listen_tls: Some((files.server_cert.clone(), files.server_key.clone())),
                ..Default::default()
            })
        })
        .addr
}

/// nginx with TLS in front of two TLS instances (`grpcs://`), once per test binary.
fn tls_to_tls() -> SocketAddr {
    static NGINX: OnceLock<Nginx> = OnceLock::new();
    NGINX
        .get_or_init(|| {
            let files = tls_support::files();
            let upstreams = (0..2)
                .map(|_| {
                    nginx_support::spawn_backend(Some(Box::new(|builder| {
                        builder.tls(tls_support::server_tls(false))
                    })))
                })
                .collect();
            Nginx::start(&Options {
                upstreams,
                listen_tls: Some((files.server_cert.clone(), files.server_key.clone())),
                upstream_tls: Some((files.ca.clone(), "localhost".to_owned())),
                ..Default::default()
            })
        })
        .addr
}

/// `client` (grpc-go's or ours) with the TLS flags, one case against `addr`.
fn run(mut client: Command, addr: SocketAddr, case: &str, who: &str) {
    client.args(tls_support::client_flags(false));
    common::interop::run_client_case(client, addr, case, who);
}

fn go_h2c_upstream(case: &str) {
    let client = Command::new(&go::binaries().client);
    run(
        client,
        tls_to_h2c(),
        case,
        "grpc-go TLS client via nginx, h2c upstream",
    );
}

fn rust_h2c_upstream(case: &str) {
    let client = Command::new(common::interop::rust_interop_client());
    run(
        client,
        tls_to_h2c(),
        case,
        "bare-grpc TLS client via nginx, h2c upstream",
    );
}

fn go_tls_upstream(case: &str) {
    let client = Command::new(&go::binaries().client);
    run(
        client,
        tls_to_tls(),
        case,
        "grpc-go TLS client via nginx, grpcs upstream",
    );
}

fn rust_tls_upstream(case: &str) {
    let client = Command::new(common::interop::rust_interop_client());
    run(
        client,
        tls_to_tls(),
        case,
        "bare-grpc TLS client via nginx, grpcs upstream",
    );
}

mod h2c_upstream {
    mod go_client {
        super::super::common::interop::interop_cases!(super::super::go_h2c_upstream);
    }
    mod rust_client {
        super::super::common::interop::interop_cases!(super::super::rust_h2c_upstream);
    }
}

mod tls_upstream {
    mod go_client {
        super::super::common::interop::interop_cases!(super::super::go_tls_upstream);
    }
    mod rust_client {
        super::super::common::interop::interop_cases!(super::super::rust_tls_upstream);
    }
}

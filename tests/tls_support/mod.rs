//! What the TLS suites share: a test PKI made at run time (`examples/tls/pki.rs`, rcgen) and
//! written under `target/tls-test/<pid>/` for the peer programs, and our interop server over
//! TLS, started in-process once per mode.
//!
//! ```text
//!  test CA ──signs──▶ server  (localhost, *.test.bare-grpc.example, 127.0.0.1)
//!          └─signs──▶ client  (client.test.bare-grpc.example, spiffe://bare-grpc.test/interop-client)
//!  other CA ─signs──▶ stranger (a client certificate our servers must refuse)
//! ```
//!
//! No key is ever checked in: every run makes new ones.

#![allow(dead_code)]

#[path = "../../examples/tls/pki.rs"]
pub mod pki;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;

use bare_grpc::Server;
use bare_grpc::tls::{Identity, ServerTls};

use crate::common;

/// The name our clients check when they dial 127.0.0.1 with an override.
pub const OVERRIDE: &str = "foo.test.bare-grpc.example";
/// The client certificate's URI SAN.
pub const CLIENT_SPIFFE: &str = "spiffe://bare-grpc.test/interop-client";

/// The PKI as files and as PEM text.
pub struct Files {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub stranger_cert: PathBuf,
    pub stranger_key: PathBuf,
    pub ca_pem: String,
    pub server: pki::Pem,
    pub client: pki::Pem,
}

/// Makes the PKI once per test binary.
pub fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = common::repo_root()
            .join("target/tls-test")
            .join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("create target/tls-test");
        let ca = pki::Ca::new("bare-grpc test CA");
        let server = ca.leaf(&pki::Leaf {
            name: "bare-grpc test server",
            dns: &["localhost", "*.test.bare-grpc.example"],
            ips: &["127.0.0.1".parse().unwrap()],
            ..Default::default()
        });
        let client = ca.leaf(&pki::Leaf {
            name: "bare-grpc test client",
            dns: &["client.test.bare-grpc.example"],
            uris: &[CLIENT_SPIFFE],
            ..Default::default()
        });
        let stranger = pki::Ca::new("some other CA").leaf(&pki::Leaf {
            name: "stranger",
            dns: &["stranger.example"],
            ..Default::default()
        });
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write PEM");
            path
        };
        Files {
            ca: write("ca.pem", &ca.cert_pem()),
            server_cert: write("server.pem", &server.cert),
            server_key: write("server.key", &server.key),
            client_cert: write("client.pem", &client.cert),
            client_key: write("client.key", &client.key),
            stranger_cert: write("stranger.pem", &stranger.cert),
            stranger_key: write("stranger.key", &stranger.key),
            ca_pem: ca.cert_pem(),
            server,
            client,
        }
    })
}

/// The server side of the test PKI; with `mutual`, client certificates from the test CA are
/// required.
pub fn server_tls(mutual: bool) -> ServerTls {
    let files = files();
    let tls = ServerTls::new(
        Identity::from_pem(&files.server.cert, &files.server.key).expect("server identity"),
    )
    .expect("server TLS");
    if mutual {
        tls.require_client_cert(&files.ca_pem).expect("client CA")
    } else {
        tls
    }
}

/// Our interop server over TLS (or mutual TLS), once per test binary and mode, on a free
/// loopback port in its own runtime thread.
pub fn interop_server_tls(mutual: bool) -> SocketAddr {
    static PLAIN: OnceLock<SocketAddr> = OnceLock::new();
    static MUTUAL: OnceLock<SocketAddr> = OnceLock::new();
    let cell = if mutual { &MUTUAL } else { &PLAIN };
    *cell.get_or_init(|| {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = std_listener.local_addr().expect("local addr");
        std_listener.set_nonblocking(true).expect("nonblocking");
        let tls = server_tls(mutual);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
                Server::builder()
                    .tls(tls)
                    .add_service(common::test_service::test_service())
                    .build()
                    .serve(listener)
                    .await
                    .expect("TLS interop server");
            });
        });
        addr
    })
}

/// The interop-client flags that trust the test CA and check [`OVERRIDE`]; with `mutual`, the
/// client certificate too.
pub fn client_flags(mutual: bool) -> Vec<String> {
    let files = files();
    let mut flags = vec![
        "--use_tls".to_owned(),
        "--use_test_ca".to_owned(),
        format!("--ca_file={}", files.ca.display()),
        format!("--server_host_override={OVERRIDE}"),
    ];
    if mutual {
        flags.push(format!(
            "--client_cert_file={}",
            files.client_cert.display()
        ));
        flags.push(format!("--client_key_file={}", files.client_key.display()));
    }
    flags
}

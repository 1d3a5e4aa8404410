//! The interop server: `grpc.testing.TestService` on h2c, for gRPC's standard interop clients
//! (ours in `tests/`, grpc-go's, grpcio's).
//!
//! ```text
//! cargo run --release --example interop-server -- --port 10000
//! ```
//!
//! Flags follow gRPC's interop servers: `--port N` (default 10000), `--use_tls` (needs
//! `--features tls`) with `--tls_cert_file F --tls_key_file F` (default: Debian grpc-go's test
//! `server1.pem` and `server1.key`) and, ours, `--tls_client_ca_file F` to require client
//! certificates signed by that CA (mutual TLS); and `--metrics-port N` (needs `--features metrics`) to count calls and serve
//! Prometheus' `/metrics` on port N. It listens on every local address of both IP families and
//! serves until SIGTERM or SIGINT.
//!
//! On SIGTERM (Kubernetes' stop signal) it drains, in the order a load balancer needs
//! (docs/deploy.md): health reports NOT_SERVING at once (readiness probes fail, the endpoint
//! leaves the Service), then after `--shutdown_delay_ms N` (default 0; the manifests in
//! deploy/kubernetes/ use 5000) graceful shutdown sends GOAWAY and waits for the calls in
//! flight, then the process exits 0. Each step prints a line, `interop-server: SIGTERM: …`.
//!
//! Beside the TestService it serves `grpc.health.v1.Health` (the server and the TestService
//! report SERVING; `docs/health.md`) and server reflection v1 and v1alpha over the contracts'
//! descriptors (`bare_grpc_contracts::FILE_DESCRIPTOR_SET`, `grpc.testing` among them) and the
//! built-in health and reflection ones (`docs/reflection.md`).

#[path = "interop/test_service.rs"]
mod test_service;

use std::net::SocketAddr;

use bare_grpc::Server;
use bare_grpc::services::health::{self, health_service};
use bare_grpc::services::reflection::Reflection;
use tokio::net::TcpListener;

/// The descriptors of every contract `tests/contracts` compiled (`grpc.testing` among them),
/// for reflection.
const DESCRIPTORS: &[u8] = bare_grpc_contracts::FILE_DESCRIPTOR_SET;

fn usage(error: &str) -> ! {
    eprintln!(
        "interop-server: {error}\nusage: interop-server [--port N] [--use_tls[=true|false] \
         [--tls_cert_file F --tls_key_file F] [--tls_client_ca_file F]] [--metrics-port N] \
         [--shutdown_delay_ms N]"
    );
    std::process::exit(2);
}

/// Debian grpc-go's test credentials (`golang-google-grpc-dev`), the interop servers' default.
const TESTDATA: &str = "/usr/share/gocode/src/google.golang.org/grpc/testdata";

/// `--use_tls` and its files.
#[derive(Default)]
struct TlsArgs {
    use_tls: bool,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_ca_file: Option<String>,
}

fn parse_args() -> (u16, Option<u16>, TlsArgs, u64) {
    let mut port = 10000;
    let mut shutdown_delay_ms = 0;
    let mut metrics_port = None;
    let mut tls = TlsArgs::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match name.as_str() {
            "--port" => {
                port = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--port takes a number"))
            }
            "--shutdown_delay_ms" => {
                shutdown_delay_ms = value()
                    .parse()
                    .unwrap_or_else(|_| usage("--shutdown_delay_ms takes a number"));
            }
            "--metrics-port" => {
                if !cfg!(feature = "metrics") {
                    usage(
                        "--metrics-port needs the `metrics` feature: \
                         cargo run --example interop-server --features metrics -- --metrics-port N",
                    )
                }
                metrics_port = Some(
                    value()
                        .parse()
                        .unwrap_or_else(|_| usage("--metrics-port takes a number")),
                )
            }
            // A boolean flag: `--use_tls`, `--use_tls=true`, `--use_tls=false`.
            "--use_tls" => {
                tls.use_tls = match inline.as_deref() {
                    None | Some("true") => true,
                    Some("false") => false,
                    Some(other) => usage(&format!("--use_tls={other}: expected true or false")),
                };
                if tls.use_tls && !cfg!(feature = "tls") {
                    usage(
                        "--use_tls needs the `tls` feature: \
                         cargo run --example interop-server --features tls -- --use_tls",
                    )
                }
            }
            "--tls_cert_file" => tls.cert_file = Some(value()),
            "--tls_key_file" => tls.key_file = Some(value()),
            "--tls_client_ca_file" => tls.client_ca_file = Some(value()),
            _ => usage(&format!("unknown flag {arg}")),
        }
    }
    (port, metrics_port, tls, shutdown_delay_ms)
}

/// With `--use_tls`: the server's certificate and, with `--tls_client_ca_file`, mutual TLS.
#[cfg(feature = "tls")]
fn with_tls(
    builder: bare_grpc::server::Builder,
    args: &TlsArgs,
) -> std::io::Result<bare_grpc::server::Builder> {
    use bare_grpc::tls::{Identity, ServerTls};
    if !args.use_tls {
        return Ok(builder);
    }
    let cert = args
        .cert_file
        .clone()
        .unwrap_or(format!("{TESTDATA}/server1.pem"));
    let key = args
        .key_file
        .clone()
        .unwrap_or(format!("{TESTDATA}/server1.key"));
    let mut tls = ServerTls::new(Identity::from_pem_files(&cert, &key)?)?;
    if let Some(ca) = &args.client_ca_file {
        tls = tls.require_client_cert(std::fs::read(ca)?)?;
    }
    Ok(builder.tls(tls))
}

/// Without the `tls` feature, `parse_args` has already refused `--use_tls`.
#[cfg(not(feature = "tls"))]
fn with_tls(
    builder: bare_grpc::server::Builder,
    _args: &TlsArgs,
) -> std::io::Result<bare_grpc::server::Builder> {
    let _ = TESTDATA;
    Ok(builder)
}

/// With `--metrics-port N`: counts every call (the `grpc_server_*` family) and serves the
/// counts at `http://host:N/metrics` (`docs/metrics.md`).
#[cfg(feature = "metrics")]
async fn with_metrics(
    builder: bare_grpc::server::Builder,
    port: Option<u16>,
) -> std::io::Result<bare_grpc::server::Builder> {
    let Some(port) = port else {
        return Ok(builder);
    };
    let listener = match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?,
    };
    println!(
        "interop-server: metrics on http://{}/metrics",
        listener.local_addr()?
    );
    let metrics = bare_grpc::metrics::Metrics::new();
    tokio::spawn(metrics.clone().serve(listener));
    Ok(builder.interceptor(metrics))
}

/// Without the `metrics` feature, `parse_args` has already refused `--metrics-port`.
#[cfg(not(feature = "metrics"))]
async fn with_metrics(
    builder: bare_grpc::server::Builder,
    _port: Option<u16>,
) -> std::io::Result<bare_grpc::server::Builder> {
    Ok(builder)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (port, metrics_port, tls, shutdown_delay_ms) = parse_args();
    // Dual-stack when the machine has IPv6, so `localhost` works whichever family it resolves to.
    let listener = match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?,
    };
    println!(
        "interop-server: listening on {}{}",
        listener.local_addr()?,
        if tls.use_tls { " (TLS)" } else { "" }
    );
    // Health and reflection too, so standard tools (grpc_health_probe, grpcurl) work on it.
    let (health_reporter, health) = health_service();
    health_reporter.set_serving("grpc.testing.TestService");
    let reflection = Reflection::builder()
        .file_descriptor_set(DESCRIPTORS)
        .and_then(|builder| {
            builder
                .service("grpc.testing.TestService")
                .service(health::SERVICE_NAME)
                .build()
        })
        .map_err(std::io::Error::other)?;
    with_web(with_tls(
        with_metrics(Server::builder(), metrics_port).await?,
        &tls,
    )?)
    .add_service(test_service::test_service())
    .add_service(health)
    .add_service(reflection.v1())
    .add_service(reflection.v1alpha())
    .build()
    .serve_with_shutdown(
        listener,
        drain_on_signal(health_reporter, shutdown_delay_ms),
    )
    .await?;
    println!("interop-server: SIGTERM: drained, exiting");
    Ok(())
}

/// Built with `--features web`: gRPC-Web (HTTP/1.1 and HTTP/2, binary and -text) on the same
/// `--port`, CORS open to any origin with the interop metadata allowed and exposed, so browser
/// pages and outside gRPC-Web tools can call it (`docs/web.md`).
#[cfg(feature = "web")]
fn with_web(builder: bare_grpc::server::Builder) -> bare_grpc::server::Builder {
    use bare_grpc::server::{Cors, Web};
    let interop = ["x-grpc-test-echo-initial", "x-grpc-test-echo-trailing-bin"];
    builder.web(
        Web::new().cors(
            Cors::new()
                .allow_any_origin()
                .allow_headers(interop)
                .expose_headers(interop),
        ),
    )
}

#[cfg(not(feature = "web"))]
fn with_web(builder: bare_grpc::server::Builder) -> bare_grpc::server::Builder {
    builder
}

/// Resolves when the server should stop taking calls: on SIGTERM (or SIGINT), health flips
/// to NOT_SERVING for the server and the TestService first, so readiness probes fail and the
/// endpoint leaves the load balancer's set; `delay_ms` later the server's graceful shutdown
/// (GOAWAY, in-flight calls finish) begins.
async fn drain_on_signal(health: health::HealthReporter, delay_ms: u64) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    health.set_not_serving("");
    health.set_not_serving("grpc.testing.TestService");
    println!("interop-server: SIGTERM: health NOT_SERVING");
    tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
    println!("interop-server: SIGTERM: GOAWAY, draining calls in flight");
}

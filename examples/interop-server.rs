//! The interop server: `grpc.testing.TestService` on h2c, for gRPC's standard interop clients
//! (ours in `tests/`, grpc-go's, grpcio's).
//!
//! ```text
//! cargo run --release --example interop-server -- --port 10000
//! ```
//!
//! Flags follow gRPC's interop servers: `--port N` (default 10000), `--use_tls=false` (TLS is
//! not offered), and `--metrics-port N` (needs `--features metrics`) to count calls and serve
//! Prometheus' `/metrics` on port N. It listens on every local address of both IP families and
//! serves until killed.
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
        "interop-server: {error}\nusage: interop-server [--port N] [--use_tls=false] [--metrics-port N]"
    );
    std::process::exit(2);
}

fn parse_args() -> (u16, Option<u16>) {
    let mut port = 10000;
    let mut metrics_port = None;
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
            "--use_tls" => {
                if value() != "false" {
                    usage("TLS is not supported by this server")
                }
            }
            _ => usage(&format!("unknown flag {arg}")),
        }
    }
    (port, metrics_port)
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
    let (port, metrics_port) = parse_args();
    // Dual-stack when the machine has IPv6, so `localhost` works whichever family it resolves to.
    let listener = match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?,
    };
    println!("interop-server: listening on {}", listener.local_addr()?);
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
    with_metrics(Server::builder(), metrics_port)
        .await?
        .add_service(test_service::test_service())
        .add_service(health)
        .add_service(reflection.v1())
        .add_service(reflection.v1alpha())
        .build()
        .serve(listener)
        .await
}

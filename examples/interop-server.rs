//! The interop server: `grpc.testing.TestService` on h2c, for gRPC's standard interop clients
//! (ours in `tests/`, grpc-go's, grpcio's).
//!
//! ```text
//! cargo run --release --example interop-server -- --port 10000
//! ```
//!
//! Flags follow gRPC's interop servers: `--port N` (default 10000), `--use_tls=false` (TLS is
//! not offered). It listens on every local address of both IP families and serves until killed.

#[path = "interop/test_service.rs"]
mod test_service;

use std::net::SocketAddr;

use bare_grpc::Server;
use tokio::net::TcpListener;

fn usage(error: &str) -> ! {
    eprintln!("interop-server: {error}\nusage: interop-server [--port N] [--use_tls=false]");
    std::process::exit(2);
}

fn parse_args() -> u16 {
    let mut port = 10000;
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
            "--use_tls" => {
                if value() != "false" {
                    usage("TLS is not supported by this server")
                }
            }
            _ => usage(&format!("unknown flag {arg}")),
        }
    }
    port
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = parse_args();
    // Dual-stack when the machine has IPv6, so `localhost` works whichever family it resolves to.
    let listener = match TcpListener::bind(SocketAddr::from(([0u16; 8], port))).await {
        Ok(listener) => listener,
        Err(_) => TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port))).await?,
    };
    println!("interop-server: listening on {}", listener.local_addr()?);
    Server::builder()
        .add_service(test_service::test_service())
        .build()
        .serve(listener)
        .await
}

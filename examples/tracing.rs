//! `tracing` spans for every call, both sides (docs/tracing.md; feature `tracing`), printed by
//! `tracing-subscriber`'s fmt layer.
//!
//! ```text
//! cargo run --example tracing --features tracing              # spans and failures (DEBUG)
//! RUST_LOG=trace cargo run --example tracing --features tracing   # ... and every message
//! cargo run --release --example tracing --features tracing -- serve --port 50051 [--discard]
//! ```
//!
//! `serve` is the measurement subject of docs/performance.md § Tracing: the same greeter on
//! `--port` with no subscriber, or with `--discard` a subscriber that wants every span and
//! event and drops them (so the spans are built and their fields recorded, and nothing else).
//!
//! A greeter on a loopback port, a client calling it twice: one call succeeds, one fails with
//! NOT_FOUND (the caller's mistake, so a DEBUG event). Each line shows the span it belongs to,
//! `grpc.server{otel.name=helloworld.Greeter/SayHello rpc.system="grpc" …}` or `grpc.client{…}`,
//! and the span's close with its `rpc.grpc.status_code`.

use bare_grpc::{Channel, Request, Response, Server, Status};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterClient, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};
use tokio::net::TcpListener;
use tracing::Level;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;

/// A greeter that does not know anyone called "ghost".
struct Hello;

impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let name = request.into_inner().name;
        if name == "ghost" {
            return Err(Status::not_found("no such person"));
        }
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}"),
        }))
    }
}

/// A subscriber interested in everything that keeps nothing: the cost of the spans themselves.
struct Discard;

impl tracing::Subscriber for Discard {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// `serve --port N [--discard]`: serve the greeter until killed.
async fn serve(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match args {
        [flag, port, ..] if flag == "--port" => port.parse()?,
        _ => return Err("usage: tracing serve --port N [--discard]".into()),
    };
    if args.iter().any(|arg| arg == "--discard") {
        tracing::subscriber::set_global_default(Discard)?;
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    Server::builder()
        .add_service(GreeterServer::new(Hello))
        .build()
        .serve(listener)
        .await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|arg| arg == "serve") {
        return serve(&args[1..]).await;
    }
    // Our spans and events only (h2 logs every frame at DEBUG under its own targets).
    let level = if std::env::var("RUST_LOG").is_ok_and(|level| level == "trace") {
        Level::TRACE
    } else {
        Level::DEBUG
    };
    let ours =
        filter_fn(move |meta| meta.target().starts_with("bare_grpc") && *meta.level() <= level);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_span_events(FmtSpan::CLOSE)
                .with_target(false)
                .without_time()
                .with_ansi(false)
                .with_filter(ours),
        )
        .init();

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = Server::builder()
        .add_service(GreeterServer::new(Hello))
        .build();
    tokio::spawn(server.serve(listener));

    let client = GreeterClient::new(Channel::connect(&addr.to_string()).await?);
    for name in ["world", "ghost"] {
        let request = HelloRequest { name: name.into() };
        match client.say_hello(request).await {
            Ok(reply) => println!("reply: {}", reply.into_inner().message),
            Err(status) => println!("status: {} {}", status.code().name(), status.message()),
        }
    }
    Ok(())
}

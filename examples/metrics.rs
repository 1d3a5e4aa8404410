//! Prometheus metrics for a server and a client (docs/metrics.md; feature `metrics`).
//!
//! ```text
//! cargo run --example metrics --features metrics                 # prints the exposition text
//! cargo run --example metrics --features metrics -- --port 9464  # ... and keeps serving it
//! curl http://127.0.0.1:9464/metrics
//! ```
//!
//! One `Metrics` counts both sides: the server's calls as `grpc_server_*`, the client's as
//! `grpc_client_*`.

use bare_grpc::metrics::Metrics;
use bare_grpc::{Channel, Request, Response, Server, Status};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterClient, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};
use tokio::net::TcpListener;

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

/// `--port N`: keep serving `/metrics` on 127.0.0.1:N after the calls.
fn port() -> Option<u16> {
    let mut args = std::env::args().skip(1);
    match (args.next().as_deref(), args.next()) {
        (None, _) => None,
        (Some("--port"), Some(port)) => Some(port.parse().expect("--port takes a number")),
        _ => {
            eprintln!("usage: metrics [--port N]");
            std::process::exit(2);
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = port();
    let metrics = Metrics::new();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = Server::builder()
        .interceptor(metrics.clone())
        .add_service(GreeterServer::new(Hello))
        .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));

    let channel = Channel::builder(&url)?
        .interceptor(metrics.clone())
        .connect()
        .await?;
    let client = GreeterClient::new(channel);
    for name in ["Ada", "Grace", "ghost"] {
        let request = HelloRequest {
            name: name.to_owned(),
        };
        let _ = client.say_hello(request).await;
    }
    // The server counts a call once its answer is written, which may be a moment after the
    // client has it: a graceful shutdown waits for every call to finish.
    let _ = stop.send(());
    serving.await??;
    print!("{}", metrics.render());

    if let Some(port) = port {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!(
            "serving http://{}/metrics until killed",
            listener.local_addr()?
        );
        metrics.serve(listener).await?;
    }
    Ok(())
}

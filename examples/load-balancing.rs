//! Client-side load balancing, the runnable counterpart of seed 001's grpc-go snippet: the same
//! calls through a `pick_first` channel and a `round_robin` channel, both over a resolver of
//! the program's own (the seed's `example:///lb.example.grpc.io`).
//!
//! ```text
//! cargo run --example load-balancing
//! ```
//!
//! Two greeter servers start on free loopback ports, each answering with its own name. The
//! `ExampleResolver` knows the service name and answers with both addresses, as a registry
//! lookup would; a `Channel` is given it with `ChannelBuilder::resolver`. Expected output:
//! pick_first sends all ten calls to the first server, round_robin alternates between them.
//! `docs/balancing.md` explains the tree behind it.

use std::net::SocketAddr;

use bare_grpc::client::{Address, LoadBalancingPolicy, ResolveFuture, Resolver};
use bare_grpc::{Channel, Request, Response, Server, Status};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterClient, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};

/// A greeter that says who it is.
struct Named(&'static str);

impl Greeter for Named {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let message = format!("{} (from {})", request.into_inner().name, self.0);
        Ok(Response::new(HelloReply { message }))
    }
}

/// The seed's resolver: one well-known service name, a fixed list of backends. A real one
/// would read a file or ask a registry here; the channel asks again after a lost connection.
#[derive(Debug)]
struct ExampleResolver {
    service: &'static str,
    backends: Vec<SocketAddr>,
}

impl Resolver for ExampleResolver {
    fn resolve(&self) -> ResolveFuture<'_> {
        Box::pin(async move {
            if self.service != "lb.example.grpc.io" {
                return Err(Status::unavailable(format!(
                    "unknown service {}",
                    self.service
                )));
            }
            Ok(self.backends.iter().copied().map(Address::Tcp).collect())
        })
    }
}

async fn make_rpcs(channel: Channel) -> Result<(), Status> {
    let client = GreeterClient::new(channel);
    for i in 0..10 {
        let name = format!("this is examples/load_balancing (call {i})");
        let reply = client.say_hello(HelloRequest { name }).await?;
        println!("  {}", reply.into_inner().message);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut backends = Vec::new();
    for name in ["server-a", "server-b"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        backends.push(listener.local_addr()?);
        let server = Server::builder()
            .add_service(GreeterServer::new(Named(name)))
            .build();
        tokio::spawn(server.serve(listener));
    }
    let resolver = || ExampleResolver {
        service: "lb.example.grpc.io",
        backends: backends.clone(),
    };

    println!("--- calling with pick_first ---");
    // The target names the authority; the resolver gives the addresses.
    let pick_first = Channel::builder("lb.example.grpc.io:50051")?
        .resolver(resolver())
        .load_balancing(LoadBalancingPolicy::PickFirst) // the default
        .connect()
        .await?;
    make_rpcs(pick_first).await?;

    println!("--- calling with round_robin ---");
    let round_robin = Channel::builder("lb.example.grpc.io:50051")?
        .resolver(resolver())
        .service_config(r#"{"loadBalancingConfig": [{"round_robin": {}}]}"#)?
        .connect()
        .await?;
    make_rpcs(round_robin).await?;
    Ok(())
}

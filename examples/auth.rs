//! Bearer-token auth: `BearerAuth` on the server, `BearerToken` on the client
//! (docs/auth.md).
//!
//! ```text
//! cargo run --example auth
//! ```
//!
//! Three clients call the same server: one with the right token, one with none, one with a
//! wrong token. Only the first gets an answer; the others get UNAUTHENTICATED.

use bare_grpc::interceptor::auth::{BearerAuth, BearerToken};
use bare_grpc::{Channel, Request, Response, Server, Status};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterClient, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};
use tokio::net::TcpListener;

/// The greeter.
struct Hello;

impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let message = format!("Hello {}", request.into_inner().name);
        Ok(Response::new(HelloReply { message }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // In a real deployment the token comes from a secret store, and the connection is TLS
    // (or loopback): over plain h2c the token crosses the network in clear text.
    let token = "example-token-4f9c";
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = Server::builder()
        .interceptor(BearerAuth::new([token]))
        .add_service(GreeterServer::new(Hello))
        .build();
    tokio::spawn(server.serve(listener));

    let clients = [
        ("right token", Some(token)),
        ("no token", None),
        ("wrong token", Some("guessed-token")),
    ];
    for (label, token) in clients {
        let mut builder = Channel::builder(&url)?;
        if let Some(token) = token {
            builder = builder.interceptor(BearerToken::new(token)?.allow_plaintext());
        }
        let client = GreeterClient::new(builder.connect().await?);
        let request = HelloRequest {
            name: "Ada".to_owned(),
        };
        match client.say_hello(request).await {
            Ok(reply) => println!("{label:>12}: {:?}", reply.into_inner().message),
            Err(status) => println!(
                "{label:>12}: {} {:?}",
                status.code().name(),
                status.message()
            ),
        }
    }
    Ok(())
}

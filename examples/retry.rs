//! Retry with exponential back-off (docs/retry.md), with gRFC A6's knobs (`initial_backoff`,
//! `max_backoff`, `max_attempts`) and the floor of the Python retry interceptor this is
//! modelled on (`min_backoff`, its `min`; docs/retry.md maps its other words).
//!
//! ```text
//! cargo run --example retry
//! ```
//!
//! The server fails the first two calls with UNAVAILABLE; the client's policy retries them
//! with waits of about 100 ms and 200 ms, and the third attempt succeeds. A NOT_FOUND after
//! that is returned at once: it is not a code the policy names.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bare_grpc::client::RetryPolicy;
use bare_grpc::{Channel, Request, Response, Server, Status};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterClient, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};
use tokio::net::TcpListener;

/// A greeter that is unavailable for its first calls, and knows nobody called "ghost".
struct Flaky {
    calls: AtomicUsize,
    failures: usize,
}

impl Greeter for Flaky {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let name = request.into_inner().name;
        println!("  server: call {call} for {name:?}");
        if name == "ghost" {
            return Err(Status::not_found("no such person"));
        }
        if call <= self.failures {
            return Err(Status::unavailable("warming up"));
        }
        Ok(Response::new(HelloReply {
            message: format!("Hello {name}"),
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let server = Server::builder()
        .add_service(GreeterServer::new(Flaky {
            calls: AtomicUsize::new(0),
            failures: 2,
        }))
        .build();
    tokio::spawn(server.serve(listener));

    let policy = RetryPolicy::new()
        .initial_backoff(Duration::from_millis(100))
        .min_backoff(Duration::from_millis(100))
        .max_backoff(Duration::from_secs(1))
        .max_attempts(5);
    for n in 0..3 {
        let (low, high) = policy.delay_bounds(n);
        println!("wait before retry {}: {low:?} ..= {high:?}", n + 1);
    }
    let channel = Channel::builder(&url)?.retry(policy).connect().await?;
    let client = GreeterClient::new(channel);

    let started = Instant::now();
    let mut request = Request::new(HelloRequest {
        name: "Ada".to_owned(),
    });
    request.set_timeout(Duration::from_secs(5));
    let reply = client.say_hello(request).await?;
    println!(
        "got {:?} after {:?}",
        reply.into_inner().message,
        started.elapsed()
    );

    let started = Instant::now();
    let missing = client
        .say_hello(HelloRequest {
            name: "ghost".to_owned(),
        })
        .await;
    if let Err(status) = missing {
        println!(
            "{} after {:?}, not retried",
            status.code().name(),
            started.elapsed()
        );
    }
    Ok(())
}

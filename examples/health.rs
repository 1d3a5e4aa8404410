//! Health checking in one program: a server with `grpc.health.v1.Health`, and a client that
//! probes it the way Kubernetes does while the server's statuses change (`docs/health.md`).
//!
//! ```text
//! cargo run --example health
//! ```
//!
//! ```text
//!  server: health_service() ─▶ ("" SERVING)   reporter.set_*("demo.Orders") as "startup" goes
//!  client: Check("")            under a 100 ms deadline, like a readiness probe
//!          Check("no.Such")     NOT_FOUND
//!          Watch("demo.Orders") SERVICE_UNKNOWN → NOT_SERVING → SERVING, one message per change
//! ```
//!
//! Point any health client at a running `interop-server` for the same answers, e.g.
//! `grpc_health_probe -addr=localhost:10000 -service=grpc.testing.TestService`.

use std::time::Duration;

use bare_grpc::services::health::{HealthCheckRequest, HealthClient, health_service};
use bare_grpc::{Channel, Request, Server, Status};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The server: health only, on a free loopback port.
    let (reporter, health) = health_service();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .add_service(health)
            .build()
            .serve_with_shutdown(listener, async move {
                let _ = stopped.await;
            }),
    );
    println!("serving grpc.health.v1.Health on {addr}");

    let client = HealthClient::new(Channel::connect(&addr.to_string()).await?);

    // A readiness probe: one Check with a short deadline.
    let mut probe = Request::new(HealthCheckRequest::default());
    probe.set_timeout(Duration::from_millis(100));
    let answer = client.check(probe).await?;
    println!(
        "Check(\"\")            -> {}",
        answer.get_ref().status().as_str_name()
    );

    // An unknown service is an error status, not an answer.
    let unknown = client
        .check(HealthCheckRequest {
            service: "no.Such".into(),
        })
        .await;
    println!(
        "Check(\"no.Such\")     -> {}",
        unknown.map_or_else(|s: Status| s.code().name(), |_| "answered?")
    );

    // A watcher sees the service appear, then each change, while "startup" proceeds.
    let mut watch = client
        .watch(HealthCheckRequest {
            service: "demo.Orders".into(),
        })
        .await?;
    let steps = [None, Some(("warming caches", false)), Some(("ready", true))];
    for step in steps {
        if let Some((what, serving)) = step {
            println!("  server: {what}");
            if serving {
                reporter.set_serving("demo.Orders");
            } else {
                reporter.set_not_serving("demo.Orders");
            }
        }
        let Some(message) = watch.message().await? else {
            break;
        };
        println!(
            "Watch(\"demo.Orders\") -> {}",
            message.status().as_str_name()
        );
    }

    drop(watch);
    let _ = stop.send(());
    server.await??;
    Ok(())
}

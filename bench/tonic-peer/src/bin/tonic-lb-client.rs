//! tonic's side of the balancer row of the benchmark (`bench/run`, docs/performance.md §
//! "What round_robin costs"): unary SayHello calls from `--streams` tasks at once, through
//! tonic's balanced channel over several backends, or through one plain channel.
//!
//! `tonic-lb-client unary --ports A,B [--balance] [--count N] [--streams S] [--threads T]`
//!
//! - `--balance`: `Channel::balance_list` over one `Endpoint` per port (tonic's only built-in
//!   balancer: tower's power-of-two-choices over pending requests, one connection each);
//! - without it: one `Channel` to the first port.
//!
//! Prints `RESULT scenario=unary count=.. bytes=0 secs=..`, the line of
//! bench/clients/bare-client.rs's `unary` scenario (its `--target ipv4:... --lb round_robin`
//! is the same measurement through our round_robin). The time runs from just after the
//! channel is built (and, without `--balance`, connected) to the end of the last call; the
//! balanced channel connects lazily, so its first calls also wait for the connections.

use std::time::Instant;

use tonic::transport::{Channel, Endpoint};
use tonic_peer::helloworld::HelloRequest;
use tonic_peer::helloworld::greeter_client::GreeterClient;
use tonic_peer::{flag, runtime};

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args.get(1).cloned().unwrap_or_default();
    let ports = args
        .iter()
        .position(|a| a == "--ports")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "50051".into());
    let balance = args.iter().any(|a| a == "--balance");
    let count = flag("--count", 1000);
    let streams = flag("--streams", 100).max(1);
    let outcome = runtime().block_on(async move {
        if scenario != "unary" {
            return Err(format!("unknown scenario {scenario:?} (unary)").into());
        }
        let mut endpoints = Vec::new();
        for port in ports.split(',') {
            let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?;
            endpoints.push(endpoint.tcp_nodelay(true));
        }
        let channel = if balance {
            Channel::balance_list(endpoints.into_iter())
        } else {
            endpoints.remove(0).connect().await?
        };
        let start = Instant::now();
        let done = unary(channel, count, streams).await?;
        let secs = start.elapsed().as_secs_f64();
        println!("RESULT scenario=unary count={done} bytes=0 secs={secs:.6}");
        Ok::<(), Failure>(())
    });
    if let Err(e) = outcome {
        eprintln!("tonic-lb-client: {e}");
        std::process::exit(1);
    }
}

/// `count` SayHello calls spread over `streams` tasks, each calling in sequence (as
/// bare-client.rs's `unary`).
async fn unary(channel: Channel, count: u64, streams: u64) -> Result<u64, Failure> {
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..streams {
        let mut client = GreeterClient::new(channel.clone());
        let calls = count / streams + u64::from(t < count % streams);
        tasks.spawn(async move {
            for _ in 0..calls {
                let request = HelloRequest {
                    name: "world".into(),
                };
                client.say_hello(request).await?;
            }
            Ok::<u64, Failure>(calls)
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        done += joined??;
    }
    Ok(done)
}

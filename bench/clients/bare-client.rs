//! bare-grpc's client for the client-side figures of the benchmark (`bench/run`,
//! `docs/performance.md`), against bare-grpc's server (`examples/greeter-server.rs`).
//!
//! ```text
//! cargo run --release --example bench-client -- SCENARIO --port N [--count N] [--size BYTES]
//! ```
//!
//! | scenario        | what one run does                                          |
//! |-----------------|------------------------------------------------------------|
//! | `check`         | one call of each RPC, answers compared with what was sent  |
//! | `server-stream` | one Pump call of `count` chunks of `size` bytes            |
//! | `client-stream` | one Drain call fed `count` chunks of `size` bytes          |
//! | `pingpong`      | one PingPong call, `count` sequential round trips          |
//! | `big-down`      | = server-stream, meant with size 1 MiB                     |
//! | `big-up`        | = client-stream, meant with size 1 MiB                     |
//! | `unary`         | `count` SayHello calls from `--streams` (100) tasks at once |
//!
//! `--target URI` replaces `--port` (any gRPC target, `ipv4:127.0.0.1:A,127.0.0.1:B` for
//! several backends) and `--lb round_robin` picks the policy (default pick_first): the
//! `unary` scenario then measures the balancer's cost per call (docs/balancing.md).
//!
//! `--interceptor sync` or `--interceptor async` installs one client interceptor that admits
//! every call at once (docs/performance.md § "What an interceptor costs"); not in tonic's twin.
//!
//! `--keepalive SECS` turns on client keepalive (gRFC A8) with that time and a 20 s timeout
//! (docs/keepalive.md: what keepalive costs a call); not in tonic's twin.
//!
//! It prints one line, `RESULT scenario=.. count=.. bytes=.. secs=..`, the same line as
//! tonic's twin in `bench/tonic-peer/src/bin/tonic-client.rs`: the two programs make the
//! same calls in the same order, so the figures compare the runtimes and nothing else.
//! The time runs from just after the connection is up to the end of the last call.
//! Exits 1 with the status on stderr when a call fails or an answer is wrong.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bare_grpc::client::LoadBalancingPolicy;
use bare_grpc::interceptor::{AsyncInterceptor, CallInfo, Interceptor};
use bare_grpc::{Channel, Metadata, Status};
use bare_grpc_contracts::bench::collect_grpc::CollectClient;
use bare_grpc_contracts::bench::echo_grpc::EchoClient;
use bare_grpc_contracts::bench::stream_grpc::StreamClient;
use bare_grpc_contracts::bench::{Chunk, PumpRequest};
use bare_grpc_contracts::helloworld::HelloRequest;
use bare_grpc_contracts::helloworld::greeter_grpc::GreeterClient;

/// `count` clones of one message, produced on demand: the request stream of Drain.
struct Repeat<T> {
    item: T,
    left: u64,
}

impl<T: Clone + Unpin> futures_core::Stream for Repeat<T> {
    type Item = T;
    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        if this.left == 0 {
            return Poll::Ready(None);
        }
        this.left -= 1;
        Poll::Ready(Some(this.item.clone()))
    }
}

/// Admits every call, synchronously.
struct AdmitSync;

impl Interceptor for AdmitSync {
    type State = ();
    fn on_start(&self, _: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
        Ok(())
    }
}

/// Admits every call from a start that completes at once.
struct AdmitAsync;

impl AsyncInterceptor for AdmitAsync {
    type State = ();
    async fn on_start(&self, _: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
        Ok(())
    }
}

/// `--name N` from the command line, or `default`.
fn flag(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| fail(format!("{name} wants a number, got {v}")))
        })
        .unwrap_or(default)
}

/// `--name VALUE` from the command line.
fn text_flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// `count` SayHello calls spread over `streams` tasks, each calling in sequence.
async fn unary(channel: Channel, count: u64, streams: u64) -> Result<(u64, u64), Status> {
    let streams = streams.max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..streams {
        let client = GreeterClient::new(channel.clone());
        let calls = count / streams + u64::from(t < count % streams);
        tasks.spawn(async move {
            for _ in 0..calls {
                let request = HelloRequest {
                    name: "world".into(),
                };
                client.say_hello(request).await?;
            }
            Ok::<u64, Status>(calls)
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        done += joined.map_err(|e| Status::internal(e.to_string()))??;
    }
    Ok((done, 0))
}

fn fail(why: impl std::fmt::Display) -> ! {
    eprintln!("bench-client: {why}");
    std::process::exit(1)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let scenario = args.get(1).cloned().unwrap_or_default();
    let port = flag(&args, "--port", 50051);
    let count = flag(&args, "--count", 1000);
    let size = flag(&args, "--size", 16) as usize;
    let interceptor = args
        .iter()
        .position(|a| a == "--interceptor")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(flag(&args, "--threads", 1) as usize)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(e));
    let outcome = runtime.block_on(async move {
        let target = text_flag(&args, "--target").unwrap_or(format!("127.0.0.1:{port}"));
        let mut builder = Channel::builder(&target)?;
        if let Some(lb) = text_flag(&args, "--lb") {
            let policy = LoadBalancingPolicy::from_name(&lb)
                .unwrap_or_else(|| fail(format!("--lb {lb:?}: pick_first or round_robin")));
            builder = builder.load_balancing(policy);
        }
        if let Some(secs) = text_flag(&args, "--keepalive") {
            let secs: u64 = secs
                .parse()
                .unwrap_or_else(|_| fail(format!("--keepalive {secs:?}: seconds")));
            builder = builder.keepalive(
                std::time::Duration::from_secs(secs),
                std::time::Duration::from_secs(20),
            )?;
        }
        let builder = match interceptor.as_deref() {
            None => builder,
            Some("sync") => builder.interceptor(AdmitSync),
            Some("async") => builder.async_interceptor(AdmitAsync),
            Some(other) => fail(format!("--interceptor sync|async, got {other:?}")),
        };
        let channel = builder.connect().await?;
        let streams = flag(&args, "--streams", 100);
        let start = Instant::now();
        let (count, bytes) = match scenario.as_str() {
            "check" => check(channel).await?,
            "server-stream" | "big-down" => server_stream(channel, count, size).await?,
            "client-stream" | "big-up" => client_stream(channel, count, size).await?,
            "pingpong" => pingpong(channel, count, size).await?,
            "unary" => unary(channel, count, streams).await?,
            other => fail(format!("unknown scenario {other:?}")),
        };
        let secs = start.elapsed().as_secs_f64();
        println!("RESULT scenario={scenario} count={count} bytes={bytes} secs={secs:.6}");
        Ok::<(), Status>(())
    });
    if let Err(status) = outcome {
        fail(status);
    }
}

/// INTERNAL with `what` unless `ok`: a wrong answer fails the run like a failed call.
fn expect(ok: bool, what: &str) -> Result<(), Status> {
    if ok {
        Ok(())
    } else {
        Err(Status::internal(format!("check failed: {what}")))
    }
}

async fn check(channel: Channel) -> Result<(u64, u64), Status> {
    let reply = GreeterClient::new(channel.clone())
        .say_hello(HelloRequest {
            name: "world".into(),
        })
        .await?
        .into_inner();
    expect(reply.message == "Hello world", "SayHello answer")?;
    let (n, b) = server_stream(channel.clone(), 3, 16).await?;
    expect((n, b) == (3, 48), "Pump count")?;
    let (n, b) = client_stream(channel.clone(), 3, 16).await?;
    expect((n, b) == (3, 48), "Drain summary")?;
    let (n, _) = pingpong(channel.clone(), 3, 16).await?;
    expect(n == 3, "PingPong round trips")?;
    let chunk = Chunk {
        data: b"echo".to_vec(),
    };
    let back = EchoClient::new(channel)
        .echo(chunk.clone())
        .await?
        .into_inner();
    expect(back == chunk, "Echo answer")?;
    Ok((5, 0))
}

async fn server_stream(channel: Channel, count: u64, size: usize) -> Result<(u64, u64), Status> {
    let request = PumpRequest {
        count: count as u32,
        size: size as u32,
    };
    let mut inbound = StreamClient::new(channel).pump(request).await?;
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = inbound.message().await? {
        n += 1;
        bytes += chunk.data.len() as u64;
    }
    expect(
        n == count && bytes == count * size as u64,
        "Pump delivered every chunk",
    )?;
    Ok((n, bytes))
}

async fn client_stream(channel: Channel, count: u64, size: usize) -> Result<(u64, u64), Status> {
    let chunks = Repeat {
        item: Chunk {
            data: vec![b'x'; size],
        },
        left: count,
    };
    let summary = CollectClient::new(channel)
        .drain(chunks)
        .await?
        .into_inner();
    expect(summary.count == count, "Drain counted every chunk")?;
    Ok((summary.count, summary.bytes))
}

async fn pingpong(channel: Channel, count: u64, size: usize) -> Result<(u64, u64), Status> {
    let chunk = Chunk {
        data: vec![b'x'; size],
    };
    let (mut outbound, mut inbound) = EchoClient::new(channel).ping_pong(()).await?;
    let mut n = 0u64;
    while n < count {
        outbound.send(chunk.clone()).await?;
        let back = inbound.message().await?;
        expect(back.is_some_and(|c| c.data.len() == size), "PingPong echo")?;
        n += 1;
    }
    outbound.finish();
    expect(
        inbound.message().await?.is_none(),
        "PingPong ends after half-close",
    )?;
    Ok((n, n * size as u64))
}

//! tonic's client for the client-side figures, against tonic's server.
//!
//! `tonic-client SCENARIO --port N [--count N] [--size BYTES] [--threads T]`
//!
//! | scenario        | what one run does                                          |
//! |-----------------|------------------------------------------------------------|
//! | `check`         | one call of each RPC, answers compared with what was sent  |
//! | `server-stream` | one Pump call of `count` chunks of `size` bytes            |
//! | `client-stream` | one Drain call fed `count` chunks of `size` bytes          |
//! | `pingpong`      | one PingPong call, `count` sequential round trips          |
//! | `big-down`      | = server-stream, meant with size 1 MiB                     |
//! | `big-up`        | = client-stream, meant with size 1 MiB                     |
//!
//! Prints one line, `RESULT scenario=.. count=.. bytes=.. secs=..`, that bench/report.py
//! reads; the same line shape as bare-grpc's bench client (bench/clients/bare-client.rs).

use std::time::Instant;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Request;
use tonic::transport::Channel;
use tonic_peer::bench::collect_client::CollectClient;
use tonic_peer::bench::echo_client::EchoClient;
use tonic_peer::bench::stream_client::StreamClient;
use tonic_peer::bench::{Chunk, PumpRequest};
use tonic_peer::helloworld::HelloRequest;
use tonic_peer::helloworld::greeter_client::GreeterClient;
use tonic_peer::{Repeat, flag, runtime};

type Failure = Box<dyn std::error::Error>;

fn main() {
    let scenario = std::env::args().nth(1).unwrap_or_default();
    let port = flag("--port", 50051);
    let count = flag("--count", 1000);
    let size = flag("--size", 16) as usize;
    let outcome = runtime().block_on(async move {
        let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        let start = Instant::now();
        let (count, bytes) = match scenario.as_str() {
            "check" => check(channel).await?,
            "server-stream" | "big-down" => server_stream(channel, count, size).await?,
            "client-stream" | "big-up" => client_stream(channel, count, size).await?,
            "pingpong" => pingpong(channel, count, size).await?,
            other => return Err(format!("unknown scenario {other:?}").into()),
        };
        let secs = start.elapsed().as_secs_f64();
        println!("RESULT scenario={scenario} count={count} bytes={bytes} secs={secs:.6}");
        Ok::<(), Failure>(())
    });
    if let Err(e) = outcome {
        eprintln!("tonic-client: {e}");
        std::process::exit(1);
    }
}

async fn check(channel: Channel) -> Result<(u64, u64), Failure> {
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

async fn server_stream(channel: Channel, count: u64, size: usize) -> Result<(u64, u64), Failure> {
    let request = PumpRequest {
        count: count as u32,
        size: size as u32,
    };
    let mut inbound = StreamClient::new(channel).pump(request).await?.into_inner();
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

async fn client_stream(channel: Channel, count: u64, size: usize) -> Result<(u64, u64), Failure> {
    let chunks = Repeat::new(
        Chunk {
            data: vec![b'x'; size],
        },
        count,
    );
    let summary = CollectClient::new(channel)
        .drain(chunks)
        .await?
        .into_inner();
    expect(summary.count == count, "Drain counted every chunk")?;
    Ok((summary.count, summary.bytes))
}

async fn pingpong(channel: Channel, count: u64, size: usize) -> Result<(u64, u64), Failure> {
    let (tx, rx) = mpsc::channel(1);
    let chunk = Chunk {
        data: vec![b'x'; size],
    };
    tx.send(chunk.clone()).await?;
    let mut inbound = EchoClient::new(channel)
        .ping_pong(Request::new(ReceiverStream::new(rx)))
        .await?
        .into_inner();
    let mut n = 0u64;
    while let Some(back) = inbound.message().await? {
        expect(back.data.len() == size, "PingPong echo size")?;
        n += 1;
        if n == count {
            break;
        }
        tx.send(chunk.clone()).await?;
    }
    drop(tx);
    while inbound.message().await?.is_some() {}
    expect(n == count, "PingPong round trips")?;
    Ok((n, n * size as u64))
}

fn expect(ok: bool, what: &str) -> Result<(), Failure> {
    if ok {
        Ok(())
    } else {
        Err(format!("check failed: {what}").into())
    }
}

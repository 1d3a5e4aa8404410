//! The soak's mix of calls, shared by `bench/soak/client.rs` (a million calls against a server
//! process, ours or tonic's) and `tests/soak.rs` (the short version in the test command).
//!
//! Every twenty calls on the bench contract (`proto/bench.proto`, `proto/helloworld.proto`):
//!
//! | n % 20 | call | expected ending |
//! |---|---|---|
//! | 0..=6 | `Echo/Echo` 64 octets | OK, the same octets |
//! | 7 | `Greeter/SayHello` | OK, "Hello soak" |
//! | 8, 9 | `Echo/Echo` "fail" | INVALID_ARGUMENT from the handler |
//! | 10, 11 | `Stream/Pump` 8 × 64 octets | OK after 8 messages |
//! | 12, 13 | `Collect/Drain` 8 × 64 octets | OK, Summary { 8, 512 } |
//! | 14, 15 | `Echo/PingPong` 4 rounds | OK after 4 echoes |
//! | 16 | `Echo/PingPong`: one round, then waits for an echo that never comes; 5 ms deadline | DEADLINE_EXCEEDED |
//! | 17 | `Collect/Drain` of a stream that stalls after 2 chunks, 5 ms deadline | DEADLINE_EXCEEDED |
//! | 18 | `Echo/PingPong`: one round, then the caller drops the call | cancelled by the client |
//! | 19 | `Collect/Drain` of a stream that stalls after 2 chunks, dropped by the caller after 2 ms | cancelled by the client |
//!
//! Why no endless `Pump` for the deadline and cancellation rows: the server would fill the
//! client's whole window with messages each time, and the soak would measure that, not the
//! ends of calls.
#![allow(dead_code)]

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bare_grpc::{Channel, Code, Request, Status};
use bare_grpc_contracts::bench::collect_grpc::CollectClient;
use bare_grpc_contracts::bench::echo_grpc::EchoClient;
use bare_grpc_contracts::bench::stream_grpc::StreamClient;
use bare_grpc_contracts::bench::{Chunk, PumpRequest};
use bare_grpc_contracts::helloworld::HelloRequest;
use bare_grpc_contracts::helloworld::greeter_grpc::GreeterClient;

/// How the calls ended, by kind of ending.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub handler_errors: u64,
    pub deadlines: u64,
    pub cancelled: u64,
    /// Calls that ended in any way but the one expected (must stay 0).
    pub wrong: u64,
}

/// The ending of one call of the mix.
enum Ending {
    Ok,
    HandlerError,
    Deadline,
    Cancelled,
}

/// The short deadline of the deadline rows.
const SHORT: Duration = Duration::from_millis(5);

fn chunk() -> Chunk {
    Chunk {
        data: vec![b'x'; 64],
    }
}

/// `left` chunks, then nothing for ever (neither a chunk nor the end).
struct Stalls(u32);

impl futures_core::Stream for Stalls {
    type Item = Chunk;
    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        let this = self.get_mut();
        if this.0 == 0 {
            return Poll::Pending;
        }
        this.0 -= 1;
        Poll::Ready(Some(chunk()))
    }
}

/// `left` chunks, then the end.
struct Chunks(u32);

impl futures_core::Stream for Chunks {
    type Item = Chunk;
    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        let this = self.get_mut();
        if this.0 == 0 {
            return Poll::Ready(None);
        }
        this.0 -= 1;
        Poll::Ready(Some(chunk()))
    }
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what.to_owned()) }
}

fn expect_code(status: Status, code: Code, ending: Ending) -> Result<Ending, String> {
    if status.code() == code {
        Ok(ending)
    } else {
        Err(format!("expected {code:?}, got {status:?}"))
    }
}

/// Call `n` of the mix on `channel`.
async fn one_call(channel: &Channel, n: u64) -> Result<Ending, String> {
    let wrong = |s: Status| format!("{s:?}");
    match n % 20 {
        0..=6 => {
            let back = EchoClient::new(channel.clone())
                .echo(chunk())
                .await
                .map_err(wrong)?;
            check(back.into_inner().data.len() == 64, "echo")?;
            Ok(Ending::Ok)
        }
        7 => {
            let reply = GreeterClient::new(channel.clone())
                .say_hello(HelloRequest {
                    name: "soak".into(),
                })
                .await
                .map_err(wrong)?;
            check(reply.into_inner().message == "Hello soak", "greeting")?;
            Ok(Ending::Ok)
        }
        8 | 9 => {
            let outcome = EchoClient::new(channel.clone())
                .echo(Chunk {
                    data: b"fail".to_vec(),
                })
                .await;
            match outcome {
                Ok(_) => Err("a failing handler answered OK".into()),
                Err(status) => expect_code(status, Code::InvalidArgument, Ending::HandlerError),
            }
        }
        10 | 11 => {
            let mut stream = StreamClient::new(channel.clone())
                .pump(PumpRequest { count: 8, size: 64 })
                .await
                .map_err(wrong)?;
            let mut got = 0;
            while let Some(chunk) = stream.message().await.map_err(wrong)? {
                check(chunk.data.len() == 64, "pump chunk")?;
                got += 1;
            }
            check(got == 8, "pump count")?;
            Ok(Ending::Ok)
        }
        12 | 13 => {
            let summary = CollectClient::new(channel.clone())
                .drain(Chunks(8))
                .await
                .map_err(wrong)?
                .into_inner();
            check(summary.count == 8 && summary.bytes == 512, "drain summary")?;
            Ok(Ending::Ok)
        }
        14 | 15 => {
            let (mut outbound, mut inbound) = EchoClient::new(channel.clone())
                .ping_pong(())
                .await
                .map_err(wrong)?;
            for _ in 0..4 {
                outbound.send(chunk()).await.map_err(wrong)?;
                let back = inbound.message().await.map_err(wrong)?;
                check(back.is_some_and(|c| c.data.len() == 64), "ping-pong echo")?;
            }
            outbound.finish();
            check(
                inbound.message().await.map_err(wrong)?.is_none(),
                "ping-pong end",
            )?;
            Ok(Ending::Ok)
        }
        16 => {
            let mut request = Request::new(());
            request.set_timeout(SHORT);
            let outcome = async {
                let (mut outbound, mut inbound) =
                    EchoClient::new(channel.clone()).ping_pong(request).await?;
                outbound.send(chunk()).await?;
                inbound.message().await?;
                // Nothing more is sent, so nothing more comes back: the deadline ends it.
                inbound.message().await?;
                Ok::<_, Status>(outbound)
            }
            .await;
            match outcome {
                Ok(_) => Err("a waiting ping-pong ended before its deadline".into()),
                Err(status) => expect_code(status, Code::DeadlineExceeded, Ending::Deadline),
            }
        }
        17 => {
            let mut request = Request::new(Stalls(2));
            request.set_timeout(SHORT);
            match CollectClient::new(channel.clone()).drain(request).await {
                Ok(_) => Err("a stalled upload ended OK".into()),
                Err(status) => expect_code(status, Code::DeadlineExceeded, Ending::Deadline),
            }
        }
        18 => {
            let (mut outbound, mut inbound) = EchoClient::new(channel.clone())
                .ping_pong(())
                .await
                .map_err(wrong)?;
            outbound.send(chunk()).await.map_err(wrong)?;
            check(
                inbound.message().await.map_err(wrong)?.is_some(),
                "one echo",
            )?;
            drop((outbound, inbound));
            Ok(Ending::Cancelled)
        }
        _ => {
            let client = CollectClient::new(channel.clone());
            let call = client.drain(Stalls(2));
            match tokio::time::timeout(Duration::from_millis(2), call).await {
                Err(_elapsed) => Ok(Ending::Cancelled),
                Ok(outcome) => Err(format!("a stalled upload ended: {outcome:?}")),
            }
        }
    }
}

/// Runs calls `from..to` of the mix: `per_channel` tasks on each channel, each taking the next
/// call number until none is left. Wrong endings are counted, and the first few printed.
pub async fn run(channels: &[Channel], per_channel: usize, from: u64, to: u64) -> Tally {
    let next = Arc::new(AtomicU64::new(from));
    let mut tasks = tokio::task::JoinSet::new();
    for channel in channels {
        for _ in 0..per_channel {
            let (channel, next) = (channel.clone(), next.clone());
            tasks.spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= to {
                        return tally;
                    }
                    match one_call(&channel, n).await {
                        Ok(Ending::Ok) => tally.ok += 1,
                        Ok(Ending::HandlerError) => tally.handler_errors += 1,
                        Ok(Ending::Deadline) => tally.deadlines += 1,
                        Ok(Ending::Cancelled) => tally.cancelled += 1,
                        Err(what) => {
                            if tally.wrong < 3 {
                                eprintln!("soak: call {n} ended wrong: {what}");
                            }
                            tally.wrong += 1;
                        }
                    }
                }
            });
        }
    }
    let mut total = Tally::default();
    while let Some(tally) = tasks.join_next().await {
        let tally = tally.expect("a soak task panicked");
        total.ok += tally.ok;
        total.handler_errors += tally.handler_errors;
        total.deadlines += tally.deadlines;
        total.cancelled += tally.cancelled;
        total.wrong += tally.wrong;
    }
    total
}

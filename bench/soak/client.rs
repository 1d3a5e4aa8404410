//! The soak client (`bench/soak/run`, issue 15): drives a server process, ours or tonic's,
//! with our client, and samples the server's resident memory and open descriptors from
//! `/proc/PID`.
//!
//! ```text
//! soak-client soak    --port P --server-pid PID [--calls 1000000] [--every 50000]
//!                     [--connections 4] [--per-connection 8]
//! soak-client streams --port P --server-pid PID --connections C --per-connection S
//! ```
//!
//! `soak` runs the mix of `bench/soak/workload.rs` and prints one line per `--every` calls:
//! calls, server RSS (KiB), server descriptors, and the endings so far. `streams` opens C×S
//! bidi calls (`Echo/PingPong`, one round each so every stream is open on both sides), samples
//! the server's RSS with all of them in flight, then finishes them all and checks each ended
//! OK; it prints the memory per stream.

#[path = "workload.rs"]
mod workload;

use std::time::Instant;

use bare_grpc::Channel;
use bare_grpc_contracts::bench::Chunk;
use bare_grpc_contracts::bench::echo_grpc::EchoClient;

fn flag(args: &[String], name: &str, default: u64) -> u64 {
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} wants a number")),
    }
}

/// The server's VmRSS in KiB.
fn rss_kib(pid: u64) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

/// The server's open file descriptors.
fn fds(pid: u64) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

async fn channels(port: u64, count: u64) -> Vec<Channel> {
    let mut all = Vec::new();
    for _ in 0..count {
        let channel = Channel::builder(&format!("127.0.0.1:{port}"))
            .expect("address")
            .connect()
            .await
            .expect("connect");
        all.push(channel);
    }
    all
}

async fn soak(args: &[String], port: u64, pid: u64) {
    let calls = flag(args, "--calls", 1_000_000);
    let every = flag(args, "--every", 50_000);
    let connections = flag(args, "--connections", 4);
    let per_connection = flag(args, "--per-connection", 8) as usize;
    let channels = channels(port, connections).await;
    println!("calls\trss_kib\tfds\tok\thandler_errors\tdeadlines\tcancelled\twrong\tseconds");
    println!("0\t{}\t{}\t0\t0\t0\t0\t0\t0", rss_kib(pid), fds(pid));
    let start = Instant::now();
    let mut total = workload::Tally::default();
    let mut done = 0;
    while done < calls {
        let to = (done + every).min(calls);
        let tally = workload::run(&channels, per_connection, done, to).await;
        done = to;
        total.ok += tally.ok;
        total.handler_errors += tally.handler_errors;
        total.deadlines += tally.deadlines;
        total.cancelled += tally.cancelled;
        total.wrong += tally.wrong;
        println!(
            "{done}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{:.1}",
            rss_kib(pid),
            fds(pid),
            total.ok,
            total.handler_errors,
            total.deadlines,
            total.cancelled,
            total.wrong,
            start.elapsed().as_secs_f64()
        );
    }
    drop(channels);
    // The server closes each connection once it sees ours close.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    println!("closed\t{}\t{}", rss_kib(pid), fds(pid));
    if total.wrong > 0 {
        std::process::exit(1);
    }
}

async fn streams(args: &[String], port: u64, pid: u64) {
    let connections = flag(args, "--connections", 100);
    let per_connection = flag(args, "--per-connection", 100);
    let channels = channels(port, connections).await;
    // Let the connections settle before the baseline.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = rss_kib(pid);
    let chunk = Chunk {
        data: vec![b'x'; 64],
    };
    let mut open = Vec::new();
    for channel in &channels {
        for _ in 0..per_connection {
            let (mut outbound, mut inbound) = EchoClient::new(channel.clone())
                .ping_pong(())
                .await
                .expect("open a bidi call");
            outbound.send(chunk.clone()).await.expect("send");
            assert!(inbound.message().await.expect("echo").is_some());
            open.push((outbound, inbound));
        }
    }
    let total = open.len() as u64;
    let during = rss_kib(pid);
    let mut ok = 0u64;
    for (outbound, mut inbound) in open {
        outbound.finish();
        if matches!(inbound.message().await, Ok(None)) {
            ok += 1;
        }
    }
    let after = rss_kib(pid);
    let per_stream = (during.saturating_sub(before) * 1024) / total.max(1);
    println!(
        "streams={total} connections={connections} ok={ok} rss_before_kib={before} \
         rss_in_flight_kib={during} rss_after_kib={after} bytes_per_stream={per_stream}"
    );
    if ok != total {
        std::process::exit(1);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port = flag(&args, "--port", 50051);
    let pid = flag(&args, "--server-pid", 0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("soak") => runtime.block_on(soak(&args, port, pid)),
        Some("streams") => runtime.block_on(streams(&args, port, pid)),
        _ => {
            eprintln!("usage: soak-client soak|streams --port P --server-pid PID ...");
            std::process::exit(2);
        }
    }
}

//! The short soak (issue 15; the long one is `bench/soak`): 5,000 calls of warm-up, then
//! 50,000 more of the mix in `bench/soak/workload.rs` (all four kinds; successes, handler
//! errors, deadlines and cancellations) from four connections, eight callers each, client and
//! server in this process. A counting allocator tracks live heap blocks: a leak of one
//! allocation per call, on either side, would add 50,000 of them; the bound is 5,000 (what
//! stays alive legitimately: the connections' grown buffers and tables). RSS and open file
//! descriptors are reported, and the descriptors must return to the baseline once the channels
//! are dropped.

#[path = "../bench/soak/workload.rs"]
mod workload;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use bare_grpc::{Channel, Request, Response, ResponseSink, Server, Status, Streaming};
use bare_grpc_contracts::bench::collect_grpc::{Collect, CollectServer};
use bare_grpc_contracts::bench::echo_grpc::{Echo, EchoServer};
use bare_grpc_contracts::bench::stream_grpc::{Stream, StreamServer};
use bare_grpc_contracts::bench::{Chunk, PumpRequest, Summary};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};

/// The system allocator, counting blocks alive.
struct Counting;

static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes straight to `System`; the counter is only arithmetic beside it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above; a block moved is still one block.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The bench contract's services, as `examples/greeter-server.rs` serves them.
struct Bench;

impl Greeter for Bench {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let message = format!("Hello {}", request.into_inner().name);
        Ok(Response::new(HelloReply { message }))
    }
}

impl Stream for Bench {
    async fn pump(
        &self,
        request: Request<PumpRequest>,
        mut sink: ResponseSink<Chunk>,
    ) -> Result<(), Status> {
        let PumpRequest { count, size } = request.into_inner();
        let chunk = Chunk {
            data: vec![b'x'; size as usize],
        };
        for _ in 0..count {
            sink.send(&chunk).await?;
        }
        Ok(())
    }
}

impl Collect for Bench {
    async fn drain(&self, request: Request<Streaming<Chunk>>) -> Result<Response<Summary>, Status> {
        let mut inbound = request.into_inner();
        let mut summary = Summary::default();
        while let Some(chunk) = inbound.message().await? {
            summary.count += 1;
            summary.bytes += chunk.data.len() as u64;
        }
        Ok(Response::new(summary))
    }
}

impl Echo for Bench {
    async fn ping_pong(
        &self,
        request: Request<Streaming<Chunk>>,
        mut sink: ResponseSink<Chunk>,
    ) -> Result<(), Status> {
        let mut inbound = request.into_inner();
        while let Some(chunk) = inbound.message().await? {
            sink.send(chunk).await?;
        }
        Ok(())
    }

    async fn echo(&self, request: Request<Chunk>) -> Result<Response<Chunk>, Status> {
        let chunk = request.into_inner();
        if chunk.data == b"fail" {
            return Err(Status::invalid_argument("asked to fail"));
        }
        Ok(Response::new(chunk))
    }
}

fn rss_kib() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<usize>().ok())
        .unwrap_or(0)
        * 4
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// Live blocks once the calls in flight have wound down (a cancelled call's last frames are
/// handled a moment after the caller let go): the lowest of a few samples.
async fn settled_blocks() -> isize {
    let mut lowest = isize::MAX;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        lowest = lowest.min(LIVE_BLOCKS.load(Ordering::Relaxed));
    }
    lowest
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_calls_leak_nothing() {
    const WARM_UP: u64 = 5_000;
    const CALLS: u64 = 50_000;
    const EVERY: u64 = 10_000;
    const BOUND: isize = 5_000;
    let fds_before = open_fds();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .add_service(GreeterServer::new(Bench))
        .add_service(StreamServer::new(Bench))
        .add_service(CollectServer::new(Bench))
        .add_service(EchoServer::new(Bench))
        .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(Channel::connect(&addr.to_string()).await.unwrap());
    }
    let start = Instant::now();
    let warm = workload::run(&channels, 8, 0, WARM_UP).await;
    assert_eq!(warm.wrong, 0, "{warm:?}");
    let base_blocks = settled_blocks().await;
    let base_rss = rss_kib();
    let mut total = workload::Tally::default();
    let mut done = WARM_UP;
    while done < WARM_UP + CALLS {
        let tally = workload::run(&channels, 8, done, done + EVERY).await;
        done += EVERY;
        total.ok += tally.ok;
        total.handler_errors += tally.handler_errors;
        total.deadlines += tally.deadlines;
        total.cancelled += tally.cancelled;
        total.wrong += tally.wrong;
        eprintln!(
            "soak: {done} calls, live blocks {:+}, RSS {} KiB, fds {}",
            LIVE_BLOCKS.load(Ordering::Relaxed) - base_blocks,
            rss_kib(),
            open_fds()
        );
    }
    let grown = settled_blocks().await - base_blocks;
    let rss_grown = rss_kib() as isize - base_rss as isize;
    eprintln!(
        "soak: {CALLS} calls after {WARM_UP} of warm-up in {:?}: {total:?}; live blocks {grown:+}, \
         RSS {rss_grown:+} KiB",
        start.elapsed()
    );
    assert_eq!(total.wrong, 0, "{total:?}");
    assert!(total.handler_errors > 0 && total.deadlines > 0 && total.cancelled > 0);
    assert!(
        grown < BOUND,
        "{grown} more heap blocks alive after {CALLS} calls (bound {BOUND})"
    );
    drop(channels);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the server drained")
        .unwrap()
        .unwrap();
    // Every connection's descriptor is closed again (listener included).
    let deadline = Instant::now() + Duration::from_secs(5);
    while open_fds() > fds_before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        open_fds() <= fds_before,
        "{} descriptors open, {fds_before} before",
        open_fds()
    );
}

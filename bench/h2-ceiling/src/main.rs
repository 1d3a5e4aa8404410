//! The raw-h2 ceiling: the most a gRPC server on the `h2` crate can do.
//!
//! `h2-ceiling --port N --threads T [--spawn] [--per-message]`
//!
//! Every POST is read to its end (its DATA released to flow control, as any server must)
//! and answered with bytes encoded once at start-up:
//!
//! ```text
//!   HEADERS  :status 200, content-type: application/grpc
//!   DATA     00 00 00 00 0d | 0a 0b "Hello world"        (a HelloReply, PROTOCOL-HTTP2)
//!   HEADERS  grpc-status: 0                              (trailers, END_STREAM)
//! ```
//!
//! The one exception is a `:path` ending in `/Pump`: its body is read as a PumpRequest
//! `{count = 1, size = 2}` and answered with `count` copies of one pre-encoded Chunk of
//! `size` bytes, packed as many to a DATA frame as fit in 16 KiB, as a runtime that
//! coalesces its writes can do; with `--per-message`, one `send_data` (so one DATA frame)
//! per message instead.
//!
//! Why: no message decoding, no routing table, no per-call allocation beyond what h2 itself
//! needs. Whatever a runtime adds on top of this is its own cost. By default each
//! connection polls its streams inside its own task (`Streams` below) and answers every
//! stream it accepted before h2 flushes, so one socket write carries many answers; `--spawn`
//! starts one tokio task per stream instead, the model hyper and tonic use, to measure that
//! choice.
//!
//! It rejects nothing: a request that is not gRPC gets the same answer. It is a measuring
//! instrument, not a server.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use bytes::{BufMut, Bytes, BytesMut};
use h2::RecvStream;
use h2::server::SendResponse;
use http::{HeaderMap, HeaderValue, Request, Response};
use tokio::net::{TcpListener, TcpStream};

/// The answer to everything but Pump, encoded once.
struct Answers {
    hello: Bytes,
    trailers: HeaderMap,
    batch: bool,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    let port = flag("--port", 50051) as u16;
    let spawn = args.iter().any(|a| a == "--spawn");
    let batch = !args.iter().any(|a| a == "--per-message");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(flag("--threads", 1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from_static("0"));
    let answers = Arc::new(Answers {
        hello: message(&hello_reply()),
        trailers,
        batch,
    });
    runtime.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                continue;
            };
            let _ = socket.set_nodelay(true);
            tokio::spawn(connection(socket, answers.clone(), spawn));
        }
    });
}

/// HelloReply { message: "Hello world" } as protobuf bytes.
fn hello_reply() -> Vec<u8> {
    let text = b"Hello world";
    let mut out = vec![0x0a, text.len() as u8];
    out.extend_from_slice(text);
    out
}

/// One gRPC message: flag 0, big-endian length, the bytes.
fn message(body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.put_u8(0);
    out.put_u32(body.len() as u32);
    out.put_slice(body);
    out.freeze()
}

async fn connection(socket: TcpStream, answers: Arc<Answers>, spawn: bool) {
    let Ok(mut conn) = h2::server::handshake(socket).await else {
        return;
    };
    if spawn {
        while let Some(Ok((request, respond))) = conn.accept().await {
            tokio::spawn(answer(request, respond, answers.clone()));
        }
        return;
    }
    let mut streams = Streams::new();
    // Accept every stream that has arrived, then answer all of them, then let h2 flush: each
    // `poll_accept` writes out whatever is buffered, so answering between two accepts would
    // cost one socket write per call instead of one per batch.
    std::future::poll_fn(|cx| {
        loop {
            match conn.poll_accept(cx) {
                Poll::Ready(Some(Ok((request, respond)))) => {
                    streams.push(Box::pin(answer(request, respond, answers.clone())));
                    continue;
                }
                Poll::Ready(_) => return Poll::Ready(()),
                Poll::Pending => {}
            }
            if !streams.poll(cx) {
                return Poll::Pending;
            }
        }
    })
    .await;
}

async fn answer(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    answers: Arc<Answers>,
) {
    let pump = request.uri().path().ends_with("/Pump");
    let mut body = request.into_body();
    let mut head = Vec::new();
    while let Some(data) = body.data().await {
        let Ok(data) = data else { return };
        let _ = body.flow_control().release_capacity(data.len());
        if pump && head.len() < 64 {
            head.extend_from_slice(&data);
        }
    }
    let mut response = Response::new(());
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/grpc"));
    let Ok(mut send) = respond.send_response(response, false) else {
        return;
    };
    if pump {
        let (count, size) = pump_request(head.get(5..).unwrap_or_default());
        if pump_chunks(&mut send, count, size, answers.batch)
            .await
            .is_err()
        {
            return;
        }
    } else if send.send_data(answers.hello.clone(), false).is_err() {
        return;
    }
    let _ = send.send_trailers(answers.trailers.clone());
}

/// Fields 1 and 2 (varints) of a PumpRequest; anything else is skipped or ends the scan.
fn pump_request(mut bytes: &[u8]) -> (u64, u64) {
    let mut fields = [0u64; 3];
    while let Some((key, rest)) = varint(bytes) {
        let Some((value, rest)) = varint(rest) else {
            break;
        };
        if key & 7 != 0 {
            break;
        }
        if let Some(slot) = fields.get_mut((key >> 3) as usize) {
            *slot = value;
        }
        bytes = rest;
    }
    (fields[1], fields[2])
}

fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// Sends `count` Chunks of `size` bytes: one per `send_data`, or as many as fit in 16 KiB.
async fn pump_chunks(
    send: &mut h2::SendStream<Bytes>,
    count: u64,
    size: u64,
    batch: bool,
) -> Result<(), h2::Error> {
    let mut chunk = vec![0x0a];
    let mut n = size;
    while n >= 0x80 {
        chunk.push((n as u8) | 0x80);
        n >>= 7;
    }
    chunk.push(n as u8);
    chunk.resize(chunk.len() + size as usize, b'x');
    let one = message(&chunk);
    let per_batch = if batch {
        (16 * 1024 / one.len()).max(1) as u64
    } else {
        1
    };
    let mut batch = BytesMut::with_capacity(one.len() * per_batch as usize);
    for _ in 0..per_batch {
        batch.put_slice(&one);
    }
    let batch = batch.freeze();
    let mut left = count;
    let mut pending = Bytes::new();
    loop {
        if pending.is_empty() {
            if left == 0 {
                return Ok(());
            }
            let n = left.min(per_batch);
            pending = batch.slice(..n as usize * one.len());
            left -= n;
        }
        send.reserve_capacity(pending.len());
        let mut room = send.capacity();
        if room == 0 {
            room = match std::future::poll_fn(|cx| send.poll_capacity(cx)).await {
                Some(room) => room?,
                None => return Err(h2::Error::from(h2::Reason::CANCEL)),
            };
        }
        let n = room.min(pending.len());
        send.send_data(pending.split_to(n), false)?;
    }
}

/// The answer to one stream, as the connection task holds it.
type StreamFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The streams of one connection, polled inside the connection's task.
///
/// A slot is polled only after its own waker fired: each waker pushes its slot number on
/// a shared queue and wakes the connection task.
struct Streams {
    slots: Vec<Option<(StreamFuture, Waker)>>,
    free: Vec<usize>,
    ready: Arc<ReadyQueue>,
    batch: Vec<usize>,
}

#[derive(Default)]
struct ReadyQueue {
    slots: Mutex<Vec<usize>>,
    task: Mutex<Option<Waker>>,
}

struct SlotWaker {
    slot: usize,
    ready: Arc<ReadyQueue>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.slots.lock().expect("queue").push(self.slot);
        if let Some(task) = self.ready.task.lock().expect("task").as_ref() {
            task.wake_by_ref();
        }
    }
}

impl Streams {
    fn new() -> Streams {
        Streams {
            slots: Vec::new(),
            free: Vec::new(),
            ready: Arc::default(),
            batch: Vec::new(),
        }
    }

    fn push(&mut self, future: StreamFuture) {
        let slot = self.free.pop().unwrap_or(self.slots.len());
        let waker = Waker::from(Arc::new(SlotWaker {
            slot,
            ready: self.ready.clone(),
        }));
        if slot == self.slots.len() {
            self.slots.push(None);
        }
        self.slots[slot] = Some((future, waker));
        self.ready.slots.lock().expect("queue").push(slot);
    }

    /// Polls every woken stream; false when none was woken.
    fn poll(&mut self, cx: &mut Context<'_>) -> bool {
        {
            let mut task = self.ready.task.lock().expect("task");
            if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
                *task = Some(cx.waker().clone());
            }
        }
        let mut polled = false;
        loop {
            std::mem::swap(
                &mut self.batch,
                &mut *self.ready.slots.lock().expect("queue"),
            );
            if self.batch.is_empty() {
                return polled;
            }
            polled = true;
            for slot in self.batch.drain(..) {
                let Some((future, waker)) = self.slots[slot].as_mut() else {
                    continue;
                };
                if future
                    .as_mut()
                    .poll(&mut Context::from_waker(waker))
                    .is_ready()
                {
                    self.slots[slot] = None;
                    self.free.push(slot);
                }
            }
        }
    }
}

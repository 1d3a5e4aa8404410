//! The outbound half of a client call: request messages written into the HTTP/2 stream under
//! the peer's flow control.
//!
//! ```text
//!   encode message -> [prefix | bytes] -> reserve_capacity(n) -> wait poll_capacity
//!                                      -> send_data(chunk <= capacity) -> ... -> END_STREAM
//! ```
//!
//! The rule (RFC 9113 §5.2): a sender may not send more DATA than the receiver's window allows.
//! h2 would accept any amount and buffer the excess itself, so a fast producer facing a slow
//! server would grow memory without bound. We therefore ask h2 for capacity, wait until it is
//! assigned, and hand over at most that much; the next bytes are produced only once the
//! previous ones are in h2's hands, which is what makes both request paths back-pressure
//! points.
//!
//! How messages become DATA frames (RFC 9113 §6.1; PROTOCOL-HTTP2 § Data Frames: message edges
//! need not match frame edges):
//!
//! ```text
//!   client streaming  messages ready together -> one buffer (<= 16 KiB + 1 message) -> one send_data
//!                     the stream says Pending / ends -> the buffer goes out at once
//!   bidi              RequestSink::send(msg) -> queue(1) -> writer task -> one send_data per message
//!                     (a block_on caller, window free, nothing queued: send_data + flush itself)
//! ```
//!
//! The rule for batching: a message is only ever combined with messages that are already
//! there. A client stream's ready messages are coalesced (one frame per tiny message costs a
//! frame and a trip through h2 each, and h2 peers close the connection with
//! GOAWAY(ENHANCE_YOUR_CALM) when too many small frames pile up); a bidi message goes out on
//! its own, because the caller may wait for its answer before producing the next one.
//!
//! Half-close is END_STREAM (PROTOCOL-HTTP2 § Requests: "the client half-closes ... by sending
//! END_STREAM"): on the last batch of a client stream, or an empty DATA frame after a bidi
//! call's queued messages, which needs no window.
//!
//! [`Upload`] is the request body of a unary or client-streaming call: it writes one encoded
//! message, or the caller's stream in batches, while the call reads the response; under a retry
//! policy with buffering it records what it read so another attempt can send it again.
//!
//! What it rejects: a message over the send limit ends the call with RESOURCE_EXHAUSTED before
//! a byte of it is sent, and the stream is reset with CANCEL so the server does not wait for
//! the rest. A sink dropped without [`RequestSink::finish`] resets the stream with CANCEL: an
//! abandoned upload must never look complete to the server.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use h2::SendStream;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::driver::ConnectionDriver;
use crate::codec::encode_message;
use crate::compression::Encoding;
use crate::interceptor::CallHooks;
use crate::status::Status;
use crate::streaming::{SharedSend, reset_shared, status_from_h2};
use crate::wire::PREFIX_LEN;

/// Encodes `msg` into a fresh buffer with `encoding`, refusing it when the message on the wire
/// (after compression, without the prefix) would exceed `max_send`, and shows it to the
/// interceptors.
pub(crate) fn encode_request<M: prost::Message + 'static>(
    msg: &M,
    encoding: Encoding,
    max_send: usize,
    hooks: Option<&CallHooks>,
) -> Result<Bytes, Status> {
    let mut buf = BytesMut::new();
    encode_into(msg, encoding, max_send, hooks, &mut buf)?;
    Ok(buf.freeze())
}

/// Appends `msg`, length-prefixed, to `buf` (which may already hold other messages) and shows
/// it to the interceptors with its size on the wire; RESOURCE_EXHAUSTED, with `buf` as it was,
/// when that size (without the prefix) exceeds `max_send`.
fn encode_into<M: prost::Message + 'static>(
    msg: &M,
    encoding: Encoding,
    max_send: usize,
    hooks: Option<&CallHooks>,
    buf: &mut BytesMut,
) -> Result<(), Status> {
    let start = buf.len();
    encode_message(msg, encoding, buf)?;
    let len = buf.len() - start - PREFIX_LEN;
    if len > max_send {
        buf.truncate(start);
        return Err(Status::resource_exhausted(format!(
            "request message of {len} bytes exceeds the send limit of {max_send} bytes"
        )));
    }
    if let Some(hooks) = hooks {
        hooks.request(msg, len);
    }
    Ok(())
}

/// Writes all of `data` (and END_STREAM when `end_stream`), never more than the window
/// allows. `data` shrinks as chunks go out, so the call can be resumed after `Pending`.
pub(crate) fn poll_write(
    send: &mut SendStream<Bytes>,
    data: &mut Bytes,
    end_stream: bool,
    cx: &mut Context<'_>,
) -> Poll<Result<(), h2::Error>> {
    if data.is_empty() {
        if end_stream {
            send.send_data(Bytes::new(), true)?;
        }
        return Poll::Ready(Ok(()));
    }
    loop {
        send.reserve_capacity(data.len());
        let capacity = send.capacity();
        if capacity == 0 {
            match ready!(send.poll_capacity(cx)) {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => {
                    // The stream can no longer send: poll_reset tells why.
                    return match send.poll_reset(cx) {
                        Poll::Ready(Ok(reason)) => Poll::Ready(Err(h2::Error::from(reason))),
                        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                        Poll::Pending => Poll::Ready(Err(h2::Error::from(h2::Reason::CANCEL))),
                    };
                }
            }
        }
        let chunk = data.split_to(capacity.min(data.len()));
        let last = data.is_empty();
        send.send_data(chunk, end_stream && last)?;
        if last {
            return Poll::Ready(Ok(()));
        }
    }
}

/// [`poll_write`] on the shared send half (the lock is held only for the poll itself).
pub(crate) fn poll_write_shared(
    send: &SharedSend,
    data: &mut Bytes,
    end_stream: bool,
    cx: &mut Context<'_>,
) -> Poll<Result<(), h2::Error>> {
    let mut guard = crate::lock::lock(send);
    poll_write(&mut guard, data, end_stream, cx)
}

/// The request side of a bidi call: send messages, then [`RequestSink::finish`] to half-close.
///
/// Each message is delivered promptly, on its own: a bidi call may be a conversation (send
/// one, wait for the answer, send the next), so holding a message back to batch it with the
/// next one would deadlock a ping-pong. (Client streaming, whose messages come from a
/// `Stream` the call drives itself, does batch the messages that are ready at once; see
/// `Upload`.)
///
/// `send` encodes the message on the caller's task. From a caller outside the runtime's tasks
/// (`block_on`), a message that the stream's window takes whole, with nothing queued before it,
/// goes straight into h2 and onto the socket from the caller's thread (see
/// `try_send_direct`); otherwise it is queued for the call's writer task,
/// which hands it to h2 within the peer's flow-control window. The queue holds one message, so
/// a fast producer facing a slow server waits in `send` (back-pressure) with at most two
/// messages of the call outside h2. The writer task runs on the runtime, next to the HTTP/2
/// connection task: h2 wakes its connection task while holding its internal lock, and when
/// the caller wrote into h2 itself from another thread (a `block_on` caller, as a
/// `#[tokio::main]` program is) that wake-up contended on the lock, which cost two futex calls
/// and two context switches per message. (The direct path above avoids that by holding h2's
/// wake back while it queues and polling the connection itself after.) An error from `send`
/// means the call is over; the call's final status is what the paired `Streaming` returns.
pub struct RequestSink<In> {
    /// Queue to the writer task; `None` once finished or failed, which is what tells `send` to
    /// refuse and `Drop` not to reset.
    queue: Option<mpsc::Sender<Bytes>>,
    /// What the writer task and this sink share: the send half and the writer's outcome.
    shared: Arc<WriterShared>,
    /// Set when this sink writes into h2 and flushes the connection itself while the stream
    /// has window (see `send` and `driver.rs`).
    driver: Option<Arc<ConnectionDriver>>,
    /// The call's grpc-encoding.
    encoding: Encoding,
    /// Compress the next messages with `encoding` (a call may send some uncompressed).
    compress: bool,
    /// The call's send limit.
    max_send: usize,
    /// The call's deadline, if any.
    deadline: Option<Instant>,
    /// The call's interceptors, shown each message sent.
    hooks: Option<Arc<CallHooks>>,
    /// The message type.
    _message: PhantomData<fn(In)>,
}

/// The state a bidi call's sink shares with its writer task.
struct WriterShared {
    /// The stream's send half (also held by the call's `Streaming`, which resets it at the
    /// deadline).
    send: SharedSend,
    /// Set by `finish`: when the queue closes, the writer half-closes instead of resetting.
    finished: AtomicBool,
    /// Why the writer stopped early (the stream was reset or the connection broke).
    failure: Mutex<Option<Status>>,
    /// Messages handed to the writer and not yet wholly in h2: while there are any, `send`
    /// queues behind them, so messages keep their order.
    in_flight: AtomicUsize,
}

/// The writer task of a bidi call: each queued message into h2 as the window allows; at the
/// end, END_STREAM after `finish`, RST_STREAM(CANCEL) when the sink was dropped.
async fn write_queued(shared: Arc<WriterShared>, mut queue: mpsc::Receiver<Bytes>) {
    while let Some(mut data) = queue.recv().await {
        let written =
            std::future::poll_fn(|cx| poll_write_shared(&shared.send, &mut data, false, cx)).await;
        if let Err(e) = written {
            *crate::lock::lock(&shared.failure) = Some(status_from_h2(&e));
            return;
        }
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
    if shared.finished.load(Ordering::Acquire) {
        let mut guard = crate::lock::lock(&shared.send);
        // An error here means the stream is already over; the response side reports why.
        let _ = guard.send_data(Bytes::new(), true);
    } else {
        reset_shared(&shared.send, h2::Reason::CANCEL);
    }
}

impl<In> RequestSink<In> {
    /// A sink for a call whose request HEADERS are sent; spawns the call's writer task (must
    /// run inside a tokio runtime, as every call does).
    pub(crate) fn new(
        send: SharedSend,
        driver: Arc<ConnectionDriver>,
        encoding: Encoding,
        max_send: usize,
        deadline: Option<Instant>,
        hooks: Option<Arc<CallHooks>>,
    ) -> Self {
        let shared = Arc::new(WriterShared {
            send,
            finished: AtomicBool::new(false),
            failure: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
        });
        // Only a `block_on` caller writes and flushes itself (see `relay::blocking_caller`).
        let direct = crate::client::relay::blocking_caller();
        let (queue, queued) = mpsc::channel(1);
        tokio::spawn(write_queued(shared.clone(), queued));
        RequestSink {
            queue: Some(queue),
            shared,
            driver: direct.then_some(driver),
            encoding,
            compress: true,
            max_send,
            deadline,
            hooks,
            _message: PhantomData,
        }
    }

    /// Half-closes the request side (END_STREAM) after the messages already sent: the server
    /// sees the end of the request stream. The response side carries on.
    pub fn finish(mut self) {
        self.shared.finished.store(true, Ordering::Release);
        // Closing the queue tells the writer: after the queued messages, END_STREAM.
        self.queue = None;
    }

    /// Whether the following messages are compressed with the call's `grpc-encoding` (true
    /// unless set otherwise; meaningless for a call without compression). A message sent
    /// uncompressed carries flag 0 in its prefix, which PROTOCOL-HTTP2 allows per message.
    pub fn set_message_compression(&mut self, compress: bool) {
        self.compress = compress;
    }

    /// Ends the call from this side with `status`, resetting the stream.
    fn fail(&mut self, status: Status) -> Status {
        self.queue = None;
        reset_shared(&self.shared.send, h2::Reason::CANCEL);
        status
    }

    /// The writer task stopped: why, as the call's caller should see it.
    fn writer_failure(&mut self) -> Status {
        self.queue = None;
        crate::lock::lock(&self.shared.failure)
            .clone()
            .unwrap_or_else(|| Status::cancelled("the request stream is closed"))
    }
}

impl<In: prost::Message + 'static> RequestSink<In> {
    /// Sends one message: returns once it is queued for the call's writer task (which waits,
    /// at most one message ahead, for the peer's window). RESOURCE_EXHAUSTED (and the call is
    /// cancelled) when it is over the send limit; DEADLINE_EXCEEDED when the call's deadline
    /// passes while waiting.
    pub async fn send(&mut self, msg: In) -> Result<(), Status> {
        if self.queue.is_none() {
            return Err(Status::failed_precondition("the request stream is closed"));
        }
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return Err(self.fail(Status::deadline_exceeded(
                "deadline exceeded before sending a request message",
            )));
        }
        let encoding = if self.compress {
            self.encoding
        } else {
            Encoding::Identity
        };
        let data = match encode_request(&msg, encoding, self.max_send, self.hooks.as_deref()) {
            Ok(data) => data,
            Err(status) => return Err(self.fail(status)),
        };
        let data = match self.try_send_direct(data) {
            Ok(None) => return Ok(()),
            Ok(Some(data)) => data,
            Err(status) => return Err(status),
        };
        let Some(queue) = self.queue.as_ref() else {
            return Err(self.writer_failure());
        };
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        let queued = match self.deadline {
            None => queue.send(data).await,
            Some(deadline) => match tokio::time::timeout_at(deadline, queue.send(data)).await {
                Ok(queued) => queued,
                Err(_) => {
                    return Err(self.fail(Status::deadline_exceeded(
                        "deadline exceeded while sending a request message",
                    )));
                }
            },
        };
        match queued {
            Ok(()) => Ok(()),
            Err(_) => Err(self.writer_failure()),
        }
    }
}

impl<In> RequestSink<In> {
    /// A `block_on` caller's message straight into h2 and onto the socket from this thread,
    /// when nothing is queued before it and the stream's window takes all of it: `Ok(None)`
    /// once sent, `Ok(Some(data))` to queue for the writer task as before (no window: waiting
    /// for it is the writer's job, so `send` never stalls on a peer that is not reading).
    ///
    /// h2 wakes its connection task from `send_data` while holding its lock; under
    /// `driver::queueing` that wake is held back, and the connection is then polled here,
    /// outside the lock, which writes the frame. Measured on the ping-pong (see `driver.rs`):
    /// per round trip 3.2 -> 2.0 context switches, no eventfd write to unpark the worker.
    fn try_send_direct(&mut self, data: Bytes) -> Result<Option<Bytes>, Status> {
        let Some(driver) = &self.driver else {
            return Ok(Some(data));
        };
        if self.shared.in_flight.load(Ordering::Acquire) != 0 {
            return Ok(Some(data));
        }
        let sent = {
            let mut send = crate::lock::lock(&self.shared.send);
            send.reserve_capacity(data.len());
            if send.capacity() < data.len() {
                return Ok(Some(data));
            }
            let _queueing = crate::client::driver::queueing();
            send.send_data(data, false)
        };
        driver.flush();
        match sent {
            Ok(()) => Ok(None),
            Err(e) => {
                // The stream is over (reset, or the connection broke): as a writer failure.
                self.queue = None;
                Err(status_from_h2(&e))
            }
        }
    }
}

impl<In> Drop for RequestSink<In> {
    fn drop(&mut self) {
        if self.queue.is_some() {
            reset_shared(&self.shared.send, h2::Reason::CANCEL);
        }
    }
}

impl<In> std::fmt::Debug for RequestSink<In> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSink")
            .field("encoding", &self.encoding)
            .field("done", &self.queue.is_none())
            .finish()
    }
}

/// Request messages gathered into one buffer before they are handed to h2 as one write: at
/// most this many bytes, plus the message that crossed the line. Measured with
/// `bench-client client-stream` (1,000,000 messages of 16 bytes): 16 KiB (one DATA frame at
/// the default SETTINGS_MAX_FRAME_SIZE) already makes the per-write cost vanish from the
/// profile, and larger batches only hold more memory per call.
const BATCH_BYTES: usize = 16 * 1024;

/// The caller's request stream, encoding each message into a buffer given by the upload.
trait EncodeInto: Send {
    /// Appends the next message, encoded, to `buf`: `Ready(Some(Ok(())))` for one message,
    /// `Ready(None)` at the end of the stream, `Ready(Some(Err(_)))` for a message that cannot
    /// be sent (over the send limit, unencodable), `Pending` while the caller has none ready.
    fn poll_encode(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Option<Result<(), Status>>>;
}

/// Where the request messages of a unary or client-streaming call come from, kept across
/// attempts: the caller's stream (encoded as it is read) and, under a retry policy with
/// buffering, a copy of every message already read.
pub(crate) struct Body {
    /// More messages to come; `None` once exhausted (or for a single encoded message).
    source: Option<Pin<Box<dyn EncodeInto>>>,
    /// Copies of the messages read so far, for a retry.
    recording: Option<Recording>,
    /// Has any message been read from `source`?
    pulled: bool,
}

impl Body {
    /// Every message of `source`, encoded as the window allows, shown to the interceptors as
    /// it is read, and recorded up to `buffer` bytes when that is set.
    pub(crate) fn stream<S, In>(
        source: S,
        encoding: Encoding,
        max_send: usize,
        hooks: Option<Arc<CallHooks>>,
        buffer: Option<usize>,
    ) -> Body
    where
        S: Stream<Item = In> + Send + 'static,
        In: prost::Message + 'static,
    {
        let encoded = Encode {
            inner: Box::pin(source),
            encoding,
            max_send,
            hooks,
        };
        Body {
            source: Some(Box::pin(encoded)),
            recording: buffer.map(|limit| Recording {
                batches: Vec::new(),
                bytes: 0,
                limit,
                overflowed: false,
            }),
            pulled: false,
        }
    }
}

/// The buffered request messages of a client-streaming call under a retry policy.
struct Recording {
    /// Every batch of encoded messages read so far, in order (cheap clones of the bytes sent).
    batches: Vec<Bytes>,
    /// Their total size.
    bytes: usize,
    /// The bound from `RetryPolicy::buffer_client_stream`.
    limit: usize,
    /// The stream outgrew the bound: the copies are gone and the call cannot be replayed.
    overflowed: bool,
}

impl Recording {
    /// Keeps a copy of `batch`, or gives up on replaying when it would exceed the bound.
    fn keep(&mut self, batch: &Bytes) {
        if self.overflowed {
            return;
        }
        if self.bytes + batch.len() > self.limit {
            self.overflowed = true;
            self.batches = Vec::new();
            return;
        }
        self.bytes += batch.len();
        self.batches.push(batch.clone());
    }
}

/// The request body of one attempt: one encoded message, or a stream of messages encoded as
/// the window allows (after any buffered ones a retry sends again); always ends with
/// END_STREAM.
///
/// Messages of a stream are coalesced: while the caller's stream has messages ready, they are
/// encoded back to back into one buffer, which goes to h2 as one `send_data` (h2 cuts it into
/// DATA frames of the peer's SETTINGS_MAX_FRAME_SIZE) when the stream has nothing more ready,
/// ends, or the buffer reaches [`BATCH_BYTES`]. One DATA frame per tiny message would cost a
/// frame header and a trip through h2 per message, and h2 receivers (0.4.20) close a
/// connection with GOAWAY(ENHANCE_YOUR_CALM) once too many small unread frames pile up. The
/// next batch is read only after the previous one is handed to h2 within the window, so a
/// call holds at most one batch. A message is never held back waiting for another: a stream
/// that yields `Pending` gets what it gave sent at once.
pub(crate) struct Upload {
    /// Where the bytes go.
    send: SharedSend,
    /// Bytes not yet handed to h2.
    pending: Bytes,
    /// Buffered batches to send again before reading further (a retried client stream).
    replay: VecDeque<Bytes>,
    /// The messages still to read, and what has been recorded of them.
    body: Body,
    /// Where the next batch is encoded; empty between polls.
    batch: BytesMut,
    /// Everything sent, END_STREAM included, or the stream failed: nothing more to do.
    done: bool,
    /// The upload failed on this side (a message over the send limit): never replayable.
    failed_locally: bool,
}

impl Upload {
    /// An upload of one already-encoded message.
    pub(crate) fn bytes(send: SharedSend, data: Bytes) -> Upload {
        Upload {
            send,
            pending: data,
            replay: VecDeque::new(),
            body: Body {
                source: None,
                recording: None,
                pulled: false,
            },
            batch: BytesMut::new(),
            done: false,
            failed_locally: false,
        }
    }

    /// An upload of `body`: first the messages recorded by earlier attempts, then the rest.
    pub(crate) fn resume(send: SharedSend, body: Body) -> Upload {
        let replay = body
            .recording
            .as_ref()
            .map(|r| r.batches.iter().cloned().collect())
            .unwrap_or_default();
        Upload {
            send,
            pending: Bytes::new(),
            replay,
            body,
            batch: BytesMut::new(),
            done: false,
            failed_locally: false,
        }
    }

    /// Can this request be sent again by another attempt? Yes while nothing was read from the
    /// caller's stream, or everything read is still recorded.
    pub(crate) fn replayable(&self) -> bool {
        let recorded = self.body.recording.as_ref().is_some_and(|r| !r.overflowed);
        !self.failed_locally && (!self.body.pulled || recorded)
    }

    /// The messages still to read, for the next attempt.
    pub(crate) fn into_body(self) -> Body {
        self.body
    }

    /// Is the whole body (with END_STREAM) handed to h2, or abandoned after an error?
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Makes progress. `Err` ends the call (a message over the send limit; the stream is
    /// reset). Transport errors are not reported here: the response side sees them with the
    /// right code.
    pub(crate) fn poll_upload(&mut self, cx: &mut Context<'_>) -> Result<(), Status> {
        while !self.done {
            if self.pending.is_empty() {
                if let Some(next) = self.replay.pop_front() {
                    self.pending = next;
                } else if self.body.source.is_some() {
                    self.fill_batch(cx)?;
                    if self.pending.is_empty() && self.body.source.is_some() {
                        // The caller's stream has nothing ready; it wakes us when it has.
                        return Ok(());
                    }
                }
            }
            let end = self.body.source.is_none() && self.replay.is_empty();
            match poll_write_shared(&self.send, &mut self.pending, end, cx) {
                Poll::Ready(Ok(())) => self.done = end,
                Poll::Ready(Err(_)) => self.done = true,
                Poll::Pending => return Ok(()),
            }
        }
        Ok(())
    }

    /// Reads the messages the caller's stream has ready, up to [`BATCH_BYTES`], into one
    /// buffer and makes it `pending` (recorded for a retry when the policy buffers).
    fn fill_batch(&mut self, cx: &mut Context<'_>) -> Result<(), Status> {
        let Some(source) = self.body.source.as_mut() else {
            return Ok(());
        };
        let mut exhausted = false;
        while self.batch.len() < BATCH_BYTES {
            match source.as_mut().poll_encode(cx, &mut self.batch) {
                Poll::Ready(Some(Ok(()))) => self.body.pulled = true,
                Poll::Ready(Some(Err(status))) => {
                    self.batch.clear();
                    self.done = true;
                    self.failed_locally = true;
                    reset_shared(&self.send, h2::Reason::CANCEL);
                    return Err(status);
                }
                Poll::Ready(None) => {
                    exhausted = true;
                    break;
                }
                Poll::Pending => break,
            }
        }
        if exhausted {
            self.body.source = None;
        }
        if !self.batch.is_empty() {
            let batch = self.batch.split().freeze();
            if let Some(recording) = &mut self.body.recording {
                recording.keep(&batch);
            }
            self.pending = batch;
        }
        Ok(())
    }
}

/// Where an [`Upload`] runs: in the call's own task until it first has to wait (for window or
/// for the caller's stream), then in a task of its own on the runtime, next to the HTTP/2
/// connection task.
///
/// Why: a call is often driven from a thread that is not a runtime worker (`block_on`, as a
/// `#[tokio::main]` program's calls are), while h2's connection task runs on a worker. Every
/// WINDOW_UPDATE the connection task reads then wakes the caller's thread, whose `send_data`
/// wakes the connection task back and contends on h2's internal lock: uploading 200 messages
/// of 1 MiB to a server announcing 1 MiB windows cost ~17,500 context switches and ~190 ms of
/// client CPU (tonic's client, whose request body is pumped by a task hyper spawns: ~40 and
/// ~105 ms). Run on a worker, the wake-ups between the upload and the connection are queue
/// pushes on one thread. A body that goes out in one poll (a small unary request, a short
/// client stream within the window) never pays for the spawn.
///
/// The task is told to stop when the call ends first (the server answered early, failed, or
/// the call was dropped) and hands the upload back, so a retry can replay what it recorded and
/// the call reports an upload failure of its own (a message over the send limit) rather than
/// the reset that failure caused. A panic in the caller's stream is raised again in the call.
pub(crate) struct Uploader {
    /// Where the upload is now.
    run: Run,
}

/// The places an [`Uploader`]'s upload can be.
enum Run {
    /// Polled by the call's task.
    Inline(Upload),
    /// Polled by its own task; dropping `stop` makes the task hand the upload back.
    Spawned {
        /// The task, which returns the upload and how it ended.
        task: tokio::task::JoinHandle<(Upload, Result<(), Status>)>,
        /// Held while the call wants the upload to go on.
        stop: Option<tokio::sync::oneshot::Sender<()>>,
    },
    /// Back from its task, with the failure it ended with, if any.
    Returned(Upload, Option<Status>),
    /// The task was cancelled by a runtime shutting down: the upload is gone.
    Lost,
}

impl Uploader {
    /// Starts with `upload` in the call's task.
    pub(crate) fn new(upload: Upload) -> Uploader {
        Uploader {
            run: Run::Inline(upload),
        }
    }

    /// Makes progress, as [`Upload::poll_upload`]: `Err` ends the call.
    pub(crate) fn poll_upload(&mut self, cx: &mut Context<'_>) -> Result<(), Status> {
        loop {
            match &mut self.run {
                Run::Inline(upload) => {
                    upload.poll_upload(cx)?;
                    if upload.is_done() {
                        return Ok(());
                    }
                    // It has to wait: from here on it runs next to the connection task.
                    let Run::Inline(upload) = std::mem::replace(&mut self.run, Run::Lost) else {
                        unreachable!("matched Inline above");
                    };
                    let (stop, stopped) = tokio::sync::oneshot::channel();
                    let task = tokio::spawn(upload_in_background(upload, stopped));
                    self.run = Run::Spawned {
                        task,
                        stop: Some(stop),
                    };
                }
                Run::Spawned { task, .. } => {
                    let joined = match Pin::new(task).poll(cx) {
                        Poll::Pending => return Ok(()),
                        Poll::Ready(joined) => joined,
                    };
                    return match joined {
                        Ok((upload, result)) => {
                            self.run = Run::Returned(upload, result.clone().err());
                            result
                        }
                        Err(error) => {
                            self.run = Run::Lost;
                            if error.is_panic() {
                                std::panic::resume_unwind(error.into_panic());
                            }
                            Err(Status::cancelled(
                                "the request upload was cancelled: the runtime is shutting down",
                            ))
                        }
                    };
                }
                Run::Returned(..) | Run::Lost => return Ok(()),
            }
        }
    }

    /// Is the whole body handed to h2 (or abandoned after an error)?
    pub(crate) fn is_done(&self) -> bool {
        match &self.run {
            Run::Inline(upload) | Run::Returned(upload, _) => upload.is_done(),
            Run::Spawned { .. } => false,
            Run::Lost => true,
        }
    }

    /// Stops the upload where it is and takes it back, with the failure of its own it ended
    /// with, if any (the call's status then). `None` for the upload when its task was lost.
    pub(crate) async fn finish(mut self) -> (Option<Upload>, Option<Status>) {
        match std::mem::replace(&mut self.run, Run::Lost) {
            Run::Inline(upload) => (Some(upload), None),
            Run::Returned(upload, failure) => (Some(upload), failure),
            Run::Lost => (None, None),
            Run::Spawned { task, stop } => {
                drop(stop);
                match task.await {
                    Ok((upload, result)) => (Some(upload), result.err()),
                    Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
                    Err(_) => (None, None),
                }
            }
        }
    }
}

/// The task of an [`Uploader`]: the upload until it is done, fails, or the call drops `stop`.
async fn upload_in_background(
    mut upload: Upload,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> (Upload, Result<(), Status>) {
    let result = std::future::poll_fn(|cx| {
        if let Err(status) = upload.poll_upload(cx) {
            return Poll::Ready(Err(status));
        }
        if upload.is_done() || Pin::new(&mut stop).poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    })
    .await;
    (upload, result)
}

/// Encodes each message of a request stream, checking the send limit, and shows it to the
/// call's interceptors.
struct Encode<S> {
    /// The caller's messages.
    inner: Pin<Box<S>>,
    /// The call's grpc-encoding.
    encoding: Encoding,
    /// The call's send limit.
    max_send: usize,
    /// The call's interceptors.
    hooks: Option<Arc<CallHooks>>,
}

impl<S, In> EncodeInto for Encode<S>
where
    S: Stream<Item = In> + Send,
    In: prost::Message + 'static,
{
    fn poll_encode(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut BytesMut,
    ) -> Poll<Option<Result<(), Status>>> {
        let this = self.get_mut();
        let Some(msg) = ready!(this.inner.as_mut().poll_next(cx)) else {
            return Poll::Ready(None);
        };
        let hooks = this.hooks.as_deref();
        Poll::Ready(Some(encode_into(
            &msg,
            this.encoding,
            this.max_send,
            hooks,
            buf,
        )))
    }
}

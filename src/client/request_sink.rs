//! The request side of a bidi call: [`RequestSink`] and its writer task.
//!
//! ```text
//!   RequestSink::send(msg) -> encode -> queue(1) -> writer task -> transport::write -> h2
//!   RequestSink::finish()  -> (after the queued messages) empty DATA with END_STREAM
//!   dropped unfinished     -> RST_STREAM(CANCEL)
//! ```
//!
//! Half-close is END_STREAM (PROTOCOL-HTTP2 § Requests: "the client half-closes ... by sending
//! END_STREAM"), an empty DATA frame after the queued messages, which needs no window. A sink
//! dropped without `finish` resets the stream with CANCEL: an abandoned request stream must
//! never look complete to the server.
//!
//! Why a message goes out on its own, never batched with the next: a bidi call may be a
//! conversation (send one, wait for the answer, send the next), so holding a message back
//! would deadlock a ping-pong. Client streaming, whose messages come from a `Stream` the call
//! drives itself, does batch what is ready (`upload.rs`).
//!
//! What it rejects: a message over the send limit (the encoded message before compression)
//! ends the call with RESOURCE_EXHAUSTED before a byte of it is sent, and the stream is reset
//! with CANCEL; a message after the deadline ends it with DEADLINE_EXCEEDED.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::fast::{self, driver::ConnectionDriver};
use super::send_half::{self, SharedSend};
use super::upload::{encode_request, stalled};
use crate::compression::Encoding;
use crate::interceptor::CallHooks;
use crate::lock::lock;
use crate::status::Status;
use crate::transport::error::status_from_h2;
use crate::transport::write::{StallTimer, poll_write};

/// The request side of a bidi call: send messages, then [`RequestSink::finish`] to half-close.
///
/// Each message is delivered promptly, on its own: a bidi call may be a conversation (send
/// one, wait for the answer, send the next), so holding a message back to batch it with the
/// next one would deadlock a ping-pong. (Client streaming, whose messages come from a
/// `Stream` the call drives itself, does batch the messages that are ready at once; see
/// `Upload`.)
///
/// `send` encodes the message on the caller's task and queues it for the call's writer task,
/// which hands it to h2 within the peer's flow-control window. The queue holds one message, so
/// a fast producer facing a slow server waits in `send` (back-pressure) with at most two
/// messages of the call outside h2. The writer task runs on the runtime next to the HTTP/2
/// connection task, so h2's wake of its connection task is a push onto a run queue. (A
/// `block_on` caller writes a message that fits the window itself: `fast::direct`.) An error
/// from `send` means the call is over; the call's final status is what the paired
/// `ResponseStream` returns.
pub struct RequestSink<In> {
    /// Queue to the writer task; `None` once finished or failed, which is what tells `send` to
    /// refuse and `Drop` not to reset.
    queue: Option<mpsc::Sender<Bytes>>,
    /// What the writer task and this sink share: the send half and the writer's outcome.
    shared: Arc<WriterShared>,
    /// Set for a `block_on` caller, which writes into h2 and flushes the connection itself
    /// while the stream has window (`fast::direct`).
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
/// end, END_STREAM after `finish`, RST_STREAM(CANCEL) when the sink was dropped. With a send
/// stall timeout, a message that waits that long for window with no byte going out resets
/// the stream with ENHANCE_YOUR_CALM and fails the call RESOURCE_EXHAUSTED (the response side
/// reads the reset as RESOURCE_EXHAUSTED too, `transport::error`).
async fn write_queued(
    shared: Arc<WriterShared>,
    mut queue: mpsc::Receiver<Bytes>,
    stall_timeout: Option<Duration>,
) {
    let mut stall = stall_timeout.map(StallTimer::new);
    while let Some(mut data) = queue.recv().await {
        let written = std::future::poll_fn(|cx| {
            let before = data.len();
            let mut send = lock(&shared.send);
            let written = poll_write(&mut send, &mut data, false, cx);
            let written = written.map(|r| r.map_err(|e| status_from_h2(&e)));
            let Some(stall) = stall.as_mut() else {
                return written;
            };
            if written.is_ready() {
                stall.stop();
                return written;
            }
            if stall.expired(data.len() < before, cx) {
                send.send_reset(h2::Reason::ENHANCE_YOUR_CALM);
                return Poll::Ready(Err(stalled(stall.timeout())));
            }
            Poll::Pending
        })
        .await;
        if let Err(status) = written {
            *lock(&shared.failure) = Some(status);
            return;
        }
        shared.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
    if shared.finished.load(Ordering::Acquire) {
        let mut guard = lock(&shared.send);
        // An error here means the stream is already over; the response side reports why.
        let _ = guard.send_data(Bytes::new(), true);
    } else {
        send_half::reset(&shared.send, h2::Reason::CANCEL);
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
        stall_timeout: Option<Duration>,
        hooks: Option<Arc<CallHooks>>,
    ) -> Self {
        let shared = Arc::new(WriterShared {
            send,
            finished: AtomicBool::new(false),
            failure: Mutex::new(None),
            in_flight: AtomicUsize::new(0),
        });
        // Only a `block_on` caller writes and flushes itself (see `fast`).
        let direct = fast::blocking_caller();
        let (queue, queued) = mpsc::channel(1);
        tokio::spawn(write_queued(shared.clone(), queued, stall_timeout));
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
        send_half::reset(&self.shared.send, h2::Reason::CANCEL);
        status
    }

    /// The writer task stopped: why, as the call's caller should see it.
    fn writer_failure(&mut self) -> Status {
        self.queue = None;
        lock(&self.shared.failure)
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
    /// A `block_on` caller's message straight into h2 from this thread (`fast::direct`), when
    /// nothing of the call is queued before it: `Ok(None)` once sent, `Ok(Some(data))` to queue
    /// for the writer task as on the plain path.
    fn try_send_direct(&mut self, data: Bytes) -> Result<Option<Bytes>, Status> {
        let Some(driver) = &self.driver else {
            return Ok(Some(data));
        };
        if self.shared.in_flight.load(Ordering::Acquire) != 0 {
            return Ok(Some(data));
        }
        fast::direct::try_write(&self.shared.send, driver, data).map_err(|e| {
            // The stream is over (reset, or the connection broke): as a writer failure.
            self.queue = None;
            status_from_h2(&e)
        })
    }
}

impl<In> Drop for RequestSink<In> {
    fn drop(&mut self) {
        if self.queue.is_some() {
            send_half::reset(&self.shared.send, h2::Reason::CANCEL);
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

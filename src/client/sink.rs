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
//! assigned, and hand over at most that much: a `send` returns once its message is in h2's
//! hands within the window, which is what makes `RequestSink::send` a real back-pressure
//! point.
//!
//! Half-close is an empty DATA frame with END_STREAM (PROTOCOL-HTTP2 § Requests: "the client
//! half-closes ... by sending END_STREAM"), which needs no window.
//!
//! [`Upload`] is the request body of a unary or client-streaming call: it writes one encoded
//! message, or the caller's stream message by message, while the call reads the response; under
//! a retry policy with buffering it records what it read so another attempt can send it again.
//!
//! What it rejects: a message over the send limit ends the call with RESOURCE_EXHAUSTED before
//! a byte of it is sent, and the stream is reset with CANCEL so the server does not wait for
//! the rest. A sink dropped without [`RequestSink::finish`] resets the stream with CANCEL: an
//! abandoned upload must never look complete to the server.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use h2::SendStream;
use tokio::time::Instant;

use crate::codec::encode_message;
use crate::compression::Encoding;
use crate::interceptor::CallHooks;
use crate::status::Status;
use crate::streaming::{SharedSend, reset_shared, status_from_h2};
use crate::wire::PREFIX_LEN;

/// Encodes `msg` into a fresh buffer with `encoding`, refusing it when the message on the wire
/// (after compression, without the prefix) would exceed `max_send`.
pub(crate) fn encode_request<M: prost::Message>(
    msg: &M,
    encoding: Encoding,
    max_send: usize,
) -> Result<Bytes, Status> {
    let mut buf = BytesMut::new();
    encode_message(msg, encoding, &mut buf)?;
    let len = buf.len() - PREFIX_LEN;
    if len > max_send {
        return Err(Status::resource_exhausted(format!(
            "request message of {len} bytes exceeds the send limit of {max_send} bytes"
        )));
    }
    Ok(buf.freeze())
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
    let mut guard = send.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    poll_write(&mut guard, data, end_stream, cx)
}

/// The request side of a bidi call: send messages, then [`RequestSink::finish`] to half-close.
///
/// `send` waits for HTTP/2 flow-control capacity, so a fast producer is held back by a slow
/// server instead of buffering without bound. An error from `send` means the call is over;
/// the call's final status is what the paired `Streaming` returns.
pub struct RequestSink<In> {
    /// The stream's send half, shared with the call's `Streaming` (which resets it at the
    /// deadline).
    send: SharedSend,
    /// The call's grpc-encoding.
    encoding: Encoding,
    /// Compress the next messages with `encoding` (a call may send some uncompressed).
    compress: bool,
    /// The call's send limit.
    max_send: usize,
    /// The call's deadline, if any.
    deadline: Option<Instant>,
    /// Set by `finish` (or after a failure), so `Drop` knows not to reset.
    done: bool,
    /// The call's interceptors, shown each message sent.
    hooks: Option<Arc<CallHooks>>,
    /// The message type.
    _message: PhantomData<fn(In)>,
}

impl<In> RequestSink<In> {
    /// A sink for a call whose request HEADERS are sent.
    pub(crate) fn new(
        send: SharedSend,
        encoding: Encoding,
        max_send: usize,
        deadline: Option<Instant>,
        hooks: Option<Arc<CallHooks>>,
    ) -> Self {
        RequestSink {
            send,
            encoding,
            compress: true,
            max_send,
            deadline,
            done: false,
            hooks,
            _message: PhantomData,
        }
    }

    /// Half-closes the request side (END_STREAM): the server sees the end of the request
    /// stream. The response side carries on.
    pub fn finish(mut self) {
        self.done = true;
        let mut guard = self
            .send
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // An error here means the stream is already over; the response side reports why.
        let _ = guard.send_data(Bytes::new(), true);
    }

    /// Whether the following messages are compressed with the call's `grpc-encoding` (true
    /// unless set otherwise; meaningless for a call without compression). A message sent
    /// uncompressed carries flag 0 in its prefix, which PROTOCOL-HTTP2 allows per message.
    pub fn set_message_compression(&mut self, compress: bool) {
        self.compress = compress;
    }

    /// Ends the call from this side with `status`, resetting the stream.
    fn fail(&mut self, status: Status) -> Status {
        self.done = true;
        reset_shared(&self.send, h2::Reason::CANCEL);
        status
    }
}

impl<In: prost::Message + 'static> RequestSink<In> {
    /// Sends one message; returns once it is handed to HTTP/2 within the peer's window.
    /// RESOURCE_EXHAUSTED (and the call is cancelled) when it is over the send limit;
    /// DEADLINE_EXCEEDED when the call's deadline passes while waiting.
    pub async fn send(&mut self, msg: In) -> Result<(), Status> {
        if self.done {
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
        let mut data = match encode_request(&msg, encoding, self.max_send) {
            Ok(data) => data,
            Err(status) => return Err(self.fail(status)),
        };
        if let Some(hooks) = &self.hooks {
            hooks.request(&msg, data.len() - PREFIX_LEN);
        }
        let write = std::future::poll_fn(|cx| poll_write_shared(&self.send, &mut data, false, cx));
        let result = match self.deadline {
            None => write.await,
            Some(deadline) => match tokio::time::timeout_at(deadline, write).await {
                Ok(result) => result,
                Err(_) => {
                    return Err(self.fail(Status::deadline_exceeded(
                        "deadline exceeded while sending a request message",
                    )));
                }
            },
        };
        result.map_err(|e| {
            self.done = true;
            status_from_h2(&e)
        })
    }
}

impl<In> Drop for RequestSink<In> {
    fn drop(&mut self) {
        if !self.done {
            reset_shared(&self.send, h2::Reason::CANCEL);
        }
    }
}

impl<In> std::fmt::Debug for RequestSink<In> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSink")
            .field("encoding", &self.encoding)
            .field("done", &self.done)
            .finish()
    }
}

/// Encoded request messages, ready to send.
type EncodedStream = Pin<Box<dyn Stream<Item = Result<Bytes, Status>> + Send>>;

/// Where the request messages of a unary or client-streaming call come from, kept across
/// attempts: the caller's stream (encoded as it is read) and, under a retry policy with
/// buffering, a copy of every message already read.
pub(crate) struct Body {
    /// More messages to come; `None` once exhausted (or for a single encoded message).
    source: Option<EncodedStream>,
    /// Copies of the messages read so far, for a retry.
    recording: Option<Recording>,
    /// Has any message been read from `source`?
    pulled: bool,
}

impl Body {
    /// Every message of `source`, encoded one at a time as the window allows, shown to the
    /// interceptors as it is read, and recorded up to `buffer` bytes when that is set.
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
                messages: Vec::new(),
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
    /// Every message read so far, encoded (cheap clones of the bytes sent).
    messages: Vec<Bytes>,
    /// Their total size.
    bytes: usize,
    /// The bound from `RetryPolicy::buffer_client_stream`.
    limit: usize,
    /// The stream outgrew the bound: the copies are gone and the call cannot be replayed.
    overflowed: bool,
}

impl Recording {
    /// Keeps a copy of `message`, or gives up on replaying when it would exceed the bound.
    fn keep(&mut self, message: &Bytes) {
        if self.overflowed {
            return;
        }
        if self.bytes + message.len() > self.limit {
            self.overflowed = true;
            self.messages = Vec::new();
            return;
        }
        self.bytes += message.len();
        self.messages.push(message.clone());
    }
}

/// The request body of one attempt: one encoded message, or a stream of messages encoded as
/// the window allows (after any buffered ones a retry sends again); always ends with
/// END_STREAM.
pub(crate) struct Upload {
    /// Where the bytes go.
    send: SharedSend,
    /// Bytes not yet handed to h2.
    pending: Bytes,
    /// Buffered messages to send again before reading further (a retried client stream).
    replay: VecDeque<Bytes>,
    /// The messages still to read, and what has been recorded of them.
    body: Body,
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
            done: false,
            failed_locally: false,
        }
    }

    /// An upload of `body`: first the messages recorded by earlier attempts, then the rest.
    pub(crate) fn resume(send: SharedSend, body: Body) -> Upload {
        let replay = body
            .recording
            .as_ref()
            .map(|r| r.messages.iter().cloned().collect())
            .unwrap_or_default();
        Upload {
            send,
            pending: Bytes::new(),
            replay,
            body,
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
                }
            }
            let end = self.body.source.is_none() && self.replay.is_empty();
            if !self.pending.is_empty() || end {
                match poll_write_shared(&self.send, &mut self.pending, end, cx) {
                    Poll::Ready(Ok(())) => self.done = end,
                    Poll::Ready(Err(_)) => self.done = true,
                    Poll::Pending => return Ok(()),
                }
                continue;
            }
            let Some(source) = self.body.source.as_mut() else {
                continue;
            };
            match source.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(data))) => {
                    self.body.pulled = true;
                    if let Some(recording) = &mut self.body.recording {
                        recording.keep(&data);
                    }
                    self.pending = data;
                }
                Poll::Ready(Some(Err(status))) => {
                    self.done = true;
                    self.failed_locally = true;
                    reset_shared(&self.send, h2::Reason::CANCEL);
                    return Err(status);
                }
                Poll::Ready(None) => self.body.source = None,
                Poll::Pending => return Ok(()),
            }
        }
        Ok(())
    }
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

impl<S, In> Stream for Encode<S>
where
    S: Stream<Item = In>,
    In: prost::Message + 'static,
{
    type Item = Result<Bytes, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let next = ready!(this.inner.as_mut().poll_next(cx));
        Poll::Ready(next.map(|msg| {
            let data = encode_request(&msg, this.encoding, this.max_send)?;
            if let Some(hooks) = &this.hooks {
                hooks.request(&msg, data.len() - PREFIX_LEN);
            }
            Ok(data)
        }))
    }
}

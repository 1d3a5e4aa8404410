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
//! What it rejects: a message over the send limit ends the call with RESOURCE_EXHAUSTED before
//! a byte of it is sent, and the stream is reset with CANCEL so the server does not wait for
//! the rest. A sink dropped without [`RequestSink::finish`] resets the stream with CANCEL: an
//! abandoned upload must never look complete to the server.

use std::marker::PhantomData;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use h2::SendStream;
use tokio::time::Instant;

use crate::codec::encode_message;
use crate::compression::Encoding;
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
    ) -> Self {
        RequestSink {
            send,
            encoding,
            compress: true,
            max_send,
            deadline,
            done: false,
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

impl<In: prost::Message> RequestSink<In> {
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

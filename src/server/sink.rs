//! The server's outbound half of a streaming call: [`ResponseSink`] (PROTOCOL-HTTP2 § Responses).
//!
//! ```text
//!  sink.send(m1) ──▶ HEADERS(:status 200, content-type, initial metadata)   (first send only)
//!  sink.send(m2)     m1, m2 gathered …
//!  handler waits ──▶ DATA(prefix | m1  prefix | m2)     one frame; waits while the window is full
//!  handler returns ─▶ HEADERS(grpc-status, trailing metadata, END_STREAM)   (written by `drive`)
//! ```
//!
//! Why the sink and the call driver share the stream behind a mutex: the driver must watch for
//! the client's RST_STREAM while the handler runs (to drop the handler: that is how cancellation
//! reaches it), and must write the trailers after the handler has returned and dropped its sink.
//! Both need the same `h2` stream handle, which cannot be cloned. The lock is never held across an
//! `.await` and never contended in practice (one handler, one driver, one task), and `h2` itself
//! takes a lock on every send anyway.
//!
//! Gathering: `send` encodes into a buffer shared with the driver and returns at once while the
//! buffer is under [`BATCH_BYTES`]; the driver hands the buffer to h2 in one write whenever the
//! handler waits for anything else (and before the trailers), so a message is never held back
//! while the handler sleeps, and a burst of small messages leaves in a few frames, not one frame
//! each.
//!
//! Back-pressure: a full buffer goes through the transport's flow-controlled writer
//! (`transport::write`, RFC 9113 §5.2), so a handler producing faster than the client reads
//! waits in `send` instead of filling memory: the bytes h2 holds beyond the peer's window are at
//! most the small batch the driver flushes while the handler waits (under [`BATCH_BYTES`]).
//!
//! Stalled readers: a client that never reads holds its call's handler in `send` for ever, with
//! one batch (or one larger message) encoded and waiting. With `Builder::send_stall_timeout`,
//! a `send` that has waited that long without a byte going out resets the stream with
//! ENHANCE_YOUR_CALM (which discards what h2 still holds for it; the client reads
//! RESOURCE_EXHAUSTED, PROTOCOL-HTTP2 § Errors) and fails with RESOURCE_EXHAUSTED, so the
//! handler ends and the call's memory goes (`tests/slow_readers.rs`).

use std::borrow::Borrow;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::HeaderValue;

use crate::codec::encode_message_within;
use crate::compression::Encoding;
use crate::interceptor::CallHooks;
use crate::metadata::Metadata;
use crate::server::call::CallHead;
use crate::server::respond;
use crate::status::Status;
use crate::transport::error::status_from_h2;
use crate::transport::write::{BATCH_BYTES, StallTimer, poll_write};

/// The stream state the sink and the call driver share.
pub(crate) struct Outbound {
    /// Until the response headers are sent.
    respond: h2::server::SendResponse<Bytes>,
    /// After the response headers are sent.
    stream: Option<h2::SendStream<Bytes>>,
    /// Initial metadata not yet sent (handed over when the sink is dropped unsent).
    initial: Metadata,
    /// Trailing metadata for the final HEADERS frame.
    trailing: Metadata,
    /// Encoded messages not yet handed to h2: written as one DATA frame when they reach
    /// [`BATCH_BYTES`], when the handler waits for anything else, and before the trailers.
    pending: BytesMut,
    /// A full batch `send` is writing within the window: the rest that the window has not
    /// taken yet.
    unsent: Bytes,
}

/// A handle on [`Outbound`], shared by one sink and one driver.
#[derive(Clone)]
pub(crate) struct SharedOutbound(Arc<Mutex<Outbound>>);

impl SharedOutbound {
    pub(crate) fn new(respond: h2::server::SendResponse<Bytes>) -> SharedOutbound {
        SharedOutbound(Arc::new(Mutex::new(Outbound {
            respond,
            stream: None,
            initial: Metadata::new(),
            trailing: Metadata::new(),
            pending: BytesMut::new(),
            unsent: Bytes::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Outbound> {
        crate::lock::lock(&self.0)
    }

    /// Called by the driver whenever the handler is waiting: hands h2 the messages gathered so
    /// far (unless the sink itself is waiting for window to send them), then says whether the
    /// client has reset the stream (or the connection is gone).
    pub(crate) fn poll_idle(&self, cx: &mut Context<'_>) -> bool {
        let mut out = self.lock();
        let out = &mut *out;
        match out.stream.as_mut() {
            Some(stream) => {
                if out.unsent.is_empty()
                    && !out.pending.is_empty()
                    && out.pending.len() < BATCH_BYTES
                {
                    let _ = stream.send_data(out.pending.split().freeze(), false);
                }
                stream.poll_reset(cx).is_ready()
            }
            None => out.respond.poll_reset(cx).is_ready(),
        }
    }

    /// Ends the call with `status`: trailers after a started response, trailers-only before.
    pub(crate) fn finish(&self, status: &Status, encoding: Encoding, advertise: bool) {
        let mut out = self.lock();
        let out = &mut *out;
        if out.stream.is_none() && !out.initial.is_empty() {
            // The handler set initial metadata but sent no message: it still goes out as
            // headers, so the client sees it as initial (not trailing) metadata.
            let headers = respond::response_headers(&out.initial, encoding, advertise);
            out.stream = out.respond.send_response(headers, false).ok();
        }
        match out.stream.as_mut() {
            Some(stream) => {
                // Whatever is left goes to h2 whole: the trailers must follow it.
                if !out.unsent.is_empty() {
                    let _ = stream.send_data(std::mem::take(&mut out.unsent), false);
                }
                if !out.pending.is_empty() {
                    let _ = stream.send_data(out.pending.split().freeze(), false);
                }
                let _ = stream.send_trailers(respond::trailers(status, &out.trailing));
            }
            None => respond::trailers_only_with(&mut out.respond, status, &out.trailing),
        }
    }
}

/// Where a streaming handler pushes its response messages.
///
/// The response headers go out with the first message (or on [`ResponseSink::send_headers`]);
/// the status goes out when the handler returns.
pub struct ResponseSink<T> {
    outbound: SharedOutbound,
    encoding: Encoding,
    compress_messages: bool,
    accept_encoding: Option<HeaderValue>,
    /// Whether the response headers list our encodings (`CallHead::advertise_encodings`).
    advertise: bool,
    max_send: usize,
    headers_sent: bool,
    initial: Metadata,
    trailing: Metadata,
    /// The call's interceptors, shown each message sent.
    hooks: Option<Arc<CallHooks>>,
    /// `Builder::send_stall_timeout`'s clock, running while a write makes no progress.
    stall: Option<StallTimer>,
    _message: PhantomData<fn(T)>,
}

impl<T: prost::Message + 'static> ResponseSink<T> {
    pub(crate) fn new(outbound: SharedOutbound, head: &CallHead) -> ResponseSink<T> {
        ResponseSink {
            outbound,
            encoding: head.response_encoding(None),
            compress_messages: true,
            accept_encoding: head.accept_encoding.clone(),
            advertise: head.advertise_encodings,
            max_send: head.max_send,
            headers_sent: false,
            initial: Metadata::new(),
            trailing: Metadata::new(),
            hooks: head.hooks.clone(),
            stall: head.send_stall_timeout.map(StallTimer::new),
            _message: PhantomData,
        }
    }

    /// Sends one message, after the response headers if they have not gone out yet. Waits while
    /// the client's flow-control window is full. Fails with `CANCELLED` once the client has
    /// reset the call, and with `RESOURCE_EXHAUSTED` for a message over the send limit, or when
    /// the server's send stall timeout passes with the client reading nothing.
    ///
    /// Takes the message by value or by reference (`send(msg)` or `send(&msg)`): it is encoded
    /// at once, so the sink never needs to own it, and a handler sending the same message again
    /// (or keeping it for later) need not clone it.
    pub async fn send(&mut self, message: impl Borrow<T>) -> Result<(), Status> {
        if self.gather(message.borrow())? {
            return Ok(());
        }
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Encodes `message` onto the gathered bytes (sending the response headers first if they
    /// have not gone out). True while the gathered bytes are under [`BATCH_BYTES`]: the driver hands
    /// them to h2 as soon as the handler waits, so `send` need not wait at all.
    fn gather(&mut self, message: &T) -> Result<bool, Status> {
        let encoding = if self.compress_messages {
            self.encoding
        } else {
            Encoding::Identity
        };
        let mut out = self.outbound.lock();
        let out = &mut *out;
        if out.pending.capacity() == 0 {
            // One allocation per batch, not a regrowth every few messages.
            out.pending.reserve(BATCH_BYTES);
        }
        // Encoded first: a message over the limit fails the send before any headers go out.
        let before = out.pending.len();
        encode_message_within(message, encoding, self.max_send, &mut out.pending)?;
        self.start_response(out)?;
        self.headers_sent = true;
        if let Some(hooks) = &self.hooks {
            hooks.response(
                message,
                out.pending.len() - before - crate::wire::PREFIX_LEN,
            );
        }
        Ok(out.pending.len() < BATCH_BYTES)
    }

    /// Writes the gathered messages within the stream's flow-control window.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        let mut out = self.outbound.lock();
        let out = &mut *out;
        if out.unsent.is_empty() {
            if out.pending.is_empty() {
                // The driver flushed them while we waited.
                return Poll::Ready(Ok(()));
            }
            out.unsent = out.pending.split().freeze();
        }
        let Some(stream) = out.stream.as_mut() else {
            return Poll::Ready(Err(Status::internal("response headers were not sent")));
        };
        let Some(stall) = self.stall.as_mut() else {
            return poll_write(stream, &mut out.unsent, false, cx).map_err(|e| status_from_h2(&e));
        };
        let before = out.unsent.len();
        let written = poll_write(stream, &mut out.unsent, false, cx);
        if written.is_ready() {
            stall.stop();
            return written.map_err(|e| status_from_h2(&e));
        }
        // Waiting for window: the clock runs, and starts again whenever bytes went out.
        if stall.expired(out.unsent.len() < before, cx) {
            let timeout = stall.timeout();
            // RST_STREAM discards what h2 still holds for the stream (RFC 9113 §6.4); the
            // unsent bytes go too, so a stalled call keeps nothing.
            stream.send_reset(h2::Reason::ENHANCE_YOUR_CALM);
            out.unsent = Bytes::new();
            out.pending.clear();
            return Poll::Ready(Err(Status::resource_exhausted(format!(
                "the client read nothing for {timeout:?} (send stall timeout)"
            ))));
        }
        Poll::Pending
    }

    /// Sends the response headers (with the initial metadata) now, before any message.
    pub async fn send_headers(&mut self) -> Result<(), Status> {
        if self.headers_sent {
            return Ok(());
        }
        self.start_response(&mut self.outbound.lock())?;
        self.headers_sent = true;
        Ok(())
    }

    /// Sends the response headers, with the initial metadata, unless they have gone out.
    fn start_response(&self, out: &mut Outbound) -> Result<(), Status> {
        if out.stream.is_none() {
            let headers = respond::response_headers(&self.initial, self.encoding, self.advertise);
            out.stream = Some(out.respond.send_response(headers, false).map_err(gone)?);
        }
        Ok(())
    }

    /// Initial metadata, sent with the response headers. Changes after the first `send` are
    /// not sent.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.initial
    }

    /// Trailing metadata, sent beside `grpc-status` when the handler returns.
    pub fn trailers_mut(&mut self) -> &mut Metadata {
        &mut self.trailing
    }

    /// Replaces the trailing metadata.
    pub fn set_trailers(&mut self, trailers: Metadata) {
        self.trailing = trailers;
    }

    /// Compresses the response messages with `encoding` if the client accepts it. Only takes
    /// effect before the response headers are sent (they carry `grpc-encoding`).
    pub fn set_compression(&mut self, encoding: Encoding) {
        if !self.headers_sent
            && encoding.accepted_by(self.accept_encoding.as_ref().map(|v| v.as_bytes()))
        {
            self.encoding = encoding;
        }
    }

    /// Whether the following messages are compressed (when the call has an encoding). Each
    /// message carries its own compressed flag (PROTOCOL-HTTP2 § Length-Prefixed-Message), so a
    /// handler can send an already-compressed payload uncompressed.
    pub fn set_message_compression(&mut self, compress: bool) {
        self.compress_messages = compress;
    }

    /// The encoding response messages are sent with.
    pub fn compression(&self) -> Encoding {
        self.encoding
    }
}

impl<T> Drop for ResponseSink<T> {
    fn drop(&mut self) {
        // The handler is done with the sink; its metadata goes to the driver, which writes
        // the final HEADERS frame.
        let mut out = self.outbound.lock();
        if !self.headers_sent {
            out.initial = std::mem::take(&mut self.initial);
        }
        out.trailing = std::mem::take(&mut self.trailing);
    }
}

/// An h2 error while sending: the client reset the stream, or the connection is gone.
fn gone(error: h2::Error) -> Status {
    status_from_h2(&error)
}

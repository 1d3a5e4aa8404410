//! The request body of a unary or client-streaming call: one encoded message, or the caller's
//! stream of messages encoded in batches as the window allows, always ending with END_STREAM
//! (PROTOCOL-HTTP2 § Requests: the client half-closes by sending END_STREAM).
//!
//! ```text
//!   caller's Stream --poll--> encode (send limit, interceptors) --> batch (<= BATCH_BYTES + 1 msg)
//!        --> transport::write::poll_write (within the window) --> ... --> END_STREAM
//! ```
//!
//! The rule for batching: a message is only ever combined with messages that are already there.
//! While the caller's stream has messages ready they are encoded back to back into one buffer,
//! which is written when the stream has nothing more ready, ends, or the buffer reaches
//! [`BATCH_BYTES`] (`transport::write` says why batches at all). The next batch is read only
//! after the previous one is in h2 within the window, so a call holds at most one batch.
//!
//! Under a retry policy that buffers, every batch read is also kept (`replay.rs`) so another
//! attempt can send it again; a body whose stream was read past what is kept is no longer
//! replayable.
//!
//! The send limit is on the encoded message before compression, as on the server and as
//! grpc-go and grpcio count it (`codec::encode_message_within`): a message over it ends the call
//! with RESOURCE_EXHAUSTED before a byte of it is sent, and the stream is reset with CANCEL so
//! the server does not wait for the rest.
//!
//! A send stall timeout (`ChannelBuilder::send_stall_timeout`) watches every write that waits
//! for window: past it with no byte going out, the stream is reset with ENHANCE_YOUR_CALM and
//! the call ends RESOURCE_EXHAUSTED, as the server's `Builder::send_stall_timeout` does.
//!
//! What it does not do: decide where it runs (the call's task, or a task of its own for a
//! `block_on` caller: `fast::handoff`), or report transport errors (the response side sees
//! them with the right code).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use super::replay::Recording;
use super::send_half::{self, SharedSend};
use crate::codec::encode_message_within;
use crate::compression::Encoding;
use crate::interceptor::CallHooks;
use crate::status::Status;
use crate::transport::write::{BATCH_BYTES, StallTimer, poll_write};
use crate::wire::PREFIX_LEN;

/// Encodes `msg` into a fresh buffer with `encoding` (RESOURCE_EXHAUSTED over `max_send`) and
/// shows it to the interceptors.
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
/// when the encoded message (before compression) exceeds `max_send`.
fn encode_into<M: prost::Message + 'static>(
    msg: &M,
    encoding: Encoding,
    max_send: usize,
    hooks: Option<&CallHooks>,
    buf: &mut BytesMut,
) -> Result<(), Status> {
    let start = buf.len();
    encode_message_within(msg, encoding, max_send, buf)?;
    if let Some(hooks) = hooks {
        hooks.request(msg, buf.len() - start - PREFIX_LEN);
    }
    Ok(())
}

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
            recording: buffer.map(Recording::new),
            pulled: false,
        }
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
    /// The upload failed on this side (a message over the send limit, a stall): never
    /// replayable.
    failed_locally: bool,
    /// `ChannelBuilder::send_stall_timeout`'s clock, running while a write makes no progress.
    stall: Option<StallTimer>,
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
            stall: None,
        }
    }

    /// Ends the call with RESOURCE_EXHAUSTED when a write waits `timeout` for window with no
    /// byte going out (`None`: no such limit).
    pub(crate) fn stall_timeout(mut self, timeout: Option<Duration>) -> Upload {
        self.stall = timeout.map(StallTimer::new);
        self
    }

    /// An upload of `body`: first the messages recorded by earlier attempts, then the rest.
    pub(crate) fn resume(send: SharedSend, body: Body) -> Upload {
        let replay = body
            .recording
            .as_ref()
            .map(Recording::replay)
            .unwrap_or_default();
        Upload {
            send,
            pending: Bytes::new(),
            replay,
            body,
            batch: BytesMut::new(),
            done: false,
            failed_locally: false,
            stall: None,
        }
    }

    /// Can this request be sent again by another attempt? Yes while nothing was read from the
    /// caller's stream, or everything read is still recorded.
    pub(crate) fn replayable(&self) -> bool {
        let recorded = self
            .body
            .recording
            .as_ref()
            .is_some_and(Recording::complete);
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
            let before = self.pending.len();
            let written = poll_write(
                &mut crate::lock::lock(&self.send),
                &mut self.pending,
                end,
                cx,
            );
            match written {
                Poll::Ready(Ok(())) => self.done = end,
                Poll::Ready(Err(_)) => self.done = true,
                Poll::Pending => return self.check_stall(self.pending.len() < before, cx),
            }
            if let Some(stall) = &mut self.stall {
                stall.stop();
            }
        }
        Ok(())
    }

    /// The write is waiting for window: past the send stall timeout with no progress, the
    /// stream is reset with ENHANCE_YOUR_CALM (h2 drops what it still holds of it, RFC 9113
    /// §6.4) and the call ends RESOURCE_EXHAUSTED.
    fn check_stall(&mut self, progressed: bool, cx: &mut Context<'_>) -> Result<(), Status> {
        let Some(stall) = &mut self.stall else {
            return Ok(());
        };
        if !stall.expired(progressed, cx) {
            return Ok(());
        }
        let timeout = stall.timeout();
        send_half::reset(&self.send, h2::Reason::ENHANCE_YOUR_CALM);
        self.pending = Bytes::new();
        self.done = true;
        self.failed_locally = true;
        Err(stalled(timeout))
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
                    send_half::reset(&self.send, h2::Reason::CANCEL);
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

/// The status of a call whose upload stalled for `timeout` (the client's send stall timeout).
pub(crate) fn stalled(timeout: Duration) -> Status {
    Status::resource_exhausted(format!(
        "the server read nothing for {timeout:?} (send stall timeout)"
    ))
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

//! The server's inbound half of a client-streaming or bidi call: the request messages read off
//! one HTTP/2 stream (PROTOCOL-HTTP2 § Requests).
//!
//! ```text
//!   DATA* ... END_STREAM        -> messages, then Ok(None)       (the client half-closed)
//!   RST_STREAM from the client  -> Err(CANCELLED)                 (the driver drops the handler too)
//!   END_STREAM inside a message -> Err(INTERNAL, "truncated message")
//! ```
//!
//! Why it is shaped this way:
//! - Message edges are unrelated to DATA frame edges (PROTOCOL-HTTP2 § Data Frames), so DATA
//!   payloads go into the shared [`MessageDecoder`] and messages come out of it one at a time.
//! - Each DATA payload's length is handed back to h2's flow control as soon as the bytes are in
//!   the decoder. The decoder only asks for more frames when it holds no whole message, so the
//!   memory held per call stays bounded by one message (the receive limit) plus one frame,
//!   while a long stream never stalls on a window nobody reopens (RFC 9113 §5.2).
//! - Interceptors see every request message as it is decoded.
//!
//! What it does not do: send anything (the call driver answers), own a deadline (the driver's
//! guard drops the handler at the deadline), or decode a message over the receive limit
//! (RESOURCE_EXHAUSTED, never OUT_OF_RANGE).
//!
//! Links: PROTOCOL-HTTP2 <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>,
//! RFC 9113 <https://www.rfc-editor.org/rfc/rfc9113>.

use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use h2::RecvStream;

use crate::codec::decode_message;
use crate::compression::Encoding;
use crate::interceptor::CallHooks;
use crate::status::Status;
use crate::transport::error::status_from_h2;
use crate::wire::{MessageDecoder, RawMessage};

/// The request messages of a client-streaming or bidi call, as the handler reads them: with
/// [`Streaming::message`] or as a [`futures_core::Stream`].
pub struct Streaming<T> {
    /// The request body; `None` once it has ended.
    body: Option<RecvStream>,
    /// Message framing across DATA frames.
    decoder: MessageDecoder,
    /// The client's grpc-encoding for this call (checked as supported before the call began).
    encoding: Encoding,
    /// Receive limit for one message (after decompression).
    max_len: usize,
    /// Did the last message returned arrive compressed (prefix flag 1)?
    last_compressed: bool,
    /// How the request stream ended, once it has: `Ok(())` or the status.
    end: Option<Result<(), Status>>,
    /// Set once the `Stream` impl has yielded its terminal item.
    stream_done: bool,
    /// The call's interceptors, shown each message decoded.
    hooks: Option<Arc<CallHooks>>,
    /// The message type: produced, never stored.
    _message: PhantomData<fn() -> T>,
}

impl<T> Streaming<T> {
    /// The request messages from `body`, decoded with the call's `grpc-encoding` and receive
    /// limit.
    pub(crate) fn new(
        body: RecvStream,
        encoding: Encoding,
        max_len: usize,
        hooks: Option<Arc<CallHooks>>,
    ) -> Self {
        Streaming {
            body: Some(body),
            decoder: MessageDecoder::new(max_len),
            encoding,
            max_len,
            last_compressed: false,
            end: None,
            stream_done: false,
            hooks,
            _message: PhantomData,
        }
    }

    /// Did the message last returned by [`Streaming::message`] arrive compressed (its prefix
    /// flag was 1)? Interop tests check this; applications rarely need it.
    pub fn last_message_compressed(&self) -> bool {
        self.last_compressed
    }

    /// Records how the request stream ended and lets go of the body.
    fn finish(&mut self, end: Result<(), Status>) {
        self.body = None;
        self.end = Some(end);
    }

    /// Polls for the next raw message, reading DATA frames until one is whole or the stream
    /// ends: `Ready(None)` once it has ended, with `end` saying how. (An `Option` rather than
    /// the `Result` the decoder's general path returns: see `wire::MessageDecoder::next_whole`.)
    fn poll_raw(&mut self, cx: &mut Context<'_>) -> Poll<Option<RawMessage>> {
        loop {
            if self.end.is_some() {
                return Poll::Ready(None);
            }
            if let Some(raw) = self.decoder.next_whole() {
                return Poll::Ready(Some(raw));
            }
            match self.decoder.next_message() {
                Ok(Some(raw)) => return Poll::Ready(Some(raw)),
                Ok(None) => {}
                Err(status) => {
                    self.finish(Err(status));
                    continue;
                }
            }
            let Some(body) = self.body.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(body.poll_data(cx)) {
                Some(Ok(data)) => {
                    // Hand the window back now; see the module doc for why this is bounded.
                    let _ = body.flow_control().release_capacity(data.len());
                    self.decoder.push(data);
                }
                Some(Err(error)) => self.finish(Err(status_from_h2(&error))),
                None => {
                    let end = self.decoder.finish();
                    self.finish(end);
                }
            }
        }
    }

    /// How the request stream ended, as [`Streaming::message`] reports it: `Ok(None)` after
    /// the client half-closed, else the status.
    fn ended(&self) -> Result<Option<T>, Status> {
        match &self.end {
            Some(Err(status)) => Err(status.clone()),
            _ => Ok(None),
        }
    }
}

impl<T: prost::Message + Default + 'static> Streaming<T> {
    /// The next request message: `Ok(Some(msg))`; `Ok(None)` once the client has half-closed;
    /// `Err(status)` when the stream failed. After the end, the same outcome again.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    /// Poll form of [`Streaming::message`].
    pub fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        // Taken apart and built again for the decoder, so that only its fields are copied (a
        // copy of the whole value also copies the bytes after `compressed`, which stalls).
        let Some(RawMessage { compressed, data }) = ready!(self.poll_raw(cx)) else {
            return Poll::Ready(self.ended());
        };
        self.last_compressed = compressed;
        let wire_len = data.len();
        let raw = RawMessage { compressed, data };
        match decode_message(raw, self.encoding, self.max_len) {
            Ok(message) => {
                if let Some(hooks) = &self.hooks {
                    hooks.request(&message, wire_len);
                }
                Poll::Ready(Ok(Some(message)))
            }
            Err(status) => {
                self.finish(Err(status.clone()));
                Poll::Ready(Err(status))
            }
        }
    }
}

impl<T: prost::Message + Default + 'static> futures_core::Stream for Streaming<T> {
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.stream_done {
            return Poll::Ready(None);
        }
        match ready!(this.poll_message(cx)) {
            Ok(Some(message)) => Poll::Ready(Some(Ok(message))),
            Ok(None) => {
                this.stream_done = true;
                Poll::Ready(None)
            }
            Err(status) => {
                this.stream_done = true;
                Poll::Ready(Some(Err(status)))
            }
        }
    }
}

impl<T> std::fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("encoding", &self.encoding)
            .field("ended", &self.end.is_some())
            .finish()
    }
}

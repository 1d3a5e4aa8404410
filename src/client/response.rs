//! The client's response side of a call: the response HEADERS, the messages, then the status
//! in the trailers (PROTOCOL-HTTP2 § Responses), read off one HTTP/2 stream.
//!
//! ```text
//!   HEADERS(:status, content-type)   -> headers()
//!   DATA*                            -> messages
//!   HEADERS(grpc-status, END_STREAM) -> trailers(); Ok(None) when OK, else Err
//!   or: HEADERS(:status 200, grpc-status, END_STREAM)                (trailers-only)
//!
//!   state:  Headers --(200, grpc content-type)--> Body --(END_STREAM)--> Trailers --> Done
//!              |                                   |                      |
//!              +-- trailers-only / bad answer -----+----- reset / error --+-------> Done
//! ```
//!
//! Why it is shaped this way:
//! - Message edges are unrelated to DATA frame edges (PROTOCOL-HTTP2 § Data Frames), so DATA
//!   payloads go into a framer (`inbox.rs`) and messages come out of it one at a time.
//! - Each DATA payload's length is handed back to h2's flow control as soon as the bytes are in
//!   the framer, which only asks for more frames when it holds no whole message: the memory
//!   held per call stays bounded by one message plus one frame (RFC 9113 §5.2).
//! - This side owns the call's deadline timer: the caller keeps polling it, so the timer fires
//!   here, resets the stream with RST_STREAM(CANCEL) and ends the call with DEADLINE_EXCEEDED
//!   (PROTOCOL-HTTP2 § Requests, "Timeout"). The reset needs the send half of the stream, which
//!   a bidi call shares with its `RequestSink` (`send_half.rs`).
//! - A `block_on` caller's polls of h2 go through `fast::relay` (one field, one branch in
//!   `poll_step`); everything else reads the same either way.
//!
//! How a call ends, beyond the happy path:
//!
//! ```text
//!   what arrived                                        -> code
//!   non-200 :status with a grpc-status other than OK    -> that status
//!   non-200 :status otherwise                           -> Code::from_http_status, the
//!                                                          message quoting the body's text
//!   200 without a gRPC content-type, no grpc-status     -> UNKNOWN
//!   trailers (or trailers-only) without grpc-status     -> UNKNOWN
//!   DATA with END_STREAM and no trailers                -> INTERNAL
//!   END_STREAM in the middle of a message               -> INTERNAL (truncated)
//!   a compressed message with an unsupported encoding   -> INTERNAL
//!   an h2 error (reset, GOAWAY, I/O)                    -> transport::error::CallEnd's table
//!   the deadline passed                                 -> DEADLINE_EXCEEDED + RST_STREAM(CANCEL)
//! ```
//! A grpc-status, when present, wins over HTTP-level inference: the mapping table "is to be
//! used only for clients that received a response that did not include grpc-status. If
//! grpc-status was provided, it must be used" (http-grpc-status-mapping.md). The one exception
//! is OK on a non-200 answer: the call has failed at the HTTP level, so OK would report an
//! empty success. Such an answer usually comes from a proxy (nginx's 502, 504 or 413 page), and
//! its words are the only diagnosis there is: the first 1 KiB of its body, tags stripped, goes
//! into the status message (the body is not a gRPC body and is never parsed as one). PROTOCOL-HTTP2 has no sentence for a 200 answer that
//! lacks grpc-status; like grpc-go we call it UNKNOWN, and a body that ends with no trailers at
//! all INTERNAL ("server closed the stream without sending trailers").
//!
//! Interceptors see every response message as it is decoded; once the caller holds the stream
//! of a server-streaming or bidi call, this type also reports the call's end to them.
//!
//! What it does not do: send anything but a reset, or retry (the call's attempt loop asks
//! [`ResponseStream::failure`] where a failed attempt may go).
//!
//! Links: PROTOCOL-HTTP2 <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>,
//! http-grpc-status-mapping.md
//! <https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md>,
//! RFC 9113 <https://www.rfc-editor.org/rfc/rfc9113>.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use h2::RecvStream;
use http::HeaderMap;
use tokio::time::{Instant, Sleep};

use super::fast::relay::WakeRelay;
use super::inbox::Inbox;
use super::send_half::{self, SharedSend};
use crate::codec::decode_message;
use crate::compression::Encoding;
use crate::headers::{CONTENT_TYPE, GRPC_ENCODING, GRPC_STATUS, is_grpc_content_type};
use crate::interceptor::CallHooks;
use crate::metadata::Metadata;
use crate::status::{Code, Status};
use crate::transport::error::CallEnd;
use crate::wire::RawMessage;

/// The response messages of a server-streaming or bidi call, followed by the status in the
/// trailers. Read it with [`ResponseStream::message`] or as a [`futures_core::Stream`].
/// Dropping it before the call has ended cancels the call: the HTTP/2 stream is reset with
/// RST_STREAM(CANCEL).
pub struct ResponseStream<T> {
    /// Where the call is in its life (see the state diagram in the module doc).
    state: State,
    /// Message framing across DATA frames.
    inbox: Inbox,
    /// The server's grpc-encoding for this call.
    encoding: Encoding,
    /// The server's grpc-encoding when this build cannot decode it: only an error if a
    /// compressed message actually arrives.
    unsupported_encoding: Option<String>,
    /// Receive limit for one message (after decompression).
    max_len: usize,
    /// Did the last message returned arrive compressed (prefix flag 1)?
    last_compressed: bool,
    /// Fires at the call's deadline (with the instant, checked directly too: a timer wakes a
    /// little late, and a message that arrives after the deadline must not be delivered).
    deadline: Option<(Instant, Pin<Box<Sleep>>)>,
    /// The send half, to reset on deadline expiry, on a bad answer and on drop.
    send: SharedSend,
    /// For a `block_on` caller: the relay h2's wakes go through (`fast::relay`).
    relay: Option<WakeRelay>,
    /// Response initial metadata, once the response HEADERS arrived.
    headers: Option<Metadata>,
    /// Trailing metadata, once the call ended with trailers.
    trailers: Option<Metadata>,
    /// How the call ended, once it has: `Ok(())` or the final status.
    end: Option<Result<(), Status>>,
    /// The server never processed the stream (transport::error::CallEnd::NeverProcessed).
    never_processed: bool,
    /// Set once the `Stream` impl has yielded its terminal item.
    stream_done: bool,
    /// Response HEADERS other than trailers-only arrived (the call is committed).
    response_started: bool,
    /// The call's interceptors, shown each message decoded.
    hooks: Option<Arc<CallHooks>>,
    /// Whether this side reports the call's end to `hooks` (server-streaming and bidi).
    hooks_end: bool,
    /// The message type: produced, never stored.
    _message: PhantomData<fn() -> T>,
}

/// Where the response side is.
enum State {
    /// Waiting for the response HEADERS.
    Headers(h2::client::ResponseFuture),
    /// Reading DATA frames.
    Body(RecvStream),
    /// The body ended; waiting for the trailers.
    Trailers(RecvStream),
    /// A non-200 answer without a usable grpc-status (a proxy's own error, such as nginx's
    /// 502 page): reading the first [`ERROR_BODY_LIMIT`] bytes of its body for the message.
    ErrorBody {
        body: RecvStream,
        status: Status,
        text: Vec<u8>,
    },
    /// Nothing more to read; `end` holds the outcome.
    Done,
}

/// Where a failed attempt may go (gRFC A6), as the attempt loop in `calls.rs` reads it.
#[derive(Debug)]
pub(crate) enum Failed {
    /// The server never processed the stream: it may be sent again at once (transparent retry).
    NeverProcessed(Status),
    /// No response had started: the retry policy decides.
    Uncommitted(Status),
    /// The response had started, or the request cannot be sent again: final.
    Committed(Status),
}

impl Failed {
    /// The status the call ends with if it is not tried again.
    pub(crate) fn into_status(self) -> Status {
        match self {
            Failed::NeverProcessed(status)
            | Failed::Uncommitted(status)
            | Failed::Committed(status) => status,
        }
    }
}

impl From<Status> for Failed {
    /// A failure before any stream was open: the retry policy decides.
    fn from(status: Status) -> Failed {
        Failed::Uncommitted(status)
    }
}

impl<T> ResponseStream<T> {
    /// The response side of a call whose request HEADERS are sent: it waits for the response on
    /// `response`, enforces `deadline` by resetting `send`, and ends with the status from the
    /// trailers.
    pub(crate) fn new(
        response: h2::client::ResponseFuture,
        send: SharedSend,
        max_len: usize,
        deadline: Option<Instant>,
    ) -> Self {
        ResponseStream {
            state: State::Headers(response),
            inbox: Inbox::new(max_len),
            encoding: Encoding::Identity,
            unsupported_encoding: None,
            max_len,
            last_compressed: false,
            deadline: deadline.map(|at| (at, Box::pin(tokio::time::sleep_until(at)))),
            send,
            relay: None,
            headers: None,
            trailers: None,
            end: None,
            never_processed: false,
            stream_done: false,
            response_started: false,
            hooks: None,
            hooks_end: false,
            _message: PhantomData,
        }
    }

    /// Shows each response message to `hooks` and, when `report_end`, the call's end (for a
    /// call whose stream the caller holds).
    pub(crate) fn observe(&mut self, hooks: Option<Arc<CallHooks>>, report_end: bool) {
        self.hooks = hooks;
        self.hooks_end = report_end && self.hooks.is_some();
        if self.hooks_end {
            if let (Some(hooks), Some(end)) = (&self.hooks, &self.end) {
                hooks.end_with(end);
            }
        }
    }

    /// Hands the stream to its caller: from a `block_on` caller, h2's wakes now go through a
    /// relay (`fast::relay`).
    pub(crate) fn hand_to_caller(&mut self) {
        if self.relay.is_none() && self.end.is_none() {
            self.relay = WakeRelay::for_caller();
        }
    }

    /// Where this failed attempt may go: `status` (the attempt's error), marked by what this
    /// side saw. `replayable` says whether the request side could send its request again.
    pub(crate) fn failure(&self, status: Status, replayable: bool) -> Failed {
        if self.response_started || !replayable {
            Failed::Committed(status)
        } else if self.never_processed {
            Failed::NeverProcessed(status)
        } else {
            Failed::Uncommitted(status)
        }
    }

    /// The response's initial metadata, once the response HEADERS arrived (empty for a
    /// trailers-only response).
    pub fn headers(&self) -> Option<&Metadata> {
        self.headers.as_ref()
    }

    /// The trailing metadata, once the call has ended with trailers (custom entries only; the
    /// status itself is what [`ResponseStream::message`] returns).
    pub fn trailers(&self) -> Option<&Metadata> {
        self.trailers.as_ref()
    }

    /// Did the message last returned by [`ResponseStream::message`] arrive compressed (its
    /// prefix flag was 1)? Interop tests check this; applications rarely need it.
    pub fn last_message_compressed(&self) -> bool {
        self.last_compressed
    }

    /// Polls until the response HEADERS are in (or the call has ended), without consuming a
    /// message, so that a trailers-only failure surfaces before the caller sees the stream.
    pub(crate) fn poll_headers(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        loop {
            if let Some(end) = &self.end {
                return Poll::Ready(end.clone());
            }
            if !matches!(self.state, State::Headers(_) | State::ErrorBody { .. }) {
                return Poll::Ready(Ok(()));
            }
            if let Err(status) = self.poll_deadline(cx) {
                return Poll::Ready(Err(status));
            }
            ready!(self.poll_step(cx));
        }
    }

    /// Records the end of the call and releases the stream handles.
    fn finish(&mut self, end: Result<(), Status>) {
        if self.hooks_end && self.end.is_none() {
            if let Some(hooks) = &self.hooks {
                hooks.end_with(&end);
            }
        }
        self.state = State::Done;
        self.deadline = None;
        self.relay = None;
        self.end = Some(end);
    }

    /// Ends the call after an h2 error, as the transport's one mapping says.
    fn finish_h2(&mut self, error: &h2::Error) {
        let end = CallEnd::from_h2(error);
        self.never_processed = matches!(end, CallEnd::NeverProcessed(_));
        self.finish(Err(end.into_status()));
    }

    /// Ends the call with `status` and tells the server with RST_STREAM(CANCEL).
    fn fail_and_reset(&mut self, status: Status) -> Status {
        send_half::reset(&self.send, h2::Reason::CANCEL);
        self.finish(Err(status.clone()));
        status
    }

    /// Has the deadline passed? On expiry, resets the stream and ends the call.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Result<(), Status> {
        let expired = match self.deadline.as_mut() {
            Some((at, sleep)) => sleep.as_mut().poll(cx).is_ready() || Instant::now() >= *at,
            None => false,
        };
        if expired {
            let status =
                Status::deadline_exceeded("deadline exceeded while waiting for the response");
            return Err(self.fail_and_reset(status));
        }
        Ok(())
    }

    /// Advances the state machine by one h2 event. `Ready(())` means "something changed,
    /// look again"; `Pending` means h2 has registered the waker.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self.relay.take() {
            None => self.poll_h2(cx),
            Some(relay) => {
                let polled = relay.poll(cx, |cx| self.poll_h2(cx));
                if self.end.is_none() {
                    self.relay = Some(relay);
                }
                polled
            }
        }
    }

    /// [`ResponseStream::poll_step`] with the waker h2 is to wake.
    fn poll_h2(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.state {
            State::Done => Poll::Ready(()),
            State::Headers(response) => {
                match ready!(Pin::new(response).poll(cx)) {
                    Ok(response) => self.on_response_headers(response),
                    Err(error) => self.finish_h2(&error),
                }
                Poll::Ready(())
            }
            State::Body(body) => {
                match ready!(body.poll_data(cx)) {
                    Some(Ok(data)) => {
                        // Hand the window back now; see the module doc for why this is bounded.
                        let _ = body.flow_control().release_capacity(data.len());
                        self.inbox.push(&data);
                    }
                    Some(Err(error)) => self.finish_h2(&error),
                    None => self.on_body_end(),
                }
                Poll::Ready(())
            }
            State::ErrorBody { body, text, .. } => {
                let ended = match ready!(body.poll_data(cx)) {
                    Some(Ok(data)) => {
                        let _ = body.flow_control().release_capacity(data.len());
                        let room = ERROR_BODY_LIMIT - text.len();
                        text.extend_from_slice(&data[..data.len().min(room)]);
                        (text.len() >= ERROR_BODY_LIMIT).then_some(false)
                    }
                    // A reset after the error page: report what arrived.
                    Some(Err(_)) => Some(false),
                    None => Some(true),
                };
                if let Some(ended) = ended {
                    self.on_error_body_end(ended);
                }
                Poll::Ready(())
            }
            State::Trailers(body) => {
                match ready!(body.poll_trailers(cx)) {
                    Ok(Some(trailers)) => self.on_trailers(&trailers),
                    Ok(None) => self.finish(Err(Status::internal(
                        "server closed the stream without sending trailers",
                    ))),
                    Err(error) => self.finish_h2(&error),
                }
                Poll::Ready(())
            }
        }
    }

    /// END_STREAM on the body: a partial message is an error; otherwise the trailers are next.
    fn on_body_end(&mut self) {
        if let Err(status) = self.inbox.finish() {
            self.fail_and_reset(status);
            return;
        }
        if let State::Body(body) = std::mem::replace(&mut self.state, State::Done) {
            self.state = State::Trailers(body);
        }
    }

    /// The response HEADERS: validate them, keep the initial metadata, and handle a
    /// trailers-only answer.
    fn on_response_headers(&mut self, response: http::Response<RecvStream>) {
        let (parts, body) = response.into_parts();
        let headers = parts.headers;
        let trailers_only = body.is_end_stream();
        if parts.status != http::StatusCode::OK {
            // A grpc-status in the block is the server's own diagnosis and wins; OK cannot
            // be, since the call failed at the HTTP level (and its body is not read).
            let status = match Status::from_headers(&headers) {
                Some(status) if status.code() != Code::Ok => status,
                _ => Status::new(
                    Code::from_http_status(parts.status.as_u16()),
                    format!("HTTP status {} without a usable grpc-status", parts.status),
                ),
            };
            let has_grpc_status = headers.contains_key(GRPC_STATUS);
            self.headers = Some(Metadata::new());
            self.trailers = Some(Metadata::from_headers(headers));
            if trailers_only {
                self.finish(Err(status));
            } else if has_grpc_status {
                self.fail_and_reset(status);
            } else {
                self.state = State::ErrorBody {
                    body,
                    status,
                    text: Vec::new(),
                };
            }
            return;
        }
        if trailers_only && headers.contains_key(GRPC_STATUS) {
            // Trailers-only (PROTOCOL-HTTP2 § Responses): this block is the trailers.
            self.headers = Some(Metadata::new());
            self.on_trailers(&headers);
            return;
        }
        if let Err(status) = check_content_type(&headers) {
            self.fail_and_reset(status);
            return;
        }
        match headers.get(GRPC_ENCODING) {
            None => self.encoding = Encoding::Identity,
            Some(name) => match Encoding::from_name(name.as_bytes()) {
                Some(encoding) => self.encoding = encoding,
                None => {
                    self.unsupported_encoding =
                        Some(String::from_utf8_lossy(name.as_bytes()).into_owned());
                }
            },
        }
        self.headers = Some(Metadata::from_headers(headers));
        if trailers_only {
            // 200 with a gRPC content-type, END_STREAM, and no grpc-status.
            self.on_trailers(&HeaderMap::new());
        } else {
            self.response_started = true;
            self.state = State::Body(body);
        }
    }

    /// The error body is read (`ended`) or as much of it as we keep: the call ends with the
    /// HTTP-mapped status, its message quoting the body's text.
    fn on_error_body_end(&mut self, ended: bool) {
        let State::ErrorBody { status, text, .. } = std::mem::replace(&mut self.state, State::Done)
        else {
            return;
        };
        let summary = error_body_text(&text);
        let status = if summary.is_empty() {
            status
        } else {
            Status::new(status.code(), format!("{}: {summary}", status.message()))
        };
        if ended {
            self.finish(Err(status));
        } else {
            self.fail_and_reset(status);
        }
    }

    /// The trailers: the status ends the call.
    fn on_trailers(&mut self, trailers: &HeaderMap) {
        self.trailers = Some(Metadata::from_headers(trailers.clone()));
        let end = match Status::from_headers(trailers) {
            Some(status) if status.code() == Code::Ok => Ok(()),
            Some(status) => Err(status),
            None => Err(Status::unknown("the server sent no grpc-status")),
        };
        self.finish(end);
    }

    /// Polls for the next raw message, driving h2 until one is whole or the call ends:
    /// `Ready(None)` once it has ended, with `end` saying how. (An `Option` rather than the
    /// `Result` of the inbox's general path: see `Inbox::next_whole`.)
    fn poll_raw(&mut self, cx: &mut Context<'_>) -> Poll<Option<RawMessage>> {
        loop {
            if self.poll_deadline(cx).is_err() || self.end.is_some() {
                return Poll::Ready(None);
            }
            if let Some(raw) = self.inbox.next_whole() {
                return Poll::Ready(Some(raw));
            }
            match self.inbox.next_message() {
                Ok(Some(raw)) => return Poll::Ready(Some(raw)),
                Ok(None) => {}
                Err(status) => {
                    self.fail_and_reset(status);
                    return Poll::Ready(None);
                }
            }
            ready!(self.poll_step(cx));
        }
    }

    /// How the call ended, as [`ResponseStream::message`] reports it: `Ok(None)` after an OK
    /// status, else the status.
    fn ended(&self) -> Result<Option<T>, Status> {
        match &self.end {
            Some(Err(status)) => Err(status.clone()),
            _ => Ok(None),
        }
    }
}

impl<T: prost::Message + Default + 'static> ResponseStream<T> {
    /// The next message: `Ok(Some(msg))`; `Ok(None)` once the trailers said OK; `Err(status)`
    /// when the call failed. After the end, further calls return the same outcome again.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    /// Poll form of [`ResponseStream::message`].
    pub fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        // Taken apart and built again for the decoder, so that only its fields are copied (a
        // copy of the whole value also copies the bytes after `compressed`, which stalls).
        let Some(RawMessage { compressed, data }) = ready!(self.poll_raw(cx)) else {
            return Poll::Ready(self.ended());
        };
        self.last_compressed = compressed;
        if compressed {
            if let Some(name) = &self.unsupported_encoding {
                let status = Status::internal(format!(
                    "received a message compressed with unsupported grpc-encoding {name:?}"
                ));
                return Poll::Ready(Err(self.fail_and_reset(status)));
            }
        }
        let wire_len = data.len();
        let raw = RawMessage { compressed, data };
        match decode_message(raw, self.encoding, self.max_len) {
            Ok(message) => {
                if let Some(hooks) = &self.hooks {
                    hooks.response(&message, wire_len);
                }
                Poll::Ready(Ok(Some(message)))
            }
            Err(status) => Poll::Ready(Err(self.fail_and_reset(status))),
        }
    }
}

impl<T: prost::Message + Default + 'static> futures_core::Stream for ResponseStream<T> {
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

impl<T> Drop for ResponseStream<T> {
    /// A call dropped before its end is cancelled: RST_STREAM(CANCEL) tells the server
    /// (PROTOCOL-HTTP2 § Errors). h2 would also reset once every handle of the stream is gone,
    /// but a bidi call's `RequestSink` may outlive this side.
    fn drop(&mut self) {
        if self.end.is_none() {
            send_half::reset(&self.send, h2::Reason::CANCEL);
            if self.hooks_end {
                if let Some(hooks) = &self.hooks {
                    hooks.end(&Status::cancelled("the caller dropped the response stream"));
                }
            }
        }
    }
}

impl<T> std::fmt::Debug for ResponseStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStream")
            .field("encoding", &self.encoding)
            .field("ended", &self.end.is_some())
            .finish()
    }
}

/// How much of a non-gRPC error body goes into the status message.
const ERROR_BODY_LIMIT: usize = 1024;

/// The readable text of an error body: markup tags dropped, whitespace runs made one space,
/// at most 256 characters (a proxy's HTML page becomes "502 Bad Gateway … nginx/1.22.1").
fn error_body_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut plain = String::new();
    let mut in_tag = false;
    for c in text.chars() {
        match c {
            '<' => {
                in_tag = true;
                plain.push(' ');
            }
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            c if c.is_control() => plain.push(' '),
            c => plain.push(c),
        }
    }
    plain
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(256)
        .collect()
}

/// Checks the content-type of a 200 response that is not trailers-only-with-status
/// (see the table in the module doc).
fn check_content_type(headers: &HeaderMap) -> Result<(), Status> {
    match headers.get(CONTENT_TYPE) {
        Some(value) if is_grpc_content_type(value.as_bytes()) => Ok(()),
        Some(value) => Err(Status::unknown(format!(
            "HTTP status 200 with unexpected content-type {:?}",
            String::from_utf8_lossy(value.as_bytes())
        ))),
        None => Err(Status::unknown("HTTP status 200 without a content-type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_text_keeps_a_proxy_page_words() {
        // nginx 1.22's own 502 page, byte for byte.
        let page = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
            <center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n\
            </body>\r\n</html>\r\n";
        assert_eq!(
            error_body_text(page),
            "502 Bad Gateway 502 Bad Gateway nginx/1.22.1"
        );
        assert_eq!(
            error_body_text(b"upstream timed out\n"),
            "upstream timed out"
        );
        assert_eq!(error_body_text(b""), "");
        // Bounded, and invalid UTF-8 is replaced, never an error.
        assert_eq!(error_body_text(&[b'x'; 2000]).len(), 256);
        assert_eq!(error_body_text(b"\xff ok"), "\u{fffd} ok");
    }

    #[test]
    fn content_type_rules() {
        // (content-type, the code the call ends with or None for "a gRPC response").
        let rows: &[(Option<&'static str>, Option<Code>)] = &[
            (Some("application/grpc"), None),
            // A subtype or parameters still name gRPC.
            (Some("application/grpc+proto"), None),
            (Some("application/grpc; charset=utf-8"), None),
            // An HTML error page from a proxy: not gRPC; 200 is not in the mapping table.
            (Some("text/html"), Some(Code::Unknown)),
            (Some("application/json"), Some(Code::Unknown)),
            // No content-type at all.
            (None, Some(Code::Unknown)),
        ];
        for (content_type, expected) in rows {
            let mut headers = HeaderMap::new();
            if let Some(value) = content_type {
                headers.insert(CONTENT_TYPE, http::HeaderValue::from_static(value));
            }
            let got = check_content_type(&headers).err().map(|s| s.code());
            assert_eq!(got, *expected, "{content_type:?}");
        }
    }
}

//! The inbound half of a call: a stream of messages read off one HTTP/2 stream.
//!
//! One type serves both roles. On the server a [`Streaming`] yields the request messages of a
//! client-streaming or bidi call; on the client it yields the response messages and then reads
//! the status from the trailers (PROTOCOL-HTTP2 § Responses).
//!
//! ```text
//!  server role:  DATA* ... END_STREAM            -> messages, then Ok(None)
//!
//!  client role:  HEADERS(:status, content-type)  -> headers()
//!                DATA*                           -> messages
//!                HEADERS(grpc-status, END_STREAM)-> trailers(); Ok(None) when OK, else Err
//!           or:  HEADERS(:status 200, grpc-status, END_STREAM)          (trailers-only)
//!
//!   state:  Headers --(200, grpc content-type)--> Body --(END_STREAM)--> Trailers --> Done
//!              |                                   |                      |
//!              +-- trailers-only / bad answer -----+----- reset / error --+-------> Done
//! ```
//!
//! Why it is shaped this way:
//! - Message edges are unrelated to DATA frame edges (PROTOCOL-HTTP2 § Data Frames), so DATA
//!   payloads go into a framer and messages come out of it one at a time: on the server the
//!   shared [`MessageDecoder`], which slices payloads; on the client an inbox that gathers them
//!   into one reused buffer (large responses span many frames; see `Inbox` for the numbers).
//! - Each DATA payload's length is handed back to h2's flow control as soon as the bytes are in
//!   the decoder. The decoder only asks for more frames when it holds no whole message, so the
//!   memory held per call stays bounded by one message (the receive limit) plus one frame,
//!   while a long stream never stalls on a window nobody reopens (RFC 9113 §5.2).
//! - The client side owns the call's deadline timer: the caller keeps polling this type, so the
//!   timer fires here, resets the stream with RST_STREAM(CANCEL) and ends the call with
//!   DEADLINE_EXCEEDED (PROTOCOL-HTTP2 § Requests, "Timeout"). The reset needs the send half of
//!   the stream, which a bidi call shares with its `RequestSink`; hence `SharedSend`.
//! - A client stream read from outside the runtime's tasks (`block_on`) hands h2 the waker of
//!   a relay task rather than the caller's: h2 wakes a reader while holding its connection
//!   lock, and a caller thread woken there ran into that lock on every message (`client::relay`
//!   has the measurements). Only the wake moves; the reading below is the same either way.
//!
//! How a client call ends, beyond the happy path:
//!
//! ```text
//!   what arrived                                        -> code
//!   non-200 :status with a grpc-status other than OK    -> that status
//!   non-200 :status otherwise                           -> Code::from_http_status
//!   200 without a gRPC content-type, no grpc-status     -> UNKNOWN
//!   trailers (or trailers-only) without grpc-status     -> UNKNOWN
//!   DATA with END_STREAM and no trailers                -> INTERNAL
//!   END_STREAM in the middle of a message               -> INTERNAL (truncated)
//!   a compressed message with an unsupported encoding   -> INTERNAL
//!   RST_STREAM(reason) from the peer                    -> Code::from_h2_reason (CANCEL -> CANCELLED)
//!   GOAWAY that did not cover this stream               -> UNAVAILABLE (never processed)
//!   GOAWAY(ENHANCE_YOUR_CALM), the connection closing   -> RESOURCE_EXHAUSTED
//!   the connection broke (I/O)                          -> UNAVAILABLE
//!   the deadline passed                                 -> DEADLINE_EXCEEDED + RST_STREAM(CANCEL)
//! ```
//! A grpc-status, when present, wins over HTTP-level inference: the mapping table "is to be
//! used only for clients that received a response that did not include grpc-status. If
//! grpc-status was provided, it must be used" (http-grpc-status-mapping.md). The one exception
//! is OK on a non-200 answer: the call has failed at the HTTP level and its body is not read,
//! so OK would report an empty success. PROTOCOL-HTTP2 has no sentence for a 200 answer that
//! lacks grpc-status; like grpc-go we call it UNKNOWN, and a body that ends with no trailers at
//! all INTERNAL ("server closed the stream without sending trailers").
//!
//! Interceptors (see `interceptor`) see every message as it is decoded: as a request message on
//! the server, as a response message on the client. On the client, once the caller holds the
//! stream of a server-streaming or bidi call, this type also reports the call's end to them.
//!
//! What it does not do: it never sends anything but a reset, and it never retries (the retry
//! policy in `client::retry` asks `Streaming::response_started` whether it still may). Messages
//! over the receive limit end the call with RESOURCE_EXHAUSTED (never OUT_OF_RANGE).
//!
//! Links: PROTOCOL-HTTP2 <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>,
//! http-grpc-status-mapping.md
//! <https://github.com/grpc/grpc/blob/master/doc/http-grpc-status-mapping.md>,
//! RFC 9113 <https://www.rfc-editor.org/rfc/rfc9113>.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};

use bytes::{Buf, Bytes, BytesMut};
use h2::RecvStream;
use http::HeaderMap;
use tokio::time::{Instant, Sleep};

use crate::client::relay::{Relay, blocking_caller};
use crate::codec::decode_message;
use crate::compression::Encoding;
use crate::headers::{CONTENT_TYPE, GRPC_ENCODING, GRPC_STATUS, is_grpc_content_type};
use crate::interceptor::CallHooks;
use crate::metadata::Metadata;
use crate::status::{Code, Status};
use crate::wire::{MessageDecoder, MessagePrefix, PREFIX_LEN, RawMessage, body_len};

/// The send half of a client call's stream, shared by the `RequestSink` (which writes
/// messages into it) and the [`Streaming`] (which resets it when the deadline passes).
/// Each holder locks it only for a non-blocking h2 call, never across an await.
pub(crate) type SharedSend = Arc<Mutex<h2::SendStream<Bytes>>>;

/// Resets a shared send half with `reason`, tolerating a poisoned lock (the stream state lives
/// in h2, so a panic elsewhere cannot leave it half-updated on our side).
pub(crate) fn reset_shared(send: &SharedSend, reason: h2::Reason) {
    crate::lock::lock(send).send_reset(reason);
}

/// The inbound messages of one call.
///
/// Server side: the request messages of a client-streaming or bidi call. Client side: the
/// response messages of a server-streaming or bidi call, followed by the status in the
/// trailers. Read it with [`Streaming::message`] or as a [`futures_core::Stream`].
/// On the client, dropping it before the call has ended cancels the call: the HTTP/2 stream
/// is reset with RST_STREAM(CANCEL).
pub struct Streaming<T> {
    /// Where the call is in its life (see the state diagram in the module doc).
    state: State,
    /// Message framing across DATA frames.
    decoder: Framing,
    /// The peer's grpc-encoding for this call.
    encoding: Encoding,
    /// The peer's grpc-encoding when this build cannot decode it: only an error if a
    /// compressed message actually arrives.
    unsupported_encoding: Option<String>,
    /// Receive limit for one message (after decompression).
    max_len: usize,
    /// Did the last message returned arrive compressed (prefix flag 1)?
    last_compressed: bool,
    /// Client only: the deadline timer and the send half to reset.
    client: Option<ClientSide>,
    /// Response initial metadata (client side, once the response headers arrived).
    headers: Option<Metadata>,
    /// Trailing metadata (client side, once the call ended with trailers).
    trailers: Option<Metadata>,
    /// How the call ended, once it has: `Ok(())` or the final status.
    end: Option<Result<(), Status>>,
    /// Set once the `Stream` impl has yielded its terminal item.
    stream_done: bool,
    /// Client: response HEADERS other than trailers-only arrived (the call is committed).
    response_started: bool,
    /// The call's interceptors, shown each message decoded.
    hooks: Option<Arc<CallHooks>>,
    /// Whether this half reports the call's end to `hooks` (client server-streaming and bidi).
    hooks_end: bool,
    /// The message type: produced, never stored.
    _message: PhantomData<fn() -> T>,
}

/// What a client call adds to the server's view.
struct ClientSide {
    /// Fires at the call's deadline (with the instant, checked directly too: a timer wakes a
    /// little late, and a message that arrives after the deadline must not be delivered).
    deadline: Option<(Instant, Pin<Box<Sleep>>)>,
    /// The send half, to reset on deadline expiry and on a bad answer.
    send: SharedSend,
    /// When the caller reads from outside the runtime: the relay that h2's wakes go through,
    /// and its waker (see `client::relay` for why).
    relay: Option<(Arc<Relay>, Waker)>,
}

/// Where the inbound half is.
enum State {
    /// Client: waiting for the response HEADERS.
    Headers(h2::client::ResponseFuture),
    /// Reading DATA frames.
    Body(RecvStream),
    /// Client: the body ended; waiting for the trailers.
    Trailers(RecvStream),
    /// Nothing more to read; `end` holds the outcome.
    Done,
}

/// How DATA payloads become messages: the server role keeps the shared [`MessageDecoder`]; the
/// client role gathers payloads into one reusable buffer ([`Inbox`]).
enum Framing {
    /// Server: payloads are kept as they came and sliced, copied only across payloads.
    Server(MessageDecoder),
    /// Client: see [`Inbox`].
    Client(Inbox),
}

impl Framing {
    /// Adds one DATA payload.
    fn push(&mut self, data: Bytes) {
        match self {
            Framing::Server(decoder) => decoder.push(data),
            Framing::Client(inbox) => inbox.push(&data),
        }
    }

    /// The next whole message, `Ok(None)` when more bytes are needed.
    fn next_message(&mut self) -> Result<Option<RawMessage>, Status> {
        match self {
            Framing::Server(decoder) => decoder.next_message(),
            Framing::Client(inbox) => inbox.next_message(),
        }
    }

    /// At END_STREAM: INTERNAL if a message was cut short.
    fn finish(&self) -> Result<(), Status> {
        match self {
            Framing::Server(decoder) => decoder.finish(),
            Framing::Client(inbox) => inbox.finish(),
        }
    }
}

/// Client-side framing: every DATA payload is appended to one buffer that is reused from
/// message to message, and each whole message is split off it without a further copy.
///
/// Why not slice the payloads as the server role does: a large response message spans many
/// DATA frames (16 KiB each by default), and gathering it needs a contiguous copy anyway. Made
/// into a fresh allocation per message, as the shared decoder first did, that copy page-faulted
/// through new memory for every 1 MiB message (the allocator returns large freed blocks to the
/// kernel): `perf record` of 200 downloads of 1 MiB put 45 % of the client's time in page
/// faults. Here the buffer's memory is reclaimed once the caller has decoded the previous
/// message, so the copy lands in memory already mapped; for small messages it is one `memcpy`
/// of each payload. The decoder has since learned to reuse its buffer too, and downloads of
/// 1 MiB are as fast through it; it stays apart because streams of small messages are not:
/// `bench-client server-stream` (1,000,000 × 16 B) took 0.092–0.104 s through this inbox and
/// 0.103–0.120 s through the decoder, five interleaved runs each. The buffer grows only with bytes that arrived (a prefix claiming a large
/// length allocates nothing), and keeps the capacity of the largest message seen, at most the
/// receive limit plus one frame, until the call ends. Same rules and codes as
/// [`MessageDecoder`] (`wire.rs`).
struct Inbox {
    /// Received bytes not yet handed out as messages.
    buf: BytesMut,
    /// Largest message body accepted, in bytes.
    max_len: usize,
}

impl Inbox {
    /// An empty inbox that rejects messages over `max_len` bytes.
    fn new(max_len: usize) -> Inbox {
        Inbox {
            buf: BytesMut::new(),
            max_len,
        }
    }

    /// Appends one DATA payload.
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next whole message; the length is checked against the limit as soon as the prefix
    /// is in, before the body is waited for (RESOURCE_EXHAUSTED; a bad flag is INTERNAL).
    fn next_message(&mut self) -> Result<Option<RawMessage>, Status> {
        let Some(head) = self.buf.get(..PREFIX_LEN) else {
            return Ok(None);
        };
        let mut bytes = [0u8; PREFIX_LEN];
        bytes.copy_from_slice(head);
        let prefix = MessagePrefix::decode(bytes)?;
        let len = body_len(prefix, self.max_len)?;
        if self.buf.len() - PREFIX_LEN < len {
            return Ok(None);
        }
        self.buf.advance(PREFIX_LEN);
        let data = self.buf.split_to(len).freeze();
        Ok(Some(RawMessage {
            compressed: prefix.compressed,
            data,
        }))
    }

    /// At END_STREAM: INTERNAL if a prefix or a message was cut short.
    fn finish(&self) -> Result<(), Status> {
        match self.buf.len() {
            0 => Ok(()),
            n if n < PREFIX_LEN => Err(Status::internal(format!(
                "truncated message: stream ended {n} bytes into a {PREFIX_LEN}-byte prefix"
            ))),
            n => Err(Status::internal(format!(
                "truncated message: stream ended after {} message bytes",
                n - PREFIX_LEN
            ))),
        }
    }
}

impl<T> Streaming<T> {
    /// The server-side inbound half: request messages from `body`, decoded with the call's
    /// `grpc-encoding` and receive limit.
    pub(crate) fn server(
        body: RecvStream,
        encoding: Encoding,
        max_len: usize,
        hooks: Option<Arc<CallHooks>>,
    ) -> Self {
        let mut streaming = Self::new(State::Body(body), encoding, max_len, None);
        streaming.hooks = hooks;
        streaming
    }

    /// Client: shows each response message to `hooks` and, when `report_end`, the call's end
    /// (for a call whose stream the caller holds).
    pub(crate) fn observe(&mut self, hooks: Option<Arc<CallHooks>>, report_end: bool) {
        self.hooks = hooks;
        self.hooks_end = report_end && self.hooks.is_some();
        if self.hooks_end {
            if let (Some(hooks), Some(end)) = (&self.hooks, &self.end) {
                hooks.end_with(end);
            }
        }
    }

    /// Client: did response HEADERS (not a trailers-only answer) arrive? From then on the call
    /// is committed: gRFC A6 allows no retry.
    pub(crate) fn response_started(&self) -> bool {
        self.response_started
    }

    /// The client-side inbound half of a call whose request HEADERS are sent: it waits for
    /// the response on `response`, enforces `deadline` by resetting `send`, and ends with the
    /// status from the trailers.
    pub(crate) fn client(
        response: h2::client::ResponseFuture,
        send: SharedSend,
        max_len: usize,
        deadline: Option<Instant>,
    ) -> Self {
        let client = ClientSide {
            deadline: deadline.map(|at| (at, Box::pin(tokio::time::sleep_until(at)))),
            send,
            relay: None,
        };
        Self::new(
            State::Headers(response),
            Encoding::Identity,
            max_len,
            Some(client),
        )
    }

    /// Common constructor.
    fn new(state: State, encoding: Encoding, max_len: usize, client: Option<ClientSide>) -> Self {
        Streaming {
            state,
            decoder: if client.is_some() {
                Framing::Client(Inbox::new(max_len))
            } else {
                Framing::Server(MessageDecoder::new(max_len))
            },
            encoding,
            unsupported_encoding: None,
            max_len,
            last_compressed: false,
            client,
            headers: None,
            trailers: None,
            end: None,
            stream_done: false,
            response_started: false,
            hooks: None,
            hooks_end: false,
            _message: PhantomData,
        }
    }

    /// Client side: the response's initial metadata, once the response HEADERS arrived
    /// (empty for a trailers-only response). Always `None` on the server side.
    pub fn headers(&self) -> Option<&Metadata> {
        self.headers.as_ref()
    }

    /// Client side: the trailing metadata, once the call has ended with trailers (custom
    /// entries only; the status itself is what [`Streaming::message`] returns).
    pub fn trailers(&self) -> Option<&Metadata> {
        self.trailers.as_ref()
    }

    /// Did the message last returned by [`Streaming::message`] arrive compressed (its prefix
    /// flag was 1)? Interop tests check this; applications rarely need it.
    pub fn last_message_compressed(&self) -> bool {
        self.last_compressed
    }

    /// Client side: polls until the response HEADERS are in (or the call has ended), without
    /// consuming a message, so that a trailers-only failure surfaces before the caller sees
    /// the stream.
    pub(crate) fn poll_headers(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        loop {
            if let Some(end) = &self.end {
                return Poll::Ready(end.clone());
            }
            if !matches!(self.state, State::Headers(_)) {
                return Poll::Ready(Ok(()));
            }
            if let Err(status) = self.poll_deadline(cx) {
                return Poll::Ready(Err(status));
            }
            ready!(self.poll_step(cx));
        }
    }

    /// Client: routes h2's wake-ups through a relay task when the caller polls this stream
    /// from outside the runtime's tasks on a multi-thread runtime (`block_on`, as a
    /// `#[tokio::main]` program's calls are), where h2 waking the caller while it holds its
    /// lock costs lock contention per message (see `client::relay`). A task on the runtime
    /// (or a current-thread runtime, where the caller's thread is the worker) is woken by h2
    /// directly, as before.
    pub(crate) fn relay_wakes(&mut self) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        if client.relay.is_none() && self.end.is_none() && blocking_caller() {
            client.relay = Some(Relay::spawn());
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
        if let Some(client) = &mut self.client {
            client.deadline = None;
            if let Some((relay, _)) = client.relay.take() {
                relay.close();
            }
        }
        self.end = Some(end);
    }

    /// Ends the call with `status` and, on the client, tells the server with RST_STREAM.
    fn fail_and_reset(&mut self, status: Status, reason: h2::Reason) -> Status {
        if let Some(client) = &self.client {
            reset_shared(&client.send, reason);
        }
        self.finish(Err(status.clone()));
        status
    }

    /// Client: has the deadline passed? On expiry, resets the stream and ends the call.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Result<(), Status> {
        let expired = match self.client.as_mut().and_then(|c| c.deadline.as_mut()) {
            Some((at, sleep)) => sleep.as_mut().poll(cx).is_ready() || Instant::now() >= *at,
            None => false,
        };
        if expired {
            let status =
                Status::deadline_exceeded("deadline exceeded while waiting for the response");
            return Err(self.fail_and_reset(status, h2::Reason::CANCEL));
        }
        Ok(())
    }

    /// Advances the state machine by one h2 event. `Ready(())` means "something changed,
    /// look again"; `Pending` means h2 has registered the waker.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // h2 gets the relay's waker when there is one; the caller's is kept for the relay.
        if let Some((relay, waker)) = self.client.as_ref().and_then(|c| c.relay.as_ref()) {
            relay.register(cx);
            let waker = waker.clone();
            return self.poll_h2(&mut Context::from_waker(&waker));
        }
        self.poll_h2(cx)
    }

    /// [`Streaming::poll_step`] with the waker h2 is to wake.
    fn poll_h2(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.state {
            State::Done => Poll::Ready(()),
            State::Headers(response) => {
                let polled = ready!(Pin::new(response).poll(cx));
                match polled {
                    Ok(response) => self.on_response_headers(response),
                    Err(error) => self.finish(Err(status_from_h2(&error))),
                }
                Poll::Ready(())
            }
            State::Body(body) => {
                let polled = ready!(body.poll_data(cx));
                match polled {
                    Some(Ok(data)) => {
                        let len = data.len();
                        // Hand the window back now; see the module doc for why this is bounded.
                        let _ = body.flow_control().release_capacity(len);
                        self.decoder.push(data);
                    }
                    Some(Err(error)) => self.finish(Err(status_from_h2(&error))),
                    None => self.on_body_end(),
                }
                Poll::Ready(())
            }
            State::Trailers(body) => {
                let polled = ready!(body.poll_trailers(cx));
                match polled {
                    Ok(Some(trailers)) => self.on_trailers(&trailers),
                    Ok(None) => self.finish(Err(Status::internal(
                        "server closed the stream without sending trailers",
                    ))),
                    Err(error) => self.finish(Err(status_from_h2(&error))),
                }
                Poll::Ready(())
            }
        }
    }

    /// END_STREAM on the body: a partial message is an error; the server role is done, the
    /// client role goes on to read the trailers.
    fn on_body_end(&mut self) {
        if let Err(status) = self.decoder.finish() {
            self.fail_and_reset(status, h2::Reason::CANCEL);
            return;
        }
        if self.client.is_none() {
            self.finish(Ok(()));
            return;
        }
        if let State::Body(body) = std::mem::replace(&mut self.state, State::Done) {
            self.state = State::Trailers(body);
        }
    }

    /// The response HEADERS of a client call: validate them, keep the initial metadata, and
    /// handle a trailers-only answer.
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
            self.headers = Some(Metadata::new());
            self.trailers = Some(Metadata::from_headers(headers));
            if trailers_only {
                self.finish(Err(status));
            } else {
                self.fail_and_reset(status, h2::Reason::CANCEL);
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
            self.fail_and_reset(status, h2::Reason::CANCEL);
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

    /// The trailers of a client call: the status ends the call.
    fn on_trailers(&mut self, trailers: &HeaderMap) {
        self.trailers = Some(Metadata::from_headers(trailers.clone()));
        let end = match Status::from_headers(trailers) {
            Some(status) if status.code() == Code::Ok => Ok(()),
            Some(status) => Err(status),
            None => Err(Status::unknown("the server sent no grpc-status")),
        };
        self.finish(end);
    }

    /// Polls for the next raw message, driving h2 until one is whole or the call ends.
    fn poll_raw(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<RawMessage>, Status>> {
        loop {
            if let Err(status) = self.poll_deadline(cx) {
                return Poll::Ready(Err(status));
            }
            if self.end.is_none() {
                match self.decoder.next_message() {
                    Ok(Some(raw)) => return Poll::Ready(Ok(Some(raw))),
                    Ok(None) => {}
                    Err(status) => {
                        return Poll::Ready(Err(self.fail_and_reset(status, h2::Reason::CANCEL)));
                    }
                }
            }
            if let Some(end) = &self.end {
                return Poll::Ready(end.clone().map(|()| None));
            }
            ready!(self.poll_step(cx));
        }
    }
}

impl<T: prost::Message + Default + 'static> Streaming<T> {
    /// The next message: `Ok(Some(msg))`; `Ok(None)` once the peer has half-closed cleanly
    /// (on the client: the trailers said OK); `Err(status)` when the call failed. After the
    /// end, further calls return the same outcome again.
    pub async fn message(&mut self) -> Result<Option<T>, Status> {
        std::future::poll_fn(|cx| self.poll_message(cx)).await
    }

    /// Poll form of [`Streaming::message`].
    pub fn poll_message(&mut self, cx: &mut Context<'_>) -> Poll<Result<Option<T>, Status>> {
        let raw = match ready!(self.poll_raw(cx)) {
            Ok(Some(raw)) => raw,
            Ok(None) => return Poll::Ready(Ok(None)),
            Err(status) => return Poll::Ready(Err(status)),
        };
        self.last_compressed = raw.compressed;
        if raw.compressed {
            if let Some(name) = &self.unsupported_encoding {
                let status = Status::internal(format!(
                    "received a message compressed with unsupported grpc-encoding {name:?}"
                ));
                return Poll::Ready(Err(self.fail_and_reset(status, h2::Reason::CANCEL)));
            }
        }
        let wire_len = raw.data.len();
        match decode_message(raw, self.encoding, self.max_len) {
            Ok(message) => {
                if let Some(hooks) = &self.hooks {
                    if self.client.is_some() {
                        hooks.response(&message, wire_len);
                    } else {
                        hooks.request(&message, wire_len);
                    }
                }
                Poll::Ready(Ok(Some(message)))
            }
            Err(status) => Poll::Ready(Err(self.fail_and_reset(status, h2::Reason::CANCEL))),
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

impl<T> Drop for Streaming<T> {
    /// A client call dropped before its end is cancelled: RST_STREAM(CANCEL) tells the server
    /// (PROTOCOL-HTTP2 § Errors). h2 would also reset once every handle of the stream is gone,
    /// but a bidi call's `RequestSink` may outlive this half.
    fn drop(&mut self) {
        if let Some((relay, _)) = self.client.as_mut().and_then(|c| c.relay.take()) {
            relay.close();
        }
        if self.end.is_none() {
            if let Some(client) = &self.client {
                reset_shared(&client.send, h2::Reason::CANCEL);
            }
            if self.hooks_end {
                if let Some(hooks) = &self.hooks {
                    hooks.end(&Status::cancelled("the caller dropped the response stream"));
                }
            }
        }
    }
}

impl<T> std::fmt::Debug for Streaming<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streaming")
            .field("client", &self.client.is_some())
            .field("encoding", &self.encoding)
            .field("ended", &self.end.is_some())
            .finish()
    }
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

/// Maps an h2 error seen on a call to the status the call ends with
/// (PROTOCOL-HTTP2 § Errors, via [`Code::from_h2_reason`]).
pub(crate) fn status_from_h2(error: &h2::Error) -> Status {
    if error.is_go_away() && error.is_remote() {
        if error.reason() == Some(h2::Reason::ENHANCE_YOUR_CALM) {
            // The peer judged our use of the connection abusive (h2 says so for too many
            // small DATA frames, or pings): PROTOCOL-HTTP2 § Errors maps ENHANCE_YOUR_CALM to
            // RESOURCE_EXHAUSTED, and a retry on a new connection would only do it again.
            return Status::resource_exhausted(format!(
                "the server closed the connection: {error}"
            ));
        }
        let status = Status::unavailable(format!("connection is going away: {error}"));
        // h2 reports a graceful GOAWAY (NO_ERROR) as an error only to the streams above its
        // last-stream-id, and to streams opened after it: neither reached the server's
        // application. (An erroring GOAWAY can also end processed streams; it is not marked.)
        if error.reason() == Some(h2::Reason::NO_ERROR) {
            return status.never_processed();
        }
        return status;
    }
    if error.is_io() {
        return Status::unavailable(format!("connection broken: {error}"));
    }
    match error.reason() {
        Some(reason) if error.is_reset() => {
            let code = Code::from_h2_reason(reason);
            let status = Status::new(code, format!("stream reset by the peer: {reason:?}"));
            if reason == h2::Reason::REFUSED_STREAM && error.is_remote() {
                return status.never_processed();
            }
            status
        }
        Some(reason) => Status::new(
            Code::from_h2_reason(reason),
            format!("HTTP/2 error: {error}"),
        ),
        None => Status::internal(format!("HTTP/2 error: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn h2_errors_map_to_codes() {
        // PROTOCOL-HTTP2 § Errors, as seen through h2 (a reset made into an h2::Error).
        let rows = [
            (h2::Reason::CANCEL, Code::Cancelled),
            (h2::Reason::NO_ERROR, Code::Internal),
            (h2::Reason::PROTOCOL_ERROR, Code::Internal),
            (h2::Reason::REFUSED_STREAM, Code::Unavailable),
            (h2::Reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
            (h2::Reason::INADEQUATE_SECURITY, Code::PermissionDenied),
        ];
        for (reason, code) in rows {
            assert_eq!(
                status_from_h2(&h2::Error::from(reason)).code(),
                code,
                "{reason:?}"
            );
        }
    }
}

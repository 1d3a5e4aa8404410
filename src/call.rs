//! What a call carries besides its messages: [`Request`], [`Response`] and [`CallKind`].
//!
//! A gRPC call has a fixed shape on the wire (PROTOCOL-HTTP2 § Outline):
//!
//! ```text
//!  Request  → Request-Headers *Length-Prefixed-Message EOS
//!  Response → (Response-Headers *Length-Prefixed-Message Trailers) / Trailers-Only
//! ```
//!
//! Both sides see the same two envelopes. A [`Request`] is the request headers' custom metadata
//! plus the message (or, for a streaming call, the stream of messages) plus the call's timing:
//! the deadline a server derived from `grpc-timeout`, or the timeout a client asks for. A
//! [`Response`] is the initial metadata, the message, and the trailing metadata that travels
//! with `grpc-status`.
//!
//! Why one pair of types for server and client: the wire does not care which side built the
//! envelope, and a reader learns one vocabulary. Options that only one side can act on (a client
//! timeout, `wait_for_ready`) say so in their docs.
//!
//! [`IntoRequest`] and [`IntoStreamingRequest`] let a generated client method take either the
//! bare message (or, for client streaming, the bare stream) or a [`Request`] around it.

use std::net::SocketAddr;
use std::time::Duration;

use futures_core::Stream;
use tokio::time::Instant;

use crate::compression::Encoding;
use crate::metadata::Metadata;
use crate::peer::Peer;

/// The four call kinds (PROTOCOL-HTTP2 § Outline: how many messages each side sends).
///
/// | kind | client sends | server sends |
/// |---|---|---|
/// | `Unary` | exactly 1 | exactly 1 (or none, with an error status) |
/// | `ServerStreaming` | exactly 1 | 0..n |
/// | `ClientStreaming` | 0..n | exactly 1 (or none, with an error status) |
/// | `Bidi` | 0..n | 0..n, independently |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    /// One request message, one response message.
    Unary,
    /// One request message, a stream of response messages.
    ServerStreaming,
    /// A stream of request messages, one response message.
    ClientStreaming,
    /// Both sides stream, independently of each other.
    Bidi,
}

impl CallKind {
    /// The label Prometheus-style metrics use for this kind (`grpc_type`).
    pub const fn name(self) -> &'static str {
        match self {
            CallKind::Unary => "unary",
            CallKind::ServerStreaming => "server_stream",
            CallKind::ClientStreaming => "client_stream",
            CallKind::Bidi => "bidi_stream",
        }
    }

    /// Does the client send a stream of messages?
    pub const fn client_streams(self) -> bool {
        matches!(self, CallKind::ClientStreaming | CallKind::Bidi)
    }

    /// Does the server send a stream of messages?
    pub const fn server_streams(self) -> bool {
        matches!(self, CallKind::ServerStreaming | CallKind::Bidi)
    }
}

/// A call's request: custom metadata, the message (or message stream), and the call's timing.
#[derive(Debug)]
pub struct Request<T> {
    metadata: Metadata,
    message: T,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    peer: Peer,
    compression: Option<Encoding>,
    wait_for_ready: bool,
    max_send: Option<usize>,
    max_recv: Option<usize>,
}

impl<T> Request<T> {
    /// A request with no metadata and no timeout.
    pub fn new(message: T) -> Request<T> {
        Request {
            metadata: Metadata::new(),
            message,
            timeout: None,
            deadline: None,
            peer: Peer::default(),
            compression: None,
            wait_for_ready: false,
            max_send: None,
            max_recv: None,
        }
    }

    /// The custom metadata (request headers minus the reserved ones).
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The custom metadata, to add to before sending.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// The message.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The message, mutably.
    pub fn get_mut(&mut self) -> &mut T {
        &mut self.message
    }

    /// The message, consuming the request.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// Splits into metadata and message.
    pub fn into_parts(self) -> (Metadata, T) {
        (self.metadata, self.message)
    }

    /// Replaces the message, keeping metadata and timing.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            metadata: self.metadata,
            message: f(self.message),
            timeout: self.timeout,
            deadline: self.deadline,
            peer: self.peer,
            compression: self.compression,
            wait_for_ready: self.wait_for_ready,
            max_send: self.max_send,
            max_recv: self.max_recv,
        }
    }

    /// Client side: how long the call may take. Sent as `grpc-timeout` and enforced locally.
    /// Server side: the timeout the client sent.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Client side: sets the call's timeout (see [`Request::timeout`]).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = Some(timeout);
    }

    /// Server side: the instant the call's `grpc-timeout` runs out, if the client sent one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Server side: the peer's address, when the transport knows it.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.peer.addr()
    }

    /// Server side: who is calling: the address and, over TLS, the verified client identity
    /// (certificate chain, subject alternative names).
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Client side: the encoding to compress this call's messages with. Server side: the
    /// encoding the single request message of a unary or server-streaming call arrived
    /// compressed with (None when it arrived uncompressed).
    pub fn compression(&self) -> Option<Encoding> {
        self.compression
    }

    /// Client side: compress this call's messages with `encoding`.
    pub fn set_compression(&mut self, encoding: Encoding) {
        self.compression = Some(encoding);
    }

    /// Client side: wait for the channel to be ready instead of failing fast with
    /// `UNAVAILABLE` while it is disconnected.
    pub fn wait_for_ready(&self) -> bool {
        self.wait_for_ready
    }

    /// Client side: see [`Request::wait_for_ready`].
    pub fn set_wait_for_ready(&mut self, wait: bool) {
        self.wait_for_ready = wait;
    }

    /// Client side: the largest message this call may send (overrides the channel's limit).
    pub fn max_send_message_size(&self) -> Option<usize> {
        self.max_send
    }

    /// Client side: see [`Request::max_send_message_size`]. A larger message fails the call
    /// with `RESOURCE_EXHAUSTED` before anything is sent.
    pub fn set_max_send_message_size(&mut self, limit: usize) {
        self.max_send = Some(limit);
    }

    /// Client side: the largest response message this call accepts (overrides the channel's).
    pub fn max_receive_message_size(&self) -> Option<usize> {
        self.max_recv
    }

    /// Client side: see [`Request::max_receive_message_size`]. A larger response message ends
    /// the call with `RESOURCE_EXHAUSTED`.
    pub fn set_max_receive_message_size(&mut self, limit: usize) {
        self.max_recv = Some(limit);
    }

    /// Server side: builds the request a handler sees.
    pub(crate) fn from_server(
        metadata: Metadata,
        message: T,
        timeout: Option<Duration>,
        deadline: Option<Instant>,
        peer: Peer,
    ) -> Request<T> {
        Request {
            metadata,
            message,
            timeout,
            deadline,
            peer,
            compression: None,
            wait_for_ready: false,
            max_send: None,
            max_recv: None,
        }
    }
}

/// Anything a generated client method accepts as a request: a bare message or a [`Request`].
pub trait IntoRequest<T> {
    /// Wraps (or passes through) the request.
    fn into_request(self) -> Request<T>;
}

impl<T> IntoRequest<T> for T {
    fn into_request(self) -> Request<T> {
        Request::new(self)
    }
}

impl<T> IntoRequest<T> for Request<T> {
    fn into_request(self) -> Request<T> {
        self
    }
}

/// What a generated client-streaming method accepts: a stream of `M`, bare or in a
/// [`Request`] (to set metadata or a timeout), as [`IntoRequest`] is for the other kinds.
///
/// Why not `IntoRequest<S>` with the stream type `S` a parameter of the method: a
/// `Request<S>` is both `IntoRequest<S>` and `IntoRequest<Request<S>>`, so the compiler could
/// not tell which `S` the caller meant. Here the stream is an associated type, fixed by the
/// argument, and only the message type is named.
pub trait IntoStreamingRequest<M> {
    /// The stream of request messages.
    type Stream: Stream<Item = M> + Send + 'static;

    /// Wraps (or passes through) the request.
    fn into_streaming_request(self) -> Request<Self::Stream>;
}

impl<M, S> IntoStreamingRequest<M> for S
where
    S: Stream<Item = M> + Send + 'static,
{
    type Stream = S;

    fn into_streaming_request(self) -> Request<S> {
        Request::new(self)
    }
}

impl<M, S> IntoStreamingRequest<M> for Request<S>
where
    S: Stream<Item = M> + Send + 'static,
{
    type Stream = S;

    fn into_streaming_request(self) -> Request<S> {
        self
    }
}

/// A call's response: initial metadata, the message, trailing metadata.
#[derive(Debug)]
pub struct Response<T> {
    metadata: Metadata,
    message: T,
    trailers: Metadata,
    compression: Option<Encoding>,
}

impl<T> Response<T> {
    /// A response with empty metadata.
    pub fn new(message: T) -> Response<T> {
        Response {
            metadata: Metadata::new(),
            message,
            trailers: Metadata::new(),
            compression: None,
        }
    }

    /// Builds a response from its three parts (the client does this from the wire).
    pub fn from_parts(metadata: Metadata, message: T, trailers: Metadata) -> Response<T> {
        Response {
            metadata,
            message,
            trailers,
            compression: None,
        }
    }

    /// Initial metadata: sent in the response headers.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Initial metadata, to add to.
    pub fn metadata_mut(&mut self) -> &mut Metadata {
        &mut self.metadata
    }

    /// Trailing metadata: sent beside `grpc-status`.
    pub fn trailers(&self) -> &Metadata {
        &self.trailers
    }

    /// Trailing metadata, to add to.
    pub fn trailers_mut(&mut self) -> &mut Metadata {
        &mut self.trailers
    }

    /// The message.
    pub fn get_ref(&self) -> &T {
        &self.message
    }

    /// The message, consuming the response.
    pub fn into_inner(self) -> T {
        self.message
    }

    /// Splits into initial metadata, message and trailing metadata.
    pub fn into_parts(self) -> (Metadata, T, Metadata) {
        (self.metadata, self.message, self.trailers)
    }

    /// Server side: compress this response's message with `encoding` if the client accepts it
    /// (its `grpc-accept-encoding`); otherwise it is sent uncompressed.
    pub fn set_compression(&mut self, encoding: Encoding) {
        self.compression = Some(encoding);
    }

    /// The encoding asked for with [`Response::set_compression`].
    pub fn compression(&self) -> Option<Encoding> {
        self.compression
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::*;

    /// A stream of `u32` that ends at once; `left` tells one value from another.
    struct Numbers {
        left: u32,
    }

    impl Stream for Numbers {
        type Item = u32;

        fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<u32>> {
            Poll::Ready(None)
        }
    }

    /// Takes its argument as a generated client-streaming method does, so both forms must
    /// infer through an `impl` parameter.
    fn as_stub_would(
        request: impl IntoStreamingRequest<u32, Stream = Numbers>,
    ) -> Request<Numbers> {
        request.into_streaming_request()
    }

    #[test]
    fn a_streaming_request_is_a_bare_stream_or_a_request_around_one() {
        let bare = as_stub_would(Numbers { left: 3 });
        assert_eq!(bare.get_ref().left, 3);
        assert_eq!(bare.timeout(), None);
        assert!(bare.metadata().is_empty());

        let mut wrapped = Request::new(Numbers { left: 5 });
        wrapped.set_timeout(Duration::from_secs(2));
        wrapped.metadata_mut().insert("x-who", "me").unwrap();
        let passed = as_stub_would(wrapped);
        assert_eq!(passed.get_ref().left, 5);
        assert_eq!(passed.timeout(), Some(Duration::from_secs(2)));
        assert_eq!(passed.metadata().get("x-who"), Some("me"));
    }
}

//! One admitted call, as the rest of the pipeline carries it: what its request headers said
//! ([`CallHead`], filled in by `head`) and the two halves of its HTTP/2 stream
//! ([`ServerCall`], which a dispatch-table row of `router` hands to its `serve_*` driver).
//!
//! Its own file because every stage names it (`head` builds it, `router` types its rows with
//! it, `drive` and `sink` read it) while it names none of them: the stages stay a line, with no
//! import going back up it.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use tokio::time::Instant;

use crate::compression::Encoding;
use crate::interceptor::CallHooks;
use crate::metadata::Metadata;
use crate::peer::Peer;

/// One accepted call, handed to a dispatch-table row: the parsed request headers and the two
/// halves of the HTTP/2 stream. A dispatch-table row hands it to its `serve_*` driver.
pub struct ServerCall {
    pub(crate) head: CallHead,
    /// The request's custom metadata, apart from `head` so that the call's future, which keeps
    /// `head` to the end, does not also keep an emptied map once the handler has the metadata.
    pub(crate) metadata: Metadata,
    pub(crate) body: h2::RecvStream,
    pub(crate) respond: h2::server::SendResponse<Bytes>,
}

/// Everything the server learned from a call's request headers.
#[derive(Debug)]
pub(crate) struct CallHead {
    /// `grpc-timeout` as sent.
    pub(crate) timeout: Option<Duration>,
    /// When `grpc-timeout` runs out.
    pub(crate) deadline: Option<Instant>,
    /// The request messages' `grpc-encoding` (Identity when absent).
    pub(crate) encoding: Encoding,
    /// The client's `grpc-accept-encoding`, to decide whether responses may be compressed.
    pub(crate) accept_encoding: Option<HeaderValue>,
    /// Whether the response headers list the encodings we accept: when the client sent
    /// `grpc-accept-encoding` or `grpc-encoding` (see `respond::response_headers`).
    pub(crate) advertise_encodings: bool,
    /// Receive limit for this call.
    pub(crate) max_recv: usize,
    /// Send limit for this call.
    pub(crate) max_send: usize,
    /// How long a response write may wait for window with no progress (`Builder::send_stall_timeout`).
    pub(crate) send_stall_timeout: Option<Duration>,
    /// The server's default response compression.
    pub(crate) send_compression: Option<Encoding>,
    /// The peer: its address and, over TLS, its identity.
    pub(crate) peer: Peer,
    /// The call's interceptor states; `None` when the server has no interceptor.
    pub(crate) hooks: Option<Arc<CallHooks>>,
}

impl CallHead {
    /// The request a handler sees: `message` with this call's metadata and timing.
    pub(crate) fn request<T>(&self, metadata: Metadata, message: T) -> crate::call::Request<T> {
        crate::call::Request::from_server(
            metadata,
            message,
            self.timeout,
            self.deadline,
            self.peer.clone(),
        )
    }

    /// The encoding for response messages: `wanted` (or the server default) if the client
    /// accepts it, identity otherwise.
    pub(crate) fn response_encoding(&self, wanted: Option<Encoding>) -> Encoding {
        match wanted.or(self.send_compression) {
            Some(encoding)
                if encoding.accepted_by(self.accept_encoding.as_ref().map(|v| v.as_bytes())) =>
            {
                encoding
            }
            _ => Encoding::Identity,
        }
    }
}

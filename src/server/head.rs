//! Admitting a call: the request headers checked in the order the spec implies
//! (PROTOCOL-HTTP2 § Requests; grpc over HTTP/2 error handling in § Errors).
//!
//! ```text
//!  Request-Headers → Call-Definition *Custom-Metadata
//!  Call-Definition → Method Scheme Path TE [Authority] [Timeout] Content-Type
//!                    [Message-Type] [Message-Encoding] [Message-Accept-Encoding] [User-Agent]
//! ```
//!
//! Each check either yields the next piece of the [`CallHead`] or ends the stream at once. What
//! is rejected, and how:
//!
//! | request | answer |
//! |---|---|
//! | `:method` not POST | HTTP 405 + `grpc-status` INTERNAL |
//! | `content-type` not `application/grpc[+…]` | HTTP 415 + `grpc-status` INTERNAL (the spec: "servers SHOULD respond with HTTP status 415") |
//! | `te` missing or not `trailers` | HTTP 400 + `grpc-status` INTERNAL ("used to detect incompatible proxies") |
//! | `:path` unknown or malformed | trailers-only UNIMPLEMENTED (see `router`) |
//! | `grpc-encoding` not supported | trailers-only UNIMPLEMENTED + `grpc-accept-encoding` listing ours |
//! | `grpc-timeout` malformed | trailers-only INTERNAL |
//! | an interceptor's `on_start` says no | trailers-only, with the interceptor's status |
//!
//! The HTTP-level rejects come first because a non-gRPC peer (a browser, a health checker
//! speaking plain HTTP/2) is best told in HTTP terms; once the request is known to be gRPC, every
//! answer is a gRPC status. Checks are ordered cheapest first and none allocates on the happy
//! path except the metadata map the handler receives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use tokio::time::Instant;

use crate::compression::Encoding;
use crate::headers::{self, GRPC_ENCODING, GRPC_TIMEOUT, TE, TRAILERS};
use crate::interceptor::{CallHooks, CallInfo};
use crate::metadata::Metadata;
use crate::server::{ServerCall, Shared, respond};
use crate::status::Status;
use crate::timeout::decode_timeout;

/// Everything the server learned from a call's request headers.
#[derive(Debug)]
pub(crate) struct CallHead {
    /// Custom metadata (reserved headers removed).
    pub(crate) metadata: Metadata,
    /// `grpc-timeout` as sent.
    pub(crate) timeout: Option<Duration>,
    /// When `grpc-timeout` runs out.
    pub(crate) deadline: Option<Instant>,
    /// The request messages' `grpc-encoding` (Identity when absent).
    pub(crate) encoding: Encoding,
    /// The client's `grpc-accept-encoding`, to decide whether responses may be compressed.
    pub(crate) accept_encoding: Option<HeaderValue>,
    /// Receive limit for this call.
    pub(crate) max_recv: usize,
    /// Send limit for this call.
    pub(crate) max_send: usize,
    /// The server's default response compression.
    pub(crate) send_compression: Option<Encoding>,
    /// The peer's address.
    pub(crate) remote_addr: Option<SocketAddr>,
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
            self.remote_addr,
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

/// Serves one accepted HTTP/2 stream: admits it as a gRPC call and runs its handler, or rejects it.
pub(crate) async fn handle_stream(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    remote_addr: Option<SocketAddr>,
    shared: Arc<Shared>,
) {
    let shared = &*shared;
    let (parts, body) = request.into_parts();
    if parts.method != Method::POST {
        respond::reject_http(
            &mut respond,
            http::StatusCode::METHOD_NOT_ALLOWED,
            Status::internal(format!("gRPC requires POST, got {}", parts.method)),
        );
        return;
    }
    let content_type_ok = parts
        .headers
        .get(headers::CONTENT_TYPE)
        .is_some_and(|v| headers::is_grpc_content_type(v.as_bytes()));
    if !content_type_ok {
        let got = parts.headers.get(headers::CONTENT_TYPE);
        respond::reject_http(
            &mut respond,
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Status::internal(format!("invalid gRPC request content-type {got:?}")),
        );
        return;
    }
    if parts
        .headers
        .get(TE)
        .is_none_or(|v| v.as_bytes() != TRAILERS.as_bytes())
    {
        respond::reject_http(
            &mut respond,
            http::StatusCode::BAD_REQUEST,
            Status::internal("gRPC requires the header \"te: trailers\""),
        );
        return;
    }
    let route = match shared.router.lookup(parts.uri.path()) {
        Ok(route) => route,
        Err(status) => {
            respond::trailers_only(&mut respond, &status, None);
            return;
        }
    };
    let mut head = match read_head(parts.headers, route.max_recv, remote_addr, shared) {
        Ok(head) => head,
        Err((status, advertise_encodings)) => {
            let extra = advertise_encodings.then_some(Encoding::accept_header());
            respond::trailers_only(&mut respond, &status, extra);
            return;
        }
    };
    let info = || {
        CallInfo::server(
            route.kind,
            route.path,
            route.service,
            route.method,
            remote_addr,
            head.deadline,
        )
    };
    match shared.interceptors.start(info, &mut head.metadata) {
        Ok(hooks) => head.hooks = hooks,
        Err(status) => {
            respond::trailers_only(&mut respond, &status, None);
            return;
        }
    }
    (route.call)(ServerCall {
        head,
        body,
        respond,
    })
    .await;
}

/// The gRPC part of the request headers. On error, the bool says whether the answer should
/// advertise our `grpc-accept-encoding` (it should when the encoding was the problem).
fn read_head(
    mut headers: HeaderMap,
    route_max_recv: Option<usize>,
    remote_addr: Option<SocketAddr>,
    shared: &Shared,
) -> Result<CallHead, (Status, bool)> {
    let encoding = match headers.get(GRPC_ENCODING) {
        None => Encoding::Identity,
        Some(value) => Encoding::from_name(value.as_bytes()).ok_or_else(|| {
            let name = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (
                Status::unimplemented(format!("unsupported grpc-encoding {name:?}")),
                true,
            )
        })?,
    };
    let timeout = match headers.get(GRPC_TIMEOUT) {
        None => None,
        Some(value) => Some(decode_timeout(value.as_bytes()).map_err(|status| (status, false))?),
    };
    let accept_encoding = headers.remove(headers::GRPC_ACCEPT_ENCODING);
    let config = &shared.config;
    Ok(CallHead {
        metadata: Metadata::from_headers(headers),
        timeout,
        // A timeout too large for the clock (99999999H) is as good as none.
        deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
        encoding,
        accept_encoding,
        max_recv: route_max_recv.unwrap_or(config.max_recv),
        max_send: config.max_send,
        send_compression: config.send_compression,
        remote_addr,
        hooks: None,
    })
}

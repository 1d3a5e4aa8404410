//! Admitting a call: the request headers checked in the order the spec implies
//! (PROTOCOL-HTTP2 § Requests; grpc over HTTP/2 error handling in § Errors).
//!
//! ```text
//!  Request-Headers → Call-Definition *Custom-Metadata
//!  Call-Definition → Method Scheme Path TE [Authority] [Timeout] Content-Type
//!                    [Message-Type] [Message-Encoding] [Message-Accept-Encoding] [User-Agent]
//! ```
//!
//! Each check either yields the next piece of the `CallHead` (`call.rs`) or ends the stream at once. What
//! is rejected, and how:
//!
//! | request | answer |
//! |---|---|
//! | `:method` not POST | HTTP 405 + `grpc-status` INTERNAL |
//! | `content-type` not `application/grpc[+…]` | HTTP 415 + `grpc-status` INTERNAL (the spec: "servers SHOULD respond with HTTP status 415") |
//! | `te` missing or not `trailers` | HTTP 400 + `grpc-status` INTERNAL ("used to detect incompatible proxies") |
//! | `:path` unknown or malformed | trailers-only UNIMPLEMENTED (see `router`) |
//! | `grpc-encoding` not supported | response headers with `grpc-accept-encoding` listing ours, then trailers with UNIMPLEMENTED (not trailers-only: see below) |
//! | `grpc-timeout` malformed | trailers-only INTERNAL |
//! | an interceptor's `on_start` says no | trailers-only, with the interceptor's status |
//! | an interceptor's `on_start` panics | trailers-only INTERNAL |
//! | an async interceptor's start outlives `grpc-timeout` | trailers-only DEADLINE_EXCEEDED |
//!
//! Why the unsupported encoding is not answered trailers-only: the spec's grammar puts
//! `grpc-accept-encoding` in Response-Headers, and Trailers-Only holds only HTTP-Status,
//! Content-Type and Trailers. A client that keeps to the grammar (grpc-js) reads nothing but
//! the status out of a trailers-only answer, so it never learns what we accept and sends every
//! later call in the same unsupported encoding; read from real response headers, the list makes
//! grpc-js fall back to `identity` from the next call on (tests/interop_node_wire.rs pins
//! both). compression.md: the server "will then include a grpc-accept-encoding response header".
//!
//! The HTTP-level rejects come first because a non-gRPC peer (a browser, a health checker
//! speaking plain HTTP/2) is best told in HTTP terms; once the request is known to be gRPC, every
//! answer is a gRPC status. Checks are ordered cheapest first and none allocates on the happy
//! path except the metadata map the handler receives.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use tokio::time::Instant;

use crate::compression::Encoding;
use crate::headers::{self, TRAILERS};
use crate::interceptor::CallInfo;
use crate::metadata::{self, Metadata};
use crate::peer::Peer;
use crate::server::call::{CallHead, ServerCall};
use crate::server::router::CallFuture;
use crate::server::{Shared, respond};
use crate::status::Status;
use crate::timeout::decode_timeout;

/// The request header fields the server reads, picked out in one walk over the header block.
///
/// Why one walk: every `HeaderMap::get` or `remove` hashes its name and probes the table. A
/// request's block is small (content-type, te, perhaps user-agent, grpc-timeout and
/// grpc-accept-encoding), so comparing each received name with the few we want is cheaper than
/// five lookups plus fifteen removals of reserved names, most of them absent.
/// The values are borrowed from the block: most are only checked, and the block itself becomes
/// the call's metadata once the checks are done.
#[derive(Default)]
struct Known<'a> {
    content_type: Option<&'a HeaderValue>,
    te: Option<&'a HeaderValue>,
    encoding: Option<&'a HeaderValue>,
    timeout: Option<&'a HeaderValue>,
    accept_encoding: Option<&'a HeaderValue>,
    /// Which reserved names the block holds (see [`metadata::reserved_bit`]).
    reserved: u16,
}

impl<'a> Known<'a> {
    fn read(headers: &'a HeaderMap) -> Known<'a> {
        let mut known = Known::default();
        for (name, value) in headers {
            let bit = metadata::reserved_bit(name);
            known.reserved |= bit;
            let slot = match bit {
                metadata::bit::CONTENT_TYPE => &mut known.content_type,
                metadata::bit::TE => &mut known.te,
                metadata::bit::GRPC_ENCODING => &mut known.encoding,
                metadata::bit::GRPC_TIMEOUT => &mut known.timeout,
                metadata::bit::GRPC_ACCEPT_ENCODING => &mut known.accept_encoding,
                _ => continue,
            };
            // The first value wins, as `HeaderMap::get` would give it.
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        known
    }
}

/// Admits one accepted HTTP/2 stream as a gRPC call and returns the call's future, or rejects
/// the stream (the answer is queued on `respond`) and returns `None`.
///
/// Synchronous on purpose: every check here looks only at the header block, so the future the
/// connection polls is the route's call future itself, with no wrapper future (and no second
/// allocation) around it. The exception is a server with an async interceptor: its call is a
/// future that awaits the interceptors first (`drive::admit_waiting`), then runs the route's.
pub(crate) fn start_call(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    peer: &Peer,
    shared: &Shared,
) -> Option<CallFuture> {
    let (parts, body) = request.into_parts();
    if parts.method != Method::POST {
        respond::reject_http(
            &mut respond,
            http::StatusCode::METHOD_NOT_ALLOWED,
            Status::internal(format!("gRPC requires POST, got {}", parts.method)),
        );
        return None;
    }
    let known = Known::read(&parts.headers);
    let content_type_ok = known
        .content_type
        .is_some_and(|v| headers::is_grpc_content_type(v.as_bytes()));
    if !content_type_ok {
        respond::reject_http(
            &mut respond,
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Status::internal(format!(
                "invalid gRPC request content-type {:?}",
                known.content_type
            )),
        );
        return None;
    }
    if known.te.is_none_or(|v| v.as_bytes() != TRAILERS.as_bytes()) {
        respond::reject_http(
            &mut respond,
            http::StatusCode::BAD_REQUEST,
            Status::internal("gRPC requires the header \"te: trailers\""),
        );
        return None;
    }
    let route = match shared.router.lookup(parts.uri.path()) {
        Ok(route) => route,
        Err(status) => {
            #[cfg(feature = "tracing")]
            crate::interceptor::spans::unknown_method(parts.uri.path(), peer, &status);
            respond::trailers_only(&mut respond, &status);
            return None;
        }
    };
    let mut head = match read_head(&known, route.max_recv, peer, shared) {
        Ok(head) => head,
        Err((status, true)) => {
            respond::status_after_accept_encoding(&mut respond, &status);
            return None;
        }
        Err((status, false)) => {
            respond::trailers_only(&mut respond, &status);
            return None;
        }
    };
    let reserved = known.reserved;
    let mut metadata = Metadata::from_headers_without(parts.headers, reserved);
    let info = || {
        CallInfo::server(
            route.kind,
            route.path,
            route.service,
            route.method,
            peer.clone(),
            head.deadline,
        )
    };
    if shared.interceptors.waits() {
        let hooks = shared.interceptors.begin(info());
        let call = ServerCall {
            head,
            metadata,
            body,
            respond,
        };
        return Some(crate::server::drive::admit_waiting(
            hooks,
            call,
            Arc::clone(&route.call),
        ));
    }
    match shared.interceptors.start(info, &mut metadata) {
        Ok(hooks) => head.hooks = hooks,
        Err(status) => {
            respond::trailers_only(&mut respond, &status);
            return None;
        }
    }
    Some((route.call)(ServerCall {
        head,
        metadata,
        body,
        respond,
    }))
}

/// Reads the call's encoding and timeout from its headers. The error says whether the answer
/// should advertise our encodings (it should when the client's was not one of them).
fn read_head(
    known: &Known<'_>,
    route_max_recv: Option<usize>,
    peer: &Peer,
    shared: &Shared,
) -> Result<CallHead, (Status, bool)> {
    let encoding = match known.encoding {
        None => Encoding::Identity,
        Some(value) => Encoding::from_name(value.as_bytes()).ok_or_else(|| {
            let name = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (
                Status::unimplemented(format!("unsupported grpc-encoding {name:?}")),
                true,
            )
        })?,
    };
    let timeout = match known.timeout {
        None => None,
        Some(value) => Some(decode_timeout(value.as_bytes()).map_err(|status| (status, false))?),
    };
    let config = &shared.config;
    let advertise_encodings = known.accept_encoding.is_some() || known.encoding.is_some();
    Ok(CallHead {
        timeout,
        deadline: timeout.and_then(|t| Instant::now().checked_add(t)),
        encoding,
        accept_encoding: known.accept_encoding.cloned(),
        advertise_encodings,
        max_recv: route_max_recv.unwrap_or(config.max_recv),
        max_send: config.max_send,
        send_stall_timeout: config.send_stall_timeout,
        send_compression: config.send_compression,
        peer: peer.clone(),
        hooks: None,
    })
}

/// The header walk alone, without a stream to answer on: every check [`start_call`] makes on a
/// request's header block, then the metadata a handler would read (each `-bin` value decoded).
/// For the fuzz target (`crate::fuzz`, hidden feature `fuzz`).
#[cfg(feature = "fuzz")]
pub(crate) fn walk_request_headers(headers: HeaderMap) {
    let known = Known::read(&headers);
    let _ = known
        .content_type
        .is_some_and(|v| headers::is_grpc_content_type(v.as_bytes()));
    let _ = known.te.is_none_or(|v| v.as_bytes() != TRAILERS.as_bytes());
    if let Some(value) = known.encoding {
        let _ = Encoding::from_name(value.as_bytes());
    }
    if let Some(value) = known.timeout {
        let _ = decode_timeout(value.as_bytes());
    }
    let reserved = known.reserved;
    let metadata = Metadata::from_headers_without(headers, reserved);
    let keys: Vec<String> = metadata.keys().map(str::to_owned).collect();
    for key in keys {
        assert!(
            !Metadata::is_reserved(&key),
            "reserved {key} reached the handler"
        );
        if key.ends_with("-bin") {
            let _ = metadata.get_all_bin(&key);
        } else {
            let _ = metadata.get_all(&key);
        }
    }
}

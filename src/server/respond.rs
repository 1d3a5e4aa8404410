//! Writing a call's answer: response headers, trailers, trailers-only, early HTTP rejects
//! (PROTOCOL-HTTP2 § Responses).
//!
//! ```text
//!  normal:        HEADERS(:status 200, content-type, [grpc-encoding], initial metadata)
//!                 DATA*  (each one carries 0..n prefixed messages)
//!                 HEADERS(grpc-status, [grpc-message], trailing metadata, END_STREAM)
//!  trailers-only: HEADERS(:status 200, content-type, grpc-status, [grpc-message], END_STREAM)
//!  HTTP reject:   HEADERS(:status 4xx, content-type, grpc-status, grpc-message, END_STREAM)
//! ```
//!
//! Why trailers-only exists: a call that fails before any message needs no second HEADERS frame,
//! so the whole answer is one frame. We use it whenever no response headers have gone out yet.
//!
//! Every function here ignores h2 send errors on purpose: they mean the client already reset the
//! stream or the connection is gone, and there is nobody left to tell.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};

use crate::compression::Encoding;
use crate::headers::{APPLICATION_GRPC, CONTENT_TYPE, GRPC_ACCEPT_ENCODING, GRPC_ENCODING};
use crate::metadata::Metadata;
use crate::status::Status;

/// The `:status 200` response headers: content-type, grpc-encoding when compressing, what we
/// accept when `advertise` says the client wants to know, and the initial metadata.
///
/// When to list our encodings: `grpc-accept-encoding` is optional in response headers
/// (*Response-Headers → HTTP-Status [Message-Encoding] [Message-Accept-Encoding] Content-Type
/// \*Custom-Metadata*); its use is to tell a client which encodings it may compress its
/// requests with. A client that sent `grpc-accept-encoding` or `grpc-encoding` negotiates
/// compression, and is told; one that sent neither has shown it does not, and gets the plain
/// answer grpc-go gives every client (content-type alone). The field is not free: h2 hashes it
/// into its HPACK table on every response (what that costs a unary call is in
/// docs/performance.md § Measurements behind the code's choices).
pub(crate) fn response_headers(
    metadata: &Metadata,
    encoding: Encoding,
    advertise: bool,
) -> http::Response<()> {
    let mut response = http::Response::new(());
    *response.headers_mut() = if metadata.is_empty() && encoding == Encoding::Identity {
        // The usual answers, the same for every call: copied from blocks built once, which
        // skips hashing and placing each name again.
        static PLAIN: OnceLock<HeaderMap> = OnceLock::new();
        static ADVERTISING: OnceLock<HeaderMap> = OnceLock::new();
        let template = if advertise { &ADVERTISING } else { &PLAIN };
        template
            .get_or_init(|| build_response_headers(metadata, encoding, advertise))
            .clone()
    } else {
        build_response_headers(metadata, encoding, advertise)
    };
    response
}

fn build_response_headers(metadata: &Metadata, encoding: Encoding, advertise: bool) -> HeaderMap {
    // Sized for what goes in: an empty map's first insert would reserve room for eight.
    let mut headers = HeaderMap::with_capacity(metadata.len() + 3);
    metadata.merge_into(&mut headers);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(APPLICATION_GRPC));
    if encoding != Encoding::Identity {
        headers.insert(GRPC_ENCODING, HeaderValue::from_static(encoding.name()));
    }
    if advertise {
        headers.insert(
            GRPC_ACCEPT_ENCODING,
            HeaderValue::from_static(Encoding::accept_header()),
        );
    }
    headers
}

/// The trailers: the status (with its own metadata) plus the handler's trailing metadata.
pub(crate) fn trailers(status: &Status, trailing: &Metadata) -> HeaderMap {
    if trailing.is_empty() && status.is_plain_ok() {
        // `grpc-status: 0` alone ends most calls: copied from one block built once.
        static OK: OnceLock<HeaderMap> = OnceLock::new();
        return OK
            .get_or_init(|| {
                let mut map = HeaderMap::with_capacity(1);
                Status::ok().add_to_headers(&mut map);
                map
            })
            .clone();
    }
    let mut map = HeaderMap::with_capacity(trailing.len() + 1);
    trailing.merge_into(&mut map);
    status.add_to_headers(&mut map);
    map
}

/// Ends the call in one HEADERS frame carrying `:status 200` and the status (Trailers-Only:
/// HTTP-Status, Content-Type, Trailers; nothing else belongs there).
pub(crate) fn trailers_only(respond: &mut h2::server::SendResponse<Bytes>, status: &Status) {
    trailers_only_with(respond, status, &Metadata::new());
}

/// [`trailers_only`] with trailing metadata from the handler.
pub(crate) fn trailers_only_with(
    respond: &mut h2::server::SendResponse<Bytes>,
    status: &Status,
    trailing: &Metadata,
) {
    let mut response = http::Response::new(());
    let headers = response.headers_mut();
    trailing.merge_into(headers);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(APPLICATION_GRPC));
    status.add_to_headers(headers);
    let _ = respond.send_response(response, true);
}

/// Ends a call whose `grpc-encoding` we cannot read: response headers listing the encodings we
/// accept (`grpc-accept-encoding` belongs to Response-Headers in PROTOCOL-HTTP2's grammar,
/// where every client reads it), then trailers with `status`. See `head.rs` for why this is
/// not trailers-only.
pub(crate) fn status_after_accept_encoding(
    respond: &mut h2::server::SendResponse<Bytes>,
    status: &Status,
) {
    let head = response_headers(&Metadata::new(), Encoding::Identity, true);
    if let Ok(mut stream) = respond.send_response(head, false) {
        let _ = stream.send_trailers(trailers(status, &Metadata::new()));
    }
}

/// Rejects a request that is not acceptable gRPC at the HTTP level (wrong method, wrong
/// content-type, no `te: trailers`): an HTTP error status, still with `grpc-status` so that a
/// gRPC client that got this far learns why.
pub(crate) fn reject_http(
    respond: &mut h2::server::SendResponse<Bytes>,
    http_status: StatusCode,
    status: Status,
) {
    let mut response = http::Response::new(());
    *response.status_mut() = http_status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(APPLICATION_GRPC));
    status.add_to_headers(headers);
    let _ = respond.send_response(response, true);
}

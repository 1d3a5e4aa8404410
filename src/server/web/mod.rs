//! gRPC-Web on the server's own port (feature `web`; PROTOCOL-WEB, the gRPC-Web protocol
//! document: <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-WEB.md>).
//!
//! Browsers cannot read HTTP/2 trailers, so gRPC-Web moves the status into the body: the last
//! frame of a response is the trailers, as HTTP/1 header lines, behind a prefix whose flag byte
//! is 0x80 (`frame.rs`). The rest is gRPC's framing unchanged, over any HTTP version.
//!
//! ```text
//!  accepted connection ── first octets ──┬─ "PRI * HTTP/2.0…" ─▶ h2, as always
//!   (transport::preface)                 │       └─ HEADERS content-type application/grpc-web*
//!                                        │          or OPTIONS (server::head) ─┐
//!                                        └─ anything else ─▶ hyper HTTP/1.1 ───┤
//!                                                                              ▼
//!                                                    bridge: CORS, checks, body (base64 for -text)
//!                                                              │ a native call, same process
//!                                                              ▼
//!                                  loopback h2 connection ─▶ server::head ─▶ the SAME dispatch
//!                                  (in memory)                               table, interceptors
//!                                                              │ HEADERS, DATA, trailers
//!                                                              ▼
//!                                  gRPC-Web response: headers, data frames, trailer frame (0x80)
//! ```
//!
//! Why a loopback connection: a native call's pipeline (`server::drive`, `server::sink`) reads
//! and writes an `h2` stream directly, which is what keeps the native path short. Rather than
//! put a second kind of stream under every native call (a branch on every write), the bridge
//! makes each gRPC-Web call a native call on an in-memory HTTP/2 connection to the same server:
//! the same dispatch table, interceptors, limits, deadlines and statuses, with no second router
//! and nothing added to the native path. The cost is one in-memory HTTP/2 hop per gRPC-Web call
//! (`docs/performance.md`); with the feature off none of this is compiled.
//!
//! What a gRPC-Web call gets that differs from a native one:
//!
//! | request | answer |
//! |---|---|
//! | `OPTIONS` preflight, CORS not configured | HTTP 403, the reason as text |
//! | `OPTIONS` preflight, origin / method / header not allowed | HTTP 403, the reason as text |
//! | `content-type` not `application/grpc-web[-text][+proto]` (over HTTP/1.1) | HTTP 415 + `grpc-status` INTERNAL (PROTOCOL-HTTP2: "servers SHOULD respond with HTTP status 415") |
//! | a method other than POST (over HTTP/1.1) | HTTP 405 + `grpc-status` INTERNAL |
//! | a client-streaming or bidi method | `grpc-status` UNIMPLEMENTED (below) |
//! | `-text` body not base64, or cut inside a 4-character group | `grpc-status` INTERNAL |
//! | body over the method's receive limit | `grpc-status` RESOURCE_EXHAUSTED, as natively |
//! | a body cut inside a message | `grpc-status` INTERNAL (the native decoder's "truncated") |
//!
//! Client streaming: PROTOCOL-WEB has no status for it; its "Bidi-streaming" section calls
//! streaming requests pending on browser support, and no browser can send a request body in
//! pieces while reading the response. Envoy and grpc-dotnet forward such a call with the whole
//! body as the stream (half-duplex); we answer UNIMPLEMENTED instead ("the operation is not
//! implemented or is not supported/enabled", statuscodes.md), so a client learns at once that
//! the method needs native gRPC rather than getting a half-duplex call that behaves differently
//! from the same method natively.
//!
//! What it does not do: `-bin` trailer values stay base64 in the trailer frame (as Envoy and
//! tonic-web send them; PROTOCOL-WEB § Text-encoded streams item 3 would have them raw, which
//! a text block cannot carry safely); no full-body `content-encoding` compression; the peer a
//! handler sees is the address only (no TLS identity) and gRPC-Web is served on h2c and
//! HTTP/1.1 cleartext, not over TLS.

mod bridge;
mod cors;
mod frame;
mod http1;

use std::time::Duration;

pub(crate) use bridge::{WebState, is_web, serve_h2};
pub(crate) use http1::serve_http1;

/// Request headers a browser's gRPC-Web client sends that a CORS preflight asks about; always
/// allowed when CORS is on.
const DEFAULT_ALLOW_HEADERS: &[&str] =
    &["content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"];

/// Response headers a browser lets the page read only when exposed; always exposed when CORS is
/// on (the status of a trailers-only answer travels in headers).
const DEFAULT_EXPOSE_HEADERS: &[&str] = &["grpc-status", "grpc-message", "grpc-status-details-bin"];

/// gRPC-Web on the server's port (feature `web`): pass to [`crate::server::Builder::web`].
#[derive(Clone, Debug, Default)]
pub struct Web {
    pub(crate) cors: Option<Cors>,
}

impl Web {
    /// gRPC-Web over HTTP/1.1 and HTTP/2 for same-origin pages and non-browser clients; CORS
    /// off (a cross-origin preflight is refused with HTTP 403).
    pub fn new() -> Web {
        Web::default()
    }

    /// Answers CORS preflights and adds CORS headers as `cors` says.
    pub fn cors(mut self, cors: Cors) -> Web {
        self.cors = Some(cors);
        self
    }
}

/// Which cross-origin pages may call (Fetch standard § CORS protocol). Starts with no origin
/// allowed; the headers a gRPC-Web client needs are allowed and exposed from the start.
#[derive(Clone, Debug)]
pub struct Cors {
    pub(crate) any_origin: bool,
    pub(crate) origins: Vec<String>,
    pub(crate) allow_headers: Vec<String>,
    pub(crate) expose_headers: Vec<String>,
    pub(crate) max_age: Duration,
    pub(crate) allow_credentials: bool,
}

impl Default for Cors {
    fn default() -> Cors {
        Cors {
            any_origin: false,
            origins: Vec::new(),
            allow_headers: DEFAULT_ALLOW_HEADERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            expose_headers: DEFAULT_EXPOSE_HEADERS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            max_age: Duration::from_secs(24 * 60 * 60),
            allow_credentials: false,
        }
    }
}

impl Cors {
    /// No origin allowed yet; `content-type`, `x-grpc-web`, `x-user-agent`, `grpc-timeout`
    /// allowed, `grpc-status`, `grpc-message`, `grpc-status-details-bin` exposed.
    pub fn new() -> Cors {
        Cors::default()
    }

    /// Allows pages from `origin` (as a browser sends it: `https://app.example:8443`).
    pub fn allow_origin(mut self, origin: &str) -> Cors {
        self.origins.push(origin.to_owned());
        self
    }

    /// Allows pages from any origin.
    pub fn allow_any_origin(mut self) -> Cors {
        self.any_origin = true;
        self
    }

    /// Also allows these request headers (custom metadata a page sends), lower case.
    pub fn allow_headers<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Cors {
        self.allow_headers
            .extend(names.into_iter().map(|n| n.to_ascii_lowercase()));
        self
    }

    /// Also exposes these response headers (custom metadata a page reads), lower case.
    pub fn expose_headers<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Cors {
        self.expose_headers
            .extend(names.into_iter().map(|n| n.to_ascii_lowercase()));
        self
    }

    /// How long a browser may cache a preflight's answer (default 24 h).
    pub fn max_age(mut self, age: Duration) -> Cors {
        self.max_age = age;
        self
    }

    /// Lets pages send cookies and `Authorization` (`Access-Control-Allow-Credentials: true`;
    /// PROTOCOL-WEB § CORS preflight). The allowed origin is then echoed, never `*`.
    pub fn allow_credentials(mut self, allow: bool) -> Cors {
        self.allow_credentials = allow;
        self
    }

    pub(crate) fn origin_allowed(&self, origin: &[u8]) -> bool {
        self.any_origin || self.origins.iter().any(|o| o.as_bytes() == origin)
    }
}

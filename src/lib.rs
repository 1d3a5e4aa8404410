//! # bare-grpc
//!
//! A gRPC runtime written by hand on raw HTTP/2 streams (the [`h2`] crate). It is two things at
//! once: a runtime that grpc-go and `grpcio` peers talk to without noticing the difference, and
//! an annotated reference in which every rule of the wire protocol sits beside the line that
//! implements it.
//!
//! ## Reading order
//!
//! The modules are layers, bottom to top, and a module names only modules above it in this
//! list (`tests/layering.rs` checks it, and that no two files of one directory import each
//! other in a cycle). Read them in this order; each module's doc opens with the rule it
//! implements (cited as `PROTOCOL-HTTP2 § …`), a diagram where bytes or states are involved,
//! why it is shaped the way it is, and what it rejects.
//!
//! | layer | files under `src/` | job |
//! |---|---|---|
//! | helpers | `lock.rs`, `first.rs`, `base64.rs`, `test_rng.rs` (tests only) | one way to take a mutex; a two-future select; the `-bin` value encoding; the property tests' random numbers |
//! | header names | `headers.rs` | every header name and value the protocol spells, in one place |
//! | metadata | `metadata.rs` | [`Metadata`]: ASCII and `-bin` keys over an h2 header map; a bad key is an [`InvalidMetadata`] |
//! | status | `status.rs` | [`Code`], [`Status`] (with its trailing metadata), `grpc-status` / `grpc-message` trailers |
//! | timeout | `timeout.rs` | the `grpc-timeout` value, both ways |
//! | wire | `wire.rs` | the 5-byte prefix, the one streaming message decoder, the receive limit |
//! | compression | `gzip.rs` + `gzip/crc32.rs` (feature `gzip`), `compression.rs` | the RFC 1952 container and CRC-32 around `miniz_oxide`'s DEFLATE; `grpc-encoding` ([`Encoding`]) |
//! | codec | `codec.rs` | one protobuf message into and out of its prefix, with the send limit |
//! | peer | `peer.rs` | [`Peer`], [`TlsInfo`]: the caller's address and, over TLS, its verified identity |
//! | call | `call.rs` | [`Request`], [`Response`], [`CallKind`] |
//! | interceptors | `interceptor/mod.rs`, `interceptor/auth.rs`, `interceptor/credentials.rs`, `interceptor/spans.rs` (feature `tracing`) | hooks around every call, both sides (start hooks may await); bearer-token auth; per-call credentials with a refreshing token cache; a `tracing` span per call |
//! | transport | `transport/mod.rs`, `server.rs`, `call_set.rs`, `write.rs`, `error.rs`, `preface.rs`, `tls.rs` (feature `tls`), `unix.rs`, `frame_watch.rs`, `keepalive.rs` | the h2 connection: accept loop (TCP or a Unix socket), settings, the client preface checked, GOAWAY on shutdown, the calls polled in their connection's task; keepalive enforcement, pings and connection age (gRFC A8, A9) over a frame watcher; the one flow-controlled writer and the one h2-error mapping both sides use |
//! | server | `server/mod.rs`, `call.rs`, `head.rs`, `router.rs`, `drive.rs`, `method.rs`, `sink.rs`, `respond.rs`, `streaming.rs` | [`Server`]: admit a call (`head`), route `:path` (`router`), run the handler (`drive`, `method`), answer (`sink`, `respond`); the inbound [`Streaming`] |
//! | gRPC-Web | `server/web/mod.rs`, `server/web/frame.rs`, `server/web/cors.rs`, `server/web/bridge.rs`, `server/web/http1.rs` (feature `web`) | gRPC-Web over HTTP/1.1 and HTTP/2 on the server's port, CORS; each call a native call on an in-memory loopback connection (`docs/web.md`) |
//! | client | `client/mod.rs`, `connection.rs`, `calls.rs`, `retry.rs`, `upload.rs`, `replay.rs`, `request_sink.rs`, `send_half.rs`, `response.rs`, `inbox.rs`, `tls.rs` (feature `tls`), `resolver.rs`, `balancer.rs`, `health_check.rs`, `keepalive.rs` | [`Channel`] and its connection, targets and resolvers, pick_first / round_robin (health-checked: gRFC A17), keepalive, the four call kinds from the caller's side, retries, [`ResponseStream`] |
//! | client fast paths | `client/fast/mod.rs`, `relay.rs`, `driver.rs`, `direct.rs`, `handoff.rs` | the `block_on` fast paths, fenced behind one check |
//! | generated-code surface | `codegen.rs` | what `protoc-gen-bare-grpc` output names, re-exported in one place |
//! | services | `services/mod.rs`, `health.rs`, `reflection.rs`, `descriptors.rs` | health checking and server reflection, generated services like any user's |
//! | testing | `testing.rs` | [`testing`]: an in-process channel, the real server and client over an in-memory pipe |
//! | metrics | `metrics/mod.rs`, `metrics/http.rs` (feature `metrics`) | Prometheus call metrics as interceptors, and a `/metrics` endpoint |
//! | the `grpc-wiretap` binary | `wiretap/main.rs`, `tap.rs`, `hpack.rs`, `huffman.rs`, `grpc.rs`, `render.rs`, `proto.rs` (feature `wiretap`) | not part of the library: a relay that prints every call crossing it, frame by frame (`docs/wiretap.md`) |
//! | fuzz entry points | `fuzz.rs` (hidden feature `fuzz`) | the wire layers fed peer bytes for the targets in `fuzz/`; not part of the API |
//!
//! ## Public surface
//!
//! What a program that uses generated stubs, a [`Channel`] or a [`Server`] needs, and nothing
//! else; everything else is `pub(crate)`, so the layers above can be reshaped without a
//! breaking change:
//!
//! | item | why it is public |
//! |---|---|
//! | [`Channel`], [`client`] (`ChannelBuilder` and its defaults, `RetryPolicy`, `RequestSink`) | the client: generated stubs are built on a channel, and a program configures it |
//! | [`Server`], [`server`] (`Builder`, `Service`) | the server: a program adds generated services (a `Service`) and serves |
//! | [`Request`], [`Response`], [`IntoRequest`], [`IntoStreamingRequest`], [`CallKind`] | what every stub takes and returns (the client-streaming stub takes its stream through `IntoStreamingRequest`) |
//! | [`ResponseSink`], [`Streaming`], [`ResponseStream`] | the streams of a streaming call, on each side |
//! | [`Status`], [`Code`] | the error of every call |
//! | [`Metadata`], [`InvalidMetadata`] | custom metadata on requests, responses and statuses, and its refusal of a bad key |
//! | [`Encoding`] | to ask for compression |
//! | [`interceptor`] | to write an interceptor (and the bearer-token pair in `interceptor::auth`) |
//! | [`services`] | health and reflection, added like any service |
//! | [`testing`] | an in-process channel to a server, for users' tests (`docs/testing.md`) |
//! | `metrics` (feature `metrics`) | the Prometheus interceptors and endpoint |
//! | [`Peer`], [`TlsInfo`] | who is calling, for handlers and interceptors (`Request::peer`, `CallInfo::peer`) |
//! | `tls` (feature `tls`) | `ServerTls`, `ClientTls`, `Identity`, `CertificateSwap` (`docs/tls.md`) |
//! | `codegen` (hidden from the docs) | what generated code names: the method traits, the `serve_*` drivers, the dispatch-table row (`Route`, `ServerCall`, `CallFuture`); generated files name only `::bare_grpc::codegen::*`, and nothing else outside the crate should |
//!
//! The wire layers (prefix, decoder, codec, gzip, header names, `grpc-timeout`) are not public:
//! a program never frames messages itself, and the raw-h2 tests in `tests/` frame theirs by
//! hand, as any other peer would.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Generated code names `::bare_grpc::codegen::*`; this alias lets the services generated into
// the library itself (`services`) resolve that path too.
extern crate self as bare_grpc;

mod base64;
mod call;
pub mod client;
mod codec;
#[doc(hidden)]
pub mod codegen;
mod compression;
mod first;
#[cfg(feature = "fuzz")]
#[doc(hidden)]
pub mod fuzz;
#[cfg(feature = "gzip")]
mod gzip;
mod headers;
pub mod interceptor;
mod lock;
mod metadata;
#[cfg(feature = "metrics")]
pub mod metrics;
mod peer;
pub mod server;
pub mod services;
mod status;
#[cfg(test)]
mod test_rng;
pub mod testing;
mod timeout;
mod transport;
mod wire;

pub use call::{CallKind, IntoRequest, IntoStreamingRequest, Request, Response};
pub use client::{Channel, ResponseStream};
pub use compression::Encoding;
pub use metadata::{InvalidMetadata, Metadata};
pub use peer::{Peer, TlsInfo};
pub use server::{ResponseSink, Server, Streaming};
pub use status::{Code, Status};
/// TLS and mutual TLS for servers and channels (feature `tls`; `docs/tls.md`).
#[cfg(feature = "tls")]
pub use transport::tls;

//! # bare-grpc
//!
//! A gRPC runtime written by hand on raw HTTP/2 streams (the [`h2`] crate). It is two things at
//! once: a runtime that grpc-go and `grpcio` peers talk to without noticing the difference, and
//! an annotated reference in which every rule of the wire protocol sits beside the line that
//! implements it.
//!
//! ## Layout
//!
//! The modules follow the layers of `docs/architecture.md`, bottom to top; nothing in a lower
//! layer knows about a higher one.
//!
//! | layer | module | job |
//! |---|---|---|
//! | wire | [`wire`] | the 5-byte prefix, the streaming message decoder, the size limit |
//! | compression | [`compression`], `gzip` (feature `gzip`) | `grpc-encoding` identity / gzip: the RFC 1952 container and CRC-32 around `miniz_oxide`'s DEFLATE |
//! | status | [`status`] | [`Code`], [`Status`], `grpc-status` / `grpc-message` trailers |
//! | metadata | [`metadata`], [`timeout`] | ASCII and `-bin` keys, `grpc-timeout` |
//! | codec | [`codec`] | one protobuf message into / out of its prefix |
//! | call | [`call`] | `Request`, `Response`, `CallKind` |
//! | transport | `transport` | the h2 connection: accept loop, settings, graceful shutdown; the one flow-controlled writer and the one h2-error mapping both sides use |
//! | server | [`server`] | `:path` routing through dispatch tables, the four call kinds, the inbound [`Streaming`] |
//! | client | [`client`] | `Channel`, the four call kinds from the caller's side, [`ResponseStream`]; the `block_on` fast paths fenced in `client::fast` |
//! | services | [`services`] | health checking and server reflection, built like any user service |
//! | interceptors | [`interceptor`] | hooks around every call, both sides; bearer-token auth |
//! | metrics | `metrics` (feature `metrics`) | Prometheus call metrics and a `/metrics` endpoint |
//!
//! ## Reading order
//!
//! wire → status → metadata → codec → transport → server → client. Each module's doc opens with
//! the rule it implements (cited as `PROTOCOL-HTTP2 § …`), a diagram where bytes or states are
//! involved, why it is shaped the way it is, and what it rejects.
//!
//! Generated code (from `codegen/`, the `protoc-gen-bare-grpc` plugin) names only the items
//! re-exported by [`codegen`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// Generated code names `::bare_grpc::codegen::*`; this alias lets the services generated into
// the library itself (`services`) resolve that path too.
extern crate self as bare_grpc;

mod base64;
pub mod call;
pub mod client;
pub mod codec;
pub mod codegen;
pub mod compression;
mod first;
#[cfg(feature = "gzip")]
mod gzip;
pub mod headers;
pub mod interceptor;
mod lock;
pub mod metadata;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod server;
pub mod services;
pub mod status;
pub mod timeout;
mod transport;
pub mod wire;

pub use call::{CallKind, IntoRequest, Request, Response};
pub use client::{Channel, ResponseStream};
pub use compression::Encoding;
pub use metadata::Metadata;
pub use server::Streaming;
pub use server::{ResponseSink, Server};
pub use status::{Code, Status};

//! The HTTP/2 transport: connections and streams, below the gRPC call logic.
//!
//! gRPC runs on `h2` directly, with no HTTP service layer between a stream and its handler
//! (`docs/architecture.md`). This module owns what is about connections — the handshake, the
//! SETTINGS we advertise, the accept loop, GOAWAY on shutdown — and hands every accepted stream
//! to the server layer. It is generic over the byte stream, so TLS plugs in below it without
//! touching the call logic.

mod call_set;
pub(crate) mod server;

//! An in-process channel for tests: the real [`Server`] and the real [`Channel`] joined by an
//! in-memory pipe (`tokio::io::duplex`), with no port, no socket and no sleep.
//!
//! ```text
//!  Channel ── connect attempt ──▶ duplex(client end) ══ HTTP/2 ══ duplex(server end)
//!                                                                   └─▶ Server::serve_connection
//! ```
//!
//! The rule it keeps: everything above the byte stream is the production code. The bytes are
//! HTTP/2 with prior knowledge, as over TCP (PROTOCOL-HTTP2 § HTTP2 Transport Mapping): the
//! client writes the preface, the server answers SETTINGS, calls are streams, statuses are
//! trailers. So a test of a service through this channel exercises the same framing, limits,
//! deadlines, metadata and interceptors a networked client would (grpc-go's `bufconn` plays
//! the same part).
//!
//! Why a pipe per connect attempt: the channel's connection layer asks for a new connection
//! whenever the old one ends (`client/connection.rs`), so each attempt makes a fresh pair and
//! starts serving its server end on the current runtime; dropping the channel closes the client
//! end, and the server's connection task ends at EOF. The peer address a handler sees is
//! `None` (there is none).
//!
//! ```
//! # async fn demo(server: bare_grpc::Server) -> Result<(), bare_grpc::Status> {
//! // Inside a #[tokio::test]: a connected channel to `server`, no port.
//! let channel = bare_grpc::testing::connect(&server).await?;
//! # let _ = channel; Ok(()) }
//! ```

use crate::client::{Channel, ChannelBuilder};
use crate::server::Server;
use crate::status::Status;

/// The capacity of each direction of the in-memory pipe. HTTP/2 flow control bounds what is in
/// flight anyway; this only sets how much one write may hand over before the reader runs.
const PIPE_CAPACITY: usize = 256 * 1024;

/// The `:authority` the in-process channel's requests carry (nothing resolves it).
const AUTHORITY: &str = "in-process:0";

/// A builder for a channel to `server` over in-memory pipes, to change the channel's defaults
/// (message limits, interceptors, retry policy, …) as for a networked channel.
pub fn builder(server: &Server) -> ChannelBuilder {
    let server = server.clone();
    Channel::builder(AUTHORITY)
        .expect("the in-process authority parses")
        .in_memory(move || {
            let (client, server_end) = tokio::io::duplex(PIPE_CAPACITY);
            let server = server.clone();
            tokio::spawn(async move { server.serve_connection(server_end, None).await });
            client
        })
}

/// A channel to `server` that connects on its first call (needs a Tokio runtime by then).
pub fn lazy(server: &Server) -> Channel {
    builder(server).lazy()
}

/// A channel to `server` that has connected (the HTTP/2 handshake is done). Call it inside a
/// Tokio runtime; the server's connection runs on that runtime.
pub async fn connect(server: &Server) -> Result<Channel, Status> {
    builder(server).connect().await
}

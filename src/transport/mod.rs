//! The HTTP/2 transport: connections and streams, below the gRPC call logic.
//!
//! gRPC runs on `h2` directly, with no HTTP service layer between a stream and its handler
//! (`docs/architecture.md`). This module owns what is about connections and streams, for both
//! sides: the handshake, the SETTINGS we advertise, the accept loop and GOAWAY on shutdown
//! (`server`), keepalive and connection age under gRFC A8 (`server`, with the frame watcher
//! `frame_watch`), the one flow-controlled writer (`write`), and the one mapping from h2's errors to
//! where a call's failure goes (`error`). It is generic over the byte stream, so TLS (`tls`,
//! feature `tls`) plugs in below it without touching the call logic.

mod call_set;
pub(crate) mod error;
pub(crate) mod frame_watch;
pub(crate) mod keepalive;
mod preface;
pub(crate) mod server;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(unix)]
pub(crate) mod unix;
pub(crate) mod write;

/// h2 (0.4.20+) guards against floods of tiny DATA frames: each received frame with a payload
/// under this many bytes charges `SMALL_DATA_FRAME - payload` against a connection budget until
/// the application reads it, and an exhausted budget closes the connection with
/// ENHANCE_YOUR_CALM. Both our server and our client size that budget with
/// [`small_frame_budget`].
const SMALL_DATA_FRAME: usize = 256;

/// The budget that lets a whole flow-control `window` of `smallest`-byte DATA frames sit
/// unread: a peer that respects the window and never sends frames smaller than `smallest` can
/// not exhaust it, while a flood of smaller frames still does.
pub(crate) fn small_frame_budget(window: u32, smallest: usize) -> usize {
    (window as usize / smallest + 1) * (SMALL_DATA_FRAME - smallest)
}

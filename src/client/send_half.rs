//! The send half of a client call's HTTP/2 stream, shared by the two halves of the call.
//!
//! h2 gives one `SendStream` per stream, and a call needs it in two places: the request side
//! writes messages and END_STREAM into it (`request_sink`, `upload`), and the response side
//! resets it with RST_STREAM(CANCEL) when the deadline passes, a bad answer arrives, or the
//! caller drops the stream (PROTOCOL-HTTP2 § Errors). Each holder locks it only for one
//! non-blocking h2 call, never across an await, so the lock is uncontended in practice.

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// The send half of one call's stream (see the module doc).
pub(crate) type SharedSend = Arc<Mutex<h2::SendStream<Bytes>>>;

/// Wraps a freshly opened stream's send half.
pub(crate) fn share(send: h2::SendStream<Bytes>) -> SharedSend {
    Arc::new(Mutex::new(send))
}

/// Resets the stream with `reason` (a poisoned lock is taken as it is: the stream state lives
/// in h2, so a panic elsewhere cannot leave it half-updated on our side).
pub(crate) fn reset(send: &SharedSend, reason: h2::Reason) {
    crate::lock::lock(send).send_reset(reason);
}

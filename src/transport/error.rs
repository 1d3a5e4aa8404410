//! Where an HTTP/2 failure on a call's stream goes: the one mapping from [`h2::Error`] to a
//! call's end, read by both sides (PROTOCOL-HTTP2 § Errors; RFC 9113 §5.4, §6.8, §8.7).
//!
//! ```text
//!   what h2 reports                                   -> CallEnd                  code
//!   RST_STREAM(reason) from the peer                  -> Reset(status)            Code::from_h2_reason
//!   RST_STREAM(reason) we sent (stall timeout, cancel) -> Reset(status)           Code::from_h2_reason
//!   RST_STREAM(REFUSED_STREAM) from the peer          -> NeverProcessed(status)   UNAVAILABLE
//!   graceful GOAWAY(NO_ERROR) above last-stream-id    -> NeverProcessed(status)   UNAVAILABLE
//!   GOAWAY(ENHANCE_YOUR_CALM)                         -> Status                   RESOURCE_EXHAUSTED
//!   any other GOAWAY                                  -> Status                   UNAVAILABLE
//!   the socket broke (I/O)                            -> Status                   UNAVAILABLE
//!   a protocol error with a reason                    -> Status                   Code::from_h2_reason
//!   anything else (h2 refused our own use of it)      -> Status                   INTERNAL
//! ```
//!
//! Why a type and not a flag: the three ends go to different places. A status ends the call
//! where it is; a reset also tells a server that its client is gone (there is nobody to answer);
//! "never processed" tells a client that sending the same request again cannot run it twice
//! (RFC 9113 §8.7: such a request "has not been processed in any way"), which gRPC's
//! transparent retry (gRFC A6) relies on. Handlers and callers only ever see the [`Status`].
//!
//! Why h2 makes this possible at all: h2 hands us the [`h2::Reason`] of a RST_STREAM and says
//! whether a GOAWAY or reset came from the peer, so the code follows the spec's table instead of
//! a generic "transport error".
//!
//! Links: PROTOCOL-HTTP2 <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>,
//! gRFC A6 <https://github.com/grpc/proposal/blob/master/A6-client-retries.md>,
//! RFC 9113 <https://www.rfc-editor.org/rfc/rfc9113>.

use crate::status::{Code, Status};

/// How a call's stream ended when h2 reported an error on it.
#[derive(Clone, Debug)]
pub(crate) enum CallEnd {
    /// The call ends with this status.
    Status(Status),
    /// The peer reset the stream (RST_STREAM); the status carries the code its reason maps to
    /// and names the reason. On the server this means the client is gone: nobody to answer.
    Reset(Status),
    /// The stream never reached the peer's application: the request may be sent again as it
    /// is, on another stream (gRFC A6 transparent retry).
    NeverProcessed(Status),
}

impl CallEnd {
    /// The one mapping from an h2 error on a call's stream (see the module doc's table).
    pub(crate) fn from_h2(error: &h2::Error) -> CallEnd {
        if error.is_go_away() && error.is_remote() {
            return match error.reason() {
                // The peer judged our use of the connection abusive (h2 says so for too many
                // small DATA frames, or pings); a retry elsewhere would only do it again.
                Some(h2::Reason::ENHANCE_YOUR_CALM) => CallEnd::Status(Status::resource_exhausted(
                    format!("the peer closed the connection: {error}"),
                )),
                // h2 reports a graceful GOAWAY as an error only to the streams above its
                // last-stream-id and to streams opened after it: neither reached the peer's
                // application. (An erroring GOAWAY can also end processed streams.)
                Some(h2::Reason::NO_ERROR) => CallEnd::NeverProcessed(going_away(error)),
                _ => CallEnd::Status(going_away(error)),
            };
        }
        if error.is_io() {
            return CallEnd::Status(Status::unavailable(format!("connection broken: {error}")));
        }
        match error.reason() {
            Some(reason) if error.is_reset() => {
                let by = if error.is_remote() {
                    "the peer"
                } else {
                    "this side"
                };
                let mut message = format!("stream reset by {by}: {reason:?}");
                if reason == h2::Reason::ENHANCE_YOUR_CALM
                    && !error.is_remote()
                    && !error.is_library()
                {
                    // Only a send stall timeout resets a stream so (`transport::write`): the
                    // other half of the call reads why.
                    message.push_str(" (the peer read nothing for the send stall timeout)");
                }
                let status = Status::new(Code::from_h2_reason(reason), message);
                if reason == h2::Reason::REFUSED_STREAM && error.is_remote() {
                    return CallEnd::NeverProcessed(status);
                }
                CallEnd::Reset(status)
            }
            Some(reason) => CallEnd::Status(Status::new(
                Code::from_h2_reason(reason),
                format!("HTTP/2 error: {error}"),
            )),
            None => CallEnd::Status(Status::internal(format!("HTTP/2 error: {error}"))),
        }
    }

    /// A client's failure to open a stream at all (`SendRequest::send_request`): whatever the
    /// connection did, the request never left this process, so it is never processed — unless
    /// h2 refused the request itself (a malformed head), which no other attempt would fix.
    pub(crate) fn opening(error: &h2::Error) -> CallEnd {
        if error.is_go_away() || error.is_io() || error.reason().is_some() {
            return CallEnd::NeverProcessed(CallEnd::from_h2(error).into_status());
        }
        CallEnd::from_h2(error)
    }

    /// The status the call ends with, wherever it goes.
    pub(crate) fn into_status(self) -> Status {
        match self {
            CallEnd::Status(status) | CallEnd::Reset(status) | CallEnd::NeverProcessed(status) => {
                status
            }
        }
    }
}

/// UNAVAILABLE for a connection the peer is closing.
fn going_away(error: &h2::Error) -> Status {
    Status::unavailable(format!("connection is going away: {error}"))
}

/// [`CallEnd::from_h2`] for a caller that needs only the status.
pub(crate) fn status_from_h2(error: &h2::Error) -> Status {
    CallEnd::from_h2(error).into_status()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resets_map_to_codes() {
        // PROTOCOL-HTTP2 § Errors, as seen through h2 (a reset made into an h2::Error).
        let rows = [
            (h2::Reason::CANCEL, Code::Cancelled),
            (h2::Reason::NO_ERROR, Code::Internal),
            (h2::Reason::PROTOCOL_ERROR, Code::Internal),
            (h2::Reason::REFUSED_STREAM, Code::Unavailable),
            (h2::Reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
            (h2::Reason::INADEQUATE_SECURITY, Code::PermissionDenied),
        ];
        for (reason, code) in rows {
            assert_eq!(
                status_from_h2(&h2::Error::from(reason)).code(),
                code,
                "{reason:?}"
            );
        }
    }

    #[test]
    fn a_local_error_is_a_status_not_a_retry() {
        // h2::Error::from(reason) is an error of our own side, not the peer's: never "never
        // processed", whatever the reason (only the peer's REFUSED_STREAM says that).
        let end = CallEnd::from_h2(&h2::Error::from(h2::Reason::REFUSED_STREAM));
        assert!(matches!(end, CallEnd::Status(_)), "{end:?}");
        assert_eq!(end.into_status().code(), Code::Unavailable);
        // Opening a stream on a connection that failed never sent it.
        let end = CallEnd::opening(&h2::Error::from(h2::Reason::PROTOCOL_ERROR));
        assert!(matches!(end, CallEnd::NeverProcessed(_)), "{end:?}");
    }
}

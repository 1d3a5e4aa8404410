//! Every header name gRPC gives a meaning to, in one place
//! (PROTOCOL-HTTP2 § Requests, § Responses).
//!
//! ```text
//!   request HEADERS                        response HEADERS / trailers
//!   :method POST, :scheme, :path,          :status 200
//!   :authority                             content-type   application/grpc...
//!   te            trailers                 grpc-encoding  (optional)
//!   content-type  application/grpc...      grpc-accept-encoding (optional)
//!   grpc-timeout  (optional)               ---- trailers ----
//!   grpc-encoding (optional)               grpc-status    decimal code
//!   grpc-accept-encoding (optional)        grpc-message   percent-encoded
//!   user-agent    (optional)               grpc-status-details-bin (optional)
//!   custom metadata...                     grpc-retry-pushback-ms (optional)
//! ```
//!
//! Why constants: a name spelled as a literal in ten places is a typo waiting
//! to happen and cannot be searched for. `HeaderName::from_static` is `const`,
//! so these cost nothing at run time.
//! Pseudo-headers (`:path`, `:status`, ...) are not here: `http` carries them
//! in `Request`/`Response` parts, not in the `HeaderMap`.
//!
//! What this module does not do: it holds no policy. Which names are reserved
//! lives in [`crate::metadata::Metadata::is_reserved`], how values are parsed
//! lives with the type that owns them (`status`, `timeout`, `compression`).
//!
//! Spec: <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>

use http::HeaderName;

/// `grpc-status`: the call's status code as a decimal integer, in trailers
/// (or a trailers-only response). Required even when the code is OK.
pub(crate) const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// `grpc-message`: the status message, UTF-8 then percent-encoded
/// (see [`crate::status::encode_grpc_message`]).
pub(crate) const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// `grpc-status-details-bin`: a base64 `google.rpc.Status` protobuf giving
/// rich error details. Opaque bytes to this runtime.
pub(crate) const GRPC_STATUS_DETAILS_BIN: HeaderName =
    HeaderName::from_static("grpc-status-details-bin");

/// `grpc-timeout`: the client's deadline as 1-8 digits plus a unit
/// (see [`crate::timeout`]).
pub(crate) const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// `grpc-encoding`: the compression used for messages whose prefix flag is 1.
pub(crate) const GRPC_ENCODING: HeaderName = HeaderName::from_static("grpc-encoding");

/// `grpc-accept-encoding`: comma-separated list of encodings the sender can
/// decompress.
pub(crate) const GRPC_ACCEPT_ENCODING: HeaderName = HeaderName::from_static("grpc-accept-encoding");

/// `grpc-retry-pushback-ms`: a server's hint (in trailers) for how long a
/// client should wait before retrying; a negative value means "do not retry".
pub(crate) const GRPC_RETRY_PUSHBACK_MS: HeaderName =
    HeaderName::from_static("grpc-retry-pushback-ms");

/// `te`: must be `trailers` on requests; lets a server detect proxies that
/// would strip trailers.
pub(crate) const TE: HeaderName = http::header::TE;

/// `content-type`: must begin with `application/grpc` (see
/// [`is_grpc_content_type`]).
pub(crate) const CONTENT_TYPE: HeaderName = http::header::CONTENT_TYPE;

/// `user-agent`: a structured client description such as `grpc-go/1.33.0`.
pub(crate) const USER_AGENT: HeaderName = http::header::USER_AGENT;

/// The content-type value this runtime sends.
pub(crate) const APPLICATION_GRPC: &str = "application/grpc";

/// The only legal value of the `te` request header.
pub(crate) const TRAILERS: &str = "trailers";

/// Is `value` a gRPC content-type?
///
/// PROTOCOL-HTTP2 § Requests: `"application/grpc" [("+proto" / "+json" /
/// {custom})]`, and "If Content-Type does not begin with "application/grpc",
/// gRPC servers SHOULD respond with HTTP status of 415". True for
/// `application/grpc`, `application/grpc+<anything>` and
/// `application/grpc;<parameters>`; false for look-alikes such as
/// `application/grpcfoo` or `application/grpc-web`. The type is matched
/// case-insensitively, as media types are (RFC 9110 §8.3.1).
pub(crate) fn is_grpc_content_type(value: &[u8]) -> bool {
    let base = APPLICATION_GRPC.as_bytes();
    if value.len() < base.len() || !value[..base.len()].eq_ignore_ascii_case(base) {
        return false;
    }
    // What follows the base type must start a suffix, start parameters, or be nothing.
    matches!(
        value.get(base.len()),
        None | Some(b'+' | b';' | b' ' | b'\t')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One row per content-type form; PROTOCOL-HTTP2 § Requests, Content-Type.
    #[test]
    fn grpc_content_types() {
        let rows: &[(&str, bool)] = &[
            ("application/grpc", true),
            ("application/grpc+proto", true),
            ("application/grpc+json", true),
            ("application/grpc+custom", true),
            ("application/grpc;charset=utf-8", true),
            ("application/grpc ; charset=utf-8", true),
            ("Application/GRPC", true),
            ("application/grpcfoo", false),
            ("application/grpc-web", false),
            ("application/grpc-web+proto", false),
            ("application/json", false),
            ("application/grp", false),
            ("text/plain", false),
            ("", false),
        ];
        for &(value, want) in rows {
            assert_eq!(is_grpc_content_type(value.as_bytes()), want, "{value:?}");
        }
    }

    /// The names are the spec's, lowercase as HTTP/2 requires (RFC 9113 §8.2.1).
    #[test]
    fn names_are_the_spec_spellings() {
        let rows: &[(&HeaderName, &str)] = &[
            (&GRPC_STATUS, "grpc-status"),
            (&GRPC_MESSAGE, "grpc-message"),
            (&GRPC_STATUS_DETAILS_BIN, "grpc-status-details-bin"),
            (&GRPC_TIMEOUT, "grpc-timeout"),
            (&GRPC_ENCODING, "grpc-encoding"),
            (&GRPC_ACCEPT_ENCODING, "grpc-accept-encoding"),
            (&GRPC_RETRY_PUSHBACK_MS, "grpc-retry-pushback-ms"),
            (&TE, "te"),
            (&CONTENT_TYPE, "content-type"),
            (&USER_AGENT, "user-agent"),
        ];
        for &(name, text) in rows {
            assert_eq!(name.as_str(), text);
        }
        assert!(is_grpc_content_type(APPLICATION_GRPC.as_bytes()));
        assert_eq!(TRAILERS, "trailers");
    }
}

//! Bearer-token authentication as a pair of interceptors: [`BearerAuth`] on the server checks
//! the `authorization` metadata, [`BearerToken`] on the client attaches it.
//!
//! ```text
//!   authorization: Bearer <token>          RFC 6750 §2.1
//!   credentials  = "Bearer" 1*SP b64token
//!   b64token     = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//! ```
//!
//! gRPC carries credentials as ordinary request metadata; grpc-go's per-RPC credentials and
//! grpcio's `access_token_call_credentials` both send exactly this header, so either kind of
//! peer can talk to [`BearerAuth`]. A failed check is UNAUTHENTICATED (statuscodes.md: "the
//! request does not have valid authentication credentials for the operation"), never
//! PERMISSION_DENIED, which is for a known caller who may not do this.
//!
//! | request | status |
//! |---|---|
//! | no `authorization` entry | UNAUTHENTICATED "missing bearer token" |
//! | more than one `authorization` entry | UNAUTHENTICATED "more than one authorization entry" |
//! | a scheme other than `Bearer` (case-insensitive, RFC 9110 §11.1), or no token | UNAUTHENTICATED "expected a Bearer token" |
//! | a token not accepted | UNAUTHENTICATED "invalid bearer token" |
//!
//! Why it is shaped this way: the check is a plain interceptor, so it composes with the others
//! (place a metrics interceptor outside it to count rejected calls). Tokens are compared in
//! time independent of where they differ, so response timing does not leak a valid token byte
//! by byte. The rejection messages never echo the presented token.
//!
//! Transport security (grpc-go's `RequireTransportSecurity`): over plain h2c a bearer token
//! crosses the network in clear text, readable by anyone on the path, so [`BearerToken`]
//! refuses to send it on a channel without TLS and fails the call with UNAUTHENTICATED, saying
//! why, before anything is sent. A program that knows its path is private (loopback, a
//! TLS-terminating sidecar) opts in with [`BearerToken::allow_plaintext`].
//!
//! What it does not do: parse JWTs or call an identity service (a
//! [`BearerAuth::with_validator`] closure can do either from a cache).
//!
//! Links: RFC 6750 <https://www.rfc-editor.org/rfc/rfc6750>, statuscodes.md
//! <https://github.com/grpc/grpc/blob/master/doc/statuscodes.md>.

use std::sync::Arc;

use crate::interceptor::{CallInfo, Interceptor};
use crate::metadata::Metadata;
use crate::status::Status;

/// The metadata key credentials travel under.
pub const AUTHORIZATION: &str = "authorization";

/// The validator of a [`BearerAuth`].
type Validator = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Server interceptor: admits a call only with `authorization: Bearer <token>` and an accepted
/// token; otherwise rejects it with UNAUTHENTICATED before the handler runs.
#[derive(Clone)]
pub struct BearerAuth {
    validator: Validator,
}

impl BearerAuth {
    /// Accepts exactly the given tokens.
    pub fn new<I, T>(tokens: I) -> BearerAuth
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let tokens: Vec<String> = tokens.into_iter().map(Into::into).collect();
        BearerAuth::with_validator(move |presented| {
            // Compare against every token, so timing says nothing about which one is close.
            tokens.iter().fold(false, |found, token| {
                found | constant_time_eq(token, presented)
            })
        })
    }

    /// Accepts a token when `validator` says so (it sees the token without the scheme).
    pub fn with_validator(validator: impl Fn(&str) -> bool + Send + Sync + 'static) -> BearerAuth {
        BearerAuth {
            validator: Arc::new(validator),
        }
    }

    /// The check itself: `Ok(())` when `metadata` carries an accepted bearer token.
    pub fn check(&self, metadata: &Metadata) -> Result<(), Status> {
        let values = metadata.get_all(AUTHORIZATION);
        let value = match values.as_slice() {
            [] => return Err(Status::unauthenticated("missing bearer token")),
            [value] => *value,
            _ => {
                return Err(Status::unauthenticated("more than one authorization entry"));
            }
        };
        let token = parse_bearer(value)
            .ok_or_else(|| Status::unauthenticated("expected a Bearer token"))?;
        if (self.validator)(token) {
            Ok(())
        } else {
            Err(Status::unauthenticated("invalid bearer token"))
        }
    }
}

impl std::fmt::Debug for BearerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerAuth").finish_non_exhaustive()
    }
}

impl Interceptor for BearerAuth {
    type State = ();

    fn on_start(&self, _call: &CallInfo, metadata: &mut Metadata) -> Result<(), Status> {
        self.check(metadata)
    }
}

/// Client interceptor: attaches `authorization: Bearer <token>` to every call that does not
/// already carry an `authorization` entry (a request may set its own, per call).
#[derive(Clone)]
pub struct BearerToken {
    value: String,
    /// Send over h2c too (the caller opted in); otherwise only over TLS.
    allow_plaintext: bool,
}

impl BearerToken {
    /// INVALID_ARGUMENT when `token` is empty or not a `b64token` (RFC 6750 §2.1), so a bad
    /// token fails when the channel is built, not on every call.
    pub fn new(token: &str) -> Result<BearerToken, Status> {
        if !is_b64token(token) {
            return Err(Status::invalid_argument(
                "a bearer token must be 1*(ALPHA / DIGIT / \"-._~+/\") *\"=\" (RFC 6750)",
            ));
        }
        Ok(BearerToken {
            value: format!("Bearer {token}"),
            allow_plaintext: false,
        })
    }

    /// Sends the token over a plain-text (h2c) channel too. Without this, a call on a channel
    /// that is not TLS fails with UNAUTHENTICATED and the token is not sent: a bearer token in
    /// clear text is readable by anyone on the path. For loopback, a private network, or a
    /// TLS-terminating proxy next to the client.
    pub fn allow_plaintext(mut self) -> BearerToken {
        self.allow_plaintext = true;
        self
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token itself stays out of logs.
        f.debug_struct("BearerToken").finish_non_exhaustive()
    }
}

impl Interceptor for BearerToken {
    type State = ();

    fn on_start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<(), Status> {
        // The token's own opt-in, or the channel's (`allow_plaintext_credentials`), which every
        // call credential honours alike (`credentials::check_transport`).
        if !call.is_transport_secure()
            && !self.allow_plaintext
            && !call.plaintext_credentials_allowed()
        {
            return Err(Status::unauthenticated(PLAINTEXT_REFUSED));
        }
        if metadata.get_all(AUTHORIZATION).is_empty() {
            metadata.insert(AUTHORIZATION, &self.value)?;
        }
        Ok(())
    }
}

/// Why a [`BearerToken`] call on an h2c channel fails.
const PLAINTEXT_REFUSED: &str = "BearerToken refuses to send a credential over a plaintext \
    (h2c) channel, where anyone on the path can read it: use TLS (feature `tls`), or opt in \
    with BearerToken::allow_plaintext() or ChannelBuilder::allow_plaintext_credentials()";

/// The token of `Bearer <token>`: the scheme matched case-insensitively, then one or more
/// spaces, then a `b64token`. `None` for anything else.
fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = rest.trim_start_matches(' ');
    is_b64token(token).then_some(token)
}

/// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Equality whose running time depends on the lengths only, not on where the bytes differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.bytes()
        .zip(b.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;

    fn metadata(values: &[&str]) -> Metadata {
        let mut md = Metadata::new();
        for value in values {
            md.append(AUTHORIZATION, value).unwrap();
        }
        md
    }

    #[test]
    fn server_check_rules() {
        let auth = BearerAuth::new(["s3cret", "other-token"]);
        // (authorization entries, accepted?, message when rejected)
        let rows: &[(&[&str], Option<&str>)] = &[
            (&["Bearer s3cret"], None),
            (&["Bearer other-token"], None),
            // The scheme is case-insensitive (RFC 9110 §11.1); extra spaces before the token.
            (&["bearer s3cret"], None),
            (&["BEARER  s3cret"], None),
            (&[], Some("missing bearer token")),
            (
                &["Bearer s3cret", "Bearer s3cret"],
                Some("more than one authorization entry"),
            ),
            (&["Basic czNjcmV0"], Some("expected a Bearer token")),
            (&["Bearer"], Some("expected a Bearer token")),
            (&["Bearer "], Some("expected a Bearer token")),
            (&["Bearers3cret"], Some("expected a Bearer token")),
            (&["Bearer s3cret extra"], Some("expected a Bearer token")),
            (&["s3cret"], Some("expected a Bearer token")),
            (&["Bearer s3cre"], Some("invalid bearer token")),
            (&["Bearer s3cret2"], Some("invalid bearer token")),
            (&["Bearer S3CRET"], Some("invalid bearer token")),
        ];
        for (values, rejected) in rows {
            let got = auth.check(&metadata(values));
            match rejected {
                None => assert!(got.is_ok(), "{values:?}: {got:?}"),
                Some(message) => {
                    let status = got.expect_err("must be rejected");
                    assert_eq!(status.code(), Code::Unauthenticated, "{values:?}");
                    assert_eq!(status.message(), *message, "{values:?}");
                }
            }
        }
    }

    #[test]
    fn client_token_rules() {
        assert!(BearerToken::new("abc.DEF-123_~+/==").is_ok());
        for bad in ["", "has space", "new\nline", "==", "é"] {
            let err = BearerToken::new(bad).expect_err(bad);
            assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}");
        }
        let token = BearerToken::new("t0k").unwrap();
        // Over plain text the token is not sent unless the caller opted in.
        let plain = CallInfo::client(crate::CallKind::Unary, "/a/b", None, false);
        let mut md = Metadata::new();
        let err = token.on_start(&plain, &mut md).unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert!(err.message().contains("plaintext"), "{err:?}");
        assert!(md.get_all(AUTHORIZATION).is_empty());
        let mut md = Metadata::new();
        token
            .clone()
            .allow_plaintext()
            .on_start(&plain, &mut md)
            .unwrap();
        assert_eq!(md.get_all(AUTHORIZATION), ["Bearer t0k"]);
        let info = CallInfo::client(crate::CallKind::Unary, "/a/b", None, true);
        let mut md = Metadata::new();
        token.on_start(&info, &mut md).unwrap();
        assert_eq!(md.get_all(AUTHORIZATION), ["Bearer t0k"]);
        // A request that set its own credentials keeps them.
        let mut own = metadata(&["Bearer mine"]);
        token.on_start(&info, &mut own).unwrap();
        assert_eq!(own.get_all(AUTHORIZATION), ["Bearer mine"]);
        assert!(!format!("{token:?}").contains("t0k"));
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
        assert!(constant_time_eq("", ""));
    }
}

//! Call credentials (gRPC's per-RPC credentials): metadata a channel asks a source for before
//! each call and attaches to it, built on the client's waiting start hook
//! ([`AsyncInterceptor`]).
//!
//! ```text
//!   call ─▶ CredentialsInterceptor::on_start
//!             1. transport check: the source requires transport security, the channel is
//!                plaintext, and no opt-in                    → UNAUTHENTICATED, nothing sent
//!             2. source.metadata(call).await                 → error: UNAVAILABLE "<reason>"
//!             3. entries the request does not set already    → added to its metadata
//!
//!   CachedToken<S>::metadata
//!     token fresh (expires later than now + refresh_before)  → cached value, no wait
//!     token still valid, a refresh already running           → cached value, no wait
//!     otherwise: one caller fetches (async mutex), the others wait for that one fetch and
//!     share its token, or its error
//! ```
//!
//! The rules it implements: a call-credentials failure fails the call with UNAVAILABLE
//! (gRFC A54: the library must not let a credentials plugin pick control-plane status codes,
//! and grpc-core reports a failing plugin as UNAVAILABLE); credentials that require transport
//! security are not sent over an insecure connection (grpc-go refuses with UNAUTHENTICATED,
//! "cannot send secure credentials on an insecure connection"). The token travels as
//! `authorization: Bearer <token>` (RFC 6750 §2.1), as [`super::auth::BearerToken`] sends it.
//!
//! Why one refresh for many calls: a token that expires while a hundred calls are starting
//! would otherwise be fetched a hundred times from the identity service at the same instant
//! (the thundering herd). The async mutex admits one fetch; the callers queued behind it find
//! the new token (or that fetch's error) when they get the lock and fetch nothing themselves.
//! A refresh starts `refresh_before` ahead of the expiry, so calls keep the old, still valid
//! token while it runs instead of waiting on it.
//!
//! How transport security plugs in: [`check_transport`] is the whole rule. It reads
//! [`CallInfo::is_transport_secure`] (true when the channel runs over TLS, feature `tls`) and [`CallInfo::plaintext_credentials_allowed`] (the channel's
//! `ChannelBuilder::allow_plaintext_credentials` opt-in). A synchronous interceptor that
//! carries credentials, such as `BearerToken`, can call it from its `on_start` too.
//!
//! Links: gRFC A54 <https://github.com/grpc/proposal/blob/master/A54-restrict-control-plane-status-codes.md>,
//! RFC 6750 <https://www.rfc-editor.org/rfc/rfc6750>.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::interceptor::auth::AUTHORIZATION;
use crate::interceptor::{AsyncInterceptor, CallInfo};
use crate::metadata::Metadata;
use crate::status::Status;

/// A source of per-call credentials: the metadata to attach to one call.
pub trait CallCredentials: Send + Sync + 'static {
    /// The entries to add to `call`'s request metadata. An error fails the call with
    /// UNAVAILABLE, its message naming this error's.
    fn metadata(&self, call: &CallInfo) -> impl Future<Output = Result<Metadata, Status>> + Send;

    /// Whether these credentials may cross the network only over a protected transport
    /// (true unless overridden): then a plaintext channel refuses to send them unless it
    /// opted in with `ChannelBuilder::allow_plaintext_credentials`.
    fn requires_transport_security(&self) -> bool {
        true
    }
}

/// The plaintext refusal: UNAUTHENTICATED when credentials that `require` transport security
/// would go out on a call whose transport is not secure and whose channel did not opt in.
pub fn check_transport(call: &CallInfo, require: bool) -> Result<(), Status> {
    if require && !call.is_transport_secure() && !call.plaintext_credentials_allowed() {
        return Err(Status::unauthenticated(
            "refusing to send credentials that require transport security over a plaintext \
             connection (ChannelBuilder::allow_plaintext_credentials opts in)",
        ));
    }
    Ok(())
}

/// The client interceptor that attaches a [`CallCredentials`] source's metadata to every call
/// (what `ChannelBuilder::call_credentials` installs).
#[derive(Debug)]
pub struct CredentialsInterceptor<C>(pub C);

impl<C: CallCredentials> AsyncInterceptor for CredentialsInterceptor<C> {
    type State = ();

    async fn on_start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<(), Status> {
        check_transport(call, self.0.requires_transport_security())?;
        let extra = self.0.metadata(call).await.map_err(|status| {
            Status::unavailable(format!(
                "call credentials failed: {} ({})",
                status.message(),
                status.code().name()
            ))
        })?;
        metadata.add_missing(&extra);
        Ok(())
    }
}

/// A bearer token and when it stops being valid.
#[derive(Clone)]
pub struct Token {
    value: Arc<str>,
    expires_at: Option<Instant>,
}

impl Token {
    /// `value` valid until `expires_at` (`None`: it never expires).
    pub fn new(value: impl Into<Arc<str>>, expires_at: Option<Instant>) -> Token {
        Token {
            value: value.into(),
            expires_at,
        }
    }

    /// `value`, valid for `lifetime` from now.
    pub fn valid_for(value: impl Into<Arc<str>>, lifetime: Duration) -> Token {
        Token::new(value, Instant::now().checked_add(lifetime))
    }

    /// The token itself.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// When it expires.
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// Still valid at `now` (before its expiry).
    fn valid_at(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token itself stays out of logs.
        f.debug_struct("Token")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where a [`CachedToken`] gets a new token from (an identity service, a metadata server, a
/// file a sidecar rewrites).
pub trait TokenSource: Send + Sync + 'static {
    /// A fresh token.
    fn fetch(&self) -> impl Future<Output = Result<Token, Status>> + Send;
}

/// What the cache holds between calls.
#[derive(Default)]
struct Slot {
    token: Option<Token>,
    /// How many fetches have finished, so a caller that waited knows one happened.
    fetches: u64,
    /// The last fetch's error, shared with the callers that waited for it.
    error: Option<Status>,
}

/// [`CallCredentials`] that send `authorization: Bearer <token>` from a [`TokenSource`],
/// fetching a token only when the cached one nears its expiry, once for all the calls that
/// need it at the same time.
pub struct CachedToken<S> {
    source: S,
    refresh_before: Duration,
    slot: Mutex<Slot>,
    /// Held by the one caller fetching.
    fetching: tokio::sync::Mutex<()>,
}

impl<S: TokenSource> CachedToken<S> {
    /// Caches tokens of `source`, refreshing each `refresh_before` ahead of its expiry.
    pub fn new(source: S, refresh_before: Duration) -> CachedToken<S> {
        CachedToken {
            source,
            refresh_before,
            slot: Mutex::new(Slot::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// The source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// A token to send now: the cached one while fresh, else the result of one fetch shared
    /// by every caller that asked meanwhile.
    pub async fn token(&self) -> Result<Token, Status> {
        let seen = {
            let slot = crate::lock::lock(&self.slot);
            let now = Instant::now();
            match &slot.token {
                Some(token) if self.fresh(token, now) => return Ok(token.clone()),
                // In the refresh window but still valid, and someone is already fetching:
                // keep using it rather than queue behind the fetch.
                Some(token) if token.valid_at(now) && self.fetching.try_lock().is_err() => {
                    return Ok(token.clone());
                }
                _ => slot.fetches,
            }
        };
        let _fetching = self.fetching.lock().await;
        {
            let slot = crate::lock::lock(&self.slot);
            if slot.fetches != seen {
                // A fetch finished while this caller waited: share its outcome.
                if let Some(token) = slot.token.as_ref().filter(|t| t.valid_at(Instant::now())) {
                    return Ok(token.clone());
                }
                if let Some(error) = &slot.error {
                    return Err(error.clone());
                }
            }
        }
        let fetched = self.source.fetch().await;
        let mut slot = crate::lock::lock(&self.slot);
        slot.fetches += 1;
        match fetched {
            Ok(token) => {
                slot.token = Some(token.clone());
                slot.error = None;
                Ok(token)
            }
            Err(error) => {
                slot.error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// Valid for longer than the refresh margin.
    fn fresh(&self, token: &Token, now: Instant) -> bool {
        token
            .expires_at
            .is_none_or(|at| now.checked_add(self.refresh_before).is_some_and(|t| t < at))
    }
}

impl<S> std::fmt::Debug for CachedToken<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("refresh_before", &self.refresh_before)
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource> CallCredentials for CachedToken<S> {
    async fn metadata(&self, _call: &CallInfo) -> Result<Metadata, Status> {
        let token = self.token().await?;
        let mut metadata = Metadata::new();
        metadata
            .insert(AUTHORIZATION, &format!("Bearer {}", token.value()))
            .map_err(|e| Status::internal(format!("the token is not a metadata value: {e}")))?;
        Ok(metadata)
    }
}

impl<C: CallCredentials> CallCredentials for Arc<C> {
    fn metadata(&self, call: &CallInfo) -> impl Future<Output = Result<Metadata, Status>> + Send {
        (**self).metadata(call)
    }

    fn requires_transport_security(&self) -> bool {
        (**self).requires_transport_security()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::call::CallKind;
    use crate::status::Code;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Hands out `t1`, `t2`, … each valid for `lifetime`, after `delay`; fails while `fail`.
    struct Counting {
        fetched: AtomicUsize,
        lifetime: Duration,
        delay: Duration,
        fail: bool,
    }

    impl TokenSource for Counting {
        async fn fetch(&self) -> Result<Token, Status> {
            tokio::time::sleep(self.delay).await;
            let n = self.fetched.fetch_add(1, Ordering::SeqCst) + 1;
            if self.fail {
                return Err(Status::unauthenticated("identity service said no"));
            }
            Ok(Token::valid_for(format!("t{n}"), self.lifetime))
        }
    }

    fn cache(lifetime: Duration, fail: bool) -> Arc<CachedToken<Counting>> {
        let source = Counting {
            fetched: AtomicUsize::new(0),
            lifetime,
            delay: Duration::from_millis(50),
            fail,
        };
        Arc::new(CachedToken::new(source, Duration::from_secs(10)))
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_fetch_then_refresh_near_expiry() {
        let cache = cache(Duration::from_secs(60), false);
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let cache = cache.clone();
            tasks.push(tokio::spawn(async move { cache.token().await }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().unwrap().value(), "t1");
        }
        assert_eq!(cache.source().fetched.load(Ordering::SeqCst), 1);
        // 45 s later the token has 15 s left, more than the 10 s margin: still cached.
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(cache.token().await.unwrap().value(), "t1");
        // At 51 s it has 9 s left: one refresh.
        tokio::time::advance(Duration::from_secs(6)).await;
        assert_eq!(cache.token().await.unwrap().value(), "t2");
        assert_eq!(cache.source().fetched.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_still_valid_token_is_used_while_a_refresh_runs() {
        let cache = cache(Duration::from_secs(60), false);
        assert_eq!(cache.token().await.unwrap().value(), "t1");
        // 51 s on: 9 s left, inside the 10 s margin, still valid.
        tokio::time::advance(Duration::from_secs(51)).await;
        let refresher = {
            let cache = cache.clone();
            tokio::spawn(async move { cache.token().await })
        };
        // Let the refresher take the fetch lock and start its 50 ms fetch.
        while cache.fetching.try_lock().is_ok() {
            tokio::task::yield_now().await;
        }
        assert_eq!(cache.token().await.unwrap().value(), "t1");
        assert_eq!(refresher.await.unwrap().unwrap().value(), "t2");
        assert_eq!(cache.token().await.unwrap().value(), "t2");
        assert_eq!(cache.source().fetched.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_share_a_failed_fetch() {
        let cache = cache(Duration::from_secs(60), true);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let cache = cache.clone();
            tasks.push(tokio::spawn(async move { cache.token().await }));
        }
        for task in tasks {
            let err = task.await.unwrap().unwrap_err();
            assert_eq!(err.message(), "identity service said no");
        }
        assert_eq!(cache.source().fetched.load(Ordering::SeqCst), 1);
        // A later call tries again.
        assert!(cache.token().await.is_err());
        assert_eq!(cache.source().fetched.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn interceptor_refuses_plaintext_and_maps_failures_to_unavailable() {
        let info = CallInfo::client(CallKind::Unary, "/a/b", None, false);
        let plain = CredentialsInterceptor(cache(Duration::from_secs(60), false));
        let mut md = Metadata::new();
        let err = plain.on_start(&info, &mut md).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert_eq!(plain.0.source().fetched.load(Ordering::SeqCst), 0);

        let allowed = info.clone().with_plaintext_credentials(true);
        plain.on_start(&allowed, &mut md).await.unwrap();
        assert_eq!(md.get_all(AUTHORIZATION), ["Bearer t1"]);
        // A request's own authorization entry wins.
        let mut own = Metadata::new();
        own.insert(AUTHORIZATION, "Bearer mine").unwrap();
        plain.on_start(&allowed, &mut own).await.unwrap();
        assert_eq!(own.get_all(AUTHORIZATION), ["Bearer mine"]);

        let secure = CallInfo::client(CallKind::Unary, "/a/b", None, true);
        let failing = CredentialsInterceptor(cache(Duration::from_secs(60), true));
        let err = failing
            .on_start(&secure, &mut Metadata::new())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable);
        assert!(err.message().contains("identity service said no"), "{err}");
    }
}

//! Retrying failed calls with exponential back-off: [`RetryPolicy`], set on a channel with
//! `ChannelBuilder::retry` or `Channel::with_retry` (gRFC A6's rules and knob names; the
//! article's `multiplier`/`min`/`max`/`stop` map onto them, see `docs/retry.md`).
//!
//! ```text
//!   attempt 1 ──fail──▶ wait d0 ──▶ attempt 2 ──fail──▶ wait d1 ──▶ … attempt `max_attempts` ──▶ give up
//!
//!   dn = clamp(initial_backoff × backoff_multiplier^n × (1 ± jitter), min_backoff, max_backoff)
//!                                                                          n = 0, 1, 2, …
//!   e.g. initial 100 ms, multiplier 2, min 50 ms, max 1 s, jitter 0.2:  d0 ≈ 80–120 ms,
//!        d1 ≈ 160–240 ms, d2 ≈ 320–480 ms, d3 ≈ 640–960 ms, d4 ≥ 800 ms and ≤ 1 s
//! ```
//!
//! A failed attempt is retried only when all of these hold (gRFC A6 § Retry Policy):
//!
//! | rule | why |
//! |---|---|
//! | its code is one the policy names (default: UNAVAILABLE only) | other codes say the request itself is wrong, or that the server may have acted on it |
//! | no response HEADERS arrived (a trailers-only answer is fine), so no response message either | from the first response HEADERS the call is *committed*: the server has started answering, and a caller may already have seen part of it |
//! | fewer than `max_attempts` attempts were made | bounds the extra load a struggling server gets |
//! | the back-off ends before the call's deadline | the deadline covers the whole call, every attempt and every wait; when it would pass, the caller gets the last attempt's status at once |
//! | the trailers carry no `grpc-retry-pushback-ms`, or a valid one | the server's word wins: a non-negative integer replaces the back-off for this wait (and the exponent starts again at 0); a negative or malformed value means "do not retry" |
//! | the request can be sent again | see below |
//!
//! Which requests can be sent again:
//! - unary and server-streaming: always; the single request message is kept encoded (one
//!   `Bytes`, so a replay copies nothing);
//! - client-streaming: only while every message pulled from the caller's stream is still held,
//!   which needs [`RetryPolicy::buffer_client_stream`] with a byte bound. Without it, a failure
//!   after the first request message left the caller's stream is final; with it, the buffered
//!   messages are sent again before the stream is read further, and a stream that outgrows the
//!   bound stops being retryable (the buffer is dropped);
//! - bidi: only while the stream is being opened. Once `Channel::bidi` has returned, the caller
//!   drives both halves and the call is committed.
//!
//! Interceptors see the call once, around all its attempts: one `on_start`, each request
//! message once, one `on_end` with the final status, and an elapsed time that includes the
//! waits.
//!
//! Where it differs from gRFC A6's back-off: A6 waits `random(0, min(initialBackoff ×
//! backoffMultiplier^(n−1), maxBackoff))` (n from 1); here the jitter is `× (1 ± jitter)`
//! around the grown value, as in connection-backoff.md, and `min_backoff` (the article's
//! floor, default 0) has no A6 counterpart.
//!
//! What it does not do: hedging, a retry budget shared across calls (gRFC A6 "retry
//! throttling"), per-method policies from a service config. A channel without a policy makes
//! one attempt per call, as before. `grpc-previous-rpc-attempts` is not sent.
//!
//! Links: gRFC A6 <https://github.com/grpc/proposal/blob/master/A6-client-retries.md>,
//! statuscodes.md <https://github.com/grpc/grpc/blob/master/doc/statuscodes.md>.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::headers::GRPC_RETRY_PUSHBACK_MS;
use crate::status::{Code, Status};

/// When and how often a channel sends a failed call again. The knobs are gRFC A6's
/// `retryPolicy` fields (`initial_backoff`, `backoff_multiplier`, `max_backoff`,
/// `max_attempts`), plus `min_backoff`, the floor of the article's retry interceptor.
///
/// ```
/// use std::time::Duration;
/// use bare_grpc::client::RetryPolicy;
/// use bare_grpc::Code;
///
/// let policy = RetryPolicy::new()
///     .initial_backoff(Duration::from_millis(500))
///     .backoff_multiplier(2.0)
///     .min_backoff(Duration::from_millis(500))
///     .max_backoff(Duration::from_secs(3))
///     .max_attempts(5)
///     .retry_on([Code::Unavailable, Code::ResourceExhausted]);
/// assert_eq!(policy.base_delay(0), Duration::from_millis(500));
/// assert_eq!(policy.base_delay(1), Duration::from_secs(1));
/// assert_eq!(policy.base_delay(3), Duration::from_secs(3)); // 4 s, capped
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The back-off before the first retry, before jitter and clamp (the article's
    /// `multiplier`).
    initial_backoff: Duration,
    /// The factor each further retry's back-off grows by; finite and at least 1.
    backoff_multiplier: f64,
    /// The floor of every back-off (the article's `min`; 0, as in gRPC, by default).
    min_backoff: Duration,
    /// The cap of every back-off (the article's `max`).
    max_backoff: Duration,
    /// Attempts in all, the first included; at least 1 (the article's `stop`).
    max_attempts: u32,
    /// The ± spread of each back-off, in `0.0..=1.0`.
    jitter: f64,
    /// The codes worth a retry.
    codes: Vec<Code>,
    /// The client-stream replay buffer's byte bound, when buffering is on.
    buffer_limit: Option<usize>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            backoff_multiplier: 2.0,
            min_backoff: Duration::ZERO,
            max_backoff: Duration::from_secs(1),
            max_attempts: 3,
            jitter: 0.2,
            codes: vec![Code::Unavailable],
            buffer_limit: None,
        }
    }
}

impl RetryPolicy {
    /// The defaults: initial back-off 100 ms, multiplier 2, min 0, max 1 s, 3 attempts,
    /// jitter ±20 %, UNAVAILABLE only, no client-stream buffering.
    pub fn new() -> RetryPolicy {
        RetryPolicy::default()
    }

    /// The back-off before the first retry; retry `n` (from 0) waits
    /// `initial_backoff × backoff_multiplier^n`, then jittered and clamped.
    pub fn initial_backoff(mut self, initial: Duration) -> Self {
        self.initial_backoff = initial;
        self
    }

    /// How much each back-off grows over the one before (default 2). gRFC A6 allows any
    /// positive factor; below 1 the waits would shrink while a server keeps failing, so
    /// values under 1 are taken as 1 (a constant back-off). NaN and infinities are ignored
    /// (the factor stays as it was).
    pub fn backoff_multiplier(mut self, multiplier: f64) -> Self {
        if multiplier.is_finite() {
            self.backoff_multiplier = multiplier.max(1.0);
        }
        self
    }

    /// The shortest back-off (default 0: none, as in gRPC). It bounds the jittered wait from
    /// below, and when it exceeds [`RetryPolicy::max_backoff`], it wins (as in the article's
    /// `max(min, min(result, max))`).
    pub fn min_backoff(mut self, min: Duration) -> Self {
        self.min_backoff = min;
        self
    }

    /// The longest back-off.
    pub fn max_backoff(mut self, max: Duration) -> Self {
        self.max_backoff = max;
        self
    }

    /// How many attempts in all, the first included (0 is taken as 1: no retry).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The jitter: each back-off is scaled by a random factor in `[1 - jitter, 1 + jitter]`
    /// before the clamp, so clients that failed together do not retry together. Clamped to
    /// `0.0..=1.0`; 0 turns it off.
    pub fn jitter(mut self, jitter: f64) -> Self {
        self.jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }

    /// The codes worth a retry (replacing the default, UNAVAILABLE). OK is ignored.
    pub fn retry_on(mut self, codes: impl IntoIterator<Item = Code>) -> Self {
        self.codes = codes.into_iter().filter(|c| *c != Code::Ok).collect();
        self
    }

    /// Keeps up to `limit` bytes of a client-streaming call's request messages so the call can
    /// be retried after they were sent (see the module doc).
    pub fn buffer_client_stream(mut self, limit: usize) -> Self {
        self.buffer_limit = Some(limit);
        self
    }

    /// The number of attempts in all, as set by [`RetryPolicy::max_attempts`].
    pub fn attempt_limit(&self) -> u32 {
        self.max_attempts
    }

    /// The client-stream buffer bound, if buffering is on.
    pub fn buffer_limit(&self) -> Option<usize> {
        self.buffer_limit
    }

    /// Does the policy retry `code`?
    pub fn retries(&self, code: Code) -> bool {
        self.codes.contains(&code)
    }

    /// The back-off before retry `n` without jitter:
    /// `clamp(initial_backoff × backoff_multiplier^n, min_backoff, max_backoff)`.
    pub fn base_delay(&self, n: u32) -> Duration {
        self.clamp(self.grown(n))
    }

    /// The range a jittered back-off before retry `n` falls in.
    pub fn delay_bounds(&self, n: u32) -> (Duration, Duration) {
        let grown = self.grown(n);
        (
            self.clamp(grown * (1.0 - self.jitter)),
            self.clamp(grown * (1.0 + self.jitter)),
        )
    }

    /// `initial_backoff × backoff_multiplier^n` in seconds, before jitter and clamp. The
    /// exponent stops at 1023 (the cap is reached long before); a factor above 2 may still
    /// overflow to ∞, which the clamp turns into `max_backoff`.
    fn grown(&self, n: u32) -> f64 {
        self.initial_backoff.as_secs_f64() * self.backoff_multiplier.powi(n.min(1023) as i32)
    }

    /// `max(min_backoff, min(seconds, max_backoff))` as a duration; saturates instead of
    /// overflowing. A NaN can only come from 0 × ∞ (a zero initial back-off, or a full
    /// jitter's factor 0, times a growth that overflowed), whose limit is 0.
    fn clamp(&self, seconds: f64) -> Duration {
        let seconds = if seconds.is_nan() { 0.0 } else { seconds };
        let capped = seconds.min(self.max_backoff.as_secs_f64());
        let floored = capped.max(self.min_backoff.as_secs_f64()).max(0.0);
        Duration::try_from_secs_f64(floored).unwrap_or(Duration::MAX)
    }
}

/// What a server's `grpc-retry-pushback-ms` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pushback {
    /// No such trailer: the policy's back-off applies.
    Absent,
    /// Wait exactly this long.
    Wait(Duration),
    /// Negative, malformed or repeated: do not retry.
    Stop,
}

/// Reads `grpc-retry-pushback-ms` from a status's metadata (the trailers it came with).
/// gRFC A6: "If the value for pushback is negative or unparseable, then it will be seen as
/// the server asking the client not to retry at all."
pub(crate) fn pushback(status: &Status) -> Pushback {
    let values = status
        .metadata()
        .get_all_raw(GRPC_RETRY_PUSHBACK_MS.as_str())
        .collect::<Vec<_>>();
    match values.as_slice() {
        [] => Pushback::Absent,
        [value] => {
            let bytes = value.as_bytes();
            let digits = !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit);
            match std::str::from_utf8(bytes).ok().filter(|_| digits) {
                Some(text) => text.parse::<u64>().map_or(Pushback::Stop, |ms| {
                    Pushback::Wait(Duration::from_millis(ms))
                }),
                None => Pushback::Stop,
            }
        }
        _ => Pushback::Stop,
    }
}

/// One call's retry bookkeeping.
#[derive(Debug)]
pub(crate) struct Retrier {
    policy: Arc<RetryPolicy>,
    /// Attempts made so far.
    attempts: u32,
    /// The exponent of the next back-off (reset by a pushback).
    n: u32,
    /// xorshift64 state for the jitter; never zero.
    rng: u64,
}

impl Retrier {
    /// Bookkeeping for a call whose first attempt is about to start.
    pub(crate) fn new(policy: Arc<RetryPolicy>) -> Retrier {
        // Distinct seeds for calls started in the same clock tick.
        static CALLS: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let call = CALLS.fetch_add(1, Ordering::Relaxed);
        let seed = nanos ^ call.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Retrier {
            policy,
            attempts: 1,
            n: 0,
            rng: seed | 1,
        }
    }

    /// The policy.
    pub(crate) fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// After a failed attempt: how long to wait before the next one, or `None` when the
    /// failure is final (see the table in the module doc).
    pub(crate) fn after_failure(
        &mut self,
        status: &Status,
        committed: bool,
        deadline: Option<Instant>,
    ) -> Option<Duration> {
        if committed
            || self.attempts >= self.policy.max_attempts
            || !self.policy.retries(status.code())
        {
            return None;
        }
        let delay = match pushback(status) {
            Pushback::Stop => return None,
            Pushback::Wait(delay) => {
                self.n = 0;
                delay
            }
            Pushback::Absent => {
                let delay = self.jittered(self.n);
                self.n = self.n.saturating_add(1);
                delay
            }
        };
        if deadline.is_some_and(|deadline| Instant::now() + delay >= deadline) {
            return None;
        }
        self.attempts += 1;
        Some(delay)
    }

    /// The back-off before retry `n`, jittered, then clamped.
    fn jittered(&mut self, n: u32) -> Duration {
        let spread = (self.uniform() * 2.0 - 1.0) * self.policy.jitter;
        self.policy.clamp(self.policy.grown(n) * (1.0 + spread))
    }

    /// A number in [0, 1) from xorshift64 (spreading retries, not cryptography).
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn unavailable_with_pushback(value: Option<&str>) -> Status {
        let mut status = Status::unavailable("try later");
        if let Some(value) = value {
            status
                .metadata_mut()
                .insert("grpc-retry-pushback-ms", value)
                .unwrap();
        }
        status
    }

    #[test]
    fn base_delay_follows_the_article_formula() {
        // The article's max(min, min(multiplier * 2^n, max)) with its 0.5 s / 0.5 s / 3 s,
        // here initial_backoff / min_backoff / max_backoff and the default multiplier 2.
        let policy = RetryPolicy::new()
            .initial_backoff(ms(500))
            .min_backoff(ms(500))
            .max_backoff(ms(3000));
        let want = [500, 1000, 2000, 3000, 3000];
        for (n, want) in want.into_iter().enumerate() {
            assert_eq!(policy.base_delay(n as u32), ms(want), "n = {n}");
        }
        // min_backoff wins over max_backoff, as min over max in the formula.
        let odd = RetryPolicy::new().min_backoff(ms(200)).max_backoff(ms(100));
        assert_eq!(odd.base_delay(0), ms(200));
        // Huge exponents saturate at max instead of overflowing.
        assert_eq!(policy.base_delay(u32::MAX), ms(3000));
    }

    #[test]
    fn backoff_multiplier_sets_the_growth() {
        let grows = |multiplier: f64| {
            let policy = RetryPolicy::new()
                .initial_backoff(ms(100))
                .max_backoff(ms(10_000))
                .backoff_multiplier(multiplier);
            (0..4).map(|n| policy.base_delay(n)).collect::<Vec<_>>()
        };
        assert_eq!(grows(3.0), [ms(100), ms(300), ms(900), ms(2700)]);
        assert_eq!(
            grows(1.5),
            [ms(100), ms(150), ms(225), Duration::from_micros(337_500)]
        );
        // 1 is a constant back-off; below 1 is taken as 1; NaN and ∞ leave the default 2.
        assert_eq!(grows(1.0), [ms(100); 4]);
        assert_eq!(grows(0.5), [ms(100); 4]);
        assert_eq!(grows(f64::NAN), [ms(100), ms(200), ms(400), ms(800)]);
        assert_eq!(grows(f64::INFINITY), [ms(100), ms(200), ms(400), ms(800)]);
        // A factor that overflows to ∞ caps at max_backoff; a zero initial back-off stays 0.
        let steep = RetryPolicy::new().backoff_multiplier(1e300).jitter(1.0);
        assert_eq!(steep.base_delay(5), Duration::from_secs(1));
        assert_eq!(
            steep.delay_bounds(5),
            (Duration::ZERO, Duration::from_secs(1))
        );
        let zero = steep.initial_backoff(Duration::ZERO);
        assert_eq!(zero.delay_bounds(5), (Duration::ZERO, Duration::ZERO));
    }

    #[test]
    fn jittered_delays_stay_in_bounds_and_vary() {
        let policy = Arc::new(
            RetryPolicy::new()
                .initial_backoff(ms(100))
                .min_backoff(ms(90))
                .max_backoff(ms(700))
                .jitter(0.5),
        );
        let mut retrier = Retrier::new(policy.clone());
        let mut seen = Vec::new();
        for round in 0..200u32 {
            let n = round % 5;
            let delay = retrier.jittered(n);
            let (low, high) = policy.delay_bounds(n);
            assert!(
                low <= delay && delay <= high,
                "n={n}: {delay:?} not in {low:?}..{high:?}"
            );
            assert!(ms(90) <= delay && delay <= ms(700));
            seen.push(delay);
        }
        seen.sort();
        seen.dedup();
        assert!(seen.len() > 50, "jitter must vary the delays");
    }

    #[test]
    fn pushback_values() {
        let rows: &[(Option<&str>, Pushback)] = &[
            (None, Pushback::Absent),
            (Some("0"), Pushback::Wait(ms(0))),
            (Some("250"), Pushback::Wait(ms(250))),
            (Some("-1"), Pushback::Stop),
            (Some("abc"), Pushback::Stop),
            (Some("1.5"), Pushback::Stop),
            (Some(" 5"), Pushback::Stop),
            (Some("99999999999999999999999"), Pushback::Stop),
        ];
        for (value, want) in rows {
            assert_eq!(
                pushback(&unavailable_with_pushback(*value)),
                *want,
                "{value:?}"
            );
        }
        let mut twice = unavailable_with_pushback(Some("5"));
        twice
            .metadata_mut()
            .append("grpc-retry-pushback-ms", "6")
            .unwrap();
        assert_eq!(pushback(&twice), Pushback::Stop);
    }

    #[test]
    fn decisions() {
        let policy = Arc::new(
            RetryPolicy::new()
                .max_attempts(3)
                .jitter(0.0)
                .initial_backoff(ms(10)),
        );
        let unavailable = Status::unavailable("down");
        // Retries the named code until `max_attempts` attempts were made.
        let mut retrier = Retrier::new(policy.clone());
        assert_eq!(
            retrier.after_failure(&unavailable, false, None),
            Some(ms(10))
        );
        assert_eq!(
            retrier.after_failure(&unavailable, false, None),
            Some(ms(20))
        );
        assert_eq!(retrier.after_failure(&unavailable, false, None), None);
        // Other codes, committed calls: never.
        let mut retrier = Retrier::new(policy.clone());
        assert_eq!(
            retrier.after_failure(&Status::not_found("x"), false, None),
            None
        );
        assert_eq!(retrier.after_failure(&unavailable, true, None), None);
        // A pushback replaces the back-off and restarts the exponent; a bad one stops.
        let mut retrier = Retrier::new(policy.clone());
        assert_eq!(
            retrier.after_failure(&unavailable, false, None),
            Some(ms(10))
        );
        let pushed = unavailable_with_pushback(Some("70"));
        assert_eq!(retrier.after_failure(&pushed, false, None), Some(ms(70)));
        let mut retrier = Retrier::new(policy.clone());
        let refused = unavailable_with_pushback(Some("-5"));
        assert_eq!(retrier.after_failure(&refused, false, None), None);
        // A wait that would reach the deadline is not started.
        let mut retrier = Retrier::new(policy.clone());
        let soon = Instant::now() + ms(5);
        assert_eq!(retrier.after_failure(&unavailable, false, Some(soon)), None);
        let later = Instant::now() + ms(5000);
        assert!(
            retrier
                .after_failure(&unavailable, false, Some(later))
                .is_some()
        );
    }

    #[test]
    fn builder_edges() {
        let policy = RetryPolicy::new()
            .max_attempts(0)
            .jitter(f64::NAN)
            .retry_on([Code::Ok, Code::Aborted]);
        assert_eq!(policy.attempt_limit(), 1);
        assert_eq!(policy.delay_bounds(0).0, policy.delay_bounds(0).1);
        assert!(policy.retries(Code::Aborted));
        assert!(!policy.retries(Code::Ok));
        assert!(!policy.retries(Code::Unavailable));
        assert_eq!(
            RetryPolicy::new().jitter(7.0).delay_bounds(0).0,
            Duration::ZERO
        );
    }
}

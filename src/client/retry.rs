//! Retrying failed calls with exponential back-off: [`RetryPolicy`], set on a channel with
//! `ChannelBuilder::retry` or `Channel::with_retry` (gRFC A6's rules, the article's knobs).
//!
//! ```text
//!   attempt 1 ──fail──▶ wait d0 ──▶ attempt 2 ──fail──▶ wait d1 ──▶ … attempt `stop` ──▶ give up
//!
//!   dn = clamp(multiplier × 2ⁿ × (1 ± jitter), min, max)        n = 0, 1, 2, …
//!   e.g. multiplier 100 ms, min 50 ms, max 1 s, jitter 0.2:  d0 ≈ 80–120 ms, d1 ≈ 160–240 ms,
//!        d2 ≈ 320–480 ms, d3 ≈ 640–960 ms, d4 ≥ 800 ms and ≤ 1 s
//! ```
//!
//! A failed attempt is retried only when all of these hold (gRFC A6 § Retry Policy):
//!
//! | rule | why |
//! |---|---|
//! | its code is one the policy names (default: UNAVAILABLE only) | other codes say the request itself is wrong, or that the server may have acted on it |
//! | no response HEADERS arrived (a trailers-only answer is fine), so no response message either | from the first response HEADERS the call is *committed*: the server has started answering, and a caller may already have seen part of it |
//! | fewer than `stop` attempts were made | bounds the extra load a struggling server gets |
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

/// When and how often a channel sends a failed call again. Built like the article's retry
/// interceptor: `multiplier`, `min`, `max` bound the back-off, `stop` is the number of attempts.
///
/// ```
/// use std::time::Duration;
/// use bare_grpc::client::RetryPolicy;
/// use bare_grpc::Code;
///
/// let policy = RetryPolicy::new()
///     .multiplier(Duration::from_millis(500))
///     .min(Duration::from_millis(500))
///     .max(Duration::from_secs(3))
///     .stop(5)
///     .retry_on([Code::Unavailable, Code::ResourceExhausted]);
/// assert_eq!(policy.base_delay(0), Duration::from_millis(500));
/// assert_eq!(policy.base_delay(1), Duration::from_secs(1));
/// assert_eq!(policy.base_delay(3), Duration::from_secs(3)); // 4 s, capped
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    multiplier: Duration,
    min: Duration,
    max: Duration,
    stop: u32,
    jitter: f64,
    codes: Vec<Code>,
    buffer_limit: Option<usize>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            multiplier: Duration::from_millis(100),
            min: Duration::ZERO,
            max: Duration::from_secs(1),
            stop: 3,
            jitter: 0.2,
            codes: vec![Code::Unavailable],
            buffer_limit: None,
        }
    }
}

impl RetryPolicy {
    /// The defaults: multiplier 100 ms, min 0, max 1 s, 3 attempts, jitter ±20 %, UNAVAILABLE
    /// only, no client-stream buffering.
    pub fn new() -> RetryPolicy {
        RetryPolicy::default()
    }

    /// The back-off before retry `n` (from 0) is `multiplier × 2ⁿ`, then jittered and clamped.
    pub fn multiplier(mut self, multiplier: Duration) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The shortest back-off. When it exceeds [`RetryPolicy::max`], it wins (as in the
    /// article's `max(min, min(result, max))`).
    pub fn min(mut self, min: Duration) -> Self {
        self.min = min;
        self
    }

    /// The longest back-off.
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// How many attempts in all, the first included (0 is taken as 1: no retry).
    pub fn stop(mut self, attempts: u32) -> Self {
        self.stop = attempts.max(1);
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

    /// The number of attempts ([`RetryPolicy::stop`]).
    pub fn attempts(&self) -> u32 {
        self.stop
    }

    /// The client-stream buffer bound, if buffering is on.
    pub fn buffer_limit(&self) -> Option<usize> {
        self.buffer_limit
    }

    /// Does the policy retry `code`?
    pub fn retries(&self, code: Code) -> bool {
        self.codes.contains(&code)
    }

    /// The back-off before retry `n` without jitter: `clamp(multiplier × 2ⁿ, min, max)`.
    pub fn base_delay(&self, n: u32) -> Duration {
        let grown = self.multiplier.as_secs_f64() * 2f64.powi(n.min(1023) as i32);
        self.clamp(grown)
    }

    /// The range a jittered back-off before retry `n` falls in.
    pub fn delay_bounds(&self, n: u32) -> (Duration, Duration) {
        let grown = self.multiplier.as_secs_f64() * 2f64.powi(n.min(1023) as i32);
        (
            self.clamp(grown * (1.0 - self.jitter)),
            self.clamp(grown * (1.0 + self.jitter)),
        )
    }

    /// `max(min, min(seconds, max))` as a duration; saturates instead of overflowing.
    fn clamp(&self, seconds: f64) -> Duration {
        let capped = seconds.min(self.max.as_secs_f64());
        let floored = capped.max(self.min.as_secs_f64()).max(0.0);
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
        if committed || self.attempts >= self.policy.stop || !self.policy.retries(status.code()) {
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
        let grown = self.policy.multiplier.as_secs_f64() * 2f64.powi(n.min(1023) as i32);
        self.policy.clamp(grown * (1.0 + spread))
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
        // max(min, min(multiplier * 2^n, max)) with the article's 0.5 s / 0.5 s / 3 s.
        let policy = RetryPolicy::new()
            .multiplier(ms(500))
            .min(ms(500))
            .max(ms(3000));
        let want = [500, 1000, 2000, 3000, 3000];
        for (n, want) in want.into_iter().enumerate() {
            assert_eq!(policy.base_delay(n as u32), ms(want), "n = {n}");
        }
        // min wins over max, as in the formula.
        let odd = RetryPolicy::new().min(ms(200)).max(ms(100));
        assert_eq!(odd.base_delay(0), ms(200));
        // Huge exponents saturate at max instead of overflowing.
        assert_eq!(policy.base_delay(u32::MAX), ms(3000));
    }

    #[test]
    fn jittered_delays_stay_in_bounds_and_vary() {
        let policy = Arc::new(
            RetryPolicy::new()
                .multiplier(ms(100))
                .min(ms(90))
                .max(ms(700))
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
        let policy = Arc::new(RetryPolicy::new().stop(3).jitter(0.0).multiplier(ms(10)));
        let unavailable = Status::unavailable("down");
        // Retries the named code until `stop` attempts were made.
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
            .stop(0)
            .jitter(f64::NAN)
            .retry_on([Code::Ok, Code::Aborted]);
        assert_eq!(policy.attempts(), 1);
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

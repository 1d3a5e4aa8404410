//! The `grpc-timeout` request header (PROTOCOL-HTTP2 § Requests).
//!
//! ```text
//!   Timeout      -> "grpc-timeout" TimeoutValue TimeoutUnit
//!   TimeoutValue -> {positive integer as ASCII string of at most 8 digits}
//!   TimeoutUnit  -> Hour / Minute / Second / Millisecond / Microsecond / Nanosecond
//!                   "H"    "M"      "S"      "m"           "u"           "n"
//!
//!   grpc-timeout: 1500m          grpc-timeout: 99999999H
//!                 ^^^^ ^                       ^^^^^^^^ ^
//!                 value unit                   largest: ~11 400 years
//! ```
//!
//! The client turns its deadline into a relative timeout, since the two
//! clocks are not shared; the server starts its timer on receipt, and "If
//! Timeout is omitted a server should assume an infinite timeout".
//!
//! Why shaped this way: two pure functions, no type. A `Duration` is already
//! the value; the deadline (`Instant`) belongs to the caller, who knows when
//! the HEADERS arrived. [`encode_timeout`] rounds *up* to the chosen unit, so
//! a peer never cuts a call short because of our rounding, and picks the most
//! precise unit whose value fits in 8 digits.
//!
//! What it rejects (all INTERNAL, as grpc-go answers a malformed
//! `grpc-timeout`): an empty value, no digits, more than 8 digits, a sign,
//! spaces, any non-digit before the unit, and a missing or unknown unit
//! (unit letters are case-sensitive: `m` is milli, `M` is minutes). It
//! accepts a value of 0 ("positive" in the grammar, but grpc-go and grpcio
//! accept it too) as an already-expired deadline rather than failing the
//! call with a different code than the one the client expects.
//!
//! Spec: <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>

use std::time::Duration;

use crate::status::Status;

/// "at most 8 digits".
const MAX_DIGITS: usize = 8;

/// The largest TimeoutValue: 8 nines.
const MAX_VALUE: u64 = 99_999_999;

/// Each unit with its length in nanoseconds, most precise first; the order
/// [`encode_timeout`] tries them in.
const UNITS: [(u8, u64); 6] = [
    (b'n', 1),
    (b'u', 1_000),
    (b'm', 1_000_000),
    (b'S', 1_000_000_000),
    (b'M', 60 * 1_000_000_000),
    (b'H', 3_600 * 1_000_000_000),
];

/// grpc-timeout: 1-8 ASCII digits then one of H M S m u n. Invalid -> Status INTERNAL.
pub(crate) fn decode_timeout(value: &[u8]) -> Result<Duration, Status> {
    let malformed = |why: &str| {
        Status::internal(format!(
            "malformed grpc-timeout {:?}: {why}",
            String::from_utf8_lossy(value)
        ))
    };
    let Some((&unit, digits)) = value.split_last() else {
        return Err(malformed("empty value"));
    };
    let Some(&(_, unit_nanos)) = UNITS.iter().find(|u| u.0 == unit) else {
        return Err(malformed("the last character must be a unit: H M S m u n"));
    };
    if digits.is_empty() {
        return Err(malformed("no digits before the unit"));
    }
    if digits.len() > MAX_DIGITS {
        return Err(malformed("more than 8 digits"));
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return Err(malformed("the value must be ASCII digits only"));
    }
    let n = digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    // 99_999_999 H is 3.6e20 ns: past u64 nanoseconds, so split into whole
    // seconds and the sub-second rest instead of multiplying out.
    let secs = n.saturating_mul(unit_nanos / 1_000_000_000);
    let sub = if unit_nanos < 1_000_000_000 {
        Duration::from_nanos(n * unit_nanos)
    } else {
        Duration::ZERO
    };
    Ok(Duration::from_secs(secs).saturating_add(sub))
}

/// The most precise unit whose value fits in 8 digits.
///
/// The value is rounded up to whole units; a timeout past 99999999 hours is
/// sent as `99999999H`, the largest the grammar can say.
pub(crate) fn encode_timeout(timeout: Duration) -> String {
    let nanos = timeout.as_nanos();
    for (unit, unit_nanos) in UNITS {
        let value = nanos.div_ceil(u128::from(unit_nanos));
        if value <= u128::from(MAX_VALUE) {
            return format!("{value}{}", char::from(unit));
        }
    }
    format!("{MAX_VALUE}H")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;

    /// One row per unit and per edge of TimeoutValue.
    #[test]
    fn decode_valid() {
        let rows: &[(&str, Duration)] = &[
            ("1n", Duration::from_nanos(1)),
            ("1u", Duration::from_micros(1)),
            ("1m", Duration::from_millis(1)),
            ("1S", Duration::from_secs(1)),
            ("1M", Duration::from_secs(60)),
            ("1H", Duration::from_secs(3600)),
            ("1500m", Duration::from_millis(1500)),
            // 8 digits is the maximum
            ("99999999n", Duration::from_nanos(99_999_999)),
            ("99999999u", Duration::from_micros(99_999_999)),
            ("99999999S", Duration::from_secs(99_999_999)),
            ("99999999M", Duration::from_secs(99_999_999 * 60)),
            // the largest value does not overflow
            ("99999999H", Duration::from_secs(99_999_999 * 3600)),
            // leading zeros count as digits but change nothing
            ("00000010S", Duration::from_secs(10)),
            // zero: an already-expired deadline
            ("0n", Duration::ZERO),
        ];
        for &(text, want) in rows {
            assert_eq!(decode_timeout(text.as_bytes()).ok(), Some(want), "{text:?}");
        }
    }

    /// Each row breaks one rule of the grammar and gets INTERNAL.
    #[test]
    fn decode_rejects() {
        let rows: &[(&str, &str)] = &[
            ("", "empty value"),
            ("S", "no digits"),
            ("100", "must be a unit"),
            ("10s", "must be a unit"),
            ("10h", "must be a unit"),
            ("10 S", "ASCII digits only"),
            (" 10S", "ASCII digits only"),
            ("10S ", "must be a unit"),
            ("-1S", "ASCII digits only"),
            ("+1S", "ASCII digits only"),
            ("1.5S", "ASCII digits only"),
            ("123456789n", "more than 8 digits"),
            ("\u{661}S", "ASCII digits only"),
        ];
        for &(text, why) in rows {
            let err = decode_timeout(text.as_bytes()).unwrap_err();
            assert_eq!(err.code(), Code::Internal, "{text:?}");
            assert!(err.message().contains(why), "{text:?}: {}", err.message());
            assert!(err.message().contains("grpc-timeout"), "{}", err.message());
        }
    }

    /// The most precise unit that fits, rounding up.
    #[test]
    fn encode_rows() {
        let rows: &[(Duration, &str)] = &[
            (Duration::ZERO, "0n"),
            (Duration::from_nanos(1), "1n"),
            (Duration::from_nanos(99_999_999), "99999999n"),
            // 100 ms is 9 digits in ns: microseconds
            (Duration::from_millis(100), "100000u"),
            (Duration::from_secs(1), "1000000u"),
            (Duration::from_secs(99), "99000000u"),
            (Duration::from_secs(100), "100000m"),
            // rounding up, never down
            (Duration::new(100, 1), "100001m"),
            (Duration::from_secs(99_999_999), "99999999S"),
            (Duration::from_secs(100_000_000), "1666667M"),
            (Duration::from_secs(99_999_999 * 60), "99999999M"),
            (Duration::from_secs(99_999_999 * 60 + 1), "1666667H"),
            (Duration::from_secs(99_999_999 * 3600), "99999999H"),
            // past what the grammar can express: saturate
            (Duration::MAX, "99999999H"),
        ];
        for &(timeout, want) in rows {
            assert_eq!(encode_timeout(timeout), want, "{timeout:?}");
        }
    }

    /// encode output always decodes, to a value never shorter than the input.
    #[test]
    fn encode_then_decode() {
        let mut d = Duration::from_nanos(1);
        while d < Duration::from_secs(99_999_999 * 3600) {
            let text = encode_timeout(d);
            let back = decode_timeout(text.as_bytes()).unwrap();
            assert!(back >= d, "{d:?} -> {text} -> {back:?}");
            d = d * 7 + Duration::from_nanos(3);
        }
    }

    use crate::test_rng::Rng;

    /// Property: across every magnitude the grammar can say, a timeout re-encodes to one that
    /// is never shorter and longer by less than one unit of the chosen precision: a unit is
    /// chosen only once the finer one needs 9 digits, so the value has at least 6 and the
    /// error is under a part in 10^5.
    #[test]
    fn property_timeouts_round_trip_within_precision() {
        let mut rng = Rng(11);
        for _ in 0..20_000 {
            let nanos = rng.next() >> rng.below(64);
            let d = Duration::from_nanos(nanos);
            let text = encode_timeout(d);
            let back = decode_timeout(text.as_bytes()).unwrap();
            if d <= Duration::from_secs(99_999_999 * 3600) {
                assert!(back >= d, "{d:?} -> {text} -> {back:?}");
                assert!(
                    back - d <= d / 100_000 + Duration::from_nanos(1),
                    "{d:?} -> {text} -> {back:?}"
                );
            }
        }
    }
}

//! Base64 for `-bin` metadata values and `grpc-status-details-bin`
//! (PROTOCOL-HTTP2 § Requests, RFC 4648 §4).
//!
//! The rule: "binary header values must be encoded using Base64 ...
//! Implementations MUST accept padded and un-padded values and should emit
//! un-padded values."
//!
//! ```text
//!   input bytes   0x66       0x6f       0x6f
//!                 01100110   01101111   01101111
//!   6-bit groups  011001 100110 111101 101111
//!   alphabet      Z      m      9      v          -> "Zm9v"
//!
//!   a 1-byte tail gives 2 chars ("Zg"), a 2-byte tail gives 3 ("Zm8");
//!   padded peers add "==" / "=" to reach a multiple of 4.
//! ```
//!
//! Why hand-written: the codec is forty lines, the standard alphabet is the
//! only one gRPC uses, and a crate would add a dependency for less than a
//! screenful of code that is tested byte by byte below.
//!
//! What it rejects: characters outside the standard alphabet (including the
//! URL-safe `-` and `_`, whitespace and line breaks), `=` anywhere but at the
//! end, padding that does not bring the length to a multiple of 4, and a
//! length that leaves a single dangling character (`len % 4 == 1`), which no
//! encoder can produce. It deliberately ignores non-zero bits left over in the
//! last character (as Go's non-strict decoder does), so it accepts a few
//! non-canonical spellings rather than failing a call over them.
//!
//! Spec: <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>

/// The standard alphabet, RFC 4648 Table 1: index -> character.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Marks a byte that is not in [`ALPHABET`] in [`DECODE_TABLE`].
const INVALID: u8 = 0xFF;

/// The reverse of [`ALPHABET`]: character -> 6-bit value, or [`INVALID`].
const DECODE_TABLE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < ALPHABET.len() {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Encodes `data` with the standard alphabet, without `=` padding.
pub(crate) fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let sextets = [
            b0 >> 2,
            (b0 & 0x03) << 4 | b1 >> 4,
            (b1 & 0x0F) << 2 | b2 >> 6,
            b2 & 0x3F,
        ];
        // n input bytes produce n + 1 output characters; the rest would be padding.
        for &s in &sextets[..chunk.len() + 1] {
            out.push(char::from(ALPHABET[usize::from(s)]));
        }
    }
    out
}

/// Decodes standard-alphabet base64, padded or unpadded. `None` when `text`
/// is not base64 (see the module doc for what is rejected).
pub(crate) fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let body = match text {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] => {
            // Padding is only legal when it completes a 4-character group.
            if text.len() % 4 != 0 {
                return None;
            }
            rest
        }
        _ => text,
    };
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() / 4 * 3 + 2);
    for group in body.chunks(4) {
        let mut acc: u32 = 0;
        for &c in group {
            let v = DECODE_TABLE[usize::from(c)];
            if v == INVALID {
                return None;
            }
            acc = acc << 6 | u32::from(v);
        }
        // Left-align the group's 6 * len bits in a 24-bit word.
        acc <<= 6 * (4 - group.len() as u32);
        let bytes = [(acc >> 16) as u8, (acc >> 8) as u8, acc as u8];
        // 4 chars -> 3 bytes, 3 chars -> 2 bytes, 2 chars -> 1 byte.
        out.extend_from_slice(&bytes[..group.len() - 1]);
    }
    Some(out)
}

/// Appends `data` to `out` with the standard alphabet and `=` padding to a multiple of 4
/// characters: gRPC-Web's text bodies are decoded in 4-character groups, so each chunk a server
/// flushes must end on one (PROTOCOL-WEB § Text-encoded (response) streams).
#[cfg(feature = "web")]
pub(crate) fn encode_padded_into(data: &[u8], out: &mut Vec<u8>) {
    out.reserve(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let sextets = [
            b0 >> 2,
            (b0 & 0x03) << 4 | b1 >> 4,
            (b1 & 0x0F) << 2 | b2 >> 6,
            b2 & 0x3F,
        ];
        for (i, &s) in sextets.iter().enumerate() {
            out.push(if i <= chunk.len() {
                ALPHABET[usize::from(s)]
            } else {
                b'='
            });
        }
    }
}

/// The 6-bit value of one standard-alphabet character, `None` for any other byte.
#[cfg(feature = "web")]
pub(crate) fn sextet(c: u8) -> Option<u8> {
    match DECODE_TABLE[usize::from(c)] {
        INVALID => None,
        v => Some(v),
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    /// RFC 4648 §10 test vectors, unpadded as gRPC emits them.
    const VECTORS: &[(&[u8], &str)] = &[
        (b"", ""),
        (b"f", "Zg"),
        (b"fo", "Zm8"),
        (b"foo", "Zm9v"),
        (b"foob", "Zm9vYg"),
        (b"fooba", "Zm9vYmE"),
        (b"foobar", "Zm9vYmFy"),
        // every 6-bit value, including the '+' and '/' of the standard alphabet
        (b"\xfb\xff\xbf", "+/+/"),
        (b"\x00\x00\x00", "AAAA"),
    ];

    /// "should emit un-padded values" (PROTOCOL-HTTP2 § Requests).
    #[test]
    fn encode_emits_unpadded() {
        for &(raw, text) in VECTORS {
            assert_eq!(encode(raw), text, "encode({raw:?})");
        }
    }

    /// "MUST accept padded and un-padded values" (PROTOCOL-HTTP2 § Requests).
    #[test]
    fn decode_accepts_padded_and_unpadded() {
        for &(raw, text) in VECTORS {
            assert_eq!(
                decode(text.as_bytes()).as_deref(),
                Some(raw),
                "unpadded {text:?}"
            );
            let padded = format!("{text}{}", "=".repeat((4 - text.len() % 4) % 4));
            assert_eq!(
                decode(padded.as_bytes()).as_deref(),
                Some(raw),
                "padded {padded:?}"
            );
        }
    }

    /// Each row: input that is not base64, and the rule it breaks.
    #[test]
    fn decode_rejects() {
        let rows: &[(&str, &str)] = &[
            ("Z", "a single dangling character encodes no byte"),
            ("Zm9vY", "len % 4 == 1 after a full group"),
            ("Zg=", "padding that does not complete a group"),
            ("Zg===", "three padding characters"),
            ("Z===", "padding after one character"),
            ("Zm=9", "padding in the middle"),
            ("=", "padding only"),
            ("Zm9v-_", "URL-safe alphabet is not the standard one"),
            ("Zm9v Yg", "whitespace inside"),
            ("Zm9v\n", "line break"),
            ("Zm9v\u{e9}", "non-ASCII byte"),
        ];
        for &(text, why) in rows {
            assert_eq!(decode(text.as_bytes()), None, "{text:?}: {why}");
        }
    }

    /// Leftover bits in the final character are ignored, not an error.
    #[test]
    fn decode_ignores_trailing_bits() {
        assert_eq!(decode(b"Zh").as_deref(), Some(&b"f"[..]));
        assert_eq!(decode(b"Zh==").as_deref(), Some(&b"f"[..]));
    }

    /// Every byte value and every tail length survives a round trip.
    #[test]
    fn round_trip_all_bytes() {
        let all: Vec<u8> = (0..=255).collect();
        for len in 0..all.len() {
            let text = encode(&all[..len]);
            assert!(!text.contains('='));
            assert_eq!(decode(text.as_bytes()).as_deref(), Some(&all[..len]));
        }
    }
}

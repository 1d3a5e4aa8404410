//! Message compression: `grpc-encoding` and `grpc-accept-encoding`
//! (PROTOCOL-HTTP2 § Requests, compression.md).
//!
//! ```text
//! Message-Encoding → "grpc-encoding" Content-Coding
//! Content-Coding → "identity" / "gzip" / "deflate" / "snappy" / {custom}
//! Message-Accept-Encoding → "grpc-accept-encoding" Content-Coding *("," Content-Coding)
//!
//!   prefix flag 0 ──> message bytes as sent
//!   prefix flag 1 ──> message bytes compressed with the call's grpc-encoding,
//!                     each message on its own (no context carried across messages)
//! ```
//!
//! One [`Encoding`] per call and direction: the sender names it in `grpc-encoding`
//! and sets the prefix flag on each message it actually compressed. The receiver
//! lists what it can decode in `grpc-accept-encoding`; a sender should only pick an
//! encoding listed there ([`Encoding::accepted_by`]).
//!
//! # Why it is shaped this way
//!
//! The set of encodings is a closed enum rather than a registry of trait objects:
//! the spec names a handful, peers use gzip, and a `match` shows the reader every
//! case. This module only names encodings and turns their errors into statuses;
//! the gzip container itself (RFC 1952, with its CRC-32) is `src/gzip.rs`, and
//! it costs a dependency (`miniz_oxide` for raw DEFLATE), so it sits behind the
//! `gzip` cargo feature (on by default); a build without it still parses the
//! header names and answers UNIMPLEMENTED instead of failing to compile.
//! [`decompress`] bounds its output *while* inflating: a few KiB of gzip can
//! claim gigabytes, and the receive limit must hold for the inflated size too.
//!
//! # What it rejects
//!
//! ```text
//!   input                                       -> outcome
//!   encoding not built in (deflate, snappy, ..) -> from_name gives None; the server
//!                                                  answers UNIMPLEMENTED
//!   Gzip in a build without the `gzip` feature  -> UNIMPLEMENTED
//!   inflated size > receive limit               -> RESOURCE_EXHAUSTED, mid-inflate
//!   corrupt gzip, trailing garbage, empty input -> INTERNAL
//! ```
//!
//! Not done here: deciding *whether* to compress (the call's sender decides) and
//! checking the prefix flag against the call's encoding ([`crate::codec`]).
//!
//! Spec: <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>,
//! <https://github.com/grpc/grpc/blob/master/doc/compression.md>

use bytes::{Bytes, BytesMut};

use crate::status::Status;

/// A message encoding this runtime can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// No compression; the prefix flag is always 0.
    Identity,
    /// gzip (RFC 1952); needs the `gzip` cargo feature to compress or decompress.
    Gzip,
}

impl Encoding {
    /// The encoding named by a `grpc-encoding` value; `None` when this build
    /// cannot decode it (the server then answers UNIMPLEMENTED). Content-codings
    /// are case-insensitive (RFC 9110 §8.4.1).
    pub(crate) fn from_name(name: &[u8]) -> Option<Encoding> {
        if name.eq_ignore_ascii_case(b"identity") {
            return Some(Encoding::Identity);
        }
        #[cfg(feature = "gzip")]
        if name.eq_ignore_ascii_case(b"gzip") {
            return Some(Encoding::Gzip);
        }
        None
    }

    /// The name used in `grpc-encoding` and `grpc-accept-encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
        }
    }

    /// Value for grpc-accept-encoding: every encoding this build can decode.
    pub(crate) fn accept_header() -> &'static str {
        if cfg!(feature = "gzip") {
            "identity,gzip"
        } else {
            "identity"
        }
    }

    /// Is `self` listed in a peer's grpc-accept-encoding value (identity always
    /// is)? The value is a comma-separated list; spaces and tabs around each name
    /// are ignored, as are letter case and empty entries.
    pub(crate) fn accepted_by(self, accept_encoding: Option<&[u8]>) -> bool {
        if self == Encoding::Identity {
            return true;
        }
        let Some(value) = accept_encoding else {
            return false;
        };
        value.split(|&b| b == b',').any(|entry| {
            entry
                .trim_ascii()
                .eq_ignore_ascii_case(self.name().as_bytes())
        })
    }
}

/// Appends `data` encoded with `encoding` to `out`. Identity copies it as is.
/// UNIMPLEMENTED for an encoding this build lacks. On error `out` may hold a
/// partial encoding after its original contents; the caller truncates it.
pub(crate) fn compress(encoding: Encoding, data: &[u8], out: &mut BytesMut) -> Result<(), Status> {
    match encoding {
        Encoding::Identity => {
            out.extend_from_slice(data);
            Ok(())
        }
        Encoding::Gzip => gzip::compress(data, out),
    }
}

/// Decodes one message's bytes. RESOURCE_EXHAUSTED when the output would exceed
/// max_len (checked while inflating, so a bomb is never inflated in full);
/// INTERNAL for bytes that are not valid in `encoding`; UNIMPLEMENTED for an
/// encoding this build lacks.
pub(crate) fn decompress(encoding: Encoding, data: &[u8], max_len: usize) -> Result<Bytes, Status> {
    match encoding {
        Encoding::Identity => {
            if data.len() > max_len {
                return Err(Status::resource_exhausted(format!(
                    "message of {} bytes exceeds the receive limit of {max_len} bytes",
                    data.len()
                )));
            }
            Ok(Bytes::copy_from_slice(data))
        }
        Encoding::Gzip => gzip::decompress(data, max_len),
    }
}

/// gzip through [`crate::gzip`]: its errors as gRPC statuses.
#[cfg(feature = "gzip")]
mod gzip {
    use bytes::{Bytes, BytesMut};

    use crate::gzip::{self, Error};
    use crate::status::Status;

    /// Appends one gzip member of `data` to `out` (deflate level 6, the level
    /// grpc-go also uses by default).
    pub(super) fn compress(data: &[u8], out: &mut BytesMut) -> Result<(), Status> {
        gzip::compress(data, out).map_err(|_| {
            Status::internal("failed to compress message with gzip: deflate stopped early")
        })
    }

    /// Inflates `data`, holding at most `max_len + 1` bytes of output so that an
    /// over-limit message is noticed without inflating the rest of it.
    pub(super) fn decompress(data: &[u8], max_len: usize) -> Result<Bytes, Status> {
        match gzip::decompress(data, max_len) {
            Ok(out) => Ok(Bytes::from(out)),
            Err(Error::TooLarge) => Err(Status::resource_exhausted(format!(
                "message inflates to more than the receive limit of {max_len} bytes"
            ))),
            Err(Error::Corrupt(why)) => Err(Status::internal(format!(
                "failed to decompress gzip message: {why}"
            ))),
        }
    }
}

/// gzip in a build without the `gzip` feature: every operation is UNIMPLEMENTED.
#[cfg(not(feature = "gzip"))]
mod gzip {
    use bytes::{Bytes, BytesMut};

    use crate::status::Status;

    /// UNIMPLEMENTED: this build has no gzip.
    pub(super) fn compress(_data: &[u8], _out: &mut BytesMut) -> Result<(), Status> {
        Err(unsupported())
    }

    /// UNIMPLEMENTED: this build has no gzip.
    pub(super) fn decompress(_data: &[u8], _max_len: usize) -> Result<Bytes, Status> {
        Err(unsupported())
    }

    /// The status for gzip in a build without the `gzip` feature.
    fn unsupported() -> Status {
        Status::unimplemented("grpc-encoding gzip is not supported by this build")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;

    /// Whether this build decodes gzip.
    const GZIP: bool = cfg!(feature = "gzip");

    #[test]
    fn from_name() {
        let rows: &[(&[u8], Option<Encoding>)] = &[
            // identity is always supported.
            (b"identity", Some(Encoding::Identity)),
            // gzip only with the `gzip` feature.
            (b"gzip", GZIP.then_some(Encoding::Gzip)),
            // Content-codings are case-insensitive (RFC 9110 §8.4.1).
            (b"GZip", GZIP.then_some(Encoding::Gzip)),
            (b"IDENTITY", Some(Encoding::Identity)),
            // Spec-named codings we do not build: the server answers UNIMPLEMENTED.
            (b"deflate", None),
            (b"snappy", None),
            // Anything else, including near misses and padding, is unknown.
            (b"", None),
            (b"gzip ", None),
            (b"x-gzip", None),
        ];
        for (name, expected) in rows {
            assert_eq!(
                Encoding::from_name(name),
                *expected,
                "{}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for encoding in [Encoding::Identity, Encoding::Gzip] {
            let parsed = Encoding::from_name(encoding.name().as_bytes());
            let built = encoding == Encoding::Identity || GZIP;
            assert_eq!(parsed, built.then_some(encoding));
        }
    }

    #[test]
    fn accepted_by() {
        let rows: &[(Encoding, Option<&[u8]>, bool)] = &[
            // identity is always acceptable, header or not.
            (Encoding::Identity, None, true),
            (Encoding::Identity, Some(b"gzip"), true),
            // No grpc-accept-encoding: the peer decodes nothing but identity.
            (Encoding::Gzip, None, false),
            // A listed name is accepted, alone or among others.
            (Encoding::Gzip, Some(b"gzip"), true),
            (Encoding::Gzip, Some(b"identity,deflate,gzip"), true),
            // Optional whitespace around list entries (grpc-core sends none,
            // other peers send ", ").
            (Encoding::Gzip, Some(b"identity, gzip"), true),
            (Encoding::Gzip, Some(b" gzip\t,deflate"), true),
            // Letter case does not matter; empty entries are skipped.
            (Encoding::Gzip, Some(b"identity,,GZIP"), true),
            // Only whole entries count.
            (Encoding::Gzip, Some(b"x-gzip,gzipped"), false),
            (Encoding::Gzip, Some(b"identity,deflate"), false),
            (Encoding::Gzip, Some(b""), false),
        ];
        for (encoding, header, expected) in rows {
            let shown = header.map(String::from_utf8_lossy);
            assert_eq!(
                encoding.accepted_by(*header),
                *expected,
                "{encoding:?} in {shown:?}"
            );
        }
    }

    #[test]
    fn accept_header_lists_what_from_name_accepts() {
        let header = Encoding::accept_header();
        for encoding in [Encoding::Identity, Encoding::Gzip] {
            let decodable = Encoding::from_name(encoding.name().as_bytes()).is_some();
            assert_eq!(
                encoding.accepted_by(Some(header.as_bytes())),
                decodable,
                "{encoding:?} in {header:?}"
            );
        }
        assert!(http::HeaderValue::from_str(header).is_ok());
    }

    #[test]
    fn identity_copies_and_checks_the_limit() {
        let mut out = BytesMut::from(&b"kept|"[..]);
        compress(Encoding::Identity, b"abc", &mut out).unwrap();
        assert_eq!(&out[..], b"kept|abc");

        assert_eq!(
            decompress(Encoding::Identity, b"abc", 3).unwrap(),
            &b"abc"[..]
        );
        let status = decompress(Encoding::Identity, b"abcd", 3).unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_round_trip() {
        let inputs: &[&[u8]] = &[
            b"",
            b"a",
            b"hello gzip hello gzip hello gzip",
            &[0; 100_000],
        ];
        for input in inputs {
            let mut out = BytesMut::from(&b"kept|"[..]);
            compress(Encoding::Gzip, input, &mut out).unwrap();
            assert_eq!(&out[..5], b"kept|", "appends after existing bytes");
            assert_eq!(&out[5..7], &[0x1f, 0x8b], "gzip magic");
            let back = decompress(Encoding::Gzip, &out[5..], input.len()).unwrap();
            assert_eq!(&back[..], *input);
        }
    }

    #[cfg(feature = "gzip")]
    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        compress(Encoding::Gzip, data, &mut out).unwrap();
        out.to_vec()
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_bomb_stops_at_the_limit() {
        // 16 MiB of zeros deflate to about 16 KiB; the limit is 1 MiB.
        let limit = 1024 * 1024;
        let bomb = gzip(&vec![0; 16 * limit]);
        assert!(bomb.len() < 64 * 1024, "bomb is {} bytes", bomb.len());
        let status = decompress(Encoding::Gzip, &bomb, limit).unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains(&limit.to_string()), "{status}");

        // One byte over the limit is refused, exactly at the limit is fine.
        let exact = gzip(&[7; 100]);
        assert_eq!(decompress(Encoding::Gzip, &exact, 100).unwrap().len(), 100);
        let status = decompress(Encoding::Gzip, &exact, 99).unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_rejects_bad_input() {
        let good = gzip(b"payload");
        let mut truncated = good.clone();
        truncated.truncate(good.len() - 4);
        let mut bad_crc = good.clone();
        let crc_at = good.len() - 8;
        bad_crc[crc_at] ^= 0xff;
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"garbage!");
        let rows: &[(&str, &[u8])] = &[
            ("empty input is not a gzip member", b""),
            ("not gzip at all", b"plain text, not gzip"),
            ("a member cut short", &truncated),
            ("CRC-32 mismatch", &bad_crc),
            ("bytes after the last member", &trailing),
        ];
        for (rule, input) in rows {
            let status = decompress(Encoding::Gzip, input, 1024).unwrap_err();
            assert_eq!(status.code(), Code::Internal, "{rule}: {status}");
        }
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_accepts_concatenated_members() {
        // RFC 1952 §2.2: "A gzip file consists of a series of members".
        let mut input = gzip(b"first ");
        input.extend(gzip(b"second"));
        let back = decompress(Encoding::Gzip, &input, 1024).unwrap();
        assert_eq!(&back[..], b"first second");
    }

    #[cfg(not(feature = "gzip"))]
    #[test]
    fn gzip_without_the_feature_is_unimplemented() {
        let mut out = BytesMut::new();
        let status = compress(Encoding::Gzip, b"x", &mut out).unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        let status = decompress(Encoding::Gzip, &[0x1f, 0x8b], 1024).unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
    }
}

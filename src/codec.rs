//! One protobuf message into and out of its prefix (PROTOCOL-HTTP2 § Requests).
//!
//! ```text
//!   encode:  msg ──prost──> bytes ──(compress if encoding != identity)──> flag|len|bytes
//!   decode:  RawMessage { compressed, data } ──(inflate if flag 1)──prost──> msg
//!
//!   Identity, written in place, no intermediate buffer:
//!   buf: [ ...earlier messages... | 0 | len (from encoded_len, final) | protobuf bytes ]
//!                                   ^ start
//! ```
//!
//! "A Compressed-Flag value of 1 indicates that the binary octet sequence of
//! Message is compressed using the mechanism declared by the Message-Encoding
//! header. A value of 0 indicates that no encoding of Message bytes has occurred."
//! This module joins [`crate::wire`] (the prefix), [`crate::compression`] (the
//! bytes) and `prost` (the message) so that the transport deals only in typed
//! messages and [`Status`] errors.
//!
//! # Why it is shaped this way
//!
//! Encoding appends to one `BytesMut` the transport owns, so a stream of small
//! messages is written into a single buffer and handed to h2 as one DATA payload.
//! For identity the length comes from prost's `encoded_len`, which the send limit
//! needs anyway, so the prefix is written first and final and the message is
//! encoded straight after it into room of exactly that size (prost writes exactly
//! `encoded_len` bytes). Gzip needs the plain bytes first, so it pays one
//! temporary buffer per message. Decoding takes the [`RawMessage`] by value: an
//! uncompressed message is decoded from the very `Bytes` the decoder sliced out of
//! the DATA frame.
//!
//! # What it rejects
//!
//! ```text
//!   situation                                     -> outcome
//!   encoded message longer than u32::MAX bytes    -> RESOURCE_EXHAUSTED (cannot be framed)
//!   flag 1 but grpc-encoding absent or identity   -> INTERNAL
//!   message (inflated) longer than the limit      -> RESOURCE_EXHAUSTED
//!   bytes that are not the expected message type  -> INTERNAL
//!   gzip in a build without the `gzip` feature    -> UNIMPLEMENTED
//! ```
//!
//! Not done here: choosing the encoding (the call does, from `grpc-encoding` and
//! the peer's `grpc-accept-encoding`) and choosing the send limit (the call's).
//!
//! Spec: <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>

use bytes::{Buf, BytesMut};

use crate::compression::{self, Encoding};
use crate::status::Status;
use crate::wire::{MessagePrefix, PREFIX_LEN, RawMessage};

/// Appends one length-prefixed message to `buf`; compresses when `encoding` != Identity.
/// On error `buf` is left as it was. The send limit is on the protobuf length (before
/// compression): a larger message is RESOURCE_EXHAUSTED and nothing is written. The limit is checked against the
/// length the encoder computes anyway, so a limited send costs no second pass over the message.
pub(crate) fn encode_message_within<M: prost::Message>(
    msg: &M,
    encoding: Encoding,
    max_len: usize,
    buf: &mut BytesMut,
) -> Result<(), Status> {
    let start = buf.len();
    let result = match encoding {
        Encoding::Identity => encode_identity(msg, buf, start, max_len),
        Encoding::Gzip => encode_compressed(msg, encoding, buf, start, max_len),
    };
    if result.is_err() {
        buf.truncate(start);
    }
    result
}

/// Identity: the prefix, final, then the protobuf bytes.
fn encode_identity<M: prost::Message>(
    msg: &M,
    buf: &mut BytesMut,
    start: usize,
    max_len: usize,
) -> Result<(), Status> {
    let expected = msg.encoded_len();
    within_send_limit(expected, max_len)?;
    let len = message_len(expected)?;
    // The length is known before the message is written, so the prefix goes first, final.
    let prefix = MessagePrefix {
        compressed: false,
        len,
    };
    // `encode_raw`, not `encode`: `encode` only checks the room against `encoded_len` — a second
    // walk over the message — and the room here was made from the `encoded_len` just taken.
    if expected <= SMALL_MESSAGE {
        // A small message is a handful of tiny writes (prefix, tags, lengths, a short field):
        // through `BytesMut` each is an out-of-line call with its own capacity check and
        // `memcpy`. Written into a plain slice of the exact size instead, they become inlined
        // stores; zeroing the slot first costs less than that for a message this small.
        buf.resize(start + PREFIX_LEN + expected, 0);
        let mut slot = &mut buf[start..];
        prefix.encode(&mut slot);
        msg.encode_raw(&mut slot);
        return Ok(());
    }
    buf.reserve(PREFIX_LEN + expected);
    prefix.encode(buf);
    msg.encode_raw(buf);
    Ok(())
}

/// Up to this protobuf length a message is encoded through a zeroed slice (see
/// [`encode_identity`]); above it the bytes themselves dominate and zeroing them first would be
/// a second pass over them.
const SMALL_MESSAGE: usize = 1024;

/// Compressed: protobuf bytes into a scratch buffer, compressed after the prefix.
fn encode_compressed<M: prost::Message>(
    msg: &M,
    encoding: Encoding,
    buf: &mut BytesMut,
    start: usize,
    max_len: usize,
) -> Result<(), Status> {
    let plain = msg.encode_to_vec();
    within_send_limit(plain.len(), max_len)?;
    buf.extend_from_slice(&[0; PREFIX_LEN]);
    compression::compress(encoding, &plain, buf)?;
    write_prefix(buf, start, true)
}

/// Fills the 5 bytes reserved at `start` with the flag and the length of
/// everything written after them.
fn write_prefix(buf: &mut BytesMut, start: usize, compressed: bool) -> Result<(), Status> {
    let len = message_len(buf.len() - start - PREFIX_LEN)?;
    // `&mut [u8]` is a `BufMut` that writes over the slice: exactly the 5 bytes.
    let mut slot = &mut buf[start..start + PREFIX_LEN];
    MessagePrefix { compressed, len }.encode(&mut slot);
    Ok(())
}

/// RESOURCE_EXHAUSTED when a message of `len` bytes is over the send limit `max_len`.
#[inline]
fn within_send_limit(len: usize, max_len: usize) -> Result<(), Status> {
    if len > max_len {
        return Err(over_send_limit(len, max_len));
    }
    Ok(())
}

/// The status for a message over the send limit; out of line, as every error path here is, so
/// the per-message checks stay a comparison each.
#[cold]
fn over_send_limit(len: usize, max_len: usize) -> Status {
    Status::resource_exhausted(format!(
        "message of {len} bytes exceeds the send limit of {max_len} bytes"
    ))
}

/// The prefix's Message-Length for a message of `len` bytes: it must fit in u32.
#[inline]
fn message_len(len: usize) -> Result<u32, Status> {
    u32::try_from(len).map_err(|_| too_long(len))
}

#[cold]
fn too_long(len: usize) -> Status {
    Status::resource_exhausted(format!(
        "message of {len} bytes is too long for a gRPC message (at most {} bytes)",
        u32::MAX
    ))
}

/// `encoding` is the call's grpc-encoding (Identity when the header was absent).
/// compressed flag + Identity -> INTERNAL; undecodable protobuf -> INTERNAL;
/// inflated size over max_len -> RESOURCE_EXHAUSTED.
pub(crate) fn decode_message<M: prost::Message + Default>(
    raw: RawMessage,
    encoding: Encoding,
    max_len: usize,
) -> Result<M, Status> {
    let data = if raw.compressed {
        if encoding == Encoding::Identity {
            // "If the Message-Encoding header is omitted then the Compressed-Flag
            // must be 0."
            return Err(Status::internal(
                "compressed flag set but no grpc-encoding for the call",
            ));
        }
        compression::decompress(encoding, &raw.data, max_len)?
    } else {
        if raw.data.len() > max_len {
            return Err(Status::resource_exhausted(format!(
                "message of {} bytes exceeds the receive limit of {max_len} bytes",
                raw.data.len()
            )));
        }
        raw.data
    };
    decode_protobuf(data)
}

/// prost decode, with the failure reported as INTERNAL naming the message type.
fn decode_protobuf<M: prost::Message + Default>(data: impl Buf) -> Result<M, Status> {
    M::decode(data).map_err(|e| {
        Status::internal(format!(
            "failed to decode {} message: {e}",
            std::any::type_name::<M>()
        ))
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use prost::Message;

    use super::*;
    use crate::status::Code;
    use crate::wire::MessageDecoder;

    /// One message with no send limit.
    fn encode_message<M: prost::Message>(
        msg: &M,
        encoding: Encoding,
        buf: &mut BytesMut,
    ) -> Result<(), Status> {
        encode_message_within(msg, encoding, usize::MAX, buf)
    }

    /// A small message with the field kinds gRPC test services use.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Probe {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(bytes = "vec", tag = "2")]
        payload: Vec<u8>,
        #[prost(int32, tag = "3")]
        id: i32,
    }

    fn probe(size: usize) -> Probe {
        Probe {
            name: "probe".into(),
            payload: vec![b'p'; size],
            id: 7,
        }
    }

    #[test]
    fn identity_layout() {
        let msg = probe(3);
        let mut buf = BytesMut::from(&b"earlier"[..]);
        encode_message(&msg, Encoding::Identity, &mut buf).unwrap();

        let body = msg.encode_to_vec();
        let mut expected = b"earlier".to_vec();
        expected.push(0);
        expected.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
        expected.extend_from_slice(&body);
        assert_eq!(&buf[..], &expected[..]);
    }

    #[test]
    fn empty_message_is_a_bare_prefix() {
        // A message with every field at its default encodes to zero bytes.
        let mut buf = BytesMut::new();
        encode_message(&Probe::default(), Encoding::Identity, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 0, 0]);
    }

    #[test]
    fn message_len_must_fit_u32() {
        let rows: &[(usize, Option<u32>)] = &[
            // Message-Length is a 4-byte unsigned integer.
            (0, Some(0)),
            (4 * 1024 * 1024, Some(4 * 1024 * 1024)),
            (u32::MAX as usize, Some(u32::MAX)),
            // Anything longer cannot be framed: RESOURCE_EXHAUSTED, never OUT_OF_RANGE.
            #[cfg(target_pointer_width = "64")]
            (u32::MAX as usize + 1, None),
            (usize::MAX, None),
        ];
        for (len, expected) in rows {
            match (message_len(*len), expected) {
                (Ok(got), Some(want)) => assert_eq!(got, *want),
                (Err(status), None) => assert_eq!(status.code(), Code::ResourceExhausted),
                (got, want) => panic!("{len}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// Both encoding routes (a zeroed slice up to SMALL_MESSAGE, BytesMut writes above it) give
    /// exactly the prefix followed by prost's own encoding, appended after what the buffer held.
    #[test]
    fn small_and_large_messages_encode_identically() {
        for payload_len in [0, 1, 16, 1000, 1017, 1018, 1019, 1024, 1025, 5000, 70_000] {
            let msg = Probe {
                name: "n".into(),
                payload: vec![0xa5; payload_len],
                id: -7,
            };
            let body = msg.encode_to_vec();
            let mut want = b"held".to_vec();
            want.push(0);
            want.extend_from_slice(&(body.len() as u32).to_be_bytes());
            want.extend_from_slice(&body);
            let mut buf = BytesMut::from(&b"held"[..]);
            encode_message_within(&msg, Encoding::Identity, usize::MAX, &mut buf).unwrap();
            assert_eq!(&buf[..], &want[..], "payload of {payload_len} bytes");
        }
    }

    /// Encodes each message, splits the stream at `split`, decodes it all back.
    fn round_trip(msgs: &[Probe], encoding: Encoding, split: usize) -> Vec<Probe> {
        let mut buf = BytesMut::new();
        for msg in msgs {
            encode_message(msg, encoding, &mut buf).unwrap();
        }
        let mut stream = buf.freeze();
        let tail = stream.split_off(split.min(stream.len()));
        let mut decoder = MessageDecoder::new(1 << 20);
        let mut out = Vec::new();
        for chunk in [stream, tail] {
            decoder.push(chunk);
            while let Some(raw) = decoder.next_message().unwrap() {
                assert_eq!(raw.compressed, encoding != Encoding::Identity);
                out.push(decode_message(raw, encoding, 1 << 20).unwrap());
            }
        }
        decoder.finish().unwrap();
        out
    }

    #[test]
    fn send_limit_is_on_the_protobuf_length_and_writes_nothing_when_over() {
        let msg = probe(100);
        let len = msg.encoded_len();
        let encodings: &[Encoding] = if cfg!(feature = "gzip") {
            &[Encoding::Identity, Encoding::Gzip]
        } else {
            &[Encoding::Identity]
        };
        for &encoding in encodings {
            // Exactly at the limit: sent. One byte over: RESOURCE_EXHAUSTED, `buf` untouched.
            let mut buf = BytesMut::from(&b"kept"[..]);
            encode_message_within(&msg, encoding, len, &mut buf).unwrap();
            assert!(buf.len() > 4, "{encoding:?}");
            let mut buf = BytesMut::from(&b"kept"[..]);
            let err = encode_message_within(&msg, encoding, len - 1, &mut buf).unwrap_err();
            assert_eq!(err.code(), Code::ResourceExhausted, "{encoding:?}");
            assert_eq!(&buf[..], b"kept", "{encoding:?}");
        }
    }

    #[test]
    fn identity_round_trip() {
        let msgs = [probe(0), Probe::default(), probe(300), probe(70_000)];
        for split in [0, 1, 7, 100, 1000, usize::MAX] {
            assert_eq!(round_trip(&msgs, Encoding::Identity, split), msgs);
        }
    }

    #[cfg(feature = "gzip")]
    #[test]
    fn gzip_round_trip() {
        let msgs = [probe(0), Probe::default(), probe(300), probe(70_000)];
        for split in [0, 1, 7, 100, usize::MAX] {
            assert_eq!(round_trip(&msgs, Encoding::Gzip, split), msgs);
        }
        // The repetitive payload really was compressed.
        let mut buf = BytesMut::new();
        encode_message(&probe(70_000), Encoding::Gzip, &mut buf).unwrap();
        assert_eq!(buf[0], 1, "flag set");
        assert!(buf.len() < 1000, "{} bytes", buf.len());
    }

    #[test]
    fn prost_builtin_messages() {
        // prost implements Message for the well-known wrapper shapes (field 1).
        let mut buf = BytesMut::new();
        encode_message(&"hi".to_string(), Encoding::Identity, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 0, 4, 0x0a, 2, b'h', b'i']);
        let raw = RawMessage {
            compressed: false,
            data: buf.freeze().slice(PREFIX_LEN..),
        };
        let back: String = decode_message(raw, Encoding::Identity, 100).unwrap();
        assert_eq!(back, "hi");
    }

    #[test]
    fn decode_rules() {
        let gzip_of_big = {
            let mut out = BytesMut::new();
            let result =
                compression::compress(Encoding::Gzip, &probe(5000).encode_to_vec(), &mut out);
            result.map(|()| out.freeze())
        };
        struct Row {
            rule: &'static str,
            compressed: bool,
            data: Bytes,
            encoding: Encoding,
            max_len: usize,
            code: Code,
        }
        let mut rows = vec![
            Row {
                rule: "flag 1 without grpc-encoding: INTERNAL",
                compressed: true,
                data: Bytes::from(probe(1).encode_to_vec()),
                encoding: Encoding::Identity,
                max_len: 1024,
                code: Code::Internal,
            },
            Row {
                rule: "bytes that are not the message: INTERNAL",
                compressed: false,
                // Field 1 as a length-delimited string claiming 100 bytes, given 1.
                data: Bytes::from_static(&[0x0a, 100, b'x']),
                encoding: Encoding::Identity,
                max_len: 1024,
                code: Code::Internal,
            },
            Row {
                rule: "uncompressed message over the limit: RESOURCE_EXHAUSTED",
                compressed: false,
                data: Bytes::from(probe(100).encode_to_vec()),
                encoding: Encoding::Identity,
                max_len: 10,
                code: Code::ResourceExhausted,
            },
        ];
        match gzip_of_big {
            Ok(data) => rows.push(Row {
                rule: "gzip message inflating over the limit: RESOURCE_EXHAUSTED",
                compressed: true,
                data,
                encoding: Encoding::Gzip,
                max_len: 1000,
                code: Code::ResourceExhausted,
            }),
            Err(status) => {
                assert_eq!(status.code(), Code::Unimplemented);
                rows.push(Row {
                    rule: "gzip in a build without the feature: UNIMPLEMENTED",
                    compressed: true,
                    data: Bytes::from_static(&[0x1f, 0x8b, 8, 0]),
                    encoding: Encoding::Gzip,
                    max_len: 1024,
                    code: Code::Unimplemented,
                });
            }
        }
        for row in rows {
            let raw = RawMessage {
                compressed: row.compressed,
                data: row.data,
            };
            let status = decode_message::<Probe>(raw, row.encoding, row.max_len).unwrap_err();
            assert_eq!(status.code(), row.code, "{}: {status}", row.rule);
        }
    }

    #[test]
    fn decode_error_names_the_type() {
        let raw = RawMessage {
            compressed: false,
            data: Bytes::from_static(&[0x0a, 100]),
        };
        let status = decode_message::<Probe>(raw, Encoding::Identity, 100).unwrap_err();
        assert!(
            status.message().starts_with("failed to decode ") && status.message().contains("Probe"),
            "{status}"
        );
        let raw = RawMessage {
            compressed: true,
            data: Bytes::new(),
        };
        let status = decode_message::<Probe>(raw, Encoding::Identity, 100).unwrap_err();
        assert!(
            status
                .message()
                .contains("compressed flag set but no grpc-encoding")
        );
    }

    #[cfg(not(feature = "gzip"))]
    #[test]
    fn gzip_encode_without_the_feature_leaves_buf_alone() {
        let mut buf = BytesMut::from(&b"earlier"[..]);
        let status = encode_message(&probe(1), Encoding::Gzip, &mut buf).unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        assert_eq!(&buf[..], b"earlier");
    }
}

//! Entry points for the fuzz targets in `fuzz/` (hidden feature `fuzz`; not part of the API).
//!
//! The wire layers are `pub(crate)`; each function here feeds them peer bytes the way the
//! runtime does and checks what must hold whatever the bytes (docs/testing.md § Fuzzing):
//!
//! | function | layer | what must hold |
//! |---|---|---|
//! | [`message_decoder`] | `wire::MessageDecoder` | no panic; the same messages and the same error whatever the split into DATA payloads and whichever read path (`push_next`, `next_whole`, `next_message`) |
//! | [`grpc_timeout`] | `timeout` | no panic; a value that decodes re-encodes to one that decodes to no less |
//! | [`grpc_message`] | `status` percent-encoding | no panic; decoded text re-encodes and decodes to itself |
//! | [`base64_bin`] | `base64` | no panic; decoded bytes re-encode and decode to themselves; any bytes round-trip |
//! | [`gzip_container`] | `gzip` (feature `gzip`) | no panic; output never past the limit; compressed input round-trips |
//! | [`request_headers`] | `server::head`'s header walk | no panic on any header block the h2 layer could hand over |
//!
//! The split of a decoder run comes from the input itself (its first octet seeds a small
//! generator), so the fuzzer explores splits and bytes together and a crash replays exactly.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::wire::{MessageDecoder, RawMessage};

/// A receive limit small enough that the fuzzer reaches RESOURCE_EXHAUSTED.
const LIMIT: usize = 4096;

/// A tiny generator (xorshift64*) for split points: deterministic from the input.
struct Splits(u64);

impl Splits {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % below.max(1)
    }
}

/// Every message until the first error or the end, then the END_STREAM check: the outcome a
/// call would see.
type Outcome = (Vec<RawMessage>, Option<crate::status::Code>);

/// The messages in `data`, pushed whole.
fn decode_whole(data: &[u8]) -> Outcome {
    let mut decoder = MessageDecoder::new(LIMIT);
    decoder.push(Bytes::copy_from_slice(data));
    let mut messages = Vec::new();
    loop {
        match decoder.next_message() {
            Ok(Some(message)) => messages.push(message),
            Ok(None) => break,
            Err(status) => return (messages, Some(status.code())),
        }
    }
    (messages, decoder.finish().err().map(|s| s.code()))
}

/// The messages in `data`, pushed in pieces chosen by `splits`, read through the path chosen
/// by `splits` for each piece.
fn decode_split(data: &[u8], splits: &mut Splits) -> Outcome {
    let mut decoder = MessageDecoder::new(LIMIT);
    let mut messages = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let n = 1 + splits.next(rest.len().min(64));
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        let piece = Bytes::copy_from_slice(piece);
        let first = match splits.next(3) {
            0 => decoder.push_next(piece),
            1 => {
                decoder.push(piece);
                Ok(decoder.next_whole())
            }
            _ => {
                decoder.push(piece);
                decoder.next_message()
            }
        };
        let mut next = first;
        loop {
            match next {
                Ok(Some(message)) => messages.push(message),
                Ok(None) => break,
                Err(status) => return (messages, Some(status.code())),
            }
            next = decoder.next_message();
        }
    }
    // `next_whole` may have left a whole message queued (it never reports errors).
    loop {
        match decoder.next_message() {
            Ok(Some(message)) => messages.push(message),
            Ok(None) => break,
            Err(status) => return (messages, Some(status.code())),
        }
    }
    (messages, decoder.finish().err().map(|s| s.code()))
}

/// The message decoder: any bytes, any split.
pub fn message_decoder(input: &[u8]) {
    let Some((&seed, data)) = input.split_first() else {
        return;
    };
    let whole = decode_whole(data);
    let split = decode_split(data, &mut Splits(u64::from(seed) | 0x9e37_79b9_0000_0000));
    assert_eq!(whole, split, "the split changed what was decoded");
}

/// `grpc-timeout`.
pub fn grpc_timeout(input: &[u8]) {
    if let Ok(timeout) = crate::timeout::decode_timeout(input) {
        let encoded = crate::timeout::encode_timeout(timeout);
        let again =
            crate::timeout::decode_timeout(encoded.as_bytes()).expect("an encoded timeout decodes");
        assert!(
            again >= timeout,
            "{timeout:?} re-encoded as {encoded} = {again:?}"
        );
    }
}

/// `grpc-message` percent-decoding.
pub fn grpc_message(input: &[u8]) {
    let text = crate::status::decode_grpc_message(input);
    let encoded = crate::status::encode_grpc_message(&text);
    assert_eq!(
        crate::status::decode_grpc_message(encoded.as_bytes()),
        text,
        "re-encoded as {encoded:?}"
    );
}

/// `-bin` metadata values.
pub fn base64_bin(input: &[u8]) {
    if let Some(bytes) = crate::base64::decode(input) {
        let text = crate::base64::encode(&bytes);
        assert_eq!(crate::base64::decode(text.as_bytes()), Some(bytes));
    }
    let text = crate::base64::encode(input);
    assert_eq!(
        crate::base64::decode(text.as_bytes()).as_deref(),
        Some(input)
    );
}

/// The gzip container (RFC 1952) as `grpc-encoding: gzip` decodes it.
#[cfg(feature = "gzip")]
pub fn gzip_container(input: &[u8]) {
    if let Ok(out) = crate::gzip::decompress(input, LIMIT) {
        assert!(out.len() <= LIMIT, "{} bytes out, limit {LIMIT}", out.len());
    }
    let mut packed = bytes::BytesMut::new();
    crate::gzip::compress(input, &mut packed).expect("compress");
    let limit = input.len().max(1);
    assert_eq!(
        crate::gzip::decompress(&packed, limit).ok().as_deref(),
        Some(input)
    );
}

/// The request header walk: the input is lines of `name: value`; each line h2 would accept
/// becomes a field of the block.
pub fn request_headers(input: &[u8]) {
    let mut headers = HeaderMap::new();
    for line in input.split(|&b| b == b'\n') {
        let Some(at) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..at], &line[at + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    crate::server::walk_request_headers(headers);
}

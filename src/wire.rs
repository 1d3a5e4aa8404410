//! Length-Prefixed-Message framing (PROTOCOL-HTTP2 § Requests, § Data Frames).
//!
//! ```text
//! Length-Prefixed-Message → Compressed-Flag Message-Length Message
//! Compressed-Flag → 0 / 1            ; 1 byte unsigned integer
//! Message-Length → {length of Message} ; 4 byte unsigned integer, big-endian
//! Message → *{binary octet}
//!
//!   byte 0     bytes 1..=4              bytes 5..
//!  +--------+------------------------+----------------------+
//!  |  flag  | length, u32 big-endian |  `length` bytes      |
//!  +--------+------------------------+----------------------+
//!   0 = as sent, 1 = compressed with the call's `grpc-encoding`
//! ```
//!
//! The 5 bytes in front of every message are the **prefix** ([`MessagePrefix`]);
//! this module writes them ([`MessagePrefix::encode`]) and cuts a stream of DATA
//! payloads back into messages ([`MessageDecoder`]). It knows nothing about
//! protobuf or compression: [`crate::codec`] and [`crate::compression`] sit on top.
//!
//! # Why push/pull
//!
//! "DATA frame boundaries have no relation to Length-Prefixed-Message boundaries"
//! (§ Data Frames): one frame may hold three messages, one message may span forty
//! frames. So the transport [`push`](MessageDecoder::push)es each DATA payload as it
//! arrives and [`next_message`](MessageDecoder::next_message)s until it gets
//! `Ok(None)`, which means "need more bytes" and is kept apart from "bad bytes"
//! (`Err`), as in mini-redis's `Incomplete` and httparse's `Partial`. At
//! END_STREAM it calls [`finish`](MessageDecoder::finish).
//!
//! The decoder is a two-state machine:
//!
//! ```text
//!            5 bytes buffered, flag ok, length <= limit
//!   Prefix ──────────────────────────────────────────────> Body { compressed, len }
//!     ^                                                            │
//!     └──────────── `len` bytes buffered: emit RawMessage ─────────┘
//! ```
//!
//! The length is checked against the receive limit as soon as the prefix is
//! complete, before a single body byte is kept, so a peer claiming 4 GiB costs us
//! nothing but the 5 bytes it sent. Pushed payloads are kept as a queue of
//! [`Bytes`] handles, never copied on arrival. A message that lies inside one
//! payload (the common case: small messages, large DATA frames) is returned as a
//! slice of that payload with no copy at all; only a message spanning payloads is
//! copied, once, into one buffer the decoder keeps from message to message.
//!
//! # Why messages spanning payloads are gathered as they arrive, into a reused buffer
//!
//! A 1 MiB message arrives as 64 DATA frames of 16 KiB. Gathered at the end into a
//! fresh buffer of its length, each such message cost a 1 MiB allocation whose
//! pages the kernel had to fault in again (the allocator hands large freed blocks
//! back to the kernel, here with `madvise` when the heap is trimmed), and the 64
//! payloads held h2's read buffer until the last one arrived, so h2 could not
//! reuse it for the next frames. `perf record` of a server draining 200 client-
//! streamed messages of 1 MiB: 18 % of its time in that copy, 5 % in `free` →
//! `madvise`, and with 256 KiB DATA frames 57 % in page faults. So once a message
//! spans two payloads, what has arrived of it is copied into [`MessageDecoder`]'s
//! own buffer at each step and the payloads are let go. The buffer's memory is
//! reused by the next message as soon as the previous one has been decoded (the
//! codec consumes the `Bytes`), so the copy lands in memory already mapped. The
//! buffer grows only with bytes that arrived (a claim allocates nothing) and keeps
//! the capacity of the largest message gathered, at most the receive limit, while
//! the call lasts.
//!
//! # What it rejects
//!
//! ```text
//!   input                                   -> outcome
//!   flag is neither 0 nor 1                 -> INTERNAL
//!   length > receive limit (4 MiB default)  -> RESOURCE_EXHAUSTED, before buffering
//!   END_STREAM inside a prefix or a message -> INTERNAL ("truncated message")
//! ```
//!
//! Errors are sticky: the prefix that caused one is left in place, so asking again
//! gives the same error. Checking a set flag against the call's `grpc-encoding`
//! (flag 1 with no encoding is INTERNAL) is [`crate::codec`]'s job, because only
//! the call knows its headers. Oversize is never OUT_OF_RANGE: statuscodes.md
//! lists RESOURCE_EXHAUSTED for it.
//!
//! Spec: <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>,
//! <https://github.com/grpc/grpc/blob/master/doc/statuscodes.md>

use std::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::status::Status;

/// Length of the prefix in front of every message: 1 flag byte + 4 length bytes.
pub(crate) const PREFIX_LEN: usize = 5;

/// The receive limit gRPC implementations use unless configured otherwise (4 MiB).
pub(crate) const DEFAULT_MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// The 5-byte prefix in front of each message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct MessagePrefix {
    /// The Compressed-Flag: the message bytes are compressed with the call's
    /// `grpc-encoding`.
    pub compressed: bool,
    /// The Message-Length: how many message bytes follow the prefix.
    pub len: u32,
}

impl MessagePrefix {
    /// Writes the 5 prefix bytes to `buf`.
    pub(crate) fn encode(self, buf: &mut impl BufMut) {
        buf.put_u8(u8::from(self.compressed));
        buf.put_u32(self.len);
    }

    /// Reads a prefix. A flag other than 0 or 1 is INTERNAL.
    pub(crate) fn decode(bytes: [u8; PREFIX_LEN]) -> Result<MessagePrefix, Status> {
        // "Compressed-Flag → 0 / 1 ; encoded as 1 byte unsigned integer"
        let compressed = match bytes[0] {
            0 => false,
            1 => true,
            flag => {
                return Err(Status::internal(format!(
                    "invalid message prefix: compressed flag is {flag}, expected 0 or 1"
                )));
            }
        };
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        Ok(MessagePrefix { compressed, len })
    }
}

/// One message as received: still compressed when `compressed`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RawMessage {
    /// The prefix's Compressed-Flag.
    pub compressed: bool,
    /// The message bytes, without the prefix.
    pub data: Bytes,
}

/// Where the decoder is inside the current message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the 5 prefix bytes of the next message.
    Prefix,
    /// The prefix has been read and accepted; waiting for `len` body bytes.
    Body {
        /// The prefix's Compressed-Flag.
        compressed: bool,
        /// The body length, already checked against the receive limit.
        len: usize,
    },
}

/// Cuts a stream of DATA payloads into messages, enforcing the receive limit.
///
/// Push each DATA payload with [`push`](Self::push), then call
/// [`next_message`](Self::next_message) until it returns `Ok(None)`; at END_STREAM
/// call [`finish`](Self::finish). See the module docs for the states and errors.
#[derive(Debug)]
pub(crate) struct MessageDecoder {
    /// Largest message body accepted, in bytes.
    max_len: usize,
    /// Pushed payloads not yet handed out, oldest first; none is empty.
    chunks: VecDeque<Bytes>,
    /// Total length of `chunks`.
    buffered: usize,
    /// Where we are inside the current message.
    state: State,
    /// The body of the current message gathered so far, when it spans payloads; empty
    /// otherwise. Reused from message to message (see the module docs).
    gathered: BytesMut,
}

/// The flag and body length of the message at the front of `bytes` when all of it is there,
/// its flag is valid and its length within `max_len`; `None` otherwise. A bad prefix is not
/// reported here: the general path that then runs reads the same prefix and returns its error.
///
/// Why no `Result`: this is the path of every small message, and an `Option` comes back in
/// registers where a `Result` holding a [`Status`] goes through memory, copied in pieces whose
/// reloads stall (docs/performance.md, § "Client streaming and server-stream receive against
/// tonic").
#[inline]
pub(crate) fn whole_message(bytes: &[u8], max_len: usize) -> Option<(bool, usize)> {
    let &[flag, b1, b2, b3, b4] = bytes.first_chunk::<PREFIX_LEN>()?;
    let compressed = match flag {
        0 => false,
        1 => true,
        _ => return None,
    };
    let len = usize::try_from(u32::from_be_bytes([b1, b2, b3, b4])).ok()?;
    if len > max_len || bytes.len() - PREFIX_LEN < len {
        return None;
    }
    Some((compressed, len))
}

/// Cuts the message at the front of `payload` off it when [`whole_message`] finds it there;
/// `None` (and `payload` untouched) otherwise.
#[inline]
fn slice_whole(payload: &mut Bytes, max_len: usize) -> Option<RawMessage> {
    let (compressed, len) = whole_message(payload, max_len)?;
    payload.advance(PREFIX_LEN);
    Some(RawMessage {
        compressed,
        data: payload.split_to(len),
    })
}

/// The body length a prefix announces, checked against the receive limit `max_len` before
/// anything is buffered: a 4 GiB claim allocates nothing.
pub(crate) fn body_len(prefix: MessagePrefix, max_len: usize) -> Result<usize, Status> {
    // u32 always fits in usize on the 32- and 64-bit targets h2 supports; saturating keeps the
    // comparison right on anything smaller.
    let len = usize::try_from(prefix.len).unwrap_or(usize::MAX);
    if len > max_len {
        return Err(Status::resource_exhausted(format!(
            "message of {len} bytes exceeds the receive limit of {max_len} bytes"
        )));
    }
    Ok(len)
}

impl MessageDecoder {
    /// A decoder that rejects messages longer than `max_len` bytes.
    pub(crate) fn new(max_len: usize) -> MessageDecoder {
        MessageDecoder {
            max_len,
            chunks: VecDeque::new(),
            buffered: 0,
            state: State::Prefix,
            gathered: BytesMut::new(),
        }
    }

    /// Adds one DATA payload. Nothing is copied; empty payloads are ignored.
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.buffered += data.len();
        self.chunks.push_back(data);
    }

    /// [`push`](Self::push) then [`next_message`](Self::next_message), in one step that does
    /// not queue the payload when nothing else is buffered and a whole message lies at its
    /// front. That is the usual request — one small message in one DATA frame — and it then
    /// costs no allocation for the queue (what that saves a unary call is in
    /// docs/performance.md § Measurements behind the code's choices).
    pub(crate) fn push_next(&mut self, mut data: Bytes) -> Result<Option<RawMessage>, Status> {
        if self.is_empty() {
            if let Some(message) = slice_whole(&mut data, self.max_len) {
                self.push(data);
                return Ok(Some(message));
            }
        }
        self.push(data);
        self.next_message()
    }

    /// The next complete message, `Ok(None)` when more bytes are needed, or the
    /// error that ends the call (INTERNAL for a bad flag, RESOURCE_EXHAUSTED for a
    /// length over the limit).
    pub(crate) fn next_message(&mut self) -> Result<Option<RawMessage>, Status> {
        if let Some(message) = self.next_whole() {
            return Ok(Some(message));
        }
        if self.state == State::Prefix {
            let Some(bytes) = self.peek_prefix() else {
                return Ok(None);
            };
            let prefix = MessagePrefix::decode(bytes)?;
            let len = body_len(prefix, self.max_len)?;
            self.advance(PREFIX_LEN);
            self.state = State::Body {
                compressed: prefix.compressed,
                len,
            };
        }
        let State::Body { compressed, len } = self.state else {
            return Ok(None);
        };
        let missing = len - self.gathered.len();
        if self.buffered >= missing {
            let data = self.take(missing);
            self.state = State::Prefix;
            return Ok(Some(RawMessage { compressed, data }));
        }
        if !self.gathered.is_empty() || self.chunks.len() > 1 {
            // The message spans payloads: copy what has arrived now and let the payloads go.
            // Everything buffered belongs to this message, since it is not complete.
            self.gather(self.buffered);
        }
        Ok(None)
    }

    /// The common case, which [`next_message`](Self::next_message) takes first and a caller
    /// reading a stream may take before it: between messages, the front payload holds a whole
    /// valid message (prefix and body), as every small message does. It is sliced off that
    /// payload directly, without the general path's prefix assembly across payloads and its
    /// state changes. `None` in every other case, errors included: `next_message` then finds
    /// them (see [`whole_message`] for why this returns no `Result`).
    #[inline]
    pub(crate) fn next_whole(&mut self) -> Option<RawMessage> {
        if self.state != State::Prefix {
            return None;
        }
        let front = self.chunks.front_mut()?;
        let message = slice_whole(front, self.max_len)?;
        if front.is_empty() {
            self.chunks.pop_front();
        }
        self.buffered -= PREFIX_LEN + message.data.len();
        Some(message)
    }

    /// Call at END_STREAM, after [`next_message`](Self::next_message) returned
    /// `Ok(None)`: INTERNAL if a prefix or message was cut short.
    pub(crate) fn finish(&self) -> Result<(), Status> {
        match self.state {
            State::Prefix if self.buffered == 0 => Ok(()),
            State::Prefix => Err(Status::internal(format!(
                "truncated message: stream ended {} bytes into a {PREFIX_LEN}-byte prefix",
                self.buffered
            ))),
            State::Body { len, .. } => Err(Status::internal(format!(
                "truncated message: stream ended after {} of {len} message bytes",
                self.gathered.len() + self.buffered
            ))),
        }
    }

    /// True when nothing is buffered: no partial prefix, no partial message.
    pub(crate) fn is_empty(&self) -> bool {
        self.state == State::Prefix && self.buffered == 0
    }

    /// Moves the first `n` buffered bytes to the end of `gathered`; `n <= self.buffered`.
    fn gather(&mut self, mut n: usize) {
        // Reserving before the first copy lets the buffer take back the memory of the previous
        // message (dropped by now) in one step, instead of growing through reallocations.
        self.gathered.reserve(n);
        self.buffered -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if front.len() > n {
                self.gathered.extend_from_slice(&front[..n]);
                front.advance(n);
                return;
            }
            n -= front.len();
            self.gathered.extend_from_slice(front);
            self.chunks.pop_front();
        }
    }

    /// The next 5 bytes, without consuming them; `None` until 5 are buffered.
    fn peek_prefix(&self) -> Option<[u8; PREFIX_LEN]> {
        if self.buffered < PREFIX_LEN {
            return None;
        }
        let mut prefix = [0u8; PREFIX_LEN];
        let mut filled = 0;
        for chunk in &self.chunks {
            let n = chunk.len().min(PREFIX_LEN - filled);
            prefix[filled..filled + n].copy_from_slice(&chunk[..n]);
            filled += n;
            if filled == PREFIX_LEN {
                break;
            }
        }
        Some(prefix)
    }

    /// Drops the first `n` buffered bytes; `n <= self.buffered`.
    fn advance(&mut self, mut n: usize) {
        self.buffered -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                return;
            };
            if front.len() > n {
                front.advance(n);
                return;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
    }

    /// Completes the current message with the first `n` buffered bytes (`n <= self.buffered`)
    /// and returns its body: a slice of the front payload when that holds the whole body, else
    /// what `gathered` holds after one more copy.
    fn take(&mut self, n: usize) -> Bytes {
        // Not a `let` chain: those need Rust 1.88 and the crate declares 1.85 (tests/msrv.rs).
        let nothing_gathered = self.gathered.is_empty();
        if let Some(front) = self
            .chunks
            .front_mut()
            .filter(|front| nothing_gathered && front.len() >= n)
        {
            self.buffered -= n;
            let data = front.split_to(n);
            if front.is_empty() {
                self.chunks.pop_front();
            }
            return data;
        }
        self.gather(n);
        self.gathered.split().freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Code;

    /// Prefix + body, as a peer would send them.
    fn frame(compressed: bool, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        MessagePrefix {
            compressed,
            len: u32::try_from(body.len()).unwrap(),
        }
        .encode(&mut out);
        out.extend_from_slice(body);
        out
    }

    /// Pushes each chunk, draining messages after every push, then finishes. Runs twice, once
    /// with `push` then `next_message` and once with `push_next` for the first message of each
    /// chunk, and checks that the two ways agree.
    fn decode_chunks(max_len: usize, chunks: &[&[u8]]) -> (Vec<RawMessage>, Result<(), Status>) {
        let run = |one_step: bool| {
            let mut decoder = MessageDecoder::new(max_len);
            let mut messages = Vec::new();
            for chunk in chunks {
                let chunk = Bytes::copy_from_slice(chunk);
                let mut next = if one_step {
                    decoder.push_next(chunk)
                } else {
                    decoder.push(chunk);
                    decoder.next_message()
                };
                loop {
                    match next {
                        Ok(Some(message)) => messages.push(message),
                        Ok(None) => break,
                        Err(status) => return (messages, Err(status)),
                    }
                    next = decoder.next_message();
                }
            }
            (messages, decoder.finish())
        };
        let (messages, end) = run(false);
        let (one_step, one_step_end) = run(true);
        assert_eq!(
            one_step, messages,
            "push_next and push + next_message differ"
        );
        assert_eq!(
            one_step_end
                .as_ref()
                .map_err(|s| (s.code(), s.message().to_owned())),
            end.as_ref().map_err(|s| (s.code(), s.message().to_owned())),
        );
        (messages, end)
    }

    fn raw(compressed: bool, data: &[u8]) -> RawMessage {
        RawMessage {
            compressed,
            data: Bytes::copy_from_slice(data),
        }
    }

    #[test]
    fn prefix_encode_decode() {
        let rows: &[(MessagePrefix, [u8; PREFIX_LEN])] = &[
            // Flag 0: message sent as is.
            (
                MessagePrefix {
                    compressed: false,
                    len: 0,
                },
                [0, 0, 0, 0, 0],
            ),
            // Flag 1: message compressed with the call's grpc-encoding.
            (
                MessagePrefix {
                    compressed: true,
                    len: 5,
                },
                [1, 0, 0, 0, 5],
            ),
            // Message-Length is big-endian.
            (
                MessagePrefix {
                    compressed: false,
                    len: 0x0102_0304,
                },
                [0, 1, 2, 3, 4],
            ),
            // The whole u32 range is representable.
            (
                MessagePrefix {
                    compressed: false,
                    len: u32::MAX,
                },
                [0, 0xff, 0xff, 0xff, 0xff],
            ),
        ];
        for (prefix, bytes) in rows {
            let mut out = Vec::new();
            prefix.encode(&mut out);
            assert_eq!(out, bytes, "{prefix:?}");
            assert_eq!(MessagePrefix::decode(*bytes).unwrap(), *prefix, "{bytes:?}");
        }
    }

    #[test]
    fn prefix_rejects_flags_other_than_0_and_1() {
        // "Compressed-Flag → 0 / 1": every other value is INTERNAL.
        for flag in 2..=u8::MAX {
            let status = MessagePrefix::decode([flag, 0, 0, 0, 1]).unwrap_err();
            assert_eq!(status.code(), Code::Internal, "flag {flag}");
            assert!(status.message().contains(&format!("flag is {flag}")));
        }
    }

    #[test]
    fn decoder_rules() {
        struct Row {
            rule: &'static str,
            max_len: usize,
            chunks: &'static [&'static [u8]],
            messages: Vec<RawMessage>,
            end: Result<(), Code>,
        }
        let rows = [
            Row {
                rule: "no bytes at all is a clean end (a call with zero messages)",
                max_len: 16,
                chunks: &[],
                messages: vec![],
                end: Ok(()),
            },
            Row {
                rule: "a zero-length message is a message",
                max_len: 16,
                chunks: &[&[0, 0, 0, 0, 0]],
                messages: vec![raw(false, b"")],
                end: Ok(()),
            },
            Row {
                rule: "the flag is passed through for the codec to check",
                max_len: 16,
                chunks: &[&[1, 0, 0, 0, 2, 7, 8]],
                messages: vec![raw(true, &[7, 8])],
                end: Ok(()),
            },
            Row {
                rule: "one DATA payload may hold several messages",
                max_len: 16,
                chunks: &[&[0, 0, 0, 0, 1, b'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, b'b']],
                messages: vec![raw(false, b"a"), raw(false, b""), raw(false, b"b")],
                end: Ok(()),
            },
            Row {
                rule: "empty DATA payloads change nothing",
                max_len: 16,
                chunks: &[&[], &[0, 0, 0], &[], &[0, 1, b'z'], &[]],
                messages: vec![raw(false, b"z")],
                end: Ok(()),
            },
            Row {
                rule: "a message exactly at the limit is accepted",
                max_len: 3,
                chunks: &[&[0, 0, 0, 0, 3, 1, 2, 3]],
                messages: vec![raw(false, &[1, 2, 3])],
                end: Ok(()),
            },
            Row {
                rule: "length over the limit: RESOURCE_EXHAUSTED before any body byte",
                max_len: 3,
                chunks: &[&[0, 0, 0, 0, 4]],
                messages: vec![],
                end: Err(Code::ResourceExhausted),
            },
            Row {
                rule: "messages before an oversize one are still delivered",
                max_len: 3,
                chunks: &[&[0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 4, 1, 2, 3, 4]],
                messages: vec![raw(false, &[9])],
                end: Err(Code::ResourceExhausted),
            },
            Row {
                rule: "flag neither 0 nor 1: INTERNAL",
                max_len: 16,
                chunks: &[&[2, 0, 0, 0, 0]],
                messages: vec![],
                end: Err(Code::Internal),
            },
            Row {
                rule: "END_STREAM inside a prefix: INTERNAL (truncated)",
                max_len: 16,
                chunks: &[&[0, 0, 0]],
                messages: vec![],
                end: Err(Code::Internal),
            },
            Row {
                rule: "END_STREAM inside a body: INTERNAL (truncated)",
                max_len: 16,
                chunks: &[&[0, 0, 0, 0, 3, 1, 2]],
                messages: vec![],
                end: Err(Code::Internal),
            },
            Row {
                rule: "END_STREAM right after a prefix announcing bytes: INTERNAL",
                max_len: 16,
                chunks: &[&[0, 0, 0, 0, 1, b'x', 0, 0, 0, 0, 1]],
                messages: vec![raw(false, b"x")],
                end: Err(Code::Internal),
            },
        ];
        for row in rows {
            let (messages, end) = decode_chunks(row.max_len, row.chunks);
            assert_eq!(messages, row.messages, "{}", row.rule);
            assert_eq!(end.map_err(|s| s.code()), row.end, "{}", row.rule);
        }
    }

    #[test]
    fn error_messages_name_the_numbers() {
        let mut decoder = MessageDecoder::new(10);
        decoder.push(Bytes::from_static(&[0, 0, 0, 0, 11]));
        let status = decoder.next_message().unwrap_err();
        assert_eq!(
            status.message(),
            "message of 11 bytes exceeds the receive limit of 10 bytes"
        );

        let mut decoder = MessageDecoder::new(10);
        decoder.push(Bytes::from_static(&[0, 0, 0, 0, 3, 1]));
        assert_eq!(decoder.next_message().unwrap(), None);
        let status = decoder.finish().unwrap_err();
        assert!(
            status.message().starts_with("truncated message"),
            "{status}"
        );
        assert!(status.message().contains("1 of 3"), "{status}");
    }

    #[test]
    fn errors_are_sticky() {
        // The offending prefix stays buffered, so asking again repeats the error
        // instead of reading body bytes as if they were a new prefix.
        let mut decoder = MessageDecoder::new(4);
        decoder.push(Bytes::from_static(&[0, 0, 0, 0, 5, 1, 1, 1, 1, 1]));
        for _ in 0..3 {
            let status = decoder.next_message().unwrap_err();
            assert_eq!(status.code(), Code::ResourceExhausted);
        }
    }

    #[test]
    fn four_gib_claim_allocates_nothing() {
        // A peer claims u32::MAX bytes (4 GiB - 1) and sends 3 of them.
        let claim: &[u8] = &[0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3];

        // Default limit: refused as soon as the prefix is complete.
        let mut decoder = MessageDecoder::new(DEFAULT_MAX_MESSAGE_SIZE);
        decoder.push(Bytes::from_static(claim));
        let status = decoder.next_message().unwrap_err();
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            decoder.buffered,
            claim.len(),
            "nothing beyond what was pushed"
        );

        // Even a decoder told to accept anything holds only what was pushed while it
        // waits: the body is gathered when complete, never reserved from the claim.
        let mut decoder = MessageDecoder::new(usize::MAX);
        decoder.push(Bytes::from_static(claim));
        assert_eq!(decoder.next_message().unwrap(), None);
        assert_eq!(
            decoder.state,
            State::Body {
                compressed: false,
                len: 0xffff_ffff
            }
        );
        assert_eq!(decoder.buffered, 3);
        assert_eq!(decoder.chunks.len(), 1);
        assert_eq!(
            decoder.chunks[0].as_ptr(),
            claim[PREFIX_LEN..].as_ptr(),
            "the pushed static bytes are held by reference, not copied"
        );
    }

    /// Two messages of different shapes; the second one compressed.
    fn two_messages() -> (Vec<u8>, Vec<RawMessage>) {
        let first: Vec<u8> = (0..=40).collect();
        let second = b"second".to_vec();
        let mut stream = frame(false, &first);
        stream.extend(frame(true, &second));
        (stream, vec![raw(false, &first), raw(true, &second)])
    }

    #[test]
    fn split_at_every_offset() {
        let (stream, expected) = two_messages();
        for at in 0..=stream.len() {
            let (a, b) = stream.split_at(at);
            let (messages, end) = decode_chunks(1024, &[a, b]);
            assert_eq!(messages, expected, "split at {at}");
            assert!(end.is_ok(), "split at {at}: {end:?}");
        }
    }

    #[test]
    fn split_at_every_pair_of_offsets() {
        let (stream, expected) = two_messages();
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let chunks = [&stream[..i], &stream[i..j], &stream[j..]];
                let (messages, end) = decode_chunks(1024, &chunks);
                assert_eq!(messages, expected, "split at {i} and {j}");
                assert!(end.is_ok(), "split at {i} and {j}: {end:?}");
            }
        }
    }

    #[test]
    fn split_one_byte_per_push() {
        let (stream, expected) = two_messages();
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        let (messages, end) = decode_chunks(1024, &chunks);
        assert_eq!(messages, expected);
        assert!(end.is_ok());
    }

    #[test]
    fn truncation_at_every_offset() {
        // Every strict prefix of a valid stream ends in INTERNAL, except the ones
        // that stop exactly on a message boundary.
        let (stream, _) = two_messages();
        let boundaries = [0, PREFIX_LEN + 41, stream.len()];
        for at in 0..=stream.len() {
            let (_, end) = decode_chunks(1024, &[&stream[..at]]);
            if boundaries.contains(&at) {
                assert!(end.is_ok(), "cut at {at}");
            } else {
                assert_eq!(end.unwrap_err().code(), Code::Internal, "cut at {at}");
            }
        }
    }

    #[test]
    fn message_inside_one_payload_is_not_copied() {
        let (stream, _) = two_messages();
        let payload = Bytes::from(stream);
        let mut decoder = MessageDecoder::new(1024);
        decoder.push(payload.clone());
        let first = decoder.next_message().unwrap().unwrap();
        let second = decoder.next_message().unwrap().unwrap();
        assert_eq!(first.data.as_ptr(), payload[PREFIX_LEN..].as_ptr());
        assert_eq!(
            second.data.as_ptr(),
            payload[2 * PREFIX_LEN + first.data.len()..].as_ptr()
        );
        assert!(decoder.is_empty());
    }

    #[test]
    fn push_next_slices_a_whole_message_without_queueing_it() {
        let (stream, _) = two_messages();
        let payload = Bytes::from(stream);
        let mut decoder = MessageDecoder::new(1024);
        let first = decoder.push_next(payload.clone()).unwrap().unwrap();
        assert_eq!(first.data.as_ptr(), payload[PREFIX_LEN..].as_ptr());
        // Only the rest, the second message, was queued.
        assert_eq!(decoder.chunks.len(), 1);
        assert_eq!(decoder.buffered, PREFIX_LEN + 6);
        let second = decoder.next_message().unwrap().unwrap();
        assert_eq!(&second.data[..], b"second");
        assert!(decoder.is_empty());
        // One whole message and nothing else: the queue is never allocated.
        let single = Bytes::from(frame(false, b"hello"));
        let mut decoder = MessageDecoder::new(1024);
        assert!(decoder.push_next(single).unwrap().is_some());
        assert_eq!(decoder.chunks.capacity(), 0);
        assert!(decoder.finish().is_ok());
    }

    #[test]
    fn a_message_spanning_payloads_is_gathered_into_one_reused_buffer() {
        let body: Vec<u8> = (0..200u8).collect();
        let stream = frame(false, &body);
        let (a, rest) = stream.split_at(50);
        let (b, c) = rest.split_at(100);
        let mut decoder = MessageDecoder::new(1024);
        let mut first = None;
        for round in 0..3 {
            decoder.push(Bytes::copy_from_slice(a));
            assert_eq!(decoder.next_message().unwrap(), None);
            assert_eq!(decoder.chunks.len(), 1, "in one payload: held as it came");
            decoder.push(Bytes::copy_from_slice(b));
            assert_eq!(decoder.next_message().unwrap(), None);
            assert!(
                decoder.chunks.is_empty(),
                "spanning: gathered, payloads let go"
            );
            assert_eq!(decoder.gathered.len(), 145);
            decoder.push(Bytes::copy_from_slice(c));
            let message = decoder.next_message().unwrap().unwrap();
            assert_eq!(message, raw(false, &body), "round {round}");
            let at = message.data.as_ptr();
            drop(message);
            match first {
                None => first = Some(at),
                Some(first) => assert_eq!(first, at, "round {round}: the memory is reused"),
            }
            assert!(decoder.is_empty());
        }
    }

    #[test]
    fn truncation_inside_a_gathered_message_counts_every_byte() {
        let body = [7u8; 40];
        let stream = frame(false, &body);
        let mut decoder = MessageDecoder::new(1024);
        decoder.push(Bytes::copy_from_slice(&stream[..20]));
        decoder.push(Bytes::copy_from_slice(&stream[20..30]));
        assert_eq!(decoder.next_message().unwrap(), None);
        let status = decoder.finish().unwrap_err();
        assert_eq!(status.code(), Code::Internal);
        assert!(status.message().contains("after 25 of 40"), "{status:?}");
    }

    #[test]
    fn is_empty_tracks_partial_input() {
        let mut decoder = MessageDecoder::new(16);
        assert!(decoder.is_empty());
        decoder.push(Bytes::from_static(&[0, 0, 0, 0, 1]));
        assert!(!decoder.is_empty());
        assert_eq!(decoder.next_message().unwrap(), None);
        assert!(!decoder.is_empty(), "in a body, waiting for 1 byte");
        decoder.push(Bytes::from_static(b"k"));
        assert_eq!(decoder.next_message().unwrap(), Some(raw(false, b"k")));
        assert!(decoder.is_empty());
        assert!(decoder.finish().is_ok());
    }

    use crate::test_rng::Rng;

    /// Property: any list of messages, encoded and cut into DATA payloads at random places,
    /// decodes to the same list, through both read paths (`push_next` and `next_message`).
    #[test]
    fn property_random_messages_survive_random_splits() {
        for seed in 1..=300u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let mut wire = Vec::new();
            let mut sent = Vec::new();
            for _ in 0..rng.below(8) {
                let compressed = rng.below(2) == 1;
                let body: Vec<u8> = (0..rng.below(300)).map(|_| rng.next() as u8).collect();
                MessagePrefix {
                    compressed,
                    len: body.len() as u32,
                }
                .encode(&mut wire);
                wire.extend_from_slice(&body);
                sent.push(raw(compressed, &body));
            }
            let mut decoder = MessageDecoder::new(1024);
            let mut got = Vec::new();
            let mut rest = &wire[..];
            while !rest.is_empty() {
                let n = 1 + rng.below(rest.len() as u64) as usize;
                let piece = Bytes::copy_from_slice(&rest[..n]);
                rest = &rest[n..];
                let mut next = if rng.below(2) == 0 {
                    decoder.push_next(piece)
                } else {
                    decoder.push(piece);
                    decoder.next_message()
                };
                while let Some(message) = next.unwrap() {
                    got.push(message);
                    next = decoder.next_message();
                }
            }
            assert_eq!(got, sent, "seed {seed}");
            assert!(decoder.finish().is_ok(), "seed {seed}");
        }
    }

    /// Property: the prefix round-trips for any flag and length.
    #[test]
    fn property_prefix_round_trips() {
        let mut rng = Rng(7);
        for _ in 0..10_000 {
            let prefix = MessagePrefix {
                compressed: rng.below(2) == 1,
                len: rng.next() as u32,
            };
            let mut bytes = Vec::new();
            prefix.encode(&mut bytes);
            let decoded = MessagePrefix::decode(bytes.try_into().unwrap()).unwrap();
            assert_eq!(decoded, prefix);
        }
    }
}

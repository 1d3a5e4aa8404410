//! The client's framer of response messages: DATA payloads gathered into one reused buffer.
//!
//! The second framer of the crate, beside `wire::MessageDecoder` (which the server uses): the
//! same rules and codes (PROTOCOL-HTTP2 § Length-Prefixed-Message: a prefix claiming more than
//! the receive limit is RESOURCE_EXHAUSTED before any body is buffered, a bad flag INTERNAL,
//! END_STREAM inside a message INTERNAL), kept apart only because a measurement says it pays
//! for itself on the client's typical input (see [`Inbox`]).

use bytes::{Buf, BytesMut};

use crate::status::Status;
use crate::wire::{MessagePrefix, PREFIX_LEN, RawMessage, body_len, whole_message};

/// Client-side framing: every DATA payload is appended to one buffer that is reused from
/// message to message, and each whole message is split off it without a further copy.
///
/// Why not slice the payloads as the server role does: a large response message spans many
/// DATA frames (16 KiB each by default), and gathering it needs a contiguous copy anyway. Made
/// into a fresh allocation per message, as the shared decoder first did, that copy page-faulted
/// through new memory for every large message (the allocator returns large freed blocks to the
/// kernel; the profile is in docs/performance.md). Here the buffer's memory is reclaimed once
/// the caller has decoded the previous message, so the copy lands in memory already mapped; for
/// small messages it is one `memcpy` of each payload. The decoder has since learned to reuse
/// its buffer too, and large downloads are as fast through it; this second framer stays because
/// streams of small messages are not (docs/performance.md, § "Why the client keeps its own
/// framer"). The buffer grows only with bytes that arrived (a prefix claiming a large length
/// allocates nothing), and keeps the capacity of the largest message seen, at most the
/// receive limit plus one frame, until the call ends. Same rules and codes as
/// [`MessageDecoder`] (`wire.rs`).
pub(crate) struct Inbox {
    /// Received bytes not yet handed out as messages.
    buf: BytesMut,
    /// Largest message body accepted, in bytes.
    max_len: usize,
}

impl Inbox {
    /// An empty inbox that rejects messages over `max_len` bytes.
    pub(crate) fn new(max_len: usize) -> Inbox {
        Inbox {
            buf: BytesMut::new(),
            max_len,
        }
    }

    /// Appends one DATA payload.
    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The common case, taken first: a whole message with a valid prefix at the front of the
    /// buffer, split off it. `None` in every other case, errors included: [`next_message`]
    /// then finds them (`wire::whole_message` says why this returns no `Result`).
    ///
    /// [`next_message`]: Inbox::next_message
    #[inline]
    pub(crate) fn next_whole(&mut self) -> Option<RawMessage> {
        let (compressed, len) = whole_message(&self.buf, self.max_len)?;
        self.buf.advance(PREFIX_LEN);
        let data = self.buf.split_to(len).freeze();
        Some(RawMessage { compressed, data })
    }

    /// The next whole message; the length is checked against the limit as soon as the prefix
    /// is in, before the body is waited for (RESOURCE_EXHAUSTED; a bad flag is INTERNAL).
    pub(crate) fn next_message(&mut self) -> Result<Option<RawMessage>, Status> {
        if let Some(message) = self.next_whole() {
            return Ok(Some(message));
        }
        // No whole valid message: more bytes are needed, or the prefix is bad.
        if let Some(&head) = self.buf.first_chunk::<PREFIX_LEN>() {
            body_len(MessagePrefix::decode(head)?, self.max_len)?;
        }
        Ok(None)
    }

    /// At END_STREAM: INTERNAL if a prefix or a message was cut short.
    pub(crate) fn finish(&self) -> Result<(), Status> {
        match self.buf.len() {
            0 => Ok(()),
            n if n < PREFIX_LEN => Err(Status::internal(format!(
                "truncated message: stream ended {n} bytes into a {PREFIX_LEN}-byte prefix"
            ))),
            n => Err(Status::internal(format!(
                "truncated message: stream ended after {} message bytes",
                n - PREFIX_LEN
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn message(body: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8];
        out.put_u32(body.len() as u32);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn two_messages_split_at_every_offset() {
        let mut bytes = message(b"hello");
        bytes.extend(message(b""));
        for split in 0..=bytes.len() {
            let mut inbox = Inbox::new(100);
            let mut got = Vec::new();
            for part in [&bytes[..split], &bytes[split..]] {
                inbox.push(part);
                while let Some(raw) = inbox.next_message().unwrap() {
                    got.push(raw.data);
                }
            }
            assert_eq!(got, [&b"hello"[..], &b""[..]], "split at {split}");
            inbox.finish().unwrap();
        }
    }

    #[test]
    fn rejects_as_the_decoder_does() {
        // Over the limit, seen on the prefix alone: nothing of the body is waited for.
        let mut inbox = Inbox::new(4);
        inbox.push(&message(b"hello")[..PREFIX_LEN]);
        let status = inbox.next_message().unwrap_err();
        assert_eq!(status.code(), crate::status::Code::ResourceExhausted);
        // A flag that is neither 0 nor 1.
        let mut inbox = Inbox::new(100);
        inbox.push(&[2, 0, 0, 0, 0]);
        assert_eq!(
            inbox.next_message().unwrap_err().code(),
            crate::status::Code::Internal
        );
        // END_STREAM inside a prefix or a body.
        let mut inbox = Inbox::new(100);
        inbox.push(&[0, 0]);
        assert_eq!(
            inbox.finish().unwrap_err().code(),
            crate::status::Code::Internal
        );
        let mut inbox = Inbox::new(100);
        inbox.push(&message(b"hello")[..7]);
        assert_eq!(inbox.next_message().unwrap(), None);
        assert_eq!(
            inbox.finish().unwrap_err().code(),
            crate::status::Code::Internal
        );
    }

    #[test]
    fn a_huge_claim_allocates_nothing() {
        let mut inbox = Inbox::new(usize::MAX);
        inbox.push(&[0, 0xFF, 0xFF, 0xFF, 0xFF]);
        assert_eq!(inbox.next_message().unwrap(), None);
        assert!(inbox.buf.capacity() < 1024);
    }
}

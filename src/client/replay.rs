//! What a retried client-streaming call sends again: a copy of the request messages read so
//! far, kept only under a retry policy that buffers (gRFC A6 § "Buffered RPCs": a call may be
//! retried only while everything it sent is still in hand).
//!
//! The copies are cheap clones of the batches already sent (`Bytes`), up to the policy's
//! bound; a stream that outgrows it gives its copies up and can no longer be replayed, which
//! makes the call committed from then on (see `retry.rs`).

use std::collections::VecDeque;

use bytes::Bytes;

/// The buffered request messages of a client-streaming call under a retry policy.
pub(crate) struct Recording {
    /// Every batch of encoded messages read so far, in order (cheap clones of the bytes sent).
    batches: Vec<Bytes>,
    /// Their total size.
    bytes: usize,
    /// The bound from the retry policy's client-stream buffer.
    limit: usize,
    /// The stream outgrew the bound: the copies are gone and the call cannot be replayed.
    overflowed: bool,
}

impl Recording {
    /// An empty recording that gives up past `limit` bytes.
    pub(crate) fn new(limit: usize) -> Recording {
        Recording {
            batches: Vec::new(),
            bytes: 0,
            limit,
            overflowed: false,
        }
    }

    /// Keeps a copy of `batch`, or gives up on replaying when it would exceed the bound.
    pub(crate) fn keep(&mut self, batch: &Bytes) {
        if self.overflowed {
            return;
        }
        if self.bytes + batch.len() > self.limit {
            self.overflowed = true;
            self.batches = Vec::new();
            return;
        }
        self.bytes += batch.len();
        self.batches.push(batch.clone());
    }

    /// Is everything read so far still recorded?
    pub(crate) fn complete(&self) -> bool {
        !self.overflowed
    }

    /// The batches to send again, in order.
    pub(crate) fn replay(&self) -> VecDeque<Bytes> {
        self.batches.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_batches_until_the_bound_then_gives_up() {
        let mut recording = Recording::new(10);
        recording.keep(&Bytes::from_static(b"abcd"));
        recording.keep(&Bytes::from_static(b"efgh"));
        assert!(recording.complete());
        assert_eq!(recording.replay(), [&b"abcd"[..], &b"efgh"[..]]);
        // 8 + 4 > 10: the copies go, and stay gone.
        recording.keep(&Bytes::from_static(b"ijkl"));
        assert!(!recording.complete());
        assert!(recording.replay().is_empty());
        recording.keep(&Bytes::from_static(b"m"));
        assert!(!recording.complete());
    }
}

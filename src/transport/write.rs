//! The one flow-controlled writer: bytes of a call into its HTTP/2 stream, never more than the
//! peer's window allows (RFC 9113 §5.2), used by both sides.
//!
//! ```text
//!   reserve_capacity(n) -> capacity() == 0 ? wait poll_capacity : send_data(chunk <= capacity)
//!                       -> ... until every byte is in h2 (and END_STREAM when asked)
//! ```
//!
//! Why: h2 accepts any amount of DATA and buffers what the window does not allow yet, so a fast
//! producer facing a slow reader would grow memory without bound. Here the bytes are handed to
//! h2 only as the window opens; the caller produces its next bytes only once these are in h2's
//! hands, which makes every write a back-pressure point. The bytes to write shrink as chunks go
//! out, so a write can be resumed after `Pending`.
//!
//! Batching (RFC 9113 §6.1; PROTOCOL-HTTP2 § Data Frames: message edges need not match frame
//! edges): both sides gather small messages that are ready together into one buffer of up to
//! [`BATCH_BYTES`] before writing it, because one DATA frame per tiny message costs a frame
//! header and a trip through h2's lock each, and h2 receivers (0.4.20) close a connection with
//! GOAWAY(ENHANCE_YOUR_CALM) once too many small unread frames pile up (see
//! [`super::small_frame_budget`]). A message is never held back waiting for another: each side
//! writes what it has whenever its producer waits.
//!
//! A send stall timeout (`Builder::send_stall_timeout` on the server,
//! `ChannelBuilder::send_stall_timeout` on the client) is a [`StallTimer`] beside the write: it
//! runs while a write waits for window, starts again whenever bytes go out, and stops when the
//! write completes, so it measures "the peer read nothing for this long", not a slow reader.
//!
//! What it does not do: choose the frame size (h2 cuts a write into frames of the peer's
//! SETTINGS_MAX_FRAME_SIZE) or map errors (the caller does, with [`super::error::CallEnd`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use h2::SendStream;
use tokio::time::Sleep;

/// How many encoded bytes a call gathers before writing them, plus at most the message that
/// crossed the line: 64 KiB, HTTP/2's default stream window (RFC 9113 §6.9.2), so a call holds
/// no more than about one default window of encoded bytes. h2 cuts each write into
/// DATA frames of the peer's SETTINGS_MAX_FRAME_SIZE. Why not 16 KiB (one frame at the default
/// frame size): each write reaches the reader as one burst, and a reader whose connection task
/// shares a core with the caller is switched to and from once per burst; four times fewer
/// bursts made a stream of small messages faster to receive, while larger batches gained little
/// more and would come from `mmap`ed memory (docs/performance.md).
pub(crate) const BATCH_BYTES: usize = 64 * 1024;

/// Writes all of `data` (and END_STREAM when `end_stream`) into `send` within the window.
/// `Ready(Ok)` once every byte is in h2; `Pending` while waiting for window, with `data` holding
/// what is left; `Ready(Err)` when the stream can no longer send (reset, connection gone).
pub(crate) fn poll_write(
    send: &mut SendStream<Bytes>,
    data: &mut Bytes,
    end_stream: bool,
    cx: &mut Context<'_>,
) -> Poll<Result<(), h2::Error>> {
    if data.is_empty() {
        if end_stream {
            // An empty DATA frame with END_STREAM needs no window.
            send.send_data(Bytes::new(), true)?;
        }
        return Poll::Ready(Ok(()));
    }
    loop {
        send.reserve_capacity(data.len());
        let capacity = send.capacity();
        if capacity == 0 {
            match ready!(send.poll_capacity(cx)) {
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Err(why_closed(send, cx))),
            }
        }
        let chunk = data.split_to(capacity.min(data.len()));
        let last = data.is_empty();
        send.send_data(chunk, end_stream && last)?;
        if last {
            return Poll::Ready(Ok(()));
        }
    }
}

/// The clock of a send stall timeout: how long a write has waited for window with no byte
/// going out. Created only when a timeout is configured, so a call without one pays nothing.
pub(crate) struct StallTimer {
    timeout: Duration,
    /// Armed while the write waits; `None` while it makes progress or is done.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl StallTimer {
    pub(crate) fn new(timeout: Duration) -> StallTimer {
        StallTimer {
            timeout,
            sleep: None,
        }
    }

    /// The configured timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The write finished (or failed): the clock stops.
    pub(crate) fn stop(&mut self) {
        self.sleep = None;
    }

    /// The write is waiting for window; `progressed` says whether some of its bytes went out in
    /// this poll. Starts the clock, or starts it again after progress; true once it has run
    /// out (and registers `cx` to be woken when it does).
    pub(crate) fn expired(&mut self, progressed: bool, cx: &mut Context<'_>) -> bool {
        let timeout = self.timeout;
        let sleep = match &mut self.sleep {
            None => self.sleep.insert(Box::pin(tokio::time::sleep(timeout))),
            Some(sleep) => {
                if progressed {
                    sleep.as_mut().reset(tokio::time::Instant::now() + timeout);
                }
                sleep
            }
        };
        if sleep.as_mut().poll(cx).is_ready() {
            self.sleep = None;
            return true;
        }
        false
    }
}

/// The stream can no longer send (`poll_capacity` ended): the reset that closed it, as an error.
fn why_closed(send: &mut SendStream<Bytes>, cx: &mut Context<'_>) -> h2::Error {
    match send.poll_reset(cx) {
        Poll::Ready(Ok(reason)) => h2::Error::from(reason),
        Poll::Ready(Err(e)) => e,
        Poll::Pending => h2::Error::from(h2::Reason::CANCEL),
    }
}

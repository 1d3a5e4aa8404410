//! A frame watcher around a connection's byte stream, under h2: it reads the 9-octet frame
//! headers as the bytes pass (RFC 9113 §4.1) and skips the payloads, so that keepalive
//! (gRFC A8) can see what h2 keeps to itself.
//!
//! ```text
//!   socket ──read──▶ Watched ──▶ h2        every frame header read is looked at:
//!                                           PING (not ACK)          -> pings += 1      (server: A8 strikes)
//!                                           HEADERS                 -> highest stream  (server: our GOAWAY's last id)
//!                                           GOAWAY (payload kept)   -> too_many_pings? (client: double keepalive_time)
//!                                           END_STREAM / RST_STREAM -> a call ended    (client: calls open?)
//!                                           any byte                -> activity        (keepalive clocks)
//!   socket ◀─write── Watched ◀── h2        every frame header written is looked at:
//!                                           HEADERS / DATA          -> strikes reset   (server, A8)
//!                                           HEADERS on a new stream -> a call opened   (client)
//!                                           at a frame boundary: our GOAWAY goes in first, h2's later ones are dropped
//! ```
//!
//! Why a watcher: h2 (0.4) answers a received PING itself and tells nobody (gRFC A8's server
//! enforcement must count them), cannot put debug data in the GOAWAY it sends (A8's answer to
//! abuse is GOAWAY(ENHANCE_YOUR_CALM) with debug data `too_many_pings`, RFC 9113 §6.8), and
//! does not say which debug data a received GOAWAY carried (the client doubles its keepalive
//! time only for `too_many_pings`). Reading frame headers needs no copy: the watcher looks at
//! the bytes h2 already read into its own buffer, in place; a payload is only counted down,
//! except a GOAWAY's on the client (at most [`GOAWAY_KEPT`] octets, a frame a connection sees
//! once).
//!
//! Injecting a GOAWAY (server): [`Watch::send_calm_goaway`] asks for one; the next write h2
//! makes that starts at a frame boundary (the watcher tracks the boundaries of what it
//! forwards) gets our frame in front of it. RFC 9113 §6.8: the last-stream-id an endpoint
//! sends must not increase, so every GOAWAY h2 writes after ours (its graceful shutdown sends
//! one with 2^31-1) is dropped from the stream; streams the client opens above our last id are
//! refused by the connection task (`server.rs`).
//!
//! What it does not do: it never changes a byte h2 reads, and it checks nothing (h2 checks
//! frames; a header this watcher misreads only misleads keepalive). A write that starts at a
//! boundary with fewer than 9 octets is forwarded without the GOAWAY check (h2 writes whole
//! control frames from one buffer, so this does not happen with h2).
//!
//! Links: gRFC A8 <https://github.com/grpc/proposal/blob/master/A8-client-side-keepalive.md>,
//! RFC 9113 §4.1, §6.7 (PING), §6.8 (GOAWAY) <https://www.rfc-editor.org/rfc/rfc9113>.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// An HTTP/2 frame header: 24-bit length, type, flags, 31-bit stream id (RFC 9113 §4.1).
pub(crate) const FRAME_HEADER: usize = 9;
/// The client connection preface, which comes before the first frame (RFC 9113 §3.4).
pub(crate) const CLIENT_PREFACE_LEN: usize = 24;
/// Frame types (RFC 9113 §6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
/// END_STREAM on DATA and HEADERS; ACK on PING (both 0x1).
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
/// ENHANCE_YOUR_CALM (RFC 9113 §7).
pub(crate) const ENHANCE_YOUR_CALM: u32 = 0xb;
/// The debug data gRFC A8 puts in a GOAWAY that answers too many pings.
pub(crate) const TOO_MANY_PINGS: &[u8] = b"too_many_pings";
/// How much of a received GOAWAY's payload is kept: last id, code, and enough debug data to
/// compare with [`TOO_MANY_PINGS`].
const GOAWAY_KEPT: usize = 8 + 64;

/// One frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameHead {
    /// Payload length.
    pub(crate) len: u32,
    /// Frame type.
    pub(crate) kind: u8,
    /// Flags.
    pub(crate) flags: u8,
    /// Stream id (the reserved bit cleared).
    pub(crate) stream: u32,
}

impl FrameHead {
    /// Parses 9 octets.
    fn decode(b: &[u8; FRAME_HEADER]) -> FrameHead {
        FrameHead {
            len: u32::from_be_bytes([0, b[0], b[1], b[2]]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// What the scanner reports.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen<'a> {
    /// A complete frame header (its payload follows, skipped).
    Frame(FrameHead),
    /// A GOAWAY's payload, when the scanner keeps them: last-stream-id, error code, debug data
    /// (cut at [`GOAWAY_KEPT`]).
    GoAway {
        /// Last-stream-id.
        last_stream: u32,
        /// Error code.
        code: u32,
        /// Debug data.
        debug: &'a [u8],
    },
}

/// Finds frame headers in a byte stream fed in pieces of any size.
#[derive(Debug, Default)]
pub(crate) struct Scanner {
    /// Octets to pass over before the next header (a payload's rest, or the client preface).
    skip: usize,
    /// A header that arrived in pieces.
    head: [u8; FRAME_HEADER],
    /// How much of `head` is filled.
    have: usize,
    /// Whether GOAWAY payloads are kept and reported.
    keep_goaway: bool,
    /// The GOAWAY payload being kept, and how many of its octets are still to come.
    goaway: Option<(Vec<u8>, usize)>,
}

impl Scanner {
    /// A scanner whose stream starts with `skip` octets that are not frames (the preface).
    pub(crate) fn new(skip: usize, keep_goaway: bool) -> Scanner {
        Scanner {
            skip,
            keep_goaway,
            ..Scanner::default()
        }
    }

    /// Whether the next octet starts a frame header.
    pub(crate) fn at_boundary(&self) -> bool {
        self.skip == 0 && self.have == 0
    }

    /// Octets until the end of the frame being passed, when it is known (not inside a header).
    fn rest_of_frame(&self) -> Option<usize> {
        (self.have == 0).then_some(self.skip)
    }

    /// Feeds the next octets of the stream; `seen` gets every header completed in them.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], mut seen: impl FnMut(Seen<'_>)) {
        // The usual case: no header split across pieces and no GOAWAY payload to keep, so the
        // walk is an offset jumping from header to header in place.
        if !self.keep_goaway && self.have == 0 {
            let mut at = self.skip;
            while at + FRAME_HEADER <= bytes.len() {
                let head =
                    FrameHead::decode(bytes[at..at + FRAME_HEADER].try_into().expect("9 octets"));
                at += FRAME_HEADER + head.len as usize;
                seen(Seen::Frame(head));
            }
            if at >= bytes.len() {
                self.skip = at - bytes.len();
                return;
            }
            self.skip = 0;
            bytes = &bytes[at..];
        }
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                if let Some((kept, left)) = &mut self.goaway {
                    let take = n.min(*left);
                    kept.extend_from_slice(&bytes[..take]);
                    *left -= take;
                }
                self.skip -= n;
                bytes = &bytes[n..];
                if self.skip == 0 {
                    self.finish_goaway(&mut seen);
                }
                continue;
            }
            // A whole header in this piece (the usual case) is read in place.
            let head = if self.have == 0 && bytes.len() >= FRAME_HEADER {
                let (head, rest) = bytes.split_at(FRAME_HEADER);
                bytes = rest;
                FrameHead::decode(head.try_into().expect("9 octets"))
            } else {
                let n = (FRAME_HEADER - self.have).min(bytes.len());
                self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
                self.have += n;
                bytes = &bytes[n..];
                if self.have < FRAME_HEADER {
                    break;
                }
                self.have = 0;
                FrameHead::decode(&self.head)
            };
            self.skip = head.len as usize;
            if self.keep_goaway && head.kind == GOAWAY {
                let keep = self.skip.min(GOAWAY_KEPT);
                self.goaway = Some((Vec::with_capacity(keep), keep));
            }
            seen(Seen::Frame(head));
            if self.skip == 0 {
                self.finish_goaway(&mut seen);
            }
        }
    }

    /// Reports a kept GOAWAY payload once the frame has passed.
    fn finish_goaway(&mut self, seen: &mut impl FnMut(Seen<'_>)) {
        if let Some((kept, _)) = self.goaway.take()
            && kept.len() >= 8
        {
            seen(Seen::GoAway {
                last_stream: u32::from_be_bytes([kept[0], kept[1], kept[2], kept[3]]) & 0x7fff_ffff,
                code: u32::from_be_bytes([kept[4], kept[5], kept[6], kept[7]]),
                debug: &kept[8..],
            });
        }
    }
}

/// A GOAWAY frame: last-stream-id, error code, debug data (RFC 9113 §6.8).
pub(crate) fn goaway_frame(last_stream: u32, code: u32, debug: &[u8]) -> Vec<u8> {
    let len = (8 + debug.len()) as u32;
    let mut frame = Vec::with_capacity(FRAME_HEADER + len as usize);
    frame.extend_from_slice(&len.to_be_bytes()[1..]);
    frame.extend_from_slice(&[GOAWAY, 0, 0, 0, 0, 0]);
    frame.extend_from_slice(&(last_stream & 0x7fff_ffff).to_be_bytes());
    frame.extend_from_slice(&code.to_be_bytes());
    frame.extend_from_slice(debug);
    frame
}

/// What the watcher found, shared with the connection's keepalive logic (server: the
/// connection task; client: the keepalive task). Plain atomics: the watcher runs inside h2's
/// connection, the readers elsewhere.
#[derive(Debug, Default)]
pub(crate) struct Watch {
    /// Set on every read of at least one octet (only when keepalive asks for it).
    pub(crate) read_activity: AtomicBool,
    /// PINGs without ACK received and not yet taken (server).
    pub(crate) pings: AtomicU32,
    /// The highest stream id of a HEADERS frame received (server).
    pub(crate) highest_stream: AtomicU32,
    /// Set when a HEADERS or DATA frame was written (server: A8 resets the strikes).
    pub(crate) sent_headers_or_data: AtomicBool,
    /// Streams the client opened that have not ended (client).
    pub(crate) open_streams: AtomicUsize,
    /// A GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") was received (client).
    pub(crate) too_many_pings: AtomicBool,
    /// The connection is dead: the next read fails (client keepalive timeout).
    kill: AtomicBool,
    /// Set by the client's connection task when the connection has ended.
    pub(crate) ended: AtomicBool,
    /// A GOAWAY to inject: 0 for none, else `1 << 32 | last_stream` (server).
    inject: AtomicU64,
}

impl Watch {
    /// Asks for GOAWAY(last_stream, ENHANCE_YOUR_CALM, "too_many_pings") at the next frame
    /// boundary of the write side; every later GOAWAY h2 writes is dropped.
    pub(crate) fn send_calm_goaway(&self, last_stream: u32) {
        self.inject
            .store(1 << 32 | u64::from(last_stream), Ordering::Release);
    }

    /// Fails every later read of the connection with `TimedOut`, so h2 ends the connection
    /// and every stream on it (client keepalive: the PING was not answered in time).
    pub(crate) fn kill(&self) {
        self.kill.store(true, Ordering::Release);
    }
}

/// Which side the watched connection is, and so what the watcher looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Side {
    /// An accepted connection: count PINGs, note stream ids, reset strikes, inject GOAWAY.
    Server,
    /// A dialled connection: keep GOAWAYs, count open streams.
    Client,
}

/// The byte stream wrapped, its two scanners, and the shared [`Watch`].
pub(crate) struct Watched<IO> {
    /// The connection.
    inner: IO,
    /// Which side.
    side: Side,
    /// Whether reads set [`Watch::read_activity`].
    activity: bool,
    /// Whether the client counts open streams (only `permit_without_calls == false` needs it).
    count_streams: bool,
    /// What was found.
    watch: Arc<Watch>,
    /// Frame headers of what was read.
    reads: Scanner,
    /// Frame headers of what was written.
    writes: Scanner,
    /// Client: streams opened (by our HEADERS) and not yet ended, in increasing order (a
    /// client's stream ids only grow, so opening is a push; few are open at once, so a sorted
    /// vector beats hashing).
    open: Vec<u32>,
    /// Server: our GOAWAY, and how much of it has been written.
    goaway: Option<(Vec<u8>, usize)>,
    /// Server: our GOAWAY went out; h2's are dropped from now on.
    calmed: bool,
    /// Octets of an h2 GOAWAY still to drop.
    dropping: usize,
}

impl<IO> Watched<IO> {
    /// Wraps `inner`. `read_skip`: octets before the first frame read (the server's replayed
    /// client preface). `activity`: track read activity; `count_streams`: the client counts
    /// its open streams.
    pub(crate) fn new(
        inner: IO,
        side: Side,
        watch: Arc<Watch>,
        read_skip: usize,
        activity: bool,
        count_streams: bool,
    ) -> Watched<IO> {
        // The client's own writes start with the preface.
        let write_skip = if side == Side::Client {
            CLIENT_PREFACE_LEN
        } else {
            0
        };
        Watched {
            inner,
            side,
            activity,
            count_streams,
            watch,
            reads: Scanner::new(read_skip, side == Side::Client),
            writes: Scanner::new(write_skip, false),
            open: Vec::new(),
            goaway: None,
            calmed: false,
            dropping: 0,
        }
    }

    /// Looks at octets just read.
    fn saw_read(&mut self, bytes: &[u8]) {
        if self.activity {
            self.watch.read_activity.store(true, Ordering::Relaxed);
        }
        let watch = &self.watch;
        let side = self.side;
        let open = &mut self.open;
        let count = self.count_streams;
        let mut ended = false;
        self.reads.feed(bytes, |seen| match (side, seen) {
            (Side::Server, Seen::Frame(head)) => match head.kind {
                PING if head.flags & ACK == 0 => {
                    watch.pings.fetch_add(1, Ordering::Relaxed);
                }
                HEADERS => {
                    watch
                        .highest_stream
                        .fetch_max(head.stream, Ordering::Relaxed);
                }
                _ => {}
            },
            (Side::Client, Seen::Frame(head)) if count => {
                let end = match head.kind {
                    DATA | HEADERS => head.flags & END_STREAM != 0,
                    RST_STREAM => true,
                    _ => false,
                };
                if end {
                    if let Ok(at) = open.binary_search(&head.stream) {
                        open.remove(at);
                        ended = true;
                    }
                }
            }
            (Side::Client, Seen::GoAway { code, debug, .. })
                if code == ENHANCE_YOUR_CALM && debug == TOO_MANY_PINGS =>
            {
                watch.too_many_pings.store(true, Ordering::Release);
            }
            _ => {}
        });
        if ended {
            self.watch
                .open_streams
                .store(self.open.len(), Ordering::Relaxed);
        }
    }

    /// Looks at octets just written (forwarded to the connection).
    fn saw_write(&mut self, bytes: &[u8]) {
        let watch = &self.watch;
        let side = self.side;
        let open = &mut self.open;
        let count = self.count_streams;
        let mut changed = false;
        self.writes.feed(bytes, |seen| {
            let Seen::Frame(head) = seen else { return };
            match (side, head.kind) {
                (Side::Server, HEADERS | DATA) => {
                    watch.sent_headers_or_data.store(true, Ordering::Relaxed);
                }
                // A call's request HEADERS (trailers never go from a gRPC client); ids grow,
                // so a new one goes last.
                (Side::Client, HEADERS)
                    if count
                        && head.stream != 0
                        && open.last().is_none_or(|&last| head.stream > last) =>
                {
                    open.push(head.stream);
                    changed = true;
                }
                (Side::Client, RST_STREAM) if count => {
                    if let Ok(at) = open.binary_search(&head.stream) {
                        open.remove(at);
                        changed = true;
                    }
                }
                _ => {}
            }
        });
        if changed {
            self.watch
                .open_streams
                .store(self.open.len(), Ordering::Relaxed);
        }
    }
}

impl<IO: AsyncWrite + Unpin> Watched<IO> {
    /// The write path once a GOAWAY has been asked for: ours first at a boundary, h2's dropped.
    fn poll_write_calm(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.dropping > 0 {
            let n = self.dropping.min(buf.len());
            self.dropping -= n;
            // Keep the scanner in step: it sees the dropped frame as passed.
            self.writes.feed(&buf[..n], |_| {});
            return Poll::Ready(Ok(n));
        }
        if self.writes.at_boundary() {
            if let Some((frame, written)) = &mut self.goaway {
                while *written < frame.len() {
                    match Pin::new(&mut self.inner).poll_write(cx, &frame[*written..]) {
                        Poll::Ready(Ok(0)) => {
                            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                        }
                        Poll::Ready(Ok(n)) => *written += n,
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                self.goaway = None;
                self.calmed = true;
            }
            if self.calmed && buf.len() >= FRAME_HEADER {
                let head = FrameHead::decode(buf[..FRAME_HEADER].try_into().expect("9 octets"));
                if head.kind == GOAWAY {
                    // RFC 9113 §6.8: "Endpoints MUST NOT increase the value they send in the
                    // last stream identifier": h2's later GOAWAY never leaves.
                    self.dropping = FRAME_HEADER + head.len as usize;
                    return self.poll_write_calm(cx, buf);
                }
            }
        }
        // Forward up to the next boundary at most, so the check above runs at each one.
        let limit = match self.writes.rest_of_frame() {
            Some(0) => {
                let head = if buf.len() >= FRAME_HEADER {
                    FrameHead::decode(buf[..FRAME_HEADER].try_into().expect("9 octets")).len
                        as usize
                } else {
                    0
                };
                FRAME_HEADER + head
            }
            Some(rest) => rest,
            None => FRAME_HEADER - self.writes.have,
        };
        let take = limit.min(buf.len()).max(1);
        let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &buf[..take]))?;
        self.saw_write(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    /// Whether the write path must go through [`Self::poll_write_calm`].
    fn calm_path(&mut self) -> bool {
        if self.side == Side::Server && !self.calmed && self.goaway.is_none() {
            let asked = self.watch.inject.load(Ordering::Acquire);
            if asked != 0 {
                self.goaway = Some((
                    goaway_frame(asked as u32, ENHANCE_YOUR_CALM, TOO_MANY_PINGS),
                    0,
                ));
            }
        }
        self.goaway.is_some() || self.calmed
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.side == Side::Client && this.watch.kill.load(Ordering::Acquire) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "keepalive PING not acknowledged in time",
            )));
        }
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let filled = buf.filled();
        if filled.len() > before {
            this.saw_read(&filled[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.calm_path() {
            return this.poll_write_calm(cx, buf);
        }
        let n = std::task::ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.saw_write(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.calm_path() {
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| b);
            return this.poll_write_calm(cx, first);
        }
        let n = std::task::ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        let mut left = n;
        for slice in bufs {
            if left == 0 {
                break;
            }
            let take = left.min(slice.len());
            this.saw_write(&slice[..take]);
            left -= take;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A frame: header for `payload` of type `kind`, `flags`, on `stream`.
    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.push(kind);
        out.push(flags);
        out.extend_from_slice(&stream.to_be_bytes());
        out.extend_from_slice(payload);
        out
    }

    fn heads(scanner: &mut Scanner, bytes: &[u8]) -> Vec<(u8, u32)> {
        let mut out = Vec::new();
        scanner.feed(bytes, |seen| {
            if let Seen::Frame(h) = seen {
                out.push((h.kind, h.stream));
            }
        });
        out
    }

    /// RFC 9113 §4.1: frames follow each other; a payload of any length is skipped whole.
    #[test]
    fn headers_are_found_at_every_split() {
        let mut stream = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        stream.extend(frame(0x4, 0, 0, &[0; 6]));
        stream.extend(frame(HEADERS, 0x4, 1, &[0x88; 30]));
        stream.extend(frame(DATA, 1, 1, &[7; 300]));
        stream.extend(frame(PING, 0, 0, &[1; 8]));
        let want = vec![(0x4, 0), (HEADERS, 1), (DATA, 1), (PING, 0)];
        for split in 0..=stream.len() {
            let mut scanner = Scanner::new(CLIENT_PREFACE_LEN, false);
            let mut got = heads(&mut scanner, &stream[..split]);
            got.extend(heads(&mut scanner, &stream[split..]));
            assert_eq!(got, want, "split at {split}");
            assert!(scanner.at_boundary());
        }
    }

    /// RFC 9113 §6.8: last-stream-id, error code, then debug data; kept across any split.
    #[test]
    fn a_goaway_payload_is_kept_at_every_split() {
        let stream = goaway_frame(5, ENHANCE_YOUR_CALM, TOO_MANY_PINGS);
        for split in 0..=stream.len() {
            let mut scanner = Scanner::new(0, true);
            let mut got = None;
            for part in [&stream[..split], &stream[split..]] {
                scanner.feed(part, |seen| {
                    if let Seen::GoAway {
                        last_stream,
                        code,
                        debug,
                    } = seen
                    {
                        got = Some((last_stream, code, debug.to_vec()));
                    }
                });
            }
            assert_eq!(
                got,
                Some((5, ENHANCE_YOUR_CALM, TOO_MANY_PINGS.to_vec())),
                "split at {split}"
            );
        }
    }

    /// A long debug payload is cut at GOAWAY_KEPT, and the frame after it is still found.
    #[test]
    fn a_long_goaway_is_cut_and_skipped() {
        let mut stream = goaway_frame(1, 0, &[b'x'; 1000]);
        stream.extend(frame(PING, 0, 0, &[0; 8]));
        let mut scanner = Scanner::new(0, true);
        let mut debug_len = 0;
        let mut pings = 0;
        scanner.feed(&stream, |seen| match seen {
            Seen::GoAway { debug, .. } => debug_len = debug.len(),
            Seen::Frame(h) if h.kind == PING => pings += 1,
            _ => {}
        });
        assert_eq!((debug_len, pings), (GOAWAY_KEPT - 8, 1));
    }

    /// Server side: PINGs without ACK are counted (A8), PING ACKs are not; HEADERS ids kept.
    #[tokio::test]
    async fn the_server_counts_pings_and_streams() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let watch = Arc::new(Watch::default());
        let mut watched = Watched::new(near, Side::Server, watch.clone(), 0, true, false);
        let mut input = frame(PING, 0, 0, &[0; 8]);
        input.extend(frame(PING, ACK, 0, &[0; 8]));
        input.extend(frame(HEADERS, 0x4, 3, &[0x88]));
        input.extend(frame(PING, 0, 0, &[0; 8]));
        far.write_all(&input).await.unwrap();
        let mut got = vec![0; input.len()];
        watched.read_exact(&mut got).await.unwrap();
        assert_eq!(got, input, "bytes pass unchanged");
        assert_eq!(watch.pings.load(Ordering::Relaxed), 2);
        assert_eq!(watch.highest_stream.load(Ordering::Relaxed), 3);
        assert!(watch.read_activity.load(Ordering::Relaxed));
    }

    /// Server side: our GOAWAY goes in at a frame boundary, never inside a frame, and a later
    /// GOAWAY from h2 (which would raise the last-stream-id) is dropped; other frames pass.
    #[tokio::test]
    async fn the_injected_goaway_lands_between_frames_and_h2s_is_dropped() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let watch = Arc::new(Watch::default());
        let mut watched = Watched::new(near, Side::Server, watch.clone(), 0, false, false);
        let data = frame(DATA, 0, 1, &[9; 100]);
        // Half a frame out, then the GOAWAY is asked for.
        watched.write_all(&data[..50]).await.unwrap();
        watch.send_calm_goaway(1);
        let h2_goaway = goaway_frame(0x7fff_ffff, 0, b"");
        let ping = frame(PING, 0, 0, &[0; 8]);
        let mut rest = data[50..].to_vec();
        rest.extend(&h2_goaway);
        rest.extend(&ping);
        watched.write_all(&rest).await.unwrap();
        watched.flush().await.unwrap();
        drop(watched);
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        let mut want = data.clone();
        want.extend(goaway_frame(1, ENHANCE_YOUR_CALM, TOO_MANY_PINGS));
        want.extend(&ping);
        assert_eq!(got, want);
        assert!(watch.sent_headers_or_data.load(Ordering::Relaxed));
    }

    /// Client side: streams opened by our HEADERS, ended by the server's END_STREAM or a
    /// RST_STREAM either way; a too_many_pings GOAWAY is flagged; a kill fails the next read.
    #[tokio::test]
    async fn the_client_counts_streams_and_sees_too_many_pings() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let watch = Arc::new(Watch::default());
        let mut watched = Watched::new(near, Side::Client, watch.clone(), 0, true, true);
        let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        out.extend(frame(HEADERS, 0x4, 1, &[0x83]));
        out.extend(frame(HEADERS, 0x4, 3, &[0x83]));
        out.extend(frame(HEADERS, 0x4, 5, &[0x83]));
        out.extend(frame(RST_STREAM, 0, 5, &[0, 0, 0, 8]));
        watched.write_all(&out).await.unwrap();
        assert_eq!(watch.open_streams.load(Ordering::Relaxed), 2);
        let mut input = frame(HEADERS, 0x5, 1, &[0x88]);
        input.extend(frame(RST_STREAM, 0, 1, &[0; 4])); // after END_STREAM: counted once
        input.extend(goaway_frame(3, ENHANCE_YOUR_CALM, TOO_MANY_PINGS));
        far.write_all(&input).await.unwrap();
        let mut got = vec![0; input.len()];
        watched.read_exact(&mut got).await.unwrap();
        assert_eq!(watch.open_streams.load(Ordering::Relaxed), 1);
        assert!(watch.too_many_pings.load(Ordering::Relaxed));
        watch.kill();
        let err = watched.read(&mut [0; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    /// Another code, or other debug data, is not A8's answer to pings.
    #[tokio::test]
    async fn other_goaways_are_not_too_many_pings() {
        let (near, mut far) = tokio::io::duplex(1 << 16);
        let watch = Arc::new(Watch::default());
        let mut watched = Watched::new(near, Side::Client, watch.clone(), 0, false, false);
        let mut input = goaway_frame(0, ENHANCE_YOUR_CALM, b"too_many_internal_resets");
        input.extend(goaway_frame(0, 0, TOO_MANY_PINGS));
        far.write_all(&input).await.unwrap();
        let mut got = vec![0; input.len()];
        watched.read_exact(&mut got).await.unwrap();
        assert!(!watch.too_many_pings.load(Ordering::Relaxed));
    }
}

//! The client's connection preface, checked before `h2` sees the connection (RFC 9113 §3.4).
//!
//! ```text
//!  client preface:  "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  (24 octets)
//!                   SETTINGS frame header             (9 octets: length, type 0x4, flags, stream 0)
//!                   ... the SETTINGS payload and every later frame: h2's
//!
//!   what arrives                                  -> what we do
//!   the 24 octets, then a SETTINGS frame header   -> hand the connection to h2, the 33 octets replayed
//!   anything else in the first 24 octets          -> SETTINGS, GOAWAY(0, PROTOCOL_ERROR, "invalid connection preface"), close
//!   a first frame that is not SETTINGS on 0       -> SETTINGS, GOAWAY(0, PROTOCOL_ERROR, "first frame is not SETTINGS"), close
//!   not all 33 octets within the handshake timeout-> SETTINGS, GOAWAY(0, SETTINGS_TIMEOUT, "no client preface in time"), close
//!   EOF or an I/O error                           -> close
//! ```
//!
//! Why in our layer: `h2` (0.4) answers a bad preface by returning an error from its handshake
//! and dropping the socket, with no GOAWAY, and often with a TCP reset (the unread bytes of an
//! HTTP/1.1 request in the socket make the kernel send RST), so the peer sees "connection reset"
//! instead of the PROTOCOL_ERROR §3.4 names; and it waits for the client's first frame for ever,
//! so a connection that sends the preface and then nothing holds its descriptor for good. Reading
//! the 33 octets here costs one short read and a replay buffer that is empty after the first
//! read h2 makes; every later read and write goes straight through.
//!
//! gRPC-Web (feature `web`, a server built with `Builder::web`): [`sniff`] reads the same
//! octets, but a start that is not the preface is handed on, replayed, to the HTTP/1.1 server
//! instead of refused; the preface still goes to h2, checked as above.
//!
//! Closing politely: after the GOAWAY we half-close our side and read (and drop) what the peer
//! still sends, at most [`LINGER_BYTES`] for at most [`LINGER`], so the kernel does not answer
//! unread bytes with a reset that would destroy the GOAWAY before the peer reads it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The preface and the header of the SETTINGS frame that must follow it.
const CHECKED: usize = PREFACE.len() + FRAME_HEADER;
/// An HTTP/2 frame header: 24-bit length, type, flags, 31-bit stream id (RFC 9113 §4.1).
const FRAME_HEADER: usize = 9;
/// Frame types and error codes we write or check (RFC 9113 §6, §7).
const SETTINGS: u8 = 0x4;
const GOAWAY: u8 = 0x7;
const PROTOCOL_ERROR: u32 = 0x1;
const SETTINGS_TIMEOUT: u32 = 0x4;
/// How long, and how much, we read after our GOAWAY before closing (see the module doc).
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 * 1024;

/// Reads and checks the client's preface and first frame header within `timeout`. On success
/// the connection comes back wrapped so that h2 reads those 33 octets again; on failure the
/// peer has been answered (see the module doc) and the connection is closed.
pub(crate) async fn read_preface<IO>(mut io: IO, timeout: Duration) -> Option<Replay<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = [0u8; CHECKED];
    let outcome = tokio::time::timeout(timeout, read_checked(&mut io, &mut head)).await;
    let refusal = match outcome {
        Ok(Ok(None)) => {
            return Some(Replay {
                head,
                pos: 0,
                #[cfg(feature = "web")]
                end: CHECKED,
                inner: io,
            });
        }
        Ok(Ok(Some(refusal))) => refusal,
        Ok(Err(_)) => return None,
        Err(_) => (SETTINGS_TIMEOUT, "no client preface in time"),
    };
    refuse(io, refusal).await;
    None
}

/// What the first octets of a connection were, when the server also serves HTTP/1.1
/// (feature `web`).
#[cfg(feature = "web")]
pub(crate) enum Sniffed<IO> {
    /// The HTTP/2 preface and SETTINGS header: for h2, as [`read_preface`] returns it.
    Http2(Replay<IO>),
    /// Anything else: an HTTP/1.1 request, for hyper, with the octets read so far replayed.
    Http1(Replay<IO>),
}

/// [`read_preface`] for a server that also speaks HTTP/1.1 (gRPC-Web): a start that is not the
/// HTTP/2 preface goes to HTTP/1.1 instead of being refused. The preface's first octet is `P`,
/// as is POST's, so the two part at the second octet at the latest ("PR" against "PO").
#[cfg(feature = "web")]
pub(crate) async fn sniff<IO>(mut io: IO, timeout: Duration) -> Option<Sniffed<IO>>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = [0u8; CHECKED];
    let mut filled = 0;
    let outcome = tokio::time::timeout(timeout, async {
        while filled < CHECKED {
            let n = io.read(&mut head[filled..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            let end = (filled + n).min(PREFACE.len());
            filled += n;
            if end > 0 && head[..end] != PREFACE[..end] {
                return Ok(false);
            }
        }
        io::Result::Ok(true)
    })
    .await;
    match outcome {
        Ok(Ok(false)) => Some(Sniffed::Http1(Replay {
            head,
            pos: 0,
            end: filled,
            inner: io,
        })),
        Ok(Ok(true)) => {
            let frame = &head[PREFACE.len()..];
            let stream = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
            if frame[3] != SETTINGS || frame[4] & 0x1 != 0 || stream != 0 {
                refuse(io, (PROTOCOL_ERROR, "first frame is not SETTINGS")).await;
                return None;
            }
            Some(Sniffed::Http2(Replay {
                head,
                pos: 0,
                end: CHECKED,
                inner: io,
            }))
        }
        Ok(Err(_)) => None,
        Err(_) => {
            refuse(io, (SETTINGS_TIMEOUT, "no client preface in time")).await;
            None
        }
    }
}

/// Fills `head`, checking each octet of the preface as it arrives (an HTTP/1.1 request is
/// refused at its first line, without waiting for 33 octets that may never come). `Some` is
/// the refusal to send.
async fn read_checked<IO: AsyncRead + Unpin>(
    io: &mut IO,
    head: &mut [u8; CHECKED],
) -> io::Result<Option<(u32, &'static str)>> {
    let mut filled = 0;
    while filled < CHECKED {
        let n = io.read(&mut head[filled..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let end = (filled + n).min(PREFACE.len());
        if filled < end && head[filled..end] != PREFACE[filled..end] {
            return Ok(Some((PROTOCOL_ERROR, "invalid connection preface")));
        }
        filled += n;
    }
    let frame = &head[PREFACE.len()..];
    let stream = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
    // "This sequence MUST be followed by a SETTINGS frame" (§3.4); an ACK there would be
    // answering SETTINGS we have not sent yet (§6.5).
    if frame[3] != SETTINGS || frame[4] & 0x1 != 0 || stream != 0 {
        return Ok(Some((PROTOCOL_ERROR, "first frame is not SETTINGS")));
    }
    Ok(None)
}

/// Sends our (empty) SETTINGS, the server preface every HTTP/2 peer expects first, then
/// GOAWAY(last stream 0, `code`, `debug`); half-closes and lingers (module doc).
async fn refuse<IO: AsyncRead + AsyncWrite + Unpin>(mut io: IO, (code, debug): (u32, &str)) {
    let mut out = Vec::with_capacity(2 * FRAME_HEADER + 8 + debug.len());
    out.extend_from_slice(&frame_header(0, SETTINGS));
    out.extend_from_slice(&frame_header(8 + debug.len(), GOAWAY));
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(debug.as_bytes());
    let linger = async {
        io.write_all(&out).await?;
        io.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match io.read(&mut sink).await? {
                0 => break,
                n => drained += n,
            }
        }
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(LINGER, linger).await;
}

/// A frame header for a frame of `len` octets and type `kind` on stream 0, no flags.
fn frame_header(len: usize, kind: u8) -> [u8; FRAME_HEADER] {
    let len = (len as u32).to_be_bytes();
    [len[1], len[2], len[3], kind, 0, 0, 0, 0, 0]
}

/// A connection whose first [`CHECKED`] octets were read already: reads give those back first,
/// then go to the connection; writes always go straight through.
pub(crate) struct Replay<IO> {
    head: [u8; CHECKED],
    pos: usize,
    /// How many octets of `head` were read: [`CHECKED`], or fewer for a sniffed HTTP/1.1 start
    /// (feature `web`; without it, always [`CHECKED`]).
    #[cfg(feature = "web")]
    end: usize,
    inner: IO,
}

impl<IO> Replay<IO> {
    /// How many octets of `head` are to be replayed.
    fn end(&self) -> usize {
        #[cfg(feature = "web")]
        return self.end;
        #[cfg(not(feature = "web"))]
        CHECKED
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Replay<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let end = this.end();
        if this.pos < end {
            let n = (end - this.pos).min(buf.remaining());
            buf.put_slice(&this.head[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Replay<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
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

    /// Runs `read_preface` on `input` written by a peer that then keeps its end open.
    async fn outcome(input: &[u8]) -> (bool, Vec<u8>) {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        client.write_all(input).await.unwrap();
        let accepted = read_preface(server, Duration::from_millis(200)).await;
        let ok = accepted.is_some();
        drop(accepted);
        let mut answer = Vec::new();
        let _ = client.read_to_end(&mut answer).await;
        (ok, answer)
    }

    fn good_start() -> Vec<u8> {
        let mut bytes = PREFACE.to_vec();
        bytes.extend_from_slice(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
        bytes
    }

    /// The GOAWAY's error code in an answer (after our 9-octet empty SETTINGS).
    fn goaway_code(answer: &[u8]) -> u32 {
        assert_eq!(&answer[..FRAME_HEADER], &frame_header(0, SETTINGS));
        assert_eq!(answer[FRAME_HEADER + 3], GOAWAY);
        let at = 2 * FRAME_HEADER + 4;
        u32::from_be_bytes(answer[at..at + 4].try_into().unwrap())
    }

    #[tokio::test]
    async fn a_good_preface_is_replayed_whole() {
        let (server, mut client) = tokio::io::duplex(1 << 16);
        let mut input = good_start();
        input.extend_from_slice(b"rest");
        client.write_all(&input).await.unwrap();
        let mut replay = read_preface(server, Duration::from_secs(1)).await.unwrap();
        let mut got = vec![0u8; input.len()];
        replay.read_exact(&mut got).await.unwrap();
        assert_eq!(got, input);
    }

    #[tokio::test]
    async fn an_http1_request_gets_goaway_protocol_error() {
        let (ok, answer) = outcome(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(!ok);
        assert_eq!(goaway_code(&answer), PROTOCOL_ERROR);
        assert!(answer.ends_with(b"invalid connection preface"));
    }

    #[tokio::test]
    async fn a_first_frame_other_than_settings_gets_protocol_error() {
        let mut input = PREFACE.to_vec();
        input.extend_from_slice(&[0, 0, 8, 0x6, 0, 0, 0, 0, 0]); // PING
        let (ok, answer) = outcome(&input).await;
        assert!(!ok);
        assert_eq!(goaway_code(&answer), PROTOCOL_ERROR);
        assert!(answer.ends_with(b"first frame is not SETTINGS"));
    }

    #[tokio::test]
    async fn a_preface_then_nothing_times_out() {
        let (ok, answer) = outcome(PREFACE).await;
        assert!(!ok);
        assert_eq!(goaway_code(&answer), SETTINGS_TIMEOUT);
    }

    /// With HTTP/1.1 sniffing on (feature `web`): an HTTP/1.1 request goes to HTTP/1.1 with
    /// every octet read so far replayed; the HTTP/2 preface still goes to h2.
    #[cfg(feature = "web")]
    #[tokio::test]
    async fn sniffing_parts_http1_from_http2() {
        let request = b"POST /a.B/C HTTP/1.1\r\nhost: x\r\n\r\n";
        let (server, mut client) = tokio::io::duplex(1 << 16);
        client.write_all(request).await.unwrap();
        let Some(Sniffed::Http1(mut io)) = sniff(server, Duration::from_secs(1)).await else {
            panic!("an HTTP/1.1 request was not taken as HTTP/1.1");
        };
        let mut got = vec![0u8; request.len()];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..], &request[..]);

        let (server, mut client) = tokio::io::duplex(1 << 16);
        client.write_all(&good_start()).await.unwrap();
        assert!(matches!(
            sniff(server, Duration::from_secs(1)).await,
            Some(Sniffed::Http2(_))
        ));
    }

    #[tokio::test]
    async fn a_preface_split_at_every_octet_is_accepted() {
        let input = good_start();
        for split in 1..input.len() {
            let (server, mut client) = tokio::io::duplex(1 << 16);
            let (a, b) = input.split_at(split);
            let (a, b) = (a.to_vec(), b.to_vec());
            let writer = tokio::spawn(async move {
                client.write_all(&a).await.unwrap();
                tokio::task::yield_now().await;
                client.write_all(&b).await.unwrap();
                client
            });
            assert!(
                read_preface(server, Duration::from_secs(1)).await.is_some(),
                "split at {split}"
            );
            drop(writer.await.unwrap());
        }
    }
}

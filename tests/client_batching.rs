//! How the client puts request messages on the wire (`src/client/sink.rs`): a client stream's
//! ready messages are coalesced into few DATA frames, a message is never held back waiting for
//! the next one, and a bidi `RequestSink` delivers each message on its own. The servers are raw
//! `h2::server` on `127.0.0.1:0` (`raw_h2_support`), so the tests see the DATA frames exactly as
//! sent; the bidi ping-pong, which reads no frames, talks to the echo server.

mod client_support;
mod raw_h2_support;

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use bare_grpc::{Channel, Code, Request};
use client_support::{BIDI, IterStream, bounded, start_echo};
use h2::RecvStream;
use raw_h2_support::{answer, bad_server, grpc_head, message, serve, trailers};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// What the server saw of one request body.
#[derive(Debug, Default)]
struct Seen {
    /// DATA frames with a payload.
    frames: usize,
    /// Whole messages.
    messages: usize,
}

/// Counts whole Length-Prefixed-Messages (PROTOCOL-HTTP2 § Requests: a 1-byte flag, a
/// big-endian u32 length, that many bytes) across DATA payloads, whatever their edges.
#[derive(Default)]
struct MessageCounter {
    /// Bytes of the current prefix seen so far.
    prefix: Vec<u8>,
    /// Body bytes of the current message still to come, once its prefix is whole.
    body_left: usize,
}

impl MessageCounter {
    /// How many messages end within `data`.
    fn count(&mut self, mut data: &[u8]) -> usize {
        let mut ended = 0;
        while !data.is_empty() {
            if self.prefix.len() < 5 {
                let take = (5 - self.prefix.len()).min(data.len());
                self.prefix.extend_from_slice(&data[..take]);
                data = &data[take..];
                if self.prefix.len() < 5 {
                    break;
                }
                assert!(
                    self.prefix[0] <= 1,
                    "well-framed request: flag {}",
                    self.prefix[0]
                );
                self.body_left = u32::from_be_bytes(self.prefix[1..5].try_into().unwrap()) as usize;
            }
            let take = self.body_left.min(data.len());
            self.body_left -= take;
            data = &data[take..];
            if self.body_left == 0 {
                self.prefix.clear();
                ended += 1;
            }
        }
        ended
    }
}

/// Reads a request body to its end (or until `stop_after` messages), counting DATA frames
/// and messages, and releasing the window as it goes.
async fn read_body(body: &mut RecvStream, stop_after: Option<usize>) -> Seen {
    let mut seen = Seen::default();
    let mut messages = MessageCounter::default();
    while stop_after.is_none_or(|n| seen.messages < n) {
        let Some(data) = body.data().await else {
            break;
        };
        let data = data.expect("request DATA");
        if data.is_empty() {
            continue;
        }
        let _ = body.flow_control().release_capacity(data.len());
        seen.frames += 1;
        seen.messages += messages.count(&data);
    }
    seen
}

/// A server for one connection whose every call reads the request (up to `stop_after`
/// messages), reports what it saw on `seen`, and answers "done".
async fn counting_server(stop_after: Option<usize>) -> (SocketAddr, mpsc::Receiver<Seen>) {
    let (report, seen) = mpsc::channel(4);
    let addr = bad_server(move |request, respond| {
        let report = report.clone();
        async move {
            let mut body = request.into_body();
            let seen = read_body(&mut body, stop_after).await;
            answer(respond, "done");
            let _ = report.send(seen).await;
        }
    })
    .await;
    (addr, seen)
}

/// `count` messages, all ready at once ("m9", "m8", ... counting down).
fn ready(count: usize) -> IterStream<impl Iterator<Item = String> + Unpin> {
    IterStream((0..count).rev().map(|left| format!("m{}", left % 10)))
}

/// One message, then nothing more, ever (the stream never ends).
struct OneThenWait {
    /// Has the message gone out?
    sent: bool,
}

impl futures_core::Stream for OneThenWait {
    type Item = String;
    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<String>> {
        if self.sent {
            return Poll::Pending;
        }
        self.sent = true;
        Poll::Ready(Some("only".to_owned()))
    }
}

#[tokio::test]
async fn a_client_stream_of_small_ready_messages_is_coalesced() {
    const COUNT: usize = 100_000;
    let (addr, mut seen) = counting_server(None).await;
    let channel = Channel::lazy(&addr.to_string()).unwrap();
    let call = channel
        .client_streaming::<String, String, _>("/test.Batch/Upload", Request::new(ready(COUNT)));
    let response = bounded(call).await.unwrap();
    assert_eq!(response.into_inner(), "done");
    let seen = seen.recv().await.expect("the server's count");
    assert_eq!(seen.messages, COUNT);
    // 100,000 messages of 9 bytes on the wire are 900,000 bytes: 55 DATA frames of 16 KiB,
    // about twice that as the server's 64 KiB window hands out capacity in pieces. One frame
    // per message would be 100,000 (and h2 servers call that abuse).
    assert!(
        seen.frames <= COUNT / 500,
        "{} DATA frames for {COUNT} messages",
        seen.frames
    );
}

#[tokio::test]
async fn a_message_is_sent_when_the_stream_has_no_next_one_ready() {
    // The server answers after the first message; the stream never ends. A client that held
    // the message back to fill a batch would wait forever.
    let (addr, mut seen) = counting_server(Some(1)).await;
    let channel = Channel::lazy(&addr.to_string()).unwrap();
    let call = channel.client_streaming::<String, String, _>(
        "/test.Batch/Upload",
        Request::new(OneThenWait { sent: false }),
    );
    let response = bounded(call).await;
    assert_eq!(response.unwrap().into_inner(), "done");
    let seen = seen.recv().await.expect("the server's count");
    assert_eq!((seen.frames, seen.messages), (1, 1));
}

#[tokio::test]
async fn bidi_delivers_each_message_before_the_next_is_sent() {
    // An echo that answers each message as it arrives: a ping-pong only completes when every
    // `send` reaches the server on its own.
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    bounded(async {
        let (mut sink, mut answers) = channel
            .bidi::<String, String>(BIDI, Request::new(()))
            .await
            .unwrap();
        for i in 0..200 {
            sink.send(format!("ping {i}")).await.unwrap();
            let back = answers.message().await.unwrap();
            assert_eq!(back, Some(format!("ping {i}")));
        }
        sink.finish();
        assert_eq!(answers.message().await.unwrap(), None);
    })
    .await;
}

#[tokio::test]
async fn send_after_the_server_ended_the_call_fails() {
    // The server answers at once and resets the request side: later sends must fail instead
    // of queueing forever.
    let (addr, _seen) = counting_server(Some(0)).await;
    let channel = Channel::lazy(&addr.to_string()).unwrap();
    let outcome = bounded(async {
        let (mut sink, mut answers) = channel
            .bidi::<String, String>("/test.Batch/Early", Request::new(()))
            .await
            .unwrap();
        assert_eq!(answers.message().await.unwrap().as_deref(), Some("done"));
        assert_eq!(answers.message().await.unwrap(), None);
        let mut failed = None;
        for i in 0..1_000 {
            if let Err(status) = sink.send(format!("late {i}")).await {
                failed = Some(status);
                break;
            }
        }
        failed
    })
    .await;
    let status = outcome.expect("every send after the end succeeded");
    assert_ne!(status.code(), Code::Ok);
}

/// A byte stream that reports, once, when `target` bytes have been written through it.
struct CountingIo {
    /// The socket.
    inner: tokio::net::TcpStream,
    /// Bytes written so far.
    written: usize,
    /// When to report.
    target: usize,
    /// Where to report.
    reached: Option<tokio::sync::oneshot::Sender<()>>,
}

impl tokio::io::AsyncRead for CountingIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for CountingIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &polled {
            self.written += n;
            if self.written >= self.target {
                if let Some(reached) = self.reached.take() {
                    let _ = reached.send(());
                }
            }
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_window_full_of_small_frames_is_not_called_abuse() {
    // The server writes one DATA frame per message, as grpc-go does, and all of them fit in
    // the client's default windows; the caller reads nothing until the server has written
    // them all. h2's default small-frame budget would close the connection with
    // ENHANCE_YOUR_CALM long before that; the channel's budget covers its window.
    const COUNT: usize = 150_000;
    let one = message("m");
    let total = COUNT * (one.len() + 9);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (reached_tx, reached) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        let io = CountingIo {
            inner: tcp,
            written: 0,
            target: total,
            reached: Some(reached_tx),
        };
        serve(io, move |_request, mut respond| {
            let one = one.clone();
            async move {
                let mut body = respond.send_response(grpc_head(), false).unwrap();
                for _ in 0..COUNT {
                    body.send_data(one.clone(), false).unwrap();
                }
                body.send_trailers(trailers(&[("grpc-status", "0")]))
                    .unwrap();
            }
        })
        .await;
    });
    let channel = Channel::lazy(&addr.to_string()).unwrap();
    let outcome = bounded(async {
        let mut stream = channel
            .server_streaming::<String, String>("/test.Batch/Pump", Request::new("go".into()))
            .await?;
        reached.await.expect("the server wrote every frame");
        let mut n = 0;
        while stream.message().await?.is_some() {
            n += 1;
        }
        Ok::<usize, bare_grpc::Status>(n)
    })
    .await;
    assert_eq!(outcome.unwrap(), COUNT);
}

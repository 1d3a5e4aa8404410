//! gRPC-Web's HTTP/1.1 side: a connection whose first octets were not the HTTP/2 preface
//! (`transport::preface::sniff`), served by hyper's HTTP/1.1 server (RFC 9112), each request
//! answered by the bridge (`bridge.rs`). Keep-alive, chunked response bodies and graceful
//! shutdown are hyper's; what is ours is the connection's own loopback, driven in this task.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::rt::ReadBufCursor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;

use super::bridge::{Inbound, Outbound, answer};
use crate::first::{First, first};
use crate::peer::Peer;
use crate::server::Shared;

/// Serves one HTTP/1.1 connection (the sniffed first octets were not the HTTP/2 preface)
/// until it closes, or until shutdown lets its request in progress finish.
pub(crate) async fn serve_http1<IO>(
    shared: Arc<Shared>,
    io: IO,
    peer: Peer,
    mut shutdown: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // This connection's own loopback, driven in this task beside hyper: a call crosses no
    // task boundary on its way to the handler and back.
    let Some(web) = shared.web.as_ref() else {
        return;
    };
    let Ok((sender, driver)) = web.loopback(peer.clone()).await else {
        return;
    };
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let shared = Arc::clone(&shared);
        let peer = peer.clone();
        let sender = sender.clone();
        async move {
            let (parts, body) = request.into_parts();
            let answer = answer(&shared, parts, Inbound::H1(body), &peer, Some(sender)).await;
            let mut response = http::Response::new(answer.body);
            *response.status_mut() = answer.status;
            *response.headers_mut() = answer.headers;
            Ok::<_, Infallible>(response)
        }
    });
    let hyper = async move {
        let connection =
            hyper::server::conn::http1::Builder::new().serve_connection(HyperIo::new(io), service);
        let mut connection = std::pin::pin!(connection);
        if *shutdown.borrow() {
            connection.as_mut().graceful_shutdown();
        } else if let First::B(_) = first(shutdown.changed(), connection.as_mut()).await {
            return;
        } else {
            connection.as_mut().graceful_shutdown();
        }
        let _ = connection.await;
    };
    // Once hyper is done, nothing can use the loopback any more: it goes with it.
    let _ = first(hyper, driver).await;
}

impl hyper::body::Body for Outbound {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Outbound::Empty => Poll::Ready(None),
            Outbound::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Outbound::Stream(body) => body
                .poll_chunk(cx)
                .map(|chunk| chunk.map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Outbound::Empty => true,
            Outbound::Full(data) => data.is_none(),
            Outbound::Stream(body) => body.done,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Outbound::Empty => SizeHint::with_exact(0),
            Outbound::Full(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Outbound::Stream(_) => SizeHint::default(),
        }
    }
}

/// A tokio byte stream as hyper's I/O traits. Reads go through a buffer of its own, made
/// once: hyper's cursor can only be filled from initialized bytes without `unsafe`, and a
/// fresh zeroed array per read cost more than the rest of the read path (a profile of the
/// HTTP/1.1 bench row had `memset` at 28 % of the server's instructions).
struct HyperIo<IO> {
    io: IO,
    scratch: Box<[u8]>,
}

impl<IO> HyperIo<IO> {
    fn new(io: IO) -> Self {
        HyperIo {
            io,
            scratch: vec![0u8; 16 * 1024].into_boxed_slice(),
        }
    }
}

impl<IO: AsyncRead + Unpin> hyper::rt::Read for HyperIo<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let want = buf.remaining().min(this.scratch.len());
        let mut read = ReadBuf::new(&mut this.scratch[..want]);
        ready!(Pin::new(&mut this.io).poll_read(cx, &mut read))?;
        buf.put_slice(read.filled());
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

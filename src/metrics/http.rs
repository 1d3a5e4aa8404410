//! `/metrics` over plain HTTP/1.1 (RFC 9112), served by hyper's HTTP/1 connection on tokio's
//! `TcpStream` through [`Io`], a small adapter of ours between the two I/O trait families.
//!
//! ```text
//!   GET /metrics HTTP/1.1            ->  200, content-type: text/plain; version=0.0.4; charset=utf-8
//!   HEAD /metrics                    ->  200, same headers, no body
//!   POST /metrics (any other method) ->  405, allow: GET, HEAD
//!   GET /anything-else               ->  404
//! ```
//!
//! Why the adapter is ours: `hyper-util`'s `TokioIo` does this job with `unsafe` (it hands
//! tokio the uninitialised part of hyper's buffer); this crate forbids `unsafe`, so [`Io`]
//! reads into a small initialised buffer and copies it with hyper's safe `put_slice`. One copy
//! per read is nothing next to rendering the exposition text.
//!
//! Limits, since this listens on a port of its own: at most [`MAX_CONNECTIONS`] connections at
//! once (more are closed on accept), and each connection lives at most [`CONNECTION_LIFETIME`]
//! (hyper's own header-read timeout needs a timer we do not wire up; this bound covers a client
//! that opens a connection and never finishes its request). Scrapers reconnect as a matter of
//! course.

use crate::first::{First, first};
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{Pin, pin};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::rt::ReadBufCursor;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::Metrics;

/// Connections served at once; further ones are closed as soon as they are accepted.
pub const MAX_CONNECTIONS: usize = 64;

/// The longest one connection may stay open.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(120);

/// How long the accept loop pauses after an error that is not about one connection.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

impl Metrics {
    /// Serves `GET /metrics` on `listener` until the process ends.
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves `GET /metrics` on `listener` until `signal` completes; open connections are then
    /// closed.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> io::Result<()> {
        let mut signal = pin!(signal);
        let mut connections = JoinSet::new();
        loop {
            let accepted = match first(&mut signal, listener.accept()).await {
                First::A(()) => break,
                First::B(accepted) => accepted,
            };
            while connections.try_join_next().is_some() {}
            let tcp = match accepted {
                Ok((tcp, _peer)) => tcp,
                // A failure that concerns one connection (the peer reset before we accepted).
                Err(error) if is_per_connection(&error) => continue,
                // Anything else (out of file descriptors, say) may pass: wait a moment rather
                // than spin on a listener that fails at once.
                Err(_) => {
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            };
            if connections.len() >= MAX_CONNECTIONS {
                drop(tcp);
                continue;
            }
            connections.spawn(serve_connection(self.clone(), tcp));
        }
        connections.shutdown().await;
        Ok(())
    }
}

/// Accept errors that concern one connection, not the listener.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// One HTTP/1.1 connection, keep-alive included, bounded in time.
async fn serve_connection(metrics: Metrics, tcp: TcpStream) {
    let service = hyper::service::service_fn(move |request: http::Request<Incoming>| {
        let response = respond(&metrics, &request);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(Io(tcp), service);
    // Errors are the peer's business (it closed early, sent garbage): nothing to report.
    let _ = tokio::time::timeout(CONNECTION_LIFETIME, connection).await;
}

/// The answer to one request (see the table in the module doc).
fn respond<B>(metrics: &Metrics, request: &http::Request<B>) -> http::Response<Full<Bytes>> {
    let mut response = http::Response::new(Full::new(Bytes::new()));
    if request.uri().path() != "/metrics" {
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        return response;
    }
    if request.method() != http::Method::GET && request.method() != http::Method::HEAD {
        *response.status_mut() = http::StatusCode::METHOD_NOT_ALLOWED;
        response.headers_mut().insert(
            http::header::ALLOW,
            http::HeaderValue::from_static("GET, HEAD"),
        );
        return response;
    }
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(TEXT_FORMAT),
    );
    *response.body_mut() = Full::new(Bytes::from(metrics.render()));
    response
}

/// tokio's `AsyncRead + AsyncWrite` as hyper's `Read + Write`, without `unsafe`.
struct Io(TcpStream);

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut scratch = [0u8; 4096];
        let want = buf.remaining().min(scratch.len());
        let mut read = ReadBuf::new(&mut scratch[..want]);
        ready!(Pin::new(&mut self.get_mut().0).poll_read(cx, &mut read))?;
        buf.put_slice(read.filled());
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: http::Method, path: &str) -> http::Request<()> {
        http::Request::builder()
            .method(method)
            .uri(path)
            .body(())
            .unwrap()
    }

    #[test]
    fn routes() {
        let metrics = Metrics::new();
        let ok = respond(&metrics, &request(http::Method::GET, "/metrics"));
        assert_eq!(ok.status(), http::StatusCode::OK);
        assert_eq!(ok.headers()[http::header::CONTENT_TYPE], TEXT_FORMAT);
        let head = respond(&metrics, &request(http::Method::HEAD, "/metrics"));
        assert_eq!(head.status(), http::StatusCode::OK);
        let post = respond(&metrics, &request(http::Method::POST, "/metrics"));
        assert_eq!(post.status(), http::StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(post.headers()[http::header::ALLOW], "GET, HEAD");
        let other = respond(&metrics, &request(http::Method::GET, "/"));
        assert_eq!(other.status(), http::StatusCode::NOT_FOUND);
    }
}

//! Server side of the transport: accept loop, h2 handshake, the calls of each connection, graceful
//! shutdown (RFC 9113 §6.8 GOAWAY; PROTOCOL-HTTP2 § Connection Management).
//!
//! ```text
//!  serve()            ── accept TCP ──▶ serve_connection()  (one task per connection)
//!                                            │ h2 handshake: SETTINGS from ConnectionConfig
//!                                            │ loop: accept stream ──▶ CallSet (polled here)
//!  shutdown signal ──▶ watch ──────────────▶ │ graceful_shutdown(): GOAWAY(last id), keep
//!                                            │   driving until every open stream has ended
//!  drain timeout  ──▶ abort what is left      ▼ closed
//! ```
//!
//! Why the calls run inside the connection task (`call_set`): a call's frames all pass through
//! its connection's h2 state anyway, and polling the calls where the connection is polled saves
//! a task, a cross-task wake-up per frame and a context switch per call. The benchmark harness
//! (`bench/`) measured it against a task per stream (`docs/performance.md`).
//!
//! The transport names nothing of the server above it: the server hands it a [`Streams`] (its
//! settings, and what to start for each stream a client opens), so the import graph points one
//! way, server to transport.
//!
//! TLS (feature `tls`) is a different `start` for [`serve`]: `transport::tls` runs the handshake
//! and hands the decrypted stream to [`serve_connection`], which is generic over the byte stream.
//!
//! What it does not do: HTTP/1.1 (gRPC requires HTTP/2; a client without prior knowledge fails
//! the h2 preface and the connection closes). The exception is a server built with
//! `Builder::web` (feature `web`): its connections are sniffed (`preface::sniff`) and one that
//! does not open with the HTTP/2 preface goes to [`Streams::serve_http1`], gRPC-Web's
//! HTTP/1.1 side (`server::web`).

use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::first::{First, first};
use crate::peer::Peer;
pub(crate) use crate::transport::call_set::Call;
use crate::transport::call_set::CallSet;

/// The HTTP/2 settings of every connection of one server, and how long shutdown drains.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConnectionConfig {
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients.
    pub(crate) max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE (per stream).
    pub(crate) initial_stream_window: u32,
    /// The connection-level receive window.
    pub(crate) initial_connection_window: u32,
    /// SETTINGS_MAX_FRAME_SIZE.
    pub(crate) max_frame_size: Option<u32>,
    /// How long graceful shutdown waits for in-flight calls before closing connections.
    pub(crate) drain_timeout: Duration,
    /// SETTINGS_MAX_HEADER_LIST_SIZE announced and enforced (RFC 9113 §6.5.2, §10.5.1).
    pub(crate) max_header_list_size: u32,
    /// How long a new connection has to send its preface and first SETTINGS (`preface`).
    pub(crate) handshake_timeout: Duration,
    /// Whether a connection that does not start with the HTTP/2 preface goes to
    /// [`Streams::serve_http1`] (gRPC-Web, feature `web`) instead of being refused.
    #[cfg(feature = "web")]
    pub(crate) sniff_http1: bool,
}

/// What the layer above serves on the connections: their settings, and the call to run for
/// each stream a client opens. The server implements it; the transport is generic over it, so
/// the call costs no dynamic dispatch.
pub(crate) trait Streams: Send + Sync + 'static {
    /// The settings every connection is made with.
    fn config(&self) -> &ConnectionConfig;

    /// The call for a new stream, or `None` when the request was answered (rejected) already.
    fn start_call(
        &self,
        request: http::Request<h2::RecvStream>,
        respond: h2::server::SendResponse<Bytes>,
        peer: &Peer,
    ) -> Option<Call>;

    /// Serves a connection that did not start with the HTTP/2 preface, when
    /// [`ConnectionConfig::sniff_http1`] is set (feature `web`).
    #[cfg(feature = "web")]
    fn serve_http1<IO>(
        self: Arc<Self>,
        io: IO,
        peer: Peer,
        shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static;
}

/// Accepts connections until `signal` fires, then drains them (bounded by the drain timeout).
///
/// `start` makes the task of one accepted connection: [`serve_connection`] over the socket for
/// h2c, a TLS handshake first and then [`serve_connection`] for TLS (`transport::tls`). It runs
/// in the connection's own task, so a slow handshake never holds up the accept loop.
pub(crate) async fn serve<S, F>(
    listener: TcpListener,
    shared: Arc<S>,
    signal: impl Future<Output = ()>,
    start: impl Fn(TcpStream, SocketAddr, Arc<S>, watch::Receiver<bool>) -> F,
) -> io::Result<()>
where
    S: Streams,
    F: Future<Output = ()> + Send + 'static,
{
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut signal = std::pin::pin!(signal);
    loop {
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
        let accepted = match first(&mut signal, listener.accept()).await {
            First::A(()) => break,
            First::B(accepted) => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            // Per-connection failures (the peer reset before we accepted, fd limits) must not
            // stop the server; back off briefly on resource exhaustion.
            Err(error) => {
                if is_fatal_accept_error(&error) {
                    return Err(error);
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        // Small gRPC messages should leave now, not wait for Nagle's algorithm.
        let _ = socket.set_nodelay(true);
        connections.spawn(start(
            socket,
            peer,
            Arc::clone(&shared),
            shutdown_rx.clone(),
        ));
    }
    drop(listener);
    let _ = shutdown_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(shared.config().drain_timeout, drain)
        .await
        .is_err()
    {
        connections.shutdown().await;
    }
    Ok(())
}

/// Errors after which accepting again cannot succeed.
pub(crate) fn is_fatal_accept_error(error: &io::Error) -> bool {
    !matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    ) && error.raw_os_error() != Some(24) // EMFILE: too many open files, transient
        && error.raw_os_error() != Some(23) // ENFILE
}

/// h2 (0.4.20+) closes a connection with ENHANCE_YOUR_CALM when too many small DATA frames
/// (under 256 bytes) sit received but not yet read, charging 256 - len per frame against a
/// budget of half the connection window by default: about 140 frames. A client streaming small
/// messages (a 16-byte message is a 21-byte frame) legitimately has thousands in flight within
/// its flow-control window, and would be cut off. We size the budget so that a window full of
/// the smallest gRPC frames (a bare 5-byte prefix) fits: any client that respects flow control
/// and sends whole messages stays under it, while a flood of 1-byte frames still trips it.
/// The budget is capped (16 MiB of charge, about 65,000 minimal frames) so that a very large
/// configured window does not lift the protection altogether.
fn data_frame_budget(connection_window: u32) -> usize {
    const CAP: usize = 16 << 20;
    super::small_frame_budget(connection_window, crate::wire::PREFIX_LEN).min(CAP)
}

/// How many reset streams h2 remembers per connection (its default is 50), each for h2's
/// reset_stream_duration (1 s). A frame that arrives for a stream h2 has forgotten is answered
/// RST_STREAM(STREAM_CLOSED), and h2 counts every such reset against a budget that never
/// refills (max_local_error_reset_streams, 1024 per connection): past it the connection gets
/// GOAWAY(ENHANCE_YOUR_CALM, "too_many_internal_resets") and every call on it fails. Calls that
/// end by deadline or cancellation while the client is still sending leave such late frames
/// behind, so with 50 a busy, healthy connection forgot its resets within milliseconds and
/// was eventually closed (the soak in docs/reliability.md; `tests/hostile_peers.rs`
/// `late_frames_of_calls_ended_by_deadline_do_not_close_the_connection`). 1024 covers the
/// whole second h2 remembers a reset for at a thousand resets a second, for at most a few
/// hundred KiB of stream state per connection.
const REMEMBERED_RESETS: usize = 1024;

/// Serves one connection until the peer closes it or shutdown has drained it.
pub(crate) async fn serve_connection<IO, S: Streams>(
    io: IO,
    peer: Peer,
    shared: Arc<S>,
    shutdown: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = shared.config();
    #[cfg(feature = "web")]
    if config.sniff_http1 {
        use super::preface::{Sniffed, sniff};
        match sniff(io, config.handshake_timeout).await {
            Some(Sniffed::Http2(io)) => return serve_h2(io, peer, shared, shutdown).await,
            Some(Sniffed::Http1(io)) => return shared.serve_http1(io, peer, shutdown).await,
            None => return,
        }
    }
    // The client preface is checked (and a bad one answered with GOAWAY) before h2 runs.
    let Some(io) = super::preface::read_preface(io, config.handshake_timeout).await else {
        return;
    };
    serve_h2(io, peer, shared, shutdown).await
}

/// Serves the HTTP/2 connection whose preface has been read (and is replayed by `io`).
async fn serve_h2<IO, S: Streams>(
    io: super::preface::Replay<IO>,
    peer: Peer,
    shared: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = shared.config();
    let mut builder = h2::server::Builder::new();
    if let Some(max) = config.max_concurrent_streams {
        builder.max_concurrent_streams(max);
    }
    builder.initial_window_size(config.initial_stream_window);
    builder.initial_connection_window_size(config.initial_connection_window);
    if let Some(size) = config.max_frame_size {
        builder.max_frame_size(size);
    }
    builder.data_frame_budget(data_frame_budget(config.initial_connection_window));
    builder.max_header_list_size(config.max_header_list_size);
    builder.max_concurrent_reset_streams(REMEMBERED_RESETS);
    let mut connection = match builder.handshake::<_, bytes::Bytes>(io).await {
        Ok(connection) => connection,
        // Gone during the handshake (the preface was checked above): nothing to answer.
        Err(_) => return,
    };
    let mut draining = *shutdown.borrow();
    if draining {
        connection.graceful_shutdown();
    }
    let mut shutdown_signal = std::pin::pin!(async move {
        // An error means the server is gone without a signal: treat it as one.
        let _ = shutdown.changed().await;
    });
    let mut calls = CallSet::default();
    // One turn: let h2 read every frame that has arrived and write (one flush) every frame the
    // calls queued; take every new stream; then run every call that was woken. Repeat while
    // calls ran, so that what they queued is flushed together on the next turn: under load,
    // the answers to many calls leave in one write instead of one write per call.
    poll_fn(|cx| {
        loop {
            if !draining && shutdown_signal.as_mut().poll(cx).is_ready() {
                draining = true;
                // GOAWAY(last stream id): no new calls; h2 keeps serving the open ones and
                // `poll_accept` returns None once they have all ended.
                connection.graceful_shutdown();
            }
            loop {
                match connection.poll_accept(cx) {
                    Poll::Ready(Some(Ok((request, respond)))) => {
                        if let Some(call) = shared.start_call(request, respond, &peer) {
                            calls.push(call);
                        }
                    }
                    // A connection error (the peer broke the protocol or went away): h2 has
                    // already sent GOAWAY where one was due. Dropping the calls still running
                    // cancels them, as a client's RST_STREAM would.
                    Poll::Ready(Some(Err(_)) | None) => return Poll::Ready(()),
                    Poll::Pending => break,
                }
            }
            if calls.poll_calls(cx) == 0 {
                return Poll::Pending;
            }
        }
    })
    .await;
}

//! The server: an accept loop, `:path` routing through dispatch tables, the four call kinds.
//!
//! One call's path through the modules:
//!
//! ```text
//!  TcpListener ─accept─▶ transport::server  (h2 handshake, SETTINGS; calls polled in the connection task)
//!                              │ HEADERS
//!                              ▼
//!                        server::head       (content-type, te, :path, grpc-encoding,
//!                              │              grpc-timeout → CallHead, or an early reject;
//!                              │              then the interceptors' on_start, if any)
//!                              ▼
//!                        server::router     (:path → Route row → serve_*::<Service, N>)
//!                              ▼
//!                        server::drive      (decode → handler → encode; deadline, client
//!                              │              cancel and panics watched while it runs)
//!                              ▼
//!                        server::respond    (HEADERS, DATA, trailers — or trailers-only)
//! ```
//!
//! Who half-closes when (PROTOCOL-HTTP2 § Outline), as enforced in `drive`:
//!
//! ```text
//!  kind             client → server                 server → client
//!  Unary            HEADERS DATA(msg, END_STREAM)    HEADERS DATA(msg) HEADERS(status, END_STREAM)
//!  ServerStreaming  HEADERS DATA(msg, END_STREAM)    HEADERS DATA(msg)* HEADERS(status, END_STREAM)
//!  ClientStreaming  HEADERS DATA(msg)* END_STREAM    HEADERS DATA(msg) HEADERS(status, END_STREAM)
//!  Bidi             HEADERS DATA(msg)* END_STREAM    HEADERS DATA(msg)* HEADERS(status, END_STREAM)
//! ```
//!
//! The server's END_STREAM always ends the call, whatever the client is still sending: if the
//! client has not half-closed by then, h2 follows our trailers with RST_STREAM(NO_ERROR)
//! (PROTOCOL-HTTP2 § Early Server Closure).
//!
//! Shape: handlers *push* streamed responses into a [`ResponseSink`] rather than returning a
//! stream for the runtime to poll. A push reads like the protocol (one `send` is one message),
//! needs no channel between the handler and the HTTP/2 stream, and gives back-pressure for free:
//! `send` waits for the peer's flow-control window.

// `call`, `drive`, `method` and `router` hold what generated code names (`ServerCall`, the `serve_*` drivers, the
// method traits, the dispatch-table row): crate-visible, so that `crate::codegen` presents them
// to generated code and nothing else does.
pub(crate) mod call;
pub(crate) mod drive;
mod head;
pub(crate) mod method;
mod respond;
pub(crate) mod router;
mod sink;
mod streaming;
#[cfg(feature = "web")]
pub(crate) mod web;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

pub(crate) use head::start_call;
#[cfg(feature = "fuzz")]
pub(crate) use head::walk_request_headers;
pub(crate) use router::Router;
pub use router::Service;
pub use sink::ResponseSink;
pub use streaming::Streaming;
#[cfg(feature = "web")]
pub use web::{Cors, Web};

use crate::compression::Encoding;
use crate::interceptor::{AsyncInterceptor, Chain, ChainBuilder, Interceptor};
use crate::peer::Peer;
use crate::transport::server::{Call, ConnectionConfig, Streams};
use crate::wire::DEFAULT_MAX_MESSAGE_SIZE;

/// The receive windows we announce, per stream and per connection: 1 MiB. HTTP/2's default
/// (64 KiB, RFC 9113 §6.9.2) lets a client send only 64 KiB per round trip, which caps a 1 MiB
/// request at a crawl on any link with latency; 1 MiB is what hyper's server uses too. The
/// windows are limits, not allocations: memory is used only for data actually in flight.
const DEFAULT_WINDOW: u32 = 1 << 20;

/// The SETTINGS_MAX_FRAME_SIZE we announce: 128 KiB, as the channel does
/// (`client::DEFAULT_MAX_FRAME_SIZE`). It is a permission, not a demand (RFC 9113 §6.5.2: every
/// peer must accept up to 16 MiB - 1, and may keep sending 16 KiB frames, as grpc-go does), but
/// `h2` writes each DATA frame with its own `writev`, so at HTTP/2's 16 KiB default a client
/// uploading a 1 MiB message makes 64 writes and wakes us 64 times; 128 KiB roughly doubled an
/// upload's throughput and cut the server's CPU (`docs/performance.md` § "Windows and frame
/// sizes"). It pays because the message decoder gathers a message spread over
/// frames into one reused buffer (`wire.rs`), so larger frames are no larger copies.
const DEFAULT_MAX_FRAME_SIZE: u32 = 128 * 1024;

/// The SETTINGS_MAX_HEADER_LIST_SIZE we announce and enforce: 16 KiB of header fields per
/// request (names, values and 32 octets each, RFC 9113 §6.5.2). gRPC C-core warns at 8 KiB
/// of metadata and refuses at 16 KiB; hyper (so tonic) defaults to 16 KiB; grpc-go allows
/// 16 MiB. We take the middle road that C-core and tonic share: room for a large bearer token
/// and tracing headers twice over, while a hostile header block costs at most 16 KiB of
/// decoded fields per stream (h2 answers a larger one with 431 and REFUSED_STREAM, and one
/// past four times the limit with GOAWAY ENHANCE_YOUR_CALM; `tests/hostile_peers.rs`).
pub const DEFAULT_MAX_HEADER_LIST_SIZE: u32 = 16 * 1024;

/// How long a new connection has to send the client preface and its first SETTINGS frame
/// (RFC 9113 §3.4) before it is answered GOAWAY(SETTINGS_TIMEOUT) and closed: any real client
/// sends both in its first flight, and a connection that sends nothing should not hold its
/// descriptor for ever. grpc-go's ConnectionTimeout (120 s) also covers its TLS handshake; ours
/// starts once the byte stream exists.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);

/// Settings shared by every connection of one server.
#[derive(Clone, Debug)]
pub(crate) struct ServerConfig {
    /// Largest message accepted from a client (after decompression).
    pub(crate) max_recv: usize,
    /// Largest message the server will send.
    pub(crate) max_send: usize,
    /// How long a streamed response may wait for the client's window without progress.
    pub(crate) send_stall_timeout: Option<Duration>,
    /// Compress responses with this when the client accepts it.
    pub(crate) send_compression: Option<Encoding>,
    /// The HTTP/2 settings and the drain timeout, which the transport applies.
    pub(crate) connection: ConnectionConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_recv: DEFAULT_MAX_MESSAGE_SIZE,
            max_send: usize::MAX,
            send_stall_timeout: None,
            send_compression: None,
            connection: ConnectionConfig {
                max_concurrent_streams: None,
                initial_stream_window: DEFAULT_WINDOW,
                initial_connection_window: DEFAULT_WINDOW,
                max_frame_size: Some(DEFAULT_MAX_FRAME_SIZE),
                drain_timeout: Duration::from_secs(10),
                max_header_list_size: DEFAULT_MAX_HEADER_LIST_SIZE,
                handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
                #[cfg(feature = "web")]
                sniff_http1: false,
            },
        }
    }
}

/// What every connection task shares: settings, the merged dispatch table, the interceptors.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) router: Router,
    /// Run around every routed call; empty (and free) unless the builder added some.
    pub(crate) interceptors: Chain,
    /// gRPC-Web on the same port (`Builder::web`, feature `web`).
    #[cfg(feature = "web")]
    pub(crate) web: Option<web::WebState>,
}

/// The transport runs what the server routes: each new stream becomes a call here
/// (`head::start_call`).
impl Streams for Shared {
    fn config(&self) -> &ConnectionConfig {
        &self.config.connection
    }

    fn start_call(
        &self,
        request: http::Request<h2::RecvStream>,
        respond: h2::server::SendResponse<Bytes>,
        peer: &Peer,
    ) -> Option<Call> {
        // gRPC-Web and CORS preflights on an HTTP/2 connection go to the bridge; only a server
        // built with `Builder::web` looks (feature `web`).
        #[cfg(feature = "web")]
        if self.web.is_some() && web::is_web(&request) {
            return web::serve_h2(self, request, respond, peer);
        }
        start_call(request, respond, peer, self)
    }

    #[cfg(feature = "web")]
    fn serve_http1<IO>(
        self: Arc<Self>,
        io: IO,
        peer: Peer,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> impl Future<Output = ()> + Send
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        web::serve_http1(self, io, peer, shutdown)
    }
}

/// Builds a [`Server`]: services, limits, HTTP/2 settings.
#[derive(Default)]
pub struct Builder {
    config: ServerConfig,
    router: Router,
    method_limits: Vec<(String, usize)>,
    interceptors: ChainBuilder,
    #[cfg(feature = "tls")]
    tls: Option<crate::transport::tls::ServerTls>,
    #[cfg(feature = "web")]
    web: Option<Web>,
}

impl Builder {
    /// Also serves gRPC-Web on the same port (feature `web`, `docs/web.md`): HTTP/1.1
    /// connections and `application/grpc-web*` requests on HTTP/2 connections become calls on
    /// the same services; CORS as `web` configures it (off by default).
    #[cfg(feature = "web")]
    pub fn web(mut self, web: Web) -> Self {
        self.config.connection.sniff_http1 = true;
        self.web = Some(web);
        self
    }

    /// Adds a service (a generated `FooServer::new(impl)`). Its dispatch table is merged now.
    pub fn add_service<S: Service>(mut self, service: S) -> Self {
        self.router.add(service);
        self
    }

    /// Adds an interceptor around every call, inside the ones added before: the first added is
    /// the outermost (see [`crate::interceptor`] for the order of the hooks).
    pub fn interceptor<I: Interceptor>(mut self, interceptor: I) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// Adds an interceptor whose start hook may await (an authorization check that asks a
    /// store, say), inside the ones added before. The handler is not created, and no request
    /// message is read, until it decides; the call's deadline and the client's cancellation
    /// apply while it waits. Costs one boxed future per call, only on a server that has one.
    pub fn async_interceptor<I: AsyncInterceptor>(mut self, interceptor: I) -> Self {
        self.interceptors.push_async(interceptor);
        self
    }

    /// Largest message accepted from clients, after decompression (default 4 MiB). Larger
    /// messages end their call with `RESOURCE_EXHAUSTED`.
    pub fn max_receive_message_size(mut self, limit: usize) -> Self {
        self.config.max_recv = limit;
        self
    }

    /// Receive limit for one method, by path (`/pkg.Service/Method`); overrides the server's.
    pub fn method_max_receive_message_size(mut self, path: &str, limit: usize) -> Self {
        self.method_limits.push((path.to_owned(), limit));
        self
    }

    /// Largest message the server sends (default: no limit). A handler that produces a larger
    /// one gets `RESOURCE_EXHAUSTED`.
    pub fn max_send_message_size(mut self, limit: usize) -> Self {
        self.config.max_send = limit;
        self
    }

    /// Compresses responses with `encoding` whenever the client's `grpc-accept-encoding` lists it.
    pub fn send_compressed(mut self, encoding: Encoding) -> Self {
        self.config.send_compression = Some(encoding);
        self
    }

    /// SETTINGS_MAX_CONCURRENT_STREAMS: how many calls one connection may have open at once.
    pub fn max_concurrent_streams(mut self, max: u32) -> Self {
        self.config.connection.max_concurrent_streams = Some(max);
        self
    }

    /// SETTINGS_INITIAL_WINDOW_SIZE: how many bytes a client may send on one call unacknowledged
    /// (default 1 MiB).
    pub fn initial_stream_window_size(mut self, size: u32) -> Self {
        self.config.connection.initial_stream_window = size;
        self
    }

    /// The connection-level receive window, shared by all calls on a connection (default 1 MiB).
    pub fn initial_connection_window_size(mut self, size: u32) -> Self {
        self.config.connection.initial_connection_window = size;
        self
    }

    /// SETTINGS_MAX_FRAME_SIZE (16 KiB to 16 MiB - 1; default 128 KiB).
    pub fn max_frame_size(mut self, size: u32) -> Self {
        self.config.connection.max_frame_size = Some(size);
        self
    }

    /// How long graceful shutdown lets in-flight calls run before closing (default 10 s).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.config.connection.drain_timeout = timeout;
        self
    }

    /// Serves TLS (feature `tls`): every accepted connection first completes a TLS handshake
    /// that negotiates ALPN `h2`, within the configuration's handshake timeout, in its own
    /// task; mutual TLS when `config` asks for client certificates (`docs/tls.md`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: crate::transport::tls::ServerTls) -> Self {
        self.tls = Some(config);
        self
    }

    /// Ends a streaming call whose client stops reading: when a [`ResponseSink::send`] has
    /// waited this long for the client's flow-control window without a byte going out, the
    /// stream is reset with ENHANCE_YOUR_CALM (the client's call ends RESOURCE_EXHAUSTED) and
    /// `send` fails with RESOURCE_EXHAUSTED, dropping the unsent bytes. Off by default, as in
    /// grpc-go and C-core: a reader may pause for as long as it likes, and what a paused reader
    /// costs is bounded anyway (one gathered batch or message per call, the client's windows;
    /// `docs/reliability.md`).
    pub fn send_stall_timeout(mut self, timeout: Duration) -> Self {
        self.config.send_stall_timeout = Some(timeout);
        self
    }

    /// SETTINGS_MAX_HEADER_LIST_SIZE: the largest request header block (metadata included)
    /// accepted, as HPACK counts it (default [`DEFAULT_MAX_HEADER_LIST_SIZE`], 16 KiB). A
    /// larger block is answered HTTP 431 with REFUSED_STREAM, so the call never starts; one over
    /// four times the limit closes the connection with GOAWAY(ENHANCE_YOUR_CALM).
    pub fn max_header_list_size(mut self, size: u32) -> Self {
        self.config.connection.max_header_list_size = size;
        self
    }

    /// How long a new connection may take to send the HTTP/2 preface and its first SETTINGS
    /// (default [`DEFAULT_HANDSHAKE_TIMEOUT`], 20 s); past it the connection gets
    /// GOAWAY(SETTINGS_TIMEOUT) and is closed.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.connection.handshake_timeout = timeout;
        self
    }

    /// Finishes the server. Panics if a per-method limit names a path no service has.
    pub fn build(mut self) -> Server {
        for (path, limit) in &self.method_limits {
            assert!(
                self.router.set_max_recv(path, *limit),
                "bare-grpc: method_max_receive_message_size names unknown path {path}"
            );
        }
        let interceptors = self.interceptors.build();
        #[cfg(feature = "web")]
        let shared = Arc::new_cyclic(|weak| Shared {
            web: self
                .web
                .map(|web| web::WebState::new(web, weak.clone(), self.config.connection)),
            config: self.config,
            router: self.router,
            interceptors,
        });
        #[cfg(not(feature = "web"))]
        let shared = Arc::new(Shared {
            config: self.config,
            router: self.router,
            interceptors,
        });
        Server {
            shared,
            #[cfg(feature = "tls")]
            tls: self.tls,
        }
    }
}

/// A gRPC server over HTTP/2 with prior knowledge (h2c), over TLS (`Builder::tls`, feature
/// `tls`), or over any byte stream given to [`Server::serve_connection`].
#[derive(Clone)]
pub struct Server {
    shared: Arc<Shared>,
    /// Set by `Builder::tls`: connections are TLS, not h2c.
    #[cfg(feature = "tls")]
    tls: Option<crate::transport::tls::ServerTls>,
}

impl Server {
    /// Starts building a server.
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The registered service names, sorted.
    pub fn service_names(&self) -> Vec<&'static str> {
        self.shared.router.service_names()
    }

    /// Every registered method as `(service, method, kind)`, sorted by `:path`: the merged
    /// dispatch table, for logs, docs and tools.
    pub fn methods(&self) -> Vec<(&'static str, &'static str, crate::call::CallKind)> {
        self.shared.router.methods()
    }

    /// Serves connections from `listener` until the process ends.
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        self.serve_with_shutdown(listener, std::future::pending())
            .await
    }

    /// Serves connections from `listener` until `signal` completes, then shuts down gracefully:
    /// GOAWAY to every connection, in-flight calls get up to the drain timeout to finish.
    pub async fn serve_with_shutdown(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()>,
    ) -> io::Result<()> {
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            let acceptor = Arc::new(tls.acceptor()?);
            return crate::transport::server::serve(
                listener,
                self.shared,
                signal,
                move |socket, addr, shared, shutdown| {
                    crate::transport::tls::serve_tls(
                        socket,
                        addr,
                        shared,
                        shutdown,
                        acceptor.clone(),
                    )
                },
            )
            .await;
        }
        crate::transport::server::serve(
            listener,
            self.shared,
            signal,
            |socket, addr, shared, shutdown| {
                crate::transport::server::serve_connection(
                    socket,
                    Peer::plain(Some(addr)),
                    shared,
                    shutdown,
                )
            },
        )
        .await
    }

    /// Serves connections from a Unix domain socket until the process ends (clients reach it
    /// as `unix:///path`; see `docs/balancing.md`). Plain h2c: TLS settings are not used here.
    #[cfg(unix)]
    pub async fn serve_unix(self, listener: tokio::net::UnixListener) -> io::Result<()> {
        self.serve_unix_with_shutdown(listener, std::future::pending())
            .await
    }

    /// [`Server::serve_unix`] until `signal` completes, then shuts down gracefully as
    /// [`Server::serve_with_shutdown`] does.
    #[cfg(unix)]
    pub async fn serve_unix_with_shutdown(
        self,
        listener: tokio::net::UnixListener,
        signal: impl Future<Output = ()>,
    ) -> io::Result<()> {
        crate::transport::unix::serve_unix(listener, self.shared, signal).await
    }

    /// Serves one already-accepted connection (for example a TLS stream) until it closes.
    pub async fn serve_connection<IO>(&self, io: IO, remote_addr: Option<SocketAddr>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (_keep, shutdown) = tokio::sync::watch::channel(false);
        crate::transport::server::serve_connection(
            io,
            Peer::plain(remote_addr),
            self.shared.clone(),
            shutdown,
        )
        .await
    }
}

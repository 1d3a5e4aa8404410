//! One HTTP/2 connection to one address, kept alive for a channel: connect, hand out the
//! shared `SendRequest`, notice the end, reconnect with back-off.
//!
//! gRPC's connectivity states (connectivity-semantics-and-api.md), as this module runs them:
//!
//! ```text
//!             first call (lazy) / Channel::connect (eager)
//!   IDLE ------------------------------------------------> CONNECTING
//!    ^                                                     |        ^
//!    | connection ended, or a call saw it refuse work      | ok     | back-off elapsed
//!    |                                                     v        |
//!    +------------------------------------------------- READY   TRANSIENT_FAILURE
//!                                                 (failed attempt: CONNECTING -> TRANSIENT_FAILURE)
//! ```
//!
//! Calls look at the state and:
//! - READY: clone the `h2::client::SendRequest` and open a stream on it (every call of the
//!   channel is multiplexed on this one connection);
//! - IDLE: ask for a connection and wait; CONNECTING: wait;
//! - TRANSIENT_FAILURE: fail fast with UNAVAILABLE, or wait when the call set
//!   `wait_for_ready` (gRPC's "wait for ready" semantics, wait-for-ready.md).
//!
//! Back-off between failed attempts follows connection-backoff.md: 1 s at first, times 1.6 per
//! failure, at most 120 s, each delay jittered by ±20 %, and every attempt bounded by the
//! connect timeout (20 s unless configured). The jitter comes from a xorshift generator seeded
//! from the clock; it spreads reconnects, it is not cryptography.
//!
//! Why it is shaped this way: one task (the *driver*) owns connecting and publishes the state
//! through a `tokio::sync::watch` channel. A call reads the current state with one shared read
//! lock (no writer contends except on a state change, and the lock is never held across an
//! await), clones the `SendRequest` out of it and leaves; nothing serializes calls. The h2
//! `Connection` future runs in its own task so it keeps serving in-flight streams even while
//! the driver has moved on to a newer connection (after a GOAWAY the old connection drains).
//! A `block_on` caller's bidi sink may also poll it, to write its message from its own thread
//! (`fast::direct`).
//! The handshake is generic over `AsyncRead + AsyncWrite`, so TLS (feature `tls`) is one step
//! between the TCP connect and it (`connect`, `tls.rs`), and several addresses become several `Subchannel`s under a picker, without a new API.
//!
//! READY means the peer has answered a PING: h2's handshake only writes our preface, and a TCP
//! listener that is not an HTTP/2 server must fail the attempt, not the calls sent to it.
//!
//! What it does not do: it does not retry calls (beyond reopening a stream that never left
//! this process), it does not resolve names again while READY, and it sends no keepalive
//! pings.
//!
//! Links: <https://github.com/grpc/grpc/blob/master/doc/connectivity-semantics-and-api.md>,
//! <https://github.com/grpc/grpc/blob/master/doc/connection-backoff.md>,
//! <https://github.com/grpc/grpc/blob/master/doc/wait-for-ready.md>.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot, watch};
use tokio::time::Instant;

use super::ChannelOptions;
use super::fast::driver::ConnectionDriver;
use crate::first::{First, first};
use crate::status::Status;

/// Where a channel connects: a host (name or IP literal) and a port, and the `:authority`
/// every request carries.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// Host name or IP literal, without IPv6 brackets; resolved at every connect attempt.
    pub(crate) host: String,
    /// TCP port.
    port: u16,
    /// `host:port` as given (IPv6 in brackets), for `:authority`.
    pub(crate) authority: http::uri::Authority,
    /// The address said `https://`: TLS with the system's roots (feature `tls`; without it,
    /// `parse` refuses `https://`, so the field is only read by the feature's code).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) https: bool,
}

impl Target {
    /// Parses `host:port`, `[v6]:port` or either with an `http://` or `https://` prefix.
    /// INVALID_ARGUMENT for anything else (`https://` without the `tls` feature among them).
    pub(crate) fn parse(addr: &str) -> Result<Target, Status> {
        let bad = |why: &str| Status::invalid_argument(format!("bad address {addr:?}: {why}"));
        let (rest, https) = match addr.split_once("://") {
            None => (addr, false),
            Some(("http", rest)) => (rest, false),
            Some(("https", _)) if cfg!(not(feature = "tls")) => {
                return Err(bad("https:// needs bare-grpc's `tls` feature"));
            }
            Some(("https", rest)) => (rest, true),
            Some((scheme, _)) => return Err(bad(&format!("unsupported scheme {scheme:?}"))),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| bad("unclosed '['"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| bad("expected :port"))?;
            (host, port)
        } else {
            let (host, port) = rest
                .rsplit_once(':')
                .ok_or_else(|| bad("expected host:port"))?;
            if host.contains(':') {
                return Err(bad("an IPv6 address needs brackets: [addr]:port"));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| bad("port is not a number 0-65535"))?;
        let authority = http::uri::Authority::try_from(rest).map_err(|e| bad(&e.to_string()))?;
        Ok(Target {
            host: host.to_owned(),
            port,
            authority,
            https,
        })
    }

    /// Resolves the host with the system resolver (IP literals resolve to themselves).
    async fn resolve(&self) -> Result<Vec<SocketAddr>, Status> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| Status::unavailable(format!("cannot resolve {}: {e}", self.host)))?
            .collect();
        if addrs.is_empty() {
            return Err(Status::unavailable(format!(
                "{} resolved to no address",
                self.host
            )));
        }
        Ok(addrs)
    }
}

/// What calls see of the connection.
#[derive(Clone, Debug)]
pub(crate) enum ConnState {
    /// No connection and nobody asked for one yet.
    Idle,
    /// An attempt is under way.
    Connecting,
    /// Calls may open streams on this connection.
    Ready(Ready),
    /// The last attempt failed with this status; the driver waits out the back-off.
    TransientFailure(Status),
}

/// A usable connection: the stream opener and which connection it is.
#[derive(Clone, Debug)]
pub(crate) struct Ready {
    /// Opens streams; clones share the connection.
    pub(crate) send_request: SendRequest<Bytes>,
    /// The connection future, which a bidi sink may poll to flush its message at once.
    pub(crate) driver: Arc<ConnectionDriver>,
    /// Counts connections of this subchannel, so a late report about an old one is ignored.
    pub(crate) generation: u64,
}

/// Signals from calls to the driver.
#[derive(Debug, Default)]
struct Signals {
    /// A call wants a connection (state was IDLE).
    demand: Notify,
    /// A call saw the connection refuse new work (GOAWAY, I/O error).
    broken: Notify,
    /// Which generation was reported broken.
    broken_generation: AtomicU64,
}

/// One address's connection, shared by every clone of a channel.
#[derive(Debug)]
pub(crate) struct Subchannel {
    /// The published state.
    state: watch::Receiver<ConnState>,
    /// Held until the driver starts (it needs a runtime, which `Channel::lazy` may lack).
    start: Mutex<Option<Driver>>,
    /// Makes starting cheap to check once done.
    started: Once,
    /// Call-to-driver signals.
    signals: Arc<Signals>,
}

impl Subchannel {
    /// A subchannel in IDLE; no task runs until the first call.
    pub(crate) fn new(target: Target, options: Arc<ChannelOptions>) -> Subchannel {
        let (tx, rx) = watch::channel(ConnState::Idle);
        let signals = Arc::new(Signals::default());
        let driver = Driver {
            target,
            options,
            tx,
            signals: signals.clone(),
        };
        Subchannel {
            state: rx,
            start: Mutex::new(Some(driver)),
            started: Once::new(),
            signals,
        }
    }

    /// Spawns the driver on first use (must run inside a tokio runtime).
    fn ensure_started(&self) {
        if self.started.is_completed() {
            return;
        }
        self.started.call_once(|| {
            let driver = crate::lock::lock(&self.start).take();
            if let Some(driver) = driver {
                tokio::spawn(driver.run());
            }
        });
    }

    /// A connection to open a stream on. Waits through IDLE and CONNECTING; in
    /// TRANSIENT_FAILURE fails fast with UNAVAILABLE unless `wait_for_ready`.
    /// The caller bounds the wait with its deadline.
    ///
    /// `not` is a connection the caller has just reported broken: it stays published as READY
    /// until the connecting task has run, so it is skipped, and the wait goes on for the next
    /// one (without this, a call retried at once after a GOAWAY landed on the same connection).
    pub(crate) async fn ready(
        &self,
        wait_for_ready: bool,
        not: Option<u64>,
    ) -> Result<Ready, Status> {
        self.ensure_started();
        let mut state = self.state.clone();
        loop {
            let current = state.borrow_and_update().clone();
            match current {
                ConnState::Ready(ready) if Some(ready.generation) == not => {}
                ConnState::Ready(ready) => return Ok(ready),
                ConnState::Idle => self.signals.demand.notify_one(),
                ConnState::Connecting => {}
                ConnState::TransientFailure(status) if !wait_for_ready => {
                    return Err(Status::unavailable(format!(
                        "not connected: {}",
                        status.message()
                    )));
                }
                ConnState::TransientFailure(_) => {}
            }
            if state.changed().await.is_err() {
                return Err(Status::unavailable("channel is shutting down"));
            }
        }
    }

    /// Eager start: waits for the first attempt's outcome.
    pub(crate) async fn connect_now(&self) -> Result<(), Status> {
        self.ensure_started();
        let mut state = self.state.clone();
        loop {
            let current = state.borrow_and_update().clone();
            match current {
                ConnState::Ready(_) => return Ok(()),
                ConnState::Idle => self.signals.demand.notify_one(),
                ConnState::Connecting => {}
                ConnState::TransientFailure(status) => {
                    return Err(Status::unavailable(status.message().to_owned()));
                }
            }
            if state.changed().await.is_err() {
                return Err(Status::unavailable("channel is shutting down"));
            }
        }
    }

    /// A call saw connection `generation` refuse new streams (GOAWAY) or break: stop handing
    /// it out. In-flight streams on it carry on until it closes.
    pub(crate) fn report_broken(&self, generation: u64) {
        self.signals
            .broken_generation
            .store(generation, Ordering::Release);
        self.signals.broken.notify_one();
    }
}

/// The task that owns connecting. It stops when every `Subchannel` receiver is gone.
struct Driver {
    /// Where to connect.
    target: Target,
    /// Connect timeout, windows, back-off.
    options: Arc<ChannelOptions>,
    /// Publishes the state.
    tx: watch::Sender<ConnState>,
    /// Call-to-driver signals.
    signals: Arc<Signals>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("target", &self.target)
            .finish()
    }
}

impl Driver {
    /// IDLE -> CONNECTING -> READY -> IDLE ..., until the channel is dropped.
    async fn run(self) {
        let mut backoff = Backoff::new(&self.options.backoff);
        let mut generation = 0u64;
        loop {
            // IDLE: wait until a call wants a connection.
            if let First::B(()) = first(self.signals.demand.notified(), self.tx.closed()).await {
                return;
            }
            // CONNECTING, with back-off after each failure.
            let (ready, closed) = loop {
                self.tx.send_replace(ConnState::Connecting);
                let attempt = tokio::time::timeout(
                    self.options.connect_timeout,
                    connect(&self.target, &self.options),
                );
                let outcome = match first(attempt, self.tx.closed()).await {
                    First::A(outcome) => outcome,
                    First::B(()) => return,
                };
                let status = match outcome {
                    Ok(Ok(connected)) => break connected,
                    Ok(Err(status)) => status,
                    Err(_) => Status::unavailable(format!(
                        "connect to {} timed out after {:?}",
                        self.target.authority, self.options.connect_timeout
                    )),
                };
                self.tx.send_replace(ConnState::TransientFailure(status));
                let delay = backoff.next_delay();
                if let First::B(()) = first(tokio::time::sleep(delay), self.tx.closed()).await {
                    return;
                }
            };
            backoff.reset();
            generation += 1;
            self.tx.send_replace(ConnState::Ready(Ready {
                generation,
                ..ready
            }));
            // READY until the connection ends or a call reports it refusing work.
            let mut closed = closed;
            loop {
                let ended = first(&mut closed, self.signals.broken.notified());
                match first(ended, self.tx.closed()).await {
                    First::A(First::A(_)) => break,
                    First::A(First::B(())) => {
                        if self.signals.broken_generation.load(Ordering::Acquire) == generation {
                            break;
                        }
                    }
                    First::B(()) => return,
                }
            }
            self.tx.send_replace(ConnState::Idle);
        }
    }
}

/// Resolves the target, connects over TCP to the first address that answers, and runs the
/// HTTP/2 handshake. The returned receiver fires when the connection has ended.
async fn connect(
    target: &Target,
    options: &ChannelOptions,
) -> Result<(Ready, oneshot::Receiver<()>), Status> {
    // An in-process channel (`crate::testing`): a fresh in-memory pipe per attempt, no socket.
    if let Some(in_memory) = &options.in_memory {
        return handshake((in_memory.0)(), options).await;
    }
    let addrs = target.resolve().await?;
    let mut last_error = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => {
                // gRPC messages are often small; waiting to coalesce them only adds latency.
                let _ = tcp.set_nodelay(true);
                #[cfg(feature = "tls")]
                if let Some(tls) = &options.tls {
                    let stream = tls.connect(tcp, &target.authority).await?;
                    // TLS 1.3 lets the client finish its handshake before the server has
                    // checked the client's certificate (RFC 8446 §4.4.2): a refusal shows up as
                    // the connection closing under the HTTP/2 preface, so say what it may be.
                    return handshake(stream, options).await.map_err(|status| {
                        Status::unavailable(format!(
                            "TLS connection to {} closed during the HTTP/2 handshake (did the \
                             server refuse our client certificate?): {}",
                            target.authority,
                            status.message()
                        ))
                    });
                }
                return handshake(tcp, options).await;
            }
            Err(e) => last_error = Some(format!("{addr}: {e}")),
        }
    }
    Err(Status::unavailable(format!(
        "cannot connect to {}: {}",
        target.authority,
        last_error.unwrap_or_default()
    )))
}

/// The HTTP/2 client handshake over any byte stream (plain TCP, or TLS from `tls.rs`),
/// with the channel's window settings. Spawns the connection task.
pub(crate) async fn handshake<IO>(
    io: IO,
    options: &ChannelOptions,
) -> Result<(Ready, oneshot::Receiver<()>), Status>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = h2::client::Builder::new();
    // gRPC never uses server push (PROTOCOL-HTTP2 § HTTP2 Transport Mapping).
    builder.enable_push(false);
    if let Some(window) = options.initial_stream_window_size {
        builder.initial_window_size(window);
    }
    if let Some(window) = options.initial_connection_window_size {
        builder.initial_connection_window_size(window);
    }
    // Larger frames than HTTP/2's 16 KiB default: fewer writes on the server and fewer
    // wake-ups here per large response (see DEFAULT_MAX_FRAME_SIZE for the numbers).
    builder.max_frame_size(options.max_frame_size);
    // h2 closes the connection with ENHANCE_YOUR_CALM once too many small DATA frames sit
    // unread: it charges 256 bytes minus the payload per frame under 256 bytes against a
    // budget (default max(window / 2, 25,600)). A server that respects our window may still
    // fill it with small frames (grpc-go writes one DATA frame per message; so did we), and
    // with the 5 MiB default window that is 228,000 frames of 23 bytes, 53 MB of charges: the
    // default budget would call a well-behaved server abusive as soon as the caller reads a
    // little slower than the server writes. So the budget covers a full connection window of
    // frames down to FRAME_FLOOR bytes; the window, not the budget, is what bounds what a
    // server can make us hold. Unary answers are such frames too (the message, then the
    // trailers), so the floor of SMALL_FRAME_BUDGET keeps a few thousand concurrent calls
    // whose tasks have not been polled yet from tripping it.
    let window = options.initial_connection_window_size.unwrap_or(65_535);
    let per_window = crate::transport::small_frame_budget(window, FRAME_FLOOR);
    builder.data_frame_budget(per_window.max(SMALL_FRAME_BUDGET));
    let (send_request, mut connection) = builder
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|e| Status::unavailable(format!("HTTP/2 handshake failed: {e}")))?;
    let mut ping_pong = connection.ping_pong();
    let (done_tx, done_rx) = oneshot::channel();
    // The connection is polled by this task and, to flush a bidi message at once, by the
    // caller that queued it (see `fast::driver`).
    let driver = ConnectionDriver::new(connection);
    let task = driver.clone();
    tokio::spawn(async move {
        // The error (if any) reaches every open stream through h2; nothing more to report.
        task.run().await;
        let _ = done_tx.send(());
    });
    // h2's handshake only writes our preface. One PING answered proves the peer speaks
    // HTTP/2 (its SETTINGS come first, RFC 9113 §3.4) before calls are sent its way; a
    // plain TCP listener or an HTTP/1 server fails here, within the connect timeout.
    if let Some(ping_pong) = ping_pong.as_mut() {
        ping_pong
            .ping(h2::Ping::opaque())
            .await
            .map_err(|e| Status::unavailable(format!("the peer does not speak HTTP/2: {e}")))?;
    }
    Ok((
        Ready {
            send_request,
            driver,
            generation: 0,
        },
        done_rx,
    ))
}

/// Framing overhead (h2 counts 256 bytes minus the payload per small DATA frame) the client
/// lets sit unread before h2 calls it abuse, at least: 1 MiB.
const SMALL_FRAME_BUDGET: usize = 1024 * 1024;

/// The smallest DATA payload the frame budget is sized for: a message prefix (5 bytes) plus a
/// tiny protobuf body. Smaller frames are legal but only a peer splitting messages to waste
/// our CPU sends a window's worth of them, and that is what h2's check is for.
const FRAME_FLOOR: usize = 8;

/// Makes the client end of a new in-memory connection whose server end is already being
/// served (`crate::testing`): the channel calls it at every connect attempt instead of
/// resolving and dialling its target.
#[derive(Clone)]
pub(crate) struct InMemory(pub(crate) Arc<dyn Fn() -> tokio::io::DuplexStream + Send + Sync>);

impl std::fmt::Debug for InMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InMemory")
    }
}

/// Back-off settings (connection-backoff.md names).
#[derive(Clone, Debug)]
pub(crate) struct BackoffConfig {
    /// INITIAL_BACKOFF: the delay after the first failure.
    pub(crate) initial: Duration,
    /// MULTIPLIER: growth per failure.
    pub(crate) multiplier: f64,
    /// JITTER: each delay is moved by up to ± this fraction.
    pub(crate) jitter: f64,
    /// MAX_BACKOFF: the delay stops growing here.
    pub(crate) max: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(120),
        }
    }
}

/// Exponential back-off with jitter.
#[derive(Debug)]
struct Backoff {
    /// The settings.
    config: BackoffConfig,
    /// The un-jittered delay to use next.
    current: Duration,
    /// xorshift64 state; never zero.
    rng: u64,
}

impl Backoff {
    /// Starts at INITIAL_BACKOFF, seeded from the clock.
    fn new(config: &BackoffConfig) -> Backoff {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        Backoff {
            config: config.clone(),
            current: config.initial,
            rng: nanos | 1,
        }
    }

    /// After a success: the next failure waits INITIAL_BACKOFF again.
    fn reset(&mut self) {
        self.current = self.config.initial;
    }

    /// The delay before the next attempt; grows the following one.
    fn next_delay(&mut self) -> Duration {
        let base = self.current.as_secs_f64();
        let spread = (self.uniform() * 2.0 - 1.0) * self.config.jitter;
        let delay = Duration::from_secs_f64((base * (1.0 + spread)).max(0.0));
        let grown = (base * self.config.multiplier).min(self.config.max.as_secs_f64());
        self.current = Duration::from_secs_f64(grown);
        delay
    }

    /// A number in [0, 1) from xorshift64.
    fn uniform(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Deadline arithmetic shared by the call kinds: `now + timeout`, saturating far in the future.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(60 * 60 * 24 * 365 * 30))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (host, port, authority) a parse should give.
    type Parsed = (&'static str, u16, &'static str);

    #[test]
    fn target_forms() {
        // (input, Some(parsed)) or None for INVALID_ARGUMENT.
        let rows: &[(&str, Option<Parsed>)] = &[
            (
                "localhost:50051",
                Some(("localhost", 50051, "localhost:50051")),
            ),
            ("127.0.0.1:80", Some(("127.0.0.1", 80, "127.0.0.1:80"))),
            ("[::1]:8080", Some(("::1", 8080, "[::1]:8080"))),
            (
                "http://example.com:1",
                Some(("example.com", 1, "example.com:1")),
            ),
            ("http://[::1]:2/", Some(("::1", 2, "[::1]:2"))),
            ("localhost", None),
            ("::1:80", None),
            ("[::1]", None),
            (":80", None),
            ("host:99999", None),
            ("ftp://host:21", None),
        ];
        for (input, expected) in rows {
            match (Target::parse(input), expected) {
                (Ok(t), Some((host, port, authority))) => {
                    assert_eq!((t.host.as_str(), t.port), (*host, *port), "{input}");
                    assert_eq!(t.authority.as_str(), *authority, "{input}");
                }
                (Err(status), None) => {
                    assert_eq!(
                        status.code(),
                        crate::status::Code::InvalidArgument,
                        "{input}"
                    )
                }
                (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn https_means_tls_and_needs_the_feature() {
        let parsed = Target::parse("https://host:443");
        if cfg!(feature = "tls") {
            let target = parsed.unwrap();
            assert!(target.https);
            assert_eq!(target.authority.as_str(), "host:443");
            assert!(!Target::parse("http://host:80").unwrap().https);
        } else {
            let status = parsed.unwrap_err();
            assert_eq!(status.code(), crate::status::Code::InvalidArgument);
            assert!(status.message().contains("`tls` feature"), "{status:?}");
        }
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let config = BackoffConfig {
            initial: Duration::from_secs(1),
            multiplier: 1.6,
            jitter: 0.2,
            max: Duration::from_secs(5),
        };
        let mut backoff = Backoff::new(&config);
        let mut base = 1.0f64;
        for _ in 0..10 {
            let delay = backoff.next_delay().as_secs_f64();
            assert!(
                delay >= base * 0.8 - 1e-9 && delay <= base * 1.2 + 1e-9,
                "{delay} vs {base}"
            );
            base = (base * 1.6).min(5.0);
        }
        backoff.reset();
        let delay = backoff.next_delay().as_secs_f64();
        assert!((0.8..=1.2).contains(&delay), "{delay}");
    }

    #[test]
    fn jitter_is_not_constant() {
        let mut backoff = Backoff::new(&BackoffConfig::default());
        let draws: Vec<f64> = (0..16).map(|_| backoff.uniform()).collect();
        assert!(draws.iter().all(|d| (0.0..1.0).contains(d)));
        assert!(draws.windows(2).any(|w| w[0] != w[1]));
    }
}

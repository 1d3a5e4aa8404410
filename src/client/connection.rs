//! A subchannel: one HTTP/2 connection to one of its addresses (pick_first: the resolver's
//! list, tried in order; round_robin: one address), kept alive: connect, hand out the shared
//! `SendRequest`, notice the end, reconnect with back-off.
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
//! between the TCP (or Unix socket) connect and it (`connect`, `tls.rs`); round_robin's
//! several subchannels sit under a picker (`balancer.rs`), without a new API.
//!
//! READY means the peer has answered a PING: h2's handshake only writes our preface, and a TCP
//! listener that is not an HTTP/2 server must fail the attempt, not the calls sent to it.
//!
//! What it does not do: it does not retry calls (beyond reopening a stream that never left
//! this process), it does not resolve names again while READY (only after a loss or a
//! failure, rate limited by `resolver.rs`). Keepalive pings, when the channel asks for them,
//! run beside each connection (`keepalive.rs`).
//!
//! Links: <https://github.com/grpc/grpc/blob/master/doc/connectivity-semantics-and-api.md>,
//! <https://github.com/grpc/grpc/blob/master/doc/connection-backoff.md>,
//! <https://github.com/grpc/grpc/blob/master/doc/wait-for-ready.md>.

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
use super::resolver::{Address, Resolution};
use crate::first::{First, first};
use crate::status::Status;
use crate::transport::frame_watch::{Side, Watch, Watched};

/// What calls see of the connection.
#[derive(Clone, Debug)]
pub(crate) enum ConnState {
    /// No connection and nobody asked for one yet.
    Idle,
    /// An attempt is under way; the failure of the one before, if it failed (a round_robin
    /// pick counts such a subchannel as failing until it is READY again, gRFC A61's sticky
    /// TRANSIENT_FAILURE).
    Connecting(Option<Status>),
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

/// What a balancer's pick sees of one subchannel.
#[derive(Debug)]
pub(crate) enum Peek {
    /// A connection to use.
    Ready(Ready),
    /// Connecting for the first time since it was last READY, or IDLE: worth waiting for.
    Pending,
    /// Its last attempt failed with this.
    Failing(Status),
}

/// A channel's or subchannel's connectivity state (connectivity-semantics-and-api.md), as
/// `Channel::get_state` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectivityState {
    /// No connection, and none asked for.
    Idle,
    /// Connecting.
    Connecting,
    /// Calls can go out.
    Ready,
    /// The last attempt failed; waiting out the back-off.
    TransientFailure,
    /// The channel is closed (never reported while a `Channel` handle exists: dropping the
    /// last one is closing it).
    Shutdown,
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
    /// A subchannel in IDLE; no task runs until the first call. `changed`, when given, is
    /// bumped on every state change (the balancer's "something changed" signal).
    pub(crate) fn new(
        addresses: Addresses,
        authority: http::uri::Authority,
        options: Arc<ChannelOptions>,
        changed: Option<Arc<watch::Sender<u64>>>,
    ) -> Subchannel {
        let (tx, rx) = watch::channel(ConnState::Idle);
        let signals = Arc::new(Signals::default());
        let driver = Driver {
            addresses,
            authority,
            options,
            tx,
            signals: signals.clone(),
            changed,
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
                ConnState::Connecting(_) => {}
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
                ConnState::Connecting(_) => {}
                ConnState::TransientFailure(status) => {
                    return Err(Status::unavailable(status.message().to_owned()));
                }
            }
            if state.changed().await.is_err() {
                return Err(Status::unavailable("channel is shutting down"));
            }
        }
    }

    /// What a balancer's pick sees of this subchannel now, without waiting; an IDLE one is
    /// asked to connect (round_robin keeps every subchannel connected).
    pub(crate) fn peek(&self, not: Option<u64>) -> Peek {
        self.ensure_started();
        let state = self.state.borrow();
        match &*state {
            ConnState::Ready(ready) if Some(ready.generation) != not => Peek::Ready(ready.clone()),
            ConnState::Ready(_) | ConnState::Connecting(None) => Peek::Pending,
            ConnState::Connecting(Some(status)) | ConnState::TransientFailure(status) => {
                Peek::Failing(status.clone())
            }
            ConnState::Idle => {
                self.signals.demand.notify_one();
                Peek::Pending
            }
        }
    }

    /// Starts connecting if IDLE (a balancer reconnecting a lost subchannel in the background).
    pub(crate) fn request_connection(&self) {
        self.ensure_started();
        if matches!(*self.state.borrow(), ConnState::Idle) {
            self.signals.demand.notify_one();
        }
    }

    /// gRPC's name for the current state.
    pub(crate) fn connectivity(&self) -> ConnectivityState {
        match &*self.state.borrow() {
            ConnState::Idle => ConnectivityState::Idle,
            ConnState::Connecting(_) => ConnectivityState::Connecting,
            ConnState::Ready(_) => ConnectivityState::Ready,
            ConnState::TransientFailure(_) => ConnectivityState::TransientFailure,
        }
    }

    /// A receiver that sees every state change.
    pub(crate) fn watch(&self) -> watch::Receiver<ConnState> {
        self.state.clone()
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

/// Where a subchannel connects.
#[derive(Debug)]
pub(crate) enum Addresses {
    /// pick_first: the channel's resolution, its addresses tried in order at every attempt
    /// (resolved again after a loss, rate limited by `Resolution`).
    Resolved(Arc<Resolution>),
    /// round_robin: one address of the list.
    One(Address),
}

impl Addresses {
    /// The addresses to try now; `fresh` after a connection loss or a failed attempt.
    async fn get(&self, fresh: bool) -> Result<Vec<Address>, Status> {
        match self {
            Addresses::Resolved(resolution) => resolution.addresses(fresh).await,
            Addresses::One(address) => Ok(vec![address.clone()]),
        }
    }
}

/// Connections of every subchannel get distinct numbers, so a call that saw one break can skip
/// it on any subchannel (`Subchannel::ready`'s `not`, the balancer's pick).
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// The task that owns connecting. It stops when every `Subchannel` receiver is gone.
struct Driver {
    /// Where to connect.
    addresses: Addresses,
    /// `:authority`, named in errors and checked by TLS.
    authority: http::uri::Authority,
    /// Bumped on every state change, for a balancer.
    changed: Option<Arc<watch::Sender<u64>>>,
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
            .field("addresses", &self.addresses)
            .finish()
    }
}

impl Driver {
    /// Publishes a state, and tells the balancer (if any).
    fn publish(&self, state: ConnState) {
        self.tx.send_replace(state);
        if let Some(changed) = &self.changed {
            changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    /// IDLE -> CONNECTING -> READY -> IDLE ..., until the channel is dropped.
    async fn run(self) {
        let mut backoff = Backoff::new(&self.options.backoff);
        // The first attempt may use the addresses resolved already; after a loss or a failure
        // they are asked for again (naming.md: re-resolve when a connection is lost).
        let mut fresh = false;
        let mut last_failure = None;
        loop {
            // IDLE: wait until a call wants a connection.
            if let First::B(()) = first(self.signals.demand.notified(), self.tx.closed()).await {
                return;
            }
            // CONNECTING, with back-off after each failure.
            let (ready, closed) = loop {
                self.publish(ConnState::Connecting(last_failure.take()));
                let attempt = tokio::time::timeout(
                    self.options.connect_timeout,
                    connect(&self.addresses, fresh, &self.authority, &self.options),
                );
                fresh = true;
                let outcome = match first(attempt, self.tx.closed()).await {
                    First::A(outcome) => outcome,
                    First::B(()) => return,
                };
                let status = match outcome {
                    Ok(Ok(connected)) => break connected,
                    Ok(Err(status)) => status,
                    Err(_) => Status::unavailable(format!(
                        "connect to {} timed out after {:?}",
                        self.authority, self.options.connect_timeout
                    )),
                };
                last_failure = Some(status.clone());
                self.publish(ConnState::TransientFailure(status));
                let delay = backoff.next_delay();
                if let First::B(()) = first(tokio::time::sleep(delay), self.tx.closed()).await {
                    return;
                }
            };
            backoff.reset();
            let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
            self.publish(ConnState::Ready(Ready {
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
            self.publish(ConnState::Idle);
        }
    }
}

/// Asks for the addresses, connects to the first that answers (TCP or a Unix socket), runs
/// TLS when the channel has it, and the HTTP/2 handshake. The returned receiver fires when the
/// connection has ended.
async fn connect(
    addresses: &Addresses,
    fresh: bool,
    authority: &http::uri::Authority,
    options: &ChannelOptions,
) -> Result<(Ready, oneshot::Receiver<()>), Status> {
    // An in-process channel (`crate::testing`): a fresh in-memory pipe per attempt, no socket.
    if let Some(in_memory) = &options.in_memory {
        return handshake((in_memory.0)(), options).await;
    }
    let addrs = addresses.get(fresh).await?;
    let mut last_error = None;
    for addr in addrs {
        match &addr {
            Address::Tcp(socket) => match TcpStream::connect(socket).await {
                Ok(tcp) => {
                    // gRPC messages are often small; waiting to coalesce them only adds latency.
                    let _ = tcp.set_nodelay(true);
                    return over(tcp, authority, options).await;
                }
                Err(e) => last_error = Some(format!("{addr}: {e}")),
            },
            #[cfg(unix)]
            Address::Unix(path) => match tokio::net::UnixStream::connect(path).await {
                Ok(unix) => return over(unix, authority, options).await,
                Err(e) => last_error = Some(format!("{addr}: {e}")),
            },
            #[cfg(not(unix))]
            Address::Unix(_) => last_error = Some(format!("{addr}: not a Unix system")),
        }
    }
    Err(Status::unavailable(format!(
        "cannot connect to {authority}: {}",
        last_error.unwrap_or_default()
    )))
}

/// TLS (when the channel has it) and HTTP/2 over a connected byte stream.
async fn over<IO>(
    io: IO,
    authority: &http::uri::Authority,
    options: &ChannelOptions,
) -> Result<(Ready, oneshot::Receiver<()>), Status>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tls")]
    if let Some(tls) = &options.tls {
        let stream = tls.connect(io, authority).await?;
        // TLS 1.3 lets the client finish its handshake before the server has checked the
        // client's certificate (RFC 8446 §4.4.2): a refusal shows up as the connection closing
        // under the HTTP/2 preface, so say what it may be.
        return handshake(stream, options).await.map_err(|status| {
            Status::unavailable(format!(
                "TLS connection to {authority} closed during the HTTP/2 handshake (did the \
                 server refuse our client certificate?): {}",
                status.message()
            ))
        });
    }
    #[cfg(not(feature = "tls"))]
    let _ = authority;
    handshake(io, options).await
}

/// The HTTP/2 client handshake over any byte stream (plain TCP, or TLS from `tls.rs`),
/// with the channel's window settings. Spawns the connection task, and with keepalive on
/// (gRFC A8, `keepalive.rs`) wraps the stream in the frame watcher and spawns the keepalive
/// task.
pub(crate) async fn handshake<IO>(
    io: IO,
    options: &ChannelOptions,
) -> Result<(Ready, oneshot::Receiver<()>), Status>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(settings) = &options.keepalive else {
        return handshake_io(io, options, None)
            .await
            .map(|(ready, done, _)| (ready, done));
    };
    let watch = Arc::new(Watch::default());
    let io = Watched::new(
        io,
        Side::Client,
        watch.clone(),
        0,
        true,
        !settings.permit_without_calls,
    );
    let (ready, done, ping_pong) = handshake_io(io, options, Some(watch.clone())).await?;
    if let Some(ping_pong) = ping_pong {
        tokio::spawn(super::keepalive::run(
            ping_pong,
            watch,
            settings.clone(),
            ready.driver.clone(),
        ));
    }
    Ok((ready, done))
}

/// [`handshake`] over the (maybe watched) stream; gives back h2's PING handle too.
async fn handshake_io<IO>(
    io: IO,
    options: &ChannelOptions,
    watch: Option<Arc<Watch>>,
) -> Result<(Ready, oneshot::Receiver<()>, Option<h2::PingPong>), Status>
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
        if let Some(watch) = watch {
            watch.ended.store(true, Ordering::Release);
        }
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
        ping_pong,
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

/// Exponential back-off with jitter (also paces health-check retries, `health_check.rs`).
#[derive(Debug)]
pub(crate) struct Backoff {
    /// The settings.
    config: BackoffConfig,
    /// The un-jittered delay to use next.
    current: Duration,
    /// xorshift64 state; never zero.
    rng: u64,
}

impl Backoff {
    /// Starts at INITIAL_BACKOFF, seeded from the clock.
    pub(crate) fn new(config: &BackoffConfig) -> Backoff {
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
    pub(crate) fn reset(&mut self) {
        self.current = self.config.initial;
    }

    /// The delay before the next attempt; grows the following one.
    pub(crate) fn next_delay(&mut self) -> Duration {
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

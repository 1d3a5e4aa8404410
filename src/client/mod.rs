//! The client: a [`Channel`] to one server and the four call kinds on it.
//!
//! ```text
//!   Channel (Clone: Arc)                      one per target, shared by every stub
//!     ├── Target, Resolver  resolver.rs       naming.md's targets; the addresses over time
//!     └── Picker            balancer.rs       pick_first (one subchannel) or round_robin
//!           └── Subchannel  connection.rs     IDLE/CONNECTING/READY/TRANSIENT_FAILURE, back-off
//!           └── h2 SendRequest (Clone)        every call is one stream on one HTTP/2 connection
//!                 ├── unary / server_streaming / client_streaming / bidi      calls.rs
//!                 │     └── attempts, transparent retry, the retry policy     retry.rs
//!                 ├── the request side
//!                 │     ├── one message or a batched stream, END_STREAM        upload.rs
//!                 │     ├── copies kept for a retried client stream           replay.rs
//!                 │     └── RequestSink: bidi messages, its writer task       request_sink.rs
//!                 ├── ResponseStream: response HEADERS, messages, trailers    response.rs
//!                 │     └── DATA payloads -> messages                         inbox.rs
//!                 └── the send half both sides share                          send_half.rs
//!   fast/   the `block_on` fast paths, behind one check (relay, direct writes, upload hand-off)
//!   ../transport/write.rs   the flow-controlled writer; ../transport/error.rs  h2 errors -> call ends
//! ```
//!
//! The rules: gRPC over HTTP/2 as the client speaks it (PROTOCOL-HTTP2 § Requests, § Responses),
//! connection management after connectivity-semantics-and-api.md and connection-backoff.md,
//! deadlines as `grpc-timeout` plus a local timer, cancellation as RST_STREAM(CANCEL).
//!
//! Why it is shaped this way: an HTTP/2 connection already multiplexes, so a channel needs one
//! connection and no pool; `h2::client::SendRequest` is `Clone`, so a call takes its own handle
//! and no lock is held while it runs. The address is parsed once into a target that the
//! connection layer resolves at every attempt (`tokio::net::lookup_host`: names, IPv4, IPv6).
//! Several addresses with pick_first/round_robin become a list of subchannels behind the same
//! `Channel` API, and TLS another `handshake` input (it is generic over the byte stream).
//!
//! Interceptors (`ChannelBuilder::interceptor`, see [`crate::interceptor`]) run around every
//! call; a [`RetryPolicy`] (`ChannelBuilder::retry`, `Channel::with_retry`, see `retry.rs`)
//! sends failed calls again with back-off. A channel with neither pays nothing for them.
//!
//! TLS (feature `tls`) is one more step between TCP and HTTP/2 in `connection.rs`, made in
//! `tls.rs`.
//!
//! What it does not do (yet): hedging, keepalive pings, health-checked balancing, a service
//! config beyond its `loadBalancingConfig`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), bare_grpc::Status> {
//! use std::time::Duration;
//! use bare_grpc::{Channel, Request};
//!
//! let channel = Channel::builder("localhost:50051")?
//!     .connect_timeout(Duration::from_secs(5))
//!     .connect()
//!     .await?;
//! let mut request = Request::new(String::from("ping"));
//! request.set_timeout(Duration::from_millis(250));
//! let reply: bare_grpc::Response<String> = channel.unary("/echo.Echo/Say", request).await?;
//! # let _ = reply; Ok(()) }
//! ```
//!
//! Links: PROTOCOL-HTTP2 <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>.

mod balancer;
mod calls;
mod connection;
mod fast;
mod health_check;
mod inbox;
mod keepalive;
mod replay;
mod request_sink;
mod resolver;
mod response;
mod retry;
mod send_half;
#[cfg(feature = "tls")]
pub(crate) mod tls;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;

use self::balancer::Picker;
use self::connection::BackoffConfig;
use self::resolver::{Resolution, Target};
use crate::compression::Encoding;
use crate::interceptor::credentials::{CallCredentials, CredentialsInterceptor};
use crate::interceptor::{AsyncInterceptor, Chain, ChainBuilder, Interceptor};
use crate::status::Status;
use crate::wire::DEFAULT_MAX_MESSAGE_SIZE;

pub use self::balancer::LoadBalancingPolicy;
pub use self::connection::ConnectivityState;
pub use self::keepalive::{DEFAULT_KEEPALIVE_TIMEOUT, MIN_KEEPALIVE_TIME};
pub use self::request_sink::RequestSink;
pub use self::resolver::{
    Address, DEFAULT_MIN_RESOLVE_INTERVAL, DnsResolver, ResolveFuture, Resolver, StaticResolver,
};
pub use self::response::ResponseStream;
pub use self::retry::RetryPolicy;

/// The user-agent this library sends, after any application prefix
/// (PROTOCOL-HTTP2 § Requests: "User-Agent → "user-agent" {structured user-agent string}").
pub const USER_AGENT: &str = concat!("bare-grpc-rust/", env!("CARGO_PKG_VERSION"));

/// A virtual connection to one gRPC server: cheap to clone (an `Arc`), `Send + Sync`, and
/// every call on every clone shares one HTTP/2 connection.
///
/// The connection is made on first use ([`Channel::lazy`]) or up front
/// ([`Channel::connect`]), and remade after it drops, with exponential back-off. While there is
/// no connection after a failed attempt, calls fail fast with UNAVAILABLE unless they set
/// `Request::set_wait_for_ready(true)`.
#[derive(Clone, Debug)]
pub struct Channel {
    /// Shared by every clone.
    inner: Arc<ChannelInner>,
    /// How failed calls are retried; `None`: one attempt per call.
    retry: Option<Arc<RetryPolicy>>,
}

/// What clones of a channel share.
#[derive(Debug)]
struct ChannelInner {
    /// The server.
    target: Target,
    /// Defaults for every call.
    options: Arc<ChannelOptions>,
    /// The subchannels and how calls pick one (`balancer.rs`).
    picker: Picker,
    /// Run around every call; empty (and free) unless the builder added some.
    interceptors: Chain,
}

/// Channel-wide settings, fixed at build time.
#[derive(Clone, Debug)]
pub(crate) struct ChannelOptions {
    /// Bound on one connection attempt (resolve, TCP, HTTP/2 preface).
    pub(crate) connect_timeout: Duration,
    /// SETTINGS_INITIAL_WINDOW_SIZE we announce ([`DEFAULT_STREAM_WINDOW`] unless set).
    pub(crate) initial_stream_window_size: Option<u32>,
    /// The connection window we open to ([`DEFAULT_CONNECTION_WINDOW`] unless set).
    pub(crate) initial_connection_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE we announce ([`DEFAULT_MAX_FRAME_SIZE`] unless set).
    pub(crate) max_frame_size: u32,
    /// Default send limit per message.
    pub(crate) max_send_message_size: usize,
    /// Default receive limit per message.
    pub(crate) max_receive_message_size: usize,
    /// How long a request write may wait for the server's window with no byte going out
    /// (`ChannelBuilder::send_stall_timeout`); `None`: for ever (the deadline still applies).
    pub(crate) send_stall_timeout: Option<Duration>,
    /// Default request compression.
    pub(crate) compression: Encoding,
    /// The user-agent header value.
    pub(crate) user_agent: HeaderValue,
    /// Reconnect back-off.
    pub(crate) backoff: BackoffConfig,
    /// The TLS client, when the channel runs over TLS (`ChannelBuilder::tls`, `https://`).
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<tls::Connector>,
    /// The opt-in to send credentials that require transport security over h2c anyway
    /// (`ChannelBuilder::allow_plaintext_credentials`).
    pub(crate) plaintext_credentials: bool,
    /// Set by `crate::testing`: connect over an in-memory pipe to a server in this process.
    pub(crate) in_memory: Option<connection::InMemory>,
    /// Client keepalive (gRFC A8), when on (`ChannelBuilder::keepalive`).
    pub(crate) keepalive: Option<Arc<keepalive::ClientKeepalive>>,
}

impl ChannelOptions {
    /// Whether calls travel over TLS (what a call credential checks before sending a secret).
    pub(crate) fn is_secure(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// The `:scheme` of every request: `https` over TLS, `http` over h2c.
    pub(crate) fn scheme(&self) -> http::uri::Scheme {
        if self.is_secure() {
            http::uri::Scheme::HTTPS
        } else {
            http::uri::Scheme::HTTP
        }
    }
}

/// The receive window a channel announces per stream unless `initial_stream_window_size` says
/// otherwise: 2 MiB.
///
/// HTTP/2's default of 65,535 bytes (RFC 9113 §6.9.2) lets a server send one window and then
/// wait a round trip for our WINDOW_UPDATE: a 1 MiB message took 16 such stalls
/// (docs/performance.md, § "Windows and frame sizes"). 2 MiB per stream and 5 MiB per
/// connection are hyper's client defaults, so tonic's. The window is permission, not
/// memory: the response side hands every DATA payload back to flow control as soon as it is
/// read (see `response.rs`), so the bytes h2 may hold for a caller that stops reading are
/// bounded by this window per stream and [`DEFAULT_CONNECTION_WINDOW`] per connection.
pub const DEFAULT_STREAM_WINDOW: u32 = 2 * 1024 * 1024;

/// The connection-level receive window a channel opens to unless
/// `initial_connection_window_size` says otherwise: 5 MiB, room for two full stream windows
/// and more, so one fast stream does not stall its siblings.
pub const DEFAULT_CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;

/// The largest DATA frame a channel lets the server send (SETTINGS_MAX_FRAME_SIZE) unless
/// `max_frame_size` says otherwise: 128 KiB.
///
/// HTTP/2's default of 16,384 bytes (RFC 9113 §6.5.2) makes a server that honours it write one
/// frame per 16 KiB, and h2 (0.4.20) hands every DATA frame to the socket with its own `writev`
/// and flush: a 1 MiB response is 64 writes on the server, 64 wake-ups of the reading caller
/// here (the sweep over frame sizes is in docs/performance.md, § "Windows and frame sizes").
/// 128 KiB keeps a frame a small part of the stream window (2 MiB), so
/// a stream still gets several frames in flight and one stream's frame holds the connection
/// for little longer than before. The setting is a permission: peers that always write 16 KiB
/// frames (grpc-go) are unaffected; every HTTP/2 peer must accept it (values up to 16 MiB are
/// valid). What it costs: h2 reads a whole frame before handing it over, so a connection may
/// buffer up to this much of one frame (bounded by the windows anyway).
pub const DEFAULT_MAX_FRAME_SIZE: u32 = 128 * 1024;

impl Default for ChannelOptions {
    fn default() -> Self {
        ChannelOptions {
            connect_timeout: Duration::from_secs(20),
            initial_stream_window_size: Some(DEFAULT_STREAM_WINDOW),
            initial_connection_window_size: Some(DEFAULT_CONNECTION_WINDOW),
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_send_message_size: usize::MAX,
            max_receive_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            send_stall_timeout: None,
            compression: Encoding::Identity,
            user_agent: HeaderValue::from_static(USER_AGENT),
            backoff: BackoffConfig::default(),
            #[cfg(feature = "tls")]
            tls: None,
            plaintext_credentials: false,
            in_memory: None,
            keepalive: None,
        }
    }
}

impl Channel {
    /// A channel to `addr` (`host:port`, `[v6]:port`, optionally `http://`, or any of gRPC's
    /// target forms: `dns:///host:port`, `ipv4:a:p,b:p`, `ipv6:[::1]:p`, `unix:///path`) that
    /// connects on its first call. INVALID_ARGUMENT for an address it cannot parse. Needs no runtime until
    /// the first call.
    pub fn lazy(addr: &str) -> Result<Channel, Status> {
        Ok(Channel::builder(addr)?.lazy())
    }

    /// A channel to `addr` that has connected: UNAVAILABLE when the first attempt fails.
    pub async fn connect(addr: &str) -> Result<Channel, Status> {
        Channel::builder(addr)?.connect().await
    }

    /// A builder for a channel to `addr`, to change the defaults.
    pub fn builder(addr: &str) -> Result<ChannelBuilder, Status> {
        let builder = ChannelBuilder {
            target: Target::parse(addr)?,
            options: ChannelOptions::default(),
            interceptors: ChainBuilder::default(),
            retry: None,
            policy: LoadBalancingPolicy::default(),
            min_resolve_interval: DEFAULT_MIN_RESOLVE_INTERVAL,
            health_check: None,
        };
        #[cfg(feature = "tls")]
        if builder.target.https {
            return builder.tls(crate::transport::tls::ClientTls::new());
        }
        Ok(builder)
    }

    /// This channel (the same connection, the same interceptors) with another retry policy;
    /// `None` turns retries off. Cheap: for a group of calls that may, or may not, be retried.
    pub fn with_retry(&self, policy: Option<RetryPolicy>) -> Channel {
        Channel {
            inner: self.inner.clone(),
            retry: policy.map(Arc::new),
        }
    }

    /// The retry policy of this channel handle, if any.
    pub fn retry_policy(&self) -> Option<&RetryPolicy> {
        self.retry.as_deref()
    }

    /// The keepalive time the channel's next connection uses (doubled each time a server
    /// answered "too_many_pings", gRFC A8); `None` when keepalive is off.
    pub fn keepalive_time(&self) -> Option<Duration> {
        self.inner.options.keepalive.as_ref().map(|k| k.time())
    }

    /// The channel's connectivity state (grpc-go's `GetState`): for round_robin, READY when
    /// any subchannel is. `try_to_connect` starts connecting an IDLE channel (needs a
    /// runtime then).
    pub fn get_state(&self, try_to_connect: bool) -> ConnectivityState {
        self.inner.picker.state(try_to_connect)
    }

    /// Waits until the state is no longer `source` (grpc-go's `WaitForStateChange`): true when
    /// it changed, false when `timeout` passed first.
    pub async fn wait_for_state_change(
        &self,
        source: ConnectivityState,
        timeout: Duration,
    ) -> bool {
        let deadline = connection::deadline_after(timeout);
        self.inner
            .picker
            .wait_for_state_change(source, deadline)
            .await
    }
}

impl Channel {
    /// A channel whose every call goes on `ready`, one connection of a subchannel, with no
    /// interceptors: what a health check's Watch is sent through (`health_check.rs`).
    pub(crate) fn pinned(
        target: resolver::Target,
        options: Arc<ChannelOptions>,
        ready: connection::Ready,
    ) -> Channel {
        Channel {
            inner: Arc::new(ChannelInner {
                target,
                options,
                picker: Picker::Pinned(ready),
                interceptors: Chain::default(),
            }),
            retry: None,
        }
    }
}

/// Settings for a [`Channel`]; every one has a default that matches gRPC's.
#[derive(Clone, Debug)]
pub struct ChannelBuilder {
    /// The server.
    target: Target,
    /// What is being set.
    options: ChannelOptions,
    /// The interceptors, outermost first.
    interceptors: ChainBuilder,
    /// The retry policy.
    retry: Option<RetryPolicy>,
    /// The load-balancing policy.
    policy: LoadBalancingPolicy,
    /// The resolver is asked again no sooner than this.
    min_resolve_interval: Duration,
    /// The service round_robin's subchannels watch (gRFC A17); `None`: no health checking.
    health_check: Option<String>,
}

impl ChannelBuilder {
    /// Bound on one connection attempt (default 20 s, connection-backoff.md's
    /// MIN_CONNECT_TIMEOUT).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// The per-stream receive window we announce (SETTINGS_INITIAL_WINDOW_SIZE; default
    /// [`DEFAULT_STREAM_WINDOW`], 2 MiB, not HTTP/2's 65,535 bytes: see there why).
    pub fn initial_stream_window_size(mut self, size: u32) -> Self {
        self.options.initial_stream_window_size = Some(size);
        self
    }

    /// The connection-level receive window (default [`DEFAULT_CONNECTION_WINDOW`], 5 MiB).
    pub fn initial_connection_window_size(mut self, size: u32) -> Self {
        self.options.initial_connection_window_size = Some(size);
        self
    }

    /// The largest DATA frame the server may send us (SETTINGS_MAX_FRAME_SIZE; default
    /// [`DEFAULT_MAX_FRAME_SIZE`], 128 KiB, not HTTP/2's 16 KiB: see there why). Clamped to
    /// the range HTTP/2 allows, 16,384 to 16,777,215 bytes.
    pub fn max_frame_size(mut self, size: u32) -> Self {
        self.options.max_frame_size = size.clamp(16_384, 16_777_215);
        self
    }

    /// The largest request message a call may send (default: unlimited). Larger ones fail
    /// with RESOURCE_EXHAUSTED before anything is sent.
    pub fn max_send_message_size(mut self, limit: usize) -> Self {
        self.options.max_send_message_size = limit;
        self
    }

    /// Ends a call whose server stops reading its upload: when a request write (the message of
    /// a unary call, a client stream's batch, a bidi message) has waited this long for the
    /// server's flow-control window with no byte going out, the stream is reset with
    /// ENHANCE_YOUR_CALM and the call ends with RESOURCE_EXHAUSTED, as the server's
    /// `Builder::send_stall_timeout` does to a client that stops reading. Other calls on the
    /// channel go on. Off by default, as on the server (and in grpc-go and C-core): a server
    /// may pause reading on purpose, the call's deadline bounds the wait anyway, and what a
    /// stalled upload holds is bounded by the window (`docs/reliability.md`).
    pub fn send_stall_timeout(mut self, timeout: Duration) -> Self {
        self.options.send_stall_timeout = Some(timeout);
        self
    }

    /// The largest response message a call accepts, after decompression (default 4 MiB).
    /// Larger ones end the call with RESOURCE_EXHAUSTED.
    pub fn max_receive_message_size(mut self, limit: usize) -> Self {
        self.options.max_receive_message_size = limit;
        self
    }

    /// Compress request messages with `encoding` unless a request says otherwise
    /// (default identity).
    pub fn compression(mut self, encoding: Encoding) -> Self {
        self.options.compression = encoding;
        self
    }

    /// Puts `prefix` before this library's own user-agent (`prefix bare-grpc-rust/0.1.0`).
    /// INVALID_ARGUMENT when the result is not a valid header value.
    pub fn user_agent(mut self, prefix: &str) -> Result<Self, Status> {
        let value = format!("{prefix} {USER_AGENT}");
        self.options.user_agent = HeaderValue::try_from(value)
            .map_err(|_| Status::invalid_argument(format!("bad user-agent {prefix:?}")))?;
        Ok(self)
    }

    /// Every connection is made by `connect` (an in-memory pipe to a server in this process,
    /// `crate::testing`) instead of resolving and dialling the target.
    pub(crate) fn in_memory(
        mut self,
        connect: impl Fn() -> tokio::io::DuplexStream + Send + Sync + 'static,
    ) -> Self {
        self.options.in_memory = Some(connection::InMemory(Arc::new(connect)));
        self
    }

    /// Reconnect back-off: the first delay and the cap (defaults 1 s and 120 s; the
    /// multiplier 1.6 and jitter ±20 % are fixed).
    pub fn backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.options.backoff.initial = initial;
        self.options.backoff.max = max.max(initial);
        self
    }

    /// Adds an interceptor around every call, inside the ones added before: the first added is
    /// the outermost (see [`crate::interceptor`] for the order of the hooks).
    pub fn interceptor<I: Interceptor>(mut self, interceptor: I) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// Runs the channel over TLS (feature `tls`): `:scheme https`, the server's certificate
    /// verified as `tls` says (see `docs/tls.md`). A handshake that fails is UNAVAILABLE with
    /// the reason; there is no plain-text fallback. INVALID_ARGUMENT when the settings cannot
    /// make a client (a bad server name, a client key that does not match its certificate).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::transport::tls::ClientTls) -> Result<Self, Status> {
        self.options.tls = Some(tls::Connector::new(&tls, &self.target.host)?);
        Ok(self)
    }

    /// Adds an interceptor whose start hook may await, inside the ones added before: nothing
    /// is sent until it decides, and the call's deadline applies while it waits.
    pub fn async_interceptor<I: AsyncInterceptor>(mut self, interceptor: I) -> Self {
        self.interceptors.push_async(interceptor);
        self
    }

    /// Attaches `credentials`' metadata to every call (gRPC's per-RPC credentials; see
    /// [`crate::interceptor::credentials`]), as an async interceptor inside the ones added
    /// before. A source that fails fails the call with UNAVAILABLE; credentials that require
    /// transport security are refused (UNAUTHENTICATED) on a plaintext channel unless
    /// [`ChannelBuilder::allow_plaintext_credentials`] opts in.
    pub fn call_credentials<C: CallCredentials>(self, credentials: C) -> Self {
        self.async_interceptor(CredentialsInterceptor(credentials))
    }

    /// Opts in to sending credentials that require transport security over this channel's
    /// plaintext HTTP/2 (loopback, a private network, a TLS-terminating sidecar). Anyone on
    /// the path can read them.
    pub fn allow_plaintext_credentials(mut self) -> Self {
        self.options.plaintext_credentials = true;
        self
    }

    /// Retries failed calls as `policy` says (default: no retries).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// The load-balancing policy (default pick_first; see `docs/balancing.md`).
    pub fn load_balancing(mut self, policy: LoadBalancingPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Takes the load-balancing policy from a service config's `loadBalancingConfig` (the
    /// first policy there this library knows); other fields are not read. INVALID_ARGUMENT
    /// when that field is malformed or names no known policy.
    pub fn service_config(mut self, json: &str) -> Result<Self, Status> {
        if let Some(policy) = LoadBalancingPolicy::from_service_config(json)? {
            self.policy = policy;
        }
        if let Some(service) = health_check::from_service_config(json)? {
            self.health_check = Some(service);
        }
        Ok(self)
    }

    /// Client-side health checking (gRFC A17), as a service config's
    /// `{"healthCheckConfig": {"serviceName": service}}` turns it on: each round_robin
    /// subchannel watches `service` (`""`: the server as a whole) through
    /// `grpc.health.v1.Health/Watch` on its own connection and gets calls only while the
    /// answer is SERVING; a server without the health service (UNIMPLEMENTED) counts as
    /// healthy. pick_first ignores it (A17). See `docs/balancing.md`.
    pub fn health_check(mut self, service: &str) -> Self {
        self.health_check = Some(service.to_owned());
        self
    }

    /// Takes the addresses from `resolver` instead of the target's scheme; the target still
    /// gives the `:authority` (and TLS's server name).
    pub fn resolver<R: Resolver>(mut self, resolver: R) -> Self {
        self.target.resolver = Arc::new(resolver);
        self
    }

    /// The least time between two resolutions (default [`DEFAULT_MIN_RESOLVE_INTERVAL`],
    /// 30 s): the channel asks again on a lost connection, never sooner than this.
    pub fn min_resolve_interval(mut self, interval: Duration) -> Self {
        self.min_resolve_interval = interval;
        self
    }

    /// Client keepalive (gRFC A8; `docs/keepalive.md`): each connection sends a PING after
    /// `time` without a byte from the server and is closed when the ACK has not come within
    /// `timeout` (its calls end UNAVAILABLE, the channel reconnects and its balancer picks a
    /// live server meanwhile). A `time` under [`MIN_KEEPALIVE_TIME`] (10 s) is raised to it, as
    /// A8 says; a zero `timeout` is INVALID_ARGUMENT (A8's default is
    /// [`DEFAULT_KEEPALIVE_TIMEOUT`], 20 s). Pings go only while calls are open unless
    /// [`ChannelBuilder::keepalive_permit_without_calls`]. A server that answers
    /// GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") doubles `time` for the channel's next
    /// connections ([`Channel::keepalive_time`]). Off by default.
    pub fn keepalive(mut self, time: Duration, timeout: Duration) -> Result<Self, Status> {
        let permit = self
            .options
            .keepalive
            .as_ref()
            .is_some_and(|k| k.permit_without_calls);
        self.options.keepalive = Some(Arc::new(keepalive::ClientKeepalive::new(
            time, timeout, permit,
        )?));
        Ok(self)
    }

    /// A8's KEEPALIVE_WITHOUT_CALLS: ping also while no call is open (default false).
    /// INVALID_ARGUMENT unless [`ChannelBuilder::keepalive`] was set first.
    pub fn keepalive_permit_without_calls(mut self, permit: bool) -> Result<Self, Status> {
        let Some(current) = &self.options.keepalive else {
            return Err(Status::invalid_argument(
                "keepalive_permit_without_calls needs keepalive(time, timeout) set first",
            ));
        };
        self.options.keepalive = Some(Arc::new(keepalive::ClientKeepalive::new(
            current.time(),
            current.timeout,
            permit,
        )?));
        Ok(self)
    }

    /// A channel that connects on its first call.
    pub fn lazy(self) -> Channel {
        let options = Arc::new(self.options);
        let resolution = Arc::new(Resolution::new(
            self.target.resolver.clone(),
            self.min_resolve_interval,
        ));
        let picker = Picker::new(
            self.policy,
            resolution,
            &self.target,
            options.clone(),
            self.health_check,
        );
        Channel {
            inner: Arc::new(ChannelInner {
                target: self.target,
                options,
                picker,
                interceptors: self.interceptors.build(),
            }),
            retry: self.retry.map(Arc::new),
        }
    }

    /// A channel that has connected: UNAVAILABLE when the first attempt fails.
    pub async fn connect(self) -> Result<Channel, Status> {
        let channel = self.lazy();
        channel.inner.picker.connect_now().await?;
        Ok(channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_is_cheap_and_shareable() {
        fn assert_send_sync_clone<T: Send + Sync + Clone>() {}
        assert_send_sync_clone::<Channel>();
    }

    #[test]
    fn user_agent_prefix() {
        let builder = Channel::builder("localhost:1").unwrap();
        assert_eq!(builder.options.user_agent, USER_AGENT);
        assert!(USER_AGENT.starts_with("bare-grpc-rust/"));
        let builder = builder.user_agent("interop/1").unwrap();
        assert_eq!(
            builder.options.user_agent,
            format!("interop/1 {USER_AGENT}").as_str()
        );
        assert!(
            Channel::builder("localhost:1")
                .unwrap()
                .user_agent("bad\nvalue")
                .is_err()
        );
    }

    #[test]
    fn max_frame_size_stays_in_the_range_http2_allows() {
        let builder = Channel::builder("localhost:1").unwrap();
        assert_eq!(builder.options.max_frame_size, DEFAULT_MAX_FRAME_SIZE);
        // RFC 9113 §6.5.2: 2^14 to 2^24 - 1; h2 would panic on anything else.
        assert_eq!(
            builder.clone().max_frame_size(1).options.max_frame_size,
            16_384
        );
        assert_eq!(
            builder.max_frame_size(u32::MAX).options.max_frame_size,
            16_777_215
        );
    }

    #[test]
    fn bad_address_is_invalid_argument() {
        let err = Channel::lazy("no-port").unwrap_err();
        assert_eq!(err.code(), crate::status::Code::InvalidArgument);
    }
}

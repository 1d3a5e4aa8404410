//! Interceptors: code that runs around every call, on the server and on the client, for the
//! four call kinds alike (gRPC's interceptor idea; the spec itself has no wire rule for it).
//!
//! One call as an interceptor chain sees it, with `.interceptor(a).interceptor(b)` (declared
//! order = outermost first):
//!
//! ```text
//!   request direction (outer first)              response direction (inner first)
//!   ─────────────────────────────▶               ◀─────────────────────────────
//!   a.on_start  b.on_start   (metadata, may reject)
//!   a.on_request b.on_request  per request message   b.on_response a.on_response  per response message
//!                                                      b.on_end a.on_end   (status, elapsed)
//!
//!   server: wire ─▶ a ─▶ b ─▶ handler        client: caller ─▶ a ─▶ b ─▶ wire
//! ```
//!
//! The rule is the same on both sides: events that travel with the request (the start, request
//! messages) visit the chain outermost first; events that travel with the response (response
//! messages, the end) visit it innermost first, as a stack unwinds. When `b` rejects a call in
//! `on_start`, the handler never runs (the client sends nothing), `b` gets no further events,
//! and `a` sees `on_end` with `b`'s status: a metrics interceptor placed outside an auth check
//! counts the rejected call.
//!
//! Why this shape (hooks, not a wrapper around the call):
//! - Messages are protobuf types chosen by generated code, and `prost::Message` is not
//!   object-safe, so an interceptor that works for every method sees each message as
//!   `&dyn Any` plus its length on the wire ([`MessageView`]); it may downcast when it knows
//!   the type. Interceptors observe messages; they do not replace them.
//! - Streaming calls are intercepted as streams: `on_request` / `on_response` fire for every
//!   message of a client-streaming, server-streaming or bidi call as it passes, not once at
//!   the start.
//! - Per-call state (a timer, a span, a counter handle) is the interceptor's associated
//!   [`Interceptor::State`], returned by `on_start` and handed back to every later hook, so an
//!   interceptor needs no map keyed by call.
//! - The hooks of an [`Interceptor`] are synchronous: they run inline on the call's task (no
//!   boxed future per hook per call). A start that must wait (asking an identity service, a
//!   rate-limit store, fetching a token) is an [`AsyncInterceptor`]: its `on_start` is a
//!   future, boxed once per call for that interceptor only. A chain with one runs every start
//!   hook in declared order, calling the synchronous ones and awaiting the others, before the
//!   call goes further: on the server no handler exists and no request message is read until
//!   the chain decides, under the call's deadline (DEADLINE_EXCEEDED) and the client's
//!   cancellation (the waiting future is dropped); on the client nothing is sent, under the
//!   call's deadline. A chain with no async interceptor runs exactly as before.
//! - A start hook that panics rejects the call with INTERNAL (the panic is caught where the
//!   call can still be answered); the server keeps serving.
//! - Zero cost when none is installed: the chain is an `Option` that is `None` when empty, so a
//!   call on a server or channel without interceptors allocates nothing, makes no dynamic call
//!   and reads no clock for them; each hook point is one `is_none` test.
//!
//! What it deliberately does not do: change messages, change the final status, or retry (the
//! client's retry policy, `client::retry`, needs to own and replay the request, which an
//! observer cannot). Calls to an unknown method never reach the chain (the router answers
//! UNIMPLEMENTED first), just as grpc-go runs no interceptor for them. Only a panic in
//! `on_start` is caught; one in a message or end hook costs the call (server: its stream).

pub mod auth;
pub mod credentials;
#[cfg(feature = "tracing")]
pub(crate) mod spans;

use std::any::Any;
use std::fmt;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;

use crate::call::CallKind;
use crate::metadata::Metadata;
use crate::peer::Peer;
use crate::status::{Code, Status};

/// Which end of the call an interceptor runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// In a [`Server`](crate::Server): request messages are received, responses sent.
    Server,
    /// In a [`Channel`](crate::Channel): request messages are sent, responses received.
    Client,
}

/// What an interceptor knows about the call it is watching.
#[derive(Clone, Debug)]
pub struct CallInfo {
    side: Side,
    kind: CallKind,
    path: &'static str,
    service: &'static str,
    method: &'static str,
    peer: Peer,
    secure: bool,
    deadline: Option<Instant>,
    /// Client side: the channel's explicit opt-in to send credentials over a plaintext
    /// transport (`ChannelBuilder::allow_plaintext_credentials`). False on the server.
    plaintext_credentials: bool,
    /// Client side: the `:authority` the call is sent to. `None` on the server.
    authority: Option<http::uri::Authority>,
}

impl CallInfo {
    /// Server side: from the dispatch-table row the call matched.
    pub(crate) fn server(
        kind: CallKind,
        path: &'static str,
        service: &'static str,
        method: &'static str,
        peer: Peer,
        deadline: Option<Instant>,
    ) -> CallInfo {
        CallInfo {
            side: Side::Server,
            kind,
            path,
            service,
            method,
            secure: peer.tls().is_some(),
            peer,
            deadline,
            plaintext_credentials: false,
            authority: None,
        }
    }

    /// Client side: the service and method are cut out of `path` (`/service/method`); a path
    /// of another shape gives an empty service and the whole path as the method.
    /// `secure`: the channel runs over TLS.
    pub(crate) fn client(
        kind: CallKind,
        path: &'static str,
        deadline: Option<Instant>,
        secure: bool,
    ) -> Self {
        let (service, method) = path
            .strip_prefix('/')
            .and_then(|rest| rest.split_once('/'))
            .unwrap_or(("", path));
        CallInfo {
            side: Side::Client,
            kind,
            path,
            service,
            method,
            peer: Peer::default(),
            secure,
            deadline,
            plaintext_credentials: false,
            authority: None,
        }
    }

    /// Client side: records the `:authority` the call goes to (the channel's target).
    pub(crate) fn with_authority(mut self, authority: http::uri::Authority) -> Self {
        self.authority = Some(authority);
        self
    }

    /// Client side: records the channel's opt-in to plaintext credentials (see
    /// [`credentials::check_transport`]).
    pub(crate) fn with_plaintext_credentials(mut self, allowed: bool) -> Self {
        self.plaintext_credentials = allowed;
        self
    }

    /// Server or client.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The call kind.
    pub fn kind(&self) -> CallKind {
        self.kind
    }

    /// The `:path`, e.g. `/ecommerce.ProductInfo/addProduct`.
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// The fully qualified service name, e.g. `ecommerce.ProductInfo`.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The method name as written in the `.proto`, e.g. `addProduct`.
    pub fn method(&self) -> &'static str {
        self.method
    }

    /// Server side: the client's address, when the transport knows it. `None` on the client.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.peer.addr()
    }

    /// Server side: the client's address and, over TLS, its verified identity (the chain and
    /// subject alternative names an authorization interceptor decides on). Empty on the client.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Whether the call travels over TLS (server: this connection; client: the channel). A
    /// call credential such as [`auth::BearerToken`] refuses to send a secret when it does not.
    pub fn is_transport_secure(&self) -> bool {
        self.secure
    }

    /// When the call's deadline passes (server: from `grpc-timeout`; client: from the
    /// request's timeout), if it has one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Client side: the `:authority` the call is sent to (`host:port` of the channel's
    /// target), which OpenTelemetry names `server.address` and `server.port`. `None` on the
    /// server.
    pub fn authority(&self) -> Option<&str> {
        self.authority.as_ref().map(http::uri::Authority::as_str)
    }

    /// Client side: the host (without IPv6 brackets) and port of the `:authority`.
    #[cfg(feature = "tracing")]
    pub(crate) fn server_host_port(&self) -> Option<(&str, Option<u16>)> {
        let authority = self.authority.as_ref()?;
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        Some((host, authority.port_u16()))
    }

    /// Client side: whether the channel opted in to sending credentials over plaintext
    /// (`ChannelBuilder::allow_plaintext_credentials`). False on the server.
    pub fn plaintext_credentials_allowed(&self) -> bool {
        self.plaintext_credentials
    }
}

/// One message passing an interceptor: the decoded value, type-erased, and its size on the
/// wire.
#[derive(Clone, Copy)]
pub struct MessageView<'a> {
    message: &'a dyn Any,
    wire_len: usize,
}

impl<'a> MessageView<'a> {
    /// Views `message`, whose length-prefixed form carries `wire_len` bytes after the prefix.
    pub fn new(message: &'a dyn Any, wire_len: usize) -> MessageView<'a> {
        MessageView { message, wire_len }
    }

    /// The message, when it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&'a T> {
        self.message.downcast_ref()
    }

    /// The message as `&dyn Any`.
    pub fn as_any(&self) -> &'a dyn Any {
        self.message
    }

    /// Bytes of the message on the wire, without the 5-byte prefix (after compression when
    /// the message was sent compressed).
    pub fn wire_len(&self) -> usize {
        self.wire_len
    }
}

impl fmt::Debug for MessageView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageView")
            .field("wire_len", &self.wire_len)
            .finish_non_exhaustive()
    }
}

/// Code that runs around every call of a server or a channel. See the module doc for the order
/// of the hooks; only `on_start` must be written, the others default to doing nothing.
///
/// ```
/// use std::time::Duration;
/// use bare_grpc::interceptor::{CallInfo, Interceptor};
/// use bare_grpc::{Metadata, Status};
///
/// /// Logs every call's end.
/// struct Log;
///
/// impl Interceptor for Log {
///     type State = ();
///     fn on_start(&self, _call: &CallInfo, _md: &mut Metadata) -> Result<(), Status> {
///         Ok(())
///     }
///     fn on_end(&self, _: (), call: &CallInfo, status: &Status, elapsed: Duration) {
///         eprintln!("{} -> {} in {elapsed:?}", call.path(), status.code().name());
///     }
/// }
/// ```
pub trait Interceptor: Send + Sync + 'static {
    /// What the interceptor keeps for one call (`()` when nothing).
    type State: Send + 'static;

    /// Before the call goes further: the server has admitted the request headers but not run
    /// the handler; the client has not sent anything. `metadata` is the request's custom
    /// metadata, to read or change. `Err(status)` rejects the call with that status (an `OK`
    /// status is turned into UNKNOWN: a rejection cannot succeed).
    fn on_start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<Self::State, Status>;

    /// A request message: received (server) or about to be sent (client).
    fn on_request(&self, state: &mut Self::State, call: &CallInfo, message: MessageView<'_>) {
        let _ = (state, call, message);
    }

    /// A response message: about to be sent (server) or received (client).
    fn on_response(&self, state: &mut Self::State, call: &CallInfo, message: MessageView<'_>) {
        let _ = (state, call, message);
    }

    /// The call is over with `status` after `elapsed` (measured from the start of the chain).
    /// A call the peer cancelled, or that was dropped unfinished, ends with CANCELLED.
    fn on_end(&self, state: Self::State, call: &CallInfo, status: &Status, elapsed: Duration) {
        let _ = (state, call, status, elapsed);
    }
}

impl<I: Interceptor> Interceptor for Arc<I> {
    type State = I::State;

    fn on_start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<I::State, Status> {
        (**self).on_start(call, metadata)
    }

    fn on_request(&self, state: &mut I::State, call: &CallInfo, message: MessageView<'_>) {
        (**self).on_request(state, call, message)
    }

    fn on_response(&self, state: &mut I::State, call: &CallInfo, message: MessageView<'_>) {
        (**self).on_response(state, call, message)
    }

    fn on_end(&self, state: I::State, call: &CallInfo, status: &Status, elapsed: Duration) {
        (**self).on_end(state, call, status, elapsed)
    }
}

/// An interceptor whose start may wait: `on_start` returns a future, awaited before the call
/// goes further (server: before the handler exists and before any request message is read;
/// client: before anything is sent). The other hooks are [`Interceptor`]'s, synchronous.
///
/// Installed with `Builder::async_interceptor` / `ChannelBuilder::async_interceptor`, in the
/// same chain as the synchronous ones: the declared order holds across both kinds.
///
/// ```
/// use std::time::Duration;
/// use bare_grpc::interceptor::{AsyncInterceptor, CallInfo};
/// use bare_grpc::{Metadata, Status};
///
/// /// Asks a (slow) store whether the caller may call.
/// struct Check;
///
/// impl AsyncInterceptor for Check {
///     type State = ();
///     async fn on_start(&self, _call: &CallInfo, md: &mut Metadata) -> Result<(), Status> {
///         tokio::time::sleep(Duration::from_millis(1)).await; // the store's round trip
///         match md.get_all("x-user").as_slice() {
///             ["alice"] => Ok(()),
///             _ => Err(Status::permission_denied("not alice")),
///         }
///     }
/// }
/// ```
pub trait AsyncInterceptor: Send + Sync + 'static {
    /// What the interceptor keeps for one call (`()` when nothing).
    type State: Send + 'static;

    /// As [`Interceptor::on_start`], but may await. The server applies the call's deadline
    /// (DEADLINE_EXCEEDED) and the client's cancellation (the future is dropped) while it
    /// waits; the client applies the call's deadline.
    fn on_start(
        &self,
        call: &CallInfo,
        metadata: &mut Metadata,
    ) -> impl Future<Output = Result<Self::State, Status>> + Send;

    /// As [`Interceptor::on_request`].
    fn on_request(&self, state: &mut Self::State, call: &CallInfo, message: MessageView<'_>) {
        let _ = (state, call, message);
    }

    /// As [`Interceptor::on_response`].
    fn on_response(&self, state: &mut Self::State, call: &CallInfo, message: MessageView<'_>) {
        let _ = (state, call, message);
    }

    /// As [`Interceptor::on_end`].
    fn on_end(&self, state: Self::State, call: &CallInfo, status: &Status, elapsed: Duration) {
        let _ = (state, call, status, elapsed);
    }
}

impl<I: AsyncInterceptor> AsyncInterceptor for Arc<I> {
    type State = I::State;

    fn on_start(
        &self,
        call: &CallInfo,
        metadata: &mut Metadata,
    ) -> impl Future<Output = Result<I::State, Status>> + Send {
        (**self).on_start(call, metadata)
    }

    fn on_request(&self, state: &mut I::State, call: &CallInfo, message: MessageView<'_>) {
        (**self).on_request(state, call, message)
    }

    fn on_response(&self, state: &mut I::State, call: &CallInfo, message: MessageView<'_>) {
        (**self).on_response(state, call, message)
    }

    fn on_end(&self, state: I::State, call: &CallInfo, status: &Status, elapsed: Duration) {
        (**self).on_end(state, call, status, elapsed)
    }
}

/// A state of any interceptor, boxed. A `()` state boxes without allocating.
type AnyState = Box<dyn Any + Send>;

/// The start of an [`AsyncInterceptor`], boxed: the one allocation an async hook costs a call.
type StartFuture<'a> = Pin<Box<dyn Future<Output = Result<AnyState, Status>> + Send + 'a>>;

/// A rejection with status OK cannot stand: it becomes UNKNOWN.
fn not_ok(status: Status) -> Status {
    if status.code() == Code::Ok {
        Status::unknown(format!(
            "an interceptor rejected the call with status OK: {}",
            status.message()
        ))
    } else {
        status
    }
}

/// The status of a call whose interceptor panicked in its start hook.
fn start_panicked() -> Status {
    Status::internal("an interceptor panicked in on_start")
}

/// [`Interceptor`] with its state type erased, so one chain holds different interceptors.
trait Erased: Send + Sync {
    /// Whether the start must be awaited ([`Erased::start_later`]) rather than called.
    fn is_async(&self) -> bool {
        false
    }
    fn start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<AnyState, Status>;
    /// The start of an async interceptor; a synchronous one never gets this call.
    fn start_later<'a>(
        &'a self,
        call: &'a CallInfo,
        metadata: &'a mut Metadata,
    ) -> StartFuture<'a> {
        let result = self.start(call, metadata);
        Box::pin(std::future::ready(result))
    }
    fn request(&self, state: &mut AnyState, call: &CallInfo, message: MessageView<'_>);
    fn response(&self, state: &mut AnyState, call: &CallInfo, message: MessageView<'_>);
    fn end(&self, state: AnyState, call: &CallInfo, status: &Status, elapsed: Duration);
}

impl<I: Interceptor> Erased for I {
    fn start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<AnyState, Status> {
        match self.on_start(call, metadata) {
            Ok(state) => Ok(Box::new(state)),
            Err(status) => Err(not_ok(status)),
        }
    }

    fn request(&self, state: &mut AnyState, call: &CallInfo, message: MessageView<'_>) {
        // The chain pairs each state with the interceptor that made it, so this always holds.
        if let Some(state) = state.downcast_mut::<I::State>() {
            self.on_request(state, call, message);
        }
    }

    fn response(&self, state: &mut AnyState, call: &CallInfo, message: MessageView<'_>) {
        if let Some(state) = state.downcast_mut::<I::State>() {
            self.on_response(state, call, message);
        }
    }

    fn end(&self, state: AnyState, call: &CallInfo, status: &Status, elapsed: Duration) {
        if let Ok(state) = state.downcast::<I::State>() {
            self.on_end(*state, call, status, elapsed);
        }
    }
}

/// An [`AsyncInterceptor`] in a chain.
struct AsyncLink<I>(I);

impl<I: AsyncInterceptor> Erased for AsyncLink<I> {
    fn is_async(&self) -> bool {
        true
    }

    fn start(&self, _: &CallInfo, _: &mut Metadata) -> Result<AnyState, Status> {
        // The chain awaits `start_later` for every link whose `is_async` is true.
        Err(Status::internal(
            "an async interceptor was started synchronously",
        ))
    }

    fn start_later<'a>(
        &'a self,
        call: &'a CallInfo,
        metadata: &'a mut Metadata,
    ) -> StartFuture<'a> {
        Box::pin(async move {
            match self.0.on_start(call, metadata).await {
                Ok(state) => Ok(Box::new(state) as AnyState),
                Err(status) => Err(not_ok(status)),
            }
        })
    }

    fn request(&self, state: &mut AnyState, call: &CallInfo, message: MessageView<'_>) {
        if let Some(state) = state.downcast_mut::<I::State>() {
            self.0.on_request(state, call, message);
        }
    }

    fn response(&self, state: &mut AnyState, call: &CallInfo, message: MessageView<'_>) {
        if let Some(state) = state.downcast_mut::<I::State>() {
            self.0.on_response(state, call, message);
        }
    }

    fn end(&self, state: AnyState, call: &CallInfo, status: &Status, elapsed: Duration) {
        if let Ok(state) = state.downcast::<I::State>() {
            self.0.on_end(*state, call, status, elapsed);
        }
    }
}

/// The interceptors of a server or channel while it is being built, in declared order.
#[derive(Clone, Default)]
pub(crate) struct ChainBuilder(Vec<Arc<dyn Erased>>);

impl ChainBuilder {
    /// Adds `interceptor` inside the ones added before.
    pub(crate) fn push<I: Interceptor>(&mut self, interceptor: I) {
        self.0.push(Arc::new(interceptor));
    }

    /// Adds an interceptor whose start is awaited, inside the ones added before.
    pub(crate) fn push_async<I: AsyncInterceptor>(&mut self, interceptor: I) {
        self.0.push(Arc::new(AsyncLink(interceptor)));
    }

    /// The finished chain.
    pub(crate) fn build(&self) -> Chain {
        // With the feature `tracing`, every chain opens a span per call, outside every other
        // interceptor (`spans.rs`).
        #[cfg(feature = "tracing")]
        let links: Vec<Arc<dyn Erased>> = std::iter::once(Arc::new(spans::Spans) as _)
            .chain(self.0.iter().cloned())
            .collect();
        #[cfg(not(feature = "tracing"))]
        let links = &self.0;
        if links.is_empty() {
            Chain::default()
        } else {
            Chain {
                links: Some(links.iter().cloned().collect()),
                waits: links.iter().any(|link| link.is_async()),
            }
        }
    }
}

impl fmt::Debug for ChainBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} interceptor(s)", self.0.len())
    }
}

/// A finished chain: `links` is `None` when empty, which is the whole zero-cost fast path.
#[derive(Clone, Default)]
pub(crate) struct Chain {
    links: Option<Arc<[Arc<dyn Erased>]>>,
    /// Whether some link's start must be awaited ([`Chain::start_waiting`]).
    waits: bool,
}

impl Chain {
    /// Whether the chain holds an [`AsyncInterceptor`]: then the call starts through
    /// [`Chain::begin`] and [`Chain::start_waiting`], not [`Chain::start`].
    pub(crate) fn waits(&self) -> bool {
        self.waits
    }

    /// Runs every `on_start`, outermost first, for a chain that does not wait. `Ok(None)` when
    /// the chain is empty (then `info` is never called: no clock read, no allocation). On a
    /// rejection, the interceptors that had started see `on_end` with the rejecting status,
    /// innermost first. A start hook that panics rejects the call with INTERNAL.
    pub(crate) fn start(
        &self,
        info: impl FnOnce() -> CallInfo,
        metadata: &mut Metadata,
    ) -> Result<Option<Arc<CallHooks>>, Status> {
        let Some(links) = &self.links else {
            return Ok(None);
        };
        let started = Instant::now();
        let info = info();
        let mut states = Vec::with_capacity(links.len());
        for link in links.iter() {
            let result = catch_unwind(AssertUnwindSafe(|| link.start(&info, metadata)))
                .unwrap_or_else(|_| Err(start_panicked()));
            match result {
                Ok(state) => states.push(state),
                Err(status) => {
                    let elapsed = started.elapsed();
                    let begun = &links[..states.len()];
                    for (link, state) in begun.iter().zip(states).rev() {
                        link.end(state, &info, &status, elapsed);
                    }
                    return Err(status);
                }
            }
        }
        Ok(Some(Arc::new(CallHooks {
            links: links.clone(),
            info,
            started,
            states: Mutex::new(Some(states)),
        })))
    }

    /// The hooks of a call on a chain that waits, before any start hook has run (the clock
    /// starts here). `None` when the chain is empty.
    pub(crate) fn begin(&self, info: CallInfo) -> Option<Arc<CallHooks>> {
        let links = self.links.as_ref()?;
        Some(Arc::new(CallHooks {
            links: links.clone(),
            info,
            started: Instant::now(),
            states: Mutex::new(Some(Vec::with_capacity(links.len()))),
        }))
    }

    /// Runs every start hook of `hooks` (from [`Chain::begin`]) in declared order, calling
    /// the synchronous ones and awaiting the async ones. On a rejection (or a panic, which is
    /// INTERNAL) the interceptors that had started see `on_end` with that status.
    ///
    /// Dropping this future before it is done (the client went away, the deadline passed)
    /// leaves the states started so far in `hooks`, whose owner reports the end: CANCELLED
    /// when it is simply dropped, or the status it passes to [`CallHooks::end`].
    pub(crate) async fn start_waiting(
        hooks: &CallHooks,
        metadata: &mut Metadata,
    ) -> Result<(), Status> {
        for link in hooks.links.iter() {
            let result = if link.is_async() {
                let mut start = link.start_later(&hooks.info, metadata);
                // A panic while the future is polled is caught here, where the call can
                // still be answered; the future is dropped with it.
                poll_fn(|cx| {
                    catch_unwind(AssertUnwindSafe(|| start.as_mut().poll(cx)))
                        .unwrap_or_else(|_| Poll::Ready(Err(start_panicked())))
                })
                .await
            } else {
                catch_unwind(AssertUnwindSafe(|| link.start(&hooks.info, metadata)))
                    .unwrap_or_else(|_| Err(start_panicked()))
            };
            match result {
                Ok(state) => {
                    if let Some(states) = hooks.lock().as_mut() {
                        states.push(state);
                    }
                }
                Err(status) => {
                    hooks.end(&status);
                    return Err(status);
                }
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.links.as_ref().map_or(0, |links| links.len());
        write!(f, "{n} interceptor(s)")
    }
}

/// One call's view of its chain: the states, and where in the call each hook fires.
///
/// Shared (in an `Arc`) by the pieces of a call that see messages: on the server the request
/// `Streaming`, the `ResponseSink` and the call driver; on the client the call function, the
/// `RequestSink` and the response `Streaming`. The states sit behind a mutex because a bidi
/// handler may send and receive from two tasks; it is held while the `request` and `response`
/// hooks run (the one lock of the crate held around user code, see `lock.rs`) and released
/// before the `end` hooks run.
pub(crate) struct CallHooks {
    links: Arc<[Arc<dyn Erased>]>,
    info: CallInfo,
    started: Instant,
    /// One state per interceptor; `None` once the call has ended.
    states: Mutex<Option<Vec<AnyState>>>,
}

impl CallHooks {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Vec<AnyState>>> {
        crate::lock::lock(&self.states)
    }

    /// A request message passed (outermost interceptor first).
    pub(crate) fn request(&self, message: &dyn Any, wire_len: usize) {
        let view = MessageView::new(message, wire_len);
        if let Some(states) = self.lock().as_mut() {
            for (link, state) in self.links.iter().zip(states.iter_mut()) {
                link.request(state, &self.info, view);
            }
        }
    }

    /// A response message passed (innermost interceptor first).
    pub(crate) fn response(&self, message: &dyn Any, wire_len: usize) {
        let view = MessageView::new(message, wire_len);
        if let Some(states) = self.lock().as_mut() {
            let begun = &self.links[..states.len()];
            for (link, state) in begun.iter().zip(states.iter_mut()).rev() {
                link.response(state, &self.info, view);
            }
        }
    }

    /// The call ended with `status` (innermost first). Only the first report counts: the pieces
    /// of a call may each learn of its end.
    pub(crate) fn end(&self, status: &Status) {
        let states = self.lock().take();
        if let Some(states) = states {
            let elapsed = self.started.elapsed();
            // Only the interceptors that started: a waiting start may have been cut short.
            let begun = &self.links[..states.len()];
            for (link, state) in begun.iter().zip(states).rev() {
                link.end(state, &self.info, status, elapsed);
            }
        }
    }

    /// The call's `tracing` span (the outermost link's state), for the server to enter while
    /// the handler runs. `None` once the call has ended.
    #[cfg(feature = "tracing")]
    pub(crate) fn span(&self) -> Option<tracing::Span> {
        let states = self.lock();
        let first = states.as_ref()?.first()?;
        first
            .downcast_ref::<spans::CallSpan>()
            .map(|call| call.span().clone())
    }

    /// Reports the end of a call from its result (`Ok` is status OK).
    pub(crate) fn end_with<T>(&self, result: &Result<T, Status>) {
        match result {
            Ok(_) => self.end(&Status::ok()),
            Err(status) => self.end(status),
        }
    }
}

impl fmt::Debug for CallHooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallHooks")
            .field("info", &self.info)
            .field("interceptors", &self.links.len())
            .finish_non_exhaustive()
    }
}

impl Drop for CallHooks {
    /// A call abandoned without a reported end (its future dropped, say) still ends for its
    /// interceptors, as CANCELLED.
    fn drop(&mut self) {
        self.end(&Status::cancelled("the call was abandoned before it ended"));
    }
}

/// Reports an end through optional hooks (the zero-cost path is the `None` test).
pub(crate) fn end(hooks: Option<&CallHooks>, status: &Status) {
    if let Some(hooks) = hooks {
        hooks.end(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records every hook as a line in a shared log.
    struct Recorder {
        name: &'static str,
        log: Arc<Mutex<Vec<String>>>,
        reject: Option<Code>,
    }

    impl Interceptor for Recorder {
        type State = u32;

        fn on_start(&self, _: &CallInfo, metadata: &mut Metadata) -> Result<u32, Status> {
            self.log
                .lock()
                .unwrap()
                .push(format!("{} start", self.name));
            metadata.append("x-seen", self.name)?;
            match self.reject {
                Some(code) => Err(Status::new(code, "no")),
                None => Ok(0),
            }
        }

        fn on_request(&self, n: &mut u32, _: &CallInfo, message: MessageView<'_>) {
            *n += 1;
            let text = message
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_default();
            self.log.lock().unwrap().push(format!(
                "{} request {text} {}",
                self.name,
                message.wire_len()
            ));
        }

        fn on_response(&self, n: &mut u32, _: &CallInfo, _: MessageView<'_>) {
            *n += 1;
            self.log
                .lock()
                .unwrap()
                .push(format!("{} response", self.name));
        }

        fn on_end(&self, n: u32, _: &CallInfo, status: &Status, _: Duration) {
            let line = format!("{} end {} after {n}", self.name, status.code().name());
            self.log.lock().unwrap().push(line);
        }
    }

    fn chain(log: &Arc<Mutex<Vec<String>>>, reject_b: Option<Code>) -> Chain {
        let mut builder = ChainBuilder::default();
        for (name, reject) in [("a", None), ("b", reject_b), ("c", None)] {
            let log = log.clone();
            builder.push(Recorder { name, log, reject });
        }
        builder.build()
    }

    fn info() -> CallInfo {
        CallInfo::client(CallKind::Bidi, "/pkg.Svc/Method", None, false)
    }

    #[test]
    fn empty_chain_is_none_and_never_builds_the_info() {
        let mut metadata = Metadata::new();
        let hooks = Chain::default()
            .start(
                || unreachable!("no interceptor: no call info"),
                &mut metadata,
            )
            .unwrap();
        assert!(hooks.is_none());
    }

    #[test]
    fn request_events_go_outer_first_response_events_inner_first() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut metadata = Metadata::new();
        let hooks = chain(&log, None)
            .start(info, &mut metadata)
            .unwrap()
            .unwrap();
        assert_eq!(metadata.get_all("x-seen"), ["a", "b", "c"]);
        hooks.request(&String::from("hi"), 4);
        hooks.response(&7u32, 1);
        hooks.end(&Status::ok());
        hooks.end(&Status::internal("a second end is ignored"));
        let log = log.lock().unwrap().clone();
        let want = [
            "a start",
            "b start",
            "c start",
            "a request hi 4",
            "b request hi 4",
            "c request hi 4",
            "c response",
            "b response",
            "a response",
            "c end OK after 2",
            "b end OK after 2",
            "a end OK after 2",
        ];
        assert_eq!(log, want);
    }

    #[test]
    fn a_rejection_ends_only_the_outer_interceptors() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut metadata = Metadata::new();
        let err = match chain(&log, Some(Code::PermissionDenied)).start(info, &mut metadata) {
            Err(status) => status,
            Ok(_) => panic!("b rejects"),
        };
        assert_eq!(err.code(), Code::PermissionDenied);
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log,
            ["a start", "b start", "a end PERMISSION_DENIED after 0"]
        );
    }

    /// Panics in `on_start`.
    struct Panics;

    impl Interceptor for Panics {
        type State = ();
        fn on_start(&self, _: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
            panic!("a bug in the interceptor")
        }
    }

    #[test]
    fn a_panicking_start_is_internal_and_ends_the_outer_interceptors() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut builder = ChainBuilder::default();
        builder.push(Recorder {
            name: "a",
            log: log.clone(),
            reject: None,
        });
        builder.push(Panics);
        let mut metadata = Metadata::new();
        let err = builder.build().start(info, &mut metadata).err().unwrap();
        assert_eq!(err.code(), Code::Internal);
        assert_eq!(*log.lock().unwrap(), ["a start", "a end INTERNAL after 0"]);
    }

    #[test]
    fn rejecting_with_ok_becomes_unknown() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut metadata = Metadata::new();
        let result = chain(&log, Some(Code::Ok)).start(info, &mut metadata);
        assert_eq!(result.err().map(|s| s.code()), Some(Code::Unknown));
    }

    #[test]
    fn dropping_unfinished_hooks_reports_cancelled() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut metadata = Metadata::new();
        let hooks = chain(&log, None).start(info, &mut metadata).unwrap();
        drop(hooks);
        let log = log.lock().unwrap().clone();
        assert_eq!(
            log[3..],
            [
                "c end CANCELLED after 0",
                "b end CANCELLED after 0",
                "a end CANCELLED after 0"
            ]
        );
    }

    #[test]
    fn client_info_splits_the_path() {
        let info = CallInfo::client(
            CallKind::Unary,
            "/ecommerce.ProductInfo/addProduct",
            None,
            false,
        );
        assert_eq!(
            (info.service(), info.method()),
            ("ecommerce.ProductInfo", "addProduct")
        );
        let odd = CallInfo::client(CallKind::Unary, "nonsense", None, false);
        assert_eq!((odd.service(), odd.method()), ("", "nonsense"));
    }

    #[test]
    fn client_info_carries_the_authority() {
        let info = CallInfo::client(CallKind::Unary, "/a/b", None, false);
        assert_eq!(info.authority(), None);
        let info = info.with_authority(http::uri::Authority::from_static("[::1]:50051"));
        assert_eq!(info.authority(), Some("[::1]:50051"));
        #[cfg(feature = "tracing")]
        assert_eq!(info.server_host_port(), Some(("::1", Some(50051))));
    }
}

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
//! - The hooks are synchronous. They run inline on the call's task (no boxed future per hook
//!   per call); a check that needs I/O (asking an identity service) belongs in the handler, or
//!   in a cache the interceptor reads.
//! - Zero cost when none is installed: the chain is an `Option` that is `None` when empty, so a
//!   call on a server or channel without interceptors allocates nothing, makes no dynamic call
//!   and reads no clock for them; each hook point is one `is_none` test.
//!
//! What it deliberately does not do: change messages, change the final status, or retry (the
//! client's retry policy, `client::retry`, needs to own and replay the request, which an
//! observer cannot). Calls to an unknown method never reach the chain (the router answers
//! UNIMPLEMENTED first), just as grpc-go runs no interceptor for them. An interceptor must not
//! panic: on the server a panic in `on_start` costs the call its stream (RST_STREAM), not the
//! connection.

pub mod auth;
#[cfg(feature = "tracing")]
mod spans;

use std::any::Any;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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
        }
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

/// A state of any interceptor, boxed. A `()` state boxes without allocating.
type AnyState = Box<dyn Any + Send>;

/// [`Interceptor`] with its state type erased, so one chain holds different interceptors.
trait Erased: Send + Sync {
    fn start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<AnyState, Status>;
    fn request(&self, state: &mut AnyState, call: &CallInfo, message: MessageView<'_>);
    fn response(&self, state: &mut AnyState, call: &CallInfo, message: MessageView<'_>);
    fn end(&self, state: AnyState, call: &CallInfo, status: &Status, elapsed: Duration);
}

impl<I: Interceptor> Erased for I {
    fn start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<AnyState, Status> {
        match self.on_start(call, metadata) {
            Ok(state) => Ok(Box::new(state)),
            Err(status) if status.code() == Code::Ok => Err(Status::unknown(format!(
                "an interceptor rejected the call with status OK: {}",
                status.message()
            ))),
            Err(status) => Err(status),
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

/// The interceptors of a server or channel while it is being built, in declared order.
#[derive(Clone, Default)]
pub(crate) struct ChainBuilder(Vec<Arc<dyn Erased>>);

impl ChainBuilder {
    /// Adds `interceptor` inside the ones added before.
    pub(crate) fn push<I: Interceptor>(&mut self, interceptor: I) {
        self.0.push(Arc::new(interceptor));
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
            Chain(None)
        } else {
            Chain(Some(links.iter().cloned().collect()))
        }
    }
}

impl fmt::Debug for ChainBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} interceptor(s)", self.0.len())
    }
}

/// A finished chain: `None` when empty, which is the whole zero-cost fast path.
#[derive(Clone, Default)]
pub(crate) struct Chain(Option<Arc<[Arc<dyn Erased>]>>);

impl Chain {
    /// Runs every `on_start`, outermost first. `Ok(None)` when the chain is empty (then `info`
    /// is never called: no clock read, no allocation). On a rejection, the interceptors that
    /// had started see `on_end` with the rejecting status, innermost first.
    pub(crate) fn start(
        &self,
        info: impl FnOnce() -> CallInfo,
        metadata: &mut Metadata,
    ) -> Result<Option<Arc<CallHooks>>, Status> {
        let Some(links) = &self.0 else {
            return Ok(None);
        };
        let started = Instant::now();
        let info = info();
        let mut states = Vec::with_capacity(links.len());
        for link in links.iter() {
            match link.start(&info, metadata) {
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
}

impl fmt::Debug for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.as_ref().map_or(0, |links| links.len());
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
            for (link, state) in self.links.iter().zip(states.iter_mut()).rev() {
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
            for (link, state) in self.links.iter().zip(states).rev() {
                link.end(state, &self.info, status, elapsed);
            }
        }
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
}

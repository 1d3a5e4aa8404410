//! Driving one call: decode the request, run the handler, encode the answer — while watching the
//! deadline, the client's RST_STREAM and panics (PROTOCOL-HTTP2 § Requests `Timeout`, § Errors).
//!
//! ```text
//!             ┌────────────── guard ───────────────┐
//!  ServerCall │ read request ─▶ handler ─▶ Result  │──▶ respond: status (trailers / trailers-only)
//!             │   deadline fires  → handler dropped, DEADLINE_EXCEEDED
//!             │   client RST      → handler dropped (that is its cancellation), nothing sent
//!             │   handler panics  → INTERNAL, server keeps serving
//!             └────────────────────────────────────┘
//! ```
//!
//! Cancellation in Rust is dropping a future, so a handler observes a cancelled or timed-out
//! call by never being polled again: its `.await` points are its cancellation points, and its
//! destructors run. That is why the guard, not the handler, owns the deadline timer.
//!
//! After the status, a client still sending gets RST_STREAM(NO_ERROR): h2 schedules it once the
//! trailers are written and the stream's handles are dropped (PROTOCOL-HTTP2 § Early Server
//! Closure). An explicit RST_STREAM(CANCEL) here would be wrong twice over: `h2` discards a
//! stream's queued frames when it is reset, so the DEADLINE_EXCEEDED trailers would never leave,
//! and CANCEL is the *client's* word for giving up on a call (the client sends it when its own
//! deadline fires).
//!
//! The four `serve_*` functions are what generated dispatch tables name, as
//! `serve_unary::<Self, 0>` and so on; each is one call kind's rule for how many messages flow
//! which way (see the table in `server`), and reaches the service's trait method through the
//! traits in `server::method`.
//!
//! Interceptors (see [`crate::interceptor`]): the request message is shown to the chain once
//! decoded, the response message once encoded, and the final status once written; a call the
//! client cancelled ends for them as CANCELLED. With no interceptor, `head.hooks` is `None` and
//! each of those points is a single `None` test on an otherwise unchanged path.
//!
//! | request | status |
//! |---|---|
//! | unary / server-streaming request with no message | INTERNAL |
//! | … with more than one message | INTERNAL |
//! | request message over the receive limit | RESOURCE_EXHAUSTED |
//! | response message over the send limit | RESOURCE_EXHAUSTED |

use std::future::{Future, poll_fn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use prost::Message;
use tokio::time::Instant;

use crate::call::{Request, Response};
use crate::codec::{decode_message, encode_message_within};
use crate::compression::Encoding;
use crate::interceptor;
use crate::server::call::CallHead;
use crate::server::call::ServerCall;
use crate::server::method::{
    BidiMethod, ClientStreamingMethod, ServerStreamingMethod, UnaryMethod,
};
use crate::server::respond;
use crate::server::router::CallFuture;
use crate::server::sink::{ResponseSink, SharedOutbound};
use crate::server::streaming::Streaming;
use crate::status::Status;
use crate::transport::error::status_from_h2;
use crate::wire::{MessageDecoder, PREFIX_LEN, RawMessage};

/// How the guarded part of a call ended.
enum Ending<T> {
    /// The handler returned.
    Done(T),
    /// `grpc-timeout` ran out first.
    Deadline,
    /// The client reset the stream, or the connection went away.
    ClientGone,
    /// The handler panicked.
    Panicked,
}

/// The status interceptors see for a call whose client went away (nothing is sent).
fn client_gone() -> Status {
    Status::cancelled("the client cancelled the call")
}

impl<T> Ending<Result<T, Status>> {
    /// The status to send, or None when there is nobody to send it to.
    fn into_status(self) -> Option<Result<T, Status>> {
        match self {
            Ending::Done(result) => Some(result),
            Ending::Deadline => Some(Err(Status::deadline_exceeded("deadline exceeded"))),
            Ending::Panicked => Some(Err(Status::internal("the handler panicked"))),
            Ending::ClientGone => None,
        }
    }
}

/// Runs `work` until it finishes, the deadline passes, or `client_gone` reports a reset.
///
/// `work` comes pinned by the caller, not by value: an `async fn` keeps its arguments in its
/// own state apart from its locals, so a future passed by value and pinned here would be stored
/// twice per call — the handler's future is the largest part of a call's memory.
async fn guard<F: Future>(
    mut work: Pin<&mut F>,
    deadline: Option<Instant>,
    mut client_gone: impl FnMut(&mut Context<'_>) -> bool,
) -> Ending<F::Output> {
    // Boxed, and only for a call with a deadline: a timer is the largest piece of a call's
    // state, and every call's future is allocated whole; small enough, it comes from the
    // allocator's per-thread cache instead of its general heap.
    let mut timer = deadline.map(|at| Box::pin(tokio::time::sleep_until(at)));
    poll_fn(|cx| {
        // A panic inside the handler must cost one call, not the connection: catch it here,
        // where we still hold the stream to answer INTERNAL on.
        match catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => return Poll::Ready(Ending::Done(output)),
            Ok(Poll::Pending) => {}
            Err(_) => return Poll::Ready(Ending::Panicked),
        }
        if timer
            .as_mut()
            .is_some_and(|t| t.as_mut().poll(cx).is_ready())
        {
            return Poll::Ready(Ending::Deadline);
        }
        if client_gone(cx) {
            return Poll::Ready(Ending::ClientGone);
        }
        Poll::Pending
    })
    .await
}

/// With the feature `tracing`: `work` (reading the request and the handler) runs inside the
/// call's `grpc.server` span, so events and spans a handler emits are its children
/// (`tracing::Instrument`: the span is entered at every poll and left before it returns).
#[cfg(feature = "tracing")]
fn in_span<F: Future>(head: &CallHead, work: F) -> tracing::instrument::Instrumented<F> {
    use tracing::Instrument;
    let span = head.hooks.as_deref().and_then(interceptor::CallHooks::span);
    work.instrument(span.unwrap_or_else(tracing::Span::none))
}

/// Without the feature `tracing`: `work` as it is (no wrapper, no cost).
#[cfg(not(feature = "tracing"))]
#[inline(always)]
fn in_span<F: Future>(_: &CallHead, work: F) -> F {
    work
}

/// The call of a server with an async interceptor: awaits the chain's start hooks under the
/// same guard as a handler (deadline, client reset, panic), then runs the route's call with
/// the hooks in its head. Until the chain decides, no handler exists and the request body is
/// not read, so no message can reach the handler early (the client's sends wait on the stream
/// window). Built only for such a server: the one extra boxed future per call it costs.
pub(crate) fn admit_waiting(
    hooks: Option<Arc<interceptor::CallHooks>>,
    call: ServerCall,
    route: Arc<dyn Fn(ServerCall) -> CallFuture + Send + Sync>,
) -> CallFuture {
    let ServerCall {
        mut head,
        mut metadata,
        body,
        mut respond,
    } = call;
    Box::pin(async move {
        let Some(hooks) = hooks else {
            // An empty chain never waits; run the call as it is.
            let call = ServerCall {
                head,
                metadata,
                body,
                respond,
            };
            return route(call).await;
        };
        let ending = {
            let started = pin!(interceptor::Chain::start_waiting(&hooks, &mut metadata));
            guard(started, head.deadline, |cx| {
                respond.poll_reset(cx).is_ready()
            })
            .await
        };
        let status = match ending {
            Ending::Done(Ok(())) => {
                head.hooks = Some(hooks);
                let call = ServerCall {
                    head,
                    metadata,
                    body,
                    respond,
                };
                return route(call).await;
            }
            // The chain has already ended the hooks with this status.
            Ending::Done(Err(status)) => {
                return respond::trailers_only(&mut respond, &status);
            }
            Ending::Deadline => {
                Status::deadline_exceeded("deadline exceeded while the interceptors decided")
            }
            Ending::Panicked => Status::internal("an interceptor panicked in on_start"),
            // Dropping the start (done by now) freed its work; nobody to answer.
            Ending::ClientGone => return hooks.end(&client_gone()),
        };
        respond::trailers_only(&mut respond, &status);
        hooks.end(&status);
    })
}

/// The framing half of [`read_request`]: exactly one length-prefixed message, up to END_STREAM.
/// Apart from the decoding so that it is compiled once, not once per request type.
async fn read_single_raw(body: &mut h2::RecvStream, max_len: usize) -> Result<RawMessage, Status> {
    let mut decoder = MessageDecoder::new(max_len);
    let mut message = None;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|e| status_from_h2(&e))?;
        // Give the window back as soon as the bytes are ours, or a large message stalls.
        let _ = body.flow_control().release_capacity(chunk.len());
        let mut next = decoder.push_next(chunk)?;
        while let Some(raw) = next {
            if message.is_some() {
                return Err(Status::internal(
                    "the client sent more than one request message for a single-request method",
                ));
            }
            message = Some(raw);
            next = decoder.next_message()?;
        }
    }
    decoder.finish()?;
    message.ok_or_else(|| Status::internal("the client sent no request message"))
}

/// The request of a unary or server-streaming call: its one message, read to END_STREAM and
/// shown to the interceptors, with the call's metadata and timing; marked compressed when the
/// message arrived compressed.
///
/// The metadata comes by reference and is taken only once the message is in: a future holds
/// its arguments for its whole life, so a map passed by value would sit in this future beside
/// the copy its caller already keeps.
async fn read_request<In: Message + Default + 'static>(
    body: &mut h2::RecvStream,
    head: &CallHead,
    metadata: &mut crate::metadata::Metadata,
) -> Result<Request<In>, Status> {
    let raw = read_single_raw(body, head.max_recv).await?;
    let compressed = raw.compressed;
    let wire_len = raw.data.len();
    let message: In = decode_message(raw, head.encoding, head.max_recv)?;
    if let Some(hooks) = head.hooks.as_deref() {
        hooks.request(&message, wire_len);
    }
    let mut request = head.request(std::mem::take(metadata), message);
    if compressed {
        request.set_compression(head.encoding);
    }
    Ok(request)
}

/// Encodes a single response message within the send limit.
fn encode_single<Out: Message>(
    message: &Out,
    encoding: Encoding,
    max_send: usize,
) -> Result<BytesMut, Status> {
    let mut buf = BytesMut::new();
    encode_message_within(message, encoding, max_send, &mut buf)?;
    Ok(buf)
}

/// Writes the answer of a call that produces one response message (unary, client-streaming),
/// and tells the interceptors how it ended.
fn finish_single<Out: Message + 'static>(
    respond: &mut h2::server::SendResponse<bytes::Bytes>,
    head: &CallHead,
    ending: Ending<Result<Response<Out>, Status>>,
) {
    let hooks = head.hooks.as_deref();
    let result = match ending.into_status() {
        Some(result) => result,
        None => return interceptor::end(hooks, &client_gone()),
    };
    let fail = |respond: &mut h2::server::SendResponse<bytes::Bytes>, status: Status| {
        respond::trailers_only(respond, &status);
        interceptor::end(hooks, &status);
    };
    let response = match result {
        Ok(response) => response,
        Err(status) => return fail(respond, status),
    };
    let encoding = head.response_encoding(response.compression());
    let (initial, message, trailing) = response.into_parts();
    let buf = match encode_single(&message, encoding, head.max_send) {
        Ok(buf) => buf,
        Err(status) => return fail(respond, status),
    };
    if let Some(hooks) = hooks {
        hooks.response(&message, buf.len() - PREFIX_LEN);
    }
    let Ok(mut stream) = respond.send_response(
        respond::response_headers(&initial, encoding, head.advertise_encodings),
        false,
    ) else {
        return interceptor::end(hooks, &client_gone());
    };
    let _ = stream.send_data(buf.freeze(), false);
    let _ = stream.send_trailers(respond::trailers(&Status::ok(), &trailing));
    interceptor::end(hooks, &Status::ok());
}

/// Serves a unary call of method `N` of `S`: one request message in, one response message out.
pub fn serve_unary<S: UnaryMethod<N>, const N: usize>(
    this: Arc<S>,
    call: ServerCall,
) -> CallFuture {
    // Taken apart out here: a field moved out of `call` inside the async block would be stored
    // twice in the call's future, once in the captured `call` and once in the local.
    let ServerCall {
        head,
        mut metadata,
        mut body,
        mut respond,
    } = call;
    Box::pin(async move {
        let (head, metadata, body, service) = (&head, &mut metadata, &mut body, &*this);
        let work = pin!(in_span(head, async move {
            // Bound first, not passed as `call(read_request(..).await?)`: a temporary of the
            // `?` would live, and take room, for as long as the handler runs.
            let request = read_request(body, head, metadata).await?;
            service.call(request).await
        }));
        let ending = guard(work, head.deadline, |cx| respond.poll_reset(cx).is_ready()).await;
        finish_single(&mut respond, head, ending);
    })
}

/// Serves a client-streaming call of method `N` of `S`: a stream of request messages in, one
/// response message out.
pub fn serve_client_streaming<S: ClientStreamingMethod<N>, const N: usize>(
    this: Arc<S>,
    call: ServerCall,
) -> CallFuture {
    let ServerCall {
        head,
        metadata,
        body,
        mut respond,
    } = call;
    Box::pin(async move {
        // Built in here, not captured ready-made: moved into the handler before its first
        // `.await`, a local takes no room in the future, a captured value would.
        let messages = Streaming::new(body, head.encoding, head.max_recv, head.hooks.clone());
        let request = head.request(metadata, messages);
        let ending = guard(
            pin!(in_span(&head, this.call(request))),
            head.deadline,
            |cx| respond.poll_reset(cx).is_ready(),
        )
        .await;
        finish_single(&mut respond, &head, ending);
    })
}

/// Writes the status of a call whose responses went through a [`ResponseSink`], and tells the
/// interceptors.
fn finish_streaming(
    outbound: &SharedOutbound,
    head: &CallHead,
    ending: Ending<Result<(), Status>>,
) {
    let status = match ending.into_status() {
        Some(Ok(())) => Status::ok(),
        Some(Err(status)) => status,
        None => return interceptor::end(head.hooks.as_deref(), &client_gone()),
    };
    outbound.finish(
        &status,
        head.response_encoding(None),
        head.advertise_encodings,
    );
    interceptor::end(head.hooks.as_deref(), &status);
}

/// Serves a server-streaming call of method `N` of `S`: one request message in, a stream of
/// response messages out.
pub fn serve_server_streaming<S: ServerStreamingMethod<N>, const N: usize>(
    this: Arc<S>,
    call: ServerCall,
) -> CallFuture {
    let ServerCall {
        head,
        mut metadata,
        mut body,
        respond,
    } = call;
    let outbound = SharedOutbound::new(respond);
    Box::pin(async move {
        // The sink is made in here for the reason `serve_bidi` gives.
        let sink = ResponseSink::new(outbound.clone(), &head);
        let (head, metadata, body, service) = (&head, &mut metadata, &mut body, &*this);
        let work = pin!(in_span(head, async move {
            let request = read_request(body, head, metadata).await?;
            service.call(request, sink).await
        }));
        let ending = guard(work, head.deadline, |cx| outbound.poll_idle(cx)).await;
        finish_streaming(&outbound, head, ending);
    })
}

/// Serves a bidirectional call of method `N` of `S`: both sides stream, independently.
pub fn serve_bidi<S: BidiMethod<N>, const N: usize>(this: Arc<S>, call: ServerCall) -> CallFuture {
    let ServerCall {
        head,
        metadata,
        body,
        respond,
    } = call;
    let outbound = SharedOutbound::new(respond);
    Box::pin(async move {
        // Made in here, not captured ready-made: moved into the handler before its first
        // `.await`, a local takes no room in the future, a captured value would.
        let sink = ResponseSink::new(outbound.clone(), &head);
        let messages = Streaming::new(body, head.encoding, head.max_recv, head.hooks.clone());
        let request = head.request(metadata, messages);
        let ending = guard(
            pin!(in_span(&head, this.call(request, sink))),
            head.deadline,
            |cx| outbound.poll_idle(cx),
        )
        .await;
        finish_streaming(&outbound, &head, ending);
    })
}

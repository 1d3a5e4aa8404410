//! `tracing` spans for every call, both sides (feature `tracing`), named and filled as
//! OpenTelemetry's RPC semantic conventions say (semconv `rpc` spans, `rpc.grpc.*`).
//!
//! ```text
//!  span "grpc.server" / "grpc.client"   level INFO, one per call, opened at on_start
//!    otel.name = "ecommerce.ProductInfo/getProduct"   otel.kind = "server" | "client"
//!    rpc.system = "grpc"  rpc.service  rpc.method
//!    network.peer.address / network.peer.port         (server side: the caller's socket)
//!    server.address / server.port                     (client side: the channel's `:authority`)
//!    rpc.grpc.status_code = 5                         recorded at on_end
//!    otel.status_code = "ERROR"                        when the conventions call it an error
//!  event "message"   TRACE  rpc.message.type = "SENT" | "RECEIVED", rpc.message.id (1, 2, …),
//!                           rpc.message.compressed_size (bytes on the wire, without the prefix)
//!  event "call failed"  DEBUG for codes a caller causes (INVALID_ARGUMENT, NOT_FOUND, …),
//!                       ERROR for server faults (UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS)
//!
//!  an unknown method (answered by the router, before any chain runs): a "grpc.server" span
//!    opened and closed at once, otel.name = rpc.method = "_OTHER",
//!    rpc.method_original = the `:path` as sent, rpc.grpc.status_code = 12
//! ```
//!
//! The server enters the call's span while it polls the handler (`server::drive`), so what a
//! handler emits (a `tracing::info!`, a span of its own) is a child of `grpc.server`.
//!
//! The rules: span status follows the conventions' table: a server span is an error only for
//! UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS (the other
//! codes are the caller's doing), a client span for every code but OK. `tracing` span names are
//! static, so the conventions' `{service}/{method}` name goes in `otel.name`, the field
//! `tracing-opentelemetry` reads as the span name.
//!
//! Why an interceptor: the chain already runs on both sides, for the four call kinds, at the
//! start, at every message and at the end, and it sees the status a rejecting interceptor or
//! a deadline gives. This one is always the outermost link when the feature is on (added by
//! `ChainBuilder::build`), so the span covers the other interceptors too. With the feature off
//! the module is not compiled and the chain is what it was: zero cost. With it on and no
//! subscriber, each hook is one disabled-span check (the cost per call is measured in
//! docs/performance.md).
//!
//! Why `_OTHER` for an unknown method: the `:path` is the caller's choice, and a span name
//! must not be (one name per random path would flood a tracing backend's index); OpenTelemetry's
//! RPC conventions (since v1.38) name such a call `_OTHER` and keep the path as sent in
//! `rpc.method_original`. The path's size is bounded by the header-list limit (16 KiB).
//!
//! What it does not do: enter the span on the client (there is no handler; the caller's own
//! span is the parent of `grpc.client` as usual), or follow the newer RC conventions'
//! renamed fields (`rpc.system.name`, `rpc.response.status_code`): the names here are the
//! experimental set (v1.37) that `tracing-opentelemetry` users query today.

use std::time::Duration;

use tracing::field::Empty;
use tracing::{Level, Span};

use crate::interceptor::{CallInfo, Interceptor, MessageView, Side};
use crate::metadata::Metadata;
use crate::peer::Peer;
use crate::status::{Code, Status};

/// The outermost link of every chain when the feature `tracing` is on.
pub(crate) struct Spans;

/// One call's span and its message counters.
pub(crate) struct CallSpan {
    span: Span,
    sent: u32,
    received: u32,
}

impl CallSpan {
    /// The call's span (the server enters it while the handler runs).
    pub(crate) fn span(&self) -> &Span {
        &self.span
    }
}

/// The span of a call the router answered (an unknown service or method, a malformed
/// `:path`): opened and closed at once, with the status the caller got (UNIMPLEMENTED).
pub(crate) fn unknown_method(path: &str, peer: &Peer, status: &Status) {
    let span = tracing::info_span!(
        "grpc.server",
        otel.name = "_OTHER",
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.method = "_OTHER",
        rpc.method_original = path,
        rpc.grpc.status_code = Empty,
        network.peer.address = Empty,
        network.peer.port = Empty,
    );
    if span.is_disabled() {
        return;
    }
    record_peer(&span, peer);
    finish(&span, Side::Server, status);
}

/// The caller's socket address on a server span.
fn record_peer(span: &Span, peer: &Peer) {
    if let Some(addr) = peer.addr() {
        span.record("network.peer.address", tracing::field::display(addr.ip()));
        span.record("network.peer.port", addr.port());
    }
}

impl Interceptor for Spans {
    type State = CallSpan;

    fn on_start(&self, call: &CallInfo, _: &mut Metadata) -> Result<CallSpan, Status> {
        let name = call.path().strip_prefix('/').unwrap_or(call.path());
        let span = match call.side() {
            Side::Server => tracing::info_span!(
                "grpc.server",
                otel.name = name,
                otel.kind = "server",
                otel.status_code = Empty,
                rpc.system = "grpc",
                rpc.service = call.service(),
                rpc.method = call.method(),
                rpc.grpc.status_code = Empty,
                network.peer.address = Empty,
                network.peer.port = Empty,
            ),
            Side::Client => tracing::info_span!(
                "grpc.client",
                otel.name = name,
                otel.kind = "client",
                otel.status_code = Empty,
                rpc.system = "grpc",
                rpc.service = call.service(),
                rpc.method = call.method(),
                rpc.grpc.status_code = Empty,
                server.address = Empty,
                server.port = Empty,
            ),
        };
        if !span.is_disabled() {
            match call.side() {
                Side::Server => record_peer(&span, call.peer()),
                Side::Client => {
                    if let Some((host, port)) = call.server_host_port() {
                        span.record("server.address", host);
                        if let Some(port) = port {
                            span.record("server.port", port);
                        }
                    }
                }
            }
        }
        Ok(CallSpan {
            span,
            sent: 0,
            received: 0,
        })
    }

    fn on_request(&self, state: &mut CallSpan, call: &CallInfo, message: MessageView<'_>) {
        // A request message is received on the server and sent by the client.
        let sent = call.side() == Side::Client;
        message_event(state, sent, message.wire_len());
    }

    fn on_response(&self, state: &mut CallSpan, call: &CallInfo, message: MessageView<'_>) {
        let sent = call.side() == Side::Server;
        message_event(state, sent, message.wire_len());
    }

    fn on_end(&self, state: CallSpan, call: &CallInfo, status: &Status, _: Duration) {
        if !state.span.is_disabled() {
            finish(&state.span, call.side(), status);
        }
    }
}

/// Records a call's status on its span, and the failure event when it is not OK.
fn finish(span: &Span, side: Side, status: &Status) {
    let code = status.code();
    span.record("rpc.grpc.status_code", code as i32);
    let error = match side {
        Side::Server => matches!(
            code,
            Code::Unknown
                | Code::DeadlineExceeded
                | Code::Unimplemented
                | Code::Internal
                | Code::Unavailable
                | Code::DataLoss
        ),
        Side::Client => code != Code::Ok,
    };
    if error {
        span.record("otel.status_code", "ERROR");
    }
    if code == Code::Ok {
        return;
    }
    let code_name = code.name();
    let message = status.message();
    if is_server_fault(code) {
        tracing::event!(parent: span, Level::ERROR, rpc.grpc.status_code = code as i32,
                code = code_name, message, "call failed");
    } else {
        tracing::event!(parent: span, Level::DEBUG, rpc.grpc.status_code = code as i32,
                code = code_name, message, "call failed");
    }
}

/// Codes that say the server (or what is behind it) failed, not the caller: logged at ERROR.
fn is_server_fault(code: Code) -> bool {
    matches!(
        code,
        Code::Unknown | Code::Internal | Code::Unavailable | Code::DataLoss
    )
}

/// A TRACE event for one message, numbered per direction from 1 as the conventions say.
fn message_event(state: &mut CallSpan, sent: bool, wire_len: usize) {
    let counter = if sent {
        &mut state.sent
    } else {
        &mut state.received
    };
    *counter += 1;
    let id = *counter;
    if !tracing::enabled!(Level::TRACE) || state.span.is_disabled() {
        return;
    }
    let kind = if sent { "SENT" } else { "RECEIVED" };
    tracing::event!(parent: &state.span, Level::TRACE,
        "rpc.message.type" = kind,
        rpc.message.id = id,
        rpc.message.compressed_size = wire_len as u64,
        "message");
}

//! `tracing` spans for every call, both sides (feature `tracing`), named and filled as
//! OpenTelemetry's RPC semantic conventions say (semconv `rpc` spans, `rpc.grpc.*`).
//!
//! ```text
//!  span "grpc.server" / "grpc.client"   level INFO, one per call, opened at on_start
//!    otel.name = "ecommerce.ProductInfo/getProduct"   otel.kind = "server" | "client"
//!    rpc.system = "grpc"  rpc.service  rpc.method
//!    network.peer.address / network.peer.port         (server side: the caller's socket)
//!    rpc.grpc.status_code = 5                         recorded at on_end
//!    otel.status_code = "ERROR"                        when the conventions call it an error
//!  event "message"   TRACE  rpc.message.type = "SENT" | "RECEIVED", rpc.message.id (1, 2, …),
//!                           rpc.message.compressed_size (bytes on the wire, without the prefix)
//!  event "call failed"  DEBUG for codes a caller causes (INVALID_ARGUMENT, NOT_FOUND, …),
//!                       ERROR for server faults (UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS)
//! ```
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
//! What it does not do: enter the span while the handler runs (events a handler emits are not
//! children of the call's span), fill `server.address` on the client side (the chain does not
//! know the channel's target), or see calls the router answers before the chain runs (an
//! unknown method).

use std::time::Duration;

use tracing::field::Empty;
use tracing::{Level, Span};

use crate::interceptor::{CallInfo, Interceptor, MessageView, Side};
use crate::metadata::Metadata;
use crate::status::{Code, Status};

/// The outermost link of every chain when the feature `tracing` is on.
pub(crate) struct Spans;

/// One call's span and its message counters.
pub(crate) struct CallSpan {
    span: Span,
    sent: u32,
    received: u32,
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
            ),
        };
        if let Some(addr) = call.remote_addr().filter(|_| !span.is_disabled()) {
            span.record("network.peer.address", tracing::field::display(addr.ip()));
            span.record("network.peer.port", addr.port());
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
        let span = &state.span;
        if span.is_disabled() {
            return;
        }
        let code = status.code();
        span.record("rpc.grpc.status_code", code as i32);
        let error = match call.side() {
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

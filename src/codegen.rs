//! The surface generated code names: everything `protoc-gen-bare-grpc` output uses, and nothing
//! else, re-exported in one place.
//!
//! Generated files say `use ::bare_grpc::codegen::*;` and name nothing else of this crate, so the
//! runtime can reorganise its modules without breaking generated code. The `ABI_V2` constant is
//! named by every generated file: output from a plugin that targets another surface fails to
//! compile right there, with the mismatch in the error, instead of deep inside a trait bound.

pub use std::future::Future;
pub use std::sync::Arc;

pub use crate::call::{CallKind, IntoRequest, IntoStreamingRequest, Request, Response};
pub use crate::client::ResponseStream;
pub use crate::client::{Channel, RequestSink};
pub use crate::server::call::ServerCall;
pub use crate::server::drive::{
    serve_bidi, serve_client_streaming, serve_server_streaming, serve_unary,
};
pub use crate::server::method::{
    BidiMethod, ClientStreamingMethod, ServerStreamingMethod, UnaryMethod,
};
pub use crate::server::router::{CallFuture, Route};
pub use crate::server::{ResponseSink, Service, Streaming};
pub use crate::status::Status;

/// The generated-code surface version. Generated files refer to it as a compile-time check.
pub const ABI_V2: () = ();

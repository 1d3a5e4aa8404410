//! How a call driver reaches a service's trait method: one small trait per call kind, which
//! generated code implements on its `…Server` type once per method, numbered by the method's
//! place in the `.proto` (`UnaryMethod<0>` is the first method, and so on).
//!
//! ```text
//!  Route { path: SAY_HELLO, handler: serve_unary::<Self, 0>, .. }
//!                                     │
//!                                     ▼
//!  impl UnaryMethod<0> for GreeterServer<T> {
//!      type In = HelloRequest; type Out = HelloReply;
//!      fn call(&self, request) -> impl Future { self.inner.say_hello(request) }
//!  }
//! ```
//!
//! Why traits and not a closure per method: the trait method's future borrows the service
//! (`&self`), so a closure handing it to the driver would have to own the service and wrap the
//! call in an `async` block of its own — a block that keeps its own copy of every argument
//! (the request, the sink) beside the copy the trait method's future keeps. Through a trait,
//! the driver calls the method on the service it already holds, and the handler's future is
//! stored once: a unary call's future went from 928 to 720 bytes, a bidirectional call's from
//! 3,336 to 2,328 (`-Zprint-type-sizes`, see `docs/performance.md`). The index lets one
//! `…Server` type implement the same trait for each of its methods; the dispatch table names
//! `serve_unary::<Self, 0>` directly, so there is no adapter function either.

use std::future::Future;

use prost::Message;

use crate::call::{Request, Response};
use crate::server::sink::ResponseSink;
use crate::server::streaming::Streaming;
use crate::status::Status;

/// Method `N` of a service, when it is unary: one request message, one response message.
pub trait UnaryMethod<const N: usize>: Send + Sync + 'static {
    /// The request message.
    type In: Message + Default + Send + 'static;
    /// The response message.
    type Out: Message + Send + 'static;

    /// Calls the service's trait method.
    fn call(
        &self,
        request: Request<Self::In>,
    ) -> impl Future<Output = Result<Response<Self::Out>, Status>> + Send;
}

/// Method `N` of a service, when it is server streaming: one request, a stream of responses.
pub trait ServerStreamingMethod<const N: usize>: Send + Sync + 'static {
    /// The request message.
    type In: Message + Default + Send + 'static;
    /// The response messages.
    type Out: Message + Send + 'static;

    /// Calls the service's trait method.
    fn call(
        &self,
        request: Request<Self::In>,
        sink: ResponseSink<Self::Out>,
    ) -> impl Future<Output = Result<(), Status>> + Send;
}

/// Method `N` of a service, when it is client streaming: a stream of requests, one response.
pub trait ClientStreamingMethod<const N: usize>: Send + Sync + 'static {
    /// The request messages.
    type In: Message + Default + Send + 'static;
    /// The response message.
    type Out: Message + Send + 'static;

    /// Calls the service's trait method.
    fn call(
        &self,
        request: Request<Streaming<Self::In>>,
    ) -> impl Future<Output = Result<Response<Self::Out>, Status>> + Send;
}

/// Method `N` of a service, when it is bidirectional: both sides stream.
pub trait BidiMethod<const N: usize>: Send + Sync + 'static {
    /// The request messages.
    type In: Message + Default + Send + 'static;
    /// The response messages.
    type Out: Message + Send + 'static;

    /// Calls the service's trait method.
    fn call(
        &self,
        request: Request<Streaming<Self::In>>,
        sink: ResponseSink<Self::Out>,
    ) -> impl Future<Output = Result<(), Status>> + Send;
}

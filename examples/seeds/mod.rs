//! The four seed services of `shared/seeds/` (see `docs/examples.md`), written against bare-grpc's
//! public API and generated code only, and shared by the examples `product-info`,
//! `order-management`, `route-guide`, `chat` and `tour`, and by `tests/seeds*.rs`.
//!
//! ```text
//!  proto file                           package     module of bare_grpc_contracts
//!  proto/ecommerce/product_info.proto   ecommerce   ecommerce
//!  proto/ecommerce/order_management..   ecommerce   ecommerce
//!  proto/person.proto, route_guide..    (none)      route_guide
//!  proto/chat.proto                     grpc        chat
//! ```
//!
//! The rule these follow is the seeds' own: the .proto files are the seeds' exactly, so the
//! `:path` of every call is what the seeds' Python clients send (`/RouteGuide/GetPerson` has no
//! package; `/grpc.ChatServer/ChatStream` lives in package `grpc`, beside our interop
//! `grpc.testing`, which is a different generated file and never meets this one). The messages
//! and generated services come from `bare_grpc_contracts` (`tests/contracts`).
//!
//! Why one module tree for five binaries and two test crates: the tour serves all four services
//! in one process and the tests serve them in-process, so the services are written once here;
//! each example adds only its command line. Each binary uses a part of this tree, hence the
//! `dead_code` allowance below, as in `tests/common`.
//!
//! Not done here: TLS, authentication, persistence (every service keeps its state in memory).
#![allow(dead_code)]

pub mod chat;
pub mod cli;
pub mod order_management;
pub mod product_info;
pub mod route_guide;

use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

/// Locks `mutex`, also after a panic elsewhere: the data behind these locks is valid after any
/// single statement, so a poisoned lock carries nothing worth refusing service over.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The messages of a `Vec` as a `Stream`, for client-streaming calls: the request stream of
/// `Channel::client_streaming` is any `futures_core::Stream`, and the runtime depends on
/// `futures-core` alone, which has no adapter for this.
pub struct Messages<T>(std::vec::IntoIter<T>);

impl<T> Messages<T> {
    /// A stream that yields `messages` in order, then ends (the client's half-close).
    pub fn new(messages: Vec<T>) -> Messages<T> {
        Messages(messages.into_iter())
    }
}

impl<T: Unpin> futures_core::Stream for Messages<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<T>> {
        Poll::Ready(self.0.next())
    }
}

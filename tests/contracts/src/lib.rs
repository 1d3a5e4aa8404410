//! The repository's test, example and bench contracts, generated once for the integration
//! tests, the examples and the bench client: every package of `proto/` except the library's own
//! `grpc.health.v1` and `grpc.reflection.*`, which `bare_grpc::services` carries.
//!
//! Why a crate of its own, taken by bare-grpc as a dev-dependency only: the library's
//! `build.rs` then compiles just what the library serves, so a user's build generates no test
//! contracts and the library's embedded reflection descriptors describe only health and
//! reflection. Integration tests, examples and the bench client link this crate and bare-grpc
//! once, so the generated types are bare-grpc's own; the library's unit tests (inside `src/`)
//! build a second copy of bare-grpc and cannot use it.
//!
//! ```text
//!  proto file                                  package        module here
//!  proto/helloworld.proto                      helloworld     helloworld
//!  proto/bench.proto                           bench          bench
//!  proto/edge.proto                            edge           edge
//!  proto/grpc/testing/{test,messages,empty}    grpc.testing   grpc_testing
//!  proto/ecommerce/{product_info,order_..}     ecommerce      ecommerce
//!  proto/person.proto, route_guide.proto       (none)         route_guide
//!  proto/chat.proto                            grpc           chat
//! ```
//!
//! The last two are named for what they hold: the seeds' protos are kept exactly as the seeds
//! wrote them (`/RouteGuide/GetPerson` has no package, `/grpc.ChatServer/ChatStream` lives in
//! package `grpc`), so their package names say nothing useful in Rust.

/// `package helloworld;`: the Greeter.
#[allow(missing_docs, clippy::all)]
pub mod helloworld {
    include!(concat!(env!("OUT_DIR"), "/helloworld.rs"));
}

/// `package bench;`: the benchmark's Echo, Stream and Collect services.
#[allow(missing_docs, clippy::all)]
pub mod bench {
    include!(concat!(env!("OUT_DIR"), "/bench.rs"));
}

/// `package edge;`: the wire-edge tests' service.
#[allow(missing_docs, clippy::all)]
pub mod edge {
    include!(concat!(env!("OUT_DIR"), "/edge.rs"));
}

/// `package grpc.testing;`: the interop tests' TestService and its messages.
#[allow(missing_docs, clippy::all)]
pub mod grpc_testing {
    include!(concat!(env!("OUT_DIR"), "/grpc.testing.rs"));
}

/// `package ecommerce;`: the seeds' ProductInfo and OrderManagement.
#[allow(missing_docs, clippy::all)]
pub mod ecommerce {
    include!(concat!(env!("OUT_DIR"), "/ecommerce.rs"));
}

/// No package: the seeds' `person.proto` and `route_guide.proto` (paths `/RouteGuide/...`).
#[allow(missing_docs, clippy::all)]
pub mod route_guide {
    include!(concat!(env!("OUT_DIR"), "/_.rs"));
}

/// `package grpc;`: the chat seed's ChatServer.
#[allow(missing_docs, clippy::all)]
pub mod chat {
    include!(concat!(env!("OUT_DIR"), "/grpc.rs"));
}

/// The serialized `google.protobuf.FileDescriptorSet` of every file above (imports and source
/// info included), for a server that serves reflection of these services:
/// `Reflection::builder().file_descriptor_set(FILE_DESCRIPTOR_SET)`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));

//! Interop with grpc-go, the other way round: bare-grpc's interop client
//! (`examples/interop-client.rs`) runs each case of gRPC's [interop-test-descriptions.md]
//! against a real grpc-go 1.33 server.
//!
//! The rule: a gRPC client is interoperable when the official cases pass against another
//! implementation's server, each case checking what the descriptions say.
//!
//! ```text
//!   cargo test process                     children
//!   ┌────────────────────────────┐  spawn  ┌─────────────────────────────────────────┐
//!   │ go::go_server()  (once)    │────────►│ target/go/bin/bare-grpc-interop-server  │
//!   │ rust_client()    (once)    │         │   127.0.0.1:<port it chose>             │
//!   │ run_case(name)  (per test) │  spawn  └─────────────────▲───────────────────────┘
//!   │                            │────────►┌─────────────────┴───────────────────────┐
//!   └────────────────────────────┘         │ target/<profile>/examples/interop-client│
//!                                          │ --test_case=<name>  ──► "PASS <name>"   │
//!                                          └─────────────────────────────────────────┘
//! ```
//!
//! Why it is shaped this way: the interop client is an example binary, which the test builds
//! once with the cargo that is running it (`cargo build --example interop-client`, same
//! profile and target directory), rather than relying on `cargo test` having built examples:
//! `cargo test --test interop_go_server` alone does not. The Go server is built and started
//! by `tests/go/mod.rs`; each case is a separate client process under a time bound, and the
//! test asserts on its exit status and `PASS` line, so a failure shows our client's words.
//!
//! What it does not do: TLS, the cloud-only auth cases, `cacheable_unary`. The grpc-go
//! server sends `grpc-encoding: gzip` on every response (see
//! `tests/go/src/bare-grpc-interop/server/compress.go`), with the compressed flag set only
//! on messages asked to be compressed; our client must accept that.
//!
//! [interop-test-descriptions.md]: https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md

mod common;
mod go;

use std::process::Command;

/// Runs one interop case with our client against the grpc-go server and asserts it passed.
fn run_case(case: &str) {
    let client = Command::new(common::interop::rust_interop_client());
    common::interop::run_client_case(client, go::go_server(), case, "bare-grpc client vs grpc-go");
}

common::interop::interop_cases!(run_case);

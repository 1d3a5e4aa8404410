//! Interop with grpc-go: a real grpc-go 1.33 client runs each case of gRPC's
//! [interop-test-descriptions.md] against bare-grpc's interop server.
//!
//! The rule: a gRPC server is interoperable when the official client cases pass against it,
//! each case checking what the descriptions say (payload sizes, status codes and messages,
//! echoed metadata, deadlines, cancellation, per-message compression).
//!
//! ```text
//!   cargo test process                         child process, one per case
//!   ┌──────────────────────────────┐           ┌──────────────────────────────────┐
//!   │ common::interop_server()     │  HTTP/2   │ target/go/bin/                   │
//!   │ bare-grpc TestService        │◄──────────│   bare-grpc-interop-client       │
//!   │ 127.0.0.1:<port 0>           │ loopback  │ --test_case=<name>               │
//!   └──────────────────────────────┘           │ prints "PASS <name>", exit 0     │
//!                                              └──────────────────────────────────┘
//! ```
//!
//! Why it is shaped this way: Debian ships grpc-go as source but no interop programs, so
//! `tests/go/` holds our own client, built by `tests/go/build.sh` from Debian's packages in
//! GOPATH mode (no network, no committed binaries or generated code; see `tests/go/mod.rs`).
//! The build runs once per test binary; every case then spawns the client against the one in-process server,
//! under a time bound, and asserts on its exit status and its `PASS` line, so a failure
//! shows grpc-go's own words about what our server did wrong.
//!
//! What it does not do: TLS (the client refuses `--use_tls=true`), the cloud-only auth
//! cases, `cacheable_unary`. The reverse direction, our Rust client against the grpc-go
//! server, is `tests/interop_go_server.rs`.
//!
//! [interop-test-descriptions.md]: https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md

mod common;
mod go;

use std::process::Command;

/// Runs one interop case with the grpc-go client against our server and asserts it passed.
fn run_case(case: &str) {
    let client = Command::new(&go::binaries().client);
    common::interop::run_client_case(client, common::interop_server(), case, "grpc-go client");
}

common::interop::interop_cases!(run_case);

//! grpc-js (`@grpc/grpc-js`, Node) as the client, our Rust interop server as the server: one
//! test per case of gRPC's interop-test-descriptions.md.
//!
//! Protocol rule: the "Client" cases of
//! [interop-test-descriptions.md](https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md),
//! played by `tests/node/interop_client.js` (our own client on grpc-js and proto-loader from
//! the npm registry, pinned by `tests/node/package-lock.json`, with the standard
//! `--server_host`, `--server_port`, `--test_case`, `--use_tls` flags) against
//! `grpc.testing.TestService` served by bare-grpc. A case passes when the client exits 0 and
//! prints `PASS <case>`.
//!
//! ```text
//!  cargo test thread                 node (target/node/node_modules)        bare-grpc
//!  ─────────────────                 ───────────────────────────────        ─────────
//!  run_peer(interop_client.js --test_case X) ── h2c ─────────────────────> interop server
//!                                     (compression cases via frame_tap.js,   (127.0.0.1:0,
//!                                      which records each message's          once per binary)
//!                                      compressed flag on the wire)
//!  <─── exit 0 + "PASS X" ─────────
//! ```
//!
//! Why this shape: grpc-js has its own HTTP/2 stack (Node's `http2`), its own deadline,
//! metadata and compression code, so each case proves that a third implementation we did not
//! write accepts what our server puts on the wire. grpc-js hides the compressed flag from its
//! application, so the compression cases route the channel through a byte-for-byte loopback
//! relay that reads the flag off the DATA frames.
//!
//! All eighteen cases run in full: a grpc-js client can compress (channel option
//! `grpc.default_compression_algorithm`) and can leave one streamed message plain (write flag
//! NoCompress), so unlike grpcio it sends client_compressed_streaming's mixed stream exactly.
//! What it does not do: TLS and the cloud-to-prod auth cases. Without `node` or the npm
//! packages it fails and says to run `tests/peers/setup.sh`.

mod common;
mod node;

/// Runs `interop_client.js --test_case <case>` against our interop server and asserts that it
/// exits 0 having printed `PASS <case>`.
fn run_case(case: &str) {
    let client = node::command("interop_client.js");
    common::interop::run_client_case(client, common::interop_server(), case, "grpc-js client");
}

common::interop::interop_cases!(run_case);

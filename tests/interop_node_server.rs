//! Interop with grpc-js, the other way round: bare-grpc's interop client
//! (`examples/interop-client.rs`) runs each case of gRPC's [interop-test-descriptions.md]
//! against a real grpc-js server (`tests/node/interop_server.js`, ours, on `@grpc/grpc-js`
//! from the npm registry).
//!
//! ```text
//!   cargo test process                   children
//!   node::node_server() (once) ────────► node interop_server.js --port 0 --stop_on_stdin_eof
//!   rust_interop_client()   (once)       (prints "listening on <port>")
//!   run_case(name) (per test) ─────────► interop-client --test_case=<name> ─► "PASS <name>"
//! ```
//!
//! A grpc-js server cannot see a request message's compressed flag, so the Node server sits
//! behind a small relay that reads the flags off the DATA frames (`tests/node/frame_tap.js`);
//! client_compressed_unary and client_compressed_streaming therefore check our client's flags
//! on the wire, the mixed stream included.
//!
//! What grpc-js cannot do: compress a response. Its server writes every message with the
//! compressed flag 0 and answers `grpc-encoding: identity` (grpc-js 1.14,
//! `server-interceptors.js`: "response compression is currently not supported"), so
//! server_compressed_unary and server_compressed_streaming cannot pass against it. Those two
//! tests are not skipped: they run our client and assert the exact failure that difference
//! causes (the first message asked to be compressed arrives with the flag clear, decoded
//! fine), so the day grpc-js starts compressing they fail and say to make them plain cases.
//!
//! [interop-test-descriptions.md]: https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md

mod common;
mod node;

use std::process::Command;

/// What our client reports when a response it asked to be compressed arrives plain, per case.
const PLAIN_RESPONSE: [(&str, &str); 2] = [
    (
        "server_compressed_unary",
        "FAIL server_compressed_unary: asked for compressed=true, the flag says false",
    ),
    (
        "server_compressed_streaming",
        "FAIL server_compressed_streaming: message of 31415 bytes: compressed flag false, expected true",
    ),
];

/// Runs one interop case with our client against the grpc-js server and asserts it passed,
/// or, for the two cases grpc-js cannot serve, that it failed exactly as that predicts.
fn run_case(case: &str) {
    let client = Command::new(common::interop::rust_interop_client());
    let addr = node::node_server();
    let Some((_, expected)) = PLAIN_RESPONSE.iter().find(|(name, _)| *name == case) else {
        common::interop::run_client_case(client, addr, case, "bare-grpc client vs grpc-js");
        return;
    };
    let mut client = client;
    client
        .arg(format!("--server_host={}", addr.ip()))
        .arg(format!("--server_port={}", addr.port()))
        .arg(format!("--test_case={case}"));
    let out = common::run_peer(client, common::interop::CASE_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && stdout.lines().any(|line| line == *expected),
        "bare-grpc client vs grpc-js, case {case}: grpc-js servers do not compress responses, \
         so this case should fail with {expected:?}; if grpc-js now compresses, make it a plain \
         case ({})\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
    );
}

common::interop::interop_cases!(run_case);

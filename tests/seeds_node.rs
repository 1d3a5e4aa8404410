//! The RouteGuide and Chat seeds (`examples/seeds/`) called by grpc-js clients written as a
//! Node user of those services writes them (`tests/node/seeds/`): the contracts loaded at run
//! time by `@grpc/proto-loader`, a callback for each unary call, Node stream events for the
//! streaming ones.
//!
//! ```text
//!   this test process                          child processes (node, grpc-js from npm)
//!   ┌─────────────────────────────────┐         ┌──────────────────────────────────────┐
//!   │ TestServer 127.0.0.1:<port 0>   │◄────────│ route_guide_client.js                │
//!   │   RouteGuide, ChatServer        │  h2c    │   GetPerson (unary), GetPeople (bidi)│
//!   │ our ChatServerClient: a         │◄────────│ chat_client.js ×2 (ChatStream,       │
//!   │   subscriber of the same room   │         │   SendNote, cancel)                  │
//!   └─────────────────────────────────┘         └──────────────────────────────────────┘
//! ```
//!
//! The rule: a server for the same .proto must answer a grpc-js program as its own kind would;
//! the expected lines are the seed's data (the same people as the Python client prints, with
//! proto-loader's `enums: String` showing the gender by name). The chat test crosses
//! implementations: two grpc-js clients and one bare-grpc subscriber share one room and must
//! all see the five notes in one order; the grpc-js clients then cancel their subscriptions
//! (RST_STREAM CANCEL) and exit, and the room's live-subscriber count must return to our one.
//!
//! Every wait is bounded: the Node programs under `common::run_peer`'s timeout (and their own
//! 10–20 s bounds), stream reads and the subscriber count under `tokio::time::timeout`.
//! Without `node` or the npm packages the tests fail and say to run `tests/peers/setup.sh`.

mod common;
mod node;
#[path = "../examples/seeds/mod.rs"]
mod seeds;

use std::time::Duration;

use bare_grpc::{Channel, Server};
use bare_grpc_contracts::chat::Empty;
use bare_grpc_contracts::chat::chat_server_grpc::ChatServerClient;
use common::TestServer;
use seeds::chat::ChatService;
use seeds::route_guide::RouteGuideService;

/// Bound on one Node client run (start-up and proto loading dominate).
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound on any single wait inside a test.
const WAIT: Duration = Duration::from_secs(10);

/// RouteGuide and the chat room on a fresh server; the room is returned to watch.
async fn seed_server() -> (TestServer, ChatService) {
    let chat = ChatService::default();
    let server = Server::builder()
        .add_service(RouteGuideService::server())
        .add_service(chat.server())
        .build();
    (TestServer::start(server).await, chat)
}

/// Runs `node tests/node/seeds/<script> args…` (blocking, bounded) and returns its stdout;
/// panics with its output if it fails.
async fn run_node(script: &str, args: Vec<String>) -> String {
    let script = format!("seeds/{script}");
    tokio::task::spawn_blocking(move || {
        let mut cmd = node::command(&script);
        cmd.args(&args);
        let out = common::run_peer(cmd, PEER_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "node {script} {args:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    })
    .await
    .expect("node runner")
}

/// Waits (bounded) until the room has exactly `n` live subscribers.
async fn subscribers_become(chat: &ChatService, n: usize) {
    let mut count = chat.subscribers();
    let reached = tokio::time::timeout(WAIT, count.wait_for(|live| *live == n))
        .await
        .is_ok();
    assert!(
        reached,
        "live subscribers stayed at {} instead of {n}",
        *count.borrow()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_guide_grpc_js_client_unary_and_bidi() {
    let (server, _) = seed_server().await;
    let stdout = run_node("route_guide_client.js", vec![server.addr.to_string()]).await;
    // Charlie is not in the seed's data: GetPeople sends nothing back for him.
    let expected = [
        "GetPerson: Alice, Age: 30, Gender: FEMALE, Hobbies: reading, swimming, Address: 123 Main St, New York",
        "GetPeople: Alice, Age: 30, Gender: FEMALE, Hobbies: reading, swimming, Address: 123 Main St, New York",
        "GetPeople: Bob, Age: 25, Gender: MALE, Hobbies: gaming, cycling, Address: 456 Elm St, Los Angeles",
    ];
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        expected,
        "stdout:\n{stdout}"
    );
}

/// The `R[name] message` lines of a chat client's output.
fn received(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("R[")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_broadcast_reaches_grpc_js_and_bare_grpc_subscribers_in_one_order() {
    let (server, chat) = seed_server().await;
    // Our own subscriber first, so the room has a listener that is not grpc-js.
    let channel = Channel::connect(&server.addr.to_string())
        .await
        .expect("connect");
    let mut ours = ChatServerClient::new(channel)
        .chat_stream(Empty {})
        .await
        .expect("subscribe");
    subscribers_become(&chat, 1).await;

    let run = |name: &str, messages: &[&str]| {
        let mut args = vec![server.addr.to_string(), name.to_owned(), "5".into()];
        args.extend(messages.iter().map(|m| m.to_string()));
        run_node("chat_client.js", args)
    };
    // Two grpc-js users at once, five notes between them: each waits until it has seen all.
    let (alice, bob) = tokio::join!(
        run("alice", &["hi bob", "it's alice", "bye"]),
        run("bob", &["hello alice", "bob here"]),
    );
    let (alice_got, bob_got) = (received(&alice), received(&bob));
    assert_eq!(alice_got.len(), 5, "alice:\n{alice}");
    assert_eq!(
        alice_got, bob_got,
        "both see one order\nalice:\n{alice}\nbob:\n{bob}"
    );
    for (who, sent) in [("alice", &alice), ("bob", &bob)] {
        // What each sent appears, in the order it was sent, among what everyone received.
        let mine: Vec<&str> = alice_got
            .iter()
            .filter(|l| l.starts_with(&format!("R[{who}]")))
            .map(|l| &l[l.find(']').unwrap() + 2..])
            .collect();
        let said: Vec<&str> = sent
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("S[{who}] ")))
            .collect();
        assert_eq!(mine, said, "{who}");
    }

    // The bare-grpc subscriber saw the grpc-js users' notes in the same order.
    let mut ours_got = Vec::new();
    while ours_got.len() < 5 {
        let note = tokio::time::timeout(WAIT, ours.message())
            .await
            .expect("a note within the bound")
            .expect("stream ok")
            .expect("stream still open");
        ours_got.push(format!("R[{}] {}", note.name, note.message));
    }
    assert_eq!(ours_got, alice_got, "bare-grpc subscriber vs grpc-js");

    // Both grpc-js subscriptions were cancelled (RST_STREAM CANCEL) and their processes are
    // gone: only ours is left in the room.
    subscribers_become(&chat, 1).await;
    drop(ours);
    subscribers_become(&chat, 0).await;
    assert_eq!(chat.history().len(), 5);
}

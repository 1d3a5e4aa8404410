//! The seed services (`examples/seeds/`) against real clients: the seeds' own Python `grpcio`
//! clients, run unchanged, and bare-grpc's generated clients.
//!
//! ```text
//!   this test process                             child processes (grpcio from PyPI)
//!   ┌───────────────────────────────────┐         ┌───────────────────────────────────────┐
//!   │ TestServer 127.0.0.1:<port 0>     │◄────────│ route_guide/client.py (002, unchanged) │
//!   │   ProductInfo, OrderManagement,   │  h2c    │   via run_unchanged.py                 │
//!   │   RouteGuide, ChatServer          │◄────────│ chat_client.py (003, Tk -> driver) ×2  │
//!   │ Channel + generated clients ──────┤         └───────────────────────────────────────┘
//!   └───────────────────────────────────┘
//! ```
//!
//! The rule: the seeds' clients are real programs whose printed output the seeds give; a server
//! for the same .proto must answer them as their Python server would. Their stubs are generated
//! at test time by `tests/python/seeds/gen.sh` from the very protos our build compiles.
//!
//! Every wait is bounded: peers run under `common::run_peer`'s timeout, stream reads and the
//! chat's subscriber count under `tokio::time::timeout`. Nothing sleeps to synchronise: the chat
//! service exposes its live-subscriber count as a `watch`, and the tests await its changes.

mod common;
#[path = "../examples/seeds/mod.rs"]
mod seeds;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use bare_grpc::{Channel, Code, Request, Server};
use bare_grpc_contracts::chat::chat_server_grpc::ChatServerClient;
use bare_grpc_contracts::chat::{Empty, Note};
use bare_grpc_contracts::ecommerce::order_management_grpc::OrderManagementClient;
use bare_grpc_contracts::ecommerce::product_info_grpc::ProductInfoClient;
use bare_grpc_contracts::ecommerce::{Order, Product, ProductId};
use bare_grpc_contracts::route_guide::Name;
use bare_grpc_contracts::route_guide::route_guide_grpc::RouteGuideClient;
use common::TestServer;
use seeds::Messages;
use seeds::chat::ChatService;
use seeds::order_management::{self, OrderManagementService};
use seeds::product_info::{self, ProductInfoService};
use seeds::route_guide::{self, RouteGuideService};

/// Bound on one Python client run (interpreter start-up dominates).
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound on any single wait inside a test.
const WAIT: Duration = Duration::from_secs(10);

/// The venv's python, with grpcio.
fn python() -> PathBuf {
    let python = common::repo_root().join("target/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run tests/peers/setup.sh",
        python.display()
    );
    python
}

/// The generated Python stubs of the seed protos (once per test binary).
fn py_stubs() -> &'static PathBuf {
    static STUBS: OnceLock<PathBuf> = OnceLock::new();
    STUBS.get_or_init(|| {
        let script = common::repo_root().join("tests/python/seeds/gen.sh");
        let out = common::run_peer(Command::new(&script), PEER_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed ({})\n{stdout}\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(stdout.trim())
    })
}

/// Runs a Python seed client (blocking, bounded) and returns its stdout; panics with its
/// output if it fails.
async fn run_python(args: Vec<String>) -> String {
    let stubs = py_stubs().clone();
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(python());
        cmd.current_dir(common::repo_root())
            .env("PYTHONPATH", &stubs)
            .env("PYTHONUNBUFFERED", "1")
            .args(&args);
        let out = common::run_peer(cmd, PEER_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "python {args:?} failed ({})\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    })
    .await
    .expect("python runner")
}

/// A server with all four seed services; the chat room is returned to watch.
async fn all_services() -> (TestServer, ChatService) {
    let chat = ChatService::default();
    let server = Server::builder()
        .add_service(ProductInfoService::server())
        .add_service(OrderManagementService::server())
        .add_service(RouteGuideService::server())
        .add_service(chat.server())
        .build();
    (TestServer::start(server).await, chat)
}

async fn channel(server: &TestServer) -> Channel {
    Channel::connect(&server.addr.to_string())
        .await
        .expect("connect to the test server")
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

// ---- 002 RouteGuide: the seed's client.py, unchanged ----------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_guide_seed_python_client_runs_unchanged() {
    let (server, _) = all_services().await;
    let root = common::repo_root();
    let stdout = run_python(vec![
        root.join("tests/python/seeds/run_unchanged.py")
            .display()
            .to_string(),
        server.addr.to_string(),
        "localhost:50051".into(),
        root.join("tests/python/seeds/route_guide/client.py")
            .display()
            .to_string(),
    ])
    .await;
    // The seed prints these (its text elides the addresses with "..."); Gender is the enum's
    // number, hobbies a Python list repr.
    let expected = [
        "GetPerson: Alice, Age: 30, Gender: 2, Hobbies: ['reading', 'swimming'], Address: 123 Main St, New York",
        "GetPeople: Alice, Age: 30, Gender: 2, Hobbies: ['reading', 'swimming'], Address: 123 Main St, New York",
        "GetPeople: Bob, Age: 25, Gender: 1, Hobbies: ['gaming', 'cycling'], Address: 456 Elm St, Los Angeles",
    ];
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        expected,
        "stdout:\n{stdout}"
    );
}

#[tokio::test]
async fn route_guide_unknown_name_is_not_found_person() {
    let (server, _) = all_services().await;
    let client = RouteGuideClient::new(channel(&server).await);
    let person = client
        .get_person(Name {
            name: "Charlie".into(),
        })
        .await
        .expect("GetPerson answers OK for unknown names")
        .into_inner();
    assert_eq!(person.name, "Not Found");
    assert_eq!(person.age, 0);
    assert!(person.address.is_none());

    let mut lines = Vec::new();
    route_guide::demo(&channel(&server).await, &mut |l| lines.push(l))
        .await
        .expect("demo");
    let people: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("<- Person"))
        .collect();
    assert_eq!(people.len(), 3, "{lines:#?}");
    assert!(people[1].starts_with("<- Person Alice, Age: 30, Gender: FEMALE"));
    assert!(people[2].starts_with("<- Person Bob, Age: 25, Gender: MALE"));
}

// ---- 003 Chat --------------------------------------------------------------------------------

/// The `R[name] message` lines of a chat client's output.
fn received(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("R[")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_seed_python_clients_see_every_note_in_one_order() {
    let (server, chat) = all_services().await;
    let client = common::repo_root().join("tests/python/seeds/chat_client.py");
    let run = |name: &str, messages: &[&str]| {
        let mut args = vec![
            client.display().to_string(),
            server.addr.to_string(),
            name.to_owned(),
            "5".into(),
        ];
        args.extend(messages.iter().map(|m| m.to_string()));
        run_python(args)
    };
    // Two windows at once, five notes between them: each waits until it has seen all five.
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
    assert_eq!(chat.history().len(), 5);
    // Both processes are gone: their subscriptions must be too.
    subscribers_become(&chat, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_many_senders_lose_nothing_and_a_late_subscriber_gets_the_history() {
    const SENDERS: usize = 8;
    const NOTES: usize = 25;
    let (server, chat) = all_services().await;
    let channel = channel(&server).await;
    let client = ChatServerClient::new(channel.clone());

    let mut streams = Vec::new();
    for _ in 0..3 {
        streams.push(client.chat_stream(Empty {}).await.expect("subscribe"));
    }
    subscribers_become(&chat, 3).await;

    let mut senders = Vec::new();
    for s in 0..SENDERS {
        let client = client.clone();
        senders.push(tokio::spawn(async move {
            for n in 0..NOTES {
                let note = Note {
                    name: format!("sender{s}"),
                    message: format!("{n}"),
                };
                client.send_note(note).await.expect("SendNote");
            }
        }));
    }
    for sender in senders {
        sender.await.expect("sender task");
    }

    let total = SENDERS * NOTES;
    let mut orders = Vec::new();
    for stream in &mut streams {
        let mut got = Vec::new();
        while got.len() < total {
            let note = tokio::time::timeout(WAIT, stream.message())
                .await
                .expect("a note within the bound")
                .expect("stream ok")
                .expect("stream still open");
            got.push((note.name, note.message));
        }
        orders.push(got);
    }
    assert!(
        orders.iter().all(|o| *o == orders[0]),
        "every subscriber sees one order"
    );
    for s in 0..SENDERS {
        let from: Vec<&str> = orders[0]
            .iter()
            .filter(|(name, _)| *name == format!("sender{s}"))
            .map(|(_, m)| m.as_str())
            .collect();
        let expected: Vec<String> = (0..NOTES).map(|n| n.to_string()).collect();
        assert_eq!(from, expected, "sender{s}'s notes, all, in its order");
    }

    // A late subscriber starts with the whole history, in the same order.
    let mut late = client.chat_stream(Empty {}).await.expect("subscribe late");
    for expected in &orders[0] {
        let note = tokio::time::timeout(WAIT, late.message())
            .await
            .expect("history within the bound")
            .expect("stream ok")
            .expect("stream still open");
        assert_eq!((&note.name, &note.message), (&expected.0, &expected.1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_subscribers_that_go_away_are_freed() {
    let (server, chat) = all_services().await;
    let channel = channel(&server).await;
    let client = ChatServerClient::new(channel.clone());
    client
        .send_note(Note {
            name: "a".into(),
            message: "first".into(),
        })
        .await
        .expect("SendNote");

    // Cancelled calls: each subscriber reads the history, then its stream is dropped, which
    // resets the HTTP/2 stream; the server drops the handler, and the count follows.
    let mut streams = Vec::new();
    for _ in 0..5 {
        let mut stream = client.chat_stream(Empty {}).await.expect("subscribe");
        let first = tokio::time::timeout(WAIT, stream.message())
            .await
            .expect("bounded");
        assert_eq!(first.expect("ok").expect("a note").message, "first");
        streams.push(stream);
    }
    subscribers_become(&chat, 5).await;
    streams.truncate(2);
    subscribers_become(&chat, 2).await;
    drop(streams);
    subscribers_become(&chat, 0).await;

    // A lost connection: the subscribers of a channel that goes away are freed too.
    let other = Channel::connect(&server.addr.to_string())
        .await
        .expect("connect");
    let other_client = ChatServerClient::new(other.clone());
    let held = other_client.chat_stream(Empty {}).await.expect("subscribe");
    subscribers_become(&chat, 1).await;
    drop((held, other_client, other));
    subscribers_become(&chat, 0).await;

    // And the room still works.
    let mut stream = client.chat_stream(Empty {}).await.expect("subscribe again");
    let first = tokio::time::timeout(WAIT, stream.message())
        .await
        .expect("bounded");
    assert_eq!(first.expect("ok").expect("a note").message, "first");
}

// ---- 001 ProductInfo -------------------------------------------------------------------------

#[tokio::test]
async fn product_info_adds_gets_and_names_the_missing_id() {
    let (server, _) = all_services().await;
    let channel = channel(&server).await;
    let mut lines = Vec::new();
    let id = product_info::demo(&channel, &mut |l| lines.push(l))
        .await
        .expect("demo");
    assert_eq!(
        lines.last().unwrap(),
        "<- NOT_FOUND no product with id \"0\""
    );

    let client = ProductInfoClient::new(channel);
    let product = client
        .get_product(ProductId { value: id.clone() })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(product.id, id);
    assert_eq!(product.name, "Apple iPhone 11");
    assert_eq!(product.price, 699.0);

    let missing = client
        .get_product(ProductId {
            value: "nope".into(),
        })
        .await
        .expect_err("unknown id");
    assert_eq!(missing.code(), Code::NotFound);
    assert!(
        missing.message().contains("\"nope\""),
        "{}",
        missing.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn product_info_concurrent_adds_get_distinct_ids() {
    let (server, _) = all_services().await;
    let client = ProductInfoClient::new(channel(&server).await);
    let mut calls = Vec::new();
    for n in 0..64 {
        let client = client.clone();
        calls.push(tokio::spawn(async move {
            let product = Product {
                id: "ignored".into(),
                name: format!("product {n}"),
                description: String::new(),
                price: n as f32,
            };
            let id = client
                .add_product(product)
                .await
                .expect("add")
                .into_inner()
                .value;
            (n, id)
        }));
    }
    let mut ids = HashSet::new();
    for call in calls {
        let (n, id) = call.await.expect("task");
        assert!(ids.insert(id.clone()), "id {id} handed out twice");
        let product = client
            .get_product(ProductId { value: id.clone() })
            .await
            .expect("get")
            .into_inner();
        assert_eq!((product.name, product.id), (format!("product {n}"), id));
    }
}

// ---- 001 OrderManagement ---------------------------------------------------------------------

#[tokio::test]
async fn order_management_one_call_of_each_kind() {
    let (server, _) = all_services().await;
    let mut lines = Vec::new();
    order_management::demo(&channel(&server).await, &mut |l| lines.push(l))
        .await
        .expect("demo");
    let got = |prefix: &str| -> Vec<&str> {
        lines
            .iter()
            .filter(|l| l.starts_with(prefix))
            .map(String::as_str)
            .collect()
    };
    assert_eq!(
        got("<- StringValue"),
        ["<- StringValue \"107\"", "<- StringValue \"102, 103\""]
    );
    assert_eq!(
        got("<- Order 10")
            .iter()
            .map(|l| &l[9..12])
            .collect::<Vec<_>>(),
        ["107", "102", "104"]
    );
    assert_eq!(
        got("<- CombinedShipment"),
        [
            "<- CombinedShipment shipment-1 to Mountain View, CA (full): 102, 104, 106",
            "<- CombinedShipment shipment-2 to San Jose, CA (remainder): 103, 105",
        ]
    );
    // The full shipment arrived while the call was still open, before the half-close.
    let full = lines.iter().position(|l| l.contains("(full)")).unwrap();
    let half_close = lines.iter().rposition(|l| l == "-> (half-close)").unwrap();
    assert!(full < half_close, "{lines:#?}");
}

#[tokio::test]
async fn order_management_unknown_ids_are_not_found_and_change_nothing() {
    let service = OrderManagementService::with_orders(order_management::sample_orders());
    let server = TestServer::start(
        Server::builder()
            .add_service(
                bare_grpc_contracts::ecommerce::order_management_grpc::OrderManagementServer::new(
                    service,
                ),
            )
            .build(),
    )
    .await;
    let client = OrderManagementClient::new(channel(&server).await);

    let err = client
        .get_order(String::from("999"))
        .await
        .expect_err("get 999");
    assert_eq!(
        (err.code(), err.message()),
        (Code::NotFound, "no order with id \"999\"")
    );

    let mut changed = order_management::sample_orders();
    changed[0].destination = "Nowhere".into();
    let unknown = Order {
        id: "999".into(),
        ..Order::default()
    };
    let err = client
        .update_orders(Request::new(Messages::new(vec![
            changed[0].clone(),
            unknown,
        ])))
        .await
        .expect_err("update with an unknown id");
    assert_eq!(err.code(), Code::NotFound);
    let kept = client
        .get_order(String::from("102"))
        .await
        .expect("get 102")
        .into_inner();
    assert_eq!(
        kept.destination, "Mountain View, CA",
        "a failed update changes nothing"
    );

    let (mut ids, mut shipments) = client.process_orders(()).await.expect("process");
    ids.send("102".into()).await.expect("send");
    ids.send("999".into()).await.expect("send");
    ids.finish();
    let end = tokio::time::timeout(WAIT, shipments.message())
        .await
        .expect("bounded");
    assert_eq!(
        end.expect_err("unknown id in processOrders").code(),
        Code::NotFound
    );

    let added = client
        .add_order(changed[0].clone())
        .await
        .expect_err("adding an existing id");
    assert_eq!(added.code(), Code::AlreadyExists);

    // searchOrders with no match is an empty stream with status OK.
    let mut none = client
        .search_orders(String::from("Nokia"))
        .await
        .expect("search");
    assert!(none.message().await.expect("ok").is_none());
}

#[tokio::test]
async fn process_orders_ships_every_id_exactly_once() {
    let (server, _) = all_services().await;
    let client = OrderManagementClient::new(channel(&server).await);
    let (mut ids, mut shipments) = client.process_orders(()).await.expect("process");
    for id in ["106", "105", "104", "103", "102", "105", "104"] {
        ids.send(id.into()).await.expect("send");
    }
    ids.finish();
    let mut shipped = Vec::new();
    while let Some(shipment) = tokio::time::timeout(WAIT, shipments.message())
        .await
        .expect("bounded")
        .expect("ok")
    {
        let destination = &shipment.orders_list[0].destination;
        assert!(
            shipment
                .orders_list
                .iter()
                .all(|o| &o.destination == destination)
        );
        assert!(shipment.orders_list.len() <= order_management::SHIPMENT_SIZE);
        shipped.extend(shipment.orders_list.into_iter().map(|o| o.id));
    }
    shipped.sort();
    assert_eq!(shipped, ["102", "103", "104", "105", "106"]);
}

// ---- the tour's calls, in one process -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tour_calls_all_pass_on_one_channel() {
    let (server, chat) = all_services().await;
    let channel = channel(&server).await;
    let mut lines = Vec::new();
    let mut say = |l: String| lines.push(l);
    product_info::demo(&channel, &mut say)
        .await
        .expect("ProductInfo");
    order_management::demo(&channel, &mut say)
        .await
        .expect("OrderManagement");
    route_guide::demo(&channel, &mut say)
        .await
        .expect("RouteGuide");
    let notes = seeds::chat::session(&channel, "bob", &["hi".into()], WAIT, &mut say)
        .await
        .expect("Chat");
    assert_eq!(notes.len(), 1);
    assert!(lines.len() > 30, "{lines:#?}");
    subscribers_become(&chat, 0).await;
}

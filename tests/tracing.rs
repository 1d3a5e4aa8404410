//! The feature `tracing` (docs/tracing.md): one span per call on each side with OpenTelemetry's
//! RPC fields, TRACE events per message, failures at DEBUG (the caller's doing) or ERROR (a
//! server fault). A small subscriber written on `tracing`'s own `Subscriber` trait records
//! what the real server and client emit; calls go over TCP loopback (so the server span has a
//! peer address and the client span a server address) and over the in-process channel. A
//! handler's own events are children of the server span; an unknown method gets a span too.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bare_grpc::{Channel, Code, Request, Response, Server, Status};
use bare_grpc_contracts::ecommerce::product_info_grpc::{
    ProductInfo, ProductInfoClient, ProductInfoServer,
};
use bare_grpc_contracts::ecommerce::{Product, ProductId};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// What the subscriber saw: spans by id (name and fields) and events (level, parent, fields,
/// target). An event's parent is its explicit one or, for a contextual event, the span the
/// emitting thread is in.
#[derive(Default)]
struct Seen {
    spans: BTreeMap<u64, (String, BTreeMap<String, String>)>,
    events: Vec<SeenEvent>,
}

/// One event: its level, parent span, fields and target.
type SeenEvent = (Level, Option<u64>, BTreeMap<String, String>, String);

thread_local! {
    /// The spans this thread has entered and not left, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Seen>>,
    next: Arc<AtomicU64>,
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut fields = BTreeMap::new();
        span.record(&mut Fields(&mut fields));
        let name = span.metadata().name().to_owned();
        self.seen.lock().unwrap().spans.insert(id, (name, fields));
        Id::from_u64(id)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut seen = self.seen.lock().unwrap();
        if let Some((_, fields)) = seen.spans.get_mut(&span.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let parent = match event.parent() {
            Some(id) => Some(id.into_u64()),
            None if event.is_contextual() => {
                ENTERED.with(|entered| entered.borrow().last().copied())
            }
            None => None,
        };
        let level = *event.metadata().level();
        let target = event.metadata().target().to_owned();
        self.seen
            .lock()
            .unwrap()
            .events
            .push((level, parent, fields, target));
    }
    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }
    fn exit(&self, span: &Id) {
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|id| *id == span.into_u64()) {
                entered.remove(at);
            }
        });
    }
}

impl Recorder {
    /// The one span named `name` whose `otel.name` is `path`.
    fn span(&self, name: &str, path: &str) -> (u64, BTreeMap<String, String>) {
        let seen = self.seen.lock().unwrap();
        let found: Vec<_> = seen
            .spans
            .iter()
            .filter(|(_, (n, f))| n == name && f.get("otel.name").map(String::as_str) == Some(path))
            .map(|(id, (_, f))| (*id, f.clone()))
            .collect();
        assert_eq!(found.len(), 1, "spans {name} {path}: {:?}", seen.spans);
        found.into_iter().next().unwrap()
    }

    /// The events of `span` emitted by bare-grpc and by the test's handlers (h2's own trace
    /// events, emitted while a handler's poll is inside the span, are left out).
    fn events_of(&self, span: u64) -> Vec<(Level, BTreeMap<String, String>)> {
        let seen = self.seen.lock().unwrap();
        seen.events
            .iter()
            .filter(|(_, parent, _, target)| *parent == Some(span) && !target.starts_with("h2"))
            .map(|(level, _, fields, _)| (*level, fields.clone()))
            .collect()
    }

    /// Events with `target` and their parents.
    fn events_with_target(&self, target: &str) -> Vec<(Option<u64>, BTreeMap<String, String>)> {
        let seen = self.seen.lock().unwrap();
        seen.events
            .iter()
            .filter(|(_, _, _, t)| t == target)
            .map(|(_, parent, fields, _)| (*parent, fields.clone()))
            .collect()
    }
}

#[derive(Default)]
struct Catalogue;

impl ProductInfo for Catalogue {
    async fn add_product(&self, request: Request<Product>) -> Result<Response<ProductId>, Status> {
        if request.get_ref().name.is_empty() {
            return Err(Status::invalid_argument("a product needs a name"));
        }
        Ok(Response::new(ProductId { value: "1".into() }))
    }

    async fn get_product(&self, request: Request<ProductId>) -> Result<Response<Product>, Status> {
        match request.into_inner().value.as_str() {
            "1" => Ok(Response::new(Product {
                id: "1".into(),
                name: "Pixel 8".into(),
                ..Product::default()
            })),
            "2" => {
                // A user's event inside a handler: a child of the call's server span.
                tracing::info!(product = "2", "looked up in the catalogue");
                Ok(Response::new(Product {
                    id: "2".into(),
                    ..Product::default()
                }))
            }
            "boom" => Err(Status::internal("the catalogue is corrupt")),
            id => Err(Status::not_found(format!("no product with id {id:?}"))),
        }
    }
}

fn server() -> Server {
    Server::builder()
        .add_service(ProductInfoServer::new(Catalogue))
        .build()
}

fn field<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    fields
        .get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
}

/// The tests of this file run one at a time. `tracing` caches, per callsite, whether any
/// subscriber wants it; a callsite first reached on one thread with no subscriber, while
/// another test's scoped subscriber is being installed, can keep "never" and lose that test's
/// spans (seen in CI: the server span of a call missing). Run in turn, each new subscriber
/// rebuilds the cache before its calls start.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `body` on a current-thread runtime with `recorder` as the default subscriber, so that
/// the server's and the client's tasks all emit to it.
fn traced<F: std::future::Future<Output = ()>>(recorder: &Recorder, body: impl FnOnce() -> F) {
    let _serial = serial();
    let dispatch = tracing::Dispatch::new(recorder.clone());
    tracing::dispatcher::with_default(&dispatch, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(body())
    });
}

#[test]
fn unary_call_has_a_span_per_side_with_the_rpc_fields_and_message_events() {
    let recorder = Recorder::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let listening = listener.local_addr().unwrap();
    traced(&recorder, || async move {
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server().serve(listener));
        let channel = Channel::connect(&format!("127.0.0.1:{}", addr.port()))
            .await
            .unwrap();
        let client = ProductInfoClient::new(channel);
        let product = client
            .get_product(ProductId { value: "1".into() })
            .await
            .unwrap();
        assert_eq!(product.get_ref().name, "Pixel 8");
    });
    let path = "ecommerce.ProductInfo/getProduct";
    for (name, kind) in [("grpc.server", "server"), ("grpc.client", "client")] {
        let (id, fields) = recorder.span(name, path);
        assert_eq!(field(&fields, "otel.kind"), kind);
        assert_eq!(field(&fields, "rpc.system"), "grpc");
        assert_eq!(field(&fields, "rpc.service"), "ecommerce.ProductInfo");
        assert_eq!(field(&fields, "rpc.method"), "getProduct");
        assert_eq!(field(&fields, "rpc.grpc.status_code"), "0");
        assert!(!fields.contains_key("otel.status_code"), "{fields:?}");
        let events = recorder.events_of(id);
        let messages: Vec<String> = events
            .iter()
            .map(|(level, f)| {
                assert_eq!(*level, Level::TRACE);
                format!(
                    "{} {}",
                    field(f, "rpc.message.type"),
                    field(f, "rpc.message.id")
                )
            })
            .collect();
        let expected = if kind == "server" {
            ["RECEIVED 1", "SENT 1"]
        } else {
            ["SENT 1", "RECEIVED 1"]
        };
        assert_eq!(messages, expected, "{name}");
    }
    let (_, served) = recorder.span("grpc.server", path);
    assert_eq!(field(&served, "network.peer.address"), "127.0.0.1");
    let port: u16 = field(&served, "network.peer.port").parse().unwrap();
    assert_ne!(port, 0);
    // The client span names the server it called (OpenTelemetry's server.address/port).
    let (_, called) = recorder.span("grpc.client", path);
    assert_eq!(field(&called, "server.address"), "127.0.0.1");
    let server_port: u16 = field(&called, "server.port").parse().unwrap();
    assert_eq!(server_port, listening.port());
}

#[test]
fn a_handlers_own_events_are_children_of_the_server_span() {
    let recorder = Recorder::default();
    traced(&recorder, || async {
        let client = ProductInfoClient::new(bare_grpc::testing::lazy(&server()));
        let product = client
            .get_product(ProductId { value: "2".into() })
            .await
            .unwrap();
        assert_eq!(product.get_ref().id, "2");
    });
    let (server_id, _) = recorder.span("grpc.server", "ecommerce.ProductInfo/getProduct");
    let (client_id, _) = recorder.span("grpc.client", "ecommerce.ProductInfo/getProduct");
    let mine = recorder.events_with_target(module_path!());
    assert_eq!(mine.len(), 1, "{mine:?}");
    let (parent, fields) = &mine[0];
    assert_eq!(field(fields, "message"), "looked up in the catalogue");
    assert_eq!(field(fields, "product"), "2");
    assert_eq!(*parent, Some(server_id), "client span is {client_id}");
}

#[test]
fn an_unknown_method_gets_a_server_span_with_unimplemented() {
    let recorder = Recorder::default();
    traced(&recorder, || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(server().serve(listener));
        let channel = Channel::connect(&addr.to_string()).await.unwrap();
        let status = channel
            .unary::<ProductId, Product>(
                "/ecommerce.ProductInfo/deleteProduct",
                Request::new(ProductId { value: "1".into() }),
            )
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented);
        // The server serves on: a known method on the same channel.
        let client = ProductInfoClient::new(channel);
        client
            .get_product(ProductId { value: "1".into() })
            .await
            .unwrap();
    });
    let (id, served) = recorder.span("grpc.server", "_OTHER");
    assert_eq!(field(&served, "otel.kind"), "server");
    assert_eq!(field(&served, "rpc.system"), "grpc");
    assert_eq!(field(&served, "rpc.method"), "_OTHER");
    assert_eq!(
        field(&served, "rpc.method_original"),
        "/ecommerce.ProductInfo/deleteProduct"
    );
    assert_eq!(field(&served, "rpc.grpc.status_code"), "12");
    assert_eq!(field(&served, "otel.status_code"), "ERROR");
    assert_eq!(field(&served, "network.peer.address"), "127.0.0.1");
    // UNIMPLEMENTED is the caller's doing: DEBUG, as for any other such code.
    let failures = recorder.events_of(id);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, Level::DEBUG);
    assert_eq!(field(&failures[0].1, "code"), "UNIMPLEMENTED");
    let (_, called) = recorder.span("grpc.client", "ecommerce.ProductInfo/deleteProduct");
    assert_eq!(field(&called, "rpc.grpc.status_code"), "12");
    // The known call's server span is there as usual.
    recorder.span("grpc.server", "ecommerce.ProductInfo/getProduct");
}

#[test]
fn a_callers_mistake_is_debug_and_a_server_fault_is_error() {
    let recorder = Recorder::default();
    traced(&recorder, || async {
        let client = ProductInfoClient::new(bare_grpc::testing::lazy(&server()));
        let status = client
            .get_product(ProductId { value: "9".into() })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let status = client.add_product(Product::default()).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    });
    let (server_id, served) = recorder.span("grpc.server", "ecommerce.ProductInfo/getProduct");
    assert_eq!(field(&served, "rpc.grpc.status_code"), "5");
    // NOT_FOUND is the caller's doing: not an error of the server span, an error of the client's.
    assert!(!served.contains_key("otel.status_code"), "{served:?}");
    let (_, client) = recorder.span("grpc.client", "ecommerce.ProductInfo/getProduct");
    assert_eq!(field(&client, "otel.status_code"), "ERROR");
    let failures: Vec<_> = recorder
        .events_of(server_id)
        .into_iter()
        .filter(|(level, _)| *level != Level::TRACE)
        .collect();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].0, Level::DEBUG);
    assert_eq!(field(&failures[0].1, "code"), "NOT_FOUND");
    assert_eq!(field(&failures[0].1, "message"), "no product with id \"9\"");
    let (_, add) = recorder.span("grpc.server", "ecommerce.ProductInfo/addProduct");
    assert_eq!(field(&add, "rpc.grpc.status_code"), "3");

    let recorder = Recorder::default();
    traced(&recorder, || async {
        let client = ProductInfoClient::new(bare_grpc::testing::lazy(&server()));
        let status = client
            .get_product(ProductId {
                value: "boom".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Internal);
    });
    for name in ["grpc.server", "grpc.client"] {
        let (id, fields) = recorder.span(name, "ecommerce.ProductInfo/getProduct");
        assert_eq!(field(&fields, "rpc.grpc.status_code"), "13");
        assert_eq!(field(&fields, "otel.status_code"), "ERROR");
        let levels: Vec<Level> = recorder
            .events_of(id)
            .into_iter()
            .map(|(level, _)| level)
            .filter(|level| *level != Level::TRACE)
            .collect();
        assert_eq!(levels, [Level::ERROR], "{name}");
    }
}

#[test]
fn nothing_is_recorded_without_a_subscriber_and_calls_still_work() {
    let _serial = serial();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = ProductInfoClient::new(bare_grpc::testing::lazy(&server()));
            let reply = client
                .get_product(ProductId { value: "1".into() })
                .await
                .unwrap();
            assert_eq!(reply.get_ref().id, "1");
        });
}

//! gRPC-Web in a real browser: Debian's Chromium, headless, runs a page whose gRPC-Web clients
//! are real, maintained ones from the npm registry, against our server built with `--features
//! web`; the test fails when anything the page observed differs from what the server did.
//!
//! Protocol rule: PROTOCOL-WEB (gRPC-Web: the status as a final body frame flagged 0x80, the
//! `application/grpc-web+proto` and base64 `application/grpc-web-text` content types) and the
//! Fetch standard's CORS protocol (a cross-origin call with non-safelisted headers is preceded
//! by an `OPTIONS` preflight; the page reads only the response headers the server exposes).
//!
//! ```text
//!  this test process                                 node tests/browser/drive.mjs
//!  ┌────────────────────────────────────────────┐    ┌──────────────────────────────────┐
//!  │ static server 127.0.0.1:S (/, /page.js)    │◄───│ playwright-core ─► /usr/bin/     │
//!  │ bare-grpc 127.0.0.1:G, feature web, CORS   │    │ chromium, headless, new profile; │
//!  │   allowing http://127.0.0.1:S only         │◄───│ page.js calls :G through Connect │
//!  │   ProductInfo (seed, behind Shop)          │    │ (+proto) and protobuf-ts (-text, │
//!  │   OrderManagement (seed, behind Orders)    │    │ +proto); HTTP/1.1, or h2 on TLS  │
//!  │ judges "RESULTS n {json}", the log, and    │◄───│ prints what each page observed   │
//!  │   what the handlers saw                    │    │ and Chromium's own log           │
//!  └────────────────────────────────────────────┘    └──────────────────────────────────┘
//! ```
//!
//! The page (`tests/browser/page.ts`) is bundled by `tests/browser/build.mjs` from code that
//! protoc-gen-es and protobuf-ts's plugin generate from `proto/` with Debian's protoc, into
//! `target/browser/` (nothing generated is checked in). It is loaded twice:
//!
//! | page origin | expected |
//! |---|---|
//! | `http://localhost:S` (not allowed) | every call fails in the browser ("Failed to fetch"); no handler runs |
//! | `http://127.0.0.1:S` (allowed) | per client: unary with metadata both ways, unary round trip of unicode text and of a 1 MiB message, server streaming (also failing ABORTED after its messages), NOT_FOUND and UNAUTHENTICATED with non-ASCII messages; `+proto` and `-text` both on the wire (the driver logs each call's content type) |
//!
//! Why these clients: Connect's `createGrpcWebTransport` is the maintained gRPC-Web client most
//! browser projects use, but it speaks only `+proto` (and JSON, which we do not serve);
//! protobuf-ts's `GrpcWebFetchTransport` also speaks `-text`, the base64 variant. The expected
//! values are computed here from the seeds (`examples/seeds/`), not copied from a run.
//!
//! HTTP/2: a browser speaks it only over TLS, so with feature `tls` too a second test serves
//! the same services over TLS (a certificate made for the run, exactly whose key Chromium is
//! told to accept) and the same page must pass with every call over `h2`. Chromium's own view
//! of each response (its DevTools protocol: the preflights and the HTTP version) is logged by
//! the driver and checked here. Not covered: client streaming (no browser client offers it).
//!
//! Bounds and clean-up: the page build and the browser run are each under a timeout (the Node
//! driver is sent SIGTERM, which makes playwright close Chromium, then SIGKILL); the static
//! server and the gRPC server stop when the test ends. Without `/usr/bin/chromium` (which
//! `tests/peers/setup.sh` installs from Debian) the test prints why and passes; without the
//! npm packages under `target/browser-node` it fails and says to run `tests/peers/setup.sh`.

mod common;
#[cfg(feature = "tls")]
#[path = "../examples/tls/pki.rs"]
mod pki;
#[path = "../examples/seeds/mod.rs"]
mod seeds;

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use bare_grpc::server::{Cors, Web};
use bare_grpc::{Metadata, Request, Response, ResponseSink, Server, Status, Streaming};
use bare_grpc_contracts::ecommerce::order_management_grpc::{
    OrderManagement, OrderManagementServer,
};
use bare_grpc_contracts::ecommerce::product_info_grpc::{ProductInfo, ProductInfoServer};
use bare_grpc_contracts::ecommerce::{CombinedShipment, Order, Product, ProductId};
use common::TestServer;
use seeds::order_management::{OrderManagementService, sample_orders};
use seeds::product_info::ProductInfoService;
use serde_json::{Value, json};

/// Where Debian's `chromium` package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Bound on generating and bundling the page.
const BUILD_TIMEOUT: Duration = Duration::from_secs(180);

/// Bound on one browser run (start-up dominates on a loaded machine); the driver's own bound
/// on each page is shorter, so it normally reports before this kills it.
const DRIVE_TIMEOUT: Duration = Duration::from_secs(240);
const PAGE_TIMEOUT_MS: u64 = 90_000;

/// What the page sends (the same values as `tests/browser/page.ts`).
const USER: &str = "ada-lovelace";
const TOKEN: &[u8] = &[0, 1, 2, 0x7f, 0x80, 0xfe, 0xff];
const PRODUCT_NAME: &str = "Çaydanlık ☕ kettle";
const PRODUCT_DESCRIPTION: &str = "Boils water — für Tee, 茶 and 🫖.";
const PRODUCT_PRICE: f32 = 12.5;
const QUERY: &str = "Google";
/// The large product's description: `BIG_UNIT` 64 Ki times (1 MiB of UTF-8).
const BIG_UNIT: &str = "😀茶ü-";
const BIG_REPEAT: usize = 64 * 1024;
const UNKNOWN_ID: &str = "nø-such-id ✓ 🚀";

/// The status message Shop answers a call without `x-shop-user` with: the interop test's
/// special characters (tab, CR LF, a BMP and a non-BMP character), percent-encoded on the wire.
const NO_USER: &str = "\t\r\nwho are you? x-shop-user is missing ☺ 😈\t\r\n";

/// What `searchOrders` with `x-shop-then-fail` ends with, after its messages: non-ASCII
/// characters and a literal `%`, which percent-encoding must itself encode.
const STREAM_FAILURE: &str = "stopped after the matches: 倉庫 closed 🔒, 100% sure";
/// The query of that call.
const FAILING_QUERY: &str = "Amazon";

/// The page's three clients, in the order it runs them.
const CLIENTS: [&str; 3] = [
    "connect-web grpc-web+proto",
    "protobuf-ts grpc-web-text",
    "protobuf-ts grpc-web+proto",
];

/// One `addProduct` as Shop's handler saw it.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    user: String,
    token: Vec<u8>,
    id: String,
}

/// The seed ProductInfo behind metadata a browser page sends and reads: `addProduct` needs
/// `x-shop-user` (UNAUTHENTICATED without it), records it with `x-shop-token-bin`, answers the
/// user in the response header `x-shop-seen-user` and, in the trailers, the catalogue's size
/// (`x-shop-products`) and the token's bytes (`x-shop-token-bin`).
#[derive(Default)]
struct Shop {
    catalogue: ProductInfoService,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ProductInfo for Shop {
    async fn add_product(&self, request: Request<Product>) -> Result<Response<ProductId>, Status> {
        let Some(user) = request.metadata().get("x-shop-user").map(str::to_owned) else {
            return Err(Status::unauthenticated(NO_USER));
        };
        let token = request
            .metadata()
            .get_bin("x-shop-token-bin")
            .unwrap_or_default();
        let product = request.into_inner();
        let id = self
            .catalogue
            .add_product(Request::new(product))
            .await?
            .into_inner();
        let count = {
            let mut seen = seeds::lock(&self.seen);
            seen.push(Seen {
                user: user.clone(),
                token: token.clone(),
                id: id.value.clone(),
            });
            seen.len()
        };
        let mut headers = Metadata::new();
        headers
            .insert("x-shop-seen-user", &user)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let mut trailers = Metadata::new();
        trailers
            .insert("x-shop-products", &count.to_string())
            .expect("ascii value");
        trailers
            .insert_bin("x-shop-token-bin", &token)
            .expect("binary value");
        Ok(Response::from_parts(headers, id, trailers))
    }

    async fn get_product(&self, request: Request<ProductId>) -> Result<Response<Product>, Status> {
        self.catalogue.get_product(request).await
    }
}

/// The seed OrderManagement, with one addition for the browser: a `searchOrders` call with
/// the header `x-shop-then-fail` streams the seed's matches and then fails ABORTED with
/// [`STREAM_FAILURE`], so the error status travels in the trailer frame after data frames
/// (every other error here is trailers-only).
struct Orders(OrderManagementService);

impl OrderManagement for Orders {
    async fn add_order(&self, request: Request<Order>) -> Result<Response<String>, Status> {
        self.0.add_order(request).await
    }

    async fn get_order(&self, request: Request<String>) -> Result<Response<Order>, Status> {
        self.0.get_order(request).await
    }

    async fn search_orders(
        &self,
        request: Request<String>,
        sink: ResponseSink<Order>,
    ) -> Result<(), Status> {
        let then_fail = request.metadata().get("x-shop-then-fail").is_some();
        self.0.search_orders(request, sink).await?;
        if then_fail {
            return Err(Status::aborted(STREAM_FAILURE));
        }
        Ok(())
    }

    async fn update_orders(
        &self,
        request: Request<Streaming<Order>>,
    ) -> Result<Response<String>, Status> {
        self.0.update_orders(request).await
    }

    async fn process_orders(
        &self,
        request: Request<Streaming<String>>,
        sink: ResponseSink<CombinedShipment>,
    ) -> Result<(), Status> {
        self.0.process_orders(request, sink).await
    }
}

/// The test's own origin: a static HTTP/1.1 server on a free loopback port that answers
/// `GET /` with the page's HTML and `GET /page.js` with the bundle, anything else 404. It stops
/// when dropped.
struct StaticSite {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

const PAGE_HTML: &str = "<!doctype html>\n<html><head><meta charset=\"utf-8\">\
<title>bare-grpc gRPC-Web browser test</title><link rel=\"icon\" href=\"data:,\"></head>\n<body><pre id=\"results\">running</pre>\
<script type=\"module\" src=\"/page.js\"></script></body></html>\n";

impl StaticSite {
    fn start(page_js: Vec<u8>) -> StaticSite {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    serve_file(conn, &page_js);
                }
            }
        });
        StaticSite {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

/// Answers one request on `conn`, then closes it (`connection: close`, so the browser never
/// waits on a kept-alive socket this one-at-a-time server does not read again).
fn serve_file(conn: TcpStream, page_js: &[u8]) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&conn);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // The rest of the head, up to the empty line; a GET has no body.
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
        line.clear();
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next(), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let (status, content_type, body): (&str, &str, &[u8]) = match (method, path) {
        (Some("GET"), "/") => ("200 OK", "text/html; charset=utf-8", PAGE_HTML.as_bytes()),
        (Some("GET"), "/page.js") => ("200 OK", "text/javascript; charset=utf-8", page_js),
        _ => ("404 Not Found", "text/plain", b"not found\n"),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         cache-control: no-store\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut conn = &conn;
    let _ = conn.write_all(head.as_bytes());
    let _ = conn.write_all(body);
    let _ = conn.shutdown(Shutdown::Both);
}

impl Drop for StaticSite {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Runs `cmd` from the repository root within `timeout`. On timeout: SIGTERM (the Node driver
/// then closes the browser it started), five seconds' grace, SIGKILL; then panics with the
/// output.
fn run_bounded(mut cmd: Command, timeout: Duration) -> Output {
    let description = format!("{cmd:?}");
    let child = cmd
        .current_dir(common::repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    let pid = child.id().to_string();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    if let Ok(output) = done_rx.recv_timeout(timeout) {
        return output.expect("child output");
    }
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let output = match done_rx.recv_timeout(Duration::from_secs(5)) {
        Ok(output) => output,
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            done_rx.recv().expect("child waiter")
        }
    }
    .expect("child output");
    panic!(
        "{description} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Panics with the child's output unless it exited 0.
fn check_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The npm packages the page and its driver need, as `tests/peers/setup.sh` installs them.
fn require_packages() {
    let modules = common::repo_root().join("target/browser-node/node_modules");
    for package in [
        "@connectrpc/connect-web",
        "@bufbuild/protoc-gen-es",
        "@protobuf-ts/grpcweb-transport",
        "@protobuf-ts/plugin",
        "esbuild",
        "playwright-core",
    ] {
        let manifest = modules.join(package).join("package.json");
        assert!(
            manifest.exists(),
            "{package} is not installed ({} missing): run tests/peers/setup.sh",
            manifest.display()
        );
    }
}

/// Generates the clients' code and bundles the page into `target/browser/`; returns the bundle.
fn build_page() -> Vec<u8> {
    let out_dir: PathBuf = common::repo_root().join("target/browser");
    let mut cmd = Command::new("node");
    cmd.arg("tests/browser/build.mjs").arg(&out_dir);
    let out = run_bounded(cmd, BUILD_TIMEOUT);
    check_success("building the page (tests/browser/build.mjs)", &out);
    std::fs::read(out_dir.join("page.js")).expect("target/browser/page.js")
}

/// Loads each URL in Chromium (one browser, a page per URL; with `trust_cert`, Chromium accepts
/// that certificate's key for HTTPS); returns what each page wrote and
/// the driver's log (each page's console, failed requests and responses, `drive: page N: …`).
fn drive(urls: &[String], trust_cert: Option<&Path>) -> (Vec<Value>, String) {
    let mut cmd = Command::new("node");
    cmd.arg("tests/browser/drive.mjs")
        .args(["--timeout-ms", &PAGE_TIMEOUT_MS.to_string()])
        .args(["--chromium", CHROMIUM]);
    if let Some(cert) = trust_cert {
        cmd.arg("--trust-cert").arg(cert);
    }
    for url in urls {
        cmd.args(["--url", url]);
    }
    let out = run_bounded(cmd, DRIVE_TIMEOUT);
    check_success("the browser run (tests/browser/drive.mjs)", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let results: Vec<Value> = (0..urls.len())
        .map(|n| {
            let prefix = format!("RESULTS {n} ");
            let line = stdout
                .lines()
                .find_map(|l| l.strip_prefix(&prefix))
                .unwrap_or_else(|| panic!("no results for page {n}\nstdout:\n{stdout}"));
            serde_json::from_str(line).expect("the page's results are JSON")
        })
        .collect();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    // Printed so a passing run still shows what the browser saw (cargo test --nocapture).
    eprintln!("{log}");
    (results, log)
}

/// The lines of the driver's log about page `n`.
fn page_log(log: &str, n: usize) -> Vec<&str> {
    let prefix = format!("drive: page {n}: ");
    log.lines().filter(|l| l.starts_with(&prefix)).collect()
}

/// Undoes percent-encoding (`%XX` → the byte), leniently as PROTOCOL-HTTP2 asks of a
/// `grpc-message` reader: protobuf-ts hands the page the trailer's value as it was sent.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `value` with every number as an `f64`: JSON has one number type, and the page's `1800` must
/// equal the seed's `1800.0_f32`.
fn numbers_as_f64(value: &Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map(Value::from).unwrap_or(Value::Null),
        Value::Array(items) => Value::Array(items.iter().map(numbers_as_f64).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), numbers_as_f64(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The error a step reported, as (code, message); panics with the step if it succeeded.
fn failure<'a>(run: &'a Value, step: &str) -> (i64, &'a str) {
    let error = &run[step]["error"];
    let code = error["code"].as_i64();
    let message = error["message"].as_str();
    match (code, message) {
        (Some(code), Some(message)) => (code, message),
        _ => panic!(
            "{}: {step} should have failed, the page saw {}",
            run["client"], run[step]
        ),
    }
}

/// The orders searchOrders(query) streams, from the seed's data, as the page records them.
fn expected_orders(query: &str) -> Value {
    let mut orders: Vec<_> = sample_orders()
        .into_iter()
        .filter(|o| o.items.iter().any(|item| item.contains(query)))
        .collect();
    orders.sort_by(|a, b| a.id.cmp(&b.id));
    assert!(orders.len() >= 2, "the query should match several orders");
    Value::Array(
        orders
            .iter()
            .map(|o| {
                json!({
                    "id": o.id,
                    "items": o.items,
                    "destination": o.destination,
                    "price": o.price as f64,
                })
            })
            .collect(),
    )
}

/// The allowed page: each client's observations against what Shop's handler did.
fn check_allowed_run(results: &Value, seen: &[Seen]) {
    assert!(
        results.get("fatal").is_none(),
        "the page failed: {}",
        results["fatal"]
    );
    let runs = results["runs"].as_array().expect("runs");
    let clients: Vec<&str> = runs.iter().filter_map(|r| r["client"].as_str()).collect();
    assert_eq!(clients, CLIENTS, "the page ran these clients");
    // The handler saw, per client in turn, the page's user and token: request metadata, both
    // an ASCII and a -bin value, crossed the preflight and the bridge.
    // Two adds per client: the small product, then the large one.
    let expected_seen: Vec<Seen> = (1..=2 * CLIENTS.len())
        .map(|n| Seen {
            user: USER.into(),
            token: TOKEN.to_vec(),
            id: n.to_string(),
        })
        .collect();
    assert_eq!(seen, expected_seen, "what addProduct's handler saw");

    for (n, run) in runs.iter().enumerate() {
        let client = &run["client"];
        let id = (2 * n + 1).to_string();
        // Unary, metadata both ways: the response header needs CORS's expose list; the
        // trailers travel in the body's final 0x80 frame.
        assert_eq!(
            numbers_as_f64(&run["addProduct"]),
            numbers_as_f64(&json!({"ok": {
                "id": id,
                "seenUser": USER,
                "products": id,
                "token": TOKEN,
            }})),
            "{client}: addProduct"
        );
        assert_eq!(
            numbers_as_f64(&run["getProduct"]),
            numbers_as_f64(&json!({"ok": {
                "id": id,
                "name": PRODUCT_NAME,
                "description": PRODUCT_DESCRIPTION,
                "price": PRODUCT_PRICE as f64,
            }})),
            "{client}: getProduct"
        );
        // 1 MiB each way: many HTTP chunks, and for -text many base64 blocks.
        assert_eq!(
            numbers_as_f64(&run["large"]),
            numbers_as_f64(&json!({"ok": {
                "id": (2 * n + 2).to_string(),
                // JavaScript counts UTF-16 units: the emoji is two.
                "length": BIG_UNIT.encode_utf16().count() * BIG_REPEAT,
                "same": true,
            }})),
            "{client}: a product with a 1 MiB description, added and read back"
        );
        assert_eq!(
            numbers_as_f64(&run["searchOrders"]),
            numbers_as_f64(&json!({ "ok": expected_orders(QUERY) })),
            "{client}: searchOrders (server streaming)"
        );
        // Connect percent-decodes grpc-message; protobuf-ts hands it over as sent.
        let decode = |m: &str| {
            if n == 0 {
                m.to_owned()
            } else {
                percent_decode(m)
            }
        };
        // Server streaming that fails after its messages: the data frames, then the error in
        // the trailer frame.
        let stream = &run["streamError"]["ok"];
        assert_eq!(
            numbers_as_f64(&stream["received"]),
            numbers_as_f64(&expected_orders(FAILING_QUERY)),
            "{client}: the messages before the stream's error"
        );
        let (code, message) = (
            stream["error"]["code"].as_i64(),
            stream["error"]["message"].as_str().map(decode),
        );
        assert_eq!(
            (code, message.as_deref()),
            (Some(10), Some(STREAM_FAILURE)),
            "{client}: the stream's error: {stream}"
        );
        let (code, message) = failure(run, "notFound");
        assert_eq!(
            (code, decode(message)),
            (5, format!("no product with id {UNKNOWN_ID:?}")),
            "{client}: getProduct of an unknown id"
        );
        let (code, message) = failure(run, "unauthenticated");
        assert_eq!(
            (code, decode(message)),
            (16, NO_USER.to_owned()),
            "{client}: addProduct without x-shop-user"
        );
    }
}

/// The page from an origin the server does not allow: the browser refuses every call after
/// the preflight, so every step fails and no handler runs.
fn check_refused_run(results: &Value) {
    let runs = results["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), CLIENTS.len(), "{results}");
    for run in runs {
        for step in [
            "addProduct",
            "getProduct",
            "large",
            "searchOrders",
            "notFound",
            "unauthenticated",
        ] {
            let (code, message) = failure(run, step);
            assert!(
                code != 0 && message.contains("Failed to fetch"),
                "{}: {step} from a refused origin: {code} {message:?}",
                run["client"]
            );
        }
        // streamError records its messages and its error side by side.
        let stream = &run["streamError"]["ok"];
        assert!(
            stream["received"] == json!([])
                && stream["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("Failed to fetch")),
            "{}: streamError from a refused origin: {stream}",
            run["client"]
        );
    }
}

/// The log lines Chromium's DevTools protocol gave for page `n`'s requests to `server`:
/// (kind, HTTP status, protocol) of each (`drive: page N: chromium <kind> <status> <protocol>
/// <url>`).
fn chromium_responses<'a>(
    log: &'a str,
    n: usize,
    server: &str,
) -> Vec<(&'a str, &'a str, &'a str)> {
    page_log(log, n)
        .into_iter()
        .filter_map(|l| {
            let mut words = l.split(" chromium ").nth(1)?.split(' ');
            let (kind, status, protocol, url) =
                (words.next()?, words.next()?, words.next()?, words.next()?);
            url.starts_with(server).then_some((kind, status, protocol))
        })
        .collect()
}

/// What Chromium itself saw of the allowed page's calls: each path's CORS preflight answered
/// 204, every call answered 200 over `protocol`, both gRPC-Web encodings sent and answered,
/// and no CORS complaint in the console.
fn check_allowed_log(log: &str, n: usize, server: &str, protocol: &str) {
    let responses = chromium_responses(log, n, server);
    let preflights: Vec<_> = responses.iter().filter(|r| r.0 == "Preflight").collect();
    let calls: Vec<_> = responses.iter().filter(|r| r.0 == "Fetch").collect();
    // Three paths (addProduct, getProduct, searchOrders); a preflight's answer is cached for
    // max-age, so each is asked at least once.
    assert!(
        preflights.len() >= 3 && preflights.iter().all(|r| r.1 == "204"),
        "preflights {preflights:?}\n{log}"
    );
    // Eight calls per client: addProduct, getProduct, two for the large product, two
    // searchOrders, and the two unary errors (gRPC errors are HTTP 200).
    assert_eq!(
        calls.len(),
        8 * CLIENTS.len(),
        "calls seen by Chromium\n{log}"
    );
    assert!(
        calls.iter().all(|r| r.1 == "200" && r.2 == protocol),
        "every call answered 200 over {protocol}: {calls:?}"
    );
    let cors_errors: Vec<&str> = page_log(log, n)
        .into_iter()
        .filter(|l| l.contains("CORS"))
        .collect();
    assert!(cors_errors.is_empty(), "the allowed page: {cors_errors:#?}");
    let lines = page_log(log, n);
    for content_type in ["application/grpc-web+proto", "application/grpc-web-text"] {
        for (what, marker) in [("sent", " sent POST "), ("answered", " got 200 POST ")] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.contains(marker)
                        && l.contains(&format!("content-type={content_type}"))),
                "no call {what} as {content_type}:\n{log}"
            );
        }
    }
}

/// The page and the test's static site, or `None` (with the reason printed) when this machine
/// has no Chromium. The page is built once per test binary.
fn prepare() -> Option<StaticSite> {
    if !Path::new(CHROMIUM).exists() {
        eprintln!(
            "skipped: {CHROMIUM} is missing (tests/peers/setup.sh installs Debian's chromium; \
             it could not on this machine)"
        );
        return None;
    }
    static PAGE: OnceLock<Vec<u8>> = OnceLock::new();
    let page_js = PAGE.get_or_init(|| {
        require_packages();
        build_page()
    });
    Some(StaticSite::start(page_js.clone()))
}

/// The runtime the gRPC server runs on while the test thread waits on the browser.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Shop and the seed OrderManagement with gRPC-Web, CORS allowing `origin` (with Shop's
/// headers allowed and `x-shop-seen-user` exposed), on a free loopback port; returns the
/// server and what Shop's handler will record.
fn grpc_server(
    builder: bare_grpc::server::Builder,
    origin: &str,
) -> (Server, Arc<Mutex<Vec<Seen>>>) {
    let shop = Shop::default();
    let seen = shop.seen.clone();
    let cors = Cors::new()
        .allow_origin(origin)
        .allow_headers(["x-shop-user", "x-shop-token-bin", "x-shop-then-fail"])
        .expose_headers(["x-shop-seen-user"]);
    let server = builder
        .add_service(ProductInfoServer::new(shop))
        .add_service(OrderManagementServer::new(Orders(
            OrderManagementService::with_orders(sample_orders()),
        )))
        .web(Web::new().cors(cors))
        .build();
    (server, seen)
}

/// HTTP/1.1 (a browser speaks HTTP/2 only over TLS): a refused origin, then the allowed one.
#[test]
fn browser_calls_grpc_web() {
    let Some(site) = prepare() else { return };
    let allowed_origin = format!("http://127.0.0.1:{}", site.port);
    let refused_origin = format!("http://localhost:{}", site.port);
    let runtime = runtime();
    let (server, seen) = grpc_server(Server::builder(), &allowed_origin);
    let mut server = runtime.block_on(TestServer::start(server));
    let grpc = format!("http://127.0.0.1:{}", server.addr.port());

    // The refused origin first: the server keeps serving after refusing its preflights.
    let page = |origin: &str| format!("{origin}/?server={grpc}");
    let (results, log) = drive(&[page(&refused_origin), page(&allowed_origin)], None);
    let seen = seeds::lock(&seen).clone();

    check_refused_run(&results[0]);
    // The refusal was the browser's CORS check: every preflight answered 403, no call sent,
    // and Chromium's console says why.
    let refused = chromium_responses(&log, 0, &grpc);
    assert!(
        !refused.is_empty() && refused.iter().all(|r| r.0 == "Preflight" && r.1 == "403"),
        "the refused page: {refused:?}\n{log}"
    );
    assert!(
        page_log(&log, 0)
            .iter()
            .any(|l| l.contains("has been blocked by CORS policy")),
        "the refused page's calls should fail Chromium's CORS check:\n{log}"
    );
    check_allowed_log(&log, 1, &grpc, "http/1.1");
    check_allowed_run(&results[1], &seen);
    eprintln!(
        "{} from {allowed_origin} over HTTP/1.1: {} clients passed",
        results[1]["browser"],
        CLIENTS.len()
    );

    runtime
        .block_on(server.shutdown())
        .expect("server task")
        .expect("server stopped cleanly");
    drop(site);
}

/// HTTP/2 from the browser (feature `tls` too): the server over TLS (ALPN h2) with a
/// certificate made for this run; Chromium trusts exactly that certificate's key
/// (`--ignore-certificate-errors-spki-list`, computed by the driver from the PEM), and the page
/// stays on its cleartext origin, so the calls are cross-origin and over HTTP/2.
#[cfg(feature = "tls")]
#[test]
fn browser_calls_grpc_web_over_tls_h2() {
    use bare_grpc::tls::{Identity, ServerTls};

    let Some(site) = prepare() else { return };
    let allowed_origin = format!("http://127.0.0.1:{}", site.port);
    let ca = pki::Ca::new("bare-grpc browser test CA");
    let leaf = ca.leaf(&pki::Leaf {
        name: "bare-grpc browser test server",
        dns: &["localhost"],
        ips: &["127.0.0.1".parse().expect("ip")],
        ..Default::default()
    });
    let dir = common::repo_root()
        .join("target/browser-tls")
        .join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).expect("create target/browser-tls");
    let cert = dir.join("server.pem");
    std::fs::write(&cert, &leaf.cert).expect("write the certificate");
    let tls = ServerTls::new(Identity::from_pem(&leaf.cert, &leaf.key).expect("identity"))
        .expect("server TLS");

    let runtime = runtime();
    let (server, seen) = grpc_server(Server::builder().tls(tls), &allowed_origin);
    let mut server = runtime.block_on(TestServer::start(server));
    let grpc = format!("https://127.0.0.1:{}", server.addr.port());

    let (results, log) = drive(&[format!("{allowed_origin}/?server={grpc}")], Some(&cert));
    let seen = seeds::lock(&seen).clone();
    check_allowed_log(&log, 0, &grpc, "h2");
    check_allowed_run(&results[0], &seen);
    eprintln!(
        "{} from {allowed_origin} over HTTP/2 and TLS: {} clients passed",
        results[0]["browser"],
        CLIENTS.len()
    );

    runtime
        .block_on(server.shutdown())
        .expect("server task")
        .expect("server stopped cleanly");
    drop(site);
    let _ = std::fs::remove_dir_all(&dir);
}

//! bare-grpc behind nginx (Debian's package, started by the test): every interop case of
//! gRPC's [interop-test-descriptions.md] passes through `grpc_pass` to an `upstream` block of
//! two bare-grpc instances, h2c to nginx and h2c upstream, with grpc-go's client and ours;
//! and 4 MiB messages both ways with `client_max_body_size` set as a user sets it.
//!
//! ```text
//!   grpc-go client ─┐  h2c   ┌──────────────────────┐  h2c (keepalive)  ┌─ bare-grpc #1
//!                   ├───────▶│ nginx  listen http2   │──────────────────▶┤
//!   our client ─────┘        │ grpc_pass grpc://…    │                   └─ bare-grpc #2
//!                            └──────────────────────┘
//! ```
//!
//! The rule: nginx is an HTTP/2 proxy that forwards gRPC's HEADERS, DATA and trailers
//! (PROTOCOL-HTTP2 § Requests, § Responses); a case passing through it shows that nothing the
//! spec needs is dropped or rewritten on the way (metadata both ways, `-bin` trailers,
//! `grpc-timeout`, percent-encoded `grpc-message`, `grpc-encoding`, RST_STREAM on cancel).
//!
//! [interop-test-descriptions.md]: https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md

mod common;
mod go;
mod nginx_support;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use bare_grpc::{Channel, Code, Request, Response, Server, Status};
use bare_grpc_contracts::grpc_testing::test_service_grpc::TestServiceClient;
use bare_grpc_contracts::grpc_testing::{Payload, SimpleRequest};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterClient, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};
use common::TestServer;
use nginx_support::{Nginx, Options};

/// nginx in front of two bare-grpc instances, once per test binary.
fn proxy() -> SocketAddr {
    static NGINX: OnceLock<Nginx> = OnceLock::new();
    NGINX
        .get_or_init(|| {
            Nginx::start(&Options {
                upstreams: nginx_support::start_backends(2),
                ..Default::default()
            })
        })
        .addr
}

/// One case with the grpc-go client through nginx.
fn run_go_case(case: &str) {
    let client = Command::new(&go::binaries().client);
    common::interop::run_client_case(client, proxy(), case, "grpc-go client via nginx");
}

/// One case with our client through nginx.
fn run_rust_case(case: &str) {
    let client = Command::new(common::interop::rust_interop_client());
    common::interop::run_client_case(client, proxy(), case, "bare-grpc client via nginx");
}

mod go_client {
    super::common::interop::interop_cases!(super::run_go_case);
}

mod rust_client {
    super::common::interop::interop_cases!(super::run_rust_case);
}

/// The largest message gRPC accepts by default (4 MiB) minus the SimpleRequest/Response
/// framing around the payload bytes.
const NEAR_4_MIB: usize = 4 * 1024 * 1024 - 64;

/// A 4 MiB request and a 4 MiB response through nginx (`client_max_body_size 8m`).
#[tokio::test]
async fn four_mib_messages_both_ways() {
    let channel = Channel::builder(&proxy().to_string())
        .unwrap()
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await
        .expect("connect to nginx");
    let reply = tokio::time::timeout(
        Duration::from_secs(60),
        TestServiceClient::new(channel).unary_call(SimpleRequest {
            response_size: NEAR_4_MIB as i32,
            payload: Some(Payload {
                body: vec![7; NEAR_4_MIB],
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
    .await
    .expect("bounded")
    .expect("4 MiB unary call through nginx");
    let body = reply.into_inner().payload.expect("payload").body;
    assert_eq!(body.len(), NEAR_4_MIB);
    assert!(body.iter().all(|&b| b == 0), "interop payloads are zeros");
}

/// A grpc-go client's 4 MiB-class large_unary-style calls are covered by the cases above;
/// here nginx's own limit: a body over `client_max_body_size` is refused by nginx (413), and
/// our client reads that as the HTTP-to-gRPC mapping says, with nginx's words in the message.
#[tokio::test]
async fn over_client_max_body_size_is_nginx_413() {
    static SMALL: OnceLock<Nginx> = OnceLock::new();
    let addr = SMALL
        .get_or_init(|| {
            Nginx::start(&Options {
                upstreams: nginx_support::start_backends(1),
                client_max_body_size: "1m",
                ..Default::default()
            })
        })
        .addr;
    let channel = Channel::builder(&addr.to_string())
        .unwrap()
        .connect()
        .await
        .expect("connect to nginx");
    let status = tokio::time::timeout(
        Duration::from_secs(30),
        TestServiceClient::new(channel).unary_call(SimpleRequest {
            payload: Some(Payload {
                body: vec![0; 2 * 1024 * 1024],
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
    .await
    .expect("bounded")
    .expect_err("nginx refuses a 2 MiB body under client_max_body_size 1m");
    // http-grpc-status-mapping.md has no row for 413: UNKNOWN; nginx's page says why.
    assert_eq!(status.code(), Code::Unknown, "{status:?}");
    assert!(
        status.message().contains("HTTP status 413")
            && status.message().contains("413 Request Entity Too Large"),
        "nginx's page text belongs in the message: {status:?}"
    );
}

/// A Greeter that says who called it: the forwarding headers nginx set, and the peer address
/// the connection came from; a request named `slow` takes 3 s, one named `busy` 300 ms.
struct WhoCalled;

impl Greeter for WhoCalled {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let pause = match request.get_ref().name.as_str() {
            "slow" => Duration::from_secs(3),
            "busy" => Duration::from_millis(300),
            _ => Duration::ZERO,
        };
        tokio::time::sleep(pause).await;
        let metadata = request.metadata();
        let message = format!(
            "xff={} forwarded={} peer={}",
            metadata.get("x-forwarded-for").unwrap_or("-"),
            metadata.get("forwarded").unwrap_or("-"),
            request
                .peer()
                .addr()
                .map_or_else(|| "-".to_owned(), |addr| addr.to_string()),
        );
        Ok(Response::new(HelloReply { message }))
    }
}

fn who_called() -> Server {
    Server::builder()
        .add_service(GreeterServer::new(WhoCalled))
        .build()
}

/// One SayHello through `addr` with a 20 s bound.
async fn hello(addr: SocketAddr, name: &str) -> Result<String, Status> {
    let channel = Channel::builder(&addr.to_string())?
        .connect_timeout(Duration::from_secs(10))
        .connect()
        .await?;
    let reply = tokio::time::timeout(
        Duration::from_secs(20),
        GreeterClient::new(channel).say_hello(HelloRequest {
            name: name.to_owned(),
        }),
    )
    .await
    .map_err(|_| Status::deadline_exceeded("test bound"))??;
    Ok(reply.into_inner().message)
}

/// nginx's own 502 (its only upstream is down) reaches our client as UNAVAILABLE
/// (http-grpc-status-mapping.md: 502 → UNAVAILABLE), with nginx's page text in the message.
#[tokio::test]
async fn nginx_502_all_upstreams_down_is_unavailable_with_its_text() {
    // A port nobody listens on: bind, note, close.
    let down = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nginx = tokio::task::spawn_blocking(move || {
        Nginx::start(&Options {
            upstreams: vec![down],
            ..Default::default()
        })
    })
    .await
    .unwrap();
    let status = hello(nginx.addr, "x").await.expect_err("no upstream is up");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("HTTP status 502")
            && status.message().contains("502 Bad Gateway")
            && status.message().contains("nginx/"),
        "nginx's page text belongs in the message: {status:?}"
    );
}

/// nginx's own 504 (the upstream answers later than `grpc_read_timeout`) reaches our client as
/// UNAVAILABLE with nginx's text; the instance behind it goes on serving.
#[tokio::test]
async fn nginx_504_upstream_timeout_is_unavailable_with_its_text() {
    let backend = TestServer::start(who_called()).await;
    let upstream = backend.addr;
    let nginx = tokio::task::spawn_blocking(move || {
        Nginx::start(&Options {
            upstreams: vec![upstream],
            read_timeout: "1s",
            ..Default::default()
        })
    })
    .await
    .unwrap();
    let status = hello(nginx.addr, "slow").await.expect_err("nginx gives up");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("HTTP status 504")
            && status.message().contains("504 Gateway Time-out"),
        "nginx's page text belongs in the message: {status:?}"
    );
    assert!(hello(nginx.addr, "fast").await.is_ok());
}

/// What nginx adds for the handler: `x-forwarded-for` and `forwarded` as metadata, and the
/// peer address is nginx's side of the upstream connection (loopback, not the client's port).
#[tokio::test]
async fn forwarding_headers_and_peer_reach_the_handler() {
    let backend = TestServer::start(who_called()).await;
    let upstream = backend.addr;
    let nginx = tokio::task::spawn_blocking(move || {
        Nginx::start(&Options {
            upstreams: vec![upstream],
            ..Default::default()
        })
    })
    .await
    .unwrap();
    let message = hello(nginx.addr, "x").await.expect("call through nginx");
    assert!(
        message.starts_with("xff=127.0.0.1 forwarded=for=127.0.0.1;proto=http peer=127.0.0.1:"),
        "{message}"
    );
    // Directly, no proxy: no forwarding headers.
    let direct = hello(upstream, "x").await.expect("direct call");
    assert!(
        direct.starts_with("xff=- forwarded=- peer=127.0.0.1:"),
        "{direct}"
    );
}

/// A draining instance: mid-load, one of two instances shuts down gracefully (GOAWAY, then
/// it finishes its streams); nginx finishes the calls in flight on it and sends the new ones
/// to the other instance. No call fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_stop_of_one_instance_mid_load_fails_nothing() {
    let mut first = TestServer::start(who_called()).await;
    let second = TestServer::start(who_called()).await;
    let upstreams = vec![first.addr, second.addr];
    let nginx = tokio::task::spawn_blocking(move || {
        Nginx::start(&Options {
            upstreams,
            ..Default::default()
        })
    })
    .await
    .unwrap();
    let channel = Channel::builder(&nginx.addr.to_string())
        .unwrap()
        .connect()
        .await
        .expect("connect to nginx");
    let client = GreeterClient::new(channel);
    // 8 callers, each making 300 ms calls back to back for 3 s.
    let until = tokio::time::Instant::now() + Duration::from_secs(3);
    let callers: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut done = 0u32;
                while tokio::time::Instant::now() < until {
                    let reply = tokio::time::timeout(
                        Duration::from_secs(20),
                        client.say_hello(HelloRequest {
                            name: "busy".to_owned(),
                        }),
                    )
                    .await;
                    match reply {
                        Ok(Ok(_)) => done += 1,
                        Ok(Err(status)) => return Err(status),
                        Err(_) => return Err(Status::deadline_exceeded("test bound")),
                    }
                }
                Ok(done)
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let drained = first.shutdown();
    let drained = tokio::time::timeout(Duration::from_secs(20), drained)
        .await
        .expect("the instance drains within 20 s")
        .unwrap();
    assert!(drained.is_ok(), "{drained:?}");
    let mut total = 0;
    for caller in callers {
        match caller.await.unwrap() {
            Ok(done) => total += done,
            Err(status) => panic!(
                "a call failed during the drain: {status:?}\nnginx error log:\n{}",
                nginx.error_log()
            ),
        }
    }
    // 8 callers × 3 s / 300 ms: about 80 calls, all of them OK.
    assert!(total >= 40, "only {total} calls completed");
}

/// nginx runs unprivileged: under root (CI) every nginx process, master and worker, has
/// `nobody`'s real, effective, saved and filesystem user and group ids and no supplementary
/// groups; otherwise the invoking user's. Read from /proc/PID/status of the running processes.
#[test]
fn nginx_runs_unprivileged() {
    let nginx = Nginx::start(&Options {
        upstreams: nginx_support::start_backends(1),
        ..Default::default()
    });
    let own = |key: &str| ids(&std::fs::read_to_string("/proc/self/status").unwrap(), key)[1];
    let (uid, gid) = nginx_support::run_as().unwrap_or_else(|| (own("Uid:"), own("Gid:")));
    // The port accepts once the master listens, which can be just before it forks the worker.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pids = loop {
        let pids = nginx.pids();
        if pids.len() >= 2 || std::time::Instant::now() > deadline {
            break pids;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(pids.len() >= 2, "a master and a worker: {pids:?}");
    for pid in pids {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(status.contains("Name:\tnginx"), "{status}");
        assert_eq!(ids(&status, "Uid:"), [uid; 4], "pid {pid}:\n{status}");
        assert_eq!(ids(&status, "Gid:"), [gid; 4], "pid {pid}:\n{status}");
        if nginx_support::run_as().is_some() {
            assert_eq!(ids(&status, "Groups:"), Vec::<u32>::new(), "pid {pid}");
            assert_ne!(uid, 0);
        }
    }
}

/// The numbers on the `key` line of a /proc/PID/status.
fn ids(status: &str, key: &str) -> Vec<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .split_whitespace()
        .map(|id| id.parse().unwrap())
        .collect()
}

/// A user's own HTML error page, as sites configure it (`error_page 502 504 /grpc_error.html`).
const HTML_ERROR_PAGE: &str = "error_page 502 504 413 /grpc_error.html;
        location = /grpc_error.html {
            internal;
            root html;
        }
";

fn html_error_page() -> Vec<(&'static str, String)> {
    vec![(
        "grpc_error.html",
        "<!DOCTYPE html>\n<html><head><title>Sorry</title></head>\n<body><h1>Service \
         unavailable</h1>\n<p>example.com is being upgraded, try again in 5 minutes.</p>\n\
         </body></html>\n"
            .to_owned(),
    )]
}

/// The page's words as our client quotes them (tags stripped, whitespace folded).
const HTML_ERROR_WORDS: &str =
    "Sorry Service unavailable example.com is being upgraded, try again in 5 minutes.";

/// nginx's documented gRPC-friendly error pages: an internal location that answers with the
/// gRPC status as headers (`add_header grpc-status`, `return 204`), so that a gRPC client reads
/// a status instead of an HTTP error.
const GRPC_ERROR_PAGES: &str = "error_page 502 504 = /error502grpc;
        error_page 413 = /error413grpc;
        location = /error502grpc {
            internal;
            default_type application/grpc;
            add_header grpc-status 14;
            add_header grpc-message \"unavailable\";
            return 204;
        }
        location = /error413grpc {
            internal;
            default_type application/grpc;
            add_header grpc-status 8;
            add_header grpc-message \"request too large\";
            return 204;
        }
";

/// nginx in front of `upstreams` with `server_extra` and `html`, started off the runtime.
async fn nginx_with(
    upstreams: Vec<SocketAddr>,
    server_extra: &'static str,
    html: Vec<(&'static str, String)>,
    client_max_body_size: &'static str,
    read_timeout: &'static str,
) -> Nginx {
    tokio::task::spawn_blocking(move || {
        Nginx::start(&Options {
            upstreams,
            server_extra: server_extra.to_owned(),
            html,
            client_max_body_size,
            read_timeout,
            ..Default::default()
        })
    })
    .await
    .unwrap()
}

/// A port nobody listens on: bind, note, close.
fn down_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A 2 MiB UnaryCall through `addr` (over `client_max_body_size 1m`): the status it ends with.
async fn too_large(addr: SocketAddr) -> Status {
    let channel = Channel::builder(&addr.to_string())
        .unwrap()
        .connect()
        .await
        .expect("connect to nginx");
    tokio::time::timeout(
        Duration::from_secs(30),
        TestServiceClient::new(channel).unary_call(SimpleRequest {
            payload: Some(Payload {
                body: vec![0; 2 * 1024 * 1024],
                ..Default::default()
            }),
            ..Default::default()
        }),
    )
    .await
    .expect("bounded")
    .expect_err("nginx refuses a 2 MiB body under client_max_body_size 1m")
}

/// A custom HTML page (`error_page 502 504 413 /grpc_error.html`) keeps nginx's HTTP status,
/// so our client maps the status as http-grpc-status-mapping.md says (502 and 504 →
/// UNAVAILABLE, 413 has no row → UNKNOWN), and quotes the user's page instead of nginx's.
#[tokio::test]
async fn custom_html_error_page_keeps_the_http_mapping_with_its_text() {
    let check = |status: Status, code: Code, http: &str| {
        assert_eq!(status.code(), code, "{status:?}");
        assert_eq!(
            status.message(),
            format!("HTTP status {http} without a usable grpc-status: {HTML_ERROR_WORDS}"),
        );
    };
    // 502: the only upstream is down.
    let nginx = nginx_with(
        vec![down_port()],
        HTML_ERROR_PAGE,
        html_error_page(),
        "",
        "",
    )
    .await;
    let status = hello(nginx.addr, "x").await.expect_err("no upstream is up");
    check(status, Code::Unavailable, "502 Bad Gateway");
    // 504: the upstream answers later than grpc_read_timeout.
    let backend = TestServer::start(who_called()).await;
    let nginx = nginx_with(
        vec![backend.addr],
        HTML_ERROR_PAGE,
        html_error_page(),
        "",
        "1s",
    )
    .await;
    let status = hello(nginx.addr, "slow").await.expect_err("nginx gives up");
    check(status, Code::Unavailable, "504 Gateway Timeout");
    assert!(hello(nginx.addr, "fast").await.is_ok());
    // 413: the body is over client_max_body_size.
    let nginx = nginx_with(
        nginx_support::start_backends(1),
        HTML_ERROR_PAGE,
        html_error_page(),
        "1m",
        "",
    )
    .await;
    check(
        too_large(nginx.addr).await,
        Code::Unknown,
        "413 Payload Too Large",
    );
}

/// nginx's gRPC-friendly error pages answer `:status 204` with `grpc-status` and
/// `grpc-message` headers: a grpc-status present wins over the HTTP mapping
/// (http-grpc-status-mapping.md), so our client reports exactly what the page sets:
/// UNAVAILABLE "unavailable" for 502 and 504, RESOURCE_EXHAUSTED "request too large" for 413.
#[tokio::test]
async fn grpc_error_pages_are_the_status_they_set() {
    let nginx = nginx_with(vec![down_port()], GRPC_ERROR_PAGES, Vec::new(), "", "").await;
    let status = hello(nginx.addr, "x").await.expect_err("no upstream is up");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "unavailable");

    let backend = TestServer::start(who_called()).await;
    let nginx = nginx_with(vec![backend.addr], GRPC_ERROR_PAGES, Vec::new(), "", "1s").await;
    let status = hello(nginx.addr, "slow").await.expect_err("nginx gives up");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.message(), "unavailable");

    let nginx = nginx_with(
        nginx_support::start_backends(1),
        GRPC_ERROR_PAGES,
        Vec::new(),
        "1m",
        "",
    )
    .await;
    let status = too_large(nginx.addr).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(status.message(), "request too large");
}

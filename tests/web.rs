//! gRPC-Web on the server's own port (feature `web`, docs/web.md), driven by real HTTP clients:
//! hyper's HTTP/1.1 client and the `h2` crate's HTTP/2 client, each sending gRPC-Web as a
//! browser's client library does (PROTOCOL-WEB), to the interop TestService. Every case runs
//! over both HTTP versions; every bad input is followed by a good call.
//!
//! The browser test (a real gRPC-Web client library in Chromium) is its own target.

mod common;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bare_grpc::Server;
use bare_grpc::server::{Cors, Web};
use bare_grpc_contracts::grpc_testing::test_service_grpc::TestServiceClient;
use bare_grpc_contracts::grpc_testing::{
    EchoStatus, ResponseParameters, SimpleRequest, SimpleResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};
use bytes::Bytes;
use common::TestServer;
use http_body_util::{BodyExt, Full};
use prost::Message;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

const UNARY: &str = "/grpc.testing.TestService/UnaryCall";
const STREAMING_OUTPUT: &str = "/grpc.testing.TestService/StreamingOutputCall";
const STREAMING_INPUT: &str = "/grpc.testing.TestService/StreamingInputCall";
const FULL_DUPLEX: &str = "/grpc.testing.TestService/FullDuplexCall";
const BINARY: &str = "application/grpc-web+proto";
const TEXT: &str = "application/grpc-web-text+proto";

/// The interop status message with tabs, CR/LF, a BMP and a non-BMP character.
const SPECIAL: &str = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";

#[derive(Clone, Copy, Debug)]
enum Version {
    Http1,
    Http2,
}

const VERSIONS: [Version; 2] = [Version::Http1, Version::Http2];

/// What came back: the HTTP status, the headers, the body as sent.
struct Reply {
    status: u16,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// A decoded gRPC-Web response: its messages and its status fields (from the trailer frame,
/// or from the headers of a trailers-only answer).
#[derive(Debug)]
struct Decoded {
    messages: Vec<Vec<u8>>,
    trailers: HashMap<String, String>,
}

impl Reply {
    fn decode(&self) -> Decoded {
        assert_eq!(
            self.status,
            200,
            "HTTP status; body {:?}",
            String::from_utf8_lossy(&self.body)
        );
        let content_type = self.headers["content-type"].to_str().unwrap().to_owned();
        let bytes = if content_type.starts_with("application/grpc-web-text") {
            decode_text(&self.body)
        } else {
            assert!(
                content_type.starts_with("application/grpc-web"),
                "{content_type}"
            );
            self.body.clone()
        };
        let mut messages = Vec::new();
        let mut trailers = HashMap::new();
        let mut rest = &bytes[..];
        let mut saw_trailers = false;
        while !rest.is_empty() {
            assert!(!saw_trailers, "nothing may follow the trailer frame");
            let flag = rest[0];
            let len = u32::from_be_bytes(rest[1..5].try_into().unwrap()) as usize;
            let payload = &rest[5..5 + len];
            rest = &rest[5 + len..];
            if flag & 0x80 != 0 {
                saw_trailers = true;
                let block = std::str::from_utf8(payload).unwrap();
                for line in block.split("\r\n").filter(|l| !l.is_empty()) {
                    let (name, value) = line.split_once(": ").expect("name: value");
                    assert_eq!(name, name.to_ascii_lowercase(), "lower-case names");
                    trailers.insert(name.to_owned(), value.to_owned());
                }
            } else {
                assert_eq!(flag, 0);
                messages.push(payload.to_vec());
            }
        }
        if !saw_trailers {
            // Trailers-only: the status is in the headers, and the body is empty.
            assert!(bytes.is_empty(), "a body without a trailer frame");
            for (name, value) in &self.headers {
                if name.as_str().starts_with("grpc-") {
                    trailers.insert(name.to_string(), value.to_str().unwrap().to_owned());
                }
            }
        }
        Decoded { messages, trailers }
    }
}

impl Decoded {
    fn code(&self) -> i32 {
        self.trailers
            .get("grpc-status")
            .unwrap_or_else(|| panic!("no grpc-status in {:?}", self.trailers))
            .parse()
            .unwrap()
    }

    fn message(&self) -> String {
        percent_decode(self.trailers.get("grpc-message").map_or("", |s| s.as_str()))
    }
}

/// Base64 with padding allowed at any 4-character boundary (PROTOCOL-WEB § Text-encoded
/// streams), written here independently of the server's decoder.
fn decode_text(text: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    assert_eq!(text.len() % 4, 0, "text body in whole groups");
    let mut out = Vec::new();
    for group in text.chunks(4) {
        let pads = group.iter().filter(|&&c| c == b'=').count();
        let mut acc = 0u32;
        for &c in &group[..4 - pads] {
            acc = acc << 6 | ALPHABET.iter().position(|&a| a == c).expect("alphabet") as u32;
        }
        acc <<= 6 * pads;
        out.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8][..3 - pads]);
    }
    out
}

fn encode_text(data: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let acc = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                ALPHABET[(acc >> (18 - 6 * i) & 63) as usize]
            } else {
                b'='
            });
        }
    }
    out
}

fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// One length-prefixed message.
fn framed(message: &impl Message) -> Vec<u8> {
    let bytes = message.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(&bytes);
    out
}

/// The request body for `content_type`: base64 for the -text types.
fn body_for(content_type: &str, framed: &[u8]) -> Vec<u8> {
    if content_type.contains("-text") {
        encode_text(framed)
    } else {
        framed.to_vec()
    }
}

/// A request as a browser's gRPC-Web library sends it.
fn request(path: &str, content_type: &str, body: Vec<u8>) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", content_type)
        .header("x-grpc-web", "1")
        .header("x-user-agent", "grpc-web-javascript/0.1")
        .body(body)
        .unwrap()
}

/// Sends `request` on a fresh connection of `version` and reads the whole answer.
async fn send(addr: SocketAddr, version: Version, request: http::Request<Vec<u8>>) -> Reply {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    let (parts, body) = request.into_parts();
    match version {
        Version::Http1 => {
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake::<_, Full<Bytes>>(Io(tcp))
                    .await
                    .unwrap();
            let driver = tokio::spawn(connection);
            let mut request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
            request
                .headers_mut()
                .insert("host", addr.to_string().parse().unwrap());
            let response = sender.send_request(request).await.unwrap();
            let (head, body) = response.into_parts();
            let body = body.collect().await.unwrap().to_bytes().to_vec();
            drop(sender);
            let _ = driver.await;
            Reply {
                status: head.status.as_u16(),
                headers: head.headers,
                body,
            }
        }
        Version::Http2 => {
            let (sender, connection) = h2::client::handshake(tcp).await.unwrap();
            let driver = tokio::spawn(connection);
            let mut sender = sender.ready().await.unwrap();
            let uri = format!("http://{addr}{}", parts.uri.path());
            let mut request = http::Request::from_parts(parts, ());
            *request.uri_mut() = uri.parse().unwrap();
            let (response, mut stream) = sender.send_request(request, false).unwrap();
            stream.send_data(Bytes::from(body), true).unwrap();
            let response = response.await.unwrap();
            let (head, mut recv) = response.into_parts();
            let mut body = Vec::new();
            while let Some(chunk) = recv.data().await {
                let chunk = chunk.unwrap();
                let _ = recv.flow_control().release_capacity(chunk.len());
                body.extend_from_slice(&chunk);
            }
            drop(sender);
            driver.abort();
            Reply {
                status: head.status.as_u16(),
                headers: head.headers,
                body,
            }
        }
    }
}

fn server(web: Web) -> Server {
    Server::builder()
        .web(web)
        .max_receive_message_size(64 * 1024)
        .add_service(common::test_service::test_service())
        .build()
}

fn simple(size: i32) -> SimpleRequest {
    SimpleRequest {
        response_size: size,
        ..Default::default()
    }
}

/// A good unary call, checked: the server is still serving.
async fn good_call(addr: SocketAddr, version: Version) {
    let reply = send(addr, version, request(UNARY, BINARY, framed(&simple(7)))).await;
    let decoded = reply.decode();
    assert_eq!(decoded.code(), 0, "{decoded:?}");
    let response = SimpleResponse::decode(&decoded.messages[0][..]).unwrap();
    assert_eq!(response.payload.unwrap().body.len(), 7);
}

#[tokio::test]
async fn unary_binary_and_text_over_both_versions() {
    let server = TestServer::start(server(Web::new())).await;
    for version in VERSIONS {
        for content_type in [
            BINARY,
            TEXT,
            "application/grpc-web",
            "application/grpc-web-text",
        ] {
            let body = body_for(content_type, &framed(&simple(314)));
            let reply = send(server.addr, version, request(UNARY, content_type, body)).await;
            let want_type = if content_type.contains("-text") {
                TEXT
            } else {
                BINARY
            };
            assert_eq!(reply.headers["content-type"], want_type, "{version:?}");
            if content_type.contains("-text") {
                assert!(
                    reply
                        .body
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || b"+/=".contains(c))
                );
            }
            let decoded = reply.decode();
            assert_eq!(decoded.code(), 0, "{version:?} {content_type}: {decoded:?}");
            assert_eq!(decoded.messages.len(), 1);
            let response = SimpleResponse::decode(&decoded.messages[0][..]).unwrap();
            assert_eq!(response.payload.unwrap().body, vec![0; 314]);
        }
    }
}

#[tokio::test]
async fn server_streaming_over_both_versions() {
    let server = TestServer::start(server(Web::new())).await;
    let sizes = [31415, 9, 2653, 58979];
    let message = StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|&size| ResponseParameters {
                size,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    for version in VERSIONS {
        for content_type in [BINARY, TEXT] {
            let body = body_for(content_type, &framed(&message));
            let reply = send(
                server.addr,
                version,
                request(STREAMING_OUTPUT, content_type, body),
            )
            .await;
            let decoded = reply.decode();
            assert_eq!(decoded.code(), 0, "{version:?} {content_type}: {decoded:?}");
            let got: Vec<usize> = decoded
                .messages
                .iter()
                .map(|m| {
                    StreamingOutputCallResponse::decode(&m[..])
                        .unwrap()
                        .payload
                        .unwrap()
                        .body
                        .len()
                })
                .collect();
            assert_eq!(got, sizes.map(|s| s as usize).to_vec());
        }
    }
}

#[tokio::test]
async fn metadata_both_ways() {
    let server = TestServer::start(server(Web::new())).await;
    for version in VERSIONS {
        for content_type in [BINARY, TEXT] {
            let body = body_for(content_type, &framed(&simple(1)));
            let mut request = request(UNARY, content_type, body);
            request.headers_mut().insert(
                "x-grpc-test-echo-initial",
                "test_initial_metadata_value".parse().unwrap(),
            );
            request
                .headers_mut()
                .insert("x-grpc-test-echo-trailing-bin", "q6urqw".parse().unwrap());
            let reply = send(server.addr, version, request).await;
            assert_eq!(
                reply.headers["x-grpc-test-echo-initial"], "test_initial_metadata_value",
                "initial metadata in the response headers"
            );
            let decoded = reply.decode();
            assert_eq!(decoded.code(), 0);
            // Binary trailing metadata stays base64 inside the trailer frame.
            assert_eq!(decoded.trailers["x-grpc-test-echo-trailing-bin"], "q6urqw");
        }
    }
}

#[tokio::test]
async fn error_status_with_a_unicode_message() {
    let server = TestServer::start(server(Web::new())).await;
    let message = SimpleRequest {
        response_status: Some(EchoStatus {
            code: 2,
            message: SPECIAL.to_owned(),
        }),
        ..Default::default()
    };
    for version in VERSIONS {
        for content_type in [BINARY, TEXT] {
            let body = body_for(content_type, &framed(&message));
            let reply = send(server.addr, version, request(UNARY, content_type, body)).await;
            let decoded = reply.decode();
            assert_eq!(decoded.code(), 2);
            assert!(
                decoded.trailers["grpc-message"].is_ascii(),
                "percent-encoded"
            );
            assert_eq!(decoded.message(), SPECIAL);
        }
        // The same status from a server-streaming call, after its messages: in the trailer frame.
        let message = StreamingOutputCallRequest {
            response_parameters: vec![ResponseParameters {
                size: 3,
                ..Default::default()
            }],
            response_status: Some(EchoStatus {
                code: 9,
                message: SPECIAL.to_owned(),
            }),
            ..Default::default()
        };
        let reply = send(
            server.addr,
            version,
            request(STREAMING_OUTPUT, BINARY, framed(&message)),
        )
        .await;
        let decoded = reply.decode();
        assert_eq!(decoded.messages.len(), 1);
        assert_eq!(decoded.code(), 9);
        assert_eq!(decoded.message(), SPECIAL);
    }
}

#[tokio::test]
async fn grpc_timeout_ends_a_slow_call_with_deadline_exceeded() {
    let server = TestServer::start(server(Web::new())).await;
    let message = StreamingOutputCallRequest {
        response_parameters: vec![ResponseParameters {
            size: 1,
            interval_us: 2_000_000,
            ..Default::default()
        }],
        ..Default::default()
    };
    for version in VERSIONS {
        let mut request = request(STREAMING_OUTPUT, BINARY, framed(&message));
        request
            .headers_mut()
            .insert("grpc-timeout", "100m".parse().unwrap());
        let started = std::time::Instant::now();
        let decoded = send(server.addr, version, request).await.decode();
        assert_eq!(decoded.code(), 4, "{version:?}: {decoded:?}");
        assert!(started.elapsed() < Duration::from_millis(1900));
        good_call(server.addr, version).await;
    }
}

#[tokio::test]
async fn client_and_bidi_streaming_are_unimplemented() {
    let server = TestServer::start(server(Web::new())).await;
    for version in VERSIONS {
        for path in [STREAMING_INPUT, FULL_DUPLEX] {
            let reply = send(
                server.addr,
                version,
                request(path, BINARY, framed(&simple(1))),
            )
            .await;
            let decoded = reply.decode();
            assert_eq!(decoded.code(), 12, "{path}: {decoded:?}");
            assert!(
                decoded.message().contains("gRPC-Web"),
                "{}",
                decoded.message()
            );
        }
        let reply = send(
            server.addr,
            version,
            request("/grpc.testing.TestService/Nope", BINARY, vec![]),
        )
        .await;
        assert_eq!(reply.decode().code(), 12);
        good_call(server.addr, version).await;
    }
}

fn preflight(origin: &str, headers: &str) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method("OPTIONS")
        .uri(UNARY)
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .body(Vec::new())
        .unwrap()
}

#[tokio::test]
async fn cors_off_refuses_a_preflight_clearly() {
    let server = TestServer::start(server(Web::new())).await;
    for version in VERSIONS {
        let reply = send(
            server.addr,
            version,
            preflight("http://page.test", "content-type,x-grpc-web"),
        )
        .await;
        assert_eq!(reply.status, 403);
        assert!(String::from_utf8_lossy(&reply.body).contains("CORS is not enabled"));
        assert!(!reply.headers.contains_key("access-control-allow-origin"));
        // A cross-origin call itself is served, but without CORS headers a browser hides it.
        let mut request = request(UNARY, BINARY, framed(&simple(1)));
        request
            .headers_mut()
            .insert("origin", "http://page.test".parse().unwrap());
        let reply = send(server.addr, version, request).await;
        assert!(!reply.headers.contains_key("access-control-allow-origin"));
        assert_eq!(reply.decode().code(), 0);
    }
}

#[tokio::test]
async fn cors_on_answers_preflights_and_exposes_the_status() {
    let cors = Cors::new()
        .allow_origin("http://page.test")
        .allow_headers(["x-custom"])
        .expose_headers(["x-grpc-test-echo-initial"])
        .max_age(Duration::from_secs(600));
    let server = TestServer::start(server(Web::new().cors(cors))).await;
    for version in VERSIONS {
        let reply = send(
            server.addr,
            version,
            preflight(
                "http://page.test",
                "content-type, x-grpc-web, x-user-agent, grpc-timeout, x-custom",
            ),
        )
        .await;
        assert_eq!(
            reply.status,
            204,
            "{:?}",
            String::from_utf8_lossy(&reply.body)
        );
        let h = &reply.headers;
        assert_eq!(h["access-control-allow-origin"], "http://page.test");
        assert_eq!(h["access-control-allow-methods"], "POST, OPTIONS");
        let allowed = h["access-control-allow-headers"].to_str().unwrap();
        for name in [
            "content-type",
            "x-grpc-web",
            "x-user-agent",
            "grpc-timeout",
            "x-custom",
        ] {
            assert!(allowed.contains(name), "{allowed}");
        }
        assert_eq!(h["access-control-max-age"], "600");

        let reply = send(
            server.addr,
            version,
            preflight("http://evil.test", "content-type"),
        )
        .await;
        assert_eq!(reply.status, 403);
        assert!(String::from_utf8_lossy(&reply.body).contains("origin"));
        let reply = send(
            server.addr,
            version,
            preflight("http://page.test", "x-not-allowed"),
        )
        .await;
        assert_eq!(reply.status, 403);
        assert!(String::from_utf8_lossy(&reply.body).contains("x-not-allowed"));

        let mut request = request(UNARY, BINARY, framed(&simple(1)));
        request
            .headers_mut()
            .insert("origin", "http://page.test".parse().unwrap());
        let reply = send(server.addr, version, request).await;
        assert_eq!(
            reply.headers["access-control-allow-origin"],
            "http://page.test"
        );
        let exposed = reply.headers["access-control-expose-headers"]
            .to_str()
            .unwrap();
        for name in ["grpc-status", "grpc-message", "x-grpc-test-echo-initial"] {
            assert!(exposed.contains(name), "{exposed}");
        }
        assert_eq!(reply.decode().code(), 0);
    }
}

#[tokio::test]
async fn bad_inputs_get_clear_answers_and_the_server_keeps_serving() {
    let server = TestServer::start(server(Web::new())).await;
    let good = framed(&simple(1));
    for version in VERSIONS {
        // A content type that is neither gRPC-Web nor (over HTTP/1.1) anything we serve: 415.
        let reply = send(
            server.addr,
            version,
            request(UNARY, "application/json", good.clone()),
        )
        .await;
        assert_eq!(reply.status, 415, "{version:?}");
        good_call(server.addr, version).await;

        // Not base64.
        let reply = send(
            server.addr,
            version,
            request(UNARY, TEXT, b"AAAA*AAA".to_vec()),
        )
        .await;
        let decoded = reply.decode();
        assert_eq!(decoded.code(), 13, "{decoded:?}");
        assert!(decoded.message().contains("invalid base64"));
        good_call(server.addr, version).await;

        // Base64 cut inside a group.
        let mut text = encode_text(&good);
        text.pop();
        let decoded = send(server.addr, version, request(UNARY, TEXT, text))
            .await
            .decode();
        assert_eq!(decoded.code(), 13);
        assert!(
            decoded.message().contains("truncated base64"),
            "{}",
            decoded.message()
        );
        good_call(server.addr, version).await;

        // A message over the receive limit (64 KiB here), claimed in the prefix.
        let big = SimpleRequest {
            payload: Some(bare_grpc_contracts::grpc_testing::Payload {
                body: vec![1; 100 * 1024],
                ..Default::default()
            }),
            ..Default::default()
        };
        for content_type in [BINARY, TEXT] {
            let body = body_for(content_type, &framed(&big));
            let decoded = send(server.addr, version, request(UNARY, content_type, body))
                .await
                .decode();
            assert_eq!(decoded.code(), 8, "{decoded:?}");
            assert!(decoded.message().contains("receive limit"));
            good_call(server.addr, version).await;
        }

        // A message cut short: the prefix claims more than the body holds.
        let mut cut = good.clone();
        cut.truncate(cut.len() - 2);
        for content_type in [BINARY, TEXT] {
            let body = body_for(content_type, &cut);
            let decoded = send(server.addr, version, request(UNARY, content_type, body))
                .await
                .decode();
            assert_eq!(decoded.code(), 13, "{decoded:?}");
            good_call(server.addr, version).await;
        }

        // A prefix cut short.
        let decoded = send(server.addr, version, request(UNARY, BINARY, vec![0, 0]))
            .await
            .decode();
        assert_eq!(decoded.code(), 13, "{decoded:?}");
        good_call(server.addr, version).await;
    }
    // HTTP/1.1 only: a GET, and native gRPC (which needs HTTP/2).
    let get = http::Request::builder()
        .method("GET")
        .uri(UNARY)
        .body(Vec::new())
        .unwrap();
    let reply = send(server.addr, Version::Http1, get).await;
    assert!(
        reply.status == 415 || reply.status == 405,
        "{}",
        reply.status
    );
    let reply = send(
        server.addr,
        Version::Http1,
        request(UNARY, "application/grpc", good.clone()),
    )
    .await;
    assert_eq!(reply.status, 415);
    good_call(server.addr, Version::Http1).await;
}

#[tokio::test]
async fn keep_alive_http1_serves_many_calls_on_one_connection() {
    let server = TestServer::start(server(Web::new())).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(Io(tcp))
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    for i in 0..20 {
        let (parts, body) = request(UNARY, BINARY, framed(&simple(i))).into_parts();
        let mut request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        request.headers_mut().insert("host", "x".parse().unwrap());
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        let (head, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        let decoded = Reply {
            status: head.status.as_u16(),
            headers: head.headers,
            body,
        }
        .decode();
        assert_eq!(decoded.code(), 0);
        let response = SimpleResponse::decode(&decoded.messages[0][..]).unwrap();
        assert_eq!(response.payload.unwrap().body.len(), i as usize);
    }
    drop(sender);
    let _ = driver.await;
}

/// Graceful shutdown closes an idle HTTP/1.1 keep-alive connection instead of waiting for the
/// drain timeout (10 s), and the client sees the connection end.
#[tokio::test]
async fn shutdown_closes_idle_http1_connections() {
    let mut server = TestServer::start(server(Web::new())).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(Io(tcp))
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let (parts, body) = request(UNARY, BINARY, framed(&simple(2))).into_parts();
    let mut first = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
    first.headers_mut().insert("host", "x".parse().unwrap());
    let response = sender.send_request(first).await.unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await.unwrap();
    let started = std::time::Instant::now();
    let task = server.shutdown();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("shutdown drained within 5 s")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    // The server closed the connection: hyper's client connection task ends.
    tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the client saw the connection close")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn native_grpc_on_the_same_port_is_unchanged() {
    let server = TestServer::start(server(Web::new())).await;
    let channel = bare_grpc::Channel::connect(&server.addr.to_string())
        .await
        .unwrap();
    let client = TestServiceClient::new(channel);
    for _ in 0..3 {
        let response = client.unary_call(simple(5)).await.unwrap().into_inner();
        assert_eq!(response.payload.unwrap().body.len(), 5);
        good_call(server.addr, Version::Http1).await;
        good_call(server.addr, Version::Http2).await;
    }
}

/// One call as an interceptor saw it: its path and the peer's address.
type SeenCall = (String, Option<SocketAddr>);

/// Records each call's path and the peer address the server saw.
#[derive(Clone, Default)]
struct Seen(std::sync::Arc<std::sync::Mutex<Vec<SeenCall>>>);

impl bare_grpc::interceptor::Interceptor for Seen {
    type State = ();

    fn on_start(
        &self,
        call: &bare_grpc::interceptor::CallInfo,
        _: &mut bare_grpc::Metadata,
    ) -> Result<(), bare_grpc::Status> {
        let entry = (call.path().to_owned(), call.peer().addr());
        self.0.lock().unwrap().push(entry);
        Ok(())
    }
}

/// The same interceptors run for gRPC-Web calls, and they (and the handler) see the caller's
/// own address, not the in-memory loopback's.
#[tokio::test]
async fn interceptors_run_and_see_the_callers_address() {
    let seen = Seen::default();
    let server = Server::builder()
        .web(Web::new())
        .interceptor(seen.clone())
        .add_service(common::test_service::test_service())
        .build();
    let server = TestServer::start(server).await;
    for version in VERSIONS {
        seen.0.lock().unwrap().clear();
        good_call(server.addr, version).await;
        let seen = seen.0.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{version:?}: {seen:?}");
        assert_eq!(seen[0].0, UNARY);
        let addr = seen[0].1.expect("a peer address");
        assert_eq!(addr.ip(), server.addr.ip(), "{version:?}");
        assert_ne!(
            addr.port(),
            server.addr.port(),
            "{version:?}: the client's port"
        );
    }
}

/// A tokio byte stream as hyper's I/O traits (hyper-util's `TokioIo`, in a few lines).
struct Io(TcpStream);

impl hyper::rt::Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut scratch = [0u8; 16384];
        let want = buf.remaining().min(scratch.len());
        let mut read = ReadBuf::new(&mut scratch[..want]);
        ready!(Pin::new(&mut self.get_mut().0).poll_read(cx, &mut read))?;
        buf.put_slice(read.filled());
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

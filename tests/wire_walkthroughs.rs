//! Keeps the three walkthroughs beside `docs/wire-format.md` honest: `docs/wire-deadline.md`
//! (a server-streaming call whose deadline expires), `docs/wire-cancel.md` (a bidi call the
//! client cancels) and `docs/wire-gzip.md` (a call compressed both ways).
//!
//! ```text
//!   raw h2 client ──► recording tap ──► our interop server (in-process, 127.0.0.1:0)
//!        │                  │
//!        │                  └─ transcript ──► grpc-wiretap --replay ──► the call's block
//!        └─ fixed headers (grpc-timeout 200m, no user-agent), so the bytes repeat run to run
//! ```
//!
//! Each page marks blocks `<!-- capture: NAME -->` (hex of one frame, `#` comments and `|`
//! ignored) and `<!-- wiretap: NAME -->` (the call as `grpc-wiretap` prints it); the test
//! replays each call and fails when a block and the wire disagree. Print the live values with
//! `cargo test --features wiretap --test wire_walkthroughs -- --nocapture`.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use bare_grpc::Server;
use bare_grpc_contracts::grpc_testing::{
    BoolValue, Payload, ResponseParameters, SimpleRequest, StreamingOutputCallRequest,
};
use bytes::Bytes;
use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One HTTP/2 frame as it crossed (RFC 9113 §4.1).
struct Frame {
    raw: Vec<u8>,
    kind: u8,
    stream_id: u32,
}

/// Splits one direction's bytes into frames, skipping the client preface.
fn frames(mut bytes: &[u8]) -> Vec<Frame> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    if bytes.starts_with(PREFACE) {
        bytes = &bytes[PREFACE.len()..];
    }
    let mut out = Vec::new();
    while bytes.len() >= 9 {
        let len = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize;
        let total = 9 + len;
        assert!(bytes.len() >= total, "capture ends inside a frame");
        out.push(Frame {
            raw: bytes[..total].to_vec(),
            kind: bytes[3],
            stream_id: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
        });
        bytes = &bytes[total..];
    }
    out
}

/// The frames of stream 1 of one type, in order.
fn stream_frames(bytes: &[u8], kind: u8) -> Vec<Vec<u8>> {
    frames(bytes)
        .into_iter()
        .filter(|f| f.kind == kind && f.stream_id == 1)
        .map(|f| f.raw)
        .collect()
}

/// What crossed, as `grpc-wiretap --record` writes it: (micros, direction, bytes).
type Transcript = Vec<(u64, char, Vec<u8>)>;

/// Copies one direction, recording each chunk with its time, until the source closes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    dir: char,
    start: Instant,
) -> Transcript {
    let mut seen = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.push((start.elapsed().as_micros() as u64, dir, buf[..n].to_vec()));
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    seen.push((start.elapsed().as_micros() as u64, dir, Vec::new()));
    let _ = to.shutdown().await;
    seen
}

/// A tap in front of `server`: accepts one connection, relays it, returns (to-server bytes,
/// to-client bytes, the merged transcript).
async fn tap(
    server: std::net::SocketAddr,
) -> (
    std::net::SocketAddr,
    tokio::task::JoinHandle<(Vec<u8>, Vec<u8>, Transcript)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (client_side, _) = listener.accept().await.unwrap();
        let server_side = TcpStream::connect(server).await.unwrap();
        let start = Instant::now();
        let (cr, cw) = client_side.into_split();
        let (sr, sw) = server_side.into_split();
        let up = tokio::spawn(pump(cr, sw, '>', start));
        let down = tokio::spawn(pump(sr, cw, '<', start));
        let (up, down) = (up.await.unwrap(), down.await.unwrap());
        let bytes = |t: &Transcript| {
            t.iter()
                .flat_map(|(_, _, b)| b.clone())
                .collect::<Vec<u8>>()
        };
        let (up_bytes, down_bytes) = (bytes(&up), bytes(&down));
        let mut all: Transcript = up.into_iter().chain(down).collect();
        all.sort_by_key(|(t, _, _)| *t);
        (up_bytes, down_bytes, all)
    });
    (addr, task)
}

/// The call's block as `grpc-wiretap --replay` prints it.
fn wiretap_block(transcript: &Transcript) -> String {
    let dir = common::repo_root().join("target/wire-walkthroughs");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{}.txt",
        std::process::id() as u64 * 1000 + transcript.len() as u64
    ));
    let mut text = String::new();
    for (t, d, bytes) in transcript {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        text.push_str(&format!("1 {t} {d} {hex}\n"));
    }
    text.push_str("1 0 x\n");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_grpc-wiretap"))
        .arg("--replay")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout).unwrap();
    let _ = std::fs::remove_file(&path);
    let mut block = String::new();
    let mut inside = false;
    for line in printed.lines() {
        inside |= line.starts_with("── conn 1 · stream 1 ");
        if inside {
            block.push_str(line);
            block.push('\n');
            if line.starts_with("  = status") {
                return block;
            }
        }
    }
    panic!("no finished block for stream 1 in:\n{printed}");
}

/// A gRPC request HEADERS for `method` with fixed fields (the h2 client adds only the
/// pseudo-headers), so the HPACK bytes repeat.
fn request(method: &str, extra: &[(&str, &str)]) -> http::Request<()> {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://localhost/grpc.testing.TestService/{method}"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (k, v) in extra {
        builder = builder.header(*k, *v);
    }
    builder.body(()).unwrap()
}

/// A Length-Prefixed-Message with `flag`.
fn prefixed(flag: u8, message: &[u8]) -> Bytes {
    let mut data = vec![flag];
    data.extend((message.len() as u32).to_be_bytes());
    data.extend_from_slice(message);
    Bytes::from(data)
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The page's marked blocks: (kind, name) → lines.
fn marked_blocks(page: &str) -> BTreeMap<(String, String), Vec<String>> {
    let mut blocks = BTreeMap::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some((kind, name)) = line
            .trim()
            .strip_prefix("<!-- ")
            .and_then(|rest| rest.strip_suffix(" -->"))
            .and_then(|rest| rest.split_once(": "))
        else {
            continue;
        };
        if kind != "capture" && kind != "wiretap" {
            continue;
        }
        let fence = lines.next().expect("a fenced block after the marker");
        assert!(
            fence.starts_with("```"),
            "marker {name} must precede a fenced block"
        );
        let body = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .map(str::to_owned)
            .collect();
        blocks.insert((kind.to_owned(), name.to_owned()), body);
    }
    blocks
}

/// Hex digits of a block, `#` comments and `|` ignored.
fn hex_of(lines: &[String]) -> String {
    let digits: String = lines
        .iter()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(char::is_ascii_hexdigit))
        .collect();
    let bytes: Vec<u8> = (0..digits.len() / 2)
        .map(|i| u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    hex(&bytes)
}

/// Compares a page's marked blocks with the live values.
fn check_page(page: &str, live: &BTreeMap<String, String>, wiretap: &str) {
    println!("==== {page}\n<!-- wiretap: call -->\n{wiretap}");
    for (name, value) in live {
        println!("<!-- capture: {name} -->\n{value}\n");
    }
    let text = std::fs::read_to_string(common::repo_root().join(page)).unwrap();
    let blocks = marked_blocks(&text);
    let mut checked = 0;
    for ((kind, name), lines) in &blocks {
        if kind == "capture" {
            let live = live
                .get(name)
                .unwrap_or_else(|| panic!("{page}: no live capture {name}"));
            assert_eq!(
                &hex_of(lines),
                live,
                "{page}: block {name} differs from the wire"
            );
        } else {
            let documented = lines.join("\n") + "\n";
            assert_eq!(
                documented, wiretap,
                "{page}: the wiretap block differs from grpc-wiretap's output"
            );
        }
        checked += 1;
    }
    assert!(checked >= 3, "{page}: only {checked} marked blocks");
}

async fn start_server() -> TestServer {
    TestServer::start(
        Server::builder()
            .add_service(common::test_service::test_service())
            .build(),
    )
    .await
}

/// A server-streaming call with `grpc-timeout: 200m`: the first response comes at once, the
/// second is due a second later, so the deadline ends the call between them (wide margins, so
/// a loaded machine still sees the same bytes).
#[tokio::test]
async fn wire_deadline_page_matches_the_wire() {
    let server = start_server().await;
    let (addr, recorder) = tap(server.addr).await;
    let (client, connection) = h2::client::handshake(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let (response, mut send) = client
        .send_request(
            request("StreamingOutputCall", &[("grpc-timeout", "200m")]),
            false,
        )
        .unwrap();
    let message = prost::Message::encode_to_vec(&StreamingOutputCallRequest {
        response_parameters: vec![
            ResponseParameters {
                size: 4,
                interval_us: 0,
                compressed: None,
            },
            ResponseParameters {
                size: 4,
                interval_us: 1_000_000,
                compressed: None,
            },
        ],
        ..Default::default()
    });
    send.send_data(prefixed(0, &message), true).unwrap();
    let response = response.await.unwrap();
    let mut body = response.into_body();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body.trailers().await.ok().flatten();
    drop((client, send, body));
    driver.abort();
    let _ = driver.await;
    let (up, down, transcript) = recorder.await.unwrap();
    let trailers = trailers.expect("trailers with the status");
    assert_eq!(trailers["grpc-status"], "4", "DEADLINE_EXCEEDED");

    let mut live = BTreeMap::new();
    live.insert("request-data".to_owned(), hex(&stream_frames(&up, 0)[0]));
    let data = stream_frames(&down, 0);
    assert_eq!(data.len(), 1, "one response message before the deadline");
    live.insert("response-data".to_owned(), hex(&data[0]));
    let headers = stream_frames(&down, 1);
    live.insert("trailers".to_owned(), hex(headers.last().unwrap()));
    if let Some(reset) = stream_frames(&down, 3).first() {
        live.insert("server-reset".to_owned(), hex(reset));
    }
    check_page("docs/wire-deadline.md", &live, &wiretap_block(&transcript));
}

/// A bidi call: one request, its response, then the client resets the stream.
#[tokio::test]
async fn wire_cancel_page_matches_the_wire() {
    let server = start_server().await;
    let (addr, recorder) = tap(server.addr).await;
    let (client, connection) = h2::client::handshake(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let (response, mut send) = client
        .send_request(request("FullDuplexCall", &[]), false)
        .unwrap();
    let message = prost::Message::encode_to_vec(&StreamingOutputCallRequest {
        response_parameters: vec![ResponseParameters {
            size: 3,
            interval_us: 0,
            compressed: None,
        }],
        payload: Some(Payload {
            r#type: 0,
            body: b"ping".to_vec(),
        }),
        ..Default::default()
    });
    send.send_data(prefixed(0, &message), false).unwrap();
    let response = response.await.unwrap();
    let mut body = response.into_body();
    let first = body.data().await.expect("a response message").unwrap();
    let _ = body.flow_control().release_capacity(first.len());
    // The client gives up: RST_STREAM(CANCEL), and nothing more on this stream either way.
    send.send_reset(h2::Reason::CANCEL);
    // Let the reset reach the server before the connection closes.
    let mut client = client.ready().await.unwrap();
    let (ping, _ping_send) = client
        .send_request(request("EmptyCall", &[]), true)
        .unwrap();
    let _ = ping.await;
    drop((client, send, body));
    driver.abort();
    let _ = driver.await;
    let (up, down, transcript) = recorder.await.unwrap();

    let mut live = BTreeMap::new();
    live.insert("request-data".to_owned(), hex(&stream_frames(&up, 0)[0]));
    live.insert("response-data".to_owned(), hex(&stream_frames(&down, 0)[0]));
    live.insert("client-reset".to_owned(), hex(&stream_frames(&up, 3)[0]));
    check_page("docs/wire-cancel.md", &live, &wiretap_block(&transcript));
}

/// RFC 1952 around DEFLATE: header, body, CRC-32 and size (the test's own, so the request's
/// bytes do not depend on the code under test).
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    out.extend((!crc).to_le_bytes());
    out.extend((data.len() as u32).to_le_bytes());
    out
}

/// A unary call compressed both ways: the request as gzip (flag 1), and a response the
/// request asks to be compressed.
#[tokio::test]
async fn wire_gzip_page_matches_the_wire() {
    let server = start_server().await;
    let (addr, recorder) = tap(server.addr).await;
    let (client, connection) = h2::client::handshake(TcpStream::connect(addr).await.unwrap())
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let headers = [("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")];
    let (response, mut send) = client
        .send_request(request("UnaryCall", &headers), false)
        .unwrap();
    let message = prost::Message::encode_to_vec(&SimpleRequest {
        response_size: 32,
        payload: Some(Payload {
            r#type: 0,
            body: vec![b'a'; 32],
        }),
        response_compressed: Some(BoolValue { value: true }),
        expect_compressed: Some(BoolValue { value: true }),
        ..Default::default()
    });
    send.send_data(prefixed(1, &gzip(&message)), true).unwrap();
    let response = response.await.unwrap();
    let mut body = response.into_body();
    while let Some(Ok(chunk)) = body.data().await {
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    let trailers = body.trailers().await.unwrap().expect("trailers");
    assert_eq!(trailers["grpc-status"], "0");
    drop((client, send, body));
    driver.abort();
    let _ = driver.await;
    let (up, down, transcript) = recorder.await.unwrap();

    let mut live = BTreeMap::new();
    live.insert("request-data".to_owned(), hex(&stream_frames(&up, 0)[0]));
    let response_data = stream_frames(&down, 0);
    assert_eq!(
        response_data[0][9], 1,
        "the response message is flagged compressed"
    );
    live.insert("response-data".to_owned(), hex(&response_data[0]));
    check_page("docs/wire-gzip.md", &live, &wiretap_block(&transcript));
}

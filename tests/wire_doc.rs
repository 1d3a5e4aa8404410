//! Keeps `docs/wire-format.md` honest: runs the call the page walks through against our own
//! server, through a byte-recording TCP tap, and checks that every block the page marks with
//! `<!-- capture: NAME -->` equals what was actually on the wire.
//!
//! Print the live capture (to refresh the page after a deliberate change) with
//! `cargo test --test wire_doc -- --nocapture`.

mod common;

use std::collections::BTreeMap;

use bare_grpc::Server;
use bare_grpc_contracts::grpc_testing::{Payload, SimpleRequest};
use bytes::Bytes;
use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One HTTP/2 frame as it crossed the wire (RFC 9113 §4.1).
struct Frame {
    raw: Vec<u8>,
    kind: u8,
    stream_id: u32,
}

/// Splits a byte stream into frames, skipping the client's 24-byte connection preface.
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
        let stream_id = u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff;
        out.push(Frame {
            raw: bytes[..total].to_vec(),
            kind: bytes[3],
            stream_id,
        });
        bytes = &bytes[total..];
    }
    out
}

/// Copies bytes one way, recording them, until the source closes.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
    seen
}

/// The `<!-- capture: NAME -->` blocks of the page: NAME → the lines of the fenced block after it.
fn marked_blocks(page: &str) -> BTreeMap<String, Vec<String>> {
    let mut blocks = BTreeMap::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- capture: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        let fence = lines.next().expect("a fenced block after the marker");
        assert!(
            fence.starts_with("```"),
            "marker {name} must precede a fenced block"
        );
        let body: Vec<String> = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .map(str::to_owned)
            .collect();
        blocks.insert(name.to_owned(), body);
    }
    blocks
}

/// The bytes of a hex block: pairs of hex digits; `|` separators and `#` comments ignored.
fn hex_bytes(lines: &[String]) -> Vec<u8> {
    let digits: String = lines
        .iter()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.chars().filter(char::is_ascii_hexdigit))
        .collect();
    assert!(digits.len() % 2 == 0, "odd number of hex digits");
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `name: value` lines of a header block, as the page lists them.
fn header_lines(map: &http::HeaderMap) -> Vec<String> {
    let mut lines: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}: {}", k, v.to_str().unwrap()))
        .collect();
    lines.sort();
    lines
}

/// The request the page walks through: UnaryCall asking for a 2-byte payload, carrying "hi".
fn the_request() -> SimpleRequest {
    SimpleRequest {
        response_size: 2,
        payload: Some(Payload {
            r#type: 0,
            body: b"hi".to_vec(),
        }),
        ..Default::default()
    }
}

#[tokio::test]
async fn wire_format_page_matches_the_wire() {
    let server = TestServer::start(
        Server::builder()
            .add_service(common::test_service::test_service())
            .build(),
    )
    .await;

    // The tap: client → tap → server, recording each direction.
    let tap = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tap_addr = tap.local_addr().unwrap();
    let server_addr = server.addr;
    let recorder = tokio::spawn(async move {
        let (client_side, _) = tap.accept().await.unwrap();
        let server_side = TcpStream::connect(server_addr).await.unwrap();
        let (cr, cw) = client_side.into_split();
        let (sr, sw) = server_side.into_split();
        let up = tokio::spawn(pump(cr, sw));
        let down = tokio::spawn(pump(sr, cw));
        (up.await.unwrap(), down.await.unwrap())
    });

    // One unary call with a plain h2 client, so nothing but our server shapes the answer.
    let tcp = TcpStream::connect(tap_addr).await.unwrap();
    let (client, connection) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(connection);
    let mut client = client.ready().await.unwrap();
    let request = http::Request::builder()
        .method("POST")
        .uri("http://localhost/grpc.testing.TestService/UnaryCall")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    // One Length-Prefixed-Message: flag 0 (not compressed), the length, the protobuf bytes.
    let message = prost::Message::encode_to_vec(&the_request());
    let mut data = vec![0];
    data.extend((message.len() as u32).to_be_bytes());
    data.extend(message);
    send.send_data(Bytes::from(data), true).unwrap();
    let response = response.await.unwrap();
    let (parts, mut body) = response.into_parts();
    let mut received = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk: Bytes = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        received.extend_from_slice(&chunk);
    }
    let trailers = body.trailers().await.unwrap().expect("trailers");
    drop(client);
    drop(send);
    drop(body);
    driver.abort();
    let _ = driver.await;
    let (up, down) = recorder.await.unwrap();

    let data_frame = |bytes: &[u8]| -> Vec<u8> {
        frames(bytes)
            .into_iter()
            .find(|f| f.kind == 0 && f.stream_id == 1)
            .expect("a DATA frame on stream 1")
            .raw
    };
    let mut live = BTreeMap::new();
    live.insert("request-data-frame", hex(&data_frame(&up)));
    live.insert("response-data-frame", hex(&data_frame(&down)));
    live.insert("response-headers", header_lines(&parts.headers).join("\n"));
    live.insert("response-trailers", header_lines(&trailers).join("\n"));
    for (name, value) in &live {
        println!("<!-- capture: {name} -->\n{value}\n");
    }
    assert_eq!(parts.status, 200);
    assert_eq!(received.len(), 11, "5-byte prefix + 6-byte SimpleResponse");

    let page = std::fs::read_to_string(common::repo_root().join("docs/wire-format.md")).unwrap();
    let blocks = marked_blocks(&page);
    for name in ["request-data-frame", "response-data-frame"] {
        let documented = hex_bytes(&blocks[name]);
        assert_eq!(
            hex(&documented),
            live[name],
            "docs/wire-format.md block {name}"
        );
    }
    for name in ["response-headers", "response-trailers"] {
        let documented: Vec<String> = blocks[name]
            .iter()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            documented.join("\n"),
            live[name],
            "docs/wire-format.md block {name}"
        );
    }
}

//! Hostile peers: abusive HTTP/2 frame patterns written octet by octet over TCP (no HTTP/2
//! library on the attacking side), each answered the way RFC 9113 says, with the server's
//! memory and other clients' latency bounded while it lasts, and a good call on a new
//! connection afterwards. The threat table is `docs/reliability.md`.
//!
//! Where `h2` enforces the rule, the test proves it through our server; where our layer does
//! (the connection preface, `src/transport/preface.rs`), the test failed before it did. What
//! neither does yet is an ignored test here with its reproduction in `docs/h2-findings.md`.

mod client_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bare_grpc::{Channel, Request};
use client_support::{EchoServer, HANG, UNARY, bounded, start_echo_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, mpsc};

// ---- frames, octet by octet (RFC 9113 §4.1, §6) ----------------------------------------

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
/// Error codes (RFC 9113 §7).
const PROTOCOL_ERROR: u32 = 0x1;
const FLOW_CONTROL_ERROR: u32 = 0x3;
const SETTINGS_TIMEOUT: u32 = 0x4;
const REFUSED_STREAM: u32 = 0x7;
const CANCEL: u32 = 0x8;
const ENHANCE_YOUR_CALM: u32 = 0xb;
/// SETTINGS_MAX_HEADER_LIST_SIZE's identifier (§6.5.2).
const MAX_HEADER_LIST_SIZE: u16 = 0x6;
/// SETTINGS_MAX_CONCURRENT_STREAMS's identifier (§6.5.2).
const MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// One frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u32).to_be_bytes();
    let mut out = vec![len[1], len[2], len[3], kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `n`-bit prefix whose high bits are `high` (RFC 7541 §5.1).
fn hpack_int(out: &mut Vec<u8>, high: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(high | value as u8);
        return;
    }
    out.push(high | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A field as a literal without indexing, new name, no Huffman (RFC 7541 §6.2.2).
fn literal(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0x00);
    hpack_int(out, 0, 7, name.len());
    out.extend_from_slice(name.as_bytes());
    hpack_int(out, 0, 7, value.len());
    out.extend_from_slice(value);
}

/// A well-formed gRPC request's header block for `path`.
fn request_block(path: &str) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        literal(&mut block, name, value.as_bytes());
    }
    block
}

/// One gRPC message holding `text` as a `StringValue` (field 1, length-delimited).
fn grpc_message(text: &str) -> Vec<u8> {
    let mut body = vec![0x0a, text.len() as u8];
    body.extend_from_slice(text.as_bytes());
    let mut out = vec![0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

// ---- a raw connection ------------------------------------------------------------------

/// A frame the server sent.
#[derive(Debug)]
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// What a GOAWAY said.
#[derive(Debug)]
struct GoAway {
    code: u32,
    debug: String,
}

/// A TCP connection speaking HTTP/2 by hand. A reader task acknowledges the server's SETTINGS
/// (as every client must), counts PING and SETTINGS acknowledgements, and passes every other
/// frame on; the channel closes at EOF.
struct Raw {
    writer: Arc<Mutex<OwnedWriteHalf>>,
    frames: mpsc::UnboundedReceiver<Frame>,
    pongs: Arc<AtomicUsize>,
    settings_acks: Arc<AtomicUsize>,
    /// The server's first SETTINGS payload.
    server_settings: Vec<(u16, u32)>,
}

impl Raw {
    /// Connects and writes `opening` (nothing more).
    async fn open(addr: SocketAddr, opening: &[u8]) -> (Raw, tokio::task::JoinHandle<()>) {
        Raw::open_acking(addr, opening, true).await
    }

    /// As [`Raw::open`]; `ack` says whether the server's SETTINGS are acknowledged.
    async fn open_acking(
        addr: SocketAddr,
        opening: &[u8],
        ack: bool,
    ) -> (Raw, tokio::task::JoinHandle<()>) {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let (mut read, mut write) = tcp.into_split();
        write.write_all(opening).await.unwrap();
        let writer = Arc::new(Mutex::new(write));
        let (tx, frames) = mpsc::unbounded_channel();
        let pongs = Arc::new(AtomicUsize::new(0));
        let settings_acks = Arc::new(AtomicUsize::new(0));
        let (acker, pong_count, ack_count) = (writer.clone(), pongs.clone(), settings_acks.clone());
        let reader = tokio::spawn(async move {
            loop {
                let mut head = [0u8; 9];
                if read.read_exact(&mut head).await.is_err() {
                    return;
                }
                let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                let mut payload = vec![0u8; len];
                if read.read_exact(&mut payload).await.is_err() {
                    return;
                }
                let (kind, flags) = (head[3], head[4]);
                let stream = u32::from_be_bytes(head[5..9].try_into().unwrap()) & 0x7fff_ffff;
                match (kind, flags & ACK) {
                    (PING, ACK) => {
                        pong_count.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    (SETTINGS, ACK) => {
                        ack_count.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    (SETTINGS, _) if ack => {
                        let ack = frame(SETTINGS, ACK, 0, &[]);
                        let _ = acker.lock().await.write_all(&ack).await;
                    }
                    _ => {}
                }
                let frame = Frame {
                    kind,
                    flags,
                    stream,
                    payload,
                };
                if tx.send(frame).is_err() {
                    return;
                }
            }
        });
        let raw = Raw {
            writer,
            frames,
            pongs,
            settings_acks,
            server_settings: Vec::new(),
        };
        (raw, reader)
    }

    /// Connects as a good client would start: preface, empty SETTINGS, and waits for the
    /// server's SETTINGS (which the reader acknowledges).
    async fn connect(addr: SocketAddr) -> Raw {
        Raw::connect_acking(addr, true).await
    }

    /// As [`Raw::connect`]; `ack` says whether the server's SETTINGS are acknowledged.
    async fn connect_acking(addr: SocketAddr, ack: bool) -> Raw {
        let mut opening = PREFACE.to_vec();
        opening.extend(frame(SETTINGS, 0, 0, &[]));
        let (mut raw, _reader) = Raw::open_acking(addr, &opening, ack).await;
        let settings = raw.next_frame().await.expect("the server's SETTINGS");
        assert_eq!(settings.kind, SETTINGS, "{settings:?}");
        raw.server_settings = settings
            .payload
            .chunks(6)
            .map(|c| {
                (
                    u16::from_be_bytes([c[0], c[1]]),
                    u32::from_be_bytes(c[2..6].try_into().unwrap()),
                )
            })
            .collect();
        raw
    }

    /// Writes `bytes`; false once the server has closed the connection.
    async fn send(&self, bytes: &[u8]) -> bool {
        self.writer.lock().await.write_all(bytes).await.is_ok()
    }

    /// The next frame, `None` at EOF; panics after 10 s of silence.
    async fn next_frame(&mut self) -> Option<Frame> {
        tokio::time::timeout(Duration::from_secs(10), self.frames.recv())
            .await
            .expect("the server said something (or closed) within 10 s")
    }

    /// Reads until a GOAWAY, then expects EOF; panics if the connection ends without one.
    async fn expect_goaway(&mut self) -> GoAway {
        loop {
            let frame = self.next_frame().await.expect("a GOAWAY before EOF");
            if frame.kind == GOAWAY {
                let code = u32::from_be_bytes(frame.payload[4..8].try_into().unwrap());
                let debug = String::from_utf8_lossy(&frame.payload[8..]).into_owned();
                return GoAway { code, debug };
            }
        }
    }

    /// Reads until EOF (the server closed), bounded.
    async fn expect_closed(&mut self) {
        while self.next_frame().await.is_some() {}
    }

    /// Reads until `stream` is reset or ended; returns the RST_STREAM code, or `None` for a
    /// HEADERS with END_STREAM (the call's trailers).
    async fn stream_end(&mut self, stream: u32) -> Option<u32> {
        loop {
            let frame = self.next_frame().await.expect("the stream ends before EOF");
            assert_ne!(frame.kind, GOAWAY, "unexpected GOAWAY: {frame:?}");
            if frame.stream != stream {
                continue;
            }
            if frame.kind == RST_STREAM {
                return Some(u32::from_be_bytes(frame.payload[..4].try_into().unwrap()));
            }
            if frame.kind == HEADERS && frame.flags & END_STREAM != 0 {
                return None;
            }
        }
    }
}

/// A unary call on `stream`: HEADERS, then the message with END_STREAM.
fn unary_frames(stream: u32, path: &str) -> Vec<u8> {
    let mut out = frame(HEADERS, END_HEADERS, stream, &request_block(path));
    out.extend(frame(DATA, END_STREAM, stream, &grpc_message("hi")));
    out
}

// ---- the server side -------------------------------------------------------------------

/// A unary call on a new connection, with our client: the server still serves.
async fn good_call(addr: SocketAddr) -> Duration {
    let start = Instant::now();
    let channel = bounded(Channel::connect(&addr.to_string())).await.unwrap();
    let answer = bounded(channel.unary::<String, String>(UNARY, Request::new("ping".into())))
        .await
        .unwrap();
    assert_eq!(answer.into_inner(), "ping");
    start.elapsed()
}

/// Good calls from another connection every 20 ms while `attack` runs; returns the attack's
/// output and the slowest good call. The server must keep serving others during an attack.
async fn while_serving_others<T>(
    addr: SocketAddr,
    attack: impl std::future::Future<Output = T>,
) -> (T, Duration) {
    let channel = bounded(Channel::connect(&addr.to_string())).await.unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let prober = tokio::spawn(async move {
        let mut slowest = Duration::ZERO;
        while !flag.load(Ordering::SeqCst) {
            let start = Instant::now();
            let answer =
                bounded(channel.unary::<String, String>(UNARY, Request::new("probe".into())))
                    .await
                    .expect("a good call during the attack");
            assert_eq!(answer.into_inner(), "probe");
            slowest = slowest.max(start.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        slowest
    });
    let out = attack.await;
    done.store(true, Ordering::SeqCst);
    (out, prober.await.unwrap())
}

/// The resident set of this process (server and attacker both live here), in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Memory-measuring tests run one at a time, so one's allocations are not charged to another.
static MEASURED: Mutex<()> = Mutex::const_new(());

/// The bound every attack here must stay under, in resident memory growth of the whole test
/// process. A server that buffered the floods (a PONG or an ACK per frame, a stream per reset,
/// the header blocks) would grow by hundreds of MiB.
const RSS_BOUND: usize = 64 << 20;

async fn server() -> EchoServer {
    start_echo_with(|builder| builder).await
}

// ---- the attacks -----------------------------------------------------------------------

/// Rapid reset (CVE-2023-44487): HEADERS, the request message and RST_STREAM(CANCEL), in a
/// loop, 20,000 streams on one connection. h2 counts streams reset before they were accepted
/// and closes the connection with GOAWAY(ENHANCE_YOUR_CALM, "too_many_resets") past 20 of
/// them; every handler that did start is dropped (none outlives its stream), memory stays
/// bounded, others are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_is_cut_off() {
    let _one = MEASURED.lock().await;
    let mut server = server().await;
    let before = rss();
    let mut raw = Raw::connect(server.addr).await;
    let attack = async {
        let mut sent = 0u32;
        'flood: for batch in 0..100u32 {
            let mut bytes = Vec::new();
            for i in 0..200u32 {
                let stream = 2 * (batch * 200 + i) + 1;
                bytes.extend(unary_frames(stream, HANG));
                bytes.extend(frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()));
            }
            if !raw.send(&bytes).await {
                break 'flood;
            }
            sent += 200;
        }
        (sent, raw.expect_goaway().await)
    };
    let ((sent, goaway), slowest) = while_serving_others(server.addr, attack).await;
    assert_eq!(goaway.code, ENHANCE_YOUR_CALM, "{goaway:?}");
    assert_eq!(goaway.debug, "too_many_resets");
    raw.expect_closed().await;
    let grown = rss().saturating_sub(before);
    // Every handler that started has been dropped.
    let mut started = 0;
    while server.started.try_recv().is_ok() {
        started += 1;
    }
    for _ in 0..started {
        bounded(server.dropped.recv()).await.unwrap();
    }
    eprintln!(
        "rapid reset: {sent} streams written, {started} handlers started, GOAWAY {goaway:?}, \
         RSS +{} KiB, slowest other call {slowest:?}",
        grown >> 10
    );
    assert!(grown < RSS_BOUND, "RSS grew by {grown} bytes");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    good_call(server.addr).await;
}

/// The same attack paced so that every stream is accepted before its reset arrives (h2's
/// pending-accept count never rises): each reset ends its call and drops its handler, so the
/// handlers alive at once never exceed the streams open at once, whatever the reset rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_resets_leave_no_handler_behind() {
    let mut server = server().await;
    let mut raw = Raw::connect(server.addr).await;
    let streams = 500u32;
    for n in 0..streams {
        let stream = 2 * n + 1;
        assert!(raw.send(&unary_frames(stream, HANG)).await);
        bounded(server.started.recv()).await.unwrap();
        assert!(
            raw.send(&frame(RST_STREAM, 0, stream, &CANCEL.to_be_bytes()))
                .await
        );
        bounded(server.dropped.recv()).await.unwrap();
    }
    // The connection is still good: a unary call on it is answered.
    let stream = 2 * streams + 1;
    assert!(raw.send(&unary_frames(stream, UNARY)).await);
    assert_eq!(raw.stream_end(stream).await, None);
    good_call(server.addr).await;
}

/// A PING flood from a peer that reads its PONGs: every PING gets exactly one ACK (RFC 9113
/// §6.7), in bounded memory, and others are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_is_answered_one_for_one() {
    let _one = MEASURED.lock().await;
    let server = server().await;
    let before = rss();
    let raw = Raw::connect(server.addr).await;
    let pings = 100_000usize;
    let attack = async {
        let ping = frame(PING, 0, 0, &[7; 8]);
        for _ in 0..pings / 1000 {
            assert!(raw.send(&ping.repeat(1000)).await);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while raw.pongs.load(Ordering::SeqCst) < pings && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let ((), slowest) = while_serving_others(server.addr, attack).await;
    assert_eq!(raw.pongs.load(Ordering::SeqCst), pings);
    let grown = rss().saturating_sub(before);
    eprintln!(
        "PING flood: {pings} PONGs, RSS +{} KiB, slowest other call {slowest:?}",
        grown >> 10
    );
    assert!(grown < RSS_BOUND, "RSS grew by {grown} bytes");
    good_call(server.addr).await;
}

/// A PING flood from a peer that never reads: the server writes PONGs until TCP pushes back,
/// then stops reading that connection (h2 holds one pending PONG at most), so its memory does
/// not grow with the flood, and others are served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_without_reading_is_held_by_backpressure() {
    let _one = MEASURED.lock().await;
    let server = server().await;
    let before = rss();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let (_read, mut write) = tcp.into_split();
    let mut opening = PREFACE.to_vec();
    opening.extend(frame(SETTINGS, 0, 0, &[]));
    write.write_all(&opening).await.unwrap();
    let ping = frame(PING, 0, 0, &[7; 8]).repeat(1000);
    let attack = async {
        // Up to 34 MB of PINGs (2,000,000); the write blocks once both socket buffers are full
        // of unread PONGs and unread PINGs (a few MiB on loopback).
        let mut written = 0usize;
        let flood = async {
            for _ in 0..2000 {
                write.write_all(&ping).await.unwrap();
                written += 1000;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(3), flood).await;
        written
    };
    let (written, slowest) = while_serving_others(server.addr, attack).await;
    let grown = rss().saturating_sub(before);
    eprintln!(
        "PING flood, never read: {written} PINGs accepted by TCP before it pushed back, \
         RSS +{} KiB, slowest other call {slowest:?}",
        grown >> 10
    );
    assert!(written < 2_000_000, "the flood was never pushed back");
    assert!(grown < RSS_BOUND, "RSS grew by {grown} bytes");
    assert!(slowest < Duration::from_secs(2), "{slowest:?}");
    good_call(server.addr).await;
}

/// A SETTINGS flood: each SETTINGS frame is acknowledged once (RFC 9113 §6.5.3), in bounded
/// memory; the connection still serves a call afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_flood_is_acknowledged_one_for_one() {
    let _one = MEASURED.lock().await;
    let server = server().await;
    let before = rss();
    let mut raw = Raw::connect(server.addr).await;
    let floods = 50_000usize;
    // SETTINGS_INITIAL_WINDOW_SIZE = 65535, over and over (6-octet setting, §6.5.1).
    let settings = frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff]);
    let attack = async {
        for _ in 0..floods / 1000 {
            assert!(raw.send(&settings.repeat(1000)).await);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while raw.settings_acks.load(Ordering::SeqCst) < floods + 1 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let ((), slowest) = while_serving_others(server.addr, attack).await;
    // Ours (the empty one of the preface) and every one of the flood.
    assert_eq!(raw.settings_acks.load(Ordering::SeqCst), floods + 1);
    let grown = rss().saturating_sub(before);
    eprintln!(
        "SETTINGS flood: {floods} ACKs, RSS +{} KiB, slowest other call {slowest:?}",
        grown >> 10
    );
    assert!(grown < RSS_BOUND, "RSS grew by {grown} bytes");
    assert!(raw.send(&unary_frames(1, UNARY)).await);
    assert_eq!(raw.stream_end(1).await, None);
    good_call(server.addr).await;
}

/// An endless CONTINUATION sequence (the 2024 CONTINUATION flood): h2 allows as many
/// CONTINUATION frames as a header block of the announced size needs (five, at our 16 KiB
/// list and 128 KiB frames) and then answers GOAWAY(ENHANCE_YOUR_CALM,
/// "too_many_continuations") instead of buffering for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_continuation_is_cut_off() {
    let server = server().await;
    let mut raw = Raw::connect(server.addr).await;
    let block = request_block(UNARY);
    let mut bytes = frame(HEADERS, 0, 1, &block);
    let mut sent = 0;
    // 100,000 empty CONTINUATIONs would do; the server stops reading long before.
    for _ in 0..100 {
        for _ in 0..1000 {
            bytes.extend(frame(CONTINUATION, 0, 1, &[]));
        }
        if !raw.send(&bytes).await {
            break;
        }
        sent += 1000;
        bytes.clear();
    }
    let goaway = raw.expect_goaway().await;
    eprintln!("CONTINUATION flood: {sent} frames written, {goaway:?}");
    assert_eq!(goaway.code, ENHANCE_YOUR_CALM, "{goaway:?}");
    assert_eq!(goaway.debug, "too_many_continuations");
    raw.expect_closed().await;
    good_call(server.addr).await;
}

/// The server announces SETTINGS_MAX_HEADER_LIST_SIZE: 16 KiB by default, or what the
/// builder says.
#[tokio::test]
async fn max_header_list_size_is_announced() {
    let server = server().await;
    let raw = Raw::connect(server.addr).await;
    assert!(
        raw.server_settings
            .contains(&(MAX_HEADER_LIST_SIZE, 16 * 1024)),
        "{:?}",
        raw.server_settings
    );
    let server = start_echo_with(|builder| builder.max_header_list_size(64 * 1024)).await;
    let raw = Raw::connect(server.addr).await;
    assert!(
        raw.server_settings
            .contains(&(MAX_HEADER_LIST_SIZE, 64 * 1024)),
        "{:?}",
        raw.server_settings
    );
}

/// A request whose header block (one 20 KiB metadata value) is over the announced 16 KiB:
/// answered HTTP 431 with the stream refused (RFC 9113 §10.5.1), the handler never runs, and
/// the same connection serves the next call. With the limit raised to 64 KiB the same call
/// succeeds: the limit is the builder's. (Sent with the `h2` client, which reads the 431.)
#[tokio::test]
async fn header_block_over_the_limit_gets_431() {
    /// A call on `client` with `extra` octets of metadata; its HTTP status.
    async fn call(client: &h2::client::SendRequest<bytes::Bytes>, extra: usize) -> u16 {
        let mut request = http::Request::builder()
            .method("POST")
            .uri(format!("http://localhost{UNARY}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        if extra > 0 {
            request = request.header("x-big", "a".repeat(extra));
        }
        let mut client = bounded(client.clone().ready()).await.unwrap();
        let (response, mut body) = client
            .send_request(request.body(()).unwrap(), false)
            .unwrap();
        body.send_data(grpc_message("hi").into(), true).unwrap();
        bounded(response).await.unwrap().status().as_u16()
    }
    /// The big call's status, between two good calls on one connection: the first makes sure
    /// our SETTINGS were acknowledged (h2 applies its limit from then, RFC 9113 §6.5.3), the
    /// last that the connection still serves.
    async fn status_of(addr: SocketAddr) -> u16 {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let (client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(connection);
        assert_eq!(call(&client, 0).await, 200);
        let status = call(&client, 20 * 1024).await;
        assert_eq!(call(&client, 0).await, 200);
        status
    }
    let server = server().await;
    assert_eq!(status_of(server.addr).await, 431);
    good_call(server.addr).await;
    let roomy = start_echo_with(|builder| builder.max_header_list_size(64 * 1024)).await;
    assert_eq!(status_of(roomy.addr).await, 200);
}

/// A request on stream 1 with `count` tiny metadata entries: one field put in the HPACK dynamic
/// table, then its one-octet index `count` times, in 16 KiB frames (HEADERS, CONTINUATIONs).
fn tiny_entries(count: usize) -> Vec<u8> {
    let mut block = request_block(UNARY);
    // Literal with incremental indexing, new name (RFC 7541 §6.2.1): x-a: b -> index 62.
    block.push(0x40);
    hpack_int(&mut block, 0, 7, 3);
    block.extend_from_slice(b"x-a");
    hpack_int(&mut block, 0, 7, 1);
    block.push(b'b');
    block.extend(std::iter::repeat_n(0x80 | 62, count));
    let chunks: Vec<&[u8]> = block.chunks(16 * 1024).collect();
    let mut bytes = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let kind = if i == 0 { HEADERS } else { CONTINUATION };
        let flags = if i + 1 == chunks.len() {
            END_HEADERS
        } else {
            0
        };
        bytes.extend(frame(kind, flags, 1, chunk));
    }
    bytes
}

/// 100,000 tiny metadata entries in one header block: one field put in the HPACK dynamic
/// table, then its one-octet index 100,000 times (100 KB on the wire, 3.6 MB decoded). h2
/// stops at four times the announced limit and closes the connection with
/// GOAWAY(ENHANCE_YOUR_CALM): the decoded list never exceeds 64 KiB. (Before the server set a
/// limit, h2's default of 16 MiB let the whole block be decoded per stream, answered 431.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_tiny_metadata_entries_are_cut_off() {
    let server = server().await;
    let mut raw = Raw::connect(server.addr).await;
    let bytes = tiny_entries(100_000);
    let _ = raw.send(&bytes).await;
    let goaway = raw.expect_goaway().await;
    assert_eq!(goaway.code, ENHANCE_YOUR_CALM, "{goaway:?}");
    raw.expect_closed().await;
    good_call(server.addr).await;
}

/// WINDOW_UPDATE that takes the connection's send window past 2^31-1: a connection error
/// FLOW_CONTROL_ERROR (RFC 9113 §6.9.1).
#[tokio::test]
async fn connection_window_overflow_is_goaway_flow_control_error() {
    let server = server().await;
    let mut raw = Raw::connect(server.addr).await;
    assert!(
        raw.send(&frame(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes()))
            .await
    );
    let goaway = raw.expect_goaway().await;
    assert_eq!(goaway.code, FLOW_CONTROL_ERROR, "{goaway:?}");
    raw.expect_closed().await;
    good_call(server.addr).await;
}

/// The same on one stream: that stream is reset FLOW_CONTROL_ERROR (§6.9.1), its handler
/// dropped, and the connection serves the next call.
#[tokio::test]
async fn stream_window_overflow_resets_that_stream_only() {
    let mut server = server().await;
    let mut raw = Raw::connect(server.addr).await;
    assert!(raw.send(&unary_frames(1, HANG)).await);
    bounded(server.started.recv()).await.unwrap();
    assert!(
        raw.send(&frame(WINDOW_UPDATE, 0, 1, &0x7fff_ffffu32.to_be_bytes()))
            .await
    );
    assert_eq!(raw.stream_end(1).await, Some(FLOW_CONTROL_ERROR));
    bounded(server.dropped.recv()).await.unwrap();
    assert!(raw.send(&unary_frames(3, UNARY)).await);
    assert_eq!(raw.stream_end(3).await, None);
    good_call(server.addr).await;
}

/// A connection that sends the preface and then nothing: after the handshake timeout it gets
/// GOAWAY(SETTINGS_TIMEOUT) and is closed, so it holds no descriptor for ever.
#[tokio::test]
async fn preface_then_nothing_is_closed_after_the_handshake_timeout() {
    let server =
        start_echo_with(|builder| builder.handshake_timeout(Duration::from_millis(300))).await;
    let start = Instant::now();
    let (mut raw, _reader) = Raw::open(server.addr, PREFACE).await;
    let goaway = raw.expect_goaway().await;
    assert_eq!(goaway.code, SETTINGS_TIMEOUT, "{goaway:?}");
    raw.expect_closed().await;
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    good_call(server.addr).await;
}

/// An invalid connection preface (an HTTP/1.1 request): GOAWAY(PROTOCOL_ERROR) (RFC 9113
/// §3.4), delivered before the close rather than lost to a TCP reset. h2 alone dropped the
/// socket without one; `src/transport/preface.rs` answers it.
#[tokio::test]
async fn invalid_preface_gets_goaway_protocol_error() {
    let server = server().await;
    let (mut raw, _reader) =
        Raw::open(server.addr, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    let goaway = raw.expect_goaway().await;
    assert_eq!(goaway.code, PROTOCOL_ERROR, "{goaway:?}");
    assert_eq!(goaway.debug, "invalid connection preface");
    raw.expect_closed().await;
    good_call(server.addr).await;
}

/// A first frame other than SETTINGS after the preface: GOAWAY(PROTOCOL_ERROR) (§3.4).
#[tokio::test]
async fn first_frame_not_settings_gets_goaway_protocol_error() {
    let server = server().await;
    let mut opening = PREFACE.to_vec();
    opening.extend(frame(PING, 0, 0, &[0; 8]));
    let (mut raw, _reader) = Raw::open(server.addr, &opening).await;
    let goaway = raw.expect_goaway().await;
    assert_eq!(goaway.code, PROTOCOL_ERROR, "{goaway:?}");
    raw.expect_closed().await;
    good_call(server.addr).await;
}

/// Pseudo-header fields in trailers make the request malformed (RFC 9113 §8.1: "Trailers MUST
/// NOT include pseudo-header fields"; §8.1.1: a stream error of type PROTOCOL_ERROR). h2 0.4
/// drops pseudo-headers from a trailer block without a word (`Headers::into_fields`), so
/// neither it nor our layer, which never sees them, can refuse the request: the call below
/// succeeds. Reproduction for the h2 maintainers: `docs/h2-findings.md`.
#[tokio::test]
#[ignore = "h2 0.4 discards pseudo-headers in trailers silently (docs/h2-findings.md)"]
async fn pseudo_header_in_trailers_resets_the_stream() {
    let server = server().await;
    let mut raw = Raw::connect(server.addr).await;
    let mut bytes = frame(HEADERS, END_HEADERS, 1, &request_block(UNARY));
    bytes.extend(frame(DATA, 0, 1, &grpc_message("hi")));
    let mut trailer = Vec::new();
    literal(&mut trailer, ":path", b"/test.Echo/Unary");
    bytes.extend(frame(HEADERS, END_HEADERS | END_STREAM, 1, &trailer));
    assert!(raw.send(&bytes).await);
    assert_eq!(raw.stream_end(1).await, Some(PROTOCOL_ERROR));
}

/// The same 100,000 entries from a client that never acknowledges our SETTINGS: h2's server
/// applies the header-list limit from its handshake on (not from the ACK, RFC 9113 §6.5.3), so
/// a client cannot escape it by never acknowledging.
#[tokio::test]
async fn header_list_limit_holds_before_the_settings_ack() {
    let server = server().await;
    let mut raw = Raw::connect_acking(server.addr, false).await;
    let _ = raw.send(&tiny_entries(100_000)).await;
    let goaway = raw.expect_goaway().await;
    assert_eq!(goaway.code, ENHANCE_YOUR_CALM, "{goaway:?}");
}

/// Not an attack: calls that end by deadline while the client is still sending, whose last
/// DATA crosses the server's RST_STREAM(NO_ERROR), 2,000 of them on one connection. h2 answers
/// a frame for a stream it has forgotten with a counted reset, and closes the connection with
/// GOAWAY(ENHANCE_YOUR_CALM, "too_many_internal_resets") past 1,024 of them in its lifetime;
/// remembering 50 reset streams (h2's default) lost this connection (and the soak's, every
/// ~60,000 calls). With `REMEMBERED_RESETS` the late frames are recognised and dropped, and
/// the connection serves on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_frames_of_calls_ended_by_deadline_do_not_close_the_connection() {
    // 500 calls open at once, past the default 200 streams per connection: raised, so the
    // test is about remembered resets, not about the stream limit.
    let server = start_echo_with(|builder| builder.max_concurrent_streams(1000)).await;
    let mut raw = Raw::connect(server.addr).await;
    let mut block = request_block(UNARY);
    literal(&mut block, "grpc-timeout", b"1m");
    let mut next = 1u32;
    for _round in 0..4 {
        let streams: Vec<u32> = (0..500).map(|i| next + 2 * i).collect();
        next += 2 * 500;
        let mut bytes = Vec::new();
        for &stream in &streams {
            bytes.extend(frame(HEADERS, END_HEADERS, stream, &block));
        }
        assert!(raw.send(&bytes).await);
        // Every call ends DEADLINE_EXCEEDED (trailers-only, then RST_STREAM(NO_ERROR)).
        let mut ended = 0;
        while ended < streams.len() {
            let frame = raw.next_frame().await.expect("answers before EOF");
            assert_ne!(frame.kind, GOAWAY, "{frame:?}");
            if frame.kind == HEADERS && frame.flags & END_STREAM != 0 {
                ended += 1;
            }
        }
        // The client's message and END_STREAM, sent before it saw the answers.
        let mut late = Vec::new();
        for &stream in &streams {
            late.extend(frame(DATA, END_STREAM, stream, &grpc_message("late")));
        }
        assert!(raw.send(&late).await);
    }
    assert!(raw.send(&unary_frames(next, UNARY)).await);
    assert_eq!(raw.stream_end(next).await, None);
}

/// SETTINGS_MAX_CONCURRENT_STREAMS is announced (200 by default, or what the builder says), and
/// a client that opens more streams than that anyway gets the one over the limit refused with
/// RST_STREAM(REFUSED_STREAM) (RFC 9113 §5.1.2), its other calls untouched; once a stream
/// closes, the next one is accepted on the same connection.
#[tokio::test]
async fn a_stream_over_max_concurrent_streams_is_refused() {
    let server = server().await;
    let raw = Raw::connect(server.addr).await;
    assert!(
        raw.server_settings.contains(&(MAX_CONCURRENT_STREAMS, 200)),
        "{:?}",
        raw.server_settings
    );
    let server = start_echo_with(|builder| builder.max_concurrent_streams(4)).await;
    let mut raw = Raw::connect(server.addr).await;
    assert!(
        raw.server_settings.contains(&(MAX_CONCURRENT_STREAMS, 4)),
        "{:?}",
        raw.server_settings
    );
    // Four unary calls whose request message has not come yet: all open, all waiting.
    let mut bytes = Vec::new();
    for stream in [1, 3, 5, 7] {
        bytes.extend(frame(HEADERS, END_HEADERS, stream, &request_block(UNARY)));
    }
    // The fifth, over the limit.
    bytes.extend(unary_frames(9, UNARY));
    assert!(raw.send(&bytes).await);
    assert_eq!(raw.stream_end(9).await, Some(REFUSED_STREAM));
    // The four were not disturbed: each completes when its message comes.
    for stream in [1, 3, 5, 7] {
        assert!(
            raw.send(&frame(DATA, END_STREAM, stream, &grpc_message("hi")))
                .await
        );
        assert_eq!(raw.stream_end(stream).await, None, "stream {stream}");
    }
    // The connection serves on: a new stream is accepted once the closed ones are released
    // (h2 counts a stream until the server has dropped it, a moment after its trailers).
    let mut next = 11;
    let accepted = loop {
        assert!(raw.send(&unary_frames(next, UNARY)).await);
        match raw.stream_end(next).await {
            None => break next,
            Some(code) => assert_eq!(code, REFUSED_STREAM),
        }
        assert!(next < 11 + 2 * 50, "never accepted another stream");
        next += 2;
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    eprintln!("max_concurrent_streams 4: stream {accepted} accepted after the four closed");
}

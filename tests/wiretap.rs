//! `grpc-wiretap` between real peers: every interop case passes through it unchanged, and what
//! it prints names each call's method and final status correctly.
//!
//! ```text
//!   interop client ──► grpc-wiretap --listen 127.0.0.1:0 --json ──► interop server
//!   (per case: PASS)        │ stdout: one JSON object per call
//!                           ▼
//!   this test: the calls of each case (its connections) == the calls the case makes
//!
//!   grpc_go_through_the_wiretap        grpc-go client  ─► wiretap ─► grpc-go server
//!   grpcio_through_the_wiretap         grpcio client   ─► wiretap ─► our server
//!   our_client_through_the_wiretap     our client      ─► wiretap ─► grpc-go server
//! ```
//!
//! The rule checked: a relay for h2c forwards bytes, not meaning, so a peer's own interop
//! client still passes every case; and the wiretap's reading of the wire agrees with what
//! interop-test-descriptions.md says each case does: which methods it calls, and the status
//! each call ends with (grpc-status, or the RST_STREAM a cancelled call ends with).
//!
//! Also here: the golden output of a fixed captured conversation (`tests/wiretap/`), robustness
//! (a peer that is not HTTP/2, bytes the decoder cannot read, many connections at once), and
//! `--proto`. Refresh a golden after a deliberate change with
//! `BLESS=1 cargo test --features wiretap --test wiretap golden`, and review the diff.

mod common;
mod go;
mod python;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

const WIRETAP: &str = env!("CARGO_BIN_EXE_grpc-wiretap");

/// A running `grpc-wiretap --json`; its stdout lines gathered on a thread; killed on drop.
struct Wiretap {
    addr: SocketAddr,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Wiretap {
    fn start(upstream: SocketAddr, extra: &[&str]) -> Wiretap {
        let mut child = Command::new(WIRETAP)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &upstream.to_string(),
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start grpc-wiretap");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            let _ = tx.send(lines.next());
            for line in lines.map_while(Result::ok) {
                eprintln!("grpc-wiretap stderr: {line}");
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("grpc-wiretap reports its address")
            .expect("a line")
            .expect("utf-8");
        let addr: SocketAddr = first
            .strip_prefix("grpc-wiretap: listening on ")
            .and_then(|rest| rest.split(',').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line: {first}"));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Wiretap { addr, child, lines }
    }

    fn len(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// Waits (bounded) until the output from line `from` on holds `n` "connection closed"
    /// records, then returns those lines parsed.
    fn wait_closed(&self, from: usize, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let records: Vec<Value> = self.lines.lock().unwrap()[from..]
                .iter()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
                .collect();
            let closed = records
                .iter()
                .filter(|r| r["type"] == "connection" && r["text"] == "connection closed")
                .count();
            if closed >= n {
                return records;
            }
            assert!(
                Instant::now() < deadline,
                "grpc-wiretap printed {closed} of {n} connection ends:\n{records:#?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Wiretap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What interop-test-descriptions.md says each case calls, and how each call ends:
/// (path, status), in no particular order.
fn expected_calls(case: &str) -> Vec<(&'static str, &'static str)> {
    const T: &str = "/grpc.testing.TestService/";
    let calls: &[(&str, &str)] = match case {
        "empty_unary" => &[("EmptyCall", "OK")],
        "large_unary" => &[("UnaryCall", "OK")],
        "client_streaming" => &[("StreamingInputCall", "OK")],
        "server_streaming" => &[("StreamingOutputCall", "OK")],
        "ping_pong" | "empty_stream" => &[("FullDuplexCall", "OK")],
        "timeout_on_sleeping_server" => &[("FullDuplexCall", "DEADLINE_EXCEEDED")],
        "cancel_after_begin" => &[("StreamingInputCall", "CANCELLED")],
        "cancel_after_first_response" => &[("FullDuplexCall", "CANCELLED")],
        "status_code_and_message" => &[("UnaryCall", "UNKNOWN"), ("FullDuplexCall", "UNKNOWN")],
        "special_status_message" => &[("UnaryCall", "UNKNOWN")],
        "custom_metadata" => &[("UnaryCall", "OK"), ("FullDuplexCall", "OK")],
        "unimplemented_method" => &[("UnimplementedCall", "UNIMPLEMENTED")],
        "unimplemented_service" => {
            return vec![(
                "/grpc.testing.UnimplementedService/UnimplementedCall",
                "UNIMPLEMENTED",
            )];
        }
        // The probe (expect_compressed on a plain request) is refused, then a compressed
        // request expecting compression and a plain one expecting none both succeed.
        "client_compressed_unary" => &[
            ("UnaryCall", "INVALID_ARGUMENT"),
            ("UnaryCall", "OK"),
            ("UnaryCall", "OK"),
        ],
        "client_compressed_streaming" => &[
            ("StreamingInputCall", "INVALID_ARGUMENT"),
            ("StreamingInputCall", "OK"),
        ],
        "server_compressed_unary" => &[("UnaryCall", "OK"), ("UnaryCall", "OK")],
        "server_compressed_streaming" => &[("StreamingOutputCall", "OK")],
        other => panic!("no expectation for {other}"),
    };
    calls
        .iter()
        .map(|(method, status)| {
            let path: &'static str = Box::leak(format!("{T}{method}").into_boxed_str());
            (path, *status)
        })
        .collect()
}

const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "status_code_and_message",
    "special_status_message",
    "custom_metadata",
    "unimplemented_method",
    "unimplemented_service",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_compressed_streaming",
    "server_compressed_streaming",
];

/// The calls of JSON records: (path, status), sorted; each call's service and method must
/// be its path's two halves.
fn calls_of(records: &[Value]) -> Vec<(String, String)> {
    let mut calls: Vec<(String, String)> = records
        .iter()
        .filter(|r| r["type"] == "call")
        .map(|r| {
            let path = r["path"].as_str().unwrap_or_default().to_owned();
            assert_eq!(
                format!(
                    "/{}/{}",
                    r["service"].as_str().unwrap(),
                    r["method"].as_str().unwrap()
                ),
                path,
                "service and method name the path: {r}"
            );
            (path, r["status"].as_str().unwrap().to_owned())
        })
        .collect();
    calls.sort();
    calls
}

/// Runs every interop case with `client` through a wiretap in front of `server`, checking
/// each case passed and the calls the wiretap printed for it.
fn every_case_through_the_wiretap(client: impl Fn() -> Command, server: SocketAddr, who: &str) {
    let tap = Wiretap::start(server, &["--json"]);
    let mut problems = Vec::new();
    for case in CASES {
        let from = tap.len();
        // The client's connections: it opens one per run (grpc-go, ours, grpcio all do).
        common::interop::run_client_case(client(), tap.addr, case, who);
        let records = tap.wait_closed(from, 1);
        let seen = calls_of(&records);
        // grpc-go and our client open a client stream only with its first message or
        // half-close, so a call cancelled before either never reaches the wire: nothing to
        // print. (grpcio sends the headers, then RST_STREAM(CANCEL).)
        if *case == "cancel_after_begin" && seen.is_empty() && !who.starts_with("grpcio") {
            continue;
        }
        // The case cancels a client stream with no messages, and then half-closes (grpc-go's
        // CloseAndRecv; grpcio's empty request iterator): now and then the half-close leaves
        // first, and the server answers the empty stream OK before the reset arrives. The
        // wire then says OK (the client's CANCELLED is its own decision, never sent); accept
        // it only in that shape: no request message, OK in trailers.
        if *case == "cancel_after_begin" {
            let raced = records.iter().any(|r| {
                r["type"] == "call"
                    && r["status"] == "OK"
                    && r["status_from"] == "trailers"
                    && r["request_messages"].as_array().is_some_and(Vec::is_empty)
            });
            if raced && seen.len() == 1 {
                continue;
            }
        }
        let mut expected: Vec<(String, String)> = expected_calls(case)
            .into_iter()
            .map(|(p, s)| (p.to_owned(), s.to_owned()))
            .collect();
        expected.sort();
        if seen != expected {
            problems.push(format!("{case}: printed {seen:?}, expected {expected:?}"));
        }
        if *case == "special_status_message" {
            let call = records.iter().find(|r| r["type"] == "call").unwrap();
            let want = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
            if call["message"] != want {
                problems.push(format!(
                    "{case}: message {} not percent-decoded",
                    call["message"]
                ));
            }
        }
        if *case == "custom_metadata" {
            // The -bin trailer the case echoes (0xababab) is shown decoded.
            let shows = records.iter().any(|r| {
                r["lines"].as_array().is_some_and(|lines| {
                    lines.iter().any(|l| {
                        l["text"].as_str().is_some_and(|t| {
                            t.starts_with("x-grpc-test-echo-trailing-bin:")
                                && t.contains("3 bytes: ab ab ab")
                        })
                    })
                })
            });
            if !shows {
                problems.push(format!("{case}: x-grpc-test-echo-trailing-bin not decoded"));
            }
        }
    }
    assert!(problems.is_empty(), "{who}:\n{}", problems.join("\n"));
}

#[test]
fn grpc_go_through_the_wiretap() {
    let go_client = || Command::new(&go::binaries().client);
    every_case_through_the_wiretap(
        go_client,
        go::go_server(),
        "grpc-go client via wiretap to grpc-go server",
    );
}

#[test]
fn grpcio_through_the_wiretap() {
    let python = || {
        let mut client = Command::new(python::interpreter());
        client.arg(common::repo_root().join("tests/python/interop_client.py"));
        client
    };
    every_case_through_the_wiretap(
        python,
        common::interop_server(),
        "grpcio client via wiretap to our server",
    );
}

#[test]
fn our_client_through_the_wiretap() {
    let ours = || Command::new(common::interop::rust_interop_client());
    every_case_through_the_wiretap(
        ours,
        go::go_server(),
        "our client via wiretap to grpc-go server",
    );
}

/// The captured conversations and their goldens.
fn fixture(name: &str) -> PathBuf {
    common::repo_root().join("tests/wiretap").join(name)
}

/// Replays `capture` with `args` and compares stdout with `golden` (or rewrites it when
/// `BLESS` is set).
fn check_golden(capture: &str, args: &[&str], golden: &str) {
    let out = Command::new(WIRETAP)
        .arg("--replay")
        .arg(fixture(capture))
        .args(args)
        .output()
        .expect("run grpc-wiretap --replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("utf-8 output");
    assert!(
        !printed.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
    let path = fixture(golden);
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &printed).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if printed != expected {
        let first = printed
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(printed.lines().count().min(expected.lines().count()));
        panic!(
            "{golden} differs from the output, first at line {}:\n  printed:  {:?}\n  golden:   {:?}\n\
             (after a deliberate change: BLESS=1 cargo test --features wiretap --test wiretap golden)",
            first + 1,
            printed.lines().nth(first),
            expected.lines().nth(first),
        );
    }
}

/// grpc-go's client against our server, five cases, printed as text: the reviewed golden.
#[test]
fn golden_text_of_a_captured_conversation() {
    check_golden("conversation.txt", &[], "conversation.golden");
}

/// The same conversation with `--explain`: every line kind cites its rule.
#[test]
fn golden_explain_of_a_captured_conversation() {
    check_golden(
        "conversation.txt",
        &["--explain"],
        "conversation.explain.golden",
    );
}

/// A client that does not speak HTTP/2 still gets its bytes through, unchanged, both ways;
/// the wiretap says it relays them raw.
#[test]
fn bytes_it_cannot_read_are_relayed_unchanged() {
    // A plain TCP echo server as the upstream.
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo_addr = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in echo.incoming().take(40) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf) {
                    if n == 0 || stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let tap = Wiretap::start(echo_addr, &["--json"]);
    // Many connections at once, each sending something no HTTP/2 decoder accepts: an HTTP/1.1
    // request, a TLS-like record, a valid preface followed by a frame whose HPACK is garbage.
    let mut preface_then_garbage = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface_then_garbage.extend([0, 0, 4, 1, 4, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]);
    preface_then_garbage.extend([0, 0, 3, 0, 1, 0, 0, 0, 1, 9, 9, 9]);
    let payloads: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5],
        preface_then_garbage,
    ];
    let from = tap.len();
    let handles: Vec<_> = (0..30)
        .map(|i| {
            let payload = payloads[i % payloads.len()].clone();
            let addr = tap.addr;
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                s.write_all(&payload).unwrap();
                let mut back = vec![0u8; payload.len()];
                s.read_exact(&mut back).unwrap();
                assert_eq!(back, payload, "echoed unchanged through the wiretap");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let records = tap.wait_closed(from, 30);
    assert!(
        records.iter().any(|r| r["kind"] == "raw"
            && r["text"]
                .as_str()
                .unwrap()
                .contains("not an HTTP/2 client preface")),
        "the non-HTTP/2 connections are named raw"
    );
    assert!(
        records.iter().any(
            |r| r["lines"]
                .as_array()
                .is_some_and(|ls| ls.iter().any(|l| l["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("header block not decoded")))
        ),
        "the bad header block is shown raw"
    );
}

/// `--proto` with the interop contracts' descriptor set: requests and responses as text.
#[test]
fn proto_descriptors_decode_messages_by_type() {
    let dir = common::repo_root().join("target/wiretap-test");
    std::fs::create_dir_all(&dir).unwrap();
    let set = dir.join("grpc_testing.pb");
    let status = Command::new("protoc")
        .args(["-I", "/usr/share/grpc-proto", "--include_imports"])
        .arg(format!("--descriptor_set_out={}", set.display()))
        .arg("grpc/testing/test.proto")
        .status()
        .expect("protoc (tests/peers/setup.sh installs it)");
    assert!(status.success());
    let out = Command::new(WIRETAP)
        .arg("--replay")
        .arg(fixture("conversation.txt"))
        .arg("--proto")
        .arg(&set)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // special_status_message's request carries its status as an EchoStatus.
    assert!(text.contains("grpc.testing.SimpleRequest {"), "{text}");
    assert!(text.contains("response_status {"), "{text}");
    assert!(text.contains("code: 2"), "{text}");
    assert!(text.contains("grpc.testing.Empty {}"), "{text}");
}

/// The lines of each fenced block marked `<!-- golden: NAME -->` in `page`, with NAME.
fn golden_blocks(page: &str) -> Vec<(String, Vec<String>)> {
    let mut blocks = Vec::new();
    let mut lines = page.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix("<!-- golden: ")
            .and_then(|rest| rest.strip_suffix(" -->"))
        else {
            continue;
        };
        assert!(
            lines.next().is_some_and(|l| l.starts_with("```")),
            "a fence after {name}"
        );
        let body = lines
            .by_ref()
            .take_while(|l| !l.starts_with("```"))
            .map(str::to_owned)
            .collect();
        blocks.push((name.to_owned(), body));
    }
    blocks
}

/// What docs/wiretap.md and the README show as the wiretap's output is a run of lines of
/// the golden output, so it is what the binary prints.
#[test]
fn docs_show_real_output() {
    let mut checked = 0;
    for page in ["docs/wiretap.md", "README.md"] {
        let text = std::fs::read_to_string(common::repo_root().join(page)).unwrap();
        for (name, block) in golden_blocks(&text) {
            let golden = std::fs::read_to_string(fixture(&name)).unwrap();
            let golden: Vec<&str> = golden.lines().collect();
            let found = golden
                .windows(block.len().max(1))
                .any(|w| w.iter().zip(&block).all(|(a, b)| a == b));
            assert!(
                found,
                "{page}: the block marked golden: {name} is not in {name}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 2,
        "docs/wiretap.md and README.md each show a golden block"
    );
}

/// `--reflect`: the types come from the upstream server's reflection service (our server,
/// v1), and a grpc-go client's call is printed message by message.
#[test]
fn reflection_gives_the_types() {
    use bare_grpc::Server;
    use bare_grpc::services::reflection::Reflection;
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server_addr = std_listener.local_addr().unwrap();
    std_listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let reflection = Reflection::builder()
                .file_descriptor_set(bare_grpc_contracts::FILE_DESCRIPTOR_SET)
                .unwrap()
                .service("grpc.testing.TestService")
                .build()
                .unwrap();
            let server = Server::builder()
                .add_service(common::test_service::test_service())
                .add_service(reflection.v1())
                .build();
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let _ = server.serve(listener).await;
        });
    });
    let tap = Wiretap::start(server_addr, &["--reflect"]);
    let client = Command::new(&go::binaries().client);
    common::interop::run_client_case(client, tap.addr, "special_status_message", "grpc-go client");
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = tap.lines.lock().unwrap().join("\n");
        if text.contains("= status UNKNOWN") || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(text.contains("grpc.testing.SimpleRequest {"), "{text}");
    assert!(text.contains("response_status {"), "{text}");
    assert!(
        text.contains("message: \"\\t\\ntest with whitespace"),
        "{text}"
    );
}

/// Colour only on a terminal: under a pseudo-terminal (util-linux `script`) the output has ANSI
/// colour, and `--no-colour` takes it away; piped (every other test here), none.
#[test]
fn colour_only_on_a_terminal() {
    let run = |extra: &str| {
        let command = format!(
            "{WIRETAP} --replay {} {extra}",
            fixture("conversation.txt").display()
        );
        let out = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("util-linux `script` runs the wiretap under a pseudo-terminal");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = run("");
    assert!(
        coloured.contains("\x1b[1;32mstatus OK (trailers)\x1b[0m"),
        "{coloured}"
    );
    let plain = run("--no-colour");
    assert!(
        plain.contains("status OK (trailers)") && !plain.contains('\x1b'),
        "{plain}"
    );
}

/// Many connections of real calls at once: h2load (nghttp2, installed by tests/peers/setup.sh)
/// makes 2,000 unary calls over 8 connections × 8 streams through the wiretap to our server;
/// every call succeeds and every one is printed with its method and OK.
#[test]
fn many_concurrent_connections_of_real_calls() {
    let tap = Wiretap::start(common::interop_server(), &["--json"]);
    let dir = common::repo_root().join("target/wiretap-test");
    std::fs::create_dir_all(&dir).unwrap();
    // The prefix and SimpleRequest { response_size: 2, payload { body: "hi" } }.
    let body = dir.join("unary-request.bin");
    std::fs::write(
        &body,
        [0, 0, 0, 0, 8, 0x10, 2, 0x1a, 4, 0x12, 2, b'h', b'i'],
    )
    .unwrap();
    let from = tap.len();
    let mut h2load = Command::new("h2load");
    h2load
        .args(["-n", "2000", "-c", "8", "-m", "8", "-d"])
        .arg(&body)
        .args(["-H", "content-type: application/grpc", "-H", "te: trailers"])
        .arg(format!(
            "http://{}/grpc.testing.TestService/UnaryCall",
            tap.addr
        ));
    let out = common::run_peer(h2load, Duration::from_secs(120));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("2000 succeeded, 0 failed"),
        "h2load through the wiretap:\n{stdout}"
    );
    let records = tap.wait_closed(from, 8);
    let calls: Vec<&Value> = records.iter().filter(|r| r["type"] == "call").collect();
    assert_eq!(calls.len(), 2000, "one record per call");
    for call in calls {
        assert_eq!(call["method"], "UnaryCall");
        assert_eq!(call["status"], "OK", "{call}");
    }
}

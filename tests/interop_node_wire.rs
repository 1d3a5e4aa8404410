//! What grpc-js does on the wire that the interop cases only show indirectly, pinned one fact
//! per test (each one a row of docs/testing.md's "grpc-js: differences met"):
//!
//! ```text
//!   grpc-js client (tests/node/wire_probe.js) ──► raw h2 server (this test): records request
//!                                                 headers and RST_STREAM reasons, answers
//!                                                 or resets as the test says
//!   grpc-js client (wire_probe.js keepalive)  ──► our interop server (in-process)
//!   raw h2 client (this test)                 ──► grpc-js server (tests/node/interop_server.js)
//! ```
//!
//! The rule: PROTOCOL-HTTP2 leaves implementations choices (which `grpc-timeout` unit, whether
//! an error before any message is trailers-only, how `grpc-message` is percent-encoded, which
//! RST_STREAM code a cancel carries, whether to send keepalive PINGs). A peer's choices are
//! what our code must meet, so they are recorded here against the real grpc-js, not read from
//! its source: if a grpc-js upgrade changes one, its test fails and the doc row is revisited.
//!
//! Every wait is bounded: the Node probe under `common::run_peer`'s timeout (and its own 20 s
//! bound), every read of the raw h2 side under `tokio::time::timeout`.

mod common;
mod node;
#[allow(dead_code)]
mod raw_h2_support;

use std::future::poll_fn;
use std::net::SocketAddr;
use std::process::Output;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::Reason;
use prost::Message;
use raw_h2_support::{bad_server, framed, grpc_head, trailers};
use tokio::sync::mpsc;

/// Bound on one probe run.
const PEER_TIMEOUT: Duration = Duration::from_secs(60);

/// Bound on any single wait inside a test.
const WAIT: Duration = Duration::from_secs(10);

/// Runs `node wire_probe.js <args>` (blocking, bounded) with extra environment; returns its
/// output after checking it exited 0.
async fn probe(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut cmd = node::command("wire_probe.js");
        cmd.args(&args).envs(env);
        let out = common::run_peer(cmd, PEER_TIMEOUT);
        assert!(
            out.status.success(),
            "wire_probe.js {args:?} failed ({})\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    })
    .await
    .expect("probe runner")
}

/// The `status <code> <details>` lines the probe printed, as (code, details JSON).
fn statuses(out: &Output) -> Vec<(i32, String)> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("status "))
        .map(|l| {
            let (code, details) = l.split_once(' ').expect("status line");
            (code.parse().expect("code"), details.to_owned())
        })
        .collect()
}

/// The answer to EmptyCall: one empty message, then grpc-status 0.
fn answer_empty(mut respond: h2::server::SendResponse<Bytes>) {
    let mut body = respond.send_response(grpc_head(), false).expect("head");
    body.send_data(framed(false, 0, &[]), false).expect("data");
    body.send_trailers(trailers(&[("grpc-status", "0")]))
        .expect("trailers");
}

/// How a client ended its side of a stream.
#[derive(Debug, PartialEq)]
struct ClientEnd {
    /// Its request body ended with END_STREAM (a half-close) before anything else.
    half_closed: bool,
    /// The RST_STREAM reason it sent, if it reset the stream.
    reset: Option<Reason>,
}

/// Reads a request body until the client half-closes or resets, then waits (bounded) for a
/// reset after a half-close. `response` is the stream's sending half, for `poll_reset`.
async fn client_end(
    body: &mut h2::RecvStream,
    poll_reset: impl FnMut(&mut std::task::Context<'_>) -> std::task::Poll<Result<Reason, h2::Error>>,
) -> ClientEnd {
    loop {
        match tokio::time::timeout(WAIT, body.data()).await {
            Err(_) => panic!("the client neither finished nor reset within {WAIT:?}"),
            Ok(None) => break,
            Ok(Some(Ok(chunk))) => {
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            Ok(Some(Err(e))) => {
                return ClientEnd {
                    half_closed: false,
                    reset: e.reason(),
                };
            }
        }
    }
    let reset = tokio::time::timeout(WAIT, poll_fn(poll_reset)).await;
    ClientEnd {
        half_closed: true,
        reset: reset.ok().and_then(Result::ok),
    }
}

// ---- what a grpc-js client sends ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_request_headers_timeout_in_millis_and_lowercased_metadata() {
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let addr = bad_server(move |request, respond| {
        let seen = seen_tx.clone();
        async move {
            let _ = seen.send((request.uri().clone(), request.headers().clone()));
            answer_empty(respond);
        }
    })
    .await;
    let out = probe(&["request", &addr.to_string()], &[]).await;
    assert_eq!(statuses(&out), [(0, "\"\"".to_owned())]);
    let (uri, headers) = seen_rx.recv().await.expect("one request");
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    assert_eq!(uri.path(), "/grpc.testing.TestService/EmptyCall");
    assert_eq!(header("content-type").as_deref(), Some("application/grpc"));
    assert_eq!(header("te").as_deref(), Some("trailers"));
    assert!(
        header("user-agent").is_some_and(|ua| ua.starts_with("grpc-node-js/1.14.")),
        "user-agent {:?}",
        header("user-agent")
    );
    // It offers every encoding it can read, and leaves grpc-encoding out when it sends plain.
    assert_eq!(
        header("grpc-accept-encoding").as_deref(),
        Some("identity,deflate,gzip")
    );
    assert_eq!(header("accept-encoding").as_deref(), Some("identity"));
    assert_eq!(header("grpc-encoding"), None);
    // A 10 s deadline goes out in milliseconds, rounded up: `grpc-timeout: <n>m`, n <= 10000.
    let timeout = header("grpc-timeout").expect("grpc-timeout");
    let millis: u64 = timeout
        .strip_suffix('m')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("grpc-timeout {timeout:?} is not in milliseconds"));
    assert!((5_000..=10_000).contains(&millis), "grpc-timeout {timeout}");
    // Metadata keys are lowercased by grpc-js's Metadata (HTTP/2 forbids capitals); the value
    // is sent as written.
    assert_eq!(
        header("x-node-mixed-case").as_deref(),
        Some("Value Kept As Written")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_cancel_and_its_own_deadline_are_rst_stream_cancel() {
    let (reason_tx, mut reason_rx) = mpsc::unbounded_channel();
    let addr = bad_server(move |request, mut respond| {
        let reasons = reason_tx.clone();
        async move {
            // The probe cancels once the response headers arrive.
            let mut sending = respond.send_response(grpc_head(), false).expect("head");
            let mut body = request.into_body();
            let end = client_end(&mut body, |cx| sending.poll_reset(cx)).await;
            let _ = reasons.send(end);
        }
    })
    .await;

    let out = probe(&["cancel", &addr.to_string()], &[]).await;
    assert_eq!(statuses(&out)[0].0, 1, "CANCELLED: {:?}", statuses(&out));
    let end = reason_rx.recv().await.expect("cancel seen");
    assert_eq!(
        end,
        ClientEnd {
            half_closed: true,
            reset: Some(Reason::CANCEL)
        },
        "call.cancel()"
    );

    // A new connection for the second probe: bad_server serves one.
    let (reason_tx, mut reason_rx) = mpsc::unbounded_channel();
    let addr: SocketAddr = bad_server(move |request, mut respond| {
        let reasons = reason_tx.clone();
        async move {
            let timeout = request.headers().get("grpc-timeout").cloned();
            let started = Instant::now();
            let mut body = request.into_body();
            let end = client_end(&mut body, |cx| respond.poll_reset(cx)).await;
            let _ = reasons.send((timeout, end, started.elapsed()));
        }
    })
    .await;
    let out = probe(&["deadline", &addr.to_string()], &[]).await;
    assert_eq!(
        statuses(&out)[0].0,
        4,
        "DEADLINE_EXCEEDED: {:?}",
        statuses(&out)
    );
    let (timeout, end, after) = reason_rx.recv().await.expect("deadline seen");
    let timeout = timeout.expect("grpc-timeout sent");
    assert!(
        timeout.to_str().is_ok_and(|t| t.ends_with('m')),
        "{timeout:?}"
    );
    // grpc-js does not wait for the server's DEADLINE_EXCEEDED: at its deadline it ends the
    // call itself and resets the stream with CANCEL.
    assert_eq!(
        end,
        ClientEnd {
            half_closed: true,
            reset: Some(Reason::CANCEL)
        },
        "deadline"
    );
    assert!(after < Duration::from_secs(5), "reset after {after:?}");
}

/// RST_STREAM reasons sent to a grpc-js client, and the status grpc-js reports for each.
const RESETS: [(Reason, i32); 8] = [
    (Reason::NO_ERROR, 13),           // INTERNAL "Call ended without gRPC status"
    (Reason::PROTOCOL_ERROR, 13),     // INTERNAL
    (Reason::INTERNAL_ERROR, 13),     // INTERNAL
    (Reason::REFUSED_STREAM, 14),     // UNAVAILABLE
    (Reason::CANCEL, 1),              // CANCELLED
    (Reason::ENHANCE_YOUR_CALM, 8),   // RESOURCE_EXHAUSTED
    (Reason::INADEQUATE_SECURITY, 7), // PERMISSION_DENIED
    (Reason::STREAM_CLOSED, 13),      // INTERNAL (ours: UNKNOWN, see docs/testing.md)
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_reads_rst_stream_codes_as_the_spec_maps_them() {
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let addr = bad_server(move |request, mut respond| {
        let seen = seen_tx.clone();
        async move {
            let index: usize = request.headers()["x-probe-call"]
                .to_str()
                .expect("ascii")
                .parse()
                .expect("index");
            let _ = seen.send(index);
            respond.send_reset(RESETS[index].0);
        }
    })
    .await;
    let out = probe(
        &["calls", &addr.to_string(), &RESETS.len().to_string()],
        &[],
    )
    .await;
    let got = statuses(&out);
    let codes: Vec<i32> = got.iter().map(|(code, _)| *code).collect();
    let expected: Vec<i32> = RESETS.iter().map(|(_, code)| *code).collect();
    assert_eq!(codes, expected, "{got:#?}");
    // Each call reached the server once, but for REFUSED_STREAM: grpc-js retries a refused
    // stream once by itself (a transparent retry: the server did not process it), and reports
    // UNAVAILABLE when the retry is refused too.
    let mut streams = Vec::new();
    while let Ok(index) = seen_rx.try_recv() {
        streams.push(index);
    }
    streams.sort();
    assert_eq!(streams, [0, 1, 2, 3, 3, 4, 5, 6, 7]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_keepalive_pings_are_off_by_default_and_answered_when_on() {
    let addr = common::interop_server().to_string();
    let trace = [("GRPC_TRACE", "keepalive"), ("GRPC_VERBOSITY", "DEBUG")];
    let count = |out: &Output, what: &str| {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains(what))
            .count()
    };

    // Default options: two calls 1 s apart, and not one PING in between.
    let idle = probe(&["idle", &addr], &trace).await;
    assert_eq!(statuses(&idle).len(), 2);
    assert!(statuses(&idle).iter().all(|(code, _)| *code == 0));
    assert_eq!(count(&idle, "Sending ping"), 0, "{idle:?}");

    // keepalive_time_ms = 100: a PING every 100 ms; our server acknowledges each (h2 answers
    // PINGs, and we enforce no minimum ping interval), so the connection stays up.
    let pinged = probe(&["keepalive", &addr], &trace).await;
    assert!(statuses(&pinged).iter().all(|(code, _)| *code == 0));
    let acked = count(&pinged, "Received ping response");
    assert!(
        acked >= 3,
        "{acked} ping responses in 1 s\nstderr:\n{}",
        String::from_utf8_lossy(&pinged.stderr)
    );
    assert_eq!(count(&pinged, "Ping failed"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_deflate_channel_falls_back_after_our_accept_encoding() {
    // grpc-js compresses with deflate when asked; we read gzip only. The first call is
    // UNIMPLEMENTED, and our answer lists what we accept in its response headers, where grpc-js
    // reads it: the same channel then sends plain, and the next calls succeed. (Answered
    // trailers-only, as before, the list went unread and every call failed.)
    let addr = common::interop_server().to_string();
    let out = probe(&["deflate", &addr], &[]).await;
    let got = statuses(&out);
    assert_eq!(got.len(), 3, "{out:?}");
    assert_eq!(got[0].0, 12, "{got:?}");
    assert!(got[0].1.contains("deflate"), "{got:?}");
    assert_eq!(got[1..], [(0, "\"\"".to_owned()), (0, "\"\"".to_owned())]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("wrong size"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_over_the_size_limits_both_ways_and_the_connection_serves_on() {
    let addr = common::interop_server().to_string();
    let out = probe(&["limits", &addr], &[]).await;
    let got = statuses(&out);
    assert_eq!(got.len(), 3, "{out:?}");
    // 5 MiB up: our server's 4 MiB receive limit, RESOURCE_EXHAUSTED with our message.
    assert_eq!(got[0].0, 8, "{got:?}");
    assert!(got[0].1.contains("receive limit"), "{got:?}");
    // 5 MiB down: grpc-js's own 4 MiB receive limit, RESOURCE_EXHAUSTED with its message.
    assert_eq!(got[1].0, 8, "{got:?}");
    assert!(got[1].1.contains("larger than max"), "{got:?}");
    // And the next call works.
    assert_eq!(got[2], (0, "\"\"".to_owned()));
}

// ---- what a grpc-js server answers -----------------------------------------------------------

/// A raw h2 connection to the grpc-js interop server.
async fn connect_to_grpc_js() -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(node::node_server())
        .await
        .expect("connect");
    let (send, connection) = h2::client::handshake(tcp).await.expect("handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

/// A gRPC request head for `method` of TestService, with extra headers.
fn request(method: &str, extra: &[(&str, &str)]) -> http::Request<()> {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(format!(
            "http://127.0.0.1/grpc.testing.TestService/{method}"
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in extra {
        builder = builder.header(*name, *value);
    }
    builder.body(()).expect("request")
}

/// Sends `request` with `message` (framed) and END_STREAM; returns the response head, the
/// body's bytes and the trailers (None for a trailers-only answer).
async fn call(
    send: &mut h2::client::SendRequest<Bytes>,
    request: http::Request<()>,
    message: &[u8],
) -> (http::response::Parts, Vec<u8>, Option<http::HeaderMap>) {
    let mut send = send.clone().ready().await.expect("ready");
    let (response, mut body) = send.send_request(request, false).expect("send");
    body.send_data(framed(false, message.len() as u32, message), true)
        .expect("data");
    let response = tokio::time::timeout(WAIT, response)
        .await
        .expect("bounded")
        .expect("response");
    let (head, mut recv) = response.into_parts();
    let trailers_only = recv.is_end_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = tokio::time::timeout(WAIT, recv.data())
        .await
        .expect("bounded")
    {
        let chunk = chunk.expect("data");
        let _ = recv.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let trailers = if trailers_only {
        None
    } else {
        tokio::time::timeout(WAIT, recv.trailers())
            .await
            .expect("bounded")
            .expect("trailers")
    };
    (head, bytes, trailers)
}

fn text(map: &http::HeaderMap, name: &str) -> Option<String> {
    map.get(name).map(|v| v.to_str().expect("ascii").to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_server_headers_trailers_only_errors_and_encodeuri_messages() {
    let mut send = connect_to_grpc_js().await;

    // A good call: `application/grpc+proto`, and grpc-encoding: identity in every response's
    // headers even though nothing is compressed; the status in trailers.
    let (head, body, trailers) = call(&mut send, request("EmptyCall", &[]), &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(
        text(&head.headers, "content-type").as_deref(),
        Some("application/grpc+proto")
    );
    assert_eq!(
        text(&head.headers, "grpc-encoding").as_deref(),
        Some("identity")
    );
    assert_eq!(
        text(&head.headers, "grpc-accept-encoding").as_deref(),
        Some("identity,deflate,gzip")
    );
    assert_eq!(body, [0, 0, 0, 0, 0], "one empty message");
    let trailers = trailers.expect("a trailer block");
    assert_eq!(text(&trailers, "grpc-status").as_deref(), Some("0"));

    // An error before any response header: trailers-only, grpc-status in the one HEADERS.
    let (head, body, trailers) = call(&mut send, request("UnimplementedCall", &[]), &[]).await;
    assert!(trailers.is_none(), "trailers-only");
    assert!(body.is_empty());
    assert_eq!(head.status, 200);
    assert_eq!(text(&head.headers, "grpc-status").as_deref(), Some("12"));

    // grpc-message percent-encoded with JavaScript's encodeURI: spaces become %20 (the spec
    // needs only bytes outside 0x20..0x7E and '%' encoded), so a reader must decode any %XX.
    let echo = bare_grpc_contracts::grpc_testing::SimpleRequest {
        response_status: Some(bare_grpc_contracts::grpc_testing::EchoStatus {
            code: 2,
            message: "test status message".into(),
        }),
        ..Default::default()
    };
    let (_, _, trailers) = call(&mut send, request("UnaryCall", &[]), &echo.encode_to_vec()).await;
    let trailers = trailers.expect("echo metadata was sent first, so a trailer block");
    assert_eq!(text(&trailers, "grpc-status").as_deref(), Some("2"));
    assert_eq!(
        text(&trailers, "grpc-message").as_deref(),
        Some("test%20status%20message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_js_server_deadline_ends_with_trailers_and_leaves_the_client_half_open() {
    let send = connect_to_grpc_js().await;
    let mut send = send.ready().await.expect("ready");
    // A bidi call that never half-closes, with a 100 ms grpc-timeout.
    let (response, mut upload) = send
        .send_request(
            request("FullDuplexCall", &[("grpc-timeout", "100m")]),
            false,
        )
        .expect("send");
    let started = Instant::now();
    let response = tokio::time::timeout(WAIT, response)
        .await
        .expect("bounded")
        .expect("response");
    let (head, mut recv) = response.into_parts();
    while let Some(chunk) = tokio::time::timeout(WAIT, recv.data())
        .await
        .expect("bounded")
    {
        chunk.expect("data");
    }
    let trailers = tokio::time::timeout(WAIT, recv.trailers())
        .await
        .expect("bounded")
        .expect("trailers")
        .unwrap_or(head.headers);
    assert_eq!(text(&trailers, "grpc-status").as_deref(), Some("4"));
    assert!(started.elapsed() >= Duration::from_millis(90));
    // Node's http2 sends no RST_STREAM(NO_ERROR) after the trailers (RFC 9113 §8.1 allows
    // one): the client's half stays open, and it is the client that must close it.
    let reset = tokio::time::timeout(
        Duration::from_millis(500),
        poll_fn(|cx| upload.poll_reset(cx)),
    )
    .await;
    assert!(reset.is_err(), "grpc-js reset the open half: {reset:?}");
    upload
        .send_data(Bytes::new(), true)
        .expect("our half can still be closed cleanly");
}

//! The client against servers that answer badly. Each server is a few lines of raw
//! `h2::server` on `127.0.0.1:0` that sends one particular wrong answer; each test asserts
//! the exact code the client returns, and that it returns within a bound (no hangs).
//! The rules are in `src/streaming.rs` (table of how a client call ends).

mod raw_h2_support;

use std::net::SocketAddr;
use std::time::Duration;

use bare_grpc::{Channel, Code, Request, Status};
use bytes::Bytes;
use raw_h2_support::{answer, bad_server, framed, grpc_head, head, message, trailers};
use tokio::net::TcpListener;
use tokio::time::timeout;

/// No call may take longer than this to end, however bad the answer.
const BOUND: Duration = Duration::from_secs(5);

// ---- calls -------------------------------------------------------------------------------

/// A unary call to `addr` (timeout `BOUND * 2` so the client's own deadline never hides a
/// hang: the outer bound fires first only if the client hangs).
async fn unary(addr: SocketAddr) -> Result<String, Status> {
    let channel = Channel::lazy(&addr.to_string()).unwrap();
    let call = channel.unary::<String, String>("/test.Bad/Call", Request::new("hi".into()));
    let response = timeout(BOUND, call).await.expect("the client hung")?;
    Ok(response.into_inner())
}

/// The code a unary call to `addr` ends with.
async fn unary_code(addr: SocketAddr) -> Code {
    match unary(addr).await {
        Ok(answer) => panic!("expected a failure, got {answer:?}"),
        Err(status) => status.code(),
    }
}

// ---- the bad answers ---------------------------------------------------------------------

#[tokio::test]
async fn trailers_without_grpc_status_are_unknown() {
    let addr = bad_server(|_request, mut respond| async move {
        let mut body = respond.send_response(grpc_head(), false).unwrap();
        body.send_data(message("answer"), false).unwrap();
        body.send_trailers(trailers(&[("x-other", "1")])).unwrap();
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::Unknown);
}

#[tokio::test]
async fn body_ending_without_trailers_is_internal() {
    let addr = bad_server(|_request, mut respond| async move {
        let mut body = respond.send_response(grpc_head(), false).unwrap();
        body.send_data(message("answer"), true).unwrap();
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::Internal);
}

#[tokio::test]
async fn http_503_is_unavailable() {
    let addr = bad_server(|_request, mut respond| async move {
        let head = head(503, &[("content-type", "text/plain")]);
        let mut body = respond.send_response(head, false).unwrap();
        body.send_data(Bytes::from_static(b"overloaded"), true)
            .unwrap();
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::Unavailable);
}

#[tokio::test]
async fn http_status_table_applies_without_grpc_status() {
    for (http_status, code) in [
        (400, Code::Internal),
        (401, Code::Unauthenticated),
        (403, Code::PermissionDenied),
        (404, Code::Unimplemented),
        (429, Code::Unavailable),
        (502, Code::Unavailable),
        (504, Code::Unavailable),
        (500, Code::Unknown),
    ] {
        let addr = bad_server(move |_request, mut respond| async move {
            let _ = respond.send_response(head(http_status, &[]), true);
        })
        .await;
        assert_eq!(unary_code(addr).await, code, "HTTP {http_status}");
    }
}

#[tokio::test]
async fn grpc_status_wins_over_the_http_status() {
    // "If grpc-status was provided, it must be used" (http-grpc-status-mapping.md).
    let addr = bad_server(|_request, mut respond| async move {
        let head = head(
            503,
            &[
                ("content-type", "application/grpc"),
                ("grpc-status", "7"),
                ("grpc-message", "no"),
            ],
        );
        let _ = respond.send_response(head, true);
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::PermissionDenied);
}

#[tokio::test]
async fn grpc_status_ok_cannot_rescue_a_failed_http_status() {
    // A non-200 answer is a failure whatever it claims; the HTTP table decides the code.
    let addr = bad_server(|_request, mut respond| async move {
        let head = head(
            503,
            &[("content-type", "application/grpc"), ("grpc-status", "0")],
        );
        let _ = respond.send_response(head, true);
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::Unavailable);
}

#[tokio::test]
async fn html_content_type_is_unknown() {
    let addr = bad_server(|_request, mut respond| async move {
        let head = head(200, &[("content-type", "text/html; charset=utf-8")]);
        let mut body = respond.send_response(head, false).unwrap();
        body.send_data(Bytes::from_static(b"<html>hello</html>"), true)
            .unwrap();
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::Unknown);
}

#[tokio::test]
async fn trailers_only_status_with_message_and_details() {
    let addr = bad_server(|_request, mut respond| async move {
        let head = head(
            200,
            &[
                ("content-type", "application/grpc"),
                ("grpc-status", "9"),
                ("grpc-message", "caf%C3%A9 closed%0A"),
                ("grpc-status-details-bin", "AQID"),
                ("x-why", "because"),
            ],
        );
        let _ = respond.send_response(head, true);
    })
    .await;
    let status = unary(addr).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(status.message(), "café closed\n");
    assert_eq!(status.details().as_ref(), [1, 2, 3]);
    assert_eq!(status.metadata().get("x-why"), Some("because"));
}

#[tokio::test]
async fn truncated_message_is_internal() {
    let addr = bad_server(|_request, mut respond| async move {
        let mut body = respond.send_response(grpc_head(), false).unwrap();
        // The prefix promises 100 bytes; 10 come, then END_STREAM.
        body.send_data(framed(false, 100, &[0; 10]), true).unwrap();
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::Internal);
}

#[tokio::test]
async fn message_over_the_receive_limit_is_resource_exhausted() {
    let addr = bad_server(|_request, mut respond| async move {
        let mut body = respond.send_response(grpc_head(), false).unwrap();
        // 5 MiB claimed (the default limit is 4 MiB); the body never comes.
        let _ = body.send_data(framed(false, 5 * 1024 * 1024, &[0; 16]), false);
        std::future::pending::<()>().await;
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::ResourceExhausted);
}

#[tokio::test]
async fn compressed_message_in_an_unsupported_encoding_is_internal() {
    let addr = bad_server(|_request, mut respond| async move {
        let head = head(
            200,
            &[
                ("content-type", "application/grpc"),
                ("grpc-encoding", "zstd-x"),
            ],
        );
        let mut body = respond.send_response(head, false).unwrap();
        body.send_data(framed(true, 3, &[1, 2, 3]), false).unwrap();
        body.send_trailers(trailers(&[("grpc-status", "0")]))
            .unwrap();
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::Internal);
}

#[tokio::test]
async fn unary_with_zero_or_two_messages_is_internal() {
    let addr = bad_server(|_request, mut respond| async move {
        let mut body = respond.send_response(grpc_head(), false).unwrap();
        body.send_trailers(trailers(&[("grpc-status", "0")]))
            .unwrap();
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::Internal);

    let addr = bad_server(|_request, mut respond| async move {
        let mut body = respond.send_response(grpc_head(), false).unwrap();
        body.send_data(message("one"), false).unwrap();
        body.send_data(message("two"), false).unwrap();
        body.send_trailers(trailers(&[("grpc-status", "0")]))
            .unwrap();
    })
    .await;
    assert_eq!(unary_code(addr).await, Code::Internal);
}

#[tokio::test]
async fn rst_stream_mid_stream_maps_the_reason() {
    for (reason, code) in [
        (h2::Reason::CANCEL, Code::Cancelled),
        (h2::Reason::INTERNAL_ERROR, Code::Internal),
        (h2::Reason::REFUSED_STREAM, Code::Unavailable),
        (h2::Reason::ENHANCE_YOUR_CALM, Code::ResourceExhausted),
    ] {
        let addr = bad_server(move |_request, mut respond| async move {
            let mut body = respond.send_response(grpc_head(), false).unwrap();
            body.send_data(message("first"), false).unwrap();
            body.send_reset(reason);
        })
        .await;
        let channel = Channel::lazy(&addr.to_string()).unwrap();
        let outcome = timeout(BOUND, async {
            let mut stream = channel
                .server_streaming::<String, String>("/test.Bad/Stream", Request::new("x".into()))
                .await?;
            let first = stream.message().await?;
            assert_eq!(first.as_deref(), Some("first"));
            stream.message().await
        })
        .await
        .expect("the client hung");
        assert_eq!(outcome.unwrap_err().code(), code, "{reason:?}");
    }
}

#[tokio::test]
async fn abrupt_goaway_with_calls_in_flight_ends_them_unavailable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut connection = h2::server::handshake(tcp).await.unwrap();
        // Take both calls, answer neither, then go away and close.
        let mut held = Vec::new();
        for _ in 0..2 {
            if let Some(Ok(stream)) = connection.accept().await {
                held.push(stream);
            }
        }
        connection.abrupt_shutdown(h2::Reason::NO_ERROR);
        while connection.accept().await.is_some() {}
        drop(held);
    });
    let channel = Channel::lazy(&addr.to_string()).unwrap();
    let call = |c: Channel| async move {
        c.unary::<String, String>("/test.Bad/Call", Request::new("x".into()))
            .await
    };
    let (a, b) = timeout(BOUND, async {
        tokio::join!(call(channel.clone()), call(channel.clone()))
    })
    .await
    .expect("the client hung");
    for outcome in [a, b] {
        let code = outcome.unwrap_err().code();
        assert!(
            matches!(code, Code::Unavailable | Code::Internal),
            "a call cut off by GOAWAY and close ended with {code:?}"
        );
    }
}

#[tokio::test]
async fn graceful_goaway_lets_the_call_finish_and_the_next_call_reconnects() {
    every_call_is_answered_across_graceful_goaways().await;
}

/// The same on a multi-thread runtime, where the next call often starts on the old connection
/// before the GOAWAY is read: its stream is above the GOAWAY's last-stream-id, never processed,
/// and must be sent again on a new connection (transparent retry), not failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_racing_a_graceful_goaway_is_sent_again_transparently() {
    for _ in 0..5 {
        every_call_is_answered_across_graceful_goaways().await;
    }
}

/// A server whose every connection answers one call, then says GOAWAY: each of three calls on
/// one channel must be answered, whichever connection it first lands on.
async fn every_call_is_answered_across_graceful_goaways() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..3 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut connection = h2::server::handshake(tcp).await.unwrap();
                let Some(Ok((_request, respond))) = connection.accept().await else {
                    return;
                };
                // GOAWAY first, then answer the call already in flight.
                connection.graceful_shutdown();
                tokio::spawn(async move { answer(respond, "done") });
                while connection.accept().await.is_some() {}
            });
        }
    });
    // Each server connection answers exactly one call and then goes away, so every call
    // below needs the channel to have moved to a new connection. A connection refuses any
    // later stream: the accept loop only serves the first.
    let channel = Channel::lazy(&addr.to_string()).unwrap();
    let mut answered = 0;
    for _ in 0..3 {
        let mut request = Request::new("x".to_owned());
        request.set_wait_for_ready(true);
        request.set_timeout(BOUND);
        let outcome = timeout(
            BOUND,
            channel.unary::<String, String>("/test.Bad/Call", request),
        )
        .await
        .expect("the client hung");
        let response = outcome.expect("a call refused by GOAWAY is sent again, not failed");
        assert_eq!(response.into_inner(), "done");
        answered += 1;
    }
    assert_eq!(answered, 3);
}

#[tokio::test]
async fn a_server_that_never_answers_hits_the_deadline_and_sees_cancel() {
    let (reset_tx, reset_rx) = tokio::sync::oneshot::channel();
    let reset_tx = std::sync::Mutex::new(Some(reset_tx));
    let addr = bad_server(move |_request, mut respond| {
        let reset_tx = reset_tx.lock().unwrap().take();
        async move {
            // Never answer; report how the client ended the stream.
            let reason = std::future::poll_fn(|cx| respond.poll_reset(cx)).await;
            if let (Some(tx), Ok(reason)) = (reset_tx, reason) {
                let _ = tx.send(reason);
            }
        }
    })
    .await;
    let channel = Channel::lazy(&addr.to_string()).unwrap();
    let mut request = Request::new("x".to_owned());
    request.set_timeout(Duration::from_millis(300));
    let started = std::time::Instant::now();
    let status = timeout(
        BOUND,
        channel.unary::<String, String>("/test.Bad/Call", request),
    )
    .await
    .expect("the client hung")
    .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() >= Duration::from_millis(300));
    let reason = timeout(BOUND, reset_rx)
        .await
        .expect("no RST_STREAM")
        .unwrap();
    assert_eq!(reason, h2::Reason::CANCEL);
}

#[tokio::test]
async fn headers_that_never_come_on_bidi_hit_the_deadline() {
    let addr = bad_server(|_request, respond| async move {
        let _hold = respond;
        std::future::pending::<()>().await;
    })
    .await;
    let channel = Channel::lazy(&addr.to_string()).unwrap();
    let mut request = Request::new(());
    request.set_timeout(Duration::from_millis(200));
    let (mut sink, mut responses) =
        timeout(BOUND, channel.bidi::<String, String>("/t.B/C", request))
            .await
            .expect("the client hung")
            .unwrap();
    let _ = sink.send("x".into()).await;
    let status = timeout(BOUND, responses.message())
        .await
        .expect("the client hung")
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    let status = sink.send("late".into()).await.unwrap_err();
    assert!(matches!(
        status.code(),
        Code::DeadlineExceeded | Code::Cancelled | Code::FailedPrecondition
    ));
}

#[tokio::test]
async fn a_peer_that_is_not_http2_fails_the_connect_not_the_calls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // One listener that accepts and stays silent, one that answers like HTTP/1.1 and closes.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = silent.accept().await {
            held.push(tcp);
        }
    });
    let http1 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http1_addr = http1.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = http1.accept().await {
            let mut buf = [0u8; 1024];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await;
        }
    });
    for addr in [silent_addr, http1_addr] {
        let connect = Channel::builder(&addr.to_string())
            .unwrap()
            .connect_timeout(Duration::from_millis(300))
            .connect();
        let err = timeout(BOUND, connect)
            .await
            .expect("the client hung")
            .unwrap_err();
        assert_eq!(err.code(), Code::Unavailable, "{addr}: {err}");
    }
}

/// RST_STREAM(REFUSED_STREAM) says the server did not process the stream at all (RFC 9113
/// §8.7), so the client sends the call again at once (gRPC's transparent retry) — once: a
/// server that refuses every stream ends the call UNAVAILABLE after two attempts.
#[tokio::test]
async fn a_refused_stream_is_sent_again_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    for refuse_all in [false, true] {
        let seen = Arc::new(AtomicUsize::new(0));
        let counter = seen.clone();
        let addr = bad_server(move |_request, mut respond| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if refuse_all || n == 0 {
                    respond.send_reset(h2::Reason::REFUSED_STREAM);
                    return;
                }
                answer(respond, "done");
            }
        })
        .await;
        let outcome = unary(addr).await;
        if refuse_all {
            assert_eq!(outcome.unwrap_err().code(), Code::Unavailable);
        } else {
            assert_eq!(outcome.expect("sent again after REFUSED_STREAM"), "done");
        }
        assert_eq!(seen.load(Ordering::SeqCst), 2, "refuse_all = {refuse_all}");
    }
}

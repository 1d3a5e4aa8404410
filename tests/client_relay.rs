//! Streams read from outside the runtime's tasks on a multi-thread runtime, as a
//! `#[tokio::main]` program reads them: there h2's wake-ups reach the caller through a relay
//! task (`src/client/relay.rs`). Every path of a call must behave as when h2 wakes the caller
//! directly: messages in order, half-close, deadline, cancellation, a stream handed to a
//! task, and a caller that sends without reading. Every step is bounded in time.

mod client_support;

use std::time::{Duration, Instant};

use bare_grpc::{Channel, Code, Request};
use client_support::{BIDI, SERVER_STREAM, bounded, start_echo};

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn bidi_ping_pong_from_block_on() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let (mut sink, mut responses) = bounded(channel.bidi::<String, String>(BIDI, Request::new(())))
        .await
        .unwrap();
    for i in 0..2_000 {
        bounded(sink.send(format!("ping {i}"))).await.unwrap();
        let pong = bounded(responses.message()).await.unwrap();
        assert_eq!(pong, Some(format!("ping {i}")));
    }
    sink.finish();
    assert_eq!(bounded(responses.message()).await.unwrap(), None);
    // After the end the same outcome again.
    assert_eq!(bounded(responses.message()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn server_streaming_from_block_on() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let mut stream = bounded(
        channel.server_streaming::<String, String>(SERVER_STREAM, Request::new("20000:m".into())),
    )
    .await
    .unwrap();
    for i in 0..20_000 {
        let message = bounded(stream.message()).await.unwrap();
        assert_eq!(message, Some(format!("m-{i}")));
    }
    assert_eq!(bounded(stream.message()).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn bidi_deadline_from_block_on() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let mut request = Request::new(());
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let (mut sink, mut responses) = bounded(channel.bidi::<String, String>(BIDI, request))
        .await
        .unwrap();
    bounded(sink.send("one".into())).await.unwrap();
    assert_eq!(
        bounded(responses.message()).await.unwrap().as_deref(),
        Some("one")
    );
    // Nothing more is sent: the echo stays silent and the deadline ends the call.
    let status = bounded(responses.message()).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn dropping_the_sink_cancels_from_block_on() {
    client_support::dropping_the_bidi_sink_unfinished_cancels_the_call().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_stream_opened_in_block_on_can_be_read_by_a_task() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let (mut sink, mut responses) = bounded(channel.bidi::<String, String>(BIDI, Request::new(())))
        .await
        .unwrap();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(message) = bounded(responses.message()).await.unwrap() {
            seen.push(message);
        }
        seen
    });
    for i in 0..100 {
        bounded(sink.send(format!("m{i}"))).await.unwrap();
    }
    sink.finish();
    let seen = bounded(reader).await.unwrap();
    let expected: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn sending_before_reading_from_block_on() {
    // 256 messages out before a single answer is read (within the windows both ways): each
    // `send` returns without the caller reading, and every answer is there afterwards.
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let (mut sink, mut responses) = bounded(channel.bidi::<String, String>(BIDI, Request::new(())))
        .await
        .unwrap();
    let piece = "x".repeat(1024);
    for _ in 0..256 {
        bounded(sink.send(piece.clone())).await.unwrap();
    }
    sink.finish();
    let mut received = 0;
    while let Some(message) = bounded(responses.message()).await.unwrap() {
        assert_eq!(message, piece);
        received += 1;
    }
    assert_eq!(received, 256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_message_larger_than_the_window_then_small_ones_keep_their_order() {
    // A `block_on` caller writes into h2 itself only while the window takes the whole
    // message; the 3 MiB one (over the server's 1 MiB window) goes through the writer task,
    // and the small ones after it must queue behind it, not overtake it.
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let (mut sink, mut responses) = bounded(channel.bidi::<String, String>(BIDI, Request::new(())))
        .await
        .unwrap();
    let big = "b".repeat(3 << 20);
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(message) = bounded(responses.message()).await.unwrap() {
            seen.push(message);
        }
        seen
    });
    bounded(sink.send("first".into())).await.unwrap();
    bounded(sink.send(big.clone())).await.unwrap();
    for i in 0..50 {
        bounded(sink.send(format!("after {i}"))).await.unwrap();
    }
    sink.finish();
    let seen = bounded(reader).await.unwrap();
    assert_eq!(seen.len(), 52);
    assert_eq!(seen[0], "first");
    assert_eq!(seen[1], big);
    for (i, message) in seen[2..].iter().enumerate() {
        assert_eq!(message, &format!("after {i}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn sending_after_the_deadline_reset_fails_from_block_on() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let mut request = Request::new(());
    request.set_timeout(Duration::from_millis(100));
    let (mut sink, mut responses) = bounded(channel.bidi::<String, String>(BIDI, request))
        .await
        .unwrap();
    let status = bounded(responses.message()).await.unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    let status = bounded(sink.send("late".into())).await.unwrap_err();
    assert_ne!(status.code(), Code::Ok);
}

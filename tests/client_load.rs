//! Many calls on one channel: every call is a stream on ONE HTTP/2 connection, and a long bidi
//! call interleaves with unary calls on it. The server's SETTINGS_MAX_CONCURRENT_STREAMS
//! (200 by default) is respected: calls over it wait for a stream to close instead of failing,
//! and 1,000 calls stay open on one connection once the server raises it.

mod client_support;

use std::sync::Arc;
use std::time::Duration;

use bare_grpc::{Channel, Request};
use client_support::{BIDI, STEP, UNARY, start_echo, start_echo_with};
use tokio::time::timeout;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_unary_calls_share_one_connection() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..1000 {
        let channel = channel.clone();
        calls.spawn(async move {
            let message = format!("call-{i}");
            let response = channel
                .unary::<String, String>(UNARY, Request::new(message.clone()))
                .await?;
            assert_eq!(response.into_inner(), message);
            Ok::<(), bare_grpc::Status>(())
        });
    }
    let all = timeout(Duration::from_secs(60), async {
        let mut ok = 0;
        while let Some(joined) = calls.join_next().await {
            joined.expect("call task panicked").expect("call failed");
            ok += 1;
        }
        ok
    })
    .await
    .expect("1000 calls did not finish within 60 s");
    assert_eq!(all, 1000);
    assert_eq!(
        server.connection_count(),
        1,
        "calls must share one connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bidi_and_unary_calls_interleave_on_one_connection() {
    let server = start_echo().await;
    let channel = Channel::connect(&server.addr.to_string()).await.unwrap();
    let (mut sink, mut responses) = channel
        .bidi::<String, String>(BIDI, Request::new(()))
        .await
        .unwrap();
    let unary_done = Arc::new(tokio::sync::Semaphore::new(0));
    let mut unary_calls = tokio::task::JoinSet::new();
    let result = timeout(STEP * 3, async {
        for i in 0..100 {
            // One unary call started per bidi round trip; they run while the bidi call is open.
            let channel = channel.clone();
            let done = unary_done.clone();
            unary_calls.spawn(async move {
                let response = channel
                    .unary::<String, String>(UNARY, Request::new(format!("u{i}")))
                    .await
                    .expect("unary call");
                assert_eq!(response.into_inner(), format!("u{i}"));
                done.add_permits(1);
            });
            sink.send(format!("b{i}")).await.expect("bidi send");
            let echoed = responses.message().await.expect("bidi receive");
            assert_eq!(echoed.as_deref(), Some(format!("b{i}").as_str()));
        }
        // Every unary call finishes while the bidi call is still open.
        let _all = unary_done.acquire_many(100).await.unwrap();
        sink.finish();
        assert_eq!(responses.message().await.expect("bidi end"), None);
    })
    .await;
    result.expect("interleaving did not finish in time");
    while let Some(joined) = unary_calls.join_next().await {
        joined.expect("unary task");
    }
    assert_eq!(server.connection_count(), 1);
}

/// Opens a bidi call and makes one round trip, so the stream is open on both sides.
async fn open_bidi(
    channel: &Channel,
) -> (
    bare_grpc::client::RequestSink<String>,
    bare_grpc::ResponseStream<String>,
) {
    let (mut sink, mut responses) = channel
        .bidi::<String, String>(BIDI, Request::new(()))
        .await
        .unwrap();
    sink.send("open".into()).await.unwrap();
    assert_eq!(responses.message().await.unwrap().as_deref(), Some("open"));
    (sink, responses)
}

/// A server that allows 2 streams per connection, both held by bidi calls: a third call on
/// the same channel waits (h2 keeps its HEADERS until the server's limit allows it, RFC 9113
/// §5.1.2) instead of failing or opening another connection, and completes as soon as one of
/// the two ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_over_the_servers_stream_limit_waits_for_a_free_stream() {
    let server = start_echo_with(|builder| builder.max_concurrent_streams(2)).await;
    let channel = Channel::connect(&server.addr.to_string()).await.unwrap();
    let (first, mut first_responses) = timeout(STEP, open_bidi(&channel)).await.unwrap();
    let _second = timeout(STEP, open_bidi(&channel)).await.unwrap();
    let third = tokio::spawn({
        let channel = channel.clone();
        async move {
            channel
                .unary::<String, String>(UNARY, Request::new("third".into()))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !third.is_finished(),
        "the third call did not wait for a stream"
    );
    first.finish();
    assert!(matches!(
        timeout(STEP, first_responses.message()).await.unwrap(),
        Ok(None)
    ));
    let answer = timeout(STEP, third).await.unwrap().unwrap().unwrap();
    assert_eq!(answer.into_inner(), "third");
    assert_eq!(server.connection_count(), 1);
}

/// Issue 15's "1,000 over one connection with max_concurrent_streams raised": 1,000 bidi calls
/// open at once on one connection to a server that allows 1,000, then all finished, all OK.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_open_bidi_calls_on_one_connection_with_the_limit_raised() {
    let server = start_echo_with(|builder| builder.max_concurrent_streams(1000)).await;
    let channel = Channel::connect(&server.addr.to_string()).await.unwrap();
    let all = timeout(Duration::from_secs(60), async {
        let mut open = Vec::new();
        for _ in 0..1000 {
            open.push(open_bidi(&channel).await);
        }
        let mut ok = 0;
        for (sink, mut responses) in open {
            sink.finish();
            if matches!(responses.message().await, Ok(None)) {
                ok += 1;
            }
        }
        ok
    })
    .await
    .expect("1,000 bidi calls did not finish within 60 s");
    assert_eq!(all, 1000);
    assert_eq!(server.connection_count(), 1);
}

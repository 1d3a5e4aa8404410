//! Many calls on one channel: every call is a stream on ONE HTTP/2 connection, and a long bidi
//! call interleaves with unary calls on it.

mod client_support;

use std::sync::Arc;
use std::time::Duration;

use bare_grpc::{Channel, Request};
use client_support::{BIDI, STEP, UNARY, start_echo};
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

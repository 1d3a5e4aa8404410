//! Request bodies that outgrow the server's flow-control window: the client moves such an
//! upload off the caller's task into a task of its own (`Uploader` in `src/client/sink.rs`),
//! and these tests check that nothing about a call's outcome changes when it does: the
//! messages arrive whole and in order, a message over the send limit still ends the call with
//! RESOURCE_EXHAUSTED (not with the CANCEL the upload sent), and a panic in the caller's
//! request stream still reaches the caller. Each runs on both runtime flavours, since the
//! task lands on another thread only on the multi-threaded one.

mod client_support;

use bare_grpc::{Channel, Code, Request};
use client_support::{CLIENT_STREAM, IterStream, UNARY, bounded, start_echo};

/// Messages of this size overrun the server's 1 MiB window after two.
const BIG: usize = 500_000;

/// Six distinct large messages: 3 MB, three windows of the server's.
fn big_messages() -> Vec<String> {
    (0..6u8)
        .map(|i| char::from(b'a' + i).to_string().repeat(BIG))
        .collect()
}

async fn large_client_stream_arrives_whole_and_in_order() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let messages = big_messages();
    let expected = messages.concat();
    let response = bounded(channel.client_streaming::<String, String, _>(
        CLIENT_STREAM,
        Request::new(IterStream(messages.into_iter())),
    ))
    .await
    .unwrap();
    assert!(
        response.into_inner() == expected,
        "the concatenation differs"
    );
}

#[tokio::test]
async fn large_client_stream_current_thread() {
    large_client_stream_arrives_whole_and_in_order().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_client_stream_multi_thread() {
    large_client_stream_arrives_whole_and_in_order().await;
}

async fn large_unary_round_trip() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let text = "u".repeat(3 * BIG);
    let response = bounded(channel.unary::<String, String>(UNARY, Request::new(text.clone())))
        .await
        .unwrap();
    assert!(response.into_inner() == text);
}

#[tokio::test]
async fn large_unary_current_thread() {
    large_unary_round_trip().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_unary_multi_thread() {
    large_unary_round_trip().await;
}

async fn over_the_send_limit_after_waiting_for_window() {
    let server = start_echo().await;
    let channel = Channel::builder(&server.addr.to_string())
        .unwrap()
        .max_send_message_size(BIG)
        .lazy();
    // Four messages within the limit (more than the window: the upload has waited, so it
    // runs in its own task by now), then one over it.
    let mut messages = big_messages();
    messages.truncate(4);
    messages.push("z".repeat(BIG + 1));
    let status = bounded(channel.client_streaming::<String, String, _>(
        CLIENT_STREAM,
        Request::new(IterStream(messages.into_iter())),
    ))
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("send limit"), "{status:?}");
}

#[tokio::test]
async fn over_the_send_limit_current_thread() {
    over_the_send_limit_after_waiting_for_window().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_send_limit_multi_thread() {
    over_the_send_limit_after_waiting_for_window().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_the_request_stream_reaches_the_caller() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let messages = big_messages().into_iter().enumerate().map(|(i, m)| {
        assert!(i < 4, "the request stream broke");
        m
    });
    let call = tokio::spawn(async move {
        channel
            .client_streaming::<String, String, _>(
                CLIENT_STREAM,
                Request::new(IterStream(messages)),
            )
            .await
    });
    let joined = bounded(call).await;
    let error = joined.expect_err("the call should have panicked");
    assert!(error.is_panic());
    let payload = error.into_panic();
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(text.contains("the request stream broke"), "{text:?}");
}

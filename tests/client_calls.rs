//! The client against our own server: the four call kinds, metadata, status, deadlines,
//! cancellation, compression, size limits, fail-fast, wait-for-ready and reconnect.
//! Every step is bounded in time; nothing sleeps.

mod client_support;

use std::time::{Duration, Instant};

use bare_grpc::{Channel, Code, Encoding, Request, Status};
use client_support::{
    BIDI, CLIENT_STREAM, FAIL, HANG, IterStream, SERVER_STREAM, STEP, UNARY, bounded, free_port,
    start_echo, start_echo_on, start_echo_with,
};

#[tokio::test]
async fn unary_carries_metadata_both_ways() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let mut request = Request::new("hello".to_owned());
    request.metadata_mut().insert("x-echo", "initial").unwrap();
    request
        .metadata_mut()
        .insert("x-trail", "trailing")
        .unwrap();
    let response = bounded(channel.unary::<String, String>(UNARY, request))
        .await
        .unwrap();
    assert_eq!(response.metadata().get("x-echo"), Some("initial"));
    assert_eq!(response.trailers().get("x-trail"), Some("trailing"));
    assert_eq!(response.into_inner(), "hello");
}

#[tokio::test]
async fn error_status_reaches_the_caller() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let status = bounded(channel.unary::<String, String>(FAIL, Request::new("5".into())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "failing as asked");
}

#[tokio::test]
async fn unknown_method_is_unimplemented() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let status =
        bounded(channel.unary::<String, String>("/test.Echo/Nope", Request::new(String::new())))
            .await
            .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}

#[tokio::test]
async fn server_streaming_yields_every_message_then_trailers() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let mut stream = bounded(
        channel.server_streaming::<String, String>(SERVER_STREAM, Request::new("5:word".into())),
    )
    .await
    .unwrap();
    assert!(stream.headers().is_some());
    for i in 0..5 {
        let message = bounded(stream.message()).await.unwrap();
        assert_eq!(message, Some(format!("word-{i}")));
    }
    assert_eq!(bounded(stream.message()).await.unwrap(), None);
    assert!(stream.trailers().is_some());
    // After the end the outcome repeats.
    assert_eq!(bounded(stream.message()).await.unwrap(), None);
}

#[tokio::test]
async fn server_streaming_as_a_stream() {
    use futures_core::Stream;
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let mut stream = bounded(
        channel.server_streaming::<String, String>(SERVER_STREAM, Request::new("3:s".into())),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    bounded(std::future::poll_fn(|cx| {
        loop {
            match std::pin::Pin::new(&mut stream).poll_next(cx) {
                std::task::Poll::Ready(Some(item)) => seen.push(item.unwrap()),
                std::task::Poll::Ready(None) => return std::task::Poll::Ready(()),
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
    }))
    .await;
    assert_eq!(seen, ["s-0", "s-1", "s-2"]);
}

#[tokio::test]
async fn client_streaming_sends_the_whole_stream() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let parts = IterStream(["a", "b", "c"].into_iter().map(String::from));
    let response =
        bounded(channel.client_streaming::<String, String, _>(CLIENT_STREAM, Request::new(parts)))
            .await
            .unwrap();
    assert_eq!(response.into_inner(), "abc");
    // An empty request stream is a valid call too.
    let none = IterStream(std::iter::empty::<String>());
    let response =
        bounded(channel.client_streaming::<String, String, _>(CLIENT_STREAM, Request::new(none)))
            .await
            .unwrap();
    assert_eq!(response.into_inner(), "");
}

#[tokio::test]
async fn client_streaming_larger_than_the_window_does_not_stall() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    // 64 messages of 16 KiB: 1 MiB in all, sixteen times the default 64 KiB window.
    let chunk = "x".repeat(16 * 1024);
    let parts = IterStream((0..64).map(move |_| chunk.clone()));
    let response =
        bounded(channel.client_streaming::<String, String, _>(CLIENT_STREAM, Request::new(parts)))
            .await
            .unwrap();
    assert_eq!(response.into_inner().len(), 64 * 16 * 1024);
}

#[tokio::test]
async fn bidi_ping_pong_and_half_close() {
    let server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let (mut sink, mut responses) = bounded(channel.bidi::<String, String>(BIDI, Request::new(())))
        .await
        .unwrap();
    for i in 0..10 {
        bounded(sink.send(format!("ping {i}"))).await.unwrap();
        let pong = bounded(responses.message()).await.unwrap();
        assert_eq!(pong, Some(format!("ping {i}")));
    }
    sink.finish();
    assert_eq!(bounded(responses.message()).await.unwrap(), None);
}

#[tokio::test]
async fn dropping_the_bidi_sink_unfinished_cancels_the_call() {
    client_support::dropping_the_bidi_sink_unfinished_cancels_the_call().await;
}

#[tokio::test]
async fn deadline_exceeded_is_reported_and_the_server_handler_stops() {
    let mut server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let mut request = Request::new(String::new());
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let status = bounded(channel.unary::<String, String>(HANG, request))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(started.elapsed() < Duration::from_secs(5));
    bounded(server.dropped.recv())
        .await
        .expect("handler dropped");
}

#[tokio::test]
async fn dropping_a_call_sends_cancel_to_the_server() {
    let mut server = start_echo().await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let call = tokio::spawn(async move {
        channel
            .unary::<String, String>(HANG, Request::new(String::new()))
            .await
    });
    bounded(server.started.recv())
        .await
        .expect("handler started");
    call.abort();
    // No timeout on the call, so only our RST_STREAM(CANCEL) can stop the handler.
    bounded(server.dropped.recv())
        .await
        .expect("handler dropped");
}

#[tokio::test]
async fn gzip_requests_round_trip() {
    let server = start_echo().await;
    let channel = Channel::builder(&server.addr.to_string())
        .unwrap()
        .compression(Encoding::Gzip)
        .lazy();
    let text = "compressible ".repeat(1000);
    let response = bounded(channel.unary::<String, String>(UNARY, Request::new(text.clone())))
        .await
        .unwrap();
    assert_eq!(response.into_inner(), text);
    // Per call, too, on a channel that does not compress by default.
    let plain = Channel::lazy(&server.addr.to_string()).unwrap();
    let mut request = Request::new(text.clone());
    request.set_compression(Encoding::Gzip);
    let response = bounded(plain.unary::<String, String>(UNARY, request))
        .await
        .unwrap();
    assert_eq!(response.into_inner(), text);
}

#[tokio::test]
async fn over_the_send_limit_fails_before_sending() {
    let server = start_echo().await;
    let channel = Channel::builder(&server.addr.to_string())
        .unwrap()
        .max_send_message_size(10)
        .lazy();
    let status = bounded(channel.unary::<String, String>(UNARY, Request::new("x".repeat(100))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    // Refused before anything went out: the lazy channel never even connected.
    assert_eq!(server.connection_count(), 0);
}

/// The send limit is on the encoded message before compression, on both sides, as grpc-go and
/// grpcio count it: a message that gzip would shrink under the limit is still refused.
#[tokio::test]
async fn the_send_limit_counts_the_message_before_compression_on_the_client() {
    let server = start_echo().await;
    let channel = Channel::builder(&server.addr.to_string())
        .unwrap()
        .max_send_message_size(100)
        .compression(Encoding::Gzip)
        .lazy();
    // 1,000 repeated bytes: about 30 bytes gzipped, 1,003 encoded.
    let status = bounded(channel.unary::<String, String>(UNARY, Request::new("x".repeat(1000))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(server.connection_count(), 0);
    // At the limit exactly (a 98-byte string encodes to 100 bytes), it goes.
    let text = "x".repeat(98);
    let response = bounded(channel.unary::<String, String>(UNARY, Request::new(text.clone())))
        .await
        .unwrap();
    assert_eq!(response.into_inner(), text);
}

#[tokio::test]
async fn the_send_limit_counts_the_message_before_compression_on_the_server() {
    let server = start_echo_with(|builder| {
        builder
            .max_send_message_size(100)
            .send_compressed(Encoding::Gzip)
    })
    .await;
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    let status = bounded(channel.unary::<String, String>(UNARY, Request::new("x".repeat(1000))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let text = "x".repeat(98);
    let response = bounded(channel.unary::<String, String>(UNARY, Request::new(text.clone())))
        .await
        .unwrap();
    assert_eq!(response.into_inner(), text);
}

#[tokio::test]
async fn over_the_receive_limit_is_resource_exhausted() {
    let server = start_echo().await;
    let channel = Channel::builder(&server.addr.to_string())
        .unwrap()
        .max_receive_message_size(50)
        .lazy();
    let status = bounded(channel.unary::<String, String>(UNARY, Request::new("x".repeat(100))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    // The channel is still fine for calls within the limit.
    let response = bounded(channel.unary::<String, String>(UNARY, Request::new("ok".into())))
        .await
        .unwrap();
    assert_eq!(response.into_inner(), "ok");
}

#[tokio::test]
async fn nothing_listening_fails_fast_with_unavailable() {
    let addr = free_port();
    let err = bounded(Channel::connect(&addr.to_string()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    let channel = Channel::lazy(&addr.to_string()).unwrap();
    let status = bounded(channel.unary::<String, String>(UNARY, Request::new(String::new())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    // The next call, during back-off, fails fast as well.
    let status = bounded(channel.unary::<String, String>(UNARY, Request::new(String::new())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn wait_for_ready_waits_for_the_server_to_appear() {
    let addr = free_port();
    let channel = Channel::builder(&addr.to_string())
        .unwrap()
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .lazy();
    // Fail fast first, so the channel is in TRANSIENT_FAILURE when the waiting call starts.
    let status = bounded(channel.unary::<String, String>(UNARY, Request::new(String::new())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    let waiting = {
        let channel = channel.clone();
        tokio::spawn(async move {
            let mut request = Request::new("late".to_owned());
            request.set_wait_for_ready(true);
            request.set_timeout(STEP);
            channel.unary::<String, String>(UNARY, request).await
        })
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind the port");
    let _server = start_echo_on(listener);
    let response = bounded(waiting).await.unwrap().unwrap();
    assert_eq!(response.into_inner(), "late");
}

#[tokio::test]
async fn the_channel_reconnects_after_the_server_restarts() {
    let server = start_echo().await;
    let addr = server.addr;
    let channel = Channel::builder(&addr.to_string())
        .unwrap()
        .backoff(Duration::from_millis(20), Duration::from_millis(100))
        .connect()
        .await
        .unwrap();
    let response = bounded(channel.unary::<String, String>(UNARY, Request::new("1".into())))
        .await
        .unwrap();
    assert_eq!(response.into_inner(), "1");
    server.shutdown().await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("rebind the port");
    let server = start_echo_on(listener);
    // A call racing with the close may still go out on the dead connection and fail with
    // UNAVAILABLE (gRPC does not replay a stream that may have reached the server); the
    // channel notices the close at the latest through that failure, so the next call gets
    // through on a new connection.
    let mut answer = None;
    for _ in 0..3 {
        let mut request = Request::new("2".to_owned());
        request.set_wait_for_ready(true);
        request.set_timeout(STEP);
        match bounded(channel.unary::<String, String>(UNARY, request)).await {
            Ok(response) => {
                answer = Some(response.into_inner());
                break;
            }
            Err(status) => assert_eq!(status.code(), Code::Unavailable, "{status}"),
        }
    }
    assert_eq!(answer.as_deref(), Some("2"));
    assert_eq!(server.connection_count(), 1);
}

#[tokio::test]
async fn names_and_ipv6_literals_resolve() {
    let server = start_echo().await;
    let by_name = Channel::connect(&format!("localhost:{}", server.addr.port()))
        .await
        .map_err(|s: Status| s.code());
    // localhost may resolve to ::1 first, where nothing listens; the next address is tried.
    let channel = by_name.expect("localhost resolves and connects");
    let response = bounded(channel.unary::<String, String>(UNARY, Request::new("n".into())))
        .await
        .unwrap();
    assert_eq!(response.into_inner(), "n");

    // IPv6 loopback, when this machine has it.
    if let Ok(listener) = tokio::net::TcpListener::bind("[::1]:0").await {
        let port = listener.local_addr().unwrap().port();
        let _v6 = start_echo_on(listener);
        let channel = bounded(Channel::connect(&format!("[::1]:{port}")))
            .await
            .unwrap();
        let response = bounded(channel.unary::<String, String>(UNARY, Request::new("6".into())))
            .await
            .unwrap();
        assert_eq!(response.into_inner(), "6");
    }
}

/// The futures of all four call kinds are `Send`, so calls can run in spawned tasks, and the
/// inbound and outbound halves can move between tasks.
#[test]
fn call_futures_and_halves_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn halves_are_send<T: Send>() {}
    let channel = Channel::lazy("127.0.0.1:1").unwrap();
    let unary = channel.unary::<String, String>(UNARY, Request::new(String::new()));
    assert_send(&unary);
    let server =
        channel.server_streaming::<String, String>(SERVER_STREAM, Request::new(String::new()));
    assert_send(&server);
    let parts = IterStream(std::iter::empty::<String>());
    let client = channel.client_streaming::<String, String, _>(CLIENT_STREAM, Request::new(parts));
    assert_send(&client);
    let bidi = channel.bidi::<String, String>(BIDI, Request::new(()));
    assert_send(&bidi);
    halves_are_send::<bare_grpc::Streaming<String>>();
    halves_are_send::<bare_grpc::ResponseStream<String>>();
    halves_are_send::<bare_grpc::client::RequestSink<String>>();
}

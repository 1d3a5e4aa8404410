//! What good clients never send, sent with a real `h2` client, one bad input per test, each
//! followed by a good call on the same connection to prove the server still serves
//! (PROTOCOL-HTTP2; the answers are tabled in `src/server/head.rs` and `src/wire.rs`).

mod common;

use std::time::Duration;

use bare_grpc::{Code, Request, Response, ResponseSink, Server, Status, Streaming};
use bytes::{BufMut, Bytes, BytesMut};
use common::TestServer;
use http::{HeaderMap, StatusCode};
use prost::Message;
use tokio::sync::mpsc;

use bare_grpc_contracts::edge::Text;
use bare_grpc_contracts::edge::edge_grpc::{Edge, EdgeServer};

/// The test-only `edge.Edge` service. `dropped` reports each Hang handler's cancellation.
struct EdgeService {
    dropped: mpsc::UnboundedSender<&'static str>,
}

/// Sends its label when dropped: how a test sees a handler future being cancelled.
struct DropSignal(mpsc::UnboundedSender<&'static str>, &'static str);

impl Drop for DropSignal {
    fn drop(&mut self) {
        let _ = self.0.send(self.1);
    }
}

impl Edge for EdgeService {
    async fn echo(&self, request: Request<Text>) -> Result<Response<Text>, Status> {
        Ok(Response::new(request.into_inner()))
    }

    async fn panic(&self, _request: Request<Text>) -> Result<Response<Text>, Status> {
        panic!("deliberate panic in a unary handler")
    }

    async fn panic_stream(
        &self,
        request: Request<Text>,
        mut sink: ResponseSink<Text>,
    ) -> Result<(), Status> {
        sink.send(request.into_inner()).await?;
        panic!("deliberate panic in a streaming handler")
    }

    async fn hang(&self, _request: Request<Text>) -> Result<Response<Text>, Status> {
        let _signal = DropSignal(self.dropped.clone(), "hang");
        std::future::pending().await
    }

    async fn chat(
        &self,
        request: Request<Streaming<Text>>,
        mut sink: ResponseSink<Text>,
    ) -> Result<(), Status> {
        let _signal = DropSignal(self.dropped.clone(), "chat");
        let mut messages = request.into_inner();
        while let Some(message) = messages.message().await? {
            sink.send(message).await?;
        }
        Ok(())
    }
}

/// A server with the edge service and the interop service; the receiver sees handler drops.
async fn start() -> (TestServer, mpsc::UnboundedReceiver<&'static str>) {
    let (dropped, drops) = mpsc::unbounded_channel();
    let server = Server::builder()
        .add_service(EdgeServer::new(EdgeService { dropped }))
        .add_service(common::test_service::test_service())
        .max_receive_message_size(64 * 1024)
        .build();
    (TestServer::start(server).await, drops)
}

/// An HTTP/2 connection speaking to the server with no gRPC library in between.
async fn connect(server: &TestServer) -> h2::client::SendRequest<Bytes> {
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    // h2 0.4.20 closes a connection with ENHANCE_YOUR_CALM once ~100 small DATA frames sit
    // unread; the concurrency test reads 200 answers on one connection, so allow more.
    let (client, connection) = h2::client::Builder::new()
        .data_frame_budget(1 << 20)
        .handshake(tcp)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Request headers, well-formed unless a test changes them.
fn headers(path: &str) -> http::Request<()> {
    http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap()
}

/// Well-formed request headers with `name` set to `value`: the one field a test is about.
fn headers_with(path: &str, name: &'static str, value: &str) -> http::Request<()> {
    let mut request = headers(path);
    request.headers_mut().insert(name, value.parse().unwrap());
    request
}

/// One Length-Prefixed-Message, with the flag and length given explicitly so tests can lie.
fn prefixed(flag: u8, declared_len: u32, body: &[u8]) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_u8(flag);
    buf.put_u32(declared_len);
    buf.put_slice(body);
    buf.freeze()
}

/// A correctly framed message.
fn message(msg: &impl Message) -> Bytes {
    let body = msg.encode_to_vec();
    prefixed(0, body.len() as u32, &body)
}

/// What came back for one call.
#[derive(Debug)]
struct Answer {
    http: StatusCode,
    headers: HeaderMap,
    data: Bytes,
    trailers: Option<HeaderMap>,
}

impl Answer {
    /// The gRPC status, from the trailers or (trailers-only) the headers: `grpc-status`
    /// digits and the percent-decoded `grpc-message` (PROTOCOL-HTTP2 § Responses), read here
    /// by hand as any peer would.
    fn status(&self) -> Status {
        let block = self.trailers.as_ref().unwrap_or(&self.headers);
        let code = block
            .get("grpc-status")
            .and_then(|v| v.to_str().ok()?.parse::<i32>().ok())
            .expect("a grpc-status in trailers or trailers-only headers");
        let message = block
            .get("grpc-message")
            .map(|v| percent_decoded(v.as_bytes()))
            .unwrap_or_default();
        Status::new(Code::from_i32(code), message)
    }

    fn assert_status(&self, code: Code, message_part: &str) {
        let status = self.status();
        assert_eq!(status.code(), code, "{status:?} / {self:?}");
        assert!(
            status.message().contains(message_part),
            "message {:?} lacks {message_part:?}",
            status.message()
        );
    }
}

/// Sends one call (headers, then `data` chunks, END_STREAM after the last) and reads the answer.
async fn call(
    client: &mut h2::client::SendRequest<Bytes>,
    request: http::Request<()>,
    data: Vec<Bytes>,
) -> Answer {
    let mut ready = client.clone().ready().await.unwrap();
    let end_with_headers = data.is_empty();
    let (response, mut stream) = ready.send_request(request, end_with_headers).unwrap();
    let count = data.len();
    for (i, chunk) in data.into_iter().enumerate() {
        stream.send_data(chunk, i + 1 == count).unwrap();
    }
    let outcome = async {
        let response = response.await.unwrap();
        let (parts, mut body) = response.into_parts();
        let mut data = BytesMut::new();
        while let Some(chunk) = body.data().await {
            let chunk = chunk.unwrap();
            let _ = body.flow_control().release_capacity(chunk.len());
            data.extend_from_slice(&chunk);
        }
        let trailers = body.trailers().await.unwrap();
        Answer {
            http: parts.status,
            headers: parts.headers,
            data: data.freeze(),
            trailers,
        }
    };
    tokio::time::timeout(Duration::from_secs(10), outcome)
        .await
        .expect("the server answered within 10 s")
}

/// The good call: Echo returns what it was given, on the same connection.
async fn assert_still_serves(client: &mut h2::client::SendRequest<Bytes>) {
    let text = Text {
        text: "still here".into(),
    };
    let answer = call(client, headers("/edge.Edge/Echo"), vec![message(&text)]).await;
    assert_eq!(answer.http, StatusCode::OK);
    answer.assert_status(Code::Ok, "");
    assert_eq!(
        answer.data,
        message(&text),
        "echoed message, prefix included"
    );
}

fn hello() -> Bytes {
    message(&Text {
        text: "hello".into(),
    })
}

#[tokio::test]
async fn wrong_content_type_is_http_415() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let request = headers_with("/edge.Edge/Echo", "content-type", "text/html");
    let answer = call(&mut client, request, vec![hello()]).await;
    assert_eq!(answer.http, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    answer.assert_status(Code::Internal, "content-type");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn missing_te_trailers_is_http_400() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let mut request = headers("/edge.Edge/Echo");
    request.headers_mut().remove("te");
    let answer = call(&mut client, request, vec![hello()]).await;
    assert_eq!(answer.http, StatusCode::BAD_REQUEST);
    answer.assert_status(Code::Internal, "te: trailers");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn get_is_http_405() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let mut request = headers("/edge.Edge/Echo");
    *request.method_mut() = http::Method::GET;
    let answer = call(&mut client, request, vec![]).await;
    assert_eq!(answer.http, StatusCode::METHOD_NOT_ALLOWED);
    answer.assert_status(Code::Internal, "POST");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn malformed_path_is_unimplemented() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let answer = call(&mut client, headers("/no-method-here"), vec![hello()]).await;
    assert_eq!(answer.http, StatusCode::OK);
    assert!(answer.trailers.is_none(), "trailers-only");
    answer.assert_status(Code::Unimplemented, "malformed :path");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn unknown_service_and_unknown_method_are_worded_apart() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let answer = call(&mut client, headers("/edge.Nope/Echo"), vec![hello()]).await;
    answer.assert_status(Code::Unimplemented, "unknown service edge.Nope");
    let answer = call(&mut client, headers("/edge.Edge/Nope"), vec![hello()]).await;
    answer.assert_status(
        Code::Unimplemented,
        "unknown method Nope for service edge.Edge",
    );
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn oversize_message_is_resource_exhausted_before_the_body_arrives() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    // Declares 4 GiB - 1 but sends only the prefix: the limit is checked on the declared length,
    // so the server answers without waiting for (or allocating) the body.
    let answer = call(
        &mut client,
        headers("/edge.Edge/Echo"),
        vec![prefixed(0, u32::MAX, b"")],
    )
    .await;
    answer.assert_status(Code::ResourceExhausted, "exceeds");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn compressed_flag_without_grpc_encoding_is_internal() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let body = Text { text: "x".into() }.encode_to_vec();
    let answer = call(
        &mut client,
        headers("/edge.Edge/Echo"),
        vec![prefixed(1, body.len() as u32, &body)],
    )
    .await;
    answer.assert_status(Code::Internal, "grpc-encoding");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn unknown_flag_byte_is_internal() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let body = Text { text: "x".into() }.encode_to_vec();
    let answer = call(
        &mut client,
        headers("/edge.Edge/Echo"),
        vec![prefixed(2, body.len() as u32, &body)],
    )
    .await;
    answer.assert_status(Code::Internal, "");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn unsupported_grpc_encoding_is_unimplemented_and_lists_ours() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let request = headers_with("/edge.Edge/Echo", "grpc-encoding", "snappy");
    let answer = call(&mut client, request, vec![hello()]).await;
    answer.assert_status(Code::Unimplemented, "snappy");
    let accepted = answer
        .headers
        .get("grpc-accept-encoding")
        .expect("grpc-accept-encoding");
    assert!(accepted.to_str().unwrap().contains("gzip"), "{accepted:?}");
    // The list is in real response headers and the status in trailers, not trailers-only: a
    // client that keeps to the grammar reads grpc-accept-encoding from Response-Headers only.
    assert!(
        answer.trailers.is_some() && !answer.headers.contains_key("grpc-status"),
        "{answer:?}"
    );
    assert_still_serves(&mut client).await;
}

/// Response headers list our encodings (`grpc-accept-encoding`) to a client that negotiates
/// compression — it sent `grpc-accept-encoding` or `grpc-encoding` — and not to one that sent
/// neither, which gets content-type alone, as grpc-go answers. Unary and streaming alike.
#[tokio::test]
async fn response_headers_list_our_encodings_to_clients_that_negotiate() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    for path in ["/edge.Edge/Echo", "/edge.Edge/Chat"] {
        let cases: [(Option<(&str, &str)>, bool); 4] = [
            (None, false),
            (Some(("grpc-accept-encoding", "gzip")), true),
            (Some(("grpc-accept-encoding", "identity")), true),
            (Some(("grpc-encoding", "identity")), true),
        ];
        for (sent, listed) in cases {
            let request = match sent {
                Some((name, value)) => headers_with(path, name, value),
                None => headers(path),
            };
            let answer = call(&mut client, request, vec![hello()]).await;
            answer.assert_status(Code::Ok, "");
            assert_eq!(answer.data, hello(), "{path} {sent:?}");
            assert_eq!(answer.headers["content-type"], "application/grpc");
            let accepted = answer.headers.get("grpc-accept-encoding");
            assert_eq!(accepted.is_some(), listed, "{path} {sent:?}: {answer:?}");
            if let Some(accepted) = accepted {
                assert!(accepted.to_str().unwrap().contains("gzip"), "{accepted:?}");
            }
        }
    }
}

/// A request marked gzip whose body is not a valid gzip member: INTERNAL, naming gzip.
#[tokio::test]
async fn corrupt_gzip_message_is_internal() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let request = headers_with("/edge.Edge/Echo", "grpc-encoding", "gzip");
    // The gzip magic and method, then bytes that are no DEFLATE stream and no trailer.
    let corrupt = [
        0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
    ];
    let answer = call(
        &mut client,
        request,
        vec![prefixed(1, corrupt.len() as u32, &corrupt)],
    )
    .await;
    answer.assert_status(Code::Internal, "gzip");
    assert_still_serves(&mut client).await;
}

/// A small gzip message that inflates past the receive limit (64 KiB here): RESOURCE_EXHAUSTED,
/// and the server stops inflating at the limit (a few KiB of zeros claim 8 MiB).
#[tokio::test]
async fn gzip_message_inflating_past_the_limit_is_resource_exhausted() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let bomb = gzip(&vec![0u8; 8 << 20]);
    assert!(bomb.len() < 64 * 1024, "the compressed form fits the limit");
    let request = headers_with("/edge.Edge/Echo", "grpc-encoding", "gzip");
    let answer = call(
        &mut client,
        request,
        vec![prefixed(1, bomb.len() as u32, &bomb)],
    )
    .await;
    answer.assert_status(Code::ResourceExhausted, "inflates");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn undecodable_protobuf_is_internal() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    // Field 1, wire type 2 (length-delimited), claiming 100 bytes that are not there.
    let garbage = [0x0a, 100, 1, 2];
    let answer = call(
        &mut client,
        headers("/edge.Edge/Echo"),
        vec![prefixed(0, garbage.len() as u32, &garbage)],
    )
    .await;
    answer.assert_status(Code::Internal, "decode");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn end_stream_inside_a_message_is_internal() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    // Declares 10 bytes, sends 3, then END_STREAM.
    let answer = call(
        &mut client,
        headers("/edge.Edge/Echo"),
        vec![prefixed(0, 10, &[0x0a, 1, b'x'])],
    )
    .await;
    answer.assert_status(Code::Internal, "truncated");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn unary_request_without_a_message_is_internal() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let answer = call(&mut client, headers("/edge.Edge/Echo"), vec![]).await;
    answer.assert_status(Code::Internal, "no request message");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn unary_request_with_two_messages_is_internal() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let answer = call(
        &mut client,
        headers("/edge.Edge/Echo"),
        vec![hello(), hello()],
    )
    .await;
    answer.assert_status(Code::Internal, "more than one");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn malformed_grpc_timeout_is_internal() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    for bad in ["", "1", "123456789S", "10x", "-1S", "1.5S"] {
        let request = headers_with("/edge.Edge/Echo", "grpc-timeout", bad);
        let answer = call(&mut client, request, vec![hello()]).await;
        answer.assert_status(Code::Internal, "grpc-timeout");
    }
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn handler_panic_is_internal() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let answer = call(&mut client, headers("/edge.Edge/Panic"), vec![hello()]).await;
    answer.assert_status(Code::Internal, "panicked");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn streaming_handler_panic_after_a_message_is_internal_in_trailers() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let answer = call(
        &mut client,
        headers("/edge.Edge/PanicStream"),
        vec![hello()],
    )
    .await;
    assert_eq!(
        answer.data,
        hello(),
        "the message sent before the panic arrives"
    );
    assert!(
        answer.trailers.is_some(),
        "headers were sent, so the status is in trailers"
    );
    answer.assert_status(Code::Internal, "panicked");
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn deadline_ends_the_call_with_deadline_exceeded_and_drops_the_handler() {
    let (server, mut drops) = start().await;
    let mut client = connect(&server).await;
    let request = headers_with("/edge.Edge/Hang", "grpc-timeout", "50m");
    let answer = call(&mut client, request, vec![hello()]).await;
    answer.assert_status(Code::DeadlineExceeded, "deadline");
    let dropped = tokio::time::timeout(Duration::from_secs(5), drops.recv()).await;
    assert_eq!(
        dropped.unwrap(),
        Some("hang"),
        "the handler future was dropped"
    );
    assert_still_serves(&mut client).await;
}

#[tokio::test]
async fn client_reset_cancels_the_handler() {
    let (server, mut drops) = start().await;
    let client = connect(&server).await;
    let mut ready = client.clone().ready().await.unwrap();
    let (_response, mut stream) = ready
        .send_request(headers("/edge.Edge/Hang"), false)
        .unwrap();
    stream.send_data(hello(), true).unwrap();
    // Give the server the call, then cancel it the way gRPC clients do.
    let mut client2 = client.clone();
    assert_still_serves(&mut client2).await;
    stream.send_reset(h2::Reason::CANCEL);
    let dropped = tokio::time::timeout(Duration::from_secs(5), drops.recv()).await;
    assert_eq!(
        dropped.unwrap(),
        Some("hang"),
        "the handler saw the cancellation"
    );
    assert_still_serves(&mut client2).await;
}

#[tokio::test]
async fn bidi_messages_split_across_frames_and_packed_into_one_frame() {
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let a = message(&Text {
        text: "a".repeat(300),
    });
    let b = message(&Text { text: "b".into() });
    let c = message(&Text { text: "c".into() });
    // `a` split across three DATA frames, `b` and `c` packed into one.
    let mut bc = BytesMut::from(&b[..]);
    bc.extend_from_slice(&c);
    let chunks = vec![a.slice(..3), a.slice(3..200), a.slice(200..), bc.freeze()];
    let answer = call(&mut client, headers("/edge.Edge/Chat"), chunks).await;
    answer.assert_status(Code::Ok, "");
    let mut expected = BytesMut::new();
    for m in [&a, &b, &c] {
        expected.extend_from_slice(m);
    }
    assert_eq!(answer.data, expected.freeze());
}

#[tokio::test]
async fn graceful_shutdown_lets_the_call_in_flight_finish() {
    let (mut server, _drops) = start().await;
    let client = connect(&server).await;
    // A bidi call that stays open until we half-close it.
    let mut ready = client.clone().ready().await.unwrap();
    let (response, mut stream) = ready
        .send_request(headers("/edge.Edge/Chat"), false)
        .unwrap();
    stream.send_data(hello(), false).unwrap();
    let response = response.await.unwrap();
    let mut body = response.into_body();
    let first = body.data().await.unwrap().unwrap();
    assert_eq!(first, hello());
    let serving = server.shutdown();
    // After GOAWAY the open call still completes.
    stream.send_data(hello(), true).unwrap();
    let second = body.data().await.unwrap().unwrap();
    assert_eq!(second, hello());
    assert!(body.data().await.is_none());
    let trailers = body.trailers().await.unwrap().unwrap();
    assert_eq!(trailers["grpc-status"], "0");
    tokio::time::timeout(Duration::from_secs(5), serving)
        .await
        .expect("the server finished draining")
        .unwrap()
        .unwrap();
    // And the connection no longer takes new calls.
    let refused = async {
        let mut ready = client.ready().await?;
        let (response, _) = ready.send_request(headers("/edge.Edge/Echo"), true)?;
        response.await
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(5), refused)
            .await
            .unwrap()
            .is_err()
    );
}

#[tokio::test]
async fn per_method_receive_limit_overrides_the_server_limit() {
    let (dropped, _drops) = mpsc::unbounded_channel();
    let server = Server::builder()
        .add_service(EdgeServer::new(EdgeService { dropped }))
        .method_max_receive_message_size("/edge.Edge/Echo", 8)
        .build();
    let server = TestServer::start(server).await;
    let mut client = connect(&server).await;
    let big = message(&Text {
        text: "0123456789".into(),
    });
    let answer = call(&mut client, headers("/edge.Edge/Echo"), vec![big.clone()]).await;
    answer.assert_status(Code::ResourceExhausted, "exceeds");
    // The same message is fine for a method without the override.
    let answer = call(&mut client, headers("/edge.Edge/Chat"), vec![big]).await;
    answer.assert_status(Code::Ok, "");
}

#[tokio::test]
async fn many_concurrent_calls_on_one_connection() {
    let (server, _drops) = start().await;
    let client = connect(&server).await;
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200 {
        let mut client = client.clone();
        calls.spawn(async move {
            let text = Text {
                text: format!("call {i}"),
            };
            let answer = call(
                &mut client,
                headers("/edge.Edge/Echo"),
                vec![message(&text)],
            )
            .await;
            answer.assert_status(Code::Ok, "");
            assert_eq!(answer.data, message(&text));
        });
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }
}

#[tokio::test]
async fn thousands_of_small_data_frames_within_the_window_are_not_abuse() {
    use bare_grpc_contracts::grpc_testing::{
        Payload, StreamingInputCallRequest, StreamingInputCallResponse,
    };
    // A client streaming 20,000 small messages, one DATA frame each, as fast as flow control
    // allows. h2's default small-frame budget would close the connection with
    // ENHANCE_YOUR_CALM after ~140 unread frames; a well-behaved client must not be cut off.
    let (server, _drops) = start().await;
    let mut client = connect(&server).await;
    let one = message(&StreamingInputCallRequest {
        payload: Some(Payload {
            r#type: 0,
            body: vec![7; 10],
        }),
        expect_compressed: None,
    });
    let chunks = vec![one; 20_000];
    let answer = call(
        &mut client,
        headers("/grpc.testing.TestService/StreamingInputCall"),
        chunks,
    )
    .await;
    answer.assert_status(Code::Ok, "");
    let reply = StreamingInputCallResponse::decode(&answer.data[5..]).unwrap();
    assert_eq!(reply.aggregated_payload_size, 200_000);
    assert_still_serves(&mut client).await;
}

/// `%XX` escapes decoded, everything else as sent.
fn percent_decoded(value: &[u8]) -> String {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let hex = value
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (value[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `data` as one RFC 1952 gzip member: a 10-byte header, raw DEFLATE (miniz_oxide, the
/// library's own dependency), then the CRC-32 and the length, little-endian.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut member = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    member.extend(miniz_oxide::deflate::compress_to_vec(data, 6));
    let mut table = [0u32; 256];
    for (n, slot) in table.iter_mut().enumerate() {
        *slot = (0..8).fold(n as u32, |c, _| {
            if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            }
        });
    }
    let crc = !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    });
    member.extend(crc.to_le_bytes());
    member.extend((data.len() as u32).to_le_bytes());
    member
}

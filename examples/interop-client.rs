//! The interop client: gRPC's standard client test cases (interop-test-descriptions.md) run by
//! our `Channel` against any interop server (ours, grpc-go's, grpcio's).
//!
//! ```text
//! cargo run --release --example interop-client -- \
//!     --server_host localhost --server_port 10000 --test_case large_unary
//! ```
//!
//! Flags follow gRPC's interop clients: `--server_host` (default localhost), `--server_port`
//! (default 10000), `--test_case` (one case name, or `all`), `--use_tls` (needs `--features
//! tls`) with `--use_test_ca --ca_file F` (trust that CA instead of the system's roots) and
//! `--server_host_override NAME` (the name checked against the server's certificate), and,
//! ours, `--client_cert_file F --client_key_file F` for mutual TLS. `--target URI` (any of
//! gRPC's target forms: `dns:///host:port`, `ipv4:a:p,b:p`, `unix:///path`, ...) replaces
//! `--server_host`/`--server_port`, and `--lb_policy pick_first|round_robin` picks the
//! channel's load-balancing policy. The soak cases, `rpc_soak` (N `large_unary` calls in
//! sequence on one channel) and `channel_soak` (the same, a new channel for each), run
//! `--soak_iterations N` times (default 10); `all` leaves them out. Each passing case prints
//! `PASS <case>`; the first failure prints `FAIL <case>: <why>` and exits with status 1.
//!
//! Most cases go through the generated `TestServiceClient`. Three reach below it on purpose,
//! using the same `Channel` methods the stub uses, because the check needs something a stub
//! does not offer: `server_compressed_unary` reads the unary answer through a
//! `Streaming` to see each message's compressed flag (on the wire a unary answer is a
//! one-message stream); `client_compressed_streaming` sends one message compressed and the
//! next uncompressed, which needs a `RequestSink`; `cancel_after_begin` cancels by dropping
//! a `RequestSink`, which is how this library cancels a call.
//!
//! Spec: <https://github.com/grpc/grpc/blob/master/doc/interop-test-descriptions.md>

use std::process::ExitCode;
use std::time::Duration;

use bare_grpc::client::LoadBalancingPolicy;
use bare_grpc::{Channel, Code, Encoding, Request, Status};

use bare_grpc_contracts::grpc_testing::test_service_grpc::{
    STREAMING_INPUT_CALL, TestServiceClient, UNARY_CALL,
};
use bare_grpc_contracts::grpc_testing::unimplemented_service_grpc::UnimplementedServiceClient;
use bare_grpc_contracts::grpc_testing::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};

/// Every case, in the order `all` runs them.
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

/// What a case ends with: `Err` says why it failed.
type Outcome = Result<(), String>;

/// Fails the case with a formatted reason unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($why:tt)+) => {
        if !$cond {
            return Err(format!($($why)+));
        }
    };
}

/// Turns a call's status into a case failure that names the step.
fn step<T>(what: &str, result: Result<T, Status>) -> Result<T, String> {
    result.map_err(|status| format!("{what}: {status}"))
}

/// `size` zero bytes (the interop cases only use COMPRESSABLE payloads).
fn payload(size: usize) -> Option<Payload> {
    Some(Payload {
        r#type: 0,
        body: vec![0; size],
    })
}

/// The body length of an optional payload.
fn body_len(payload: &Option<Payload>) -> usize {
    payload.as_ref().map_or(0, |p| p.body.len())
}

/// A streaming-output request asking for one response of each size.
fn output_request(sizes: &[i32], request_size: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|&size| ResponseParameters {
                size,
                ..Default::default()
            })
            .collect(),
        payload: if request_size > 0 {
            payload(request_size)
        } else {
            None
        },
        ..Default::default()
    }
}

/// The large_unary request: 271828 bytes in, 314159 bytes asked back.
fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_size: 314_159,
        payload: payload(271_828),
        ..Default::default()
    }
}

/// A `Stream` over a vector (the example needs no futures-util).
struct VecStream<T>(std::vec::IntoIter<T>);

impl<T: Unpin> futures_core::Stream for VecStream<T> {
    type Item = T;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        std::task::Poll::Ready(self.get_mut().0.next())
    }
}

/// One interop case by name.
async fn run_case(name: &str, channel: &Channel) -> Outcome {
    let client = TestServiceClient::new(channel.clone());
    match name {
        "empty_unary" => empty_unary(&client).await,
        "large_unary" => large_unary(&client).await,
        "client_streaming" => client_streaming(&client).await,
        "server_streaming" => server_streaming(&client).await,
        "ping_pong" => ping_pong(&client).await,
        "empty_stream" => empty_stream(&client).await,
        "timeout_on_sleeping_server" => timeout_on_sleeping_server(&client).await,
        "cancel_after_begin" => cancel_after_begin(channel).await,
        "cancel_after_first_response" => cancel_after_first_response(&client).await,
        "status_code_and_message" => status_code_and_message(&client).await,
        "special_status_message" => special_status_message(&client).await,
        "custom_metadata" => custom_metadata(&client).await,
        "unimplemented_method" => unimplemented_method(&client).await,
        "unimplemented_service" => unimplemented_service(channel).await,
        "client_compressed_unary" => client_compressed_unary(&client).await,
        "server_compressed_unary" => server_compressed_unary(channel).await,
        "client_compressed_streaming" => client_compressed_streaming(channel).await,
        "server_compressed_streaming" => server_compressed_streaming(&client).await,
        other => Err(format!("unknown test case {other:?}")),
    }
}

async fn empty_unary(client: &TestServiceClient) -> Outcome {
    let response = step("EmptyCall", client.empty_call(Empty {}).await)?;
    ensure!(
        response.into_inner() == Empty {},
        "EmptyCall answered a non-empty message"
    );
    Ok(())
}

async fn large_unary(client: &TestServiceClient) -> Outcome {
    let response = step("UnaryCall", client.unary_call(large_request()).await)?;
    let len = body_len(&response.into_inner().payload);
    ensure!(len == 314_159, "payload of {len} bytes, expected 314159");
    Ok(())
}

async fn client_streaming(client: &TestServiceClient) -> Outcome {
    let requests: Vec<StreamingInputCallRequest> = [27_182, 8, 1_828, 45_904]
        .into_iter()
        .map(|size| StreamingInputCallRequest {
            payload: payload(size),
            ..Default::default()
        })
        .collect();
    let response = step(
        "StreamingInputCall",
        client
            .streaming_input_call(VecStream(requests.into_iter()))
            .await,
    )?;
    let total = response.into_inner().aggregated_payload_size;
    ensure!(
        total == 74_922,
        "aggregated_payload_size {total}, expected 74922"
    );
    Ok(())
}

async fn server_streaming(client: &TestServiceClient) -> Outcome {
    let sizes = [31_415, 9, 2_653, 58_979];
    let request = output_request(&sizes, 0);
    let mut responses = step(
        "StreamingOutputCall",
        client.streaming_output_call(request).await,
    )?;
    for expected in sizes {
        let message = step("read", responses.message().await)?
            .ok_or_else(|| format!("stream ended before the {expected}-byte message"))?;
        let len = body_len(&message.payload);
        ensure!(
            len == expected as usize,
            "message of {len} bytes, expected {expected}"
        );
    }
    let end = step("end of stream", responses.message().await)?;
    ensure!(end.is_none(), "more messages than asked for");
    Ok(())
}

async fn ping_pong(client: &TestServiceClient) -> Outcome {
    let (mut sink, mut responses) = step("FullDuplexCall", client.full_duplex_call(()).await)?;
    for (request_size, response_size) in
        [(27_182, 31_415), (8, 9), (1_828, 2_653), (45_904, 58_979)]
    {
        let request = output_request(&[response_size], request_size);
        step("send", sink.send(request).await)?;
        let message = step("read", responses.message().await)?.ok_or("stream ended early")?;
        let len = body_len(&message.payload);
        ensure!(
            len == response_size as usize,
            "message of {len} bytes, expected {response_size}"
        );
    }
    sink.finish();
    let end = step("end of stream", responses.message().await)?;
    ensure!(end.is_none(), "more messages than asked for");
    Ok(())
}

async fn empty_stream(client: &TestServiceClient) -> Outcome {
    let (sink, mut responses) = step("FullDuplexCall", client.full_duplex_call(()).await)?;
    sink.finish();
    let end = step("end of stream", responses.message().await)?;
    ensure!(end.is_none(), "a message on an empty stream");
    Ok(())
}

async fn timeout_on_sleeping_server(client: &TestServiceClient) -> Outcome {
    let mut request = Request::new(());
    request.set_timeout(Duration::from_millis(1));
    let outcome = async {
        let (mut sink, mut responses) = client.full_duplex_call(request).await?;
        // The send may already fail on the expired deadline; the status is what matters.
        let _ = sink.send(output_request(&[], 27_182)).await;
        responses.message().await
    }
    .await;
    match outcome {
        Err(status) if status.code() == Code::DeadlineExceeded => Ok(()),
        Err(status) => Err(format!("expected DEADLINE_EXCEEDED, got {status}")),
        Ok(message) => Err(format!(
            "expected DEADLINE_EXCEEDED, the call went on: {message:?}"
        )),
    }
}

async fn cancel_after_begin(channel: &Channel) -> Outcome {
    let (sink, mut response) = step(
        "StreamingInputCall",
        channel
            .bidi::<StreamingInputCallRequest, StreamingInputCallResponse>(
                STREAMING_INPUT_CALL,
                Request::new(()),
            )
            .await,
    )?;
    drop(sink);
    match response.message().await {
        Err(status) if status.code() == Code::Cancelled => Ok(()),
        other => Err(format!("expected CANCELLED, got {other:?}")),
    }
}

async fn cancel_after_first_response(client: &TestServiceClient) -> Outcome {
    let (mut sink, mut responses) = step("FullDuplexCall", client.full_duplex_call(()).await)?;
    step("send", sink.send(output_request(&[31_415], 27_182)).await)?;
    let first = step("read", responses.message().await)?.ok_or("stream ended early")?;
    ensure!(
        body_len(&first.payload) == 31_415,
        "wrong first message size"
    );
    drop(sink);
    match responses.message().await {
        Err(status) if status.code() == Code::Cancelled => Ok(()),
        other => Err(format!("expected CANCELLED, got {other:?}")),
    }
}

/// Checks that a call ended with `code` and `message`.
fn expect_status<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    message: &str,
) -> Outcome {
    match result {
        Err(status) if status.code() == code && status.message() == message => Ok(()),
        other => Err(format!("expected {code:?} {message:?}, got {other:?}")),
    }
}

/// Asks for `code`/`message` on UnaryCall and on FullDuplexCall and checks both echo it.
async fn echo_status_both_ways(client: &TestServiceClient, code: i32, message: &str) -> Outcome {
    let status = Some(EchoStatus {
        code,
        message: message.to_owned(),
    });
    let unary = client
        .unary_call(SimpleRequest {
            response_status: status.clone(),
            ..Default::default()
        })
        .await;
    expect_status(unary, Code::from_i32(code), message)?;

    let (mut sink, mut responses) = step("FullDuplexCall", client.full_duplex_call(()).await)?;
    let request = StreamingOutputCallRequest {
        response_status: status,
        ..Default::default()
    };
    step("send", sink.send(request).await)?;
    sink.finish();
    expect_status(responses.message().await, Code::from_i32(code), message)
}

async fn status_code_and_message(client: &TestServiceClient) -> Outcome {
    echo_status_both_ways(client, 2, "test status message").await
}

async fn special_status_message(client: &TestServiceClient) -> Outcome {
    let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
    let unary = client
        .unary_call(SimpleRequest {
            response_status: Some(EchoStatus {
                code: 2,
                message: message.to_owned(),
            }),
            ..Default::default()
        })
        .await;
    expect_status(unary, Code::Unknown, message)
}

/// The metadata custom_metadata sends and expects back.
const INITIAL_KEY: &str = "x-grpc-test-echo-initial";
const INITIAL_VALUE: &str = "test_initial_metadata_value";
const TRAILING_KEY: &str = "x-grpc-test-echo-trailing-bin";
const TRAILING_VALUE: &[u8] = &[0xab, 0xab, 0xab];

/// Adds the echo metadata to a request.
fn with_echo_metadata<T>(message: T) -> Result<Request<T>, String> {
    let mut request = Request::new(message);
    step(
        "metadata",
        request
            .metadata_mut()
            .insert(INITIAL_KEY, INITIAL_VALUE)
            .map_err(Status::from),
    )?;
    step(
        "metadata",
        request
            .metadata_mut()
            .insert_bin(TRAILING_KEY, TRAILING_VALUE)
            .map_err(Status::from),
    )?;
    Ok(request)
}

async fn custom_metadata(client: &TestServiceClient) -> Outcome {
    let response = step(
        "UnaryCall",
        client
            .unary_call(with_echo_metadata(large_request())?)
            .await,
    )?;
    ensure!(
        response.metadata().get(INITIAL_KEY) == Some(INITIAL_VALUE),
        "UnaryCall initial metadata: {:?}",
        response.metadata().get(INITIAL_KEY)
    );
    ensure!(
        response.trailers().get_bin(TRAILING_KEY).as_deref() == Some(TRAILING_VALUE),
        "UnaryCall trailing metadata: {:?}",
        response.trailers().get_bin(TRAILING_KEY)
    );

    let request = with_echo_metadata(())?;
    let (mut sink, mut responses) = step("FullDuplexCall", client.full_duplex_call(request).await)?;
    step("send", sink.send(output_request(&[314_159], 271_828)).await)?;
    sink.finish();
    let message = step("read", responses.message().await)?.ok_or("stream ended early")?;
    ensure!(body_len(&message.payload) == 314_159, "wrong message size");
    let end = step("end of stream", responses.message().await)?;
    ensure!(end.is_none(), "more messages than asked for");
    let initial = responses.headers().and_then(|m| m.get(INITIAL_KEY));
    ensure!(
        initial == Some(INITIAL_VALUE),
        "FullDuplexCall initial metadata: {initial:?}"
    );
    let trailing = responses.trailers().and_then(|m| m.get_bin(TRAILING_KEY));
    ensure!(
        trailing.as_deref() == Some(TRAILING_VALUE),
        "FullDuplexCall trailing metadata: {trailing:?}"
    );
    Ok(())
}

async fn unimplemented_method(client: &TestServiceClient) -> Outcome {
    match client.unimplemented_call(Empty {}).await {
        Err(status) if status.code() == Code::Unimplemented => Ok(()),
        other => Err(format!("expected UNIMPLEMENTED, got {other:?}")),
    }
}

async fn unimplemented_service(channel: &Channel) -> Outcome {
    let client = UnimplementedServiceClient::new(channel.clone());
    match client.unimplemented_call(Empty {}).await {
        Err(status) if status.code() == Code::Unimplemented => Ok(()),
        other => Err(format!("expected UNIMPLEMENTED, got {other:?}")),
    }
}

async fn client_compressed_unary(client: &TestServiceClient) -> Outcome {
    let expect = |value| Some(BoolValue { value });
    // Probe: an uncompressed message that claims to be compressed must be refused, or the
    // server cannot check the flag at all.
    let probe = SimpleRequest {
        expect_compressed: expect(true),
        ..large_request()
    };
    match client.unary_call(probe).await {
        Err(status) if status.code() == Code::InvalidArgument => {}
        other => return Err(format!("probe: expected INVALID_ARGUMENT, got {other:?}")),
    }
    for compressed in [true, false] {
        let mut request = Request::new(SimpleRequest {
            expect_compressed: expect(compressed),
            ..large_request()
        });
        if compressed {
            request.set_compression(Encoding::Gzip);
        }
        let response = step("UnaryCall", client.unary_call(request).await)?;
        let len = body_len(&response.into_inner().payload);
        ensure!(len == 314_159, "payload of {len} bytes, expected 314159");
    }
    Ok(())
}

async fn server_compressed_unary(channel: &Channel) -> Outcome {
    for compressed in [true, false] {
        let request = SimpleRequest {
            response_compressed: Some(BoolValue { value: compressed }),
            ..large_request()
        };
        // A unary answer read as a one-message stream, to see the message's prefix flag.
        let mut answer = step(
            "UnaryCall",
            channel
                .server_streaming::<SimpleRequest, SimpleResponse>(
                    UNARY_CALL,
                    Request::new(request),
                )
                .await,
        )?;
        let message = step("read", answer.message().await)?.ok_or("no answer")?;
        ensure!(
            answer.last_message_compressed() == compressed,
            "asked for compressed={compressed}, the flag says {}",
            answer.last_message_compressed()
        );
        ensure!(body_len(&message.payload) == 314_159, "wrong payload size");
        ensure!(
            step("end", answer.message().await)?.is_none(),
            "two answers"
        );
    }
    Ok(())
}

async fn client_compressed_streaming(channel: &Channel) -> Outcome {
    let open = |compressed: bool| {
        let mut request = Request::new(());
        if compressed {
            request.set_compression(Encoding::Gzip);
        }
        channel.bidi::<StreamingInputCallRequest, StreamingInputCallResponse>(
            STREAMING_INPUT_CALL,
            request,
        )
    };
    let message = |size, compressed| StreamingInputCallRequest {
        payload: payload(size),
        expect_compressed: Some(BoolValue { value: compressed }),
    };
    // Probe: an uncompressed message claiming compression must be refused.
    let (mut sink, mut response) = step("StreamingInputCall", open(false).await)?;
    let _ = sink.send(message(27_182, true)).await;
    sink.finish();
    match response.message().await {
        Err(status) if status.code() == Code::InvalidArgument => {}
        other => return Err(format!("probe: expected INVALID_ARGUMENT, got {other:?}")),
    }
    // The real call: first message compressed, second not, on one gzip call.
    let (mut sink, mut response) = step("StreamingInputCall", open(true).await)?;
    step("send", sink.send(message(27_182, true)).await)?;
    sink.set_message_compression(false);
    step("send", sink.send(message(45_904, false)).await)?;
    sink.finish();
    let answer = step("read", response.message().await)?.ok_or("no answer")?;
    ensure!(
        answer.aggregated_payload_size == 73_086,
        "aggregated_payload_size {}, expected 73086",
        answer.aggregated_payload_size
    );
    ensure!(
        step("end", response.message().await)?.is_none(),
        "two answers"
    );
    Ok(())
}

async fn server_compressed_streaming(client: &TestServiceClient) -> Outcome {
    let parameters = |size, compressed| ResponseParameters {
        size,
        compressed: Some(BoolValue { value: compressed }),
        ..Default::default()
    };
    let request = StreamingOutputCallRequest {
        response_parameters: vec![parameters(31_415, true), parameters(92_653, false)],
        ..Default::default()
    };
    let mut responses = step(
        "StreamingOutputCall",
        client.streaming_output_call(request).await,
    )?;
    for (size, compressed) in [(31_415usize, true), (92_653, false)] {
        let message: StreamingOutputCallResponse =
            step("read", responses.message().await)?.ok_or("stream ended early")?;
        ensure!(body_len(&message.payload) == size, "wrong message size");
        ensure!(
            responses.last_message_compressed() == compressed,
            "message of {size} bytes: compressed flag {}, expected {compressed}",
            responses.last_message_compressed()
        );
    }
    ensure!(
        step("end", responses.message().await)?.is_none(),
        "more messages than asked for"
    );
    Ok(())
}

/// `rpc_soak` and `channel_soak` (interop-test-descriptions.md): `--soak_iterations`
/// `large_unary` calls in sequence, on `channel` or on a new channel each (connected, used
/// once, dropped). The first failure ends the case, naming the iteration.
async fn soak(args: &Args, target: &str, channel: Channel, new_channels: bool) -> Outcome {
    for i in 0..args.soak_iterations {
        let channel = if new_channels {
            connect(args, target)
                .await
                .map_err(|e| format!("iteration {i}: connect: {e}"))?
        } else {
            channel.clone()
        };
        large_unary(&TestServiceClient::new(channel))
            .await
            .map_err(|e| format!("iteration {i}: {e}"))?;
    }
    Ok(())
}

/// Parsed command line.
struct Args {
    /// `--server_host`.
    host: String,
    /// `--server_port`.
    port: u16,
    /// `--test_case`.
    case: String,
    /// `--use_tls`.
    use_tls: bool,
    /// `--use_test_ca`.
    use_test_ca: bool,
    /// `--ca_file`.
    ca_file: Option<String>,
    /// `--server_host_override`.
    server_host_override: Option<String>,
    /// `--client_cert_file`, `--client_key_file`.
    client_cert: Option<(String, String)>,
    /// `--target`: replaces `--server_host`/`--server_port`.
    target: Option<String>,
    /// `--lb_policy`.
    lb_policy: LoadBalancingPolicy,
    /// `--soak_iterations`.
    soak_iterations: u32,
}

/// Prints the problem and the usage, then exits with status 2.
fn usage(error: &str) -> ! {
    eprintln!(
        "interop-client: {error}\n\
         usage: interop-client [--server_host H] [--server_port N | --target URI] \
         [--lb_policy pick_first|round_robin] --test_case NAME|all|rpc_soak|channel_soak \
         [--soak_iterations N] [--use_tls [--use_test_ca --ca_file F] [--server_host_override NAME] \
         [--client_cert_file F --client_key_file F]]\ncases: {}",
        CASES.join(" ")
    );
    std::process::exit(2);
}

/// Reads `--flag value` and `--flag=value`.
fn parse_args() -> Args {
    let mut args = Args {
        host: "localhost".into(),
        port: 10000,
        case: String::new(),
        use_tls: false,
        use_test_ca: false,
        ca_file: None,
        server_host_override: None,
        client_cert: None,
        target: None,
        lb_policy: LoadBalancingPolicy::PickFirst,
        soak_iterations: 10,
    };
    let (mut cert_file, mut key_file) = (None, None);
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        // Boolean flags: `--flag`, `--flag=true`, `--flag=false`.
        if name == "--use_tls" || name == "--use_test_ca" {
            let on = match inline.as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => usage(&format!("{name}={other}: expected true or false")),
            };
            if name == "--use_tls" {
                args.use_tls = on;
            } else {
                args.use_test_ca = on;
            }
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => argv
                .next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value"))),
        };
        match name.as_str() {
            "--server_host" => args.host = value,
            "--server_port" => {
                args.port = value
                    .parse()
                    .unwrap_or_else(|_| usage("--server_port takes a port number"))
            }
            "--test_case" => args.case = value,
            "--target" => args.target = Some(value),
            "--lb_policy" => {
                args.lb_policy = LoadBalancingPolicy::from_name(&value).unwrap_or_else(|| {
                    usage(&format!(
                        "--lb_policy {value:?}: expected pick_first or round_robin"
                    ))
                })
            }
            "--soak_iterations" => {
                args.soak_iterations = value
                    .parse()
                    .unwrap_or_else(|_| usage("--soak_iterations takes a count"))
            }
            "--ca_file" => args.ca_file = Some(value),
            "--server_host_override" => args.server_host_override = Some(value),
            "--client_cert_file" => cert_file = Some(value),
            "--client_key_file" => key_file = Some(value),
            _ => usage(&format!("unknown flag {name}")),
        }
    }
    if args.case.is_empty() {
        usage("--test_case is required");
    }
    match (cert_file, key_file) {
        (Some(cert), Some(key)) => args.client_cert = Some((cert, key)),
        (None, None) => {}
        _ => usage("--client_cert_file and --client_key_file go together"),
    }
    if args.use_tls && !cfg!(feature = "tls") {
        usage(
            "--use_tls needs the `tls` feature: cargo run --example interop-client --features tls",
        )
    }
    args
}

/// The channel: h2c, or TLS as the flags say.
async fn connect(args: &Args, addr: &str) -> Result<Channel, String> {
    let builder = Channel::builder(addr)
        .map_err(|s| s.to_string())?
        .load_balancing(args.lb_policy);
    #[cfg(feature = "tls")]
    let builder = if args.use_tls {
        builder.tls(client_tls(args)?).map_err(|s| s.to_string())?
    } else {
        builder
    };
    #[cfg(not(feature = "tls"))]
    let _ = args;
    builder.connect().await.map_err(|s| s.to_string())
}

/// `--use_tls` and its companions as a `ClientTls`.
#[cfg(feature = "tls")]
fn client_tls(args: &Args) -> Result<bare_grpc::tls::ClientTls, String> {
    use bare_grpc::tls::{ClientTls, Identity};
    let mut tls = ClientTls::new();
    if args.use_test_ca {
        // gRPC's interop clients default to the test CA; ours is Debian grpc-go's.
        let ca = args.ca_file.clone().unwrap_or_else(|| {
            "/usr/share/gocode/src/google.golang.org/grpc/testdata/ca.pem".to_owned()
        });
        let pem = std::fs::read(&ca).map_err(|e| format!("--ca_file {ca}: {e}"))?;
        tls = tls
            .ca_certificate_pem(pem)
            .map_err(|e| format!("--ca_file {ca}: {e}"))?;
    }
    if let Some(name) = &args.server_host_override {
        tls = tls.server_name(name);
    }
    if let Some((cert, key)) = &args.client_cert {
        let identity = Identity::from_pem_files(cert, key).map_err(|e| e.to_string())?;
        tls = tls.identity(identity);
    }
    Ok(tls)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = parse_args();
    let host = if args.host.contains(':') {
        format!("[{}]", args.host)
    } else {
        args.host.clone()
    };
    let target = args
        .target
        .clone()
        .unwrap_or_else(|| format!("{host}:{}", args.port));
    let channel = match connect(&args, &target).await {
        Ok(channel) => channel,
        Err(status) => {
            eprintln!("FAIL connect to {target}: {status}");
            return ExitCode::FAILURE;
        }
    };
    if args.case == "rpc_soak" || args.case == "channel_soak" {
        let case = args.case.as_str();
        return match soak(&args, &target, channel, case == "channel_soak").await {
            Ok(()) => {
                println!("PASS {case}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                println!("FAIL {case}: {why}");
                ExitCode::FAILURE
            }
        };
    }
    let cases: Vec<&str> = if args.case == "all" {
        CASES.to_vec()
    } else {
        vec![args.case.as_str()]
    };
    for case in cases {
        match run_case(case, &channel).await {
            Ok(()) => println!("PASS {case}"),
            Err(why) => {
                println!("FAIL {case}: {why}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

//! Server reflection against real peers: grpc-go's reflection client stubs (Debian's grpc-go
//! 1.33 `grpc_reflection_v1alpha`, in `tests/go/src/bare-grpc-kit/reflection-client`) list our
//! services, fetch their descriptors and link them with `protodesc`; our own client checks v1
//! and the error answers on one stream (server-reflection.md).
//!
//! The methods the Go client reads out of the descriptors are compared with the server's own
//! dispatch tables (`Server::methods`), so a descriptor that names the wrong method, or a
//! service served without its descriptor, fails the test.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use bare_grpc::client::RequestSink;
use bare_grpc::services::health::health_service;
use bare_grpc::services::reflection::v1::server_reflection_grpc::ServerReflectionClient;
use bare_grpc::services::reflection::v1::server_reflection_request::MessageRequest;
use bare_grpc::services::reflection::v1::server_reflection_response::MessageResponse;
use bare_grpc::services::reflection::v1::{ServerReflectionRequest, ServerReflectionResponse};
use bare_grpc::services::reflection::{Reflection, v1alpha};
use bare_grpc::{Channel, Code, ResponseStream, Server};
use common::TestServer;
use tokio::time::timeout;

/// The contracts' descriptors (`grpc.testing` among them), as an application embeds its own.
const DESCRIPTORS: &[u8] = bare_grpc_contracts::FILE_DESCRIPTOR_SET;

/// Bound on each awaited event.
const STEP: Duration = Duration::from_secs(15);
/// Bound on the Go build and on one run of the Go client.
const PEER_TIMEOUT: Duration = Duration::from_secs(300);

/// Builds the Go peers once per test binary (`tests/go/kit-build.sh`).
fn reflection_client_binary() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let script = common::repo_root().join("tests/go/kit-build.sh");
        let out = common::run_peer(Command::new(&script), PEER_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed; run tests/peers/setup.sh if Go is missing\n{stdout}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .find(|line| line.ends_with("/bare-grpc-reflection-client"))
            .map(PathBuf::from)
            .expect("kit-build.sh printed the reflection client's path")
    })
}

/// The interop TestService, health and both reflection services, as `interop-server` runs them.
fn server() -> (Server, Reflection) {
    let reflection = Reflection::builder()
        .file_descriptor_set(DESCRIPTORS)
        .unwrap()
        .service("grpc.testing.TestService")
        .service(bare_grpc::services::health::SERVICE_NAME)
        .build()
        .unwrap();
    let (_reporter, health) = health_service();
    let server = Server::builder()
        .add_service(common::test_service::test_service())
        .add_service(health)
        .add_service(reflection.v1())
        .add_service(reflection.v1alpha())
        .build();
    (server, reflection)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_reflection_client_lists_and_links_our_descriptors() {
    let (server, reflection) = server();
    // What the dispatch tables serve, in the Go client's words.
    let served: BTreeSet<String> = server
        .methods()
        .into_iter()
        .map(|(service, method, kind)| format!("{service}/{method} {}", kind.name()))
        .collect();
    let running = TestServer::start(server).await;

    let mut cmd = Command::new(reflection_client_binary());
    cmd.args(["--addr", &running.addr.to_string()]);
    for symbol in [
        "grpc.testing.SimpleRequest",
        "grpc.testing.TestService.UnaryCall",
        "grpc.testing.StreamingOutputCallRequest",
        "grpc.health.v1.HealthCheckResponse.ServingStatus",
        "grpc.health.v1.HealthCheckResponse.SERVING",
        "grpc.reflection.v1alpha.ServerReflection",
        "no.such.Symbol",
    ] {
        cmd.args(["--symbol", symbol]);
    }
    for file in ["grpc/testing/test.proto", "no/such.proto"] {
        cmd.args(["--file", file]);
    }
    let out = tokio::task::spawn_blocking(move || common::run_peer(cmd, PEER_TIMEOUT))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "reflection client failed\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();

    // list_services: exactly the advertised names.
    let listed: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("service "))
        .collect();
    assert_eq!(listed, reflection.service_names());
    assert_eq!(
        listed,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "grpc.testing.TestService",
        ]
    );

    // The linked descriptors name exactly the methods we route, with the same call kinds.
    let described: BTreeSet<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("method "))
        .map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            format!("{} {}", fields[0], fields[3])
        })
        .collect();
    assert_eq!(described, served);
    for line in [
        "method grpc.testing.TestService/UnaryCall grpc.testing.SimpleRequest grpc.testing.SimpleResponse unary",
        "method grpc.testing.TestService/FullDuplexCall grpc.testing.StreamingOutputCallRequest grpc.testing.StreamingOutputCallResponse bidi_stream",
        "method grpc.health.v1.Health/Watch grpc.health.v1.HealthCheckRequest grpc.health.v1.HealthCheckResponse server_stream",
        "method grpc.reflection.v1.ServerReflection/ServerReflectionInfo grpc.reflection.v1.ServerReflectionRequest grpc.reflection.v1.ServerReflectionResponse bidi_stream",
    ] {
        assert!(lines.contains(&line), "missing {line:?} in\n{stdout}");
    }

    // Symbols, files and errors, all on the one stream, which survives the errors.
    let tail: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.starts_with("service ") && !l.starts_with("method "))
        .collect();
    assert_eq!(
        tail,
        [
            "symbol grpc.testing.SimpleRequest grpc/testing/messages.proto",
            "symbol grpc.testing.TestService.UnaryCall grpc/testing/test.proto",
            "symbol grpc.testing.StreamingOutputCallRequest grpc/testing/messages.proto",
            "symbol grpc.health.v1.HealthCheckResponse.ServingStatus grpc/health/v1/health.proto",
            "symbol grpc.health.v1.HealthCheckResponse.SERVING grpc/health/v1/health.proto",
            "symbol grpc.reflection.v1alpha.ServerReflection grpc/reflection/v1alpha/reflection.proto",
            "symbol no.such.Symbol error NOT_FOUND",
            // test.proto, then its two imports
            "file grpc/testing/test.proto 3",
            "file no/such.proto error NOT_FOUND",
            "empty error INVALID_ARGUMENT",
            "done",
        ]
    );
}

/// One request, one answer, on an open v1 stream.
async fn ask(
    sink: &mut RequestSink<ServerReflectionRequest>,
    answers: &mut ResponseStream<ServerReflectionResponse>,
    request: Option<MessageRequest>,
) -> MessageResponse {
    let request = ServerReflectionRequest {
        host: "h".into(),
        message_request: request,
    };
    timeout(STEP, sink.send(request.clone()))
        .await
        .unwrap()
        .unwrap();
    let answer = timeout(STEP, answers.message())
        .await
        .unwrap()
        .unwrap()
        .expect("an answer");
    assert_eq!(answer.valid_host, "h");
    assert_eq!(answer.original_request, Some(request));
    answer.message_response.expect("a message_response")
}

fn error_code(response: MessageResponse) -> Code {
    match response {
        MessageResponse::ErrorResponse(e) => Code::from_i32(e.error_code),
        other => panic!("expected an ErrorResponse, got {other:?}"),
    }
}

/// The name of a serialized `FileDescriptorProto` (field 1), all a test needs of it.
#[derive(Clone, PartialEq, prost::Message)]
struct FileName {
    #[prost(string, tag = "1")]
    name: String,
}

/// A v1 stream on a fresh server, as `interop-server` runs it.
async fn open_v1() -> (
    TestServer,
    RequestSink<ServerReflectionRequest>,
    ResponseStream<ServerReflectionResponse>,
) {
    let (server, _) = server();
    let running = TestServer::start(server).await;
    let client = ServerReflectionClient::new(Channel::lazy(&running.addr.to_string()).unwrap());
    let (sink, answers) = timeout(STEP, client.server_reflection_info(()))
        .await
        .unwrap()
        .unwrap();
    (running, sink, answers)
}

#[tokio::test]
async fn lists_advertised_and_reflection_services() {
    let (_running, mut sink, mut answers) = open_v1().await;
    let MessageResponse::ListServicesResponse(list) = ask(
        &mut sink,
        &mut answers,
        Some(MessageRequest::ListServices(String::new())),
    )
    .await
    else {
        panic!("not a service list")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "grpc.testing.TestService",
        ]
    );
}

#[tokio::test]
async fn symbol_answers_hold_the_file_then_its_imports() {
    let (_running, mut sink, mut answers) = open_v1().await;
    let MessageResponse::FileDescriptorResponse(files) = ask(
        &mut sink,
        &mut answers,
        Some(MessageRequest::FileContainingSymbol(
            "grpc.testing.TestService.UnaryCall".into(),
        )),
    )
    .await
    else {
        panic!("not files")
    };
    let names: Vec<String> = files
        .file_descriptor_proto
        .iter()
        .map(|b| {
            <FileName as prost::Message>::decode(b.as_slice())
                .unwrap()
                .name
        })
        .collect();
    assert_eq!(names[0], "grpc/testing/test.proto");
    let mut imports = names[1..].to_vec();
    imports.sort();
    assert_eq!(
        imports,
        ["grpc/testing/empty.proto", "grpc/testing/messages.proto"]
    );
}

#[tokio::test]
async fn unanswerable_requests_are_error_responses() {
    let (_running, mut sink, mut answers) = open_v1().await;
    let rows = [
        MessageRequest::FileByFilename("no/such.proto".into()),
        MessageRequest::FileContainingSymbol("no.such.Symbol".into()),
        MessageRequest::FileContainingExtension(
            bare_grpc::services::reflection::v1::ExtensionRequest {
                containing_type: "grpc.testing.SimpleRequest".into(),
                extension_number: 1000,
            },
        ),
        MessageRequest::AllExtensionNumbersOfType("no.such.Type".into()),
    ];
    for request in rows {
        assert_eq!(
            error_code(ask(&mut sink, &mut answers, Some(request)).await),
            Code::NotFound
        );
    }
    assert_eq!(
        error_code(ask(&mut sink, &mut answers, None).await),
        Code::InvalidArgument
    );
}

/// v1 over the wire with our client: errors are answers, the stream goes on, and the call
/// ends OK when the client half-closes.
#[tokio::test]
async fn v1_errors_are_answers_and_the_stream_goes_on() {
    let (server, _) = server();
    let running = TestServer::start(server).await;
    let client = ServerReflectionClient::new(Channel::lazy(&running.addr.to_string()).unwrap());
    let (mut sink, mut answers) = timeout(STEP, client.server_reflection_info(()))
        .await
        .unwrap()
        .unwrap();

    let rows = [
        (
            Some(MessageRequest::FileContainingSymbol("no.Such".into())),
            Code::NotFound,
        ),
        (
            Some(MessageRequest::FileByFilename("no/such.proto".into())),
            Code::NotFound,
        ),
        (
            Some(MessageRequest::AllExtensionNumbersOfType("no.Such".into())),
            Code::NotFound,
        ),
        (None, Code::InvalidArgument),
    ];
    for (request, code) in rows {
        assert_eq!(
            error_code(ask(&mut sink, &mut answers, request).await),
            code
        );
    }

    // Still answering after the errors.
    let MessageResponse::AllExtensionNumbersResponse(numbers) = ask(
        &mut sink,
        &mut answers,
        Some(MessageRequest::AllExtensionNumbersOfType(
            "grpc.testing.SimpleRequest".into(),
        )),
    )
    .await
    else {
        panic!("not an extension number answer");
    };
    assert_eq!(numbers.base_type_name, "grpc.testing.SimpleRequest");
    assert!(numbers.extension_number.is_empty());

    sink.finish();
    assert!(
        timeout(STEP, answers.message())
            .await
            .unwrap()
            .unwrap()
            .is_none()
    );
}

/// v1alpha answers what v1 answers, byte for byte.
#[tokio::test]
async fn v1alpha_answers_like_v1() {
    let (server, _) = server();
    let running = TestServer::start(server).await;
    let channel = Channel::lazy(&running.addr.to_string()).unwrap();
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::FileContainingSymbol(
            "grpc.testing.TestService".into(),
        )),
    };

    let v1 = ServerReflectionClient::new(channel.clone());
    let (mut sink, mut answers) = timeout(STEP, v1.server_reflection_info(()))
        .await
        .unwrap()
        .unwrap();
    let v1_answer = ask(&mut sink, &mut answers, request.message_request.clone()).await;

    let alpha = v1alpha::server_reflection_grpc::ServerReflectionClient::new(channel);
    let (mut alpha_sink, mut alpha_answers) = timeout(STEP, alpha.server_reflection_info(()))
        .await
        .unwrap()
        .unwrap();
    let alpha_request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "grpc.testing.TestService".into(),
            ),
        ),
    };
    timeout(STEP, alpha_sink.send(alpha_request))
        .await
        .unwrap()
        .unwrap();
    let alpha_answer = timeout(STEP, alpha_answers.message())
        .await
        .unwrap()
        .unwrap()
        .expect("an answer");
    let Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(
        alpha_files,
    )) = alpha_answer.message_response
    else {
        panic!("v1alpha did not answer with files");
    };
    let MessageResponse::FileDescriptorResponse(v1_files) = v1_answer else {
        panic!("v1 did not answer with files");
    };
    assert_eq!(alpha_files.file_descriptor_proto.len(), 3);
    assert_eq!(
        alpha_files.file_descriptor_proto,
        v1_files.file_descriptor_proto
    );
}

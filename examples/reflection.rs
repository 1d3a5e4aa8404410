//! Server reflection in one program: a server that describes itself, and a client that, with
//! no `.proto` at hand, lists its services and fetches the descriptors of one
//! (`docs/reflection.md`).
//!
//! ```text
//! cargo run --example reflection
//! ```
//!
//! ```text
//!  server: Reflection::builder()
//!            .file_descriptor_set(FILE_DESCRIPTOR_SET)   the application's own protos
//!            .service("grpc.health.v1.Health")           what list_services says
//!  client: list_services                     ─▶ names
//!          file_containing_symbol(Health)    ─▶ health.proto (and its imports), as protoc wrote it
//!          file_by_filename("no/such.proto") ─▶ ErrorResponse NOT_FOUND, stream goes on
//! ```
//!
//! Against a running `interop-server`, reflection tools need nothing else:
//! `grpcurl -plaintext localhost:10000 list`, `grpcurl -plaintext localhost:10000 describe
//! grpc.testing.TestService`.

use bare_grpc::services::health::{self, health_service};
use bare_grpc::services::reflection::Reflection;
use bare_grpc::services::reflection::v1::ServerReflectionRequest;
use bare_grpc::services::reflection::v1::server_reflection_grpc::ServerReflectionClient;
use bare_grpc::services::reflection::v1::server_reflection_request::MessageRequest;
use bare_grpc::services::reflection::v1::server_reflection_response::MessageResponse;
use bare_grpc::{Channel, Server};
use tokio::net::TcpListener;

/// The application's own descriptors, imports included: here the repository's contracts
/// (`tests/contracts`); an application's `build.rs` writes its own
/// `OUT_DIR/file_descriptor_set.bin`. Health and reflection are built in.
const DESCRIPTORS: &[u8] = bare_grpc_contracts::FILE_DESCRIPTOR_SET;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reflection = Reflection::builder()
        .file_descriptor_set(DESCRIPTORS)?
        .service(health::SERVICE_NAME)
        .build()?;
    let (_reporter, health) = health_service();
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::builder()
            .add_service(health)
            .add_service(reflection.v1())
            .add_service(reflection.v1alpha())
            .build()
            .serve_with_shutdown(listener, async move {
                let _ = stopped.await;
            }),
    );
    println!("serving health and reflection on {addr}");

    let client = ServerReflectionClient::new(Channel::connect(&addr.to_string()).await?);
    let (mut requests, mut answers) = client.server_reflection_info(()).await?;
    let questions = [
        MessageRequest::ListServices(String::new()),
        MessageRequest::FileContainingSymbol("grpc.health.v1.Health".into()),
        MessageRequest::FileByFilename("no/such.proto".into()),
    ];
    for question in questions {
        println!("> {question:?}");
        requests
            .send(ServerReflectionRequest {
                host: String::new(),
                message_request: Some(question),
            })
            .await?;
        let Some(answer) = answers.message().await? else {
            break;
        };
        match answer.message_response {
            Some(MessageResponse::ListServicesResponse(list)) => {
                for service in list.service {
                    println!("  service {}", service.name);
                }
            }
            Some(MessageResponse::FileDescriptorResponse(files)) => {
                for file in files.file_descriptor_proto {
                    println!("  FileDescriptorProto, {} bytes", file.len());
                }
            }
            Some(MessageResponse::ErrorResponse(error)) => {
                let code = bare_grpc::Code::from_i32(error.error_code);
                println!("  error {}: {}", code.name(), error.error_message);
            }
            other => println!("  {other:?}"),
        }
    }
    // Half-close: the server ends the call with OK.
    requests.finish();
    assert!(answers.message().await?.is_none());

    let _ = stop.send(());
    server.await??;
    Ok(())
}

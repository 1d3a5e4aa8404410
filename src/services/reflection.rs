//! Server reflection: `grpc.reflection.v1.ServerReflection` and its older twin
//! `grpc.reflection.v1alpha.ServerReflection` (server-reflection.md, contracts in
//! `proto/grpc/reflection/`), answered from the descriptor sets the application registers and
//! the health and reflection descriptors `build.rs` embeds.
//!
//! ```text
//!  client                                   server (one bidi call, answers in request order)
//!  ServerReflectionInfo ──────────────────▶
//!  { list_services }                ──────▶ { list_services_response: [names] }
//!  { file_containing_symbol: "a.B" } ─────▶ { file_descriptor_response: [file, its imports…] }
//!  { file_by_filename: "nope.proto" } ────▶ { error_response: { 5 NOT_FOUND, "…" } }
//!  { }  (no request set)            ──────▶ { error_response: { 3 INVALID_ARGUMENT, "…" } }
//!  half-close                       ──────▶ status OK
//! ```
//!
//! Every file answer holds the file asked for first, then each file it imports, directly or not,
//! as the original serialized `FileDescriptorProto` bytes from the set. A client can then build
//! the whole descriptor graph from one answer (grpc-go and grpcurl do), with no `.proto` at hand.
//! Unlike grpc-go we resend imports the stream already carried: a few kilobytes more buys a
//! server with no per-stream state and answers that stand alone.
//!
//! Why one engine for both versions: the two packages declare the same messages with the same
//! field numbers, so a v1alpha message's bytes *are* a v1 message. The v1alpha service
//! re-reads each request as v1 and each answer back as v1alpha, and there is one place that
//! answers.
//!
//! A question that cannot be answered is an `ErrorResponse` (with the statuscodes.md number)
//! and the stream goes on; only a broken stream ends the call with an error status:
//!
//! | request | answer |
//! |---|---|
//! | unknown file, symbol, extension or type | `ErrorResponse` `NOT_FOUND` |
//! | no `message_request` set | `ErrorResponse` `INVALID_ARGUMENT` |
//!
//! `list_services` names the services given to [`ReflectionBuilder::service`] (or, when none
//! is, every service in the registered descriptors) plus both reflection services. The
//! descriptors of `grpc.health.v1` and of both reflection packages are built in, so those
//! services can always be described.
//!
//! [server-reflection.md]: https://github.com/grpc/grpc/blob/master/doc/server-reflection.md

use std::sync::Arc;

use bytes::Bytes;
use prost::Message;

use crate::call::Request;
use crate::server::ResponseSink;
use crate::server::Streaming;
use crate::services::descriptors::DescriptorIndex;
use crate::status::{Code, Status};

/// `grpc.reflection.v1`: messages, the `ServerReflection` trait, server and client.
pub mod v1 {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/grpc.reflection.v1.rs"));
}

/// `grpc.reflection.v1alpha`: the same messages under the older package name.
pub mod v1alpha {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/grpc.reflection.v1alpha.rs"));
}

use v1::server_reflection_request::MessageRequest;
use v1::server_reflection_response::MessageResponse;
use v1::{
    ErrorResponse, ExtensionNumberResponse, FileDescriptorResponse, ListServiceResponse,
    ServerReflectionRequest, ServerReflectionResponse, ServiceResponse,
};

/// The fully qualified name of the v1 reflection service.
pub const SERVICE_NAME_V1: &str = "grpc.reflection.v1.ServerReflection";
/// The fully qualified name of the v1alpha reflection service.
pub const SERVICE_NAME_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// The files every reflection service can describe, whatever the user registers: this crate's
/// own descriptor set, which holds exactly `grpc/health/v1/health.proto`,
/// `grpc/reflection/v1/reflection.proto` and `grpc/reflection/v1alpha/reflection.proto`
/// (`build.rs` compiles the library's own protos and no others).
const BUILT_IN_DESCRIPTORS: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"));

/// Collects descriptor sets and the service names to advertise; [`ReflectionBuilder::build`]
/// checks them and makes a [`Reflection`].
///
/// ```no_run
/// # fn run() -> Result<(), bare_grpc::Status> {
/// use bare_grpc::services::reflection::Reflection;
/// // In the application: include_bytes!(concat!(env!("OUT_DIR"), "/file_descriptor_set.bin"))
/// let descriptors: &[u8] = &[];
/// let reflection = Reflection::builder()
///     .file_descriptor_set(descriptors)?
///     .service("helloworld.Greeter")
///     .build()?;
/// let server = bare_grpc::Server::builder()
///     .add_service(reflection.v1())
///     .add_service(reflection.v1alpha())
///     .build();
/// # Ok(()) }
/// ```
#[derive(Debug, Default)]
pub struct ReflectionBuilder {
    index: DescriptorIndex,
    services: Vec<String>,
}

impl ReflectionBuilder {
    /// Registers every file of a serialized `google.protobuf.FileDescriptorSet`, such as the
    /// `file_descriptor_set.bin` that bare-grpc's build step writes. `INVALID_ARGUMENT` when the
    /// bytes are not a descriptor set, or name a file already registered with other contents.
    pub fn file_descriptor_set(mut self, bytes: &[u8]) -> Result<Self, Status> {
        self.index.add_set(bytes)?;
        Ok(self)
    }

    /// Advertises `name` (fully qualified, e.g. `helloworld.Greeter`) in `list_services`. When
    /// no name is given, every service of the registered descriptors is advertised.
    pub fn service(mut self, name: &str) -> Self {
        self.services.push(name.to_owned());
        self
    }

    /// Checks that every import and every advertised service has a descriptor
    /// (`INVALID_ARGUMENT` otherwise) and makes the reflection services.
    pub fn build(mut self) -> Result<Reflection, Status> {
        let mut services = if self.services.is_empty() {
            self.index.service_names()
        } else {
            self.services
        };
        // Built-in files are added after the user's, so a user's own copy of, say,
        // health.proto (with its comments) wins over ours.
        let built_in = crate::services::descriptors::FileSet::decode(BUILT_IN_DESCRIPTORS)
            .map_err(|e| Status::internal(format!("built-in descriptors: {e}")))?;
        for bytes in built_in.file {
            let name = crate::services::descriptors::FileProto::decode(bytes.clone())
                .map_err(|e| Status::internal(format!("built-in descriptors: {e}")))?
                .name;
            if !self.index.has_file(&name) {
                self.index.add_file(bytes)?;
            }
        }
        self.index.check_dependencies()?;
        services.extend([SERVICE_NAME_V1.to_owned(), SERVICE_NAME_V1ALPHA.to_owned()]);
        services.sort_unstable();
        services.dedup();
        if let Some(missing) = services.iter().find(|name| !self.index.has_service(name)) {
            return Err(Status::invalid_argument(format!(
                "service {missing} is advertised but no registered descriptor declares it"
            )));
        }
        Ok(Reflection {
            shared: Arc::new(Shared {
                index: self.index,
                services,
            }),
        })
    }
}

/// What both reflection services answer from.
#[derive(Debug)]
struct Shared {
    index: DescriptorIndex,
    /// Advertised service names, sorted.
    services: Vec<String>,
}

/// The reflection services over one set of descriptors. Cheap to clone; hand
/// [`Reflection::v1`] and [`Reflection::v1alpha`] to `Server::builder().add_service`.
#[derive(Clone, Debug)]
pub struct Reflection {
    shared: Arc<Shared>,
}

impl Reflection {
    /// Starts collecting descriptors.
    pub fn builder() -> ReflectionBuilder {
        ReflectionBuilder::default()
    }

    /// The advertised service names, sorted (what `list_services` answers).
    pub fn service_names(&self) -> &[String] {
        &self.shared.services
    }

    /// `grpc.reflection.v1.ServerReflection`, for `add_service`.
    pub fn v1(&self) -> v1::server_reflection_grpc::ServerReflectionServer<ReflectionV1> {
        v1::server_reflection_grpc::ServerReflectionServer::new(ReflectionV1(self.clone()))
    }

    /// `grpc.reflection.v1alpha.ServerReflection`, for `add_service`: older clients (grpc-go
    /// before 1.57, grpcurl before 1.8.8) only speak this one.
    pub fn v1alpha(
        &self,
    ) -> v1alpha::server_reflection_grpc::ServerReflectionServer<ReflectionV1Alpha> {
        v1alpha::server_reflection_grpc::ServerReflectionServer::new(ReflectionV1Alpha(
            self.clone(),
        ))
    }

    /// The answer to one request. Never an error: what cannot be answered is an
    /// `ErrorResponse`, and the stream goes on.
    pub fn answer(&self, request: ServerReflectionRequest) -> ServerReflectionResponse {
        let index = &self.shared.index;
        let files = |found: Option<Vec<Bytes>>, what: String| match found {
            Some(files) => MessageResponse::FileDescriptorResponse(FileDescriptorResponse {
                file_descriptor_proto: files.into_iter().map(Vec::from).collect(),
            }),
            None => error(Code::NotFound, what),
        };
        let response = match &request.message_request {
            Some(MessageRequest::FileByFilename(name)) => {
                files(index.file_by_name(name), format!("file {name:?} not found"))
            }
            Some(MessageRequest::FileContainingSymbol(symbol)) => files(
                index.file_containing_symbol(symbol),
                format!("symbol {symbol:?} not found"),
            ),
            Some(MessageRequest::FileContainingExtension(extension)) => files(
                index.file_containing_extension(
                    &extension.containing_type,
                    extension.extension_number,
                ),
                format!(
                    "extension {} of type {:?} not found",
                    extension.extension_number, extension.containing_type
                ),
            ),
            Some(MessageRequest::AllExtensionNumbersOfType(type_name)) => {
                match index.extension_numbers(type_name) {
                    Some(numbers) => {
                        MessageResponse::AllExtensionNumbersResponse(ExtensionNumberResponse {
                            base_type_name: type_name.trim_start_matches('.').to_owned(),
                            extension_number: numbers,
                        })
                    }
                    None => error(
                        Code::NotFound,
                        format!("message type {type_name:?} not found"),
                    ),
                }
            }
            Some(MessageRequest::ListServices(_)) => {
                MessageResponse::ListServicesResponse(ListServiceResponse {
                    service: self
                        .shared
                        .services
                        .iter()
                        .map(|name| ServiceResponse { name: name.clone() })
                        .collect(),
                })
            }
            None => error(
                Code::InvalidArgument,
                "the request sets none of message_request's fields".to_owned(),
            ),
        };
        ServerReflectionResponse {
            valid_host: request.host.clone(),
            original_request: Some(request),
            message_response: Some(response),
        }
    }

    /// Answers each request of `requests` in order until the client half-closes. `to_v1` and
    /// `from_v1` translate between the wire version and v1.
    async fn serve<Req, Resp>(
        &self,
        mut requests: Streaming<Req>,
        sink: &mut ResponseSink<Resp>,
        to_v1: fn(Req) -> Result<ServerReflectionRequest, Status>,
        from_v1: fn(ServerReflectionResponse) -> Result<Resp, Status>,
    ) -> Result<(), Status>
    where
        Req: Message + Default + 'static,
        Resp: Message + 'static,
    {
        while let Some(request) = requests.message().await? {
            let answer = self.answer(to_v1(request)?);
            sink.send(from_v1(answer)?).await?;
        }
        Ok(())
    }
}

/// An `ErrorResponse` with a statuscodes.md number.
fn error(code: Code, message: String) -> MessageResponse {
    MessageResponse::ErrorResponse(ErrorResponse {
        error_code: code.as_i32(),
        error_message: message,
    })
}

/// Re-reads a message as the other package's twin: same fields, same numbers, same bytes.
fn transcode<From: Message, To: Message + Default>(message: From) -> Result<To, Status> {
    To::decode(message.encode_to_vec().as_slice())
        .map_err(|e| Status::internal(format!("reflection transcoding: {e}")))
}

/// The [`v1::server_reflection_grpc::ServerReflection`] implementation behind
/// [`Reflection::v1`].
#[derive(Clone, Debug)]
pub struct ReflectionV1(Reflection);

impl v1::server_reflection_grpc::ServerReflection for ReflectionV1 {
    async fn server_reflection_info(
        &self,
        request: Request<Streaming<ServerReflectionRequest>>,
        mut sink: ResponseSink<ServerReflectionResponse>,
    ) -> Result<(), Status> {
        self.0.serve(request.into_inner(), &mut sink, Ok, Ok).await
    }
}

/// The [`v1alpha::server_reflection_grpc::ServerReflection`] implementation behind
/// [`Reflection::v1alpha`].
#[derive(Clone, Debug)]
pub struct ReflectionV1Alpha(Reflection);

impl v1alpha::server_reflection_grpc::ServerReflection for ReflectionV1Alpha {
    async fn server_reflection_info(
        &self,
        request: Request<Streaming<v1alpha::ServerReflectionRequest>>,
        mut sink: ResponseSink<v1alpha::ServerReflectionResponse>,
    ) -> Result<(), Status> {
        self.0
            .serve(request.into_inner(), &mut sink, transcode, transcode)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(reflection: &Reflection, request: MessageRequest) -> MessageResponse {
        let answer = reflection.answer(ServerReflectionRequest {
            host: "h".into(),
            message_request: Some(request.clone()),
        });
        assert_eq!(answer.valid_host, "h");
        assert_eq!(
            answer.original_request.unwrap().message_request,
            Some(request)
        );
        answer.message_response.unwrap()
    }

    #[test]
    fn built_in_descriptors_are_the_library_protos() {
        let set = crate::services::descriptors::FileSet::decode(BUILT_IN_DESCRIPTORS).unwrap();
        let mut names: Vec<String> = set
            .file
            .into_iter()
            .map(|bytes| {
                crate::services::descriptors::FileProto::decode(bytes)
                    .unwrap()
                    .name
            })
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "grpc/health/v1/health.proto",
                "grpc/reflection/v1/reflection.proto",
                "grpc/reflection/v1alpha/reflection.proto",
            ]
        );
    }

    #[test]
    fn built_in_files_describe_health_and_reflection() {
        let reflection = Reflection::builder()
            .service(crate::services::health::SERVICE_NAME)
            .build()
            .unwrap();
        for symbol in [
            "grpc.health.v1.Health.Watch",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ErrorResponse",
        ] {
            let response = ask(
                &reflection,
                MessageRequest::FileContainingSymbol(symbol.into()),
            );
            assert!(
                matches!(response, MessageResponse::FileDescriptorResponse(_)),
                "{symbol}"
            );
        }
    }

    #[test]
    fn advertising_an_undeclared_service_is_refused() {
        let err = Reflection::builder()
            .service("no.Such")
            .build()
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    #[test]
    fn v1alpha_messages_transcode_to_v1_and_back() {
        let alpha = v1alpha::ServerReflectionRequest {
            host: "x".into(),
            message_request: Some(
                v1alpha::server_reflection_request::MessageRequest::FileContainingExtension(
                    v1alpha::ExtensionRequest {
                        containing_type: "a.B".into(),
                        extension_number: 7,
                    },
                ),
            ),
        };
        let v1: ServerReflectionRequest = transcode(alpha.clone()).unwrap();
        assert_eq!(
            v1.message_request,
            Some(MessageRequest::FileContainingExtension(
                v1::ExtensionRequest {
                    containing_type: "a.B".into(),
                    extension_number: 7,
                }
            ))
        );
        let back: v1alpha::ServerReflectionRequest = transcode(v1).unwrap();
        assert_eq!(back, alpha);
    }
}

//! `grpc.testing.TestService` as gRPC's interop tests expect a server to behave
//! (interop-test-descriptions.md, "Server" section). Shared by the `interop-server` example and
//! the interop tests, which start it in-process.

use std::time::Duration;

use bare_grpc::{Code, Encoding, Metadata, Request, Response, ResponseSink, Status, Streaming};

use bare_grpc_contracts::grpc_testing::test_service_grpc::{TestService, TestServiceServer};
use bare_grpc_contracts::grpc_testing::{
    EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};

/// Initial metadata the client asks to see echoed in the response headers.
const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Binary metadata the client asks to see echoed in the trailers.
const ECHO_TRAILING_BIN: &str = "x-grpc-test-echo-trailing-bin";

/// The interop test service. Stateless: every behaviour is driven by the request.
#[derive(Clone, Copy, Debug, Default)]
pub struct InteropService;

/// The service wrapped for `Server::builder().add_service(..)`.
pub fn test_service() -> TestServiceServer<InteropService> {
    TestServiceServer::new(InteropService)
}

/// A payload of `size` zero bytes (the interop tests only ever ask for COMPRESSABLE).
fn payload(size: i32) -> Result<Payload, Status> {
    let size = usize::try_from(size)
        .map_err(|_| Status::invalid_argument(format!("negative payload size {size}")))?;
    Ok(Payload {
        r#type: 0,
        body: vec![0; size],
    })
}

/// `response_status` asks the server to end the call with that status.
fn echo_status(status: Option<&EchoStatus>) -> Result<(), Status> {
    match status {
        Some(s) if s.code != 0 => Err(Status::new(Code::from_i32(s.code), s.message.clone())),
        _ => Ok(()),
    }
}

/// Copies the echo headers of a request into the initial and trailing metadata of the answer.
fn echo_metadata(request: &Metadata, initial: &mut Metadata, trailing: &mut Metadata) {
    if let Some(value) = request.get(ECHO_INITIAL) {
        let _ = initial.insert(ECHO_INITIAL, value);
    }
    if let Some(value) = request.get_bin(ECHO_TRAILING_BIN) {
        let _ = trailing.insert_bin(ECHO_TRAILING_BIN, &value);
    }
}

/// A status carrying the echoed trailing metadata (errors still echo, for custom_metadata).
fn with_trailing(mut status: Status, trailing: &Metadata) -> Status {
    for key in trailing.keys() {
        for value in trailing.get_all_bin(key) {
            let _ = status.metadata_mut().append_bin(key, &value);
        }
    }
    status
}

/// Sends the responses one StreamingOutputCallRequest asks for, pausing `interval_us` before each.
async fn send_responses(
    parameters: &[ResponseParameters],
    sink: &mut ResponseSink<StreamingOutputCallResponse>,
) -> Result<(), Status> {
    for p in parameters {
        if p.interval_us > 0 {
            tokio::time::sleep(Duration::from_micros(p.interval_us as u64)).await;
        }
        let message = StreamingOutputCallResponse {
            payload: Some(payload(p.size)?),
        };
        // Each message has its own compressed flag: honour the per-response request.
        sink.set_message_compression(p.compressed.as_ref().is_some_and(|c| c.value));
        sink.send(message).await?;
    }
    Ok(())
}

/// Asks the sink to compress when any of the responses asked for compression.
fn maybe_compress(
    parameters: &[ResponseParameters],
    sink: &mut ResponseSink<StreamingOutputCallResponse>,
) {
    if parameters
        .iter()
        .any(|p| p.compressed.as_ref().is_some_and(|c| c.value))
    {
        sink.set_compression(Encoding::Gzip);
    }
}

impl TestService for InteropService {
    async fn empty_call(&self, request: Request<Empty>) -> Result<Response<Empty>, Status> {
        let mut response = Response::new(Empty {});
        let mut initial = Metadata::new();
        let mut trailing = Metadata::new();
        echo_metadata(request.metadata(), &mut initial, &mut trailing);
        *response.metadata_mut() = initial;
        *response.trailers_mut() = trailing;
        Ok(response)
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let arrived_compressed = request.compression().is_some();
        let mut initial = Metadata::new();
        let mut trailing = Metadata::new();
        echo_metadata(request.metadata(), &mut initial, &mut trailing);
        let message = request.into_inner();
        // "expect_compressed": the client tells us how it sent the request, so a server that
        // cannot see compression (or a client that lies) is caught.
        if let Some(expect) = &message.expect_compressed {
            if expect.value != arrived_compressed {
                return Err(Status::invalid_argument(format!(
                    "expected a {}compressed request",
                    if expect.value { "" } else { "un" }
                )));
            }
        }
        echo_status(message.response_status.as_ref()).map_err(|s| with_trailing(s, &trailing))?;
        let mut response = Response::new(SimpleResponse {
            payload: Some(payload(message.response_size)?),
            ..Default::default()
        });
        *response.metadata_mut() = initial;
        *response.trailers_mut() = trailing;
        if message.response_compressed.is_some_and(|c| c.value) {
            response.set_compression(Encoding::Gzip);
        }
        Ok(response)
    }

    async fn cacheable_unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        self.unary_call(request).await
    }

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
        mut sink: ResponseSink<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        let (metadata, message) = request.into_parts();
        let mut initial = Metadata::new();
        let mut trailing = Metadata::new();
        echo_metadata(&metadata, &mut initial, &mut trailing);
        *sink.metadata_mut() = initial;
        sink.set_trailers(trailing);
        maybe_compress(&message.response_parameters, &mut sink);
        send_responses(&message.response_parameters, &mut sink).await?;
        echo_status(message.response_status.as_ref())
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let mut messages = request.into_inner();
        let mut total: usize = 0;
        while let Some(message) = messages.message().await? {
            if let Some(expect) = &message.expect_compressed {
                if expect.value != messages.last_message_compressed() {
                    return Err(Status::invalid_argument(format!(
                        "expected a {}compressed request message",
                        if expect.value { "" } else { "un" }
                    )));
                }
            }
            total += message.payload.map_or(0, |p| p.body.len());
        }
        Ok(Response::new(StreamingInputCallResponse {
            aggregated_payload_size: i32::try_from(total)
                .map_err(|_| Status::resource_exhausted("aggregate payload over 2 GiB"))?,
        }))
    }

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
        mut sink: ResponseSink<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        let (metadata, mut messages) = request.into_parts();
        let mut initial = Metadata::new();
        let mut trailing = Metadata::new();
        echo_metadata(&metadata, &mut initial, &mut trailing);
        *sink.metadata_mut() = initial;
        sink.set_trailers(trailing);
        // Each request is answered as soon as it arrives: that is what makes it full duplex.
        while let Some(message) = messages.message().await? {
            echo_status(message.response_status.as_ref())?;
            maybe_compress(&message.response_parameters, &mut sink);
            send_responses(&message.response_parameters, &mut sink).await?;
        }
        Ok(())
    }

    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
        mut sink: ResponseSink<StreamingOutputCallResponse>,
    ) -> Result<(), Status> {
        let mut messages = request.into_inner();
        // Half duplex: read everything first, answer after the client half-closes.
        let mut all = Vec::new();
        while let Some(message) = messages.message().await? {
            all.push(message);
        }
        for message in all {
            echo_status(message.response_status.as_ref())?;
            send_responses(&message.response_parameters, &mut sink).await?;
        }
        Ok(())
    }

    async fn unimplemented_call(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "grpc.testing.TestService/UnimplementedCall is deliberately not implemented",
        ))
    }
}

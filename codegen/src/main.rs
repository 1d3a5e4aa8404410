//! `protoc-gen-bare-grpc`: the protoc plugin.
//!
//! Rule (protoc's plugin protocol, `google/protobuf/compiler/plugin.proto`):
//! protoc runs `protoc-gen-<name>` for `--<name>_out=DIR`, writes one
//! serialized `CodeGeneratorRequest` to its stdin and closes it, then reads one
//! serialized `CodeGeneratorResponse` from its stdout. The plugin reports bad
//! input in `CodeGeneratorResponse.error` and still exits 0; a non-zero exit
//! means the plugin itself broke.
//!
//! ```text
//!   protoc ──stdin: CodeGeneratorRequest { file_to_generate, proto_file[] }──▶ plugin
//!   protoc ◀─stdout: CodeGeneratorResponse { file[] { name, content }, error }── plugin
//! ```
//!
//! Why so thin: everything else is the library's `generate`, so this binary and
//! `Builder` cannot disagree.
//!
//! Not done: plugin parameters (`--bare-grpc_opt`); there is nothing to set yet,
//! so any parameter is reported as an error rather than ignored.

#![forbid(unsafe_code)]

use std::io::{self, Read, Write};

use prost::Message;
use prost_types::compiler::code_generator_response::{Feature, File};
use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};

fn main() -> io::Result<()> {
    let mut input = Vec::new();
    io::stdin().read_to_end(&mut input)?;
    let response = respond(&input);
    io::stdout().write_all(&response.encode_to_vec())?;
    io::stdout().flush()
}

/// The response to one serialized request, errors included.
fn respond(input: &[u8]) -> CodeGeneratorResponse {
    let mut response = CodeGeneratorResponse {
        // Fields declared `optional` in proto3 only change message code, which
        // prost-build writes; services are unaffected, so we can claim support.
        supported_features: Some(Feature::Proto3Optional as u64),
        ..Default::default()
    };
    let request = match CodeGeneratorRequest::decode(input) {
        Ok(request) => request,
        Err(e) => {
            response.error = Some(format!(
                "protoc-gen-bare-grpc: bad CodeGeneratorRequest: {e}"
            ));
            return response;
        }
    };
    if !request.parameter().is_empty() {
        response.error = Some(format!(
            "protoc-gen-bare-grpc: takes no parameters, got {:?}",
            request.parameter()
        ));
        return response;
    }
    if let Err(e) = bare_grpc_codegen::check(&request.proto_file, &request.file_to_generate) {
        response.error = Some(format!("protoc-gen-bare-grpc: {e}"));
        return response;
    }
    response.file = bare_grpc_codegen::generate(&request.proto_file, &request.file_to_generate)
        .into_iter()
        .map(|f| File {
            name: Some(f.name),
            content: Some(f.content),
            ..Default::default()
        })
        .collect();
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_input_is_reported_in_the_response() {
        let response = respond(&[0xff, 0xff, 0xff]);
        assert!(
            response.error().contains("bad CodeGeneratorRequest"),
            "{response:?}"
        );
        assert!(response.file.is_empty());
    }

    #[test]
    fn parameters_are_refused() {
        let request = CodeGeneratorRequest {
            parameter: Some("x=1".into()),
            ..Default::default()
        };
        let response = respond(&request.encode_to_vec());
        assert!(
            response.error().contains("takes no parameters"),
            "{response:?}"
        );
    }

    #[test]
    fn empty_request_generates_nothing_and_claims_proto3_optional() {
        let response = respond(&CodeGeneratorRequest::default().encode_to_vec());
        assert_eq!(response.error, None);
        assert!(response.file.is_empty());
        assert_eq!(
            response.supported_features,
            Some(Feature::Proto3Optional as u64)
        );
    }
}

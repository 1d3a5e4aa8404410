//! The intermediate representation: what the renderer needs to know about a
//! service, and nothing about descriptors.
//!
//! ```text
//!   FileDescriptorProto ──from_file──▶ Vec<Service> ──render──▶ Rust source
//!     service[i]                        proto_name "ProductInfo"
//!       method[j]                       methods[j]: proto_name "addProduct",
//!     source_code_info                    rust_name "add_product",
//!       location path [6, i, 2, j]        input_type "super::Product", ...
//! ```
//!
//! Why an IR: the renderer then reads like the code it emits, with every
//! naming decision (see `names`) made once, here, and unit-testable without
//! protoc. Comments come from `source_code_info` (path `[6, service]` for a
//! service, `[6, service, 2, method]` for a method, as descriptor.proto numbers
//! the fields), leading comment first, then the trailing one.
//!
//! Not kept: method options (idempotency level, deprecation) and streaming
//! flow-control hints. The runtime has nothing to do with them yet.

use prost_types::FileDescriptorProto;

use crate::names;

/// `FileDescriptorProto.service` is field 6.
const FILE_SERVICE_FIELD: i32 = 6;
/// `ServiceDescriptorProto.method` is field 2.
const SERVICE_METHOD_FIELD: i32 = 2;

/// One proto service, ready to render.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Service {
    /// The proto package, `""` when the file declares none.
    pub package: String,
    /// The service name as written in the .proto (`ProductInfo`).
    pub proto_name: String,
    /// The Rust name of the server trait (`ProductInfo`, upper camel case).
    pub rust_name: String,
    /// The .proto file the service comes from, as protoc names it.
    pub file: String,
    /// Comment lines from the .proto, without the `//`.
    pub comments: Vec<String>,
    /// The methods in declaration order.
    pub methods: Vec<Method>,
}

/// One RPC method of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method {
    /// The method name as written in the .proto (`addProduct`): it goes into `:path`.
    pub proto_name: String,
    /// The Rust name (`add_product`): snake case, keyword-escaped.
    pub rust_name: String,
    /// The Rust path of the request message, from inside the service module.
    pub input_type: String,
    /// The Rust path of the response message, from inside the service module.
    pub output_type: String,
    /// `stream` on the request side.
    pub client_streaming: bool,
    /// `stream` on the response side.
    pub server_streaming: bool,
    /// Comment lines from the .proto, without the `//`.
    pub comments: Vec<String>,
}

/// The four call shapes, named as `::bare_grpc::codegen::CallKind` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses.
    ServerStreaming,
    /// A stream of requests, one response.
    ClientStreaming,
    /// Streams both ways.
    Bidi,
}

impl Kind {
    /// The runtime's `CallKind` variant.
    pub fn variant(self) -> &'static str {
        match self {
            Kind::Unary => "Unary",
            Kind::ServerStreaming => "ServerStreaming",
            Kind::ClientStreaming => "ClientStreaming",
            Kind::Bidi => "Bidi",
        }
    }
}

impl Service {
    /// `ecommerce.ProductInfo`, or just `RouteGuide` without a package.
    pub fn full_name(&self) -> String {
        if self.package.is_empty() {
            self.proto_name.clone()
        } else {
            format!("{}.{}", self.package, self.proto_name)
        }
    }

    /// The HTTP/2 `:path` of a method: `/ecommerce.ProductInfo/addProduct`
    /// (PROTOCOL-HTTP2 § Requests: `"/" Service-Name "/" {method name}`).
    pub fn path(&self, method: &Method) -> String {
        format!("/{}/{}", self.full_name(), method.proto_name)
    }
}

impl Method {
    /// Which of the four call shapes this method has.
    pub fn kind(&self) -> Kind {
        match (self.client_streaming, self.server_streaming) {
            (false, false) => Kind::Unary,
            (false, true) => Kind::ServerStreaming,
            (true, false) => Kind::ClientStreaming,
            (true, true) => Kind::Bidi,
        }
    }

    /// The name of the method's `:path` constant (`ADD_PRODUCT`).
    pub fn path_const(&self) -> String {
        names::to_shouty(&self.proto_name)
    }
}

/// Every service declared in `file`, in declaration order.
pub fn from_file(file: &FileDescriptorProto) -> Vec<Service> {
    from_file_with(file, &[])
}

/// [`from_file`], with message types resolved through `extern_paths` first
/// (see `names::rust_type_path_with`).
pub fn from_file_with(
    file: &FileDescriptorProto,
    extern_paths: &[(String, String)],
) -> Vec<Service> {
    let package = file.package().to_string();
    file.service
        .iter()
        .enumerate()
        .map(|(s, service)| Service {
            package: package.clone(),
            proto_name: service.name().to_string(),
            rust_name: names::to_upper_camel(service.name()),
            file: file.name().to_string(),
            comments: comments_at(file, &[FILE_SERVICE_FIELD, s as i32]),
            methods: service
                .method
                .iter()
                .enumerate()
                .map(|(m, method)| Method {
                    proto_name: method.name().to_string(),
                    rust_name: names::method_name(method.name()),
                    input_type: names::rust_type_path_with(
                        &package,
                        method.input_type(),
                        extern_paths,
                    ),
                    output_type: names::rust_type_path_with(
                        &package,
                        method.output_type(),
                        extern_paths,
                    ),
                    client_streaming: method.client_streaming(),
                    server_streaming: method.server_streaming(),
                    comments: comments_at(
                        file,
                        &[FILE_SERVICE_FIELD, s as i32, SERVICE_METHOD_FIELD, m as i32],
                    ),
                })
                .collect(),
        })
        .collect()
}

/// The leading then trailing comment of the element at `path`, one entry per
/// line, trailing whitespace removed. Empty when protoc kept no source info.
fn comments_at(file: &FileDescriptorProto, path: &[i32]) -> Vec<String> {
    let Some(info) = &file.source_code_info else {
        return Vec::new();
    };
    let Some(location) = info.location.iter().find(|l| l.path == path) else {
        return Vec::new();
    };
    let mut lines = Vec::new();
    for text in [location.leading_comments(), location.trailing_comments()] {
        if text.trim().is_empty() {
            continue;
        }
        if !lines.is_empty() {
            lines.push(String::new());
        }
        lines.extend(text.trim_end().lines().map(|l| l.trim_end().to_string()));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::source_code_info::Location;
    use prost_types::{MethodDescriptorProto, ServiceDescriptorProto, SourceCodeInfo};

    fn method(name: &str, input: &str, output: &str, cs: bool, ss: bool) -> MethodDescriptorProto {
        MethodDescriptorProto {
            name: Some(name.into()),
            input_type: Some(input.into()),
            output_type: Some(output.into()),
            client_streaming: Some(cs),
            server_streaming: Some(ss),
            ..Default::default()
        }
    }

    #[test]
    fn no_package_paths_and_names() {
        let file = FileDescriptorProto {
            name: Some("route_guide.proto".into()),
            service: vec![ServiceDescriptorProto {
                name: Some("RouteGuide".into()),
                method: vec![
                    method("GetPerson", ".Name", ".Person", false, false),
                    method("getPeople", ".Name", ".Person", true, true),
                ],
                ..Default::default()
            }],
            ..Default::default()
        };
        let services = from_file(&file);
        let service = &services[0];
        assert_eq!(service.full_name(), "RouteGuide");
        assert_eq!(service.path(&service.methods[0]), "/RouteGuide/GetPerson");
        // lowerCamel stays as written in the path; only the Rust name changes.
        assert_eq!(service.path(&service.methods[1]), "/RouteGuide/getPeople");
        assert_eq!(service.methods[1].rust_name, "get_people");
        assert_eq!(service.methods[1].path_const(), "GET_PEOPLE");
        assert_eq!(service.methods[0].input_type, "super::Name");
        assert_eq!(service.methods[1].kind(), Kind::Bidi);
        assert!(service.comments.is_empty());
    }

    #[test]
    fn comments_come_from_source_code_info() {
        let location = |path: Vec<i32>, leading: &str, trailing: &str| Location {
            path,
            leading_comments: Some(leading.into()),
            trailing_comments: Some(trailing.into()),
            ..Default::default()
        };
        let file = FileDescriptorProto {
            name: Some("chat.proto".into()),
            package: Some("grpc".into()),
            service: vec![ServiceDescriptorProto {
                name: Some("ChatServer".into()),
                method: vec![method(
                    "SendNote",
                    ".grpc.Note",
                    ".grpc.Empty",
                    false,
                    false,
                )],
                ..Default::default()
            }],
            source_code_info: Some(SourceCodeInfo {
                location: vec![
                    location(vec![6, 0], " The chat room.\n Second line.  \n", ""),
                    location(vec![6, 0, 2, 0], " Posts a note.\n", " Trailing.\n"),
                ],
            }),
            ..Default::default()
        };
        let service = &from_file(&file)[0];
        assert_eq!(service.comments, [" The chat room.", " Second line."]);
        assert_eq!(
            service.methods[0].comments,
            [" Posts a note.", "", " Trailing."]
        );
        assert_eq!(
            service.path(&service.methods[0]),
            "/grpc.ChatServer/SendNote"
        );
        assert_eq!(service.methods[0].output_type, "super::Empty");
    }
}

//! `--proto DESCRIPTOR_SET`: messages shown as text by their type, from a
//! `FileDescriptorSet` (what `protoc --include_imports --descriptor_set_out=FILE` writes).
//!
//! ```text
//!   :path /grpc.testing.TestService/UnaryCall ─► method UnaryCall of service
//!   grpc.testing.TestService ─► input .grpc.testing.SimpleRequest (→ server)
//!                               output .grpc.testing.SimpleResponse (← client)
//!
//!   protobuf wire (protobuf encoding guide): key = field number << 3 | wire type
//!     0 varint   1 fixed64   2 length-delimited   5 fixed32   (3, 4: groups, not shown)
//! ```
//!
//! Why by hand rather than `prost-reflect`: the walk over the wire format is 150 lines and
//! needs nothing but `prost-types` (already in the lock file through `prost-build`), and it
//! prints what crossed, field by field, including fields the descriptor does not know.
//! A compressed message (flag 1) is inflated as gzip (RFC 1952 around `miniz_oxide`'s
//! DEFLATE), the one encoding the interop cases use; another encoding is named, not decoded.
//!
//! `--reflect` asks the upstream server instead, through its reflection service (v1, or
//! v1alpha for older servers such as grpc-go 1.33): `list_services`, then
//! `file_containing_symbol` for each service, which answers with the file and its imports.
//!
//! What it does not do: groups, map fields as maps (they print as repeated entries), `Any`
//! unpacking; types that no listed service's file reaches are not known.

use std::collections::{BTreeMap, HashMap};

use bare_grpc::services::reflection::v1::server_reflection_request::MessageRequest;
use bare_grpc::services::reflection::v1::server_reflection_response::MessageResponse;
use bare_grpc::services::reflection::v1::{ServerReflectionRequest, ServerReflectionResponse};
use bare_grpc::{Channel, Code, Request, Status};
use prost::Message as _;
use prost_types::field_descriptor_proto::Type;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};

use super::tap::{Dir, Message};

/// Bytes fields longer than this are shown by size and first bytes.
const SHOW_BYTES: usize = 32;

/// The types of a descriptor set, by full name (`.package.Message`).
pub struct Types {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, EnumDescriptorProto>,
    /// `/package.Service/Method` → (input type, output type).
    methods: HashMap<String, (String, String)>,
}

impl Types {
    /// Reads a binary `FileDescriptorSet`.
    pub fn load(path: &str) -> Result<Types, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
        let set = FileDescriptorSet::decode(bytes.as_slice())
            .map_err(|e| format!("{path}: not a FileDescriptorSet: {e}"))?;
        Ok(Types::from_files(&set.file))
    }

    /// Asks `upstream`'s reflection service for the files of every service it lists.
    pub async fn from_reflection(upstream: &str) -> Result<Types, String> {
        let channel =
            Channel::lazy(upstream).map_err(|s| format!("{upstream}: {}", s.message()))?;
        let mut why = String::new();
        for path in [REFLECTION_V1, REFLECTION_V1ALPHA] {
            match reflected_files(&channel, path).await {
                Ok(files) => return Ok(Types::from_files(&files)),
                Err(status) if status.code() == Code::Unimplemented => {
                    why = status.message().to_owned()
                }
                Err(status) => {
                    return Err(format!(
                        "reflection on {upstream}: {} {}",
                        status.code().name(),
                        status.message()
                    ));
                }
            }
        }
        Err(format!("{upstream} offers no reflection service ({why})"))
    }

    /// The types of a list of files.
    fn from_files(files: &[FileDescriptorProto]) -> Types {
        let mut types = Types {
            messages: HashMap::new(),
            enums: HashMap::new(),
            methods: HashMap::new(),
        };
        for file in files {
            let package = file.package();
            let scope = if package.is_empty() {
                String::new()
            } else {
                format!(".{package}")
            };
            for message in &file.message_type {
                types.add_message(&scope, message);
            }
            for e in &file.enum_type {
                types
                    .enums
                    .insert(format!("{scope}.{}", e.name()), e.clone());
            }
            for service in &file.service {
                let service_name = format!("{}{}", scope.trim_start_matches('.'), {
                    if scope.is_empty() {
                        service.name().to_owned()
                    } else {
                        format!(".{}", service.name())
                    }
                });
                for method in &service.method {
                    types.methods.insert(
                        format!("/{service_name}/{}", method.name()),
                        (
                            method.input_type().to_owned(),
                            method.output_type().to_owned(),
                        ),
                    );
                }
            }
        }
        types
    }

    fn add_message(&mut self, scope: &str, message: &DescriptorProto) {
        let name = format!("{scope}.{}", message.name());
        for nested in &message.nested_type {
            self.add_message(&name, nested);
        }
        for e in &message.enum_type {
            self.enums.insert(format!("{name}.{}", e.name()), e.clone());
        }
        self.messages.insert(name, message.clone());
    }

    /// The message as text, when its method and type are known.
    pub fn decode(&self, path: &str, dir: Dir, message: &Message) -> Option<String> {
        let (input, output) = self.methods.get(path)?;
        let type_name = if dir == Dir::ToServer { input } else { output };
        if message.truncated || message.body.len() != message.len as usize {
            return Some(format!("{type_name} (not all bytes kept: not decoded)"));
        }
        let plain;
        let bytes = match message.flag {
            0 => message.body.as_slice(),
            1 => match gunzip(&message.body) {
                Some(bytes) => {
                    plain = bytes;
                    plain.as_slice()
                }
                None => return Some(format!("{type_name} (compressed, not gzip: not decoded)")),
            },
            _ => return None,
        };
        let mut out = format!("{} {{", type_name.trim_start_matches('.'));
        let mut body = String::new();
        match self.fields(type_name, bytes, 1, &mut body) {
            Ok(()) if body.is_empty() => out.push('}'),
            Ok(()) => {
                out.push('\n');
                out.push_str(&body);
                out.push('}');
            }
            Err(why) => out = format!("{type_name} (does not parse as this type: {why})"),
        }
        Some(out)
    }

    /// Writes `bytes`, a message of type `type_name`, one field per line.
    fn fields(
        &self,
        type_name: &str,
        mut bytes: &[u8],
        depth: usize,
        out: &mut String,
    ) -> Result<(), String> {
        let descriptor = self.messages.get(type_name);
        let indent = "  ".repeat(depth);
        while !bytes.is_empty() {
            let key = varint(&mut bytes)?;
            let number = (key >> 3) as i32;
            let wire_type = key & 7;
            let field = descriptor.and_then(|d| d.field.iter().find(|f| f.number() == number));
            let name = field.map_or(number.to_string(), |f| f.name().to_owned());
            let kind = field.map(|f| f.r#type());
            match wire_type {
                0 => {
                    let v = varint(&mut bytes)?;
                    out.push_str(&format!(
                        "{indent}{name}: {}\n",
                        self.scalar(field, kind, v)
                    ));
                }
                1 => {
                    let v = fixed(&mut bytes, 8)?;
                    let text = match kind {
                        Some(Type::Double) => f64::from_bits(v).to_string(),
                        Some(Type::Sfixed64) => (v as i64).to_string(),
                        _ => v.to_string(),
                    };
                    out.push_str(&format!("{indent}{name}: {text}\n"));
                }
                5 => {
                    let v = fixed(&mut bytes, 4)?;
                    let text = match kind {
                        Some(Type::Float) => f32::from_bits(v as u32).to_string(),
                        Some(Type::Sfixed32) => (v as u32 as i32).to_string(),
                        _ => v.to_string(),
                    };
                    out.push_str(&format!("{indent}{name}: {text}\n"));
                }
                2 => {
                    let len = varint(&mut bytes)? as usize;
                    if len > bytes.len() {
                        return Err(format!(
                            "field {number} claims {len} bytes, {} left",
                            bytes.len()
                        ));
                    }
                    let (inner, rest) = bytes.split_at(len);
                    bytes = rest;
                    match kind {
                        Some(Type::Message) => {
                            let inner_type = field.map(|f| f.type_name()).unwrap_or_default();
                            out.push_str(&format!("{indent}{name} {{\n"));
                            self.fields(inner_type, inner, depth + 1, out)?;
                            out.push_str(&format!("{indent}}}\n"));
                        }
                        Some(Type::String) => {
                            out.push_str(&format!(
                                "{indent}{name}: {:?}\n",
                                String::from_utf8_lossy(inner)
                            ));
                        }
                        Some(Type::Bytes) | None => {
                            out.push_str(&format!("{indent}{name}: {}\n", show_bytes(inner)));
                        }
                        Some(_) => {
                            // A packed repeated scalar: varints one after another.
                            let mut packed = inner;
                            let mut values = Vec::new();
                            while !packed.is_empty() {
                                values.push(self.scalar(field, kind, varint(&mut packed)?));
                            }
                            out.push_str(&format!("{indent}{name}: [{}]\n", values.join(", ")));
                        }
                    }
                }
                other => return Err(format!("wire type {other} (groups are not shown)")),
            }
        }
        Ok(())
    }

    /// A varint field's value by its declared type.
    fn scalar(
        &self,
        field: Option<&prost_types::FieldDescriptorProto>,
        kind: Option<Type>,
        v: u64,
    ) -> String {
        match kind {
            Some(Type::Bool) => (v != 0).to_string(),
            Some(Type::Int32) => (v as i32).to_string(),
            Some(Type::Int64) => (v as i64).to_string(),
            Some(Type::Sint32) | Some(Type::Sint64) => {
                (((v >> 1) as i64) ^ -((v & 1) as i64)).to_string()
            }
            Some(Type::Enum) => {
                let name = field
                    .and_then(|f| self.enums.get(f.type_name()))
                    .and_then(|e| {
                        e.value
                            .iter()
                            .find(|x| i64::from(x.number()) == v as i32 as i64)
                    })
                    .map(|x| x.name().to_owned());
                name.unwrap_or_else(|| (v as i32).to_string())
            }
            _ => v.to_string(),
        }
    }
}

/// The reflection method, v1 and the older v1alpha (the same messages on the wire).
const REFLECTION_V1: &str = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
const REFLECTION_V1ALPHA: &str = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

/// One reflection stream: list the services, then ask for each one's file (with imports).
async fn reflected_files(
    channel: &Channel,
    path: &'static str,
) -> Result<Vec<FileDescriptorProto>, Status> {
    let (mut sink, mut answers) = channel
        .bidi::<ServerReflectionRequest, ServerReflectionResponse>(path, Request::new(()))
        .await?;
    let ask = |request| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    sink.send(ask(MessageRequest::ListServices(String::new())))
        .await?;
    let services = match answers.message().await?.and_then(|a| a.message_response) {
        Some(MessageResponse::ListServicesResponse(list)) => list.service,
        other => return Err(Status::unknown(format!("list_services answered {other:?}"))),
    };
    let mut files = BTreeMap::new();
    for service in services {
        sink.send(ask(MessageRequest::FileContainingSymbol(service.name)))
            .await?;
        let Some(answer) = answers.message().await? else {
            break;
        };
        // An error answer (a service without a file) is skipped: the others still count.
        if let Some(MessageResponse::FileDescriptorResponse(found)) = answer.message_response {
            for bytes in found.file_descriptor_proto {
                let file = FileDescriptorProto::decode(bytes.as_slice()).map_err(|e| {
                    Status::internal(format!("a reflected file does not decode: {e}"))
                })?;
                files.entry(file.name().to_owned()).or_insert(file);
            }
        }
    }
    Ok(files.into_values().collect())
}

fn show_bytes(bytes: &[u8]) -> String {
    if bytes.len() <= SHOW_BYTES {
        let escaped: String = bytes
            .iter()
            .flat_map(|&b| std::ascii::escape_default(b))
            .map(char::from)
            .collect();
        return format!("\"{escaped}\"");
    }
    let head: Vec<String> = bytes[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("<{} bytes: {} …>", bytes.len(), head.join(" "))
}

fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or("varint past the end")?;
        *bytes = rest;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("varint longer than 10 bytes".into())
}

fn fixed(bytes: &mut &[u8], n: usize) -> Result<u64, String> {
    if bytes.len() < n {
        return Err("fixed-width value past the end".into());
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
}

/// RFC 1952: skip the gzip header (10 bytes, then the optional fields its FLG byte names),
/// inflate the DEFLATE body. The trailer's CRC-32 and size are not checked: this only shows.
fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 18 || data[0] != 0x1f || data[1] != 0x8b || data[2] != 8 {
        return None;
    }
    let flags = data[3];
    let mut at = 10;
    if flags & 0x04 != 0 {
        let xlen = usize::from(u16::from_le_bytes([*data.get(at)?, *data.get(at + 1)?]));
        at += 2 + xlen;
    }
    for bit in [0x08, 0x10] {
        if flags & bit != 0 {
            at += data.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    let body = data.get(at..data.len().checked_sub(8)?)?;
    miniz_oxide::inflate::decompress_to_vec(body).ok()
}

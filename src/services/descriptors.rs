//! An index over serialized `FileDescriptorProto`s: which file declares which symbol, which
//! files each file needs, which extensions extend which type. Reflection answers from it.
//!
//! ```text
//!  FileDescriptorSet bytes ── FileSet { file: [Bytes] } ──▶ one Bytes per file, kept as sent
//!                                   │
//!                                   └─ FileProto (partial) ──▶ names only:
//!                                        "grpc.health.v1.Health"            → file 3
//!                                        "grpc.health.v1.Health.Check"      → file 3
//!                                        "grpc.health.v1.HealthCheckResponse.SERVING" → file 3
//!                                        (".pkg.Msg", 100) extension        → file 7
//! ```
//!
//! Symbol names follow protobuf's scoping rules (descriptor.proto): a nested type is
//! `pkg.Outer.Inner`, a field `pkg.Msg.field`, a method `pkg.Svc.Method`, and an enum value is a
//! *sibling* of its enum, so `SERVING` above is `...HealthCheckResponse.SERVING`, not
//! `...ServingStatus.SERVING`.
//!
//! Why partial hand-written structs rather than `prost-types`: reflection must send every file's
//! *original* bytes (a client rebuilds descriptors from them, and re-encoding could drop options
//! or reorder fields), so we only read names out of them. prost skips fields a struct does not
//! declare, so six small structs read exactly the fields we need and the runtime gains no
//! dependency.
//!
//! What it rejects (when the set is registered, not when a client asks):
//!
//! | input | error |
//! |---|---|
//! | bytes that are not a `FileDescriptorSet` | `INVALID_ARGUMENT` |
//! | a file name given twice with different contents | `INVALID_ARGUMENT` |
//! | a file importing a file the index does not have | `INVALID_ARGUMENT` |

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use prost::Message;

use crate::status::Status;

/// `google.protobuf.FileDescriptorSet`, each file left serialized.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct FileSet {
    /// `repeated FileDescriptorProto file = 1`.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub(crate) file: Vec<Bytes>,
}

/// The parts of `google.protobuf.FileDescriptorProto` that name things.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct FileProto {
    /// The file's path as protoc saw it, e.g. `grpc/health/v1/health.proto`.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    /// The proto package, e.g. `grpc.health.v1`.
    #[prost(string, tag = "2")]
    pub(crate) package: String,
    /// The files it imports, by name.
    #[prost(string, repeated, tag = "3")]
    pub(crate) dependency: Vec<String>,
    /// Top-level messages.
    #[prost(message, repeated, tag = "4")]
    pub(crate) message_type: Vec<MessageProto>,
    /// Top-level enums.
    #[prost(message, repeated, tag = "5")]
    pub(crate) enum_type: Vec<EnumProto>,
    /// Services.
    #[prost(message, repeated, tag = "6")]
    pub(crate) service: Vec<ServiceProto>,
    /// Top-level extensions.
    #[prost(message, repeated, tag = "7")]
    pub(crate) extension: Vec<FieldProto>,
}

/// The naming parts of `google.protobuf.DescriptorProto`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct MessageProto {
    /// The message's simple name.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    /// Its fields.
    #[prost(message, repeated, tag = "2")]
    pub(crate) field: Vec<FieldProto>,
    /// Messages declared inside it.
    #[prost(message, repeated, tag = "3")]
    pub(crate) nested_type: Vec<MessageProto>,
    /// Enums declared inside it.
    #[prost(message, repeated, tag = "4")]
    pub(crate) enum_type: Vec<EnumProto>,
    /// Extensions declared inside it (of any type).
    #[prost(message, repeated, tag = "6")]
    pub(crate) extension: Vec<FieldProto>,
    /// Its oneofs.
    #[prost(message, repeated, tag = "8")]
    pub(crate) oneof_decl: Vec<NamedProto>,
}

/// The naming parts of `google.protobuf.FieldDescriptorProto`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct FieldProto {
    /// The field's name.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    /// For an extension: the extended type, fully qualified with a leading dot.
    #[prost(string, tag = "2")]
    pub(crate) extendee: String,
    /// The field number.
    #[prost(int32, tag = "3")]
    pub(crate) number: i32,
}

/// The naming parts of `google.protobuf.EnumDescriptorProto`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct EnumProto {
    /// The enum's simple name.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    /// Its values.
    #[prost(message, repeated, tag = "2")]
    pub(crate) value: Vec<NamedProto>,
}

/// The naming parts of `google.protobuf.ServiceDescriptorProto`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ServiceProto {
    /// The service's simple name.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
    /// Its methods.
    #[prost(message, repeated, tag = "2")]
    pub(crate) method: Vec<NamedProto>,
}

/// Any descriptor of which only the name (field 1) matters: a method, an enum value, a oneof.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct NamedProto {
    /// The simple name.
    #[prost(string, tag = "1")]
    pub(crate) name: String,
}

/// What a symbol names, as far as reflection cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SymbolKind {
    /// A service.
    Service,
    /// A message type (the only thing extensions can extend).
    Message,
    /// A method, field, oneof, enum, enum value or extension.
    Other,
}

/// One registered file.
#[derive(Debug)]
struct File {
    /// Its original serialized `FileDescriptorProto`.
    bytes: Bytes,
    /// Its imports, by name, in declaration order.
    dependencies: Vec<String>,
}

/// Every registered file, and the names they declare.
#[derive(Debug, Default)]
pub(crate) struct DescriptorIndex {
    /// Files in registration order.
    files: Vec<File>,
    /// File name → index in `files`.
    by_name: HashMap<String, usize>,
    /// Fully qualified symbol (no leading dot) → (kind, index in `files`).
    symbols: HashMap<String, (SymbolKind, usize)>,
    /// (extended type, field number) → index in `files`.
    extensions: HashMap<(String, i32), usize>,
}

impl DescriptorIndex {
    /// Registers every file of a serialized `FileDescriptorSet`. A file already registered with
    /// the same bytes is skipped.
    pub(crate) fn add_set(&mut self, set: &[u8]) -> Result<(), Status> {
        let set = FileSet::decode(Bytes::copy_from_slice(set)).map_err(|e| {
            Status::invalid_argument(format!("not a serialized FileDescriptorSet: {e}"))
        })?;
        for bytes in set.file {
            self.add_file(bytes)?;
        }
        Ok(())
    }

    /// Registers one serialized `FileDescriptorProto`; skips it when the same bytes are
    /// already registered under its name.
    pub(crate) fn add_file(&mut self, bytes: Bytes) -> Result<(), Status> {
        let file = FileProto::decode(bytes.clone()).map_err(|e| {
            Status::invalid_argument(format!("not a serialized FileDescriptorProto: {e}"))
        })?;
        if let Some(&existing) = self.by_name.get(&file.name) {
            if self.files[existing].bytes == bytes {
                return Ok(());
            }
            return Err(Status::invalid_argument(format!(
                "file {} registered twice with different contents",
                file.name
            )));
        }
        let index = self.files.len();
        let mut names = Vec::new();
        let scope = file.package.as_str();
        for message in &file.message_type {
            collect_message(scope, message, &mut names, &mut self.extensions, index);
        }
        for enumeration in &file.enum_type {
            collect_enum(scope, enumeration, &mut names);
        }
        for service in &file.service {
            let service_name = qualify(scope, &service.name);
            for method in &service.method {
                names.push((qualify(&service_name, &method.name), SymbolKind::Other));
            }
            names.push((service_name, SymbolKind::Service));
        }
        for extension in &file.extension {
            collect_extension(scope, extension, &mut names, &mut self.extensions, index);
        }
        for (name, kind) in names {
            // protoc rejects a name declared twice within one set; across sets, the first
            // registration keeps it.
            self.symbols.entry(name).or_insert((kind, index));
        }
        self.by_name.insert(file.name, index);
        self.files.push(File {
            bytes,
            dependencies: file.dependency,
        });
        Ok(())
    }

    /// Is a file of this name registered?
    pub(crate) fn has_file(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Checks that every import of every file is registered too.
    pub(crate) fn check_dependencies(&self) -> Result<(), Status> {
        for (name, &index) in &self.by_name {
            for dependency in &self.files[index].dependencies {
                if !self.by_name.contains_key(dependency) {
                    return Err(Status::invalid_argument(format!(
                        "{name} imports {dependency}, which no registered descriptor set holds"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every service declared by any registered file, sorted.
    pub(crate) fn service_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .symbols
            .iter()
            .filter(|(_, (kind, _))| *kind == SymbolKind::Service)
            .map(|(name, _)| name.clone())
            .collect();
        names.sort_unstable();
        names
    }

    /// Is `name` a service some registered file declares?
    pub(crate) fn has_service(&self, name: &str) -> bool {
        matches!(self.symbols.get(name), Some((SymbolKind::Service, _)))
    }

    /// The file named `name`, then its transitive imports.
    pub(crate) fn file_by_name(&self, name: &str) -> Option<Vec<Bytes>> {
        self.by_name
            .get(name)
            .map(|&index| self.with_imports(index))
    }

    /// The file declaring `symbol` (fully qualified; a leading dot is tolerated), then its
    /// transitive imports.
    pub(crate) fn file_containing_symbol(&self, symbol: &str) -> Option<Vec<Bytes>> {
        let symbol = symbol.strip_prefix('.').unwrap_or(symbol);
        self.symbols
            .get(symbol)
            .map(|&(_, index)| self.with_imports(index))
    }

    /// The file declaring extension `number` of `type_name`, then its transitive imports.
    pub(crate) fn file_containing_extension(
        &self,
        type_name: &str,
        number: i32,
    ) -> Option<Vec<Bytes>> {
        let type_name = type_name.strip_prefix('.').unwrap_or(type_name);
        self.extensions
            .get(&(type_name.to_owned(), number))
            .map(|&index| self.with_imports(index))
    }

    /// The extension numbers known for message type `type_name`, sorted; None when no
    /// registered file declares that message.
    pub(crate) fn extension_numbers(&self, type_name: &str) -> Option<Vec<i32>> {
        let type_name = type_name.strip_prefix('.').unwrap_or(type_name);
        if !matches!(self.symbols.get(type_name), Some((SymbolKind::Message, _))) {
            return None;
        }
        let mut numbers: Vec<i32> = self
            .extensions
            .keys()
            .filter(|(extended, _)| extended == type_name)
            .map(|&(_, number)| number)
            .collect();
        numbers.sort_unstable();
        Some(numbers)
    }

    /// File `index` first, then every file it imports, directly or not, each once.
    fn with_imports(&self, index: usize) -> Vec<Bytes> {
        let mut seen = HashSet::from([index]);
        let mut order = vec![index];
        let mut next = 0;
        // Breadth-first over the import graph; `seen` also stops import cycles (which protoc
        // rejects anyway).
        while let Some(&current) = order.get(next) {
            next += 1;
            for dependency in &self.files[current].dependencies {
                if let Some(&dep) = self.by_name.get(dependency) {
                    if seen.insert(dep) {
                        order.push(dep);
                    }
                }
            }
        }
        order
            .into_iter()
            .map(|i| self.files[i].bytes.clone())
            .collect()
    }
}

/// `scope.name`, or `name` alone in the empty (no package) scope.
fn qualify(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_owned()
    } else {
        format!("{scope}.{name}")
    }
}

/// Names a message declares: itself, its fields and oneofs, and everything nested in it.
fn collect_message(
    scope: &str,
    message: &MessageProto,
    names: &mut Vec<(String, SymbolKind)>,
    extensions: &mut HashMap<(String, i32), usize>,
    file: usize,
) {
    let full = qualify(scope, &message.name);
    for field in &message.field {
        names.push((qualify(&full, &field.name), SymbolKind::Other));
    }
    for oneof in &message.oneof_decl {
        names.push((qualify(&full, &oneof.name), SymbolKind::Other));
    }
    for nested in &message.nested_type {
        collect_message(&full, nested, names, extensions, file);
    }
    for enumeration in &message.enum_type {
        collect_enum(&full, enumeration, names);
    }
    for extension in &message.extension {
        collect_extension(&full, extension, names, extensions, file);
    }
    names.push((full, SymbolKind::Message));
}

/// Names an enum declares: itself, and its values in the enum's *enclosing* scope.
fn collect_enum(scope: &str, enumeration: &EnumProto, names: &mut Vec<(String, SymbolKind)>) {
    names.push((qualify(scope, &enumeration.name), SymbolKind::Other));
    for value in &enumeration.value {
        // descriptor.proto: enum values use C++ scoping rules, siblings of their type.
        names.push((qualify(scope, &value.name), SymbolKind::Other));
    }
}

/// An extension: a symbol in `scope`, and an entry under the type it extends.
fn collect_extension(
    scope: &str,
    extension: &FieldProto,
    names: &mut Vec<(String, SymbolKind)>,
    extensions: &mut HashMap<(String, i32), usize>,
    file: usize,
) {
    names.push((qualify(scope, &extension.name), SymbolKind::Other));
    let extended = extension.extendee.trim_start_matches('.').to_owned();
    extensions
        .entry((extended, extension.number))
        .or_insert(file);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> NamedProto {
        NamedProto { name: name.into() }
    }

    fn field(name: &str, number: i32, extendee: &str) -> FieldProto {
        FieldProto {
            name: name.into(),
            extendee: extendee.into(),
            number,
        }
    }

    /// `base.proto`: message `Base` (extension range), enum `Color`.
    fn base() -> FileProto {
        FileProto {
            name: "base.proto".into(),
            package: "demo".into(),
            message_type: vec![MessageProto {
                name: "Base".into(),
                field: vec![field("id", 1, "")],
                ..Default::default()
            }],
            enum_type: vec![EnumProto {
                name: "Color".into(),
                value: vec![named("RED"), named("GREEN")],
            }],
            ..Default::default()
        }
    }

    /// `svc.proto`, importing base: a service, a nested message with a nested enum and a
    /// oneof, and extensions of `demo.Base` at file and message scope.
    fn svc() -> FileProto {
        FileProto {
            name: "svc.proto".into(),
            package: "demo.api".into(),
            dependency: vec!["base.proto".into()],
            message_type: vec![MessageProto {
                name: "Outer".into(),
                field: vec![field("inner", 1, "")],
                nested_type: vec![MessageProto {
                    name: "Inner".into(),
                    enum_type: vec![EnumProto {
                        name: "Mode".into(),
                        value: vec![named("FAST")],
                    }],
                    ..Default::default()
                }],
                extension: vec![field("note", 101, ".demo.Base")],
                oneof_decl: vec![named("choice")],
                ..Default::default()
            }],
            service: vec![ServiceProto {
                name: "Api".into(),
                method: vec![named("Get")],
            }],
            extension: vec![field("tag", 100, ".demo.Base")],
            ..Default::default()
        }
    }

    fn set(files: &[FileProto]) -> Vec<u8> {
        FileSet {
            file: files
                .iter()
                .map(|f| Bytes::from(f.encode_to_vec()))
                .collect(),
        }
        .encode_to_vec()
    }

    fn index() -> DescriptorIndex {
        let mut index = DescriptorIndex::default();
        index.add_set(&set(&[base(), svc()])).unwrap();
        index.check_dependencies().unwrap();
        index
    }

    fn names(files: Option<Vec<Bytes>>) -> Option<Vec<String>> {
        files.map(|files| {
            files
                .into_iter()
                .map(|bytes| FileProto::decode(bytes).unwrap().name)
                .collect()
        })
    }

    #[test]
    fn symbols_resolve_by_protobuf_scoping() {
        let index = index();
        let both = Some(vec!["svc.proto".to_owned(), "base.proto".to_owned()]);
        let base_only = Some(vec!["base.proto".to_owned()]);
        let rows: &[(&str, &Option<Vec<String>>)] = &[
            ("demo.api.Api", &both),
            ("demo.api.Api.Get", &both),
            ("demo.api.Outer", &both),
            ("demo.api.Outer.inner", &both),
            ("demo.api.Outer.choice", &both),
            ("demo.api.Outer.Inner", &both),
            ("demo.api.Outer.Inner.Mode", &both),
            // enum values are siblings of their enum
            ("demo.api.Outer.Inner.FAST", &both),
            ("demo.api.Outer.Inner.Mode.FAST", &None),
            ("demo.api.tag", &both),
            ("demo.api.Outer.note", &both),
            // a leading dot (the form descriptors use) is accepted
            (".demo.api.Api", &both),
            ("demo.Base", &base_only),
            ("demo.Base.id", &base_only),
            ("demo.Color", &base_only),
            ("demo.RED", &base_only),
            ("demo.Color.RED", &None),
            ("demo", &None),
            ("", &None),
        ];
        for (symbol, want) in rows {
            assert_eq!(
                &names(index.file_containing_symbol(symbol)),
                *want,
                "{symbol}"
            );
        }
    }

    #[test]
    fn files_come_with_their_imports_as_sent() {
        let index = index();
        let files = index.file_by_name("svc.proto").unwrap();
        assert_eq!(files[0], Bytes::from(svc().encode_to_vec()));
        assert_eq!(files[1], Bytes::from(base().encode_to_vec()));
        assert_eq!(
            names(index.file_by_name("base.proto")),
            Some(vec!["base.proto".into()])
        );
        assert!(index.file_by_name("nope.proto").is_none());
    }

    #[test]
    fn extensions_by_type_and_number() {
        let index = index();
        assert_eq!(
            names(index.file_containing_extension("demo.Base", 100)),
            Some(vec!["svc.proto".into(), "base.proto".into()])
        );
        assert!(index.file_containing_extension("demo.Base", 102).is_none());
        assert!(index.file_containing_extension("demo.Nope", 100).is_none());
        assert_eq!(index.extension_numbers("demo.Base"), Some(vec![100, 101]));
        assert_eq!(index.extension_numbers("demo.api.Outer"), Some(vec![]));
        // Only message types have extension numbers.
        assert_eq!(index.extension_numbers("demo.Color"), None);
        assert_eq!(index.extension_numbers("demo.Nope"), None);
    }

    #[test]
    fn services_are_listed() {
        let index = index();
        assert_eq!(index.service_names(), vec!["demo.api.Api".to_owned()]);
        assert!(index.has_service("demo.api.Api"));
        assert!(!index.has_service("demo.Base"));
    }

    #[test]
    fn bad_sets_are_rejected() {
        let mut index = DescriptorIndex::default();
        let err = index.add_set(&[0xff, 0xff]).unwrap_err();
        assert_eq!(err.code(), crate::Code::InvalidArgument);

        // An import nobody registered.
        let mut index = DescriptorIndex::default();
        index.add_set(&set(&[svc()])).unwrap();
        let err = index.check_dependencies().unwrap_err();
        assert!(err.message().contains("base.proto"), "{err}");

        // The same name twice: identical bytes are fine, different bytes are not.
        let mut index = DescriptorIndex::default();
        index.add_set(&set(&[base(), base()])).unwrap();
        let mut other = base();
        other.package = "other".into();
        let err = index.add_set(&set(&[other])).unwrap_err();
        assert!(err.message().contains("twice"), "{err}");
    }
}

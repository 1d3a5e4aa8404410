//! bare-grpc's code generator: proto services to a server trait, a dispatch
//! table and a client, for the bare-grpc runtime.
//!
//! A user's `build.rs` is one line, [`compile_protos`] (options on [`Builder`]):
//!
//! ```no_run
//! fn main() -> std::io::Result<()> {
//!     bare_grpc_codegen::compile_protos(&["proto/helloworld.proto"], &["proto"])
//! }
//! ```
//!
//! Rule: the generated code targets `::bare_grpc::codegen` (the runtime's
//! re-export surface for generated code, checked at compile time through
//! `ABI_V2`) and names each call by its `:path`, `"/" Service-Name "/"
//! method-name` with the proto names as written (PROTOCOL-HTTP2 § Requests).
//!
//! ```text
//!  protoc ──CodeGeneratorRequest──▶ protoc-gen-bare-grpc (src/main.rs) ─┐
//!                                                                        ├─▶ generate()
//!  build.rs ──Builder──▶ protoc -o descriptor set ──▶ prost-build ───────┘
//!
//!  generate(): FileDescriptorProto ──ir::from_file──▶ ir::Service ──render──▶ text
//!              one `<package>.bare_grpc.rs` per proto package with services
//! ```
//!
//! Layout (reading order): `names` (proto names to prost-build's Rust names),
//! `ir` (what a service is, for the renderer), `layout` (the width-dependent
//! line breaks, done like rustfmt), `render` (the emitted shape), `builder`
//! (the `build.rs` route: [`compile_protos`] and [`Builder`]).
//!
//! Why two routes to one function: the plugin lets any protoc user generate
//! code, and `Builder` lets a crate build with no system protoc at all; both
//! call `generate`, and a test runs the plugin under the system protoc and
//! checks its output byte for byte against the library route.
//!
//! Not done: generated code for gRPC-Web or JSON transcoding, per-method
//! options (idempotency, deprecation), and default method bodies (methods are
//! required; `docs/codegen.md` says why).

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod builder;
pub mod ir;
mod layout;
pub mod names;
mod render;

use std::collections::BTreeMap;

use prost_types::FileDescriptorProto;

pub use builder::{Builder, compile_protos};

/// One output file: `name` is relative to the output directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeneratedFile {
    /// `<package>.bare_grpc.rs`, `_.bare_grpc.rs` for files without a package.
    pub name: String,
    /// Rust source: one `pub mod <service>_grpc` per service, rustfmt-stable.
    pub content: String,
}

/// Generates the service code of the files named in `files_to_generate`.
///
/// `files` holds those files and everything they import, as protoc hands them
/// to a plugin (`CodeGeneratorRequest.proto_file`) or writes them with
/// `--include_imports`. Services are emitted in the order of `files`, then of
/// declaration; files without services produce nothing.
pub fn generate(files: &[FileDescriptorProto], files_to_generate: &[String]) -> Vec<GeneratedFile> {
    generate_with(files, files_to_generate, &Options::default())
}

/// What [`generate_with`] emits: both sides by default, message types by
/// prost-build's default paths.
#[derive(Clone, Debug)]
pub struct Options {
    /// Emit the server trait, the server type and its dispatch table.
    pub server: bool,
    /// Emit the client.
    pub client: bool,
    /// `(".proto.path", "::rust::path")` pairs for message types compiled in
    /// another crate, as given to prost-build's `Config::extern_path`.
    pub extern_paths: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            server: true,
            client: true,
            extern_paths: Vec::new(),
        }
    }
}

/// [`generate`], with the sides and type paths that `options` asks for.
pub fn generate_with(
    files: &[FileDescriptorProto],
    files_to_generate: &[String],
    options: &Options,
) -> Vec<GeneratedFile> {
    let mut by_stem: Vec<(String, Vec<String>)> = Vec::new();
    for file in selected(files, files_to_generate) {
        let services = ir::from_file_with(file, &options.extern_paths);
        if services.is_empty() {
            continue;
        }
        let stem = names::package_file_stem(file.package());
        let at = match by_stem.iter().position(|(s, _)| *s == stem) {
            Some(at) => at,
            None => {
                by_stem.push((stem, Vec::new()));
                by_stem.len() - 1
            }
        };
        by_stem[at].1.extend(
            services
                .iter()
                .map(|s| render::service_parts(s, options.server, options.client)),
        );
    }
    by_stem
        .into_iter()
        .map(|(stem, blocks)| GeneratedFile {
            name: format!("{stem}.bare_grpc.rs"),
            content: blocks.join("\n"),
        })
        .collect()
}

/// Rejects input whose generated code could not compile: two methods of one
/// service with the same Rust name (`getFoo` and `GetFoo`), or two services of
/// one package with the same module name. The message names the proto items.
pub fn check(files: &[FileDescriptorProto], files_to_generate: &[String]) -> Result<(), String> {
    let mut modules: BTreeMap<(String, String), String> = BTreeMap::new();
    for file in selected(files, files_to_generate) {
        for service in ir::from_file(file) {
            let module = names::service_module(&service.proto_name);
            let key = (names::package_file_stem(&service.package), module.clone());
            if let Some(other) = modules.insert(key, service.full_name()) {
                return Err(format!(
                    "services {other} and {} both generate module `{module}`",
                    service.full_name()
                ));
            }
            let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
            for method in &service.methods {
                if let Some(other) = seen.insert(&method.rust_name, &method.proto_name) {
                    return Err(format!(
                        "{}: methods {other} and {} both become `{}` in Rust",
                        service.full_name(),
                        method.proto_name,
                        method.rust_name
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Renders one service on its own: the text `generate` emits for it.
pub fn render(service: &ir::Service) -> String {
    render::service(service)
}

fn selected<'a>(
    files: &'a [FileDescriptorProto],
    files_to_generate: &'a [String],
) -> impl Iterator<Item = &'a FileDescriptorProto> {
    files
        .iter()
        .filter(move |f| files_to_generate.iter().any(|n| n == f.name()))
}

//! The `build.rs` route: protoc once, prost-build for messages, `generate` for
//! services, both in the same `<package>.rs`.
//!
//! ```text
//!   protos ──protoc --include_imports --include_source_info -o set.bin──▶ FileDescriptorSet
//!     ├─▶ prost-build compile_fds ──▶ OUT_DIR/grpc.testing.rs   (messages)
//!     └─▶ generate ────────────────▶ appended to the same file  (services)
//! ```
//!
//! Why one file per package: `include!(concat!(env!("OUT_DIR"),
//! "/grpc.testing.rs"))` inside `pub mod grpc { pub mod testing { .. } }` then
//! brings messages and services together, and the service modules' `super::`
//! paths land on the messages (see `names`). protoc runs once: the descriptor
//! set it writes is what prost-build compiles, what `generate` reads, and what
//! a reflection service embeds.
//!
//! Which protoc: `$PROTOC` when set, else the one `protoc-bin-vendored` ships
//! for this host (a prebuilt binary inside that crate: a user's machine needs
//! no system protoc), else `protoc` on the `PATH`. The vendored
//! `google/protobuf/*.proto` are always the last include directory, so a
//! `.proto` can import `google/protobuf/timestamp.proto` with no setup.
//!
//! Errors: protoc's own diagnostics (`proto/hello.proto:7:3: Expected ";".`,
//! file and line first) come back in the error whole, after a line that says
//! which protoc ran; a missing protoc says which path was tried and how to
//! choose another. The error's `Debug` is its message, so a build script that
//! ends in `?` or `.unwrap()` prints it readably.
//!
//! Not done: prost-build's `bytes`, `btree_map` and `compile_well_known_types`
//! options; the type paths in `names` assume their defaults, so they are not offered.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use prost_types::FileDescriptorSet;

/// Compiles `protos` for a build script with every default: the vendored protoc
/// (or `$PROTOC`), messages and services for both sides into `$OUT_DIR`, the
/// descriptor set in `$OUT_DIR/file_descriptor_set.bin`, and `cargo:rerun-if-changed`
/// lines for every `.proto` read.
///
/// `includes` are the directories protoc resolves imports against; each file in
/// `protos` must sit below one of them. A whole `build.rs`:
///
/// ```no_run
/// fn main() -> std::io::Result<()> {
///     bare_grpc_codegen::compile_protos(&["proto/helloworld.proto"], &["proto"])
/// }
/// ```
///
/// Then, in the crate, `include!(concat!(env!("OUT_DIR"), "/helloworld.rs"))`
/// inside `mod helloworld` brings the messages and the services. [`Builder`]
/// holds the options.
pub fn compile_protos(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> io::Result<()> {
    Builder::new().compile(protos, includes)
}

/// Compiles .proto files into messages and services for a build script, with options.
///
/// ```no_run
/// bare_grpc_codegen::Builder::new()
///     .build_server(false)                                  // a client-only crate
///     .extern_path(".shared", "::shared_protos")            // types from another crate
///     .message_attribute(".helloworld", "#[derive(Eq, Hash)]")
///     .compile(&["proto/helloworld.proto"], &["proto"])
///     .unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    protoc: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    descriptor_set: Option<PathBuf>,
    options: crate::Options,
    message_attributes: Vec<(String, String)>,
    enum_attributes: Vec<(String, String)>,
    field_attributes: Vec<(String, String)>,
    emit_rerun_if_changed: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            protoc: None,
            out_dir: None,
            descriptor_set: None,
            options: crate::Options::default(),
            message_attributes: Vec::new(),
            enum_attributes: Vec::new(),
            field_attributes: Vec::new(),
            emit_rerun_if_changed: true,
        }
    }
}

impl Builder {
    /// A builder with the defaults of [`compile_protos`].
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The protoc binary to run instead of `$PROTOC` or the vendored one.
    pub fn protoc(mut self, path: impl Into<PathBuf>) -> Builder {
        self.protoc = Some(path.into());
        self
    }

    /// Where `<package>.rs` files go; `$OUT_DIR` by default.
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Builder {
        self.out_dir = Some(dir.into());
        self
    }

    /// Where the serialized `FileDescriptorSet` (imports and source info
    /// included) goes; `<out_dir>/file_descriptor_set.bin` by default.
    pub fn file_descriptor_set(mut self, path: impl Into<PathBuf>) -> Builder {
        self.descriptor_set = Some(path.into());
        self
    }

    /// Whether to emit the server trait, server type and dispatch table (default yes).
    pub fn build_server(mut self, yes: bool) -> Builder {
        self.options.server = yes;
        self
    }

    /// Whether to emit the client (default yes).
    pub fn build_client(mut self, yes: bool) -> Builder {
        self.options.client = yes;
        self
    }

    /// Uses Rust type `rust_path` (absolute, `::other_crate::pkg`) for the proto
    /// package or type `proto_path` (fully qualified, `.other.pkg`) instead of
    /// generating it: prost-build's `Config::extern_path`, which the service
    /// code follows too.
    pub fn extern_path(
        mut self,
        proto_path: impl Into<String>,
        rust_path: impl Into<String>,
    ) -> Builder {
        self.options
            .extern_paths
            .push((proto_path.into(), rust_path.into()));
        self
    }

    /// Puts `attribute` (`#[derive(Eq, Hash)]`) on the messages matched by
    /// `path` (`.` for all, `.pkg` for a package, `.pkg.Msg` for one):
    /// prost-build's `Config::message_attribute`.
    pub fn message_attribute(
        mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Builder {
        self.message_attributes
            .push((path.into(), attribute.into()));
        self
    }

    /// Puts `attribute` on the enums matched by `path`: prost-build's `Config::enum_attribute`.
    pub fn enum_attribute(
        mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Builder {
        self.enum_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Puts `attribute` on the fields matched by `path` (`.pkg.Msg.field`):
    /// prost-build's `Config::field_attribute`.
    pub fn field_attribute(
        mut self,
        path: impl Into<String>,
        attribute: impl Into<String>,
    ) -> Builder {
        self.field_attributes.push((path.into(), attribute.into()));
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for every `.proto` read and
    /// `cargo:rerun-if-env-changed=PROTOC` (default yes; off outside build scripts).
    pub fn emit_rerun_if_changed(mut self, yes: bool) -> Builder {
        self.emit_rerun_if_changed = yes;
        self
    }

    /// Runs protoc on `protos` (searching imports in `includes`, then in the
    /// vendored well-known types), writes the descriptor set, prost-build's
    /// `<package>.rs` files, and appends each package's services to its file.
    pub fn compile(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| {
                    error(
                        "OUT_DIR is not set (not in a build script?) and no out_dir was given"
                            .into(),
                    )
                })?,
        };
        let descriptor_set = self
            .descriptor_set
            .clone()
            .unwrap_or_else(|| out_dir.join("file_descriptor_set.bin"));
        let mut include_dirs: Vec<PathBuf> =
            includes.iter().map(|i| i.as_ref().to_path_buf()).collect();
        // Well-known types last: the crate's own directories win.
        if let Ok(well_known) = protoc_bin_vendored::include_path() {
            include_dirs.push(well_known);
        }

        let set = self.run_protoc(protos, &include_dirs, &descriptor_set)?;
        if self.emit_rerun_if_changed {
            rerun_if_changed(&set, protos, &include_dirs);
        }

        let names: Vec<String> = set.file.iter().map(|f| f.name().to_string()).collect();
        crate::check(&set.file, &names).map_err(error)?;
        let generated = crate::generate_with(&set.file, &names, &self.options);

        let mut config = prost_build::Config::new();
        config.out_dir(&out_dir);
        for (proto, rust) in &self.options.extern_paths {
            config.extern_path(proto, rust);
        }
        for (path, attribute) in &self.message_attributes {
            config.message_attribute(path, attribute);
        }
        for (path, attribute) in &self.enum_attributes {
            config.enum_attribute(path, attribute);
        }
        for (path, attribute) in &self.field_attributes {
            config.field_attribute(path, attribute);
        }
        config.compile_fds(set)?;

        for file in generated {
            let stem = file.name.trim_end_matches(".bare_grpc.rs");
            let target = out_dir.join(format!("{stem}.rs"));
            let mut text = std::fs::read_to_string(&target).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("prost-build wrote no {}: {e}", target.display()),
                )
            })?;
            text.push('\n');
            text.push_str(&file.content);
            std::fs::write(&target, text)?;
        }
        Ok(())
    }

    /// The protoc to run: the builder's, `$PROTOC`, the vendored one, `protoc`.
    fn protoc_path(&self) -> PathBuf {
        if let Some(path) = &self.protoc {
            return path.clone();
        }
        if let Some(path) = std::env::var_os("PROTOC") {
            return PathBuf::from(path);
        }
        protoc_bin_vendored::protoc_bin_path().unwrap_or_else(|_| PathBuf::from("protoc"))
    }

    /// Runs protoc once and decodes the set it wrote to `descriptor_set`.
    fn run_protoc(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[PathBuf],
        descriptor_set: &Path,
    ) -> io::Result<FileDescriptorSet> {
        let protoc = self.protoc_path();
        let mut command = Command::new(&protoc);
        command
            .arg("--include_imports")
            .arg("--include_source_info")
            .arg("-o")
            .arg(descriptor_set);
        for include in includes {
            command.arg("-I").arg(include);
        }
        command.args(protos.iter().map(|p| p.as_ref()));
        let output = command.output().map_err(|e| {
            error(format!(
                "could not run protoc at {}: {e}\n\
                 (bare-grpc-codegen uses $PROTOC when set, else the protoc of protoc-bin-vendored, \
                 else `protoc` on the PATH)",
                protoc.display()
            ))
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            return Err(error(format!(
                "protoc ({}) rejected the .proto files:\n{}",
                protoc.display(),
                stderr.trim_end()
            )));
        }
        let bytes = std::fs::read(descriptor_set)?;
        FileDescriptorSet::decode(bytes.as_slice()).map_err(|e| {
            error(format!(
                "protoc wrote a descriptor set that does not decode ({}): {e}",
                descriptor_set.display()
            ))
        })
    }
}

/// `cargo:rerun-if-changed` for each file protoc read from the crate (the
/// inputs and the imports found below `includes`; the vendored well-known
/// types do not change), and for `$PROTOC`.
fn rerun_if_changed(set: &FileDescriptorSet, protos: &[impl AsRef<Path>], includes: &[PathBuf]) {
    let well_known = protoc_bin_vendored::include_path().ok();
    let mut seen = std::collections::BTreeSet::new();
    for proto in protos {
        seen.insert(proto.as_ref().to_path_buf());
    }
    for file in &set.file {
        let found = includes
            .iter()
            .filter(|dir| Some(*dir) != well_known.as_ref())
            .map(|dir| dir.join(file.name()))
            .find(|path| path.is_file());
        if let Some(path) = found {
            seen.insert(path);
        }
    }
    for path in seen {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    println!("cargo:rerun-if-env-changed=PROTOC");
}

/// An error whose `Debug` is its message, so that `main() -> io::Result<()>`
/// and `.unwrap()` in a build script print protoc's lines as lines.
struct CodegenError(String);

impl fmt::Debug for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CodegenError {}

fn error(message: String) -> io::Error {
    io::Error::other(CodegenError(message))
}

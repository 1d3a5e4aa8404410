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
//! a reflection service can embed later.
//!
//! Not done: prost-build options (`bytes`, `btree_map`, `extern_path`); the
//! type paths in `names` assume its defaults, so they are not offered.

use std::io;
use std::path::{Path, PathBuf};

/// Compiles .proto files into messages and services for a build script.
///
/// ```no_run
/// bare_grpc_codegen::Builder::new()
///     .protoc("/usr/bin/protoc")
///     .compile(&["proto/helloworld.proto"], &["proto"])
///     .unwrap();
/// ```
#[derive(Clone, Debug, Default)]
pub struct Builder {
    protoc: Option<PathBuf>,
    out_dir: Option<PathBuf>,
    descriptor_set: Option<PathBuf>,
}

impl Builder {
    /// A builder that uses `$PROTOC` (else `protoc` on the `PATH`) and writes to `$OUT_DIR`.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The protoc binary to run (for example `protoc_bin_vendored::protoc_bin_path()`).
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

    /// Runs protoc on `protos` (searching imports in `includes`), writes the
    /// descriptor set, prost-build's `<package>.rs` files, and appends each
    /// package's services to its file.
    pub fn compile(
        &self,
        protos: &[impl AsRef<Path>],
        includes: &[impl AsRef<Path>],
    ) -> io::Result<()> {
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or_else(|| io::Error::other("OUT_DIR is not set and no out_dir was given"))?,
        };
        let descriptor_set = self
            .descriptor_set
            .clone()
            .unwrap_or_else(|| out_dir.join("file_descriptor_set.bin"));

        let mut config = prost_build::Config::new();
        if let Some(protoc) = &self.protoc {
            // Set on the config, not through the environment: `set_var` is
            // unsafe in edition 2024 and would leak into the rest of build.rs.
            config.protoc_executable(protoc);
        }
        config.out_dir(&out_dir);
        config.file_descriptor_set_path(&descriptor_set);
        let set = config.load_fds(protos, includes)?;

        let names: Vec<String> = set.file.iter().map(|f| f.name().to_string()).collect();
        crate::check(&set.file, &names).map_err(io::Error::other)?;
        let generated = crate::generate(&set.file, &names);
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
}

//! Compiles the library's own protos, `proto/grpc/health/**` and `proto/grpc/reflection/**`,
//! into `OUT_DIR`: prost-build's messages and bare-grpc's services in one `<package>.rs` per
//! package, plus `file_descriptor_set.bin` (imports and source info included), which
//! `services::reflection` embeds so that every reflection service can describe health and
//! reflection.
//!
//! Only these: the other protos under `proto/` are the tests', examples' and bench's contracts,
//! compiled by their own crate (`tests/contracts`, a dev-dependency), so a user's build
//! generates no test contracts and the embedded descriptors hold only what the library serves.
//!
//! protoc is the vendored one that `bare-grpc-codegen` carries (`protoc-bin-vendored`, a
//! prebuilt binary shipped inside the crate, so a fresh machine needs no system protoc and
//! nothing compiles) unless `PROTOC` names another: the same defaults as a user's one-line
//! `bare_grpc_codegen::compile_protos`. `docs/codegen.md` says why this route and not a
//! pure-Rust parser.

use std::path::{Path, PathBuf};

/// The library's own protos, directories below `proto/`.
const OWN: &[&str] = &["proto/grpc/health", "proto/grpc/reflection"];

fn main() -> std::io::Result<()> {
    for dir in OWN {
        println!("cargo:rerun-if-changed={dir}");
    }

    let mut protos = Vec::new();
    for dir in OWN {
        collect_protos(Path::new(dir), &mut protos)?;
    }
    protos.sort();

    // The defaults: `$OUT_DIR/<package>.rs`, `$OUT_DIR/file_descriptor_set.bin`, and the
    // vendored google/protobuf/*.proto searched after `proto`.
    bare_grpc_codegen::compile_protos(&protos, &["proto"])
}

/// Every `*.proto` below `dir`, recursively.
fn collect_protos(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

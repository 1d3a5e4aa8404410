//! Compiles the repository's test, example and bench contracts: every `.proto` under the
//! top-level `proto/` except `grpc/health/` and `grpc/reflection/`, which are the library's own
//! (its `build.rs` compiles them). One `<package>.rs` per package lands in `OUT_DIR`, plus
//! `file_descriptor_set.bin` (imports and source info included) for the servers that serve
//! reflection of these services.
//!
//! The protos stay in `proto/` rather than moving here: the Go and Python peers generate their
//! stubs from those same paths. protoc is the vendored one `bare-grpc-codegen` carries unless
//! `PROTOC` names another, as in the top-level `build.rs`.

use std::path::{Path, PathBuf};

/// The library's own protos, relative to `proto/`: compiled by the top-level `build.rs`.
const LIBRARY_OWN: &[&str] = &["grpc/health", "grpc/reflection"];

fn main() -> std::io::Result<()> {
    // Canonical, so that protoc maps each file to its name below the root (`edge.proto`,
    // `grpc/testing/test.proto`) and not to a path with `..` in it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../proto")
        .canonicalize()?;
    println!("cargo:rerun-if-changed={}", root.display());

    let mut protos = Vec::new();
    collect_protos(&root, &root, &mut protos)?;
    protos.sort();

    // google/protobuf/*.proto (order_management.proto imports wrappers.proto) are searched
    // after `root` by default.
    bare_grpc_codegen::compile_protos(&protos, &[root])
}

/// Every `*.proto` below `dir`, recursively, but none below [`LIBRARY_OWN`].
fn collect_protos(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let relative = path.strip_prefix(root).expect("below the root");
        if LIBRARY_OWN.iter().any(|own| relative == Path::new(own)) {
            continue;
        }
        if path.is_dir() {
            collect_protos(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
    Ok(())
}

//! Compiles the repository's test, example and bench contracts: every `.proto` under the
//! top-level `proto/` except `grpc/health/` and `grpc/reflection/`, which are the library's own
//! (its `build.rs` compiles them). One `<package>.rs` per package lands in `OUT_DIR`, plus
//! `file_descriptor_set.bin` (imports and source info included) for the servers that serve
//! reflection of these services.
//!
//! The protos stay in `proto/` rather than moving here: the Go and Python peers generate their
//! stubs from those same paths. protoc is the vendored one from `protoc-bin-vendored` unless
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
    println!("cargo:rerun-if-env-changed=PROTOC");

    let mut protos = Vec::new();
    collect_protos(&root, &root, &mut protos)?;
    protos.sort();

    let protoc = match std::env::var_os("PROTOC") {
        Some(path) => PathBuf::from(path),
        None => protoc_bin_vendored::protoc_bin_path().map_err(std::io::Error::other)?,
    };
    // google/protobuf/*.proto: order_management.proto imports wrappers.proto.
    let well_known = protoc_bin_vendored::include_path().map_err(std::io::Error::other)?;
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    bare_grpc_codegen::Builder::new()
        .protoc(protoc)
        .out_dir(&out_dir)
        .file_descriptor_set(out_dir.join("file_descriptor_set.bin"))
        .compile(&protos, &[root, well_known])
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

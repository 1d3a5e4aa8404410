//! Shared by the codegen tests: the fixture protos and how to get their
//! descriptors from a protoc.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use prost::Message;
use prost_types::{FileDescriptorProto, FileDescriptorSet};

/// The fixture files, relative to `tests/protos`, in the order protoc is given them.
pub const FIXTURES: &[&str] = &[
    "product_info.proto",
    "order_management.proto",
    "person.proto",
    "route_guide.proto",
    "chat.proto",
    "other.proto",
    "edge_cases.proto",
];

pub fn protos_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/protos")
}

pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The include directory holding google/protobuf/*.proto, shipped with the
/// vendored protoc.
pub fn well_known_include() -> PathBuf {
    protoc_bin_vendored::include_path().expect("protoc-bin-vendored include path")
}

pub fn fixture_names() -> Vec<String> {
    FIXTURES.iter().map(|s| s.to_string()).collect()
}

/// A fresh directory under cargo's per-test-target temp dir.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// Descriptors of the fixtures (imports and source info included), as
/// `protoc` writes them.
pub fn descriptors(protoc: &Path, scratch: &Path) -> Vec<FileDescriptorProto> {
    let out = scratch.join("fixtures.bin");
    let status = Command::new(protoc)
        .arg("--include_imports")
        .arg("--include_source_info")
        .arg("-o")
        .arg(&out)
        .arg("-I")
        .arg(protos_dir())
        .arg("-I")
        .arg(well_known_include())
        .args(FIXTURES)
        .status()
        .expect("run protoc");
    assert!(status.success(), "protoc failed on the fixtures");
    let bytes = std::fs::read(&out).expect("read descriptor set");
    FileDescriptorSet::decode(bytes.as_slice())
        .expect("decode descriptor set")
        .file
}

/// The vendored protoc, the one build.rs uses.
pub fn vendored_protoc() -> PathBuf {
    protoc_bin_vendored::protoc_bin_path().expect("protoc-bin-vendored has a protoc for this host")
}

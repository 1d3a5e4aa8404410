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
//! protoc is the vendored one from `protoc-bin-vendored` (a prebuilt binary
//! shipped inside the crate, so a fresh machine needs no system protoc and
//! nothing compiles) unless `PROTOC` names another. `docs/codegen.md` says
//! why this route and not a pure-Rust parser.

use std::path::{Path, PathBuf};

/// The library's own protos, directories below `proto/`.
const OWN: &[&str] = &["proto/grpc/health", "proto/grpc/reflection"];

fn main() -> std::io::Result<()> {
    for dir in OWN {
        println!("cargo:rerun-if-changed={dir}");
    }
    println!("cargo:rerun-if-env-changed=PROTOC");

    let mut protos = Vec::new();
    for dir in OWN {
        collect_protos(Path::new(dir), &mut protos)?;
    }
    protos.sort();

    let protoc = match std::env::var_os("PROTOC") {
        Some(path) => PathBuf::from(path),
        None => protoc_bin_vendored::protoc_bin_path().map_err(std::io::Error::other)?,
    };
    // google/protobuf/*.proto, for protos that import well-known types.
    let well_known = protoc_bin_vendored::include_path().map_err(std::io::Error::other)?;
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));

    bare_grpc_codegen::Builder::new()
        .protoc(protoc)
        .out_dir(&out_dir)
        .file_descriptor_set(out_dir.join("file_descriptor_set.bin"))
        .compile(&protos, &[PathBuf::from("proto"), well_known])
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

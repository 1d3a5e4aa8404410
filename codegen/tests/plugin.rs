//! The plugin route equals the library route: the real `protoc-gen-bare-grpc`
//! binary, run by the system protoc (Debian's `/usr/bin/protoc`, a different
//! protoc from the vendored one `build.rs` uses), writes exactly the files
//! `generate` returns for descriptors from the vendored protoc.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use bare_grpc_codegen::generate;

const SYSTEM_PROTOC: &str = "/usr/bin/protoc";

#[test]
fn plugin_under_system_protoc_matches_library_output() {
    assert!(
        Path::new(SYSTEM_PROTOC).exists(),
        "{SYSTEM_PROTOC} is missing: run tests/peers/setup.sh (it installs protobuf-compiler)"
    );
    let scratch = support::scratch_dir("plugin");
    let out = scratch.join("out");
    std::fs::create_dir_all(&out).expect("create plugin output dir");

    let plugin = env!("CARGO_BIN_EXE_protoc-gen-bare-grpc");
    let output = Command::new(SYSTEM_PROTOC)
        .arg(format!("--plugin=protoc-gen-bare-grpc={plugin}"))
        .arg(format!("--bare-grpc_out={}", out.display()))
        .arg("-I")
        .arg(support::protos_dir())
        .arg("-I")
        .arg(support::well_known_include())
        .args(support::FIXTURES)
        .output()
        .expect("run the system protoc");
    assert!(
        output.status.success(),
        "protoc with the plugin failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut from_plugin = BTreeMap::new();
    for entry in std::fs::read_dir(&out).expect("read plugin output") {
        let path = entry.expect("output entry").path();
        let name = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        from_plugin.insert(
            name,
            std::fs::read_to_string(&path).expect("read output file"),
        );
    }

    let files = support::descriptors(&support::vendored_protoc(), &scratch);
    let from_library: BTreeMap<String, String> = generate(&files, &support::fixture_names())
        .into_iter()
        .map(|f| (f.name, f.content))
        .collect();

    assert_eq!(
        from_plugin.keys().collect::<Vec<_>>(),
        from_library.keys().collect::<Vec<_>>(),
        "plugin and library produce different file names"
    );
    for (name, content) in &from_library {
        assert!(
            from_plugin[name] == *content,
            "{name} differs between the plugin and the library"
        );
    }
}

#[test]
fn plugin_reports_a_name_clash_through_protoc() {
    assert!(
        Path::new(SYSTEM_PROTOC).exists(),
        "{SYSTEM_PROTOC} is missing: run tests/peers/setup.sh (it installs protobuf-compiler)"
    );
    let scratch = support::scratch_dir("plugin-clash");
    std::fs::write(
        scratch.join("clash.proto"),
        "syntax = \"proto3\";\npackage clash;\nmessage M {}\n\
         service S {\n  rpc getFoo(M) returns (M);\n  rpc GetFoo(M) returns (M);\n}\n",
    )
    .expect("write clash.proto");
    let plugin = env!("CARGO_BIN_EXE_protoc-gen-bare-grpc");
    let output = Command::new(SYSTEM_PROTOC)
        .arg(format!("--plugin=protoc-gen-bare-grpc={plugin}"))
        .arg(format!("--bare-grpc_out={}", scratch.display()))
        .arg("-I")
        .arg(&scratch)
        .arg("clash.proto")
        .output()
        .expect("run the system protoc");
    assert!(
        !output.status.success(),
        "protoc accepted a method name clash"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("both become `get_foo`"),
        "unexpected error: {stderr}"
    );
}

//! The `build.rs` route as a user's build script meets it: `compile_protos` and
//! `Builder` with the vendored protoc (or `$PROTOC`), a well-known import that
//! needs no setup, the options, and protoc's rejections naming the file and line.

mod support;

use std::path::Path;

use bare_grpc_codegen::Builder;

/// Writes `text` to `dir/rel`, creating the folders.
fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("create proto dir");
    std::fs::write(path, text).expect("write proto");
}

const SHOP: &str = r#"syntax = "proto3";
package shop.v1;

import "google/protobuf/timestamp.proto";

// Takes orders.
service Orders {
  // Places one order.
  rpc Place(Order) returns (Receipt);
}

message Order { string item = 1; }
message Receipt { google.protobuf.Timestamp at = 1; }
"#;

#[test]
fn compiles_a_nested_package_with_a_well_known_import() {
    let scratch = support::scratch_dir("compile_shop");
    write(&scratch, "proto/shop/v1/shop.proto", SHOP);
    let out = scratch.join("out");
    std::fs::create_dir_all(&out).expect("out dir");
    Builder::new()
        .out_dir(&out)
        .emit_rerun_if_changed(false)
        .message_attribute(".shop.v1.Order", "#[derive(Eq, Hash)]")
        .compile(
            &[scratch.join("proto/shop/v1/shop.proto")],
            &[scratch.join("proto")],
        )
        .expect("compiles");
    let code = std::fs::read_to_string(out.join("shop.v1.rs")).expect("one file for the package");
    // prost-build's message, with the attribute asked for, and our service after it.
    assert!(code.contains("#[derive(Eq, Hash)]\n"), "{code}");
    assert!(code.contains("pub at: ::core::option::Option<::prost_types::Timestamp>"));
    assert!(code.contains("pub mod orders_grpc {"));
    // Comments from the .proto become doc comments.
    assert!(
        code.contains("    /// Takes orders.\n    pub trait Orders"),
        "{code}"
    );
    assert!(code.contains("        /// Places one order.\n        pub async fn place("));
    assert!(code.contains(r#"pub const PLACE: &str = "/shop.v1.Orders/Place";"#));
    // The descriptor set for reflection holds the file and its import.
    let set = std::fs::read(out.join("file_descriptor_set.bin")).expect("descriptor set");
    let set = <prost_types::FileDescriptorSet as prost::Message>::decode(set.as_slice())
        .expect("decodes");
    let names: Vec<&str> = set.file.iter().map(|f| f.name()).collect();
    assert_eq!(
        names,
        ["google/protobuf/timestamp.proto", "shop/v1/shop.proto"]
    );
}

#[test]
fn server_or_client_only_and_extern_paths() {
    let scratch = support::scratch_dir("compile_sides");
    write(&scratch, "proto/shop/v1/shop.proto", SHOP);
    let proto = scratch.join("proto/shop/v1/shop.proto");
    for (server, client) in [(true, false), (false, true)] {
        let out = scratch.join(format!("out-{server}-{client}"));
        std::fs::create_dir_all(&out).expect("out dir");
        Builder::new()
            .out_dir(&out)
            .emit_rerun_if_changed(false)
            .build_server(server)
            .build_client(client)
            .extern_path(".google.protobuf.Timestamp", "::my_time::Stamp")
            .compile(&[&proto], &[scratch.join("proto")])
            .expect("compiles");
        let code = std::fs::read_to_string(out.join("shop.v1.rs")).expect("generated");
        assert_eq!(code.contains("pub trait Orders"), server, "{code}");
        assert_eq!(
            code.contains("impl<T: Orders> Service for OrdersServer<T>"),
            server
        );
        assert_eq!(code.contains("pub struct OrdersClient"), client, "{code}");
        // prost-build and the service code agree on the extern type.
        assert!(code.contains("::my_time::Stamp"), "{code}");
        assert!(!code.contains("::prost_types::Timestamp"), "{code}");
    }
}

#[test]
fn a_rejected_proto_names_its_file_and_line() {
    let scratch = support::scratch_dir("compile_bad");
    // Line 6 is where protoc finds the missing `;` of line 5.
    write(
        &scratch,
        "proto/bad.proto",
        "syntax = \"proto3\";\npackage bad;\n\nmessage A {\n  int32 x = 1\n}\n",
    );
    let error = Builder::new()
        .out_dir(&scratch)
        .emit_rerun_if_changed(false)
        .compile(&[scratch.join("proto/bad.proto")], &[scratch.join("proto")])
        .expect_err("protoc rejects it");
    let text = error.to_string();
    assert!(text.contains("rejected the .proto files"), "{text}");
    assert!(text.contains("bad.proto:6:1: Expected \";\"."), "{text}");
    // Debug is the message too: a build script's `.unwrap()` shows the lines as lines.
    let debug = format!("{error:?}");
    assert!(debug.contains("bad.proto:6:1: Expected \";\"."), "{debug}");
    assert!(!debug.contains("\\n"), "{debug}");

    // An unknown import: protoc names the importing file and the line of the import.
    write(
        &scratch,
        "proto/imports.proto",
        "syntax = \"proto3\";\n\nimport \"nowhere/missing.proto\";\n",
    );
    let text = Builder::new()
        .out_dir(&scratch)
        .emit_rerun_if_changed(false)
        .compile(
            &[scratch.join("proto/imports.proto")],
            &[scratch.join("proto")],
        )
        .expect_err("protoc rejects it")
        .to_string();
    assert!(
        text.contains("nowhere/missing.proto: File not found."),
        "{text}"
    );
    assert!(
        text.contains("imports.proto:3:1: Import \"nowhere/missing.proto\" was not found"),
        "{text}"
    );
}

#[test]
fn a_missing_protoc_says_which_path_was_tried() {
    let scratch = support::scratch_dir("compile_no_protoc");
    write(&scratch, "proto/shop/v1/shop.proto", SHOP);
    let text = Builder::new()
        .protoc(scratch.join("no-such-protoc"))
        .out_dir(&scratch)
        .emit_rerun_if_changed(false)
        .compile(
            &[scratch.join("proto/shop/v1/shop.proto")],
            &[scratch.join("proto")],
        )
        .expect_err("nothing to run")
        .to_string();
    assert!(text.contains("could not run protoc at"), "{text}");
    assert!(text.contains("no-such-protoc"), "{text}");
    assert!(text.contains("$PROTOC"), "{text}");
}

//! Golden files: the generated code for the fixture protos, checked in under
//! `tests/golden/` so a change to the output shows up in review.
//!
//! Re-bless after an intended change with
//! `BLESS=1 cargo test -p bare-grpc-codegen --test golden`, then read the diff.

mod support;

use std::collections::BTreeSet;

use bare_grpc_codegen::generate;

#[test]
fn generated_code_matches_golden_files() {
    let scratch = support::scratch_dir("golden");
    let files = support::descriptors(&support::vendored_protoc(), &scratch);
    let generated = generate(&files, &support::fixture_names());
    let golden = support::golden_dir();
    let bless = std::env::var_os("BLESS").is_some();

    if bless {
        for entry in std::fs::read_dir(&golden).expect("read golden dir") {
            std::fs::remove_file(entry.expect("golden entry").path()).expect("remove old golden");
        }
    }
    let mut mismatches = Vec::new();
    for file in &generated {
        let path = golden.join(&file.name);
        if bless {
            std::fs::write(&path, &file.content).expect("write golden file");
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != file.content {
            mismatches.push(first_difference(&file.name, &expected, &file.content));
        }
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(&golden)
        .expect("read golden dir")
        .map(|e| {
            e.expect("golden entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let produced: BTreeSet<String> = generated.iter().map(|f| f.name.clone()).collect();
    assert_eq!(
        on_disk, produced,
        "golden files and generated files differ in names"
    );
    assert!(
        mismatches.is_empty(),
        "generated code differs from tests/golden (BLESS=1 to accept):\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn one_file_per_package_with_services() {
    let scratch = support::scratch_dir("packages");
    let files = support::descriptors(&support::vendored_protoc(), &scratch);
    let generated = generate(&files, &support::fixture_names());
    let names: Vec<&str> = generated.iter().map(|f| f.name.as_str()).collect();
    // person.proto and other.proto declare no service, so no file of their own;
    // route_guide.proto has no package, so `_`.
    assert_eq!(
        names,
        [
            "ecommerce.bare_grpc.rs",
            "_.bare_grpc.rs",
            "grpc.bare_grpc.rs",
            "edge.cases.bare_grpc.rs"
        ]
    );
    let ecommerce = &generated[0].content;
    assert!(ecommerce.contains("pub mod product_info_grpc {"));
    assert!(ecommerce.contains("pub mod order_management_grpc {"));
    assert!(ecommerce.contains("\"/ecommerce.ProductInfo/addProduct\""));
    assert!(generated[1].content.contains("\"/RouteGuide/GetPerson\""));
    assert!(
        generated[1]
            .content
            .contains("\"/RouteGuide/listAddresses\"")
    );
}

#[test]
fn only_requested_files_are_generated() {
    let scratch = support::scratch_dir("requested");
    let files = support::descriptors(&support::vendored_protoc(), &scratch);
    let generated = generate(&files, &["chat.proto".to_string()]);
    assert_eq!(generated.len(), 1);
    assert_eq!(generated[0].name, "grpc.bare_grpc.rs");
}

#[test]
fn docs_show_the_product_info_sample_verbatim() {
    let golden = std::fs::read_to_string(support::golden_dir().join("ecommerce.bare_grpc.rs"))
        .expect("read ecommerce golden file");
    let next = golden
        .find(" from order_management.proto. Do not edit.")
        .expect("order_management follows product_info");
    let end = golden[..next]
        .rfind("// @generated")
        .expect("a header line");
    let sample = golden[..end].trim_end();
    let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/codegen.md");
    let docs = std::fs::read_to_string(docs).expect("read docs/codegen.md");
    assert!(
        docs.contains(&format!("```rust\n{sample}\n```")),
        "docs/codegen.md no longer shows the generated ProductInfo module: paste it from \
         codegen/tests/golden/ecommerce.bare_grpc.rs"
    );
}

fn first_difference(name: &str, expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let at = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    format!(
        "{name}: first difference at line {}\n  golden:    {:?}\n  generated: {:?}",
        at + 1,
        e.get(at),
        a.get(at)
    )
}

//! The emitted code is already in rustfmt's form: rustfmt leaves the golden
//! files, and services whose names and types sweep through every width where
//! a line break moves, unchanged.
//!
//! Needs `rustfmt` (the CI toolchain has it; `rustup component add rustfmt`
//! otherwise). rustfmt runs with its defaults, edition 2024, whatever
//! rustfmt.toml the checkout has, because that is the form the generated code
//! promises.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use bare_grpc_codegen::ir::{Method, Service};

fn rustfmt(source: &str) -> String {
    let scratch = support::scratch_dir(&format!("rustfmt-{}", source.len()));
    let config = scratch.join("rustfmt.toml");
    std::fs::write(&config, "").expect("write empty rustfmt.toml");
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2024", "--emit", "stdout", "--config-path"])
        .arg(&config)
        .current_dir(&scratch)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("rustfmt not found: install it with `rustup component add rustfmt`");
    child
        .stdin
        .take()
        .expect("rustfmt stdin")
        .write_all(source.as_bytes())
        .expect("write to rustfmt");
    let output = child.wait_with_output().expect("rustfmt output");
    assert!(
        output.status.success(),
        "rustfmt rejected the generated code: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("rustfmt output is UTF-8")
}

/// The region where `expected` and `actual` differ: common leading and
/// trailing lines cut away, at most 40 lines of each side shown.
fn differences(expected: &str, actual: &str) -> Vec<String> {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let head = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    if head == e.len() && head == a.len() {
        return Vec::new();
    }
    let tail = e[head..]
        .iter()
        .rev()
        .zip(a[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let show = |lines: &[&str]| {
        lines
            .iter()
            .take(40)
            .copied()
            .collect::<Vec<_>>()
            .join("\n    ")
    };
    vec![format!(
        "from line {}:\n  ours:\n    {}\n  rustfmt:\n    {}",
        head + 1,
        show(&e[head..e.len() - tail]),
        show(&a[head..a.len() - tail])
    )]
}

fn assert_rustfmt_stable(what: &str, source: &str) {
    let formatted = rustfmt(source);
    let diffs = differences(source, &formatted);
    assert!(
        diffs.is_empty(),
        "rustfmt changes {what}:\n{}",
        diffs.join("\n")
    );
    assert_eq!(source, formatted, "rustfmt changes {what} (whitespace)");
}

#[test]
fn golden_files_are_rustfmt_stable() {
    for entry in std::fs::read_dir(support::golden_dir()).expect("read golden dir") {
        let path = entry.expect("golden entry").path();
        let source = std::fs::read_to_string(&path).expect("read golden file");
        assert_rustfmt_stable(&path.display().to_string(), &source);
    }
}

fn method(name: &str, input: &str, output: &str, cs: bool, ss: bool) -> Method {
    Method {
        proto_name: name.to_string(),
        rust_name: bare_grpc_codegen::names::method_name(name),
        input_type: input.to_string(),
        output_type: output.to_string(),
        client_streaming: cs,
        server_streaming: ss,
        comments: Vec::new(),
    }
}

/// One service per step: a method of each call kind whose name is `n` long,
/// with message paths whose length moves with `n` at a different pace.
fn sweep_service(
    service_name: &str,
    package: &str,
    n: usize,
    paths: &dyn Fn(usize) -> (String, String),
) -> Service {
    let name = format!("M{}", "x".repeat(n - 1));
    let (input, output) = paths(n);
    let methods = [(false, false), (false, true), (true, false), (true, true)]
        .iter()
        .enumerate()
        .map(|(i, &(cs, ss))| method(&format!("{name}{i}"), &input, &output, cs, ss))
        .collect();
    Service {
        package: package.to_string(),
        proto_name: service_name.to_string(),
        rust_name: service_name.to_string(),
        file: "sweep.proto".to_string(),
        comments: Vec::new(),
        methods,
    }
}

/// The services for n = 1..=60 in one file (past that, type paths are so wide
/// that rustfmt 1.9 itself emits `>{`, which it then reformats). Their modules share a name,
/// which rustfmt (a parser, not a compiler) does not mind.
fn sweep(service_name: &str, package: &str, paths: &dyn Fn(usize) -> (String, String)) -> String {
    (1..=60)
        .map(|n| bare_grpc_codegen::render(&sweep_service(service_name, package, n, paths)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn method_name_widths() {
    let source = sweep("Svc", "p", &|_| {
        ("super::In".to_string(), "super::Out".to_string())
    });
    assert_rustfmt_stable("the method-name sweep", &source);
}

#[test]
fn type_path_widths() {
    let source = sweep("Svc", "some.pkg", &|n| {
        let input = format!("super::super::{}::Req", "a".repeat(n));
        let output = format!("super::{}Resp", "B".repeat(n / 2 + 1));
        (input, output)
    });
    assert_rustfmt_stable("the type-path sweep", &source);
}

#[test]
fn service_names_that_shadow_the_runtime() {
    for shadowing in ["Response", "Result", "Send", "Status", "Streaming"] {
        let source = sweep(shadowing, "edge", &|n| {
            (
                format!("super::{}", "I".repeat(n)),
                "::prost::alloc::string::String".to_string(),
            )
        });
        assert_rustfmt_stable(shadowing, &source);
    }
}

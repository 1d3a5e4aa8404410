//! `docs/spec-map.md` stays true: every file it names exists, every `name()` after a file is a
//! function in it, and every test it names after a test file is a test function there.
//!
//! How a cell is read (the page's columns are rule | implemented in | proved by): its code
//! spans, left to right. A span ending in `.rs` is the current file; a span ending in `()` is a
//! function of the current file; in the last column, any other span is a test function of the
//! current file, or, for the interop suites (files that expand `interop_cases!`), one of the
//! cases `tests/common/interop.rs` generates. A row without a test must say why (`—` with
//! **not implemented**, **differs** or a reason).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

const PAGE: &str = "docs/spec-map.md";

/// Does `source` define a function called `name`?
fn defines(source: &str, name: &str) -> bool {
    source.match_indices("fn ").any(|(at, _)| {
        let rest = &source[at + 3..];
        rest.starts_with(name)
            && !rest[name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// The code spans of a cell.
fn spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}

/// The case names `interop_cases!` generates.
fn interop_cases() -> BTreeSet<String> {
    let source = fs::read_to_string("tests/common/interop.rs").unwrap();
    source
        .lines()
        .filter_map(|l| l.trim().strip_prefix("fn "))
        .filter_map(|rest| rest.strip_suffix("() {"))
        .map(str::to_owned)
        .collect()
}

/// The rows of each `## ` section: section title → rows, each a list of cells.
fn sections(page: &str) -> Vec<(String, Vec<Vec<String>>)> {
    let mut out: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for line in page.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            out.push((title.to_owned(), Vec::new()));
        } else if line.starts_with("| ") && !line.starts_with("| rule |") {
            let cells: Vec<String> = line
                .trim()
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect();
            out.last_mut().expect("a row under a section").1.push(cells);
        }
    }
    out
}

#[test]
fn every_file_function_and_test_the_spec_map_names_exists() {
    let page = fs::read_to_string(PAGE).expect("read the page");
    let cases = interop_cases();
    assert_eq!(cases.len(), 18, "the interop macro's cases");
    let mut problems = Vec::new();
    let (mut functions, mut tests) = (0, 0);
    for (title, rows) in sections(&page) {
        for (n, row) in rows.iter().enumerate() {
            let at = format!("{title}, row {}", n + 1);
            if row.len() != 3 {
                problems.push(format!("{at}: {} cells, expected 3", row.len()));
                continue;
            }
            for (column, cell) in row.iter().enumerate().skip(1) {
                let mut current: Option<(String, String)> = None;
                let mut named_tests = 0;
                for span in spans(cell) {
                    if span.ends_with(".rs") {
                        match fs::read_to_string(span) {
                            Ok(source) => current = Some((span.to_owned(), source)),
                            Err(_) => problems.push(format!("{at}: no file {span}")),
                        }
                    } else if let Some(name) = span.strip_suffix("()") {
                        let name = name.rsplit("::").next().unwrap();
                        let Some((file, source)) = &current else {
                            problems.push(format!("{at}: {span} follows no file"));
                            continue;
                        };
                        if !defines(source, name) {
                            problems.push(format!("{at}: {file} has no fn {name}"));
                        }
                        functions += 1;
                    } else if column == 2
                        && span
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    {
                        let Some((file, source)) = &current else {
                            problems.push(format!("{at}: test {span} follows no file"));
                            continue;
                        };
                        let generated = source.contains("interop_cases!(") && cases.contains(span);
                        if !generated && !defines(source, span) {
                            problems.push(format!("{at}: {file} has no test {span}"));
                        }
                        named_tests += 1;
                        tests += 1;
                    }
                }
                if column == 2 && named_tests == 0 && !cell.starts_with('—') {
                    problems.push(format!("{at}: names no test and does not say why (—)"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{PAGE} is out of date:\n{}",
        problems.join("\n")
    );
    assert!(
        functions > 100 && tests > 100,
        "{functions} functions, {tests} tests: is the parser broken?"
    );
}

/// Every interop case has its row, and every section the issue asks for is there.
#[test]
fn the_spec_map_covers_every_document_and_interop_case() {
    let page = fs::read_to_string(PAGE).expect("read the page");
    let sections = sections(&page);
    for (prefix, at_least) in [
        ("PROTOCOL-HTTP2 § Requests", 15),
        ("PROTOCOL-HTTP2 § Responses", 8),
        ("PROTOCOL-HTTP2 § Data Frames", 10),
        ("statuscodes.md", 15),
        ("compression.md", 8),
        ("Health checking", 4),
        ("Server reflection", 6),
        ("Interop cases", 18),
    ] {
        let rows = sections
            .iter()
            .find(|(title, _)| title.starts_with(prefix))
            .map_or(0, |(_, rows)| rows.len());
        assert!(
            rows >= at_least,
            "{PAGE}: section {prefix:?} has {rows} rows, expected at least {at_least}"
        );
    }
    let interop = &sections
        .iter()
        .find(|(t, _)| t.starts_with("Interop"))
        .unwrap()
        .1;
    for case in interop_cases() {
        assert!(
            interop
                .iter()
                .any(|row| row[0].starts_with(&format!("\"{case}\""))),
            "{PAGE}: no row for the interop case {case}"
        );
    }
    assert!(Path::new(PAGE).exists());
}

//! `docs/architecture.md` stays true: every function it names next to a file exists in that
//! file, every file it names exists, and its folder tree lists every source file.
//!
//! How a name is read: on each line of the page, a token ending in `.rs` (a full `src/…` path,
//! or a short one such as `sink.rs` or `fast/mod.rs` that ends exactly one source path) is the
//! current file; every `name()` after it on the same line must be a `fn name` in that file. A
//! `name(args)` is prose, not a reference, and is not checked.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

const DOC: &str = "docs/architecture.md";

/// Every `src/**/*.rs`, as a path from the crate root with `/` separators.
fn source_files() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in fs::read_dir(dir).expect("read src/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.insert(path.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut files = BTreeSet::new();
    walk(Path::new("src"), &mut files);
    files
}

/// The source file a token names: itself when it is a full path, else the one source path
/// that ends with `/token`.
fn resolve(token: &str, files: &BTreeSet<String>) -> Result<String, String> {
    if files.contains(token) {
        return Ok(token.to_owned());
    }
    let suffix = format!("/{token}");
    let matches: Vec<&String> = files.iter().filter(|f| f.ends_with(&suffix)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(format!("`{token}` names no source file")),
        many => Err(format!("`{token}` is ambiguous: {many:?}")),
    }
}

/// The tokens of a line: runs of identifier characters, `/`, `.` and a trailing `()`.
fn tokens(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.' {
            current.push(c);
        } else {
            if c == '(' && chars.get(i + 1) == Some(&')') && !current.is_empty() {
                current.push_str("()");
                i += 1;
            }
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
        }
        i += 1;
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Does `source` define a function called `name`?
fn defines(source: &str, name: &str) -> bool {
    source.match_indices("fn ").any(|(at, _)| {
        let rest = &source[at + 3..];
        rest.starts_with(name)
            && !rest[name.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn every_function_the_page_names_exists_in_the_file_it_names() {
    let doc = fs::read_to_string(DOC).expect("read the page");
    let files = source_files();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (n, line) in doc.lines().enumerate() {
        let mut current: Option<String> = None;
        for token in tokens(line) {
            let token = token.trim_end_matches('.');
            if let Some(name) = token.strip_suffix("()") {
                let name = name.rsplit(['.', '/']).next().unwrap_or(name);
                let Some(file) = &current else { continue };
                let source = fs::read_to_string(file).expect("read a source file");
                if !defines(&source, name) {
                    problems.push(format!("line {}: `{name}()` is not a fn in {file}", n + 1));
                }
                checked += 1;
            } else if token.ends_with(".rs") && !token.starts_with("tests/") {
                match resolve(token, &files) {
                    Ok(file) => current = Some(file),
                    Err(why) => problems.push(format!("line {}: {why}", n + 1)),
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{DOC} is out of date:\n{}",
        problems.join("\n")
    );
    // The page's diagrams and table name dozens; a parser that found none would pass anything.
    assert!(
        checked > 40,
        "only {checked} function names found: is the parser broken?"
    );
}

#[test]
fn the_folder_tree_lists_every_source_file_and_nothing_else() {
    let doc = fs::read_to_string(DOC).expect("read the page");
    let section = doc
        .split("## The folder tree")
        .nth(1)
        .expect("the page has a folder tree section");
    let block = section
        .split("```")
        .nth(1)
        .expect("the folder tree is a code block");
    let listed: BTreeSet<String> = block
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|path| path.starts_with("src/"))
        .map(str::to_owned)
        .collect();
    let files = source_files();
    let missing: Vec<_> = files.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&files).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "{DOC}'s folder tree: missing {missing:?}, no such file {stale:?}"
    );
}

#[test]
fn the_crate_docs_reading_order_names_every_source_file() {
    let lib = fs::read_to_string("src/lib.rs").expect("read src/lib.rs");
    let doc: String = lib
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line))
        .collect::<Vec<_>>()
        .join("\n");
    let order = doc
        .split("## Reading order")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("src/lib.rs has a reading order section");
    let files = source_files();
    let mut named = BTreeSet::from(["src/lib.rs".to_owned()]);
    // A row names files relative to the folder of its first `dir/file.rs`, or at the top.
    for row in order.lines().filter(|line| line.starts_with('|')) {
        let Some(cell) = row.split('|').nth(2) else {
            continue;
        };
        let mut dir = String::new();
        for token in cell.split('`').skip(1).step_by(2) {
            if let Some((folder, _)) = token.rsplit_once('/') {
                dir = format!("{folder}/");
            }
            let file = token.rsplit('/').next().unwrap_or(token);
            let in_dir = format!("src/{dir}{file}");
            let top = format!("src/{file}");
            if files.contains(&in_dir) {
                named.insert(in_dir);
            } else if files.contains(&top) {
                named.insert(top);
            }
        }
    }
    let missing: Vec<_> = files.difference(&named).collect();
    assert!(
        missing.is_empty(),
        "src/lib.rs's reading order leaves out {missing:?}"
    );
}

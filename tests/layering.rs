//! The import graph of `src/` points one way, bottom to top, with no cycle.
//!
//! The test reads every `src/**/*.rs`, blanks out comments (so a doc-link such as
//! [`crate::server`] names nothing), string and character literals, and `#[cfg(test)]` items
//! (a unit test may drive a lower layer from a higher one: the server's tests use a client as
//! their peer). What is left is scanned for the paths the code names: `use` trees (grouped
//! forms included), in-code paths such as `crate::lock::lock(..)`, and paths that start at
//! `super::`, `self::` or a child module, all made absolute. A path that goes through a `use`
//! (a re-export, or a plain import a child reaches through `super::`) is followed to the module
//! that defines the item, so an edge always ends where the code lives.
//!
//! Two checks on that graph:
//!
//! 1. Between top-level modules: each names only modules below it in [`LAYERS`].
//! 2. Inside each directory module (`server/`, `client/`, `client/fast/`, …): no cycle between
//!    its sibling files, a child directory counted as one of them. The directory's root
//!    (`mod.rs`, or `gzip.rs` for `gzip/`) is not a sibling: it declares the others, presents
//!    their items and holds what they share (the server's `Shared`, the channel's options), so
//!    its edges both ways are the directory's frame; its own place is checked by rule 1.
//!
//! A failure names the file, the line and the path that points the wrong way.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level modules, bottom to top, with why each sits where it does. A module may name
/// only modules that come before it. `lib.rs` (the crate root) is above all of them: it
/// declares them and re-exports the public surface.
const LAYERS: &[(&str, &str)] = &[
    (
        "lock",
        "one way to take a mutex; names nothing of the crate",
    ),
    ("first", "a two-future select; names nothing of the crate"),
    (
        "test_rng",
        "the property tests' generator (cfg(test)); names nothing of the crate",
    ),
    (
        "base64",
        "the `-bin` value encoding; names nothing of the crate",
    ),
    (
        "headers",
        "the header-name constants every layer above spells",
    ),
    (
        "metadata",
        "ASCII and `-bin` keys over a header map; refuses a bad key as `InvalidMetadata`",
    ),
    (
        "status",
        "`Code` and `Status` (which carries trailing `Metadata`), the error of every layer above",
    ),
    (
        "timeout",
        "the `grpc-timeout` value; rejects a bad one with a `Status`",
    ),
    (
        "wire",
        "the 5-byte prefix and the message decoder; fails with a `Status`",
    ),
    (
        "gzip",
        "the RFC 1952 container around DEFLATE, bytes in and out",
    ),
    (
        "compression",
        "`grpc-encoding`: identity or `gzip`, errors as a `Status`",
    ),
    (
        "codec",
        "one protobuf message into and out of its prefix (`wire`, `compression`)",
    ),
    (
        "peer",
        "`Peer`, `TlsInfo`: who calls (address, verified TLS identity); names nothing above",
    ),
    (
        "call",
        "`Request`, `Response`, `CallKind`: metadata and a message",
    ),
    (
        "interceptor",
        "hooks around a call, both sides; sees `CallKind` and `Metadata`",
    ),
    (
        "transport",
        "h2 connections and streams: accept loop, writer, h2-error mapping",
    ),
    ("server", "the server's call pipeline over `transport`"),
    (
        "client",
        "`Channel` and the client's calls over `transport`",
    ),
    (
        "codegen",
        "the surface generated code names: re-exports of `call`, `server`, `client`",
    ),
    (
        "services",
        "health and reflection: generated services, so above `codegen`",
    ),
    (
        "testing",
        "an in-process channel: names `server` and `client` only",
    ),
    (
        "metrics",
        "Prometheus metrics: an interceptor pair and an HTTP endpoint on the side",
    ),
    (
        "wiretap",
        "the grpc-wiretap binary's own tree (not a library module); uses the public surface only",
    ),
    (
        "fuzz",
        "the fuzz targets' entry points (hidden feature): reach into every wire layer",
    ),
];

#[test]
fn top_level_modules_point_down_the_layers() {
    let crate_graph = CrateGraph::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let rank: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .map(|(i, (name, _))| (*name, i))
        .collect();

    let mut wrong = Vec::new();
    for top in crate_graph.modules.iter().filter(|m| m.len() == 1) {
        if !rank.contains_key(top[0].as_str()) {
            wrong.push(format!(
                "src/{0}: the module `{0}` has no place in LAYERS (tests/layering.rs)",
                top[0]
            ));
        }
    }
    for edge in &crate_graph.edges {
        let (Some(from), Some(to)) = (edge.from.first(), edge.to.first()) else {
            continue; // the crate root, above every layer
        };
        if from == to {
            continue;
        }
        let (Some(&from_rank), Some(&to_rank)) = (rank.get(from.as_str()), rank.get(to.as_str()))
        else {
            continue; // reported above
        };
        if to_rank > from_rank {
            wrong.push(format!(
                "{}:{}: `{}` names `{}`, which is above `{from}` in LAYERS",
                edge.file,
                edge.line,
                edge.written,
                edge.to.join("::"),
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that point up the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_cycle_between_the_files_of_a_directory() {
    let crate_graph = CrateGraph::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let mut wrong = Vec::new();
    for dir in &crate_graph.directories {
        // The directory's nodes: each child module, a child directory counted as one node;
        // the directory's root is none of them.
        let node_of = |module: &[String]| -> Option<String> {
            if module.len() <= dir.len() || module[..dir.len()] != dir[..] {
                return None;
            }
            Some(module[dir.len()].clone())
        };
        let mut graph: BTreeMap<String, BTreeMap<String, &Edge>> = BTreeMap::new();
        for edge in &crate_graph.edges {
            let (Some(from), Some(to)) = (node_of(&edge.from), node_of(&edge.to)) else {
                continue;
            };
            if from == to {
                continue;
            }
            graph.entry(from).or_default().entry(to).or_insert(edge);
        }
        if let Some(cycle) = find_cycle(&graph) {
            let dir_name = format!("src/{}/", dir.join("/"));
            let mut lines = vec![format!(
                "a cycle between the files of {dir_name}: {}",
                cycle.join(" -> ")
            )];
            for pair in cycle.windows(2) {
                let edge = graph[&pair[0]][&pair[1]];
                lines.push(format!(
                    "  {}:{}: `{}` (names {})",
                    edge.file,
                    edge.line,
                    edge.written,
                    edge.to.join("::")
                ));
            }
            wrong.push(lines.join("\n"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A cycle in `graph` as the list of its nodes, first one repeated at the end.
fn find_cycle<V>(graph: &BTreeMap<String, BTreeMap<String, V>>) -> Option<Vec<String>> {
    fn visit<V>(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, V>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// One path the code names, resolved to the module that defines what it names.
struct Edge {
    /// The module whose code names the path.
    from: Vec<String>,
    /// The module that defines the item.
    to: Vec<String>,
    /// The file and line, for the failure message.
    file: String,
    line: usize,
    /// The path as written (a `use` tree's leaf made whole).
    written: String,
}

/// A path as the scan found it, before resolution.
struct Named {
    module: Vec<String>,
    file: String,
    line: usize,
    /// The path as written.
    segments: Vec<String>,
    /// Written in a `use` item (which makes its last segment a name of `module`).
    in_use: bool,
}

struct CrateGraph {
    modules: BTreeSet<Vec<String>>,
    /// Modules with a directory of their own (`src/server/`, `src/gzip/`, …).
    directories: Vec<Vec<String>>,
    edges: Vec<Edge>,
}

impl CrateGraph {
    fn read(src: &Path) -> CrateGraph {
        let mut files = Vec::new();
        collect_files(src, &mut files);
        files.sort();

        let mut modules = BTreeSet::new();
        let mut directories = BTreeSet::new();
        let mut named = Vec::new();
        let mut test_only = BTreeSet::new();
        for file in &files {
            let module = module_of(src, file);
            let shown = format!("src/{}", file.strip_prefix(src).unwrap().display());
            let text = fs::read_to_string(file).unwrap();
            let tokens = blank_test_items(tokenize(&strip(&text)), &module, &mut test_only);
            scan(&tokens, &module, &shown, &mut modules, &mut named);
            if module.len() > 1 {
                directories.insert(module[..module.len() - 1].to_vec());
            }
            modules.insert(module);
        }
        // A file only a `#[cfg(test)] mod x;` declares is test code too.
        modules.retain(|m| !test_only.iter().any(|t| m.starts_with(t)));
        named.retain(|n| !test_only.iter().any(|t| n.module.starts_with(t)));

        // What each module's `use` items bring in: name -> absolute path.
        let mut imports: BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>> = BTreeMap::new();
        for n in named.iter().filter(|n| n.in_use) {
            if let Some(path) = absolute(&n.segments, &n.module, &modules)
                && let Some(last) = path.last()
                && last != "*"
            {
                imports
                    .entry(n.module.clone())
                    .or_default()
                    .insert(last.clone(), path);
            }
        }

        let mut edges = Vec::new();
        for n in &named {
            let Some(path) = absolute(&n.segments, &n.module, &modules) else {
                continue;
            };
            let to = defining_module(&path, &modules, &imports);
            edges.push(Edge {
                from: n.module.clone(),
                to,
                file: n.file.clone(),
                line: n.line,
                written: n.segments.join("::"),
            });
        }
        CrateGraph {
            modules,
            directories: directories.into_iter().collect(),
            edges,
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/lib.rs` -> [], `src/a.rs` and `src/a/mod.rs` -> [a], `src/a/b.rs` -> [a, b].
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let mut parts: Vec<String> = file
        .strip_prefix(src)
        .unwrap()
        .with_extension("")
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The path made absolute from the crate root, or `None` for a path that leaves the crate
/// (`std::`, `h2::`, a type's associated item, a local variable's field).
fn absolute(
    segments: &[String],
    module: &[String],
    modules: &BTreeSet<Vec<String>>,
) -> Option<Vec<String>> {
    let first = segments.first()?;
    let (mut base, rest) = match first.as_str() {
        "crate" | "bare_grpc" => (Vec::new(), &segments[1..]),
        "self" => (module.to_vec(), &segments[1..]),
        "super" => {
            let mut base = module.to_vec();
            let mut rest = segments;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            (base, rest)
        }
        child => {
            let mut path = module.to_vec();
            path.push(child.to_string());
            if !modules.contains(&path) {
                return None;
            }
            (module.to_vec(), segments)
        }
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The module that defines what `path` names: the longest prefix that is a module, followed
/// through that module's `use` items when the next segment is a name it imports.
fn defining_module(
    path: &[String],
    modules: &BTreeSet<Vec<String>>,
    imports: &BTreeMap<Vec<String>, BTreeMap<String, Vec<String>>>,
) -> Vec<String> {
    let mut path = path.to_vec();
    for _ in 0..16 {
        let module_len = (0..=path.len())
            .rev()
            .find(|&n| modules.contains(&path[..n].to_vec()))
            .unwrap_or(0);
        let module = path[..module_len].to_vec();
        let Some(name) = path.get(module_len) else {
            return module;
        };
        match imports.get(&module).and_then(|m| m.get(name)) {
            Some(target) if target != &path[..=module_len] => {
                let mut next = target.clone();
                next.extend(path[module_len + 1..].iter().cloned());
                path = next;
            }
            _ => return module,
        }
    }
    panic!("a `use` loop around {}", path.join("::"));
}

/// The source with comments, string literals and character literals replaced by spaces
/// (newlines kept, so lines still count).
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        let prev_ident = i > 0 && is_ident(chars[i - 1]);
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && (!prev_ident || (i == 1 || !is_ident(chars[i - 2])) && chars[i - 1] == 'b')
            && raw_string_end(&chars, i + 1).is_some()
        {
            let end = raw_string_end(&chars, i + 1).unwrap();
            while i < end {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '"' {
            blank(&mut out, c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
            if i < chars.len() {
                blank(&mut out, chars[i]);
                i += 1;
            }
        } else if c == '\'' && !prev_ident {
            // A character literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
            let end = if next == Some('\\') {
                (i + 2..chars.len()).find(|&j| chars[j] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    while i <= end {
                        blank(&mut out, chars[i]);
                        i += 1;
                    }
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Where the raw string whose `#`s or opening quote start at `at` ends (one past it).
fn raw_string_end(chars: &[char], at: usize) -> Option<usize> {
    let hashes = chars[at..].iter().take_while(|&&c| c == '#').count();
    if chars.get(at + hashes) != Some(&'"') {
        return None;
    }
    let mut i = at + hashes + 1;
    while i < chars.len() {
        if chars[i] == '"'
            && chars[i + 1..]
                .iter()
                .take(hashes)
                .filter(|&&c| c == '#')
                .count()
                == hashes
        {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

#[derive(Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`
    PathSep,
    Punct(char),
}

fn tokenize(text: &str) -> Vec<(Tok, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if is_ident(c) {
            let start = i;
            while i < chars.len() && is_ident(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let word = word.strip_prefix("r#").map(str::to_string).unwrap_or(word);
            tokens.push((Tok::Ident(word), line));
        } else if c == ':' && chars.get(i + 1) == Some(&':') {
            tokens.push((Tok::PathSep, line));
            i += 2;
        } else {
            tokens.push((Tok::Punct(c), line));
            i += 1;
        }
    }
    tokens
}

fn ident(tokens: &[(Tok, usize)], i: usize) -> Option<&str> {
    match tokens.get(i) {
        Some((Tok::Ident(s), _)) => Some(s),
        _ => None,
    }
}

fn is(tokens: &[(Tok, usize)], i: usize, tok: &Tok) -> bool {
    tokens.get(i).is_some_and(|(t, _)| t == tok)
}

/// The tokens without the items under `#[cfg(test)]`. A `#[cfg(test)] mod x;` puts the file
/// of `x` in `test_only`.
fn blank_test_items(
    tokens: Vec<(Tok, usize)>,
    module: &[String],
    test_only: &mut BTreeSet<Vec<String>>,
) -> Vec<(Tok, usize)> {
    let pattern = [
        Tok::Punct('#'),
        Tok::Punct('['),
        Tok::Ident("cfg".into()),
        Tok::Punct('('),
        Tok::Ident("test".into()),
        Tok::Punct(')'),
        Tok::Punct(']'),
    ];
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        if !(0..pattern.len()).all(|k| is(&tokens, i + k, &pattern[k])) {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        i += pattern.len();
        // Further attributes on the same item.
        while is(&tokens, i, &Tok::Punct('#')) && is(&tokens, i + 1, &Tok::Punct('[')) {
            i = after_group(&tokens, i + 1);
        }
        // A `mod x;` declaration of a test-only file.
        let mut k = i;
        while matches!(ident(&tokens, k), Some("pub" | "crate" | "super" | "in"))
            || is(&tokens, k, &Tok::Punct('('))
            || is(&tokens, k, &Tok::Punct(')'))
        {
            k += 1;
        }
        if ident(&tokens, k) == Some("mod")
            && let Some(name) = ident(&tokens, k + 1)
            && is(&tokens, k + 2, &Tok::Punct(';'))
        {
            let mut path = module.to_vec();
            path.push(name.to_string());
            test_only.insert(path);
        }
        // The item ends at a `;` or at the close of its first brace block.
        while i < tokens.len() {
            match &tokens[i].0 {
                Tok::Punct(';') => {
                    i += 1;
                    break;
                }
                Tok::Punct('{') => {
                    i = after_group(&tokens, i);
                    break;
                }
                Tok::Punct('(' | '[') => i = after_group(&tokens, i),
                _ => i += 1,
            }
        }
    }
    out
}

/// The index after the bracket group that opens at `open`.
fn after_group(tokens: &[(Tok, usize)], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < tokens.len() {
        match tokens[i].0 {
            Tok::Punct('(' | '[' | '{') => depth += 1,
            Tok::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}

/// Collects the inline modules (`mod x { .. }`) and every path the code names.
fn scan(
    tokens: &[(Tok, usize)],
    file_module: &[String],
    file: &str,
    modules: &mut BTreeSet<Vec<String>>,
    named: &mut Vec<Named>,
) {
    // Inline modules first, so that paths to them resolve wherever they are named.
    let mut stack: Vec<(Vec<String>, usize)> = Vec::new();
    let mut inline_at = BTreeMap::new();
    let mut depth = 0;
    let mut module = file_module.to_vec();
    for i in 0..tokens.len() {
        match tokens[i].0 {
            Tok::Punct('{') => {
                depth += 1;
                if i >= 2
                    && ident(tokens, i - 2) == Some("mod")
                    && let Some(name) = ident(tokens, i - 1)
                {
                    stack.push((module.clone(), depth));
                    module.push(name.to_string());
                    modules.insert(module.clone());
                }
            }
            Tok::Punct('}') => {
                if stack.last().is_some_and(|(_, d)| *d == depth) {
                    module = stack.pop().unwrap().0;
                }
                depth -= 1;
            }
            _ => {}
        }
        inline_at.insert(i, module.clone());
    }

    let mut i = 0;
    while i < tokens.len() {
        let module = &inline_at[&i];
        if ident(tokens, i) == Some("use") {
            let mut k = i + 1;
            if is(tokens, k, &Tok::PathSep) {
                k += 1;
            }
            let mut leaves = Vec::new();
            use_tree(tokens, &mut k, Vec::new(), &mut leaves);
            for (segments, line) in leaves {
                named.push(Named {
                    module: module.clone(),
                    file: file.to_string(),
                    line,
                    segments,
                    in_use: true,
                });
            }
            i = k;
            continue;
        }
        let starts_path = ident(tokens, i).is_some()
            && is(tokens, i + 1, &Tok::PathSep)
            && (i == 0
                || !(is(tokens, i - 1, &Tok::PathSep) || is(tokens, i - 1, &Tok::Punct('$')))
                || ident(tokens, i) == Some("bare_grpc"));
        if starts_path {
            let mut segments = Vec::new();
            let mut k = i;
            while let Some(word) = ident(tokens, k) {
                segments.push(word.to_string());
                if !is(tokens, k + 1, &Tok::PathSep) {
                    break;
                }
                k += 2;
            }
            named.push(Named {
                module: module.clone(),
                file: file.to_string(),
                line: tokens[i].1,
                segments,
                in_use: false,
            });
            i = k + 1;
            continue;
        }
        i += 1;
    }
}

/// Parses a `use` tree from `*at`, pushing each leaf's whole path and line (a glob ends in
/// `*`; `self` in a group names the group's prefix).
fn use_tree(
    tokens: &[(Tok, usize)],
    at: &mut usize,
    prefix: Vec<String>,
    out: &mut Vec<(Vec<String>, usize)>,
) {
    let line = tokens.get(*at).map_or(0, |t| t.1);
    match tokens.get(*at).map(|t| &t.0) {
        Some(Tok::Punct('{')) => {
            *at += 1;
            while *at < tokens.len() && !is(tokens, *at, &Tok::Punct('}')) {
                use_tree(tokens, at, prefix.clone(), out);
                if is(tokens, *at, &Tok::Punct(',')) {
                    *at += 1;
                }
            }
            *at += 1;
        }
        Some(Tok::Punct('*')) => {
            let mut path = prefix;
            path.push("*".into());
            out.push((path, line));
            *at += 1;
        }
        Some(Tok::Ident(word)) => {
            *at += 1;
            if word == "self" && !prefix.is_empty() {
                out.push((prefix, line));
            } else {
                let mut path = prefix;
                path.push(word.clone());
                if is(tokens, *at, &Tok::PathSep) {
                    *at += 1;
                    use_tree(tokens, at, path, out);
                    return;
                }
                out.push((path, line));
            }
            if ident(tokens, *at) == Some("as") {
                *at += 2;
            }
        }
        _ => *at += 1,
    }
    if is(tokens, *at, &Tok::Punct(';')) {
        *at += 1;
    }
}

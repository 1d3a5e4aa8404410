//! How the wiretap prints what `tap.rs` decoded: a block of text per call for a person, or one
//! JSON object per line for a tool (`--json`).
//!
//! ```text
//!   ── conn 1 · stream 1 · grpc.testing.TestService/UnaryCall ──
//!     → HEADERS       stream 1   flags END_HEADERS   length 63
//!         :path: /grpc.testing.TestService/UnaryCall   (service …, method …)
//!     → DATA          stream 1   flags END_STREAM    length 13
//!         message #1: prefix flag 0 (not compressed), length 8
//!     ← …
//!     = status OK (trailers)
//! ```
//!
//! Colour only when stdout is a terminal (a pipe or a file gets plain text, so goldens and
//! `grep` see no escape codes). `--explain` appends to each line the rule it illustrates.
//!
//! The JSON objects: `{"type":"call", "conn", "stream", "path", "service", "method",
//! "status", "code", "message", "status_from", "trailers_only", "reset", "unfinished",
//! "request_headers", "response_headers", "trailers", "request_messages",
//! "response_messages", "lines"}` per call, and `{"type":"connection", "conn", "dir",
//! "kind", "text", "rule"}` per connection line.

use serde_json::{Value, json};

use super::grpc;
use super::tap::{Call, Dir, Kind, Line, Message, Record};

/// How to print.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// One JSON object per line instead of text.
    pub json: bool,
    /// Cite the rule of each line.
    pub explain: bool,
    /// ANSI colour (stdout is a terminal).
    pub colour: bool,
}

/// Decodes a message's bytes to text by its type, when `--proto` gave the types: (path,
/// direction, message) → text.
pub type MessageText<'a> = &'a dyn Fn(&str, Dir, &Message) -> Option<String>;

const RESET: &str = "\x1b[0m";

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.colour {
        format!("\x1b[{code}m{text}{RESET}")
    } else {
        text.to_owned()
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Frame => "frame",
        Kind::Header => "header",
        Kind::Message => "message",
        Kind::Status => "status",
        Kind::Housekeeping => "housekeeping",
        Kind::Reset => "reset",
        Kind::Raw => "raw",
        Kind::Note => "note",
    }
}

fn dir_name(dir: Option<Dir>) -> Value {
    match dir {
        Some(dir) => json!(dir.sender()),
        None => Value::Null,
    }
}

/// One line of text, indented and coloured by its kind.
fn text_line(style: Style, line: &Line, indent: &str) -> String {
    let arrow = match line.dir {
        Some(Dir::ToServer) => paint(style, "36", "→"),
        Some(Dir::ToClient) => paint(style, "35", "←"),
        None => "=".to_owned(),
    };
    let pad = if line.nested { "    " } else { "" };
    let body = match line.kind {
        Kind::Frame => paint(style, "1", &line.text),
        Kind::Housekeeping => paint(style, "2", &line.text),
        Kind::Raw | Kind::Reset => paint(style, "31", &line.text),
        Kind::Status if line.text.starts_with("status OK ") => paint(style, "1;32", &line.text),
        Kind::Status => paint(style, "1;31", &line.text),
        Kind::Note => paint(style, "33", &line.text),
        _ => line.text.clone(),
    };
    let mut out = format!("{indent}{arrow} {pad}{body}");
    if style.explain && !line.rule.is_empty() {
        out.push_str(&paint(style, "2", &format!("   [{}]", line.rule)));
    }
    out
}

fn headers(list: &[(String, String)]) -> Value {
    Value::Array(list.iter().map(|(n, v)| json!([n, v])).collect())
}

/// Prints one record (a call block or a connection line) as text or one JSON line.
pub fn render(style: Style, record: &Record, decode: Option<MessageText>) -> String {
    match record {
        Record::Connection { conn, line } => {
            if style.json {
                json!({
                    "type": "connection",
                    "conn": conn,
                    "dir": dir_name(line.dir),
                    "kind": kind_name(line.kind),
                    "text": line.text,
                    "rule": line.rule,
                })
                .to_string()
                    + "\n"
            } else {
                format!("{}\n", text_line(style, line, &format!("conn {conn} ")))
            }
        }
        Record::Call(call) => render_call(style, call, decode),
    }
}

fn render_call(style: Style, call: &Call, decode: Option<MessageText>) -> String {
    let path = call.path.clone().unwrap_or_default();
    let (service, method) = grpc::split_path(&path).unwrap_or(("", ""));
    let outcome = call.outcome();
    // Messages decoded by type, to add under their prefix lines.
    let decoded = |dir: Dir| -> Vec<Option<String>> {
        call.messages(dir)
            .iter()
            .map(|m| decode.and_then(|f| f(&path, dir, m)))
            .collect()
    };
    let decoded = [decoded(Dir::ToServer), decoded(Dir::ToClient)];
    if style.json {
        let messages = |dir: Dir, texts: &[Option<String>]| -> Value {
            Value::Array(
                call.messages(dir)
                    .iter()
                    .zip(texts)
                    .map(|(m, text)| {
                        json!({
                            "flag": m.flag,
                            "compressed": m.flag == 1,
                            "length": m.len,
                            "frames": m.frames,
                            "truncated": m.truncated,
                            "decoded": text,
                        })
                    })
                    .collect(),
            )
        };
        let lines: Vec<Value> = call
            .lines
            .iter()
            .map(|l| {
                json!({
                    "dir": dir_name(l.dir),
                    "kind": kind_name(l.kind),
                    "text": l.text,
                    "rule": l.rule,
                })
            })
            .collect();
        return json!({
            "type": "call",
            "conn": call.conn,
            "stream": call.stream,
            "path": call.path,
            "service": service,
            "method": method,
            "status": outcome.code.name(),
            "code": outcome.code.as_i32(),
            "message": outcome.message,
            "status_from": outcome.source,
            "trailers_only": call.trailers_only,
            "reset": call.reset().map(|(dir, reason)| json!({"from": dir.sender(), "reason": reason})),
            "unfinished": call.unfinished,
            "request_headers": headers(&call.headers[0]),
            "response_headers": headers(&call.headers[1]),
            "trailers": headers(&call.headers[2]),
            "request_messages": messages(Dir::ToServer, &decoded[0]),
            "response_messages": messages(Dir::ToClient, &decoded[1]),
            "lines": lines,
        })
        .to_string()
            + "\n";
    }
    let title = format!(
        "── conn {} · stream {} · {} ──",
        call.conn,
        call.stream,
        if path.is_empty() { "(no :path)" } else { &path }
    );
    let mut out = paint(style, "1", &title);
    out.push('\n');
    for line in &call.lines {
        out.push_str(&text_line(style, line, "  "));
        out.push('\n');
        // A message decoded by type goes under the line that completes it.
        let under = match (line.dir, line.completes) {
            (Some(dir), Some(i)) => decoded[dir as usize]
                .get(i)
                .and_then(Option::as_ref)
                .map(|text| (dir, text)),
            _ => None,
        };
        if let Some((dir, text)) = under {
            for row in text.lines() {
                out.push_str(&format!("  {}       {row}\n", dir.arrow()));
            }
        }
    }
    out
}

//! The decoder of one relayed connection: bytes in, in the order they crossed, and out come
//! calls (one block per stream) and connection lines. No I/O: `main.rs` feeds it from the
//! relay or from a recorded transcript, so both print the same thing.
//!
//! ```text
//!   client bytes ─► preface (24 bytes, RFC 9113 §3.4) ─┐
//!   server bytes ──────────────────────────────────────┤
//!                    frame = 9-byte header + payload (RFC 9113 §4.1)
//!                    ├─ stream 0: SETTINGS, PING, WINDOW_UPDATE, GOAWAY ─► connection lines
//!                    └─ stream n: HEADERS (+CONTINUATION) ─► HPACK (one table per direction)
//!                                 DATA ─► 5-byte prefixes, messages across frames
//!                                 RST_STREAM, WINDOW_UPDATE
//!                                   ─► the call's block, printed when the stream ends
//! ```
//!
//! A call's final status, as its client would report it (statuscodes.md,
//! PROTOCOL-HTTP2 § Errors): `grpc-status` from trailers (or a trailers-only answer) when
//! present; else DEADLINE_EXCEEDED when the client reset the call (or hung up) after its
//! `grpc-timeout` ran out; else a RST_STREAM's reason mapped to a code; else, when the
//! connection closed first, CANCELLED (the client hung up) or UNAVAILABLE (the server did);
//! else the HTTP status mapped; else UNKNOWN.
//!
//! What it does when it does not understand (the relay has already forwarded the bytes; this
//! only decides what is printed): a client that does not open with the preface (no h2c prior
//! knowledge: HTTP/1.1, TLS) turns the connection raw, its chunks shown as byte counts; a
//! header block HPACK cannot decode is shown as hex, and the rest of that direction's header
//! blocks too, since its dynamic table is lost.

use std::collections::BTreeMap;

use bare_grpc::Code;

use super::grpc;
use super::hpack;

/// The 24 octets a client opens an HTTP/2 connection with (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which way bytes went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to server (requests).
    ToServer,
    /// Server to client (responses).
    ToClient,
}

impl Dir {
    fn index(self) -> usize {
        self as usize
    }
    /// The arrow a line starts with.
    pub fn arrow(self) -> &'static str {
        match self {
            Dir::ToServer => "→",
            Dir::ToClient => "←",
        }
    }
    /// Who sent it.
    pub fn sender(self) -> &'static str {
        match self {
            Dir::ToServer => "client",
            Dir::ToClient => "server",
        }
    }
}

/// What kind of thing a line shows: decides its colour and the rule `--explain` cites.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An HTTP/2 frame's header.
    Frame,
    /// One decoded header field.
    Header,
    /// A message prefix, or a message's continuation or end.
    Message,
    /// The call's final status.
    Status,
    /// WINDOW_UPDATE, PING, SETTINGS: flow control and liveness.
    Housekeeping,
    /// RST_STREAM or GOAWAY.
    Reset,
    /// Something the decoder could not read, shown raw.
    Raw,
    /// A note about the call's shape (trailers-only, truncation).
    Note,
}

/// One printed line.
#[derive(Clone, Debug)]
pub struct Line {
    /// The direction, `None` for a summary.
    pub dir: Option<Dir>,
    /// Indented under a frame line.
    pub nested: bool,
    /// What it shows.
    pub kind: Kind,
    /// The words.
    pub text: String,
    /// The rule it illustrates (`--explain`).
    pub rule: String,
    /// This line completes the direction's message of this index (0-based).
    pub completes: Option<usize>,
}

/// One message as it crossed.
#[derive(Clone, Debug)]
pub struct Message {
    /// The prefix's flag byte (0 or 1; anything else is shown as it is).
    pub flag: u8,
    /// The prefix's length.
    pub len: u32,
    /// How many DATA frames carried it (prefix included).
    pub frames: u32,
    /// Its bytes, kept up to [`KEEP_BYTES`] for `--proto`.
    pub body: Vec<u8>,
    /// The stream ended before it did.
    pub truncated: bool,
}

/// The bytes of a message kept for decoding by type; longer ones are shown by size only.
pub const KEEP_BYTES: usize = 1 << 20;

/// A call's messages in one direction, reassembled from DATA payloads.
#[derive(Debug, Default)]
struct Messages {
    /// The prefix so far (a prefix may itself be split across frames), and how many earlier
    /// frames carried part of it.
    prefix: Vec<u8>,
    prefix_frames: u32,
    /// The message being read, if its prefix is complete.
    current: Option<Message>,
    /// Bytes of `current` still to come.
    remaining: u32,
    done: Vec<Message>,
}

/// Everything seen of one stream.
#[derive(Debug, Default)]
pub struct Call {
    /// The connection's number (1, 2, … in accept order).
    pub conn: u64,
    /// The HTTP/2 stream.
    pub stream: u32,
    /// `:path`, once the request headers have been read.
    pub path: Option<String>,
    /// The lines, in wire order.
    pub lines: Vec<Line>,
    /// Request headers, response headers, trailers: (name, value).
    pub headers: [Vec<(String, String)>; 3],
    messages: [Messages; 2],
    ended: [bool; 2],
    header_blocks: [u32; 2],
    http_status: Option<u16>,
    grpc_status: Option<(i32, String)>,
    /// The answer was trailers-only (PROTOCOL-HTTP2 § Responses).
    pub trailers_only: bool,
    reset: Option<(Dir, u32)>,
    timeout_nanos: Option<u128>,
    started_us: u64,
    reset_us: u64,
    /// The block was closed by the connection ending, not by the stream.
    pub unfinished: bool,
    /// Who closed the connection first, when that ended the call, and when.
    closed_by: Option<Dir>,
    closed_us: u64,
}

/// The call's end, as its client would report it.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The code.
    pub code: Code,
    /// The status message (percent-decoded).
    pub message: String,
    /// Where the code came from: `trailers`, `trailers-only`, `rst_stream`, `deadline`,
    /// `http-status`, `missing`.
    pub source: &'static str,
}

impl Call {
    /// The messages of one direction.
    pub fn messages(&self, dir: Dir) -> &[Message] {
        &self.messages[dir.index()].done
    }

    /// The RST_STREAM that ended the call: who sent it and its reason's name.
    pub fn reset(&self) -> Option<(Dir, String)> {
        self.reset.map(|(dir, code)| (dir, grpc::reason_name(code)))
    }

    /// The final status, by the rules in the module doc.
    pub fn outcome(&self) -> Outcome {
        if let Some((n, message)) = &self.grpc_status {
            return Outcome {
                code: Code::from_i32(*n),
                message: message.clone(),
                source: if self.trailers_only {
                    "trailers-only"
                } else {
                    "trailers"
                },
            };
        }
        if let Some((dir, reason)) = self.reset {
            if dir == Dir::ToServer && reason == 0x8 && self.deadline_passed(self.reset_us) {
                return Outcome {
                    code: Code::DeadlineExceeded,
                    message: "the client reset the call after its grpc-timeout ran out".into(),
                    source: "deadline",
                };
            }
            return Outcome {
                code: grpc::code_for_reset(reason),
                message: format!(
                    "RST_STREAM({}) from the {}",
                    grpc::reason_name(reason),
                    dir.sender()
                ),
                source: "rst_stream",
            };
        }
        if self.closed_by == Some(Dir::ToServer) && self.deadline_passed(self.closed_us) {
            return Outcome {
                code: Code::DeadlineExceeded,
                message: "the client hung up after the call's grpc-timeout ran out".into(),
                source: "deadline",
            };
        }
        if let Some(closer) = self.closed_by {
            // No end on the stream: the connection went first. A server sees a client that
            // hangs up as cancellation; a client whose server hangs up sees UNAVAILABLE.
            let code = match closer {
                Dir::ToServer => Code::Cancelled,
                Dir::ToClient => Code::Unavailable,
            };
            return Outcome {
                code,
                message: format!(
                    "the {} closed the connection before the call ended",
                    closer.sender()
                ),
                source: "connection-closed",
            };
        }
        if let Some(status) = self.http_status.filter(|&s| s != 200) {
            return Outcome {
                code: grpc::code_for_http_status(status),
                message: format!("HTTP status {status} without grpc-status"),
                source: "http-status",
            };
        }
        Outcome {
            code: Code::Unknown,
            message: "no grpc-status".into(),
            source: "missing",
        }
    }

    /// Had the call's `grpc-timeout` run out at `t_us`? The client started its clock a
    /// little before the request crossed the relay, so 1 ms of slack.
    fn deadline_passed(&self, t_us: u64) -> bool {
        self.timeout_nanos.is_some_and(|timeout| {
            u128::from(t_us.saturating_sub(self.started_us)) * 1000 + 1_000_000 >= timeout
        })
    }

    fn push(&mut self, dir: Dir, nested: bool, kind: Kind, text: String, rule: &str) {
        self.lines.push(Line {
            dir: Some(dir),
            nested,
            kind,
            text,
            rule: rule.to_owned(),
            completes: None,
        });
    }

    fn finished(&self) -> bool {
        self.unfinished || self.reset.is_some() || (self.ended[0] && self.ended[1])
    }
}

/// What the tap hands to the printer.
#[derive(Debug)]
pub enum Record {
    /// A call whose stream has ended (or whose connection closed).
    Call(Box<Call>),
    /// A line about the connection itself.
    Connection {
        /// The connection's number.
        conn: u64,
        /// The line.
        line: Line,
    },
}

/// One direction's frame reader.
#[derive(Debug, Default)]
struct Reader {
    buf: Vec<u8>,
    /// Still expecting the client preface (client side only, until it is read).
    preface: bool,
    /// The HPACK decoder of this direction.
    hpack: hpack::Decoder,
    /// HPACK failed once: the table is lost, later blocks are shown raw.
    hpack_lost: bool,
    /// A header block waiting for CONTINUATION: stream, END_STREAM, fragments.
    pending: Option<(u32, bool, Vec<u8>)>,
}

/// The decoder of one connection.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    readers: [Reader; 2],
    calls: BTreeMap<u32, Call>,
    /// Not HTTP/2 with prior knowledge: bytes are counted, not read.
    raw: bool,
    /// The side whose bytes ended first (its TCP stream reached EOF), and when.
    first_eof: Option<(Dir, u64)>,
    out: Vec<Record>,
}

/// RFC 9113 §6: frame type names.
fn frame_name(kind: u8) -> String {
    match kind {
        0x0 => "DATA".into(),
        0x1 => "HEADERS".into(),
        0x2 => "PRIORITY".into(),
        0x3 => "RST_STREAM".into(),
        0x4 => "SETTINGS".into(),
        0x5 => "PUSH_PROMISE".into(),
        0x6 => "PING".into(),
        0x7 => "GOAWAY".into(),
        0x8 => "WINDOW_UPDATE".into(),
        0x9 => "CONTINUATION".into(),
        other => format!("type {other:#04x}"),
    }
}

/// The section of RFC 9113 defining a frame type.
pub fn frame_rule(kind: u8) -> &'static str {
    match kind {
        0x0 => "RFC 9113 §6.1; PROTOCOL-HTTP2 § Data Frames",
        0x1 => "RFC 9113 §6.2; PROTOCOL-HTTP2 § Requests / § Responses",
        0x2 => "RFC 9113 §6.3",
        0x3 => "RFC 9113 §6.4; PROTOCOL-HTTP2 § Errors",
        0x4 => "RFC 9113 §6.5",
        0x5 => "RFC 9113 §6.6",
        0x6 => "RFC 9113 §6.7; gRFC A8 (keepalive)",
        0x7 => "RFC 9113 §6.8; PROTOCOL-HTTP2 § Connection Management",
        0x8 => "RFC 9113 §6.9 (flow control, §5.2)",
        0x9 => "RFC 9113 §6.10",
        _ => "RFC 9113 §5.5 (unknown types are ignored)",
    }
}

/// Flag names for a frame type (RFC 9113 §6).
fn flag_names(kind: u8, flags: u8) -> String {
    let known: &[(u8, &str)] = match kind {
        0x0 => &[(0x1, "END_STREAM"), (0x8, "PADDED")],
        0x1 => &[
            (0x1, "END_STREAM"),
            (0x4, "END_HEADERS"),
            (0x8, "PADDED"),
            (0x20, "PRIORITY"),
        ],
        0x4 | 0x6 => &[(0x1, "ACK")],
        0x5 => &[(0x4, "END_HEADERS"), (0x8, "PADDED")],
        0x9 => &[(0x4, "END_HEADERS")],
        _ => &[],
    };
    let mut names: Vec<String> = known
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| (*name).to_owned())
        .collect();
    let rest = flags & !known.iter().fold(0, |acc, (bit, _)| acc | bit);
    if rest != 0 {
        names.push(format!("{rest:#04x}"));
    }
    if names.is_empty() {
        "-".into()
    } else {
        names.join("|")
    }
}

/// RFC 9113 §6.5.2: a setting's name.
fn setting_name(id: u16) -> String {
    match id {
        0x1 => "HEADER_TABLE_SIZE".into(),
        0x2 => "ENABLE_PUSH".into(),
        0x3 => "MAX_CONCURRENT_STREAMS".into(),
        0x4 => "INITIAL_WINDOW_SIZE".into(),
        0x5 => "MAX_FRAME_SIZE".into(),
        0x6 => "MAX_HEADER_LIST_SIZE".into(),
        other => format!("setting {other:#x}"),
    }
}

impl Conn {
    /// A fresh connection, numbered `id`.
    pub fn new(id: u64) -> Conn {
        let mut readers: [Reader; 2] = Default::default();
        readers[Dir::ToServer.index()].preface = true;
        Conn {
            id,
            readers,
            calls: BTreeMap::new(),
            raw: false,
            first_eof: None,
            out: Vec::new(),
        }
    }

    /// A connection whose decoder failed: shown raw from here on.
    pub fn broken(id: u64) -> Conn {
        let mut conn = Conn::new(id);
        conn.raw = true;
        conn.conn_line(
            None,
            Kind::Raw,
            "the decoder failed on this connection: its bytes are relayed, shown raw".into(),
            "",
        );
        conn
    }

    /// What is ready to print.
    pub fn take(&mut self) -> Vec<Record> {
        std::mem::take(&mut self.out)
    }

    fn conn_line(&mut self, dir: Option<Dir>, kind: Kind, text: String, rule: &str) {
        self.out.push(Record::Connection {
            conn: self.id,
            line: Line {
                dir,
                nested: false,
                kind,
                text,
                rule: rule.to_owned(),
                completes: None,
            },
        });
    }

    /// Bytes that crossed in `dir` at `t_us` microseconds since the connection opened.
    pub fn feed(&mut self, dir: Dir, bytes: &[u8], t_us: u64) {
        if self.raw {
            self.conn_line(
                Some(dir),
                Kind::Raw,
                format!("{} bytes relayed raw", bytes.len()),
                "",
            );
            return;
        }
        let reader = &mut self.readers[dir.index()];
        reader.buf.extend_from_slice(bytes);
        if reader.preface {
            let n = reader.buf.len().min(PREFACE.len());
            if reader.buf[..n] != PREFACE[..n] {
                self.raw = true;
                let shown = grpc::show_bytes(&self.readers[dir.index()].buf);
                self.readers = Default::default();
                self.conn_line(
                    Some(dir),
                    Kind::Raw,
                    format!(
                        "not an HTTP/2 client preface (no h2c prior knowledge, or TLS): \
                         relaying raw; first bytes {shown}"
                    ),
                    "RFC 9113 §3.4",
                );
                return;
            }
            if n < PREFACE.len() {
                return;
            }
            reader.buf.drain(..PREFACE.len());
            reader.preface = false;
            self.conn_line(
                Some(dir),
                Kind::Housekeeping,
                "connection preface PRI * HTTP/2.0".into(),
                "RFC 9113 §3.4",
            );
        }
        loop {
            let reader = &mut self.readers[dir.index()];
            if reader.buf.len() < 9 {
                break;
            }
            let b = &reader.buf;
            let len = u32::from_be_bytes([0, b[0], b[1], b[2]]) as usize;
            if b.len() < 9 + len {
                break;
            }
            let kind = b[3];
            let flags = b[4];
            let stream = u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff;
            let frame: Vec<u8> = reader.buf.drain(..9 + len).collect();
            self.frame(dir, kind, flags, stream, &frame[9..], t_us);
        }
    }

    /// `dir`'s sender closed its side of the TCP connection (EOF).
    pub fn eof(&mut self, dir: Dir, t_us: u64) {
        self.first_eof.get_or_insert((dir, t_us));
    }

    /// The connection closed: every open call is printed as it stands.
    pub fn close(&mut self) {
        for reader in &mut self.readers {
            reader.pending = None;
        }
        let streams: Vec<u32> = self.calls.keys().copied().collect();
        for stream in streams {
            if let Some(call) = self.calls.get_mut(&stream) {
                call.unfinished = true;
                let (dir, t_us) = self.first_eof.unwrap_or((Dir::ToServer, u64::MAX));
                call.closed_by = Some(dir);
                call.closed_us = t_us;
            }
            self.maybe_finish(stream);
        }
        self.conn_line(None, Kind::Note, "connection closed".into(), "");
    }

    fn call(&mut self, stream: u32) -> &mut Call {
        let conn = self.id;
        self.calls.entry(stream).or_insert_with(|| Call {
            conn,
            stream,
            ..Default::default()
        })
    }

    fn frame(&mut self, dir: Dir, kind: u8, flags: u8, stream: u32, payload: &[u8], t_us: u64) {
        let head = format!(
            "{:<13} stream {stream:<3} flags {:<22} length {}",
            frame_name(kind),
            flag_names(kind, flags),
            payload.len()
        );
        let rule = match (kind, dir) {
            (0x1, Dir::ToServer) => "RFC 9113 §6.2; PROTOCOL-HTTP2 § Requests",
            (0x1, Dir::ToClient) => "RFC 9113 §6.2; PROTOCOL-HTTP2 § Responses",
            _ => frame_rule(kind),
        };
        if stream == 0 {
            self.conn_frame(dir, kind, flags, payload, head, rule);
            return;
        }
        // Frames for a stream whose block is already printed (a reset crossing trailers, a
        // WINDOW_UPDATE after the end) are shown on the connection.
        let known = self.calls.contains_key(&stream);
        let opens = kind == 0x1 && dir == Dir::ToServer;
        if !known && !opens {
            self.conn_line(
                Some(dir),
                if kind == 0x3 {
                    Kind::Reset
                } else {
                    Kind::Frame
                },
                format!("{head}  (stream {stream} already printed)"),
                rule,
            );
            if kind == 0x3 && payload.len() == 4 {
                let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                self.conn_line(
                    Some(dir),
                    Kind::Reset,
                    format!("  reason {}", grpc::reason_name(code)),
                    "RFC 9113 §7",
                );
            }
            if matches!(kind, 0x1 | 0x9) {
                // Still decode the block: the HPACK table must see it.
                self.header_frame(dir, kind, flags, stream, payload, t_us, false);
            }
            return;
        }
        if kind == 0x5 {
            // PUSH_PROMISE (unused by gRPC) carries a header block: decode it, unseen, so the
            // HPACK table stays in step.
            self.conn_line(Some(dir), Kind::Frame, head, rule);
            self.header_frame(dir, kind, flags, stream, payload, t_us, false);
            return;
        }
        if opens && !known {
            let call = self.call(stream);
            call.started_us = t_us;
        }
        self.call(stream).push(dir, false, Kind::Frame, head, rule);
        match kind {
            0x0 => self.data(dir, flags, stream, payload),
            0x1 | 0x9 => self.header_frame(dir, kind, flags, stream, payload, t_us, true),
            0x3 => {
                let call = self.call(stream);
                if payload.len() == 4 {
                    let code = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]);
                    call.reset = Some((dir, code));
                    call.reset_us = t_us;
                    let why = match code {
                        0x8 => "the sender cancelled the call",
                        0x0 => "the sender needs nothing more on this stream",
                        _ => "the stream failed",
                    };
                    call.push(
                        dir,
                        true,
                        Kind::Reset,
                        format!("reason {}: {why}", grpc::reason_name(code)),
                        "RFC 9113 §7; PROTOCOL-HTTP2 § Errors",
                    );
                } else {
                    call.push(
                        dir,
                        true,
                        Kind::Raw,
                        "malformed RST_STREAM".into(),
                        "RFC 9113 §6.4",
                    );
                }
            }
            0x8 if payload.len() == 4 => {
                let inc = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                    & 0x7fff_ffff;
                let receiver = match dir {
                    Dir::ToServer => "server",
                    Dir::ToClient => "client",
                };
                self.call(stream).push(
                    dir,
                    true,
                    Kind::Housekeeping,
                    format!("the {receiver} may send {inc} more bytes on this stream"),
                    "RFC 9113 §5.2",
                );
            }
            _ => {}
        }
        self.maybe_finish(stream);
    }

    fn maybe_finish(&mut self, stream: u32) {
        let done = self.calls.get(&stream).is_some_and(Call::finished)
            && self.readers.iter().all(|r| r.pending.is_none());
        if let Some(mut call) = done.then(|| self.calls.remove(&stream)).flatten() {
            let outcome = call.outcome();
            let text = format!(
                "status {} ({}){}",
                outcome.code.name(),
                outcome.source,
                if outcome.message.is_empty() {
                    String::new()
                } else {
                    format!(": {:?}", outcome.message)
                }
            );
            call.lines.push(Line {
                dir: None,
                nested: false,
                kind: Kind::Status,
                text,
                rule: "statuscodes.md; PROTOCOL-HTTP2 § Errors".into(),
                completes: None,
            });
            self.out.push(Record::Call(Box::new(call)));
        }
    }

    fn conn_frame(
        &mut self,
        dir: Dir,
        kind: u8,
        flags: u8,
        payload: &[u8],
        head: String,
        rule: &str,
    ) {
        let line_kind = if kind == 0x7 {
            Kind::Reset
        } else {
            Kind::Housekeeping
        };
        self.conn_line(Some(dir), line_kind, head, rule);
        match kind {
            0x4 if flags & 0x1 == 0 => {
                for setting in payload.chunks_exact(6) {
                    let id = u16::from_be_bytes([setting[0], setting[1]]);
                    let value =
                        u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
                    if id == 0x1 {
                        // The sender's decoder allows this much: the other direction's table.
                        let other = match dir {
                            Dir::ToServer => Dir::ToClient,
                            Dir::ToClient => Dir::ToServer,
                        };
                        self.readers[other.index()].hpack.set_limit(value as usize);
                    }
                    self.conn_line(
                        Some(dir),
                        Kind::Housekeeping,
                        format!("  {} = {value}", setting_name(id)),
                        "RFC 9113 §6.5.2",
                    );
                }
            }
            0x4 => self.conn_line(
                Some(dir),
                Kind::Housekeeping,
                "  settings acknowledged".into(),
                "RFC 9113 §6.5.3",
            ),
            0x6 => {
                let what = if flags & 0x1 != 0 {
                    "answer"
                } else {
                    "liveness probe"
                };
                self.conn_line(
                    Some(dir),
                    Kind::Housekeeping,
                    format!("  {what}, opaque data {}", grpc::show_bytes(payload)),
                    "RFC 9113 §6.7; gRFC A8",
                );
            }
            0x8 if payload.len() == 4 => {
                let inc = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                    & 0x7fff_ffff;
                self.conn_line(
                    Some(dir),
                    Kind::Housekeeping,
                    format!("  the connection window grows by {inc} bytes"),
                    "RFC 9113 §5.2",
                );
            }
            0x7 if payload.len() >= 8 => {
                let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                    & 0x7fff_ffff;
                let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
                let debug = &payload[8..];
                self.conn_line(
                    Some(dir),
                    Kind::Reset,
                    format!(
                        "  last stream {last}, reason {}{}",
                        grpc::reason_name(code),
                        if debug.is_empty() {
                            String::new()
                        } else {
                            format!(", debug data {}", grpc::show_bytes(debug))
                        }
                    ),
                    "RFC 9113 §6.8; PROTOCOL-HTTP2 § Connection Management",
                );
            }
            _ => {}
        }
    }

    /// HEADERS or CONTINUATION: gather the block, decode it at END_HEADERS.
    #[allow(clippy::too_many_arguments)]
    fn header_frame(
        &mut self,
        dir: Dir,
        kind: u8,
        flags: u8,
        stream: u32,
        payload: &[u8],
        t_us: u64,
        show: bool,
    ) {
        let reader = &mut self.readers[dir.index()];
        if kind == 0x1 || kind == 0x5 {
            let mut fragment = payload;
            let mut pad = 0;
            if flags & 0x8 != 0 {
                pad = fragment.first().copied().unwrap_or(0) as usize;
                fragment = fragment.get(1..).unwrap_or(&[]);
            }
            if kind == 0x1 && flags & 0x20 != 0 {
                // PRIORITY: stream dependency and weight.
                fragment = fragment.get(5..).unwrap_or(&[]);
            }
            if kind == 0x5 {
                // The promised stream id.
                fragment = fragment.get(4..).unwrap_or(&[]);
            }
            let fragment = &fragment[..fragment.len().saturating_sub(pad)];
            reader.pending = Some((stream, flags & 0x1 != 0, fragment.to_vec()));
        } else if let Some((_, _, block)) = reader.pending.as_mut() {
            block.extend_from_slice(payload);
        }
        if flags & 0x4 == 0 {
            return;
        }
        let Some((stream, end_stream, block)) = reader.pending.take() else {
            return;
        };
        let decoded = if reader.hpack_lost {
            Err("an earlier block failed, the HPACK table is lost".to_owned())
        } else {
            reader.hpack.decode(&block)
        };
        if decoded.is_err() {
            reader.hpack_lost = true;
        }
        if !show {
            return;
        }
        let call = self.call(stream);
        let fields = match decoded {
            Ok(fields) => fields,
            Err(why) => {
                call.push(
                    dir,
                    true,
                    Kind::Raw,
                    format!(
                        "header block not decoded ({why}): {}",
                        grpc::show_bytes(&block)
                    ),
                    "RFC 7541",
                );
                call.header_blocks[dir.index()] += 1;
                if end_stream {
                    call.ended[dir.index()] = true;
                }
                return;
            }
        };
        let which = match (dir, call.header_blocks[dir.index()]) {
            (Dir::ToServer, _) => 0,
            (Dir::ToClient, 0) => 1,
            (Dir::ToClient, _) => 2,
        };
        call.header_blocks[dir.index()] += 1;
        if dir == Dir::ToClient && which == 1 && end_stream {
            call.trailers_only = true;
            call.push(
                dir,
                true,
                Kind::Note,
                "trailers-only: one HEADERS frame with END_STREAM carries the whole answer".into(),
                "PROTOCOL-HTTP2 § Responses (Trailers-Only)",
            );
        } else if which == 2 {
            call.push(
                dir,
                true,
                Kind::Note,
                "trailers".into(),
                "PROTOCOL-HTTP2 § Responses (Trailers)",
            );
        }
        for field in fields {
            let name = String::from_utf8_lossy(&field.name).into_owned();
            let value = String::from_utf8_lossy(&field.value).into_owned();
            match name.as_str() {
                ":path" if dir == Dir::ToServer => call.path = Some(value.clone()),
                "grpc-timeout" if dir == Dir::ToServer => {
                    call.timeout_nanos = grpc::decode_timeout(&value);
                    call.started_us = call.started_us.min(t_us);
                }
                ":status" => call.http_status = value.parse().ok(),
                "grpc-status" if dir == Dir::ToClient => {
                    let n = value.parse().unwrap_or(2);
                    let message = call.grpc_status.take().map(|(_, m)| m).unwrap_or_default();
                    call.grpc_status = Some((n, message));
                }
                "grpc-message" if dir == Dir::ToClient => {
                    let decoded = grpc::percent_decode(&field.value);
                    let code = call.grpc_status.take().map_or(i32::MIN, |(n, _)| n);
                    call.grpc_status = Some((code, decoded));
                }
                _ => {}
            }
            let mut text = format!("{name}: {value}");
            if let Some(meaning) = grpc::explain_header(&name, &field.value) {
                text.push_str(&format!("   ({meaning})"));
            }
            call.push(
                dir,
                true,
                Kind::Header,
                text,
                grpc::rule_for_header(&name, dir == Dir::ToClient),
            );
            call.headers[which].push((name, value));
        }
        // grpc-message seen before grpc-status leaves a placeholder code.
        if let Some((code, _)) = call.grpc_status.as_mut()
            && *code == i32::MIN
        {
            *code = 2;
        }
        if end_stream {
            call.ended[dir.index()] = true;
        }
        self.maybe_finish(stream);
    }

    /// DATA: strip padding, then walk the payload through the message prefixes.
    fn data(&mut self, dir: Dir, flags: u8, stream: u32, payload: &[u8]) {
        let mut body = payload;
        if flags & 0x8 != 0 {
            let pad = body.first().copied().unwrap_or(0) as usize;
            body = body.get(1..).unwrap_or(&[]);
            body = &body[..body.len().saturating_sub(pad)];
        }
        let call = self.call(stream);
        let mut lines: Vec<(Kind, String, Option<usize>)> = Vec::new();
        let mut prefix_line = 0;
        let messages = &mut call.messages[dir.index()];
        if let Some(current) = messages.current.as_mut() {
            current.frames += 1;
        }
        while !body.is_empty() {
            if messages.current.is_none() {
                let need = 5 - messages.prefix.len();
                let take = need.min(body.len());
                messages.prefix.extend_from_slice(&body[..take]);
                body = &body[take..];
                if messages.prefix.len() < 5 {
                    messages.prefix_frames += 1;
                    lines.push((
                        Kind::Message,
                        format!("{take} bytes of a message prefix (split across frames)"),
                        None,
                    ));
                    break;
                }
                let p = std::mem::take(&mut messages.prefix);
                let flag = p[0];
                let len = u32::from_be_bytes([p[1], p[2], p[3], p[4]]);
                let number = messages.done.len() + 1;
                let flag_words = match flag {
                    0 => "0 (not compressed)".to_owned(),
                    1 => "1 (compressed with the call's grpc-encoding)".to_owned(),
                    other => format!(
                        "{other:#04x} (invalid: neither 0 nor 1, a receiver fails with INTERNAL)"
                    ),
                };
                prefix_line = lines.len();
                lines.push((
                    Kind::Message,
                    format!("message #{number}: prefix flag {flag_words}, length {len}"),
                    None,
                ));
                messages.current = Some(Message {
                    flag,
                    len,
                    frames: 1 + std::mem::take(&mut messages.prefix_frames),
                    body: Vec::new(),
                    truncated: false,
                });
                messages.remaining = len;
            }
            let current = messages.current.as_mut().expect("set above");
            let take = (messages.remaining as usize).min(body.len());
            if current.body.len() + take <= KEEP_BYTES {
                current.body.extend_from_slice(&body[..take]);
            }
            body = &body[take..];
            messages.remaining -= take as u32;
            if messages.remaining == 0 {
                let done = messages.current.take().expect("set above");
                let number = messages.done.len() + 1;
                if done.frames > 1 {
                    lines.push((
                        Kind::Message,
                        format!(
                            "message #{number} ends here: {} bytes over {} DATA frames",
                            done.len, done.frames
                        ),
                        Some(number - 1),
                    ));
                } else {
                    lines[prefix_line].2 = Some(number - 1);
                }
                messages.done.push(done);
            } else if take > 0 {
                let number = messages.done.len() + 1;
                let current = messages.current.as_ref().expect("set above");
                lines.push((
                    Kind::Message,
                    format!(
                        "message #{number} continues: {take} bytes here, {} of {} to come",
                        messages.remaining, current.len
                    ),
                    None,
                ));
            }
        }
        let end_stream = flags & 0x1 != 0;
        if end_stream {
            call.ended[dir.index()] = true;
            let messages = &mut call.messages[dir.index()];
            if let Some(mut current) = messages.current.take() {
                current.truncated = true;
                messages.done.push(current);
                lines.push((
                    Kind::Note,
                    "END_STREAM inside a message: a truncated message, INTERNAL for the receiver"
                        .into(),
                    None,
                ));
            } else if !messages.prefix.is_empty() {
                lines.push((
                    Kind::Note,
                    "END_STREAM inside a message prefix".into(),
                    None,
                ));
            }
        }
        for (kind, text, completes) in lines {
            let rule = if text.contains("DATA frames") || text.contains("continues") {
                "PROTOCOL-HTTP2 § Data Frames"
            } else {
                "PROTOCOL-HTTP2 § Requests (Length-Prefixed-Message)"
            };
            call.push(dir, true, kind, text, rule);
            call.lines.last_mut().expect("pushed").completes = completes;
        }
    }
}

#[cfg(test)]
mod tests {
    //! Shapes the peer tests do not produce on their own: a prefix split across DATA frames,
    //! a client reset before and after its deadline, bytes that are not HTTP/2, broken HPACK.
    use super::*;

    /// A frame: 9-byte header (RFC 9113 §4.1) and payload.
    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend([kind, flags]);
        out.extend(stream.to_be_bytes());
        out.extend(payload);
        out
    }

    /// A header block of literals without indexing, no Huffman (RFC 7541 §6.2.2).
    fn block(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in fields {
            out.push(0);
            out.push(name.len() as u8);
            out.extend(name.as_bytes());
            out.push(value.len() as u8);
            out.extend(value.as_bytes());
        }
        out
    }

    fn request(conn: &mut Conn, t_us: u64, timeout: Option<&str>) {
        let mut fields = vec![(":method", "POST"), (":path", "/pkg.Svc/Do")];
        if let Some(t) = timeout {
            fields.push(("grpc-timeout", t));
        }
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(0x1, 0x4, 1, &block(&fields)));
        conn.feed(Dir::ToServer, &bytes, t_us);
    }

    fn calls(records: &[Record]) -> Vec<&Call> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Call(call) => Some(&**call),
                Record::Connection { .. } => None,
            })
            .collect()
    }

    fn texts(call: &Call) -> Vec<&str> {
        call.lines.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn a_prefix_split_across_frames_is_one_message() {
        let mut conn = Conn::new(1);
        request(&mut conn, 0, None);
        conn.feed(Dir::ToServer, &frame(0x0, 0, 1, &[0, 0, 0]), 1);
        conn.feed(
            Dir::ToServer,
            &frame(0x0, 0x1, 1, &[0, 3, b'a', b'b', b'c']),
            2,
        );
        let answer = [frame(
            0x1,
            0x5,
            1,
            &block(&[(":status", "200"), ("grpc-status", "0")]),
        )]
        .concat();
        conn.feed(Dir::ToClient, &answer, 3);
        let records = conn.take();
        let call = calls(&records)[0];
        let m = &call.messages(Dir::ToServer)[0];
        assert_eq!((m.len, m.frames, m.body.as_slice()), (3, 2, &b"abc"[..]));
        let lines = texts(call);
        assert!(
            lines.contains(&"3 bytes of a message prefix (split across frames)"),
            "{lines:?}"
        );
        assert!(
            lines.contains(&"message #1 ends here: 3 bytes over 2 DATA frames"),
            "{lines:?}"
        );
        assert!(call.trailers_only);
        assert_eq!(call.outcome().code, Code::Ok);
        assert_eq!(call.outcome().source, "trailers-only");
    }

    #[test]
    fn a_client_reset_is_cancelled_before_the_deadline_and_deadline_exceeded_after() {
        for (reset_at_us, expected) in [(5_000, Code::Cancelled), (60_000, Code::DeadlineExceeded)]
        {
            let mut conn = Conn::new(1);
            request(&mut conn, 0, Some("50m"));
            conn.feed(
                Dir::ToServer,
                &frame(0x3, 0, 1, &8u32.to_be_bytes()),
                reset_at_us,
            );
            let records = conn.take();
            assert_eq!(
                calls(&records)[0].outcome().code,
                expected,
                "reset at {reset_at_us} µs"
            );
        }
    }

    #[test]
    fn http_status_without_grpc_status_and_a_server_hang_up() {
        let mut conn = Conn::new(1);
        request(&mut conn, 0, None);
        conn.feed(
            Dir::ToClient,
            &frame(0x1, 0x5, 1, &block(&[(":status", "503")])),
            1,
        );
        conn.feed(Dir::ToServer, &frame(0x0, 0x1, 1, &[]), 2);
        let records = conn.take();
        assert_eq!(calls(&records)[0].outcome().code, Code::Unavailable);

        let mut conn = Conn::new(2);
        request(&mut conn, 0, None);
        conn.eof(Dir::ToClient, 10);
        conn.close();
        let records = conn.take();
        let outcome = calls(&records)[0].outcome();
        assert_eq!(
            (outcome.code, outcome.source),
            (Code::Unavailable, "connection-closed")
        );
    }

    #[test]
    fn bytes_that_are_not_http2_are_shown_raw() {
        let mut conn = Conn::new(1);
        conn.feed(Dir::ToServer, b"GET / HTTP/1.1\r\n\r\n", 0);
        conn.feed(Dir::ToClient, b"HTTP/1.1 200 OK\r\n", 1);
        let records = conn.take();
        let raw: Vec<&Line> = records
            .iter()
            .filter_map(|r| match r {
                Record::Connection { line, .. } if line.kind == Kind::Raw => Some(line),
                _ => None,
            })
            .collect();
        assert_eq!(raw.len(), 2);
        assert!(raw[0].text.starts_with("not an HTTP/2 client preface"));
        assert_eq!(raw[1].text, "17 bytes relayed raw");
    }

    #[test]
    fn a_bad_header_block_is_raw_and_so_is_every_later_one() {
        let mut conn = Conn::new(1);
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(0x1, 0x5, 1, &[0xff, 0xff, 0xff, 0xff]));
        bytes.extend(frame(0x1, 0x5, 3, &block(&[(":path", "/a/b")])));
        conn.feed(Dir::ToServer, &bytes, 0);
        conn.feed(
            Dir::ToClient,
            &frame(0x1, 0x5, 1, &block(&[("grpc-status", "0")])),
            1,
        );
        conn.feed(
            Dir::ToClient,
            &frame(0x1, 0x5, 3, &block(&[("grpc-status", "0")])),
            2,
        );
        let records = conn.take();
        let calls = calls(&records);
        assert_eq!(calls.len(), 2);
        for call in calls {
            assert!(
                texts(call)[1].starts_with("header block not decoded"),
                "{:?}",
                texts(call)
            );
            // The server's direction has its own table: still decoded.
            assert_eq!(call.outcome().code, Code::Ok);
        }
    }

    #[test]
    fn goaway_and_ping_are_connection_lines() {
        let mut conn = Conn::new(1);
        conn.feed(Dir::ToServer, PREFACE, 0);
        let mut goaway = 0u32.to_be_bytes().to_vec();
        goaway.extend(0xbu32.to_be_bytes());
        goaway.extend(b"too_many_pings");
        let bytes = [frame(0x6, 0, 0, &[1; 8]), frame(0x7, 0, 0, &goaway)].concat();
        conn.feed(Dir::ToClient, &bytes, 1);
        let lines: Vec<String> = conn
            .take()
            .into_iter()
            .filter_map(|r| match r {
                Record::Connection { line, .. } => Some(line.text),
                Record::Call(_) => None,
            })
            .collect();
        assert!(
            lines.contains(&"  liveness probe, opaque data 01 01 01 01 01 01 01 01".to_owned()),
            "{lines:?}"
        );
        assert!(
            lines.contains(
                &"  last stream 0, reason ENHANCE_YOUR_CALM, debug data \"too_many_pings\""
                    .to_owned()
            ),
            "{lines:?}"
        );
    }
}

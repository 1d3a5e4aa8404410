//! `grpc-wiretap`: a transparent TCP relay for cleartext HTTP/2 (h2c with prior knowledge)
//! that shows every gRPC call crossing it, frame by frame, each line in the spec's terms.
//!
//! ```text
//!   client ──TCP──► grpc-wiretap --listen A --upstream B ──TCP──► server at B
//!                        │  every chunk decoded, then forwarded unchanged
//!                        ▼
//!               tap.rs (frames, HPACK, prefixes, calls) ─► render.rs ─► stdout
//!                                                   (text blocks, or --json lines)
//! ```
//!
//! Usage:
//!
//! ```text
//!   grpc-wiretap --listen 127.0.0.1:PORT --upstream HOST:PORT
//!                [--json] [--explain] [--no-colour] [--proto DESCRIPTOR_SET | --reflect]
//!                [--record FILE]
//!   grpc-wiretap --replay FILE [--json] [--explain] [--proto DESCRIPTOR_SET]
//! ```
//!
//! Why it cannot stall: the relay must never stall or alter the conversation because of the
//! decoder. A chunk is decoded (a few microseconds of in-memory work, so a request is always
//! decoded before the answer it causes) and forwarded as it was read; decoding runs
//! under `catch_unwind`, and a connection whose decoder fails is shown raw from then on;
//! printing runs on its own thread behind an unbounded channel, so a slow terminal delays
//! the text, not the traffic. Every connection has its own two pump tasks, so many run at
//! once.
//!
//! `--record FILE` writes what crossed as a transcript (`conn micros dir hex` lines, `dir`
//! `>` to the server, `<` to the client, no hex for that side's end of stream, `x` when the
//! connection ended); `--replay FILE`
//! prints a transcript as the live relay would have: the golden test and the walkthroughs in
//! `docs/` use it.
//!
//! What it does not do: TLS (an upstream that needs TLS is out of scope: the bytes would be
//! relayed but shown raw), the HTTP/1.1 `Upgrade: h2c` dance (prior knowledge only), and
//! gRPC-Web. Server push is shown as frames only.

mod grpc;
mod hpack;
mod huffman;
mod proto;
mod render;
mod tap;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use render::Style;
use tap::{Conn, Dir, Record};

const USAGE: &str = "usage: grpc-wiretap --listen ADDR --upstream HOST:PORT [--json] [--explain] \
[--no-colour] [--proto DESCRIPTOR_SET | --reflect] [--record FILE]\n       grpc-wiretap --replay FILE [--json] \
[--explain] [--proto DESCRIPTOR_SET]";

/// The command line.
#[derive(Default)]
struct Args {
    listen: Option<String>,
    upstream: Option<String>,
    replay: Option<String>,
    record: Option<String>,
    proto: Option<String>,
    reflect: bool,
    style: Style,
    no_colour: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--listen" => args.listen = Some(value()?),
            "--upstream" => args.upstream = Some(value()?),
            "--replay" => args.replay = Some(value()?),
            "--record" => args.record = Some(value()?),
            "--proto" => args.proto = Some(value()?),
            "--reflect" => args.reflect = true,
            "--json" => args.style.json = true,
            "--explain" => args.style.explain = true,
            "--no-colour" | "--no-color" => args.no_colour = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(args)
}

/// What the printer thread receives.
type Batch = Vec<Record>;

/// Prints batches until every sender is gone.
fn printer(rx: mpsc::Receiver<Batch>, style: Style, types: Option<proto::Types>) {
    let stdout = std::io::stdout();
    let decode = types.as_ref().map(|t| {
        move |path: &str, dir: Dir, m: &tap::Message| -> Option<String> { t.decode(path, dir, m) }
    });
    for batch in rx {
        let mut out = stdout.lock();
        for record in &batch {
            let text = render::render(
                style,
                record,
                decode.as_ref().map(|f| f as render::MessageText),
            );
            if out.write_all(text.as_bytes()).is_err() {
                return;
            }
        }
        let _ = out.flush();
    }
}

/// Feeds the decoder, never letting its failure reach the relay.
fn decode(
    conn: &Mutex<Conn>,
    id: u64,
    dir: Dir,
    bytes: &[u8],
    t_us: u64,
    out: &mpsc::Sender<Batch>,
) {
    let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        guard.feed(dir, bytes, t_us);
        guard.take()
    }));
    let batch = match result {
        Ok(batch) => batch,
        Err(_) => {
            // The decoder hit a bug: start this connection over in raw mode.
            *guard = Conn::broken(id);
            guard.take()
        }
    };
    if !batch.is_empty() {
        let _ = out.send(batch);
    }
}

/// A transcript writer shared by all connections.
type Recorder = Option<Arc<Mutex<std::fs::File>>>;

fn record(rec: &Recorder, id: u64, t_us: u64, dir: &str, bytes: &[u8]) {
    if let Some(file) = rec {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(file, "{id} {t_us} {dir} {hex}");
    }
}

/// Copies one direction until it ends, forwarding first, then recording and decoding.
#[allow(clippy::too_many_arguments)]
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    dir: Dir,
    id: u64,
    start: Instant,
    conn: Arc<Mutex<Conn>>,
    out: mpsc::Sender<Batch>,
    rec: Recorder,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // Decoded before it is forwarded, so the decoder sees a request before the answer it
        // causes (the two directions are decoded by two tasks).
        let t_us = start.elapsed().as_micros() as u64;
        let tag = if dir == Dir::ToServer { ">" } else { "<" };
        record(&rec, id, t_us, tag, &buf[..n]);
        decode(&conn, id, dir, &buf[..n], t_us, &out);
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let t_us = start.elapsed().as_micros() as u64;
    record(
        &rec,
        id,
        t_us,
        if dir == Dir::ToServer { ">" } else { "<" },
        &[],
    );
    if let Ok(mut guard) = conn.lock() {
        guard.eof(dir, t_us);
    }
    let _ = to.shutdown().await;
}

async fn serve(listener: TcpListener, upstream: String, out: mpsc::Sender<Batch>, rec: Recorder) {
    let next_id = AtomicU64::new(1);
    loop {
        let (client, peer) = match listener.accept().await {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("grpc-wiretap: accept failed: {e}");
                continue;
            }
        };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        let upstream = upstream.clone();
        let out = out.clone();
        let rec = rec.clone();
        tokio::spawn(async move {
            let server = match TcpStream::connect(&upstream).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("grpc-wiretap: conn {id} from {peer}: cannot reach {upstream}: {e}");
                    return;
                }
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let start = Instant::now();
            let conn = Arc::new(Mutex::new(Conn::new(id)));
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let up = tokio::spawn(pump(
                cr,
                sw,
                Dir::ToServer,
                id,
                start,
                conn.clone(),
                out.clone(),
                rec.clone(),
            ));
            let down = tokio::spawn(pump(
                sr,
                cw,
                Dir::ToClient,
                id,
                start,
                conn.clone(),
                out.clone(),
                rec.clone(),
            ));
            let _ = up.await;
            let _ = down.await;
            record(&rec, id, start.elapsed().as_micros() as u64, "x", &[]);
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            let batch = std::panic::catch_unwind(AssertUnwindSafe(|| {
                guard.close();
                guard.take()
            }))
            .unwrap_or_default();
            let _ = out.send(batch);
        });
    }
}

/// Replays a transcript through the decoder, connection by connection as they interleaved.
fn replay(path: &str, out: &mpsc::Sender<Batch>) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut conns: BTreeMap<u64, Conn> = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || format!("{path}:{}: expected `conn micros dir hex`", n + 1);
        let mut parts = line.split_whitespace();
        let id: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        // An empty chunk marks that side's end of stream (EOF).
        let t_us: u64 = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let dir = parts.next().ok_or_else(bad)?;
        let hex = parts.next().unwrap_or("");
        let bytes: Vec<u8> = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let conn = conns.entry(id).or_insert_with(|| Conn::new(id));
        match dir {
            ">" if bytes.is_empty() => conn.eof(Dir::ToServer, t_us),
            "<" if bytes.is_empty() => conn.eof(Dir::ToClient, t_us),
            ">" => conn.feed(Dir::ToServer, &bytes, t_us),
            "<" => conn.feed(Dir::ToClient, &bytes, t_us),
            "x" => conn.close(),
            _ => return Err(bad()),
        }
        let _ = out.send(conn.take());
    }
    Ok(())
}

fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(why) => {
            if !why.is_empty() {
                eprintln!("grpc-wiretap: {why}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let mut style = args.style;
    style.colour = !style.json && !args.no_colour && std::io::stdout().is_terminal();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let types = match (&args.proto, args.reflect, &args.upstream) {
        (Some(path), _, _) => proto::Types::load(path).map(Some),
        (None, true, Some(upstream)) => runtime
            .block_on(proto::Types::from_reflection(upstream))
            .map(Some),
        (None, true, None) => Err("--reflect asks the --upstream server".to_owned()),
        (None, false, _) => Ok(None),
    };
    let types = match types {
        Ok(types) => types,
        Err(why) => {
            eprintln!("grpc-wiretap: {why}");
            std::process::exit(2);
        }
    };
    let (tx, rx) = mpsc::channel::<Batch>();
    let printing = std::thread::spawn(move || printer(rx, style, types));

    if let Some(path) = &args.replay {
        let result = replay(path, &tx);
        drop(tx);
        let _ = printing.join();
        if let Err(why) = result {
            eprintln!("grpc-wiretap: {why}");
            std::process::exit(1);
        }
        return;
    }
    let (Some(listen), Some(upstream)) = (args.listen, args.upstream) else {
        eprintln!("grpc-wiretap: --listen and --upstream are required (or --replay)\n{USAGE}");
        std::process::exit(2);
    };
    let rec: Recorder = match &args.record {
        Some(path) => match std::fs::File::create(path) {
            Ok(file) => Some(Arc::new(Mutex::new(file))),
            Err(e) => {
                eprintln!("grpc-wiretap: {path}: {e}");
                std::process::exit(2);
            }
        },
        None => None,
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(&listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("grpc-wiretap: cannot listen on {listen}: {e}");
                std::process::exit(2);
            }
        };
        let addr: SocketAddr = listener.local_addr().expect("local address");
        // On stderr, so stdout stays pure output (JSON lines for tools).
        eprintln!("grpc-wiretap: listening on {addr}, relaying to {upstream}");
        serve(listener, upstream, tx, rec).await;
    });
}

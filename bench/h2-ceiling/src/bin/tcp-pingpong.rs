//! The floor under every ping-pong figure of `bench/run`: a round trip of `size` bytes over a
//! loopback TCP connection, with no HTTP/2, no gRPC and no async runtime — one blocking `write`
//! and one blocking `read` per side and per message.
//!
//! ```text
//! tcp-pingpong serve --port P                       echoes whatever arrives, one connection at a time
//! tcp-pingpong call --port P --count N --size S     N sequential round trips of S bytes
//! ```
//!
//! Why it is in the harness: a ping-pong is latency-bound, and on a machine whose cores sleep
//! between messages most of a round trip is the two wake-ups (the server's, then the client's),
//! which no runtime can remove without busy-polling. Measured beside the gRPC pairs it says how
//! much of each pair's round trip is theirs: `round trip - floor`.
//!
//! `call` prints the harness's result line, `RESULT scenario=pingpong count=.. bytes=.. secs=..`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

/// `--name N` from the command line, or `default`.
fn flag(args: &[String], name: &str, default: u64) -> u64 {
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| usage(&format!("{name} wants a number"))),
    }
}

fn usage(why: &str) -> ! {
    eprintln!("tcp-pingpong: {why}");
    eprintln!("usage: tcp-pingpong serve --port P | call --port P --count N --size S");
    std::process::exit(2);
}

fn serve(port: u16) -> std::io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let mut buf = vec![0u8; 64 * 1024];
    for stream in listener.incoming() {
        let mut stream = stream?;
        stream.set_nodelay(true)?;
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

fn call(port: u16, count: u64, size: usize) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_nodelay(true)?;
    let message = vec![b'x'; size];
    let mut echo = vec![0u8; size];
    let start = Instant::now();
    for _ in 0..count {
        stream.write_all(&message)?;
        stream.read_exact(&mut echo)?;
        if echo != message {
            return Err(std::io::Error::other("the echo differs from what was sent"));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes = 2 * count * size as u64;
    println!("RESULT scenario=pingpong count={count} bytes={bytes} secs={secs:.6}");
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port = flag(&args, "--port", 50051) as u16;
    let outcome = match args.get(1).map(String::as_str) {
        Some("serve") => serve(port),
        Some("call") => call(
            port,
            flag(&args, "--count", 20_000),
            flag(&args, "--size", 16) as usize,
        ),
        _ => usage("say serve or call"),
    };
    if let Err(error) = outcome {
        eprintln!("tcp-pingpong: {error}");
        std::process::exit(1);
    }
}

//! Holds connections and streams open against a server so that its memory can be read.
//!
//! `idle --port N --conns C --streams S [--hold SECS]`
//!
//! Opens `C` HTTP/2 connections and, on each, `S` calls to `/bench.Echo/PingPong` whose
//! request stays open (HEADERS without END_STREAM, no message), so that the server holds
//! one waiting bidi handler per stream. A PING round trip on every connection then proves
//! the server has read every HEADERS frame; the tool prints `READY conns=C streams=C*S`
//! and keeps everything open for `--hold` seconds (default 60) or until it is killed.
//! Exits 1 when the server refuses a connection or a stream, or when opening takes
//! longer than 60 seconds.

use std::time::Duration;

use bytes::Bytes;
use h2::client::{self, ResponseFuture, SendRequest};
use http::Request;
use tokio::net::TcpStream;

type Failure = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: u64| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| v.parse().expect("a number"))
            .unwrap_or(default)
    };
    let (port, conns, streams) = (
        flag("--port", 50051),
        flag("--conns", 1),
        flag("--streams", 0),
    );
    let hold = Duration::from_secs(flag("--hold", 60));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcome = runtime.block_on(async move {
        let opened =
            tokio::time::timeout(Duration::from_secs(60), open(port as u16, conns, streams)).await;
        let held = opened.map_err(|_| "opening timed out")??;
        println!("READY conns={conns} streams={}", conns * streams);
        tokio::time::sleep(hold).await;
        drop(held);
        Ok::<(), Failure>(())
    });
    if let Err(e) = outcome {
        eprintln!("idle: {e}");
        std::process::exit(1);
    }
}

type Held = Vec<(
    SendRequest<Bytes>,
    Vec<(ResponseFuture, h2::SendStream<Bytes>)>,
)>;

async fn open(port: u16, conns: u64, streams: u64) -> Result<Held, Failure> {
    let mut held = Vec::new();
    let mut pings = Vec::new();
    for _ in 0..conns {
        let socket = TcpStream::connect(("127.0.0.1", port)).await?;
        socket.set_nodelay(true)?;
        let (mut send, mut conn) = client::handshake(socket).await?;
        let mut ping = conn.ping_pong().ok_or("no ping handle")?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut calls = Vec::new();
        for _ in 0..streams {
            send = send.ready().await?;
            let request = Request::post(format!("http://127.0.0.1:{port}/bench.Echo/PingPong"))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(())?;
            calls.push(send.send_request(request, false)?);
        }
        pings.push(tokio::spawn(
            async move { ping.ping(h2::Ping::opaque()).await },
        ));
        held.push((send, calls));
    }
    for ping in pings {
        ping.await??;
    }
    Ok(held)
}

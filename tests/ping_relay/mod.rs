//! A TCP relay on loopback that reads the HTTP/2 frame headers crossing it (RFC 9113 §4.1) and
//! records, per connection, every PING the client sends (not ACKs) and every GOAWAY the server
//! sends, with its payload. The keepalive tests (`tests/keepalive.rs`, `tests/keepalive_go.rs`)
//! see through it what neither peer reports: when pings leave, and which GOAWAY came back.
//!
//! ```text
//!   client ──▶ relay (127.0.0.1:0) ──▶ server      upstream:   PING (no ACK) -> Ping event
//!          ◀──                     ◀──             downstream: GOAWAY        -> GoAway event
//! ```
//!
//! The bytes pass unchanged; the relay stops (with every connection) when dropped.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Something seen on connection `conn` (numbered from 0 in accept order).
#[derive(Clone, Debug)]
pub enum Event {
    /// The client sent a PING without ACK.
    Ping { conn: usize, at: Instant },
    /// The server sent a GOAWAY.
    GoAway {
        conn: usize,
        at: Instant,
        last_stream: u32,
        code: u32,
        debug: Vec<u8>,
    },
    /// The client connected.
    Open { conn: usize, at: Instant },
}

/// A running relay.
pub struct PingRelay {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// What was seen, in order.
    pub events: Arc<Mutex<Vec<Event>>>,
    task: JoinHandle<()>,
}

impl PingRelay {
    /// Relays every connection to `target`.
    pub async fn start(target: SocketAddr) -> PingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let events = Arc::new(Mutex::new(Vec::new()));
        let log = events.clone();
        let task = tokio::spawn(async move {
            let mut pumps = tokio::task::JoinSet::new();
            let mut conn = 0;
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                log.lock().unwrap().push(Event::Open {
                    conn,
                    at: Instant::now(),
                });
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                pumps.spawn(pump(cr, sw, Frames::new(24, true, conn, log.clone())));
                pumps.spawn(pump(sr, cw, Frames::new(0, false, conn, log.clone())));
                conn += 1;
            }
        });
        PingRelay { addr, events, task }
    }

    /// The events so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// When each client PING on `conn` left.
    pub fn pings(&self, conn: usize) -> Vec<Instant> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Ping { conn: c, at } if c == conn => Some(at),
                _ => None,
            })
            .collect()
    }

    /// The GOAWAYs the server sent on `conn`: (last stream id, code, debug data, when).
    pub fn goaways(&self, conn: usize) -> Vec<(u32, u32, Vec<u8>, Instant)> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::GoAway {
                    conn: c,
                    at,
                    last_stream,
                    code,
                    debug,
                } if c == conn => Some((last_stream, code, debug, at)),
                _ => None,
            })
            .collect()
    }

    /// When `conn` was accepted.
    pub fn opened(&self, conn: usize) -> Option<Instant> {
        self.events().into_iter().find_map(|e| match e {
            Event::Open { conn: c, at } if c == conn => Some(at),
            _ => None,
        })
    }
}

impl Drop for PingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Frame-header reading of one direction.
struct Frames {
    skip: usize,
    head: Vec<u8>,
    payload: Option<Vec<u8>>,
    upstream: bool,
    conn: usize,
    log: Arc<Mutex<Vec<Event>>>,
}

impl Frames {
    fn new(skip: usize, upstream: bool, conn: usize, log: Arc<Mutex<Vec<Event>>>) -> Frames {
        Frames {
            skip,
            head: Vec::with_capacity(9),
            payload: None,
            upstream,
            conn,
            log,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                if let Some(kept) = &mut self.payload {
                    kept.extend_from_slice(&bytes[..n]);
                }
                self.skip -= n;
                bytes = &bytes[n..];
                if self.skip == 0 {
                    self.finish();
                }
                continue;
            }
            let n = (9 - self.head.len()).min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.head.len() < 9 {
                break;
            }
            let h = std::mem::take(&mut self.head);
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
            let (kind, flags) = (h[3], h[4]);
            if self.upstream && kind == 0x6 && flags & 0x1 == 0 {
                self.log.lock().unwrap().push(Event::Ping {
                    conn: self.conn,
                    at: Instant::now(),
                });
            }
            if !self.upstream && kind == 0x7 {
                self.payload = Some(Vec::with_capacity(len));
            }
            self.skip = len;
            if len == 0 {
                self.finish();
            }
        }
    }

    fn finish(&mut self) {
        if let Some(p) = self.payload.take()
            && p.len() >= 8
        {
            self.log.lock().unwrap().push(Event::GoAway {
                conn: self.conn,
                at: Instant::now(),
                last_stream: u32::from_be_bytes([p[0], p[1], p[2], p[3]]) & 0x7fff_ffff,
                code: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                debug: p[8..].to_vec(),
            });
        }
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frames: Frames,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return;
            }
            Ok(n) => n,
        };
        frames.feed(&buf[..n]);
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

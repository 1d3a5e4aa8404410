//! A TCP fault proxy on loopback: it forwards every connection to a target and can break the
//! first one (or every one) in a chosen way at a chosen octet of a chosen direction, or on
//! the test's word. Ours, so that a test knows exactly which octet was the last delivered.
//!
//! ```text
//!   client ──▶ proxy (127.0.0.1:0) ──▶ target        Upload:   client → target octets
//!          ◀──                     ◀──               Download: target → client octets
//!
//!   Action     after `at` octets of the direction
//!   Cut        both sockets closed (FIN both ways)
//!   Reset      both sockets closed with RST (SO_LINGER 0)
//!   HalfClose  that direction gets FIN; the other keeps flowing
//!   Stall      that direction forwards nothing more (the sender's buffers fill); the other
//!              keeps flowing
//! ```
//!
//! `delay` holds every chunk of both directions for that long before forwarding it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which way the octets go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client to target.
    Upload,
    /// Target to client.
    Download,
}

/// What happens at the chosen octet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Cut,
    Reset,
    HalfClose,
    Stall,
}

/// A fault: `action` once `at` octets have gone `dir` on a connection.
#[derive(Clone, Copy, Debug)]
pub struct Fault {
    pub dir: Dir,
    pub at: usize,
    pub action: Action,
}

/// How the proxy treats connections.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plan {
    /// The fault, if any.
    pub fault: Option<Fault>,
    /// Applies the fault to every connection, not only the first.
    pub every_connection: bool,
    /// Holds each chunk this long before forwarding it.
    pub delay: Option<Duration>,
}

/// A running proxy; stops (with every connection) when dropped.
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicUsize>,
    /// Octets forwarded so far, per direction, over all connections.
    pub uploaded: Arc<AtomicUsize>,
    pub downloaded: Arc<AtomicUsize>,
    cut: watch::Sender<bool>,
    /// Set by `stall_now`: both directions of every connection forward nothing more.
    stalled: Arc<std::sync::atomic::AtomicBool>,
    task: JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `target` following `plan`.
    pub async fn start(target: SocketAddr, plan: Plan) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = Arc::new(AtomicUsize::new(0));
        let uploaded = Arc::new(AtomicUsize::new(0));
        let downloaded = Arc::new(AtomicUsize::new(0));
        let (cut, cut_rx) = watch::channel(false);
        let stalled = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stall = stalled.clone();
        let (count, up, down) = (connections.clone(), uploaded.clone(), downloaded.clone());
        let task = tokio::spawn(async move {
            let mut pumps = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                let n = count.fetch_add(1, Ordering::SeqCst);
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                let fault = plan.fault.filter(|_| n == 0 || plan.every_connection);
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                // One kill switch per connection: a Cut or Reset in one direction ends both.
                let (kill, killed) = watch::channel(false);
                let kill = Arc::new(kill);
                for (dir, from, to, total) in [
                    (Dir::Upload, client_read, server_write, up.clone()),
                    (Dir::Download, server_read, client_write, down.clone()),
                ] {
                    let pump = Pump {
                        fault: fault.filter(|f| f.dir == dir),
                        delay: plan.delay,
                        total,
                        kill: kill.clone(),
                        killed: killed.clone(),
                        cut: cut_rx.clone(),
                        stalled: stall.clone(),
                    };
                    pumps.spawn(pump.run(from, to));
                }
            }
        });
        FaultProxy {
            addr,
            connections,
            uploaded,
            downloaded,
            cut,
            stalled,
            task,
        }
    }

    /// From now on every connection forwards nothing more, either way, and closes nothing:
    /// a peer that went silent (a dead host, a black-holing middlebox).
    pub fn stall_now(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Cuts every open connection now (both sockets closed with FIN).
    pub fn cut_now(&self) {
        let _ = self.cut.send(true);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One direction of one connection.
struct Pump {
    fault: Option<Fault>,
    delay: Option<Duration>,
    total: Arc<AtomicUsize>,
    kill: Arc<watch::Sender<bool>>,
    killed: watch::Receiver<bool>,
    cut: watch::Receiver<bool>,
    stalled: Arc<std::sync::atomic::AtomicBool>,
}

impl Pump {
    async fn run(mut self, mut from: OwnedReadHalf, mut to: OwnedWriteHalf) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut forwarded = 0usize;
        loop {
            let n = tokio::select! {
                _ = fired(&mut self.killed) => return,
                _ = fired(&mut self.cut) => {
                    let _ = self.kill.send(true);
                    return;
                }
                read = from.read(&mut buf) => match read {
                    Ok(0) | Err(_) => {
                        let _ = to.shutdown().await;
                        return;
                    }
                    Ok(n) => n,
                },
            };
            if let Some(delay) = self.delay {
                tokio::time::sleep(delay).await;
            }
            if self.stalled.load(Ordering::SeqCst) {
                tokio::select! {
                    _ = fired(&mut self.killed) => {}
                    _ = fired(&mut self.cut) => { let _ = self.kill.send(true); }
                }
                return;
            }
            let mut chunk = &buf[..n];
            let hit = self.fault.filter(|f| forwarded + n >= f.at);
            if let Some(fault) = hit {
                chunk = &chunk[..fault.at - forwarded];
            }
            if to.write_all(chunk).await.is_err() {
                let _ = self.kill.send(true);
                return;
            }
            forwarded += chunk.len();
            self.total.fetch_add(chunk.len(), Ordering::SeqCst);
            let Some(fault) = hit else { continue };
            match fault.action {
                Action::Cut => {
                    let _ = self.kill.send(true);
                    return;
                }
                Action::Reset => {
                    // SO_LINGER 0 on both sockets turns their close into RST.
                    let _ = from.as_ref().set_zero_linger();
                    let _ = to.as_ref().set_zero_linger();
                    let _ = self.kill.send(true);
                    return;
                }
                Action::HalfClose => {
                    let _ = to.shutdown().await;
                    // Keep the read half (dropping it would not close anything, but keep the
                    // socket whole until the other direction ends).
                    let _ = fired(&mut self.killed).await;
                    return;
                }
                Action::Stall => {
                    tokio::select! {
                        _ = fired(&mut self.killed) => {}
                        _ = fired(&mut self.cut) => { let _ = self.kill.send(true); }
                    }
                    return;
                }
            }
        }
    }
}

/// Waits until `switch` is set (or its sender is gone).
async fn fired(switch: &mut watch::Receiver<bool>) {
    let _ = switch.wait_for(|on| *on).await.map(|_| ());
}

//! Shared harness for the integration tests: our interop server started in-process, the repo
//! root, and a time-bounded runner for peer programs (grpc-go, grpcio).
//!
//! The server binds `127.0.0.1:0`, so tests never collide on ports, and is handed its listener
//! before anyone connects, so no test sleeps waiting for it.
#![allow(dead_code)]

pub mod interop;
#[path = "../../examples/interop/test_service.rs"]
pub mod test_service;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use bare_grpc::Server;

/// The root of the repository (where Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Starts our interop server once per test binary, on a free loopback port, in a background
/// thread with its own runtime; returns its address. It lives until the test binary exits.
pub fn interop_server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = std_listener.local_addr().expect("local addr");
        std_listener.set_nonblocking(true).expect("nonblocking");
        std::thread::Builder::new()
            .name("interop-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(std_listener).expect("tokio listener");
                    Server::builder()
                        .add_service(test_service::test_service())
                        .build()
                        .serve(listener)
                        .await
                        .expect("interop server");
                });
            })
            .expect("spawn server thread");
        addr
    })
}

/// Runs a peer program to completion within `timeout`; kills it and panics (with its output)
/// if it takes longer. Returns its output whatever its exit status.
pub fn run_peer(mut cmd: Command, timeout: Duration) -> Output {
    let description = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
    let pid = child.id();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    match done_rx.recv_timeout(timeout) {
        Ok(output) => output.expect("peer output"),
        Err(_) => {
            // The child is owned by the waiting thread; end it by pid, then collect its output.
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            let output = done_rx.recv().expect("peer waiter").expect("peer output");
            panic!(
                "{description} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// A server started inside the current test's runtime; stops (gracefully) when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The serve task, finished once shutdown has drained.
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts `server` on a free loopback port.
    pub async fn start(server: Server) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve_with_shutdown(listener, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Begins graceful shutdown and returns the serve task to await.
    pub fn shutdown(&mut self) -> tokio::task::JoinHandle<std::io::Result<()>> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.take().expect("shutdown called twice")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

//! The server's accept loop over a Unix domain socket (`Server::serve_unix`).
//!
//! The rule: gRPC over HTTP/2 is the same on any reliable byte stream (PROTOCOL-HTTP2 §
//! HTTP2 Transport Mapping); gRPC's naming document gives clients the `unix:` targets that
//! reach such a server. Each accepted socket is served by `server::serve_connection`, exactly
//! as a TCP one, with no peer address (`Peer::addr` is `None`: a Unix socket's peer has none).
//!
//! Why a loop of its own rather than a generic one: the TCP loop (`server.rs`) also sets
//! TCP_NODELAY and hands TLS its socket; this one has neither, and the two stay short. The
//! shutdown is the same: stop accepting, signal every connection (GOAWAY), wait up to the
//! drain timeout, then drop what is left.
//!
//! What it does not do: TLS over a Unix socket, or remove the socket file (the caller bound
//! it, the caller removes it).

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::server::{Streams, is_fatal_accept_error, serve_connection};
use crate::first::{First, first};
use crate::peer::Peer;

/// Accepts connections on `listener` until `signal` fires, then drains them.
pub(crate) async fn serve_unix<S: Streams>(
    listener: UnixListener,
    shared: Arc<S>,
    signal: impl Future<Output = ()>,
) -> io::Result<()> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut signal = std::pin::pin!(signal);
    loop {
        while connections.try_join_next().is_some() {}
        let accepted = match first(&mut signal, listener.accept()).await {
            First::A(()) => break,
            First::B(accepted) => accepted,
        };
        let socket = match accepted {
            Ok((socket, _)) => socket,
            Err(error) if is_fatal_accept_error(&error) => return Err(error),
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                continue;
            }
        };
        connections.spawn(serve_connection(
            socket,
            Peer::plain(None),
            Arc::clone(&shared),
            shutdown_rx.clone(),
        ));
    }
    drop(listener);
    let _ = shutdown_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(shared.config().drain_timeout, drain)
        .await
        .is_err()
    {
        connections.shutdown().await;
    }
    Ok(())
}

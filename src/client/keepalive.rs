//! Client keepalive (gRFC A8): a PING after `keepalive_time` without a byte read, the
//! connection closed when its ACK has not come within `keepalive_timeout`, and the time
//! doubled for the channel's next connections when a server answers GOAWAY(ENHANCE_YOUR_CALM,
//! "too_many_pings").
//!
//! ```text
//!   every keepalive_time / 8:  bytes read since the last look?  yes -> quiet since now
//!                              quiet for keepalive_time, and calls open (or permit_without_calls)?
//!                                 -> PING; ACK within keepalive_timeout -> quiet since now
//!                                          no ACK                      -> connection killed:
//!                                             its calls end UNAVAILABLE, the subchannel reconnects,
//!                                             the balancer picks a live one meanwhile
//!   connection ended after GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") -> keepalive_time *= 2
//! ```
//!
//! Why this shape: the read side is watched by `transport::frame_watch` (h2 shows neither the
//! bytes read nor a GOAWAY's debug data), which sets one flag per read, so the call path pays
//! one store. The clock is polled every eighth of `keepalive_time`, so a PING leaves between
//! `keepalive_time` and 1.125 × that after the last byte read (A8 allows measuring by
//! polling; it forbids measuring from the last PING sent, which this never does). Killing a
//! connection goes through the watcher too: its next read fails, so h2 ends the connection
//! and every stream on it the way a broken socket would.
//!
//! Rules from A8 kept here: KEEPALIVE_TIME below 10 s is raised to 10 s
//! ([`MIN_KEEPALIVE_TIME`]); KEEPALIVE_TIMEOUT defaults to 20 s; no PING without calls unless
//! `permit_without_calls`; the doubling is logged at a level that is on by default (stderr).
//!
//! What it does not do: A8's optional "start a new connection before killing the old one", and
//! the PING before a new call's HEADERS on a connection quiet for longer than keepalive_time.
//!
//! Link: gRFC A8 <https://github.com/grpc/proposal/blob/master/A8-client-side-keepalive.md>.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::fast::driver::ConnectionDriver;
use crate::status::Status;
use crate::transport::frame_watch::Watch;

/// A8: "If smaller than ten seconds, ten seconds will be used instead."
pub const MIN_KEEPALIVE_TIME: Duration = Duration::from_secs(10);
/// A8's KEEPALIVE_TIMEOUT default.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// A channel's keepalive settings, shared by its connections.
#[derive(Debug)]
pub(crate) struct ClientKeepalive {
    /// KEEPALIVE_TIME in milliseconds for new connections (doubled on too_many_pings).
    time_ms: AtomicU64,
    /// KEEPALIVE_TIMEOUT.
    pub(crate) timeout: Duration,
    /// KEEPALIVE_WITHOUT_CALLS.
    pub(crate) permit_without_calls: bool,
}

impl ClientKeepalive {
    /// Checked settings: `time` raised to [`MIN_KEEPALIVE_TIME`]; a zero `timeout` is
    /// INVALID_ARGUMENT.
    pub(crate) fn new(
        time: Duration,
        timeout: Duration,
        permit_without_calls: bool,
    ) -> Result<ClientKeepalive, Status> {
        if timeout.is_zero() {
            return Err(Status::invalid_argument(
                "keepalive timeout must be above zero (gRFC A8's default is 20 s)",
            ));
        }
        let time = time.max(MIN_KEEPALIVE_TIME);
        Ok(ClientKeepalive {
            time_ms: AtomicU64::new(u64::try_from(time.as_millis()).unwrap_or(u64::MAX)),
            timeout,
            permit_without_calls,
        })
    }

    /// KEEPALIVE_TIME for a connection made now.
    pub(crate) fn time(&self) -> Duration {
        Duration::from_millis(self.time_ms.load(Ordering::Relaxed))
    }

    /// A8: "double the configured KEEPALIVE_TIME used for new connections on that channel".
    fn double(&self) -> Duration {
        let doubled = self.time_ms.load(Ordering::Relaxed).saturating_mul(2);
        self.time_ms.store(doubled, Ordering::Relaxed);
        Duration::from_millis(doubled)
    }
}

/// Runs one connection's keepalive until the connection ends.
pub(crate) async fn run(
    mut ping_pong: h2::PingPong,
    watch: Arc<Watch>,
    settings: Arc<ClientKeepalive>,
    driver: Arc<ConnectionDriver>,
) {
    let time = settings.time();
    let tick = time / 8;
    let mut quiet_since = Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        if watch.ended.load(Ordering::Acquire) {
            break;
        }
        if watch.read_activity.swap(false, Ordering::Relaxed) {
            quiet_since = Instant::now();
            continue;
        }
        if quiet_since.elapsed() < time {
            continue;
        }
        // A8: keepalive is off while the connection has no calls, unless permitted.
        if !settings.permit_without_calls && watch.open_streams.load(Ordering::Relaxed) == 0 {
            continue;
        }
        match tokio::time::timeout(settings.timeout, ping_pong.ping(h2::Ping::opaque())).await {
            Ok(Ok(_)) => quiet_since = Instant::now(),
            // The connection is gone already.
            Ok(Err(_)) => break,
            Err(_) => {
                watch.kill();
                driver.wake();
                break;
            }
        }
    }
    if watch.too_many_pings.swap(false, Ordering::AcqRel) {
        let doubled = settings.double();
        eprintln!(
            "bare-grpc: the server answered GOAWAY(ENHANCE_YOUR_CALM, \"too_many_pings\"); \
             keepalive time for new connections doubled to {doubled:?} (gRFC A8)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A8: below 10 s, 10 s is used; a zero timeout is refused.
    #[test]
    fn settings_are_checked() {
        let ka = ClientKeepalive::new(Duration::from_secs(1), Duration::from_secs(1), false);
        assert_eq!(ka.unwrap().time(), MIN_KEEPALIVE_TIME);
        let err = ClientKeepalive::new(Duration::from_secs(30), Duration::ZERO, false);
        assert_eq!(
            err.unwrap_err().code(),
            crate::status::Code::InvalidArgument
        );
    }

    #[test]
    fn too_many_pings_doubles_the_time() {
        let ka =
            ClientKeepalive::new(Duration::from_secs(10), Duration::from_secs(1), true).unwrap();
        assert_eq!(ka.double(), Duration::from_secs(20));
        assert_eq!(ka.time(), Duration::from_secs(20));
    }
}

//! A server connection's keepalive and age (gRFC A8 enforcement and server pings, gRFC A9's
//! connection idle and age), run by the connection task between its turns (`server.rs`).
//!
//! ```text
//!  PING received (counted by frame_watch)
//!    no calls and pings without calls not permitted:  last valid ping + 2 h     > now -> strike
//!    otherwise:                                       last valid ping + min_time > now -> strike
//!    else: last valid ping = now
//!    strikes > 2 -> GOAWAY(highest stream id, ENHANCE_YOUR_CALM, "too_many_pings"), drain
//!  HEADERS or DATA sent  -> strikes = 0, last valid ping = never     (A8: pings after data are fine)
//!
//!  keepalive_time without a byte read -> PING; no ACK within keepalive_timeout -> close
//!  max_connection_idle with no call   -> graceful GOAWAY (h2: GOAWAY(2^31-1), PING, GOAWAY(last))
//!  max_connection_age (±10 % jitter)  -> graceful GOAWAY; after max_connection_age_grace -> close
//! ```
//!
//! Why these shapes: the strike rule is A8's suggested algorithm, as grpc-go and C-core run it,
//! so a client tuned against them is judged the same here. A8 closes an abusive connection at
//! once, failing its calls so the misconfiguration is noticed; we let the calls already running
//! finish (bounded by the server's drain timeout) because the GOAWAY and its debug data already
//! tell the client (grpc-go and our client log it and double their keepalive time), and a call
//! admitted under the policy did nothing wrong. Age is jittered (as grpc-go does) so that the
//! connections a fleet of clients opened together do not all go away together.
//!
//! What it does not do: the timers only exist when their setting is on (the enforcement needs
//! none), so the call path pays nothing for what is not configured; the keepalive clock is
//! "no read since the last check", not the time of the last byte, so a PING leaves between
//! `keepalive_time` and twice that after the last read (A8 allows this "polling" form).
//!
//! Links: gRFC A8 <https://github.com/grpc/proposal/blob/master/A8-client-side-keepalive.md>,
//! gRFC A9 <https://github.com/grpc/proposal/blob/master/A9-server-side-conn-mgt.md>,
//! RFC 9113 §6.7, §6.8 <https://www.rfc-editor.org/rfc/rfc9113>.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::frame_watch::Watch;

/// A8's MAX_PING_STRIKES: a third ping too soon is abuse.
const MAX_PING_STRIKES: u8 = 2;
/// A8: without calls (and without permission), one ping per two hours, TCP keepalive's rate.
const WITHOUT_CALLS_INTERVAL: Duration = Duration::from_secs(2 * 60 * 60);
/// A8's PERMIT_KEEPALIVE_TIME default.
pub(crate) const DEFAULT_MIN_PING_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// A8's KEEPALIVE_TIMEOUT default, for the server's own pings too.
pub(crate) const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Keepalive and age settings of every connection of a server.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeepaliveConfig {
    /// PERMIT_KEEPALIVE_TIME: the least interval between a client's pings.
    pub(crate) min_ping_interval: Duration,
    /// PERMIT_KEEPALIVE_WITHOUT_CALLS.
    pub(crate) permit_without_stream: bool,
    /// Our own PING after this long without a byte read (`None`: never).
    pub(crate) time: Option<Duration>,
    /// How long our PING waits for its ACK before the connection is closed.
    pub(crate) timeout: Duration,
    /// Graceful GOAWAY after this long without a call.
    pub(crate) max_idle: Option<Duration>,
    /// Graceful GOAWAY this long (±10 %) after the connection started.
    pub(crate) max_age: Option<Duration>,
    /// After an age GOAWAY, close when calls still run this much later (`None`: wait for them).
    pub(crate) max_age_grace: Option<Duration>,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig {
            min_ping_interval: DEFAULT_MIN_PING_INTERVAL,
            permit_without_stream: false,
            time: None,
            timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            max_idle: None,
            max_age: None,
            max_age_grace: None,
        }
    }
}

/// What the connection task does after a turn of [`ConnectionKeepalive::poll`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing.
    Go,
    /// Graceful GOAWAY: no new calls, the running ones finish.
    Drain,
    /// Close the connection now.
    Close,
}

/// One connection's keepalive state.
pub(crate) struct ConnectionKeepalive {
    /// The settings.
    config: KeepaliveConfig,
    /// What the frame watcher saw.
    watch: Arc<Watch>,
    /// Pings too soon since the last HEADERS or DATA we sent.
    strikes: u8,
    /// A8's last_valid_ping_time; `None` is "epoch".
    last_valid_ping: Option<Instant>,
    /// Streams above this id are refused: our too_many_pings GOAWAY named it.
    refuse_above: Option<u32>,
    /// For our own pings.
    ping_pong: Option<h2::PingPong>,
    /// Our PING is out, waiting for its ACK.
    awaiting_pong: bool,
    /// The next keepalive check, or our PING's deadline.
    ping_timer: Option<Pin<Box<Sleep>>>,
    /// Fires when the connection may have been idle for `max_idle`.
    idle_timer: Option<Pin<Box<Sleep>>>,
    /// Since when no call has run.
    idle_since: Option<Instant>,
    /// The age GOAWAY.
    age_timer: Option<Pin<Box<Sleep>>>,
    /// Closes a draining connection whose calls run too long.
    close_timer: Option<Pin<Box<Sleep>>>,
}

impl ConnectionKeepalive {
    /// The state of a connection that starts now; `ping_pong` is h2's, for our own pings.
    pub(crate) fn new(
        config: KeepaliveConfig,
        watch: Arc<Watch>,
        ping_pong: Option<h2::PingPong>,
    ) -> ConnectionKeepalive {
        let now = Instant::now();
        let timer = |d: Duration| Some(Box::pin(tokio::time::sleep_until(now + d)));
        ConnectionKeepalive {
            config,
            watch,
            strikes: 0,
            last_valid_ping: None,
            refuse_above: None,
            ping_pong: config.time.and(ping_pong),
            awaiting_pong: false,
            ping_timer: config.time.and_then(timer),
            idle_timer: config.max_idle.and_then(timer),
            idle_since: config.max_idle.map(|_| now),
            age_timer: config.max_age.map(jittered).and_then(timer),
            close_timer: None,
        }
    }

    /// Streams above this id must be refused (REFUSED_STREAM): our GOAWAY said so.
    pub(crate) fn refuse_above(&self) -> Option<u32> {
        self.refuse_above
    }

    /// Called once per turn of the connection task: judges the pings received, runs the
    /// timers. `has_streams`: whether any stream is open (h2's count, behind h2's lock, so
    /// asked only when a ping or the idle timer needs it); `drain`: the bound on a drain we
    /// start.
    pub(crate) fn poll(
        &mut self,
        cx: &mut Context<'_>,
        has_streams: impl Fn() -> bool,
        drain: Duration,
    ) -> Step {
        let mut step = Step::Go;
        if self.watch.pings.load(Ordering::Relaxed) != 0 {
            step = self.judge_pings(has_streams(), drain);
        }
        if let Some(timer) = &mut self.close_timer
            && timer.as_mut().poll(cx).is_ready()
        {
            return Step::Close;
        }
        if self.ping_timer.is_some() && self.poll_keepalive(cx) {
            return Step::Close;
        }
        if let Some(timer) = &mut self.age_timer
            && timer.as_mut().poll(cx).is_ready()
        {
            self.age_timer = None;
            if let Some(grace) = self.config.max_age_grace {
                self.close_after(grace, cx);
            }
            step = Step::Drain;
        }
        if let (Some(max_idle), Some(timer)) = (self.config.max_idle, &mut self.idle_timer) {
            if has_streams() {
                self.idle_since = None;
            } else if self.idle_since.is_none() {
                self.idle_since = Some(Instant::now());
            }
            if timer.as_mut().poll(cx).is_ready() {
                match self.idle_since {
                    Some(since) if since.elapsed() >= max_idle => {
                        self.idle_timer = None;
                        step = Step::Drain;
                    }
                    since => {
                        let from = since.unwrap_or_else(Instant::now);
                        timer.as_mut().reset(from + max_idle);
                        let _ = timer.as_mut().poll(cx);
                    }
                }
            }
        }
        step
    }

    /// A8's strike rule over the pings received since the last turn.
    fn judge_pings(&mut self, has_streams: bool, drain: Duration) -> Step {
        let pings = self.watch.pings.swap(0, Ordering::Relaxed);
        if self
            .watch
            .sent_headers_or_data
            .swap(false, Ordering::Relaxed)
        {
            // "When a HEADERS or DATA frame is sent, set last_valid_ping_time = epoch;
            // ping_strikes = 0" (A8).
            self.strikes = 0;
            self.last_valid_ping = None;
        }
        if self.refuse_above.is_some() {
            return Step::Go;
        }
        let now = Instant::now();
        for _ in 0..pings {
            let interval = if !has_streams && !self.config.permit_without_stream {
                WITHOUT_CALLS_INTERVAL
            } else {
                self.config.min_ping_interval
            };
            match self.last_valid_ping {
                Some(last) if last + interval > now => self.strikes += 1,
                _ => self.last_valid_ping = Some(now),
            }
            if self.strikes > MAX_PING_STRIKES {
                let last = self.watch.highest_stream.load(Ordering::Relaxed);
                self.watch.send_calm_goaway(last);
                self.refuse_above = Some(last);
                self.close_timer = Some(Box::pin(tokio::time::sleep(drain)));
                return Step::Drain;
            }
        }
        Step::Go
    }

    /// Our keepalive: true when the connection must close (no ACK in time).
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> bool {
        let (Some(time), Some(ping_pong), Some(timer)) = (
            self.config.time,
            self.ping_pong.as_mut(),
            self.ping_timer.as_mut(),
        ) else {
            return false;
        };
        if self.awaiting_pong {
            match ping_pong.poll_pong(cx) {
                Poll::Ready(Ok(_)) => {
                    self.awaiting_pong = false;
                    timer.as_mut().reset(Instant::now() + time);
                }
                // The connection is failing anyway; h2 ends it.
                Poll::Ready(Err(_)) => return false,
                Poll::Pending => {}
            }
        }
        if timer.as_mut().poll(cx).is_pending() {
            return false;
        }
        if self.awaiting_pong {
            // "If it does not receive an acknowledgment within this time, it will close the
            // connection" (keepalive.md).
            return true;
        }
        if self.watch.read_activity.swap(false, Ordering::Relaxed) {
            timer.as_mut().reset(Instant::now() + time);
        } else if ping_pong.send_ping(h2::Ping::opaque()).is_ok() {
            self.awaiting_pong = true;
            timer.as_mut().reset(Instant::now() + self.config.timeout);
            let _ = ping_pong.poll_pong(cx);
        }
        let _ = timer.as_mut().poll(cx);
        false
    }

    /// Arms the close timer (`grace` from now) and registers it.
    fn close_after(&mut self, grace: Duration, cx: &mut Context<'_>) {
        let mut timer = Box::pin(tokio::time::sleep(grace));
        let _ = timer.as_mut().poll(cx);
        self.close_timer = Some(timer);
    }
}

/// `age` moved by up to ±10 % (grpc-go's jitter for MaxConnectionAge), from the clock.
fn jittered(age: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = u64::from(nanos) | 1;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
    age.mul_f64(0.9 + 0.2 * unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(config: KeepaliveConfig) -> (ConnectionKeepalive, Arc<Watch>) {
        let watch = Arc::new(Watch::default());
        (ConnectionKeepalive::new(config, watch.clone(), None), watch)
    }

    fn ping(keepalive: &mut ConnectionKeepalive, watch: &Watch, streams: bool) -> Step {
        watch.pings.fetch_add(1, Ordering::Relaxed);
        keepalive.judge_pings(streams, Duration::from_secs(1))
    }

    /// A8: the first ping is valid, two strikes are forgiven, the third is abuse.
    #[tokio::test(start_paused = true)]
    async fn the_third_strike_sends_too_many_pings() {
        let (mut ka, watch) = state(KeepaliveConfig::default());
        watch.highest_stream.store(7, Ordering::Relaxed);
        assert_eq!(ping(&mut ka, &watch, true), Step::Go);
        assert_eq!(ping(&mut ka, &watch, true), Step::Go);
        assert_eq!(ping(&mut ka, &watch, true), Step::Go);
        assert_eq!(ping(&mut ka, &watch, true), Step::Drain);
        assert_eq!(ka.refuse_above(), Some(7));
    }

    /// A8: pings at the permitted interval are never strikes.
    #[tokio::test(start_paused = true)]
    async fn pings_at_the_permitted_interval_are_fine() {
        let config = KeepaliveConfig {
            min_ping_interval: Duration::from_secs(10),
            ..KeepaliveConfig::default()
        };
        let (mut ka, watch) = state(config);
        for _ in 0..10 {
            assert_eq!(ping(&mut ka, &watch, true), Step::Go);
            tokio::time::advance(Duration::from_secs(10)).await;
        }
    }

    /// A8: without calls the allowance is one ping per two hours unless permitted.
    #[tokio::test(start_paused = true)]
    async fn without_calls_the_interval_is_two_hours_unless_permitted() {
        let config = KeepaliveConfig {
            min_ping_interval: Duration::from_secs(10),
            ..KeepaliveConfig::default()
        };
        let (mut ka, watch) = state(config);
        let mut steps = Vec::new();
        for _ in 0..4 {
            steps.push(ping(&mut ka, &watch, false));
            tokio::time::advance(Duration::from_secs(60)).await;
        }
        assert_eq!(steps.last(), Some(&Step::Drain));
        let (mut ka, watch) = state(KeepaliveConfig {
            permit_without_stream: true,
            ..config
        });
        for _ in 0..4 {
            assert_eq!(ping(&mut ka, &watch, false), Step::Go);
            tokio::time::advance(Duration::from_secs(60)).await;
        }
    }

    /// A8: sending HEADERS or DATA forgives the strikes (pings that measure bandwidth).
    #[tokio::test(start_paused = true)]
    async fn data_sent_resets_the_strikes() {
        let (mut ka, watch) = state(KeepaliveConfig::default());
        for _ in 0..20 {
            watch.sent_headers_or_data.store(true, Ordering::Relaxed);
            assert_eq!(ping(&mut ka, &watch, true), Step::Go);
        }
    }

    #[test]
    fn age_jitter_stays_within_ten_percent() {
        for _ in 0..100 {
            let age = jittered(Duration::from_secs(100)).as_secs_f64();
            assert!((90.0..=110.0).contains(&age), "{age}");
        }
    }
}

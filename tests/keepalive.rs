//! Keepalive (gRFC A8) and connection age (gRFC A9) between our own client and servers,
//! started here on loopback; the grpc-go peers of the same rules are in `tests/keepalive_go.rs`.
//!
//! - our client pinging too often gets our server's GOAWAY(ENHANCE_YOUR_CALM,
//!   "too_many_pings") (seen on the wire by `tests/ping_relay`, with no later GOAWAY raising
//!   its last-stream-id), and doubles its keepalive time;
//! - a peer that stops answering (`tests/fault_proxy` stalls) is found within keepalive_time +
//!   keepalive_timeout + the stated slack; the calls on it end UNAVAILABLE and the next call
//!   goes to the live backend;
//! - max_connection_age moves a long-lived round_robin channel onto a backend that appeared
//!   after it connected, and the call in flight at the GOAWAY finishes;
//! - max_connection_idle closes an idle connection; bad settings are refused at build time.
//!
//! Time: A8 raises a client keepalive time under 10 s to 10 s, so these tests wait real
//! seconds (the longest about 35 s); they run in parallel with each other.

mod client_support;
mod fault_proxy;
mod ping_relay;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bare_grpc::client::{Address, LoadBalancingPolicy, ResolveFuture, Resolver};
use bare_grpc::interceptor::{CallInfo, Interceptor};
use bare_grpc::{Channel, Code, Metadata, Request, Response, Server, Status};
use client_support::{BIDI, HANG, UNARY, start_echo_configured, start_echo_with};
use fault_proxy::{FaultProxy, Plan};
use ping_relay::PingRelay;
use tokio::net::TcpListener;
use tokio::time::Instant;

/// ENHANCE_YOUR_CALM (RFC 9113 §7).
const ENHANCE_YOUR_CALM: u32 = 0xb;

async fn unary(channel: &Channel) -> Result<String, Status> {
    let mut request = Request::new(String::from("hi"));
    request.set_timeout(Duration::from_secs(5));
    let reply: Response<String> = channel.unary(UNARY, request).await?;
    Ok(reply.into_inner())
}

/// Waits (bounded) until `check` holds, looking every 100 ms.
async fn eventually(bound: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let end = Instant::now() + bound;
    while !check() {
        assert!(Instant::now() < end, "not within {bound:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A8 server enforcement against our client: the client pings every 10 s without calls
/// (permitted on its side, not on the server's), so after the first ping every ping is a
/// strike (A8: without calls, once per two hours); the third strike gets GOAWAY(last stream 0,
/// ENHANCE_YOUR_CALM, "too_many_pings"), and no GOAWAY after it on that connection raises the
/// last-stream-id (RFC 9113 §6.8; h2's own graceful GOAWAY says 2^31-1 and is dropped). The
/// client doubles its keepalive time for its next connection and the next call succeeds.
#[tokio::test]
async fn too_many_pings_from_our_client_get_goaway_and_the_client_doubles_its_time() {
    let server = start_echo_with(|b| b.keepalive_enforcement(Duration::from_secs(60), false)).await;
    let relay = PingRelay::start(server.addr).await;
    let channel = Channel::builder(&relay.addr.to_string())
        .unwrap()
        .keepalive(Duration::from_secs(10), Duration::from_secs(5))
        .unwrap()
        .keepalive_permit_without_calls(true)
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(channel.keepalive_time(), Some(Duration::from_secs(10)));
    // Readiness ping at 0, keepalive pings at about 10, 20, 30 s: the last is the third strike.
    eventually(Duration::from_secs(50), "the too_many_pings GOAWAY", || {
        !relay.goaways(0).is_empty()
    })
    .await;
    let goaways = relay.goaways(0);
    let (last, code, debug, _) = &goaways[0];
    assert_eq!((*last, *code), (0, ENHANCE_YOUR_CALM));
    assert_eq!(debug.as_slice(), b"too_many_pings");
    let pings = relay.pings(0);
    assert!(
        pings.len() >= 4,
        "readiness ping + 3 keepalive pings: {pings:?}"
    );
    for gap in pings.windows(2).skip(1) {
        let gap = gap[1] - gap[0];
        assert!(
            gap >= Duration::from_secs(10) && gap < Duration::from_secs(13),
            "keepalive pings 10 s apart (+ the 1/8 poll): {gap:?}"
        );
    }
    eventually(
        Duration::from_secs(10),
        "the doubled keepalive time",
        || channel.keepalive_time() == Some(Duration::from_secs(20)),
    )
    .await;
    assert_eq!(unary(&channel).await.unwrap(), "hi");
    for (last, ..) in relay.goaways(0) {
        assert_eq!(last, 0, "a later GOAWAY raised the last-stream-id");
    }
}

/// A dead peer: round_robin over a fault proxy (to server A) and server B. Four calls that
/// never answer (`Hang`) are in flight, spread over both; the proxy then stalls (forwards
/// nothing, closes nothing). The calls on the stalled connection end UNAVAILABLE within
/// keepalive_time (10 s) + keepalive_timeout (1 s) + 3 s of slack (the 1/8 poll of the idle
/// clock is 1.25 s, the rest is scheduling on a loaded machine; 12.2 s measured); the calls on B are untouched,
/// and the next calls go to B.
#[tokio::test]
async fn a_dead_peer_is_found_within_keepalive_time_plus_timeout() {
    let mut a = start_echo_with(|b| b).await;
    let b_count = Count::default();
    let b_counted = b_count.clone();
    let b = start_echo_with(move |builder| builder.interceptor(b_counted)).await;
    let proxy = FaultProxy::start(a.addr, Plan::default()).await;
    let target = format!("ipv4:{},{}", proxy.addr, b.addr);
    let channel = Channel::builder(&target)
        .unwrap()
        .load_balancing(LoadBalancingPolicy::RoundRobin)
        .keepalive(Duration::from_secs(10), Duration::from_secs(1))
        .unwrap()
        .connect_timeout(Duration::from_secs(1))
        .connect()
        .await
        .unwrap();
    // Calls until both subchannels are READY and round_robin alternates.
    let mut hanging = Vec::new();
    while b_count.get() < 10 {
        unary(&channel).await.unwrap();
    }
    for _ in 0..4 {
        let channel = channel.clone();
        hanging.push(tokio::spawn(async move {
            let mut request = Request::new(String::from("wait"));
            request.set_timeout(Duration::from_secs(40));
            let result: Result<Response<String>, Status> = channel.unary(HANG, request).await;
            (result.map(|_| ()), Instant::now())
        }));
    }
    // Two of them reached A through the proxy.
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(5), a.started.recv())
            .await
            .expect("a Hang call reached A")
            .unwrap();
    }
    let stalled_at = Instant::now();
    proxy.stall_now();
    let before = b_count.get();
    let bound = Duration::from_secs(10 + 1 + 3);
    // Every call that ends does so by the bound; then exactly the two on A have ended.
    tokio::time::sleep_until(stalled_at + bound).await;
    let mut ended = 0;
    for call in &mut hanging {
        if call.is_finished() {
            let (result, at) = (&mut *call).await.unwrap();
            let status = result.unwrap_err();
            assert_eq!(status.code(), Code::Unavailable, "{status:?}");
            assert!(
                at - stalled_at <= bound,
                "found after {:?}",
                at - stalled_at
            );
            ended += 1;
        }
    }
    assert_eq!(
        ended, 2,
        "the two calls on the dead connection end, the two on B do not"
    );
    for _ in 0..10 {
        assert_eq!(unary(&channel).await.unwrap(), "hi");
    }
    assert!(b_count.get() >= before + 10, "the next calls went to B");
    for call in hanging {
        call.abort();
    }
}

/// A resolver whose list the test changes (a registry where a backend appears later).
#[derive(Debug, Clone, Default)]
struct Registry(Arc<Mutex<Vec<SocketAddr>>>);

impl Resolver for Registry {
    fn resolve(&self) -> ResolveFuture<'_> {
        let list = self
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|a| Address::Tcp(*a))
            .collect();
        Box::pin(async move { Ok(list) })
    }
}

/// Counts the calls a server admitted.
#[derive(Clone, Default)]
struct Count(Arc<AtomicUsize>);

impl Interceptor for Count {
    type State = ();
    fn on_start(&self, _: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

impl Count {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// gRFC A9: a round_robin channel connected to A alone; B then appears in the registry.
/// Without max_connection_age the channel would never ask again (nothing is lost); with
/// A's connections aged at 1 s (±10 %), A's GOAWAY makes the channel resolve again and find
/// B, which then gets calls. A bidi call open across A's GOAWAY still finishes (grace 10 s),
/// and no call fails.
#[tokio::test]
async fn max_connection_age_rebalances_a_long_lived_channel() {
    let (a_count, b_count) = (Count::default(), Count::default());
    let aged = |count: Count| {
        move |builder: bare_grpc::server::Builder| {
            builder
                .interceptor(count)
                .max_connection_age(Duration::from_secs(1))
                .unwrap()
                .max_connection_age_grace(Duration::from_secs(10))
        }
    };
    let a = start_echo_configured(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        aged(a_count.clone()),
    );
    let b = start_echo_configured(
        TcpListener::bind("127.0.0.1:0").await.unwrap(),
        aged(b_count.clone()),
    );
    let registry = Registry::default();
    registry.0.lock().unwrap().push(a.addr);
    let channel = Channel::builder("registry.example:1")
        .unwrap()
        .resolver(registry.clone())
        .min_resolve_interval(Duration::from_millis(100))
        .load_balancing(LoadBalancingPolicy::RoundRobin)
        .connect()
        .await
        .unwrap();
    for _ in 0..5 {
        assert_eq!(unary(&channel).await.unwrap(), "hi");
    }
    assert_eq!((a_count.get(), b_count.get()), (5, 0));
    // A bidi call opened now is in flight when A's connection reaches its age.
    let bidi_channel = channel.clone();
    let bidi = tokio::spawn(async move {
        let (mut sink, mut responses) = bidi_channel
            .bidi::<String, String>(BIDI, Request::new(()))
            .await?;
        tokio::time::sleep(Duration::from_millis(2500)).await;
        sink.send(String::from("late")).await?;
        sink.finish();
        let echoed = responses.message().await?;
        Ok::<_, Status>(echoed)
    });
    registry.0.lock().unwrap().push(b.addr);
    let start = Instant::now();
    while b_count.get() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "B never got a call"
        );
        let mut request = Request::new(String::from("hi"));
        request.set_timeout(Duration::from_secs(5));
        request.set_wait_for_ready(true);
        let reply: Response<String> = channel.unary(UNARY, request).await.unwrap();
        assert_eq!(reply.into_inner(), "hi");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually(
        Duration::from_secs(5),
        "A's aged connection replaced",
        || a.connection_count() >= 2,
    )
    .await;
    let echoed = tokio::time::timeout(Duration::from_secs(10), bidi)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(echoed.as_deref(), Some("late"));
}

/// gRFC A9 MAX_CONNECTION_IDLE: a connection without calls for 300 ms gets a graceful GOAWAY;
/// the next call connects again and succeeds.
#[tokio::test]
async fn max_connection_idle_closes_an_idle_connection() {
    let server =
        start_echo_with(|b| b.max_connection_idle(Duration::from_millis(300)).unwrap()).await;
    let relay = PingRelay::start(server.addr).await;
    let channel = Channel::lazy(&relay.addr.to_string()).unwrap();
    assert_eq!(unary(&channel).await.unwrap(), "hi");
    eventually(Duration::from_secs(5), "the idle GOAWAY", || {
        relay.goaways(0).iter().any(|(_, code, ..)| *code == 0)
    })
    .await;
    eventually(Duration::from_secs(5), "the idle connection closed", || {
        server.connection_count() == 1
            && channel.get_state(false) != bare_grpc::client::ConnectivityState::Ready
    })
    .await;
    assert_eq!(unary(&channel).await.unwrap(), "hi");
    assert_eq!(server.connection_count(), 2);
}

/// Bad settings are refused when the channel or server is built, with INVALID_ARGUMENT and a
/// message naming the setting; A8's floor raises a client keepalive time under 10 s.
#[test]
fn bad_keepalive_settings_are_refused_at_build_time() {
    let builder = || Channel::builder("127.0.0.1:1").unwrap();
    let err = builder()
        .keepalive(Duration::from_secs(30), Duration::ZERO)
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("keepalive timeout"), "{err:?}");
    let err = builder().keepalive_permit_without_calls(true).unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("keepalive(time, timeout)"),
        "{err:?}"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = builder()
            .keepalive(Duration::from_secs(1), Duration::from_secs(1))
            .unwrap()
            .lazy();
        assert_eq!(
            channel.keepalive_time(),
            Some(bare_grpc::client::MIN_KEEPALIVE_TIME)
        );
        assert_eq!(Channel::lazy("127.0.0.1:1").unwrap().keepalive_time(), None);
    });
    let err = Server::builder()
        .keepalive(Duration::ZERO, Duration::from_secs(1))
        .err()
        .unwrap();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = Server::builder()
        .max_connection_age(Duration::ZERO)
        .err()
        .unwrap();
    assert!(err.message().contains("max_connection_age"), "{err:?}");
    let err = Server::builder()
        .max_connection_idle(Duration::ZERO)
        .err()
        .unwrap();
    assert!(err.message().contains("max_connection_idle"), "{err:?}");
}

/// A bad client: a raw PING flood under the default policy (A8: one ping per 5 minutes, none
/// without calls) is answered GOAWAY(last stream 0, ENHANCE_YOUR_CALM, "too_many_pings")
/// before the flood ends, with no later GOAWAY raising the last-stream-id; the server goes on
/// serving other connections.
#[tokio::test]
async fn a_ping_flood_gets_too_many_pings_under_the_default_policy() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = start_echo_with(|b| b).await;
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let frame = |kind: u8, flags: u8, payload: &[u8]| {
        let mut out = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        out.extend_from_slice(&[kind, flags, 0, 0, 0, 0]);
        out.extend_from_slice(payload);
        out
    };
    let mut opening = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    opening.extend(frame(0x4, 0, &[]));
    for _ in 0..10 {
        opening.extend(frame(0x6, 0, &[1; 8]));
    }
    tcp.write_all(&opening).await.unwrap();
    // Read frames until the connection closes; keep every GOAWAY (last id, code, debug).
    let mut bytes = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), async {
        let mut buf = [0u8; 4096];
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
            // Our PING (h2's graceful shutdown) is answered, as a client must (RFC 9113 §6.7).
            let mut at = 0;
            while at + 9 <= bytes.len() {
                let len = u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]]) as usize;
                if at + 9 + len > bytes.len() {
                    break;
                }
                if bytes[at + 3] == 0x6 && bytes[at + 4] == 0 {
                    let ack = frame(0x6, 0x1, &bytes[at + 9..at + 17]);
                    let _ = tcp.write_all(&ack).await;
                    bytes[at + 4] = 0x80; // answered: not again
                }
                at += 9 + len;
            }
        }
    })
    .await;
    let mut goaways = Vec::new();
    let mut at = 0;
    while at + 9 <= bytes.len() {
        let len = u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]]) as usize;
        let payload = &bytes[at + 9..(at + 9 + len).min(bytes.len())];
        if bytes[at + 3] == 0x7 && payload.len() >= 8 {
            goaways.push((
                u32::from_be_bytes(payload[..4].try_into().unwrap()),
                u32::from_be_bytes(payload[4..8].try_into().unwrap()),
                payload[8..].to_vec(),
            ));
        }
        at += 9 + len;
    }
    assert_eq!(
        goaways,
        vec![(0, ENHANCE_YOUR_CALM, b"too_many_pings".to_vec())],
        "one GOAWAY, ours"
    );
    let channel = Channel::lazy(&server.addr.to_string()).unwrap();
    assert_eq!(unary(&channel).await.unwrap(), "hi");
}

/// The server's own keepalive (1 s, timeout 1 s): a client that answers keeps its connection
/// through seconds of silence (its PING ACKs count); behind a proxy that stalls, the server
/// closes the connection within time + timeout + 2 s of slack (polling and scheduling), which
/// drops the call that was waiting on it (its handler sees the cancellation).
#[tokio::test]
async fn the_servers_keepalive_keeps_live_clients_and_drops_dead_ones() {
    let mut server = start_echo_with(|b| {
        b.keepalive(Duration::from_secs(1), Duration::from_secs(1))
            .unwrap()
    })
    .await;
    let relay = PingRelay::start(server.addr).await;
    let live = Channel::lazy(&relay.addr.to_string()).unwrap();
    assert_eq!(unary(&live).await.unwrap(), "hi");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(unary(&live).await.unwrap(), "hi");
    assert_eq!(server.connection_count(), 1, "the live connection was kept");

    let proxy = FaultProxy::start(server.addr, Plan::default()).await;
    let dead = Channel::lazy(&proxy.addr.to_string()).unwrap();
    let call = tokio::spawn(async move {
        let mut request = Request::new(String::from("wait"));
        request.set_timeout(Duration::from_secs(30));
        let result: Result<Response<String>, Status> = dead.unary(HANG, request).await;
        result.map(|_| ())
    });
    tokio::time::timeout(Duration::from_secs(5), server.started.recv())
        .await
        .expect("the Hang call started")
        .unwrap();
    let stalled_at = Instant::now();
    proxy.stall_now();
    tokio::time::timeout(Duration::from_secs(1 + 1 + 2), server.dropped.recv())
        .await
        .expect("the server dropped the dead connection's call in time")
        .unwrap();
    eprintln!("dead client found after {:?}", stalled_at.elapsed());
    call.abort();
}

//! Load balancing, name resolution and connectivity state, against real servers of ours
//! started here on loopback (each counting the calls it served with a server interceptor).
//!
//! The rules: gRPC's naming.md (targets), load-balancing.md (pick_first, round_robin),
//! connectivity-semantics-and-api.md (`get_state`, `wait_for_state_change`), wait-for-ready.md.
//! The grpc-go peers of the same features are in `tests/balancing_go.rs`.

mod client_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bare_grpc::client::{ConnectivityState, LoadBalancingPolicy};
use bare_grpc::interceptor::{CallInfo, Interceptor};
use bare_grpc::{Channel, Code, Metadata, Request, Response, Status};
use client_support::{EchoServer, UNARY, bounded, free_port, start_echo_configured};
use tokio::net::TcpListener;

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

/// An echo server on `listener` counting into `count`.
fn counted(listener: TcpListener, count: &Count) -> EchoServer {
    let count = count.clone();
    start_echo_configured(listener, move |b| b.interceptor(count))
}

async fn counted_fresh(count: &Count) -> EchoServer {
    counted(TcpListener::bind("127.0.0.1:0").await.unwrap(), count)
}

async fn call(channel: &Channel, wait_for_ready: bool) -> Result<String, Status> {
    let mut request = Request::new(String::from("hi"));
    request.set_timeout(Duration::from_secs(5));
    request.set_wait_for_ready(wait_for_ready);
    let reply: Response<String> = channel.unary(UNARY, request).await?;
    Ok(reply.into_inner())
}

fn ipv4_target(addrs: &[SocketAddr]) -> String {
    let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
    format!("ipv4:{}", list.join(","))
}

/// round_robin over three servers: 300 calls, each server within 100 ± 10 (the only skew is
/// which subchannel was READY first). Then one is stopped: no wait_for_ready call fails, it
/// gets no calls; started again on the same port, it gets calls again.
#[tokio::test]
async fn round_robin_spreads_and_survives_a_stopped_server() {
    bounded(async {
        let counts = [Count::default(), Count::default(), Count::default()];
        let mut servers = Vec::new();
        for count in &counts {
            servers.push(Some(counted_fresh(count).await));
        }
        let addrs: Vec<SocketAddr> = servers.iter().map(|s| s.as_ref().unwrap().addr).collect();
        let channel = Channel::builder(&ipv4_target(&addrs))
            .unwrap()
            .load_balancing(LoadBalancingPolicy::RoundRobin)
            .backoff(Duration::from_millis(50), Duration::from_millis(200))
            .connect()
            .await
            .unwrap();
        // Every subchannel READY before counting, so the spread is the policy's alone.
        while counts.iter().any(|c| c.get() == 0) {
            call(&channel, true).await.unwrap();
        }
        let base: Vec<usize> = counts.iter().map(Count::get).collect();
        for _ in 0..300 {
            assert_eq!(call(&channel, true).await.unwrap(), "hi");
        }
        for (i, count) in counts.iter().enumerate() {
            let served = count.get() - base[i];
            assert!(
                (90..=110).contains(&served),
                "server {i} served {served} of 300"
            );
        }

        // Stop the second server: every wait_for_ready call still succeeds.
        servers[1].take().unwrap().shutdown().await;
        for _ in 0..100 {
            call(&channel, true).await.unwrap();
        }
        let stopped_at = counts[1].get();
        for _ in 0..50 {
            call(&channel, true).await.unwrap();
        }
        assert_eq!(
            counts[1].get(),
            stopped_at,
            "calls went to a stopped server"
        );

        // Back on the same port: it is reconnected in the background and gets calls again.
        let listener = TcpListener::bind(addrs[1]).await.unwrap();
        servers[1] = Some(counted(listener, &counts[1]));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while counts[1].get() == stopped_at {
            assert!(tokio::time::Instant::now() < deadline, "never came back");
            call(&channel, true).await.unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(channel.get_state(false), ConnectivityState::Ready);
    })
    .await;
}

/// pick_first over a list whose first address is dead: the call reaches the second, with no
/// failure; every call goes there.
#[tokio::test]
async fn pick_first_skips_a_dead_first_address() {
    bounded(async {
        let count = Count::default();
        let server = counted_fresh(&count).await;
        let dead = free_port();
        let channel = Channel::lazy(&ipv4_target(&[dead, server.addr])).unwrap();
        for _ in 0..20 {
            call(&channel, false).await.unwrap();
        }
        assert_eq!(count.get(), 20);
        assert_eq!(
            server.connection_count(),
            1,
            "pick_first keeps one connection"
        );
    })
    .await;
}

/// Fail-fast calls over a list that is all dead end with UNAVAILABLE naming the connection
/// error, under both policies; the state is TRANSIENT_FAILURE.
#[tokio::test]
async fn all_dead_is_unavailable_naming_the_error() {
    bounded(async {
        let target = ipv4_target(&[free_port(), free_port()]);
        for policy in [
            LoadBalancingPolicy::PickFirst,
            LoadBalancingPolicy::RoundRobin,
        ] {
            let channel = Channel::builder(&target)
                .unwrap()
                .load_balancing(policy)
                .lazy();
            assert_eq!(channel.get_state(false), ConnectivityState::Idle);
            let status = call(&channel, false).await.unwrap_err();
            assert_eq!(status.code(), Code::Unavailable, "{policy:?}");
            assert!(
                status.message().contains("refused"),
                "{policy:?}: {status:?}"
            );
            assert_eq!(
                channel.get_state(false),
                ConnectivityState::TransientFailure,
                "{policy:?}"
            );
        }
    })
    .await;
}

/// wait_for_ready waits for a backend that is not there yet, until it is.
#[tokio::test]
async fn round_robin_wait_for_ready_waits_for_a_backend() {
    bounded(async {
        let addr = free_port();
        let channel = Channel::builder(&ipv4_target(&[addr]))
            .unwrap()
            .load_balancing(LoadBalancingPolicy::RoundRobin)
            .backoff(Duration::from_millis(50), Duration::from_millis(100))
            .lazy();
        let waiting = {
            let channel = channel.clone();
            tokio::spawn(async move { call(&channel, true).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished());
        let count = Count::default();
        let _server = counted(TcpListener::bind(addr).await.unwrap(), &count);
        assert_eq!(waiting.await.unwrap().unwrap(), "hi");
        assert_eq!(count.get(), 1);
    })
    .await;
}

/// `get_state` and `wait_for_state_change` follow IDLE -> CONNECTING -> READY, and a stopped
/// server takes the channel out of READY.
#[tokio::test]
async fn state_is_readable_and_watchable() {
    bounded(async {
        let count = Count::default();
        let server = counted_fresh(&count).await;
        let channel = Channel::lazy(&server.addr.to_string()).unwrap();
        assert_eq!(channel.get_state(false), ConnectivityState::Idle);
        assert!(
            !channel
                .wait_for_state_change(ConnectivityState::Idle, Duration::from_millis(50))
                .await
        );
        let _ = channel.get_state(true);
        let mut state = ConnectivityState::Idle;
        while state != ConnectivityState::Ready {
            assert!(
                channel
                    .wait_for_state_change(state, Duration::from_secs(5))
                    .await
            );
            state = channel.get_state(false);
        }
        server.shutdown().await;
        assert!(
            channel
                .wait_for_state_change(ConnectivityState::Ready, Duration::from_secs(5))
                .await
        );
        assert_ne!(channel.get_state(false), ConnectivityState::Ready);
    })
    .await;
}

/// DNS: `localhost` names 127.0.0.1 and ::1; round_robin over `dns:///localhost:port` reaches
/// a server on each. Where the host has no ::1, one server is all it can reach.
#[tokio::test]
async fn dns_localhost_resolves_to_both_loopbacks() {
    bounded(async {
        let v4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = v4.local_addr().unwrap().port();
        let v6 = match TcpListener::bind(("::1", port)).await {
            Ok(listener) => listener,
            Err(e) => {
                eprintln!("skipping the ::1 half: cannot bind [::1]:{port}: {e}");
                return;
            }
        };
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host(("localhost", port))
            .await
            .unwrap()
            .collect();
        let (c4, c6) = (Count::default(), Count::default());
        let _s4 = counted(v4, &c4);
        let _s6 = counted(v6, &c6);
        let channel = Channel::builder(&format!("dns:///localhost:{port}"))
            .unwrap()
            .service_config(r#"{"loadBalancingConfig": [{"round_robin": {}}]}"#)
            .unwrap()
            .lazy();
        for _ in 0..40 {
            call(&channel, true).await.unwrap();
        }
        assert_eq!(c4.get() + c6.get(), 40);
        if resolved.iter().any(|a| a.is_ipv4()) && resolved.iter().any(|a| a.is_ipv6()) {
            assert!(
                c4.get() > 0 && c6.get() > 0,
                "v4 {} v6 {}",
                c4.get(),
                c6.get()
            );
        }
    })
    .await;
}

/// A name that does not resolve: UNAVAILABLE naming it, under both policies.
#[tokio::test]
async fn unresolvable_name_is_unavailable() {
    bounded(async {
        for policy in [
            LoadBalancingPolicy::PickFirst,
            LoadBalancingPolicy::RoundRobin,
        ] {
            let channel = Channel::builder("dns:///no-such-host.invalid:443")
                .unwrap()
                .load_balancing(policy)
                .lazy();
            let status = call(&channel, false).await.unwrap_err();
            assert_eq!(status.code(), Code::Unavailable, "{policy:?}");
            assert!(
                status.message().contains("no-such-host.invalid"),
                "{policy:?}: {status:?}"
            );
        }
    })
    .await;
}

/// Bad targets fail at build time naming the wrong part.
#[test]
fn bad_targets_fail_at_build_time() {
    for (target, names) in [
        ("ipv4:127.0.0.1:1,nope:2", "address 2"),
        ("gopher://x:1", "\"gopher\""),
        ("dns:///host", "host:port"),
        ("unix:", "socket path"),
    ] {
        let status = Channel::lazy(target).unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{target}");
        assert!(status.message().contains(names), "{target}: {status:?}");
    }
    let status = Channel::builder("localhost:1")
        .unwrap()
        .service_config(r#"{"loadBalancingConfig": [{"weighted": {}}]}"#)
        .unwrap_err();
    assert!(status.message().contains("weighted"), "{status:?}");
}

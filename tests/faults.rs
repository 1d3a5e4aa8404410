//! Faults in the middle: our client and our server with the TCP fault proxy between them
//! (`tests/fault_proxy`), breaking connections mid-message in each way a network does. What
//! must hold: every call ends with the right code within its deadline, nothing the caller sent
//! is reported delivered when it was not (a client stream cut mid-way never yields OK), a call
//! the server may have seen is never sent again by itself, and the channel reconnects for the
//! next call.

mod client_support;
mod fault_proxy;

use std::time::{Duration, Instant};

use bare_grpc::{Channel, Code, Request, Status};
use client_support::{CLIENT_STREAM, HANG, IterStream, UNARY, bounded, start_echo};
use fault_proxy::{Action, Dir, Fault, FaultProxy, Plan};

/// 1 MiB of text: a message that spans many frames and several window updates.
fn big() -> String {
    "a".repeat(1 << 20)
}

/// A proxy to a fresh echo server that applies `fault` to the first connection.
async fn proxied(fault: Fault) -> (client_support::EchoServer, FaultProxy, Channel) {
    let server = start_echo().await;
    let proxy = FaultProxy::start(
        server.addr,
        Plan {
            fault: Some(fault),
            ..Plan::default()
        },
    )
    .await;
    let channel = Channel::lazy(&proxy.addr.to_string()).unwrap();
    (server, proxy, channel)
}

/// A unary call of `payload` with `deadline`; its outcome and how long it took.
async fn unary(
    channel: &Channel,
    payload: String,
    deadline: Duration,
) -> (Result<String, Status>, Duration) {
    let start = Instant::now();
    let mut request = Request::new(payload);
    request.set_timeout(deadline);
    let outcome = bounded(channel.unary::<String, String>(UNARY, request))
        .await
        .map(|r| r.into_inner());
    (outcome, start.elapsed())
}

/// The connection dies while the 1 MiB answer is on its way (at 256 KiB of the download):
/// cut, reset or half-closed, the call ends UNAVAILABLE well within its 5 s deadline, and the
/// channel's next call goes over a new connection and succeeds.
#[tokio::test]
async fn connection_dying_mid_answer_is_unavailable_then_reconnects() {
    for action in [Action::Cut, Action::Reset, Action::HalfClose] {
        let fault = Fault {
            dir: Dir::Download,
            at: 256 * 1024,
            action,
        };
        let (_server, proxy, channel) = proxied(fault).await;
        let (outcome, took) = unary(&channel, big(), Duration::from_secs(5)).await;
        let status = outcome.expect_err("a cut answer is no answer");
        assert_eq!(status.code(), Code::Unavailable, "{action:?}: {status:?}");
        assert!(took < Duration::from_secs(2), "{action:?}: took {took:?}");
        let (again, _) = unary(&channel, "again".into(), Duration::from_secs(5)).await;
        assert_eq!(again.unwrap(), "again", "{action:?}");
        assert_eq!(
            proxy.connections.load(std::sync::atomic::Ordering::SeqCst),
            2
        );
    }
}

/// The answer stalls at 256 KiB (the connection stays open, nothing more arrives): the call
/// ends DEADLINE_EXCEEDED at its deadline, not before and not much after.
#[tokio::test]
async fn stalled_answer_ends_at_the_deadline() {
    let fault = Fault {
        dir: Dir::Download,
        at: 256 * 1024,
        action: Action::Stall,
    };
    let (_server, _proxy, channel) = proxied(fault).await;
    let deadline = Duration::from_millis(700);
    let (outcome, took) = unary(&channel, big(), deadline).await;
    let status = outcome.expect_err("a stalled answer is no answer");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(took >= deadline, "ended early: {took:?}");
    assert!(
        took < deadline + Duration::from_secs(1),
        "ended late: {took:?}"
    );
}

/// A client stream of 64 messages of 16 KiB, its upload broken at 512 KiB (half-way) in each
/// way: the call never ends OK (the server did not get everything), and every ending comes
/// within the deadline with UNAVAILABLE, or DEADLINE_EXCEEDED for the stall.
#[tokio::test]
async fn client_stream_cut_mid_way_never_yields_ok() {
    for action in [Action::Cut, Action::Reset, Action::HalfClose, Action::Stall] {
        let fault = Fault {
            dir: Dir::Upload,
            at: 512 * 1024,
            action,
        };
        let (_server, _proxy, channel) = proxied(fault).await;
        let deadline = Duration::from_secs(2);
        let parts = (0..64).map(|_| "b".repeat(16 * 1024));
        let mut request = Request::new(IterStream(parts));
        request.set_timeout(deadline);
        let start = Instant::now();
        let outcome =
            bounded(channel.client_streaming::<String, String, _>(CLIENT_STREAM, request)).await;
        let took = start.elapsed();
        let status = match outcome {
            Ok(answer) => panic!(
                "{action:?}: a cut upload ended OK ({} octets echoed of {})",
                answer.into_inner().len(),
                64 * 16 * 1024
            ),
            Err(status) => status,
        };
        let expected = if action == Action::Stall {
            Code::DeadlineExceeded
        } else {
            Code::Unavailable
        };
        assert_eq!(status.code(), expected, "{action:?}: {status:?}");
        assert!(
            took < deadline + Duration::from_millis(500),
            "{action:?}: took {took:?}"
        );
    }
}

/// A call the server has started is never sent again by the channel on its own: cut while the
/// handler runs, the call ends UNAVAILABLE at once and the handler started exactly once (a
/// transparent retry is only for calls the server never saw: GOAWAY beyond the last stream, or
/// REFUSED_STREAM, `tests/client_misbehaving.rs`).
#[tokio::test]
async fn a_call_the_server_saw_is_not_retried_after_a_cut() {
    let mut server = start_echo().await;
    let proxy = FaultProxy::start(server.addr, Plan::default()).await;
    let channel = Channel::lazy(&proxy.addr.to_string()).unwrap();
    let call = {
        let channel = channel.clone();
        tokio::spawn(async move {
            let mut request = Request::new("x".to_owned());
            request.set_timeout(Duration::from_secs(5));
            let start = Instant::now();
            let outcome = channel.unary::<String, String>(HANG, request).await;
            (outcome, start.elapsed())
        })
    };
    bounded(server.started.recv()).await.unwrap();
    proxy.cut_now();
    let (outcome, took) = bounded(call).await.unwrap();
    assert_eq!(outcome.unwrap_err().code(), Code::Unavailable);
    assert!(took < Duration::from_secs(2), "{took:?}");
    bounded(server.dropped.recv()).await.unwrap();
    // Nothing started it again.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server.started.try_recv().is_err(),
        "the call was sent twice"
    );
}

/// 40 ms of delay on every chunk both ways: calls still succeed, slower; a deadline shorter
/// than the round trip ends DEADLINE_EXCEEDED at the deadline.
#[tokio::test]
async fn delay_slows_calls_and_deadlines_still_hold() {
    let server = start_echo().await;
    let proxy = FaultProxy::start(
        server.addr,
        Plan {
            delay: Some(Duration::from_millis(40)),
            ..Plan::default()
        },
    )
    .await;
    let channel = Channel::lazy(&proxy.addr.to_string()).unwrap();
    let (outcome, took) = unary(&channel, "slow".into(), Duration::from_secs(5)).await;
    assert_eq!(outcome.unwrap(), "slow");
    assert!(took >= Duration::from_millis(80), "{took:?}");
    let (outcome, took) = unary(&channel, "late".into(), Duration::from_millis(20)).await;
    assert_eq!(outcome.unwrap_err().code(), Code::DeadlineExceeded);
    assert!(took < Duration::from_millis(500), "{took:?}");
}

/// Every connection is cut at its first octet of upload: the channel never reaches the server,
/// and the call ends UNAVAILABLE within its deadline instead of hanging on a connection that
/// will never be.
#[tokio::test]
async fn a_server_never_reached_is_unavailable_within_the_deadline() {
    let server = start_echo().await;
    let proxy = FaultProxy::start(
        server.addr,
        Plan {
            fault: Some(Fault {
                dir: Dir::Upload,
                at: 0,
                action: Action::Cut,
            }),
            every_connection: true,
            ..Plan::default()
        },
    )
    .await;
    let channel = Channel::lazy(&proxy.addr.to_string()).unwrap();
    let (outcome, took) = unary(&channel, "x".into(), Duration::from_secs(3)).await;
    let status = outcome.unwrap_err();
    assert!(
        matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{status:?}"
    );
    assert!(took < Duration::from_secs(4), "{took:?}");
}

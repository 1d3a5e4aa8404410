//! Interceptors that wait, against real peers (Debian's grpc-go 1.33 and grpcio from PyPI), on
//! `grpc.health.v1.Health/Check`, which both ship ready-made:
//!
//! ```text
//!   grpc-go auth-peer check ─┐                          ┌─ StoreAuth (AsyncInterceptor):
//!   grpcio auth_client.py   ─┴─▶ our server ────────────┤   asks a slow in-process store
//!                                                       └─ health service
//!
//!   our Channel + call_credentials(CachedToken<Source>) ─▶ grpc-go auth-peer serve
//!                                                          (checks the bearer token, echoes
//!                                                           it in the "x-seen-token" header)
//! ```
//!
//! Server side: allowed, UNAUTHENTICATED, PERMISSION_DENIED, and a client deadline that
//! expires while the store thinks (DEADLINE_EXCEEDED, and the check's work is dropped).
//! Client side: one fetch for 100 concurrent calls, a refresh when the token nears expiry, a
//! failing source is UNAVAILABLE naming its reason, and the plaintext refusal.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bare_grpc::interceptor::credentials::{CachedToken, Token, TokenSource};
use bare_grpc::interceptor::{AsyncInterceptor, CallInfo};
use bare_grpc::services::health::{CHECK, HealthCheckRequest, HealthCheckResponse, health_service};
use bare_grpc::{Channel, Code, Metadata, Request, Server, Status};
use common::TestServer;

/// Bound on one peer run.
const STEP: Duration = Duration::from_secs(30);
/// Bound on the Go build (a cold build compiles grpc-go from source).
const BUILD_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the store takes to answer.
const STORE_DELAY: Duration = Duration::from_millis(150);

/// The Go peer, built once per test binary (`tests/go/kit-build.sh`).
fn auth_peer() -> &'static PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let script = common::repo_root().join("tests/go/kit-build.sh");
        let out = common::run_peer(Command::new(&script), BUILD_TIMEOUT);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} failed; run tests/peers/setup.sh if Go is missing\n{stdout}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .find(|line| line.ends_with("/bare-grpc-auth-peer"))
            .map(PathBuf::from)
            .expect("kit-build.sh printed the auth peer's path")
    })
}

fn python() -> PathBuf {
    let python = common::repo_root().join("target/venv/bin/python");
    assert!(
        python.exists(),
        "no Python venv at {}: run tests/peers/setup.sh",
        python.display()
    );
    python
}

/// What a token may do, as the store knows it.
#[derive(Clone, Copy)]
enum Role {
    /// May call the health service.
    Prober,
    /// Known, but not allowed to call it.
    Guest,
    /// The store takes far longer than any deadline to answer for this one.
    Slow,
}

/// A slow in-process token store, and the count of checks dropped before they finished.
struct StoreAuth {
    tokens: HashMap<&'static str, Role>,
    abandoned: Arc<AtomicUsize>,
    checked: Arc<AtomicUsize>,
}

/// Counts a check dropped before it finished.
struct Unfinished(Arc<AtomicUsize>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl AsyncInterceptor for StoreAuth {
    type State = ();

    async fn on_start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<(), Status> {
        assert!(call.remote_addr().is_some_and(|a| a.ip().is_loopback()));
        let token = match metadata.get_all("authorization").as_slice() {
            [value] => value.strip_prefix("Bearer ").map(str::to_owned),
            _ => None,
        }
        .ok_or_else(|| Status::unauthenticated("missing bearer token"))?;
        let unfinished = Unfinished(self.abandoned.clone());
        let role = self.tokens.get(token.as_str()).copied();
        let delay = match role {
            Some(Role::Slow) => Duration::from_secs(20),
            _ => STORE_DELAY,
        };
        tokio::time::sleep(delay).await;
        std::mem::forget(unfinished);
        self.checked.fetch_add(1, Ordering::SeqCst);
        match role {
            Some(Role::Prober) => Ok(()),
            Some(Role::Guest | Role::Slow) => Err(Status::permission_denied(format!(
                "this token may not call {}",
                call.path()
            ))),
            None => Err(Status::unauthenticated("unknown token")),
        }
    }
}

struct Guarded {
    server: TestServer,
    abandoned: Arc<AtomicUsize>,
    checked: Arc<AtomicUsize>,
}

async fn guarded_server() -> Guarded {
    let abandoned = Arc::new(AtomicUsize::new(0));
    let checked = Arc::new(AtomicUsize::new(0));
    let tokens = HashMap::from([
        ("prober-token", Role::Prober),
        ("guest-token", Role::Guest),
        ("slow-token", Role::Slow),
    ]);
    let (_reporter, health) = health_service();
    let server = Server::builder()
        .async_interceptor(StoreAuth {
            tokens,
            abandoned: abandoned.clone(),
            checked: checked.clone(),
        })
        .add_service(health)
        .build();
    Guarded {
        server: TestServer::start(server).await,
        abandoned,
        checked,
    }
}

/// Runs a client peer to completion; its trimmed stdout.
async fn run(mut cmd: Command) -> String {
    cmd.env("GRPC_GO_RETRY", "off");
    let out = tokio::task::spawn_blocking(move || common::run_peer(cmd, STEP))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success(),
        "peer failed ({}): {stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

async fn go_check(server: &TestServer, token: &str, timeout: &str) -> String {
    let mut cmd = Command::new(auth_peer());
    cmd.args(["check", "--addr", &server.addr.to_string()])
        .args(["--token", token, "--timeout", timeout]);
    run(cmd).await
}

async fn python_check(server: &TestServer, token: &str, timeout: &str) -> String {
    let mut cmd = Command::new(python());
    cmd.arg(common::repo_root().join("tests/python/auth_client.py"))
        .args(["--addr", &server.addr.to_string()])
        .args(["--token", token, "--timeout", timeout]);
    run(cmd).await
}

async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let start = tokio::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < STEP, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_go_client_against_an_async_auth_check() {
    let g = guarded_server().await;
    let s = &g.server;
    assert_eq!(go_check(s, "prober-token", "5s").await, "status SERVING");
    assert_eq!(
        go_check(s, "guest-token", "5s").await,
        "error PermissionDenied: this token may not call /grpc.health.v1.Health/Check"
    );
    assert_eq!(
        go_check(s, "stolen-token", "5s").await,
        "error Unauthenticated: unknown token"
    );
    assert_eq!(
        go_check(s, "", "5s").await,
        "error Unauthenticated: missing bearer token"
    );
    assert_eq!(g.checked.load(Ordering::SeqCst), 3);
    // The deadline passes while the store thinks: the client sees DEADLINE_EXCEEDED and the
    // server drops the check.
    let out = go_check(s, "slow-token", "400ms").await;
    assert!(out.starts_with("error DeadlineExceeded"), "{out}");
    wait_for("the slow check to be dropped", || {
        g.abandoned.load(Ordering::SeqCst) == 1
    })
    .await;
    // The server keeps serving.
    assert_eq!(go_check(s, "prober-token", "5s").await, "status SERVING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcio_client_against_an_async_auth_check() {
    let g = guarded_server().await;
    let s = &g.server;
    assert_eq!(python_check(s, "prober-token", "5").await, "status 1");
    assert_eq!(
        python_check(s, "guest-token", "5").await,
        "error PERMISSION_DENIED: this token may not call /grpc.health.v1.Health/Check"
    );
    assert_eq!(
        python_check(s, "stolen-token", "5").await,
        "error UNAUTHENTICATED: unknown token"
    );
    assert_eq!(
        python_check(s, "", "5").await,
        "error UNAUTHENTICATED: missing bearer token"
    );
    let out = python_check(s, "slow-token", "0.4").await;
    assert!(out.starts_with("error DEADLINE_EXCEEDED"), "{out}");
    wait_for("the slow check to be dropped", || {
        g.abandoned.load(Ordering::SeqCst) == 1
    })
    .await;
    assert_eq!(python_check(s, "prober-token", "5").await, "status 1");
}

/// The grpc-go server that checks tokens (accepts those starting with `good-`).
fn go_server() -> std::net::SocketAddr {
    static ADDR: OnceLock<std::net::SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let mut cmd = Command::new(auth_peer());
        cmd.args(["serve", "--port", "0", "--stop_on_stdin_eof"])
            .args(["--accept_prefix", "good-"]);
        common::interop::start_peer_server(cmd, "the grpc-go auth peer")
    })
}

/// Hands out `<prefix><n>`, each valid for `lifetime`, after a short wait (an identity
/// service's round trip); or fails with `error` when set.
struct Source {
    prefix: &'static str,
    lifetime: Duration,
    fetched: AtomicUsize,
    error: Option<&'static str>,
}

impl TokenSource for Source {
    async fn fetch(&self) -> Result<Token, Status> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let n = self.fetched.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(error) = self.error {
            return Err(Status::unauthenticated(error));
        }
        Ok(Token::valid_for(
            format!("{}{n}", self.prefix),
            self.lifetime,
        ))
    }
}

fn source(prefix: &'static str, lifetime: Duration, error: Option<&'static str>) -> Source {
    Source {
        prefix,
        lifetime,
        fetched: AtomicUsize::new(0),
        error,
    }
}

async fn credentialed(cache: &Arc<CachedToken<Source>>, plaintext_ok: bool) -> Channel {
    let mut builder = Channel::builder(&go_server().to_string())
        .unwrap()
        .call_credentials(cache.clone());
    if plaintext_ok {
        builder = builder.allow_plaintext_credentials();
    }
    builder.connect().await.unwrap()
}

/// One Check; the token the server saw.
async fn check(channel: &Channel) -> Result<String, Status> {
    let mut request = Request::new(HealthCheckRequest::default());
    request.set_timeout(Duration::from_secs(10));
    let response = channel
        .unary::<HealthCheckRequest, HealthCheckResponse>(CHECK, request)
        .await?;
    Ok(response
        .metadata()
        .get("x-seen-token")
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fetch_for_a_hundred_concurrent_calls_to_grpc_go() {
    let cache = Arc::new(CachedToken::new(
        source("good-", Duration::from_secs(600), None),
        Duration::from_secs(30),
    ));
    let channel = credentialed(&cache, true).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let channel = channel.clone();
        calls.spawn(async move { check(&channel).await });
    }
    let mut seen = Vec::new();
    while let Some(result) = calls.join_next().await {
        seen.push(result.unwrap().unwrap());
    }
    assert_eq!(seen.len(), 100);
    assert!(seen.iter().all(|token| token == "good-1"), "{seen:?}");
    assert_eq!(cache.source().fetched.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_refreshed_when_it_nears_expiry() {
    // Valid 2 s, refreshed in its last 1.5 s: fresh for the first 0.5 s.
    let cache = Arc::new(CachedToken::new(
        source("good-", Duration::from_secs(2), None),
        Duration::from_millis(1500),
    ));
    let channel = credentialed(&cache, true).await;
    let fetched_at = tokio::time::Instant::now();
    assert_eq!(check(&channel).await.unwrap(), "good-1");
    let first_done = tokio::time::Instant::now();
    if fetched_at.elapsed() < Duration::from_millis(400) {
        assert_eq!(check(&channel).await.unwrap(), "good-1");
        assert_eq!(cache.source().fetched.load(Ordering::SeqCst), 1);
    }
    // The token was fetched before the first call returned, so from then on at most 1.3 s of
    // its life is left 700 ms later: inside the 1.5 s margin, however slow the machine.
    tokio::time::sleep_until(first_done + Duration::from_millis(700)).await;
    assert_eq!(check(&channel).await.unwrap(), "good-2");
    assert_eq!(cache.source().fetched.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_go_server_rejects_a_token_it_does_not_accept() {
    let cache = Arc::new(CachedToken::new(
        source("bad-", Duration::from_secs(600), None),
        Duration::from_secs(1),
    ));
    let channel = credentialed(&cache, true).await;
    let err = check(&channel).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    assert_eq!(err.message(), "invalid token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_source_fails_the_call_with_unavailable_naming_the_reason() {
    let cache = Arc::new(CachedToken::new(
        source(
            "good-",
            Duration::from_secs(600),
            Some("identity service unreachable"),
        ),
        Duration::from_secs(1),
    ));
    let channel = credentialed(&cache, true).await;
    let err = check(&channel).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(
        err.message().contains("identity service unreachable"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_are_refused_over_plaintext_without_the_opt_in() {
    let cache = Arc::new(CachedToken::new(
        source("good-", Duration::from_secs(600), None),
        Duration::from_secs(1),
    ));
    let channel = credentialed(&cache, false).await;
    let err = check(&channel).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err}");
    assert!(err.message().contains("plaintext"), "{err}");
    assert_eq!(cache.source().fetched.load(Ordering::SeqCst), 0);
}

/// What the peers see is what our own client sees: the same store, our channel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_client_against_the_async_auth_check() {
    let g = guarded_server().await;
    let channel = Channel::connect(&g.server.addr.to_string()).await.unwrap();
    let mut request = Request::new(HealthCheckRequest::default());
    request
        .metadata_mut()
        .insert("authorization", "Bearer guest-token")
        .unwrap();
    let err = channel
        .unary::<HealthCheckRequest, HealthCheckResponse>(CHECK, request)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

//! Interceptors that wait (docs/interceptors.md § "Interceptors that wait"): on the server an
//! async check that asks a slow token store before the handler runs; on the client call
//! credentials that fetch a token from an "identity service", cache it, and refresh it before
//! it expires, once for all the calls that need it.
//!
//! ```text
//! cargo run --release --example async-auth
//! ```
//!
//! What it prints: twenty concurrent calls that share one token fetch; a call refused by the
//! store (PERMISSION_DENIED); a call whose deadline passes while the store thinks
//! (DEADLINE_EXCEEDED); a refresh once the token nears its expiry; an identity service that
//! fails (UNAVAILABLE, naming why); and a channel that did not opt in to plaintext credentials
//! (UNAUTHENTICATED, nothing sent).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bare_grpc::interceptor::credentials::{CachedToken, Token, TokenSource};
use bare_grpc::interceptor::{AsyncInterceptor, CallInfo};
use bare_grpc::{Channel, Metadata, Request, Response, Server, Status};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};
use tokio::net::TcpListener;
use tokio::time::Instant;

const SAY_HELLO: &str = "/helloworld.Greeter/SayHello";

/// The greeter: says hello to the user the check admitted.
struct Hello;

impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let user = request.metadata().get("x-user").unwrap_or("?").to_owned();
        let name = request.into_inner().name;
        Ok(Response::new(HelloReply {
            message: format!("Hello {name} (signed in as {user})"),
        }))
    }
}

/// The server's check: looks the bearer token up in a store that takes a while to answer
/// (a database, another service), then admits the call and tells the handler who called.
struct StoreCheck {
    /// token prefix -> (user, may call the greeter)
    store: HashMap<&'static str, (&'static str, bool)>,
    delay: Duration,
}

impl AsyncInterceptor for StoreCheck {
    type State = ();

    async fn on_start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<(), Status> {
        let token = metadata
            .get("authorization")
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Status::unauthenticated("missing bearer token"))?
            .to_owned();
        tokio::time::sleep(self.delay).await; // the store's round trip
        let prefix = token.split('-').next().unwrap_or_default();
        match self.store.get(prefix) {
            Some((user, true)) => {
                metadata.insert("x-user", user)?;
                Ok(())
            }
            Some((user, false)) => Err(Status::permission_denied(format!(
                "{user} may not call {}",
                call.path()
            ))),
            None => Err(Status::unauthenticated("unknown token")),
        }
    }
}

/// An identity service: hands out `<user>-<n>` tokens valid for `lifetime`, or fails.
struct Identity {
    user: &'static str,
    lifetime: Duration,
    fetches: AtomicUsize,
    down: bool,
}

impl TokenSource for Identity {
    async fn fetch(&self) -> Result<Token, Status> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
        if self.down {
            return Err(Status::unavailable("identity service: connection refused"));
        }
        Ok(Token::valid_for(
            format!("{}-{n}", self.user),
            self.lifetime,
        ))
    }
}

fn identity(user: &'static str, lifetime: Duration, down: bool) -> Arc<CachedToken<Identity>> {
    let source = Identity {
        user,
        lifetime,
        fetches: AtomicUsize::new(0),
        down,
    };
    // Refresh when less than 300 ms of the token's life is left.
    Arc::new(CachedToken::new(source, Duration::from_millis(300)))
}

async fn channel(url: &str, creds: &Arc<CachedToken<Identity>>, plaintext_ok: bool) -> Channel {
    let mut builder = Channel::builder(url)
        .expect("a valid address")
        .call_credentials(creds.clone());
    if plaintext_ok {
        // Loopback only: over plain h2c a token is readable by anyone on the path.
        builder = builder.allow_plaintext_credentials();
    }
    builder.connect().await.expect("the server is up")
}

async fn hello(channel: &Channel, timeout: Option<Duration>) -> Result<String, Status> {
    let mut request = Request::new(HelloRequest {
        name: "Ada".to_owned(),
    });
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    let reply = channel
        .unary::<HelloRequest, HelloReply>(SAY_HELLO, request)
        .await?;
    Ok(reply.into_inner().message)
}

fn show(label: &str, result: Result<String, Status>) {
    match result {
        Ok(message) => println!("{label:>28}: {message}"),
        Err(status) => println!(
            "{label:>28}: {} {:?}",
            status.code().name(),
            status.message()
        ),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let store = HashMap::from([("alice", ("alice", true)), ("mallory", ("mallory", false))]);
    let server = Server::builder()
        .async_interceptor(StoreCheck {
            store,
            delay: Duration::from_millis(50),
        })
        .add_service(GreeterServer::new(Hello))
        .build();
    tokio::spawn(server.serve(listener));

    // Twenty calls at once, one token fetch.
    let alice = identity("alice", Duration::from_secs(1), false);
    let channel_a = channel(&url, &alice, true).await;
    let started = Instant::now();
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let channel = channel_a.clone();
            tokio::spawn(async move { hello(&channel, None).await })
        })
        .collect();
    let mut ok = 0;
    for call in calls {
        ok += usize::from(call.await?.is_ok());
    }
    println!(
        "{:>28}: {ok} ok in {:?}, token fetched {} time(s)",
        "20 concurrent calls",
        started.elapsed(),
        alice.source().fetches.load(Ordering::SeqCst)
    );

    let mallory = identity("mallory", Duration::from_secs(60), false);
    show(
        "known user, not allowed",
        hello(&channel(&url, &mallory, true).await, None).await,
    );
    show(
        "deadline 20 ms, store 50 ms",
        hello(&channel_a, Some(Duration::from_millis(20))).await,
    );

    // 1 s tokens refreshed in their last 300 ms: at 800 ms a call fetches a new one.
    tokio::time::sleep_until(started + Duration::from_millis(800)).await;
    show("after 800 ms", hello(&channel_a, None).await);
    println!(
        "{:>28}: {} time(s)",
        "token fetched",
        alice.source().fetches.load(Ordering::SeqCst)
    );

    let down = identity("alice", Duration::from_secs(60), true);
    show(
        "identity service down",
        hello(&channel(&url, &down, true).await, None).await,
    );
    show(
        "plaintext, no opt-in",
        hello(&channel(&url, &alice, false).await, None).await,
    );
    Ok(())
}

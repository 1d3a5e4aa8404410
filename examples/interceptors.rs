//! Interceptors on both sides of a call (docs/interceptors.md).
//!
//! ```text
//! cargo run --example interceptors
//! ```
//!
//! The server logs every call (start, each message with its size on the wire, the end with
//! status and elapsed time) and refuses calls without an `x-request-id`; the client stamps
//! each call with one. A second channel, without the stamping interceptor, shows the refusal.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bare_grpc::interceptor::{CallInfo, Interceptor, MessageView, Side};
use bare_grpc::{Channel, Metadata, Request, Response, Server, Status};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterClient, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};
use tokio::net::TcpListener;

/// Logs each hook; its per-call state is the call's number.
struct Logger {
    calls: AtomicU64,
}

impl Logger {
    fn describe(message: MessageView<'_>) -> String {
        if let Some(request) = message.downcast_ref::<HelloRequest>() {
            format!("HelloRequest {{ name: {:?} }}", request.name)
        } else if let Some(reply) = message.downcast_ref::<HelloReply>() {
            format!("HelloReply {{ message: {:?} }}", reply.message)
        } else {
            "a message".to_owned()
        }
    }
}

impl Interceptor for Logger {
    type State = u64;

    fn on_start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<u64, Status> {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let id = metadata.get("x-request-id").unwrap_or("-");
        println!(
            "[{:?} #{n}] start {} request-id={id}",
            call.side(),
            call.path()
        );
        Ok(n)
    }

    fn on_request(&self, n: &mut u64, call: &CallInfo, message: MessageView<'_>) {
        let size = message.wire_len();
        let what = Logger::describe(message);
        println!("[{:?} #{n}]   request  {what} ({size} bytes)", call.side());
    }

    fn on_response(&self, n: &mut u64, call: &CallInfo, message: MessageView<'_>) {
        let size = message.wire_len();
        let what = Logger::describe(message);
        println!("[{:?} #{n}]   response {what} ({size} bytes)", call.side());
    }

    fn on_end(&self, n: u64, call: &CallInfo, status: &Status, elapsed: Duration) {
        let code = status.code().name();
        println!("[{:?} #{n}] end {code} after {elapsed:?}", call.side());
    }
}

/// Client: stamps every call with a fresh `x-request-id`.
struct RequestId(AtomicU64);

impl Interceptor for RequestId {
    type State = ();

    fn on_start(&self, _: &CallInfo, metadata: &mut Metadata) -> Result<(), Status> {
        let id = self.0.fetch_add(1, Ordering::Relaxed);
        metadata.insert("x-request-id", &format!("req-{id}"))?;
        Ok(())
    }
}

/// Server: refuses calls that carry no `x-request-id`.
struct RequireRequestId;

impl Interceptor for RequireRequestId {
    type State = ();

    fn on_start(&self, call: &CallInfo, metadata: &mut Metadata) -> Result<(), Status> {
        debug_assert_eq!(call.side(), Side::Server);
        match metadata.get("x-request-id") {
            Some(_) => Ok(()),
            None => Err(Status::invalid_argument("x-request-id is required")),
        }
    }
}

/// The greeter.
struct Hello;

impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let message = format!("Hello {}", request.into_inner().name);
        Ok(Response::new(HelloReply { message }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = Server::builder()
        // Outermost first: the logger also sees the calls RequireRequestId refuses.
        .interceptor(Logger {
            calls: AtomicU64::new(0),
        })
        .interceptor(RequireRequestId)
        .add_service(GreeterServer::new(Hello))
        .build();
    tokio::spawn(server.serve(listener));

    let channel = Channel::builder(&format!("http://{addr}"))?
        .interceptor(RequestId(AtomicU64::new(1)))
        .connect()
        .await?;
    let client = GreeterClient::new(channel);
    for name in ["Ada", "Grace"] {
        let reply = client
            .say_hello(HelloRequest {
                name: name.to_owned(),
            })
            .await?;
        println!("client got {:?}", reply.into_inner().message);
    }

    let bare = GreeterClient::new(Channel::connect(&format!("http://{addr}")).await?);
    let refused = bare
        .say_hello(HelloRequest {
            name: "nobody".to_owned(),
        })
        .await;
    match refused {
        Err(status) => println!(
            "without a request id: {} {:?}",
            status.code().name(),
            status.message()
        ),
        Ok(_) => return Err("the server should have refused the call".into()),
    }
    Ok(())
}

//! bare-grpc's side of the benchmark (`bench/run`, `docs/performance.md`): the standard
//! helloworld `Greeter` plus the bench contract, served on loopback h2c.
//!
//! ```text
//! cargo run --release --example greeter-server -- --port 50051 --threads 1
//! ```
//!
//! | `:path`                      | kind             | answer                                |
//! |------------------------------|------------------|---------------------------------------|
//! | `/helloworld.Greeter/SayHello` | unary          | `HelloReply { "Hello " + name }`      |
//! | `/bench.Stream/Pump`         | server streaming | `count` Chunks of `size` bytes        |
//! | `/bench.Collect/Drain`       | client streaming | `Summary` of what it read             |
//! | `/bench.Echo/PingPong`       | bidi             | each Chunk back, one for one          |
//! | `/bench.Echo/Echo`           | unary            | the Chunk back; INVALID_ARGUMENT for `fail` |
//!
//! Why it looks like this: it is the program a user would write from the README, with
//! nothing tuned, so that the figures say what the runtime costs out of the box. The
//! tonic, grpc-go and raw-h2 peers in `bench/` implement the same table.
//! `--threads` sets the tokio worker count (default 1), as the peers' flag does.
//! `--tls-cert F --tls-key F` (PEM files; needs `--features tls`) serve TLS instead of h2c,
//! for the TLS rows of the benchmark.
//! `--interceptor sync` or `--interceptor async` installs one interceptor that admits every
//! call at once (a synchronous one, or an async one whose start completes immediately), to
//! measure what a hook costs a call (docs/performance.md § "What an interceptor costs").
//! `--web` (needs `--features web`) also serves gRPC-Web on the port, over HTTP/1.1 and HTTP/2,
//! for the gRPC-Web rows of the benchmark (docs/web.md).

use bare_grpc::interceptor::{AsyncInterceptor, CallInfo, Interceptor};
use bare_grpc::{Metadata, Request, Response, ResponseSink, Server, Status, Streaming};
use bare_grpc_contracts::bench::collect_grpc::{Collect, CollectServer};
use bare_grpc_contracts::bench::echo_grpc::{Echo, EchoServer};
use bare_grpc_contracts::bench::stream_grpc::{Stream, StreamServer};
use bare_grpc_contracts::bench::{Chunk, PumpRequest, Summary};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};

/// The Echo payload answered with a handler error (`bench/soak`'s mix).
const FAIL: &[u8] = b"fail";

/// Every service of the table above, on one stateless value.
struct Bench;

impl Greeter for Bench {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let message = format!("Hello {}", request.into_inner().name);
        Ok(Response::new(HelloReply { message }))
    }
}

impl Stream for Bench {
    async fn pump(
        &self,
        request: Request<PumpRequest>,
        mut sink: ResponseSink<Chunk>,
    ) -> Result<(), Status> {
        let PumpRequest { count, size } = request.into_inner();
        let chunk = Chunk {
            data: vec![b'x'; size as usize],
        };
        for _ in 0..count {
            sink.send(&chunk).await?;
        }
        Ok(())
    }
}

impl Collect for Bench {
    async fn drain(&self, request: Request<Streaming<Chunk>>) -> Result<Response<Summary>, Status> {
        let mut inbound = request.into_inner();
        let mut summary = Summary::default();
        while let Some(chunk) = inbound.message().await? {
            summary.count += 1;
            summary.bytes += chunk.data.len() as u64;
        }
        Ok(Response::new(summary))
    }
}

impl Echo for Bench {
    async fn ping_pong(
        &self,
        request: Request<Streaming<Chunk>>,
        mut sink: ResponseSink<Chunk>,
    ) -> Result<(), Status> {
        let mut inbound = request.into_inner();
        while let Some(chunk) = inbound.message().await? {
            sink.send(chunk).await?;
        }
        Ok(())
    }

    async fn echo(&self, request: Request<Chunk>) -> Result<Response<Chunk>, Status> {
        let chunk = request.into_inner();
        // The soak's handler error (bench/soak): one comparison on every other call.
        if chunk.data == FAIL {
            return Err(Status::invalid_argument("asked to fail"));
        }
        Ok(Response::new(chunk))
    }
}

/// Admits every call, synchronously.
struct AdmitSync;

impl Interceptor for AdmitSync {
    type State = ();
    fn on_start(&self, _: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
        Ok(())
    }
}

/// Admits every call from a start that completes at once.
struct AdmitAsync;

impl AsyncInterceptor for AdmitAsync {
    type State = ();
    async fn on_start(&self, _: &CallInfo, _: &mut Metadata) -> Result<(), Status> {
        Ok(())
    }
}

/// `--name N` from the command line, or `default`; exits with a usage line when N is no number.
fn flag(args: &[String], name: &str, default: usize) -> usize {
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => match args.get(i + 1).and_then(|v| v.parse().ok()) {
            Some(value) => value,
            None => {
                eprintln!("usage: greeter-server --port N --threads T ({name} wants a number)");
                std::process::exit(2);
            }
        },
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port = flag(&args, "--port", 50051) as u16;
    let threads = flag(&args, "--threads", 1).max(1);
    let interceptor = args
        .iter()
        .position(|a| a == "--interceptor")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()?;
    let builder = with_web(with_tls(Server::builder(), &args)?, &args);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let builder = match interceptor.as_deref() {
            None => builder,
            Some("sync") => builder.interceptor(AdmitSync),
            Some("async") => builder.async_interceptor(AdmitAsync),
            Some(other) => {
                eprintln!("usage: greeter-server --interceptor sync|async (got {other:?})");
                std::process::exit(2);
            }
        };
        builder
            .add_service(GreeterServer::new(Bench))
            .add_service(StreamServer::new(Bench))
            .add_service(CollectServer::new(Bench))
            .add_service(EchoServer::new(Bench))
            .build()
            .serve(listener)
            .await
    })
}

/// `--web`: gRPC-Web on the same port, CORS off (the benchmark is not a browser).
#[cfg(feature = "web")]
fn with_web(builder: bare_grpc::server::Builder, args: &[String]) -> bare_grpc::server::Builder {
    if args.iter().any(|a| a == "--web") {
        return builder.web(bare_grpc::server::Web::new());
    }
    builder
}

/// Without the `web` feature there is no gRPC-Web to serve.
#[cfg(not(feature = "web"))]
fn with_web(builder: bare_grpc::server::Builder, args: &[String]) -> bare_grpc::server::Builder {
    if args.iter().any(|a| a == "--web") {
        eprintln!("greeter-server: --web needs `--features web`");
        std::process::exit(2);
    }
    builder
}

/// `--tls-cert F --tls-key F`: the server's certificate and key, PEM.
#[cfg(feature = "tls")]
fn with_tls(
    builder: bare_grpc::server::Builder,
    args: &[String],
) -> std::io::Result<bare_grpc::server::Builder> {
    use bare_grpc::tls::{Identity, ServerTls};
    let value = |name: &str| {
        let at = args.iter().position(|a| a == name)?;
        args.get(at + 1)
    };
    let (Some(cert), Some(key)) = (value("--tls-cert"), value("--tls-key")) else {
        return Ok(builder);
    };
    Ok(builder.tls(ServerTls::new(Identity::from_pem_files(cert, key)?)?))
}

/// Without the `tls` feature there is no TLS to serve.
#[cfg(not(feature = "tls"))]
fn with_tls(
    builder: bare_grpc::server::Builder,
    args: &[String],
) -> std::io::Result<bare_grpc::server::Builder> {
    if args.iter().any(|a| a == "--tls-cert") {
        eprintln!("greeter-server: --tls-cert needs `--features tls`");
        std::process::exit(2);
    }
    Ok(builder)
}

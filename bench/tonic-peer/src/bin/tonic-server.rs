//! tonic's side of the comparison: Greeter/SayHello, Stream/Pump, Collect/Drain,
//! Echo/PingPong and Echo/Echo on loopback h2c.
//!
//! `tonic-server --port N --threads T [--tls-cert F --tls-key F] [--web]` (TLS needs
//! `--features tls`: tonic's `tls-ring`; `--web` needs `--features web`: tonic-web's layer,
//! gRPC-Web over HTTP/1.1 and HTTP/2 on the same port, as tonic-web's README sets it up)

use std::pin::Pin;

use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};
use tonic_peer::bench::collect_server::{Collect, CollectServer};
use tonic_peer::bench::echo_server::{Echo, EchoServer};
use tonic_peer::bench::stream_server::{Stream as PumpService, StreamServer};
use tonic_peer::bench::{Chunk, PumpRequest, Summary};
use tonic_peer::helloworld::greeter_server::{Greeter, GreeterServer};
use tonic_peer::helloworld::{HelloReply, HelloRequest};
use tonic_peer::{Repeat, flag, runtime};

struct Bench;

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Greeter for Bench {
    async fn say_hello(&self, req: Request<HelloRequest>) -> Result<Response<HelloReply>, Status> {
        let message = format!("Hello {}", req.into_inner().name);
        Ok(Response::new(HelloReply { message }))
    }
}

#[tonic::async_trait]
impl PumpService for Bench {
    type PumpStream = ChunkStream;
    async fn pump(&self, req: Request<PumpRequest>) -> Result<Response<ChunkStream>, Status> {
        let req = req.into_inner();
        let chunk = Chunk {
            data: vec![b'x'; req.size as usize],
        };
        let chunks = Repeat::new(chunk, u64::from(req.count)).map(Ok);
        Ok(Response::new(Box::pin(chunks)))
    }
}

#[tonic::async_trait]
impl Collect for Bench {
    async fn drain(&self, req: Request<Streaming<Chunk>>) -> Result<Response<Summary>, Status> {
        let mut inbound = req.into_inner();
        let mut summary = Summary::default();
        while let Some(chunk) = inbound.message().await? {
            summary.count += 1;
            summary.bytes += chunk.data.len() as u64;
        }
        Ok(Response::new(summary))
    }
}

#[tonic::async_trait]
impl Echo for Bench {
    type PingPongStream = ChunkStream;
    async fn ping_pong(
        &self,
        req: Request<Streaming<Chunk>>,
    ) -> Result<Response<ChunkStream>, Status> {
        Ok(Response::new(Box::pin(req.into_inner())))
    }
    async fn echo(&self, req: Request<Chunk>) -> Result<Response<Chunk>, Status> {
        let chunk = req.into_inner();
        // The soak's handler error (bench/soak), as bare-grpc's greeter-server answers it.
        if chunk.data == b"fail" {
            return Err(Status::invalid_argument("asked to fail"));
        }
        Ok(Response::new(chunk))
    }
}

fn main() {
    let port = flag("--port", 50051) as u16;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let builder = tonic::transport::Server::builder();
    #[cfg(feature = "tls")]
    let builder = match tls_identity() {
        Some(identity) => builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .expect("tonic TLS config"),
        None => builder,
    };
    #[cfg(not(feature = "tls"))]
    if std::env::args().any(|a| a == "--tls-cert") {
        panic!("--tls-cert needs `--features tls`");
    }
    let mut builder = builder.tcp_nodelay(true);
    let web = std::env::args().any(|a| a == "--web");
    #[cfg(feature = "web")]
    if web {
        runtime().block_on(async move {
            builder
                .accept_http1(true)
                .layer(tonic_web::GrpcWebLayer::new())
                .add_service(GreeterServer::new(Bench))
                .add_service(StreamServer::new(Bench))
                .serve(addr)
                .await
                .expect("tonic-web server");
        });
        return;
    }
    #[cfg(not(feature = "web"))]
    if web {
        panic!("--web needs `--features web`");
    }
    runtime().block_on(async move {
        builder
            .add_service(GreeterServer::new(Bench))
            .add_service(StreamServer::new(Bench))
            .add_service(CollectServer::new(Bench))
            .add_service(EchoServer::new(Bench))
            .serve(addr)
            .await
            .expect("tonic server");
    });
}

/// `--tls-cert F --tls-key F`, PEM files, as tonic's `Identity`.
#[cfg(feature = "tls")]
fn tls_identity() -> Option<tonic::transport::Identity> {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        let at = args.iter().position(|a| a == name)?;
        Some(std::fs::read(args.get(at + 1)?).unwrap_or_else(|e| panic!("{name}: {e}")))
    };
    Some(tonic::transport::Identity::from_pem(
        value("--tls-cert")?,
        value("--tls-key").expect("--tls-key with --tls-cert"),
    ))
}

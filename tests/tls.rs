//! TLS on both sides of bare-grpc itself (feature `tls`): the verified client identity reaches
//! handlers and interceptors; the certificate rotates without a restart; call credentials
//! refuse plain text; and every bad input of the issue gets a clear error on the side that
//! should see it while the server keeps serving the next good client.
//!
//! | input | who sees what |
//! |---|---|
//! | plaintext HTTP/2 client on the TLS port | server: "TLS handshake … failed" log line; client: h2 handshake error |
//! | TLS client offering only `http/1.1` (ALPN) | client: `no_application_protocol` alert (RFC 7301 §3.2) |
//! | TLS client offering no ALPN | server: "did not negotiate ALPN \"h2\"" log line; client: connection closed |
//! | expired server certificate | client: UNAVAILABLE "… certificate expired …" |
//! | server certificate from another CA | client: UNAVAILABLE "… UnknownIssuer" |
//! | a name the certificate does not hold | client: UNAVAILABLE "… not valid for name …" |
//! | client certificate missing / from another CA (mTLS) | client: UNAVAILABLE, refused in the handshake |
//! | a client that connects and never handshakes | nobody else waits; the socket closes at the handshake timeout |
#![cfg(feature = "tls")]

mod common;
mod tls_support;

use std::sync::Arc;
use std::time::Duration;

use bare_grpc::interceptor::auth::{BearerAuth, BearerToken};
use bare_grpc::interceptor::{CallInfo, Interceptor};
use bare_grpc::tls::{ClientTls, Identity, ServerTls};
use bare_grpc::{Channel, Code, Metadata, Request, Response, Server, Status};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterClient, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};
use common::TestServer;
use tls_support::{CLIENT_SPIFFE, OVERRIDE, files, pki};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Answers with what the handler sees of its peer: TLS version, mutual or not, the SANs.
struct WhoAmI;

impl Greeter for WhoAmI {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let peer = request.peer();
        let message = match peer.tls() {
            None => "plaintext".to_owned(),
            Some(tls) => format!(
                "{} mutual={} dns={:?} uris={:?} chain={}",
                tls.version(),
                tls.is_mutual(),
                tls.dns_names(),
                tls.uris(),
                tls.certificates().len()
            ),
        };
        Ok(Response::new(HelloReply { message }))
    }
}

/// Authorization on the verified identity: only the test client's SPIFFE ID may call.
struct OnlySpiffe;

impl Interceptor for OnlySpiffe {
    type State = ();

    fn on_start(&self, call: &CallInfo, _metadata: &mut Metadata) -> Result<(), Status> {
        let allowed = call
            .peer()
            .tls()
            .is_some_and(|tls| tls.uris().iter().any(|uri| uri == CLIENT_SPIFFE));
        if allowed {
            Ok(())
        } else {
            Err(Status::permission_denied("not the interop client"))
        }
    }
}

async fn start(tls: ServerTls) -> TestServer {
    TestServer::start(
        Server::builder()
            .tls(tls)
            .add_service(GreeterServer::new(WhoAmI))
            .build(),
    )
    .await
}

fn trusting_test_ca() -> ClientTls {
    ClientTls::new()
        .ca_certificate_pem(&files().ca_pem)
        .expect("test CA")
        .server_name(OVERRIDE)
}

fn client_identity() -> Identity {
    Identity::from_pem(&files().client.cert, &files().client.key).expect("client identity")
}

/// One call; the reply's message or the status.
async fn hello(addr: std::net::SocketAddr, tls: ClientTls) -> Result<String, Status> {
    let channel = Channel::builder(&addr.to_string())?
        .connect_timeout(Duration::from_secs(10))
        .tls(tls)?
        .connect()
        .await?;
    let request = HelloRequest {
        name: "x".to_owned(),
    };
    let reply = timeout(
        Duration::from_secs(10),
        GreeterClient::new(channel).say_hello(request),
    )
    .await
    .map_err(|_| Status::deadline_exceeded("test bound"))??;
    Ok(reply.into_inner().message)
}

fn assert_unavailable(result: Result<String, Status>, reason: &str) {
    let status = result.expect_err("must fail");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains(reason),
        "want {reason:?} in {status:?}"
    );
}

#[tokio::test]
async fn tls_call_sees_tls_without_client_identity() {
    let server = start(tls_support::server_tls(false)).await;
    let message = hello(server.addr, trusting_test_ca()).await.unwrap();
    assert_eq!(message, "TLSv1_3 mutual=false dns=[] uris=[] chain=0");
}

#[tokio::test]
async fn mutual_tls_identity_reaches_handler_and_interceptor() {
    let server = TestServer::start(
        Server::builder()
            .tls(tls_support::server_tls(true))
            .interceptor(OnlySpiffe)
            .add_service(GreeterServer::new(WhoAmI))
            .build(),
    )
    .await;
    let message = hello(server.addr, trusting_test_ca().identity(client_identity()))
        .await
        .unwrap();
    assert_eq!(
        message,
        format!(
            "TLSv1_3 mutual=true dns=[\"client.test.bare-grpc.example\"] uris=[\"{CLIENT_SPIFFE}\"] chain=1"
        )
    );
}

#[tokio::test]
async fn interceptor_refuses_a_verified_client_it_does_not_authorize() {
    // Requested (not required) client certificates: a client without one connects, and the
    // authorization interceptor turns it away.
    let tls = tls_support::server_tls(false)
        .request_client_cert(&files().ca_pem)
        .unwrap();
    let server = TestServer::start(
        Server::builder()
            .tls(tls)
            .interceptor(OnlySpiffe)
            .add_service(GreeterServer::new(WhoAmI))
            .build(),
    )
    .await;
    let status = hello(server.addr, trusting_test_ca()).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(
        hello(server.addr, trusting_test_ca().identity(client_identity()))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn mutual_tls_refuses_missing_and_foreign_client_certificates() {
    let server = start(tls_support::server_tls(true)).await;
    let result = hello(server.addr, trusting_test_ca()).await;
    assert_eq!(result.unwrap_err().code(), Code::Unavailable);
    let stranger = Identity::from_pem_files(&files().stranger_cert, &files().stranger_key).unwrap();
    let result = hello(server.addr, trusting_test_ca().identity(stranger)).await;
    assert_eq!(result.unwrap_err().code(), Code::Unavailable);
    // The next good client is served.
    assert!(
        hello(server.addr, trusting_test_ca().identity(client_identity()))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn server_certificate_failures_are_unavailable_with_the_reason() {
    let server = start(tls_support::server_tls(false)).await;
    // Another CA.
    let other = pki::Ca::new("not the test CA").cert_pem();
    let tls = ClientTls::new()
        .ca_certificate_pem(other)
        .unwrap()
        .server_name(OVERRIDE);
    assert_unavailable(hello(server.addr, tls).await, "UnknownIssuer");
    // A name the certificate does not hold.
    let tls = trusting_test_ca().server_name("elsewhere.example");
    assert_unavailable(hello(server.addr, tls).await, "not valid for name");
    // https:// means the system's roots, which do not hold the test CA: still no plain text.
    let status = Channel::builder(&format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .connect()
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert!(hello(server.addr, trusting_test_ca()).await.is_ok());

    // An expired certificate from the right CA.
    let ca = pki::Ca::new("expiring CA");
    let expired = ca.leaf(&pki::Leaf {
        name: "expired",
        dns: &[OVERRIDE],
        expired: true,
        ..Default::default()
    });
    let server =
        start(ServerTls::new(Identity::from_pem(&expired.cert, &expired.key).unwrap()).unwrap())
            .await;
    let tls = ClientTls::new()
        .ca_certificate_pem(ca.cert_pem())
        .unwrap()
        .server_name(OVERRIDE);
    assert_unavailable(hello(server.addr, tls).await, "expired");
}

#[tokio::test]
async fn plaintext_http2_client_on_the_tls_port_is_closed() {
    let server = start(tls_support::server_tls(false)).await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    // The h2 preface is not a TLS record: the server logs and closes, the handshake fails.
    let result = timeout(Duration::from_secs(10), h2::client::handshake(tcp)).await;
    match result.expect("the server must not hang") {
        Err(_) => {}
        Ok((mut send, connection)) => {
            tokio::spawn(connection);
            let request = http::Request::post("http://x/helloworld.Greeter/SayHello")
                .body(())
                .unwrap();
            let failed = match send.send_request(request, true) {
                Err(_) => true,
                Ok((response, _)) => timeout(Duration::from_secs(10), response)
                    .await
                    .expect("no hang")
                    .is_err(),
            };
            assert!(failed, "a plaintext request must not be served");
        }
    }
    assert!(hello(server.addr, trusting_test_ca()).await.is_ok());
}

/// A raw rustls client offering `alpn`, trusting the test CA (TLS 1.3 and 1.2).
fn raw_client(alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    raw_client_versions(alpn, rustls::DEFAULT_VERSIONS)
}

/// A raw rustls client offering `alpn` and only `versions`, trusting the test CA.
fn raw_client_versions(
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(files().ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn a_client_without_h2_in_alpn_is_refused() {
    let server = start(tls_support::server_tls(false)).await;
    let name = rustls_pki_types::ServerName::try_from(OVERRIDE).unwrap();
    // Only http/1.1: rustls answers no_application_protocol (RFC 7301 §3.2).
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let error = timeout(
        Duration::from_secs(10),
        raw_client(&[b"http/1.1"]).connect(name.clone(), tcp),
    )
    .await
    .expect("no hang")
    .expect_err("must be refused");
    assert!(
        error.to_string().contains("NoApplicationProtocol"),
        "{error}"
    );
    // No ALPN at all: the handshake completes, then the server closes without a byte.
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let mut stream = raw_client(&[]).connect(name, tcp).await.expect("handshake");
    let mut buf = [0u8; 64];
    let read = timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("no hang");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(hello(server.addr, trusting_test_ca()).await.is_ok());
}

#[tokio::test]
async fn a_silent_client_stalls_nobody_and_is_cut_at_the_handshake_timeout() {
    let tls = tls_support::server_tls(false).handshake_timeout(Duration::from_millis(300));
    let server = start(tls).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // Others are served while it sits there.
    assert!(hello(server.addr, trusting_test_ca()).await.is_ok());
    let mut buf = [0u8; 16];
    let read = timeout(Duration::from_secs(10), silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "closed at the timeout: {read:?}"
    );
}

#[tokio::test]
async fn the_certificate_rotates_without_a_restart() {
    let tls = tls_support::server_tls(false);
    let swap = tls.certificate_swap();
    let server = start(tls).await;
    assert!(hello(server.addr, trusting_test_ca()).await.is_ok());
    let new_ca = pki::Ca::new("rotated CA");
    let new = new_ca.leaf(&pki::Leaf {
        name: "rotated",
        dns: &[OVERRIDE],
        ..Default::default()
    });
    swap.swap(&Identity::from_pem(&new.cert, &new.key).unwrap())
        .unwrap();
    // New connections get the new certificate: the old CA no longer verifies it.
    assert_unavailable(
        hello(server.addr, trusting_test_ca()).await,
        "UnknownIssuer",
    );
    let tls = ClientTls::new()
        .ca_certificate_pem(new_ca.cert_pem())
        .unwrap()
        .server_name(OVERRIDE);
    assert!(hello(server.addr, tls).await.is_ok());
    // A key that does not match its certificate is refused and changes nothing.
    let other = new_ca.leaf(&pki::Leaf::default());
    let mismatched = Identity::from_pem(&new.cert, &other.key).unwrap();
    assert!(swap.swap(&mismatched).is_err());
}

#[tokio::test]
async fn bearer_token_goes_over_tls_and_refuses_plaintext() {
    const TOKEN: &str = "tls-token";
    let server = TestServer::start(
        Server::builder()
            .tls(tls_support::server_tls(false))
            .interceptor(BearerAuth::new([TOKEN]))
            .add_service(GreeterServer::new(WhoAmI))
            .build(),
    )
    .await;
    let channel = Channel::builder(&server.addr.to_string())
        .unwrap()
        .tls(trusting_test_ca())
        .unwrap()
        .interceptor(BearerToken::new(TOKEN).unwrap())
        .connect()
        .await
        .unwrap();
    let request = HelloRequest { name: "x".into() };
    assert!(GreeterClient::new(channel).say_hello(request).await.is_ok());

    // Over h2c the same interceptor refuses to send the token and says why.
    let plain = TestServer::start(
        Server::builder()
            .interceptor(BearerAuth::new([TOKEN]))
            .add_service(GreeterServer::new(WhoAmI))
            .build(),
    )
    .await;
    let channel = Channel::builder(&plain.addr.to_string())
        .unwrap()
        .interceptor(BearerToken::new(TOKEN).unwrap())
        .lazy();
    let request = HelloRequest { name: "x".into() };
    let status = GreeterClient::new(channel)
        .say_hello(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("plaintext"), "{status:?}");
}

#[tokio::test]
async fn tls_1_2_is_served_and_reported() {
    let server = start(tls_support::server_tls(false)).await;
    let name = rustls_pki_types::ServerName::try_from(OVERRIDE).unwrap();
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let tls = raw_client_versions(&[b"h2"], &[&rustls::version::TLS12])
        .connect(name, tcp)
        .await
        .expect("a TLS 1.2 handshake");
    // One SayHello by hand over h2: HelloRequest { name: "x" } behind its 5-byte prefix.
    let (mut send, connection) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::post("https://localhost/helloworld.Greeter/SayHello")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    let (response, mut body) = send.send_request(request, false).unwrap();
    body.send_data(bytes::Bytes::from_static(b"\0\0\0\0\x03\x0a\x01x"), true)
        .unwrap();
    let response = timeout(Duration::from_secs(10), response)
        .await
        .unwrap()
        .unwrap();
    let mut data = response.into_body();
    let mut reply = Vec::new();
    while let Some(chunk) = timeout(Duration::from_secs(10), data.data()).await.unwrap() {
        reply.extend_from_slice(&chunk.unwrap());
    }
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("TLSv1_2 mutual=false"), "{text:?}");
}

/// What our channel sends over TLS, seen by a raw h2 server behind a rustls acceptor:
/// `:scheme https` (PROTOCOL-HTTP2 § Requests: "Scheme → ":scheme" ("http" / "https")").
#[tokio::test]
async fn the_channel_sends_scheme_https() {
    let files = files();
    let chain = rustls_pki_types::pem::PemObject::pem_slice_iter(files.server.cert.as_bytes())
        .collect::<Result<Vec<rustls_pki_types::CertificateDer<'static>>, _>>()
        .unwrap();
    let key = <rustls_pki_types::PrivateKeyDer<'static> as rustls_pki_types::pem::PemObject>::from_pem_slice(
        files.server.key.as_bytes(),
    )
    .unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let mut connection = h2::server::handshake(tls).await.unwrap();
        let (request, mut respond) = connection.accept().await.unwrap().unwrap();
        let scheme = request.uri().scheme_str().map(str::to_owned);
        // Answer trailers-only UNIMPLEMENTED; the call's outcome does not matter here.
        let response = http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "12")
            .body(())
            .unwrap();
        respond.send_response(response, true).unwrap();
        tokio::spawn(async move { while connection.accept().await.is_some() {} });
        scheme
    });
    let channel = Channel::builder(&addr.to_string())
        .unwrap()
        .tls(trusting_test_ca())
        .unwrap()
        .lazy();
    let request = HelloRequest { name: "x".into() };
    let status = GreeterClient::new(channel)
        .say_hello(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    let scheme = timeout(Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scheme.as_deref(), Some("https"));
}

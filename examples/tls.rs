//! TLS and mutual TLS, as a tour (feature `tls`; docs/tls.md).
//!
//! ```text
//! cargo run --release --example tls --features tls
//! ```
//!
//! It makes a CA and certificates for itself at start (rcgen; nothing is written to disk),
//! then shows, step by step: a TLS server and a client trusting its CA; the client's
//! certificate and SANs as the handler sees them under mutual TLS; a client with no
//! certificate refused at the handshake; a wrong server name refused by the client; and the
//! server's certificate swapped at run time.

#[path = "tls/pki.rs"]
mod pki;

use std::net::SocketAddr;

use bare_grpc::tls::{ClientTls, Identity, ServerTls};
use bare_grpc::{Channel, Request, Response, Server, Status};
use bare_grpc_contracts::helloworld::greeter_grpc::{Greeter, GreeterClient, GreeterServer};
use bare_grpc_contracts::helloworld::{HelloReply, HelloRequest};
use tokio::net::TcpListener;

/// Greets the caller by what TLS proved about it.
struct Hello;

impl Greeter for Hello {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        let who = match request.peer().tls() {
            Some(tls) if tls.is_mutual() => format!(
                "{} client with SANs dns={:?} uri={:?}",
                tls.version(),
                tls.dns_names(),
                tls.uris()
            ),
            Some(tls) => format!("{} client without a certificate", tls.version()),
            None => "plaintext client".to_owned(),
        };
        Ok(Response::new(HelloReply {
            message: format!("Hello {}, you are a {who}", request.get_ref().name),
        }))
    }
}

/// Starts a server on a free loopback port.
async fn serve(tls: ServerTls) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = Server::builder()
        .tls(tls)
        .add_service(GreeterServer::new(Hello))
        .build();
    tokio::spawn(server.serve(listener));
    Ok(addr)
}

/// One call with `tls`; the answer or the status, as a line.
async fn call(addr: SocketAddr, tls: ClientTls) -> String {
    let result = async {
        let channel = Channel::builder(&addr.to_string())?
            .tls(tls)?
            .connect()
            .await?;
        let reply = GreeterClient::new(channel)
            .say_hello(HelloRequest {
                name: "Ada".to_owned(),
            })
            .await?;
        Ok::<_, Status>(reply.into_inner().message)
    }
    .await;
    match result {
        Ok(message) => format!("OK: {message}"),
        Err(status) => format!("{}: {}", status.code().name(), status.message()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("1. A CA, a server certificate for localhost, a client certificate with a SPIFFE ID");
    let ca = pki::Ca::new("tour CA");
    let server_pem = ca.leaf(&pki::Leaf {
        name: "tour server",
        dns: &["localhost"],
        ..Default::default()
    });
    let client_pem = ca.leaf(&pki::Leaf {
        name: "tour client",
        dns: &["client.tour.example"],
        uris: &["spiffe://tour.example/client"],
        ..Default::default()
    });
    let server_identity = Identity::from_pem(&server_pem.cert, &server_pem.key)?;
    let client_identity = Identity::from_pem(&client_pem.cert, &client_pem.key)?;
    let trust = || ClientTls::new().ca_certificate_pem(ca.cert_pem());

    println!("\n2. TLS: the server proves its name, the client trusts the CA");
    let tls = ServerTls::new(server_identity.clone())?;
    let swap = tls.certificate_swap();
    let addr = serve(tls).await?;
    println!("   server on {addr}, client checks the name \"localhost\"");
    println!("   {}", call(addr, trust()?.server_name("localhost")).await);

    println!("\n3. A wrong name is refused by the client (no plain-text fallback)");
    println!(
        "   {}",
        call(addr, trust()?.server_name("elsewhere.example")).await
    );

    println!("\n4. Mutual TLS: the server requires a client certificate from the CA");
    let mtls = ServerTls::new(server_identity)?.require_client_cert(ca.cert_pem())?;
    let maddr = serve(mtls).await?;
    let with_cert = trust()?.server_name("localhost").identity(client_identity);
    println!("   with a certificate:    {}", call(maddr, with_cert).await);
    println!(
        "   without a certificate: {}",
        call(maddr, trust()?.server_name("localhost")).await
    );

    println!("\n5. The server's certificate is swapped at run time (a new CA signs it)");
    let new_ca = pki::Ca::new("rotated CA");
    let rotated = new_ca.leaf(&pki::Leaf {
        name: "rotated server",
        dns: &["localhost"],
        ..Default::default()
    });
    swap.swap(&Identity::from_pem(&rotated.cert, &rotated.key)?)?;
    println!(
        "   trusting the old CA: {}",
        call(addr, trust()?.server_name("localhost")).await
    );
    let new_trust = ClientTls::new()
        .ca_certificate_pem(new_ca.cert_pem())?
        .server_name("localhost");
    println!("   trusting the new CA: {}", call(addr, new_trust).await);
    Ok(())
}

//! TLS for both sides (feature `tls`): the certificates and settings a program gives
//! ([`Identity`], [`ServerTls`], [`ClientTls`]), and the server's handshake in front of
//! [`serve_connection`]. The client's handshake is `client/tls.rs`.
//!
//! The rules: gRPC over TLS is HTTP/2 over TLS, "h2" negotiated with ALPN (RFC 9113 §3.2, RFC
//! 7301; PROTOCOL-HTTP2 § Connection Management: "the client MUST use ALPN"); TLS 1.2 or 1.3
//! (RFC 9113 §9.2 forbids older versions); `:scheme https`. Mutual TLS asks the client for a
//! certificate in the handshake (RFC 8446 §4.3.2 CertificateRequest) and verifies it against
//! the server's client CA.
//!
//! ```text
//!  accept loop ──spawn──▶ connection task
//!                           │ TLS handshake, bounded by ServerTls::handshake_timeout
//!                           │   failed / timed out   → one log line, socket closed
//!                           │   ALPN is not "h2"      → one log line, socket closed
//!                           │ Peer { addr, TlsInfo { chain, SANs } }
//!                           ▼
//!                         serve_connection (the same as h2c from here on)
//! ```
//!
//! Why it is shaped this way: the handshake runs in the connection's own task, never in the
//! accept loop, so a client that connects and sends nothing costs one idle task until the
//! timeout and stalls nobody. The certificate is read through an `Arc`'d resolver at each
//! handshake, so [`CertificateSwap::swap`] rotates it for new connections without a restart
//! (connections already open keep the one they were made with, as TLS requires). The plain
//! path does not know this module exists: TLS is only a different `start` for the accept loop.
//!
//! rustls with its `ring` provider: pure Rust plus `cc` for ring's assembly, no cmake (the
//! measured choice is in docs/tls.md). Logging is one `eprintln!` line per refused
//! connection, as the crate has no logging dependency.
//!
//! What it does not do: OCSP stapling, certificate revocation lists, session tickets across
//! servers, TLS 1.0/1.1 (refused by rustls), or any fallback to plain text.
//!
//! Links: RFC 9113 <https://www.rfc-editor.org/rfc/rfc9113#section-3.2>, RFC 7301
//! <https://www.rfc-editor.org/rfc/rfc7301>, PROTOCOL-HTTP2
//! <https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md>.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::first::{First, first};
use crate::peer::{Peer, TlsInfo};
use crate::transport::server::{Streams, serve_connection};

/// The ALPN protocol id of HTTP/2 over TLS (RFC 9113 §3.2).
pub(crate) const ALPN_H2: &[u8] = b"h2";

/// How long a server waits for a client to finish the TLS handshake unless
/// [`ServerTls::handshake_timeout`] says otherwise.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The one crypto provider both sides use: rustls' `ring` provider. rustls 0.23.48 marks it
/// deprecated because ring has no post-quantum key exchange (X25519MLKEM768 is aws-lc-rs
/// only); we keep ring for what it costs to build (docs/tls.md) and say so there.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    #[allow(deprecated)]
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.3 and 1.2; never older (RFC 9113 §9.2: "TLS 1.2 or higher").
pub(crate) const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn invalid(what: impl fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_string())
}

/// A certificate chain and its private key: what a server presents, or a client for mutual TLS.
pub struct Identity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Identity {
    /// From PEM text: `chain` holds one or more `CERTIFICATE` blocks, leaf first; `key` one
    /// `PRIVATE KEY` (PKCS #8), `RSA PRIVATE KEY` or `EC PRIVATE KEY` block.
    pub fn from_pem(chain: impl AsRef<[u8]>, key: impl AsRef<[u8]>) -> io::Result<Identity> {
        let chain = certificates_from_pem(chain.as_ref())?;
        let key = PrivateKeyDer::from_pem_slice(key.as_ref())
            .map_err(|e| invalid(format!("no usable private key in the PEM: {e}")))?;
        Ok(Identity { chain, key })
    }

    /// From two PEM files (the interop programs' `--tls_cert_file`, `--tls_key_file`).
    pub fn from_pem_files(chain: impl AsRef<Path>, key: impl AsRef<Path>) -> io::Result<Identity> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        Identity::from_pem(read(chain.as_ref())?, read(key.as_ref())?)
    }

    /// The chain and the loaded signing key, checked to belong together.
    fn certified(&self) -> io::Result<Arc<CertifiedKey>> {
        CertifiedKey::from_der(self.chain.clone(), self.key.clone_key(), &provider())
            .map(Arc::new)
            .map_err(|e| invalid(format!("certificate and private key do not match: {e}")))
    }
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Identity")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// Every `CERTIFICATE` block of `pem`; an error when there is none.
pub(crate) fn certificates_from_pem(pem: &[u8]) -> io::Result<Vec<CertificateDer<'static>>> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("bad certificate PEM: {e}")))?;
    if chain.is_empty() {
        return Err(invalid("no CERTIFICATE block in the PEM"));
    }
    Ok(chain)
}

/// A root store holding every certificate of `pem` (a CA bundle).
pub(crate) fn roots_from_pem(pem: &[u8]) -> io::Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in certificates_from_pem(pem)? {
        roots
            .add(cert)
            .map_err(|e| invalid(format!("bad CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// The server's certificate, read at every handshake: what [`CertificateSwap`] replaces.
#[derive(Debug)]
struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // A poisoned lock only means a swap panicked half-way; the value is still whole.
        Some(match self.current.read() {
            Ok(key) => key.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

/// Replaces a running server's certificate: connections made after [`CertificateSwap::swap`]
/// get the new one; open connections keep theirs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CertificateSwap {
    resolver: Arc<Resolver>,
}

impl CertificateSwap {
    /// Presents `identity` from the next handshake on. An error (key and certificate that do not
    /// match) leaves the current certificate in place.
    pub fn swap(&self, identity: &Identity) -> io::Result<()> {
        let key = identity.certified()?;
        match self.resolver.current.write() {
            Ok(mut current) => *current = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
        Ok(())
    }
}

/// Whether the server asks clients for a certificate (mutual TLS), and what it checks it against.
#[derive(Clone, Debug)]
enum ClientAuth {
    /// No CertificateRequest: any client may connect.
    None,
    /// Ask; a client may send none, but one it sends must verify.
    Request(Arc<RootCertStore>),
    /// Ask, and refuse the handshake without a certificate that verifies.
    Require(Arc<RootCertStore>),
}

/// A server's TLS settings: its certificate, whether it wants client certificates, and the
/// handshake timeout. Given to `Server::builder().tls(...)`.
///
/// ```no_run
/// # fn demo() -> std::io::Result<()> {
/// use bare_grpc::tls::{Identity, ServerTls};
/// let tls = ServerTls::new(Identity::from_pem_files("server.pem", "server.key")?)?
///     .require_client_cert(std::fs::read("client-ca.pem")?)?;
/// let server = bare_grpc::Server::builder().tls(tls).build();
/// # let _ = server; Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ServerTls {
    resolver: Arc<Resolver>,
    client_auth: ClientAuth,
    handshake_timeout: Duration,
}

impl ServerTls {
    /// A server presenting `identity`; an error when its key does not match its certificate.
    pub fn new(identity: Identity) -> io::Result<ServerTls> {
        Ok(ServerTls {
            resolver: Arc::new(Resolver {
                current: RwLock::new(identity.certified()?),
            }),
            client_auth: ClientAuth::None,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        })
    }

    /// Mutual TLS: every client must present a certificate that verifies against `ca_pem`
    /// (one or more PEM CA certificates); the handshake fails otherwise.
    pub fn require_client_cert(mut self, ca_pem: impl AsRef<[u8]>) -> io::Result<ServerTls> {
        self.client_auth = ClientAuth::Require(Arc::new(roots_from_pem(ca_pem.as_ref())?));
        Ok(self)
    }

    /// Optional mutual TLS: clients are asked for a certificate; one that is sent must verify
    /// against `ca_pem`, but a client may send none (its [`TlsInfo::is_mutual`] is false).
    pub fn request_client_cert(mut self, ca_pem: impl AsRef<[u8]>) -> io::Result<ServerTls> {
        self.client_auth = ClientAuth::Request(Arc::new(roots_from_pem(ca_pem.as_ref())?));
        Ok(self)
    }

    /// How long a connection may take to finish its handshake (default
    /// [`DEFAULT_HANDSHAKE_TIMEOUT`]); a client still silent then is disconnected.
    pub fn handshake_timeout(mut self, timeout: Duration) -> ServerTls {
        self.handshake_timeout = timeout;
        self
    }

    /// A handle that replaces the certificate of the running server (see [`CertificateSwap`]).
    pub fn certificate_swap(&self) -> CertificateSwap {
        CertificateSwap {
            resolver: self.resolver.clone(),
        }
    }

    /// The rustls server configuration: versions, ALPN `h2` only, client verifier, resolver.
    pub(crate) fn acceptor(&self) -> io::Result<Acceptor> {
        let provider = provider();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(VERSIONS)
            .map_err(invalid)?;
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Request(roots) | ClientAuth::Require(roots) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone());
                let verifier = match self.client_auth {
                    ClientAuth::Request(_) => verifier.allow_unauthenticated(),
                    _ => verifier,
                };
                builder.with_client_cert_verifier(verifier.build().map_err(invalid)?)
            }
        };
        let mut config = builder.with_cert_resolver(self.resolver.clone());
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Acceptor {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            timeout: self.handshake_timeout,
        })
    }
}

/// A server's ready-to-use TLS acceptor, shared by its connection tasks.
pub(crate) struct Acceptor {
    acceptor: TlsAcceptor,
    timeout: Duration,
}

/// One accepted TCP connection: the TLS handshake (bounded in time, abandoned on shutdown),
/// the ALPN check, then the same HTTP/2 serving as h2c. Refusals are logged, never answered in
/// HTTP: there is no HTTP yet to answer in.
pub(crate) async fn serve_tls<S: Streams>(
    socket: TcpStream,
    addr: SocketAddr,
    shared: Arc<S>,
    mut shutdown: watch::Receiver<bool>,
    tls: Arc<Acceptor>,
) {
    let handshake = tokio::time::timeout(tls.timeout, tls.acceptor.accept(socket));
    let stop = shutdown.clone();
    let result = match first(handshake, shutdown.changed()).await {
        First::A(result) => result,
        // The server is shutting down: a connection not yet made is simply dropped.
        First::B(_) => return,
    };
    let stream = match result {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => {
            eprintln!("bare-grpc: TLS handshake with {addr} failed: {error}; connection closed");
            return;
        }
        Err(_) => {
            eprintln!(
                "bare-grpc: TLS handshake with {addr} not finished within {:?}; connection closed",
                tls.timeout
            );
            return;
        }
    };
    let connection = stream.get_ref().1;
    // rustls already refuses a client whose ALPN list lacks "h2" (RFC 7301 §3.2
    // no_application_protocol); a client that sent no ALPN at all is refused here.
    if connection.alpn_protocol() != Some(ALPN_H2) {
        eprintln!(
            "bare-grpc: TLS client {addr} did not negotiate ALPN \"h2\" (gRPC needs HTTP/2, \
             RFC 9113 §3.2); connection closed"
        );
        return;
    }
    let info = tls_info(
        connection.protocol_version(),
        connection.server_name(),
        connection.peer_certificates(),
    );
    serve_connection(stream, Peer::with_tls(Some(addr), info), shared, stop).await;
}

/// What the handshake proved, in the crate's own types: the chain and the leaf's SANs.
pub(crate) fn tls_info(
    version: Option<rustls::ProtocolVersion>,
    server_name: Option<&str>,
    chain: Option<&[CertificateDer<'_>]>,
) -> TlsInfo {
    let chain = chain.unwrap_or_default();
    let (mut dns_names, mut uris) = (Vec::new(), Vec::new());
    // The verifier already parsed this certificate; parsing cannot fail here, but a failure
    // would only mean no names.
    if let Some(Ok(cert)) = chain.first().map(webpki::EndEntityCert::try_from) {
        dns_names = cert.valid_dns_names().map(str::to_owned).collect();
        uris = cert.valid_uri_names().map(str::to_owned).collect();
    }
    TlsInfo {
        version: match version {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1_3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1_2",
            _ => "unknown",
        },
        server_name: server_name.map(str::to_owned),
        certificates: chain.iter().map(|c| c.as_ref().to_vec()).collect(),
        dns_names,
        uris,
    }
}

/// A client's TLS settings: whom to trust, which name to check, and its own certificate for
/// mutual TLS. Given to `ChannelBuilder::tls`; an `https://` address uses
/// `ClientTls::new()`.
///
/// ```no_run
/// # fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use bare_grpc::tls::ClientTls;
/// let tls = ClientTls::new()
///     .ca_certificate_pem(std::fs::read("ca.pem")?)?
///     .server_name("foo.test.google.fr");
/// let channel = bare_grpc::Channel::builder("127.0.0.1:50051")?.tls(tls)?.lazy();
/// # let _ = channel; Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct ClientTls {
    /// `None`: the system's roots (`rustls-native-certs`).
    pub(crate) roots: Option<Arc<RootCertStore>>,
    /// Checked against the certificate instead of the address's host.
    pub(crate) server_name: Option<String>,
    /// Presented when the server asks (mutual TLS).
    pub(crate) identity: Option<Identity>,
}

impl ClientTls {
    /// Trusts the system's root certificates and checks the address's host name.
    pub fn new() -> ClientTls {
        ClientTls::default()
    }

    /// Trusts only the CA certificates in `pem` (the interop client's `--ca_file`).
    pub fn ca_certificate_pem(mut self, pem: impl AsRef<[u8]>) -> io::Result<ClientTls> {
        self.roots = Some(Arc::new(roots_from_pem(pem.as_ref())?));
        Ok(self)
    }

    /// Checks the server's certificate for `name` instead of the address's host, and sends it
    /// as SNI (grpc's `server_host_override`, for dialling by IP or through a tunnel).
    pub fn server_name(mut self, name: &str) -> ClientTls {
        self.server_name = Some(name.to_owned());
        self
    }

    /// Presents `identity` when the server asks for a client certificate (mutual TLS).
    pub fn identity(mut self, identity: Identity) -> ClientTls {
        self.identity = Some(identity);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA-signed leaf with the given SANs, as (chain PEM, key PEM), from rcgen.
    fn leaf(dns: &[&str], uri: Option<&str>) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(
            dns.iter().map(|name| name.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        if let Some(uri) = uri {
            params
                .subject_alt_names
                .push(rcgen::SanType::URI(uri.try_into().unwrap()));
        }
        let key = rcgen::KeyPair::generate().unwrap();
        (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
    }

    #[test]
    fn identity_pem_rules() {
        let (cert, key) = leaf(&["a.example"], None);
        // (chain, key, accepted?, words the error must hold)
        let rows: &[(&str, &str, Option<&str>)] = &[
            (&cert, &key, None),
            ("", &key, Some("no CERTIFICATE block")),
            ("not pem at all", &key, Some("no CERTIFICATE block")),
            (&cert, "", Some("no usable private key")),
            (&cert, &cert, Some("no usable private key")),
        ];
        for (chain, key, error) in rows {
            match (Identity::from_pem(chain, key), error) {
                (Ok(identity), None) => assert_eq!(identity.chain.len(), 1),
                (Err(e), Some(words)) => assert!(e.to_string().contains(words), "{e}"),
                (got, want) => panic!("got {got:?}, want an error with {want:?}"),
            }
        }
    }

    #[test]
    fn a_key_that_does_not_match_its_certificate_is_refused() {
        let (cert, _) = leaf(&["a.example"], None);
        let (_, other_key) = leaf(&["b.example"], None);
        let identity = Identity::from_pem(&cert, &other_key).unwrap();
        let error = ServerTls::new(identity).unwrap_err();
        assert!(error.to_string().contains("do not match"), "{error}");
    }

    #[test]
    fn tls_info_reads_the_leafs_dns_and_uri_names() {
        let (cert, _) = leaf(&["a.example", "*.b.example"], Some("spiffe://t/x"));
        let chain = certificates_from_pem(cert.as_bytes()).unwrap();
        let info = tls_info(
            Some(rustls::ProtocolVersion::TLSv1_2),
            Some("a.example"),
            Some(&chain),
        );
        assert_eq!(info.version(), "TLSv1_2");
        assert_eq!(info.server_name(), Some("a.example"));
        assert_eq!(info.dns_names(), ["a.example", "*.b.example"]);
        assert_eq!(info.uris(), ["spiffe://t/x"]);
        assert!(info.is_mutual());
        assert_eq!(info.certificates()[0], chain[0].as_ref());
        // No certificate: not mutual, no names.
        let info = tls_info(Some(rustls::ProtocolVersion::TLSv1_3), None, None);
        assert!(!info.is_mutual() && info.dns_names().is_empty() && info.uris().is_empty());
    }

    #[test]
    fn identity_debug_leaves_the_key_out() {
        let (cert, key) = leaf(&["a.example"], None);
        let shown = format!("{:?}", Identity::from_pem(&cert, &key).unwrap());
        assert!(
            !shown.contains("PRIVATE") && shown.contains("certificates: 1"),
            "{shown}"
        );
    }
}

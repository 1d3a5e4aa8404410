//! The client's TLS handshake (feature `tls`): between the TCP connect and the HTTP/2 handshake
//! of `connection.rs`, when the channel was built with `ChannelBuilder::tls` or an `https://`
//! address.
//!
//! ```text
//!  TCP connected ─▶ ClientHello (SNI = server name, ALPN = ["h2"]) ─▶ verify the server's chain
//!      against the roots, and its name ─▶ ALPN must be "h2" ─▶ HTTP/2 preface (:scheme https)
//!  any failure ─▶ UNAVAILABLE "TLS handshake with <authority> failed: <reason>"
//! ```
//!
//! The rules: RFC 9113 §3.2 (HTTP/2 over TLS is ALPN "h2"), §9.2 (TLS 1.2 or later), RFC 6125
//! (the name in the certificate's subject alternative names); gRPC's `server_host_override`
//! names what is checked when the address is an IP. A failure is never answered by trying
//! plain text: the caller asked for TLS, and a downgrade would hand an attacker the call.
//!
//! Why it is shaped this way: the rustls configuration (roots, client certificate, ALPN) is
//! built once per channel ([`Connector::new`]), so a reconnect costs a handshake and no
//! parsing; the server name is the override or the address's host, fixed at the same time.
//!
//! Links: RFC 9113 <https://www.rfc-editor.org/rfc/rfc9113#section-3.2>, RFC 6125
//! <https://www.rfc-editor.org/rfc/rfc6125>.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::RootCertStore;
use rustls_pki_types::ServerName;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::status::Status;
use crate::transport::tls::{ALPN_H2, ClientTls, VERSIONS, provider};

/// A channel's TLS client: its rustls configuration and the name it checks.
#[derive(Clone)]
pub(crate) struct Connector {
    connector: TlsConnector,
    server_name: ServerName<'static>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl Connector {
    /// Builds the client configuration for a channel to `host`. INVALID_ARGUMENT for a name
    /// that is neither a DNS name nor an IP address, a client certificate that does not match
    /// its key, or a machine without any system root when no CA was given.
    pub(crate) fn new(tls: &ClientTls, host: &str) -> Result<Connector, Status> {
        let bad = |what: String| Status::invalid_argument(format!("TLS: {what}"));
        let roots = match &tls.roots {
            Some(roots) => roots.clone(),
            None => Arc::new(system_roots().map_err(bad)?),
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(roots);
        let mut config = match &tls.identity {
            Some(identity) => builder
                .with_client_auth_cert(identity.chain.clone(), identity.key.clone_key())
                .map_err(|e| bad(format!("client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        let name = tls.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|e| bad(format!("server name {name:?}: {e}")))?;
        Ok(Connector {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
        })
    }

    /// The handshake over a connected socket. UNAVAILABLE, with rustls' reason, when the
    /// server's certificate does not verify, the server refuses ours, or it does not speak h2.
    pub(crate) async fn connect<IO>(
        &self,
        tcp: IO,
        authority: &http::uri::Authority,
    ) -> Result<TlsStream<IO>, Status>
    where
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let stream = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|e| {
                Status::unavailable(format!("TLS handshake with {authority} failed: {e}"))
            })?;
        if stream.get_ref().1.alpn_protocol() != Some(ALPN_H2) {
            return Err(Status::unavailable(format!(
                "TLS handshake with {authority}: the server did not select ALPN \"h2\" \
                 (gRPC needs HTTP/2, RFC 9113 §3.2)"
            )));
        }
        Ok(stream)
    }
}

/// The operating system's trusted roots (on Linux the OpenSSL bundle, e.g.
/// /etc/ssl/certs/ca-certificates.crt); an error when none can be read.
fn system_roots() -> Result<RootCertStore, String> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(format!(
            "no system root certificate could be loaded ({} errors); give a CA with \
             ClientTls::ca_certificate_pem",
            found.errors.len()
        ));
    }
    Ok(roots)
}

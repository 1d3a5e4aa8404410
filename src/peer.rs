//! The other end of a call, as the server knows it: the remote address and, over TLS, what the
//! handshake proved about the client (grpc-go's `peer.Peer` with its `AuthInfo`).
//!
//! ```text
//!  transport (accept; TLS handshake when configured) ──Peer──▶ server::head ──▶ CallInfo (interceptors)
//!                                                                        └──▶ Request (handler)
//! ```
//!
//! Why one value: the transport learns the address at `accept` and the TLS identity at the
//! handshake, once per connection; every call of the connection then carries the same `Peer`.
//! Over plain h2c it is an address and a `None`, copied with no allocation; over TLS the identity
//! is built once per connection behind an `Arc`, so a call clones a pointer.
//!
//! The identity is what the TLS layer *verified* (RFC 8446 §4.4.2, RFC 5280 §6): the chain is
//! the one the client presented and the server's verifier accepted against its client CA, so an
//! authorization interceptor may decide on the subject alternative names (RFC 5280 §4.2.1.6).
//! A connection whose client sent no certificate (when the server only *requests* one) has a
//! [`TlsInfo`] with an empty chain.
//!
//! Links: RFC 5280 <https://www.rfc-editor.org/rfc/rfc5280>, RFC 8446
//! <https://www.rfc-editor.org/rfc/rfc8446>.

use std::net::SocketAddr;
use std::sync::Arc;

/// Who is calling: the address the connection came from and, over TLS, its verified identity.
#[derive(Clone, Debug, Default)]
pub struct Peer {
    addr: Option<SocketAddr>,
    tls: Option<Arc<TlsInfo>>,
}

impl Peer {
    /// A peer known by its address only (plain h2c).
    pub(crate) fn plain(addr: Option<SocketAddr>) -> Peer {
        Peer { addr, tls: None }
    }

    /// A peer that completed a TLS handshake (feature `tls`).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) fn with_tls(addr: Option<SocketAddr>, info: TlsInfo) -> Peer {
        Peer {
            addr,
            tls: Some(Arc::new(info)),
        }
    }

    /// The remote address, when the transport knows it.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// What the TLS handshake established; `None` on a plain-text connection.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_deref()
    }
}

/// What a TLS handshake established about the client (grpc-go's `credentials.TLSInfo`).
#[derive(Clone, Debug, Default)]
pub struct TlsInfo {
    /// `"TLSv1_3"` or `"TLSv1_2"`.
    pub(crate) version: &'static str,
    /// The server name the client asked for (SNI), if it sent one.
    pub(crate) server_name: Option<String>,
    /// The client's certificate chain, DER, leaf first; empty when it sent none.
    pub(crate) certificates: Vec<Vec<u8>>,
    /// The leaf's DNS subject alternative names.
    pub(crate) dns_names: Vec<String>,
    /// The leaf's URI subject alternative names (SPIFFE IDs are these).
    pub(crate) uris: Vec<String>,
}

impl TlsInfo {
    /// The negotiated protocol version: `"TLSv1_3"` or `"TLSv1_2"`.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// The server name the client sent (SNI), if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The verified client certificate chain, DER-encoded, leaf first; empty when the client
    /// presented none (possible only when the server requests, not requires, a certificate).
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }

    /// Whether the client proved a certificate (mutual TLS).
    pub fn is_mutual(&self) -> bool {
        !self.certificates.is_empty()
    }

    /// The DNS names of the client certificate's subject alternative names.
    pub fn dns_names(&self) -> &[String] {
        &self.dns_names
    }

    /// The URIs of the client certificate's subject alternative names (e.g. a SPIFFE ID).
    pub fn uris(&self) -> &[String] {
        &self.uris
    }
}

//! Certificates made at run time with `rcgen` (a dev-dependency): a CA, and leaf certificates
//! it signs, for the `tls` example and the TLS tests. Nothing here is ever written into the
//! repository; the tests write their files under `target/`.

#![allow(dead_code)] // each user takes the pieces it needs

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};

/// A certificate and its private key, both PEM.
pub struct Pem {
    /// The certificate.
    pub cert: String,
    /// The PKCS #8 private key.
    pub key: String,
}

/// A certificate authority that signs leaves.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// What a leaf certificate says about its holder.
#[derive(Default)]
pub struct Leaf<'a> {
    /// Its common name.
    pub name: &'a str,
    /// DNS subject alternative names.
    pub dns: &'a [&'a str],
    /// IP subject alternative names.
    pub ips: &'a [std::net::IpAddr],
    /// URI subject alternative names (e.g. a SPIFFE ID).
    pub uris: &'a [&'a str],
    /// Expired a year ago, when true.
    pub expired: bool,
}

impl Ca {
    /// A new self-signed CA called `name`.
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        Ca {
            issuer: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    /// The CA certificate, PEM: what a peer trusts.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate signed by this CA.
    pub fn leaf(&self, leaf: &Leaf<'_>) -> Pem {
        let mut params =
            CertificateParams::new(leaf.dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("leaf params");
        params
            .distinguished_name
            .push(DnType::CommonName, leaf.name);
        for ip in leaf.ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        for uri in leaf.uris {
            params
                .subject_alt_names
                .push(SanType::URI((*uri).try_into().expect("URI SAN")));
        }
        if leaf.expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("leaf certificate");
        Pem {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

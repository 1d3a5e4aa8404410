//! Targets and name resolution: what a channel string means, and the addresses it stands for.
//!
//! The rule: gRPC's naming document (naming.md). A target is a URI whose scheme picks the
//! resolver:
//!
//! ```text
//!   dns:///host:port  dns:host:port  host:port    -> DNS (tokio's resolver, on the blocking pool)
//!   ipv4:1.2.3.4:5,6.7.8.9:10                     -> those addresses (port 443 when left out)
//!   ipv6:[::1]:5,[::2]:6   (ipv6:::1 without port) -> those addresses (port 443 when left out)
//!   unix:relative/path  unix:///absolute/path     -> a Unix domain socket, `:authority` localhost
//!   http://host:port  https://host:port          -> DNS, the scheme saying h2c or TLS
//! ```
//!
//! A target that does not parse is INVALID_ARGUMENT at build time, naming the part that is
//! wrong (the scheme, one address of a list, the port), never an error at the first call.
//!
//! A [`Resolver`] yields the current address list each time the channel asks: when it first
//! needs addresses and again whenever a connection is lost, but never more often than its
//! minimum interval (the channel keeps the last answer in between; naming.md's "re-resolution
//! is rate limited", grpc-go's 30 s `min_time_between_resolutions`, here 30 s by default too
//! and settable with `ChannelBuilder::min_resolve_interval`). A pull, not a push: a resolver
//! that learns of changes on its own (a file watcher, a registry) answers the next ask with
//! the new list, and the channel asks on every connection loss. Built in: [`StaticResolver`]
//! (ipv4, ipv6, unix: the list never changes) and [`DnsResolver`].
//!
//! Links: <https://github.com/grpc/grpc/blob/master/doc/naming.md>.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::status::Status;

/// One address a subchannel connects to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix domain socket path.
    Unix(PathBuf),
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Tcp(addr) => write!(f, "{addr}"),
            Address::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// What a resolver's `resolve` returns: a boxed future of the address list.
pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Address>, Status>> + Send + 'a>>;

/// A source of addresses for a channel (see the module docs for when it is asked).
///
/// An empty list or an error is a failed resolution: the calls that needed it fail with
/// UNAVAILABLE naming it (or wait, for `wait_for_ready`), and the channel asks again after its
/// minimum interval.
pub trait Resolver: Send + Sync + fmt::Debug + 'static {
    /// The current addresses.
    fn resolve(&self) -> ResolveFuture<'_>;
}

/// A fixed list (the `ipv4:`, `ipv6:` and `unix:` schemes).
#[derive(Clone, Debug)]
pub struct StaticResolver(pub Vec<Address>);

impl Resolver for StaticResolver {
    fn resolve(&self) -> ResolveFuture<'_> {
        let list = self.0.clone();
        Box::pin(async move { Ok(list) })
    }
}

/// A host name and port looked up with the system resolver (`tokio::net::lookup_host`, which
/// runs `getaddrinfo` on the blocking pool); IP literals resolve to themselves.
#[derive(Clone, Debug)]
pub struct DnsResolver {
    /// The name (or IP literal, without brackets).
    pub host: String,
    /// The port every address gets.
    pub port: u16,
}

impl Resolver for DnsResolver {
    fn resolve(&self) -> ResolveFuture<'_> {
        Box::pin(async move {
            let addrs: Vec<Address> = tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|e| Status::unavailable(format!("cannot resolve {}: {e}", self.host)))?
                .map(Address::Tcp)
                .collect();
            if addrs.is_empty() {
                return Err(Status::unavailable(format!(
                    "{} resolved to no address",
                    self.host
                )));
            }
            Ok(addrs)
        })
    }
}

/// The default minimum time between two resolutions of one channel (grpc-go's 30 s).
pub const DEFAULT_MIN_RESOLVE_INTERVAL: Duration = Duration::from_secs(30);

/// A resolver with its last answer, asked again only after the minimum interval: what every
/// subchannel and balancer of a channel shares.
#[derive(Debug)]
pub(crate) struct Resolution {
    /// The resolver.
    resolver: Arc<dyn Resolver>,
    /// Never resolve more often than this.
    min_interval: Duration,
    /// The last successful list and when it was asked for.
    last: Mutex<Option<(Instant, Vec<Address>)>>,
}

impl Resolution {
    /// A resolution nobody has asked for yet.
    pub(crate) fn new(resolver: Arc<dyn Resolver>, min_interval: Duration) -> Resolution {
        Resolution {
            resolver,
            min_interval,
            last: Mutex::new(None),
        }
    }

    /// The addresses: the cached list while it is younger than the minimum interval (or
    /// `fresh` is false and one exists), else a new resolution. `fresh` is what a connection
    /// loss asks for.
    pub(crate) async fn addresses(&self, fresh: bool) -> Result<Vec<Address>, Status> {
        let cached = crate::lock::lock(&self.last).clone();
        if let Some((at, list)) = cached {
            if !fresh || at.elapsed() < self.min_interval {
                return Ok(list);
            }
        }
        let list = self.resolver.resolve().await?;
        if list.is_empty() {
            return Err(Status::unavailable("the resolver returned no address"));
        }
        *crate::lock::lock(&self.last) = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// When a fresh resolution would be allowed next (`None`: now).
    pub(crate) fn next_allowed(&self) -> Option<Instant> {
        let last = crate::lock::lock(&self.last);
        let at = last.as_ref()?.0 + self.min_interval;
        (at > Instant::now()).then_some(at)
    }
}

/// A parsed target: its resolver, the `:authority` of every request, and the host a TLS
/// client verifies.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// Host name or IP literal (no brackets), `localhost` for Unix sockets: TLS's server name.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) host: String,
    /// `:authority` of every request.
    pub(crate) authority: http::uri::Authority,
    /// The address said `https://`: TLS with the system's roots (feature `tls`; without it,
    /// `parse` refuses `https://`, so the field is only read by the feature's code).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    pub(crate) https: bool,
    /// Where the addresses come from.
    pub(crate) resolver: Arc<dyn Resolver>,
}

/// The port naming.md gives `ipv4:`/`ipv6:` addresses that name none.
const DEFAULT_PORT: u16 = 443;

impl Target {
    /// Parses a target (module docs list the forms). INVALID_ARGUMENT naming the wrong part.
    pub(crate) fn parse(target: &str) -> Result<Target, Status> {
        let bad = |why: &str| Status::invalid_argument(format!("bad target {target:?}: {why}"));
        if let Some((scheme, rest)) = target.split_once("://") {
            match scheme {
                "http" => return Target::dns(rest.strip_suffix('/').unwrap_or(rest), false, &bad),
                "https" if cfg!(not(feature = "tls")) => {
                    return Err(bad("https:// needs bare-grpc's `tls` feature"));
                }
                "https" => return Target::dns(rest.strip_suffix('/').unwrap_or(rest), true, &bad),
                "dns" => {
                    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
                    if !authority.is_empty() {
                        return Err(bad(&format!(
                            "a DNS server in the target ({authority:?}) is not supported; \
                             use dns:///host:port"
                        )));
                    }
                    return Target::dns(path, false, &bad);
                }
                "unix" => {
                    // unix:///absolute/path: the authority must be empty.
                    if !rest.starts_with('/') {
                        return Err(bad("unix:// takes an absolute path: unix:///path"));
                    }
                    return Target::unix(rest, &bad);
                }
                _ => {}
            }
        }
        if let Some(path) = target.strip_prefix("unix:") {
            return Target::unix(path, &bad);
        }
        if let Some(list) = target.strip_prefix("ipv4:") {
            return Target::ip_list(list, false, &bad);
        }
        if let Some(list) = target.strip_prefix("ipv6:") {
            return Target::ip_list(list, true, &bad);
        }
        if let Some(rest) = target.strip_prefix("dns:") {
            return Target::dns(rest, false, &bad);
        }
        if let Some((scheme, _)) = target.split_once("://") {
            return Err(bad(&format!(
                "unsupported scheme {scheme:?} (dns, ipv4, ipv6, unix, http, https)"
            )));
        }
        Target::dns(target, false, &bad)
    }

    /// `host:port` or `[v6]:port`, resolved by DNS.
    fn dns(rest: &str, https: bool, bad: &dyn Fn(&str) -> Status) -> Result<Target, Status> {
        let (host, port) = split_host_port(rest, None, bad)?;
        let authority = http::uri::Authority::try_from(rest).map_err(|e| bad(&e.to_string()))?;
        Ok(Target {
            resolver: Arc::new(DnsResolver {
                host: host.to_owned(),
                port,
            }),
            host: host.to_owned(),
            authority,
            https,
        })
    }

    /// A Unix socket path; `:authority` is `localhost` (naming.md).
    fn unix(path: &str, bad: &dyn Fn(&str) -> Status) -> Result<Target, Status> {
        if path.is_empty() {
            return Err(bad("empty socket path"));
        }
        if !cfg!(unix) {
            return Err(bad("Unix domain sockets need a Unix system"));
        }
        Ok(Target {
            resolver: Arc::new(StaticResolver(vec![Address::Unix(PathBuf::from(path))])),
            host: "localhost".to_owned(),
            authority: http::uri::Authority::from_static("localhost"),
            https: false,
        })
    }

    /// A comma-separated list of IP addresses with optional ports; `:authority` is the first.
    fn ip_list(list: &str, v6: bool, bad: &dyn Fn(&str) -> Status) -> Result<Target, Status> {
        let mut addrs = Vec::new();
        for (i, item) in list.split(',').enumerate() {
            let bad_item = |why: &str| bad(&format!("address {} ({item:?}): {why}", i + 1));
            let addr: SocketAddr = if v6 {
                if let Ok(ip) = item.parse::<std::net::Ipv6Addr>() {
                    SocketAddr::new(IpAddr::V6(ip), DEFAULT_PORT)
                } else {
                    let (host, port) = split_host_port(item, Some(DEFAULT_PORT), &bad_item)?;
                    let ip: std::net::Ipv6Addr =
                        host.parse().map_err(|_| bad_item("not an IPv6 address"))?;
                    SocketAddr::new(IpAddr::V6(ip), port)
                }
            } else {
                let (host, port) = split_host_port(item, Some(DEFAULT_PORT), &bad_item)?;
                let ip: std::net::Ipv4Addr =
                    host.parse().map_err(|_| bad_item("not an IPv4 address"))?;
                SocketAddr::new(IpAddr::V4(ip), port)
            };
            addrs.push(Address::Tcp(addr));
        }
        let Some(Address::Tcp(first)) = addrs.first().cloned() else {
            return Err(bad("no address"));
        };
        let authority = http::uri::Authority::try_from(first.to_string().as_str())
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Target {
            host: first.ip().to_string(),
            authority,
            https: false,
            resolver: Arc::new(StaticResolver(addrs)),
        })
    }
}

/// Splits `host:port` or `[v6]:port`; `default` is the port when there is none (`None`: a
/// port is required).
fn split_host_port<'a>(
    rest: &'a str,
    default: Option<u16>,
    bad: &dyn Fn(&str) -> Status,
) -> Result<(&'a str, u16), Status> {
    let (host, port) = if let Some(bracketed) = rest.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match rest.rsplit_once(':') {
            Some((host, _)) if host.contains(':') => {
                return Err(bad("an IPv6 address needs brackets: [addr]:port"));
            }
            Some((host, port)) => (host, Some(port)),
            None => (rest, None),
        }
    };
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port = match (port, default) {
        (Some(port), _) => port
            .parse()
            .map_err(|_| bad(&format!("port {port:?} is not a number 0-65535")))?,
        (None, Some(port)) => port,
        (None, None) => return Err(bad("expected host:port")),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naming_doc_forms() {
        let ok: &[(&str, &str, Option<usize>)] = &[
            ("localhost:50051", "localhost:50051", None),
            ("dns:///localhost:1", "localhost:1", None),
            ("dns:localhost:1", "localhost:1", None),
            ("dns:///[::1]:2", "[::1]:2", None),
            ("http://[::1]:2/", "[::1]:2", None),
            ("ipv4:127.0.0.1:1,127.0.0.2:2", "127.0.0.1:1", Some(2)),
            ("ipv4:127.0.0.1", "127.0.0.1:443", Some(1)),
            ("ipv6:[::1]:5,[::2]:6", "[::1]:5", Some(2)),
            ("ipv6:::1", "[::1]:443", Some(1)),
            ("unix:///tmp/a.sock", "localhost", Some(1)),
            ("unix:relative.sock", "localhost", Some(1)),
        ];
        for (input, authority, fixed) in ok {
            let target = Target::parse(input).unwrap_or_else(|e| panic!("{input}: {e:?}"));
            assert_eq!(target.authority.as_str(), *authority, "{input}");
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            if let Some(len) = fixed {
                let list = rt.block_on(target.resolver.resolve()).unwrap();
                assert_eq!(list.len(), *len, "{input}");
            }
        }
        let bad: &[(&str, &str)] = &[
            ("localhost", "expected host:port"),
            ("::1:80", "brackets"),
            (":80", "empty host"),
            ("host:99999", "\"99999\""),
            ("ftp://host:21", "\"ftp\""),
            ("dns://8.8.8.8/host:1", "DNS server"),
            ("ipv4:127.0.0.1:1,300.0.0.1:2", "address 2"),
            ("ipv6:[::1]:1,127.0.0.1:2", "address 2"),
            ("unix:", "empty socket path"),
            ("unix://relative", "absolute path"),
        ];
        for (input, names) in bad {
            let status = Target::parse(input).unwrap_err();
            assert_eq!(status.code(), crate::status::Code::InvalidArgument);
            assert!(status.message().contains(names), "{input}: {status:?}");
        }
    }

    #[test]
    fn unix_paths() {
        for (input, path) in [
            ("unix:///tmp/a.sock", "/tmp/a.sock"),
            ("unix:rel/b.sock", "rel/b.sock"),
            ("unix:/abs/c.sock", "/abs/c.sock"),
        ] {
            let target = Target::parse(input).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let list = rt.block_on(target.resolver.resolve()).unwrap();
            assert_eq!(list, vec![Address::Unix(PathBuf::from(path))], "{input}");
        }
    }

    #[test]
    fn https_means_tls_and_needs_the_feature() {
        let parsed = Target::parse("https://host:443");
        if cfg!(feature = "tls") {
            let target = parsed.unwrap();
            assert!(target.https);
            assert_eq!(target.authority.as_str(), "host:443");
            assert!(!Target::parse("http://host:80").unwrap().https);
        } else {
            let status = parsed.unwrap_err();
            assert_eq!(status.code(), crate::status::Code::InvalidArgument);
            assert!(status.message().contains("`tls` feature"), "{status:?}");
        }
    }
}

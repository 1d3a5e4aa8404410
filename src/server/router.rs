//! Dispatch tables: which handler serves which `:path` (PROTOCOL-HTTP2 § Requests, `Path`).
//!
//! ```text
//!  :path = "/" Service-Name "/" {method name}      e.g. /ecommerce.ProductInfo/addProduct
//!          └── fully qualified, with the package ─┘ └── as written in the .proto ──┘
//! ```
//!
//! Generated code describes each service as data: a `const` slice of [`Route`] rows (path, call
//! kind, handler), the way grpc-go's `ServiceDesc` does, instead of a `match` hidden in code.
//! The server merges every service's rows into one table sorted by path when it is built, so a
//! lookup is a binary search: three or four string comparisons for a server with ten methods,
//! where a `HashMap` spent more than that on SipHash of the path alone (the instruction counts
//! are in docs/performance.md § Measurements behind the code's choices). The
//! table never changes after start-up, so there is nothing a hash would buy for inserts.
//! Reflection, metrics labels and docs read the same rows.
//!
//! What it rejects, all with `UNIMPLEMENTED` as a trailers-only answer (statuscodes.md: "the
//! operation is not implemented or is not supported/enabled in this service"):
//!
//! | `:path` | message |
//! |---|---|
//! | not `/service/method` | `malformed :path "…"` |
//! | service not registered | `unknown service foo.Bar` |
//! | service known, method not | `unknown method Baz for service foo.Bar` |
//!
//! The two "unknown" cases are worded differently on purpose: a caller who mistyped the package
//! learns something different from one who calls a method the server is too old to have.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::call::CallKind;
use crate::server::call::ServerCall;
use crate::status::Status;

/// The future that serves one call, produced by a [`Route`]'s handler.
pub type CallFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A gRPC service as generated code describes it: its name and its dispatch table.
pub trait Service: Send + Sync + Sized + 'static {
    /// The fully qualified service name, e.g. `ecommerce.ProductInfo`.
    const NAME: &'static str;
    /// One row per method, sorted by path.
    const ROUTES: &'static [Route<Self>];
}

/// One row of a dispatch table: a method path, its call kind, and the driver that serves it.
pub struct Route<S> {
    /// The `:path` this row answers, e.g. `/ecommerce.ProductInfo/addProduct`.
    pub path: &'static str,
    /// The method name as written in the `.proto`, e.g. `addProduct`.
    pub method: &'static str,
    /// How many messages each side sends.
    pub kind: CallKind,
    /// Decodes the request, calls the service's trait method, encodes the answer: in generated
    /// code, `serve_unary::<Self, N>` and its siblings (see `server::method`).
    pub handler: fn(Arc<S>, ServerCall) -> CallFuture,
}

/// A merged, type-erased row: what the server looks up for each stream.
pub(crate) struct RouteEntry {
    /// The `:path` this row answers.
    pub(crate) path: &'static str,
    /// Call kind, for metrics and interceptors.
    pub(crate) kind: CallKind,
    /// Service name, e.g. `ecommerce.ProductInfo`.
    pub(crate) service: &'static str,
    /// Method name, e.g. `addProduct`.
    pub(crate) method: &'static str,
    /// The receive limit for this method, when it differs from the server's.
    pub(crate) max_recv: Option<usize>,
    /// The handler, bound to its service instance.
    pub(crate) call: Arc<dyn Fn(ServerCall) -> CallFuture + Send + Sync>,
}

/// Every service's rows, merged once at startup.
#[derive(Default)]
pub(crate) struct Router {
    /// Sorted by `path`; paths are unique because service names are.
    routes: Vec<RouteEntry>,
    services: HashSet<&'static str>,
}

impl Router {
    /// Adds every row of `service`'s table. A service registered twice is a programming error.
    pub(crate) fn add<S: Service>(&mut self, service: S) {
        assert!(
            self.services.insert(S::NAME),
            "bare-grpc: service {} registered twice",
            S::NAME
        );
        let service = Arc::new(service);
        for route in S::ROUTES {
            let instance = Arc::clone(&service);
            let handler = route.handler;
            let at = match self.find(route.path) {
                Ok(_) => panic!("bare-grpc: path {} registered twice", route.path),
                Err(at) => at,
            };
            self.routes.insert(
                at,
                RouteEntry {
                    path: route.path,
                    kind: route.kind,
                    service: S::NAME,
                    method: route.method,
                    max_recv: None,
                    call: Arc::new(move |call| handler(Arc::clone(&instance), call)),
                },
            );
        }
    }

    /// Sets a per-method receive limit; false when no such path is registered.
    pub(crate) fn set_max_recv(&mut self, path: &str, limit: usize) -> bool {
        match self.find(path) {
            Ok(at) => {
                self.routes[at].max_recv = Some(limit);
                true
            }
            Err(_) => false,
        }
    }

    /// Where `path` is in the table, or where it would go.
    fn find(&self, path: &str) -> Result<usize, usize> {
        self.routes.binary_search_by(|entry| entry.path.cmp(path))
    }

    /// Finds the row for `path`, or the `UNIMPLEMENTED` status that explains why there is none.
    pub(crate) fn lookup(&self, path: &str) -> Result<&RouteEntry, Status> {
        if let Ok(at) = self.find(path) {
            return Ok(&self.routes[at]);
        }
        let Some((service, method)) = split_path(path) else {
            return Err(Status::unimplemented(format!("malformed :path {path:?}")));
        };
        if self.services.contains(service) {
            Err(Status::unimplemented(format!(
                "unknown method {method} for service {service}"
            )))
        } else {
            Err(Status::unimplemented(format!("unknown service {service}")))
        }
    }

    /// Every registered method as `(service, method, kind)`, sorted by path.
    pub(crate) fn methods(&self) -> Vec<(&'static str, &'static str, CallKind)> {
        self.routes
            .iter()
            .map(|entry| (entry.service, entry.method, entry.kind))
            .collect()
    }

    /// The registered service names, sorted.
    pub(crate) fn service_names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.services.iter().copied().collect();
        names.sort_unstable();
        names
    }
}

/// Splits `/service/method` into its two names; None when the path has any other shape.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (service, method) = rest.split_once('/')?;
    if service.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((service, method))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table-only service: lookups never call the handler.
    fn never_called<S>(_: Arc<S>, _: ServerCall) -> CallFuture {
        unreachable!("lookup tests do not serve calls")
    }

    macro_rules! table_service {
        ($ty:ident, $name:literal, [$($method:literal),*]) => {
            struct $ty;
            impl Service for $ty {
                const NAME: &'static str = $name;
                const ROUTES: &'static [Route<Self>] = &[$(Route {
                    path: concat!("/", $name, "/", $method),
                    method: $method,
                    kind: CallKind::Unary,
                    handler: never_called::<$ty>,
                }),*];
            }
        };
    }
    table_service!(Zeta, "z.Zeta", ["Get", "Put"]);
    table_service!(Alpha, "a.Alpha", ["One", "Two", "Three"]);
    table_service!(Mid, "m.Mid", ["Only"]);

    #[test]
    fn lookup_finds_every_row_and_explains_every_miss() {
        let mut router = Router::default();
        router.add(Zeta);
        router.add(Alpha);
        router.add(Mid);
        for path in [
            "/a.Alpha/One",
            "/a.Alpha/Three",
            "/a.Alpha/Two",
            "/m.Mid/Only",
            "/z.Zeta/Get",
            "/z.Zeta/Put",
        ] {
            assert_eq!(router.lookup(path).map(|e| e.path).ok(), Some(path));
        }
        let miss = |path: &str| router.lookup(path).err().map(|s| s.message().to_owned());
        assert_eq!(
            miss("/a.Alpha/Four").as_deref(),
            Some("unknown method Four for service a.Alpha")
        );
        assert_eq!(
            miss("/b.Beta/One").as_deref(),
            Some("unknown service b.Beta")
        );
        assert_eq!(miss("/").as_deref(), Some("malformed :path \"/\""));
        assert_eq!(miss("").as_deref(), Some("malformed :path \"\""));
        // Sorted by path, whatever the order of registration.
        let methods: Vec<_> = router.methods().into_iter().map(|m| m.1).collect();
        assert_eq!(methods, ["One", "Three", "Two", "Only", "Get", "Put"]);
        assert!(router.set_max_recv("/m.Mid/Only", 7));
        assert_eq!(router.lookup("/m.Mid/Only").unwrap().max_recv, Some(7));
        assert!(!router.set_max_recv("/m.Mid/Other", 7));
    }

    #[test]
    fn split_path_accepts_only_two_nonempty_segments() {
        let rows: &[(&str, Option<(&str, &str)>)] = &[
            // Path → ":path" "/" Service-Name "/" {method name}
            ("/pkg.Svc/Method", Some(("pkg.Svc", "Method"))),
            // no package: the service name stands alone
            ("/RouteGuide/GetPerson", Some(("RouteGuide", "GetPerson"))),
            ("pkg.Svc/Method", None),
            ("/pkg.Svc", None),
            ("/pkg.Svc/", None),
            ("//Method", None),
            ("/a/b/c", None),
            ("", None),
        ];
        for (path, want) in rows {
            assert_eq!(split_path(path), *want, "{path}");
        }
    }
}

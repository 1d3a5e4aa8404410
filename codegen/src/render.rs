//! IR to Rust source, one plain line at a time (grpc-go's `g.P` style).
//!
//! Rule: what we emit is the contract in `src/codegen.rs` of the runtime: a
//! server trait, a server type whose `Service` impl is the dispatch table
//! (`ROUTES`, sorted by `:path`, PROTOCOL-HTTP2 § Requests for the path
//! grammar), one method-trait impl per method, and a client. Per service:
//!
//! ```text
//!   // @generated ...
//!   pub mod product_info_grpc {
//!       use ::bare_grpc::codegen::*;             the only runtime path named
//!       const _: () = ::bare_grpc::codegen::ABI_V2;
//!       pub const ADD_PRODUCT: &str = "/ecommerce.ProductInfo/addProduct";
//!       pub trait ProductInfo                    what the user implements
//!       pub struct ProductInfoServer<T>          what the server is given
//!       impl Service for ProductInfoServer<T>    NAME + ROUTES: rows name serve_unary::<Self, N>
//!       impl UnaryMethod<N> for ProductInfoServer<T>   call = the trait method N
//!       pub struct ProductInfoClient             one async fn per RPC
//!   }
//! ```
//!
//! Why plain lines: the output is read by people (golden files, docs), so the
//! renderer is written to look like its output; `layout` makes the handful of
//! width-dependent line breaks the way rustfmt makes them.
//!
//! Collisions: the glob import puts runtime names in scope, and items we define
//! (the trait, `FooServer`, `FooClient`) shadow it. When a service is itself
//! called `Status`, `Request`, `Result` or `Send`, every use of that runtime or
//! prelude name is written as an absolute path instead, so the code still
//! compiles. Message types are always reached through `super::` or an
//! absolute path, so a message never collides with anything here.

use std::collections::BTreeSet;

use crate::ir::{Kind, Method, Service};
use crate::layout::{self, Element, Param, Signature, Ty, pad};

/// Absolute paths for the names generated code uses unqualified.
const ABSOLUTE: &[(&str, &str)] = &[
    ("Arc", "::bare_grpc::codegen::Arc"),
    ("BidiMethod", "::bare_grpc::codegen::BidiMethod"),
    ("CallFuture", "::bare_grpc::codegen::CallFuture"),
    ("CallKind", "::bare_grpc::codegen::CallKind"),
    ("Channel", "::bare_grpc::codegen::Channel"),
    (
        "ClientStreamingMethod",
        "::bare_grpc::codegen::ClientStreamingMethod",
    ),
    ("Future", "::bare_grpc::codegen::Future"),
    ("IntoRequest", "::bare_grpc::codegen::IntoRequest"),
    (
        "IntoStreamingRequest",
        "::bare_grpc::codegen::IntoStreamingRequest",
    ),
    ("Request", "::bare_grpc::codegen::Request"),
    ("RequestSink", "::bare_grpc::codegen::RequestSink"),
    ("Response", "::bare_grpc::codegen::Response"),
    ("ResponseSink", "::bare_grpc::codegen::ResponseSink"),
    ("ResponseStream", "::bare_grpc::codegen::ResponseStream"),
    ("Result", "::core::result::Result"),
    ("Route", "::bare_grpc::codegen::Route"),
    ("Send", "::core::marker::Send"),
    ("ServerCall", "::bare_grpc::codegen::ServerCall"),
    (
        "ServerStreamingMethod",
        "::bare_grpc::codegen::ServerStreamingMethod",
    ),
    ("Service", "::bare_grpc::codegen::Service"),
    ("Status", "::bare_grpc::codegen::Status"),
    ("Streaming", "::bare_grpc::codegen::Streaming"),
    ("Sync", "::core::marker::Sync"),
    ("UnaryMethod", "::bare_grpc::codegen::UnaryMethod"),
];

/// The driver that serves a call kind: what a dispatch-table row names.
fn driver(kind: Kind) -> &'static str {
    match kind {
        Kind::Unary => "serve_unary",
        Kind::ServerStreaming => "serve_server_streaming",
        Kind::ClientStreaming => "serve_client_streaming",
        Kind::Bidi => "serve_bidi",
    }
}

/// The trait through which that driver calls the service's method.
fn method_trait(kind: Kind) -> &'static str {
    match kind {
        Kind::Unary => "UnaryMethod",
        Kind::ServerStreaming => "ServerStreamingMethod",
        Kind::ClientStreaming => "ClientStreamingMethod",
        Kind::Bidi => "BidiMethod",
    }
}

/// Renders one service module, ending with a newline.
pub fn service(service: &Service) -> String {
    service_parts(service, true, true)
}

/// [`service`] with only the server side (trait, server type, dispatch table
/// and method impls), only the client, or both; the `:path` constants always.
pub fn service_parts(service: &Service, server: bool, client: bool) -> String {
    let mut renderer = Renderer::new(service);
    renderer.server_side = server;
    renderer.client_side = client;
    renderer.render()
}

struct Renderer<'a> {
    service: &'a Service,
    server_side: bool,
    client_side: bool,
    /// Type names this module defines, which shadow the glob import.
    locals: BTreeSet<String>,
    out: Vec<String>,
}

impl<'a> Renderer<'a> {
    fn new(service: &'a Service) -> Self {
        let name = &service.rust_name;
        let locals = [
            name.clone(),
            format!("{name}Server"),
            format!("{name}Client"),
        ];
        Renderer {
            service,
            server_side: true,
            client_side: true,
            locals: locals.into_iter().collect(),
            out: Vec::new(),
        }
    }

    /// `name` as generated code must spell it: bare through the glob import, or
    /// absolute when an item of this module shadows it.
    fn rt(&self, name: &str) -> String {
        if self.locals.contains(name) {
            let (_, path) = ABSOLUTE
                .iter()
                .find(|(n, _)| *n == name)
                .expect("known name");
            (*path).to_string()
        } else {
            name.to_string()
        }
    }

    fn line(&mut self, indent: usize, text: &str) {
        if text.is_empty() {
            self.out.push(String::new());
        } else {
            self.out.push(format!("{}{text}", pad(indent)));
        }
    }

    fn docs(&mut self, indent: usize, comments: &[String], fallback: &str) {
        if comments.is_empty() {
            self.line(indent, &format!("/// {fallback}"));
        } else {
            for line in doc_lines(comments) {
                self.line(indent, &line);
            }
        }
    }

    fn render(mut self) -> String {
        let svc = self.service;
        let full = svc.full_name();
        let name = svc.rust_name.clone();
        self.line(
            0,
            &format!(
                "// @generated by protoc-gen-bare-grpc {} from {}. Do not edit.",
                env!("CARGO_PKG_VERSION"),
                svc.file
            ),
        );
        let what = match (self.server_side, self.client_side) {
            (true, true) => "Server trait, dispatch table and client",
            (true, false) => "Server trait and dispatch table",
            (false, _) => "Client",
        };
        self.line(0, &format!("/// {what} of `{full}`."));
        self.line(
            0,
            &format!(
                "pub mod {} {{",
                crate::names::service_module(&svc.proto_name)
            ),
        );
        self.line(4, "use ::bare_grpc::codegen::*;");
        self.line(0, "");
        self.line(4, "const _: () = ::bare_grpc::codegen::ABI_V2;");
        for method in &svc.methods {
            self.line(0, "");
            self.line(4, &format!("/// The `:path` of `{}`.", method.proto_name));
            let lines = layout::const_str(4, &method.path_const(), &svc.path(method));
            self.out.extend(lines);
        }
        if self.server_side {
            self.trait_(&name, &full);
            self.server(&name, &full);
        }
        // A service without methods has nothing to call: no client.
        if self.client_side && !svc.methods.is_empty() {
            self.client(&name, &full);
        }
        self.line(0, "}");
        let mut text = self.out.join("\n");
        text.push('\n');
        text
    }

    fn trait_(&mut self, name: &str, full: &str) {
        let svc = self.service;
        self.line(0, "");
        let fallback = format!("The `{full}` service: implement it, serve it with `{name}Server`.");
        self.docs(4, &svc.comments, &fallback);
        let bounds = format!("{} + {} + 'static", self.rt("Send"), self.rt("Sync"));
        if svc.methods.is_empty() {
            self.line(4, &format!("pub trait {name}: {bounds} {{}}"));
            return;
        }
        self.line(4, &format!("pub trait {name}: {bounds} {{"));
        for (i, method) in svc.methods.iter().enumerate() {
            if i > 0 {
                self.line(0, "");
            }
            let fallback = format!(
                "Handles `{}` ({}).",
                svc.path(method),
                kind_words(method.kind())
            );
            self.docs(8, &method.comments, &fallback);
            let sig = self.handler_signature(
                method,
                format!("fn {}", method.rust_name),
                Ty::atom(&method.input_type),
                Ty::atom(&method.output_type),
                true,
            );
            self.out.extend(sig.lines());
        }
        self.line(4, "}");
    }

    /// The signature of a method that handles `method`'s calls, taking `&self`, the request
    /// (`input` messages) and, for a streamed response, the sink (`output` messages), and
    /// returning a `Send` future: the service trait's method (the message types by path) and
    /// a method trait's `call` (`Self::In`, `Self::Out`) have the same shape.
    fn handler_signature(
        &self,
        method: &Method,
        head: String,
        input: Ty,
        output: Ty,
        declaration: bool,
    ) -> Signature {
        let request = if method.client_streaming {
            Ty::generic(
                &self.rt("Request"),
                vec![Ty::generic(&self.rt("Streaming"), vec![input])],
            )
        } else {
            Ty::generic(&self.rt("Request"), vec![input])
        };
        let mut params = vec![Param::self_ref(), Param::new("request", request)];
        let result = if method.server_streaming {
            params.push(Param::new(
                "sink",
                Ty::generic(&self.rt("ResponseSink"), vec![output]),
            ));
            self.result(Ty::atom("()"))
        } else {
            self.result(Ty::generic(&self.rt("Response"), vec![output]))
        };
        let ret = Ty::Bounds(
            Box::new(Ty::generic(
                &format!("impl {}", self.rt("Future")),
                vec![Ty::Assoc("Output", Box::new(result))],
            )),
            format!(" + {}", self.rt("Send")),
        );
        Signature {
            indent: 8,
            head,
            params,
            ret,
            declaration,
        }
    }

    fn result(&self, ok: Ty) -> Ty {
        Ty::generic(&self.rt("Result"), vec![ok, Ty::atom(&self.rt("Status"))])
    }

    fn server(&mut self, name: &str, full: &str) {
        let svc = self.service;
        let generic = if name == "T" { "U" } else { "T" };
        let server = format!("{name}Server");
        self.line(0, "");
        self.line(
            4,
            &format!(
                "/// Serves a `{name}` implementation: hand it to the server's `add_service`."
            ),
        );
        self.line(4, &format!("pub struct {server}<{generic}> {{"));
        self.line(8, &format!("inner: {generic},"));
        self.line(4, "}");
        self.line(0, "");
        self.line(
            4,
            &format!("impl<{generic}: {name}> {server}<{generic}> {{"),
        );
        self.line(8, "/// Wraps `inner` so a server can route calls to it.");
        self.line(8, &format!("pub fn new(inner: {generic}) -> Self {{"));
        self.line(12, "Self { inner }");
        self.line(8, "}");
        self.line(0, "");
        self.line(8, "/// The wrapped service implementation.");
        self.line(8, &format!("pub fn inner(&self) -> &{generic} {{"));
        self.line(12, "&self.inner");
        self.line(8, "}");
        self.line(4, "}");

        self.line(0, "");
        self.line(
            4,
            &format!("/// The dispatch table of `{full}`: one row per method, sorted by `:path`."),
        );
        self.line(
            4,
            &format!(
                "impl<{generic}: {name}> {} for {server}<{generic}> {{",
                self.rt("Service")
            ),
        );
        self.line(8, &format!("const NAME: &'static str = \"{full}\";"));
        // Each row keeps its method's place in the `.proto`: the `N` of its method trait.
        let mut rows: Vec<(usize, &Method)> = svc.methods.iter().enumerate().collect();
        rows.sort_by_key(|(_, m)| svc.path(m));
        let route = self.rt("Route");
        if rows.is_empty() {
            self.line(8, &format!("const ROUTES: &'static [{route}<Self>] = &[];"));
        } else {
            // rustfmt hugs a lone struct literal: `&[Route {` .. `}];`.
            let single = rows.len() == 1;
            let (open, close, at) = if single {
                (format!("{route} {{"), "}];", 12)
            } else {
                (String::new(), "];", 16)
            };
            self.line(
                8,
                &format!("const ROUTES: &'static [{route}<Self>] = &[{open}"),
            );
            let call_kind = self.rt("CallKind");
            for (index, method) in rows {
                if !single {
                    self.line(12, &format!("{route} {{"));
                }
                let fields = [
                    ("path", method.path_const()),
                    ("method", format!("\"{}\"", method.proto_name)),
                    ("kind", format!("{call_kind}::{}", method.kind().variant())),
                    (
                        "handler",
                        format!("{}::<Self, {index}>", driver(method.kind())),
                    ),
                ];
                for (name, value) in fields {
                    self.out.extend(layout::field(at, name, &value));
                }
                if !single {
                    self.line(12, "},");
                }
            }
            self.line(8, close);
        }
        self.line(4, "}");

        for (index, method) in svc.methods.iter().enumerate() {
            self.method_impl(index, method, name, &server, generic);
        }
    }

    /// `impl UnaryMethod<N> for XServer<T>` (or the trait of the method's call kind): how the
    /// `serve_*` driver the dispatch table names reaches trait method `N`. The driver holds the
    /// server and calls this with `&self`, so the trait method's future is the only place the
    /// request (and the sink) is kept.
    fn method_impl(
        &mut self,
        index: usize,
        method: &Method,
        name: &str,
        server: &str,
        generic: &str,
    ) {
        let kind = method.kind();
        let method_trait = self.rt(method_trait(kind));
        self.line(0, "");
        self.line(
            4,
            &format!(
                "/// `{}` (method {index}), as `{}` calls it.",
                method.proto_name,
                driver(kind)
            ),
        );
        self.line(
            4,
            &format!("impl<{generic}: {name}> {method_trait}<{index}> for {server}<{generic}> {{"),
        );
        self.line(8, &format!("type In = {};", method.input_type));
        self.line(8, &format!("type Out = {};", method.output_type));
        self.line(0, "");
        let sig = self.handler_signature(
            method,
            "fn call".to_string(),
            Ty::atom("Self::In"),
            Ty::atom("Self::Out"),
            false,
        );
        self.out.extend(sig.lines());
        let args: &[&str] = if method.server_streaming {
            &["request", "sink"]
        } else {
            &["request"]
        };
        let elements = [Element::call(&method.rust_name, args)];
        self.out.extend(layout::chain(12, "self.inner", &elements));
        self.line(8, "}");
        self.line(4, "}");
    }

    fn client(&mut self, name: &str, full: &str) {
        let svc = self.service;
        let client = format!("{name}Client");
        let channel = self.rt("Channel");
        self.line(0, "");
        self.line(
            4,
            &format!(
                "/// Calls `{full}` on a `Channel`; cheap to clone, clones share the channel."
            ),
        );
        self.line(4, "#[derive(Clone)]");
        self.line(4, &format!("pub struct {client} {{"));
        self.line(8, &format!("channel: {channel},"));
        self.line(4, "}");
        self.line(0, "");
        self.line(4, &format!("impl {client} {{"));
        self.line(8, "/// A client that sends its calls on `channel`.");
        self.line(8, &format!("pub fn new(channel: {channel}) -> Self {{"));
        self.line(12, "Self { channel }");
        self.line(8, "}");
        for method in &svc.methods {
            self.line(0, "");
            let fallback = format!(
                "Calls `{}` ({}).",
                svc.path(method),
                kind_words(method.kind())
            );
            self.docs(8, &method.comments, &fallback);
            self.client_method(method);
        }
        self.line(4, "}");
    }

    fn client_method(&mut self, method: &Method) {
        let input = Ty::atom(&method.input_type);
        let output = Ty::atom(&method.output_type);
        let into_request =
            |ty: Ty| Ty::generic(&format!("impl {}", self.rt("IntoRequest")), vec![ty]);
        let kind = method.kind();
        // The parameter's type, the call that turns it into a `Request`, the answer, the
        // channel's call.
        let (request, into, ok, call) = match kind {
            Kind::Unary => (
                into_request(input),
                "into_request",
                Ty::generic(&self.rt("Response"), vec![output]),
                "unary",
            ),
            Kind::ServerStreaming => (
                into_request(input),
                "into_request",
                Ty::generic(&self.rt("ResponseStream"), vec![output]),
                "server_streaming",
            ),
            Kind::ClientStreaming => (
                Ty::generic(
                    &format!("impl {}", self.rt("IntoStreamingRequest")),
                    vec![input],
                ),
                "into_streaming_request",
                Ty::generic(&self.rt("Response"), vec![output]),
                "client_streaming",
            ),
            Kind::Bidi => (
                into_request(Ty::atom("()")),
                "into_request",
                Ty::Tuple(vec![
                    Ty::generic(&self.rt("RequestSink"), vec![input]),
                    Ty::generic(&self.rt("ResponseStream"), vec![output]),
                ]),
                "bidi",
            ),
        };
        let sig = Signature {
            indent: 8,
            head: format!("pub async fn {}", method.rust_name),
            params: vec![Param::self_ref(), Param::new("request", request)],
            ret: self.result(ok),
            declaration: false,
        };
        self.out.extend(sig.lines());
        self.line(12, &format!("let request = request.{into}();"));
        let path = method.path_const();
        let elements = [Element::call(call, &[&path, "request"]), Element::await_()];
        self.out
            .extend(layout::chain(12, "self.channel", &elements));
        self.line(8, "}");
    }
}

fn kind_words(kind: Kind) -> &'static str {
    match kind {
        Kind::Unary => "unary",
        Kind::ServerStreaming => "server streaming",
        Kind::ClientStreaming => "client streaming",
        Kind::Bidi => "bidirectional streaming",
    }
}

/// Proto comment lines as `///` lines.
///
/// rustdoc reads a line indented by four spaces, or an unlabeled ``` fence, as
/// a Rust doctest; proto comments often hold proto or shell snippets laid out
/// that way, which would then fail `cargo test --doc` wherever the generated
/// code is included. Such comments are fenced as ```text (or their bare fences
/// labeled `text`), so they read as written and are never compiled.
fn doc_lines(comments: &[String]) -> Vec<String> {
    let doc = |l: &str| {
        if l.is_empty() {
            "///".to_string()
        } else {
            format!("///{l}")
        }
    };
    let has_fence = comments.iter().any(|l| l.trim_start().starts_with("```"));
    if has_fence {
        let mut open = false;
        return comments
            .iter()
            .map(|l| {
                let t = l.trim_start();
                if t.starts_with("```") {
                    let label = !open && t == "```";
                    open = !open;
                    if label {
                        return doc(&format!("{l}text"));
                    }
                }
                doc(l)
            })
            .collect();
    }
    let base = comments
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let indented = comments.iter().any(|l| {
        let rest = l.get(base..).unwrap_or("");
        rest.starts_with("    ") || rest.starts_with('\t')
    });
    if !indented {
        return comments.iter().map(|l| doc(l)).collect();
    }
    let mut lines = vec!["/// ```text".to_string()];
    lines.extend(comments.iter().map(|l| doc(l)));
    lines.push("/// ```".to_string());
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_comments_copy_verbatim() {
        let lines = doc_lines(&[
            " Adds a product.".into(),
            "".into(),
            " Returns its id.".into(),
        ]);
        assert_eq!(lines, ["/// Adds a product.", "///", "/// Returns its id."]);
    }

    #[test]
    fn indented_snippets_are_fenced_as_text() {
        let comment = [
            " For instance:".into(),
            "".into(),
            "     service Foo {}".into(),
        ];
        let lines = doc_lines(&comment);
        assert_eq!(lines.first().map(String::as_str), Some("/// ```text"));
        assert_eq!(lines.last().map(String::as_str), Some("/// ```"));
    }

    #[test]
    fn bare_fences_get_a_text_label() {
        let comment = [
            " ```".into(),
            " rpc A(B) returns (C);".into(),
            " ```".into(),
        ];
        assert_eq!(
            doc_lines(&comment),
            ["/// ```text", "/// rpc A(B) returns (C);", "/// ```"]
        );
    }
}

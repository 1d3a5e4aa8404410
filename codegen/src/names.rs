//! Proto names to Rust names, the way prost-build 0.14 spells them.
//!
//! Rule: the service code we emit refers to message structs that prost-build
//! generated, so every message path must be *exactly* the one prost-build chose:
//! same case conversion (heck's, which prost-build uses), same keyword escaping,
//! same module layout, same well-known-type mapping (`Config::new()` defaults,
//! `prost-build/src/extern_paths.rs`).
//!
//! ```text
//!   OUT_DIR/ecommerce.rs, included as `pub mod ecommerce { .. }`
//!   ├── struct Product                 <- .ecommerce.Product
//!   ├── mod product { struct Part }    <- .ecommerce.Product.Part
//!   └── mod product_info_grpc          <- our service code (one module deeper)
//!         super::Product
//!         super::product::Part
//!         super::super::other::Thing   <- .other.Thing (one `super` per package segment)
//!         ::prost_types::Timestamp     <- .google.protobuf.Timestamp
//! ```
//!
//! Why a module per service: the service code can `use ::bare_grpc::codegen::*`
//! without that glob ever meeting a message name (a proto message called `Status`
//! or `Request` is common), and the path to messages is one fixed `super::` away.
//!
//! `Builder::extern_path` hands prost-build types that live in another crate;
//! [`rust_type_path_with`] resolves them the way prost-build's `extern_paths.rs`
//! does (the exact proto name first, then the longest proto-name prefix).
//!
//! Not done: prost-build's `compile_well_known_types`; `Builder` never sets it,
//! so `google.protobuf` always maps to `::prost_types`.

use heck::{ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

/// Makes `ident` usable as a Rust identifier, as prost-build does: keywords that
/// can be raw become `r#kw`, the four that cannot (`self`, `super`, `crate`,
/// `Self`) and `_`, `extern` get a trailing `_`, a leading digit gets a leading `_`.
pub fn sanitize_identifier(ident: &str) -> String {
    match ident {
        // Strict and reserved keywords of editions 2015 to 2024.
        "as" | "break" | "const" | "continue" | "else" | "enum" | "false" | "fn" | "for" | "if"
        | "impl" | "in" | "let" | "loop" | "match" | "mod" | "move" | "mut" | "pub" | "ref"
        | "return" | "static" | "struct" | "trait" | "true" | "type" | "unsafe" | "use"
        | "where" | "while" | "dyn" | "abstract" | "become" | "box" | "do" | "final" | "macro"
        | "override" | "priv" | "typeof" | "unsized" | "virtual" | "yield" | "async" | "await"
        | "try" | "gen" => format!("r#{ident}"),
        "_" | "super" | "self" | "Self" | "extern" | "crate" => format!("{ident}_"),
        s if s.starts_with(|c: char| c.is_ascii_digit()) => format!("_{ident}"),
        _ => ident.to_string(),
    }
}

/// `addProduct` / `AddProduct` / `ADD_PRODUCT` -> `add_product`, keyword-escaped.
pub fn to_snake(name: &str) -> String {
    sanitize_identifier(&name.to_snake_case())
}

/// `ProductID` / `product_id` -> `ProductId`, keyword-escaped.
pub fn to_upper_camel(name: &str) -> String {
    sanitize_identifier(&name.to_upper_camel_case())
}

/// `addProduct` -> `ADD_PRODUCT`, the name of a `:path` constant. Upper case
/// never meets a keyword, but a leading digit still needs the `_`.
pub fn to_shouty(name: &str) -> String {
    sanitize_identifier(&name.to_shouty_snake_case())
}

/// Names the generated client and server types already use for their own items.
/// A method whose snake name is one of these gets a trailing `_` everywhere
/// (trait, method-trait impl, client) so `ProductInfoServer::new` and a `New` RPC coexist.
const RESERVED_METHOD_NAMES: &[&str] = &["new", "inner"];

/// The Rust name of an RPC method: snake case, keyword-escaped, and moved out of
/// the way of the generated `new` and `inner`.
pub fn method_name(proto_name: &str) -> String {
    let name = to_snake(proto_name);
    if RESERVED_METHOD_NAMES.contains(&name.as_str()) {
        format!("{name}_")
    } else {
        name
    }
}

/// The module that holds one service's code: `ProductInfo` -> `product_info_grpc`.
/// The suffix keeps it clear of keywords and of prost's nested-type modules.
pub fn service_module(proto_name: &str) -> String {
    format!("{}_grpc", proto_name.to_snake_case())
}

/// The module path prost-build gives a package, which is also the stem of its
/// output file: `grpc.testing` -> `grpc.testing`, `Foo.Bar` -> `foo.bar`, no
/// package -> `_` (prost-build's default file name).
pub fn package_file_stem(package: &str) -> String {
    let parts: Vec<String> = package
        .split('.')
        .filter(|s| !s.is_empty())
        .map(to_snake)
        .collect();
    if parts.is_empty() {
        "_".to_string()
    } else {
        parts.join(".")
    }
}

/// prost-build's defaults for `google.protobuf` wrapper types: these become Rust
/// primitives instead of `::prost_types` structs.
const WELL_KNOWN_PRIMITIVES: &[(&str, &str)] = &[
    (".google.protobuf.BoolValue", "bool"),
    (
        ".google.protobuf.BytesValue",
        "::prost::alloc::vec::Vec<u8>",
    ),
    (".google.protobuf.DoubleValue", "f64"),
    (".google.protobuf.Empty", "()"),
    (".google.protobuf.FloatValue", "f32"),
    (".google.protobuf.Int32Value", "i32"),
    (".google.protobuf.Int64Value", "i64"),
    (
        ".google.protobuf.StringValue",
        "::prost::alloc::string::String",
    ),
    (".google.protobuf.UInt32Value", "u32"),
    (".google.protobuf.UInt64Value", "u64"),
];

/// The Rust path, as seen from inside a service module of `package`, of the
/// message with fully-qualified proto name `type_name` (`.pkg.Outer.Inner`).
///
/// Mirrors prost-build's `CodeGenerator::resolve_ident`: drop the package
/// segments both sides share, climb one `super` for each segment left on our
/// side (plus one for the service module itself), then walk down the other
/// side's segments in snake case and end with the type in upper camel case.
pub fn rust_type_path(package: &str, type_name: &str) -> String {
    rust_type_path_with(package, type_name, &[])
}

/// [`rust_type_path`], with `extern_paths` (`(".proto.path", "::rust::path")`
/// pairs, as given to `Builder::extern_path`) consulted first.
///
/// Mirrors prost-build's `ExternPaths::resolve_ident`: an extern path equal to
/// `type_name` is the answer as written; else the longest extern path that is a
/// whole-segment prefix of it, followed by the remaining segments (modules in
/// snake case, the type in upper camel case). prost-build's own defaults (the
/// wrappers and `.google.protobuf` -> `::prost_types`) are the last resort.
pub fn rust_type_path_with(
    package: &str,
    type_name: &str,
    extern_paths: &[(String, String)],
) -> String {
    if let Some((_, rust)) = extern_paths.iter().find(|(p, _)| p == type_name) {
        return rust.clone();
    }
    if let Some((_, rust)) = WELL_KNOWN_PRIMITIVES.iter().find(|(p, _)| *p == type_name) {
        return (*rust).to_string();
    }
    for (at, _) in type_name.rmatch_indices('.') {
        let prefix = &type_name[..at];
        if let Some((_, rust)) = extern_paths.iter().find(|(p, _)| p == prefix) {
            let mut rest: Vec<&str> = type_name[at + 1..].split('.').collect();
            let last = rest.pop().unwrap_or_default();
            let mut path = vec![rust.clone()];
            path.extend(rest.iter().map(|s| to_snake(s)));
            path.push(to_upper_camel(last));
            return path.join("::");
        }
    }
    let ident = type_name.strip_prefix('.').unwrap_or(type_name);
    let mut segments: Vec<&str> = ident.split('.').collect();
    let type_ident = segments.pop().unwrap_or_default();
    if let Some(rest) = ident.strip_prefix("google.protobuf.") {
        let mut inner: Vec<&str> = rest.split('.').collect();
        let last = inner.pop().unwrap_or_default();
        let mut path = vec!["::prost_types".to_string()];
        path.extend(inner.iter().map(|s| to_snake(s)));
        path.push(to_upper_camel(last));
        return path.join("::");
    }

    let local: Vec<&str> = package.split('.').filter(|s| !s.is_empty()).collect();
    let common = local
        .iter()
        .zip(segments.iter())
        .take_while(|(a, b)| a == b)
        .count();
    let mut path: Vec<String> = vec!["super".to_string(); local.len() - common + 1];
    path.extend(segments[common..].iter().map(|s| to_snake(s)));
    path.push(to_upper_camel(type_ident));
    path.join("::")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_of_method_names() {
        // (proto name, Rust name): lowerCamel and UpperCamel both end in snake case,
        // acronyms split like prost-build splits them.
        let rows = [
            ("addProduct", "add_product"),
            ("GetPerson", "get_person"),
            ("EmptyCall", "empty_call"),
            ("getHTTPResponse", "get_http_response"),
            ("Type", "r#type"),
            ("Self", "self_"),
            ("New", "new_"),
            ("Inner", "inner_"),
            ("newThing", "new_thing"),
        ];
        for (proto, rust) in rows {
            assert_eq!(method_name(proto), rust, "{proto}");
        }
    }

    #[test]
    fn keyword_escaping() {
        assert_eq!(sanitize_identifier("async"), "r#async");
        assert_eq!(sanitize_identifier("gen"), "r#gen");
        assert_eq!(sanitize_identifier("crate"), "crate_");
        assert_eq!(sanitize_identifier("3d"), "_3d");
        assert_eq!(sanitize_identifier("product"), "product");
        assert_eq!(to_upper_camel("self"), "Self_");
        assert_eq!(to_upper_camel("ProductID"), "ProductId");
        assert_eq!(to_shouty("addProduct"), "ADD_PRODUCT");
        assert_eq!(to_shouty("Type"), "TYPE");
    }

    #[test]
    fn module_and_file_names() {
        assert_eq!(service_module("ProductInfo"), "product_info_grpc");
        assert_eq!(service_module("Type"), "type_grpc");
        assert_eq!(package_file_stem("grpc.testing"), "grpc.testing");
        assert_eq!(package_file_stem("Foo.BarBaz"), "foo.bar_baz");
        assert_eq!(package_file_stem(""), "_");
    }

    #[test]
    fn type_paths_from_a_service_module() {
        // (package of the service, proto type, Rust path from its `_grpc` module)
        let rows = [
            ("ecommerce", ".ecommerce.Product", "super::Product"),
            ("ecommerce", ".ecommerce.ProductID", "super::ProductId"),
            ("ecommerce", ".ecommerce.Order.Item", "super::order::Item"),
            ("grpc.testing", ".grpc.testing.Empty", "super::Empty"),
            ("grpc.testing", ".grpc.Empty", "super::super::Empty"),
            (
                "grpc.testing",
                ".grpc.other.Thing",
                "super::super::other::Thing",
            ),
            ("a.b", ".c.D", "super::super::super::c::D"),
            ("", ".Name", "super::Name"),
            ("", ".Person.Address", "super::person::Address"),
            ("", ".pkg.Msg", "super::pkg::Msg"),
            ("pkg", ".Top", "super::super::Top"),
            ("pkg", ".pkg.type.Match", "super::r#type::Match"),
        ];
        for (package, proto, rust) in rows {
            assert_eq!(rust_type_path(package, proto), rust, "{package} {proto}");
        }
    }

    #[test]
    fn extern_paths_win_over_local_and_default_paths() {
        let externs = [
            (".shared".to_string(), "::shared_protos".to_string()),
            (".shared.v1.Money".to_string(), "::money::Money".to_string()),
            (
                ".google.protobuf.Timestamp".to_string(),
                "::my_time::Stamp".to_string(),
            ),
        ];
        // (package, proto type, Rust path from its `_grpc` module)
        let rows = [
            ("shop", ".shared.Item", "::shared_protos::Item"),
            (
                "shop",
                ".shared.v1.Order.Line",
                "::shared_protos::v1::order::Line",
            ),
            ("shop", ".shared.v1.Money", "::money::Money"),
            ("shop", ".google.protobuf.Timestamp", "::my_time::Stamp"),
            (
                "shop",
                ".google.protobuf.Duration",
                "::prost_types::Duration",
            ),
            ("shop", ".google.protobuf.Empty", "()"),
            ("shop", ".sharedness.Item", "super::super::sharedness::Item"),
            ("shop", ".shop.Cart", "super::Cart"),
        ];
        for (package, proto, rust) in rows {
            assert_eq!(
                rust_type_path_with(package, proto, &externs),
                rust,
                "{package} {proto}"
            );
        }
    }

    #[test]
    fn well_known_types_follow_prost_build_defaults() {
        let rows = [
            (".google.protobuf.Empty", "()"),
            (
                ".google.protobuf.StringValue",
                "::prost::alloc::string::String",
            ),
            (
                ".google.protobuf.BytesValue",
                "::prost::alloc::vec::Vec<u8>",
            ),
            (".google.protobuf.BoolValue", "bool"),
            (".google.protobuf.UInt64Value", "u64"),
            (".google.protobuf.Timestamp", "::prost_types::Timestamp"),
            (".google.protobuf.Any", "::prost_types::Any"),
        ];
        for (proto, rust) in rows {
            assert_eq!(rust_type_path("ecommerce", proto), rust, "{proto}");
        }
    }
}

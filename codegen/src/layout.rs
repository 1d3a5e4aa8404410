//! Line layout: the few rustfmt decisions that depend on name lengths, made
//! here so the emitted code is already in rustfmt's stable form.
//!
//! Rule: the generated files are golden files that `rustfmt --edition 2024`
//! must leave unchanged (rustfmt's default style: `max_width = 100`,
//! `fn_call_width = chain_width = 60`). Most of what we emit has one fixed
//! shape; these are the shapes whose line breaks move with the names in them:
//!
//! ```text
//!   construct            flat when                         otherwise
//!   fn signature         the whole line fits in 100        one parameter a line, then `) -> Ret`
//!   type `A<B, C>`       it fits in what is left           `A<` / one argument a line / `>`
//!   tuple type `(A, B)`  it fits and is at most 60 wide    `(` / one item a line / `)`
//!   `a.b.c(x).await`     at most 60 wide and fits          `a.b` / `.c(x)` / `.await`
//!   `const X: T = "..";` it fits in 100                    value on the next line, +4
//! ```
//!
//! Why by hand: the code generator must not need rustfmt (a plugin runs on
//! machines that have only protoc), and a pretty-printer crate would pull in
//! `syn`. `tests/rustfmt_sweep.rs` checks these rules against the real rustfmt
//! over a sweep of name lengths.
//!
//! Not handled: names so long that rustfmt itself gives up (a single token
//! wider than the line). The output is still valid Rust; it is only not
//! guaranteed to be rustfmt-stable.

/// rustfmt's `max_width`.
pub const MAX_WIDTH: usize = 100;
/// rustfmt's `fn_call_width` and `chain_width` (60% of `max_width`).
pub const SMALL_WIDTH: usize = 60;

/// rustfmt's `short_array_element_width_threshold`.
const SHORT_ITEM: usize = 10;

/// A type expression, kept as a tree so it can be broken where rustfmt breaks it.
#[derive(Clone, Debug)]
pub enum Ty {
    /// A path or anything else that is never broken: `super::Product`.
    Atom(String),
    /// `Head<args>`: `Result<Response<X>, Status>`, `impl Future<..>`.
    Generic(String, Vec<Ty>),
    /// `(A, B)`.
    Tuple(Vec<Ty>),
    /// An associated-type binding inside `<>`: `Output = T`.
    Assoc(&'static str, Box<Ty>),
    /// A type followed by more bounds: `impl Future<..> + Send`.
    Bounds(Box<Ty>, String),
}

impl Ty {
    /// `Head<args>`.
    pub fn generic(head: &str, args: Vec<Ty>) -> Ty {
        Ty::Generic(head.to_string(), args)
    }

    /// A type that is never broken.
    pub fn atom(text: &str) -> Ty {
        Ty::Atom(text.to_string())
    }

    /// The type on one line.
    pub fn flat(&self) -> String {
        match self {
            Ty::Atom(s) => s.clone(),
            Ty::Generic(head, args) => format!("{head}<{}>", join_flat(args)),
            Ty::Tuple(items) => format!("({})", join_flat(items)),
            Ty::Assoc(name, ty) => format!("{name} = {}", ty.flat()),
            Ty::Bounds(ty, rest) => format!("{}{rest}", ty.flat()),
        }
    }

    /// Whether rustfmt would put this type on one line when it fits: not if
    /// it holds a tuple whose items are wider than `fn_call_width` (a tuple's
    /// items share that budget, as a call's arguments do).
    fn may_be_flat(&self) -> bool {
        match self {
            Ty::Atom(_) => true,
            Ty::Generic(_, args) => args.iter().all(Ty::may_be_flat),
            Ty::Tuple(items) => {
                join_flat(items).len() <= SMALL_WIDTH && items.iter().all(Ty::may_be_flat)
            }
            Ty::Assoc(_, ty) | Ty::Bounds(ty, _) => ty.may_be_flat(),
        }
    }

    /// Appends the type's lines to `out`. The first line starts with `prefix`
    /// (indentation included), the last ends with `suffix`; `indent` is the
    /// indentation of the prefix's line, from which broken lists step in by 4.
    pub fn layout(&self, prefix: &str, indent: usize, suffix: &str, out: &mut Vec<String>) {
        let flat = self.flat();
        let slack = match self {
            Ty::Bounds(first, rest) => return bounds(prefix, first, rest, indent, suffix, out),
            // An `impl Trait<..>` type is measured without its `impl `.
            Ty::Generic(head, _) if head.starts_with("impl ") => "impl ".len(),
            _ => 0,
        };
        let fits = prefix.len() + flat.len() + suffix.len() <= MAX_WIDTH + slack;
        if fits && self.may_be_flat() {
            out.push(format!("{prefix}{flat}{suffix}"));
            return;
        }
        match self {
            Ty::Atom(_) | Ty::Bounds(..) => out.push(format!("{prefix}{flat}{suffix}")),
            Ty::Generic(head, args) => {
                out.push(format!("{prefix}{head}<"));
                list(args, indent, out);
                out.push(format!("{}>{suffix}", pad(indent)));
            }
            Ty::Tuple(items) => {
                out.push(format!("{prefix}("));
                list(items, indent, out);
                out.push(format!("{}){suffix}", pad(indent)));
            }
            Ty::Assoc(name, ty) => ty.layout(&format!("{prefix}{name} = "), indent, suffix, out),
        }
    }
}

/// `impl A<..> + B` as a return type. rustfmt (1.9) lets the bounds after the
/// first run up to 7 columns past the margin, moves them to the next line
/// when the first bound alone ends within 3 columns of it, and otherwise
/// breaks the first bound, with the rest after its closing `>`.
fn bounds(
    prefix: &str,
    first: &Ty,
    rest: &str,
    indent: usize,
    suffix: &str,
    out: &mut Vec<String>,
) {
    let head = prefix.len() + first.flat().len();
    if head <= MAX_WIDTH && head + rest.len() <= MAX_WIDTH + 7 {
        out.push(format!("{prefix}{}{rest}{suffix}", first.flat()));
    } else if head + 3 <= MAX_WIDTH {
        out.push(format!("{prefix}{}", first.flat()));
        out.push(format!("{}{}{suffix}", pad(indent), rest.trim_start()));
    } else {
        first.layout(prefix, indent, &format!("{rest}{suffix}"), out);
    }
}

/// One item a line, each followed by a comma, one step in from `indent`.
fn list(items: &[Ty], indent: usize, out: &mut Vec<String>) {
    let inner = indent + 4;
    for item in items {
        item.layout(&pad(inner), inner, ",", out);
    }
}

fn join_flat(items: &[Ty]) -> String {
    items.iter().map(Ty::flat).collect::<Vec<_>>().join(", ")
}

/// `n` spaces.
pub fn pad(n: usize) -> String {
    " ".repeat(n)
}

/// One parameter of a function signature: `&self`, or `request: <type>`.
#[derive(Clone, Debug)]
pub struct Param {
    /// `&self`, or the name with its colon: `request: `.
    pub label: String,
    /// The type, absent for `&self`.
    pub ty: Option<Ty>,
}

impl Param {
    /// `&self`.
    pub fn self_ref() -> Param {
        Param {
            label: "&self".to_string(),
            ty: None,
        }
    }

    /// `name: ty`.
    pub fn new(name: &str, ty: Ty) -> Param {
        Param {
            label: format!("{name}: "),
            ty: Some(ty),
        }
    }

    fn flat(&self) -> String {
        match &self.ty {
            Some(ty) => format!("{}{}", self.label, ty.flat()),
            None => self.label.clone(),
        }
    }
}

/// A function signature: `head(params) -> ret`, then `;` (a trait method) or
/// ` {` (a body follows).
#[derive(Clone, Debug)]
pub struct Signature {
    /// Indentation of the `fn` line.
    pub indent: usize,
    /// Everything before the `(`: `pub async fn m`.
    pub head: String,
    /// The parameters.
    pub params: Vec<Param>,
    /// The return type.
    pub ret: Ty,
    /// `true` for a declaration ending in `;`, `false` when a body follows.
    pub declaration: bool,
}

impl Signature {
    /// The signature's lines, up to and including the line with the body's `{`.
    ///
    /// rustfmt places the `{` of a body after the signature when it fits there
    /// and on a line of its own when only the signature fits; it breaks the
    /// signature for the signature's own width, not for the brace.
    pub fn lines(&self) -> Vec<String> {
        let ind = pad(self.indent);
        let end = if self.declaration { ";" } else { "" };
        let params: Vec<String> = self.params.iter().map(Param::flat).collect();
        let one_line = format!(
            "{ind}{}({}) -> {}{end}",
            self.head,
            params.join(", "),
            self.ret.flat()
        );
        // On one line, the brace of a body must fit too.
        let brace = if self.declaration { 0 } else { 2 };
        let mut out = Vec::new();
        if one_line.len() + brace <= MAX_WIDTH {
            out.push(one_line);
            if brace > 0 {
                out.last_mut().expect("one line").push_str(" {");
                return out;
            }
        } else {
            out.push(format!("{ind}{}(", self.head));
            let inner = self.indent + 4;
            for param in &self.params {
                let prefix = format!("{}{}", pad(inner), param.label);
                match &param.ty {
                    Some(ty) => ty.layout(&prefix, inner, ",", &mut out),
                    None => out.push(format!("{prefix},")),
                }
            }
            self.ret
                .layout(&format!("{ind}) -> "), self.indent, end, &mut out);
        }
        if !self.declaration {
            // After `) -> Ret`, rustfmt keeps ` {` on the line only within a
            // budget that counts the indentation twice (observed, rustfmt 1.9).
            let last = out.last_mut().expect("a signature has lines");
            if last.len() + 2 + self.indent <= MAX_WIDTH {
                last.push_str(" {");
            } else {
                out.push(format!("{ind}{{"));
            }
        }
        out
    }
}

/// A struct literal field, `name: value,`, with the value on the next line,
/// one step in, when the field is wider than the line.
pub fn field(indent: usize, name: &str, value: &str) -> Vec<String> {
    let line = format!("{}{name}: {value},", pad(indent));
    if line.len() <= MAX_WIDTH {
        return vec![line];
    }
    vec![
        format!("{}{name}:", pad(indent)),
        format!("{}{value},", pad(indent + 4)),
    ]
}

/// One element of a method chain: `.name(args)`, or `.await` (no arguments).
#[derive(Clone, Debug)]
pub struct Element {
    /// `unary`, `await`.
    pub name: String,
    /// The call's arguments; `None` for a field or `.await`.
    pub args: Option<Vec<String>>,
}

impl Element {
    /// `.name(args)`.
    pub fn call(name: &str, args: &[&str]) -> Element {
        Element {
            name: name.to_string(),
            args: Some(args.iter().map(|a| a.to_string()).collect()),
        }
    }

    /// `.await`.
    pub fn await_() -> Element {
        Element {
            name: "await".to_string(),
            args: None,
        }
    }

    fn flat(&self) -> String {
        match &self.args {
            Some(args) => format!(".{}({})", self.name, args.join(", ")),
            None => format!(".{}", self.name),
        }
    }
}

/// A method chain used as a block's tail expression: `root.call(args).await`.
/// Flat when it is at most `chain_width` wide and fits; else the root on its
/// own line and one `.element` a line, one step in, where a call whose
/// arguments are wider than `fn_call_width` gets one argument a line.
pub fn chain(indent: usize, root: &str, elements: &[Element]) -> Vec<String> {
    let flat: String = elements.iter().map(Element::flat).collect();
    let flat = format!("{root}{flat}");
    if flat.len() <= SMALL_WIDTH && indent + flat.len() <= MAX_WIDTH {
        return vec![format!("{}{flat}", pad(indent))];
    }
    let mut out = vec![format!("{}{root}", pad(indent))];
    let step = pad(indent + 4);
    for element in elements {
        let line = format!("{step}{}", element.flat());
        match &element.args {
            Some(args) if args.join(", ").len() > SMALL_WIDTH || line.len() > MAX_WIDTH => {
                out.push(format!("{step}.{}(", element.name));
                // Short arguments share one line (rustfmt's
                // `short_array_element_width_threshold`, 10).
                if args.iter().all(|a| a.len() <= SHORT_ITEM) {
                    out.push(format!("{}{},", pad(indent + 8), args.join(", ")));
                } else {
                    for arg in args {
                        out.push(format!("{}{arg},", pad(indent + 8)));
                    }
                }
                out.push(format!("{step})"));
            }
            _ => out.push(line),
        }
    }
    out
}

/// `pub const NAME: &str = "value";`, with the value moved to the next line
/// when the item is wider than the line.
pub fn const_str(indent: usize, name: &str, value: &str) -> Vec<String> {
    let ind = pad(indent);
    let one_line = format!("{ind}pub const {name}: &str = \"{value}\";");
    if one_line.len() <= MAX_WIDTH {
        return vec![one_line];
    }
    vec![
        format!("{ind}pub const {name}: &str ="),
        format!("{}\"{value}\";", pad(indent + 4)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn future_of(out: &str) -> Ty {
        Ty::Bounds(
            Box::new(Ty::generic(
                "impl Future",
                vec![Ty::Assoc(
                    "Output",
                    Box::new(Ty::generic(
                        "Result",
                        vec![
                            Ty::generic("Response", vec![Ty::atom(out)]),
                            Ty::atom("Status"),
                        ],
                    )),
                )],
            )),
            " + Send".to_string(),
        )
    }

    #[test]
    fn short_signature_stays_on_one_line() {
        let sig = Signature {
            indent: 8,
            head: "fn m".into(),
            params: vec![
                Param::self_ref(),
                Param::new("request", Ty::atom("Request<super::P>")),
            ],
            ret: Ty::generic("Result", vec![Ty::atom("()"), Ty::atom("Status")]),
            declaration: true,
        };
        let expected = "        fn m(&self, request: Request<super::P>) -> Result<(), Status>;";
        assert_eq!(sig.lines(), [expected]);
    }

    #[test]
    fn long_return_type_breaks_inside_out() {
        let sig = Signature {
            indent: 8,
            head: "fn add_order_long".into(),
            params: vec![
                Param::self_ref(),
                Param::new("request", Ty::atom("Request<super::A>")),
            ],
            ret: future_of("super::super::super::other::package::VeryLongTypeNameResponse"),
            declaration: true,
        };
        let expected = "        fn add_order_long(
            &self,
            request: Request<super::A>,
        ) -> impl Future<
            Output = Result<
                Response<super::super::super::other::package::VeryLongTypeNameResponse>,
                Status,
            >,
        > + Send;";
        assert_eq!(sig.lines().join("\n"), expected);
    }

    #[test]
    fn tuples_wider_than_sixty_break() {
        let ty = Ty::generic(
            "Result",
            vec![
                Ty::Tuple(vec![
                    Ty::atom("RequestSink<::prost::alloc::string::String>"),
                    Ty::atom("Streaming<super::CombinedShipment>"),
                ]),
                Ty::atom("Status"),
            ],
        );
        let mut out = Vec::new();
        ty.layout("        ) -> ", 8, " {", &mut out);
        let expected = "        ) -> Result<
            (
                RequestSink<::prost::alloc::string::String>,
                Streaming<super::CombinedShipment>,
            ),
            Status,
        > {";
        assert_eq!(out.join("\n"), expected);
    }

    #[test]
    fn chains_break_past_sixty() {
        let short = chain(
            12,
            "this.inner",
            &[Element::call("m", &["request"]), Element::await_()],
        );
        assert_eq!(short, ["            this.inner.m(request).await"]);
        let name = "m".repeat(35);
        let long = chain(
            12,
            "this.inner",
            &[Element::call(&name, &["request"]), Element::await_()],
        );
        assert_eq!(long.len(), 3);
        assert_eq!(long[1], format!("                .{name}(request)"));
        let path = "P".repeat(52);
        let wide = chain(
            12,
            "self.channel",
            &[
                Element::call("unary", &[&path, "request"]),
                Element::await_(),
            ],
        );
        assert_eq!(wide[1], "                .unary(");
        assert_eq!(wide[3], "                    request,");
    }

    #[test]
    fn long_consts_move_the_value_down() {
        assert_eq!(
            const_str(4, "A", "/p.S/A"),
            ["    pub const A: &str = \"/p.S/A\";"]
        );
        let long = const_str(4, "VERY_LONG_NAME", &format!("/{}/x", "p".repeat(80)));
        assert_eq!(long.len(), 2);
        assert!(long[0].ends_with(" ="));
    }
}

//! One fuzz case for the builder, shared by the cargo-fuzz target (`fuzz/`) and the replay test,
//! so the target's logic is compiled and exercised on stable in every test run.
//!
//! Property: building never panics, and whatever builds parses back with no rnix errors, also
//! after the formatter's safety pass. Errors are fine (NUL bytes, bad identifiers, duplicate
//! names). The fuzzer nests shapes pifleet never writes (a lambda inside a select inside an
//! application); layout is promised to be a formatter fixed point only for the shapes it does
//! write, which `tests/roundtrip.rs` and `tests/modules.rs` check.

#![allow(dead_code, unreachable_pub)]

use arbitrary::{Arbitrary, Unstructured};
use nixgen::{AttrPath, AttrSet, Check, Expr, File};

#[derive(Debug, Arbitrary)]
pub enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    Path(String),
    Var(String),
    Select(Box<Node>, Vec<String>),
    Apply(Box<Node>, Box<Node>),
    List(Vec<Node>),
    Attrs(Vec<(Vec<String>, Node)>, Vec<String>),
    With(Box<Node>, Box<Node>),
    LetIn(Vec<(String, Node)>, Box<Node>),
    Lambda(Vec<String>, Box<Node>),
}

impl Node {
    pub fn to_expr(&self) -> Expr {
        match self {
            Node::Null => Expr::null(),
            Node::Bool(b) => Expr::bool(*b),
            Node::Int(i) => Expr::int(*i),
            Node::Str(s) => Expr::string(s.as_str()),
            Node::Path(p) => Expr::path(p.as_str()),
            Node::Var(v) => Expr::var(v.as_str()),
            Node::Select(base, path) => {
                Expr::select(base.to_expr(), path.iter().cloned().collect::<AttrPath>())
            }
            Node::Apply(f, a) => Expr::apply(f.to_expr(), a.to_expr()),
            Node::List(items) => Expr::list(items.iter().map(Node::to_expr)),
            Node::Attrs(bindings, comments) => {
                let mut set = AttrSet::new();
                for (i, (path, value)) in bindings.iter().enumerate() {
                    if let Some(comment) = comments.get(i) {
                        set.comment(comment.as_str());
                    }
                    if i % 3 == 2 {
                        set.blank();
                    }
                    set.set(path.iter().cloned().collect::<AttrPath>(), value.to_expr());
                }
                Expr::attrs(set)
            }
            Node::With(scope, body) => Expr::with(scope.to_expr(), body.to_expr()),
            Node::LetIn(bindings, body) => Expr::let_in(
                bindings
                    .iter()
                    .map(|(k, v)| (AttrPath::key(k.as_str()), v.to_expr()))
                    .collect(),
                body.to_expr(),
            ),
            Node::Lambda(formals, body) => {
                Expr::lambda(formals.iter().map(String::as_str), body.to_expr())
            }
        }
    }
}

/// Runs one case from raw fuzzer bytes.
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok((header, node)) = <(Vec<String>, Node)>::arbitrary(&mut u) else {
        return;
    };
    let file = File::new(node.to_expr()).header(header);
    if let Ok(text) = file.render(Check::Parse) {
        let parsed = rnix::Root::parse(&text);
        assert!(
            parsed.errors().is_empty(),
            "{:?} in {text}",
            parsed.errors()
        );
        let formatted = file
            .render(Check::Format)
            .expect("rendered once, renders again");
        let reparsed = rnix::Root::parse(&formatted);
        assert!(
            reparsed.errors().is_empty(),
            "{:?} in {formatted}",
            reparsed.errors()
        );
    }
}

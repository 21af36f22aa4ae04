//! Properties of everything nixgen writes, checked against rnix, nixpkgs-fmt and real Nix.
//!
//! - Rust-only properties (renders without error, re-parses to the built tree, is a fixed point
//!   of nixpkgs-fmt) run under proptest with shrinking.
//! - Value round-trips go through `nix-instantiate --eval --strict --json`. Starting Nix per case
//!   would make the suite slow, so each test draws a few hundred cases, writes them into one Nix
//!   file and evaluates it once. A mismatch prints the inputs, the Nix written and what Nix said.

mod support;

use std::collections::BTreeMap;

use nixgen::{AttrPath, AttrSet, Check, Expr, File};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value as Json, json};

/// Pieces that are special to some part of Nix's lexer, glued together at random.
fn tricky_string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("${"),
        Just("''"),
        Just("'"),
        Just("''$"),
        Just("''\\"),
        Just("'''"),
        Just("\\"),
        Just("\\$"),
        Just("\""),
        Just("$"),
        Just("$$"),
        Just("\n"),
        Just("\t"),
        Just("\r"),
        Just("\r\n"),
        Just(" "),
        Just("  "),
        Just("{"),
        Just("}"),
        Just("#"),
        Just("/*"),
        Just("a"),
        Just("é"),
        Just("🦀"),
        Just("\u{1}"),
        Just("\u{7f}"),
        Just("\u{2028}"),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// Multi-line text shaped like shell scripts and config files, which takes the `''` path.
fn text_block() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[ ]{0,3}[a-z$'{}\\\\\"#;=\t ]{0,12}", 1..6),
        any::<bool>(),
    )
        .prop_map(|(lines, trailing)| {
            let mut s = lines.join("\n");
            if trailing {
                s.push('\n');
            }
            s
        })
}

/// Any string Nix can hold: everything but NUL.
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        tricky_string(),
        text_block(),
        "[a-zA-Z_][a-zA-Z0-9_'-]{0,10}",
    ]
    .prop_map(|s| s.replace('\0', ""))
}

/// A plain data value, the kind fleet files turn into.
#[derive(Debug, Clone)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<Value>),
    Attrs(BTreeMap<String, Value>),
}

impl Value {
    fn to_expr(&self) -> Expr {
        match self {
            Value::Null => Expr::null(),
            Value::Bool(b) => Expr::bool(*b),
            Value::Int(i) => Expr::int(*i),
            Value::Str(s) => Expr::string(s.as_str()),
            Value::List(items) => Expr::list(items.iter().map(Value::to_expr)),
            Value::Attrs(map) => Expr::attrs(
                map.iter()
                    .map(|(k, v)| (AttrPath::key(k.as_str()), v.to_expr()))
                    .collect::<AttrSet>(),
            ),
        }
    }

    /// What [`NORMALISE`] turns the evaluated value into.
    fn expected(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => json!(b),
            Value::Int(i) => json!(i),
            Value::Str(s) => json!(s),
            Value::List(items) => Json::Array(items.iter().map(Value::expected).collect()),
            Value::Attrs(map) => json!({
                "attrs": map.iter().map(|(k, v)| json!([k, v.expected()])).collect::<Vec<_>>()
            }),
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        prop_oneof![Just(i64::MIN), Just(i64::MAX), Just(-1), Just(0)].prop_map(Value::Int),
        any_string().prop_map(Value::Str),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::List),
            prop::collection::btree_map(any_string(), inner, 0..6).prop_map(Value::Attrs),
        ]
    })
}

/// Test-harness Nix (fixed text, no user values): turns sets into `{ attrs = [ [ name value ] … ]; }`
/// so that names like `outPath` or `__toString`, which `--json` treats specially, compare as data.
const NORMALISE: &str = "let
  norm = v:
    if builtins.isAttrs v then { attrs = map (n: [ n (norm v.${n}) ]) (builtins.attrNames v); }
    else if builtins.isList v then map norm v
    else v;
in
map norm (import ./cases.nix)
";

/// Draws `count` cases from `strategy`.
fn draw<T: std::fmt::Debug>(strategy: impl Strategy<Value = T>, count: usize) -> Vec<T> {
    let mut runner = TestRunner::new(Config::default());
    (0..count)
        .map(|_| strategy.new_tree(&mut runner).expect("strategy").current())
        .collect()
}

/// Renders `exprs` as one list in a file, evaluates it with real Nix and compares with `expected`.
fn round_trip(label: &str, inputs: &[String], exprs: Vec<Expr>, expected: Vec<Json>) {
    let Some(nix) = support::nix() else { return };
    let file = File::new(Expr::list(exprs.clone())).header([format!("nixgen round-trip: {label}")]);
    let text = file.render(Check::Parse).expect("render");
    assert_eq!(nixgen::format(&text), text, "not a nixpkgs-fmt fixed point");
    let cases = nix.write("cases.nix", &text);
    nix.parse(&cases);
    let normalise = nix.write("normalise.nix", NORMALISE);
    let got = nix.eval_json(&normalise);
    let got = got.as_array().expect("a list");
    assert_eq!(got.len(), expected.len());
    let failures: Vec<String> = got
        .iter()
        .zip(&expected)
        .enumerate()
        .filter(|(_, (g, e))| g != e)
        .take(5)
        .map(|(i, (g, e))| {
            format!(
                "case {i}: input {}\n  wrote: {}\n  nix gave: {g}\n  expected: {e}",
                inputs[i],
                nixgen::render_expr(&exprs[i])
                    .unwrap_or_else(|e| e.to_string())
                    .trim_end()
            )
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{label}: values changed on the way through Nix:\n{}",
        failures.join("\n")
    );
}

#[test]
fn strings_round_trip_through_nix() {
    let mut strings = draw(any_string(), 600);
    // Fixed cases that must always be covered, whatever the draw.
    strings.extend(
        [
            "",
            "${x}",
            "$${x}",
            "\\${x}",
            "''",
            "'''",
            "''${x}",
            "'",
            "a'",
            "$",
            "x$",
            "\\",
            "\"",
            "\n",
            "\r\n",
            "\t",
            "line one\nline two\n",
            "a\n  b ${c}\n",
            "it's\nfine\n",
            "  indented\n  both\n",
            "end quote'\n'",
            "\u{7f}\u{1}",
            "🦀\n🦀",
        ]
        .map(str::to_owned),
    );
    let inputs: Vec<String> = strings.iter().map(|s| format!("{s:?}")).collect();
    let exprs = strings.iter().map(|s| Expr::string(s.as_str())).collect();
    let expected = strings.iter().map(|s| json!(s)).collect();
    round_trip("strings", &inputs, exprs, expected);
}

#[test]
fn attribute_names_round_trip_through_nix() {
    let mut names = draw(any_string(), 500);
    names.extend(
        [
            "rpi-box-01",
            "8123/tcp",
            "my.host",
            "",
            "if",
            "or",
            "in",
            "true",
            "null",
            "outPath",
            "__toString",
            "a b",
            "${x}",
            "\"",
            "x'",
            "_",
        ]
        .map(str::to_owned),
    );
    let inputs: Vec<String> = names.iter().map(|s| format!("{s:?}")).collect();
    // Each name alone in a set, and as the middle of a nested path.
    let exprs = names
        .iter()
        .map(|n| {
            Expr::attrs(
                AttrSet::new()
                    .with(AttrPath::key(n.as_str()), 1i64)
                    .with(AttrPath::key("outer").then(n.as_str()).then("inner"), true),
            )
        })
        .collect();
    let expected = names
        .iter()
        .map(|n| {
            let value = Value::Attrs(BTreeMap::from([
                (n.clone(), Value::Int(1)),
                (
                    "outer".to_owned(),
                    Value::Attrs(BTreeMap::from([(
                        n.clone(),
                        Value::Attrs(BTreeMap::from([("inner".to_owned(), Value::Bool(true))])),
                    )])),
                ),
            ]));
            // A name equal to "outer" merges with the nested path; Nix rejects that set, so the
            // strategy never draws it (checked below).
            value.expected()
        })
        .collect();
    assert!(!names.iter().any(|n| n == "outer"));
    round_trip("attribute names", &inputs, exprs, expected);
}

#[test]
fn nested_values_round_trip_through_nix() {
    let values = draw(value(), 250);
    let inputs: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    let exprs = values.iter().map(Value::to_expr).collect();
    let expected = values.iter().map(Value::expected).collect();
    round_trip("nested values", &inputs, exprs, expected);
}

proptest! {
    #![proptest_config(Config::with_cases(512))]

    /// Any value renders, reads back as built, and nixpkgs-fmt leaves it alone.
    #[test]
    fn rendering_is_a_formatter_fixed_point(v in value()) {
        let file = File::new(nixgen::make::module(Expr::attrs(
            AttrSet::new().with("config.value", v.to_expr()).with("list", Expr::list([v.to_expr()])),
        )));
        let text = file.render(Check::Parse).expect("renders");
        prop_assert_eq!(nixgen::format(&text), text);
    }

    /// Comments can hold anything but NUL and never turn into code.
    #[test]
    fn comments_stay_comments(text in any_string()) {
        let file = File::new(Expr::attrs(AttrSet::new().with("a", 1i64)))
            .header([text.clone()]);
        let rendered = file.render(Check::Format).expect("renders");
        let root = rnix::Root::parse(&rendered);
        prop_assert!(root.errors().is_empty());
        // Whatever the comment said, the code is exactly the one binding.
        let code: String = rendered.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
        prop_assert_eq!(code, "{\n  a = 1;\n}");
    }
}

//! Values nixgen cannot write exactly are errors that say why, never panics or altered output.

use nixgen::{AttrPath, AttrSet, Check, Error, Expr, File};

fn render(expr: Expr) -> Result<String, Error> {
    File::new(expr).render(Check::Format)
}

#[test]
fn nul_bytes_are_rejected_wherever_they_appear() {
    let cases = [
        ("string", Expr::string("a\0b")),
        (
            "attribute name",
            Expr::attrs(AttrSet::new().with(AttrPath::key("x\0"), 1i64)),
        ),
        ("path", Expr::path("modules/\0.nix")),
        ("identifier", Expr::var("\0")),
    ];
    for (what, expr) in cases {
        match render(expr) {
            Err(Error::Nul { what: got, .. }) => assert_eq!(got, what),
            other => panic!("{what}: expected a NUL error, got {other:?}"),
        }
    }
    let with_comment = File::new(Expr::null()).header(["bad\0comment"]);
    assert!(matches!(
        with_comment.render(Check::Parse),
        Err(Error::Nul {
            what: "comment",
            ..
        })
    ));
    let msg = render(Expr::string("a\0b")).unwrap_err().to_string();
    assert!(msg.contains("NUL") && msg.contains("remove it"), "{msg}");
}

#[test]
fn variables_must_be_identifiers() {
    for bad in ["", "a b", "1x", "if", "x; y", "pkgs.vim"] {
        assert_eq!(
            render(Expr::var(bad)),
            Err(Error::NotIdentifier {
                name: bad.to_owned()
            }),
            "{bad:?}"
        );
    }
    assert!(matches!(
        render(Expr::lambda(["ok", "not ok"], Expr::null())),
        Err(Error::NotIdentifier { .. })
    ));
}

#[test]
fn paths_must_be_relative() {
    for bad in ["/etc/nixos/configuration.nix", "~/x.nix", "<nixpkgs>"] {
        assert_eq!(
            render(Expr::path(bad)),
            Err(Error::NotRelative {
                path: bad.to_owned()
            })
        );
    }
}

#[test]
fn paths_are_literals_where_possible_and_exact_otherwise() {
    let cases = [
        ("x.nix", "./x.nix"),
        ("./x.nix", "./x.nix"),
        ("modules//a.nix/", "./modules/a.nix"),
        ("../b/c.nix", "../b/c.nix"),
        ("", "./."),
        ("my module.nix", "(./. + \"/my module.nix\")"),
        ("a/${x}.nix", "(./. + \"/a/\\${x}.nix\")"),
    ];
    for (input, want) in cases {
        assert_eq!(
            render(Expr::path(input)).unwrap(),
            format!("{want}\n"),
            "{input:?}"
        );
    }
}

#[test]
fn duplicate_and_empty_attribute_paths_are_rejected() {
    let dup = AttrSet::new().with("a.b", 1i64).with("a.b", 2i64);
    assert_eq!(
        render(Expr::attrs(dup)),
        Err(Error::DuplicateAttr { path: "a.b".into() })
    );
    let empty = AttrSet::new().with(AttrPath::from_iter(Vec::<String>::new()), 1i64);
    assert_eq!(render(Expr::attrs(empty)), Err(Error::EmptyAttrPath));
}

#[test]
fn user_values_cannot_inject_code() {
    // A value that is Nix code stays a string; a name that is Nix code stays a quoted name.
    let evil = "\"; imports = [ /etc/passwd ]; x = \"";
    let text = render(Expr::attrs(
        AttrSet::new().with(AttrPath::key(evil), Expr::string(evil)),
    ))
    .unwrap();
    let root = rnix::Root::parse(&text);
    assert!(root.errors().is_empty());
    let set = root.syntax().first_child().unwrap();
    assert_eq!(set.kind(), rnix::SyntaxKind::NODE_ATTR_SET);
    let bindings: Vec<_> = set
        .children()
        .filter(|n| n.kind() == rnix::SyntaxKind::NODE_ATTRPATH_VALUE)
        .collect();
    assert_eq!(bindings.len(), 1, "{text}");
}

//! The committed `schema/fleet.schema.json` must be what the types generate: editors read the file, the loader
//! uses the generated one, and the two must never disagree. The fleet template carries a copy
//! (`templates/default/schema/`, for the `#:schema` line of a new repo's fleet.toml), held to the same.

use std::path::PathBuf;

/// Every committed copy of the schema, from the repository root.
const COPIES: [&str; 2] = [
    "schema/fleet.schema.json",
    "templates/default/schema/fleet.schema.json",
];

fn committed_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

#[test]
fn committed_schema_matches_the_types() {
    let fresh = model::schema_string();
    for rel in COPIES {
        let path = committed_path(rel);
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &fresh).unwrap_or_else(|e| panic!("write {rel}: {e}"));
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "{rel} is out of date with the model types.\n\
             Regenerate it with `UPDATE_SCHEMA=1 cargo test -p model --test schema` \
             (or `cargo run -p pifleet -- schema > {rel}`) and commit the result."
        );
    }
}

#[test]
fn schema_describes_every_field() {
    // Editors show descriptions as tooltips: every property of every table must have one.
    let schema = model::schema();
    let defs = schema["$defs"].as_object().expect("$defs");
    let mut missing = Vec::new();
    let mut tables = vec![("(root)".to_owned(), &schema)];
    tables.extend(defs.iter().map(|(k, v)| (k.clone(), v)));
    for (name, def) in tables {
        if let Some(props) = def.get("properties").and_then(|p| p.as_object()) {
            for (field, prop) in props {
                if prop.get("description").is_none() {
                    missing.push(format!("{name}.{field}"));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "fields without a doc comment: {missing:?}"
    );
}

/// Every `pattern` the schema gives a parsed type is looser than its parser: an editor never
/// flags a value pifleet accepts. Strings are drawn from the characters these grammars use, so
/// many parse; whenever the parser accepts one, the pattern (run by jsonschema, the engine the
/// loader uses) must too.
#[test]
fn patterns_never_refuse_what_the_parser_accepts() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let pieces = prop::collection::vec(
        prop_oneof![
            "[0-9]{1,3}",
            "[a-f0-9]{1,4}",
            "[a-z]{1,6}",
            Just(".".to_owned()),
            Just(":".to_owned()),
            Just("/".to_owned()),
            Just("@".to_owned()),
            Just("-".to_owned()),
            Just("_".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("+".to_owned()),
            Just(" ".to_owned()),
            Just("/udp".to_owned()),
            Just("sha256:".to_owned()),
            Just("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".to_owned()),
            Just("255.255.0.1".to_owned()),
            Just("::1".to_owned()),
            Just(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqeFyT5oHWhCY/SKllnU80NkJK46f+SBkowTwVuJjhq"
                    .to_owned()
            ),
        ],
        1..7,
    )
    .prop_map(|p| p.concat());
    let with_pattern: Vec<&model::names::StringKind> = model::names::STRING_KINDS
        .iter()
        .filter(|k| k.pattern.is_some())
        .collect();
    let mut runner = TestRunner::new(Config {
        cases: 3000,
        ..Config::default()
    });
    let mut accepted = 0usize;
    runner
        .run(&pieces, |s| {
            for kind in &with_pattern {
                let pattern = kind.pattern.unwrap_or_default();
                if (kind.validate)(&s).is_ok() {
                    let schema = serde_json::json!({ "type": "string", "pattern": pattern });
                    prop_assert!(
                        jsonschema::is_valid(&schema, &serde_json::json!(s)),
                        "{} accepts {s:?} but its pattern {pattern} refuses it",
                        kind.code
                    );
                }
            }
            Ok(())
        })
        .expect("patterns accept what the parsers accept");
    // The generator reaches the accepting side of the parsers, not only the refusing one.
    for s in [
        "10.0.0.2",
        "pi.local",
        "fe80::1",
        "eclipse-mosquitto:2.0.20",
        "ghcr.io/owner/name@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "localhost:5000/app:1",
        "127.0.0.1:8080:80",
        "[::1]:53:53/udp",
        "+80:080",
        "192.168.1.0/24",
    ] {
        for kind in &with_pattern {
            if (kind.validate)(s).is_ok() {
                accepted += 1;
                let schema = serde_json::json!({ "type": "string", "pattern": kind.pattern });
                assert!(
                    jsonschema::is_valid(&schema, &serde_json::json!(s)),
                    "{} accepts {s:?}, its pattern refuses it",
                    kind.code
                );
            }
        }
    }
    assert!(accepted >= 10, "{accepted}");
}

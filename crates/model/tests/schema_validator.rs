//! The published schema catches what pifleet catches, as a real editor-side validator runs it.
//!
//! Editors and `check-jsonschema` validate with draft 2020-12, where `format` is only an
//! annotation: they enforce `pattern` but not pifleet's custom formats. This test runs
//! python-jsonschema (the validator check-jsonschema uses; scripts/test installs it) the same way,
//! without a format checker, over the bad-input corpus (crates/check/tests/cases): every file that
//! pifleet's loader refuses only for values a schema can express (a malformed name, image, port,
//! address or key; a wrong type or enum value; an unknown field) must be refused by the schema.
//! Files the loader accepts must pass it, so the schema never flags a working inventory.

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Codes the loader reports for single values the schema describes.
const EXPRESSIBLE: &[&str] = &[
    "invalid_host_name",
    "invalid_user_name",
    "invalid_secret_name",
    "invalid_container_name",
    "invalid_tag",
    "invalid_address",
    "invalid_state_version",
    "invalid_image",
    "invalid_port",
    "invalid_cidr",
    "invalid_ip",
    "invalid_tailscale_tag",
    "invalid_ssh_key",
    "invalid_value",
    "out_of_range",
    "unknown_field",
    "wrong_type",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A python with jsonschema: the one on PATH, else Debian's (pyenv shims may hide it).
fn python() -> String {
    for candidate in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import jsonschema"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return candidate.to_owned();
        }
    }
    panic!(
        "python3 with jsonschema is needed (apt-get install python3-jsonschema; scripts/test installs it)"
    );
}

/// Validates each document with python-jsonschema's Draft 2020-12 validator, formats unchecked.
fn schema_accepts(documents: &[serde_json::Value]) -> Vec<bool> {
    const SCRIPT: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
validator = Draft202012Validator(schema)
docs = json.load(sys.stdin)
print(json.dumps([validator.is_valid(d) for d in docs]))
"#;
    let schema = repo().join("schema/fleet.schema.json");
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    serde_json::to_writer(child.stdin.take().expect("stdin"), documents).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "python-jsonschema failed");
    serde_json::from_slice(&out.stdout).expect("a JSON list of booleans")
}

#[path = "../../check/tests/corpus/mod.rs"]
mod corpus;

#[test]
fn the_schema_refuses_what_the_loader_refuses_for_values_it_can_express() {
    let mut files: Vec<PathBuf> = corpus::files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.push(repo().join("fleet.toml"));
    files.push(repo().join("templates/default/fleet.toml"));
    let mut docs = Vec::new();
    let mut expect = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue; // not UTF-8: no editor gets as far as the schema
        };
        let Ok(value) = toml::from_str::<toml::Value>(&text) else {
            continue; // TOML syntax errors are the editor's parser's business
        };
        let json = serde_json::to_value(value).expect("toml as json");
        let verdict = match model::load_str(&text, "fleet.toml") {
            Ok(_) => Some(true),
            Err(model::LoadError::Invalid(invalid)) => {
                let all_expressible = invalid
                    .problems
                    .iter()
                    .all(|p| EXPRESSIBLE.contains(&p.code.as_str()));
                all_expressible.then_some(false)
            }
            Err(e) => panic!("{}: {e}", file.display()),
        };
        if let Some(valid) = verdict {
            docs.push(json);
            expect.push((file.clone(), valid));
        }
    }
    let refused = expect.iter().filter(|(_, v)| !v).count();
    assert!(
        refused >= 10,
        "only {refused} corpus files are refused at load time"
    );
    let got = schema_accepts(&docs);
    let wrong: Vec<String> = expect
        .iter()
        .zip(&got)
        .filter(|((_, want), got)| want != *got)
        .map(|((file, want), _)| {
            format!(
                "{}: pifleet {}, the schema {}",
                file.display(),
                if *want { "accepts it" } else { "refuses it" },
                if *want { "refuses it" } else { "accepts it" }
            )
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_issue_examples_are_refused_by_the_schema() {
    let base = |container: serde_json::Value, address: &str| {
        serde_json::json!({
            "fleet": { "state_version": "26.05" },
            "hosts": { "pi": { "board": "rpi4", "address": address, "containers": { "app": container } } }
        })
    };
    let docs = vec![
        base(
            serde_json::json!({ "image": "eclipse-mosquitto:2.0.20", "ports": ["1883:1883"] }),
            "192.168.1.30",
        ),
        base(
            serde_json::json!({ "image": "eclipse-mosquitto" }),
            "192.168.1.30",
        ),
        base(
            serde_json::json!({ "image": "eclipse-mosquitto:2.0.20", "ports": ["1883:abc"] }),
            "192.168.1.30",
        ),
        base(
            serde_json::json!({ "image": "eclipse-mosquitto:2.0.20" }),
            "192.168.1.300",
        ),
    ];
    assert_eq!(schema_accepts(&docs), [true, false, false, false]);
}

//! No value that `check` accepts carries a line break (or any control character) into sshd_config.
//!
//! The NixOS module writes `services.openssh.settings` into sshd_config verbatim, one line each; a
//! line break inside a value becomes a directive of its own. Property: for generated keywords and
//! values (arbitrary Unicode mixed with line breaks, `\r`, NEL, U+2028, NUL and quotes), every inventory
//! `check` accepts renders a module whose evaluated `services.openssh.settings` (by real Nix) holds
//! no control character in any string; and a value with one is always refused.

mod support;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf r@ws";

/// Keywords of every value kind, and a few that are not keywords at all.
const KEYWORDS: &[&str] = &[
    "Banner",
    "ChrootDirectory",
    "AcceptEnv",
    "AllowGroups",
    "Ciphers",
    "LogLevel",
    "LoginGraceTime",
    "ClientAliveInterval",
    "VersionAddendum",
    "X11Forwarding",
    "SetEnv",
    "maxauthtries",
    "Bogus",
];

fn value_text() -> impl Strategy<Value = String> {
    let pieces = prop::collection::vec(
        prop_oneof![
            3 => "[a-zA-Z0-9 /._@,:-]{1,8}",
            1 => Just("\n".to_owned()),
            1 => Just("\r".to_owned()),
            1 => Just("\u{85}".to_owned()),
            1 => Just("\u{2028}".to_owned()),
            1 => Just("\u{0}".to_owned()),
            1 => Just("\"".to_owned()),
            1 => Just("\nPermitRootLogin yes".to_owned()),
            1 => any::<char>().prop_map(String::from),
        ],
        1..6,
    );
    pieces.prop_map(|p| p.concat())
}

fn setting() -> impl Strategy<Value = (String, serde_json::Value)> {
    let value = prop_oneof![
        value_text().prop_map(serde_json::Value::from),
        prop::collection::vec(value_text(), 1..3).prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        (0i64..100).prop_map(serde_json::Value::from),
    ];
    (
        prop::sample::select(KEYWORDS).prop_map(str::to_owned),
        value,
    )
}

/// A one-host inventory in JSON (so any string is representable) with `settings` as extra settings.
fn inventory(settings: &[(String, serde_json::Value)]) -> String {
    let extra: serde_json::Map<String, serde_json::Value> = settings.iter().cloned().collect();
    serde_json::json!({
        "fleet": { "state_version": "26.05" },
        "ssh": { "root_keys": [KEY], "extra_settings": extra },
        "hosts": { "box": { "board": "x86_64", "address": "10.0.0.2",
                             "allow": [{ "code": "root_login_allowed", "reason": "test" }] } }
    })
    .to_string()
}

fn has_control(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
}

#[test]
fn accepted_sshd_values_never_span_lines() {
    let mut runner = TestRunner::new(Config {
        cases: 400,
        ..Config::default()
    });
    let strategy = prop::collection::vec(setting(), 1..4);
    let mut accepted = Vec::new();
    let (mut refused_controls, mut total) = (0, 0);
    // Keep generating until both sides are well covered (about 1 case in 20 is accepted), with a
    // cap so a regression that refuses everything still ends.
    while (accepted.len() < 30 || refused_controls < 30) && total < 4000 {
        let generated = strategy.new_tree(&mut runner).expect("a case").current();
        // As the inventory holds them: one value per keyword, the last one written.
        let settings: Vec<(String, serde_json::Value)> = generated
            .iter()
            .cloned()
            .collect::<std::collections::BTreeMap<_, _>>()
            .into_iter()
            .collect();
        total += 1;
        let text = inventory(&settings);
        let report = check::check_str(&text, "fleet.json");
        let controls = settings.iter().any(|(_, v)| match v {
            serde_json::Value::String(s) => has_control(s),
            serde_json::Value::Array(items) => {
                items.iter().any(|i| i.as_str().is_some_and(has_control))
            }
            _ => false,
        });
        if report.has_errors() {
            refused_controls += usize::from(controls);
            continue;
        }
        assert!(
            !controls,
            "check accepted a control character in an sshd setting: {settings:?}"
        );
        accepted.push(support::load_and_render_as(
            &format!("case{}", accepted.len()),
            &text,
            "fleet.json",
        ));
    }
    assert!(
        accepted.len() >= 30,
        "only {} of {total} cases were accepted",
        accepted.len()
    );
    assert!(
        refused_controls >= 30,
        "only {refused_controls} cases had control characters"
    );
    let Some(nix) = support::nix() else { return };
    let evaluated = support::eval_cases(&nix, &accepted);
    for case in &accepted {
        let settings =
            &evaluated[case.name.as_str()]["hosts"]["box"]["services"]["openssh"]["settings"];
        for (key, value) in settings.as_object().expect("settings evaluate to a set") {
            let strings: Vec<&str> = match value {
                serde_json::Value::String(s) => vec![s.as_str()],
                serde_json::Value::Array(items) => {
                    items.iter().filter_map(|i| i.as_str()).collect()
                }
                _ => Vec::new(),
            };
            for s in strings {
                assert!(
                    !has_control(s),
                    "{}: {key} = {s:?} reached the module",
                    case.name
                );
            }
        }
    }
}

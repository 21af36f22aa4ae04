//! Every string in the inventory, whatever its field: what no file on the host can hold.
//!
//! Nix strings cannot hold a NUL byte, so one anywhere stops `gen`; better to point at it here. And
//! most values end up in line-oriented files on the host (environment files and systemd units for
//! containers, `/etc/passwd` for descriptions, wpa_supplicant.conf for Wi-Fi): a line break or another
//! control character there starts a new entry the inventory never wrote. Only a container's
//! `command` arguments may span lines (they are passed as argv, not written as lines), and sshd
//! settings have their own, stricter rule ([`model::sshd`]).

use model::{Path, Segment};
use serde_json::Value;

use crate::codes::Code;
use crate::context::Context;
use crate::diagnostic::Diagnostic;
use crate::rules::{Family, rules};

/// The values family.
pub(crate) const FAMILY: Family = Family {
    name: "values",
    rules: rules![control_characters],
};

fn control_characters(ctx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    // The typed inventory, as data: every string with its path, map keys included. One host at a
    // time: the whole inventory as one JSON value is as large as its document tree (about 170 MB
    // for 10,000 hosts). Destructured without `..`, so a new field cannot be missed.
    let model::Fleet {
        schema,
        fleet,
        ssh,
        users,
        hosts,
        containers,
    } = ctx.fleet;
    let part = |key: &str, value: serde_json::Result<Value>, out: &mut Vec<Diagnostic>| {
        if let Ok(value) = value {
            walk(ctx, &value, &Path::root().key(key), out);
        }
    };
    // In the order of the whole value's keys, so diagnostics come in the same order as before.
    part("$schema", serde_json::to_value(schema), &mut out);
    part("containers", serde_json::to_value(containers), &mut out);
    part("fleet", serde_json::to_value(fleet), &mut out);
    for (name, host) in hosts {
        let path = Path::root().key("hosts").key(name.as_str());
        judge(ctx, name.as_str(), &path, true, &mut out);
        if let Ok(value) = serde_json::to_value(host) {
            walk(ctx, &value, &path, &mut out);
        }
    }
    part("ssh", serde_json::to_value(ssh), &mut out);
    part("users", serde_json::to_value(users), &mut out);
    out
}

fn walk(ctx: &Context<'_>, value: &Value, path: &Path, out: &mut Vec<Diagnostic>) {
    match value {
        Value::String(s) => judge(ctx, s, path, false, out),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(ctx, item, &path.index(i), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                let child = path.key(key.as_str());
                judge(ctx, key, &child, true, out);
                walk(ctx, item, &child, out);
            }
        }
        _ => {}
    }
}

/// Whether multi-line text is fine at `path`: container `command` arguments, and sshd settings
/// (checked by the SSH family).
fn lines_allowed(path: &Path) -> bool {
    let keys: Vec<&str> = path
        .segments()
        .iter()
        .filter_map(|s| match s {
            Segment::Key(k) => Some(k.as_str()),
            Segment::Index(_) => None,
        })
        .collect();
    keys.contains(&"extra_settings")
        || (keys.contains(&"containers") && keys.last() == Some(&"command"))
}

fn judge(ctx: &Context<'_>, s: &str, path: &Path, is_key: bool, out: &mut Vec<Diagnostic>) {
    let what = if is_key { "the name" } else { "the value" };
    let diagnostic = if s.contains('\0') {
        Some(format!(
            "{what} at `{path}` holds a NUL byte, which a Nix string cannot hold"
        ))
    } else if !lines_allowed(path) && model::sshd::has_control(s) {
        let c = s
            .chars()
            .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
            .unwrap_or('?');
        Some(format!(
            "{what} at `{path}` holds the control character {c:?}: written into a file on the host, it would start or garble a line the inventory never wrote"
        ))
    } else {
        None
    };
    if let Some(message) = diagnostic {
        let d = if is_key {
            ctx.at_key(Code::ControlCharacter, path.clone(), message)
        } else {
            ctx.at_value(Code::ControlCharacter, path.clone(), message)
        };
        out.push(d.help(
            "remove it; write multi-line content into a file on the host and point at it instead",
        ));
    }
}

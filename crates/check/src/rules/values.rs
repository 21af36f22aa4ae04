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
    // The path is a stack of borrowed segments, made into a `Path` only for a finding: a clean
    // fleet has hundreds of thousands of strings and no findings.
    let part = |key: &str, value: serde_json::Result<Value>, out: &mut Vec<Diagnostic>| {
        if let Ok(value) = value {
            walk(ctx, &value, &mut vec![Step::Key(key)], out);
        }
    };
    // In the order of the whole value's keys, so diagnostics come in the same order as before.
    part("$schema", serde_json::to_value(schema), &mut out);
    part("containers", serde_json::to_value(containers), &mut out);
    part("fleet", serde_json::to_value(fleet), &mut out);
    for (name, host) in hosts {
        let mut at = vec![Step::Key("hosts"), Step::Key(name.as_str())];
        judge(ctx, name.as_str(), &at, true, &mut out);
        if let Ok(value) = serde_json::to_value(host) {
            walk(ctx, &value, &mut at, &mut out);
        }
    }
    part("ssh", serde_json::to_value(ssh), &mut out);
    part("users", serde_json::to_value(users), &mut out);
    out
}

/// One segment of the path being walked, borrowed from the value.
#[derive(Clone, Copy)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn to_path(at: &[Step<'_>]) -> Path {
    Path::from_segments(
        at.iter()
            .map(|step| match *step {
                Step::Key(k) => Segment::Key(k.to_owned()),
                Step::Index(i) => Segment::Index(i),
            })
            .collect(),
    )
}

fn walk<'a>(
    ctx: &Context<'_>,
    value: &'a Value,
    at: &mut Vec<Step<'a>>,
    out: &mut Vec<Diagnostic>,
) {
    match value {
        Value::String(s) => judge(ctx, s, at, false, out),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                at.push(Step::Index(i));
                walk(ctx, item, at, out);
                at.pop();
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                at.push(Step::Key(key));
                judge(ctx, key, at, true, out);
                walk(ctx, item, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

/// Whether multi-line text is fine at `at`: container `command` arguments, and sshd settings
/// (checked by the SSH family).
fn lines_allowed(at: &[Step<'_>]) -> bool {
    let mut keys = at.iter().filter_map(|s| match s {
        Step::Key(k) => Some(*k),
        Step::Index(_) => None,
    });
    let last = keys.clone().next_back();
    keys.clone().any(|k| k == "extra_settings")
        || (keys.any(|k| k == "containers") && last == Some("command"))
}

fn judge(ctx: &Context<'_>, s: &str, at: &[Step<'_>], is_key: bool, out: &mut Vec<Diagnostic>) {
    let what = if is_key { "the name" } else { "the value" };
    let nul = s.contains('\0');
    if !nul && !model::sshd::has_control(s) {
        return;
    }
    let path = to_path(at);
    let message = if nul {
        format!("{what} at `{path}` holds a NUL byte, which a Nix string cannot hold")
    } else if !lines_allowed(at) {
        let c = s
            .chars()
            .find(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
            .unwrap_or('?');
        format!(
            "{what} at `{path}` holds the control character {c:?}: written into a file on the host, it would start or garble a line the inventory never wrote"
        )
    } else {
        return;
    };
    let d = if is_key {
        ctx.at_key(Code::ControlCharacter, path, message)
    } else {
        ctx.at_value(Code::ControlCharacter, path, message)
    };
    out.push(d.help(
        "remove it; write multi-line content into a file on the host and point at it instead",
    ));
}

//! Changes pifleet makes to the user's inventory: recording a host's SSH key.
//!
//! The inventory is the user's file, with their comments, order and layout, and they review every
//! change as a diff. So an edit touches one value and nothing else: TOML through `toml_edit`'s
//! document (which keeps formatting), JSON by splicing at the span the loader recorded. Each edit
//! is re-loaded before it is handed back, so a change that would not mean what was asked is an
//! error, never a written file.

use crate::load::{Format, LoadError, load_str};
use crate::names::{HostName, SshPublicKey};
use crate::source::Path;

/// Why the inventory could not be changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// The text does not load now.
    #[error("{0}")]
    Load(Box<LoadError>),
    /// The host is not in the inventory.
    #[error("no host `{host}` in the inventory")]
    NoHost {
        /// The host.
        host: String,
    },
    /// The host is written in a way the edit cannot reach (e.g. TOML arrays of tables).
    #[error("cannot edit `hosts.{host}`: {why}; add `host_key = \"{line}\"` to it by hand")]
    Unreachable {
        /// The host.
        host: String,
        /// Why.
        why: String,
        /// The line to add.
        line: String,
    },
    /// The edited text does not load back with the key recorded (a bug, never written).
    #[error("the edited inventory would not record the key as asked ({why}); nothing was written")]
    Verify {
        /// What went wrong.
        why: String,
    },
}

/// `text` with `hosts.<host>.host_key` set to `key` (added or replaced), in the same format and
/// layout; `source_name` picks the format as [`load_str`] does.
pub fn set_host_key(
    text: &str,
    source_name: &str,
    host: &HostName,
    key: &SshPublicKey,
) -> Result<String, EditError> {
    let loaded = load_str(text, source_name).map_err(|e| EditError::Load(Box::new(e)))?;
    if !loaded.fleet.hosts.contains_key(host) {
        return Err(EditError::NoHost {
            host: host.to_string(),
        });
    }
    let edited = match Format::from_name(source_name) {
        Format::Toml => toml_set(text, host, key)?,
        Format::Json => json_set(text, &loaded.spans, host, key)?,
    };
    let reloaded =
        load_str(&edited, source_name).map_err(|e| EditError::Verify { why: e.to_string() })?;
    let recorded = reloaded
        .fleet
        .hosts
        .get(host)
        .and_then(|h| h.host_key.as_ref())
        .map(SshPublicKey::as_str);
    if recorded != Some(key.as_str()) || reloaded.fleet.hosts.len() != loaded.fleet.hosts.len() {
        return Err(EditError::Verify {
            why: format!("read back {recorded:?}"),
        });
    }
    Ok(edited)
}

fn toml_set(text: &str, host: &HostName, key: &SshPublicKey) -> Result<String, EditError> {
    let unreachable = |why: &str| EditError::Unreachable {
        host: host.to_string(),
        why: why.to_owned(),
        line: key.as_str().to_owned(),
    };
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|_| unreachable("it is not TOML toml_edit can edit"))?;
    let entry = doc
        .get_mut("hosts")
        .and_then(|hosts| hosts.get_mut(host.as_str()))
        .ok_or_else(|| unreachable("it is not a table under `hosts`"))?;
    match entry {
        toml_edit::Item::Table(table) => match table.get_mut("host_key") {
            Some(item) => match item.as_value_mut() {
                Some(value) => {
                    let decor = value.decor().clone();
                    *value = key.as_str().into();
                    *value.decor_mut() = decor;
                }
                None => return Err(unreachable("its `host_key` is a table")),
            },
            None => {
                table.insert("host_key", toml_edit::value(key.as_str()));
            }
        },
        toml_edit::Item::Value(toml_edit::Value::InlineTable(table)) => {
            match table.get_mut("host_key") {
                Some(value) => {
                    let decor = value.decor().clone();
                    *value = key.as_str().into();
                    *value.decor_mut() = decor;
                }
                None => {
                    // The space before `}` belongs to the last value: move it past the new one.
                    let mut suffix = None;
                    if let Some((_, last)) = table.iter_mut().last() {
                        suffix = last.decor().suffix().cloned();
                        last.decor_mut().set_suffix("");
                    }
                    let mut value: toml_edit::Value = key.as_str().into();
                    value.decor_mut().set_prefix(" ");
                    if let Some(suffix) = suffix {
                        value.decor_mut().set_suffix(suffix);
                    }
                    table.insert("host_key", value);
                }
            }
        }
        _ => return Err(unreachable("it is not a table")),
    }
    Ok(doc.to_string())
}

fn json_set(
    text: &str,
    spans: &crate::SpanMap,
    host: &HostName,
    key: &SshPublicKey,
) -> Result<String, EditError> {
    let quoted = serde_json::to_string(key.as_str())
        .map_err(|e| EditError::Verify { why: e.to_string() })?;
    let host_path = Path::root().key("hosts").key(host.as_str());
    let key_path = host_path.clone().key("host_key");
    let mut out = text.to_owned();
    if let Some(span) = spans.get(&key_path).and_then(|s| s.value) {
        out.replace_range(span.start..span.end, &quoted);
        return Ok(out);
    }
    let unreachable = || EditError::Unreachable {
        host: host.to_string(),
        why: "its object was not found in the file".to_owned(),
        line: key.as_str().to_owned(),
    };
    let object = spans
        .get(&host_path)
        .and_then(|s| s.value)
        .ok_or_else(unreachable)?;
    let body = &text[object.start..object.end];
    if !body.starts_with('{') {
        return Err(unreachable());
    }
    let open = object.start + 1;
    let rest = &text[open..object.end];
    let empty = rest.trim_start().starts_with('}');
    // Indent like the object's first member (or one step past the brace's line).
    let insert = if let Some(nl) = rest.find('\n').filter(|_| !empty) {
        let indent: String = rest[nl + 1..]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        format!("\n{indent}\"host_key\": {quoted},")
    } else if empty {
        format!("\"host_key\": {quoted}")
    } else {
        format!(" \"host_key\": {quoted},")
    };
    out.insert_str(open, &insert);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl root@pi";

    fn key() -> SshPublicKey {
        KEY.parse().unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn host() -> HostName {
        HostName::new("pi").unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn set(text: &str, name: &str) -> String {
        set_host_key(text, name, &host(), &key()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn toml_keeps_comments_and_layout() {
        let text = "# my fleet\n[fleet]\nstate_version = \"26.05\" # pinned\n\n[hosts.pi]  # kitchen\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\n\n[hosts.pi.containers.web]\nimage = \"nginx:1\"\n";
        let got = set(text, "fleet.toml");
        assert_eq!(
            got,
            format!(
                "# my fleet\n[fleet]\nstate_version = \"26.05\" # pinned\n\n[hosts.pi]  # kitchen\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\nhost_key = \"{KEY}\"\n\n[hosts.pi.containers.web]\nimage = \"nginx:1\"\n"
            )
        );
        // Replacing keeps the line's comment.
        const OLD: &str =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf old";
        let other = got.replace(&format!("{KEY}\"\n"), &format!("{OLD}\" # scanned\n"));
        assert_eq!(
            set(&other, "fleet.toml"),
            got.replace(&format!("{KEY}\"\n"), &format!("{KEY}\" # scanned\n"))
        );
    }

    #[test]
    fn toml_inline_tables() {
        let text = "[fleet]\nstate_version = \"26.05\"\n[hosts]\npi = { board = \"rpi4\", address = \"10.0.0.2\" }\n";
        let got = set(text, "fleet.toml");
        assert_eq!(
            got,
            format!(
                "[fleet]\nstate_version = \"26.05\"\n[hosts]\npi = {{ board = \"rpi4\", address = \"10.0.0.2\", host_key = \"{KEY}\" }}\n"
            )
        );
    }

    #[test]
    fn json_splices_at_the_spans() {
        let text = "{\n  \"fleet\": { \"state_version\": \"26.05\" },\n  \"hosts\": {\n    \"pi\": {\n      \"board\": \"rpi4\",\n      \"address\": \"10.0.0.2\"\n    }\n  }\n}\n";
        let got = set(text, "fleet.json");
        assert_eq!(
            got,
            format!(
                "{{\n  \"fleet\": {{ \"state_version\": \"26.05\" }},\n  \"hosts\": {{\n    \"pi\": {{\n      \"host_key\": \"{KEY}\",\n      \"board\": \"rpi4\",\n      \"address\": \"10.0.0.2\"\n    }}\n  }}\n}}\n"
            )
        );
        // And again: replaced in place.
        assert_eq!(set(&got, "fleet.json"), got);
    }

    #[test]
    fn unknown_hosts_are_refused() {
        let text = "[fleet]\nstate_version = \"26.05\"\n[hosts.other]\nboard = \"rpi4\"\naddress = \"10.0.0.2\"\n";
        let err = set_host_key(text, "fleet.toml", &host(), &key()).unwrap_err();
        assert!(matches!(err, EditError::NoHost { .. }), "{err}");
    }
}

//! What every rule family reads: the typed inventory, where each part of it was written, and the
//! resolved view of each host (computed once here, so no rule re-derives a host's policy).
//!
//! Shared by every family in [`crate::rules`]; the families import this module and never each
//! other, so there is no circle between them.

use model::{Fleet, HostName, HostView, Loaded, Origin, Path, Span, SpanMap, SshField, UserName};

use crate::codes::Code;
use crate::diagnostic::Diagnostic;

/// What a rule can look at.
#[derive(Debug)]
pub struct Context<'a> {
    /// The inventory.
    pub fleet: &'a Fleet,
    /// Paths to source spans.
    pub spans: &'a SpanMap,
    /// Every host's resolved view, in name order.
    pub hosts: Vec<HostView<'a>>,
    /// The directory the inventory's relative paths (hand-written modules) start from, when known.
    pub base: Option<&'a std::path::Path>,
}

impl<'a> Context<'a> {
    /// A context over a loaded inventory; `base` is the inventory's directory, when it has one.
    pub fn new(loaded: &'a Loaded, base: Option<&'a std::path::Path>) -> Self {
        Self {
            fleet: &loaded.fleet,
            spans: &loaded.spans,
            hosts: loaded.fleet.views().collect(),
            base,
        }
    }

    /// The span of the value at `path` (or the nearest enclosing place written in the file).
    pub fn value_span(&self, path: &Path) -> Option<Span> {
        self.spans.value_span(path)
    }

    /// The span of the key at `path` (or the nearest enclosing place written in the file).
    pub fn key_span(&self, path: &Path) -> Option<Span> {
        self.spans.key_span(path)
    }

    /// A diagnostic pointing at the value at `path`.
    pub fn at_value(&self, code: Code, path: Path, message: impl Into<String>) -> Diagnostic {
        let span = self.value_span(&path);
        Diagnostic::new(code, path, message).at(span)
    }

    /// A diagnostic pointing at the key at `path`.
    pub fn at_key(&self, code: Code, path: Path, message: impl Into<String>) -> Diagnostic {
        let span = self.key_span(&path);
        Diagnostic::new(code, path, message).at(span)
    }

    /// A diagnostic about the effective SSH setting `field` of `host`, pointing where it was written:
    /// the host's override, the fleet policy, or (a default) the host's table, where it can be changed.
    /// The path is always the host's, so the host can `allow` a warning about it.
    pub fn at_ssh(
        &self,
        host: &HostView<'_>,
        field: SshField,
        code: Code,
        message: impl Into<String>,
    ) -> Diagnostic {
        let host_field = host_path(host.name).key("ssh").key(field.as_str());
        let fleet_field = Path::root().key("ssh").key(field.as_str());
        let span = match host.ssh.origin(field) {
            Origin::Host => self.value_span(&host_field),
            Origin::Fleet if self.spans.get(&fleet_field).is_some() => {
                self.value_span(&fleet_field)
            }
            Origin::Fleet => self.key_span(&host_path(host.name)),
        };
        Diagnostic::new(code, host_field, message).at(span)
    }
}

/// `hosts.<name>`.
pub fn host_path(name: &HostName) -> Path {
    Path::root().key("hosts").key(name.as_str())
}

/// `users.<name>`.
pub fn user_path(name: &UserName) -> Path {
    Path::root().key("users").key(name.as_str())
}

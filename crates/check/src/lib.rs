//! Everything `pifleet check` reports about an inventory, as data.
//!
//! Load errors from `model` (syntax, schema, bad names) and the semantic rules in [`rules`] (dangling references,
//! clashing ports, duplicate addresses, …) all become [`Diagnostic`]s, so the CLI prints them one way, as text
//! with source snippets ([`render`]) or as JSON. A rule is a plain function from a [`Context`] to diagnostics;
//! adding one (the lockout analysis and security lints come next) means writing the function and listing it in
//! [`rules::RULES`], plus its code in [`codes::CODES`].

pub mod codes;
pub mod diagnostic;
pub mod render;
pub mod rules;

use std::path::Path as FsPath;

pub use diagnostic::{Diagnostic, Label, Severity};
pub use render::{render_human, render_json};
pub use rules::{Context, RULES, Rule};

use model::{LoadError, Loaded, SourceFile};

/// The diagnostics of one inventory, with its text for rendering.
#[derive(Debug, Clone)]
pub struct Report {
    /// The inventory's text and display name.
    pub source: SourceFile,
    /// Diagnostics in source order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// Whether any diagnostic is an error (`pifleet check` exits 1).
    pub fn has_errors(&self) -> bool {
        self.error_count() > 0
    }
}

/// Why no report could be made at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The inventory file could not be read.
    #[error("cannot read the inventory {}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Reads, validates and checks the inventory at `path`.
pub fn check_file(path: impl AsRef<FsPath>) -> Result<Report, CheckError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| CheckError::Io {
        path: path.to_owned(),
        source,
    })?;
    Ok(check_str(&text, &path.display().to_string()))
}

/// Validates and checks an inventory given as text; `source_name` is shown in diagnostics and picks the format.
pub fn check_str(text: &str, source_name: &str) -> Report {
    load_and_check(text, source_name).0
}

/// Like [`check_str`], also handing back the loaded inventory when it could be read, for commands that act on
/// it after checking (`gen`, `deploy`): one load, one report. The fleet is returned even when the rules found
/// errors; callers decide with [`Report::has_errors`].
pub fn load_and_check(text: &str, source_name: &str) -> (Report, Option<Loaded>) {
    match model::load_str(text, source_name) {
        Ok(loaded) => {
            let report = Report {
                diagnostics: check_loaded(&loaded),
                source: loaded.source.clone(),
            };
            (report, Some(loaded))
        }
        Err(LoadError::Invalid(invalid)) => {
            let report = Report {
                diagnostics: invalid.problems.iter().map(Diagnostic::from).collect(),
                source: invalid.source,
            };
            (report, None)
        }
        // load_str does no I/O; keep the match total without panicking.
        Err(other) => {
            let report = Report {
                diagnostics: vec![Diagnostic::error(
                    "internal_error",
                    model::Path::root(),
                    format!("unexpected error while loading: {other}"),
                )],
                source: SourceFile::new(source_name, text),
            };
            (report, None)
        }
    }
}

/// Runs every rule on a loaded inventory, drops warnings a host silenced with `allow`, and sorts by position.
pub fn check_loaded(loaded: &Loaded) -> Vec<Diagnostic> {
    let ctx = Context::new(loaded);
    let mut out: Vec<Diagnostic> = RULES.iter().flat_map(|rule| (rule.run)(&ctx)).collect();
    out.retain(|d| !is_allowed(loaded, d));
    out.sort_by(|a, b| {
        (a.span.map_or(usize::MAX, |s| s.start), &a.path, &a.code).cmp(&(
            b.span.map_or(usize::MAX, |s| s.start),
            &b.path,
            &b.code,
        ))
    });
    out.dedup_by(|a, b| a.code == b.code && a.path == b.path && a.message == b.message);
    out
}

/// A warning about `hosts.<name>…` is dropped when that host lists its code in `allow`. Errors always stay.
fn is_allowed(loaded: &Loaded, d: &Diagnostic) -> bool {
    if d.severity == Severity::Error {
        return false;
    }
    let [model::Segment::Key(top), model::Segment::Key(host), ..] = d.path.segments() else {
        return false;
    };
    top == "hosts"
        && loaded
            .fleet
            .hosts
            .get(host.as_str())
            .is_some_and(|h| h.allow.iter().any(|a| a.code == d.code))
}

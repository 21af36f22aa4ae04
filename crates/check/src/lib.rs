//! Everything `pifleet check` reports about an inventory, as data.
//!
//! Load errors from `model` (syntax, schema, bad names) and the semantic rules in [`rules`] (dangling references,
//! clashing ports, the lockout analysis, security lints, …) all become [`Diagnostic`]s, so the CLI prints them one
//! way, as text with source snippets ([`render`]) or as JSON. A rule is a plain function from a [`Context`] to
//! diagnostics, registered in its family's list ([`rules`]); its code is one entry of the catalogue
//! ([`codes::Code`]), which also generates `docs/diagnostics.md` ([`docs`]).

pub mod codes;
pub mod context;
pub mod diagnostic;
pub mod docs;
pub mod render;
pub mod rules;
mod secret;

use std::path::Path as FsPath;

pub use codes::Code;
pub use context::Context;
pub use diagnostic::{Diagnostic, Label, Severity};
pub use render::{render_human, render_json};
pub use rules::{FAMILIES, Family, Rule};

use model::{LoadError, Loaded, SourceFile};

/// The diagnostics of one inventory, with its text for rendering.
#[derive(Debug, Clone)]
pub struct Report {
    /// The inventory's text and display name.
    pub source: SourceFile,
    /// Diagnostics in source order.
    pub diagnostics: Vec<Diagnostic>,
    /// Warnings a host silenced with `allow`, with the reason it gave; not counted, but shown to tools.
    pub suppressed: Vec<Suppressed>,
}

/// A warning silenced by an `allow` entry, kept with its reason so reviews and tools can see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    /// The warning.
    pub diagnostic: Diagnostic,
    /// The `reason` of the `allow` entry (for a fleet container on several hosts, each host's reason, joined).
    pub reason: String,
}

impl Report {
    /// Number of errors.
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warning_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::Warning)
            .count()
    }

    /// Number of warnings silenced by `allow`.
    pub fn suppressed_count(&self) -> usize {
        self.suppressed.len()
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
    /// The inventory file could not be read (or is not a file, or is too large).
    #[error(transparent)]
    Read(#[from] model::ReadError),
}

/// Reads, validates and checks the inventory at `path`; hand-written modules are looked for next to it.
pub fn check_file(path: impl AsRef<FsPath>) -> Result<Report, CheckError> {
    let path = path.as_ref();
    let bytes = model::read_inventory(path)?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(FsPath::new("."));
    Ok(check_bytes(&bytes, &path.display().to_string(), Some(base)))
}

/// Validates and checks an inventory given as text; `source_name` is shown in diagnostics and picks the format.
/// Module paths are not looked for on disk (see [`check_bytes`]).
pub fn check_str(text: &str, source_name: &str) -> Report {
    load_and_check(text, source_name).0
}

/// Validates and checks an inventory given as bytes (not UTF-8 is a diagnostic with a position);
/// `base` is the directory its relative paths start from, when the inventory has one.
pub fn check_bytes(bytes: &[u8], source_name: &str, base: Option<&FsPath>) -> Report {
    load_and_check_bytes(bytes, source_name, base).0
}

/// Like [`check_str`], also handing back the loaded inventory when it could be read, for commands that act on
/// it after checking (`gen`, `deploy`): one load, one report. The fleet is returned even when the rules found
/// errors; callers decide with [`Report::has_errors`].
pub fn load_and_check(text: &str, source_name: &str) -> (Report, Option<Loaded>) {
    load_and_check_bytes(text.as_bytes(), source_name, None)
}

/// [`load_and_check`] for bytes, with the inventory's directory (see [`check_bytes`]).
pub fn load_and_check_bytes(
    bytes: &[u8],
    source_name: &str,
    base: Option<&FsPath>,
) -> (Report, Option<Loaded>) {
    let (report, loaded) = load_and_check_alongside(bytes, source_name, base, None::<fn(&Loaded)>);
    (report, loaded.map(|(loaded, _)| loaded))
}

/// [`load_and_check_bytes`], running `alongside` on the loaded inventory on another thread while
/// the rules run: `gen` renders while it checks, instead of after. Whoever calls it decides from
/// the report whether the result may be used; `alongside` must expect an inventory with errors.
/// It does not run when the inventory cannot be loaded. If it panics on an inventory the rules
/// found errors in, the result is `None` (the errors are the news); on a clean one the panic
/// goes on.
pub fn load_and_check_alongside<T: Send>(
    bytes: &[u8],
    source_name: &str,
    base: Option<&FsPath>,
    alongside: Option<impl FnOnce(&Loaded) -> T + Send>,
) -> (Report, Option<(Loaded, Option<T>)>) {
    match model::load_bytes(bytes, source_name) {
        Ok(loaded) => {
            let ((diagnostics, suppressed), side) = match alongside {
                None => (check_loaded_in(&loaded, base), None),
                Some(work) => std::thread::scope(|scope| {
                    let loaded = &loaded;
                    let side = scope.spawn(move || {
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(loaded)))
                    });
                    let checked = check_loaded_in(loaded, base);
                    let side = match side.join() {
                        Ok(Ok(value)) => Some(value),
                        Ok(Err(panic)) | Err(panic) => {
                            let errors = checked.0.iter().any(|d| d.severity() == Severity::Error);
                            if !errors {
                                std::panic::resume_unwind(panic);
                            }
                            None
                        }
                    };
                    (checked, side)
                }),
            };
            let report = Report {
                diagnostics,
                suppressed,
                source: loaded.source.clone(),
            };
            (report, Some((loaded, side)))
        }
        Err(LoadError::Invalid(invalid)) => {
            let invalid = *invalid;
            let mut diagnostics: Vec<Diagnostic> =
                invalid.problems.iter().map(Diagnostic::from).collect();
            let mut suppressed = Vec::new();
            // Every problem in one run: the rules also see what remains once the bad values are
            // taken out, minus whatever they say about the places those values were.
            if let Some(partial) = invalid.partial {
                let model::Partial { fleet, removed } = *partial;
                let rest = Loaded {
                    fleet,
                    source: invalid.source.clone(),
                    spans: invalid.spans,
                };
                let (more, quiet) = check_loaded_in(&rest, base);
                // Whatever the rules say inside the table that held a removed value describes
                // the removal (a network left without its address), not the user's file.
                let unrelated =
                    |path: &model::Path| !removed.iter().any(|r| path.starts_with(&holder(r)));
                diagnostics.extend(more.into_iter().filter(|d| unrelated(&d.path)));
                suppressed = quiet;
                diagnostics.sort_by(|a, b| {
                    (a.span.map_or(usize::MAX, |s| s.start), &a.path)
                        .cmp(&(b.span.map_or(usize::MAX, |s| s.start), &b.path))
                });
            }
            let report = Report {
                diagnostics,
                suppressed,
                source: invalid.source,
            };
            (report, None)
        }
        // load_bytes does no I/O; keep the match total without panicking.
        Err(other) => {
            let report = Report {
                diagnostics: vec![Diagnostic::new(
                    Code::InternalError,
                    model::Path::root(),
                    format!("unexpected error while loading: {other}"),
                )],
                suppressed: Vec::new(),
                source: SourceFile::new(source_name, String::from_utf8_lossy(bytes).into_owned()),
            };
            (report, None)
        }
    }
}

/// The table holding the value at `path`: without its array indices, then without its key.
fn holder(path: &model::Path) -> model::Path {
    let mut segments = path.segments().to_vec();
    while matches!(segments.last(), Some(model::Segment::Index(_))) {
        segments.pop();
    }
    segments.pop();
    model::Path::from_segments(segments)
}

/// Runs every rule on a loaded inventory, drops warnings a host silenced with `allow`, and sorts by position.
pub fn check_loaded(loaded: &Loaded) -> Vec<Diagnostic> {
    check_loaded_in(loaded, None).0
}

/// Like [`check_loaded`] with the inventory's directory, also handing back the silenced warnings
/// with their reasons.
pub fn check_loaded_in(
    loaded: &Loaded,
    base: Option<&FsPath>,
) -> (Vec<Diagnostic>, Vec<Suppressed>) {
    let ctx = Context::new(loaded, base);
    let mut all: Vec<Diagnostic> = rules::all().flat_map(|rule| (rule.run)(&ctx)).collect();
    all.sort_by(|a, b| {
        (a.span.map_or(usize::MAX, |s| s.start), &a.path, &a.code).cmp(&(
            b.span.map_or(usize::MAX, |s| s.start),
            &b.path,
            &b.code,
        ))
    });
    all.dedup_by(|a, b| a.code == b.code && a.path == b.path && a.message == b.message);
    let mut out = Vec::new();
    let mut suppressed = Vec::new();
    for d in all {
        match allow_reason(loaded, &d) {
            Some(reason) => suppressed.push(Suppressed {
                diagnostic: d,
                reason,
            }),
            None => out.push(d),
        }
    }
    (out, suppressed)
}

/// The reason a warning is silenced, if it is. A warning about `hosts.<name>…` is silenced when that host lists
/// its code in `allow`; a warning about a fleet container (`containers.<name>…`) when every host it runs on does.
/// Errors always stay.
fn allow_reason(loaded: &Loaded, d: &Diagnostic) -> Option<String> {
    if d.severity() == Severity::Error {
        return None;
    }
    let fleet = &loaded.fleet;
    let reason_on = |host: &str| {
        fleet
            .hosts
            .get(host)
            .and_then(|h| h.allow.iter().find(|a| a.code == d.code.name()))
            .map(|a| a.reason.clone())
    };
    match d.path.segments() {
        [model::Segment::Key(top), model::Segment::Key(host), ..] if top == "hosts" => {
            reason_on(host)
        }
        [model::Segment::Key(top), model::Segment::Key(container), ..] if top == "containers" => {
            let hosts = fleet.hosts_running(container);
            if hosts.is_empty() {
                return None;
            }
            let mut reasons: Vec<String> = Vec::new();
            for host in hosts {
                let reason = reason_on(host.as_str())?;
                if !reasons.contains(&reason) {
                    reasons.push(reason);
                }
            }
            Some(reasons.join("; "))
        }
        _ => None,
    }
}

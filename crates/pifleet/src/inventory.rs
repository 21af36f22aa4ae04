//! Reading the inventory the way every acting command needs it: loaded once, checked, and
//! refused with printed diagnostics when it has errors. `gen` and `deploy` must never act on an
//! inventory `check` would reject.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::Context as _;

/// Reads the inventory at `path` as text.
pub(crate) fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the inventory {}", path.display()))
}

/// Loads and checks the inventory `text`, read from `path`. Prints diagnostics to stderr; returns
/// `None` when there are errors.
pub(crate) fn load_checked_text(path: &Path, text: &str) -> anyhow::Result<Option<model::Loaded>> {
    let name = path.display().to_string();
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let (report, loaded) = check::load_and_check(text, &name);
    if !report.diagnostics.is_empty() {
        eprint!("{}", check::render_human(&report, color));
    }
    if report.has_errors() {
        eprintln!(
            "{}: {} error(s); fix them first (`pifleet check -f {}` lists them)",
            path.display(),
            report.error_count(),
            path.display()
        );
        return Ok(None);
    }
    Ok(loaded)
}

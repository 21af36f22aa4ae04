//! The bad-input corpus, `crates/check/tests/cases/`: one place that lists it, for every test that
//! walks it. Check's own tests use it as `mod corpus;`; render's and model's tests include this
//! file with `#[path]`, so it uses only the standard library.
#![allow(dead_code)] // Each test binary uses part of it.

use std::path::PathBuf;

/// The corpus directory.
pub(crate) fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../check/tests/cases")
}

/// Every inventory in the corpus (`.toml` and `.json`), sorted by name.
pub(crate) fn files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("the corpus, crates/check/tests/cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("toml" | "json")
            )
        })
        .collect();
    files.sort();
    files
}

/// The repository's example fleet, next to the corpus in the tests that walk it.
pub(crate) fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fleet.toml")
}

/// `text` with each of its lines taken out in turn: often valid TOML with a dangling reference or
/// a missing field.
pub(crate) fn without_each_line(text: &str) -> impl Iterator<Item = String> + '_ {
    let lines: Vec<&str> = text.lines().collect();
    (0..lines.len()).map(move |skip| {
        lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

//! docs/diagnostics.md is generated from the code catalogue: the committed page must be exactly what
//! `check::docs::diagnostics_markdown` renders. Regenerate it with
//! `PIFLEET_UPDATE_DOCS=1 cargo test -p check --test docs`.

use std::path::PathBuf;

fn page() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/diagnostics.md")
}

#[test]
fn the_committed_page_is_the_rendered_catalogue() {
    let rendered = check::docs::diagnostics_markdown().expect("the template renders");
    if std::env::var_os("PIFLEET_UPDATE_DOCS").is_some_and(|v| v == "1") {
        std::fs::write(page(), &rendered).expect("write docs/diagnostics.md");
        return;
    }
    let committed = std::fs::read_to_string(page()).expect("docs/diagnostics.md");
    if committed != rendered {
        let diff = similar::TextDiff::from_lines(committed.as_str(), rendered.as_str());
        panic!(
            "docs/diagnostics.md is out of date with crates/check/src/codes.rs; regenerate it with \
             `PIFLEET_UPDATE_DOCS=1 cargo test -p check --test docs`:\n{}",
            diff.unified_diff().header("committed", "rendered")
        );
    }
}

/// Read independently of the renderer: every `### `code`` heading is followed by its severity in
/// bold, and the set of documented codes with their severities is exactly the catalogue's.
#[test]
fn every_code_is_documented_once_with_its_severity() {
    let text = std::fs::read_to_string(page()).expect("docs/diagnostics.md");
    let mut documented = std::collections::BTreeMap::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(code) = line
            .strip_prefix("### `")
            .and_then(|rest| rest.strip_suffix('`'))
        else {
            continue;
        };
        let severity = lines
            .by_ref()
            .find(|l| !l.trim().is_empty())
            .and_then(|l| l.strip_prefix("**"))
            .and_then(|l| l.split("**").next())
            .unwrap_or("")
            .to_owned();
        assert!(
            documented.insert(code.to_owned(), severity).is_none(),
            "{code} is documented twice"
        );
    }
    let catalogue: std::collections::BTreeMap<String, String> = check::Code::ALL
        .iter()
        .map(|c| (c.name().to_owned(), c.severity().as_str().to_owned()))
        .collect();
    assert_eq!(documented, catalogue);
}

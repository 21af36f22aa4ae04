//! The corpus of bad inventories: each file under `tests/cases/` states in `# expect: CODE @ LINE` comments (or,
//! for JSON, in a `.expect` sidecar) exactly which diagnostics it must produce, and nothing else may appear.

use std::collections::BTreeSet;
use std::path::Path;

mod corpus;

fn expectations(path: &Path, text: &str) -> BTreeSet<(String, usize)> {
    let sidecar = path.with_extension("expect");
    let lines: Vec<String> = if sidecar.exists() {
        std::fs::read_to_string(&sidecar)
            .expect("read sidecar")
            .lines()
            .map(str::to_owned)
            .collect()
    } else {
        text.lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(str::to_owned)
            .collect()
    };
    lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (code, line) = l.split_once(" @ ").expect("`CODE @ LINE`");
            (
                code.trim().to_owned(),
                line.trim().parse().expect("line number"),
            )
        })
        .collect()
}

fn actual(report: &check::Report) -> BTreeSet<(String, usize)> {
    report
        .diagnostics
        .iter()
        .map(|d| {
            let line = d.span.map_or(0, |s| report.source.line_col(s.start).0);
            (d.code.name().to_owned(), line)
        })
        .collect()
}

#[test]
fn every_bad_inventory_reports_its_code_on_its_line() {
    let paths = corpus::files();
    assert!(
        paths.len() >= 30,
        "the corpus shrank to {} cases",
        paths.len()
    );
    let mut failures = Vec::new();
    for path in &paths {
        // Bytes: some cases are not UTF-8 on purpose. Relative module paths are looked up in the
        // corpus folder, as `pifleet check` looks them up next to the inventory.
        let bytes = std::fs::read(path).expect("read case");
        let text = String::from_utf8_lossy(&bytes);
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?");
        let expected = expectations(path, &text);
        assert!(!expected.is_empty(), "{name} states no expectation");
        let report = check::check_bytes(&bytes, name, Some(&corpus::dir()));
        let got = actual(&report);
        if got != expected || !report.has_errors() {
            failures.push(format!(
                "{name}: expected {expected:?}, got {got:?}\n{}",
                check::render_human(&report, false)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        paths.len(),
        failures.join("\n")
    );
}

#[test]
fn the_example_fleet_is_clean() {
    let path = corpus::example();
    let report = check::check_file(&path).expect("read fleet.toml");
    assert!(
        report.diagnostics.is_empty(),
        "the example fleet must have no diagnostics at all:\n{}",
        check::render_human(&report, false)
    );
}

//! docs/diagnostics.md documents every code in `codes::CODES`, with the right severity, and nothing else.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// `### `code`` headings, each with the severity word on the next non-empty line (`**error**` / `**warning**`).
fn documented() -> BTreeMap<String, String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/diagnostics.md");
    let text = std::fs::read_to_string(path).expect("docs/diagnostics.md");
    let mut out = BTreeMap::new();
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
            out.insert(code.to_owned(), severity).is_none(),
            "{code} is documented twice"
        );
    }
    out
}

#[test]
fn every_code_is_documented_with_its_severity_and_nothing_else() {
    let docs = documented();
    for info in check::codes::CODES {
        let severity = docs
            .get(info.code)
            .unwrap_or_else(|| panic!("{} is missing from docs/diagnostics.md", info.code));
        assert_eq!(
            severity,
            info.severity.as_str(),
            "docs/diagnostics.md gives {} the wrong severity",
            info.code
        );
    }
    for code in docs.keys() {
        assert!(
            check::codes::lookup(code).is_some(),
            "docs/diagnostics.md documents `{code}`, which is not in CODES"
        );
    }
}

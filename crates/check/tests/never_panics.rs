//! The rules and the renderers must not panic either: run the whole of `pifleet check` (load, rules, human and
//! JSON rendering) over truncations of every corpus case and of the example fleet.

use std::path::PathBuf;

fn run(text: &str, name: &str) {
    let report = check::check_str(text, name);
    let _ = check::render_human(&report, false);
    let _ = check::render_human(&report, true);
    let _ = check::render_json(&report);
}

#[test]
fn truncations_of_every_case_and_the_example() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("tests/cases"))
        .expect("cases")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("toml" | "json")
            )
        })
        .collect();
    files.push(root.join("../../fleet.toml"));
    for path in files {
        let bytes = std::fs::read(&path).expect("read");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("x.toml")
            .to_owned();
        for cut in (0..=text.len())
            .step_by(5)
            .filter(|c| text.is_char_boundary(*c))
        {
            run(&text[..cut], &name);
        }
        // Every line removed in turn: often valid TOML with a dangling reference or a missing field.
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let without: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            run(&without.join("\n"), &name);
        }
    }
}

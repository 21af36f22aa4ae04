//! `gen` renders while the rules run, so `render::render` sees inventories that the rules will
//! refuse: dangling references, missing users, conflicting settings. It may return an error for
//! them, but it must not panic. Every inventory of check's bad-input corpus and of the example
//! fleet that loads, and every one of them with a line taken out (often valid TOML with a dangling
//! reference), is rendered here.

use std::path::PathBuf;

fn render_if_it_loads(text: &str, name: &str, rendered: &mut usize) {
    let Ok(loaded) = model::load_str(text, name) else {
        return;
    };
    let caught = std::panic::catch_unwind(|| render::render(&loaded.fleet, name));
    assert!(caught.is_ok(), "render panicked on {name}:\n{text}");
    *rendered += 1;
}

#[test]
fn no_loadable_inventory_makes_render_panic() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("../check/tests/cases"))
        .expect("check's corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("toml" | "json")
            )
        })
        .collect();
    files.sort();
    files.push(root.join("../../fleet.toml"));
    let mut rendered = 0;
    for path in &files {
        let text = String::from_utf8_lossy(&std::fs::read(path).expect("read")).into_owned();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("x.toml");
        render_if_it_loads(&text, name, &mut rendered);
        let lines: Vec<&str> = text.lines().collect();
        for skip in 0..lines.len() {
            let without: Vec<&str> = lines
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, l)| *l)
                .collect();
            render_if_it_loads(&without.join("\n"), name, &mut rendered);
        }
    }
    // Most of the corpus loads (its problems are semantic): the test must have rendered plenty.
    assert!(rendered > files.len(), "only {rendered} inventories loaded");
}

//! `gen` renders while the rules run, so `render::render` sees inventories that the rules will
//! refuse: dangling references, missing users, conflicting settings. It may return an error for
//! them, but it must not panic. Every inventory of check's bad-input corpus and of the example
//! fleet that loads, and every one of them with a line taken out (often valid TOML with a dangling
//! reference), is rendered here.

#[path = "../../check/tests/corpus/mod.rs"]
mod corpus;

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
    let mut files = corpus::files();
    files.push(corpus::example());
    let mut rendered = 0;
    for path in &files {
        let text = String::from_utf8_lossy(&std::fs::read(path).expect("read")).into_owned();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("x.toml");
        render_if_it_loads(&text, name, &mut rendered);
        for without in corpus::without_each_line(&text) {
            render_if_it_loads(&without, name, &mut rendered);
        }
    }
    // Most of the corpus loads (its problems are semantic): the test must have rendered plenty.
    assert!(rendered > files.len(), "only {rendered} inventories loaded");
}

//! The rules and the renderers must not panic either: run the whole of `pifleet check` (load, rules, human and
//! JSON rendering) over truncations of every corpus case and of the example fleet.

fn run(text: &str, name: &str) {
    let report = check::check_str(text, name);
    let _ = check::render_human(&report, false);
    let _ = check::render_human(&report, true);
    let _ = check::render_json(&report);
}

mod corpus;

#[test]
fn truncations_of_every_case_and_the_example() {
    let mut files = corpus::files();
    files.push(corpus::example());
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
        for without in corpus::without_each_line(&text) {
            run(&without, &name);
        }
    }
}

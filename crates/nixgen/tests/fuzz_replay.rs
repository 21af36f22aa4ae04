//! Runs the fuzz target's case on random inputs, and on every saved crash input in
//! `fuzz/regressions/` (crashes found by `cargo fuzz` become regression tests there).

mod fuzz_case;

use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn builder_never_panics_and_output_always_parses(data in prop::collection::vec(any::<u8>(), 0..512)) {
        fuzz_case::check(&data);
    }
}

#[test]
fn saved_fuzz_inputs_replay_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/regressions exists") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            fuzz_case::check(&std::fs::read(&path).expect("read"));
            count += 1;
        }
    }
    assert!(count > 0, "no regression inputs in {}", dir.display());
}

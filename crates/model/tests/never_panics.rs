//! The loader must never panic, whatever the input: mutations of the example fleet, random TOML-ish text,
//! and any crash input the fuzzer finds (add it to `CRASHES` below when it does).

use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../../../fleet.toml");

/// Inputs that once broke something, kept as regression tests.
const CRASHES: &[&str] = &[
    "",
    "\u{feff}",
    "[fleet",
    "[[hosts]]",
    "hosts = 1",
    "[fleet]\nstate_version = 26.05",
    "[hosts.a]\nboard = \"rpi4\"\naddress = \"\"",
    "[hosts.\"\"]",
    "a = 1979-05-27T07:32:00Z",
    "x = nan\ny = inf",
    "{\"fleet\": null}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    "a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
    "[users.\"ü\"]",
    "[hosts.a.containers.\"\"]\nimage = \"x:1\"",
];

#[test]
fn known_crash_inputs() {
    for input in CRASHES {
        model::fuzz_load(input.as_bytes());
    }
    model::fuzz_load(&[0xff, 0xfe, 0x00]);
}

#[test]
fn deep_nesting_is_refused_not_a_stack_overflow() {
    for depth in [100, 1_000, 100_000] {
        let arrays = format!("a = {}{}", "[".repeat(depth), "]".repeat(depth));
        let tables = format!("a = {}1{}", "{ b = ".repeat(depth), " }".repeat(depth));
        let dotted = format!("{} = 1", vec!["k"; depth].join("."));
        let json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        for (text, name) in [
            (arrays, "a.toml"),
            (tables, "t.toml"),
            (dotted, "d.toml"),
            (json, "j.json"),
        ] {
            assert!(
                model::load_str(&text, name).is_err(),
                "{name} at depth {depth}"
            );
        }
    }
}

#[test]
fn every_truncation_of_the_example() {
    let mut cut = 0;
    while cut < EXAMPLE.len() {
        if EXAMPLE.is_char_boundary(cut) {
            model::fuzz_load(&EXAMPLE.as_bytes()[..cut]);
        }
        cut += 7;
    }
}

#[test]
fn single_character_mutations_of_the_example() {
    let inserts = [
        "\"", "[", "]", "=", "\n", "0", "-", ".", "{", "}", ",", "#", "\\", "é",
    ];
    let bytes = EXAMPLE.as_bytes();
    for (n, at) in (0..bytes.len()).step_by(11).enumerate() {
        if !EXAMPLE.is_char_boundary(at) {
            continue;
        }
        let insert = inserts[n % inserts.len()];
        let mut s = String::with_capacity(EXAMPLE.len() + 4);
        s.push_str(&EXAMPLE[..at]);
        s.push_str(insert);
        s.push_str(&EXAMPLE[at..]);
        model::fuzz_load(s.as_bytes());
        // And a deletion at the same place.
        let mut end = at + 1;
        while end < EXAMPLE.len() && !EXAMPLE.is_char_boundary(end) {
            end += 1;
        }
        let deleted = format!("{}{}", &EXAMPLE[..at], &EXAMPLE[end.min(EXAMPLE.len())..]);
        model::fuzz_load(deleted.as_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_tomlish_text(s in "[a-z0-9_.\\-\\[\\]=\"' \n{},:/#@]{0,200}") {
        model::fuzz_load(s.as_bytes());
    }

    #[test]
    fn example_with_a_random_splice(at in 0usize..4000, junk in "\\PC{0,12}") {
        let mut at = at.min(EXAMPLE.len());
        while !EXAMPLE.is_char_boundary(at) {
            at -= 1;
        }
        let s = format!("{}{}{}", &EXAMPLE[..at], junk, &EXAMPLE[at..]);
        model::fuzz_load(s.as_bytes());
    }

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        model::fuzz_load(&data);
    }
}

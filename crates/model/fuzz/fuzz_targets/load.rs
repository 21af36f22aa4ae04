//! Arbitrary bytes through the whole loader (TOML and JSON): it must report problems, never panic.
//! The same function runs in `crates/model/tests/never_panics.rs` on every `cargo test`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    model::fuzz_load(data);
});

//! Fuzz the syntax builder: never panic, never emit Nix that fails to parse.
#![no_main]

#[path = "../../tests/fuzz_case/mod.rs"]
mod fuzz_case;

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz_case::check(data));

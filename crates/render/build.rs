//! Fingerprints the code that decides what `gen` writes (this crate, the model, the Nix builder),
//! so that a cached no-op `gen` (src/cache.rs) is only trusted for output from the same code.

use std::hash::Hasher;
use std::path::Path;

fn visit(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            visit(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

fn main() {
    let manifest =
        std::path::PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let crates = manifest.parent().expect("crates/ dir");
    let mut files = Vec::new();
    for krate in ["render", "model", "nixgen"] {
        let src = crates.join(krate).join("src");
        println!("cargo:rerun-if-changed={}", src.display());
        visit(&src, &mut files);
    }
    let lock = crates.parent().expect("workspace root").join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    files.push(lock);
    files.sort();
    // SipHash with fixed keys: stable for a given toolchain, which is all a cache key needs.
    #[allow(deprecated)]
    let mut hasher = std::hash::SipHasher::new();
    for file in &files {
        hasher.write(
            file.strip_prefix(crates)
                .unwrap_or(file)
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.write(&std::fs::read(file).unwrap_or_default());
    }
    println!(
        "cargo:rustc-env=PIFLEET_GENERATOR_FINGERPRINT={}-{:016x}",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default(),
        hasher.finish()
    );
}

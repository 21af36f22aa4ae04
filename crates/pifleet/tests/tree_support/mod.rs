//! Copying directory trees into a test's scratch repo: fixtures, and the example fleet's
//! `secrets/` (the ciphertext its hosts read, which `check` requires next to `fleet.toml`).
#![allow(dead_code)] // each test binary uses part of it

use std::fs;
use std::path::{Path, PathBuf};

/// Copies `from` into `to`, recursively, creating `to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    for entry in fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display())) {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// The repository's root: the example fleet's `fleet.toml` and `secrets/` are there.
pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Copies the example's `secrets/` into `to/secrets`, as a clone has it.
pub(crate) fn copy_example_secrets(to: &Path) {
    copy_dir(&repo_root().join("secrets"), &to.join("secrets"));
}

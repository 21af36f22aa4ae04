//! Running the real Nix (Debian's nix-bin 2.8) from tests.
//!
//! Tests that need Nix call [`nix`]: when `nix-instantiate` is missing it skips with a loud message
//! on a developer machine, and fails when `PIFLEET_REQUIRE_NIX=1` (set by `scripts/test`, so CI
//! never skips).

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A handle proving Nix is available.
pub struct Nix {
    dir: tempfile::TempDir,
}

/// `Some(Nix)` when `nix-instantiate` runs; `None` (skip) or a panic (CI) otherwise.
pub fn nix() -> Option<Nix> {
    let works = Command::new("nix-instantiate")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !works {
        if std::env::var_os("PIFLEET_REQUIRE_NIX").is_some_and(|v| v == "1") {
            panic!(
                "nix-instantiate is required (PIFLEET_REQUIRE_NIX=1) but not found: apt-get install nix-bin"
            );
        }
        eprintln!("SKIPPING: nix-instantiate not found; install nix-bin to run this test");
        return None;
    }
    Some(Nix {
        dir: tempfile::tempdir().expect("temp dir"),
    })
}

impl Nix {
    /// Writes `text` to a file in this handle's temp dir.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write nix file");
        path
    }

    /// `nix-instantiate --eval --strict --json` of a file, parsed.
    pub fn eval_json(&self, file: &Path) -> serde_json::Value {
        let out = run(Command::new("nix-instantiate")
            // Evaluation never needs the store: the dummy store keeps parallel tests off its lock.
            .args(["--store", "dummy://", "--eval", "--strict", "--json"])
            .arg(file));
        serde_json::from_slice(&out).expect("nix printed JSON")
    }

    /// `nix-instantiate --parse` of a file must succeed.
    pub fn parse(&self, file: &Path) {
        run(Command::new("nix-instantiate")
            .args(["--store", "dummy://", "--parse"])
            .arg(file));
    }
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().expect("run nix-instantiate");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

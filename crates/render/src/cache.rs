//! Recognising a no-op `gen` without rendering.
//!
//! Rendering is deterministic: the same inventory bytes, rendered by the same code, give the same
//! files. So after a successful `gen`, a stamp records a key (the inventory's bytes, its name and
//! a fingerprint of the generator's source, see build.rs) and the digest of every file written.
//! The next `gen` with the same key only has to confirm that those files are still there,
//! unedited, and that no other generated file has appeared: reading and hashing the tree, instead
//! of parsing, validating, checking and rendering the inventory. A missing, unreadable or
//! mismatched stamp just means the full path runs; the stamp can never make `gen` skip work that
//! would change a file. That includes what is not in the stamp: a leftover temporary file of an
//! interrupted `gen`, or a host directory that became a symbolic link, sends `gen` down the full
//! path, which reports (or removes) it.
//!
//! Stamps live outside the repository (the CLI puts them under the user's cache directory), one
//! per output directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Output, Provenance, provenance, recorded_digest};

/// Identifies the generator build: version plus a hash of its source.
pub const FINGERPRINT: &str = env!("PIFLEET_GENERATOR_FINGERPRINT");

const MAGIC: &str = "pifleet-gen-stamp 1";

/// The cache key of rendering `inventory` (named `source` in headers) with this build.
pub fn key(source: &str, inventory: &[u8]) -> String {
    let mut hasher = Sha256::new();
    for part in [FINGERPRINT.as_bytes(), source.as_bytes(), inventory] {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The stamp of one output directory.
#[derive(Debug, Clone)]
pub struct Stamp {
    path: PathBuf,
}

impl Stamp {
    /// The stamp for `out` inside `cache_dir`.
    pub fn new(cache_dir: &Path, out: &Path) -> Self {
        // Absolute, not canonical: the directory may not exist yet when the first stamp is named.
        let out = std::path::absolute(out).unwrap_or_else(|_| out.to_owned());
        let name = hex(&Sha256::digest(out.to_string_lossy().as_bytes()));
        Self {
            path: cache_dir.join("gen").join(format!("{}.stamp", &name[..32])),
        }
    }

    /// How many files the tree under `out` holds if it is exactly what rendering with `key`
    /// produced last time; `None` when that cannot be confirmed.
    pub fn fresh(&self, out: &Path, key: &str) -> Option<usize> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let mut lines = text.lines();
        if lines.next()? != MAGIC || lines.next()?.strip_prefix("key ")? != key {
            return None;
        }
        // Leftover temporary files, or a host directory turned into a link, are for the full path
        // to report (render::tree): the stamp says nothing about them.
        let layout = crate::tree::Layout::read(out).ok()?;
        if !layout.leftovers(out).ok()?.is_empty() {
            return None;
        }
        let mut listed = std::collections::BTreeSet::new();
        for line in lines {
            let (digest, path) = line.split_once(' ')?;
            if layout.linked_dir(Path::new(path)).is_some() {
                return None;
            }
            let text = std::fs::read_to_string(out.join(path)).ok()?;
            if provenance(&text) != Provenance::Generated || recorded_digest(&text)? != digest {
                return None;
            }
            listed.insert(PathBuf::from(path));
        }
        // A generated file the stamp does not list (a host restored by hand, say) is stale.
        for candidate in layout.candidates() {
            if listed.contains(&candidate) {
                continue;
            }
            match std::fs::read_to_string(out.join(&candidate)) {
                Ok(text) if provenance(&text) != Provenance::Foreign => return None,
                _ => {}
            }
        }
        Some(listed.len())
    }

    /// Records that `out` now holds `output`, rendered with `key`.
    pub fn record(&self, key: &str, output: &Output) -> std::io::Result<()> {
        let mut text = format!("{MAGIC}\nkey {key}\n");
        for (path, file) in &output.files {
            let digest = recorded_digest(file).unwrap_or_default();
            let _ = writeln!(text, "{digest} {}", path.display());
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Forgets the stamp (after a failed or partial write).
    pub fn clear(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

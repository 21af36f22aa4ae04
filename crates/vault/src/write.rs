//! Replacing `secrets/NAME.age` so that a crash or a full disk never leaves half a file.
//!
//! The new file is written next to the old one under a temporary name, synced, and renamed
//! over it; then the directory is synced so the rename itself survives a power cut. On any
//! failure the temporary file is removed and the old file is untouched. Only ciphertext is
//! written: the data must parse as an age header first.

use std::fs::{File, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::header::{self, HeaderError};

/// Why a ciphertext file cannot be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The data is not age ciphertext, so it might be a secret in the clear.
    #[error("refusing to write {}: the data is not an age file, and secrets are only written encrypted", path.display())]
    NotCiphertext {
        /// The file that was to be written.
        path: PathBuf,
        /// Why the data is not age.
        #[source]
        source: HeaderError,
    },
    /// The path has no file name (`/`, `..`).
    #[error("{} is not a file path: give a path such as secrets/NAME.age", path.display())]
    NotAFilePath {
        /// The path given.
        path: PathBuf,
    },
    /// Writing failed; the old file, if any, is unchanged and no temporary file is left.
    #[error("cannot write {} (the previous file, if any, is unchanged)", path.display())]
    Io {
        /// The file that was to be written.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Atomically replaces (or creates) `path` with `ciphertext`, mode 0644: the ciphertext is
/// meant to be committed. A symbolic link at `path` is replaced, not followed.
pub fn write_ciphertext(path: &Path, ciphertext: &[u8]) -> Result<(), WriteError> {
    header::read(ciphertext).map_err(|source| WriteError::NotCiphertext {
        path: path.to_owned(),
        source,
    })?;
    let Some(name) = path.file_name() else {
        return Err(WriteError::NotAFilePath {
            path: path.to_owned(),
        });
    };
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let io_error = |source| WriteError::Io {
        path: path.to_owned(),
        source,
    };
    // A dot name keeps an interrupted write out of `ls` and of globs over secrets/*.age.
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io_error)?;
    // From here on, dropping `temp` on an error removes the temporary file.
    temp.write_all(ciphertext).map_err(io_error)?;
    temp.as_file()
        .set_permissions(Permissions::from_mode(0o644))
        .map_err(io_error)?;
    temp.as_file().sync_all().map_err(io_error)?;
    temp.persist(path).map_err(|e| io_error(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_is_never_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wifi.age");
        let err = write_ciphertext(&path, b"psk=hunter2\n").unwrap_err();
        assert!(matches!(err, WriteError::NotCiphertext { .. }), "{err:?}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

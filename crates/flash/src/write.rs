//! Streaming an image onto a target, then proving the target holds it.
//!
//! Decoding, hashing and writing run on three threads joined by a small pool of 4 MiB buffers, the
//! way `zstd -dc | dd bs=4M` overlaps its two processes; without that overlap a single thread spends
//! the decoder's, the hash's and the card's time one after the other. The SHA-256 is taken from the decoded
//! bytes before they are written, so it describes the image, not whatever reached the target. Every
//! chunk but the last is a full 4 MiB at a 4 MiB-aligned offset, which keeps the block layer and the
//! card's erase blocks happy. Writing and verifying are separate public steps ([`write_to`],
//! [`write_image`], [`verify`]) so that a caller, or a test, can see and act between them.
//!
//! Opening the target is the last safety check, and the only one made on the very thing that is
//! written. It writes the [`Target`] as it was judged (and, for an existing file, confirmed), never a
//! fresh look-up of the path: a block device is opened exclusively, so the kernel refuses it while
//! anything holds it; an existing file is compared with the image by the open handle's device and
//! inode before it is emptied; a new file is created only if nothing (not even a symlink) has
//! appeared at its path since.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::num::NonZeroU64;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::device::Target;
use crate::image::{FileId, Image, ImageError};

/// `O_EXCL`, for opening a block device: without `O_CREAT` Linux gives it that meaning (open(2)),
/// and fails with `EBUSY` while the device is mounted, active swap, a partition of it is, or
/// device-mapper, md or another exclusive opener holds it.
const EXCLUSIVE: i32 = rustix::fs::OFlags::EXCL.bits().cast_signed();

/// The size of every read and write.
pub const CHUNK: usize = 4 << 20;

/// Receives progress while an image is written or read back.
pub trait Progress {
    /// `done` bytes of `total` (when known) have been processed.
    fn update(&mut self, done: u64, total: Option<u64>);
}

impl<F: FnMut(u64, Option<u64>)> Progress for F {
    fn update(&mut self, done: u64, total: Option<u64>) {
        self(done, total)
    }
}

/// A [`Progress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&mut self, _done: u64, _total: Option<u64>) {}
}

/// Whether to hash the image while writing it. The hash is what [`verify`] compares against; without
/// verification it is work for nothing (SHA-256 costs about as much CPU as zstd decoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hashing {
    /// Take the SHA-256 of the decoded image.
    Sha256,
    /// Don't hash; the result can't be verified.
    Off,
}

/// What was written: how many bytes, and the SHA-256 of the image's decoded bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Bytes written from the start of the target.
    pub len: u64,
    /// SHA-256 of those bytes as they came out of the image, unless hashing was off.
    pub sha256: Option<[u8; 32]>,
}

impl Written {
    /// The SHA-256 in lowercase hex, if it was taken.
    pub fn sha256_hex(&self) -> Option<String> {
        self.sha256.as_ref().map(|h| hex(h))
    }
}

/// Why writing stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The image could not be opened.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The target could not be opened.
    #[error("cannot open {path} for writing")]
    Open {
        /// The target.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The kernel refused to open the block device exclusively (`EBUSY`).
    #[error(
        "cannot write {path}: it is in use: mounted, swap, or held by another program; nothing was written"
    )]
    Busy {
        /// The target.
        path: PathBuf,
    },
    /// The target is the image file itself, under this or another name.
    #[error(
        "refusing to write {path}: it is the image file itself (the same inode on the same device); nothing was written"
    )]
    TheImage {
        /// The target.
        path: PathBuf,
    },
    /// Decoding failed part way: the image is corrupt or truncated inside a block.
    #[error(
        "the image is corrupt or truncated after {written} decoded bytes; the target is now partially written, flash it again with a good image"
    )]
    Decode {
        /// Bytes already on the target.
        written: u64,
        /// What the decoder said.
        #[source]
        source: io::Error,
    },
    /// The image decoded to a different length than its header promised.
    #[error(
        "the image decoded to {actual} bytes but its header says {expected}; it is corrupt and the target is now partially written"
    )]
    SizeMismatch {
        /// The size in the header.
        expected: u64,
        /// The size decoded.
        actual: u64,
    },
    /// Writing to the target failed.
    #[error(
        "writing to the target failed after {written} bytes; the target is now partially written"
    )]
    Target {
        /// Bytes already on the target.
        written: u64,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The final flush to stable storage failed.
    #[error("flushing {path} to stable storage failed; its contents can't be trusted")]
    Sync {
        /// The target.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
}

/// Why the read-back check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The target could not be read.
    #[error("cannot read {path} back")]
    Io {
        /// The target.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The target ended before the written length.
    #[error("{path} holds only {found} bytes, {expected} were written")]
    Short {
        /// The target.
        path: PathBuf,
        /// Bytes written.
        expected: u64,
        /// Bytes read back.
        found: u64,
    },
    /// The write was made with [`Hashing::Off`]: there is nothing to compare with.
    #[error("cannot verify {path}: the image was not hashed while writing")]
    NotHashed {
        /// The target.
        path: PathBuf,
    },
    /// The bytes read back differ from the bytes written.
    #[error(
        "verification failed: {path} reads back with SHA-256 {actual}, the image has {expected}; the card may be failing or counterfeit, try another"
    )]
    Mismatch {
        /// The target.
        path: PathBuf,
        /// SHA-256 of the image.
        expected: String,
        /// SHA-256 of what was read back.
        actual: String,
    },
}

/// Streams the decoded image into `out` and returns what was written. Does not flush or sync:
/// [`write_image`] does that for files and devices.
pub fn write_to<W: Write + ?Sized>(
    image: &Image,
    out: &mut W,
    hashing: Hashing,
    progress: &mut dyn Progress,
) -> Result<Written, WriteError> {
    let mut reader = image.reader()?;
    let total = image.size();
    // A three-stage pipeline, decode → hash → write, each on its own thread and passing buffers
    // along; the writer hands them back to the decoder. Each stage alone is slower than
    // `zstd -dc | dd`'s pipe, so hashing must not share a thread with either of the others. When a
    // stage stops, the channels it drops stop the others.
    let (pool_tx, pool_rx) = mpsc::sync_channel::<Vec<u8>>(BUFFERS);
    let (hash_tx, hash_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(2);
    let (write_tx, write_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(2);
    for _ in 0..BUFFERS {
        let _ = pool_tx.send(vec![0u8; CHUNK]);
    }
    let mut written = 0u64;
    let sha256 = std::thread::scope(|scope| {
        scope.spawn(move || {
            while let Ok(mut buf) = pool_rx.recv() {
                buf.resize(CHUNK, 0);
                let next = fill(&mut reader, &mut buf).map(|n| {
                    buf.truncate(n);
                    buf
                });
                let stop = !matches!(&next, Ok(b) if !b.is_empty());
                if hash_tx.send(next).is_err() || stop {
                    break;
                }
            }
        });
        let hasher = scope.spawn(move || {
            let mut hasher = (hashing == Hashing::Sha256).then(Sha256::new);
            for buf in hash_rx {
                if let (Ok(buf), Some(hasher)) = (&buf, &mut hasher) {
                    hasher.update(buf);
                }
                if write_tx.send(buf).is_err() {
                    break;
                }
            }
            hasher.map(|h| <[u8; 32]>::from(h.finalize()))
        });
        // The writer runs here.
        let result = (|| -> Result<(), WriteError> {
            for buf in &write_rx {
                let buf = buf.map_err(|source| WriteError::Decode { written, source })?;
                if buf.is_empty() {
                    break;
                }
                out.write_all(&buf)
                    .map_err(|source| WriteError::Target { written, source })?;
                written += buf.len() as u64;
                progress.update(written, total);
                let _ = pool_tx.send(buf);
            }
            Ok(())
        })();
        drop(write_rx);
        drop(pool_tx);
        let digest = hasher.join();
        result.map(|()| digest)
    })?;
    let sha256 = sha256.map_err(|_| WriteError::Decode {
        written,
        source: io::Error::other("the hashing thread panicked"),
    })?;
    if let Some(expected) = total
        && expected != written
    {
        return Err(WriteError::SizeMismatch {
            expected,
            actual: written,
        });
    }
    Ok(Written {
        len: written,
        sha256,
    })
}

/// Buffers in flight: one per stage and one queued between each pair.
const BUFFERS: usize = 5;

/// Writes the image to `target` as [`crate::SystemView::target`] judged it, then flushes it to
/// stable storage.
///
/// - [`Target::Device`]: opened exclusively; one that is mounted, swapped to or otherwise held is
///   [`WriteError::Busy`].
/// - [`Target::File`]: the existing file is emptied and rewritten, unless the opened file is the
///   image itself by device and inode ([`WriteError::TheImage`]), so a name swapped in after the
///   judgement is still caught. It is never created: one that vanished is an error.
/// - [`Target::NewFile`]: created with `O_CREAT|O_EXCL`; if anything, a file or a symlink, has
///   appeared at the path since it was judged new, that is a [`WriteError::Open`] error and nothing
///   is truncated.
///
/// Whether a person agreed to replace an existing file or erase a device is the caller's business.
pub fn write_image(
    image: &Image,
    target: &Target,
    hashing: Hashing,
    progress: &mut dyn Progress,
) -> Result<Written, WriteError> {
    let mut file = open_target(image, target)?;
    let written = write_to(image, &mut file, hashing, progress)?;
    file.sync_all().map_err(|source| WriteError::Sync {
        path: target.path().to_path_buf(),
        source,
    })?;
    Ok(written)
}

fn open_target(image: &Image, target: &Target) -> Result<File, WriteError> {
    let path = target.path();
    let open_err = |source| WriteError::Open {
        path: path.to_path_buf(),
        source,
    };
    let changed = |what| open_err(io::Error::new(io::ErrorKind::InvalidInput, what));
    match target {
        Target::NewFile(_) => OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(open_err),
        Target::Device(_) => {
            let file = OpenOptions::new()
                .write(true)
                .custom_flags(EXCLUSIVE)
                .open(path)
                .map_err(|source| match Errno::from_io_error(&source) {
                    Some(Errno::BUSY) => WriteError::Busy {
                        path: path.to_path_buf(),
                    },
                    _ => open_err(source),
                })?;
            let meta = file.metadata().map_err(open_err)?;
            if !meta.file_type().is_block_device() {
                return Err(changed("it is no longer a block device"));
            }
            Ok(file)
        }
        Target::File(_) => {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(open_err)?;
            let meta = file.metadata().map_err(open_err)?;
            if !meta.is_file() {
                return Err(changed("it is no longer a regular file"));
            }
            if FileId::of(&meta) == image.file_id() {
                return Err(WriteError::TheImage {
                    path: path.to_path_buf(),
                });
            }
            file.set_len(0).map_err(open_err)?;
            Ok(file)
        }
    }
}

/// Reads the first `written.len` bytes of `target` back from the medium and compares their SHA-256
/// with the image's.
pub fn verify(
    target: &Path,
    written: &Written,
    progress: &mut dyn Progress,
) -> Result<(), VerifyError> {
    let io_err = |source| VerifyError::Io {
        path: target.to_path_buf(),
        source,
    };
    let Some(expected) = written.sha256 else {
        return Err(VerifyError::NotHashed {
            path: target.to_path_buf(),
        });
    };
    let mut file = File::open(target).map_err(io_err)?;
    // The page cache still holds what we just wrote; drop it so the bytes come from the card.
    // Best effort: the pages are clean after the fsync, and a file system may ignore the advice.
    let _ = rustix::fs::fadvise(
        &file,
        0,
        NonZeroU64::new(written.len),
        rustix::fs::Advice::DontNeed,
    );
    // Reading and hashing overlap: a reader thread fills buffers while this one hashes.
    let len = written.len;
    let (pool_tx, pool_rx) = mpsc::sync_channel::<Vec<u8>>(3);
    let (full_tx, full_rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(2);
    for _ in 0..3 {
        let _ = pool_tx.send(vec![0u8; CHUNK]);
    }
    let mut hasher = Sha256::new();
    let mut done = 0u64;
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut read = 0u64;
            while read < len {
                let Ok(mut buf) = pool_rx.recv() else { break };
                let want = usize::try_from(len - read).map_or(CHUNK, |left| left.min(CHUNK));
                buf.resize(want, 0);
                let next = fill(&mut file, &mut buf).map(|n| {
                    buf.truncate(n);
                    buf
                });
                let stop = !matches!(&next, Ok(b) if !b.is_empty());
                read += next.as_ref().map_or(0, |b| b.len() as u64);
                if full_tx.send(next).is_err() || stop {
                    break;
                }
            }
        });
        let result = (|| -> Result<(), VerifyError> {
            for buf in &full_rx {
                let buf = buf.map_err(io_err)?;
                if buf.is_empty() {
                    break;
                }
                hasher.update(&buf);
                done += buf.len() as u64;
                progress.update(done, Some(len));
                let _ = pool_tx.send(buf);
            }
            Ok(())
        })();
        drop(full_rx);
        drop(pool_tx);
        result
    })?;
    if done < len {
        return Err(VerifyError::Short {
            path: target.to_path_buf(),
            expected: len,
            found: done,
        });
    }
    let actual: [u8; 32] = hasher.finalize().into();
    if actual != expected {
        return Err(VerifyError::Mismatch {
            path: target.to_path_buf(),
            expected: hex(&expected),
            actual: hex(&actual),
        });
    }
    Ok(())
}

/// The SHA-256 of a file's bytes as stored (for a `.img.zst`, of the compressed file), in lowercase
/// hex: what `sha256sum` prints, so a published checksum can be compared.
pub fn file_sha256(path: &Path) -> io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = fill(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn fill<R: Read + ?Sized>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match reader.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

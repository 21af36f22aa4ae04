//! Loop devices and mounts for tests, released in `Drop` so a failing test leaves nothing behind.
//!
//! Tests need root for `losetup` and `mount`. Where those are not permitted a test skips with a
//! message, unless `PIFLEET_REQUIRE_LOOP=1` (set by `scripts/test`), where it fails instead: CI must
//! never pass by skipping the tests that matter.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop device over a backing file; detached on drop.
#[derive(Debug)]
pub struct Loop {
    pub device: PathBuf,
}

impl Loop {
    /// Attaches `file`, or returns `None` (skip) when loop devices are not available here.
    pub fn attach(file: &Path) -> Option<Self> {
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(file)
            .output();
        match out {
            Ok(out) if out.status.success() => {
                let device = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                Some(Self {
                    device: device.into(),
                })
            }
            other => {
                let why = match other {
                    Ok(out) => String::from_utf8_lossy(&out.stderr).into_owned(),
                    Err(e) => e.to_string(),
                };
                unavailable(&format!("losetup failed: {why}"));
                None
            }
        }
    }
}

impl Loop {
    /// Gives `file` an MBR with one Linux partition from sector 2048, attaches it with its
    /// partitions, and returns the loop device and the partition's node, or `None` (skip).
    pub fn attach_partitioned(file: &Path) -> Option<(Self, PathBuf)> {
        use std::io::Write;
        let mut sfdisk = Command::new("sfdisk")
            .arg("-q")
            .arg(file)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("run sfdisk (scripts/test installs fdisk)");
        sfdisk
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"label: dos\nstart=2048, type=83\n")
            .expect("write the table");
        assert!(sfdisk.wait().expect("sfdisk").success(), "sfdisk");
        let out = Command::new("losetup")
            .args(["--find", "--show", "--partscan"])
            .arg(file)
            .output();
        let lo = match out {
            Ok(out) if out.status.success() => Self {
                device: String::from_utf8_lossy(&out.stdout).trim().into(),
            },
            _ => {
                unavailable("losetup --partscan failed");
                return None;
            }
        };
        let part = PathBuf::from(format!("{}p1", lo.device.display()));
        // Where the kernel's own scan creates no partition (some containers), partx adds it
        // through BLKPG; then devtmpfs (or udev) makes the node. Waiting for it is not a timing
        // assertion: the test only needs the node to exist.
        if !part.exists() {
            let _ = Command::new("partx").arg("-a").arg(&lo.device).status();
        }
        for _ in 0..50 {
            if part.exists() {
                return Some((lo, part));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        unavailable("the loop device's partition has no node in /dev");
        None
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

/// A file system mounted at a temporary directory; unmounted on drop.
#[derive(Debug)]
pub struct Mounted {
    pub dir: tempfile::TempDir,
}

impl Mounted {
    /// Makes an ext4 file system on `device` and mounts it, or `None` (skip) when not permitted.
    pub fn ext4(device: &Path) -> Option<Self> {
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(device)
            .status();
        if !mkfs.is_ok_and(|s| s.success()) {
            unavailable("mkfs.ext4 failed");
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = Command::new("mount").arg(device).arg(dir.path()).status();
        if !mount.is_ok_and(|s| s.success()) {
            unavailable("mount failed");
            return None;
        }
        Some(Self { dir })
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Active swap on a device, made with `mkswap` and `swapon`; `swapoff` on drop, so a failing test
/// never leaves the kernel swapping to a loop device.
#[derive(Debug)]
pub struct Swap {
    pub device: PathBuf,
}

impl Swap {
    /// Formats `device` as swap and turns it on, or `None` (skip) when not permitted.
    pub fn on(device: &Path) -> Option<Self> {
        let mkswap = Command::new("mkswap").arg(device).output();
        if !mkswap.is_ok_and(|o| o.status.success()) {
            unavailable("mkswap failed");
            return None;
        }
        let swapon = Command::new("swapon").arg(device).status();
        if !swapon.is_ok_and(|s| s.success()) {
            unavailable("swapon failed");
            return None;
        }
        Some(Self {
            device: device.to_path_buf(),
        })
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        let _ = Command::new("swapoff").arg(&self.device).status();
    }
}

fn unavailable(why: &str) {
    if std::env::var_os("PIFLEET_REQUIRE_LOOP").is_some_and(|v| v == "1") {
        panic!("{why}, and PIFLEET_REQUIRE_LOOP=1 requires loop devices and mounts");
    }
    eprintln!("skipping: {why} (set PIFLEET_REQUIRE_LOOP=1 to make this fail)");
}

/// Deterministic pseudo-random bytes with some repetition, so zstd has work but still compresses.
pub fn image_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let word = (state >> 33).to_le_bytes();
        // Every other 4 KiB run is zeros, like the empty space in a real disk image.
        if (out.len() / 4096) % 2 == 0 {
            out.extend_from_slice(&word);
        } else {
            out.extend_from_slice(&[0; 8]);
        }
    }
    out.truncate(len);
    out
}

/// Compresses like the `zstd` CLI and the NixOS SD image builder: content size and checksum recorded.
pub fn compress(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).expect("encoder");
    enc.set_pledged_src_size(Some(data.len() as u64))
        .expect("pledge");
    enc.include_checksum(true).expect("checksum");
    enc.write_all(data).expect("compress");
    enc.finish().expect("finish")
}

/// Writes `bytes` to `dir/name`, zstd-compressed (like the `zstd` CLI) when `zstd` is true.
pub fn write_image(dir: &Path, name: &str, bytes: &[u8], zstd: bool) -> PathBuf {
    let path = dir.join(name);
    let data = if zstd {
        compress(bytes)
    } else {
        bytes.to_vec()
    };
    std::fs::write(&path, data).expect("write image");
    path
}

/// A sparse file of `len` bytes to back a loop device.
pub fn backing_file(dir: &Path, name: &str, len: u64) -> PathBuf {
    let path = dir.join(name);
    let file = std::fs::File::create(&path).expect("create backing file");
    file.set_len(len).expect("size backing file");
    path
}

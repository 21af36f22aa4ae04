//! Real card images for tests: NixOS-like trees on ext4 (`mkfs.ext4 -d`), bare or in an
//! SD-card-like partition table, read back with `debugfs`; loop devices and mounts released on drop.
//! Shared by the `keys inject` and secrets end-to-end tests.
#![allow(dead_code, reason = "each test binary uses part of the support code")]

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) fn tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {program} (scripts/test installs it): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How the test tree looks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layout {
    /// Booted once: /nix/store, /nix/var/nix, /etc/NIXOS, /home/nixos owned 1000:100.
    Booted,
    /// Never booted: /nix/store and /nix-path-registration, no /home.
    Fresh,
    /// Plain Linux: no /nix.
    NotNixos,
}

/// A directory tree like a NixOS root, for `mkfs.ext4 -d`.
pub(crate) fn tree(dir: &Path, layout: Layout) -> PathBuf {
    let root = dir.join("root");
    let mk = |p: &str| std::fs::create_dir_all(root.join(p)).expect("mkdir");
    mk("etc");
    mk("usr/bin");
    if layout != Layout::NotNixos {
        mk("nix/store/0000000000000000000000000000000-hello-2.12");
    }
    match layout {
        Layout::Booted => {
            mk("nix/var/nix/db");
            std::fs::write(root.join("etc/NIXOS"), "").expect("marker");
            mk("home/nixos");
            chown(root.join("home/nixos"), Some(1000), Some(100)).expect("chown");
        }
        Layout::Fresh => {
            std::fs::write(root.join("nix-path-registration"), "/nix/store/…\n").expect("reg");
        }
        Layout::NotNixos => mk("home/nixos"),
    }
    root
}

/// A bare ext4 image of the tree.
pub(crate) fn ext4_image(dir: &Path, layout: Layout) -> PathBuf {
    let root = tree(dir, layout);
    let image = dir.join("root.img");
    let (r, i) = (root.to_string_lossy(), image.to_string_lossy());
    tool(
        "mkfs.ext4",
        &["-q", "-F", "-L", "NIXOS_SD", "-d", &r, &i, "16M"],
    );
    image
}

/// Byte offsets of the two partitions of [`partitioned_image`].
pub(crate) const FAT_START: u64 = 2048 * 512;
pub(crate) const ROOT_START: u64 = 34816 * 512;

/// An SD-card-like image: MBR, a FAT firmware partition, and an ext4 root (like the NixOS images).
pub(crate) fn partitioned_image(dir: &Path, layout: Option<Layout>) -> PathBuf {
    partitioned_image_with(dir, "dos", layout)
}

/// [`partitioned_image`] with an sfdisk `label` (`dos` or `gpt`), 512-byte sectors.
pub(crate) fn partitioned_image_with(dir: &Path, label: &str, layout: Option<Layout>) -> PathBuf {
    // FAT and Linux partition types (the types decide nothing: the superblocks do).
    let (fat, linux) = if label == "gpt" {
        ("U", "L")
    } else {
        ("c", "83")
    };
    let image = dir.join("sd.img");
    let file = std::fs::File::create(&image).expect("create");
    file.set_len(48 << 20).expect("size");
    drop(file);
    let i = image.to_string_lossy().into_owned();
    let mut sfdisk = Command::new("sfdisk")
        .args(["-q", &i])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run sfdisk (scripts/test installs fdisk)");
    {
        use std::io::Write;
        let mut stdin = sfdisk.stdin.take().expect("stdin");
        stdin
            .write_all(
                format!(
                    "label: {label}\nstart=2048, size=32768, type={fat}\nstart=34816, type={linux}\n"
                )
                .as_bytes(),
            )
            .expect("table");
    }
    assert!(sfdisk.wait().expect("sfdisk").success());
    tool(
        "mkfs.vfat",
        &["--offset", "2048", "-n", "FIRMWARE", &i, "16384"],
    );
    match layout {
        Some(layout) => {
            let root = tree(dir, layout);
            tool(
                "mkfs.ext4",
                &[
                    "-q",
                    "-F",
                    "-L",
                    "NIXOS_SD",
                    "-E",
                    &format!("offset={ROOT_START}"),
                    "-d",
                    &root.to_string_lossy(),
                    &i,
                    "14M",
                ],
            );
        }
        None => tool(
            "mkfs.vfat",
            &["--offset", "34816", "-n", "DATA", &i, "16384"],
        ),
    }
    image
}

/// Where the ext4 root of [`image_4k`] starts: sector 4352 of 4096 bytes (17 MiB).
pub(crate) const ROOT_START_4K: u64 = 4352 * 4096;

/// A 48 MiB image partitioned by `fdisk -b 4096` for 4096-byte logical sectors, with an `fdisk`
/// label (`g` GPT, `o` DOS): an empty partition at sectors 256-4351, and an ext4 root (4096-byte
/// blocks) from sector 4352.
pub(crate) fn image_4k(dir: &Path, label: char) -> PathBuf {
    let image = dir.join("sd4k.img");
    let file = std::fs::File::create(&image).expect("create");
    file.set_len(48 << 20).expect("size");
    drop(file);
    // GPT asks for a partition number; DOS for primary/extended, then a number.
    let new = if label == 'g' { "n\n" } else { "n\np\n" };
    let script = format!("{label}\n{new}1\n256\n4351\n{new}2\n4352\n\nw\n");
    let mut fdisk = Command::new("fdisk")
        .args(["-b", "4096"])
        .arg(&image)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("run fdisk (scripts/test installs fdisk)");
    {
        use std::io::Write;
        let mut stdin = fdisk.stdin.take().expect("stdin");
        stdin.write_all(script.as_bytes()).expect("script");
    }
    assert!(fdisk.wait().expect("fdisk").success());
    let root = tree(dir, Layout::Booted);
    tool(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-b",
            "4096",
            "-L",
            "NIXOS_SD",
            "-E",
            &format!("offset={ROOT_START_4K}"),
            "-d",
            &root.to_string_lossy(),
            &image.to_string_lossy(),
            "14M",
        ],
    );
    image
}

/// debugfs's view of `path` inside the ext4 at `spec` (`file` or `file?offset=N`).
pub(crate) fn debugfs(spec: &str, request: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", request, spec])
        .env("DEBUGFS_PAGER", "__none__")
        .output()
        .expect("run debugfs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `(type, mode, uid, gid)` of `path`, from debugfs `stat`.
pub(crate) fn stat(spec: &str, path: &str) -> Option<(String, String, u32, u32)> {
    let text = debugfs(spec, &format!("stat {path}"));
    let after = |key: &str| -> Option<String> {
        let at = text.find(key)? + key.len();
        text[at..].split_whitespace().next().map(str::to_owned)
    };
    Some((
        after("Type:")?,
        after("Mode:")?,
        after("User:")?.parse().ok()?,
        after("Group:")?.parse().ok()?,
    ))
}

pub(crate) mod support {
    //! Loop devices and mounts, released in `Drop` so a failing test leaves nothing behind.

    use std::path::{Path, PathBuf};
    use std::process::Command;

    /// A loop device over a backing file; detached on drop.
    #[derive(Debug)]
    pub(crate) struct Loop {
        pub(crate) device: PathBuf,
    }

    impl Loop {
        /// Attaches `file` (scanning its partitions with `partscan`), or `None` (skip).
        pub(crate) fn attach(file: &Path, partscan: bool) -> Option<Self> {
            Self::attach_sized(file, partscan, None)
        }

        /// [`Loop::attach`] with a logical sector size (512 when `None`).
        pub(crate) fn attach_sized(
            file: &Path,
            partscan: bool,
            sector_size: Option<u32>,
        ) -> Option<Self> {
            let mut cmd = Command::new("losetup");
            cmd.args(["--find", "--show"]);
            if partscan {
                cmd.arg("--partscan");
            }
            if let Some(size) = sector_size {
                cmd.arg("--sector-size").arg(size.to_string());
            }
            match cmd.arg(file).output() {
                Ok(out) if out.status.success() => {
                    let device = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                    let lo = Self {
                        device: device.into(),
                    };
                    if partscan {
                        // udev may take a moment to create the partition nodes; without udev
                        // (containers) they never appear, and the partition is used by offset.
                        let p2 = PathBuf::from(format!("{}p2", lo.device.display()));
                        for _ in 0..20 {
                            if p2.exists() {
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(100));
                        }
                    }
                    Some(lo)
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

    impl Drop for Loop {
        fn drop(&mut self) {
            let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
        }
    }

    /// A device mounted at a temporary directory; unmounted on drop.
    #[derive(Debug)]
    pub(crate) struct Mounted {
        pub(crate) dir: tempfile::TempDir,
    }

    impl Mounted {
        pub(crate) fn new(device: &Path) -> Option<Self> {
            let dir = tempfile::tempdir().expect("tempdir");
            let ok = Command::new("mount")
                .arg(device)
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
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

    /// Whether a loop device over `file` is still attached (a mount left behind keeps it).
    pub(crate) fn mounted_anywhere(file: &Path) -> bool {
        let out = Command::new("losetup")
            .args(["-j"])
            .arg(file)
            .output()
            .expect("losetup -j");
        !String::from_utf8_lossy(&out.stdout).trim().is_empty()
    }

    pub(crate) fn unavailable(why: &str) {
        if std::env::var_os("PIFLEET_REQUIRE_LOOP").is_some_and(|v| v == "1") {
            panic!("{why}, and PIFLEET_REQUIRE_LOOP=1 requires loop devices and mounts");
        }
        eprintln!("skipping: {why} (set PIFLEET_REQUIRE_LOOP=1 to make this fail)");
    }
}

//! `pifleet flash` and `pifleet image` end to end: the real binary, piped output, real loop devices.
//!
//! Loop devices need root; where `losetup` or `mount` are not permitted these tests skip, unless
//! `PIFLEET_REQUIRE_LOOP=1` (set by `scripts/test`), where they fail. `nix` is replaced by a stand-in
//! script on PATH that records its arguments and fakes a build output, since real SD images can't be
//! built here.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn pifleet() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pifleet"));
    cmd.stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run pifleet");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Pseudo-random bytes with runs of zeros, like a disk image.
fn image_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        if (out.len() / 4096) % 2 == 0 {
            out.extend_from_slice(&(state >> 33).to_le_bytes());
        } else {
            out.extend_from_slice(&[0; 8]);
        }
    }
    out.truncate(len);
    out
}

/// Writes a raw image, and with `zstd` true compresses it with the `zstd` CLI (as NixOS does).
fn make_image(dir: &Path, bytes: &[u8], zstd: bool) -> PathBuf {
    let raw = dir.join("disk.img");
    std::fs::write(&raw, bytes).expect("write image");
    if !zstd {
        return raw;
    }
    let status = Command::new("zstd")
        .args(["-q", "-f", "-3"])
        .arg(&raw)
        .status()
        .expect("run zstd (scripts/test installs it)");
    assert!(status.success());
    dir.join("disk.img.zst")
}

/// Compresses `raw` with the `zstd` CLI into `name`; `extra` adds flags such as `--no-check`.
fn zstd_cli(raw: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = raw.with_file_name(name);
    let status = Command::new("zstd")
        .args(["-q", "-f", "-3"])
        .args(extra)
        .arg(raw)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("run zstd (scripts/test installs it)");
    assert!(status.success());
    out
}

/// Runs `cmd` with `answer` written to its stdin (a pipe, so a prompt reads one line from it).
fn run_answering(cmd: &mut Command, answer: &str) -> (i32, String, String) {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(answer.as_bytes()).expect("answer");
    }
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn require_loop() -> bool {
    let ok = Command::new("losetup")
        .arg("--find")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("PIFLEET_REQUIRE_LOOP").is_some_and(|v| v == "1") {
            panic!("losetup is not usable, and PIFLEET_REQUIRE_LOOP=1 requires loop devices");
        }
        eprintln!("skipping: losetup is not usable here (PIFLEET_REQUIRE_LOOP=1 makes this fail)");
    }
    ok
}

/// A loop device over a sparse file; detached on drop.
struct Loop {
    device: PathBuf,
    backing: PathBuf,
}

impl Loop {
    fn new(dir: &Path, len: u64) -> Option<Self> {
        if !require_loop() {
            return None;
        }
        let backing = dir.join("card");
        std::fs::File::create(&backing)
            .and_then(|f| f.set_len(len))
            .expect("backing file");
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&backing)
            .output()
            .expect("losetup");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let device = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Some(Self { device, backing })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.device).status();
    }
}

/// A mounted ext4 file system on a device; unmounted on drop.
struct Mounted(tempfile::TempDir);

impl Mounted {
    fn new(device: &Path) -> Self {
        let ok = Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(device)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mkfs.ext4");
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .arg(device)
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mount");
        Self(dir)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// Active swap on a device, switched off on drop (also when the test panics), so a failing test
/// never leaves the kernel swapping to a loop device over a deleted temporary file.
struct Swap(PathBuf);

impl Swap {
    fn on(device: &Path) -> Self {
        let out = Command::new("mkswap").arg(device).output().expect("mkswap");
        assert!(
            out.status.success(),
            "mkswap: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("swapon").arg(device).output().expect("swapon");
        if !out.status.success() {
            panic!(
                "swapon {} failed ({}); these tests run as root where swap is permitted",
                device.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Self(device.to_path_buf())
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        let _ = Command::new("swapoff").arg(&self.0).status();
    }
}

/// The line that reports a read-back of a file whose zstd frames carry no checksum.
const VERIFIED_NO_CHECKSUM: &str = "verified: the card reads back identical to the decoded image; the image's zstd frames carry no checksum, so damage inside the .zst file itself would not be detected";
/// The line that reports a read-back of a raw image or one whose frames all carry checksums.
const VERIFIED: &str = "verified: the card reads back identical to the image";
/// What an exclusive open that the kernel refuses (EBUSY) is reported as.
const BUSY: &str = "in use: mounted, swap, or held by another program";

const LEN: usize = 6 * 1024 * 1024 + 4096;

/// Whether the first KiB of a card is still zero: ext4 and mkswap leave it alone, and every test
/// image starts with 4 KiB of pseudo-random bytes, so a write would show there. (The rest of a
/// mounted file system or an active swap area may change under the kernel's hand.)
fn untouched_start(backing: &Path) -> bool {
    let on_card = std::fs::read(backing).expect("read the card");
    on_card[..1024].iter().all(|b| *b == 0)
}

#[test]
fn piped_progress_is_plain_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 1);
    let image = make_image(dir.path(), &bytes, true);
    let target = dir.path().join("card.img");
    let (code, stdout, stderr) = run(pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&target)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped()));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(std::fs::read(&target).expect("read"), bytes);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("written 6.00 MiB of 6.00 MiB, ") && l.ends_with("/s")),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("verified 6.00 MiB of 6.00 MiB, ")),
        "{stderr}"
    );
    assert!(lines.contains(&VERIFIED), "{stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "no bar escapes when piped: {stderr:?}"
    );
    let sha = stdout.trim().strip_prefix("sha256: ").expect("sha line");
    assert_eq!(sha.len(), 64);
}

#[test]
fn a_raw_image_to_a_loop_device_with_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(card) = Loop::new(dir.path(), 8 << 20) else {
        return;
    };
    let bytes = image_bytes(LEN, 2);
    let image = make_image(dir.path(), &bytes, false);
    // A loop device is not removable: refused without --force, with the reason.
    let (code, _, stderr) = run(pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&card.device)
        .arg("--yes"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a removable device"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    let (code, _, stderr) = run(pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&card.device)
        .args(["--yes", "--force"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("warning: --force"), "{stderr}");
    let on_card = std::fs::read(&card.backing).expect("read");
    assert_eq!(&on_card[..LEN], &bytes[..]);
}

#[test]
fn confirmation_is_asked_and_no_means_nothing_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(card) = Loop::new(dir.path(), 8 << 20) else {
        return;
    };
    let image = make_image(dir.path(), &image_bytes(LEN, 3), true);
    let mut child = pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&card.device)
        .arg("--force")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"n\n").expect("answer");
    }
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("Erase {}", card.device.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains("8.00 MiB"),
        "the prompt shows the size: {stderr}"
    );
    assert!(stderr.contains("aborted"), "{stderr}");
    let on_card = std::fs::read(&card.backing).expect("read");
    assert!(on_card.iter().all(|b| *b == 0), "nothing was written");
}

#[test]
fn a_mounted_loop_device_is_refused_even_when_confirmed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(card) = Loop::new(dir.path(), 16 << 20) else {
        return;
    };
    let mounted = Mounted::new(&card.device);
    let image = make_image(dir.path(), &image_bytes(LEN, 4), true);
    let (code, _, stderr) = run(pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&card.device)
        .arg("--yes"));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("it is mounted"), "{stderr}");
    assert!(
        stderr.contains(&*mounted.0.path().to_string_lossy()),
        "names the mount point: {stderr}"
    );
}

#[test]
fn a_device_too_small_is_refused_even_with_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(card) = Loop::new(dir.path(), 4 << 20) else {
        return;
    };
    let image = make_image(dir.path(), &image_bytes(LEN, 5), true);
    let (code, _, stderr) = run(pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&card.device)
        .args(["--yes", "--force"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("smaller than the image"), "{stderr}");
}

#[test]
fn a_truncated_image_is_refused_before_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = make_image(dir.path(), &image_bytes(LEN, 6), true);
    let packed = std::fs::read(&image).expect("read");
    std::fs::write(&image, &packed[..packed.len() / 2]).expect("truncate");
    let target = dir.path().join("card.img");
    let (code, _, stderr) = run(pifleet().arg("flash").arg(&image).arg(&target));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is truncated"), "{stderr}");
    assert!(!target.exists(), "nothing was written");
}

#[test]
fn a_small_image_damaged_inside_a_block_is_refused_before_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = make_image(dir.path(), &image_bytes(LEN, 10), true);
    let mut packed = std::fs::read(&image).expect("read");
    let mid = packed.len() / 2;
    packed[mid] ^= 0x5A;
    packed[mid + 1] ^= 0x5A;
    std::fs::write(&image, &packed).expect("damage");
    let target = dir.path().join("card.img");
    let (code, _, stderr) = run(pifleet().arg("flash").arg(&image).arg(&target));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("is corrupt"), "{stderr}");
    assert!(!target.exists(), "nothing was written");
}

#[test]
fn a_hard_link_to_the_image_is_refused_and_the_image_keeps_its_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 11);
    let image = make_image(dir.path(), &bytes, false);
    let link = dir.path().join("link.img");
    std::fs::hard_link(&image, &link).expect("hard link");
    // --yes and --force: nothing may talk pifleet into truncating the image it is reading.
    let (code, _, stderr) = run(pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&link)
        .args(["--yes", "--force"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "refusing to write {}: it is the image file {} itself (the same inode on the same device)",
            link.display(),
            image.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&image).expect("read image"), bytes);
}

#[test]
fn a_loop_device_backed_by_the_image_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    if !require_loop() {
        return;
    }
    let bytes = image_bytes(LEN, 12);
    let image = make_image(dir.path(), &bytes, false);
    let out = Command::new("losetup")
        .args(["--find", "--show"])
        .arg(&image)
        .output()
        .expect("losetup");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let card = Loop {
        device: PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()),
        backing: image.clone(),
    };
    let (code, _, stderr) = run(pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&card.device)
        .args(["--yes", "--force"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "refusing to write {}: it is a loop device backed by the image file {}",
            card.device.display(),
            image.display()
        )),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&card.backing).expect("read image"), bytes);
}

#[test]
fn an_existing_file_is_overwritten_only_after_yes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 13);
    let image = make_image(dir.path(), &bytes, true);
    let target = dir.path().join("precious.img");
    let precious = b"months of work".repeat(1000);
    std::fs::write(&target, &precious).expect("write target");
    let prompt = format!(
        "Overwrite the existing file {} (13.67 KiB) with {} (6.00 MiB)? [y/N]",
        target.display(),
        image.display()
    );

    let (code, _, stderr) = run_answering(
        Command::new(env!("CARGO_BIN_EXE_pifleet"))
            .arg("flash")
            .arg(&image)
            .arg(&target),
        "n\n",
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains(&prompt), "{stderr}");
    assert!(stderr.contains("aborted; nothing was written"), "{stderr}");
    assert_eq!(std::fs::read(&target).expect("read"), precious, "untouched");

    let (code, _, stderr) = run_answering(
        Command::new(env!("CARGO_BIN_EXE_pifleet"))
            .arg("flash")
            .arg(&image)
            .arg(&target),
        "y\n",
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains(&prompt), "{stderr}");
    assert_eq!(std::fs::read(&target).expect("read"), bytes, "overwritten");

    // No answer at all (stdin is /dev/null) is no.
    std::fs::write(&target, &precious).expect("write target");
    let (code, _, stderr) = run(pifleet().arg("flash").arg(&image).arg(&target));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(std::fs::read(&target).expect("read"), precious, "untouched");

    // --yes: written without a question.
    let (code, _, stderr) = run(pifleet().arg("flash").arg(&image).arg(&target).arg("--yes"));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("Overwrite"), "{stderr}");
    assert_eq!(std::fs::read(&target).expect("read"), bytes, "overwritten");
}

#[test]
fn a_new_file_is_written_without_a_prompt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 14);
    let image = make_image(dir.path(), &bytes, true);
    let target = dir.path().join("new.img");
    let (code, _, stderr) = run(pifleet().arg("flash").arg(&image).arg(&target));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stderr.contains("[y/N]") && !stderr.contains("aborted"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(&target).expect("read"), bytes);
}

#[test]
fn a_mounted_loop_device_is_busy_even_with_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(card) = Loop::new(dir.path(), 16 << 20) else {
        return;
    };
    let _mounted = Mounted::new(&card.device);
    let image = make_image(dir.path(), &image_bytes(LEN, 15), true);
    let (code, _, stderr) = run(pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&card.device)
        .args(["--yes", "--force"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("warning: --force"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot write {}: it is {BUSY}; nothing was written",
            card.device.display()
        )),
        "{stderr}"
    );
    assert!(
        untouched_start(&card.backing),
        "the first bytes of the card are not the image's"
    );
}

#[test]
fn active_swap_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(card) = Loop::new(dir.path(), 16 << 20) else {
        return;
    };
    let _swap = Swap::on(&card.device);
    let image = make_image(dir.path(), &image_bytes(LEN, 16), true);
    let (code, _, stderr) = run(pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&card.device)
        .arg("--yes"));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "it is active swap ({}); swapoff it first",
            card.device.display()
        )),
        "{stderr}"
    );
    // --force overrides the check, not the kernel: swap holds the device exclusively.
    let (code, _, stderr) = run(pifleet()
        .arg("flash")
        .arg(&image)
        .arg(&card.device)
        .args(["--yes", "--force"]));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains(BUSY), "{stderr}");
    assert!(
        untouched_start(&card.backing),
        "the first bytes of the card are not the image's"
    );
}

#[test]
fn the_read_back_says_what_it_proves_about_zstd_checksums() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 17);
    let raw = make_image(dir.path(), &bytes, false);
    for (name, extra, expected, not) in [
        ("checked.img.zst", &[][..], VERIFIED, VERIFIED_NO_CHECKSUM),
        (
            "unchecked.img.zst",
            &["--no-check"][..],
            VERIFIED_NO_CHECKSUM,
            VERIFIED,
        ),
    ] {
        let image = zstd_cli(&raw, name, extra);
        let target = dir.path().join(format!("{name}.out"));
        let (code, _, stderr) = run(pifleet().arg("flash").arg(&image).arg(&target));
        assert_eq!(code, 0, "{stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(lines.contains(&expected), "{name}: {stderr}");
        assert!(!lines.contains(&not), "{name}: {stderr}");
        assert_eq!(std::fs::read(&target).expect("read"), bytes);
    }
    // A raw image has no frames to carry checksums: the read-back is the whole proof.
    let target = dir.path().join("raw.out");
    let (code, _, stderr) = run(pifleet().arg("flash").arg(&raw).arg(&target));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.lines().any(|l| l == VERIFIED), "{stderr}");
}

#[test]
fn without_a_device_it_lists_candidates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = make_image(dir.path(), &image_bytes(4096, 7), false);
    let (code, stdout, stderr) = run(pifleet().arg("flash").arg(&image));
    assert!(code == 0 || code == 1, "{stderr}");
    assert!(
        stdout.contains("removable devices") || stdout.contains("no removable devices"),
        "{stdout}"
    );
}

/// A stand-in for `nix`: records its arguments, fakes `<out>/sd-image/<host>.img.zst` from
/// `$FAKE_IMAGE` and prints the output path, as `nix build --print-out-paths` does.
fn fake_nix(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script = bin.join("nix");
    std::fs::write(
        &script,
        r#"#!/bin/sh
# A current Nix (Debian's 2.8 here is below pifleet's minimum).
if [ "$1" = --version ]; then echo 'nix (Nix) 2.24.14'; exit 0; fi
printf '%s\n' "$@" > "$FAKE_NIX_LOG"
out="$FAKE_NIX_OUT"
mkdir -p "$out/sd-image"
cp "$FAKE_IMAGE" "$out/sd-image/fake-host.img.zst"
echo "$out"
"#,
    )
    .expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

/// The example fleet in `dir`: building a host's image reads the inventory first (its host key and
/// secrets must be ready). Its `admins` line is left out, so no host key is made or written for
/// `rpi-box-03` (which reads no secret): the fake card holds no file system to write one into.
fn example_fleet(dir: &Path) {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fleet.toml");
    let text = std::fs::read_to_string(example).expect("read the example fleet");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("admins = "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(dir.join("fleet.toml"), text).expect("write the example fleet");
}

fn with_fake_nix(cmd: &mut Command, dir: &Path, image: &Path) {
    example_fleet(dir);
    let bin = fake_nix(dir);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .env("FAKE_NIX_LOG", dir.join("nix-argv"))
        .env("FAKE_NIX_OUT", dir.join("out"))
        .env("FAKE_IMAGE", image)
        .current_dir(dir);
}

#[test]
fn image_builds_the_hosts_sd_output_and_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 8);
    let image = make_image(dir.path(), &bytes, true);
    let mut cmd = pifleet();
    cmd.args(["image", "rpi-box-03", "--flake", "/src/fleet"]);
    with_fake_nix(&mut cmd, dir.path(), &image);
    let (code, stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    let argv = std::fs::read_to_string(dir.path().join("nix-argv")).expect("argv");
    let argv: Vec<&str> = argv.lines().collect();
    assert!(argv.contains(&"build"), "{argv:?}");
    assert!(argv.contains(&"/src/fleet#rpi-box-03-sd"), "{argv:?}");
    assert!(argv.contains(&"--print-out-paths"), "{argv:?}");
    let built = dir.path().join("out/sd-image/fake-host.img.zst");
    assert!(
        stdout.contains(&format!("image:  {}", built.display())),
        "{stdout}"
    );
    let size = std::fs::metadata(&image).expect("meta").len();
    assert!(
        stdout.contains(&format!("({size} bytes), zstd; 6.00 MiB on the card")),
        "{stdout}"
    );
    let sha = Command::new("sha256sum")
        .arg(&image)
        .output()
        .expect("sha256sum");
    let sha = String::from_utf8_lossy(&sha.stdout);
    let sha = sha.split_whitespace().next().expect("hash");
    assert!(stdout.contains(&format!("sha256: {sha}")), "{stdout}");
}

#[test]
fn flash_accepts_a_host_name_and_builds_its_image_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 9);
    let image = make_image(dir.path(), &bytes, true);
    let target = dir.path().join("card.img");
    let mut cmd = pifleet();
    cmd.args(["flash", "rpi-box-03"]).arg(&target);
    with_fake_nix(&mut cmd, dir.path(), &image);
    let (code, _, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    let argv = std::fs::read_to_string(dir.path().join("nix-argv")).expect("argv");
    assert!(argv.lines().any(|l| l == ".#rpi-box-03-sd"), "{argv}");
    assert_eq!(std::fs::read(&target).expect("read"), bytes);
}

/// A stand-in `nix` in `dir/bin` running the shell `body`; the PATH with it first.
fn stand_in_nix(dir: &Path, body: &str) -> String {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    std::fs::write(bin.join("nix"), format!("#!/bin/sh\n{body}")).expect("script");
    std::fs::set_permissions(bin.join("nix"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn a_failed_build_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = stand_in_nix(
        dir.path(),
        "if [ \"$1\" = --version ]; then echo 'nix (Nix) 2.24.14'; exit 0; fi\necho 'error: flake has no output' >&2\nexit 1\n",
    );
    example_fleet(dir.path());
    let (code, _, stderr) = run(pifleet()
        .args(["image", "rpi-box-03"])
        .env("PATH", path)
        .current_dir(dir.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("nix build .#rpi-box-03-sd` failed"),
        "{stderr}"
    );
}

#[test]
fn an_old_nix_stops_image_and_flash_before_anything_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    // Debian's nix-bin 2.8: it would fail on --print-out-paths after the questions.
    let path = stand_in_nix(
        dir.path(),
        "if [ \"$1\" = --version ]; then echo 'nix (Nix) 2.8.0'; exit 0; fi\ntouch \"$0.ran\"\nexit 1\n",
    );
    example_fleet(dir.path());
    let target = dir.path().join("card.img");
    for args in [
        vec!["image", "rpi-box-03"],
        vec!["flash", "rpi-box-03", target.to_str().expect("utf-8")],
    ] {
        let (code, _, stderr) = run(pifleet()
            .args(&args)
            .env("PATH", &path)
            .current_dir(dir.path()));
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(
            stderr.trim(),
            "error: Nix 2.8.0 (`nix`) is too old: pifleet needs Nix 2.18 or newer; `pifleet doctor` shows how to upgrade",
            "{args:?}"
        );
        assert!(!bin.join("nix.ran").exists(), "{args:?}: nix ran a build");
        assert!(!target.exists(), "{args:?}");
    }
}

#[test]
fn flash_refuses_an_unknown_host_before_building() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = dir.path().join("unused.img.zst");
    let mut cmd = pifleet();
    with_fake_nix(&mut cmd, dir.path(), &image);
    let target = dir.path().join("card.img");
    let (code, _, stderr) = run(cmd
        .args(["flash", "no-such-host"])
        .arg(&target)
        .current_dir(dir.path()));
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("no-such-host"), "{stderr}");
    assert!(
        !dir.path().join("nix-argv").exists(),
        "a build started: {stderr}"
    );
    assert!(!target.exists());
}

#[test]
fn image_as_json_reports_path_sizes_and_hash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 8);
    let image = make_image(dir.path(), &bytes, true);
    let mut cmd = pifleet();
    cmd.args(["image", "rpi-box-03", "--format", "json"]);
    with_fake_nix(&mut cmd, dir.path(), &image);
    let (code, stdout, stderr) = run(&mut cmd);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let built = dir.path().join("out/sd-image/fake-host.img.zst");
    assert_eq!(report["host"], "rpi-box-03");
    assert_eq!(report["image"], built.to_str().expect("utf-8"));
    assert_eq!(report["compression"], "zstd");
    assert_eq!(report["card_bytes"], bytes.len() as u64);
    assert_eq!(
        report["bytes"],
        std::fs::metadata(&built).expect("built").len()
    );
    let sha = Command::new("sha256sum")
        .arg(&built)
        .output()
        .expect("sha256sum");
    let sha = String::from_utf8_lossy(&sha.stdout);
    assert_eq!(
        report["sha256"],
        sha.split_whitespace().next().expect("hash")
    );
}

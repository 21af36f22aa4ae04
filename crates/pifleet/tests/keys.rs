//! `pifleet keys inject` end to end: real ext4 file systems made with `mkfs.ext4 -d` from a
//! NixOS-like tree, on image files, partitioned images and loop devices, checked with `debugfs`.
//!
//! Loop devices and mounts need root; where `losetup` or `mount` are not permitted those tests skip,
//! unless `PIFLEET_REQUIRE_LOOP=1` (set by `scripts/test`), where they fail. `mkfs.ext4`, `debugfs`
//! (e2fsprogs), `sfdisk` (fdisk) and `mkfs.vfat` (dosfstools) are required: scripts/test installs them.

mod card_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use card_support::*;

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBEv3Vx5vMKgQGBQrB4MP8xYtrkZ6lL0DC5ecS0kGVH alice@laptop";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl bob@desk";
const FP_A: &str = "SHA256:";

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

fn assert_keys_installed(spec: &str, content: &str) {
    assert_eq!(
        stat(spec, "/home/nixos/.ssh"),
        Some(("directory".into(), "0700".into(), 1000, 100))
    );
    assert_eq!(
        stat(spec, "/home/nixos/.ssh/authorized_keys"),
        Some(("regular".into(), "0600".into(), 1000, 100))
    );
    assert_eq!(
        debugfs(spec, "cat /home/nixos/.ssh/authorized_keys"),
        content
    );
    assert_eq!(
        stat(spec, "/home/nixos/.ssh/.authorized_keys.pifleet-new"),
        None,
        "no temporary file is left behind"
    );
    let fsck = Command::new("e2fsck")
        .args(["-fn", spec])
        .output()
        .expect("run e2fsck");
    assert!(
        fsck.status.success(),
        "e2fsck finds the file system clean: {}",
        String::from_utf8_lossy(&fsck.stdout)
    );
}

fn key_file(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("key file");
    path
}

#[test]
fn image_file_gets_keys_with_owner_and_modes_and_twice_adds_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = ext4_image(dir.path(), Layout::Booted);
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A, "", "# a comment", KEY_B]);
    let spec = image.to_string_lossy().into_owned();

    let (code, out, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("NixOS root, edited with debugfs"), "{out}");
    assert!(out.contains("label NIXOS_SD"), "{out}");
    assert!(
        out.contains("created /home/nixos/.ssh (owner 1000:100, mode 700)"),
        "{out}"
    );
    assert!(
        out.contains("wrote /home/nixos/.ssh/authorized_keys (owner 1000:100, mode 600)"),
        "{out}"
    );
    assert!(out.contains("ssh-ed25519 alice@laptop"), "{out}");
    assert!(out.contains("ssh-ed25519 bob@desk"), "{out}");
    assert_eq!(out.matches("added").count(), 2, "{out}");
    assert!(out.contains(FP_A), "fingerprints are shown: {out}");
    assert_keys_installed(&spec, &format!("{KEY_A}\n{KEY_B}\n"));

    // Twice: the same key under another comment is recognised; nothing is rewritten.
    let renamed = key_file(
        dir.path(),
        "renamed.pub",
        &[&KEY_A.replace("alice@laptop", "alice@other")],
    );
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys)
        .arg("--key")
        .arg(&renamed));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("nothing to do"), "{out}");
    assert_eq!(out.matches("present").count(), 2, "{out}");
    assert!(!out.contains("added"), "{out}");
    assert_keys_installed(&spec, &format!("{KEY_A}\n{KEY_B}\n"));
}

#[test]
fn existing_file_is_kept_fixed_and_extended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = tree(dir.path(), Layout::Booted);
    let ssh = root.join("home/nixos/.ssh");
    std::fs::create_dir(&ssh).expect("mkdir");
    let old = format!(
        "# by hand\n{}",
        KEY_A.replace("alice@laptop", "old-comment")
    );
    std::fs::write(ssh.join("authorized_keys"), &old).expect("write");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        std::fs::set_permissions(
            ssh.join("authorized_keys"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
    }
    // Owned by root as mkfs copies it: inject sets the owner.
    let image = dir.path().join("root.img");
    tool(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-d",
            &root.to_string_lossy(),
            &image.to_string_lossy(),
            "16M",
        ],
    );
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A, KEY_B]);
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("fixed /home/nixos/.ssh (owner 1000:100, mode 700, was owner 0:0, mode 755)"),
        "{out}"
    );
    assert!(
        out.contains("rewrote /home/nixos/.ssh/authorized_keys (owner 1000:100, mode 600)"),
        "{out}"
    );
    assert!(out.contains("present SHA256:"), "{out}");
    assert_keys_installed(&image.to_string_lossy(), &format!("{old}\n{KEY_B}\n"));
}

#[test]
fn partitioned_image_uses_the_ext4_partition_not_the_fat_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = partitioned_image(dir.path(), Some(Layout::Booted));
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A]);
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("sd.img (partition 2)"), "{out}");
    let spec = format!("{}?offset={ROOT_START}", image.display());
    assert_keys_installed(&spec, &format!("{KEY_A}\n"));
    // The firmware partition is untouched: still a FAT boot sector.
    let bytes = std::fs::read(&image).expect("read");
    let fat = &bytes[FAT_START as usize..FAT_START as usize + 512];
    assert_eq!(&fat[510..], &[0x55, 0xAA]);
}

#[test]
fn refuses_fat_and_tables_without_ext4() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A]);

    let fat = dir.path().join("fat.img");
    tool("mkfs.vfat", &["-C", &fat.to_string_lossy(), "16384"]);
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&fat)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("is a FAT file system"), "{err}");

    let only_fat = partitioned_image(dir.path(), None);
    let (code, _, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&only_fat)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("has no ext4 partition (partition 1: FAT, partition 2: FAT)"),
        "{err}"
    );
}

#[test]
fn refuses_an_ext4_that_is_not_nixos() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = ext4_image(dir.path(), Layout::NotNixos);
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A]);
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains("does not look like a NixOS root file system: it has no /nix/store"),
        "{err}"
    );
    assert_eq!(
        stat(&image.to_string_lossy(), "/home/nixos/.ssh"),
        None,
        "nothing written"
    );
}

#[test]
fn missing_home_explains_boot_once_and_create_home_creates_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = ext4_image(dir.path(), Layout::Fresh);
    let spec = image.to_string_lossy().into_owned();
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A]);
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("/home/nixos does not exist"), "{err}");
    assert!(err.contains("boots for the first time"), "{err}");
    assert!(err.contains("--create-home"), "{err}");
    assert_eq!(stat(&spec, "/home"), None, "nothing written");

    let (code, out, err) = run(pifleet()
        .args(["keys", "inject", "--create-home"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("created /home/nixos (owner 1000:100, mode 700)"),
        "{out}"
    );
    assert_eq!(
        stat(&spec, "/home"),
        Some(("directory".into(), "0755".into(), 0, 0))
    );
    assert_eq!(
        stat(&spec, "/home/nixos"),
        Some(("directory".into(), "0700".into(), 1000, 100))
    );
    assert_keys_installed(&spec, &format!("{KEY_A}\n"));
}

#[test]
fn other_user_and_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = ext4_image(dir.path(), Layout::Booted);
    let spec = image.to_string_lossy().into_owned();
    let keys = key_file(dir.path(), "keys.pub", &[KEY_B]);
    let (code, out, err) = run(pifleet()
        .args([
            "keys", "inject", "--user", "pi", "--uid", "1001", "--gid", "1001",
        ])
        .args(["--create-home"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        stat(&spec, "/home/pi/.ssh/authorized_keys"),
        Some(("regular".into(), "0600".into(), 1001, 1001))
    );
    let (code, _, err) = run(pifleet()
        .args(["keys", "inject", "--user", "../root"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a valid user name"), "{err}");
}

const FLEET: &str = r#"
[fleet]
state_version = "26.05"

[ssh]
root_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHBEv3Vx5vMKgQGBQrB4MP8xYtrkZ6lL0DC5ecS0kGVH root@workstation"]

[users.deploy]
ssh_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl deploy@workstation"]
sudo = "no-password"

[hosts.rpi-box-03]
board = "rpi4"
address = "192.168.1.43"
users = ["deploy"]
deploy = { user = "deploy" }

[hosts.rpi-root]
board = "rpi4"
address = "192.168.1.44"
"#;

#[test]
fn keys_from_the_inventory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, FLEET).expect("fleet");
    let image = ext4_image(dir.path(), Layout::Booted);
    let spec = image.to_string_lossy().into_owned();

    let (code, out, err) = run(pifleet()
        .args(["keys", "inject", "--from-inventory", "rpi-box-03", "-f"])
        .arg(&fleet)
        .arg(&image));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("deploy@workstation"), "{out}");
    assert_keys_installed(
        &spec,
        &format!("{KEY_B}\n").replace("bob@desk", "deploy@workstation"),
    );

    // A host deploying as root brings the root keys.
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject", "--from-inventory", "rpi-root", "-f"])
        .arg(&fleet)
        .arg(&image));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("root@workstation"), "{out}");

    let (code, _, err) = run(pifleet()
        .args(["keys", "inject", "--from-inventory", "nope", "-f"])
        .arg(&fleet)
        .arg(&image));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no host nope"), "{err}");

    // No keys at all is a usage error.
    let (code, _, err) = run(pifleet().args(["keys", "inject"]).arg(&image));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--key"), "{err}");
}

#[test]
fn private_key_files_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = ext4_image(dir.path(), Layout::Booted);
    let private = key_file(
        dir.path(),
        "id_ed25519",
        &[
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            "b3BlbnNzaC1rZXktdjEAAAAA",
            "-----END OPENSSH PRIVATE KEY-----",
        ],
    );
    let (code, _, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&private));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("PRIVATE key"), "{err}");
    // It came from the command line: the message says --key, names the .pub, and never blames
    // the inventory.
    assert!(err.contains("--key"), "{err}");
    assert!(err.contains("id_ed25519.pub"), "{err}");
    assert!(!err.contains("inventory"), "{err}");
    assert!(!err.contains("b3BlbnNzaC1rZXktdjEAAAAA"), "{err}");
    assert_eq!(stat(&image.to_string_lossy(), "/home/nixos/.ssh"), None);
}

#[test]
fn without_debugfs_it_mounts_and_unmounts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = ext4_image(dir.path(), Layout::Booted);
    let spec = image.to_string_lossy().into_owned();
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A]);
    let (code, out, err) = run(pifleet()
        .env("PIFLEET_DEBUGFS", dir.path().join("no-debugfs"))
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    if code != 0 && err.contains("cannot mount") {
        support::unavailable(&format!("mount failed: {err}"));
        return;
    }
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("debugfs (e2fsprogs) was not found"), "{err}");
    assert!(out.contains("edited with mounted at"), "{out}");
    assert!(
        !support::mounted_anywhere(&image),
        "the image is unmounted afterwards"
    );
    assert_keys_installed(&spec, &format!("{KEY_A}\n"));
}

#[test]
fn without_debugfs_a_partition_is_mounted_at_its_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = partitioned_image(dir.path(), Some(Layout::Booted));
    let keys = key_file(dir.path(), "keys.pub", &[KEY_B]);
    let (code, out, err) = run(pifleet()
        .env("PIFLEET_DEBUGFS", dir.path().join("no-debugfs"))
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    if code != 0 && err.contains("cannot mount") {
        support::unavailable(&format!("mount failed: {err}"));
        return;
    }
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("sd.img (partition 2)"), "{out}");
    assert!(!support::mounted_anywhere(&image), "unmounted afterwards");
    let spec = format!("{}?offset={ROOT_START}", image.display());
    assert_keys_installed(&spec, &format!("{KEY_B}\n"));
}

#[test]
fn loop_device_with_partitions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = partitioned_image(dir.path(), Some(Layout::Booted));
    let Some(lo) = support::Loop::attach(&image, true) else {
        return;
    };
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A]);
    let device = lo.device.to_string_lossy().into_owned();

    // A block device is confirmed first; no answer (stdin closed) writes nothing.
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject", &device, "--key"])
        .arg(&keys));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("aborted; nothing was written"), "{err}");
    assert!(out.contains("will change:"), "{out}");

    let (code, out, err) = run(pifleet()
        .args(["keys", "inject", "--yes", &device, "--key"])
        .arg(&keys));
    assert_eq!(code, 0, "{out}\n{err}");
    // The kernel's partition node when it has one, else the partition by offset on the disk.
    let spec = if out.contains(&format!("{device}p2:")) {
        format!("{device}p2")
    } else {
        assert!(out.contains(&format!("{device} (partition 2)")), "{out}");
        format!("{device}?offset={ROOT_START}")
    };
    assert_keys_installed(&spec, &format!("{KEY_A}\n"));
}

#[test]
fn mounted_devices_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = ext4_image(dir.path(), Layout::Booted);
    let Some(lo) = support::Loop::attach(&image, false) else {
        return;
    };
    let Some(mounted) = support::Mounted::new(&lo.device) else {
        return;
    };
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A]);
    let mount_point = mounted.dir.path().display().to_string();

    let (code, out, err) = run(pifleet()
        .args(["keys", "inject", "--yes"])
        .arg(&lo.device)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(err.contains("refusing to touch"), "{err}");
    assert!(err.contains(&mount_point), "names the mount point: {err}");

    // The image file behind the mounted loop device is refused too.
    let (code, _, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("attached as {}", lo.device.display())),
        "{err}"
    );
    assert!(err.contains(&mount_point), "{err}");
    assert!(!mounted.dir.path().join("home/nixos/.ssh").exists());
}

#[test]
fn gpt_with_4096_byte_sectors_in_an_image_and_on_a_loop_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = image_4k(dir.path(), 'g');
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A]);
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("sd4k.img (partition 2)"), "{out}");
    let spec = format!("{}?offset={ROOT_START_4K}", image.display());
    assert_keys_installed(&spec, &format!("{KEY_A}\n"));

    let Some(lo) = support::Loop::attach_sized(&image, true, Some(4096)) else {
        return;
    };
    let device = lo.device.to_string_lossy().into_owned();
    let more = key_file(dir.path(), "more.pub", &[KEY_B]);
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject", "--yes", &device, "--key"])
        .arg(&more));
    assert_eq!(code, 0, "{out}\n{err}");
    let spec = if out.contains(&format!("{device}p2:")) {
        format!("{device}p2")
    } else {
        assert!(out.contains(&format!("{device} (partition 2)")), "{out}");
        format!("{device}?offset={ROOT_START_4K}")
    };
    assert_keys_installed(&spec, &format!("{KEY_A}\n{KEY_B}\n"));
}

#[test]
fn mbr_on_a_loop_device_with_4096_byte_sectors() {
    // MBR entries count the device's logical sectors, which only sysfs tells: read as 512-byte
    // sectors, partition 2 would be at byte 2228224, inside the empty partition 1.
    let dir = tempfile::tempdir().expect("tempdir");
    let image = image_4k(dir.path(), 'o');
    let Some(lo) = support::Loop::attach_sized(&image, true, Some(4096)) else {
        return;
    };
    let device = lo.device.to_string_lossy().into_owned();
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A]);
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject", "--yes", &device, "--key"])
        .arg(&keys));
    assert_eq!(code, 0, "{out}\n{err}");
    let spec = if out.contains(&format!("{device}p2:")) {
        format!("{device}p2")
    } else {
        assert!(out.contains(&format!("{device} (partition 2)")), "{out}");
        format!("{device}?offset={ROOT_START_4K}")
    };
    assert_keys_installed(&spec, &format!("{KEY_A}\n"));
}

#[test]
fn damaged_gpt_uses_the_backup_with_a_warning_then_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = partitioned_image_with(dir.path(), "gpt", Some(Layout::Booted));
    let keys = key_file(dir.path(), "keys.pub", &[KEY_A]);
    let mut bytes = std::fs::read(&image).expect("read");
    assert_eq!(&bytes[512..520], b"EFI PART");
    // One bit of the primary header's entries LBA: its CRC32 no longer matches.
    bytes[512 + 72] ^= 0x01;
    std::fs::write(&image, &bytes).expect("write");
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains(
            "the primary GPT is damaged (the header at LBA 1 fails its CRC32 check); using its backup copy"
        ),
        "{err}"
    );
    assert!(out.contains("sd.img (partition 2)"), "{out}");
    let spec = format!("{}?offset={ROOT_START}", image.display());
    assert_keys_installed(&spec, &format!("{KEY_A}\n"));

    // The backup header, at the last LBA of the 48 MiB image, damaged too: nothing is guessed.
    let backup = (48 << 20) - 512;
    assert_eq!(&bytes[backup..backup + 8], b"EFI PART");
    bytes[backup + 72] ^= 0x01;
    std::fs::write(&image, &bytes).expect("write");
    let (code, out, err) = run(pifleet()
        .args(["keys", "inject"])
        .arg(&image)
        .arg("--key")
        .arg(&keys));
    assert_eq!(code, 2, "{out}\n{err}");
    assert!(
        err.contains(&format!(
            "cannot use the partition table of {}: the GPT is damaged (512-byte sectors): primary: the header at LBA 1 fails its CRC32 check; backup: the header at LBA 98303 fails its CRC32 check",
            image.display()
        )),
        "{err}"
    );
}

//! `pifleet doctor` end to end on fake machines: a root directory holding nix.conf and binfmt_misc
//! (`--root`), a HOME with SSH keys, and a PATH with a stand-in `nix` script
//! (the real Nix here is too old, which is itself one of the failures tested).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const EDUARDO: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBqeFyT5oHWhCY/SKllnU80NkJK46f+SBkowTwVuJjhq";

fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

fn script(path: &Path, text: &str) {
    write(path, text);
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn example_fleet() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fleet.toml")
}

fn doctor(dir: &Path, inventory: &Path) -> (i32, String) {
    doctor_with(dir, inventory, &[])
}

fn doctor_with(dir: &Path, inventory: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pifleet"))
        .arg("doctor")
        .args(extra)
        .arg("--root")
        .arg(dir.join("root"))
        .arg("--inventory")
        .arg(inventory)
        .env("HOME", dir.join("home"))
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("NIX_CONFIG")
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", dir.join("bin").display()),
        )
        .stdin(Stdio::null())
        .output()
        .expect("run pifleet doctor");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn line<'a>(stdout: &'a str, name: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(name)))
        .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))
}

#[test]
fn a_ready_workstation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(
        &d.join("root/etc/nix/nix.conf"),
        "experimental-features = nix-command flakes\nextra-platforms = aarch64-linux\n",
    );
    write(&d.join("root/proc/sys/fs/binfmt_misc/status"), "enabled\n");
    write(
        &d.join("root/proc/sys/fs/binfmt_misc/qemu-aarch64"),
        "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: POCF\noffset 0\nmagic 7f454c460201010000000000000000000200b700\n",
    );
    write(
        &d.join("home/.ssh/id_ed25519.pub"),
        &format!("{EDUARDO} eduardo@laptop\n"),
    );
    script(&d.join("bin/nix"), "#!/bin/sh\necho 'nix (Nix) 2.31.2'\n");
    let (code, stdout) = doctor(d, &example_fleet());
    for name in ["nix", "flakes", "aarch64", "ssh-keys"] {
        assert!(line(&stdout, name).starts_with("ok "), "{stdout}");
    }
    assert!(
        line(&stdout, "ssh-keys").contains("id_ed25519.pub"),
        "{stdout}"
    );
    // Free space is the test machine's own: a tiny disk may fail that one check.
    let disk_failed = line(&stdout, "disk").starts_with("FAIL");
    assert_eq!(code, if disk_failed { 1 } else { 0 }, "{stdout}");
}

#[test]
fn a_fresh_ubuntu_machine_gets_fixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir_all(d.join("root")).expect("root");
    fs::create_dir_all(d.join("bin")).expect("bin");
    write(
        &d.join("home/.ssh/id_rsa.pub"),
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAB other@laptop\n",
    );
    script(&d.join("bin/nix"), "#!/bin/sh\necho 'nix (Nix) 2.8.0'\n");
    let (code, stdout) = doctor(d, &example_fleet());
    assert_eq!(code, 1, "{stdout}");
    for name in ["nix", "flakes", "aarch64", "ssh-keys"] {
        assert!(line(&stdout, name).starts_with("FAIL"), "{name}: {stdout}");
    }
    assert!(
        line(&stdout, "nix").contains("Nix 2.8.0 is too old"),
        "{stdout}"
    );
    let fixes_ubuntu = stdout.matches("fix on Ubuntu: ").count();
    let fixes_nixos = stdout.matches("fix on NixOS:  ").count();
    assert!(fixes_ubuntu >= 4 && fixes_ubuntu == fixes_nixos, "{stdout}");
    assert!(stdout.contains("qemu-user-static"), "{stdout}");
    assert!(stdout.contains("boot.binfmt.emulatedSystems"), "{stdout}");
}

#[test]
fn without_an_inventory_ssh_keys_only_warn() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir_all(d.join("root")).expect("root");
    write(
        &d.join("home/.ssh/id_ed25519.pub"),
        &format!("{EDUARDO} me\n"),
    );
    let (_, stdout) = doctor(d, &d.join("no-fleet.toml"));
    assert!(line(&stdout, "ssh-keys").starts_with("warn"), "{stdout}");
}

#[test]
fn json_output_has_one_record_per_check_with_its_fixes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::create_dir_all(d.join("root")).expect("root");
    fs::create_dir_all(d.join("bin")).expect("bin");
    script(&d.join("bin/nix"), "#!/bin/sh\necho 'nix (Nix) 2.8.0'\n");
    let (code, stdout) = doctor_with(d, &example_fleet(), &["--format", "json"]);
    assert_eq!(code, 1, "{stdout}");
    let checks: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let nix = checks
        .as_array()
        .expect("a list")
        .iter()
        .find(|c| c["name"] == "nix")
        .expect("the nix check");
    assert_eq!(nix["status"], "fail");
    assert!(
        nix["summary"]
            .as_str()
            .is_some_and(|s| s.contains("2.8.0 is too old")),
        "{nix}"
    );
    assert!(
        nix["fix"]["ubuntu"].is_string() && nix["fix"]["nixos"].is_string(),
        "{nix}"
    );
}

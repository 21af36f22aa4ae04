//! `pifleet deploy --dry-run`: the exact plan (hosts, and each host's commands in order) for a test
//! fleet, snapshot-tested. Nothing runs and nothing is contacted; the addresses are loopback ones
//! anyway. (The real nixos-rebuild can't run here; the other deploy tests use a recording stand-in.)

#![allow(clippy::unwrap_used, reason = "tests: a failure is the test failing")]

mod deploy_support;

use deploy_support::{EXAMPLE_KEY, Lab, text};

fn fleet() -> String {
    format!(
        r#"
[fleet]
state_version = "26.05"

[ssh]
permit_root_login = "prohibit-password"
root_keys = ["{EXAMPLE_KEY}"]

[users.deploy]
ssh_keys = ["{EXAMPLE_KEY}"]
sudo = "no-password"

[hosts.kitchen-pi]
board = "rpi4"
address = "127.0.0.2"
tags = ["edge"]

[hosts.garden-zero]
board = "zero2w"
address = "127.0.0.3"
users = ["deploy"]
deploy = {{ user = "deploy" }}
tags = ["edge"]
wifi = {{ ssid = "garden", secrets_file = "/var/lib/secrets/wifi.env" }}

[hosts.vps]
board = "x86_64"
address = "127.0.0.4"
users = ["deploy"]
deploy = {{ user = "deploy", build_on = "target" }}
ssh = {{ port = 2222 }}
tags = ["cloud"]

[hosts.nas]
board = "generic-aarch64"
address = "127.0.0.5"
deploy = {{ build_on = "target" }}
"#
    )
}

fn snapshot(name: &str, args: &[&str]) {
    let lab = Lab::new();
    lab.fleet(&fleet());
    let out = lab.pifleet(args, &[("NIX_SSHOPTS", "")]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    // Nothing ran: the stand-in would have recorded it.
    assert!(lab.calls().is_empty());
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(format!("pifleet {}", args.join(" ")));
    settings.bind(|| insta::assert_snapshot!(name, stdout));
}

#[test]
fn dry_run_every_host() {
    snapshot("deploy__dry_run_all", &["deploy", "--dry-run"]);
}

#[test]
fn dry_run_tag_test_action_local_build() {
    snapshot(
        "deploy__dry_run_edge_test",
        &[
            "deploy",
            "--dry-run",
            "@edge",
            "vps",
            "--action",
            "test",
            "--build-on",
            "local",
            "--flake",
            "github:me/fleet",
            "--connect-timeout",
            "5",
        ],
    );
}

#[test]
fn dry_run_without_magic_rollback_and_boot() {
    snapshot(
        "deploy__dry_run_no_magic_rollback",
        &["deploy", "kitchen-pi", "--dry-run", "--no-magic-rollback"],
    );
    snapshot(
        "deploy__dry_run_boot",
        &["deploy", "kitchen-pi", "--dry-run", "--action", "boot"],
    );
}

/// Canaries first; `--reboot` with a one-shot GRUB entry on the VPS, and committing first on the
/// Pi (extlinux has no one-shot boot), which needs the acknowledgement.
#[test]
fn dry_run_reboot_and_canary() {
    snapshot(
        "deploy__dry_run_reboot_canary",
        &[
            "deploy",
            "vps",
            "kitchen-pi",
            "--dry-run",
            "--reboot",
            "--commit-before-reboot",
            "--canary",
            "1",
        ],
    );
    let lab = Lab::new();
    lab.fleet(&fleet());
    let out = lab.pifleet(&["deploy", "kitchen-pi", "--dry-run", "--reboot"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("`kitchen-pi` boots with extlinux, which has no one-shot boot")
            && stderr.contains("Pass --commit-before-reboot to accept that"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn rollback_dry_run() {
    snapshot(
        "deploy__rollback_dry_run",
        &["rollback", "garden-zero", "vps", "--dry-run"],
    );
}

#[test]
fn unknown_host_and_drift_are_refused() {
    let lab = Lab::new();
    lab.fleet(&fleet());
    let out = lab.pifleet(&["deploy", "--dry-run", "attic"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "no host `attic` in the inventory (hosts: garden-zero, kitchen-pi, nas, vps)"
        ),
        "{stderr}"
    );

    // The inventory changed after gen: hosts/ is stale, deploy stops before anything runs.
    let changed = fleet().replace("address = \"127.0.0.5\"", "address = \"127.0.0.6\"");
    std::fs::write(lab.path("fleet.toml"), changed).unwrap();
    let out = lab.pifleet(&["deploy", "--dry-run"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("run `nix run .#gen`"), "{stderr}");
}

#[test]
fn inventory_errors_stop_deploy() {
    let lab = Lab::new();
    lab.fleet(&fleet());
    let broken = fleet().replace("board = \"rpi4\"", "board = \"rpi9\"");
    std::fs::write(lab.path("fleet.toml"), broken).unwrap();
    let out = lab.pifleet(&["deploy", "--dry-run"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("fix them first"), "{stderr}");
}

#[test]
fn untracked_hosts_are_warned_about() {
    let lab = Lab::new();
    lab.fleet(&fleet());
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(lab.dir.path())
            .output()
    };
    if !git(&["init", "-q"]).is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no git");
        return;
    }
    let out = lab.pifleet(&["deploy", "--dry-run", "nas"], &[("NIX_SSHOPTS", "")]);
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "warning: git does not track hosts/default.nix, hosts/garden-zero/default.nix,"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("`git add hosts`"), "{stderr}");

    git(&["add", "hosts"]).unwrap();
    let out = lab.pifleet(&["deploy", "--dry-run", "nas"], &[("NIX_SSHOPTS", "")]);
    let (_, stderr) = text(&out);
    assert!(!stderr.contains("does not track"), "{stderr}");
}

#[test]
fn deploy_with_an_old_nix_stops_before_the_preflight() {
    let lab = Lab::new();
    lab.fleet(&fleet());
    // Debian's Nix 2.8: refused first, with the version found and needed.
    std::fs::write(lab.path("bin/nix"), "#!/bin/sh\necho 'nix (Nix) 2.8.0'\n").unwrap();
    let out = lab.pifleet(&["deploy", "nas"], &[]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "error: Nix 2.8.0 (`nix`) is too old: pifleet needs Nix 2.18 or newer; `pifleet doctor` shows how to upgrade"
    );
    assert!(!lab.path("xdg-state").exists(), "{stderr}");
    // A dry run needs no Nix.
    let out = lab.pifleet(&["deploy", "--dry-run", "nas"], &[("NIX_SSHOPTS", "")]);
    assert!(out.status.success(), "{}", text(&out).1);
}

#[test]
fn dry_run_as_json_lists_each_hosts_steps_with_argv() {
    let lab = Lab::new();
    lab.fleet(&fleet());
    let out = lab.pifleet(
        &["deploy", "--dry-run", "--format", "json", "vps"],
        &[("NIX_SSHOPTS", "")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let plan: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let hosts = plan["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["host"], "vps");
    assert_eq!(hosts[0]["target"]["port"], 2222);
    let steps: Vec<&str> = hosts[0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["step"].as_str().expect("step name"))
        .collect();
    let at = |name: &str| {
        steps
            .iter()
            .position(|s| *s == name)
            .unwrap_or_else(|| panic!("no {name} in {steps:?}"))
    };
    assert!(at("preflight") < at("arm"), "{steps:?}");
    assert!(
        at("arm") < at("activate") && at("activate") < at("confirm"),
        "{steps:?}"
    );
    assert!(
        at("confirm") < at("disarm") && at("disarm") < at("commit"),
        "{steps:?}"
    );
    for step in hosts[0]["steps"].as_array().expect("steps") {
        assert!(
            step["argv"][0].as_str().is_some_and(|p| !p.is_empty()),
            "{step}"
        );
    }
}

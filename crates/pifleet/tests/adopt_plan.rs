//! `pifleet adopt --dry-run`: the plan for the first deploy through a bootstrap login (with
//! `--sudo` for a non-root one) and the lockout analysis across the switch, snapshot-tested.
//! Nothing runs and nothing is contacted; the addresses are loopback ones anyway. nixos-rebuild and
//! nixos-generate-config can't run here: `deploy_support` puts a recording stand-in for
//! nixos-rebuild on PATH, and these tests assert it recorded nothing.

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

# A stock Pi image, reached as its `nixos` user; the fleet deploys as `deploy`.
[hosts.kitchen-pi]
board = "rpi4"
address = "127.0.0.2"
users = ["deploy"]
deploy = {{ user = "deploy" }}
hardware_config = true

# A VPS reached as root on the provider's port 22; the fleet moves sshd to 2222.
[hosts.vps]
board = "x86_64"
address = "127.0.0.4"
deploy = {{ build_on = "target" }}
ssh = {{ port = 2222 }}
hardware_config = true
modules = ["modules/vps-boot.nix"]

# Not yet importing hardware.nix.
[hosts.new-box]
board = "x86_64"
address = "127.0.0.5"

# Root deploys, but root gets no key from the inventory (homedir keys are read, but pifleet can't
# know of any): once `nixos` is gone, nobody could get in.
[hosts.shaky]
board = "rpi4"
address = "127.0.0.6"
hardware_config = true
ssh = {{ root_keys = [], authorized_keys_in_homedir = true }}
allow = [{{ code = "authorized_keys_in_homedir", reason = "test" }}]
"#
    )
}

fn run(name: &str, args: &[&str], code: i32) {
    let lab = Lab::new();
    lab.fleet(&fleet());
    let out = lab.pifleet(args, &[("NIX_SSHOPTS", "")]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
    // Nothing ran: the stand-in would have recorded it, and nothing was written.
    assert!(lab.calls().is_empty());
    assert!(!lab.path("hosts/kitchen-pi/hardware.nix").exists());
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path("../../../snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings.set_description(format!("pifleet {}", args.join(" ")));
    settings.bind(|| insta::assert_snapshot!(name, stdout));
}

#[test]
fn dry_run_stock_image_nixos_user_gets_sudo() {
    run(
        "adopt__dry_run_nixos",
        &[
            "adopt",
            "kitchen-pi",
            "--via",
            "nixos@127.0.0.2",
            "--dry-run",
        ],
        0,
    );
}

#[test]
fn dry_run_vps_as_root_on_another_port() {
    run(
        "adopt__dry_run_root",
        &[
            "adopt",
            "vps",
            "--via",
            "root@127.0.0.4",
            "--port",
            "22",
            "--action",
            "test",
            "--connect-timeout",
            "5",
            "--dry-run",
        ],
        0,
    );
}

#[test]
fn dry_run_without_hardware_config_stops_after_the_fetch() {
    run(
        "adopt__dry_run_without_hardware_config",
        &["adopt", "new-box", "--via", "root@127.0.0.5", "--dry-run"],
        // The plan stops before deploying, so the dry run says so in its exit code.
        1,
    );
}

#[test]
fn dry_run_shows_the_transition_lockout() {
    run(
        "adopt__dry_run_lockout",
        &["adopt", "shaky", "--via", "nixos@127.0.0.6", "--dry-run"],
        1,
    );
}

#[test]
fn a_transition_lockout_is_refused_before_anything_is_contacted() {
    let lab = Lab::new();
    lab.fleet(&fleet());
    // Nothing listens on 127.0.0.6 port 9; the refusal comes first anyway.
    let out = lab.pifleet(
        &[
            "adopt",
            "shaky",
            "--via",
            "nixos@127.0.0.6",
            "--port",
            "9",
            "--yes",
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("refusing to adopt `shaky`"), "{stderr}");
    assert!(
        stderr.contains("`nixos` is not in hosts.shaky.users"),
        "{stderr}"
    );
    assert!(stderr.contains("root gets no SSH key"), "{stderr}");
    assert!(!stderr.contains("$ ssh"), "{stderr}");
    assert!(lab.calls().is_empty());
}

#[test]
fn usage_errors() {
    let lab = Lab::new();
    lab.fleet(&fleet());
    for (args, needle) in [
        (
            &["adopt", "nope", "--via", "root@127.0.0.2", "--dry-run"][..],
            "no host `nope` in the inventory",
        ),
        (
            &["adopt", "vps", "--via", "127.0.0.4", "--dry-run"][..],
            "expected USER@ADDRESS",
        ),
        (
            &[
                "adopt",
                "vps",
                "--via",
                "root@-oProxyCommand=x",
                "--dry-run",
            ][..],
            "--via `root@-oProxyCommand=x`",
        ),
    ] {
        let out = lab.pifleet(args, &[]);
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

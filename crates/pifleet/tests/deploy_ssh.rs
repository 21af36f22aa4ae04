//! The SSH preflight against real `sshd` instances on loopback addresses: a reachable host passes,
//! a closed port and a rejected key are reported clearly, quickly, and only fail their own host.
//! nixos-rebuild is a recording stand-in (the real one can't run here); see `deploy_support`.

#![allow(clippy::unwrap_used, reason = "tests: a failure is the test failing")]

mod deploy_support;

use deploy_support::{Lab, ssh_available, text};

fn fleet(lab: &Lab) -> String {
    format!(
        r#"
[fleet]
state_version = "26.05"

[ssh]
port = {port}
permit_root_login = "prohibit-password"
root_keys = ["{key}"]

[hosts.alpha]
board = "x86_64"
address = "127.0.0.2"

[hosts.closed]
board = "x86_64"
address = "127.0.0.9"

[hosts.locked]
board = "x86_64"
address = "127.0.0.30"
"#,
        port = lab.port,
        key = lab.client_key()
    )
}

#[test]
fn preflight_reports_unreachable_hosts_and_deploys_the_rest() {
    if !ssh_available() {
        return;
    }
    let mut lab = Lab::new();
    // 127.0.0.30 answers, but with no authorized key; nothing listens on 127.0.0.9.
    lab.start_sshd(&["127.0.0.2"], &["127.0.0.30"]);
    lab.fleet(&fleet(&lab));

    // Returns (does not hang on the closed port or the refused key); no timing is asserted.
    let out = lab.pifleet(&["deploy", "--yes", "--connect-timeout", "5"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");

    let port = lab.port;
    assert!(
        stderr.contains(&format!(
            "closed | unreachable: cannot log in as root@127.0.0.9: nothing listens on the SSH port (ssh: connect to host 127.0.0.9 port {port}: Connection refused)"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("locked | unreachable: cannot log in as root@127.0.0.30: the key was rejected (root@127.0.0.30: Permission denied (publickey).)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 of 3 host(s) unreachable; they are skipped"),
        "{stderr}"
    );

    // Only the reachable host was deployed.
    let hosts: Vec<String> = lab.calls().into_iter().map(|(h, _)| h).collect();
    assert_eq!(hosts, ["alpha"]);
    let summary: Vec<&str> = stdout.lines().collect();
    assert!(
        summary.iter().any(|l| l.starts_with("alpha   ok ")),
        "{stdout}"
    );
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("closed  unreachable ")),
        "{stdout}"
    );
    assert!(
        summary
            .iter()
            .any(|l| l.starts_with("locked  unreachable ")),
        "{stdout}"
    );
    assert!(stdout.contains("1 of 3 host(s) succeeded"), "{stdout}");
}

#[test]
fn reachable_host_passes_preflight() {
    if !ssh_available() {
        return;
    }
    let mut lab = Lab::new();
    lab.start_sshd(&["127.0.0.2"], &[]);
    lab.fleet(&fleet(&lab));
    let out = lab.pifleet(&["deploy", "alpha", "--yes"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(!stderr.contains("unreachable"), "{stderr}");
    // Preflight, then the stand-in, then the confirmation over a fresh connection.
    let log_line = stderr.lines().find(|l| l.starts_with("logs: ")).unwrap();
    let log_dir = std::path::PathBuf::from(log_line.trim_start_matches("logs: "));
    let log = std::fs::read_to_string(log_dir.join("alpha.log")).unwrap();
    let order: Vec<usize> = [
        "$ ssh ",
        "$ NIX_SSHOPTS=",
        "building the system configuration...",
        "systemctl is-system-running",
        "ok: running",
    ]
    .iter()
    .map(|needle| {
        log.find(needle)
            .unwrap_or_else(|| panic!("{needle:?} not in\n{log}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{log}");
    assert!(stdout.contains("1 of 1 host(s) succeeded"), "{stdout}");
}

/// A host whose key the inventory records is pinned to it: deploy connects with the recorded key
/// (through `hosts/known_hosts` and `HostKeyAlias`, not `~/.ssh/known_hosts`), and refuses a host that
/// presents another one, saying what that may mean.
#[test]
fn recorded_host_keys_are_pinned() {
    if !ssh_available() {
        return;
    }
    let mut lab = Lab::new();
    lab.start_sshd(&["127.0.0.2", "127.0.0.3"], &[]);
    // The lab's own known_hosts would accept both: emptied, so only the recorded keys can.
    std::fs::write(lab.path("ssh/known_hosts"), "").unwrap();
    let real = std::fs::read_to_string(lab.path("ssh/host_ed25519.pub")).unwrap();
    let other = std::fs::read_to_string(lab.path("ssh/other_ed25519.pub")).unwrap();
    let inventory = format!(
        r#"
[fleet]
state_version = "26.05"

[ssh]
port = {port}
permit_root_login = "prohibit-password"
root_keys = ["{key}"]

[hosts.alpha]
board = "x86_64"
address = "127.0.0.2"
host_key = "{real}"

[hosts.impostor]
board = "x86_64"
address = "127.0.0.3"
host_key = "{other}"
"#,
        port = lab.port,
        key = lab.client_key(),
        real = real.trim(),
        other = other.trim(),
    );
    lab.fleet(&inventory);
    let known = std::fs::read_to_string(lab.path("hosts/known_hosts")).unwrap();
    assert!(known.contains("\nalpha ssh-ed25519 "), "{known}");

    let out = lab.pifleet(&["deploy", "--yes", "--connect-timeout", "5"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("impostor | unreachable: refusing root@127.0.0.3: it presented a different host key than hosts/known_hosts records"),
        "{stderr}"
    );
    assert!(
        stderr.contains("someone may be intercepting the connection"),
        "{stderr}"
    );
    let hosts: Vec<String> = lab.calls().into_iter().map(|(h, _)| h).collect();
    assert_eq!(
        hosts,
        ["alpha"],
        "only the host with its recorded key is deployed"
    );
    // The options nixos-rebuild got pin alpha too.
    let sshopts = lab.sshopts("alpha").join(" ");
    assert!(
        sshopts.contains("-o StrictHostKeyChecking=yes"),
        "{sshopts}"
    );
    assert!(sshopts.contains("-o HostKeyAlias=alpha"), "{sshopts}");
    assert!(sshopts.contains("/hosts/known_hosts"), "{sshopts}");
}

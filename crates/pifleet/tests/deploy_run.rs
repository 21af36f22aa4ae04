//! Running deploys end to end against real `sshd` targets on loopback addresses, with a recording
//! stand-in for `nixos-rebuild`: the real one can't run here (it needs NixOS targets and a modern
//! Nix), so a script on PATH records its argv and start/end times instead (see `deploy_support`).
//! Asserted: the exact argv per host, the parallelism limit, that one failing host leaves the
//! others alone, the magic rollback after a failed confirmation, and `pifleet rollback`.

#![allow(clippy::unwrap_used, reason = "tests: a failure is the test failing")]

mod deploy_support;

use deploy_support::{Lab, ssh_available, text};

const ADDRESSES: [&str; 6] = [
    "127.0.0.2",
    "127.0.0.3",
    "127.0.0.4",
    "127.0.0.5",
    "127.0.0.6",
    "127.0.0.7",
];

/// A lab with sshd on every address and a fleet of `hosts` (name, board, extra TOML) on them.
fn lab_with(hosts: &[(&str, &str, &str)]) -> Option<Lab> {
    if !ssh_available() {
        return None;
    }
    let mut lab = Lab::new();
    lab.start_sshd(&ADDRESSES, &[]);
    let mut toml = format!(
        "[fleet]\nstate_version = \"26.05\"\n\n[ssh]\nport = {}\npermit_root_login = \"prohibit-password\"\nroot_keys = [\"{}\"]\n",
        lab.port,
        lab.client_key()
    );
    for (i, (name, board, extra)) in hosts.iter().enumerate() {
        toml.push_str(&format!(
            "\n[hosts.{name}]\nboard = \"{board}\"\naddress = \"{}\"\n{extra}\n",
            ADDRESSES[i]
        ));
    }
    lab.fleet(&toml);
    Some(lab)
}

fn three() -> Option<Lab> {
    lab_with(&[
        ("alpha", "rpi4", "tags = [\"edge\"]"),
        ("bravo", "x86_64", "deploy = { build_on = \"target\" }"),
        ("charlie", "generic-aarch64", "tags = [\"edge\"]"),
    ])
}

fn argv_of(lab: &Lab, host: &str) -> Vec<Vec<String>> {
    lab.calls()
        .into_iter()
        .filter(|(h, _)| h == host)
        .map(|(_, argv)| argv)
        .collect()
}

fn summary_line<'a>(stdout: &'a str, host: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(host))
        .unwrap_or_else(|| panic!("no summary line for {host} in\n{stdout}"))
}

#[test]
fn exact_argv_per_host_and_logs() {
    let Some(lab) = three() else { return };
    let out = lab.pifleet(&["deploy", "--yes"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    let words = |s: &str| -> Vec<String> { s.split(' ').map(str::to_owned).collect() };
    assert_eq!(
        argv_of(&lab, "alpha"),
        [words(
            "switch --flake .#alpha --target-host root@127.0.0.2 --use-substitutes --fast"
        )]
    );
    assert_eq!(
        argv_of(&lab, "bravo"),
        [words(
            "switch --flake .#bravo --target-host root@127.0.0.3 --use-substitutes --build-host root@127.0.0.3"
        )]
    );
    assert_eq!(
        argv_of(&lab, "charlie"),
        [words(
            "switch --flake .#charlie --target-host root@127.0.0.4 --use-substitutes --fast"
        )]
    );
    // The user's NIX_SSHOPTS first (first value wins in ssh), then pifleet's defaults and the port.
    assert_eq!(
        lab.sshopts("alpha"),
        [format!(
            "-F {} -o BatchMode=yes -o ConnectTimeout=10 -p {}",
            lab.path("ssh/ssh_config").display(),
            lab.port
        )]
    );

    for host in ["alpha", "bravo", "charlie"] {
        assert!(summary_line(&stdout, host).contains(" ok "), "{stdout}");
        // Plain lines prefixed with the host when not on a terminal.
        assert!(
            stderr.contains(&format!("{host:<7} | building the system configuration...")),
            "{stderr}"
        );
    }
    assert!(
        stdout.contains("3 of 3 host(s) succeeded; logs in "),
        "{stdout}"
    );

    // One log per host, under $XDG_STATE_HOME/pifleet/logs/<timestamp>/.
    let logs = lab.path("xdg-state/pifleet/logs");
    let runs: Vec<_> = std::fs::read_dir(&logs).unwrap().collect();
    assert_eq!(runs.len(), 1);
    let run = runs.into_iter().next().unwrap().unwrap().path();
    assert!(
        stderr.contains(&format!("logs: {}", run.display())),
        "{stderr}"
    );
    for host in ["alpha", "bravo", "charlie"] {
        let log = std::fs::read_to_string(run.join(format!("{host}.log"))).unwrap();
        assert!(log.contains("activating the configuration..."), "{log}");
        assert!(log.contains("ok: running"), "{log}");
    }
}

#[test]
fn parallelism_is_limited() {
    let hosts: Vec<(String, &str, &str)> =
        (0..6).map(|i| (format!("h{i}"), "x86_64", "")).collect();
    let hosts: Vec<(&str, &str, &str)> =
        hosts.iter().map(|(n, b, e)| (n.as_str(), *b, *e)).collect();
    let Some(lab) = lab_with(&hosts) else { return };
    let out = lab.pifleet(
        &["deploy", "--yes", "--parallel", "2"],
        &[("PIFLEET_TEST_SLEEP", "1")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(lab.calls().len(), 6);
    // Never more than two at once, and the limit is actually used (six one-second runs).
    assert_eq!(
        lab.max_concurrency(),
        2,
        "{}",
        std::fs::read_to_string(lab.path("record")).unwrap()
    );
}

#[test]
fn one_failing_host_does_not_stop_the_others() {
    let Some(lab) = three() else { return };
    let out = lab.pifleet(
        &["deploy", "--yes", "--parallel", "1"],
        &[("PIFLEET_TEST_FAIL", "alpha")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    // alpha ran first (inventory order, one at a time) and failed; the others still ran.
    let hosts: Vec<String> = lab.calls().into_iter().map(|(h, _)| h).collect();
    assert_eq!(hosts, ["alpha", "bravo", "charlie"]);
    assert!(
        summary_line(&stdout, "alpha").contains("failed   ")
            && summary_line(&stdout, "alpha").contains("nixos-rebuild exited with exit code 1"),
        "{stdout}"
    );
    assert!(stderr.contains("alpha   | error: builder for"), "{stderr}");
    assert!(summary_line(&stdout, "bravo").contains(" ok "), "{stdout}");
    assert!(
        summary_line(&stdout, "charlie").contains(" ok "),
        "{stdout}"
    );
    assert!(stdout.contains("2 of 3 host(s) succeeded"), "{stdout}");
}

#[test]
fn failed_confirmation_rolls_back() {
    let Some(lab) = three() else { return };
    // The stand-in "breaks" alpha: afterwards its systemctl says `maintenance` with a failed unit.
    let out = lab.pifleet(
        &["deploy", "alpha", "bravo", "--yes"],
        &[("PIFLEET_TEST_BREAK", "alpha")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let words = |s: &str| -> Vec<String> { s.split(' ').map(str::to_owned).collect() };
    assert_eq!(
        argv_of(&lab, "alpha"),
        [
            words("switch --flake .#alpha --target-host root@127.0.0.2 --use-substitutes --fast"),
            words("switch --rollback --flake .#alpha --target-host root@127.0.0.2 --fast"),
        ]
    );
    assert_eq!(
        argv_of(&lab, "bravo").len(),
        1,
        "bravo is never rolled back"
    );
    let alpha = summary_line(&stdout, "alpha");
    assert!(
        alpha.contains("rolled back")
            && alpha.contains("the system is maintenance; failed units: broken.service; rolled back to the previous system"),
        "{stdout}"
    );
    assert!(
        stderr.contains("alpha | confirmation failed: the system is maintenance; failed units: broken.service; rolling back to the previous system"),
        "{stderr}"
    );
    assert!(summary_line(&stdout, "bravo").contains(" ok "), "{stdout}");
    // The stand-in's rollback repaired it.
    assert!(!lab.path("state/broken-127.0.0.2").exists());
}

#[test]
fn no_magic_rollback_only_reports() {
    let Some(lab) = three() else { return };
    let out = lab.pifleet(
        &["deploy", "alpha", "--yes", "--no-magic-rollback"],
        &[("PIFLEET_TEST_BREAK", "alpha")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert_eq!(argv_of(&lab, "alpha").len(), 1, "no rollback ran");
    assert!(
        summary_line(&stdout, "alpha").contains("not confirmed  ")
            && stdout.contains("not rolled back (run `pifleet rollback alpha`)"),
        "{stdout}"
    );
}

#[test]
fn degraded_is_success_with_failed_units_reported() {
    let Some(lab) = three() else { return };
    let out = lab.pifleet(
        &["deploy", "@edge", "--yes"],
        &[("PIFLEET_TEST_DEGRADE", "charlie")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let mut hosts: Vec<String> = lab.calls().into_iter().map(|(h, _)| h).collect();
    hosts.sort();
    assert_eq!(hosts, ["alpha", "charlie"], "@edge selects these two");
    assert!(
        summary_line(&stdout, "charlie").contains("degraded: failed units: broken.service"),
        "{stdout}"
    );
}

#[test]
fn rollback_command_switches_back() {
    let Some(lab) = three() else { return };
    let out = lab.pifleet(&["rollback", "alpha", "bravo", "--yes"], &[]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let words = |s: &str| -> Vec<String> { s.split(' ').map(str::to_owned).collect() };
    assert_eq!(
        argv_of(&lab, "alpha"),
        [words(
            "switch --rollback --flake .#alpha --target-host root@127.0.0.2 --fast"
        )]
    );
    assert_eq!(
        argv_of(&lab, "bravo"),
        [words(
            "switch --rollback --flake .#bravo --target-host root@127.0.0.3"
        )]
    );
    assert!(argv_of(&lab, "charlie").is_empty());
    assert!(stdout.contains("2 of 2 host(s) succeeded"), "{stdout}");

    // At least one host is required.
    let out = lab.pifleet(&["rollback"], &[]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn lockout_is_detected_over_a_fresh_connection_and_rolled_back() {
    let Some(lab) = three() else { return };
    // The "switch" removes alpha's authorized key: the preflight got in, the confirmation cannot.
    let out = lab.pifleet(
        &[
            "deploy",
            "alpha",
            "bravo",
            "--yes",
            "--confirm-timeout",
            "2",
        ],
        &[("PIFLEET_TEST_LOCKOUT", "alpha")],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let words = |s: &str| -> Vec<String> { s.split(' ').map(str::to_owned).collect() };
    assert_eq!(
        argv_of(&lab, "alpha"),
        [
            words("switch --flake .#alpha --target-host root@127.0.0.2 --use-substitutes --fast"),
            words("switch --rollback --flake .#alpha --target-host root@127.0.0.2 --fast"),
        ]
    );
    // Retried until the timeout (sshd may be restarting), then rolled back.
    assert!(
        stderr.contains("alpha | cannot log in as root@127.0.0.2: the key was rejected"),
        "{stderr}"
    );
    assert!(stderr.contains("; trying again"), "{stderr}");
    let alpha = summary_line(&stdout, "alpha");
    assert!(
        alpha.contains("rolled back")
            && alpha.contains("(gave up after 2 s); rolled back to the previous system"),
        "{stdout}"
    );
    assert!(summary_line(&stdout, "bravo").contains(" ok "), "{stdout}");
}

#[test]
fn a_slow_start_is_waited_for() {
    let Some(lab) = three() else { return };
    let out = lab.pifleet(
        &["deploy", "charlie", "--yes"],
        &[("PIFLEET_TEST_SLOW_START", "charlie")],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("charlie | the system is still starting; trying again"),
        "{stderr}"
    );
    assert!(
        summary_line(&stdout, "charlie").contains(" ok "),
        "{stdout}"
    );
    assert_eq!(argv_of(&lab, "charlie").len(), 1, "no rollback");
}

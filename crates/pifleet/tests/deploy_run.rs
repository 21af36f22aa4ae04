//! Deploys end to end against fake NixOS targets: real `sshd` on loopback addresses, each serving a
//! fake root (a store with generations, the system profile, `/run/current-system`, `/boot`) in
//! its own mount and pid namespace. pifleet's own scripts run there unchanged through real shells.
//!
//! THE STAND-INS ARE REAL PROCESSES IN REAL TIME: `systemd-run` on the target really runs each
//! transient unit, detached in a session of its own, and `--on-active` is a real timer (`sleep`);
//! the "bad" generation really stops sshd, so nothing from the workstation can reach the host until
//! the host's own timer brings the previous system back; the "dropping" generation really kills
//! every SSH connection and session while it activates. Only `nix` on the workstation records
//! instead of building (see `deploy_support`). Deadlines are short, from `--confirm-timeout`; no
//! test asserts how long anything took.

#![allow(clippy::unwrap_used, reason = "tests: a failure is the test failing")]

mod deploy_support;

use deploy_support::{Lab, ssh_available, store_path, text};

const ADDRESSES: [&str; 4] = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"];

/// A lab with a fake target on every address and a fleet of `hosts` (name, extra TOML) on them,
/// each declaring the health check `unit = "nginx"`; the extra TOML goes into its `deploy` table.
fn lab_with(hosts: &[(&str, &str)]) -> Option<Lab> {
    if !ssh_available() {
        return None;
    }
    let mut lab = Lab::new();
    lab.start_sshd(&ADDRESSES[..hosts.len()], &[]);
    let mut toml = format!(
        "[fleet]\nstate_version = \"26.05\"\n\n[ssh]\nport = {}\npermit_root_login = \"prohibit-password\"\nroot_keys = [\"{}\"]\n",
        lab.port,
        lab.client_key()
    );
    for (i, (name, extra)) in hosts.iter().enumerate() {
        toml.push_str(&format!(
            "\n[hosts.{name}]\nboard = \"x86_64\"\naddress = \"{}\"\n[hosts.{name}.deploy]\nhealth = [{{ unit = \"nginx\" }}]\n{extra}\n",
            ADDRESSES[i]
        ));
    }
    lab.fleet(&toml);
    Some(lab)
}

/// The deadline the tests give hosts: long enough for a few SSH logins on a busy machine.
const DEADLINE: &str = "10";

fn deploy(lab: &Lab, extra: &[&str], build: &str) -> (Option<i32>, String, String) {
    deploy_within(lab, DEADLINE, extra, build)
}

fn deploy_within(
    lab: &Lab,
    deadline: &str,
    extra: &[&str],
    build: &str,
) -> (Option<i32>, String, String) {
    let mut args = vec![
        "deploy",
        "--yes",
        "--connect-timeout",
        "5",
        "--confirm-timeout",
        deadline,
    ];
    args.extend_from_slice(extra);
    let out = lab.pifleet(&args, &[("PIFLEET_TEST_BUILD", build)]);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

fn summary_line<'a>(stdout: &'a str, host: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(host))
        .unwrap_or_else(|| panic!("no summary line for {host} in\n{stdout}"))
}

/// The index of the first line of `lines` that contains `needle`.
fn position(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` in\n{}", lines.join("\n")))
}

#[test]
fn confirm_then_disarm_then_commit() {
    let Some(lab) = lab_with(&[("alpha", ""), ("bravo", "")]) else {
        return;
    };
    let (code, stdout, stderr) = deploy(&lab, &[], "");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let good = store_path("good");
    let old = store_path("old");
    for a in &ADDRESSES[..2] {
        // Activated with `test`, then the profile's new generation and the boot entry.
        assert_eq!(
            lab.activations(a),
            [
                format!("begin test {good}"),
                format!("end test {good} 0"),
                format!("profile 2 {good}"),
                format!("begin boot {good}"),
                format!("end boot {good} 0"),
            ]
        );
        assert_eq!(lab.current(a), good);
        assert_eq!(lab.profile(a), ("system-2-link".to_owned(), good.clone()));
        assert_eq!(lab.boot_default(a), good);
        // The switch was armed before the activation, and disarmed before the commit.
        let journal = lab.journal(a);
        let armed = position(&journal, "create pifleet-rollback timer 10 s");
        let activated = position(&journal, "create pifleet-activate");
        let disarmed = position(&journal, "stop pifleet-rollback.timer");
        let committed = position(&journal, "create pifleet-commit");
        assert!(armed < activated && activated < disarmed && disarmed < committed);
        assert!(!journal.iter().any(|l| l.contains("start pifleet-rollback")));
    }
    assert!(
        stderr.contains(&format!(
            "until it is committed, power-cycling alpha brings back generation 1 ({old})"
        )),
        "{stderr}"
    );
    let line = summary_line(&stdout, "alpha");
    assert!(line.contains(" ok "), "{stdout}");
    assert!(
        line.contains("running; committed: generation 2 is the boot default"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "before: generation 1 ({old}); after: generation 2 ({good})"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("2 of 2 host(s) succeeded"), "{stdout}");
}

#[test]
fn a_bad_generation_goes_back_by_the_hosts_own_timer() {
    let Some(lab) = lab_with(&[("alpha", "")]) else {
        return;
    };
    let (code, stdout, stderr) = deploy_within(&lab, "4", &[], "alpha=bad");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let a = ADDRESSES[0];
    let (bad, old) = (store_path("bad"), store_path("old"));
    // The host went back to what it ran before, by the timer (sshd was down: nothing from the
    // workstation could get in), and the boot default never changed.
    assert_eq!(
        lab.activations(a),
        [
            format!("begin test {bad}"),
            format!("end test {bad} 0"),
            format!("begin test {old}"),
            format!("end test {old} 0"),
        ]
    );
    let journal = lab.journal(a);
    let fired = position(&journal, "fired pifleet-rollback.timer");
    assert!(position(&journal, "start pifleet-rollback.service") > fired);
    assert!(
        !journal.iter().any(|l| l.contains("pifleet-rollback-now")),
        "{journal:?}"
    );
    assert_eq!(lab.current(a), old);
    assert_eq!(lab.profile(a), ("system-1-link".to_owned(), old.clone()));
    assert_eq!(lab.boot_default(a), old);

    let line = summary_line(&stdout, "alpha");
    assert!(line.contains("rolled back"), "{stdout}");
    assert!(
        line.contains(&format!(
            "the host went back by itself (its rollback timer fired 4 s after the activation ended) and runs generation 1 ({old})"
        )),
        "{stdout}"
    );
    // Why it was not confirmed. Whether pifleet lost the host while watching the activation or
    // while confirming depends on when sshd stopped, so only the reason is asserted.
    assert!(
        line.contains("cannot log in as root@127.0.0.2: nothing listens on the SSH port"),
        "{stdout}"
    );
    assert!(
        stderr.contains("the host goes back to the previous system by itself when its timer fires"),
        "{stderr}"
    );
}

#[test]
fn an_ssh_drop_during_activation_does_not_stop_it() {
    let Some(lab) = lab_with(&[("alpha", "")]) else {
        return;
    };
    let (code, stdout, stderr) = deploy(&lab, &[], "alpha=dropping");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let a = ADDRESSES[0];
    let dropping = store_path("dropping");
    let acts = lab.activations(a);
    // Every SSH session was killed while the activation ran; it finished anyway, and was confirmed
    // and committed over new connections afterwards.
    let dropped = position(&acts, "dropped ssh");
    assert!(position(&acts, &format!("end test {dropping} 0")) > dropped);
    assert!(position(&acts, &format!("profile 2 {dropping}")) > dropped);
    assert_eq!(lab.current(a), dropping);
    assert_eq!(lab.boot_default(a), dropping);
    assert!(summary_line(&stdout, "alpha").contains(" ok "), "{stdout}");
}

#[test]
fn a_failed_health_check_goes_back() {
    let Some(lab) = lab_with(&[("alpha", "")]) else {
        return;
    };
    let (code, stdout, stderr) = deploy(&lab, &[], "alpha=unhealthy");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let a = ADDRESSES[0];
    let (unhealthy, old) = (store_path("unhealthy"), store_path("old"));
    assert_eq!(
        lab.activations(a),
        [
            format!("begin test {unhealthy}"),
            format!("end test {unhealthy} 0"),
            format!("begin test {old}"),
            format!("end test {old} 0"),
        ]
    );
    // Asked for by the workstation, before the host's timer would have.
    let journal = lab.journal(a);
    position(&journal, "start pifleet-rollback-now.service");
    assert_eq!(lab.current(a), old);
    assert_eq!(lab.profile(a).0, "system-1-link");
    let line = summary_line(&stdout, "alpha");
    assert!(line.contains("rolled back"), "{stdout}");
    assert!(
        line.contains("health check `unit nginx.service` failed: inactive"),
        "{stdout}"
    );
    assert!(line.contains("the host went back on request"), "{stdout}");
}

#[test]
fn without_magic_rollback_a_failed_confirmation_is_only_reported() {
    let Some(lab) = lab_with(&[("alpha", "")]) else {
        return;
    };
    let (code, stdout, stderr) = deploy(&lab, &["--no-magic-rollback"], "alpha=unhealthy");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let a = ADDRESSES[0];
    // No timer was armed; the host keeps the new system, uncommitted.
    assert!(
        !lab.journal(a)
            .iter()
            .any(|l| l.contains("pifleet-rollback")),
        "{:?}",
        lab.journal(a)
    );
    assert_eq!(lab.current(a), store_path("unhealthy"));
    assert_eq!(lab.boot_default(a), store_path("old"));
    let line = summary_line(&stdout, "alpha");
    assert!(line.contains("not confirmed"), "{stdout}");
    assert!(
        line.contains("power-cycling brings back generation 1"),
        "{stdout}"
    );
}

#[test]
fn degraded_is_confirmed_with_its_failed_units() {
    let Some(lab) = lab_with(&[("alpha", "")]) else {
        return;
    };
    let (code, stdout, stderr) = deploy(&lab, &[], "alpha=degraded");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        summary_line(&stdout, "alpha").contains("degraded: failed units: broken.service"),
        "{stdout}"
    );
    assert_eq!(lab.boot_default(ADDRESSES[0]), store_path("degraded"));
}

#[test]
fn reboot_boots_the_new_generation_once_then_commits() {
    let Some(lab) = lab_with(&[("alpha", "boot_loader = \"systemd-boot\"")]) else {
        return;
    };
    let (code, stdout, stderr) = deploy(&lab, &["--reboot"], "");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let a = ADDRESSES[0];
    let (good, old) = (store_path("good"), store_path("old"));
    assert_eq!(
        lab.activations(a),
        [
            format!("begin test {good}"),
            format!("end test {good} 0"),
            // Staged: in the menu as generation 2, the default still generation 1, booted once.
            format!("profile 2 {good}"),
            format!("profile 1 {old}"),
            format!("begin boot {old}"),
            format!("end boot {old} 0"),
            format!("boot {good}"),
            // Confirmed after the reboot, then committed.
            format!("profile 2 {good}"),
            format!("begin boot {good}"),
            format!("end boot {good} 0"),
        ]
    );
    position(&lab.journal(a), &format!("reboot into {good}"));
    assert_eq!(lab.current(a), good);
    assert_eq!(lab.boot_default(a), good);
    assert!(
        summary_line(&stdout, "alpha")
            .contains("rebooted into the new generation once and confirmed"),
        "{stdout}"
    );
}

#[test]
fn a_canary_that_is_not_confirmed_stops_the_wave() {
    let Some(lab) = lab_with(&[("alpha", ""), ("bravo", ""), ("charlie", "")]) else {
        return;
    };
    let (code, stdout, stderr) = deploy(&lab, &["--canary", "1"], "alpha=unhealthy");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        summary_line(&stdout, "alpha").contains("rolled back"),
        "{stdout}"
    );
    for (host, a) in [("bravo", ADDRESSES[1]), ("charlie", ADDRESSES[2])] {
        let line = summary_line(&stdout, host);
        assert!(
            line.contains("skipped") && line.contains("canary alpha was not confirmed"),
            "{stdout}"
        );
        // Not built, and nothing changed on them.
        assert!(
            lab.calls().iter().all(|(h, _)| h != host),
            "{:?}",
            lab.calls()
        );
        assert!(lab.activations(a).is_empty());
        assert_eq!(lab.current(a), store_path("old"));
    }

    // Confirmed canaries let the wave go on.
    let (code, stdout, stderr) = deploy(&lab, &["--canary", "1"], "");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for a in &ADDRESSES[..3] {
        assert_eq!(lab.boot_default(a), store_path("good"));
    }
}

#[test]
fn rollback_reports_the_generations_before_and_after() {
    let Some(lab) = lab_with(&[("alpha", "")]) else {
        return;
    };
    let (code, stdout, stderr) = deploy(&lab, &[], "");
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let out = lab.pifleet(
        &["rollback", "alpha", "--yes", "--confirm-timeout", DEADLINE],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let a = ADDRESSES[0];
    let (good, old) = (store_path("good"), store_path("old"));
    assert_eq!(lab.current(a), old);
    assert_eq!(lab.profile(a), ("system-1-link".to_owned(), old.clone()));
    assert_eq!(lab.boot_default(a), old);
    assert!(
        summary_line(&stdout, "alpha").contains(&format!(
            "generation 2 ({good}) -> generation 1 ({old}); running"
        )),
        "{stdout}"
    );
}

#[test]
fn a_failing_build_leaves_the_others_alone_and_parallelism_is_limited() {
    let Some(lab) = lab_with(&[("alpha", ""), ("bravo", ""), ("charlie", ""), ("delta", "")])
    else {
        return;
    };
    let (code, stdout, stderr) = deploy(&lab, &["--parallel", "2"], "alpha=fail");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let line = summary_line(&stdout, "alpha");
    assert!(line.contains("failed"), "{stdout}");
    assert!(lab.activations(ADDRESSES[0]).is_empty());
    for a in &ADDRESSES[1..] {
        assert_eq!(lab.boot_default(a), store_path("good"));
    }
    assert!(lab.max_concurrency() <= 2, "{}", lab.max_concurrency());
    assert!(stdout.contains("3 of 4 host(s) succeeded"), "{stdout}");
}

#[test]
fn json_results_are_kept_and_status_shows_each_hosts_last_deploy() {
    let Some(lab) = lab_with(&[("alpha", ""), ("bravo", "")]) else {
        return;
    };
    // Before any deploy: listed, never deployed.
    let out = lab.pifleet(&["status", "--format", "json"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let hosts: serde_json::Value = serde_json::from_str(&stdout).expect("status json");
    assert_eq!(hosts[0]["host"], "alpha");
    assert_eq!(hosts[0]["last_deploy"], serde_json::Value::Null);

    let (code, stdout, stderr) = deploy(&lab, &["--format", "json"], "bravo=fail");
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let results: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON document");
    let by_host = |name: &str| {
        results["hosts"]
            .as_array()
            .expect("hosts")
            .iter()
            .find(|h| h["host"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {results:#}"))
    };
    assert_eq!(by_host("alpha")["status"], "ok");
    assert_eq!(
        by_host("alpha")["after"],
        format!("generation 2 ({})", store_path("good"))
    );
    assert_eq!(by_host("bravo")["status"], "failed");
    assert_eq!(results["succeeded"], 1);

    // status reads what the run left beside its logs.
    let out = lab.pifleet(&["list", "--format", "json"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let hosts: serde_json::Value = serde_json::from_str(&stdout).expect("status json");
    assert_eq!(hosts[0]["last_deploy"]["status"], "ok");
    assert_eq!(hosts[1]["host"], "bravo");
    assert_eq!(hosts[1]["last_deploy"]["status"], "failed");
    let out = lab.pifleet(&["status"], &[]);
    let table = text(&out).0;
    let bravo = table
        .lines()
        .find(|l| l.starts_with("bravo "))
        .expect("a bravo line");
    assert!(bravo.ends_with("failed"), "{table}");
}

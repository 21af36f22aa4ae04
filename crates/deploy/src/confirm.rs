//! Reading the host: what it runs ([`HostState`], from [`crate::remote::probe`]) and whether a new
//! system is confirmed ([`confirm`], from [`crate::remote::confirm`]).
//!
//! The confirmation is one routine for `deploy`, `rollback` and `adopt`, so "confirmed" means the
//! same everywhere and the messages (failed units included) are the same: the deploy user logs in
//! over a fresh connection pinned to the host's recorded key; the host runs the expected system;
//! the system is `running`, or `degraded` with its failed units listed; every health check the
//! inventory declares passes; `/boot` has room for the next generation's kernel and initrd.

use std::fmt;
use std::thread;
use std::time::{Duration, Instant};

use model::HealthCheck;

use crate::exec::{Captured, capture};
use crate::plan::CommandSpec;

/// One generation of a host's system, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// Its number in the system profile (`system-N-link`), when it is one.
    pub number: Option<u32>,
    /// The store path.
    pub path: String,
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number {
            Some(n) => write!(f, "generation {n} ({})", self.path),
            None => write!(f, "{} (not a generation of the system profile)", self.path),
        }
    }
}

/// What [`crate::remote::probe`] printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostState {
    /// `readlink -f /run/current-system`.
    pub current: Option<String>,
    /// The generation the system profile points at (the boot default).
    pub profile: Option<u32>,
    /// Every generation of the system profile and its store path.
    pub generations: Vec<(u32, String)>,
    /// When the activation began (host clock, epoch seconds).
    pub started: Option<i64>,
    /// The activation's exit code.
    pub status: Option<i32>,
    /// When the activation ended.
    pub activated: Option<i64>,
    /// Who decided the deploy's fate: `confirmed`, `rollback`, `expired`, or empty while deciding.
    pub decided: Option<String>,
    /// When the host began going back.
    pub rollback: Option<i64>,
    /// Who started going back: `timer` (the dead man's switch fired) or `request` (the workstation).
    pub rollback_by: Option<String>,
    /// How going back ended.
    pub rollback_status: Option<i32>,
    /// The activation's output, once it ended.
    pub log: Vec<String>,
    /// The host's clock.
    pub now: Option<i64>,
}

/// A `system-N-link` name's N.
fn link_number(link: &str) -> Option<u32> {
    link.trim()
        .strip_prefix("system-")?
        .strip_suffix("-link")?
        .parse()
        .ok()
}

impl HostState {
    /// Reads the probe's `key value` lines; unknown lines are ignored.
    pub fn parse(stdout: &str) -> Self {
        let mut s = HostState::default();
        for line in stdout.lines() {
            let (key, value) = line.split_once(' ').unwrap_or((line, ""));
            let value = value.trim();
            let some = || (!value.is_empty()).then(|| value.to_owned());
            match key {
                "current" => s.current = some(),
                "profile" => s.profile = link_number(value),
                "generation" => {
                    if let Some((link, path)) = value.split_once(' ')
                        && let Some(n) = link_number(link)
                    {
                        s.generations.push((n, path.trim().to_owned()));
                    }
                }
                "started" => s.started = value.parse().ok(),
                "status" => s.status = value.parse().ok(),
                "activated" => s.activated = value.parse().ok(),
                "decided" => s.decided = Some(value.to_owned()),
                "rollback" => s.rollback = value.parse().ok(),
                "rollback-by" => s.rollback_by = some(),
                "rollback-status" => s.rollback_status = value.parse().ok(),
                "log" => s.log.push(value.to_owned()),
                "now" => s.now = value.parse().ok(),
                _ => {}
            }
        }
        s
    }

    /// `path` with its generation number, when the profile has one for it (the newest such).
    pub fn generation_of(&self, path: &str) -> Generation {
        Generation {
            number: self
                .generations
                .iter()
                .filter(|(_, p)| p == path)
                .map(|(n, _)| *n)
                .max(),
            path: path.to_owned(),
        }
    }

    /// The generation the host runs now.
    pub fn running(&self) -> Option<Generation> {
        self.current.as_deref().map(|c| self.generation_of(c))
    }

    /// Whether the host decided to go back by itself (its timer), or was asked to.
    pub fn rolled_back(&self) -> bool {
        self.decided.as_deref() == Some("rollback")
    }
}

/// What the confirmation found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// Logged in; the system is running and every check passed.
    Running,
    /// Logged in; every check passed, but the system runs with failed units.
    Degraded(Vec<String>),
    /// Could not log in, or something is wrong; the reason.
    Failed(String),
}

/// One attempt, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An answer that does not change by waiting.
    Done(Confirmation),
    /// Not yet: a login that fails (sshd restarting), a system still starting, a check that fails
    /// (a service still coming up). Tried again until the time runs out.
    Retry(String),
}

/// `units` for a message.
pub fn list(units: &[String]) -> String {
    if units.is_empty() {
        "none listed".into()
    } else {
        units.join(", ")
    }
}

/// Reads one run of [`crate::remote::confirm`] by `destination`. `expect`: the store path the host
/// must run. `checks`: the health checks, in the order the script ran them.
pub fn judge(
    destination: &str,
    out: &Captured,
    expect: Option<&str>,
    checks: &[HealthCheck],
) -> Verdict {
    let Some(status) = out.status else {
        return Verdict::Retry(format!("no answer from {destination}"));
    };
    if status.code() == Some(255) {
        return Verdict::Retry(crate::run::explain_ssh_failure(destination, &out.stderr));
    }
    let mut current = None;
    let mut state = String::new();
    let mut failed = Vec::new();
    let mut check_failures = Vec::new();
    let mut boot = None;
    let mut ended = false;
    for line in out.stdout.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match key {
            "current" => current = Some(value.trim().to_owned()),
            "state" => state = value.trim().to_owned(),
            "failed" => failed.push(value.trim().to_owned()),
            "check" => {
                let (index, rest) = value.split_once(' ').unwrap_or((value, ""));
                if let Some(why) = rest.strip_prefix("fail") {
                    let check = index
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| checks.get(i))
                        .map_or_else(|| format!("#{index}"), ToString::to_string);
                    let why = why.trim();
                    check_failures.push(if why.is_empty() {
                        format!("health check `{check}` failed")
                    } else {
                        format!("health check `{check}` failed: {why}")
                    });
                }
            }
            "boot" => {
                let mut words = value.split_whitespace().map(str::parse::<u64>);
                if let (Some(Ok(free)), Some(Ok(need))) = (words.next(), words.next()) {
                    boot = Some((free, need));
                }
            }
            "end" => ended = true,
            _ => {}
        }
    }
    if !ended {
        let why = out
            .stderr
            .lines()
            .rfind(|l| !l.trim().is_empty())
            .unwrap_or("no error output");
        return Verdict::Done(Confirmation::Failed(format!(
            "the confirmation did not run to its end on {destination} ({why})"
        )));
    }
    if let (Some(expect), Some(current)) = (expect, &current)
        && current != expect
    {
        return Verdict::Done(Confirmation::Failed(format!(
            "the host runs {current}, not the new system {expect}"
        )));
    }
    let units = if failed.is_empty() {
        String::new()
    } else {
        format!("; failed units: {}", failed.join(", "))
    };
    match state.as_str() {
        "running" | "degraded" => {}
        "initializing" | "starting" => {
            return Verdict::Retry(format!("the system is still {state}"));
        }
        "" => {
            return Verdict::Done(Confirmation::Failed(
                "`systemctl is-system-running` printed nothing".into(),
            ));
        }
        other => {
            return Verdict::Done(Confirmation::Failed(format!(
                "the system is {other}{units}"
            )));
        }
    }
    if let Some((free, need)) = boot
        && free < need
    {
        return Verdict::Done(Confirmation::Failed(format!(
            "/boot has {free} KiB free, but the next generation's kernel and initrd need {need} KiB: \
             make room (`nix-collect-garbage -d` on the host, then `/run/current-system/bin/switch-to-configuration boot`)"
        )));
    }
    if !check_failures.is_empty() {
        return Verdict::Retry(check_failures.join("; "));
    }
    Verdict::Done(if state == "degraded" {
        Confirmation::Degraded(failed)
    } else {
        Confirmation::Running
    })
}

/// Runs the confirmation `spec` until it gives an answer or `until` passes, pausing `interval`
/// between attempts and giving each `attempt_timeout`. `say` hears each retry's reason.
#[allow(
    clippy::too_many_arguments,
    reason = "the knobs of one loop, all needed"
)]
pub fn confirm(
    spec: &CommandSpec,
    destination: &str,
    expect: Option<&str>,
    checks: &[HealthCheck],
    until: Instant,
    interval: Duration,
    attempt_timeout: Duration,
    say: &mut dyn FnMut(&str),
) -> Confirmation {
    let started = Instant::now();
    loop {
        let last = match capture(spec, attempt_timeout) {
            Err(err) => return Confirmation::Failed(format!("cannot run ssh: {err}")),
            Ok(out) => {
                for line in out.stdout.lines().chain(out.stderr.lines()) {
                    say(line);
                }
                match judge(destination, &out, expect, checks) {
                    Verdict::Done(result) => return result,
                    Verdict::Retry(why) => why,
                }
            }
        };
        if Instant::now() + interval >= until {
            return Confirmation::Failed(format!(
                "{last} (gave up after {} s)",
                started.elapsed().as_secs()
            ));
        }
        say(&format!("{last}; trying again"));
        thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;
    use std::process::ExitStatus;

    use super::*;

    fn out(code: i32, stdout: &str, stderr: &str) -> Captured {
        Captured {
            status: Some(ExitStatus::from_raw(code << 8)),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    fn checks() -> Vec<HealthCheck> {
        vec![
            HealthCheck::Tcp(model::Port::new(8123).expect("port")),
            HealthCheck::Unit(model::UnitName::new("nginx").expect("unit")),
        ]
    }

    #[test]
    fn probe_output() {
        let s = HostState::parse(
            "current /nix/store/b\nprofile system-3-link\ngeneration system-2-link /nix/store/a\n\
             generation system-3-link /nix/store/b\nstarted 100\nstatus 0\nactivated 120\ndecided rollback\n\
             rollback-status 0\nlog line one\nnow 130\n",
        );
        assert_eq!(s.profile, Some(3));
        assert_eq!(s.activated, Some(120));
        assert!(s.rolled_back());
        assert_eq!(s.log, ["line one"]);
        assert_eq!(
            s.running().expect("running").to_string(),
            "generation 3 (/nix/store/b)"
        );
        assert_eq!(
            s.generation_of("/nix/store/x").to_string(),
            "/nix/store/x (not a generation of the system profile)"
        );
    }

    #[test]
    fn verdicts() {
        let t = "/nix/store/t";
        let ok =
            "current /nix/store/t\nstate running\ncheck 0 ok\ncheck 1 ok\nboot 100000 30000\nend\n";
        assert_eq!(
            judge("root@h", &out(0, ok, ""), Some(t), &checks()),
            Verdict::Done(Confirmation::Running)
        );
        let degraded = "current /nix/store/t\nstate degraded\nfailed a.service\nend\n";
        assert_eq!(
            judge("root@h", &out(0, degraded, ""), Some(t), &[]),
            Verdict::Done(Confirmation::Degraded(vec!["a.service".into()]))
        );
        let check = "current /nix/store/t\nstate running\ncheck 0 ok\ncheck 1 fail inactive\nend\n";
        assert_eq!(
            judge("root@h", &out(0, check, ""), Some(t), &checks()),
            Verdict::Retry("health check `unit nginx.service` failed: inactive".into())
        );
        let other = "current /nix/store/old\nstate running\nend\n";
        assert_eq!(
            judge("root@h", &out(0, other, ""), Some(t), &[]),
            Verdict::Done(Confirmation::Failed(
                "the host runs /nix/store/old, not the new system /nix/store/t".into()
            ))
        );
        let full = "current /nix/store/t\nstate running\nboot 100 30000\nend\n";
        assert!(matches!(
            judge("root@h", &out(0, full, ""), Some(t), &[]),
            Verdict::Done(Confirmation::Failed(m)) if m.starts_with("/boot has 100 KiB free")
        ));
        let broken = "current /nix/store/t\nstate maintenance\nfailed x.service\nend\n";
        assert_eq!(
            judge("root@h", &out(0, broken, ""), Some(t), &[]),
            Verdict::Done(Confirmation::Failed(
                "the system is maintenance; failed units: x.service".into()
            ))
        );
        let starting = "current /nix/store/t\nstate starting\nend\n";
        assert_eq!(
            judge("root@h", &out(0, starting, ""), Some(t), &[]),
            Verdict::Retry("the system is still starting".into())
        );
        assert!(matches!(
            judge("root@h", &out(255, "", "root@h: Permission denied (publickey).\n"), Some(t), &[]),
            Verdict::Retry(m) if m.contains("the key was rejected")
        ));
        assert!(matches!(
            judge("root@h", &out(127, "", "sh: readlink: not found\n"), Some(t), &[]),
            Verdict::Done(Confirmation::Failed(m)) if m.contains("did not run to its end")
        ));
    }
}

//! Running a [`Plan`]: the SSH preflight for every host, then each host's commands on a pool of at
//! most `parallel` workers. A host's failure is recorded in its [`HostReport`] and never stops the
//! others; every line a command prints goes to the host's log file and to the [`Observer`].

use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::exec::{self, Captured, command};
use crate::plan::{CommandSpec, HostPlan, Plan, Target};

/// How long to keep reading a command's output after it exited: a background process it left
/// behind (an SSH control master) may hold the pipe open for a long time.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Where a host is in its deploy, for live status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Checking that the deploy user can log in.
    Preflight,
    /// Waiting for a free worker.
    Queued,
    /// nixos-rebuild is building, copying and activating.
    Activating,
    /// Checking over a fresh connection that login and the system still work.
    Confirming,
    /// Going back to the previous system.
    RollingBack,
}

impl Phase {
    /// A short word for status lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Queued => "queued",
            Phase::Activating => "activating",
            Phase::Confirming => "confirming",
            Phase::RollingBack => "rolling back",
        }
    }
}

/// How a host ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Deployed (and confirmed, where the action activates).
    Succeeded,
    /// The preflight could not log in; nothing ran.
    Unreachable,
    /// nixos-rebuild failed.
    Failed,
    /// The confirmation failed and the host was rolled back to its previous system.
    RolledBack,
    /// The confirmation failed and the rollback failed too, or was turned off.
    NotConfirmed,
}

impl Status {
    /// A word for the summary table.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Succeeded => "ok",
            Status::Unreachable => "unreachable",
            Status::Failed => "failed",
            Status::RolledBack => "rolled back",
            Status::NotConfirmed => "not confirmed",
        }
    }
}

/// The outcome of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostReport {
    /// The host.
    pub host: String,
    /// How it ended.
    pub status: Status,
    /// One line saying what happened or what went wrong.
    pub detail: String,
    /// Units `systemctl --failed` listed after activation.
    pub failed_units: Vec<String>,
    /// Its log file.
    pub log: PathBuf,
    /// Wall time spent on it.
    pub elapsed: Duration,
}

impl HostReport {
    /// Whether this host counts as deployed.
    pub fn succeeded(&self) -> bool {
        self.status == Status::Succeeded
    }
}

/// Receives live progress. Called from worker threads.
pub trait Observer: Sync {
    /// `host` entered `phase`.
    fn phase(&self, host: &str, phase: Phase);
    /// A line of output (or of pifleet's own narration) for `host`.
    fn line(&self, host: &str, line: &str);
    /// `host` is done.
    fn finished(&self, report: &HostReport);
}

/// Knobs of the executor.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// At most this many hosts deploy at once.
    pub parallel: usize,
    /// How long the post-activation confirmation may keep trying before it counts as failed.
    pub confirm_timeout: Duration,
    /// The pause between confirmation attempts.
    pub confirm_interval: Duration,
    /// A hard limit for one preflight or confirmation command (ssh's own ConnectTimeout covers
    /// the connection; this covers a login that hangs after it).
    pub ssh_timeout: Duration,
    /// Where `<host>.log` files go; must exist.
    pub log_dir: PathBuf,
}

/// Runs plans.
#[derive(Debug)]
pub struct Executor<'a, O: Observer> {
    options: RunOptions,
    observer: &'a O,
}

impl<'a, O: Observer> Executor<'a, O> {
    /// An executor reporting to `observer`.
    pub fn new(options: RunOptions, observer: &'a O) -> Self {
        Self { options, observer }
    }

    /// The log file of `host`.
    pub fn log_path(&self, host: &str) -> PathBuf {
        self.options.log_dir.join(format!("{host}.log"))
    }

    /// Runs every host's preflight at once (they are cheap) and returns, per host in plan order,
    /// `None` when it can log in, or the reason it cannot.
    pub fn preflight(&self, plan: &Plan) -> Vec<Option<String>> {
        let width = plan.hosts.len().max(1).min(self.options.parallel.max(16));
        self.pool(&plan.hosts, width, |host| {
            self.observer.phase(&host.host, Phase::Preflight);
            let mut log = self.open_log(&host.host);
            let result = self.preflight_one(host, &mut log);
            match &result {
                None => self.say(&host.host, &mut log, "reachable"),
                // The observer hears it from `unreachable`, with the summary.
                Some(reason) => write_log(&mut log, &format!("unreachable: {reason}")),
            }
            result
        })
    }

    fn preflight_one(&self, host: &HostPlan, log: &mut Option<File>) -> Option<String> {
        if let Some(refusal) = source_refusal(host) {
            return Some(refusal);
        }
        self.say(&host.host, log, &format!("$ {}", host.preflight));
        let out = match self.capture(&host.preflight) {
            Ok(out) => out,
            Err(err) => return Some(format!("cannot run ssh: {err}")),
        };
        log_captured(log, &out);
        match out.status {
            Some(status) if status.success() => None,
            Some(_) => Some(explain_ssh_failure(&host.target.destination(), &out.stderr)),
            None => Some(format!(
                "no answer from {} within {} s",
                host.target.destination(),
                self.options.ssh_timeout.as_secs()
            )),
        }
    }

    /// Deploys `hosts` (normally those that passed the preflight), at most `parallel` at once.
    pub fn deploy(&self, hosts: &[&HostPlan]) -> Vec<HostReport> {
        for host in hosts {
            self.observer.phase(&host.host, Phase::Queued);
        }
        self.pool(hosts, self.options.parallel.max(1), |host| {
            let started = Instant::now();
            let mut log = self.open_log(&host.host);
            let (status, detail, failed_units) = self.deploy_one(host, &mut log);
            write_log(&mut log, &format!("{}: {detail}", status.as_str()));
            let report = HostReport {
                host: host.host.clone(),
                status,
                detail,
                failed_units,
                log: self.log_path(&host.host),
                elapsed: started.elapsed(),
            };
            self.observer.finished(&report);
            report
        })
    }

    /// A report for a host that failed its preflight, for the summary.
    pub fn unreachable(&self, host: &HostPlan, reason: &str) -> HostReport {
        let report = HostReport {
            host: host.host.clone(),
            status: Status::Unreachable,
            detail: reason.to_owned(),
            failed_units: Vec::new(),
            log: self.log_path(&host.host),
            elapsed: Duration::ZERO,
        };
        self.observer.finished(&report);
        report
    }

    fn deploy_one(&self, host: &HostPlan, log: &mut Option<File>) -> (Status, String, Vec<String>) {
        let name = host.host.as_str();
        self.observer.phase(name, Phase::Activating);
        match self.stream(name, &host.activate, log) {
            Ok(status) if status.success() => {}
            Ok(status) => {
                return (
                    Status::Failed,
                    format!("{} exited with {}", host.activate.program, describe(status)),
                    Vec::new(),
                );
            }
            Err(err) => {
                return (
                    Status::Failed,
                    format!("cannot run {}: {err}", host.activate.program),
                    Vec::new(),
                );
            }
        }
        let Some(confirm) = &host.confirm else {
            return (Status::Succeeded, "done".into(), Vec::new());
        };
        self.observer.phase(name, Phase::Confirming);
        let problem = match self.confirm(host, confirm, log) {
            Confirmed::Running => return (Status::Succeeded, "running".into(), Vec::new()),
            Confirmed::Degraded(units) => {
                let detail = format!("degraded: failed units: {}", list(&units));
                return (Status::Succeeded, detail, units);
            }
            Confirmed::Failed(problem) => problem,
        };
        let Some(rollback) = &host.rollback else {
            self.say(
                name,
                log,
                &format!("confirmation failed: {problem}; not rolling back"),
            );
            return (
                Status::NotConfirmed,
                format!("{problem}; not rolled back (run `pifleet rollback {name}`)"),
                Vec::new(),
            );
        };
        self.say(
            name,
            log,
            &format!("confirmation failed: {problem}; rolling back to the previous system"),
        );
        self.observer.phase(name, Phase::RollingBack);
        match self.stream(name, rollback, log) {
            Ok(status) if status.success() => (
                Status::RolledBack,
                format!("{problem}; rolled back to the previous system"),
                Vec::new(),
            ),
            Ok(status) => (
                Status::NotConfirmed,
                format!("{problem}; the rollback failed too ({})", describe(status)),
                Vec::new(),
            ),
            Err(err) => (
                Status::NotConfirmed,
                format!("{problem}; cannot run the rollback: {err}"),
                Vec::new(),
            ),
        }
    }

    /// Tries the confirmation until it succeeds, fails for good, or the timeout passes.
    fn confirm(&self, host: &HostPlan, confirm: &CommandSpec, log: &mut Option<File>) -> Confirmed {
        let name = host.host.as_str();
        let deadline = Instant::now() + self.options.confirm_timeout;
        loop {
            self.say(name, log, &format!("$ {confirm}"));
            let last = match self.capture(confirm) {
                Err(err) => return Confirmed::Failed(format!("cannot run ssh: {err}")),
                Ok(out) => {
                    log_captured(log, &out);
                    match judge(&host.target.destination(), &out) {
                        Verdict::Done(result) => return result,
                        Verdict::Retry(why) => why,
                    }
                }
            };
            if Instant::now() >= deadline {
                return Confirmed::Failed(format!(
                    "{last} (gave up after {} s)",
                    self.options.confirm_timeout.as_secs()
                ));
            }
            self.say(name, log, &format!("{last}; trying again"));
            thread::sleep(self.options.confirm_interval);
        }
    }

    /// Runs `work` over `items` on `width` threads; results in input order.
    fn pool<T: Sync, R: Send>(
        &self,
        items: &[T],
        width: usize,
        work: impl Fn(&T) -> R + Sync,
    ) -> Vec<R> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
        thread::scope(|scope| {
            for _ in 0..width.min(items.len()) {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(item) = items.get(i) else { break };
                        let r = work(item);
                        if let Ok(mut results) = results.lock() {
                            results[i] = Some(r);
                        }
                    }
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .into_iter()
            .flatten()
            .collect()
    }

    fn open_log(&self, host: &str) -> Option<File> {
        let path = self.log_path(host);
        match File::options().create(true).append(true).open(&path) {
            Ok(file) => Some(file),
            Err(err) => {
                tracing::warn!("cannot open {}: {err}", path.display());
                None
            }
        }
    }

    /// Narration: to the log and the observer.
    fn say(&self, host: &str, log: &mut Option<File>, line: &str) {
        write_log(log, line);
        self.observer.line(host, line);
    }

    /// Runs `spec`, sending each line of its merged stdout and stderr to the log and the observer.
    fn stream(
        &self,
        host: &str,
        spec: &CommandSpec,
        log: &mut Option<File>,
    ) -> std::io::Result<ExitStatus> {
        self.say(host, log, &format!("$ {spec}"));
        let (reader, writer) = std::io::pipe()?;
        let mut cmd = command(spec);
        cmd.stdout(writer.try_clone()?).stderr(writer);
        let mut child = cmd.spawn()?;
        // Our copies of the pipe's write end must go, or reading never ends.
        drop(cmd);
        let (tx, rx) = mpsc::channel::<String>();
        // Not scoped: a process the command left behind may keep the pipe open indefinitely.
        thread::spawn(move || {
            for line in BufReader::new(reader).split(b'\n') {
                let Ok(line) = line else { break };
                if tx
                    .send(String::from_utf8_lossy(&line).into_owned())
                    .is_err()
                {
                    break;
                }
            }
        });
        let mut exited: Option<(ExitStatus, Instant)> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) => {
                    let line = line.trim_end_matches('\r');
                    write_log(log, line);
                    self.observer.line(host, line);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    if exited.is_none() {
                        exited = Some((child.wait()?, Instant::now()));
                    }
                    break;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
            match exited {
                Some((_, at)) if at.elapsed() > DRAIN_GRACE => break,
                Some(_) => {}
                None => {
                    if let Some(status) = child.try_wait()? {
                        exited = Some((status, Instant::now()));
                    }
                }
            }
        }
        let Some((status, _)) = exited else {
            return child.wait();
        };
        Ok(status)
    }

    /// Runs `spec` with the SSH time limit, capturing its output.
    fn capture(&self, spec: &CommandSpec) -> std::io::Result<Captured> {
        exec::capture(spec, self.options.ssh_timeout)
    }
}

fn write_log(log: &mut Option<File>, line: &str) {
    if let Some(file) = log
        && writeln!(file, "{line}").is_err()
    {
        *log = None;
    }
}

fn log_captured(log: &mut Option<File>, out: &Captured) {
    for line in out.stdout.lines().chain(out.stderr.lines()) {
        write_log(log, line);
    }
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => "a signal".into(),
    }
}

fn list(units: &[String]) -> String {
    if units.is_empty() {
        "none listed".into()
    } else {
        units.join(", ")
    }
}

/// Turns ssh's complaint into one line that says what is wrong.
pub fn explain_ssh_failure(destination: &str, stderr: &str) -> String {
    // A pinned key that does not match: say what it may mean and what to do, before anything else.
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || (stderr.contains("Host key verification failed") && stderr.contains("Offending"))
    {
        return format!(
            "refusing {destination}: it presented a different host key than hosts/known_hosts records. \
             If you re-flashed its card without its recorded identity, put the key back with \
             `pifleet keys inject DEVICE --host-key HOST` (or `pifleet flash HOST DEVICE`), or check the \
             new key's fingerprint on the console and record it with `pifleet hostkey scan HOST --force`. If \
             nothing changed on that machine, someone may be intercepting the connection: do not deploy"
        );
    }
    let last = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .unwrap_or("ssh failed without saying why");
    let hint = if last.contains("Connection refused") {
        "nothing listens on the SSH port"
    } else if last.contains("timed out") {
        "no answer (host down, wrong address or a firewall)"
    } else if last.contains("Permission denied") {
        "the key was rejected"
    } else if last.contains("Host key verification failed") {
        "its host key is not recorded: `pifleet hostkey scan HOST` records a running host's key after you confirm its fingerprint"
    } else if last.contains("Could not resolve") {
        "the address does not resolve"
    } else if last.contains("No route to host") || last.contains("Network is unreachable") {
        "no route to the host"
    } else {
        return format!("cannot log in as {destination}: {last}");
    };
    format!("cannot log in as {destination}: {hint} ({last})")
}

/// What the confirmation found.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Confirmed {
    Running,
    Degraded(Vec<String>),
    Failed(String),
}

enum Verdict {
    Done(Confirmed),
    Retry(String),
}

/// Reads one confirmation attempt: ssh's exit code 255 means the login failed (retried until the
/// timeout: sshd may be restarting); otherwise the first line is the system state.
fn judge(destination: &str, out: &Captured) -> Verdict {
    let Some(status) = out.status else {
        return Verdict::Retry(format!("no answer from {destination}"));
    };
    if status.code() == Some(255) {
        return Verdict::Retry(explain_ssh_failure(destination, &out.stderr));
    }
    let mut lines = out.stdout.lines();
    let state = lines.next().unwrap_or("").trim();
    let failed: Vec<String> = lines
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect();
    match state {
        "running" => Verdict::Done(Confirmed::Running),
        "degraded" => Verdict::Done(Confirmed::Degraded(failed)),
        "initializing" | "starting" => Verdict::Retry(format!("the system is still {state}")),
        "" => Verdict::Done(Confirmed::Failed(format!(
            "`systemctl is-system-running` printed nothing ({})",
            out.stderr.lines().next().unwrap_or("no error output")
        ))),
        other => {
            let units = if failed.is_empty() {
                String::new()
            } else {
                format!("; failed units: {}", failed.join(", "))
            };
            Verdict::Done(Confirmed::Failed(format!("the system is {other}{units}")))
        }
    }
}

/// `logs/<UTC timestamp>` under `base`, created (with a suffix if a deploy started the same second).
pub fn create_log_dir(base: &Path) -> std::io::Result<PathBuf> {
    let stamp = utc_stamp(std::time::SystemTime::now());
    std::fs::create_dir_all(base)?;
    for n in 1.. {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = base.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(err),
        }
    }
    unreachable!("an unbounded range ends only by returning")
}

/// Why the deploy user's keys would not let this workstation in, when their `from="…"` options
/// exclude the address it reaches the host from (a lockout `check` cannot see: it does not know
/// where deploy runs). `None` when a key admits it, or nothing can be told.
pub(crate) fn source_refusal(host: &HostPlan) -> Option<String> {
    let sources = host.key_sources.as_ref()?;
    let ip = local_address_towards(&host.target)?;
    let excluded = sources
        .iter()
        .all(|s| model::names::from_allows(s, ip) == Some(false));
    excluded.then(|| {
        format!(
            "refused: every key of `{}` is limited by `from=` ({}), and none admits this workstation's address {ip}; \
             add it to the keys' `from=` in the inventory",
            host.target.user,
            sources.join("; ")
        )
    })
}

/// The local address this machine would use to reach `target`: a UDP socket is "connected" (no
/// packet is sent) and asked for its own address.
fn local_address_towards(target: &Target) -> Option<std::net::IpAddr> {
    use std::net::ToSocketAddrs as _;
    let remote = (target.address.as_str(), target.port)
        .to_socket_addrs()
        .ok()?
        .next()?;
    let bind: std::net::SocketAddr = if remote.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(remote).ok()?;
    Some(socket.local_addr().ok()?.ip())
}

/// `20261121T120619Z`.
fn utc_stamp(time: std::time::SystemTime) -> String {
    jiff::Timestamp::try_from(time)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan for `root@127.0.0.1` whose keys carry `from=` lists.
    fn loopback_host(sources: Option<Vec<&str>>) -> HostPlan {
        let fleet = model::load_str(
            "[fleet]\nstate_version = \"26.05\"\n[ssh]\nroot_keys = [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf r@ws\"]\n[hosts.box]\nboard = \"x86_64\"\naddress = \"127.0.0.1\"\n",
            "fleet.toml",
        )
        .expect("valid")
        .fleet;
        let names = [model::HostName::new("box").expect("name")];
        let mut plan = crate::Plan::deploy(&fleet, &names, &crate::Options::default())
            .expect("a plan")
            .hosts
            .remove(0);
        plan.key_sources = sources.map(|s| s.into_iter().map(str::to_owned).collect());
        plan
    }

    #[test]
    fn keys_limited_to_other_sources_refuse_the_workstation() {
        // The workstation reaches 127.0.0.1 from 127.0.0.1.
        let refusal = source_refusal(&loopback_host(Some(vec!["10.0.0.0/8", "192.168.1.*"])));
        assert!(
            refusal
                .as_deref()
                .is_some_and(|r| r.contains("none admits this workstation's address 127.0.0.1")),
            "{refusal:?}"
        );
        assert_eq!(
            source_refusal(&loopback_host(Some(vec!["10.0.0.0/8", "127.0.0.0/8"]))),
            None
        );
        assert_eq!(
            source_refusal(&loopback_host(Some(vec!["*.example.org"]))),
            None
        );
        assert_eq!(source_refusal(&loopback_host(None)), None);
    }

    #[test]
    fn plans_carry_the_keys_from_restrictions() {
        let fleet = model::load_str(
            "[fleet]\nstate_version = \"26.05\"\n[ssh]\nroot_keys = ['from=\"10.0.0.0/8\" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIN/AROyqCRnG7LR8F2+d+V4hkfckmsMtRuC0uRqBKwjf r@ws']\n[hosts.box]\nboard = \"x86_64\"\naddress = \"127.0.0.1\"\n",
            "fleet.toml",
        )
        .expect("valid")
        .fleet;
        let names = [model::HostName::new("box").expect("name")];
        let plan = crate::Plan::deploy(&fleet, &names, &crate::Options::default()).expect("a plan");
        assert_eq!(
            plan.hosts[0].key_sources,
            Some(vec!["10.0.0.0/8".to_owned()])
        );
    }

    #[test]
    fn stamp() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_795_262_779);
        assert_eq!(utc_stamp(t), "20261121T120619Z");
        assert_eq!(utc_stamp(std::time::UNIX_EPOCH), "19700101T000000Z");
    }

    #[test]
    fn ssh_failures_are_explained() {
        let msg = explain_ssh_failure(
            "root@127.0.0.9",
            "ssh: connect to host 127.0.0.9 port 4242: Connection refused\n",
        );
        assert_eq!(
            msg,
            "cannot log in as root@127.0.0.9: nothing listens on the SSH port (ssh: connect to host 127.0.0.9 port 4242: Connection refused)"
        );
        assert!(
            explain_ssh_failure("a@b", "root@b: Permission denied (publickey).")
                .contains("the key was rejected")
        );
    }
}

//! Running a [`Plan`]: the SSH preflight for every host, then each host's steps on a pool of at most
//! `parallel` workers. A host's failure is recorded in its [`HostReport`] and never stops the others;
//! every line a command prints goes to the host's log file and to the [`Observer`].
//!
//! A host's deploy is a small state machine (docs/deploy.md has the diagram): build, copy, record
//! what it runs, arm the dead man's switch, start the activation, watch it end, confirm over fresh
//! connections until shortly before the host's deadline, disarm, commit. Whatever goes wrong after
//! the activation started, the host is never left to the workstation's luck: a failed confirmation
//! asks the host to go back at once, and a host that cannot be reached goes back by itself; pifleet
//! then keeps asking until it can say where the host ended up.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::confirm::{self, Confirmation, Generation, HostState};
use crate::exec::{self, Captured, command};
use crate::plan::{CommandSpec, Flow, HostPlan, Plan, Target};
use crate::remote;

/// How long to keep reading a command's output after it exited: a background process it left
/// behind (an SSH control master) may hold the pipe open for a long time.
const DRAIN_GRACE: Duration = Duration::from_millis(500);

/// Where a host is in its deploy, for live status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Checking that the deploy user can log in.
    Preflight,
    /// Waiting for a free worker (or for the canaries).
    Queued,
    /// `nix build`.
    Building,
    /// `nix copy`.
    Copying,
    /// Recording what the host runs and arming the rollback timer.
    Arming,
    /// The new system is being activated.
    Activating,
    /// Checking over a fresh connection that login, the system and the health checks work.
    Confirming,
    /// Making the new system the boot default.
    Committing,
    /// Rebooting into the new generation and waiting for it.
    Rebooting,
    /// Going back to the previous system.
    RollingBack,
    /// The host cannot be reached: waiting for it to go back by itself and answer again.
    WaitingForHost,
}

impl Phase {
    /// A short word for status lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Queued => "queued",
            Phase::Building => "building",
            Phase::Copying => "copying",
            Phase::Arming => "arming",
            Phase::Activating => "activating",
            Phase::Confirming => "confirming",
            Phase::Committing => "committing",
            Phase::Rebooting => "rebooting",
            Phase::RollingBack => "rolling back",
            Phase::WaitingForHost => "waiting for the host",
        }
    }
}

/// How a host ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Deployed, confirmed where the action activates, and committed where it commits.
    Succeeded,
    /// The preflight could not log in; nothing ran.
    Unreachable,
    /// A step before the activation (build, copy, arming) failed; the host runs what it ran.
    Failed,
    /// The new system was not confirmed and the host went back to the previous one (asked to, or
    /// by itself through its timer).
    RolledBack,
    /// The confirmation failed and nothing went back: `--no-magic-rollback`, or the way back failed.
    NotConfirmed,
    /// Confirmed and running, but the boot default could not be changed: a reboot returns to the
    /// previous system.
    Uncommitted,
    /// The host stopped answering and did not answer again before pifleet gave up.
    Lost,
    /// Not deployed because a canary was not confirmed.
    Skipped,
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
            Status::Uncommitted => "uncommitted",
            Status::Lost => "lost",
            Status::Skipped => "skipped",
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
    /// Units `systemctl --failed` listed at the confirmation.
    pub failed_units: Vec<String>,
    /// What it ran before, when it was read.
    pub before: Option<Generation>,
    /// What it runs at the end, when it could be read.
    pub after: Option<Generation>,
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
    /// A hard limit for one short SSH command (probe, confirmation, disarm; ssh's own
    /// ConnectTimeout covers the connection, this a login that hangs after it).
    pub ssh_timeout: Duration,
    /// How long an activation that the host still reports as running is waited for.
    pub activation_timeout: Duration,
    /// How long a rebooting host is waited for, on top of its deadline.
    pub reboot_timeout: Duration,
    /// Where `<host>.log` files go; must exist.
    pub log_dir: PathBuf,
}

/// How a host's run ended, before it becomes a [`HostReport`].
struct Outcome {
    status: Status,
    detail: String,
    failed_units: Vec<String>,
    before: Option<Generation>,
    after: Option<Generation>,
}

impl Outcome {
    fn new(status: Status, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: detail.into(),
            failed_units: Vec::new(),
            before: None,
            after: None,
        }
    }
}

/// The pause between probes of one host: a tenth of its deadline, within 0.2 s and 2 s.
fn poll_interval(deadline: u32) -> Duration {
    (Duration::from_secs(u64::from(deadline)) / 10)
        .clamp(Duration::from_millis(200), Duration::from_secs(2))
}

/// How long before the host's own deadline the workstation stops confirming and decides, so that
/// its disarm (or its rollback request) arrives first: a quarter of the deadline, within 1 s and 30 s.
fn margin(deadline: u32) -> Duration {
    (Duration::from_secs(u64::from(deadline)) / 4)
        .clamp(Duration::from_secs(1), Duration::from_secs(30))
}

fn secs(deadline: u32) -> Duration {
    Duration::from_secs(u64::from(deadline))
}

/// Runs plans.
#[derive(Debug)]
pub struct Executor<'a, O: Observer> {
    options: RunOptions,
    observer: &'a O,
}

/// One host's run: the plan, its log, and what is known so far.
struct Run<'e, 'a, O: Observer> {
    ex: &'e Executor<'a, O>,
    plan: &'e HostPlan,
    log: Option<File>,
    toplevel: Option<String>,
    previous: Option<String>,
    before: Option<Generation>,
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
            let mut run = Run {
                ex: self,
                plan: host,
                log: self.open_log(&host.host),
                toplevel: None,
                previous: None,
                before: None,
            };
            let mut outcome = run.go();
            if outcome.before.is_none() {
                outcome.before = run.before.clone();
            }
            write_log(
                &mut run.log,
                &format!("{}: {}", outcome.status.as_str(), outcome.detail),
            );
            let report = HostReport {
                host: host.host.clone(),
                status: outcome.status,
                detail: outcome.detail,
                failed_units: outcome.failed_units,
                before: outcome.before,
                after: outcome.after,
                log: self.log_path(&host.host),
                elapsed: started.elapsed(),
            };
            self.observer.finished(&report);
            report
        })
    }

    /// A report for a host that failed its preflight, for the summary.
    pub fn unreachable(&self, host: &HostPlan, reason: &str) -> HostReport {
        self.not_run(host, Status::Unreachable, reason)
    }

    /// A report for a host left out because a canary was not confirmed.
    pub fn skipped(&self, host: &HostPlan, reason: &str) -> HostReport {
        self.not_run(host, Status::Skipped, reason)
    }

    fn not_run(&self, host: &HostPlan, status: Status, reason: &str) -> HostReport {
        let report = HostReport {
            host: host.host.clone(),
            status,
            detail: reason.to_owned(),
            failed_units: Vec::new(),
            before: None,
            after: None,
            log: self.log_path(&host.host),
            elapsed: Duration::ZERO,
        };
        self.observer.finished(&report);
        report
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

    /// Runs `spec`, sending each line of its stdout and stderr to the log and the observer; returns
    /// its exit status and its standard output's lines.
    fn stream(
        &self,
        host: &str,
        spec: &CommandSpec,
        log: &mut Option<File>,
    ) -> std::io::Result<(ExitStatus, Vec<String>)> {
        self.say(host, log, &format!("$ {spec}"));
        let mut cmd = command(spec);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let (tx, rx) = mpsc::channel::<(bool, String)>();
        // Not scoped: a process the command left behind may keep a pipe open indefinitely.
        let reader = |pipe: Option<Box<dyn std::io::Read + Send>>, is_stdout: bool| {
            let tx = tx.clone();
            thread::spawn(move || {
                let Some(pipe) = pipe else { return };
                for line in BufReader::new(pipe).split(b'\n') {
                    let Ok(line) = line else { break };
                    if tx
                        .send((is_stdout, String::from_utf8_lossy(&line).into_owned()))
                        .is_err()
                    {
                        break;
                    }
                }
            });
        };
        reader(child.stdout.take().map(|p| Box::new(p) as _), true);
        reader(child.stderr.take().map(|p| Box::new(p) as _), false);
        drop(tx);
        let mut stdout = Vec::new();
        let mut exited: Option<(ExitStatus, Instant)> = None;
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok((is_stdout, line)) => {
                    let line = line.trim_end_matches('\r');
                    write_log(log, line);
                    self.observer.line(host, line);
                    if is_stdout {
                        stdout.push(line.to_owned());
                    }
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
        let status = match exited {
            Some((status, _)) => status,
            None => child.wait()?,
        };
        Ok((status, stdout))
    }

    /// Runs `spec` with the SSH time limit, capturing its output.
    fn capture(&self, spec: &CommandSpec) -> std::io::Result<Captured> {
        exec::capture(spec, self.options.ssh_timeout)
    }
}

/// Why an SSH step did not do its job: the host could not be reached (worth waiting for), or it
/// answered with a failure.
enum StepError {
    Unreachable(String),
    Failed(String),
}

impl StepError {
    fn text(&self) -> &str {
        match self {
            StepError::Unreachable(s) | StepError::Failed(s) => s,
        }
    }
}

impl<O: Observer> Run<'_, '_, O> {
    fn name(&self) -> &str {
        &self.plan.host
    }

    fn say(&mut self, line: &str) {
        self.ex.say(&self.plan.host, &mut self.log, line);
    }

    fn phase(&self, phase: Phase) {
        self.ex.observer.phase(&self.plan.host, phase);
    }

    fn bound(&self, spec: &CommandSpec) -> CommandSpec {
        spec.bind(self.toplevel.as_deref(), self.previous.as_deref())
    }

    /// A long step whose output is streamed: build, copy, commit, rollback (they run on the host as
    /// transient units, so a dropped connection stops only the watching).
    fn stream(&mut self, spec: &CommandSpec) -> Result<Vec<String>, StepError> {
        let spec = self.bound(spec);
        match self.ex.stream(&self.plan.host, &spec, &mut self.log) {
            Ok((status, stdout)) if status.success() => Ok(stdout),
            Ok((status, _)) if spec.program == "ssh" && status.code() == Some(255) => {
                Err(StepError::Unreachable(format!(
                    "the connection to {} failed",
                    self.plan.target.destination()
                )))
            }
            Ok((status, _)) => Err(StepError::Failed(format!(
                "{} exited with {}",
                step_name(&spec),
                describe(status)
            ))),
            Err(err) => Err(StepError::Failed(format!(
                "cannot run {}: {err}",
                spec.program
            ))),
        }
    }

    /// A short SSH step, with the SSH time limit; its output goes to the log (and to the observer).
    fn short(&mut self, spec: &CommandSpec) -> Result<Captured, StepError> {
        let spec = self.bound(spec);
        self.say(&format!("$ {spec}"));
        let out = match self.ex.capture(&spec) {
            Ok(out) => out,
            Err(err) => return Err(StepError::Failed(format!("cannot run ssh: {err}"))),
        };
        for line in out.stdout.lines().chain(out.stderr.lines()) {
            self.say(line);
        }
        let destination = self.plan.target.destination();
        match out.status {
            Some(s) if s.success() => Ok(out),
            Some(s) if s.code() == Some(255) => Err(StepError::Unreachable(explain_ssh_failure(
                &destination,
                &out.stderr,
            ))),
            Some(s) => Err(StepError::Failed(format!(
                "{} exited with {}{}",
                step_name(&spec),
                describe(s),
                last_line(&out.stderr).map_or(String::new(), |l| format!(": {l}"))
            ))),
            None => Err(StepError::Unreachable(format!(
                "no answer from {destination} within {} s",
                self.ex.options.ssh_timeout.as_secs()
            ))),
        }
    }

    /// What the host runs and the state of the deploy, through the plan's login or its fallback.
    fn probe(&mut self) -> Result<HostState, StepError> {
        let first = self.short(&self.plan.probe.clone());
        let out = match (first, self.plan.probe_fallback.clone()) {
            (Ok(out), _) => out,
            (Err(StepError::Unreachable(_)), Some(fallback)) => self.short(&fallback)?,
            (Err(err), _) => return Err(err),
        };
        Ok(HostState::parse(&out.stdout))
    }

    fn go(&mut self) -> Outcome {
        if let Some(build) = self.plan.build.clone()
            && let Err(outcome) = self.build(&build)
        {
            return outcome;
        }
        match self.plan.flow {
            Flow::Activate => self.activate_flow(),
            Flow::Boot => self.boot_flow(),
            Flow::DryActivate => self.dry_activate_flow(),
            Flow::ProfileRollback => self.profile_rollback_flow(),
        }
    }

    /// `nix build`, whose last line of output is the system's store path, then `nix copy`.
    fn build(&mut self, build: &CommandSpec) -> Result<(), Outcome> {
        self.phase(Phase::Building);
        let stdout = self
            .stream(build)
            .map_err(|e| Outcome::new(Status::Failed, e.text()))?;
        let path = stdout
            .iter()
            .rev()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_owned())
            .unwrap_or_default();
        let path = remote::store_path(&path)
            .map_err(|e| Outcome::new(Status::Failed, format!("nix build: {e}")))?
            .to_owned();
        self.say(&format!("built {path}"));
        self.toplevel = Some(path);
        self.phase(Phase::Copying);
        for copy in self.plan.copy.clone() {
            self.stream(&copy)
                .map_err(|e| Outcome::new(Status::Failed, e.text()))?;
        }
        Ok(())
    }

    /// Reads what the host runs now: the way back.
    fn record(&mut self) -> Result<HostState, Outcome> {
        let state = self.probe().map_err(|e| {
            Outcome::new(
                Status::Failed,
                format!("cannot read what the host runs: {}", e.text()),
            )
        })?;
        let current = state.current.clone().unwrap_or_default();
        let previous = remote::store_path(&current)
            .map_err(|e| Outcome::new(Status::Failed, format!("/run/current-system: {e}")))?
            .to_owned();
        self.before = state.running();
        self.previous = Some(previous);
        Ok(state)
    }

    fn dry_activate_flow(&mut self) -> Outcome {
        let Some(activate) = self.plan.activate.clone() else {
            return Outcome::new(Status::Succeeded, "built and copied");
        };
        match self.stream(&activate) {
            Ok(_) => Outcome::new(
                Status::Succeeded,
                "dry-activate: what activation would change is above; nothing was activated",
            ),
            Err(e) => Outcome::new(Status::Failed, e.text()),
        }
    }

    fn boot_flow(&mut self) -> Outcome {
        if let Err(outcome) = self.record() {
            return outcome;
        }
        let Some(commit) = self.plan.commit.clone() else {
            return Outcome::new(Status::Succeeded, "built and copied");
        };
        self.phase(Phase::Committing);
        if let Err(e) = self.stream(&commit) {
            return Outcome::new(Status::Failed, format!("the commit failed: {}", e.text()));
        }
        let after = self.probe().ok();
        let boot = after
            .as_ref()
            .and_then(|s| s.profile.map(|n| format!("generation {n}")))
            .unwrap_or_else(|| "the new system".into());
        let mut outcome = Outcome::new(
            Status::Succeeded,
            format!("{boot} is the boot default; it starts at the next boot"),
        );
        outcome.after = after.and_then(|s| s.running());
        outcome
    }

    fn profile_rollback_flow(&mut self) -> Outcome {
        if let Err(outcome) = self.record() {
            return outcome;
        }
        let before = self.before.clone();
        self.phase(Phase::RollingBack);
        let Some(activate) = self.plan.activate.clone() else {
            return Outcome::new(Status::Failed, "nothing to run");
        };
        if let Err(e) = self.stream(&activate) {
            let mut outcome =
                Outcome::new(Status::Failed, format!("going back failed: {}", e.text()));
            outcome.after = self.probe().ok().and_then(|s| s.running());
            return outcome;
        }
        let after = self.probe().ok().and_then(|s| s.running());
        let moved = format!(
            "{} -> {}",
            before.as_ref().map_or("?".into(), ToString::to_string),
            after.as_ref().map_or("?".into(), ToString::to_string)
        );
        let until = Instant::now() + secs(self.plan.deadline);
        let mut outcome = match self.confirm_until(None, until) {
            Confirmation::Running => Outcome::new(Status::Succeeded, format!("{moved}; running")),
            Confirmation::Degraded(units) => {
                let mut o = Outcome::new(
                    Status::Succeeded,
                    format!("{moved}; degraded: failed units: {}", confirm::list(&units)),
                );
                o.failed_units = units;
                o
            }
            Confirmation::Failed(problem) => {
                Outcome::new(Status::NotConfirmed, format!("{moved}; {problem}"))
            }
        };
        outcome.after = after;
        outcome
    }

    /// The confirmation until `until`, expecting `expect` to run.
    fn confirm_until(&mut self, expect: Option<&str>, until: Instant) -> Confirmation {
        let Some(spec) = self.plan.confirm.clone() else {
            return Confirmation::Running;
        };
        let spec = self.bound(&spec);
        self.phase(Phase::Confirming);
        self.say(&format!("$ {spec}"));
        let login = self.plan.confirm_login.clone();
        let health = self.plan.health.clone();
        let interval = poll_interval(self.plan.deadline);
        let timeout = self.ex.options.ssh_timeout;
        let (ex, host, log) = (self.ex, self.plan.host.clone(), &mut self.log);
        confirm::confirm(
            &spec,
            &login,
            expect,
            &health,
            until,
            interval,
            timeout,
            &mut |line| ex.say(&host, log, line),
        )
    }

    fn power_cycle_note(&self) -> String {
        format!(
            "until it is committed, power-cycling {} brings back {} (the boot default is unchanged)",
            self.name(),
            self.before
                .as_ref()
                .map_or_else(|| "the previous system".to_owned(), ToString::to_string)
        )
    }

    fn activate_flow(&mut self) -> Outcome {
        let plan = self.plan;
        self.phase(Phase::Arming);
        if let Err(outcome) = self.record() {
            return outcome;
        }
        for step in [plan.prepare.clone(), plan.arm.clone()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = self.short(&step) {
                return Outcome::new(
                    Status::Failed,
                    format!("{}; nothing was activated", e.text()),
                );
            }
        }
        let Some(activate) = plan.activate.clone() else {
            return Outcome::new(Status::Failed, "no activation in the plan");
        };
        self.phase(Phase::Activating);
        if let Err(e) = self.short(&activate) {
            // The activation unit may have started even if the answer got lost: the switch covers it.
            return match e {
                StepError::Failed(why) if plan.arm.is_some() => {
                    self.rollback_now(format!("the activation did not start: {why}"))
                }
                StepError::Failed(why) => Outcome::new(Status::Failed, why),
                StepError::Unreachable(why) => self.host_decides(
                    format!("lost the host while starting the activation: {why}"),
                    Instant::now(),
                ),
            };
        }
        let note = self.power_cycle_note();
        self.say(&note);

        // Watch the activation end.
        let deadline = secs(plan.deadline);
        let interval = poll_interval(plan.deadline);
        let started = Instant::now();
        let mut last_contact = Instant::now();
        let mut lost: Option<String> = None;
        let fire_at = loop {
            thread::sleep(interval);
            match self.probe() {
                Ok(state) => {
                    last_contact = Instant::now();
                    if matches!(state.decided.as_deref(), Some("rollback" | "expired")) {
                        let problem = match lost.take() {
                            Some(why) => format!(
                                "not confirmed: the host could not be reached after the activation ({why})"
                            ),
                            None => {
                                "not confirmed: the host decided before the confirmation".to_owned()
                            }
                        };
                        return self.report_host_state(state, &problem);
                    }
                    if let (Some(status), Some(end), Some(now)) =
                        (state.status, state.activated, state.now)
                    {
                        if !state.log.is_empty() {
                            self.say("activation output:");
                            for line in &state.log {
                                self.say(&format!("  {line}"));
                            }
                        }
                        let left = (end + i64::from(plan.deadline) - now).max(0);
                        let fire_at =
                            Instant::now() + Duration::from_secs(u64::try_from(left).unwrap_or(0));
                        if status != 0 {
                            return self.rollback_now(format!(
                                "switch-to-configuration test exited with {status}"
                            ));
                        }
                        self.say("activated");
                        break fire_at;
                    }
                    if started.elapsed() > self.ex.options.activation_timeout {
                        return Outcome::new(
                            Status::NotConfirmed,
                            format!(
                                "the activation still runs after {} s; {}",
                                started.elapsed().as_secs(),
                                if plan.arm.is_some() {
                                    "the host goes back by itself after it ends unless confirmed"
                                } else {
                                    "nothing will roll it back"
                                }
                            ),
                        );
                    }
                }
                Err(e) => {
                    if last_contact.elapsed() > deadline {
                        return self.host_decides(
                            format!("lost the host during the activation: {}", e.text()),
                            last_contact + deadline,
                        );
                    }
                    if lost.is_none() {
                        self.say(&format!(
                            "lost the host: {}; if the new system cut it off, the host goes back to the previous system by itself when its timer fires; still trying",
                            e.text()
                        ));
                    } else {
                        self.say(&format!("{}; still trying", e.text()));
                    }
                    lost = Some(e.text().to_owned());
                }
            }
        };

        // Confirm, leaving the disarm time to arrive before the host's own deadline.
        let until = if plan.arm.is_some() {
            fire_at
                .checked_sub(margin(plan.deadline))
                .unwrap_or(fire_at)
        } else {
            fire_at
        };
        let toplevel = self.toplevel.clone();
        let confirmation = self.confirm_until(toplevel.as_deref(), until);
        let (detail, failed_units) = match confirmation {
            Confirmation::Running => ("running".to_owned(), Vec::new()),
            Confirmation::Degraded(units) => (
                format!("degraded: failed units: {}", confirm::list(&units)),
                units,
            ),
            Confirmation::Failed(problem) => {
                if plan.arm.is_none() {
                    let mut outcome = Outcome::new(
                        Status::NotConfirmed,
                        format!(
                            "{problem}; not rolled back (--no-magic-rollback): it runs the new system, uncommitted; \
                             power-cycling brings back {}",
                            self.before.as_ref().map_or_else(
                                || "the previous system".to_owned(),
                                ToString::to_string
                            )
                        ),
                    );
                    outcome.after = self.probe().ok().and_then(|s| s.running());
                    return outcome;
                }
                return self.rollback_now(problem);
            }
        };
        self.say(&format!("confirmed: {detail}"));

        if let Some(disarm) = plan.disarm.clone()
            && let Some(outcome) = self.disarm(&disarm, fire_at)
        {
            return outcome;
        }
        let mut outcome = match (&plan.reboot, plan.commit.clone()) {
            (Some(_), Some(_)) => self.reboot_flow(),
            (None, Some(commit)) => self.commit(&commit, &detail),
            (_, None) => Outcome::new(
                Status::Succeeded,
                format!(
                    "{detail}; not committed (test): a reboot returns to {}",
                    self.before
                        .as_ref()
                        .map_or_else(|| "the previous system".to_owned(), ToString::to_string)
                ),
            ),
        };
        if outcome.failed_units.is_empty() {
            outcome.failed_units = failed_units;
        }
        if outcome.after.is_none() {
            outcome.after = self.probe().ok().and_then(|s| s.running());
        }
        outcome
    }

    /// Disarms the switch; `None` when the host took it, else how the run ends.
    fn disarm(&mut self, disarm: &CommandSpec, fire_at: Instant) -> Option<Outcome> {
        let interval = poll_interval(self.plan.deadline);
        loop {
            match self.short(disarm) {
                Ok(_) => return None,
                Err(StepError::Failed(why)) => {
                    // Exit 3: the host had already decided to go back.
                    return Some(self.host_decides(
                        format!("confirmed, but too late to disarm: {why}"),
                        Instant::now(),
                    ));
                }
                Err(StepError::Unreachable(why)) => {
                    if Instant::now() >= fire_at {
                        // It may have been disarmed with the answer lost: ask what it decided.
                        return Some(self.host_decides(
                            format!("confirmed, but the disarm did not get through: {why}"),
                            fire_at,
                        ));
                    }
                    self.say(&format!("{why}; trying the disarm again"));
                    thread::sleep(interval);
                }
            }
        }
    }

    fn commit(&mut self, commit: &CommandSpec, detail: &str) -> Outcome {
        self.phase(Phase::Committing);
        match self.stream(commit) {
            Ok(_) => {
                let after = self.probe().ok();
                let generation = after
                    .as_ref()
                    .and_then(|s| s.profile.map(|n| format!("generation {n}")))
                    .unwrap_or_else(|| "the new system".into());
                let mut outcome = Outcome::new(
                    Status::Succeeded,
                    format!("{detail}; committed: {generation} is the boot default"),
                );
                outcome.after = after.and_then(|s| s.running());
                outcome
            }
            Err(e) => Outcome::new(
                Status::Uncommitted,
                format!(
                    "{detail}, confirmed, but the commit failed ({}): it runs the new system while the boot default \
                     is still {}; deploy again",
                    e.text(),
                    self.before
                        .as_ref()
                        .map_or_else(|| "the previous system".to_owned(), ToString::to_string)
                ),
            ),
        }
    }

    /// Asks the host to go back now; when it cannot be reached, waits for it to go back by itself.
    fn rollback_now(&mut self, problem: String) -> Outcome {
        let Some(rollback) = self.plan.rollback.clone() else {
            return Outcome::new(Status::NotConfirmed, problem);
        };
        self.say(&format!("{problem}; going back to the previous system"));
        self.phase(Phase::RollingBack);
        match self.stream(&rollback) {
            Ok(_) => match self.probe() {
                Ok(state) => self.report_host_state(state, &problem),
                Err(e) => Outcome::new(
                    Status::NotConfirmed,
                    format!(
                        "{problem}; went back, but the host cannot be read now: {}",
                        e.text()
                    ),
                ),
            },
            Err(StepError::Unreachable(why)) => {
                self.host_decides(format!("{problem}; {why}"), Instant::now())
            }
            Err(StepError::Failed(why)) => {
                let mut outcome = Outcome::new(
                    Status::NotConfirmed,
                    format!("{problem}; going back failed too ({why})"),
                );
                outcome.after = self.probe().ok().and_then(|s| s.running());
                outcome
            }
        }
    }

    /// The host cannot be reached (or already decided): keep asking until it says where it is, for
    /// the host's deadline after `fire_at` (when its timer fires at the latest, as far as the
    /// workstation can tell).
    fn host_decides(&mut self, problem: String, fire_at: Instant) -> Outcome {
        self.phase(Phase::WaitingForHost);
        let deadline = secs(self.plan.deadline);
        let give_up = fire_at.max(Instant::now()) + deadline;
        let note = self.power_cycle_note();
        self.say(&format!(
            "{problem}; the host goes back to the previous system by itself when its timer fires; \
             asking until it answers ({note})"
        ));
        let interval = poll_interval(self.plan.deadline);
        let mut last = problem.clone();
        loop {
            match self.probe() {
                Ok(state) => {
                    let settled = match state.decided.as_deref() {
                        Some("rollback") => state.rollback_status.is_some(),
                        Some("confirmed" | "expired") => true,
                        _ => false,
                    };
                    if settled || Instant::now() >= give_up {
                        return self.report_host_state(state, &problem);
                    }
                }
                Err(e) => last = e.text().to_owned(),
            }
            if Instant::now() >= give_up {
                let mut outcome = Outcome::new(
                    Status::Lost,
                    format!(
                        "{problem}; no answer since ({last}). Unless its timer was stopped, it went back to {} \
                         by itself; power-cycling boots that too (the boot default never changed)",
                        self.before
                            .as_ref()
                            .map_or_else(|| "the previous system".to_owned(), ToString::to_string)
                    ),
                );
                outcome.after = None;
                return outcome;
            }
            thread::sleep(interval);
        }
    }

    /// What the host says about how the deploy ended.
    fn report_host_state(&mut self, state: HostState, problem: &str) -> Outcome {
        let running = state.running();
        let on = running
            .as_ref()
            .map_or_else(|| "an unknown system".to_owned(), ToString::to_string);
        let back = self.previous.is_some() && state.current == self.previous;
        let mut outcome = match state.decided.as_deref() {
            Some("rollback") if back && state.rollback_status == Some(0) => Outcome::new(
                Status::RolledBack,
                match state.rollback_by.as_deref() {
                    Some("timer") => format!(
                        "{problem}; the host went back by itself (its rollback timer fired {} s after the activation ended) and runs {on}",
                        self.plan.deadline
                    ),
                    _ => format!("{problem}; the host went back on request and runs {on}"),
                },
            ),
            Some("rollback") => Outcome::new(
                Status::NotConfirmed,
                format!(
                    "{problem}; the host tried to go back, {}; it runs {on}",
                    match state.rollback_status {
                        Some(code) => format!("which exited with {code}"),
                        None => "and has not finished".to_owned(),
                    }
                ),
            ),
            Some("expired") => Outcome::new(
                Status::RolledBack,
                format!(
                    "{problem}; the timer fired before the activation started, so nothing changed: it runs {on}"
                ),
            ),
            Some("confirmed") => Outcome::new(
                Status::Uncommitted,
                format!(
                    "{problem}; the host was disarmed, so it runs {on}, uncommitted: deploy again"
                ),
            ),
            _ => Outcome::new(
                Status::NotConfirmed,
                format!("{problem}; the host has not decided: it runs {on}"),
            ),
        };
        outcome.after = running;
        outcome
    }

    /// `--reboot` after the live confirmation and the disarm.
    fn reboot_flow(&mut self) -> Outcome {
        let plan = self.plan;
        let (Some(reboot), Some(commit)) = (plan.reboot.clone(), plan.commit.clone()) else {
            return Outcome::new(Status::Failed, "no reboot in the plan");
        };
        let toplevel = self.toplevel.clone();
        let commit_first = reboot.stage.is_none();
        self.phase(Phase::Rebooting);
        if let Some(stage) = &reboot.stage {
            if let Err(e) = self.stream(stage) {
                return Outcome::new(
                    Status::Uncommitted,
                    format!(
                        "confirmed live, but preparing the one-shot boot failed ({}): not rebooted, not committed; \
                         a reboot returns to the previous system",
                        e.text()
                    ),
                );
            }
        } else {
            self.say(
                "this boot loader has no one-shot boot: committing before the reboot (--commit-before-reboot); \
                 if the new generation does not boot, only the boot menu on a console brings back the previous one",
            );
            let committed = self.commit(&commit, "confirmed live");
            if committed.status != Status::Succeeded {
                return committed;
            }
            self.phase(Phase::Rebooting);
        }
        if let Err(outcome) = self.reboot_and_wait(&reboot.reboot) {
            return outcome;
        }
        let until = Instant::now() + secs(plan.deadline);
        match self.confirm_until(toplevel.as_deref(), until) {
            Confirmation::Running | Confirmation::Degraded(_) if commit_first => {
                let mut outcome = Outcome::new(
                    Status::Succeeded,
                    "rebooted into the new generation (committed first) and confirmed",
                );
                outcome.after = self.probe().ok().and_then(|s| s.running());
                outcome
            }
            Confirmation::Running | Confirmation::Degraded(_) => self.commit(
                &commit,
                "rebooted into the new generation once and confirmed",
            ),
            Confirmation::Failed(problem) => {
                let state = self.probe().ok();
                let on_previous = state.as_ref().and_then(|s| s.current.clone()) == self.previous;
                if on_previous && !commit_first {
                    let mut outcome = Outcome::new(
                        Status::RolledBack,
                        format!(
                            "after the reboot: {problem}; the one-shot boot is used up and the host booted the previous system again"
                        ),
                    );
                    outcome.after = state.and_then(|s| s.running());
                    return outcome;
                }
                if state.is_none() {
                    return Outcome::new(
                        Status::Lost,
                        format!(
                            "after the reboot: {problem}; {}",
                            if commit_first {
                                "the new generation is the boot default: pick the previous one in the boot menu on a console"
                            } else {
                                "power-cycling boots the previous system (the boot default)"
                            }
                        ),
                    );
                }
                self.say(&format!(
                    "after the reboot: {problem}; rebooting into the previous system"
                ));
                if let Some(uncommit) = &reboot.uncommit
                    && let Err(e) = self.stream(uncommit)
                {
                    return Outcome::new(
                        Status::NotConfirmed,
                        format!(
                            "after the reboot: {problem}; making the previous system the boot default failed ({})",
                            e.text()
                        ),
                    );
                }
                if let Err(outcome) = self.reboot_and_wait(&reboot.reboot) {
                    return outcome;
                }
                let state = self.probe().ok();
                let mut outcome = Outcome::new(
                    Status::RolledBack,
                    format!(
                        "after the reboot: {problem}; rebooted into the previous system: it runs {}",
                        state
                            .as_ref()
                            .and_then(HostState::running)
                            .map_or_else(|| "an unknown system".to_owned(), |g| g.to_string())
                    ),
                );
                outcome.after = state.and_then(|s| s.running());
                outcome
            }
        }
    }

    /// Reboots the host and waits until it answers from a fresh boot (its `/run` forgot the deploy).
    fn reboot_and_wait(&mut self, reboot: &CommandSpec) -> Result<(), Outcome> {
        if let Err(e) = self.short(reboot) {
            return Err(Outcome::new(
                Status::Uncommitted,
                format!("the reboot could not be started: {}", e.text()),
            ));
        }
        self.say("rebooting; waiting for the host");
        let give_up = Instant::now() + self.ex.options.reboot_timeout + secs(self.plan.deadline);
        let interval = poll_interval(self.plan.deadline);
        loop {
            thread::sleep(interval);
            match self.probe() {
                Ok(state) if state.started.is_none() => {
                    self.say(&format!(
                        "back after the reboot, running {}",
                        state
                            .running()
                            .map_or_else(|| "an unknown system".to_owned(), |g| g.to_string())
                    ));
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if Instant::now() >= give_up => {
                    return Err(Outcome::new(
                        Status::Lost,
                        format!(
                            "did not come back after the reboot ({}); power-cycling boots the boot default",
                            e.text()
                        ),
                    ));
                }
                Err(_) => {}
            }
        }
    }
}

/// `program` and the remote step's first word, for messages: `ssh … systemd-run` is "the step on the host".
fn step_name(spec: &CommandSpec) -> String {
    if spec.program == "ssh" {
        "the command on the host".to_owned()
    } else {
        spec.args
            .first()
            .map_or_else(|| spec.program.clone(), |a| format!("{} {a}", spec.program))
    }
}

fn last_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).rfind(|l| !l.is_empty())
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

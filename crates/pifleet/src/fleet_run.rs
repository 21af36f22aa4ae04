//! What the commands that act on many hosts share (`deploy`, `rollback`, and `adopt` for its options):
//! the common flags, the plan options read from the command line and the environment, and running a
//! plan with a preflight, one confirmation prompt, live progress, per-host logs and a summary.

use std::collections::HashMap;
use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use deploy::{Executor, HostReport, Observer, Phase, Plan, RunOptions};

use crate::outcome::Outcome;
use crate::workspace::Workspace;

/// What `deploy` and `rollback` share: the inventory, the flake, how many at once, SSH limits.
#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    #[command(flatten)]
    pub(crate) inventory: crate::workspace::InventoryArg,
    /// The flake holding `nixosConfigurations.<host>`; `#<host>` is always appended.
    #[arg(long, default_value = ".", value_name = "REF")]
    pub(crate) flake: String,
    /// At most this many hosts at once.
    #[arg(long, default_value_t = 4, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) parallel: u16,
    /// Print the plan (hosts, and the commands in the order they run) and run nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Do not ask for confirmation on a terminal.
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    /// SSH ConnectTimeout, in seconds, for every connection.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub(crate) connect_timeout: u32,
    /// Seconds after the activation ends that each host waits for the confirmation before it goes
    /// back by itself [default: each host's `deploy.confirm_timeout`, 180 unless the inventory says].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(3..=86400))]
    pub(crate) confirm_timeout: Option<u32>,
    /// Where per-host logs go [default: $XDG_STATE_HOME/pifleet/logs, or ~/.local/state/pifleet/logs].
    #[arg(long, value_name = "DIR")]
    pub(crate) log_dir: Option<PathBuf>,
    /// `json` prints the plan (with --dry-run) or the results as one JSON document on stdout
    /// (see docs/deploy.md); progress and prompts stay on stderr.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub(crate) format: Format,
}

/// How `deploy` and `rollback` print the plan and the results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Aligned text.
    Human,
    /// One JSON document with a stable shape.
    Json,
}

/// The name of the results file each run leaves in its log directory (read by `pifleet status`).
pub(crate) const RESULTS_FILE: &str = "results.json";

fn spec_json(spec: &deploy::CommandSpec) -> serde_json::Value {
    let mut argv = vec![spec.program.clone()];
    argv.extend(spec.args.iter().cloned());
    serde_json::json!({
        "argv": argv,
        "env": spec.env.iter().map(|(k, v)| serde_json::json!([k, v])).collect::<Vec<_>>(),
    })
}

/// The plan as JSON: `{title, action, canary, hosts: [{host, system, target, steps: [{step, argv, env}]}]}`.
pub(crate) fn plan_json(plan: &Plan) -> serde_json::Value {
    let hosts: Vec<serde_json::Value> = plan
        .hosts
        .iter()
        .map(|h| {
            let mut steps = Vec::new();
            let mut push = |name: &str, spec: Option<&deploy::CommandSpec>| {
                if let Some(spec) = spec {
                    let mut step = spec_json(spec);
                    step["step"] = name.into();
                    steps.push(step);
                }
            };
            push("preflight", Some(&h.preflight));
            push("build", h.build.as_ref());
            for copy in &h.copy {
                push("copy", Some(copy));
            }
            push("record", Some(&h.probe));
            push("prepare", h.prepare.as_ref());
            push("arm", h.arm.as_ref());
            push("activate", h.activate.as_ref());
            push("confirm", h.confirm.as_ref());
            push("disarm", h.disarm.as_ref());
            push("commit", h.commit.as_ref());
            serde_json::json!({
                "host": h.host,
                "system": h.system,
                "target": { "user": h.target.user, "address": h.target.address, "port": h.target.port },
                "confirm_deadline_secs": h.deadline,
                "steps": steps,
            })
        })
        .collect();
    serde_json::json!({
        "title": plan.title,
        "canary": plan.canary,
        "hosts": hosts,
    })
}

/// One host's result as JSON: `{host, status, detail, failed_units, before, after, log, elapsed_secs}`.
fn report_json(r: &HostReport) -> serde_json::Value {
    serde_json::json!({
        "host": r.host,
        "status": r.status.as_str(),
        "detail": r.detail,
        "failed_units": r.failed_units,
        "before": r.before.as_ref().map(ToString::to_string),
        "after": r.after.as_ref().map(ToString::to_string),
        "log": r.log,
        "elapsed_secs": r.elapsed.as_secs(),
    })
}

/// The SSH options the user passes to Nix in `NIX_SSHOPTS`, split as a shell would (quotes kept
/// together: `-o "ProxyCommand=ssh -W %h:%p jump"` is two words, not five).
pub(crate) fn nix_sshopts() -> anyhow::Result<Vec<String>> {
    match std::env::var("NIX_SSHOPTS") {
        Ok(value) => shlex::split(&value).with_context(|| {
            format!("NIX_SSHOPTS is not valid shell words (an unclosed quote?): {value}")
        }),
        Err(_) => Ok(Vec::new()),
    }
}

/// The hosts that the words `HOST` and `@TAG` on the command line name (every host for none).
pub(crate) fn select(
    fleet: &model::Fleet,
    words: &[String],
) -> anyhow::Result<Vec<model::HostName>> {
    let selectors: Vec<_> = words.iter().map(|w| deploy::Selector::parse(w)).collect();
    Ok(deploy::select(fleet, &selectors)?)
}

/// Options every plan shares, from the command line and the environment.
pub(crate) fn plan_options(
    common: &Common,
    workspace: &Workspace,
    fleet: &model::Fleet,
    hosts: &[model::HostName],
) -> anyhow::Result<deploy::Options> {
    warn_unpinned(fleet, hosts);
    Ok(deploy::Options {
        flake: common.flake.clone(),
        ssh_options: nix_sshopts()?,
        connect_timeout: common.connect_timeout,
        confirm_timeout: common.confirm_timeout,
        known_hosts: Some(workspace.known_hosts()),
        ..deploy::Options::default()
    })
}

/// Hosts without a recorded key are reached the old way, trusting `~/.ssh/known_hosts`; say how to
/// pin them.
pub(crate) fn warn_unpinned(fleet: &model::Fleet, hosts: &[model::HostName]) {
    for name in hosts {
        if fleet.hosts.get(name).is_some_and(|h| h.host_key.is_none()) {
            eprintln!(
                "warning: no recorded host key for {name}: ssh trusts ~/.ssh/known_hosts for it; record it with \
                 `pifleet hostkey scan {name}` (a running host) or `pifleet hostkey new {name}` (before flashing)"
            );
        }
    }
}

/// Dry run, or preflight, confirmation prompt, run and summary.
pub(crate) fn execute(plan: &Plan, common: &Common, verb: &str) -> anyhow::Result<Outcome> {
    if common.dry_run {
        match common.format {
            Format::Human => print!("{plan}"),
            Format::Json => println!("{:#}", plan_json(plan)),
        }
        return Ok(Outcome::Clean);
    }
    if plan.hosts.is_empty() {
        println!("no hosts in the inventory: nothing to do");
        return Ok(Outcome::Clean);
    }
    let base = match &common.log_dir {
        Some(dir) => dir.clone(),
        None => crate::ui::log_dir().context("pass --log-dir")?,
    };
    let log_dir = deploy::create_log_dir(&base)
        .with_context(|| format!("creating a log directory under {}", base.display()))?;
    eprintln!("logs: {}", log_dir.display());

    let tty = std::io::stderr().is_terminal();
    let names: Vec<&str> = plan.hosts.iter().map(|h| h.host.as_str()).collect();
    let observer = Progress::new(&names, tty);
    let executor = Executor::new(
        run_options(
            usize::from(common.parallel),
            common.connect_timeout,
            &log_dir,
        ),
        &observer,
    );

    let preflight = executor.preflight(plan);
    let mut reports: Vec<HostReport> = Vec::new();
    let mut reachable = Vec::new();
    for (host, result) in plan.hosts.iter().zip(&preflight) {
        match result {
            None => reachable.push(host),
            Some(reason) => reports.push(executor.unreachable(host, reason)),
        }
    }
    if !reports.is_empty() {
        observer.message(&format!(
            "{} of {} host(s) unreachable; they are skipped",
            reports.len(),
            plan.hosts.len()
        ));
    }
    let mut confirmed = true;
    if !reachable.is_empty() && !common.yes && crate::ui::interactive() {
        let list: Vec<&str> = reachable.iter().map(|h| h.host.as_str()).collect();
        confirmed = observer.ask(&format!("{verb} ({}) to {}?", plan.title, list.join(", ")))?;
    }
    if !confirmed {
        observer.done();
        eprintln!("nothing deployed");
        return Ok(Outcome::Problems);
    }
    // Canaries first; the rest only if every canary was confirmed.
    let canaries = plan.canary.unwrap_or(0).min(reachable.len());
    let (first, rest) = reachable.split_at(canaries);
    if !first.is_empty() {
        let names: Vec<&str> = first.iter().map(|h| h.host.as_str()).collect();
        observer.message(&format!("canaries first: {}", names.join(", ")));
        let wave = executor.deploy(first);
        let failed: Vec<&str> = wave
            .iter()
            .filter(|r| !r.succeeded())
            .map(|r| r.host.as_str())
            .collect();
        let stop = (!failed.is_empty()).then(|| {
            format!(
                "not deployed: canary {} was not confirmed",
                failed.join(", ")
            )
        });
        reports.extend(wave.iter().cloned());
        match stop {
            Some(reason) => {
                observer.message(&format!("stopping the wave: {reason}"));
                for host in rest {
                    reports.push(executor.skipped(host, &reason));
                }
            }
            None => reports.extend(executor.deploy(rest)),
        }
    } else {
        reports.extend(executor.deploy(rest));
    }
    observer.done();

    // The summary in plan order.
    let order: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    reports.sort_by_key(|r| order.get(r.host.as_str()).copied().unwrap_or(usize::MAX));
    let results = serde_json::json!({
        "title": plan.title,
        "finished_unix": unix_now(),
        "logs": log_dir,
        "hosts": reports.iter().map(report_json).collect::<Vec<_>>(),
        "succeeded": reports.iter().filter(|r| r.succeeded()).count(),
    });
    // Kept with the logs, for `pifleet status`; a failure to write it costs only that.
    if let Err(err) = std::fs::write(log_dir.join(RESULTS_FILE), format!("{results:#}\n")) {
        tracing::warn!(
            "could not write {}: {err}",
            log_dir.join(RESULTS_FILE).display()
        );
    }
    match common.format {
        Format::Human => print_summary(&reports, &log_dir)?,
        Format::Json => println!("{results:#}"),
    }
    Ok(if reports.iter().all(HostReport::succeeded) {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
}

/// Now, as seconds since the Unix epoch (what `status` compares).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The executor's knobs from the command line.
pub(crate) fn run_options(parallel: usize, connect_timeout: u32, log_dir: &Path) -> RunOptions {
    RunOptions {
        parallel,
        ssh_timeout: Duration::from_secs(u64::from(connect_timeout) + 20),
        // A slow card may activate for many minutes; the host's timer covers a hung one.
        activation_timeout: Duration::from_secs(3600),
        reboot_timeout: Duration::from_secs(600),
        log_dir: log_dir.to_owned(),
    }
}

fn print_summary(reports: &[HostReport], log_dir: &Path) -> anyhow::Result<()> {
    let width = reports
        .iter()
        .map(|r| r.host.len())
        .max()
        .unwrap_or(0)
        .max("host".len());
    let mut out = std::io::stdout().lock();
    writeln!(out)?;
    writeln!(
        out,
        "{:<width$}  {:<13}  {:>6}  detail",
        "host", "status", "time"
    )?;
    for r in reports {
        writeln!(
            out,
            "{:<width$}  {:<13}  {:>5}s  {}",
            r.host,
            r.status.as_str(),
            r.elapsed.as_secs(),
            r.detail
        )?;
        if r.before.is_some() || r.after.is_some() {
            let show = |g: &Option<deploy::Generation>| {
                g.as_ref()
                    .map_or_else(|| "unknown".to_owned(), ToString::to_string)
            };
            writeln!(
                out,
                "{:<width$}  before: {}; after: {}",
                "",
                show(&r.before),
                show(&r.after)
            )?;
        }
    }
    let ok = reports.iter().filter(|r| r.succeeded()).count();
    writeln!(
        out,
        "{ok} of {} host(s) succeeded; logs in {}",
        reports.len(),
        log_dir.display()
    )?;
    Ok(())
}

/// Live status: a spinner per host on a terminal, host-prefixed lines otherwise.
#[derive(Debug)]
pub(crate) struct Progress {
    bars: Option<(
        indicatif::MultiProgress,
        HashMap<String, indicatif::ProgressBar>,
    )>,
    width: usize,
}

impl Progress {
    pub(crate) fn new(hosts: &[&str], tty: bool) -> Self {
        let width = hosts.iter().map(|h| h.len()).max().unwrap_or(0);
        let bars = tty.then(|| {
            let multi = indicatif::MultiProgress::new();
            let style = indicatif::ProgressStyle::with_template(&format!(
                "{{spinner}} {{prefix:<{width}.bold}}  {{wide_msg}}"
            ))
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
            let bars = hosts
                .iter()
                .map(|h| {
                    let bar = multi.add(indicatif::ProgressBar::new_spinner());
                    bar.set_style(style.clone());
                    bar.set_prefix(h.to_string());
                    bar.set_message("waiting");
                    bar.enable_steady_tick(Duration::from_millis(120));
                    (h.to_string(), bar)
                })
                .collect();
            (multi, bars)
        });
        Self { bars, width }
    }

    /// A line not tied to one host.
    fn message(&self, line: &str) {
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(line);
            }
            None => eprintln!("{line}"),
        }
    }

    fn ask(&self, question: &str) -> anyhow::Result<bool> {
        let answer = || crate::ui::confirm(question);
        match &self.bars {
            Some((multi, _)) => multi.suspend(answer),
            None => answer(),
        }
    }

    pub(crate) fn done(&self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.finish_with_message("skipped");
                }
            }
        }
    }
}

impl Observer for Progress {
    fn phase(&self, host: &str, phase: Phase) {
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(host) {
                    bar.set_message(phase.as_str().to_owned());
                }
            }
            None => eprintln!("{host:<w$} | {}", phase.as_str(), w = self.width),
        }
    }

    fn line(&self, host: &str, line: &str) {
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(host) {
                    let line: String = line.chars().take(200).collect();
                    bar.set_message(line);
                }
            }
            None => eprintln!("{host:<w$} | {line}", w = self.width),
        }
    }

    fn finished(&self, report: &HostReport) {
        let line = format!("{}: {}", report.status.as_str(), report.detail);
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.get(&report.host) {
                    bar.finish_with_message(line);
                }
            }
            None => eprintln!("{:<w$} | {line}", report.host, w = self.width),
        }
    }
}

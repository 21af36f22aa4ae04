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
    /// How long the post-activation confirmation may keep trying, in seconds.
    #[arg(long, default_value_t = 30, value_name = "SECS")]
    pub(crate) confirm_timeout: u64,
    /// Where per-host logs go [default: $XDG_STATE_HOME/pifleet/logs, or ~/.local/state/pifleet/logs].
    #[arg(long, value_name = "DIR")]
    pub(crate) log_dir: Option<PathBuf>,
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

/// The workstation's Nix system. Tests pin it (`PIFLEET_WORKSTATION_SYSTEM`) so plans do not depend
/// on the machine.
pub(crate) fn workstation_system() -> String {
    std::env::var("PIFLEET_WORKSTATION_SYSTEM")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(deploy::workstation_system)
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
        local_system: workstation_system(),
        ssh_options: nix_sshopts()?,
        connect_timeout: common.connect_timeout,
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
        print!("{plan}");
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
        RunOptions {
            parallel: usize::from(common.parallel),
            confirm_timeout: Duration::from_secs(common.confirm_timeout),
            confirm_interval: Duration::from_secs(2),
            ssh_timeout: Duration::from_secs(u64::from(common.connect_timeout) + 20),
            log_dir: log_dir.clone(),
        },
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
    reports.extend(executor.deploy(&reachable));
    observer.done();

    // The summary in plan order.
    let order: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    reports.sort_by_key(|r| order.get(r.host.as_str()).copied().unwrap_or(usize::MAX));
    print_summary(&reports, &log_dir)?;
    Ok(if reports.iter().all(HostReport::succeeded) {
        Outcome::Clean
    } else {
        Outcome::Problems
    })
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
    fn new(hosts: &[&str], tty: bool) -> Self {
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

    fn done(&self) {
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

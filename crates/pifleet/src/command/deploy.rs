//! `pifleet deploy`: build and activate hosts with nixos-rebuild, many at once, and confirm over a
//! fresh SSH connection afterwards, rolling back a host that cannot be confirmed.
//!
//! Nothing runs unless the inventory passes `check` (the lockout analysis included) and `hosts/`
//! is up to date with it (`gen --check`). Then every selected host gets an SSH preflight; the
//! reachable ones are deployed. The plan and its execution live in the `deploy` crate; this file
//! wires them to the command line, the terminal and the log files.

use std::collections::HashMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use deploy::{Executor, HostReport, Observer, Phase, Plan, RunOptions};

use crate::cli::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  every selected host was deployed (and confirmed)
  1  the inventory has errors, hosts/ is out of date, or at least one host failed
  2  usage or I/O error (an unknown host, for instance)";

/// What `deploy` and `rollback` share: the inventory, the flake, how many at once, SSH limits.
#[derive(Debug, clap::Args)]
pub(crate) struct Common {
    /// The inventory.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "fleet.toml",
        value_name = "PATH"
    )]
    pub(crate) file: PathBuf,
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

/// nixos-rebuild's actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ActionArg {
    /// Activate now and make it the boot default.
    Switch,
    /// Make it the boot default; it runs after the next reboot.
    Boot,
    /// Activate now, but a reboot returns to the previous system.
    Test,
    /// Build and copy, then print what activation would change.
    DryActivate,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    /// Hosts by name, or `@tag` for every host with that tag; none means every host.
    #[arg(value_name = "HOST|@TAG")]
    targets: Vec<String>,
    /// What nixos-rebuild does with the new system.
    #[arg(long, value_enum, default_value_t = ActionArg::Switch)]
    action: ActionArg,
    /// Where to build: `local` (this workstation), `target` (each host itself), or a build host
    /// (a fleet host's name or user@host) [default: each host's `deploy.build_on`, the workstation
    /// unless the inventory says otherwise].
    #[arg(long, value_name = "local|target|HOST")]
    build_on: Option<String>,
    /// Do not roll a host back when the confirmation after activation fails; only report it.
    #[arg(long)]
    no_magic_rollback: bool,
    #[command(flatten)]
    common: Common,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let Some(fleet) = load_for_deploy(&args.common.file, true)? else {
        return Ok(Outcome::Problems);
    };
    let selectors: Vec<_> = args
        .targets
        .iter()
        .map(|w| deploy::Selector::parse(w))
        .collect();
    let hosts = deploy::select(&fleet, &selectors)?;
    let options = deploy::Options {
        action: match args.action {
            ActionArg::Switch => deploy::Action::Switch,
            ActionArg::Boot => deploy::Action::Boot,
            ActionArg::Test => deploy::Action::Test,
            ActionArg::DryActivate => deploy::Action::DryActivate,
        },
        build_on: match &args.build_on {
            Some(word) => deploy::BuildOn::parse(word)?,
            None => deploy::BuildOn::Inventory,
        },
        magic_rollback: !args.no_magic_rollback,
        ..plan_options(&args.common)
    };
    let plan = Plan::deploy(&fleet, &hosts, &options)?;
    execute(&plan, &args.common, "Deploy")
}

/// Options every plan shares, from the command line and the environment.
pub(crate) fn plan_options(common: &Common) -> deploy::Options {
    let ssh_options = std::env::var("NIX_SSHOPTS")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    deploy::Options {
        flake: common.flake.clone(),
        // Tests pin the workstation's system so the plan does not depend on the machine.
        local_system: std::env::var("PIFLEET_WORKSTATION_SYSTEM")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(deploy::workstation_system),
        ssh_options,
        connect_timeout: common.connect_timeout,
        ..deploy::Options::default()
    }
}

/// Loads and checks the inventory; with `require_gen`, also insists that `hosts/` next to it is
/// what `gen` would write. Prints why and returns `None` when either fails.
pub(crate) fn load_for_deploy(
    file: &Path,
    require_gen: bool,
) -> anyhow::Result<Option<model::Fleet>> {
    let text = crate::inventory::read(file)?;
    let Some(loaded) = crate::inventory::load_checked_text(file, &text)? else {
        return Ok(None);
    };
    if require_gen {
        let out = file
            .parent()
            .map_or_else(|| PathBuf::from("hosts"), |dir| dir.join("hosts"));
        let source = file
            .file_name()
            .map_or_else(|| "fleet.toml".into(), |n| n.to_string_lossy().into_owned());
        // The same comparison as `gen --check`.
        let output = render::render(&loaded.fleet, &source).context("rendering the fleet")?;
        let clean = match render::tree::plan(&out, &output, false) {
            Ok(plan) => plan.is_clean(),
            Err(err) => {
                eprintln!("{err}");
                false
            }
        };
        if !clean {
            eprintln!(
                "{} is out of date with {}: run `nix run .#gen` (or `pifleet gen`), commit the result, then deploy",
                out.display(),
                file.display()
            );
            return Ok(None);
        }
        warn_untracked(&out);
    }
    Ok(Some(loaded.fleet))
}

/// A flake in a git repository cannot see untracked files: a freshly generated host would be
/// missing from `nixosConfigurations` until `git add`. Warns only; outside git it says nothing.
fn warn_untracked(hosts: &Path) {
    let dir = match hosts.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(out) = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "--others", "--exclude-standard", "--"])
        .arg(hosts.file_name().unwrap_or(hosts.as_os_str()))
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return;
    };
    let untracked = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && !untracked.trim().is_empty() {
        eprintln!(
            "warning: git does not track {} (the flake cannot see untracked files): `git add {}`",
            untracked.split_whitespace().collect::<Vec<_>>().join(", "),
            hosts.display()
        );
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
        None => state_dir().context("no $XDG_STATE_HOME or $HOME for the logs; pass --log-dir")?,
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
    if !reachable.is_empty() && !common.yes && std::io::stdin().is_terminal() && tty {
        let list: Vec<&str> = reachable.iter().map(|h| h.host.as_str()).collect();
        confirmed = observer.ask(&format!(
            "{verb} ({}) to {}? [y/N] ",
            plan.title,
            list.join(", ")
        ))?;
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

/// `$XDG_STATE_HOME/pifleet/logs`, else `~/.local/state/pifleet/logs`.
fn state_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("state"))
        })?;
    Some(base.join("pifleet").join("logs"))
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
        let answer = || -> anyhow::Result<bool> {
            eprint!("{question}");
            std::io::stderr().flush()?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            Ok(matches!(line.trim(), "y" | "Y" | "yes"))
        };
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

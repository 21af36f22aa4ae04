//! `pifleet adopt HOST --via USER@ADDRESS`: bring a machine that already runs NixOS (a stock Pi
//! image, a VPS) under the fleet's config.
//!
//! Fetch its hardware configuration into `hosts/<host>/hardware.nix`, refuse a switch after which
//! nobody could log in (the transition lockout analysis in `deploy::adopt`), deploy once through the
//! bootstrap login, and confirm over a fresh connection as the inventory's deploy user. From then
//! on `pifleet deploy` uses the inventory's deploy settings. See docs/adopt.md.

use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use deploy::adopt::{self, AdoptPlan};

use crate::outcome::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  adopted and confirmed (or, with --dry-run, the plan was printed and would run to the end)
  1  refused (inventory errors, hosts/ out of date, a lockout across the switch, hardware_config
     missing; with --dry-run, a plan that stops before deploying) or the deploy or its confirmation
     failed
  2  usage or I/O error: an unknown host, a bad --via, the machine unreachable";

/// What the first deploy does with the new system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ActionArg {
    /// Activate now and make it the boot default.
    Switch,
    /// Make it the boot default; it runs after the next reboot.
    Boot,
    /// Activate now, but a reboot returns to the previous system.
    Test,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    /// The host's name in the inventory.
    host: String,
    /// How to log in before the fleet's config is on the machine, e.g. `nixos@192.168.1.50`
    /// (the stock image's user) or `root@vps.example.net`.
    #[arg(long, value_name = "USER@ADDRESS")]
    via: String,
    /// The bootstrap login's SSH port.
    #[arg(long, default_value_t = 22, value_name = "N")]
    port: u16,
    #[command(flatten)]
    inventory: crate::workspace::InventoryArg,
    /// The flake holding `nixosConfigurations.<host>`; `#<host>` is always appended.
    #[arg(long, default_value = ".", value_name = "REF")]
    flake: String,
    /// What nixos-rebuild does with the new system.
    #[arg(long, value_enum, default_value_t = ActionArg::Switch)]
    action: ActionArg,
    /// Print the plan and the lockout analysis; contact nothing, write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for confirmation on a terminal.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Replace an existing hosts/<host>/hardware.nix that differs from what the machine prints.
    #[arg(long)]
    force: bool,
    /// SSH ConnectTimeout, in seconds, for every connection.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    connect_timeout: u32,
    /// Seconds after the activation ends that the machine waits for the confirmation as the deploy
    /// user before it goes back by itself [default: the host's `deploy.confirm_timeout`, 180].
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(3..=86400))]
    confirm_timeout: Option<u32>,
    /// The host key fingerprint you expect the machine to present (`SHA256:…`, from its console or
    /// provider). Without it, a host with no recorded `host_key` shows the key it presents and asks
    /// (or, with --yes, records it as first seen).
    #[arg(long, value_name = "SHA256:…")]
    host_key_fingerprint: Option<String>,
    #[command(flatten)]
    identity: crate::identity::IdentityArg,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    if !args.dry_run {
        // Before anything else: the first deploy builds and copies with this Nix.
        crate::nix_gate::require_nix("nix")?;
    }
    let workspace = args.inventory.workspace();
    // The machine's identity first: the deploy after the switch is pinned to it, and the host's
    // secrets must be encrypted to it before the first switch decrypts them.
    // A lockout across the switch is refused before anything is contacted, the key scan included.
    if !args.dry_run && (locks_out(&args, &workspace)? || !record_host_key(&args, &workspace)?) {
        return Ok(Outcome::Problems);
    }
    let Some(loaded) = workspace.load_checked()? else {
        return Ok(Outcome::Problems);
    };
    let fleet = &loaded.fleet;
    if !workspace.is_current(fleet)? {
        return Ok(Outcome::Problems);
    }
    let selected = deploy::select(fleet, &[deploy::Selector::Host(args.host.clone())])?;
    let Some(view) = selected.first().and_then(|name| fleet.view(name.as_str())) else {
        anyhow::bail!("no host `{}` in the inventory", args.host);
    };
    let name = view.name;
    let bootstrap = adopt::parse_via(&args.via, args.port)?;
    let plan = AdoptPlan::new(
        fleet,
        name,
        &bootstrap,
        &options(&args, workspace.known_hosts())?,
    )?;

    // The lockout analysis across the switch, before anything is contacted.
    let transition = adopt::transition(&view, &bootstrap.user);
    if args.dry_run {
        print!("{plan}");
        println!();
        println!("{transition}");
        if let Some(refusal) = transition.refusal(name.as_str()) {
            println!("{refusal}");
            return Ok(Outcome::Problems);
        }
        if !plan.hardware_config {
            // The real run would stop after fetching hardware.nix (step 3 above).
            return Ok(Outcome::Problems);
        }
        return Ok(Outcome::Clean);
    }
    if let Some(refusal) = transition.refusal(name.as_str()) {
        eprintln!("{transition}");
        eprintln!("{refusal}");
        return Ok(Outcome::Problems);
    }

    let timeout = Duration::from_secs(u64::from(args.connect_timeout) + 20);
    eprintln!("$ {}", plan.deploy.preflight);
    let out = adopt::capture(&plan.deploy.preflight, timeout).context("cannot run ssh")?;
    if !out.success() {
        anyhow::bail!(
            "{}",
            deploy::explain_ssh_failure(&bootstrap.destination(), &out.stderr)
        );
    }

    // The hardware configuration.
    eprintln!("$ {}", plan.fetch);
    let out = adopt::capture(&plan.fetch, timeout).context("cannot run ssh")?;
    if !out.success() {
        let why = out.stderr.lines().rfind(|l| !l.trim().is_empty());
        anyhow::bail!(
            "`{}` failed on {}: {} (is this machine running NixOS?)",
            adopt::SHOW_HARDWARE_CONFIG,
            bootstrap.destination(),
            why.unwrap_or("no error output")
        );
    }
    let path = workspace
        .hosts
        .join(name.as_str())
        .join(adopt::HARDWARE_FILE);
    let date = adopt::utc_date(SystemTime::now());
    let text = adopt::hardware_file(&out.stdout, &bootstrap, &date)
        .with_context(|| format!("not writing {}", path.display()))?;
    match adopt::save_hardware(&path, &text, args.force)? {
        adopt::Saved::Unchanged => eprintln!("{}: unchanged", path.display()),
        adopt::Saved::Written => eprintln!("wrote {}", path.display()),
    }
    if !plan.hardware_config {
        eprintln!(
            "hosts.{name} does not import it yet: add `hardware_config = true` to [hosts.{name}] in {file}, \
             run `pifleet gen`, `git add {path}` (flakes see only files git tracks), then run this again",
            file = workspace.shown(),
            path = path.display()
        );
        return Ok(Outcome::Problems);
    }
    eprintln!(
        "note: commit {} (or at least `git add` it): flakes see only files git tracks",
        path.display()
    );
    if view.host.board == model::Board::X86_64 && view.host.modules.is_empty() {
        // nixos-generate-config puts the boot loader in configuration.nix, not in hardware.nix.
        eprintln!(
            "note: neither the x86_64 board nor hardware.nix sets a boot loader, and hosts.{name} lists no \
             `modules`: copy the machine's `boot.loader` settings from its /etc/nixos/configuration.nix into \
             a module listed there, or the build fails (docs/adopt.md)"
        );
    }

    eprintln!("{transition}");
    eprint!("{plan}");
    if !args.yes
        && crate::ui::interactive()
        && !crate::ui::confirm(&format!(
            "Deploy {name} ({}) through {}?",
            plan.action,
            bootstrap.destination()
        ))?
    {
        eprintln!("nothing deployed");
        return Ok(Outcome::Problems);
    }

    // The deploy itself: the same executor and confirmation as `pifleet deploy`.
    let base = crate::ui::log_dir().context("no place for the logs")?;
    let log_dir = deploy::create_log_dir(&base)
        .with_context(|| format!("creating a log directory under {}", base.display()))?;
    eprintln!("logs: {}", log_dir.display());
    let observer = crate::fleet_run::Progress::new(&[name.as_str()], false);
    let executor = deploy::Executor::new(
        crate::fleet_run::run_options(1, args.connect_timeout, &log_dir),
        &observer,
    );
    let report = executor
        .deploy(&[&plan.deploy])
        .pop()
        .context("the executor returned no report")?;
    observer.done();
    let fleet_login = plan.fleet.destination();
    if report.succeeded() {
        let units = if report.failed_units.is_empty() {
            String::new()
        } else {
            format!(
                " (degraded: failed units: {})",
                deploy::confirm::list(&report.failed_units)
            )
        };
        if plan.action == deploy::Action::Boot {
            println!(
                "{name}: the new system starts at the next boot. After rebooting, check `ssh -p {} {fleet_login}`; \
                 from then on `pifleet deploy {name}` uses the inventory's deploy settings",
                plan.fleet.port
            );
        } else {
            println!(
                "{name}: adopted; {fleet_login} (port {}) logs in and the system is confirmed{units}. \
                 From now on `pifleet deploy {name}` uses the inventory's deploy settings",
                plan.fleet.port
            );
        }
        return Ok(Outcome::Clean);
    }
    eprintln!(
        "{name}: {}: {} (log: {})",
        report.status.as_str(),
        report.detail,
        report.log.display()
    );
    if report.status == deploy::Status::RolledBack {
        eprintln!(
            "{name}: it runs its previous system again. Check that {fleet_login} can log in with a key this \
             workstation holds (`ssh -p {} {fleet_login}` after fixing fleet.toml), then adopt again",
            plan.fleet.port
        );
    }
    Ok(Outcome::Problems)
}

/// Whether the switch, as the inventory stands (checked or not), would leave nobody able to log
/// in; prints the refusal. Unknown hosts and bad `--via` are left to the checked path below.
fn locks_out(args: &Args, workspace: &crate::workspace::Workspace) -> anyhow::Result<bool> {
    let Ok(loaded) = model::load_bytes(&workspace.read()?, &workspace.shown()) else {
        return Ok(false);
    };
    let (Some(view), Ok(bootstrap)) = (
        loaded.fleet.view(&args.host),
        adopt::parse_via(&args.via, args.port),
    ) else {
        return Ok(false);
    };
    let transition = adopt::transition(&view, &bootstrap.user);
    match transition.refusal(view.name.as_str()) {
        Some(refusal) => {
            eprintln!("{transition}");
            eprintln!("{refusal}");
            Ok(true)
        }
        None => Ok(false),
    }
}

/// When the inventory records no key for the host, learns it over the bootstrap login's address,
/// records it once confirmed, re-encrypts the host's secrets to it and updates hosts/known_hosts.
/// `false` when the key was not accepted.
fn record_host_key(args: &Args, workspace: &crate::workspace::Workspace) -> anyhow::Result<bool> {
    let (text, loaded) = workspace.load()?;
    let Ok(name) = model::HostName::new(&args.host) else {
        return Ok(true);
    };
    let Some(host) = loaded.fleet.hosts.get(&name) else {
        return Ok(true);
    };
    if host.host_key.is_some() {
        return Ok(true);
    }
    let bootstrap = adopt::parse_via(&args.via, args.port)?;
    eprintln!(
        "{name} has no recorded host key: asking {} (port {}) for it",
        bootstrap.address, bootstrap.port
    );
    let key = deploy::scan::scan(
        &bootstrap,
        name.as_str(),
        &crate::fleet_run::nix_sshopts()?,
        args.connect_timeout,
    )?;
    let fingerprint = key.fingerprint();
    match &args.host_key_fingerprint {
        Some(expected) if expected.trim() == fingerprint => {}
        Some(expected) => {
            eprintln!(
                "{name} presents {fingerprint}, not the expected {}: nothing recorded, nothing deployed",
                expected.trim()
            );
            return Ok(false);
        }
        None => {
            eprintln!(
                "{name} at {} presents the host key {} {fingerprint}",
                bootstrap.address,
                key.algorithm()
            );
            if !args.yes {
                if !crate::ui::interactive() {
                    eprintln!(
                        "not recorded: no terminal to confirm on; pass --host-key-fingerprint SHA256:… (or --yes to trust it as first seen)"
                    );
                    return Ok(false);
                }
                if !crate::ui::confirm(&format!("Record this key for `{name}`?"))? {
                    eprintln!("not recorded; nothing deployed");
                    return Ok(false);
                }
            } else {
                eprintln!("recording it as first seen (--yes)");
            }
        }
    }
    let (loaded, enrolled) =
        crate::enrol::record(workspace, &text, &name, &key, None, &args.identity.unlock())?;
    enrolled.print();
    let summary = workspace.write_tree(&loaded.fleet)?;
    eprintln!("gen: {summary} ({})", workspace.hosts.display());
    Ok(true)
}

/// The deploy options from the command line and the environment (as `pifleet deploy` reads them).
fn options(args: &Args, known_hosts: std::path::PathBuf) -> anyhow::Result<deploy::Options> {
    Ok(deploy::Options {
        action: match args.action {
            ActionArg::Switch => deploy::Action::Switch,
            ActionArg::Boot => deploy::Action::Boot,
            ActionArg::Test => deploy::Action::Test,
        },
        flake: args.flake.clone(),
        ssh_options: crate::fleet_run::nix_sshopts()?,
        connect_timeout: args.connect_timeout,
        confirm_timeout: args.confirm_timeout,
        known_hosts: Some(known_hosts),
        ..deploy::Options::default()
    })
}

//! `pifleet deploy`: build hosts' systems, copy them over, and activate them so that a host that
//! cannot be confirmed goes back by itself: arm a rollback timer on the host, activate with `test`,
//! confirm over a fresh SSH connection, disarm, then make it the boot default. Many hosts at once,
//! optionally canaries first.
//!
//! Nothing runs unless the inventory passes `check` (the lockout analysis included) and `hosts/`
//! is up to date with it (`gen --check`). Then every selected host gets an SSH preflight; the
//! reachable ones are deployed. The plan and its execution live in the `deploy` crate; this file
//! wires them to the command line, the terminal and the log files.

use deploy::Plan;

use crate::fleet_run::{Common, execute, plan_options, select};
use crate::outcome::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  every selected host was deployed, confirmed and committed (as the action says)
  1  the inventory has errors, hosts/ is out of date, or at least one host failed
  2  usage or I/O error (an unknown host, for instance)";

/// What happens to the new system (nixos-rebuild's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ActionArg {
    /// Arm the rollback timer, activate with `test`, confirm, disarm, make it the boot default.
    Switch,
    /// Make it the boot default; it runs after the next reboot.
    Boot,
    /// Like switch without making it the boot default: a reboot returns to the previous system.
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
    /// What happens to the new system.
    #[arg(long, value_enum, default_value_t = ActionArg::Switch)]
    action: ActionArg,
    /// Where to build: `local` (this workstation), `target` (each host itself), or a build host
    /// (a fleet host's name or user@host) [default: each host's `deploy.build_on`, the workstation
    /// unless the inventory says otherwise].
    #[arg(long, value_name = "local|target|HOST")]
    build_on: Option<String>,
    /// Arm no rollback timer and do not roll back a host whose confirmation fails; only report it
    /// (it keeps the new system, uncommitted: a reboot returns to the previous one).
    #[arg(long)]
    no_magic_rollback: bool,
    /// After the confirmation, reboot into the new generation once (systemd-boot, GRUB), confirm
    /// again, and only then make it the boot default.
    #[arg(long)]
    reboot: bool,
    /// With --reboot on hosts whose boot loader has no one-shot boot (extlinux on the Pis): make the
    /// new generation the boot default before rebooting. If it then fails to boot, only the boot
    /// menu on a console brings back the previous one.
    #[arg(long, requires = "reboot")]
    commit_before_reboot: bool,
    /// Deploy the first N selected hosts first; the others only if every one of them is confirmed.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    canary: Option<u16>,
    #[command(flatten)]
    common: Common,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    if !args.common.dry_run {
        // Before anything else: the systems are built and copied with this Nix.
        crate::nix_gate::require_nix("nix")?;
    }
    let workspace = args.common.inventory.workspace();
    let Some(loaded) = workspace.load_checked()? else {
        return Ok(Outcome::Problems);
    };
    let fleet = &loaded.fleet;
    if !workspace.is_current(fleet)? {
        return Ok(Outcome::Problems);
    }
    let hosts = select(fleet, &args.targets)?;
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
        reboot: args.reboot,
        commit_before_reboot: args.commit_before_reboot,
        canary: args.canary.map(usize::from),
        ..plan_options(&args.common, &workspace, fleet, &hosts)?
    };
    let plan = Plan::deploy(fleet, &hosts, &options)?;
    execute(&plan, &args.common, "Deploy")
}

//! `pifleet deploy`: build and activate hosts with nixos-rebuild, many at once, and confirm over a
//! fresh SSH connection afterwards, rolling back a host that cannot be confirmed.
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
  0  every selected host was deployed (and confirmed)
  1  the inventory has errors, hosts/ is out of date, or at least one host failed
  2  usage or I/O error (an unknown host, for instance)";

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
        ..plan_options(&args.common, &workspace, fleet, &hosts)?
    };
    let plan = Plan::deploy(fleet, &hosts, &options)?;
    execute(&plan, &args.common, "Deploy")
}

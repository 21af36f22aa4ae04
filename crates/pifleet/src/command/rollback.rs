//! `pifleet rollback`: switch hosts back to their system profile's previous generation
//! (`nix-env --rollback`, then `switch-to-configuration switch`, run on the host as a transient unit),
//! confirm over a fresh SSH connection, and report the generation before and after.
//!
//! Unlike `deploy`, it does not insist that `hosts/` is up to date: going back needs only the
//! addresses and deploy users, and a rollback is often what you want while the tree is in flux.

use deploy::Plan;

use crate::fleet_run::{Common, execute, plan_options, select};
use crate::outcome::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  every named host is back on its previous generation (and confirmed)
  1  the inventory has errors, or at least one host failed
  2  usage or I/O error (an unknown host, for instance)";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    /// Hosts by name, or `@tag`; at least one (there is no "roll back everything" default).
    #[arg(value_name = "HOST|@TAG", required = true)]
    targets: Vec<String>,
    #[command(flatten)]
    common: Common,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let workspace = args.common.inventory.workspace();
    let Some(loaded) = workspace.load_checked()? else {
        return Ok(Outcome::Problems);
    };
    let fleet = &loaded.fleet;
    let hosts = select(fleet, &args.targets)?;
    let options = plan_options(&args.common, &workspace, fleet, &hosts)?;
    let plan = Plan::rollback(fleet, &hosts, &options)?;
    execute(&plan, &args.common, "Roll back")
}

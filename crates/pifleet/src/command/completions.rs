//! `pifleet completions SHELL`: shell completion scripts, also installed by the Nix package.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::{Opts, Outcome};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell to print completions for.
    shell: Shell,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let mut cmd = Opts::command();
    clap_complete::generate(args.shell, &mut cmd, "pifleet", &mut std::io::stdout());
    Ok(Outcome::Clean)
}

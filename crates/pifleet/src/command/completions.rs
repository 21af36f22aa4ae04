//! `pifleet completions SHELL`: shell completion scripts, also installed by the Nix package.

use clap_complete::Shell;

use crate::outcome::Outcome;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell to print completions for.
    shell: Shell,
}

/// Prints the completions of `cli`, the whole command line (handed in by `cli`, which owns it).
pub(crate) fn run(args: Args, mut cli: clap::Command) -> anyhow::Result<Outcome> {
    clap_complete::generate(args.shell, &mut cli, "pifleet", &mut std::io::stdout());
    Ok(Outcome::Clean)
}

//! `pifleet completions SHELL`: shell completion scripts, also installed by the Nix package.

use clap_complete::Shell;

use crate::outcome::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  the script was printed
  2  it could not be written (141: the reader closed the pipe)";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    /// The shell to print completions for.
    shell: Shell,
}

/// Prints the completions of `cli`, the whole command line (handed in by `cli`, which owns it).
pub(crate) fn run(args: Args, mut cli: clap::Command) -> anyhow::Result<Outcome> {
    use std::io::Write as _;
    // Generated into memory first: clap_complete panics when its writer fails (a closed pipe).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "pifleet", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)?;
    out.flush()?;
    Ok(Outcome::Clean)
}

//! The `pifleet` binary: parse the command line, run one subcommand, map the outcome to an exit code.

mod cli;
mod command;
mod enrol;
mod fleet_run;
mod identity;
mod nix_gate;
mod outcome;
mod pipe;
mod progress;
mod pubkey;
mod ui;
mod workspace;

fn main() -> std::process::ExitCode {
    cli::run()
}

//! The `pifleet` binary: parse the command line, run one subcommand, map the outcome to an exit code.

mod cli;
mod command;
mod inventory;

fn main() -> std::process::ExitCode {
    cli::run()
}

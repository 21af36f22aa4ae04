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

/// mimalloc instead of glibc's malloc: `gen` builds and drops millions of small strings and syntax
/// nodes, and the system allocator spent a third of its CPU on them (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::run()
}

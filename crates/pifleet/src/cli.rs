//! The command-line surface: clap definitions, logging set-up and exit codes.
//!
//! Each subcommand lives in its own file under `command/`; this file only wires them together so the
//! flow stays model → check → render → deploy/flash → CLI.

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

use crate::command;
use crate::outcome::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  success (warnings may have been printed)
  1  the command ran and found problems: errors in the inventory, drift, a failed host
  2  usage, input or I/O error: the command could not do its job";

/// Run a fleet of Raspberry Pis and other NixOS machines declaratively from one workstation.
#[derive(Debug, Parser)]
#[command(name = "pifleet", version, about, after_help = EXIT_CODES)]
pub(crate) struct Opts {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a fleet repository: flake.nix, a fleet.toml that passes check, the schema, .gitignore, README, git.
    Init(command::init::Args),
    /// Validate the inventory: syntax, schema and semantic checks, with line numbers and fixes.
    Check(command::check::Args),
    /// Render the inventory into NixOS modules under hosts/ (or check that they are up to date).
    #[command(name = "gen")]
    Gen(command::generate::Args),
    /// One line per host: board, address, tags, deploy user, containers, secrets, last deploy.
    #[command(visible_alias = "list")]
    Status(command::status::Args),
    /// Print the inventory's JSON schema (as in schema/fleet.schema.json).
    Schema(command::schema::Args),
    /// Print shell completions for bash, zsh, fish, elvish or powershell.
    Completions(command::completions::Args),
    /// Write an SD card image (or a host's freshly built one) to a card, and verify it.
    Flash(command::flash::Args),
    /// Build a host's SD card image with Nix; print its path, size and SHA-256.
    Image(command::image::Args),
    /// Build and activate hosts with nixos-rebuild, in parallel; confirm each over SSH, roll back on failure.
    Deploy(command::deploy::Args),
    /// Switch hosts back to their previous generation.
    Rollback(command::rollback::Args),
    /// Bring a machine that already runs NixOS under the fleet: fetch its hardware config, deploy through a bootstrap login.
    Adopt(command::adopt::Args),
    /// Check that this workstation can build, flash and deploy: Nix, flakes, aarch64, SSH keys, disk.
    Doctor(command::doctor::Args),
    /// Put SSH keys on a NixOS card or image while it is out of the machine (`keys inject`).
    Keys(command::keys::Args),
    /// Secrets in the repository, encrypted to the hosts that read them and to the admins (age).
    Secrets(command::secrets::Args),
    /// A host's SSH host key: generate one before first boot, show it, or record a running host's.
    Hostkey(command::hostkey::Args),
}

pub(crate) fn run() -> ExitCode {
    init_logging();
    crate::pipe::silence_closed_pipe_panics();
    let opts = Opts::parse();
    // A print to a closed pipe unwinds (running every destructor) and ends here, quietly.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| dispatch(opts)));
    let result = match result {
        Ok(result) => result,
        Err(payload) if crate::pipe::is_closed_pipe_panic(payload.as_ref()) => {
            return ExitCode::from(crate::pipe::CLOSED_PIPE_STATUS);
        }
        Err(payload) => std::panic::resume_unwind(payload),
    };
    match result {
        Ok(Outcome::Clean) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Err(err) if crate::pipe::is_closed_pipe(&err) => {
            ExitCode::from(crate::pipe::CLOSED_PIPE_STATUS)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(opts: Opts) -> anyhow::Result<Outcome> {
    match opts.command {
        Command::Init(args) => command::init::run(args),
        Command::Check(args) => command::check::run(args),
        Command::Gen(args) => command::generate::run(args),
        Command::Status(args) => command::status::run(args),
        Command::Schema(args) => command::schema::run(args),
        Command::Completions(args) => command::completions::run(args, Opts::command()),
        Command::Flash(args) => command::flash::run(args),
        Command::Image(args) => command::image::run(args),
        Command::Doctor(args) => command::doctor::run(args),
        Command::Deploy(args) => command::deploy::run(args),
        Command::Rollback(args) => command::rollback::run(args),
        Command::Adopt(args) => command::adopt::run(args),
        Command::Keys(args) => command::keys::run(args),
        Command::Secrets(args) => command::secrets::run(args),
        Command::Hostkey(args) => command::hostkey::run(args),
    }
}

/// Logs go to stderr, filtered by `PIFLEET_LOG` (default: warnings), with colour only on a terminal.
fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PIFLEET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// Every command a user can run, with its path (`secrets set`).
    fn leaves(cmd: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands() {
            let name = format!("{path} {}", sub.get_name()).trim().to_owned();
            out.push((name.clone(), sub.clone()));
            leaves(sub, &name, out);
        }
    }

    #[test]
    fn every_command_documents_its_exit_codes_in_help() {
        let mut all = Vec::new();
        leaves(&super::Opts::command(), "", &mut all);
        assert!(all.len() > 20, "{}", all.len());
        for (name, mut cmd) in all {
            if name.ends_with("help") {
                continue;
            }
            let help = cmd.render_long_help().to_string();
            assert!(
                help.contains("Exit codes:"),
                "`pifleet {name} --help`:\n{help}"
            );
            assert!(help.contains("  0  "), "`pifleet {name} --help`:\n{help}");
        }
    }
}

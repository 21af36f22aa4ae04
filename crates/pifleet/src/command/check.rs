//! `pifleet check`: validate the inventory (syntax, schema, semantic rules) and print every problem found.
//!
//! Exit codes follow the top level: 0 when clean or only warnings, 1 when any error was found, 2 when the
//! inventory could not be read at all.

use std::io::{IsTerminal, Write};

use anyhow::Context as _;

use crate::outcome::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  the inventory is valid (warnings may have been printed)
  1  the inventory has errors
  2  usage error, or the inventory could not be read";

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum OutputFormat {
    /// Diagnostics with source snippets, for people.
    Human,
    /// A JSON array of diagnostics (file, line, column, path, code, severity, message, help), for tools.
    Json,
}

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    #[command(flatten)]
    inventory: crate::workspace::InventoryArg,
    /// How to print diagnostics.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    format: OutputFormat,
    /// Name every host a diagnostic shared by many hosts applies to (by default, the first few).
    #[arg(short, long)]
    verbose: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let workspace = args.inventory.workspace();
    let report = check::check_bytes(
        &workspace.read()?,
        &workspace.shown(),
        Some(workspace.base()),
    );
    let mut stdout = std::io::stdout().lock();
    match args.format {
        OutputFormat::Human => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let style = check::render::Human {
                color,
                every_host: args.verbose,
            };
            stdout.write_all(check::render::render_human_with(&report, style).as_bytes())
        }
        OutputFormat::Json => {
            let json = serde_json::to_string_pretty(&check::render_json(&report))
                .context("serialising diagnostics")?;
            writeln!(stdout, "{json}")
        }
    }
    .context("writing diagnostics")?;
    Ok(if report.has_errors() {
        Outcome::Problems
    } else {
        Outcome::Clean
    })
}

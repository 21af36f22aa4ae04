//! `pifleet schema`: print the JSON schema of the inventory, as committed in `schema/fleet.schema.json`.
//!
//! Editors use it for completion and tooltips; regenerate the committed copy with
//! `pifleet schema > schema/fleet.schema.json` after changing the model.

use std::io::Write;

use anyhow::Context as _;

use crate::outcome::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  the schema was printed
  2  it could not be written (141: the reader closed the pipe)";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {}

pub(crate) fn run(_args: Args) -> anyhow::Result<Outcome> {
    std::io::stdout()
        .lock()
        .write_all(model::schema_string().as_bytes())
        .context("writing the schema")?;
    Ok(Outcome::Clean)
}

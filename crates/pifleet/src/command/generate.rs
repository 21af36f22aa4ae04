//! `pifleet gen`: render the inventory into `hosts/`, or with `--check`, report drift.
//!
//! Nothing is written unless the inventory passes `check` and every file to be replaced or
//! removed is pifleet's own and unedited (see `render::tree`). Output is deterministic, so a
//! second run reports everything unchanged and writes nothing.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::cli::Outcome;

const EXIT_CODES: &str = "\
Exit codes:
  0  hosts/ was written (or, with --check, is up to date)
  1  the inventory has errors, or (with --check) hosts/ is out of date
  2  usage or I/O error, or files edited by hand were in the way";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    /// The inventory to render.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "fleet.toml",
        value_name = "PATH"
    )]
    file: PathBuf,
    /// Where to write the modules [default: hosts/ next to the inventory].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Write nothing; exit 1 and print a unified diff when the tree is out of date (for CI).
    #[arg(long)]
    check: bool,
    /// Overwrite generated files that were edited by hand (files pifleet did not write are never touched).
    #[arg(long, conflicts_with = "check")]
    force: bool,
}

pub(crate) fn run(args: Args) -> anyhow::Result<Outcome> {
    let Some(loaded) = crate::inventory::load_checked(&args.file)? else {
        return Ok(Outcome::Problems);
    };
    let out = args.out.clone().unwrap_or_else(|| {
        args.file
            .parent()
            .map_or_else(|| PathBuf::from("hosts"), |dir| dir.join("hosts"))
    });
    let source = args
        .file
        .file_name()
        .map_or_else(|| "fleet.toml".into(), |n| n.to_string_lossy().into_owned());
    let output = render::render(&loaded.fleet, &source).context("rendering the fleet")?;
    let plan = render::tree::plan(&out, &output, args.force)?;
    if args.check {
        if plan.is_clean() {
            eprintln!(
                "{} is up to date with {}",
                out.display(),
                args.file.display()
            );
            return Ok(Outcome::Clean);
        }
        std::io::stdout()
            .lock()
            .write_all(plan.diff().as_bytes())
            .context("writing the diff")?;
        eprintln!(
            "{} is out of date with {} ({}): run `pifleet gen` (or `nix run .#gen`) and commit the result",
            out.display(),
            args.file.display(),
            plan.summary()
        );
        return Ok(Outcome::Problems);
    }
    let summary = plan.apply()?;
    println!("gen: {summary} ({})", out.display());
    Ok(Outcome::Clean)
}

//! `pifleet gen`: render the inventory into `hosts/`, or with `--check`, report drift.
//!
//! Nothing is written unless the inventory passes `check` and every file to be replaced or
//! removed is pifleet's own and unedited (see `render::tree`). Output is deterministic, so a
//! second run reports everything unchanged and writes nothing.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::outcome::Outcome;
use crate::workspace::Workspace;

const EXIT_CODES: &str = "\
Exit codes:
  0  hosts/ was written (or, with --check, is up to date)
  1  the inventory has errors, or (with --check) hosts/ is out of date
  2  usage or I/O error, or files edited by hand were in the way";

#[derive(Debug, clap::Args)]
#[command(after_help = EXIT_CODES)]
pub(crate) struct Args {
    #[command(flatten)]
    inventory: crate::workspace::InventoryArg,
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
    let workspace = Workspace::new(&args.inventory.file, args.out.clone());
    let out = &workspace.hosts;
    let text = workspace.read()?;

    // A no-op run is recognised from a stamp of the last run, without rendering (render::cache).
    let key = render::cache::key(&workspace.source, &text);
    let stamp = crate::ui::cache_dir().map(|dir| render::cache::Stamp::new(&dir, out));
    if !args.force
        && let Some(unchanged) = stamp.as_ref().and_then(|s| s.fresh(out, &key))
    {
        let summary = render::tree::Summary {
            unchanged,
            ..Default::default()
        };
        if args.check {
            eprintln!("{} is up to date with {}", out.display(), workspace.shown());
        } else {
            println!(
                "gen: {summary} ({}; {} unchanged since the last gen)",
                out.display(),
                workspace.shown()
            );
        }
        return Ok(Outcome::Clean);
    }

    let Some(loaded) = workspace.check_text(&text) else {
        return Ok(Outcome::Problems);
    };
    let output = workspace.render(&loaded.fleet)?;
    let plan = render::tree::plan(out, &output, args.force)?;
    if args.check {
        if plan.is_clean() {
            record(stamp.as_ref(), &key, &output);
            eprintln!("{} is up to date with {}", out.display(), workspace.shown());
            return Ok(Outcome::Clean);
        }
        std::io::stdout()
            .lock()
            .write_all(plan.diff().as_bytes())
            .context("writing the diff")?;
        eprintln!(
            "{} is out of date with {} ({}): run `pifleet gen` (or `nix run .#gen`) and commit the result",
            out.display(),
            workspace.shown(),
            plan.summary()
        );
        return Ok(Outcome::Problems);
    }
    if let Some(stamp) = &stamp {
        stamp.clear();
    }
    let summary = plan.apply()?;
    record(stamp.as_ref(), &key, &output);
    println!("gen: {summary} ({})", out.display());
    Ok(Outcome::Clean)
}

fn record(stamp: Option<&render::cache::Stamp>, key: &str, output: &render::Output) {
    if let Some(stamp) = stamp
        && let Err(err) = stamp.record(key, output)
    {
        tracing::debug!("could not record the gen stamp: {err}");
    }
}

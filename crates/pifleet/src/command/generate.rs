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
  1  the inventory has errors, or (with --check) hosts/ is out of date, generated files edited by
     hand included
  2  usage or I/O error, or (without --check) files edited by hand were in the way";

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
    // check also reads secrets/ (missing and stale files), so its listing is part of the key.
    let key = render::cache::key(&workspace.source, &keyed(&text, workspace.base()));
    let stamp = crate::ui::cache_dir().map(|dir| render::cache::Stamp::new(&dir, out));
    if !args.force && stamp.as_ref().and_then(|s| s.fresh(out, &key)).is_some() {
        if args.check {
            eprintln!("{} is up to date with {}", out.display(), workspace.shown());
        } else {
            let summary = crate::workspace::Hosts {
                unchanged: generated_hosts(out),
                ..crate::workspace::Hosts::default()
            };
            println!(
                "gen: {summary} ({}; {} unchanged since the last gen)",
                out.display(),
                workspace.shown()
            );
        }
        return Ok(Outcome::Clean);
    }

    let Some((_, output)) = workspace.check_and_render(&text)? else {
        return Ok(Outcome::Problems);
    };
    if args.check {
        // A hand-edited generated file is drift like any other: shown in the diff, exit 1. Only a
        // file pifleet never wrote, sitting where one of its files goes, cannot be diffed.
        let plan = match render::tree::plan(out, &output, true) {
            Ok(plan) => plan,
            Err(err @ render::tree::Error::Conflicts(_)) => {
                eprintln!("{err}");
                eprintln!(
                    "{} is out of date with {}",
                    out.display(),
                    workspace.shown()
                );
                return Ok(Outcome::Problems);
            }
            Err(err) => return Err(err.into()),
        };
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
            crate::workspace::Hosts::of(plan.steps()).pending()
        );
        return Ok(Outcome::Problems);
    }
    let plan = render::tree::plan(out, &output, args.force)?;
    if let Some(stamp) = &stamp {
        stamp.clear();
    }
    plan.apply()?;
    record(stamp.as_ref(), &key, &output);
    println!(
        "gen: {} ({})",
        crate::workspace::Hosts::of(plan.steps()),
        out.display()
    );
    Ok(Outcome::Clean)
}

/// How many host directories under `out` hold a generated module (for the cached summary).
fn generated_hosts(out: &std::path::Path) -> usize {
    std::fs::read_dir(out).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join("default.nix").is_file())
            .count()
    })
}

/// The inventory followed by a listing of secrets/ (each file's path, size and modification time)
/// and the listing's length, so that adding, removing or re-encrypting a secret misses the stamp.
fn keyed(inventory: &[u8], base: &std::path::Path) -> Vec<u8> {
    use std::os::unix::fs::MetadataExt as _;
    let mut listing = Vec::new();
    let mut dirs = vec![base.join(model::SECRETS_DIR)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.filter_map(Result::ok).collect();
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                dirs.push(entry.path());
                continue;
            }
            listing.extend_from_slice(entry.path().as_os_str().as_encoded_bytes());
            listing.extend_from_slice(
                format!("\0{}\0{}.{}\n", meta.len(), meta.mtime(), meta.mtime_nsec()).as_bytes(),
            );
        }
    }
    let mut out = Vec::with_capacity(inventory.len() + listing.len() + 8);
    out.extend_from_slice(inventory);
    out.extend_from_slice(&listing);
    out.extend_from_slice(&(listing.len() as u64).to_le_bytes());
    out
}

fn record(stamp: Option<&render::cache::Stamp>, key: &str, output: &render::Output) {
    if let Some(stamp) = stamp
        && let Err(err) = stamp.record(key, output)
    {
        tracing::debug!("could not record the gen stamp: {err}");
    }
}

//! The fleet repository a command works in: the inventory file, the `hosts/` tree generated from it,
//! and the gates every acting command passes through.
//!
//! The inventory is read and checked once per command here, and refused with printed diagnostics
//! when it has errors: `gen`, `deploy`, `adopt` and the rest must never act on an inventory `check`
//! would reject. Commands that deploy also insist that `hosts/` is what `gen` would write now.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// `-f/--file`: which inventory a command works on. Every subcommand that reads one takes it the same way.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct InventoryArg {
    /// The inventory (TOML, or JSON when the name ends in .json); `-` reads it from stdin.
    #[arg(
        short = 'f',
        long = "file",
        default_value = "fleet.toml",
        value_name = "PATH",
        alias = "inventory"
    )]
    pub(crate) file: PathBuf,
}

impl InventoryArg {
    /// The workspace of this inventory, with `hosts/` next to it.
    pub(crate) fn workspace(&self) -> Workspace {
        Workspace::new(&self.file, None)
    }
}

/// The inventory and the tree generated from it.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    /// The inventory file (`fleet.toml`), or `-` for standard input.
    pub(crate) file: PathBuf,
    /// Where the generated modules live: `hosts/` next to the inventory unless given.
    pub(crate) hosts: PathBuf,
    /// The inventory's name as generated headers show it (`fleet.toml`), independent of where pifleet runs.
    pub(crate) source: String,
}

impl Workspace {
    /// The workspace of the inventory `file`, its tree at `hosts` or next to it.
    pub(crate) fn new(file: &Path, hosts: Option<PathBuf>) -> Self {
        let stdin = file.as_os_str() == "-";
        let hosts = hosts.unwrap_or_else(|| match file.parent() {
            Some(dir) if !stdin => dir.join("hosts"),
            _ => PathBuf::from("hosts"),
        });
        let source = match file.file_name() {
            Some(name) if !stdin => name.to_string_lossy().into_owned(),
            _ => "fleet.toml".to_owned(),
        };
        Self {
            file: file.to_owned(),
            hosts,
            source,
        }
    }

    /// The name diagnostics show for the inventory.
    pub(crate) fn shown(&self) -> String {
        if self.is_stdin() {
            "<stdin>".to_owned()
        } else {
            self.file.display().to_string()
        }
    }

    fn is_stdin(&self) -> bool {
        self.file.as_os_str() == "-"
    }

    /// The inventory's bytes: a regular file (or standard input) of at most 16 MiB.
    pub(crate) fn read(&self) -> anyhow::Result<Vec<u8>> {
        Ok(if self.is_stdin() {
            model::read_inventory_from(std::io::stdin().lock(), "<stdin>")?
        } else {
            model::read_inventory(&self.file)?
        })
    }

    /// The directory the inventory's relative paths start from (the current one for stdin).
    pub(crate) fn base(&self) -> &Path {
        match self.file.parent() {
            Some(dir) if !self.is_stdin() && !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// Reads and checks the inventory. Prints diagnostics (warnings too) to stderr; `None` when there
    /// are errors.
    pub(crate) fn load_checked(&self) -> anyhow::Result<Option<model::Loaded>> {
        let text = self.read()?;
        Ok(self.check_text(&text))
    }

    /// Checks the inventory's bytes, already read (see [`Workspace::load_checked`]).
    pub(crate) fn check_text(&self, bytes: &[u8]) -> Option<model::Loaded> {
        let (report, loaded) = check::load_and_check_bytes(bytes, &self.shown(), Some(self.base()));
        self.report(&report).then_some(loaded).flatten()
    }

    /// [`Self::check_text`] and [`Self::render`] of what it loaded, rendered while the rules run
    /// (on a second core; see docs/benchmarks.md). `None` when the inventory has errors.
    pub(crate) fn check_and_render(
        &self,
        bytes: &[u8],
    ) -> anyhow::Result<Option<(model::Loaded, render::Output)>> {
        let render = |loaded: &model::Loaded| self.render(&loaded.fleet);
        let (report, loaded) =
            check::load_and_check_alongside(bytes, &self.shown(), Some(self.base()), Some(render));
        if !self.report(&report) {
            return Ok(None);
        }
        let Some((loaded, output)) = loaded else {
            return Ok(None);
        };
        // Only an inventory with errors comes back without its render; rendering again is right
        // whatever happened.
        let output = match output {
            Some(output) => output?,
            None => self.render(&loaded.fleet)?,
        };
        Ok(Some((loaded, output)))
    }

    /// Prints `report`'s diagnostics; false (after saying so) when it has errors.
    fn report(&self, report: &check::Report) -> bool {
        let shown = self.shown();
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        if !report.diagnostics.is_empty() {
            eprint!("{}", check::render_human(report, color));
        }
        if report.has_errors() {
            eprintln!(
                "{shown}: {} error(s); fix them first (`pifleet check -f {shown}` lists them)",
                report.error_count(),
            );
            return false;
        }
        true
    }

    /// Reads and loads the inventory without the semantic checks, for commands that fix what
    /// `check` reports (`secrets`, `hostkey`): a missing secret must not stop `secrets set`.
    /// Syntax and schema errors are printed and refused. Returns the text too, for editing.
    pub(crate) fn load(&self) -> anyhow::Result<(String, model::Loaded)> {
        let bytes = self.read()?;
        let shown = self.shown();
        match model::load_bytes(&bytes, &shown) {
            Ok(loaded) => Ok((loaded.source.text.clone(), loaded)),
            Err(_) => {
                let color =
                    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                let report = check::check_bytes(&bytes, &shown, Some(self.base()));
                eprint!("{}", check::render_human(&report, color));
                anyhow::bail!("{shown} cannot be read as an inventory (errors above)")
            }
        }
    }

    /// Replaces the inventory with `text` atomically (a new file in the same directory, synced,
    /// renamed over it, with the old file's permissions), so a crash leaves the old file or the
    /// new one, never half of it.
    pub(crate) fn write_inventory(&self, text: &str) -> anyhow::Result<()> {
        use std::io::Write as _;
        if self.is_stdin() {
            anyhow::bail!(
                "the inventory was read from standard input, so it cannot be changed: give it with -f PATH"
            );
        }
        let dir = self.base();
        let permissions = std::fs::metadata(&self.file)
            .with_context(|| format!("cannot read {}", self.file.display()))?
            .permissions();
        let mut tmp = tempfile::Builder::new()
            .prefix(".pifleet-inventory-")
            .tempfile_in(dir)
            .with_context(|| format!("cannot create a file in {}", dir.display()))?;
        tmp.write_all(text.as_bytes())
            .and_then(|()| tmp.as_file().set_permissions(permissions))
            .and_then(|()| tmp.as_file().sync_all())
            .with_context(|| format!("cannot write the new {}", self.file.display()))?;
        tmp.persist(&self.file)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot replace {}", self.file.display()))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// `hosts/known_hosts`: the recorded host keys deploy pins hosts to.
    pub(crate) fn known_hosts(&self) -> PathBuf {
        let path = self.hosts.join(render::KNOWN_HOSTS);
        std::path::absolute(&path).unwrap_or(path)
    }

    /// What `gen` would write for `fleet`.
    pub(crate) fn render(&self, fleet: &model::Fleet) -> anyhow::Result<render::Output> {
        render::render(fleet, &self.source).context("rendering the fleet")
    }

    /// Writes `hosts/` for `fleet` as `gen` does (never over files edited by hand).
    pub(crate) fn write_tree(&self, fleet: &model::Fleet) -> anyhow::Result<Hosts> {
        let output = self.render(fleet)?;
        let plan = render::tree::plan(&self.hosts, &output, false)?;
        plan.apply()?;
        Ok(Hosts::of(plan.steps()))
    }

    /// Whether `hosts/` is exactly what `gen` would write now (the same comparison as `gen --check`).
    /// Prints why not, and warns when git does not track the tree.
    pub(crate) fn is_current(&self, fleet: &model::Fleet) -> anyhow::Result<bool> {
        let output = self.render(fleet)?;
        let clean = match render::tree::plan(&self.hosts, &output, false) {
            Ok(plan) => plan.is_clean(),
            Err(err) => {
                eprintln!("{err}");
                false
            }
        };
        if !clean {
            eprintln!(
                "{} is out of date with {}: run `nix run .#gen` (or `pifleet gen`), commit the result, then deploy",
                self.hosts.display(),
                self.shown()
            );
            return Ok(false);
        }
        self.warn_untracked();
        Ok(true)
    }

    /// A flake in a git repository cannot see untracked files: a freshly generated host would be
    /// missing from `nixosConfigurations` until `git add`. Warns only; outside git it says nothing.
    fn warn_untracked(&self) {
        let hosts = &self.hosts;
        let dir = match hosts.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        warn_untracked_in(dir, hosts.file_name().unwrap_or(hosts.as_os_str()));
    }

    /// The same for `secrets/`: a host's image reads its age files from the flake.
    pub(crate) fn warn_untracked_secrets(&self) {
        warn_untracked_in(self.base(), std::ffi::OsStr::new(model::SECRETS_DIR));
    }
}

/// Warns about files under `dir/sub` that git does not track.
fn warn_untracked_in(dir: &Path, sub: &std::ffi::OsStr) {
    let Ok(out) = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "--others", "--exclude-standard", "--"])
        .arg(sub)
        .stderr(std::process::Stdio::null())
        .output()
    else {
        return;
    };
    let untracked = String::from_utf8_lossy(&out.stdout);
    if out.status.success() && !untracked.trim().is_empty() {
        let add = if dir == Path::new(".") {
            Path::new(sub).to_path_buf()
        } else {
            dir.join(sub)
        };
        eprintln!(
            "warning: git does not track {} (the flake cannot see untracked files): `git add {}`",
            untracked.split_whitespace().collect::<Vec<_>>().join(", "),
            add.display()
        );
    }
}

/// gen's summary, in hosts (a host is written when any of its files is, removed when its files
/// are); the index files beside them are mentioned only when they alone changed.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    pub(crate) written: usize,
    pub(crate) unchanged: usize,
    pub(crate) removed: usize,
    pub(crate) index_only: bool,
    /// Temporary files an interrupted gen left, removed.
    pub(crate) leftovers: usize,
}

impl Hosts {
    pub(crate) fn of(steps: &[render::tree::Step]) -> Self {
        use render::tree::Action;
        use std::collections::BTreeMap;
        let mut hosts: BTreeMap<&std::ffi::OsStr, (bool, bool)> = BTreeMap::new();
        let mut index_changed = false;
        let mut leftovers = 0;
        for step in steps {
            if step.action == Action::Leftover {
                leftovers += 1;
                continue;
            }
            let mut parts = step.path.components();
            let (Some(first), Some(_)) = (parts.next(), parts.next()) else {
                index_changed |= step.action != Action::Unchanged;
                continue;
            };
            let (changed, kept) = hosts.entry(first.as_os_str()).or_default();
            *changed |= step.action != Action::Unchanged;
            *kept |= step.action != Action::Remove;
        }
        let mut out = Hosts::default();
        for (changed, kept) in hosts.into_values() {
            match (changed, kept) {
                (_, false) => out.removed += 1,
                (true, true) => out.written += 1,
                (false, true) => out.unchanged += 1,
            }
        }
        out.index_only = index_changed && out.written == 0 && out.removed == 0;
        out.leftovers = leftovers;
        out
    }
}

impl Hosts {
    /// The same counts for a tree not written yet (`gen --check`): what `gen` would do.
    pub(crate) fn pending(&self) -> impl std::fmt::Display + '_ {
        Counts(self, Tense::Pending)
    }

    fn write(&self, tense: Tense, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total = self.written + self.unchanged;
        let (written, removed, index, leftover) = match tense {
            Tense::Done => ("written", "removed", "index updated", "removed"),
            Tense::Pending => ("to write", "to remove", "index to update", "to remove"),
        };
        write!(
            f,
            "{total} host{}: {} {written}, {} unchanged, {} {removed}",
            if total == 1 { "" } else { "s" },
            self.written,
            self.unchanged,
            self.removed
        )?;
        if self.index_only {
            write!(f, "; {index}")?;
        }
        match self.leftovers {
            0 => {}
            1 => write!(f, ", 1 leftover temporary file {leftover}")?,
            n => write!(f, ", {n} leftover temporary files {leftover}")?,
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
enum Tense {
    Done,
    Pending,
}

struct Counts<'a>(&'a Hosts, Tense);

impl std::fmt::Display for Counts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.write(self.1, f)
    }
}

impl std::fmt::Display for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write(Tense::Done, f)
    }
}

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
        let shown = self.shown();
        let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let (report, loaded) = check::load_and_check_bytes(bytes, &shown, Some(self.base()));
        if !report.diagnostics.is_empty() {
            eprint!("{}", check::render_human(&report, color));
        }
        if report.has_errors() {
            eprintln!(
                "{shown}: {} error(s); fix them first (`pifleet check -f {shown}` lists them)",
                report.error_count(),
            );
            return None;
        }
        loaded
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
        let Ok(out) = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["ls-files", "--others", "--exclude-standard", "--"])
            .arg(hosts.file_name().unwrap_or(hosts.as_os_str()))
            .stderr(std::process::Stdio::null())
            .output()
        else {
            return;
        };
        let untracked = String::from_utf8_lossy(&out.stdout);
        if out.status.success() && !untracked.trim().is_empty() {
            eprintln!(
                "warning: git does not track {} (the flake cannot see untracked files): `git add {}`",
                untracked.split_whitespace().collect::<Vec<_>>().join(", "),
                hosts.display()
            );
        }
    }
}

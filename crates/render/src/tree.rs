//! Bringing an output directory in line with rendered files, without losing anyone's work.
//!
//! [`plan`] compares the rendered [`Output`] with what is on disk and decides, per file, to
//! create, update, keep or remove it. It refuses, before anything is written, when a file it
//! would replace or remove is not pifleet's or was edited by hand. [`Plan::apply`] then writes
//! the plan. [`Plan::diff`] is the unified diff `gen --check` prints.
//!
//! Why `apply` works the way it does:
//!
//! - **Whole files only.** Every new file is written to a temporary file next to its target and
//!   renamed over it, so a reader, or a `gen` killed half-way, sees each file either old or new,
//!   never half-written.
//! - **The old tree survives a failure.** All temporary files are written and flushed to disk
//!   before the first rename. A failure while writing them (disk full, a file where a directory
//!   must go) removes them and leaves the old tree as it was. Only a failure, crash or power cut
//!   during the renames can leave a tree that is part old and part new (every file whole);
//!   `gen --check` reports it and the next `gen` finishes the job.
//! - **No debris.** A `gen` killed while writing leaves its temporary files behind. They have one
//!   exact name shape, `.pifleet-gen-` + twelve ASCII letters and digits + `.tmp`, so [`plan`]
//!   finds them ([`Action::Leftover`]): `gen --check` calls the tree out of date and the next
//!   `gen` removes them. Nothing else is taken for one: the shorter names of earlier builds
//!   (`.pifleet-` + six letters and digits + `.tmp`, which a person might also type) count only
//!   when the file holds the start of a generated file.
//! - **No lost edits.** A file can change between planning and writing (an editor saving while
//!   `gen` runs, a `git checkout`). Once all temporary files are written, each file to be replaced
//!   or removed is checked (a `stat`: still the file [`plan`] read? if not, its content is
//!   compared), and if any changed, nothing is renamed. Each one is then read and compared again
//!   just before its own rename. A changed file is left alone and reported
//!   ([`ConflictKind::ChangedWhileWriting`]).
//! - **Only inside the tree.** A host directory that is a symbolic link, or an output directory
//!   that links outside the directory holding it, would make `gen` write somewhere else: both are
//!   refused before anything is written.
//! - **One writer at a time.** `apply` holds an exclusive `flock` on the output directory, so a
//!   second `gen` can neither take the first one's temporary files for debris nor interleave its
//!   renames with them.
//!
//! And why it is fast (docs/benchmarks.md): a 1,000-host fleet is 1,001 small files. Each
//! directory is made once, and only for new files; the files are written, re-checked and renamed
//! on every core (each file is independent, and all are staged before any rename); and instead
//! of one `fsync` per file (each one a journal commit), one `syncfs` per file system flushes them
//! all before the renames. (An `fsync` of each directory would not do: it makes names durable,
//! not data.) `syncfs` also waits for other programs' unwritten data on the same file system,
//! which on a busy machine can take a while, but once, not 1,001 times. Where there is no
//! `syncfs` (not Linux), each file is `fsync`ed on the writer threads. The renames themselves are
//! not flushed: after a power cut a file may be its old version again, which `gen --check`
//! reports, but never a partial one.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::{MARKER, Output, Provenance, provenance};

/// How temporary files start: `.pifleet-gen-`, then [`TEMP_RANDOM`] ASCII letters and digits, then
/// [`TEMP_SUFFIX`].
const TEMP_PREFIX: &str = ".pifleet-gen-";
const TEMP_RANDOM: usize = 12;
const TEMP_SUFFIX: &str = ".tmp";
/// What earlier builds named their temporary files: `.pifleet-`, six letters and digits, `.tmp`. A
/// person might name a file `.pifleet-backup.tmp`, so a file of this shape only counts as a
/// leftover when it also holds the start of a generated file.
const LEGACY_PREFIX: &str = ".pifleet-";
const LEGACY_RANDOM: usize = 6;
/// Below this many files, starting threads (to write, check or rename) costs more than it saves.
const PARALLEL_WRITES: usize = 64;

/// Why the tree could not be planned or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Files that `gen` must not overwrite or remove.
    #[error("{}", describe_conflicts(.0))]
    Conflicts(Vec<Conflict>),
    /// Reading the tree, or removing a file, failed.
    #[error("{action} {}", .path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing the new files failed before any was renamed into place: the old tree is intact.
    #[error(
        "cannot write {} (nothing was replaced: the tree is as it was); fix the cause, then run \
         `pifleet gen` again",
        .path.display()
    )]
    Stage {
        /// The file (or its directory) being written.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Renaming a new file into place failed: the tree may be part new, part old.
    #[error(
        "cannot replace {} (other files may already be new, the rest are as they were, each one \
         whole); fix the cause, then run `pifleet gen` again to finish",
        .path.display()
    )]
    Replace {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A host directory `gen` would write into is a symbolic link.
    #[error(
        "{} is a symbolic link (to {}); pifleet writes each host's module into a real directory \
         inside the output directory, never through a link, and has written nothing. Replace the \
         link with a directory (move what it points to into its place), then run `pifleet gen` \
         again.",
        .path.display(),
        .target.display()
    )]
    LinkedHostDirectory {
        /// The link.
        path: PathBuf,
        /// Where it points, as written in the link.
        target: PathBuf,
    },
    /// The output directory is a symbolic link that leads out of the directory holding it.
    #[error(
        "the output directory {} is a symbolic link to {}, outside {}; pifleet does not write \
         through it, and has written nothing. Give the real directory with `--out`, or replace \
         the link with a directory.",
        .path.display(),
        .target.display(),
        .parent.display()
    )]
    LinkedOutputDirectory {
        /// The link.
        path: PathBuf,
        /// Where it points, as written in the link.
        target: PathBuf,
        /// The directory it must stay inside.
        parent: PathBuf,
    },
    /// Another `gen` is writing the same tree.
    #[error(
        "another `pifleet gen` is writing {}; nothing was written. Wait for it to finish, then run \
         `pifleet gen` again.",
        .path.display()
    )]
    Busy {
        /// The output directory.
        path: PathBuf,
    },
}

/// A file `gen` refuses to touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The file, including the output directory.
    pub path: PathBuf,
    /// Why.
    pub kind: ConflictKind,
}

/// Why a file is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConflictKind {
    /// It has no pifleet header: someone else's file sits where a generated one must go.
    NotGenerated,
    /// Its body was changed after pifleet wrote it.
    EditedByHand,
    /// It changed between [`plan`] and [`Plan::apply`] (or appeared, where a new file goes).
    ChangedWhileWriting,
}

fn describe_conflicts(conflicts: &[Conflict]) -> String {
    let mut out = String::from("refusing to overwrite files pifleet did not write as they are:");
    for c in conflicts {
        let _ = match c.kind {
            ConflictKind::NotGenerated => write!(
                out,
                "\n  {}: not generated by pifleet (no header). Move it away or delete it; to keep its \
                 settings, put them in a hand-written module and list it in the host's `modules`.",
                c.path.display()
            ),
            ConflictKind::EditedByHand => write!(
                out,
                "\n  {}: edited by hand since pifleet wrote it. Move the change into fleet.toml (or a \
                 hand-written module listed in the host's `modules`), then run `pifleet gen --force` \
                 to discard the edit.",
                c.path.display()
            ),
            ConflictKind::ChangedWhileWriting => write!(
                out,
                "\n  {}: changed while pifleet was writing the tree (an editor, git, another gen?), \
                 so it was left as it is. Run `pifleet gen` again: it updates the file, or says \
                 why it is in the way.",
                c.path.display()
            ),
        };
    }
    out
}

/// What happens to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// New file.
    Create,
    /// Different content.
    Update,
    /// Same bytes: not touched.
    Unchanged,
    /// Generated for a host that left the inventory.
    Remove,
    /// A temporary file an interrupted `gen` left behind: removed.
    Leftover,
}

/// One file's fate.
#[derive(Debug, Clone)]
pub struct Step {
    /// Path relative to the output directory.
    pub path: PathBuf,
    /// What happens.
    pub action: Action,
    /// Current content, if the file exists.
    pub old: Option<String>,
    /// New content, unless removed.
    pub new: Option<String>,
    /// Which file `old` was read from.
    seen: Option<Seen>,
}

/// Which file [`plan`] read: one replaced since (another inode) or written to (size, modification
/// or change time) shows a different `Seen`, which a single `stat` tells without reading it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Seen {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt as _;
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// Everything `gen` would do to an output directory.
#[derive(Debug, Clone)]
pub struct Plan {
    root: PathBuf,
    steps: Vec<Step>,
}

/// Counts for the one-line summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Created or updated.
    pub written: usize,
    /// Already up to date.
    pub unchanged: usize,
    /// Removed.
    pub removed: usize,
    /// Temporary files of an interrupted `gen`, removed.
    pub leftovers: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} written, {} unchanged, {} removed",
            self.written, self.unchanged, self.removed
        )?;
        match self.leftovers {
            0 => Ok(()),
            1 => write!(f, ", 1 leftover temporary file removed"),
            n => write!(f, ", {n} leftover temporary files removed"),
        }
    }
}

/// Compares `output` with the files under `root`. With `force`, files edited by hand are
/// overwritten (or removed); files pifleet did not write are never touched.
pub fn plan(root: &Path, output: &Output, force: bool) -> Result<Plan, Error> {
    check_output_dir(root)?;
    let layout = Layout::read(root)?;
    for path in output.files.keys() {
        layout.refuse_link(root, path)?;
    }
    let mut steps = Vec::new();
    let mut conflicts = Vec::new();
    let check = |path: &Path, text: &str, conflicts: &mut Vec<Conflict>| match provenance(text) {
        Provenance::Generated => {}
        Provenance::Edited if force => {}
        Provenance::Edited => conflicts.push(Conflict {
            path: root.join(path),
            kind: ConflictKind::EditedByHand,
        }),
        Provenance::Foreign => conflicts.push(Conflict {
            path: root.join(path),
            kind: ConflictKind::NotGenerated,
        }),
    };
    // What is on disk now, read on every core: a no-op `gen` is mostly these reads. A path whose
    // directory the listing above does not have is not read at all (a first `gen`).
    let files: Vec<(&PathBuf, &String)> = output.files.iter().collect();
    let found = on_cores(files, |part| {
        part.into_iter()
            .map(|(path, new)| {
                let found = match layout.may_hold(path) {
                    true => read_seen(&root.join(path))?,
                    false => None,
                };
                Ok((path, new, found))
            })
            .collect::<Result<Vec<_>, Error>>()
    });
    for part in found {
        for (path, new, found) in part? {
            plan_write(path, new, found, &mut steps, &mut conflicts, &check);
        }
    }
    fn plan_write(
        path: &Path,
        new: &str,
        found: Option<(String, Seen)>,
        steps: &mut Vec<Step>,
        conflicts: &mut Vec<Conflict>,
        check: &dyn Fn(&Path, &str, &mut Vec<Conflict>),
    ) {
        let (old, seen) = found.unzip();
        let action = match &old {
            None => Action::Create,
            Some(old) if old == new => Action::Unchanged,
            Some(old) => {
                check(path, old, conflicts);
                Action::Update
            }
        };
        steps.push(Step {
            path: path.to_owned(),
            action,
            old,
            new: Some(new.to_owned()),
            seen,
        });
    }
    for path in layout.candidates() {
        if output.files.contains_key(&path) {
            continue;
        }
        let Some((old, seen)) = read_seen(&root.join(&path))? else {
            continue;
        };
        // Someone else's file in a host directory is not ours to remove.
        if provenance(&old) == Provenance::Foreign {
            continue;
        }
        check(&path, &old, &mut conflicts);
        steps.push(Step {
            path,
            action: Action::Remove,
            old: Some(old),
            new: None,
            seen: Some(seen),
        });
    }
    for (path, old) in layout.leftovers(root)? {
        steps.push(Step {
            path,
            action: Action::Leftover,
            old: Some(old),
            new: None,
            seen: None,
        });
    }
    if !conflicts.is_empty() {
        return Err(Error::Conflicts(conflicts));
    }
    Ok(Plan {
        root: root.to_owned(),
        steps,
    })
}

/// Whether `name` is one of pifleet's temporary files by its name alone: `.pifleet-gen-`, twelve
/// ASCII letters and digits, `.tmp`. (Names of earlier builds count only when the file also holds
/// the start of a generated file: [`legacy_leftover`].)
fn is_leftover_name(name: &OsStr) -> bool {
    shaped(name, TEMP_PREFIX, TEMP_RANDOM)
}

fn shaped(name: &OsStr, prefix: &str, random: usize) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    name.strip_prefix(prefix)
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        .is_some_and(|mid| mid.len() == random && mid.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A legacy-named file is a leftover only when it holds what pifleet was writing: the start of a
/// generated file (possibly cut short, possibly empty).
fn legacy_leftover(name: &OsStr, text: &str) -> bool {
    shaped(name, LEGACY_PREFIX, LEGACY_RANDOM)
        && (text.starts_with(MARKER) || MARKER.starts_with(text))
}

/// The output directory's own entries, read once: where generated files can be, which entries
/// are links, and where temporary files can have been left.
#[derive(Debug, Default)]
pub(crate) struct Layout {
    /// Real subdirectories, by name.
    dirs: Vec<OsString>,
    /// Entries that are symbolic links, by name.
    links: BTreeSet<OsString>,
    /// Other entries directly in the output directory, by name.
    files: Vec<OsString>,
}

impl Layout {
    /// Reads `root`; an empty layout when it does not exist yet.
    pub(crate) fn read(root: &Path) -> Result<Self, Error> {
        let io = |source| Error::Io {
            action: "reading directory",
            path: root.to_owned(),
            source,
        };
        let entries = match std::fs::read_dir(root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(io(e)),
        };
        let mut layout = Self::default();
        for entry in entries {
            let entry = entry.map_err(io)?;
            let kind = entry.file_type().map_err(io)?;
            if kind.is_symlink() {
                layout.links.insert(entry.file_name());
            } else if kind.is_dir() {
                layout.dirs.push(entry.file_name());
            } else {
                layout.files.push(entry.file_name());
            }
        }
        layout.dirs.sort();
        layout.files.sort();
        Ok(layout)
    }

    /// Whether `path` (relative to the root) may exist: its directory, or for a file directly
    /// under the root the file itself, is in the listing (a link counts: it is refused later).
    pub(crate) fn may_hold(&self, path: &Path) -> bool {
        let mut parts = path.components();
        let Some(first) = parts.next() else {
            return false;
        };
        let first = first.as_os_str();
        let listed = if parts.next().is_some() {
            &self.dirs
        } else {
            &self.files
        };
        self.links.contains(first)
            || listed
                .binary_search_by(|n| n.as_os_str().cmp(first))
                .is_ok()
    }

    /// `default.nix`, `known_hosts` and `*/default.nix` under the root: where generated files live.
    /// (`known_hosts` goes when no host has a recorded key any more; a stale one would pin deploy
    /// to keys the inventory no longer has.)
    pub(crate) fn candidates(&self) -> Vec<PathBuf> {
        let mut out = vec![
            PathBuf::from("default.nix"),
            PathBuf::from(crate::KNOWN_HOSTS),
        ];
        out.extend(
            self.dirs
                .iter()
                .map(|dir| PathBuf::from(dir).join("default.nix")),
        );
        out
    }

    /// The host directory of `path` (relative to `root`), when it is a symbolic link.
    pub(crate) fn linked_dir(&self, path: &Path) -> Option<PathBuf> {
        let mut parts = path.components();
        let first = parts.next()?;
        parts.next()?;
        self.links
            .contains(first.as_os_str())
            .then(|| PathBuf::from(first.as_os_str()))
    }

    /// Refuses a path whose host directory is a link.
    fn refuse_link(&self, root: &Path, path: &Path) -> Result<(), Error> {
        let Some(dir) = self.linked_dir(path) else {
            return Ok(());
        };
        let link = root.join(dir);
        let target = std::fs::read_link(&link).map_err(|source| Error::Io {
            action: "reading the link",
            path: link.clone(),
            source,
        })?;
        Err(Error::LinkedHostDirectory { path: link, target })
    }

    /// pifleet's temporary files in the root and its real subdirectories (never through a link),
    /// relative to `root`, with their content.
    pub(crate) fn leftovers(&self, root: &Path) -> Result<Vec<(PathBuf, String)>, Error> {
        let mut out = Vec::new();
        let mut consider = |rel: PathBuf, name: &OsStr| -> Result<(), Error> {
            let ours = is_leftover_name(name);
            if !ours && !shaped(name, LEGACY_PREFIX, LEGACY_RANDOM) {
                return Ok(());
            }
            let Some(text) = read_if_exists(&root.join(&rel))? else {
                return Ok(());
            };
            if ours || legacy_leftover(name, &text) {
                out.push((rel, text));
            }
            Ok(())
        };
        for name in &self.files {
            consider(PathBuf::from(name), name)?;
        }
        for dir in &self.dirs {
            let path = root.join(dir);
            let io = |source| Error::Io {
                action: "reading directory",
                path: path.clone(),
                source,
            };
            let entries = match std::fs::read_dir(&path) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(e)),
            };
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry.map_err(io)?;
                if entry.file_type().map_err(io)?.is_file() {
                    names.push(entry.file_name());
                }
            }
            names.sort();
            for name in names {
                consider(PathBuf::from(dir).join(&name), &name)?;
            }
        }
        Ok(out)
    }
}

/// Refuses an output directory that is a link leading out of the directory that holds it.
fn check_output_dir(root: &Path) -> Result<(), Error> {
    match std::fs::symlink_metadata(root) {
        Ok(meta) if meta.file_type().is_symlink() => {}
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(Error::Io {
                action: "reading",
                path: root.to_owned(),
                source,
            });
        }
    }
    let target = std::fs::read_link(root).map_err(|source| Error::Io {
        action: "reading the link",
        path: root.to_owned(),
        source,
    })?;
    let parent = match root.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    // A dangling link, or one to the parent itself or above it, is outside.
    let inside = match (std::fs::canonicalize(root), std::fs::canonicalize(parent)) {
        (Ok(real), Ok(parent)) => real != parent && real.starts_with(&parent),
        _ => false,
    };
    if inside {
        Ok(())
    } else {
        Err(Error::LinkedOutputDirectory {
            path: root.to_owned(),
            target,
            parent: parent.to_owned(),
        })
    }
}

fn read_if_exists(path: &Path) -> Result<Option<String>, Error> {
    Ok(read_seen(path)?.map(|(text, _)| text))
}

/// A file's text and which file it was; `None` when there is none.
fn read_seen(path: &Path) -> Result<Option<(String, Seen)>, Error> {
    let io = |source| Error::Io {
        action: "reading",
        path: path.to_owned(),
        source,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(e)),
    };
    let meta = file.metadata().map_err(io)?;
    let size = usize::try_from(meta.len()).unwrap_or(0);
    let text = read_rest(&mut file, size).map_err(io)?;
    Ok(Some((text, Seen::of(&meta))))
}

/// Reads `file` to its end as text (lossy), expecting about `size` bytes: one read, and the one
/// that finds the end, when the guess is right. (`File::read_to_end` would first ask for the
/// size again with `statx` and `lseek`: two more syscalls per file, thousands per `gen`.)
fn read_rest(file: &mut std::fs::File, size: usize) -> std::io::Result<String> {
    let mut bytes = vec![0; size.saturating_add(1)];
    let mut filled = 0;
    loop {
        if filled == bytes.len() {
            bytes.resize(bytes.len() * 2, 0);
        }
        match std::io::Read::read(file, &mut bytes[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(filled);
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

/// What a path holds now, compared with what planning saw.
#[derive(Debug, PartialEq, Eq)]
enum Now {
    /// As planned: go ahead.
    AsPlanned,
    /// Already the new content (another `gen` wrote it): nothing to do.
    AlreadyNew,
    /// Different: leave it and report it.
    Changed,
}

/// One staged file: its step, and the temporary file holding the new content.
struct Staged<'a> {
    step: &'a Step,
    target: PathBuf,
    tmp: tempfile::TempPath,
}

/// What a writer thread produced.
#[derive(Default)]
struct Staging<'a> {
    staged: Vec<Staged<'a>>,
    /// One open temporary file per file system, for `syncfs`.
    #[cfg(target_os = "linux")]
    file_systems: Vec<(u64, std::fs::File)>,
}

impl<'a> Staging<'a> {
    fn extend(&mut self, other: Self) {
        self.staged.extend(other.staged);
        #[cfg(target_os = "linux")]
        for (dev, file) in other.file_systems {
            if !self.file_systems.iter().any(|(d, _)| *d == dev) {
                self.file_systems.push((dev, file));
            }
        }
    }
}

impl Plan {
    /// The steps: rendered files in path order, then removals, then leftover temporary files.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Whether applying would change anything.
    pub fn is_clean(&self) -> bool {
        self.steps.iter().all(|s| s.action == Action::Unchanged)
    }

    /// The counts [`Plan::apply`] would report.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for step in &self.steps {
            match step.action {
                Action::Create | Action::Update => s.written += 1,
                Action::Unchanged => s.unchanged += 1,
                Action::Remove => s.removed += 1,
                Action::Leftover => s.leftovers += 1,
            }
        }
        s
    }

    /// A unified diff of every change, with paths as `a/<root>/<file>` and `b/<root>/<file>`.
    pub fn diff(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            if step.action == Action::Unchanged {
                continue;
            }
            let shown = self.root.join(&step.path).display().to_string();
            let old = step.old.as_deref().unwrap_or("");
            let new = step.new.as_deref().unwrap_or("");
            let from = if step.old.is_some() {
                format!("a/{shown}")
            } else {
                "/dev/null".into()
            };
            let to = if step.new.is_some() {
                format!("b/{shown}")
            } else {
                "/dev/null".into()
            };
            let diff = similar::TextDiff::from_lines(old, new);
            let text = diff
                .unified_diff()
                .context_radius(3)
                .header(&from, &to)
                .to_string();
            if text.is_empty() {
                // An empty file removed (a leftover cut short before its first byte) has no
                // hunks, and `similar` then prints no header either.
                let _ = writeln!(out, "--- {from}\n+++ {to}");
            }
            out.push_str(&text);
        }
        out
    }

    /// Writes the plan: all new contents to temporary files, flushed to disk; then, if no file
    /// changed since [`plan`] read it, renames them into place (each re-checked just before);
    /// then removes leftover temporary files and the files of hosts that left (and their
    /// directories, when empty). See the module documentation for why.
    pub fn apply(&self) -> Result<Summary, Error> {
        if self.is_clean() {
            return Ok(self.summary());
        }
        check_output_dir(&self.root)?;
        std::fs::create_dir_all(&self.root).map_err(|source| Error::Stage {
            path: self.root.clone(),
            source,
        })?;
        let _lock = lock(&self.root)?;
        // The tree may have changed since planning: no write through a link, even a new one.
        let layout = Layout::read(&self.root)?;
        for step in &self.steps {
            if step.action != Action::Unchanged {
                layout.refuse_link(&self.root, &step.path)?;
            }
        }

        let writes: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::Create | Action::Update))
            .collect();
        // On any error from here on, dropping the staged files removes them.
        let mut staging = Staging::default();
        for part in on_cores(writes, |part| stage_chunk(&self.root, &part)) {
            staging.extend(part?);
        }
        sync(&self.root, &staging)?;

        // Anything changed while the files were being written: rename nothing.
        let touched: Vec<&Step> = self
            .steps
            .iter()
            .filter(|s| !matches!(s.action, Action::Unchanged | Action::Leftover))
            .collect();
        let mut conflicts = Vec::new();
        for part in on_cores(touched, |part| self.changed(&part)) {
            conflicts.extend(part?);
        }
        if !conflicts.is_empty() {
            return Err(Error::Conflicts(conflicts));
        }

        // Renames are independent of each other, and every file is staged: any order will do.
        let mut failed = None;
        for part in on_cores(staging.staged, |part| self.rename(part)) {
            match part {
                Ok(found) => conflicts.extend(found),
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        for step in self.steps.iter().filter(|s| s.action == Action::Leftover) {
            let target = self.root.join(&step.path);
            match std::fs::remove_file(&target) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Io {
                        action: "removing the leftover temporary file",
                        path: target,
                        source: e,
                    });
                }
                _ => {}
            }
        }
        for step in self.steps.iter().filter(|s| s.action == Action::Remove) {
            match self.now(step)? {
                Now::AsPlanned => {}
                Now::AlreadyNew => continue,
                Now::Changed => {
                    conflicts.push(self.conflict(step));
                    continue;
                }
            }
            let target = self.root.join(&step.path);
            std::fs::remove_file(&target).map_err(|source| Error::Io {
                action: "removing",
                path: target.clone(),
                source,
            })?;
            if let Some(dir) = target.parent().filter(|d| *d != self.root) {
                // Only succeeds when empty: a host's hand-written files stay where they are.
                let _ = std::fs::remove_dir(dir);
            }
        }
        if !conflicts.is_empty() {
            return Err(Error::Conflicts(conflicts));
        }
        Ok(self.summary())
    }

    /// The conflicts of the files among `steps` that changed since planning. A file that is still
    /// the one [`plan`] read (or still absent) needs one `stat`; any other is read and compared.
    fn changed(&self, steps: &[&Step]) -> Result<Vec<Conflict>, Error> {
        let mut out = Vec::new();
        for step in steps {
            let same = match (step.seen, std::fs::metadata(self.root.join(&step.path))) {
                (Some(seen), Ok(meta)) => Seen::of(&meta) == seen,
                (None, Err(e)) => e.kind() == std::io::ErrorKind::NotFound,
                _ => false,
            };
            if !same && self.now(step)? == Now::Changed {
                out.push(self.conflict(step));
            }
        }
        Ok(out)
    }

    /// Renames `staged` into place, each re-checked just before: a file that changed since the
    /// check of all of them is left alone too, and reported.
    fn rename(&self, staged: Vec<Staged<'_>>) -> Result<Vec<Conflict>, Error> {
        let mut conflicts = Vec::new();
        for Staged { step, target, tmp } in staged {
            // A new file needs no read first: the rename itself refuses, atomically, a file that
            // appeared since the check of all of them, and only then is it read.
            let create = step.action == Action::Create;
            if !create {
                match self.now(step)? {
                    Now::AsPlanned => {}
                    Now::AlreadyNew => continue,
                    Now::Changed => {
                        conflicts.push(self.conflict(step));
                        continue;
                    }
                }
            }
            let renamed = if create {
                match tmp.persist_noclobber(&target) {
                    // No atomic no-replace here (a file system without hard links, where
                    // tempfile falls back to linking): a read just before has to do.
                    Err(e) if e.error.kind() != std::io::ErrorKind::AlreadyExists => {
                        match self.now(step)? {
                            Now::AsPlanned => e.path.persist(&target),
                            Now::AlreadyNew => continue,
                            Now::Changed => {
                                conflicts.push(self.conflict(step));
                                continue;
                            }
                        }
                    }
                    other => other,
                }
            } else {
                tmp.persist(&target)
            };
            match renamed {
                Ok(()) => {}
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
                    // Someone wrote the same file meanwhile: nothing to do, and nothing to report.
                    if self.now(step)? != Now::AlreadyNew {
                        conflicts.push(self.conflict(step));
                    }
                }
                Err(e) => {
                    return Err(Error::Replace {
                        path: target,
                        source: e.error,
                    });
                }
            }
        }
        Ok(conflicts)
    }

    /// What `step`'s path holds now, read and compared with planning.
    fn now(&self, step: &Step) -> Result<Now, Error> {
        let path = self.root.join(&step.path);
        let size = step
            .old
            .as_ref()
            .or(step.new.as_ref())
            .map_or(0, String::len);
        let read = std::fs::File::open(&path).and_then(|mut file| read_rest(&mut file, size));
        let now = match read {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            // A directory where the file was, say.
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => return Ok(Now::Changed),
            Err(source) => {
                return Err(Error::Io {
                    action: "reading",
                    path,
                    source,
                });
            }
        };
        Ok(if now == step.old {
            Now::AsPlanned
        } else if now == step.new {
            // The new content, or, for a file to remove, already gone.
            Now::AlreadyNew
        } else {
            Now::Changed
        })
    }

    fn conflict(&self, step: &Step) -> Conflict {
        Conflict {
            path: self.root.join(&step.path),
            kind: ConflictKind::ChangedWhileWriting,
        }
    }
}

/// Runs `work` on `items` split into one chunk per core, in order; in place when there are few.
/// Every chunk runs to its end, so on an error the other chunks' results are there to drop.
fn on_cores<T: Send, R: Send>(items: Vec<T>, work: impl Fn(Vec<T>) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || items.len() < PARALLEL_WRITES {
        return vec![work(items)];
    }
    let size = items.len().div_ceil(threads);
    let mut items = items.into_iter();
    let chunks: Vec<Vec<T>> = std::iter::from_fn(|| {
        let part: Vec<T> = items.by_ref().take(size).collect();
        (!part.is_empty()).then_some(part)
    })
    .collect();
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = chunks
            .into_iter()
            .map(|part| scope.spawn(move || work(part)))
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

/// Stages `steps` in order; on error, the files staged so far are removed (dropped).
fn stage_chunk<'a>(root: &Path, steps: &[&'a Step]) -> Result<Staging<'a>, Error> {
    let mut staging = Staging::default();
    let mut made: Option<&Path> = None;
    // tempfile makes a relative directory absolute for each file (a `getcwd` each): once here.
    let absolute = std::path::absolute(root).map_err(|source| Error::Stage {
        path: root.to_owned(),
        source,
    })?;
    for step in steps {
        let target = root.join(&step.path);
        let dir = absolute.join(&step.path);
        let dir = dir.parent().unwrap_or(&absolute).to_owned();
        let fail = |source| Error::Stage {
            path: target.clone(),
            source,
        };
        // A new file may need its directory; an existing one has it. Each directory once.
        if step.action == Action::Create
            && made != Some(step.path.parent().unwrap_or(Path::new("")))
        {
            std::fs::create_dir_all(&dir).map_err(|source| Error::Stage {
                path: dir.clone(),
                source,
            })?;
            made = step.path.parent();
        }
        let text = step.new.as_deref().unwrap_or_default();
        let mut file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .rand_bytes(TEMP_RANDOM)
            .suffix(TEMP_SUFFIX)
            .permissions(readable())
            .tempfile_in(&dir)
            .map_err(fail)?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::MetadataExt as _;
            let dev = file.as_file().metadata().map_err(fail)?.dev();
            if !staging.file_systems.iter().any(|(d, _)| *d == dev) {
                let (handle, path) = file.into_parts();
                staging.file_systems.push((dev, handle));
                staging.staged.push(Staged {
                    step,
                    target,
                    tmp: path,
                });
                continue;
            }
        }
        #[cfg(not(target_os = "linux"))]
        file.as_file().sync_all().map_err(fail)?;
        // Closed now: a 10,000-host tree must not hold 10,000 descriptors open.
        let tmp = file.into_temp_path();
        staging.staged.push(Staged { step, target, tmp });
    }
    Ok(staging)
}

/// Flushes every staged file to disk: one `syncfs` per file system (Linux); elsewhere each file
/// was `fsync`ed when it was written.
fn sync(root: &Path, staging: &Staging<'_>) -> Result<(), Error> {
    #[cfg(target_os = "linux")]
    for (_, file) in &staging.file_systems {
        rustix::fs::syncfs(file).map_err(|e| Error::Stage {
            path: root.to_owned(),
            source: e.into(),
        })?;
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (root, staging);
    Ok(())
}

/// An exclusive lock on the output directory, held while the returned file is open.
fn lock(root: &Path) -> Result<std::fs::File, Error> {
    let io = |source| Error::Io {
        action: "locking",
        path: root.to_owned(),
        source,
    };
    let dir = std::fs::File::open(root).map_err(io)?;
    match rustix::fs::flock(&dir, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(dir),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Busy {
            path: root.to_owned(),
        }),
        Err(e) => Err(io(e.into())),
    }
}

/// Generated modules are ordinary, readable source files (the umask still applies).
fn readable() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::Permissions::from_mode(0o644)
}

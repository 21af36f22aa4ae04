//! Two ways to edit an unmounted ext4 file system: e2fsprogs' `debugfs` (preferred: nothing is
//! mounted, so nothing can be left mounted), or mounting it in a temporary directory and
//! unmounting it on drop when `debugfs` is missing.
//!
//! Both sit behind [`Editor`], whose paths are absolute inside the file system (`/home/nixos`).

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use crate::locate::Root;

/// What kind of inode a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// Anything else.
    Other,
}

/// Owner, group and permission bits (without the file type bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// Permission bits, e.g. `0o700`.
    pub mode: u32,
}

impl fmt::Display for Attrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "owner {}:{}, mode {:o}", self.uid, self.gid, self.mode)
    }
}

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Its kind.
    pub kind: Kind,
    /// Its owner and mode.
    pub attrs: Attrs,
}

/// Why an edit failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// A tool could not be started.
    #[error("cannot run {tool}")]
    Spawn {
        /// The tool.
        tool: String,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// `debugfs` reported an error.
    #[error("debugfs failed on {root} ({what}): {message}")]
    Debugfs {
        /// The file system.
        root: String,
        /// The command.
        what: String,
        /// Its complaint.
        message: String,
    },
    /// `mount` failed.
    #[error("cannot mount {root}: {message}")]
    Mount {
        /// The file system.
        root: String,
        /// Its complaint.
        message: String,
    },
    /// A file operation on the mounted file system failed.
    #[error("{}", path.display())]
    Io {
        /// The path on the workstation.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A path component is a symbolic link, which is never followed.
    #[error("{path} is a symbolic link on {root}; refusing to follow it")]
    Symlink {
        /// The path inside the file system.
        path: String,
        /// The file system.
        root: String,
    },
    /// A path or name that can't be passed to debugfs safely.
    #[error("unsupported path {0:?} (white space, quotes or `?`)")]
    UnsafePath(String),
}

/// Edits an unmounted file system. Paths are absolute inside it.
pub trait Editor: fmt::Debug {
    /// How the edit is done, for the report: `debugfs` or `mounted at …`.
    fn method(&self) -> String;
    /// What `path` is, or `None` when it does not exist.
    fn stat(&mut self, path: &str) -> Result<Option<Stat>, EditError>;
    /// The contents of the regular file `path`.
    fn read(&mut self, path: &str) -> Result<Vec<u8>, EditError>;
    /// Creates the directory `path` (its parent exists) with `attrs`.
    fn mkdir(&mut self, path: &str, attrs: Attrs) -> Result<(), EditError>;
    /// Sets the owner and mode of `path`.
    fn set_attrs(&mut self, path: &str, attrs: Attrs) -> Result<(), EditError>;
    /// Replaces (or creates) the file `name` in the existing directory `dir` with `content` and
    /// `attrs`: written under a temporary name first, then renamed, so a failure leaves the old file.
    fn replace(
        &mut self,
        dir: &str,
        name: &str,
        content: &[u8],
        attrs: Attrs,
    ) -> Result<(), EditError>;
}

/// Characters debugfs's command parser would split or interpret.
fn check_safe(s: &str) -> Result<&str, EditError> {
    if s.is_empty()
        || s.chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | '?'))
    {
        return Err(EditError::UnsafePath(s.to_owned()));
    }
    Ok(s)
}

/// The debugfs program: `PIFLEET_DEBUGFS` (tests point it elsewhere to exercise the fallback),
/// else `debugfs` on PATH.
fn debugfs_program() -> String {
    std::env::var("PIFLEET_DEBUGFS").unwrap_or_else(|_| "debugfs".to_owned())
}

/// Whether debugfs can be run here.
pub fn debugfs_available() -> bool {
    Command::new(debugfs_program())
        .arg("-V")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Edits through `debugfs`, one invocation per step, never mounting anything.
#[derive(Debug)]
pub struct Debugfs {
    program: String,
    /// `path` or `path?offset=N` (libext2fs reads I/O options after `?`).
    spec: String,
    shown: String,
}

impl Debugfs {
    /// Prepares to edit `root`.
    pub fn new(root: &Root) -> Result<Self, EditError> {
        let path = root.path.to_string_lossy().into_owned();
        if path.contains('?') {
            return Err(EditError::UnsafePath(path));
        }
        let spec = if root.offset == 0 {
            path
        } else {
            format!("{path}?offset={}", root.offset)
        };
        Ok(Self {
            program: debugfs_program(),
            spec,
            shown: root.shown.clone(),
        })
    }

    /// Runs debugfs with `args`; returns stdout, or the error lines of stderr (less the version
    /// banner). debugfs exits 0 even when a command fails, so stderr is what tells.
    fn run(&self, args: &[&str], what: &str) -> Result<Vec<u8>, EditError> {
        self.run_with(args, what, Stdio::null())
    }

    /// [`Debugfs::run`] with `stdin` as debugfs's standard input.
    fn run_with(&self, args: &[&str], what: &str, stdin: Stdio) -> Result<Vec<u8>, EditError> {
        let out = Command::new(&self.program)
            .args(args)
            .arg(&self.spec)
            .env("DEBUGFS_PAGER", "__none__")
            .stdin(stdin)
            .output()
            .map_err(|source| EditError::Spawn {
                tool: self.program.clone(),
                source,
            })?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        let complaints: Vec<&str> = stderr
            .lines()
            .filter(|l| !is_banner(l) && !l.trim().is_empty())
            .collect();
        if !out.status.success() || !complaints.is_empty() {
            return Err(EditError::Debugfs {
                root: self.shown.clone(),
                what: what.to_owned(),
                message: complaints.join("; "),
            });
        }
        Ok(out.stdout)
    }

    /// Runs the commands in one `debugfs -w -f` session.
    fn write_session(&self, commands: &[String], what: &str) -> Result<(), EditError> {
        self.write_session_with(commands, what, Stdio::null())
    }

    /// [`Debugfs::write_session`] with `stdin` as debugfs's standard input (a command script read
    /// with `-f` leaves it free).
    fn write_session_with(
        &self,
        commands: &[String],
        what: &str,
        stdin: Stdio,
    ) -> Result<(), EditError> {
        let mut script = tempfile::NamedTempFile::new().map_err(|source| EditError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
        let text = commands.join("\n") + "\n";
        script
            .write_all(text.as_bytes())
            .map_err(|source| EditError::Io {
                path: script.path().to_path_buf(),
                source,
            })?;
        let script_path = script.path().to_string_lossy().into_owned();
        self.run_with(&["-w", "-f", &script_path], what, stdin)
            .map(drop)
    }

    fn set_fields(path: &str, attrs: Attrs, file_type: u32) -> Vec<String> {
        vec![
            format!("set_inode_field {path} uid {}", attrs.uid),
            format!("set_inode_field {path} gid {}", attrs.gid),
            format!(
                "set_inode_field {path} mode 0{:o}",
                file_type | (attrs.mode & 0o7777)
            ),
        ]
    }
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;

impl Editor for Debugfs {
    fn method(&self) -> String {
        "debugfs (not mounted)".to_owned()
    }

    fn stat(&mut self, path: &str) -> Result<Option<Stat>, EditError> {
        check_safe(path)?;
        match self.run(&["-R", &format!("stat {path}")], "stat") {
            Ok(out) => Ok(Some(
                parse_stat(&String::from_utf8_lossy(&out)).ok_or_else(|| EditError::Debugfs {
                    root: self.shown.clone(),
                    what: format!("stat {path}"),
                    message: "unexpected output".to_owned(),
                })?,
            )),
            Err(EditError::Debugfs { message, .. }) if message.contains("File not found") => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    fn read(&mut self, path: &str) -> Result<Vec<u8>, EditError> {
        check_safe(path)?;
        self.run(&["-R", &format!("cat {path}")], &format!("cat {path}"))
    }

    fn mkdir(&mut self, path: &str, attrs: Attrs) -> Result<(), EditError> {
        check_safe(path)?;
        let mut commands = vec![format!("mkdir {path}")];
        commands.extend(Self::set_fields(path, attrs, S_IFDIR));
        self.write_session(&commands, &format!("mkdir {path}"))
    }

    fn set_attrs(&mut self, path: &str, attrs: Attrs) -> Result<(), EditError> {
        check_safe(path)?;
        let file_type = match self.stat(path)?.map(|s| s.kind) {
            Some(Kind::Dir) => S_IFDIR,
            _ => S_IFREG,
        };
        self.write_session(
            &Self::set_fields(path, attrs, file_type),
            &format!("set owner and mode of {path}"),
        )
    }

    fn replace(
        &mut self,
        dir: &str,
        name: &str,
        content: &[u8],
        attrs: Attrs,
    ) -> Result<(), EditError> {
        check_safe(dir)?;
        check_safe(name)?;
        let tmp_name = format!(".{name}.pifleet-new");
        let target = format!("{dir}/{name}");
        let tmp_path = format!("{dir}/{tmp_name}");
        // A leftover from an interrupted run would make `write` refuse.
        if self.stat(&tmp_path)?.is_some() {
            self.write_session(
                &[format!("rm {tmp_path}")],
                "remove a leftover temporary file",
            )?;
        }
        let exists = self.stat(&target)?.is_some();

        // The content reaches debugfs as its standard input, a memfd: it lives in RAM only (a host
        // key must never land in a file on the workstation's disk). debugfs's `write` opens the
        // path it is given and copies `st_size` bytes, so `/proc/self/fd/0` (a fresh open of the
        // memfd in the child, at offset 0) works where a pipe would not.
        let memfd = memory_file(content).map_err(|source| EditError::Io {
            path: PathBuf::from("memfd:pifleet-card"),
            source,
        })?;

        // Write the new file under a temporary name with its final owner and mode, then swap it in:
        // debugfs's `ln` adds a name without touching the link count and `unlink` removes one the
        // same way, so together they are a rename.
        let mut commands = vec![
            format!("cd {dir}"),
            format!("write {CHILD_STDIN} {tmp_name}"),
        ];
        commands.extend(Self::set_fields(&tmp_name, attrs, S_IFREG));
        self.write_session_with(&commands, &format!("write {tmp_path}"), Stdio::from(memfd))?;
        let mut swap = vec![format!("cd {dir}")];
        if exists {
            swap.push(format!("rm {name}"));
        }
        swap.push(format!("ln {tmp_name} {name}"));
        swap.push(format!("unlink {tmp_name}"));
        self.write_session(&swap, &format!("rename {tmp_path} to {target}"))
    }
}

/// The path under which debugfs opens its own standard input.
const CHILD_STDIN: &str = "/proc/self/fd/0";

/// An anonymous in-memory file (`memfd_create`, close-on-exec, mode 600 so debugfs's `write`
/// creates the inode 600 before its owner and mode are set) holding `content`.
fn memory_file(content: &[u8]) -> io::Result<fs::File> {
    use rustix::fs::{MemfdFlags, Mode, fchmod, memfd_create};
    let fd = memfd_create("pifleet-card", MemfdFlags::CLOEXEC)?;
    fchmod(&fd, Mode::from_raw_mode(0o600))?;
    let mut file = fs::File::from(fd);
    file.write_all(content)?;
    Ok(file)
}

/// The version line debugfs prints first: `debugfs 1.47.0 (5-Feb-2023)`.
fn is_banner(line: &str) -> bool {
    line.starts_with("debugfs ") && line.ends_with(')')
}

/// Reads `Type:`, `Mode:`, `User:` and `Group:` from debugfs's `stat` output.
fn parse_stat(text: &str) -> Option<Stat> {
    let after = |key: &str| -> Option<&str> {
        let at = text.find(key)? + key.len();
        text[at..].split_whitespace().next()
    };
    let kind = match after("Type:")? {
        "directory" => Kind::Dir,
        "regular" => Kind::File,
        "symlink" => Kind::Symlink,
        _ => Kind::Other,
    };
    let mode = u32::from_str_radix(after("Mode:")?, 8).ok()?;
    let uid = after("User:")?.parse().ok()?;
    let gid = after("Group:")?.parse().ok()?;
    Some(Stat {
        kind,
        attrs: Attrs { uid, gid, mode },
    })
}

/// The file system mounted at a temporary directory; unmounted (and its loop device released) on
/// drop, also when the edit failed.
#[derive(Debug)]
pub struct Mounted {
    dir: tempfile::TempDir,
    shown: String,
    mounted: bool,
}

impl Mounted {
    /// Mounts `root` (`nosuid,nodev`, through a loop device at its offset for an image file).
    pub fn new(root: &Root) -> Result<Self, EditError> {
        let dir = tempfile::Builder::new()
            .prefix("pifleet-card-")
            .tempdir()
            .map_err(|source| EditError::Io {
                path: std::env::temp_dir(),
                source,
            })?;
        let mut options = "nosuid,nodev,noexec".to_owned();
        // An image file, or a partition known only by its offset on the disk, goes through a loop
        // device (released by the kernel on unmount: mount sets autoclear).
        if root.device.is_none() || root.offset != 0 {
            options.push_str(",loop");
        }
        if root.offset != 0 {
            options.push_str(&format!(",offset={}", root.offset));
        }
        let out = Command::new("mount")
            .args(["-t", "ext4", "-o", &options])
            .arg(&root.path)
            .arg(dir.path())
            .stdin(Stdio::null())
            .output()
            .map_err(|source| EditError::Spawn {
                tool: "mount".to_owned(),
                source,
            })?;
        if !out.status.success() {
            return Err(EditError::Mount {
                root: root.shown.clone(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(Self {
            dir,
            shown: root.shown.clone(),
            mounted: true,
        })
    }

    /// The workstation path of `path`, refusing symbolic links on the way: they could point out
    /// of the card into the workstation's own files.
    fn local(&self, path: &str) -> Result<PathBuf, EditError> {
        let mut local = self.dir.path().to_path_buf();
        let components: Vec<Component<'_>> = Path::new(path).components().collect();
        for (i, c) in components.iter().enumerate() {
            match c {
                Component::RootDir => {}
                Component::Normal(name) => {
                    local.push(name);
                    let last = i + 1 == components.len();
                    if !last
                        && fs::symlink_metadata(&local).is_ok_and(|m| m.file_type().is_symlink())
                    {
                        return Err(EditError::Symlink {
                            path: path.to_owned(),
                            root: self.shown.clone(),
                        });
                    }
                }
                _ => return Err(EditError::UnsafePath(path.to_owned())),
            }
        }
        Ok(local)
    }

    fn io(path: &Path) -> impl FnOnce(io::Error) -> EditError + '_ {
        move |source| EditError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn apply(path: &Path, attrs: Attrs) -> Result<(), EditError> {
        std::os::unix::fs::lchown(path, Some(attrs.uid), Some(attrs.gid))
            .map_err(Self::io(path))?;
        fs::set_permissions(path, fs::Permissions::from_mode(attrs.mode)).map_err(Self::io(path))
    }
}

impl Editor for Mounted {
    fn method(&self) -> String {
        format!(
            "mounted at {} (debugfs not found)",
            self.dir.path().display()
        )
    }

    fn stat(&mut self, path: &str) -> Result<Option<Stat>, EditError> {
        let local = self.local(path)?;
        let meta = match fs::symlink_metadata(&local) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(EditError::Io {
                    path: local,
                    source,
                });
            }
        };
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        };
        Ok(Some(Stat {
            kind,
            attrs: Attrs {
                uid: meta.uid(),
                gid: meta.gid(),
                mode: meta.mode() & 0o7777,
            },
        }))
    }

    fn read(&mut self, path: &str) -> Result<Vec<u8>, EditError> {
        let local = self.local(path)?;
        fs::read(&local).map_err(Self::io(&local))
    }

    fn mkdir(&mut self, path: &str, attrs: Attrs) -> Result<(), EditError> {
        let local = self.local(path)?;
        fs::create_dir(&local).map_err(Self::io(&local))?;
        Self::apply(&local, attrs)
    }

    fn set_attrs(&mut self, path: &str, attrs: Attrs) -> Result<(), EditError> {
        let local = self.local(path)?;
        Self::apply(&local, attrs)
    }

    fn replace(
        &mut self,
        dir: &str,
        name: &str,
        content: &[u8],
        attrs: Attrs,
    ) -> Result<(), EditError> {
        let dir_local = self.local(dir)?;
        let tmp = dir_local.join(format!(".{name}.pifleet-new"));
        let target = dir_local.join(name);
        let _ = fs::remove_file(&tmp);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(Self::io(&tmp))?;
        file.write_all(content)
            .and_then(|()| file.sync_all())
            .map_err(Self::io(&tmp))?;
        Self::apply(&tmp, attrs)?;
        fs::rename(&tmp, &target).map_err(Self::io(&target))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.mounted {
            // A process forked elsewhere in this program holds our open files between its fork
            // and exec, for an instant: the file system is busy then, so try a few times.
            let mut ok = false;
            for attempt in 0..5 {
                if attempt > 0 {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                ok = Command::new("umount")
                    .arg(self.dir.path())
                    .stdin(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                if ok {
                    break;
                }
            }
            if !ok {
                // Leave the directory: removing it would fail, and it names the mount to clean up.
                eprintln!(
                    "warning: could not unmount {}; run `umount {}`",
                    self.shown,
                    self.dir.path().display()
                );
            }
            self.mounted = false;
        }
    }
}

/// Opens `root` for editing: with debugfs when it is available, else by mounting it.
pub fn open(root: &Root) -> Result<Box<dyn Editor>, EditError> {
    if debugfs_available() {
        Ok(Box::new(Debugfs::new(root)?))
    } else {
        Ok(Box::new(Mounted::new(root)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_output() {
        let text = "Inode: 13   Type: directory    Mode:  0755   Flags: 0x80000\n\
                    Generation: 0    Version: 0x00000000:00000000\n\
                    User:  1000   Group:   100   Project:     0   Size: 1024\n";
        assert_eq!(
            parse_stat(text),
            Some(Stat {
                kind: Kind::Dir,
                attrs: Attrs {
                    uid: 1000,
                    gid: 100,
                    mode: 0o755
                }
            })
        );
        assert_eq!(parse_stat("nonsense"), None);
    }

    #[test]
    fn debugfs_arguments_are_plain_words() {
        assert!(check_safe("/home/nixos/.ssh").is_ok());
        for bad in ["/home/a b", "/x\"y", "a?offset=1", "", "a\nb"] {
            assert!(check_safe(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            Debugfs::set_fields(
                "/h/.ssh",
                Attrs {
                    uid: 1000,
                    gid: 100,
                    mode: 0o700
                },
                S_IFDIR
            )[2],
            "set_inode_field /h/.ssh mode 040700"
        );
        assert_eq!(
            Debugfs::set_fields(
                "k",
                Attrs {
                    uid: 1,
                    gid: 2,
                    mode: 0o600
                },
                S_IFREG
            )[2],
            "set_inode_field k mode 0100600"
        );
    }
}

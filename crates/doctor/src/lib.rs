//! Workstation readiness checks: can this machine build, flash and deploy a fleet?
//!
//! The first thing a new user hits is rarely pifleet itself: it is Nix without flakes, an x86_64
//! laptop that can't build aarch64, or a fleet that doesn't hold their SSH key and so locks them out
//! of every Pi they flash. Each check here turns one of those into a line with the exact fix, for
//! Ubuntu and for NixOS. Checks take their inputs explicitly (a root directory standing for `/`, the
//! output of `nix --version`, `PATH`, the inventory's keys) rather than reading the machine
//! themselves, so the tests run them against prepared fake configurations.

mod nixconf;

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

pub use nixconf::NixConf;

/// The oldest Nix that evaluates nixos-26.05 (nixpkgs' own minimum).
pub const MIN_NIX: (u32, u32) = (2, 18);

/// Free space under which image builds are likely to fail: a Pi closure plus the image itself.
pub const MIN_FREE: u64 = 10 << 30;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Ready.
    Ok,
    /// Works, but something is likely to bite later.
    Warn,
    /// Blocks building, flashing or deploying.
    Fail,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Self::Ok => "ok",
            Self::Warn => "warn",
            Self::Fail => "FAIL",
        })
    }
}

/// The commands or configuration that fix a failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// On Ubuntu or Debian with Nix installed on top.
    pub ubuntu: String,
    /// On NixOS, as configuration.nix settings plus the command to apply them.
    pub nixos: String,
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A short stable name (`nix`, `flakes`, `aarch64`, `ssh-keys`, `disk`).
    pub name: &'static str,
    /// How it came out.
    pub status: Status,
    /// What was found, in one line.
    pub summary: String,
    /// How to fix it, for anything but [`Status::Ok`].
    pub fix: Option<Fix>,
}

impl Check {
    fn ok(name: &'static str, summary: impl Into<String>) -> Self {
        Self {
            name,
            status: Status::Ok,
            summary: summary.into(),
            fix: None,
        }
    }

    fn bad(
        name: &'static str,
        status: Status,
        summary: impl Into<String>,
        ubuntu: impl Into<String>,
        nixos: impl Into<String>,
    ) -> Self {
        Self {
            name,
            status,
            summary: summary.into(),
            fix: Some(Fix {
                ubuntu: ubuntu.into(),
                nixos: nixos.into(),
            }),
        }
    }
}

const RESTART_DAEMON: &str = "sudo systemctl restart nix-daemon";

/// Nix is installed and new enough. `version_output` is what `nix --version` printed, or `None`
/// when it could not be run; `location` is where `nix` resolved to (symlinks followed), which tells
/// a distribution's package (`/usr/bin/nix`, which `nix upgrade-nix` cannot replace) from an
/// installer-made Nix in the store.
pub fn nix_version(version_output: Option<&str>, location: Option<&Path>) -> Check {
    const NAME: &str = "nix";
    let install_ubuntu = "sh <(curl -L https://nixos.org/nix/install) --daemon   # Debian's nix-bin is too old for nixos-26.05";
    let Some(output) = version_output else {
        return Check::bad(
            NAME,
            Status::Fail,
            "Nix is not installed (no `nix` on PATH)",
            install_ubuntu,
            "Nix is part of NixOS: log in again, or check that /run/current-system/sw/bin is on PATH",
        );
    };
    let Some((major, minor, text)) = parse_version(output) else {
        return Check::bad(
            NAME,
            Status::Warn,
            format!("cannot read the Nix version from {:?}", output.trim()),
            install_ubuntu,
            "sudo nixos-rebuild switch --upgrade",
        );
    };
    if (major, minor) < MIN_NIX {
        return Check::bad(
            NAME,
            Status::Fail,
            format!(
                "Nix {text} is too old to evaluate nixos-26.05 (needs {}.{} or newer)",
                MIN_NIX.0, MIN_NIX.1
            ),
            if location.is_some_and(|p| !p.starts_with("/nix/store")) {
                format!(
                    "{} is the distribution's package, which `nix upgrade-nix` cannot replace: \
                     sudo apt remove nix-bin && sh <(curl -L https://nixos.org/nix/install) --daemon",
                    location
                        .map(Path::display)
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                )
            } else {
                format!(
                    "sudo -i nix upgrade-nix && {RESTART_DAEMON}   # or reinstall: {install_ubuntu}"
                )
            },
            "nix.package = pkgs.nixVersions.latest;   # in configuration.nix, then: sudo nixos-rebuild switch",
        );
    }
    Check::ok(NAME, format!("Nix {text}"))
}

/// `(major, minor, full version)` from `nix (Nix) 2.24.10` and the like.
pub fn parse_version(output: &str) -> Option<(u32, u32, String)> {
    // The last number is Nix's own version, also in `nix (Determinate Nix 3.6.2) 2.29.0`.
    let word = output
        .split_whitespace()
        .rfind(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let mut parts = word.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor: String = parts
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?, word.to_owned()))
}

/// Flakes and the `nix` command are enabled in the configuration.
pub fn flakes(conf: &NixConf) -> Check {
    const NAME: &str = "flakes";
    let features = conf.values("experimental-features");
    let missing: Vec<&str> = ["nix-command", "flakes"]
        .into_iter()
        .filter(|f| !features.contains(f))
        .collect();
    if missing.is_empty() {
        return Check::ok(NAME, "experimental-features include nix-command and flakes");
    }
    Check::bad(
        NAME,
        Status::Fail,
        format!(
            "{} not enabled in {}",
            missing.join(" and "),
            conf.describe_sources()
        ),
        format!(
            "echo 'extra-experimental-features = nix-command flakes' | sudo tee -a /etc/nix/nix.conf && {RESTART_DAEMON}"
        ),
        "nix.settings.experimental-features = [ \"nix-command\" \"flakes\" ];   # in configuration.nix, then: sudo nixos-rebuild switch",
    )
}

/// A `binfmt_misc` registration, as `/proc/sys/fs/binfmt_misc/<name>` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binfmt {
    /// The entry's file name (`qemu-aarch64` on Debian, `aarch64-linux` on NixOS).
    pub name: String,
    /// Whether the entry is enabled.
    pub enabled: bool,
    /// The interpreter the kernel runs.
    pub interpreter: String,
    /// The flags; `F` means the interpreter was opened at registration, so it works inside the
    /// Nix build sandbox.
    pub flags: String,
}

/// The ELF header of an aarch64 executable as binfmt_misc prints it: `e_machine` = 0xb7.
const AARCH64_MAGIC: &str = "7f454c460201010000000000000000000200b700";

/// The aarch64 registration under `root/proc/sys/fs/binfmt_misc`, if any.
pub fn aarch64_binfmt(root: &Path) -> Option<Binfmt> {
    let dir = root.join("proc/sys/fs/binfmt_misc");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n != "register" && n != "status")
        .collect();
    names.sort();
    names.into_iter().find_map(|name| {
        let text = fs::read_to_string(dir.join(&name)).ok()?;
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|v| v.trim().to_owned())
        };
        let magic = field("magic ").unwrap_or_default();
        let is_aarch64 = magic.starts_with(AARCH64_MAGIC) || name.contains("aarch64");
        is_aarch64.then(|| Binfmt {
            enabled: text.lines().next().map(str::trim) == Some("enabled"),
            interpreter: field("interpreter ").unwrap_or_default(),
            flags: field("flags:").unwrap_or_default(),
            name,
        })
    })
}

/// This machine can build for aarch64-linux: natively, or through an enabled binfmt_misc
/// registration usable in the sandbox plus `extra-platforms` in nix.conf. `arch` is the machine's
/// architecture (`std::env::consts::ARCH`); `root` stands for `/`.
pub fn aarch64(root: &Path, arch: &str, conf: &NixConf) -> Check {
    const NAME: &str = "aarch64";
    let nixos_fix = "boot.binfmt.emulatedSystems = [ \"aarch64-linux\" ];   # in configuration.nix (sets extra-platforms too), then: sudo nixos-rebuild switch";
    if arch == "aarch64" || conf.values("system").contains(&"aarch64-linux") {
        return Check::ok(NAME, "this machine is aarch64-linux: builds natively");
    }
    let binfmt_dir = root.join("proc/sys/fs/binfmt_misc");
    let globally_on = fs::read_to_string(binfmt_dir.join("status"))
        .map(|s| s.trim() == "enabled")
        .unwrap_or(false);
    let Some(entry) = aarch64_binfmt(root) else {
        return Check::bad(
            NAME,
            Status::Fail,
            format!(
                "cannot build aarch64-linux: no aarch64 binfmt_misc registration in {}",
                binfmt_dir.display()
            ),
            format!(
                "sudo apt-get install qemu-user-static binfmt-support && echo 'extra-platforms = aarch64-linux' | sudo tee -a /etc/nix/nix.conf && {RESTART_DAEMON}"
            ),
            nixos_fix,
        );
    };
    if !globally_on || !entry.enabled {
        return Check::bad(
            NAME,
            Status::Fail,
            format!("binfmt_misc entry {} is disabled", entry.name),
            format!(
                "echo 1 | sudo tee {}/status {}/{}",
                binfmt_dir.display(),
                binfmt_dir.display(),
                entry.name
            ),
            format!(
                "{nixos_fix}; or re-enable now: echo 1 | sudo tee /proc/sys/fs/binfmt_misc/{}",
                entry.name
            ),
        );
    }
    let sandbox = [
        conf.values("sandbox-paths"),
        conf.values("extra-sandbox-paths"),
    ]
    .concat();
    let in_sandbox = sandbox.iter().any(|p| {
        let p = p.split('=').next().unwrap_or(p).trim_end_matches('?');
        !entry.interpreter.is_empty() && entry.interpreter.starts_with(p)
    });
    if !entry.flags.contains('F') && !in_sandbox {
        return Check::bad(
            NAME,
            Status::Fail,
            format!(
                "binfmt_misc entry {} has flags {:?} without F: the Nix sandbox can't reach {}",
                entry.name, entry.flags, entry.interpreter
            ),
            format!(
                "sudo apt-get install --reinstall qemu-user-static   # registers with the F flag; or: echo 'extra-sandbox-paths = {}' | sudo tee -a /etc/nix/nix.conf && {RESTART_DAEMON}",
                entry.interpreter
            ),
            format!("{nixos_fix}   # NixOS adds the interpreter to the sandbox itself"),
        );
    }
    let platforms = conf.values("extra-platforms");
    if !platforms.contains(&"aarch64-linux") {
        return Check::bad(
            NAME,
            Status::Fail,
            format!(
                "binfmt entry {} is ready, but extra-platforms in {} lacks aarch64-linux: Nix won't use it",
                entry.name,
                conf.describe_sources()
            ),
            format!(
                "echo 'extra-platforms = aarch64-linux' | sudo tee -a /etc/nix/nix.conf && {RESTART_DAEMON}"
            ),
            nixos_fix,
        );
    }
    Check::ok(
        NAME,
        format!(
            "aarch64-linux through binfmt_misc {} ({}, flags {})",
            entry.name, entry.interpreter, entry.flags
        ),
    )
}

/// The workstation's SSH public keys (`ssh_dir/*.pub`) and whether the inventory holds any of them.
/// `inventory_keys` is `None` when there is no inventory to compare with.
pub fn ssh_keys(ssh_dir: &Path, inventory_keys: Option<&[String]>) -> Check {
    const NAME: &str = "ssh-keys";
    let mut keys: Vec<(String, String)> = fs::read_dir(ssh_dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "pub"))
        .filter_map(|p| {
            let text = fs::read_to_string(&p).ok()?;
            let name = p.file_name()?.to_string_lossy().into_owned();
            Some((name, key_identity(&text)?))
        })
        .collect();
    keys.sort();
    if keys.is_empty() {
        return Check::bad(
            NAME,
            Status::Fail,
            format!("no SSH public key in {}", ssh_dir.display()),
            "ssh-keygen -t ed25519   # then add ~/.ssh/id_ed25519.pub to ssh_keys in fleet.toml",
            "ssh-keygen -t ed25519   # then add ~/.ssh/id_ed25519.pub to ssh_keys in fleet.toml",
        );
    }
    let names: Vec<&str> = keys.iter().map(|(n, _)| n.as_str()).collect();
    let Some(inventory) = inventory_keys else {
        return Check::bad(
            NAME,
            Status::Warn,
            format!(
                "found {}; no inventory to compare with (run in the fleet repo, next to fleet.toml)",
                names.join(", ")
            ),
            "cd to your fleet repo (the directory with fleet.toml) and run pifleet doctor again",
            "cd to your fleet repo (the directory with fleet.toml) and run pifleet doctor again",
        );
    };
    let known: Vec<String> = inventory.iter().filter_map(|k| key_identity(k)).collect();
    let listed: Vec<&str> = keys
        .iter()
        .filter(|(_, id)| known.contains(id))
        .map(|(n, _)| n.as_str())
        .collect();
    if listed.is_empty() {
        let first = &keys[0].0;
        let fix = format!(
            "add the contents of {}/{first} to ssh_keys of your user (or ssh.root_keys) in fleet.toml, then pifleet gen",
            ssh_dir.display()
        );
        return Check::bad(
            NAME,
            Status::Fail,
            format!(
                "none of your keys ({}) is in the inventory: you could not log in to hosts you flash",
                names.join(", ")
            ),
            fix.clone(),
            fix,
        );
    }
    Check::ok(NAME, format!("in the inventory: {}", listed.join(", ")))
}

/// `type base64` of an OpenSSH public key line, dropping the comment (and any options before it).
fn key_identity(line: &str) -> Option<String> {
    let line = line
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.starts_with("ssh-") || w.starts_with("ecdsa-") || w.starts_with("sk-"))?;
    Some(format!("{} {}", words[at], words.get(at + 1)?))
}

/// Enough free space at `path` (the Nix store) for image builds. `available` is in bytes.
pub fn disk_space(path: &Path, available: u64) -> Check {
    const NAME: &str = "disk";
    let gib = available as f64 / f64::from(1u32 << 30);
    if available >= 2 * MIN_FREE {
        return Check::ok(NAME, format!("{gib:.1} GiB free in {}", path.display()));
    }
    let status = if available >= MIN_FREE {
        Status::Warn
    } else {
        Status::Fail
    };
    Check::bad(
        NAME,
        status,
        format!(
            "only {gib:.1} GiB free in {}; an SD image build needs about {} GiB",
            path.display(),
            MIN_FREE >> 30
        ),
        "sudo nix-collect-garbage -d   # removes old generations and unused store paths",
        "sudo nix-collect-garbage -d; and keep it tidy: nix.gc.automatic = true;   # in configuration.nix",
    )
}

fn find_on_path(path_var: &OsStr, names: &[&str]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path_var).find_map(|dir| {
        names.iter().map(|n| dir.join(n)).find(|p| {
            fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Everything the checks look at, gathered by the caller.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Stands for `/`: `proc/sys/fs/binfmt_misc` and `etc/nix/nix.conf` are read under it.
    pub root: PathBuf,
    /// The user's own nix.conf (`~/.config/nix/nix.conf`), read after the system one.
    pub user_conf: Option<PathBuf>,
    /// The `NIX_CONFIG` environment variable, applied last as Nix does.
    pub env_conf: Option<String>,
    /// The machine architecture, as `std::env::consts::ARCH`.
    pub arch: String,
    /// What `nix --version` printed, or `None` when it could not run.
    pub nix_version: Option<String>,
    /// The `PATH` to search.
    pub path_var: std::ffi::OsString,
    /// The directory with the workstation's SSH keys (`~/.ssh`).
    pub ssh_dir: PathBuf,
    /// The public keys in the inventory, if one was found.
    pub inventory_keys: Option<Vec<String>>,
    /// Where image builds store their output (the Nix store) and how much space is free there.
    pub store: Option<(PathBuf, u64)>,
}

/// Runs every check in order.
pub fn run_all(inputs: &Inputs) -> Vec<Check> {
    let mut conf = NixConf::load(&inputs.root, inputs.user_conf.as_deref());
    if let Some(text) = &inputs.env_conf {
        conf.apply(text, None, 0);
    }
    let mut checks = vec![
        nix_version(
            inputs.nix_version.as_deref(),
            find_on_path(&inputs.path_var, &["nix"])
                .and_then(|p| fs::canonicalize(p).ok())
                .as_deref(),
        ),
        flakes(&conf),
        aarch64(&inputs.root, &inputs.arch, &conf),
        ssh_keys(&inputs.ssh_dir, inputs.inventory_keys.as_deref()),
    ];
    if let Some((path, available)) = &inputs.store {
        checks.push(disk_space(path, *available));
    }
    checks
}

/// Free bytes for an unprivileged user on the file system holding `path` (statvfs).
pub fn available_space(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("nix (Nix) 2.24.10\n"),
            Some((2, 24, "2.24.10".into()))
        );
        assert_eq!(
            parse_version("nix (Determinate Nix 3.6.2) 2.29.0"),
            Some((2, 29, "2.29.0".into()))
        );
        assert_eq!(
            parse_version("nix (Nix) 2.8.0"),
            Some((2, 8, "2.8.0".into()))
        );
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn key_identity_ignores_comments_and_options() {
        let a = key_identity("ssh-ed25519 AAAAC3Nza me@laptop\n");
        let b = key_identity("from=\"10.0.0.1\" ssh-ed25519 AAAAC3Nza other comment");
        assert_eq!(a, Some("ssh-ed25519 AAAAC3Nza".into()));
        assert_eq!(a, b);
    }
}

//! The operator's own SSH public keys, as `keys inject --key` and `init` take them.
//!
//! A private key given where a public one belongs is refused before anything is written: both
//! commands put what they read into files other people see (a card's authorized_keys, the
//! inventory), and a private key there is a leak.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use model::SshPublicKey;

/// Every key line of a `.pub` file given with `--key` (blank lines and `#` comments skipped).
pub(crate) fn from_file(path: &Path) -> anyhow::Result<Vec<SshPublicKey>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    if text.contains("PRIVATE KEY") {
        let public = if path.extension().is_some_and(|e| e == "pub") {
            "the public key file".to_owned()
        } else {
            format!("{}.pub", path.display())
        };
        bail!(
            "--key {} is a PRIVATE key: give the public half instead ({public}); nothing was written",
            path.display()
        );
    }
    let mut keys = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key: SshPublicKey = line.parse().map_err(|e: model::NameError| {
            anyhow::anyhow!("{}:{}: {}", path.display(), i + 1, e.message)
        })?;
        keys.push(key);
    }
    if keys.is_empty() {
        bail!("{} holds no public key", path.display());
    }
    Ok(keys)
}

/// Where the operator's key was found.
#[derive(Debug)]
pub(crate) enum Found {
    /// `--key FILE`.
    Given(PathBuf),
    /// `~/.ssh/id_ed25519.pub`.
    Default(PathBuf),
    /// The first key the ssh agent holds (`ssh-add -L`).
    Agent,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::Given(path) => write!(f, "{} (--key)", path.display()),
            Found::Default(path) => write!(f, "{}", path.display()),
            Found::Agent => f.write_str("the ssh agent (`ssh-add -L`, its first key)"),
        }
    }
}

/// The operator's public keys: `--key FILE`, else `~/.ssh/id_ed25519.pub`, else the agent's first
/// key. Never a private key.
pub(crate) fn own(given: Option<&Path>) -> anyhow::Result<(Vec<SshPublicKey>, Found)> {
    if let Some(path) = given {
        return Ok((from_file(path)?, Found::Given(path.to_owned())));
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        let path = PathBuf::from(home).join(".ssh/id_ed25519.pub");
        if path.is_file() {
            return Ok((from_file(&path)?, Found::Default(path)));
        }
    }
    if let Some(key) = agent_key() {
        return Ok((vec![key], Found::Agent));
    }
    bail!(
        "no SSH public key found (not in ~/.ssh/id_ed25519.pub, none in the ssh agent): give one with --key FILE.pub, \
         or make one with `ssh-keygen -t ed25519`"
    )
}

/// The first key `ssh-add -L` lists, preferring ed25519 (it is also an age recipient).
fn agent_key() -> Option<SshPublicKey> {
    std::env::var_os("SSH_AUTH_SOCK").filter(|s| !s.is_empty())?;
    let out = std::process::Command::new("ssh-add")
        .arg("-L")
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let keys: Vec<SshPublicKey> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.parse().ok())
        .collect();
    let ed25519 = keys.iter().position(|k| k.algorithm() == "ssh-ed25519");
    keys.into_iter().nth(ed25519.unwrap_or(0))
}

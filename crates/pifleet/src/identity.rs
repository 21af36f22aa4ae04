//! The terminal side of secrets: which private key decrypts (`--identity`), asking for its
//! passphrase, and reading a secret value without echoing it.
//!
//! Every command that decrypts takes `--identity` the same way (`secrets`, `hostkey`, `image`,
//! `flash`, `keys inject`, `adopt`), and values are read one way: a prompt without echo on a
//! terminal, standard input otherwise. Nothing here prints or logs a secret.

use std::io::{IsTerminal as _, Read as _};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// `--identity PATH`: the SSH private key that decrypts secrets.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct IdentityArg {
    /// The SSH private key (ed25519 or rsa) that decrypts secrets [default: $PIFLEET_IDENTITY,
    /// else ~/.ssh/id_ed25519, then ~/.ssh/id_rsa; under sudo, the invoking user's ~/.ssh]. A
    /// passphrase-protected key asks for its passphrase on the terminal.
    #[arg(long, value_name = "PATH", global = true)]
    pub(crate) identity: Option<PathBuf>,
}

impl IdentityArg {
    /// The keys to decrypt with; the search runs now, its failure is reported with the first file
    /// that needed a key.
    pub(crate) fn unlock(&self) -> keeper::Unlock {
        let mut search = vault::IdentitySearch::from_env(self.identity.clone());
        if let Some(home) = sudo_home() {
            search.home = Some(home);
        }
        keeper::Unlock::new(&search, Box::new(ask_passphrase))
    }
}

/// Under `sudo` (root, with `SUDO_USER` naming someone else), the invoking user's home: `flash`
/// needs root for the card, while the key that decrypts is the operator's, not root's.
fn sudo_home() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt as _;
    let user = std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty() && u != "root")?;
    if std::fs::metadata("/proc/self").ok()?.uid() != 0 {
        return None;
    }
    // getent asks NSS, so directory-service accounts resolve as well as /etc/passwd ones.
    let out = std::process::Command::new("getent")
        .args(["passwd", &user])
        .output()
        .ok()?;
    let line = String::from_utf8(out.stdout).ok()?;
    passwd_home(&line).map(PathBuf::from)
}

/// The home directory (sixth field) of a passwd(5) line.
fn passwd_home(line: &str) -> Option<&str> {
    line.lines()
        .next()?
        .split(':')
        .nth(5)
        .filter(|h| h.starts_with('/'))
}

/// Asks for a private key's passphrase on the terminal; `None` without one.
fn ask_passphrase(key: &Path) -> Option<vault::SecretString> {
    if !crate::ui::interactive() {
        return None;
    }
    dialoguer::Password::new()
        .with_prompt(format!("Passphrase for {}", key.display()))
        .allow_empty_password(true)
        .interact_on(&console::Term::stderr())
        .ok()
        .map(vault::SecretString::from)
}

/// A secret value: from `--from FILE` (`-` for stdin), a prompt without echo on a terminal, or
/// standard input. The prompt asks twice, so a typo never becomes the secret.
pub(crate) fn read_value(from: Option<&Path>, what: &str) -> anyhow::Result<keeper::Zeroed> {
    let mut buf = keeper::Zeroed::default();
    match from {
        Some(path) if path.as_os_str() != "-" => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            buf.extend_from_slice(&bytes);
            let mut bytes = bytes;
            keeper::wipe(&mut bytes);
        }
        _ if from.is_none()
            && std::io::stdin().is_terminal()
            && std::io::stderr().is_terminal() =>
        {
            let value = dialoguer::Password::new()
                .with_prompt(format!("Value for {what} (not shown)"))
                .with_confirmation("Again", "the two entries differ")
                .interact_on(&console::Term::stderr())
                .context("cannot read the value")?;
            let mut value = value.into_bytes();
            buf.extend_from_slice(&value);
            keeper::wipe(&mut value);
        }
        _ => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .context("cannot read the value from standard input")?;
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_home_field_of_a_passwd_line() {
        assert_eq!(
            super::passwd_home("ops:x:1000:1000:Ops,,,:/home/ops:/bin/bash\n"),
            Some("/home/ops")
        );
        assert_eq!(
            super::passwd_home("ops:x:1000:1000::relative:/bin/sh"),
            None
        );
        assert_eq!(super::passwd_home(""), None);
    }
}

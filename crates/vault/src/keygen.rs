//! Host SSH key pairs made on the workstation, in memory.
//!
//! agenix decrypts on the host with `/etc/ssh/ssh_host_ed25519_key`, so secrets for a new host
//! can be encrypted before it first boots only if its key exists already. Making the pair here
//! lets the caller encrypt to the public half and place the private half on the card; this
//! crate never writes the private half anywhere.

use std::fmt;

use ssh_key::rand_core::OsRng;
use ssh_key::{Algorithm, LineEnding, PrivateKey};
use zeroize::Zeroizing;

use crate::recipient::{Recipient, RecipientError};

/// Why a host key cannot be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeygenError {
    /// The host name would not make a safe key comment.
    #[error(
        "`{host}` cannot name a host key: use letters, digits, '-', '.' and '_' only \
         (the name becomes the comment `root@{host}` in a one-line public key)"
    )]
    BadHostName {
        /// The name given (it is not secret).
        host: String,
    },
    /// `ssh-key` failed to generate or encode the key.
    #[error("cannot generate an ed25519 host key")]
    Generate {
        /// What `ssh-key` reported.
        #[source]
        source: ssh_key::Error,
    },
    /// The new public key did not parse back as an age recipient (a bug, not a user error).
    #[error("the new host key is not a usable age recipient")]
    Recipient {
        /// Why.
        #[source]
        source: RecipientError,
    },
}

/// A new ed25519 host key pair; `Debug` shows only the public half.
#[non_exhaustive]
pub struct HostKey {
    /// The private key in OpenSSH format, as `/etc/ssh/ssh_host_ed25519_key` holds it.
    pub private_openssh: Zeroizing<String>,
    /// The public key line, `ssh-ed25519 AAAA… root@HOST`, as the `.pub` file holds it.
    pub public_line: String,
    /// The public key as a recipient, to encrypt the host's secrets to.
    pub recipient: Recipient,
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostKey")
            .field("private_openssh", &"<redacted>")
            .field("public_line", &self.public_line)
            .finish_non_exhaustive()
    }
}

/// Makes an ed25519 host key pair for `host` with the operating system's random source; the
/// public key's comment is `root@HOST`, as NixOS's own host keys have.
pub fn generate_host_key(host: &str) -> Result<HostKey, KeygenError> {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if host.is_empty() || host.len() > 253 || !host.chars().all(safe) {
        return Err(KeygenError::BadHostName {
            host: host.escape_debug().to_string(),
        });
    }
    let generate_error = |source| KeygenError::Generate { source };
    let mut key = PrivateKey::random(&mut OsRng, Algorithm::Ed25519).map_err(generate_error)?;
    key.set_comment(format!("root@{host}"));
    let private_openssh = key.to_openssh(LineEnding::LF).map_err(generate_error)?;
    let public_line = key.public_key().to_openssh().map_err(generate_error)?;
    let recipient = Recipient::from_openssh(&public_line)
        .map_err(|source| KeygenError::Recipient { source })?;
    Ok(HostKey {
        private_openssh,
        public_line,
        recipient,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_that_could_break_the_line_are_refused() {
        for host in ["", "a b", "pi\nssh-ed25519 AAAA evil", "pi#1", "ünï"] {
            let err = generate_host_key(host).unwrap_err();
            assert!(
                matches!(err, KeygenError::BadHostName { .. }),
                "{host:?}: {err:?}"
            );
            assert!(!err.to_string().contains('\n'), "{err}");
        }
    }

    #[test]
    fn debug_shows_only_the_public_half() {
        let key = generate_host_key("pi-kitchen").unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.public_line), "{debug}");
        assert!(!debug.contains("PRIVATE KEY"), "{debug}");
        assert!(
            key.private_openssh
                .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n")
        );
        assert!(
            key.public_line
                .starts_with("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")
        );
        assert!(key.public_line.ends_with(" root@pi-kitchen"));
    }
}

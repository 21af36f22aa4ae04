//! Identities: the OpenSSH private keys that decrypt secrets, and where to look for them.
//!
//! The private key is read and kept by `age`; we also keep the key's public half (from the
//! same file) so that decryption can skip keys a file is not encrypted to, ask for a
//! passphrase only for a key that will be used, and name the key by fingerprint and tag when
//! none fits.

use std::fmt;
use std::fs::File;
use std::io::{self, Read as _};
use std::path::{Path, PathBuf};

use ssh_key::{Fingerprint, HashAlg, PublicKey};
use zeroize::Zeroizing;

use crate::tag::{Tag, tag_of};

/// The environment variable naming an identity file when `--identity` is not given.
pub const IDENTITY_ENV: &str = "PIFLEET_IDENTITY";

/// Why an identity cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The file cannot be read.
    #[error("cannot read the identity file {}: check the path given with --identity or {IDENTITY_ENV}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The file is not an OpenSSH or PEM private key.
    #[error(
        "{} is not an SSH private key: give the private key file (not the .pub) of an ed25519 or rsa key",
        path.display()
    )]
    NotAKey {
        /// The file.
        path: PathBuf,
    },
    /// A private key age cannot decrypt with.
    #[error("{} cannot decrypt age files: {why}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What kind of key it is and what to do instead.
        why: String,
    },
    /// None of the default key files exists.
    #[error(
        "no SSH private key found (looked for {}): pass --identity PATH or set {IDENTITY_ENV}",
        if searched.is_empty() { "a home directory, and there is none".to_owned() } else { crate::crypt::join(searched.iter().map(|p| p.display())) }
    )]
    NoneFound {
        /// The default paths that were tried.
        searched: Vec<PathBuf>,
    },
}

/// An OpenSSH private key file (ed25519 or rsa, passphrase-protected or not) to decrypt with.
#[derive(Clone)]
pub struct Identity {
    path: PathBuf,
    pub(crate) key: age::ssh::Identity,
    public: Option<PublicKey>,
}

impl Identity {
    /// Reads a private key file, such as `~/.ssh/id_ed25519`.
    ///
    /// An encrypted key is not decrypted here: [`crate::decrypt`] asks for its passphrase when
    /// a file is encrypted to it.
    pub fn from_file(path: &Path) -> Result<Self, IdentityError> {
        let read = || -> io::Result<Zeroizing<Vec<u8>>> {
            let mut file = File::open(path)?;
            let size = file.metadata()?.len();
            // Room for the whole file up front: a growing buffer would leave copies behind.
            let mut text = Zeroizing::new(Vec::with_capacity(
                usize::try_from(size).unwrap_or(0).saturating_add(1),
            ));
            file.read_to_end(&mut text)?;
            Ok(text)
        };
        let text = read().map_err(|source| IdentityError::Read {
            path: path.to_owned(),
            source,
        })?;
        Identity::from_openssh(&text, path)
    }

    /// Parses private key text already in memory; `path` names it in messages and prompts.
    pub fn from_openssh(text: &[u8], path: &Path) -> Result<Self, IdentityError> {
        let path = path.to_owned();
        let key = age::ssh::Identity::from_buffer(text, Some(path.display().to_string()))
            .map_err(|_| IdentityError::NotAKey { path: path.clone() })?;
        if let age::ssh::Identity::Unsupported(unsupported) = &key {
            return Err(IdentityError::Unsupported {
                why: unsupported_why(unsupported),
                path,
            });
        }
        // The OpenSSH format keeps the public key outside the encrypted part, so this works for
        // passphrase-protected keys too. An rsa key in the old PEM format has no public part
        // to read, and stays unnamed.
        let public = ssh_key::PrivateKey::from_openssh(text)
            .ok()
            .map(|k| k.public_key().clone());
        Ok(Identity { path, key, public })
    }

    /// The file the key came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key's public half, when the file holds it (the OpenSSH format always does, an rsa
    /// key in the old PEM format does not).
    pub fn public_key(&self) -> Option<&PublicKey> {
        self.public.as_ref()
    }

    /// The tag of the key, when its public half is known.
    pub fn tag(&self) -> Option<Tag> {
        self.public.as_ref().map(tag_of)
    }

    /// The SHA-256 fingerprint, when the public half is known.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.public.as_ref().map(|k| k.fingerprint(HashAlg::Sha256))
    }

    /// Whether the key is protected by a passphrase.
    pub fn is_encrypted(&self) -> bool {
        matches!(self.key, age::ssh::Identity::Encrypted(_))
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("path", &self.path)
            .field("fingerprint", &self.fingerprint().map(|f| f.to_string()))
            .field("encrypted", &self.is_encrypted())
            .finish_non_exhaustive()
    }
}

fn unsupported_why(key: &age::ssh::UnsupportedKey) -> String {
    use age::ssh::UnsupportedKey as U;
    match key {
        U::EncryptedPem => {
            "it is an encrypted key in the old PEM format; convert it to the OpenSSH \
                            format with `ssh-keygen -p -f PATH`"
                .to_owned()
        }
        U::EncryptedSsh(cipher) => format!(
            "it is encrypted with {cipher}, which age cannot read; set a new passphrase with \
             `ssh-keygen -p -Z aes256-ctr -f PATH`"
        ),
        U::Hardware(kind) => format!(
            "it is a security key (of type {kind}), and only ed25519 and rsa keys can decrypt age \
             files; use an ed25519 key file"
        ),
        U::Type(kind) => format!(
            "it is a key of type {kind}, and only ed25519 and rsa keys can decrypt age files; use \
             an ed25519 key file (`ssh-keygen -t ed25519`)"
        ),
    }
}

/// Where to find the key to decrypt with: an explicit path (from `--identity`), else
/// [`IDENTITY_ENV`], else `~/.ssh/id_ed25519` and `~/.ssh/id_rsa`, whichever exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentitySearch {
    /// The path given on the command line.
    pub explicit: Option<PathBuf>,
    /// The value of [`IDENTITY_ENV`].
    pub env: Option<PathBuf>,
    /// The home directory whose `.ssh/` holds the default keys.
    pub home: Option<PathBuf>,
}

impl IdentitySearch {
    /// The search for this process: `explicit`, [`IDENTITY_ENV`] (when set and not empty) and
    /// the user's home directory.
    pub fn from_env(explicit: Option<PathBuf>) -> Self {
        IdentitySearch {
            explicit,
            env: std::env::var_os(IDENTITY_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            home: etcetera::home_dir().ok(),
        }
    }

    /// The files to try, in order. An explicit path or the variable replaces the defaults.
    pub fn candidates(&self) -> Vec<PathBuf> {
        if let Some(path) = self.explicit.as_ref().or(self.env.as_ref()) {
            return vec![path.clone()];
        }
        match &self.home {
            Some(home) => ["id_ed25519", "id_rsa"]
                .iter()
                .map(|name| home.join(".ssh").join(name))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Loads the identities to decrypt with.
    ///
    /// A path given explicitly (or by the variable) must load; a default path that does not
    /// exist is skipped, and [`IdentityError::NoneFound`] says when none does.
    pub fn load(&self) -> Result<Vec<Identity>, IdentityError> {
        let candidates = self.candidates();
        if self.explicit.is_some() || self.env.is_some() {
            return candidates.iter().map(|p| Identity::from_file(p)).collect();
        }
        let mut found = Vec::new();
        for path in &candidates {
            match Identity::from_file(path) {
                Ok(identity) => found.push(identity),
                Err(IdentityError::Read { source, .. })
                    if source.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if found.is_empty() {
            return Err(IdentityError::NoneFound {
                searched: candidates,
            });
        }
        Ok(found)
    }
}

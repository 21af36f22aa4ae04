//! Recipients: the SSH public keys a secret is encrypted to.
//!
//! A line is parsed twice on purpose: `ssh-key` tells the key type (so an ecdsa or security
//! key gets an error that names it) and gives the fingerprint and tag people compare, and
//! `age` builds the recipient it encrypts to from the same key material.

use std::fmt;
use std::str::FromStr;

use age::ssh::ParseRecipientKeyError;
use ssh_key::{Fingerprint, HashAlg, PublicKey};

use crate::tag::{KeyKind, Tag, tag_of};

/// Why a public key line cannot be an age recipient.
///
/// Messages never repeat the line: a private key pasted by mistake must not end up in a log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecipientError {
    /// Not an OpenSSH public key line at all.
    #[error(
        "not an OpenSSH public key line: expected `ssh-ed25519 AAAA… comment` or `ssh-rsa AAAA… comment` \
         (the contents of a .pub file, without authorized_keys options)"
    )]
    NotAKey {
        /// What `ssh-key` found wrong.
        #[source]
        source: ssh_key::Error,
    },
    /// A valid key of a type age cannot encrypt to (ecdsa, security keys, dsa).
    #[error(
        "the key is of type {algorithm}, which cannot be an age recipient: only ssh-ed25519 and ssh-rsa \
         keys can be age recipients; give a public key file of a supported type (make one with \
         `ssh-keygen -t ed25519`)"
    )]
    UnsupportedType {
        /// The key's algorithm as OpenSSH names it, such as `ecdsa-sha2-nistp256`.
        algorithm: String,
    },
    /// An RSA key shorter than 2048 bits, which age refuses as weak.
    #[error(
        "this ssh-rsa key has fewer than 2048 bits, which age refuses: use an ed25519 key \
         (`ssh-keygen -t ed25519`) or an rsa key of at least 2048 bits"
    )]
    RsaTooSmall,
    /// An RSA key larger than age supports.
    #[error(
        "this ssh-rsa key is larger than age supports (16384 bits): use an ed25519 key (`ssh-keygen -t ed25519`)"
    )]
    RsaTooLarge,
    /// `age` did not accept a key that `ssh-key` did.
    #[error(
        "age cannot use this {algorithm} key as a recipient: use an ed25519 key (`ssh-keygen -t ed25519`)"
    )]
    Rejected {
        /// The key's algorithm.
        algorithm: String,
    },
}

/// An SSH public key a file can be encrypted to (`ssh-ed25519`, or `ssh-rsa` of 2048 bits or
/// more).
#[derive(Clone)]
pub struct Recipient {
    key: PublicKey,
    kind: KeyKind,
    age: age::ssh::Recipient,
}

impl Recipient {
    /// Parses one OpenSSH public key line, such as the contents of `id_ed25519.pub`.
    pub fn from_openssh(line: &str) -> Result<Self, RecipientError> {
        let key = PublicKey::from_openssh(line.trim())
            .map_err(|source| RecipientError::NotAKey { source })?;
        let algorithm = key.algorithm().as_str().to_owned();
        let Some(kind) = KeyKind::of(&key) else {
            return Err(RecipientError::UnsupportedType { algorithm });
        };
        // age reads `type base64`; give it the key material as ssh-key re-encodes it, so
        // stray white space or a comment cannot make the two parsers disagree.
        let bare = PublicKey::new(key.key_data().clone(), "")
            .to_openssh()
            .map_err(|source| RecipientError::NotAKey { source })?;
        let age = bare.parse::<age::ssh::Recipient>().map_err(|e| match e {
            ParseRecipientKeyError::RsaModulusTooSmall => RecipientError::RsaTooSmall,
            ParseRecipientKeyError::RsaModulusTooLarge => RecipientError::RsaTooLarge,
            ParseRecipientKeyError::Unsupported(algorithm) => {
                RecipientError::UnsupportedType { algorithm }
            }
            _ => RecipientError::Rejected {
                algorithm: algorithm.clone(),
            },
        })?;
        Ok(Recipient { key, kind, age })
    }

    /// The parsed public key, comment included.
    pub fn public_key(&self) -> &PublicKey {
        &self.key
    }

    /// `ssh-ed25519` or `ssh-rsa`.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The tag age writes into this key's stanzas (see [`tag_of`]).
    pub fn tag(&self) -> Tag {
        tag_of(&self.key)
    }

    /// The SHA-256 fingerprint, as `ssh-keygen -l` prints it (`SHA256:…`).
    pub fn fingerprint(&self) -> Fingerprint {
        self.key.fingerprint(HashAlg::Sha256)
    }

    pub(crate) fn as_age(&self) -> &dyn age::Recipient {
        &self.age
    }
}

impl FromStr for Recipient {
    type Err = RecipientError;

    fn from_str(line: &str) -> Result<Self, RecipientError> {
        Recipient::from_openssh(line)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipient")
            .field("kind", &self.kind)
            .field("fingerprint", &self.fingerprint().to_string())
            .field("tag", &self.tag())
            .field("comment", &self.key.comment())
            .finish()
    }
}

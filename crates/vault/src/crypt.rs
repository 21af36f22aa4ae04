//! Encrypting, decrypting and re-encrypting whole secrets in memory.
//!
//! Secrets are small (a Wi-Fi passphrase, a token), so everything happens on byte slices: no
//! plaintext stream ever reaches a file. Decryption first reads the header, so that keys a
//! file is not encrypted to are skipped without asking for their passphrase, and so that a
//! failure can say which keys the file wants and which keys were tried.

use std::fmt;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::SecretString;
use ssh_key::Fingerprint;
use zeroize::Zeroizing;

use crate::header::{self, FileRecipient, HeaderError};
use crate::identity::Identity;
use crate::recipient::Recipient;
use crate::tag::Tag;

/// Decrypted secret bytes: zeroed when dropped, and `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct Plaintext(Zeroizing<Vec<u8>>);

impl Plaintext {
    /// Wraps secret bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Plaintext(Zeroizing::new(bytes))
    }

    /// The secret itself. Keep what you do with it in memory.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl From<Vec<u8>> for Plaintext {
    fn from(bytes: Vec<u8>) -> Self {
        Plaintext::new(bytes)
    }
}

impl From<String> for Plaintext {
    fn from(text: String) -> Self {
        Plaintext::new(text.into_bytes())
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Plaintext(<redacted>)")
    }
}

/// Why a secret cannot be encrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncryptError {
    /// No recipient was given, so nobody could ever decrypt the file.
    #[error("no recipients: give at least one ssh-ed25519 or ssh-rsa public key to encrypt to")]
    NoRecipients,
    /// `age` failed (it does not with SSH recipients and memory buffers; kept for safety).
    #[error("age could not encrypt the secret")]
    Age {
        /// What `age` reported.
        #[source]
        source: age::EncryptError,
    },
}

/// A key that was tried and did not fit, as a decryption error names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TriedKey {
    /// The private key file.
    pub path: PathBuf,
    /// Its SHA-256 fingerprint, when the file holds the public half.
    pub fingerprint: Option<Fingerprint>,
    /// Its tag, when the file holds the public half.
    pub tag: Option<Tag>,
}

impl TriedKey {
    fn of(identity: &Identity) -> Self {
        TriedKey {
            path: identity.path().to_owned(),
            fingerprint: identity.fingerprint(),
            tag: identity.tag(),
        }
    }
}

impl fmt::Display for TriedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.fingerprint, &self.tag) {
            (Some(fingerprint), Some(tag)) => {
                write!(f, "{} ({fingerprint}, tag {tag})", self.path.display())
            }
            _ => write!(f, "{} (public key unknown)", self.path.display()),
        }
    }
}

/// Why a secret cannot be decrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The data is not a readable age file.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// No identity was given.
    #[error(
        "no SSH private key to decrypt with; the file is encrypted to {}: pass --identity PATH or set {}",
        describe_recipients(recipients),
        crate::identity::IDENTITY_ENV
    )]
    NoIdentity {
        /// The SSH keys the file is encrypted to.
        recipients: Vec<FileRecipient>,
    },
    /// None of the identities is one the file is encrypted to.
    #[error(
        "none of the keys tried can decrypt this file: it is encrypted to {}; tried {}; decrypt with \
         one of the file's keys (--identity PATH), or have someone who holds one re-encrypt the file \
         to your key",
        describe_recipients(recipients), join(tried.iter())
    )]
    NoMatchingKey {
        /// The SSH keys the file is encrypted to.
        recipients: Vec<FileRecipient>,
        /// The keys that were tried.
        tried: Vec<TriedKey>,
    },
    /// The passphrase did not decrypt the private key.
    #[error("the passphrase for {} is wrong: try again, or use another key", path.display())]
    WrongPassphrase {
        /// The private key file.
        path: PathBuf,
    },
    /// The private key is encrypted and no passphrase was given.
    #[error(
        "{} is protected by a passphrase and none was given: run in a terminal to be asked for it, \
         or use a key without a passphrase",
        path.display()
    )]
    PassphraseNeeded {
        /// The private key file.
        path: PathBuf,
    },
    /// The key fits, but the file does not decrypt: it was damaged or changed.
    #[error("the file is damaged or was changed after it was encrypted: restore it from git")]
    Damaged {
        /// What `age` found.
        #[source]
        source: age::DecryptError,
    },
}

/// Why a secret cannot be re-encrypted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RekeyError {
    /// The old file does not decrypt.
    #[error(transparent)]
    Decrypt(#[from] DecryptError),
    /// The new file cannot be made.
    #[error(transparent)]
    Encrypt(#[from] EncryptError),
}

/// Encrypts `plaintext` to every recipient; `armor` gives the PEM-like text form
/// (`-----BEGIN AGE ENCRYPTED FILE-----`), otherwise the binary one.
pub fn encrypt(
    plaintext: &[u8],
    recipients: &[Recipient],
    armor: bool,
) -> Result<Vec<u8>, EncryptError> {
    if recipients.is_empty() {
        return Err(EncryptError::NoRecipients);
    }
    let encryptor = age::Encryptor::with_recipients(recipients.iter().map(Recipient::as_age))
        .map_err(|source| EncryptError::Age { source })?;
    let age_error = |e| EncryptError::Age {
        source: age::EncryptError::Io(e),
    };
    let format = if armor {
        Format::AsciiArmor
    } else {
        Format::Binary
    };
    let mut out = Vec::with_capacity(plaintext.len() + 1024);
    let armored = ArmoredWriter::wrap_output(&mut out, format).map_err(age_error)?;
    let mut writer = encryptor.wrap_output(armored).map_err(age_error)?;
    writer.write_all(plaintext).map_err(age_error)?;
    writer
        .finish()
        .and_then(ArmoredWriter::finish)
        .map_err(age_error)?;
    Ok(out)
}

/// Decrypts an age file (binary or armored) with the first identity it is encrypted to.
///
/// Identities whose tag the header does not list are skipped. For a passphrase-protected key
/// that fits, `passphrase` is called once with the key's path; `None` means the user gave
/// none.
pub fn decrypt(
    ciphertext: &[u8],
    identities: &[Identity],
    passphrase: &dyn Fn(&Path) -> Option<SecretString>,
) -> Result<Plaintext, DecryptError> {
    let recipients = header::read(ciphertext)?.recipients;
    if identities.is_empty() {
        return Err(DecryptError::NoIdentity { recipients });
    }
    // A key whose public half is unknown (old PEM rsa) cannot be ruled out by its tag.
    let fits = |id: &&Identity| {
        id.tag()
            .is_none_or(|tag| recipients.iter().any(|r| r.tag == tag))
    };
    let candidates: Vec<&Identity> = identities.iter().filter(fits).collect();

    let unencrypted: Vec<age::ssh::Identity> = candidates
        .iter()
        .filter(|id| !id.is_encrypted())
        .map(|id| id.key.clone())
        .collect();
    if !unencrypted.is_empty()
        && let Some(plaintext) = try_keys(ciphertext, &unencrypted)?
    {
        return Ok(plaintext);
    }
    for id in candidates {
        let age::ssh::Identity::Encrypted(key) = &id.key else {
            continue;
        };
        let Some(secret) = passphrase(id.path()) else {
            return Err(DecryptError::PassphraseNeeded {
                path: id.path().to_owned(),
            });
        };
        let unlocked = key
            .decrypt(secret)
            .map_err(|_| DecryptError::WrongPassphrase {
                path: id.path().to_owned(),
            })?;
        if let Some(plaintext) = try_keys(ciphertext, &[age::ssh::Identity::Unencrypted(unlocked)])?
        {
            return Ok(plaintext);
        }
    }
    Err(DecryptError::NoMatchingKey {
        recipients,
        tried: identities.iter().map(TriedKey::of).collect(),
    })
}

/// Decrypts in memory and encrypts again to `new_recipients`, keeping the armor (or not) of
/// the input.
pub fn rekey(
    ciphertext: &[u8],
    identities: &[Identity],
    passphrase: &dyn Fn(&Path) -> Option<SecretString>,
    new_recipients: &[Recipient],
) -> Result<Vec<u8>, RekeyError> {
    // Checked first, so nobody types a passphrase for a rekey that cannot happen.
    if new_recipients.is_empty() {
        return Err(EncryptError::NoRecipients.into());
    }
    let armored = header::read(ciphertext)
        .map_err(DecryptError::from)?
        .armored;
    let plaintext = decrypt(ciphertext, identities, passphrase)?;
    Ok(encrypt(plaintext.expose(), new_recipients, armored)?)
}

/// `Ok(None)` when none of `keys` fits the file.
fn try_keys(
    ciphertext: &[u8],
    keys: &[age::ssh::Identity],
) -> Result<Option<Plaintext>, DecryptError> {
    let damaged = |source| DecryptError::Damaged { source };
    let decryptor = age::Decryptor::new(ArmoredReader::new(ciphertext)).map_err(damaged)?;
    let mut reader = match decryptor.decrypt(keys.iter().map(|k| k as &dyn age::Identity)) {
        Ok(reader) => reader,
        Err(age::DecryptError::NoMatchingKeys) => return Ok(None),
        Err(e) => return Err(damaged(e)),
    };
    // The plaintext is shorter than the ciphertext: reserving that much up front means the
    // buffer never moves, so no copy of the secret is left behind unzeroed.
    let mut plaintext = Zeroizing::new(Vec::with_capacity(ciphertext.len()));
    reader
        .read_to_end(&mut plaintext)
        .map_err(|e| damaged(age::DecryptError::Io(e)))?;
    Ok(Some(Plaintext(plaintext)))
}

fn describe_recipients(recipients: &[FileRecipient]) -> String {
    if recipients.is_empty() {
        "no SSH key (it has no ssh-ed25519 or ssh-rsa stanza)".to_owned()
    } else {
        join(recipients.iter())
    }
}

/// `a, b and c`.
pub(crate) fn join<T: fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let items: Vec<String> = items.map(|i| i.to_string()).collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_debug_is_redacted() {
        let secret = Plaintext::from("psk=hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "Plaintext(<redacted>)");
        assert_eq!(
            format!("{:#?}", Some(&secret)),
            "Some(\n    Plaintext(<redacted>),\n)"
        );
    }

    #[test]
    fn lists_read_as_prose() {
        assert_eq!(join(["a"].iter()), "a");
        assert_eq!(join(["a", "b"].iter()), "a and b");
        assert_eq!(join(["a", "b", "c"].iter()), "a, b and c");
    }
}

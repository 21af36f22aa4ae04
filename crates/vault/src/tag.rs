//! Recipient tags: the short key ids in age's `ssh-ed25519` and `ssh-rsa` stanzas.
//!
//! The age spec for SSH recipients puts the first 4 bytes of SHA-256 of the public key's wire
//! encoding into each stanza, so a decrypter can skip stanzas that are not for its key. The
//! same tag lets us say which keys a file is encrypted to without decrypting it.

use std::fmt;

use base64ct::{Base64Unpadded, Encoding as _};
use ssh_key::{HashAlg, PublicKey};

/// The SSH key types age can encrypt to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// `ssh-ed25519`.
    Ed25519,
    /// `ssh-rsa` (at least 2048 bits).
    Rsa,
}

impl KeyKind {
    /// The key type as OpenSSH and age's stanzas write it (`ssh-ed25519`, `ssh-rsa`).
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "ssh-ed25519",
            KeyKind::Rsa => "ssh-rsa",
        }
    }

    pub(crate) fn from_stanza_type(stanza_type: &str) -> Option<Self> {
        match stanza_type {
            "ssh-ed25519" => Some(KeyKind::Ed25519),
            "ssh-rsa" => Some(KeyKind::Rsa),
            _ => None,
        }
    }

    pub(crate) fn of(key: &PublicKey) -> Option<Self> {
        match key.algorithm() {
            ssh_key::Algorithm::Ed25519 => Some(KeyKind::Ed25519),
            ssh_key::Algorithm::Rsa { .. } => Some(KeyKind::Rsa),
            _ => None,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A 4-byte key tag; `Display` writes it as age does, 6 characters of unpadded base64.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tag([u8; 4]);

impl Tag {
    /// The tag's bytes.
    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    /// Reads a stanza argument: exactly 6 characters of canonical unpadded base64.
    pub(crate) fn from_stanza_arg(arg: &str) -> Option<Self> {
        let mut bytes = [0u8; 4];
        match Base64Unpadded::decode(arg, &mut bytes) {
            Ok(decoded) if decoded.len() == 4 && arg.len() == 6 => Some(Tag(bytes)),
            _ => None,
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&Base64Unpadded::encode_string(&self.0))
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

/// The tag age writes into a stanza for `key`: the first 4 bytes of SHA-256 of its wire
/// encoding.
///
/// OpenSSH's SHA-256 fingerprint hashes the same wire encoding, so the tag is the start of the
/// fingerprint's hash.
pub fn tag_of(key: &PublicKey) -> Tag {
    let fingerprint = key.fingerprint(HashAlg::Sha256);
    let mut tag = [0u8; 4];
    tag.copy_from_slice(&fingerprint.as_bytes()[..4]);
    Tag(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stanza_tags_must_be_six_canonical_characters() {
        assert_eq!(
            Tag::from_stanza_arg("jKldFA").map(|t| t.to_string()),
            Some("jKldFA".to_owned())
        );
        assert_eq!(Tag::from_stanza_arg("jKldFA=="), None);
        assert_eq!(Tag::from_stanza_arg("jKld"), None);
        assert_eq!(Tag::from_stanza_arg("jKldFAAA"), None);
        // 6 characters carry 36 bits; the last 4 must be zero in canonical base64.
        assert_eq!(Tag::from_stanza_arg("jKldFB"), None);
    }
}

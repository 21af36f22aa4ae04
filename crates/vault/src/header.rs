//! Which keys an age file is encrypted to, read from its header without decrypting.
//!
//! An age v1 header is text: the line `age-encryption.org/v1`, one stanza per recipient
//! (`-> TYPE ARGS…` and a base64 body), then `--- MAC`. SSH stanzas carry a tag of their key
//! (see [`crate::tag_of`]), so a check can compare a file's keys with the keys it should have.
//! `age-core` parses the stanzas; the version line, the end line and armor are handled here
//! because `age` keeps its header reader private.
//!
//! Only `ssh-ed25519` and `ssh-rsa` stanzas are listed. Others are skipped, as age itself skips
//! stanza types it does not know: rage adds one random "grease" stanza with a made-up type to
//! every file, and X25519, scrypt or plugin stanzas name no SSH key.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read as _};

use age::armor::ArmoredReader;

use crate::tag::{KeyKind, Tag};

const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";
const VERSION_PREFIX: &[u8] = b"age-encryption.org/";
const VERSION_V1: &[u8] = b"v1\n";
/// `--- ` and 43 characters of base64 (a 32-byte MAC), then a newline.
const MAC_LINE_LEN: usize = 4 + 43 + 1;

/// Why an age header cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderError {
    /// The data starts with neither the age version line nor the armor line.
    #[error(
        "not an age file: it starts with neither `age-encryption.org/v1` nor \
         `-----BEGIN AGE ENCRYPTED FILE-----`; files under secrets/ must hold age ciphertext, \
         so encrypt the secret again rather than committing it as it is"
    )]
    NotAge,
    /// An age file of a format version other than v1.
    #[error(
        "this age file is of a format version other than v1, which pifleet cannot read: update pifleet"
    )]
    UnknownVersion,
    /// The header breaks the age format.
    #[error("the age header is damaged ({reason}): restore the file from git")]
    Malformed {
        /// What is wrong, without quoting the file.
        reason: &'static str,
    },
    /// The file starts with the armor line, but its armor does not decode.
    #[error("the armored age file is damaged: restore the file from git")]
    Armor {
        /// What `age`'s armor reader found.
        #[source]
        source: io::Error,
    },
}

/// One SSH key an age file is encrypted to, as its header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileRecipient {
    /// The stanza type: `ssh-ed25519` or `ssh-rsa`.
    pub kind: KeyKind,
    /// The key's tag (compare with [`crate::tag_of`] or [`crate::Recipient::tag`]).
    pub tag: Tag,
}

impl fmt::Display for FileRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} key with tag {}", self.kind, self.tag)
    }
}

/// What the rest of the crate needs from a header.
#[derive(Debug)]
pub(crate) struct Header {
    pub(crate) recipients: Vec<FileRecipient>,
    pub(crate) armored: bool,
}

/// Lists the SSH keys an age file (binary or armored) is encrypted to, in header order.
///
/// Nothing is decrypted and no key is needed. Stanzas of other types are skipped (see the
/// module docs), so a file encrypted only to X25519 keys or a passphrase gives an empty list.
pub fn recipients(file: &[u8]) -> Result<Vec<FileRecipient>, HeaderError> {
    read(file).map(|header| header.recipients)
}

pub(crate) fn read(file: &[u8]) -> Result<Header, HeaderError> {
    let armored = file.starts_with(ARMOR_BEGIN);
    let binary: Cow<'_, [u8]> = if armored {
        let mut decoded = Vec::with_capacity(file.len());
        ArmoredReader::new(file)
            .read_to_end(&mut decoded)
            .map_err(|source| HeaderError::Armor { source })?;
        Cow::Owned(decoded)
    } else {
        Cow::Borrowed(file)
    };
    Ok(Header {
        recipients: parse_binary(&binary)?,
        armored,
    })
}

fn parse_binary(file: &[u8]) -> Result<Vec<FileRecipient>, HeaderError> {
    let malformed = |reason| HeaderError::Malformed { reason };
    let rest = file
        .strip_prefix(VERSION_PREFIX)
        .ok_or(HeaderError::NotAge)?;
    let mut rest = rest
        .strip_prefix(VERSION_V1)
        .ok_or(HeaderError::UnknownVersion)?;
    let mut stanzas = 0usize;
    let mut found = Vec::new();
    loop {
        if rest.starts_with(b"---") {
            if stanzas == 0 {
                return Err(malformed("it has no recipient stanza"));
            }
            let mac_line = rest
                .get(..MAC_LINE_LEN)
                .ok_or(malformed("the MAC line is cut short"))?;
            if !mac_line.starts_with(b"--- ") || mac_line[MAC_LINE_LEN - 1] != b'\n' {
                return Err(malformed(
                    "the MAC line is not `--- ` and 43 base64 characters",
                ));
            }
            return Ok(found);
        }
        // `legacy_age_stanza` is what age's own header reader accepts: it also takes bodies
        // that old rage betas wrote without a final short line.
        let (next, stanza) = age_core::format::read::legacy_age_stanza(rest)
            .map_err(|_| malformed("a recipient stanza does not parse"))?;
        stanzas += 1;
        if let Some(kind) = KeyKind::from_stanza_type(stanza.tag) {
            let expected_args = match kind {
                KeyKind::Ed25519 => 2,
                KeyKind::Rsa => 1,
            };
            let tag = stanza
                .args
                .first()
                .filter(|_| stanza.args.len() == expected_args)
                .and_then(|arg| Tag::from_stanza_arg(arg))
                .ok_or(malformed(
                    "an ssh-ed25519 or ssh-rsa stanza has the wrong arguments",
                ))?;
            found.push(FileRecipient { kind, tag });
        }
        rest = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A 32-byte body and MAC in canonical base64 (their values do not matter to the listing).
    const BODY: &str = "jMMEco1it1EFX4gjVVQbl960XNoDEKvte/DuxUDch/g";
    const MAC: &str = "--- /2uVNzCyhfgo8h1EbCVAVJwQki1KZQCItMzQTOwcyYs\n";

    fn listed(header: &str) -> Result<Vec<String>, HeaderError> {
        let mut file = header.as_bytes().to_vec();
        file.extend_from_slice(b"\x00\x01payload");
        recipients(&file).map(|list| list.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn grease_x25519_and_unknown_stanzas_are_skipped() {
        let header = format!(
            "age-encryption.org/v1\n\
             -> ssh-ed25519 jKldFA qkK8F5biWWkI3maptFOkupY+cK2+HPf4APm9/nSeQns\n{BODY}\n\
             -> X25519 qkK8F5biWWkI3maptFOkupY+cK2+HPf4APm9/nSeQns\n{BODY}\n\
             -> 5Ry-grease {{`s R\n\n\
             -> ssh-rsa iAt1oQ\n{BODY}\n\
             {MAC}"
        );
        assert_eq!(
            listed(&header).unwrap(),
            [
                "ssh-ed25519 key with tag jKldFA",
                "ssh-rsa key with tag iAt1oQ"
            ]
        );
    }

    #[test]
    fn plain_text_is_not_an_age_file() {
        let err = listed("psk=correct horse battery staple\n").unwrap_err();
        assert!(matches!(err, HeaderError::NotAge));
        assert!(err.to_string().starts_with("not an age file"), "{err}");
        assert!(!err.to_string().contains("correct horse"), "{err}");
        assert!(matches!(recipients(b""), Err(HeaderError::NotAge)));
    }

    #[test]
    fn other_versions_and_broken_headers_are_refused() {
        assert!(matches!(
            listed(&format!("age-encryption.org/v2\n{MAC}")),
            Err(HeaderError::UnknownVersion)
        ));
        let no_stanza = listed(&format!("age-encryption.org/v1\n{MAC}")).unwrap_err();
        assert_eq!(
            no_stanza.to_string(),
            "the age header is damaged (it has no recipient stanza): restore the file from git"
        );
        let short_tag = format!("age-encryption.org/v1\n-> ssh-rsa iAt1\n{BODY}\n{MAC}");
        assert!(matches!(
            listed(&short_tag),
            Err(HeaderError::Malformed { .. })
        ));
        let cut = format!("age-encryption.org/v1\n-> ssh-rsa iAt1oQ\n{BODY}\n--- /2uV");
        assert!(matches!(listed(&cut), Err(HeaderError::Malformed { .. })));
        let no_end = format!("age-encryption.org/v1\n-> ssh-rsa iAt1oQ\n{BODY}\n");
        assert!(matches!(
            listed(&no_end),
            Err(HeaderError::Malformed { .. })
        ));
    }

    #[test]
    fn broken_armor_is_reported_as_armor() {
        let err = recipients(b"-----BEGIN AGE ENCRYPTED FILE-----\n!!!!\n").unwrap_err();
        assert!(matches!(err, HeaderError::Armor { .. }), "{err:?}");
    }
}

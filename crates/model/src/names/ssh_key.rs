//! OpenSSH public keys, parsed by the `ssh-key` crate and kept as written.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::{NameError, StringKind, err};
use crate::ProblemCode;

/// An OpenSSH public key line (`ssh-ed25519 AAAA… eduardo@hhlab`), parsed by the `ssh-key` crate.
///
/// The original text is kept verbatim so the generated `authorized_keys` entry is exactly what the user wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SshPublicKey {
    text: String,
    key: ssh_key::PublicKey,
}

impl SshPublicKey {
    /// The key as written, trimmed of surrounding white space.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The comment after the key material (often `user@machine`), empty when there is none.
    pub fn comment(&self) -> &str {
        self.key.comment()
    }

    /// The algorithm name, such as `ssh-ed25519`.
    pub fn algorithm(&self) -> String {
        self.key.algorithm().as_str().to_owned()
    }

    /// The parsed key.
    pub fn key(&self) -> &ssh_key::PublicKey {
        &self.key
    }

    /// The SHA-256 fingerprint as OpenSSH prints it (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        self.key.fingerprint(ssh_key::HashAlg::Sha256).to_string()
    }

    /// Whether two entries hold the same key material, whatever their comments.
    pub fn same_key(&self, other: &SshPublicKey) -> bool {
        self.key.key_data() == other.key.key_data()
    }
}

impl PartialEq for SshPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for SshPublicKey {}

impl fmt::Display for SshPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for SshPublicKey {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        let code = ProblemCode::InvalidSshKey;
        let text = s.trim();
        let fix = "paste one line of a `.pub` file, e.g. the output of `cat ~/.ssh/id_ed25519.pub`";
        if text.contains("PRIVATE KEY") {
            return Err(err(
                code,
                "this is a PRIVATE key: remove it from the inventory now, treat it as leaked, and paste the matching `.pub` line instead",
            ));
        }
        if text.is_empty() {
            return Err(err(code, format!("the SSH key is empty: {fix}")));
        }
        if text.contains('\n') {
            return Err(err(code, format!("an SSH key must be one line: {fix}")));
        }
        match ssh_key::PublicKey::from_openssh(text) {
            Ok(key) => Ok(Self {
                text: text.to_owned(),
                key,
            }),
            Err(e) => {
                let shown: String = text.chars().take(40).collect();
                let ellipsis = if text.chars().count() > 40 { "…" } else { "" };
                Err(err(
                    code,
                    format!("`{shown}{ellipsis}` is not a valid OpenSSH public key ({e}): {fix}"),
                ))
            }
        }
    }
}

parsed_string_schema!(
    SshPublicKey,
    ProblemCode::InvalidSshKey,
    "pifleet-ssh-public-key",
    "OpenSSH public key, one line as in a .pub file: \"ssh-ed25519 AAAA… user@machine\"."
);

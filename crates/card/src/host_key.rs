//! Writing a host's SSH host key onto its card before the first boot: `/etc/ssh/ssh_host_ed25519_key`
//! (owner 0:0, mode 600) and `/etc/ssh/ssh_host_ed25519_key.pub` (0:0, 644), creating `/etc/ssh`
//! (0:0, 755), and `/etc` when the card never booted. NixOS's sshd only generates the host keys
//! that are missing, so the host boots with the identity the repository knows and the first
//! `ssh` needs no trust-on-first-use.
//!
//! The steps are those of adding keys ([`crate::plan`], [`crate::apply`]): [`plan_host_key`] only reads (is it a NixOS root,
//! which key is there now) and refuses to replace another host key unless asked;
//! [`apply_host_key`] writes, then reads owner, mode and content back; [`write_host_key`] does
//! both. [`HostKeyPlan::describe`] says what will change, or what changed.
//!
//! The private key never passes through a file on the workstation's disk: debugfs
//! ([`crate::Debugfs`]) reads it from an in-memory file (a memfd) given as its standard input;
//! [`crate::Mounted`] writes it straight onto the card, mode 600 from creation, and syncs it.
//! The key text is held in [`Zeroizing`] strings (re-exported as `card::Zeroizing`), wiped when
//! dropped, and never shown by `Debug` or in errors. Memory itself can still be swapped out: on a
//! workstation with unencrypted swap, no user-space program can promise more.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let private = card::Zeroizing::new(std::fs::read_to_string("hosts/rpi-box-01/ssh_host_ed25519_key")?);
//! let key = card::HostKey::from_private(private)?;
//! let root = card::locate(&flash::SystemView::live(), "/dev/sdb".as_ref())?;
//! let mut editor = card::open(&root)?;
//! let plan = card::plan_host_key(editor.as_mut(), &root.shown, &key, false)?;
//! for line in plan.describe(false) {
//!     println!("{line}");
//! }
//! card::apply_host_key(editor.as_mut(), &root.shown, &key, &plan)?;
//! # Ok(())
//! # }
//! ```

use std::fmt;

use ssh_key::public::KeyData;
use ssh_key::{Algorithm, HashAlg, PrivateKey, PublicKey};
use zeroize::Zeroizing;

use crate::edit::{Attrs, EditError, Editor, Kind};
use crate::inject::{kind_name, not_nixos};

/// The directory of the host keys.
pub const HOST_KEY_DIR: &str = "/etc/ssh";
/// The private host key's file name in [`HOST_KEY_DIR`].
pub const HOST_KEY_NAME: &str = "ssh_host_ed25519_key";
/// The public host key's file name in [`HOST_KEY_DIR`].
pub const HOST_PUB_NAME: &str = "ssh_host_ed25519_key.pub";

const ROOT_DIR: Attrs = Attrs {
    uid: 0,
    gid: 0,
    mode: 0o755,
};
const PRIVATE_ATTRS: Attrs = Attrs {
    uid: 0,
    gid: 0,
    mode: 0o600,
};
const PUBLIC_ATTRS: Attrs = Attrs {
    uid: 0,
    gid: 0,
    mode: 0o644,
};

/// An unencrypted ed25519 host key pair in OpenSSH's formats, checked to belong together.
///
/// `Debug` shows the public half only.
#[derive(Clone)]
pub struct HostKey {
    /// The private key file's text, ending in a newline.
    private: Zeroizing<String>,
    /// The public key line, without a newline.
    public: String,
    data: KeyData,
}

impl fmt::Debug for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostKey")
            .field("public", &self.public)
            .field("private", &"<redacted>")
            .finish()
    }
}

/// Why a host key can't be used, or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostKeyError {
    /// Reading or writing the file system failed.
    #[error(transparent)]
    Edit(#[from] EditError),
    /// The private key text is not an OpenSSH private key.
    #[error(
        "the host key is not an OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`): {0}"
    )]
    NotOpenSsh(String),
    /// The public key line is not an OpenSSH public key.
    #[error("the public host key is not an OpenSSH public key line: {0}")]
    BadPublic(String),
    /// Not an ed25519 key.
    #[error(
        "the host key is an {0} key; only ssh-ed25519 host keys are written (/etc/ssh/ssh_host_ed25519_key)"
    )]
    NotEd25519(String),
    /// Protected by a passphrase: sshd could not read it at boot.
    #[error(
        "the host key is encrypted with a passphrase, which sshd cannot read at boot; host keys are stored without one"
    )]
    Encrypted,
    /// The public key given is not the private key's.
    #[error("the public key {public} does not belong to the private host key {private}")]
    Mismatch {
        /// The public key's fingerprint.
        public: String,
        /// The private key's fingerprint.
        private: String,
    },
    /// The file system is not a NixOS root.
    #[error("{shown} does not look like a NixOS root file system: {why}")]
    NotNixos {
        /// The file system.
        shown: String,
        /// What is missing.
        why: String,
    },
    /// A path that must be a directory (or a regular file) is something else.
    #[error("{path} on {shown} is a {found}, not a {expected}; refusing to touch it")]
    WrongKind {
        /// The file system.
        shown: String,
        /// The path.
        path: String,
        /// What it is.
        found: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// The card has another host key, and replacing it was not asked for.
    #[error(
        "{shown} already has another SSH host key: {path} holds {existing}, not {new}; it is replaced only when asked to"
    )]
    OtherKey {
        /// The file system.
        shown: String,
        /// The file holding it.
        path: String,
        /// The key there: its fingerprint, or why it has none.
        existing: String,
        /// The key that would be written.
        new: String,
    },
    /// [`apply_host_key`] was given another key than the plan was made for.
    #[error("the plan was made for the host key {planned}, not {given}")]
    PlanMismatch {
        /// The plan's key.
        planned: String,
        /// The key given.
        given: String,
    },
    /// The file read back differs from what was written.
    #[error("{path} on {shown} does not read back as written ({what})")]
    Verify {
        /// The file system.
        shown: String,
        /// The path.
        path: String,
        /// What differs.
        what: String,
    },
}

/// The fingerprint as `ssh-keygen -l` shows it (`SHA256:…`).
fn fingerprint(data: &KeyData) -> String {
    data.fingerprint(HashAlg::Sha256).to_string()
}

/// Parses an OpenSSH private key, with the key text kept out of every message.
fn parse_private(text: &[u8]) -> Result<PrivateKey, HostKeyError> {
    PrivateKey::from_openssh(text).map_err(|e| HostKeyError::NotOpenSsh(e.to_string()))
}

/// The first key line of a `.pub` file.
fn parse_public(text: &str) -> Result<PublicKey, HostKeyError> {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .unwrap_or("");
    PublicKey::from_openssh(line).map_err(|e| HostKeyError::BadPublic(e.to_string()))
}

impl HostKey {
    /// A host key from its private key file (`ssh-keygen -t ed25519 -N ''`); the public key line
    /// is derived from it, with the comment stored in it (`root@host`).
    pub fn from_private(private: Zeroizing<String>) -> Result<Self, HostKeyError> {
        let key = Self::check_private(&private)?;
        let public = key
            .public_key()
            .to_openssh()
            .map_err(|e| HostKeyError::NotOpenSsh(e.to_string()))?;
        Ok(Self::new_unchecked(private, public, key.public_key()))
    }

    /// A host key from its private key file and its public key line (the `.pub` file as the
    /// repository keeps it), which must be the same key.
    pub fn with_public(private: Zeroizing<String>, public: &str) -> Result<Self, HostKeyError> {
        let key = Self::check_private(&private)?;
        let given = parse_public(public)?;
        if given.key_data() != key.public_key().key_data() {
            return Err(HostKeyError::Mismatch {
                public: fingerprint(given.key_data()),
                private: fingerprint(key.public_key().key_data()),
            });
        }
        let line = given
            .to_openssh()
            .map_err(|e| HostKeyError::BadPublic(e.to_string()))?;
        Ok(Self::new_unchecked(private, line, &given))
    }

    fn check_private(private: &str) -> Result<PrivateKey, HostKeyError> {
        let key = parse_private(private.as_bytes())?;
        if key.is_encrypted() {
            return Err(HostKeyError::Encrypted);
        }
        if key.algorithm() != Algorithm::Ed25519 {
            return Err(HostKeyError::NotEd25519(key.algorithm().to_string()));
        }
        Ok(key)
    }

    fn new_unchecked(mut private: Zeroizing<String>, public: String, key: &PublicKey) -> Self {
        if !private.ends_with('\n') {
            private.push('\n');
        }
        Self {
            private,
            public,
            data: key.key_data().clone(),
        }
    }

    /// The public key line (`ssh-ed25519 AAAA… comment`), as written to the `.pub` file and as
    /// `known_hosts` wants it after the host name.
    pub fn public(&self) -> &str {
        &self.public
    }

    /// The fingerprint, as `ssh-keygen -l` and ssh's first-connection prompt show it (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.data)
    }

    fn public_file(&self) -> String {
        format!("{}\n", self.public)
    }
}

/// What one of the two key files on the card holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Found {
    /// It does not exist.
    Missing,
    /// Exactly the text that would be written.
    Identical(Attrs),
    /// The same key in other text (another comment, other line endings): rewritten.
    SameKey(Attrs),
    /// Another key, or text that is not a key.
    Other {
        /// Its owner and mode.
        attrs: Attrs,
        /// Its fingerprint, when it can be read.
        fingerprint: Option<String>,
    },
}

/// What [`apply_host_key`] will do, as found by [`plan_host_key`]. It holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKeyPlan {
    /// The fingerprint of the key to write.
    pub fingerprint: String,
    /// `/etc` must be created (a card that never booted may have none).
    pub create_etc: bool,
    /// `/etc/ssh`'s owner and mode now (kept as they are); `None` when it must be created.
    pub ssh_dir_now: Option<Attrs>,
    /// What `/etc/ssh/ssh_host_ed25519_key` holds now.
    pub private_now: Found,
    /// What `/etc/ssh/ssh_host_ed25519_key.pub` holds now.
    pub public_now: Found,
}

impl HostKeyPlan {
    /// `/etc/ssh/ssh_host_ed25519_key`.
    pub fn private_path(&self) -> String {
        format!("{HOST_KEY_DIR}/{HOST_KEY_NAME}")
    }

    /// `/etc/ssh/ssh_host_ed25519_key.pub`.
    pub fn public_path(&self) -> String {
        format!("{HOST_KEY_DIR}/{HOST_PUB_NAME}")
    }

    /// Whether [`apply_host_key`] would change anything.
    pub fn changes_anything(&self) -> bool {
        self.create_etc
            || self.ssh_dir_now.is_none()
            || self.private_now != Found::Identical(PRIVATE_ATTRS)
            || self.public_now != Found::Identical(PUBLIC_ATTRS)
    }

    /// The fingerprint of another host key that will be replaced (or `something that is not an
    /// OpenSSH key`), or `None`.
    pub fn replaces(&self) -> Option<String> {
        conflict(&self.private_now, &self.public_now)
    }

    /// One line per change (or per thing already right), in the past tense once `done`.
    pub fn describe(&self, done: bool) -> Vec<String> {
        let verb = |future: &str, past: &str| if done { past } else { future }.to_owned();
        let mut out = vec![format!("host key {} (ED25519)", self.fingerprint)];
        if self.create_etc {
            out.push(format!("{} /etc ({ROOT_DIR})", verb("create", "created")));
        }
        match self.ssh_dir_now {
            None => out.push(format!(
                "{} {HOST_KEY_DIR} ({ROOT_DIR})",
                verb("create", "created")
            )),
            Some(now) => out.push(format!("kept {HOST_KEY_DIR} ({now})")),
        }
        for (path, found, attrs) in [
            (self.private_path(), &self.private_now, PRIVATE_ATTRS),
            (self.public_path(), &self.public_now, PUBLIC_ATTRS),
        ] {
            out.push(match found {
                Found::Missing => format!("{} {path} ({attrs})", verb("write", "wrote")),
                Found::Identical(now) if *now == attrs => format!("kept {path} ({attrs})"),
                Found::Identical(now) => {
                    format!("{} {path} ({attrs}, was {now})", verb("fix", "fixed"))
                }
                Found::SameKey(_) => format!(
                    "{} {path} ({attrs}; same key, other text)",
                    verb("rewrite", "rewrote")
                ),
                Found::Other { fingerprint, .. } => format!(
                    "{} {path} ({attrs}; was {})",
                    verb("replace", "replaced"),
                    fingerprint.as_deref().unwrap_or(NOT_A_KEY)
                ),
            });
        }
        out
    }
}

/// What a key file holding no readable key is called.
const NOT_A_KEY: &str = "something that is not an OpenSSH key";

/// The other key on the card, when there is one: the private key file decides; a `.pub` alone
/// counts too (conservatively) when there is no private key.
fn conflict(private: &Found, public: &Found) -> Option<String> {
    let other = |found: &Found| match found {
        Found::Other { fingerprint, .. } => {
            Some(fingerprint.clone().unwrap_or_else(|| NOT_A_KEY.to_owned()))
        }
        _ => None,
    };
    match private {
        Found::Missing => other(public),
        _ => other(private),
    }
}

/// Reads the file system and works out what writing `key` takes. Another host key on the card is
/// an [`HostKeyError::OtherKey`] unless `replace`.
pub fn plan_host_key(
    editor: &mut dyn Editor,
    shown: &str,
    key: &HostKey,
    replace: bool,
) -> Result<HostKeyPlan, HostKeyError> {
    if let Some(why) = not_nixos(editor)? {
        return Err(HostKeyError::NotNixos {
            shown: shown.to_owned(),
            why: why.to_owned(),
        });
    }
    let expect =
        |editor: &mut dyn Editor, path: &str, kind: Kind| -> Result<Option<Attrs>, HostKeyError> {
            match editor.stat(path)? {
                None => Ok(None),
                Some(s) if s.kind == kind => Ok(Some(s.attrs)),
                Some(s) => Err(HostKeyError::WrongKind {
                    shown: shown.to_owned(),
                    path: path.to_owned(),
                    found: kind_name(s.kind),
                    expected: kind_name(kind),
                }),
            }
        };
    let etc = expect(editor, "/etc", Kind::Dir)?;
    let ssh_dir_now = match etc {
        Some(_) => expect(editor, HOST_KEY_DIR, Kind::Dir)?,
        None => None,
    };
    let mut plan = HostKeyPlan {
        fingerprint: key.fingerprint(),
        create_etc: etc.is_none(),
        ssh_dir_now,
        private_now: Found::Missing,
        public_now: Found::Missing,
    };
    if ssh_dir_now.is_some() {
        let private_path = plan.private_path();
        if let Some(attrs) = expect(editor, &private_path, Kind::File)? {
            let now = Zeroizing::new(editor.read(&private_path)?);
            plan.private_now = if now.as_slice() == key.private.as_bytes() {
                Found::Identical(attrs)
            } else {
                match parse_private(&now) {
                    Ok(k) if k.public_key().key_data() == &key.data => Found::SameKey(attrs),
                    Ok(k) => Found::Other {
                        attrs,
                        fingerprint: Some(fingerprint(k.public_key().key_data())),
                    },
                    Err(_) => Found::Other {
                        attrs,
                        fingerprint: None,
                    },
                }
            };
        }
        let public_path = plan.public_path();
        if let Some(attrs) = expect(editor, &public_path, Kind::File)? {
            let now = editor.read(&public_path)?;
            plan.public_now = if now == key.public_file().as_bytes() {
                Found::Identical(attrs)
            } else {
                match parse_public(&String::from_utf8_lossy(&now)) {
                    Ok(k) if k.key_data() == &key.data => Found::SameKey(attrs),
                    Ok(k) => Found::Other {
                        attrs,
                        fingerprint: Some(fingerprint(k.key_data())),
                    },
                    Err(_) => Found::Other {
                        attrs,
                        fingerprint: None,
                    },
                }
            };
        }
    }
    if !replace && let Some(existing) = plan.replaces() {
        let path = if plan.private_now == Found::Missing {
            plan.public_path()
        } else {
            plan.private_path()
        };
        return Err(HostKeyError::OtherKey {
            shown: shown.to_owned(),
            path,
            existing,
            new: plan.fingerprint.clone(),
        });
    }
    Ok(plan)
}

/// Carries out `plan` for `key` (the private key first, so an interruption leaves the card's
/// identity decided by it), then reads the directory and both files back and checks owner, mode and
/// content.
pub fn apply_host_key(
    editor: &mut dyn Editor,
    shown: &str,
    key: &HostKey,
    plan: &HostKeyPlan,
) -> Result<(), HostKeyError> {
    if plan.fingerprint != key.fingerprint() {
        return Err(HostKeyError::PlanMismatch {
            planned: plan.fingerprint.clone(),
            given: key.fingerprint(),
        });
    }
    if plan.create_etc {
        editor.mkdir("/etc", ROOT_DIR)?;
    }
    if plan.ssh_dir_now.is_none() {
        editor.mkdir(HOST_KEY_DIR, ROOT_DIR)?;
    }
    let public = key.public_file();
    for (name, found, content, attrs) in [
        (
            HOST_KEY_NAME,
            &plan.private_now,
            key.private.as_bytes(),
            PRIVATE_ATTRS,
        ),
        (
            HOST_PUB_NAME,
            &plan.public_now,
            public.as_bytes(),
            PUBLIC_ATTRS,
        ),
    ] {
        match found {
            Found::Identical(now) if *now == attrs => {}
            Found::Identical(_) => editor.set_attrs(&format!("{HOST_KEY_DIR}/{name}"), attrs)?,
            Found::Missing | Found::SameKey(_) | Found::Other { .. } => {
                editor.replace(HOST_KEY_DIR, name, content, attrs)?;
            }
        }
    }

    let verify = |what: String, path: &str| HostKeyError::Verify {
        shown: shown.to_owned(),
        path: path.to_owned(),
        what,
    };
    let dir_attrs = plan.ssh_dir_now.unwrap_or(ROOT_DIR);
    for (path, kind, attrs) in [
        (HOST_KEY_DIR.to_owned(), Kind::Dir, dir_attrs),
        (plan.private_path(), Kind::File, PRIVATE_ATTRS),
        (plan.public_path(), Kind::File, PUBLIC_ATTRS),
    ] {
        match editor.stat(&path)? {
            Some(s) if s.kind == kind && s.attrs == attrs => {}
            Some(s) => {
                return Err(verify(
                    format!("{} with {}", kind_name(s.kind), s.attrs),
                    &path,
                ));
            }
            None => return Err(verify("missing".to_owned(), &path)),
        }
    }
    let private_path = plan.private_path();
    if Zeroizing::new(editor.read(&private_path)?).as_slice() != key.private.as_bytes() {
        return Err(verify("different content".to_owned(), &private_path));
    }
    let public_path = plan.public_path();
    if editor.read(&public_path)? != public.as_bytes() {
        return Err(verify("different content".to_owned(), &public_path));
    }
    Ok(())
}

/// [`plan_host_key`], then [`apply_host_key`] when anything changes; returns the plan (see
/// [`HostKeyPlan::describe`] with `done`).
pub fn write_host_key(
    editor: &mut dyn Editor,
    shown: &str,
    key: &HostKey,
    replace: bool,
) -> Result<HostKeyPlan, HostKeyError> {
    let plan = plan_host_key(editor, shown, key, replace)?;
    if plan.changes_anything() {
        apply_host_key(editor, shown, key, &plan)?;
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `ssh-keygen -t ed25519 -N '' -C root@rpi-box-01` for these tests only.
    const PRIVATE: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACAsehBLEk67g1bqPdmaDss57ewe63fFhBS3qT+AKueYUgAAAJiRBSuskQUr
rAAAAAtzc2gtZWQyNTUxOQAAACAsehBLEk67g1bqPdmaDss57ewe63fFhBS3qT+AKueYUg
AAAEAErUYuxA3VRb1F1PZNuKxjxgX2MBsf2L7iFYQ3FIsnOSx6EEsSTruDVuo92ZoOyznt
7B7rd8WEFLepP4Aq55hSAAAAD3Jvb3RAcnBpLWJveC0wMQECAwQFBg==
-----END OPENSSH PRIVATE KEY-----
";
    const PUBLIC: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICx6EEsSTruDVuo92ZoOyznt7B7rd8WEFLepP4Aq55hS root@rpi-box-01";
    const FP: &str = "SHA256:rSaXJGpvhUD2EMyLtWL4Mjz2M0d2HLdATDP9/PLnCRU";
    const OTHER_PUBLIC: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH25glspzPgaM2jwnvUt0xmAxeQtua9Bxv/JLrdfQKa6 root@old";
    // `ssh-keygen -t ed25519 -N pw`: encrypted.
    const ENCRYPTED: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABCdogGeax
ZNv6haPTOrx5AfAAAAEAAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIJu2M4etSy9M4y4z
NT0tk4aThAUiCvsYlRbVd5uv6n3vAAAAkPtRspcfFm2oAGIT/3u4CjkAE2V5ZmDuEVk/Vy
IpbvPWt8qJthAcS9Rmb0dWwIPtW6slV6Muix0h3lQbf9fy4M867IvH/ukulEU5DkFnfe26
q0ybkQq4uLyHUKShVTiulhTtE/BgE9y+i0GDJF6cRWe7PTsY1Otp70adEhYyFVVkvBMbhS
bNmsfqi5n0TrMrTg==
-----END OPENSSH PRIVATE KEY-----
";
    // `ssh-keygen -t ecdsa -b 256 -N ''`.
    const ECDSA: &str = "-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAaAAAABNlY2RzYS
1zaGEyLW5pc3RwMjU2AAAACG5pc3RwMjU2AAAAQQQFkay8g1KIB3ehbT8AnyDqyQVTpR9+
OLa+Tzmo2PQS9jbJRqv9/t4nP9FZThsM7FjT8Ps7IbUM17um3+MWlkcsAAAAoLgDHNu4Ax
zbAAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBAWRrLyDUogHd6Ft
PwCfIOrJBVOlH344tr5POajY9BL2NslGq/3+3ic/0VlOGwzsWNPw+zshtQzXu6bf4xaWRy
wAAAAgSk9Wa760KTPHEWXXn7I4c0066uOPG/OHQgFsEPWRD+sAAAAFZWNkc2EBAgM=
-----END OPENSSH PRIVATE KEY-----
";
    /// A line of the private half.
    const SECRET: &str = "AAAEAErUYuxA3VRb1F1PZNuKxjxgX2MBsf2L7iFYQ3FIsnOSx6EEsSTruDVuo92ZoOyznt";

    fn private(text: &str) -> Zeroizing<String> {
        Zeroizing::new(text.to_owned())
    }

    #[test]
    fn the_public_line_comes_from_the_private_key() {
        let key = HostKey::from_private(private(PRIVATE)).expect("key");
        assert_eq!(key.public(), PUBLIC);
        assert_eq!(key.fingerprint(), FP);
        assert_eq!(key.public_file(), format!("{PUBLIC}\n"));
        // Without its final newline the file gets one.
        let trimmed = HostKey::from_private(private(PRIVATE.trim_end())).expect("key");
        assert_eq!(trimmed.private.as_str(), PRIVATE);
    }

    #[test]
    fn a_given_public_line_must_match() {
        let other_comment = PUBLIC.replace("root@rpi-box-01", "root@elsewhere");
        let key = HostKey::with_public(private(PRIVATE), &format!("{other_comment}\n"))
            .expect("same key, own comment");
        assert_eq!(key.public(), other_comment);
        let err = HostKey::with_public(private(PRIVATE), OTHER_PUBLIC).expect_err("mismatch");
        assert_eq!(
            err.to_string(),
            format!(
                "the public key SHA256:PW4kn9UpHvRwYaxRX+oGdJ74h28TR7lyMVx7V8Wb0o8 does not belong to the private host key {FP}"
            )
        );
        assert!(matches!(
            HostKey::with_public(private(PRIVATE), "ssh-ed25519 nonsense"),
            Err(HostKeyError::BadPublic(_))
        ));
    }

    #[test]
    fn encrypted_other_algorithms_and_garbage_are_refused() {
        assert!(matches!(
            HostKey::from_private(private(ENCRYPTED)),
            Err(HostKeyError::Encrypted)
        ));
        let err = HostKey::from_private(private(ECDSA)).expect_err("ecdsa");
        assert_eq!(
            err.to_string(),
            "the host key is an ecdsa-sha2-nistp256 key; only ssh-ed25519 host keys are written (/etc/ssh/ssh_host_ed25519_key)"
        );
        for bad in [PUBLIC, "", "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n"] {
            let err = HostKey::from_private(private(bad)).expect_err("garbage");
            assert!(matches!(err, HostKeyError::NotOpenSsh(_)), "{err:?}");
        }
        // A damaged key: its text is not repeated in the message.
        let damaged = PRIVATE.replace("b3BlbnNzaC1rZXktdjEA", "b3BlbnNzaC1rZXktdjIA");
        let err = HostKey::from_private(private(&damaged)).expect_err("damaged");
        assert!(matches!(err, HostKeyError::NotOpenSsh(_)), "{err:?}");
        assert!(!format!("{err} {err:?}").contains(SECRET), "{err}");
    }

    #[test]
    fn debug_shows_no_private_key() {
        let key = HostKey::from_private(private(PRIVATE)).expect("key");
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains(SECRET), "{shown}");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(shown.contains(PUBLIC), "{shown}");
    }

    #[test]
    fn the_private_key_file_decides_which_key_the_card_has() {
        let a = PRIVATE_ATTRS;
        let other = |fp: Option<&str>| Found::Other {
            attrs: a,
            fingerprint: fp.map(str::to_owned),
        };
        assert_eq!(conflict(&Found::Missing, &Found::Missing), None);
        assert_eq!(conflict(&Found::Identical(a), &other(Some("B"))), None);
        assert_eq!(conflict(&Found::SameKey(a), &other(Some("B"))), None);
        assert_eq!(
            conflict(&other(Some("B")), &Found::Missing).as_deref(),
            Some("B")
        );
        assert_eq!(
            conflict(&other(None), &Found::Identical(a)).as_deref(),
            Some("something that is not an OpenSSH key")
        );
        assert_eq!(
            conflict(&Found::Missing, &other(Some("C"))).as_deref(),
            Some("C")
        );
    }
}

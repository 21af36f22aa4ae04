//! The fleet's secrets on the workstation: which file under `secrets/` is encrypted to whom, and
//! the operations that keep it so.
//!
//! Why a crate of its own: `vault` knows age and SSH keys but not fleets; the model knows who
//! reads which secret ([`model::Keyring`]) but touches no files. This crate joins the two for
//! everything that reads or writes `secrets/`: `check` asks it for each file's [`Status`], and the
//! `secrets`, `hostkey`, `image`, `flash` and `adopt` commands seal, open and rekey through it. So
//! "is this file current?" has one answer, and every write goes through the same atomic,
//! ciphertext-only path.
//!
//! Nothing here prints, and no error carries a secret value.

pub mod payload;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use model::{Fleet, Holder, HostName, Keyring, SECRETS_DIR, Sealed, SecretName, UserName};
use vault::{FileRecipient, Identity, IdentityError, Plaintext, SecretString, Tag};

pub use payload::{PayloadError, Use};
pub use zeroize::Zeroizing;

/// Secret bytes on their way in (a typed or piped value): zeroed when dropped.
pub type Zeroed = Zeroizing<Vec<u8>>;

/// Overwrites `bytes` with zeros (for buffers that held a secret and are about to be dropped).
pub fn wipe(bytes: &mut Vec<u8>) {
    use zeroize::Zeroize as _;
    bytes.zeroize();
}

/// A file under `secrets/`, by name, owning its parts (as read from the directory).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    /// `secrets/<name>.age`.
    Secret(SecretName),
    /// `secrets/host-keys/<host>.age`.
    HostKey(HostName),
}

impl Item {
    /// The borrowed form the keyring takes.
    pub fn sealed(&self) -> Sealed<'_> {
        match self {
            Item::Secret(name) => Sealed::Secret(name),
            Item::HostKey(host) => Sealed::HostKey(host),
        }
    }

    /// The file, relative to the repository root.
    pub fn file(&self) -> String {
        self.sealed().file()
    }
}

impl std::fmt::Display for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.sealed().fmt(f)
    }
}

/// Someone a file should be encrypted to, owned (see [`model::Holder`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// A user in `[fleet] admins`.
    Admin(UserName),
    /// A host that reads the secret.
    Host(HostName),
}

impl From<Holder<'_>> for Owner {
    fn from(holder: Holder<'_>) -> Self {
        match holder {
            Holder::Admin(user) => Owner::Admin(user.clone()),
            Holder::Host(host) => Owner::Host(host.clone()),
        }
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Owner::Admin(user) => Holder::Admin(user).fmt(f),
            Owner::Host(host) => Holder::Host(host).fmt(f),
        }
    }
}

/// How a file compares with who should read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// There is no file.
    Missing,
    /// The file cannot be read.
    Unreadable(String),
    /// The file is not age ciphertext (the reason, never its content).
    NotAge(String),
    /// Encrypted to exactly the keys it should be.
    Current,
    /// Encrypted to the wrong set of keys.
    Stale {
        /// Holders whose key the file lacks.
        missing: Vec<Owner>,
        /// Keys the file has that nobody should hold any more, described as well as the fleet allows.
        extra: Vec<String>,
    },
}

impl Status {
    /// Whether the file is there and encrypted to exactly the right keys.
    pub fn is_current(&self) -> bool {
        matches!(self, Status::Current)
    }
}

/// One file of the survey.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The file, relative to the repository root.
    pub file: String,
    /// What it holds, when its name follows the layout (`NAME.age`, `host-keys/HOST.age`).
    pub item: Option<Item>,
    /// The hosts that read it.
    pub readers: Vec<HostName>,
    /// How it compares.
    pub status: Status,
}

/// Why an operation on a secret failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeeperError {
    /// Nobody to encrypt to.
    #[error(
        "{item} would be encrypted to nobody: `[fleet] admins` names no user with an ssh-ed25519 or ssh-rsa key{}",
        if *readers { ", and no host that reads it has a recorded `host_key`" } else { "" }
    )]
    NoRecipients {
        /// The file.
        item: Item,
        /// Whether hosts read it.
        readers: bool,
    },
    /// The value does not fit how hosts use the secret.
    #[error("{item}")]
    Payload {
        /// The file.
        item: Item,
        /// Why.
        #[source]
        source: PayloadError,
    },
    /// A key in the inventory cannot be an age recipient (check reports it too).
    #[error("{holder}'s key cannot be an age recipient")]
    Recipient {
        /// Whose key.
        holder: String,
        /// Why.
        #[source]
        source: vault::RecipientError,
    },
    /// The file does not exist.
    #[error("{file} does not exist: write it with `pifleet secrets set {name}`")]
    Missing {
        /// The file.
        file: String,
        /// What to name in the command.
        name: String,
    },
    /// Reading the file failed.
    #[error("cannot read {file}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Creating the directory failed.
    #[error("cannot create {dir}")]
    CreateDir {
        /// The directory.
        dir: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Decrypting failed.
    #[error("cannot decrypt {file}{}", holders_note(holders))]
    Decrypt {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: Box<vault::DecryptError>,
        /// Who holds the file's keys, as far as the fleet knows.
        holders: Vec<String>,
    },
    /// No identity could be loaded, so nothing could be decrypted.
    #[error(
        "cannot decrypt {file}: {why}; the file is encrypted to {}",
        describe_list(holders)
    )]
    NoIdentity {
        /// The file.
        file: String,
        /// Why no key was found (the identity search's error).
        why: String,
        /// Who holds the file's keys.
        holders: Vec<String>,
    },
    /// Encrypting failed.
    #[error("cannot encrypt {file}")]
    Encrypt {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: Box<vault::EncryptError>,
    },
    /// Writing failed (the old file, if any, is untouched).
    #[error(transparent)]
    Write(#[from] Box<vault::WriteError>),
}

fn holders_note(holders: &[String]) -> String {
    if holders.is_empty() {
        String::new()
    } else {
        format!(" (its keys belong to {})", describe_list(holders))
    }
}

fn describe_list(items: &[String]) -> String {
    match items.split_last() {
        None => "no SSH key".to_owned(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// Asks for the passphrase of a protected private key (its path); `None` when nobody can answer.
pub type AskPassphrase = Box<dyn Fn(&Path) -> Option<SecretString>>;

/// The keys that decrypt: the identities found, or why none were, and how to ask for a passphrase.
pub struct Unlock {
    identities: Result<Vec<Identity>, IdentityError>,
    passphrase: AskPassphrase,
}

impl std::fmt::Debug for Unlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unlock")
            .field("identities", &self.identities)
            .finish_non_exhaustive()
    }
}

impl Unlock {
    /// Loads the identities `search` finds (a failure is kept, to be reported with the file it
    /// stopped); `passphrase` is asked for a protected key the file is encrypted to.
    pub fn new(search: &vault::IdentitySearch, passphrase: AskPassphrase) -> Self {
        Unlock {
            identities: search.load(),
            passphrase,
        }
    }

    /// Fixed identities (tests, or a key already in memory).
    pub fn with(identities: Vec<Identity>) -> Self {
        Unlock {
            identities: Ok(identities),
            passphrase: Box::new(|_| None),
        }
    }
}

/// The secrets of one fleet repository.
#[derive(Debug)]
pub struct Keeper<'a> {
    base: PathBuf,
    fleet: &'a Fleet,
    ring: Keyring<'a>,
    known: BTreeMap<Tag, String>,
}

impl<'a> Keeper<'a> {
    /// The secrets under `base/secrets` for `fleet`.
    pub fn new(base: &Path, fleet: &'a Fleet) -> Self {
        Keeper {
            base: base.to_owned(),
            fleet,
            ring: Keyring::of(fleet),
            known: known_tags(fleet),
        }
    }

    /// The keyring: who reads what.
    pub fn ring(&self) -> &Keyring<'a> {
        &self.ring
    }

    /// The file's path on disk.
    pub fn path(&self, item: &Item) -> PathBuf {
        self.base.join(item.file())
    }

    /// The age recipients `item` must be encrypted to; admins without a usable key and hosts
    /// without a recorded key are left out (`check` reports them).
    pub fn recipients(&self, item: &Item) -> Result<Vec<vault::Recipient>, KeeperError> {
        let wanted = self.ring.recipients(item.sealed());
        if wanted.keys.is_empty() {
            return Err(KeeperError::NoRecipients {
                item: item.clone(),
                readers: matches!(item, Item::Secret(name) if !self.ring.readers(name).is_empty()),
            });
        }
        wanted
            .keys
            .iter()
            .map(|k| {
                vault::Recipient::from_openssh(k.key.as_str()).map_err(|source| {
                    KeeperError::Recipient {
                        holder: k.holder.to_string(),
                        source,
                    }
                })
            })
            .collect()
    }

    /// Compares the file with the keyring, from its header alone.
    pub fn status(&self, item: &Item) -> Status {
        let bytes = match std::fs::read(self.path(item)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Status::Missing,
            Err(e) => return Status::Unreadable(e.to_string()),
        };
        match vault::recipients(&bytes) {
            Ok(found) => self.compare(item, &found),
            Err(e) => Status::NotAge(e.to_string()),
        }
    }

    fn compare(&self, item: &Item, found: &[FileRecipient]) -> Status {
        let wanted = self.ring.recipients(item.sealed());
        let has = |tag: Tag| found.iter().any(|r| r.tag == tag);
        let mut missing: Vec<Owner> = Vec::new();
        for key in &wanted.keys {
            let who = Owner::from(key.holder);
            if !has(vault::tag_of(key.key.key())) && !missing.contains(&who) {
                missing.push(who);
            }
        }
        let expected: Vec<Tag> = wanted
            .keys
            .iter()
            .map(|k| vault::tag_of(k.key.key()))
            .collect();
        let extra: Vec<String> = found
            .iter()
            .filter(|r| !expected.contains(&r.tag))
            .map(|r| self.describe(r))
            .collect();
        if missing.is_empty() && extra.is_empty() {
            Status::Current
        } else {
            Status::Stale { missing, extra }
        }
    }

    /// Who a file's key belongs to, as far as the fleet knows.
    pub fn describe(&self, recipient: &FileRecipient) -> String {
        self.known
            .get(&recipient.tag)
            .cloned()
            .unwrap_or_else(|| format!("an unknown {recipient}"))
    }

    /// Every file under `secrets/` (hidden files and READMEs aside) and every secret hosts read
    /// that has no file, in file-name order.
    pub fn survey(&self) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for (file, item) in files_under(&self.base.join(SECRETS_DIR)) {
            let (status, readers) = match &item {
                Some(item) => (self.status(item), self.readers(item)),
                None => match std::fs::read(self.base.join(&file)) {
                    Err(e) => (Status::Unreadable(e.to_string()), Vec::new()),
                    Ok(bytes) => match vault::recipients(&bytes) {
                        Ok(_) => (Status::Current, Vec::new()),
                        Err(e) => (Status::NotAge(e.to_string()), Vec::new()),
                    },
                },
            };
            out.push(Entry {
                file,
                item,
                readers,
                status,
            });
        }
        for (name, hosts) in self.ring.secrets() {
            let item = Item::Secret(name.clone());
            let file = item.file();
            if !out.iter().any(|e| e.file == file) {
                out.push(Entry {
                    file,
                    item: Some(item),
                    readers: hosts.iter().map(|h| (*h).clone()).collect(),
                    status: Status::Missing,
                });
            }
        }
        out.sort_by(|a, b| a.file.cmp(&b.file));
        out
    }

    fn readers(&self, item: &Item) -> Vec<HostName> {
        match item {
            Item::Secret(name) => self
                .ring
                .readers(name)
                .iter()
                .map(|h| (*h).clone())
                .collect(),
            Item::HostKey(_) => Vec::new(),
        }
    }

    /// Encrypts `plaintext` to the item's recipients and replaces the file atomically (keeping
    /// an existing file's armor).
    pub fn seal(&self, item: &Item, plaintext: &[u8]) -> Result<(), KeeperError> {
        let recipients = self.recipients(item)?;
        let path = self.path(item);
        let armor = std::fs::read(&path)
            .ok()
            .is_some_and(|old| old.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
        let ciphertext = vault::encrypt(plaintext, &recipients, armor).map_err(|source| {
            KeeperError::Encrypt {
                file: item.file(),
                source: Box::new(source),
            }
        })?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| KeeperError::CreateDir {
                dir: dir.display().to_string(),
                source,
            })?;
        }
        vault::write_ciphertext(&path, &ciphertext).map_err(Box::new)?;
        Ok(())
    }

    /// Checks `input` against how the hosts use the secret and seals it (a Wi-Fi passphrase
    /// becomes its `psk=` line).
    pub fn set(&self, name: &SecretName, input: &[u8]) -> Result<(), KeeperError> {
        let item = Item::Secret(name.clone());
        let plaintext =
            payload::prepare(&payload::uses(self.fleet, name), input).map_err(|source| {
                KeeperError::Payload {
                    item: item.clone(),
                    source,
                }
            })?;
        self.seal(&item, plaintext.expose())
    }

    /// Decrypts the file with the first identity it is encrypted to.
    pub fn open(&self, item: &Item, unlock: &Unlock) -> Result<Plaintext, KeeperError> {
        let file = item.file();
        let bytes = match std::fs::read(self.path(item)) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(KeeperError::Missing {
                    file,
                    name: match item {
                        Item::Secret(name) => name.to_string(),
                        Item::HostKey(host) => {
                            format!("(the host key: `pifleet hostkey new {host}`)")
                        }
                    },
                });
            }
            Err(source) => return Err(KeeperError::Read { file, source }),
        };
        let holders = || -> Vec<String> {
            vault::recipients(&bytes)
                .map(|found| found.iter().map(|r| self.describe(r)).collect())
                .unwrap_or_default()
        };
        let identities = match &unlock.identities {
            Ok(ids) => ids,
            Err(e) => {
                return Err(KeeperError::NoIdentity {
                    file,
                    why: e.to_string(),
                    holders: holders(),
                });
            }
        };
        vault::decrypt(&bytes, identities, &*unlock.passphrase).map_err(|source| {
            KeeperError::Decrypt {
                file,
                source: Box::new(source),
                holders: holders(),
            }
        })
    }

    /// Re-encrypts the file to its current recipients when it is not [`Status::Current`];
    /// `Ok(None)` when it already was.
    pub fn rekey(&self, item: &Item, unlock: &Unlock) -> Result<Option<Resealed>, KeeperError> {
        if self.status(item).is_current() {
            return Ok(None);
        }
        self.reseal(item, unlock).map(Some)
    }

    /// Decrypts the file and encrypts it again to its current recipients, whatever its status.
    ///
    /// A secret is brought into the form its hosts read now: a Wi-Fi passphrase stored before any
    /// host named it as `psk_secret` gains its `psk=` line. A stored value that does not fit how
    /// its hosts read it is re-encrypted as it is (so revoking a key never waits for a value to be
    /// fixed) and reported in [`Resealed::unfit`].
    pub fn reseal(&self, item: &Item, unlock: &Unlock) -> Result<Resealed, KeeperError> {
        // Fail on recipients before anyone types a passphrase.
        self.recipients(item)?;
        let plaintext = self.open(item, unlock)?;
        let mut out = Resealed::default();
        if let Item::Secret(name) = item {
            let uses = payload::uses(self.fleet, name);
            let shown = payload::editable(&uses, plaintext.expose());
            match payload::prepare(&uses, &shown) {
                Ok(formed) if formed != plaintext => {
                    self.seal(item, formed.expose())?;
                    out.reformatted = true;
                    return Ok(out);
                }
                Ok(_) => {}
                Err(unfit) => out.unfit = Some(unfit),
            }
        }
        self.seal(item, plaintext.expose())?;
        Ok(out)
    }
}

/// What [`Keeper::reseal`] did besides re-encrypting.
#[derive(Debug, Default)]
pub struct Resealed {
    /// The value was rewritten into the form its hosts read (see [`payload::prepare`]).
    pub reformatted: bool,
    /// The value does not fit how its hosts read it; it was re-encrypted unchanged.
    pub unfit: Option<payload::PayloadError>,
}

/// Who holds each key the fleet knows, by tag.
fn known_tags(fleet: &Fleet) -> BTreeMap<Tag, String> {
    let mut out = BTreeMap::new();
    for (name, user) in &fleet.users {
        let admin = fleet.fleet.admins.contains(name);
        for key in &user.ssh_keys {
            out.entry(vault::tag_of(key.key())).or_insert_with(|| {
                if admin {
                    format!("admin `{name}`")
                } else {
                    format!("a key of user `{name}`")
                }
            });
        }
    }
    for (name, host) in &fleet.hosts {
        if let Some(key) = &host.host_key {
            out.entry(vault::tag_of(key.key()))
                .or_insert_with(|| format!("the host key of `{name}`"));
        }
    }
    out
}

/// Every regular file under `dir` and one level of subdirectories, relative to the repository
/// (`secrets/…`), with what it holds when its name follows the layout. Hidden files and READMEs
/// are skipped.
fn files_under(dir: &Path) -> Vec<(String, Option<Item>)> {
    let list = |d: &Path| -> Vec<(String, bool)> {
        let Ok(entries) = std::fs::read_dir(d) else {
            return Vec::new();
        };
        let mut names: Vec<(String, bool)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let is_dir = e.file_type().ok()?.is_dir();
                let skip = name.starts_with('.') || name.to_ascii_lowercase().starts_with("readme");
                (!skip).then_some((name, is_dir))
            })
            .collect();
        names.sort();
        names
    };
    let mut out = Vec::new();
    for (name, is_dir) in list(dir) {
        if is_dir {
            for (inner, inner_is_dir) in list(&dir.join(&name)) {
                if inner_is_dir {
                    continue;
                }
                let item = (name == "host-keys")
                    .then(|| inner.strip_suffix(".age"))
                    .flatten()
                    .and_then(|h| HostName::new(h).ok())
                    .map(Item::HostKey);
                out.push((format!("{SECRETS_DIR}/{name}/{inner}"), item));
            }
            continue;
        }
        let item = name
            .strip_suffix(".age")
            .and_then(|n| SecretName::new(n).ok())
            .map(Item::Secret);
        out.push((format!("{SECRETS_DIR}/{name}"), item));
    }
    out
}

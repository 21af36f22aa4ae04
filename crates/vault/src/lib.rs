//! Secrets encrypted to SSH keys, kept in the repository as age files.
//!
//! Why this shape: agenix decrypts `secrets/NAME.age` on each host with the host's SSH key, so
//! the repository only ever holds ciphertext, and the keys that matter already exist (the
//! admins' SSH keys and the hosts' `/etc/ssh/ssh_host_ed25519_key`). This crate is the
//! workstation side of that: it encrypts to `ssh-ed25519` and `ssh-rsa` public keys, decrypts
//! with OpenSSH private key files, re-encrypts when the set of keys changes, and tells which
//! keys a file is encrypted to without decrypting it (every recipient stanza carries a short
//! tag of its key). It also makes host key pairs in memory, so a host's key can be known
//! before the host first boots.
//!
//! Rules every function keeps:
//! - plaintext lives in memory only, in [`Plaintext`] (zeroed on drop, redacted in `Debug`);
//!   nothing here writes it to disk, and [`write_ciphertext`] refuses anything that is not an
//!   age file;
//! - no error message carries secret material: they name paths, key types, fingerprints and
//!   tags, never file contents.
//!
//! The cryptography is the `age` crate's (rage). Only the header listing in [`recipients`] is
//! ours, on top of `age-core`'s stanza parser, because `age` keeps its header type private.

mod crypt;
mod header;
mod identity;
mod keygen;
mod recipient;
mod tag;
mod write;

pub use age::secrecy::SecretString;
pub use crypt::{
    DecryptError, EncryptError, Plaintext, RekeyError, TriedKey, decrypt, encrypt, rekey,
};
pub use header::{FileRecipient, HeaderError, recipients};
pub use identity::{IDENTITY_ENV, Identity, IdentityError, IdentitySearch};
pub use keygen::{HostKey, KeygenError, generate_host_key};
pub use recipient::{Recipient, RecipientError};
pub use tag::{KeyKind, Tag, tag_of};
pub use write::{WriteError, write_ciphertext};

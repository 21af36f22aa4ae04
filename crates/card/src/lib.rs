//! Editing a NixOS root file system on an SD card or image while it is out of the machine: adding
//! SSH keys so a stock NixOS image answers to the operator (`pifleet keys inject`), and writing the
//! host's own SSH host key so it boots with the identity the repository knows ([`write_host_key`]).
//!
//! 1. [`locate`] turns what the user named (a card, a partition, an image file) into the ext4 root
//!    file system, found by superblock magic and partition table, never by label; it refuses a
//!    device (or a file behind a loop device) that is mounted or holds the running system, with
//!    flash's checks.
//! 2. [`open`] edits it with e2fsprogs' `debugfs`, without mounting, or mounts it in a temporary
//!    directory when `debugfs` is missing (unmounted on drop, also on error).
//! 3. [`plan`] checks it is a NixOS root and works out what to change; [`apply`] changes it and reads
//!    it back. For a host key, [`plan_host_key`] and [`apply_host_key`] (or both in one:
//!    [`write_host_key`]) do the same with `/etc/ssh/ssh_host_ed25519_key` and its `.pub`; the
//!    private key never passes through a file on the workstation's disk (see [`HostKey`]).

mod edit;
mod host_key;
mod inject;
mod layout;
mod locate;

pub use edit::{Attrs, Debugfs, EditError, Editor, Kind, Mounted, Stat, debugfs_available, open};
pub use host_key::{
    Found, HOST_KEY_DIR, HOST_KEY_NAME, HOST_PUB_NAME, HostKey, HostKeyError, HostKeyPlan,
    apply_host_key, plan_host_key, write_host_key,
};
pub use inject::{InjectError, Merged, Plan, Request, apply, check_nixos, merge, plan};
pub use layout::{
    FileSystem, GptProblem, Partition, TableError, TableKind, read_table, read_table_sized, sniff,
};
pub use locate::{LocateError, Root, locate, locate_fresh};
/// Holds a [`HostKey`]'s private text, wiped from memory when dropped.
pub use zeroize::Zeroizing;

//! Editing a NixOS root file system on an SD card or image while it is out of the machine: today,
//! adding SSH keys so a stock NixOS image answers to the operator (`pifleet keys inject`).
//!
//! 1. [`locate`] turns what the user named (a card, a partition, an image file) into the ext4 root
//!    file system, found by superblock magic and partition table, never by label; it refuses a
//!    device (or a file behind a loop device) that is mounted or holds the running system, with
//!    flash's checks.
//! 2. [`open`] edits it with e2fsprogs' `debugfs`, without mounting, or mounts it in a temporary
//!    directory when `debugfs` is missing (unmounted on drop, also on error).
//! 3. [`plan`] checks it is a NixOS root and works out what to change; [`apply`] changes it and reads
//!    it back.

mod edit;
mod inject;
mod layout;
mod locate;

pub use edit::{Attrs, Debugfs, EditError, Editor, Kind, Mounted, Stat, debugfs_available, open};
pub use inject::{InjectError, Merged, Plan, Request, apply, check_nixos, merge, plan};
pub use layout::{
    FileSystem, GptProblem, Partition, TableError, TableKind, read_table, read_table_sized, sniff,
};
pub use locate::{LocateError, Root, locate};

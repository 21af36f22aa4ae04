//! From what the user named (a card, a partition, an image file) to the ext4 root file system in it,
//! refusing anything mounted or holding the running system.
//!
//! The safety checks are flash's ([`SystemView::check`]): a device, or any partition of its disk, that
//! is mounted or backs the running system is never opened for writing. An image file counts as
//! mounted when a loop device over it is.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use flash::{Device, Refusal, SystemView, Target};

use crate::layout::{self, FileSystem, ReadError, TableError};

/// The ext2/3/4 file system to edit, and where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// The file or block device holding it.
    pub path: PathBuf,
    /// Where it starts in `path`, in bytes (non-zero for a partition of an image file, or of a
    /// disk whose partitions the kernel has not listed).
    pub offset: u64,
    /// How to name it to a person: `/dev/sdb2`, or `card.img (partition 2)`.
    pub shown: String,
    /// The block device, when it is one.
    pub device: Option<Device>,
    /// The volume label, for messages only.
    pub label: String,
}

/// Why no file system to edit was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocateError {
    /// The path could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// sysfs or mountinfo could not be read.
    #[error(transparent)]
    Device(#[from] flash::DeviceError),
    /// The device or image is in use.
    #[error("refusing to touch {shown}: {}", reasons.join("; "))]
    Refused {
        /// What was named.
        shown: String,
        /// Why, one reason each.
        reasons: Vec<String>,
    },
    /// It is a FAT file system, such as the firmware partition.
    #[error(
        "{shown} is a FAT file system (the firmware/boot partition); the keys go on the ext4 root partition: name the whole card (e.g. /dev/sdb) and it is found"
    )]
    Fat {
        /// What was named.
        shown: String,
    },
    /// A partition table without a Linux file system.
    #[error("{shown} has no ext4 partition ({})", found.join(", "))]
    NoLinux {
        /// What was named.
        shown: String,
        /// What each partition holds.
        found: Vec<String>,
    },
    /// More than one ext partition: the user must choose.
    #[error("{shown} has several ext4 partitions ({}); name the one holding NixOS", found.join(", "))]
    Several {
        /// What was named.
        shown: String,
        /// The candidates.
        found: Vec<String>,
    },
    /// The partition table is damaged, or of a kind that cannot be read.
    #[error("cannot use the partition table of {shown}")]
    Table {
        /// What was named.
        shown: String,
        /// What is wrong with it.
        #[source]
        source: TableError,
    },
    /// No file system and no partition table.
    #[error("{shown} holds neither an ext4 file system nor a partition table")]
    Unknown {
        /// What was named.
        shown: String,
    },
    /// The journal needs replaying.
    #[error(
        "the file system on {shown} was not cleanly unmounted (its journal needs replaying); boot it and shut it down cleanly, or run `e2fsck -p {shown}`, then try again"
    )]
    NeedsRecovery {
        /// The file system.
        shown: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> LocateError + '_ {
    move |source| LocateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Finds the ext4 file system in `path`: the path itself when it holds one, else the only ext4
/// partition of its partition table. Refuses a mounted or system device before reading anything.
pub fn locate(view: &SystemView, path: &Path) -> Result<Root, LocateError> {
    locate_with(view, path, true)
}

/// [`locate`] for a card whose partition table was just written and not yet re-read: the kernel's
/// partition nodes still describe the old table (another start or a smaller size), so the file
/// system is reached by its offset into the whole card.
pub fn locate_fresh(view: &SystemView, path: &Path) -> Result<Root, LocateError> {
    locate_with(view, path, false)
}

fn locate_with(view: &SystemView, path: &Path, nodes: bool) -> Result<Root, LocateError> {
    fs::metadata(path).map_err(io_err(path))?;
    let shown = path.display().to_string();
    let device = match view.target(path)? {
        Target::Device(device) => {
            refuse_in_use(view, &device, &shown, None)?;
            Some(device)
        }
        // The path exists (looked up above), so it is never a new file.
        Target::File(file) | Target::NewFile(file) => {
            for loop_dev in loops_over(view, &file) {
                refuse_in_use(view, &loop_dev, &shown, Some(&loop_dev.path))?;
            }
            None
        }
    };
    let mut file = File::open(path).map_err(io_err(path))?;
    let found = layout::sniff_at(&mut file, 0).map_err(io_err(path))?;
    match found {
        FileSystem::Ext {
            label,
            needs_recovery,
        } => {
            if needs_recovery {
                return Err(LocateError::NeedsRecovery { shown });
            }
            return Ok(Root {
                path: device
                    .as_ref()
                    .map_or_else(|| path.to_path_buf(), |d| d.path.clone()),
                offset: 0,
                shown,
                device,
                label,
            });
        }
        FileSystem::Fat => return Err(LocateError::Fat { shown }),
        _ => {}
    }
    let sector_size = device.as_ref().and_then(|d| logical_sector_size(view, d));
    let table = match layout::read(&mut file, sector_size) {
        Ok(Some(table)) => table,
        Ok(None) => return Err(LocateError::Unknown { shown }),
        Err(ReadError::Io(e)) => return Err(io_err(path)(e)),
        Err(ReadError::Table(source)) => return Err(LocateError::Table { shown, source }),
    };
    if let Some(problem) = &table.primary_damaged {
        tracing::warn!("{shown}: the primary GPT is damaged ({problem}); using its backup copy");
    }
    let mut linux = Vec::new();
    let mut found = Vec::new();
    for part in table.partitions {
        let fs = layout::sniff_at(&mut file, part.start).map_err(io_err(path))?;
        found.push(format!("partition {}: {fs}", part.number));
        if let FileSystem::Ext {
            label,
            needs_recovery,
        } = fs
        {
            linux.push((part, label, needs_recovery));
        }
    }
    match linux.len() {
        0 => Err(LocateError::NoLinux { shown, found }),
        1 => {
            let (part, label, needs_recovery) = linux.remove(0);
            let (path, offset, shown) = match device
                .as_ref()
                .filter(|_| nodes)
                .and_then(|d| partition_node(view, d, part.start))
            {
                Some(node) => (node.clone(), 0, node.display().to_string()),
                None => (
                    device
                        .as_ref()
                        .map_or_else(|| path.to_path_buf(), |d| d.path.clone()),
                    part.start,
                    format!("{shown} (partition {})", part.number),
                ),
            };
            if needs_recovery {
                return Err(LocateError::NeedsRecovery { shown });
            }
            Ok(Root {
                path,
                offset,
                shown,
                device,
                label,
            })
        }
        _ => Err(LocateError::Several {
            shown,
            found: linux
                .iter()
                .map(|(p, label, _)| format!("partition {} {label}", p.number).trim().to_owned())
                .collect(),
        }),
    }
}

/// Mounted or system devices are refused whatever the user says: editing a mounted file system
/// behind the kernel's back corrupts it.
fn refuse_in_use(
    view: &SystemView,
    device: &Device,
    shown: &str,
    via: Option<&Path>,
) -> Result<(), LocateError> {
    let reasons: Vec<String> = view
        .check(device, None)?
        .into_iter()
        .filter(|r| matches!(r, Refusal::Mounted { .. } | Refusal::System { .. }))
        .map(|r| match via {
            Some(loop_dev) => format!("it is attached as {} and {r}", loop_dev.display()),
            None => r.to_string(),
        })
        .collect();
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(LocateError::Refused {
            shown: shown.to_owned(),
            reasons,
        })
    }
}

/// Loop devices whose backing file is `file`.
fn loops_over(view: &SystemView, file: &Path) -> Vec<Device> {
    let Ok(file) = fs::canonicalize(file) else {
        return Vec::new();
    };
    let Ok(entries) = fs::read_dir(view.sys.join("block")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(backing) = fs::read_to_string(entry.path().join("loop/backing_file")) else {
            continue;
        };
        if Path::new(backing.trim()) == file
            && let Ok(device) = view.device(&name)
        {
            out.push(device);
        }
    }
    out
}

/// The logical sector size of a block device (of its disk, for a partition), from sysfs: what its
/// partition table counts in. `None` when sysfs does not say.
fn logical_sector_size(view: &SystemView, device: &Device) -> Option<u32> {
    let disk = device.parent.as_deref().unwrap_or(&device.name);
    let path = view
        .sys
        .join("class/block")
        .join(disk)
        .join("queue/logical_block_size");
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The kernel's node for the partition of `disk` starting at byte `start`, if it lists one.
fn partition_node(view: &SystemView, disk: &Device, start: u64) -> Option<PathBuf> {
    if disk.parent.is_some() {
        return None;
    }
    view.partitions(&disk.name).into_iter().find_map(|child| {
        let sectors =
            fs::read_to_string(view.sys.join("class/block").join(&child).join("start")).ok()?;
        let node = PathBuf::from("/dev").join(&child);
        // sysfs counts `start` in 512-byte units, whatever the disk's logical sector size.
        // Without udev (containers) sysfs may list a partition that has no node in /dev.
        (sectors.trim().parse::<u64>().ok()? * 512 == start && node.exists()).then_some(node)
    })
}

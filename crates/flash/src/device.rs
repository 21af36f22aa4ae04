//! Deciding whether a target may be overwritten, from what the kernel says about it.
//!
//! Flashing the wrong disk destroys data, so the checks are a separate function over a
//! [`SystemView`]: the paths of `/proc/self/mountinfo`, `/proc/swaps` and `/sys`. Tests point those
//! at fixtures and exercise every refusal without touching a real disk. Everything comes from sysfs,
//! mountinfo and the swap list (no ioctls, no unsafe code): sizes from `/sys/class/block/<dev>/size`,
//! removability from `/sys/block/<dev>/removable` and the bus, partitions and device-mapper holders
//! from their sysfs links, so a card whose partition is mounted or swapped to, or sits under a
//! mounted LUKS volume, is still seen as in use.
//!
//! These checks explain; they are not the last line. The writer opens a block device exclusively,
//! so the kernel itself refuses one that is mounted or swapped to, whatever was decided here.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use crate::image::{FileId, Image};

/// Where the kernel's view of block devices and mounts is read from.
#[derive(Debug, Clone)]
pub struct SystemView {
    /// A `mountinfo` file, normally `/proc/self/mountinfo`.
    pub mountinfo: PathBuf,
    /// The list of active swap areas, normally `/proc/swaps`. A missing file means none: a kernel
    /// built without swap support has no such file.
    pub swaps: PathBuf,
    /// The sysfs root, normally `/sys`.
    pub sys: PathBuf,
}

impl SystemView {
    /// The running system.
    pub fn live() -> Self {
        Self {
            mountinfo: "/proc/self/mountinfo".into(),
            swaps: "/proc/swaps".into(),
            sys: "/sys".into(),
        }
    }
}

/// A whole disk or a partition, as sysfs describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The kernel name (`sdb`, `mmcblk0`, `loop3`).
    pub name: String,
    /// The path under `/dev`.
    pub path: PathBuf,
    /// Size in bytes.
    pub size: u64,
    /// Vendor and model, when the driver reports them (a loop device shows its backing file).
    pub model: Option<String>,
    /// Whether the device can be taken out: the removable flag, a USB disk, or an SD card slot.
    pub removable: bool,
    /// The whole disk this is a partition of, if it is one.
    pub parent: Option<String>,
    /// For a loop device (or a partition of one), its backing file as sysfs names it
    /// (`loop/backing_file`).
    pub backing_file: Option<PathBuf>,
}

/// What a target path turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A path where nothing exists yet: writing creates a regular file there.
    NewFile(PathBuf),
    /// An existing regular file: writing replaces what it holds, so a person should be asked first.
    File(PathBuf),
    /// A block device.
    Device(Device),
}

impl Target {
    /// The path that is written: the file, or the device node under `/dev`.
    pub fn path(&self) -> &Path {
        match self {
            Self::NewFile(path) | Self::File(path) => path,
            Self::Device(device) => &device.path,
        }
    }

    /// Whether writing `image` here would overwrite the image file itself, which the write is still
    /// reading: the same file by device and inode number (reached by the same path, a hard link, a
    /// symlink or a bind mount: paths can't tell), or a loop device, or a partition of one, whose
    /// backing file it is. No flag can override this; it returns the refusal to show.
    ///
    /// A loop device is matched through the path sysfs records for its backing file, so one whose
    /// backing file has since been renamed or deleted is not recognised.
    pub fn overwrites_image(&self, image: &Image) -> Option<Refusal> {
        let image_path = image.path().to_path_buf();
        let id = Some(image.file_id());
        match self {
            Self::NewFile(_) => None,
            Self::File(path) => {
                (FileId::of_path(path) == id).then_some(Refusal::TheImage { image: image_path })
            }
            Self::Device(device) => {
                let backing = device.backing_file.as_deref()?;
                (FileId::of_path(backing) == id)
                    .then_some(Refusal::BackedByImage { image: image_path })
            }
        }
    }
}

/// A reason not to write to a target. All but [`Refusal::TooSmall`], [`Refusal::TheImage`] and
/// [`Refusal::BackedByImage`] can be overridden with force.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The device or one of its partitions (or a volume on them) is mounted.
    Mounted {
        /// `(source, mount point)` pairs.
        mounts: Vec<(String, String)>,
    },
    /// The device, one of its partitions, or a volume on them is active swap.
    Swap {
        /// The swap areas, as `/proc/swaps` names them.
        devices: Vec<String>,
    },
    /// The device holds the running system (`/`, `/boot`, `/nix`, …).
    System {
        /// The mount points it backs.
        mount_points: Vec<String>,
    },
    /// The device does not look removable.
    NotRemovable,
    /// The target is a partition, not a whole disk.
    Partition {
        /// The whole disk.
        disk: String,
    },
    /// The image does not fit.
    TooSmall {
        /// The device's size in bytes.
        device: u64,
        /// The image's size in bytes.
        image: u64,
    },
    /// The target is the image file itself (see [`Target::overwrites_image`]).
    TheImage {
        /// The image file, as it was named.
        image: PathBuf,
    },
    /// The target is a loop device, or a partition of one, backed by the image file.
    BackedByImage {
        /// The image file, as it was named.
        image: PathBuf,
    },
}

impl Refusal {
    /// Whether `--force` may override this refusal. A too-small device can't hold the image whatever
    /// the user says, and writing over the image destroys the very bytes being written.
    pub fn overridable(&self) -> bool {
        !matches!(
            self,
            Self::TooSmall { .. } | Self::TheImage { .. } | Self::BackedByImage { .. }
        )
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Mounted { mounts } => {
                let list: Vec<String> = mounts.iter().map(|(s, m)| format!("{s} on {m}")).collect();
                write!(f, "it is mounted ({}); unmount it first", list.join(", "))
            }
            Self::Swap { devices } => {
                write!(
                    f,
                    "it is active swap ({}); swapoff it first",
                    devices.join(", ")
                )
            }
            Self::System { mount_points } => write!(
                f,
                "it holds the running system ({})",
                mount_points.join(", ")
            ),
            Self::NotRemovable => write!(
                f,
                "it is not a removable device (not flagged removable, not on USB, not an SD slot)"
            ),
            Self::Partition { disk } => {
                write!(f, "it is a partition; flash the whole disk /dev/{disk}")
            }
            Self::TooSmall { device, image } => write!(
                f,
                "it is smaller than the image ({device} bytes, the image needs {image})"
            ),
            Self::TheImage { image } => write!(
                f,
                "it is the image file {} itself (the same inode on the same device)",
                image.display()
            ),
            Self::BackedByImage { image } => write!(
                f,
                "it is a loop device backed by the image file {}",
                image.display()
            ),
        }
    }
}

/// Why a device could not be inspected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// A file under the system view could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// A path under `/dev` that does not exist.
    #[error(
        "{path} does not exist; is the card inserted? (`pifleet flash IMAGE` lists removable devices)"
    )]
    NoSuchDevice {
        /// The target.
        path: PathBuf,
    },
    /// The target is neither a block device nor a regular file.
    #[error("{path} is neither a block device nor a regular file")]
    NotADevice {
        /// The target.
        path: PathBuf,
    },
    /// sysfs has no entry for the device.
    #[error("no block device named {name} in {sys}")]
    Unknown {
        /// The kernel name.
        name: String,
        /// The sysfs root.
        sys: PathBuf,
    },
}

impl SystemView {
    fn class(&self, name: &str) -> PathBuf {
        self.sys.join("class/block").join(name)
    }

    fn read(&self, path: &Path) -> Result<String, DeviceError> {
        fs::read_to_string(path)
            .map(|s| s.trim().to_owned())
            .map_err(|source| DeviceError::Io {
                path: path.to_path_buf(),
                source,
            })
    }

    fn read_opt(&self, path: &Path) -> Option<String> {
        fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }

    fn list(&self, dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    /// Finds out what `path` is: a new file, an existing regular file, or a block device described by
    /// sysfs.
    pub fn target(&self, path: &Path) -> Result<Target, DeviceError> {
        let meta = match fs::metadata(path) {
            Ok(meta) => meta,
            // A mistyped `/dev/sdz` must not become a multi-gigabyte file in the RAM-backed /dev.
            Err(e) if e.kind() == io::ErrorKind::NotFound && path.starts_with("/dev") => {
                return Err(DeviceError::NoSuchDevice {
                    path: path.to_path_buf(),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Target::NewFile(path.to_path_buf()));
            }
            Err(source) => {
                return Err(DeviceError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        if meta.is_file() {
            return Ok(Target::File(path.to_path_buf()));
        }
        if !meta.file_type().is_block_device() {
            return Err(DeviceError::NotADevice {
                path: path.to_path_buf(),
            });
        }
        // /dev/disk/by-id/… links resolve to the kernel name.
        let real = fs::canonicalize(path).map_err(|source| DeviceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name =
            real.file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| DeviceError::NotADevice {
                    path: path.to_path_buf(),
                })?;
        let mut device = self.device(name)?;
        device.path = real;
        Ok(Target::Device(device))
    }

    /// Describes the block device with kernel name `name`.
    pub fn device(&self, name: &str) -> Result<Device, DeviceError> {
        let class = self.class(name);
        if !class.exists() {
            return Err(DeviceError::Unknown {
                name: name.to_owned(),
                sys: self.sys.clone(),
            });
        }
        let sectors = self.read(&class.join("size"))?;
        let size = sectors.parse::<u64>().unwrap_or(0) * 512;
        let parent = self.parent(name);
        let disk = parent.as_deref().unwrap_or(name);
        let block = self.sys.join("block").join(disk);
        let removable = self.read_opt(&block.join("removable")).as_deref() == Some("1")
            || fs::canonicalize(&block).is_ok_and(|p| p.to_string_lossy().contains("/usb"))
            || self.read_opt(&block.join("device/type")).as_deref() == Some("SD");
        let backing_file = self.read_opt(&block.join("loop/backing_file"));
        let model = if let Some(file) = &backing_file {
            Some(format!("loop device on {file}"))
        } else {
            let parts: Vec<String> = ["device/vendor", "device/model", "device/name"]
                .iter()
                .filter_map(|f| self.read_opt(&block.join(f)))
                .collect();
            (!parts.is_empty()).then(|| parts.join(" "))
        };
        Ok(Device {
            name: name.to_owned(),
            path: PathBuf::from("/dev").join(name),
            size,
            model,
            removable,
            parent,
            backing_file: backing_file.map(PathBuf::from),
        })
    }

    /// The whole disk of a partition: the directory its sysfs entry sits in.
    fn parent(&self, name: &str) -> Option<String> {
        let class = self.class(name);
        if !class.join("partition").exists() {
            return None;
        }
        let real = fs::canonicalize(&class).ok()?;
        real.parent()?.file_name()?.to_str().map(str::to_owned)
    }

    /// The partitions of a whole disk.
    pub fn partitions(&self, disk: &str) -> Vec<String> {
        let class = self.class(disk);
        self.list(&class)
            .into_iter()
            .filter(|child| class.join(child).join("partition").exists())
            .collect()
    }

    /// The device, its partitions, and every device-mapper/md device stacked on any of them.
    fn in_use_set(&self, disk: &str) -> BTreeSet<String> {
        let mut todo: Vec<String> = vec![disk.to_owned()];
        todo.extend(self.partitions(disk));
        let mut seen = BTreeSet::new();
        while let Some(name) = todo.pop() {
            if seen.insert(name.clone()) {
                todo.extend(self.list(&self.class(&name).join("holders")));
            }
        }
        seen
    }

    /// The whole disks under a device: through partitions and device-mapper/md slaves.
    fn base_disks(&self, name: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut todo = vec![name.to_owned()];
        let mut seen = BTreeSet::new();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            let slaves = self.list(&self.class(&name).join("slaves"));
            if !slaves.is_empty() {
                todo.extend(slaves);
            } else if let Some(parent) = self.parent(&name) {
                out.insert(parent);
            } else {
                out.insert(name);
            }
        }
        out
    }

    /// `major:minor` → kernel name, for every block device.
    fn dev_numbers(&self) -> BTreeMap<String, String> {
        self.list(&self.sys.join("class/block"))
            .into_iter()
            .filter_map(|name| {
                let dev = self.read_opt(&self.class(&name).join("dev"))?;
                Some((dev, name))
            })
            .collect()
    }

    fn mounts(&self) -> Result<Vec<Mount>, DeviceError> {
        Ok(parse_mountinfo(&self.read(&self.mountinfo)?))
    }

    /// The active swap areas' names, as `/proc/swaps` lists them.
    fn swaps(&self) -> Result<Vec<String>, DeviceError> {
        match fs::read_to_string(&self.swaps) {
            Ok(text) => Ok(parse_swaps(&text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(source) => Err(DeviceError::Io {
                path: self.swaps.clone(),
                source,
            }),
        }
    }

    /// The kernel name behind a mount, by device number, or by its source path when the number is
    /// anonymous (btrfs subvolumes report `0:NN`).
    fn mount_device(&self, mount: &Mount, numbers: &BTreeMap<String, String>) -> Option<String> {
        if let Some(name) = numbers.get(&mount.dev) {
            return Some(name.clone());
        }
        self.dev_path_name(&mount.source)
    }

    /// The kernel name behind a `/dev/…` path (`/dev/mapper/x` links resolve to `dm-N`), if sysfs
    /// knows it. Paths elsewhere (a swap file, a network share) are no block device's.
    fn dev_path_name(&self, path: &str) -> Option<String> {
        let rest = path.strip_prefix("/dev/")?;
        let real = fs::canonicalize(path).ok();
        let name = real
            .as_deref()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or_else(|| rest.rsplit('/').next().unwrap_or(rest));
        self.class(name).exists().then(|| name.to_owned())
    }

    /// Every reason not to write `image_size` bytes to `device`.
    pub fn check(
        &self,
        device: &Device,
        image_size: Option<u64>,
    ) -> Result<Vec<Refusal>, DeviceError> {
        let mut refusals = Vec::new();
        let disk = device.parent.as_deref().unwrap_or(&device.name);
        let mounts = self.mounts()?;
        let numbers = self.dev_numbers();

        let in_use = self.in_use_set(disk);
        let mounted: Vec<(String, String)> = mounts
            .iter()
            .filter(|m| {
                self.mount_device(m, &numbers)
                    .is_some_and(|n| in_use.contains(&n))
            })
            .map(|m| (m.source.clone(), m.mount_point.clone()))
            .collect();

        let system: Vec<String> = mounts
            .iter()
            .filter(|m| SYSTEM_MOUNTS.contains(&m.mount_point.as_str()))
            .filter(|m| {
                self.mount_device(m, &numbers)
                    .is_some_and(|n| self.base_disks(&n).contains(disk))
            })
            .map(|m| m.mount_point.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if !system.is_empty() {
            refusals.push(Refusal::System {
                mount_points: system,
            });
        }
        if !mounted.is_empty() {
            refusals.push(Refusal::Mounted { mounts: mounted });
        }
        let swap: Vec<String> = self
            .swaps()?
            .into_iter()
            .filter(|s| self.dev_path_name(s).is_some_and(|n| in_use.contains(&n)))
            .collect();
        if !swap.is_empty() {
            refusals.push(Refusal::Swap { devices: swap });
        }
        if device.parent.is_some() {
            refusals.push(Refusal::Partition {
                disk: disk.to_owned(),
            });
        }
        if !device.removable {
            refusals.push(Refusal::NotRemovable);
        }
        if let Some(image) = image_size
            && image > device.size
        {
            refusals.push(Refusal::TooSmall {
                device: device.size,
                image,
            });
        }
        Ok(refusals)
    }

    /// Whole disks that could be an SD card: removable, non-empty, and not holding the system.
    pub fn candidates(&self) -> Result<Vec<Device>, DeviceError> {
        let mut out = Vec::new();
        for name in self.list(&self.sys.join("block")) {
            if ["loop", "ram", "zram", "dm-", "md", "sr", "nbd"]
                .iter()
                .any(|p| name.starts_with(p))
            {
                continue;
            }
            let device = self.device(&name)?;
            if device.size == 0 || !device.removable {
                continue;
            }
            let refusals = self.check(&device, None)?;
            if refusals.iter().any(|r| matches!(r, Refusal::System { .. })) {
                continue;
            }
            out.push(device);
        }
        Ok(out)
    }
}

/// Mount points whose disk is the running system.
const SYSTEM_MOUNTS: &[&str] = &[
    "/",
    "/boot",
    "/boot/efi",
    "/boot/firmware",
    "/efi",
    "/nix",
    "/nix/store",
    "/usr",
    "/var",
    "/home",
];

#[derive(Debug)]
struct Mount {
    dev: String,
    mount_point: String,
    source: String,
}

/// Parses `/proc/<pid>/mountinfo` (proc(5)): `id parent major:minor root mount-point options
/// [optional fields…] - fstype source super-options`.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let dash = fields.iter().position(|f| *f == "-")?;
            Some(Mount {
                dev: (*fields.get(2)?).to_owned(),
                mount_point: unescape(fields.get(4)?),
                source: unescape(fields.get(dash + 2)?),
            })
        })
        .collect()
}

/// Parses `/proc/swaps` (a header line, then `Filename Type Size Used Priority` per area, the file
/// name escaped like mountinfo's fields) into the areas' names.
fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .skip(1)
        .filter_map(|line| line.split_whitespace().next())
        .map(unescape)
        .collect()
}

/// Undoes the octal escapes of mountinfo and `/proc/swaps` (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\'
            && let Some(digits) = octal
            && digits.iter().all(|d| (b'0'..=b'7').contains(d))
        {
            out.push(
                digits
                    .iter()
                    .fold(0u8, |v, d| v.wrapping_mul(8).wrapping_add(d - b'0')),
            );
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_fields_and_escapes() {
        let m = parse_mountinfo(
            "36 35 98:0 /mnt1 /mnt/my\\040card rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
        );
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].dev, "98:0");
        assert_eq!(m[0].mount_point, "/mnt/my card");
        assert_eq!(m[0].source, "/dev/root");
    }

    #[test]
    fn swaps_fields_and_escapes() {
        let s = parse_swaps(
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n\
             /dev/sdb2                               partition\t1048572\t\t0\t\t-2\n\
             /var/my\\040swap                         file\t\t524284\t\t0\t\t-3\n",
        );
        assert_eq!(s, vec!["/dev/sdb2".to_owned(), "/var/my swap".to_owned()]);
        assert_eq!(
            parse_swaps("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"),
            Vec::<String>::new()
        );
    }
}

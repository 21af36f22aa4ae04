//! Writing disk images (`.img`, `.img.zst`) to SD cards and other block devices, safely.
//!
//! Flashing is the one pifleet action that can destroy a workstation's data, and the one whose
//! failure (a silently bad card) is found only when a Pi doesn't boot. So the library is built as
//! separate, testable steps:
//!
//! 1. [`Image::open`] tells the format by magic bytes and walks zstd frames, so a truncated or
//!    foreign file is refused before anything is written, and learns the decoded size and whether
//!    every frame carries a checksum.
//! 2. [`SystemView::target`] tells a new file, an existing file and a block device apart;
//!    [`Target::overwrites_image`] refuses the image itself by device and inode, under any name or
//!    behind a loop device; [`SystemView::check`] reads sysfs, mountinfo and `/proc/swaps` and lists
//!    every reason not to touch a device: mounted, swap, holds the running system, not removable,
//!    too small.
//! 3. [`write_image`] opens the target as it was judged (a block device exclusively, so the kernel
//!    refuses one in use; never the image's inode; a new file only if it is still new), streams the
//!    image in 4 MiB chunks with no temporary copy, hashing as it goes, and fsyncs the target.
//! 4. [`verify`] reads the target back from the medium and compares SHA-256s.

mod device;
mod image;
mod write;

pub use device::{Device, DeviceError, Refusal, SystemView, Target};
pub use image::{Format, Image, ImageError};
pub use write::{
    CHUNK, Hashing, NoProgress, Progress, VerifyError, WriteError, Written, file_sha256, verify,
    write_image, write_to,
};

/// Asks the kernel to read `device`'s partition table again, so a freshly written card's partitions
/// show up without re-inserting it. Best effort, through `blockdev --rereadpt` (util-linux): the
/// ioctl itself needs unsafe code, which the workspace forbids. Returns whether it worked.
pub fn reread_partition_table(device: &std::path::Path) -> bool {
    std::process::Command::new("blockdev")
        .arg("--rereadpt")
        .arg(device)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

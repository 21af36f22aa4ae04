//! What is on a disk or partition, from its bytes: the file system by superblock magic, and the
//! partitions of an MBR or GPT table.
//!
//! Labels and partition type codes are set by whoever made the image, so they decide nothing here:
//! an ext2/3/4 file system is recognised by the magic `0xEF53` at byte 1080, a FAT one by its boot
//! sector. Only primary MBR partitions are listed (SD card images don't use logical ones).

use std::fmt;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

/// The bytes needed to tell a file system apart: the boot sector and the ext superblock.
pub(crate) const PROBE_LEN: usize = 2048;

/// ext2/3/4 `s_feature_incompat` flag: the journal must be replayed before the file system is
/// consistent (it was not cleanly unmounted).
const EXT_INCOMPAT_RECOVER: u32 = 0x4;
/// ext2/3/4 `s_feature_incompat` flag: this is an external journal device, not a file system.
const EXT_INCOMPAT_JOURNAL_DEV: u32 = 0x8;

/// A file system recognised by its magic.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileSystem {
    /// ext2, ext3 or ext4.
    Ext {
        /// The volume label (`NIXOS_SD` on NixOS images), for messages only.
        label: String,
        /// The journal was not replayed: the card was pulled without a clean shutdown.
        needs_recovery: bool,
    },
    /// FAT12/16/32, such as a Pi's firmware partition.
    Fat,
    /// Something else, or nothing.
    Unknown,
}

impl fmt::Display for FileSystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ext { label, .. } if label.is_empty() => f.write_str("ext4"),
            Self::Ext { label, .. } => write!(f, "ext4 (label {label})"),
            Self::Fat => f.write_str("FAT"),
            Self::Unknown => f.write_str("no recognised file system"),
        }
    }
}

/// Recognises the file system whose first bytes are `probe` (at least [`PROBE_LEN`] for ext).
pub fn sniff(probe: &[u8]) -> FileSystem {
    let u16_at = |at: usize| {
        probe
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |at: usize| {
        probe
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    if u16_at(1080) == Some(0xEF53) {
        let incompat = u32_at(1024 + 0x60).unwrap_or(0);
        if incompat & EXT_INCOMPAT_JOURNAL_DEV == 0 {
            let label = probe
                .get(1024 + 0x78..1024 + 0x88)
                .map(|b| {
                    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
                    String::from_utf8_lossy(&b[..end]).into_owned()
                })
                .unwrap_or_default();
            return FileSystem::Ext {
                label,
                needs_recovery: incompat & EXT_INCOMPAT_RECOVER != 0,
            };
        }
    }
    if is_fat(probe) {
        return FileSystem::Fat;
    }
    FileSystem::Unknown
}

/// A FAT boot sector: a jump instruction, a sane BIOS parameter block, and the boot signature.
/// (An MBR also ends in `55 AA`; it has no BPB, so the parameter checks tell them apart.)
fn is_fat(b: &[u8]) -> bool {
    if b.len() < 512 || b[510] != 0x55 || b[511] != 0xAA {
        return false;
    }
    let jump = (b[0] == 0xEB && b[2] == 0x90) || b[0] == 0xE9;
    let bytes_per_sector = u16::from_le_bytes([b[11], b[12]]);
    let sectors_per_cluster = b[13];
    let reserved = u16::from_le_bytes([b[14], b[15]]);
    let fats = b[16];
    jump && matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        && sectors_per_cluster.is_power_of_two()
        && reserved >= 1
        && matches!(fats, 1 | 2)
}

/// One entry of a partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its number, from 1, as the kernel names it (`sdb2` is number 2).
    pub number: u32,
    /// Where it starts, in bytes from the start of the disk.
    pub start: u64,
    /// Its length in bytes.
    pub size: u64,
}

/// Which kind of partition table a disk has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// MBR (DOS), as on the NixOS SD images.
    Mbr,
    /// GUID partition table.
    Gpt,
}

/// The partitions of a disk, read from its first sectors (512-byte logical sectors, as on SD
/// cards). `None` when there is no partition table.
pub fn read_table(
    disk: &mut (impl Read + Seek),
) -> io::Result<Option<(TableKind, Vec<Partition>)>> {
    let mut mbr = [0u8; 512];
    disk.seek(SeekFrom::Start(0))?;
    if !read_full(disk, &mut mbr)? || mbr[510] != 0x55 || mbr[511] != 0xAA || is_fat(&mbr) {
        return Ok(None);
    }
    let entries: Vec<(u32, u8, u64, u64)> = (0..4u32)
        .map(|i| {
            let e = &mbr[446 + 16 * i as usize..446 + 16 * (i as usize + 1)];
            let start = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
            let len = u32::from_le_bytes([e[12], e[13], e[14], e[15]]);
            (i + 1, e[4], u64::from(start), u64::from(len))
        })
        .collect();
    if entries.iter().any(|&(_, kind, _, _)| kind == 0xEE) {
        return read_gpt(disk).map(|p| p.map(|p| (TableKind::Gpt, p)));
    }
    // A boot record with no entries at all is not a partition table (or an empty one).
    let parts: Vec<Partition> = entries
        .into_iter()
        .filter(|&(_, kind, start, len)| {
            kind != 0 && !matches!(kind, 0x05 | 0x0F | 0x85) && start > 0 && len > 0
        })
        .map(|(number, _, start, len)| Partition {
            number,
            start: start * 512,
            size: len * 512,
        })
        .collect();
    if parts.is_empty() {
        return Ok(None);
    }
    Ok(Some((TableKind::Mbr, parts)))
}

fn read_gpt(disk: &mut (impl Read + Seek)) -> io::Result<Option<Vec<Partition>>> {
    let mut header = [0u8; 92];
    disk.seek(SeekFrom::Start(512))?;
    if !read_full(disk, &mut header)? || &header[..8] != b"EFI PART" {
        return Ok(None);
    }
    let u32_at = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let mut lba = [0u8; 8];
    lba.copy_from_slice(&header[72..80]);
    let entries_lba = u64::from_le_bytes(lba);
    let count = u32_at(80).min(1024);
    let entry_size = u32_at(84);
    if !(128..=4096).contains(&entry_size) {
        return Ok(None);
    }
    let mut table = vec![0u8; count as usize * entry_size as usize];
    disk.seek(SeekFrom::Start(entries_lba * 512))?;
    if !read_full(disk, &mut table)? {
        return Ok(None);
    }
    let parts = table
        .chunks_exact(entry_size as usize)
        .zip(1u32..)
        .filter(|(e, _)| e[..16].iter().any(|&b| b != 0))
        .filter_map(|(e, number)| {
            let first = u64::from_le_bytes(e[32..40].try_into().ok()?);
            let last = u64::from_le_bytes(e[40..48].try_into().ok()?);
            (last >= first).then(|| Partition {
                number,
                start: first * 512,
                size: (last - first + 1) * 512,
            })
        })
        .collect();
    Ok(Some(parts))
}

/// Fills `buf`; `false` when the source is shorter.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    match r.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

/// Reads the first [`PROBE_LEN`] bytes at `offset` of `file` and recognises the file system there.
pub(crate) fn sniff_at(file: &mut File, offset: u64) -> io::Result<FileSystem> {
    let mut probe = vec![0u8; PROBE_LEN];
    file.seek(SeekFrom::Start(offset))?;
    let mut got = 0;
    while got < probe.len() {
        let n = file.read(&mut probe[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    probe.truncate(got);
    Ok(sniff(&probe))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn ext(label: &str, incompat: u32) -> Vec<u8> {
        let mut b = vec![0u8; PROBE_LEN];
        b[1080..1082].copy_from_slice(&0xEF53u16.to_le_bytes());
        b[1024 + 0x60..1024 + 0x64].copy_from_slice(&incompat.to_le_bytes());
        b[1024 + 0x78..1024 + 0x78 + label.len()].copy_from_slice(label.as_bytes());
        b
    }

    fn fat() -> Vec<u8> {
        let mut b = vec![0u8; PROBE_LEN];
        b[..3].copy_from_slice(&[0xEB, 0x3C, 0x90]);
        b[11..13].copy_from_slice(&512u16.to_le_bytes());
        b[13] = 4;
        b[14..16].copy_from_slice(&4u16.to_le_bytes());
        b[16] = 2;
        b[54..62].copy_from_slice(b"FAT16   ");
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    fn mbr(entries: &[(u8, u32, u32)]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        for (i, &(kind, start, len)) in entries.iter().enumerate() {
            let e = 446 + 16 * i;
            b[e + 4] = kind;
            b[e + 8..e + 12].copy_from_slice(&start.to_le_bytes());
            b[e + 12..e + 16].copy_from_slice(&len.to_le_bytes());
        }
        b[510] = 0x55;
        b[511] = 0xAA;
        b
    }

    #[test]
    fn ext_is_recognised_by_magic_not_label() {
        assert_eq!(
            sniff(&ext("NIXOS_SD", 0x2C2)),
            FileSystem::Ext {
                label: "NIXOS_SD".into(),
                needs_recovery: false
            }
        );
        assert_eq!(
            sniff(&ext("", 0x2C2 | EXT_INCOMPAT_RECOVER)),
            FileSystem::Ext {
                label: String::new(),
                needs_recovery: true
            }
        );
        assert_eq!(
            sniff(&ext("x", EXT_INCOMPAT_JOURNAL_DEV)),
            FileSystem::Unknown
        );
        assert_eq!(sniff(&[0u8; 100]), FileSystem::Unknown);
    }

    #[test]
    fn fat_boot_sector_is_not_an_mbr() {
        assert_eq!(sniff(&fat()), FileSystem::Fat);
        assert_eq!(read_table(&mut Cursor::new(fat())).expect("read"), None);
        assert_eq!(sniff(&mbr(&[(0x83, 2048, 100)])), FileSystem::Unknown);
    }

    #[test]
    fn mbr_primary_partitions() {
        let disk = mbr(&[
            (0x0C, 2048, 61440),
            (0x83, 63488, 100_000),
            (0x05, 200_000, 10),
        ]);
        let (kind, parts) = read_table(&mut Cursor::new(disk))
            .expect("read")
            .expect("table");
        assert_eq!(kind, TableKind::Mbr);
        assert_eq!(
            parts,
            vec![
                Partition {
                    number: 1,
                    start: 2048 * 512,
                    size: 61440 * 512
                },
                Partition {
                    number: 2,
                    start: 63488 * 512,
                    size: 100_000 * 512
                },
            ]
        );
        assert_eq!(read_table(&mut Cursor::new(mbr(&[]))).expect("read"), None);
        assert_eq!(
            read_table(&mut Cursor::new(vec![0u8; 10])).expect("read"),
            None
        );
    }

    #[test]
    fn gpt_partitions() {
        let mut disk = mbr(&[(0xEE, 1, 0xFFFF_FFFF)]);
        disk.resize(512 * 40, 0);
        let h = 512;
        disk[h..h + 8].copy_from_slice(b"EFI PART");
        disk[h + 72..h + 80].copy_from_slice(&2u64.to_le_bytes());
        disk[h + 80..h + 84].copy_from_slice(&128u32.to_le_bytes());
        disk[h + 84..h + 88].copy_from_slice(&128u32.to_le_bytes());
        for (i, (first, last)) in [(2048u64, 4095u64), (4096, 9999)].into_iter().enumerate() {
            let e = 1024 + 128 * i;
            disk[e] = 0xAF;
            disk[e + 32..e + 40].copy_from_slice(&first.to_le_bytes());
            disk[e + 40..e + 48].copy_from_slice(&last.to_le_bytes());
        }
        let (kind, parts) = read_table(&mut Cursor::new(disk))
            .expect("read")
            .expect("table");
        assert_eq!(kind, TableKind::Gpt);
        assert_eq!(
            parts,
            vec![
                Partition {
                    number: 1,
                    start: 2048 * 512,
                    size: 2048 * 512
                },
                Partition {
                    number: 2,
                    start: 4096 * 512,
                    size: 5904 * 512
                },
            ]
        );
    }
}

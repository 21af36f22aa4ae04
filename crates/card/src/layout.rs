//! What is on a disk or partition, from its bytes: the file system by superblock magic, and the
//! partitions of an MBR or GPT table.
//!
//! Labels and partition type codes are set by whoever made the image, so they decide nothing here:
//! an ext2/3/4 file system is recognised by the magic `0xEF53` at byte 1080, a FAT one by its boot
//! sector. That sniffing stays hand-written: it reads a handful of fields, and the file system
//! crates would parse (and trust) far more than this needs.
//!
//! Partition tables are read with crates:
//! - [`mbrman`] decodes the boot record: its `55 AA` signature and the four primary entries. An
//!   entry whose boot flag is neither 0x00 nor 0x80 makes it no MBR (as for the kernel). Only
//!   primary partitions are listed: SD card images don't use logical ones, and we don't call
//!   mbrman's walk of an extended partition's chain, which adds 32-bit LBAs from the disk unchecked.
//! - [`gpt`] parses GPT headers and partition entry arrays and checks their CRC32s. Which copy to
//!   trust is decided here, as the kernel decides it: the primary (header at LBA 1 and its entries)
//!   when both check out, else the backup (at the LBA the primary header names, or the last LBA).
//!   `gpt::GptConfig::open_from_device` is not used: it takes the backup only when the primary
//!   header is damaged, not its entries, wants a writable device, and asserts (panics) on entries
//!   of another size than 128 bytes, which are refused here before the crate reads them.
//!
//! MBR entries and GPT LBAs count logical sectors. A block device's sector size comes from sysfs (see
//! `locate`); an image file has none, so 512 bytes is assumed, or 4096 when that is where the GPT
//! header is.

use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};

use gpt::disk::LogicalBlockSize;
use gpt::header::{Header, HeaderError};

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

/// Why a partition table cannot be used. [`read_table`] returns it inside an
/// [`io::ErrorKind::InvalidData`] error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// The MBR has a protective 0xEE entry, so the disk is GPT, but no GPT header is there.
    #[error(
        "the MBR marks the disk as GPT (a protective 0xEE entry), but there is no GPT header at LBA 1 nor a backup at the end of the disk ({} sectors)",
        sizes(sector_sizes)
    )]
    NoGpt {
        /// The logical sector sizes tried, in bytes.
        sector_sizes: Vec<u32>,
    },
    /// Neither GPT copy can be used: both headers, or their partition entries, are damaged.
    #[error(
        "the GPT is damaged ({sector_size}-byte sectors): primary: {primary}; backup: {backup}"
    )]
    DamagedGpt {
        /// The logical sector size the headers were read with.
        sector_size: u32,
        /// What is wrong with the primary copy.
        primary: GptProblem,
        /// What is wrong with the backup copy.
        backup: GptProblem,
    },
    /// A logical sector size GPT is not read with.
    #[error("the disk has {0}-byte logical sectors; only 512 and 4096 are supported")]
    SectorSize(u32),
    /// mbrman could not decode the boot record.
    #[error("cannot decode the MBR: {0}")]
    Mbr(String),
}

fn sizes(sector_sizes: &[u32]) -> String {
    let sizes: Vec<String> = sector_sizes.iter().map(u32::to_string).collect();
    format!("{}-byte", sizes.join("- or "))
}

/// What is wrong with one copy of a GPT (its header and partition entries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GptProblem {
    /// No `EFI PART` signature.
    #[error("no header at LBA {lba}")]
    Missing {
        /// Where it was looked for.
        lba: u64,
    },
    /// The header's CRC32 does not match its bytes.
    #[error("the header at LBA {lba} fails its CRC32 check")]
    HeaderCrc {
        /// Where the header is.
        lba: u64,
    },
    /// The header was read but the gpt crate refused it for another reason.
    #[error("the header at LBA {lba} cannot be read: {reason}")]
    Header {
        /// Where the header is.
        lba: u64,
        /// The gpt crate's words.
        reason: String,
    },
    /// The header names another LBA as its own.
    #[error("the header at LBA {lba} says it is at LBA {claims}")]
    Misplaced {
        /// Where the header is.
        lba: u64,
        /// Where it says it is.
        claims: u64,
    },
    /// Partition entries of another size than 128 bytes.
    #[error("the header at LBA {lba} has {size}-byte partition entries (only 128 is supported)")]
    EntrySize {
        /// Where the header is.
        lba: u64,
        /// The entry size it gives.
        size: u32,
    },
    /// The partition entry array does not fit on the disk, or is absurdly long.
    #[error(
        "the header at LBA {lba} lists {count} partition entries from LBA {start}, more than the disk holds or than {GPT_MAX_ENTRIES}"
    )]
    EntriesOutside {
        /// Where the header is.
        lba: u64,
        /// How many entries it lists.
        count: u32,
        /// Where it says they start.
        start: u64,
    },
    /// The partition entries' CRC32 does not match the header's.
    #[error("the partition entries at LBA {start} are damaged ({reason})")]
    Entries {
        /// Where they start.
        start: u64,
        /// The gpt crate's words (a CRC mismatch).
        reason: String,
    },
}

/// A partition table as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Table {
    pub(crate) kind: TableKind,
    /// The logical sector size its entries were counted in, in bytes.
    pub(crate) sector_size: u32,
    pub(crate) partitions: Vec<Partition>,
    /// For a GPT read from its backup copy: what is wrong with the primary one.
    pub(crate) primary_damaged: Option<GptProblem>,
}

/// Why a partition table could not be read: the disk, or the table.
#[derive(Debug)]
pub(crate) enum ReadError {
    Io(io::Error),
    Table(TableError),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<TableError> for ReadError {
    fn from(e: TableError) -> Self {
        Self::Table(e)
    }
}

impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Io(e) => e,
            ReadError::Table(e) => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// MBR partition type of the entry protecting a GPT disk from tools that only know MBR.
const MBR_GPT_PROTECTIVE: u8 = 0xEE;
/// The only GPT partition entry size the gpt crate reads (it asserts it) and the kernel accepts.
const GPT_ENTRY_SIZE: u32 = 128;
/// More GPT partition entries than any tool writes (128 is usual): a header listing more is
/// refused before its array is read into memory.
const GPT_MAX_ENTRIES: u32 = 1 << 16;

/// The partitions of a disk or image file, read from its partition table, counting 512-byte
/// logical sectors (4096 for a GPT whose header is found there). `None` when there is no partition
/// table; a damaged one is an [`io::ErrorKind::InvalidData`] error holding a [`TableError`].
pub fn read_table(
    disk: &mut (impl Read + Seek),
) -> io::Result<Option<(TableKind, Vec<Partition>)>> {
    read_table_sized(disk, None)
}

/// [`read_table`] for a disk whose logical sector size is known (a block device's
/// `queue/logical_block_size` in sysfs); `None` guesses as for an image file.
pub fn read_table_sized(
    disk: &mut (impl Read + Seek),
    sector_size: Option<u32>,
) -> io::Result<Option<(TableKind, Vec<Partition>)>> {
    Ok(read(disk, sector_size)?.map(|t| (t.kind, t.partitions)))
}

/// The partition table of `disk`, counting `sector_size`-byte logical sectors when given.
pub(crate) fn read(
    disk: &mut (impl Read + Seek),
    sector_size: Option<u32>,
) -> Result<Option<Table>, ReadError> {
    let mut boot = [0u8; 512];
    disk.seek(SeekFrom::Start(0))?;
    if !read_full(disk, &mut boot)? || is_fat(&boot) {
        return Ok(None);
    }
    let mbr = match mbrman::MBRHeader::read_from(&mut Cursor::new(&boot[..])) {
        Ok(mbr) => mbr,
        // No boot signature, or a boot flag no MBR has: not a partition table.
        Err(mbrman::Error::InvalidSignature | mbrman::Error::InvalidBootFlag) => return Ok(None),
        Err(e) => return Err(TableError::Mbr(e.to_string()).into()),
    };
    if mbr.iter().any(|(_, e)| e.sys == MBR_GPT_PROTECTIVE) {
        return read_gpt(disk, sector_size).map(Some);
    }
    let sector = sector_size.unwrap_or(512);
    let partitions: Vec<Partition> = mbr
        .iter()
        .filter(|(_, e)| e.is_used() && !e.is_extended() && e.starting_lba > 0 && e.sectors > 0)
        .filter_map(|(number, e)| {
            Some(Partition {
                number: u32::try_from(number).ok()?,
                start: u64::from(e.starting_lba) * u64::from(sector),
                size: u64::from(e.sectors) * u64::from(sector),
            })
        })
        .collect();
    // A boot record with no entries at all is not a partition table (or an empty one).
    if partitions.is_empty() {
        return Ok(None);
    }
    Ok(Some(Table {
        kind: TableKind::Mbr,
        sector_size: sector,
        partitions,
        primary_damaged: None,
    }))
}

/// What one logical sector size finds.
enum Gpt {
    Found(Table),
    /// No header at all, neither primary nor backup.
    Absent,
    Damaged(TableError),
}

fn read_gpt(disk: &mut (impl Read + Seek), sector_size: Option<u32>) -> Result<Table, ReadError> {
    let tried = match sector_size {
        Some(size) => vec![
            LogicalBlockSize::try_from(u64::from(size))
                .map_err(|_| TableError::SectorSize(size))?,
        ],
        None => vec![LogicalBlockSize::Lb512, LogicalBlockSize::Lb4096],
    };
    let len = disk.seek(SeekFrom::End(0))?;
    let mut damaged = None;
    for &lb in &tried {
        match read_gpt_sized(disk, lb, len)? {
            Gpt::Found(table) => return Ok(table),
            Gpt::Absent => {}
            Gpt::Damaged(e) => {
                damaged.get_or_insert(e);
            }
        }
    }
    Err(damaged
        .unwrap_or_else(|| TableError::NoGpt {
            sector_sizes: tried.iter().map(|lb| sector_bytes(*lb)).collect(),
        })
        .into())
}

fn sector_bytes(lb: LogicalBlockSize) -> u32 {
    match lb {
        LogicalBlockSize::Lb512 => 512,
        LogicalBlockSize::Lb4096 => 4096,
    }
}

/// The GPT with `lb`-byte sectors: the primary copy, else the backup.
fn read_gpt_sized(
    disk: &mut (impl Read + Seek),
    lb: LogicalBlockSize,
    len: u64,
) -> io::Result<Gpt> {
    let last_lba = (len / lb.as_u64()).saturating_sub(1);
    let found = |partitions, primary_damaged| {
        Gpt::Found(Table {
            kind: TableKind::Gpt,
            sector_size: sector_bytes(lb),
            partitions,
            primary_damaged,
        })
    };
    let (primary, backup_lba) = match gpt_header(disk, lb, 1, len)? {
        Ok(header) => match gpt_entries(disk, lb, &header)? {
            Ok(partitions) => return Ok(found(partitions, None)),
            Err(problem) => (problem, header.backup_lba),
        },
        // A damaged header's word on where the backup is is not to be trusted.
        Err(problem) => (problem, last_lba),
    };
    let backup = match gpt_header(disk, lb, backup_lba, len)? {
        Ok(header) => match gpt_entries(disk, lb, &header)? {
            Ok(partitions) => return Ok(found(partitions, Some(primary))),
            Err(problem) => problem,
        },
        Err(problem) => problem,
    };
    Ok(match (&primary, &backup) {
        (GptProblem::Missing { .. }, GptProblem::Missing { .. }) => Gpt::Absent,
        _ => Gpt::Damaged(TableError::DamagedGpt {
            sector_size: sector_bytes(lb),
            primary,
            backup,
        }),
    })
}

/// The GPT header at `lba`, checked by the gpt crate (signature, CRC32) and here (that it is where
/// it says, and that its partition entries are of a size and number the crate can read).
fn gpt_header(
    disk: &mut (impl Read + Seek),
    lb: LogicalBlockSize,
    lba: u64,
    len: u64,
) -> io::Result<Result<Header, GptProblem>> {
    let size = lb.as_u64();
    let Some(at) = lba
        .checked_mul(size)
        .filter(|at| at.checked_add(size).is_some_and(|end| end <= len))
    else {
        return Ok(Err(GptProblem::Missing { lba }));
    };
    // The crate reads a header at LBA 1 of a device (or at the last LBA, as the backup, which is
    // not always where the primary header says): hand it the sector at `lba` in that place.
    let mut sectors = vec![0u8; 2 * lb.as_usize()];
    disk.seek(SeekFrom::Start(at))?;
    disk.read_exact(&mut sectors[lb.as_usize()..])?;
    let header = match gpt::header::read_header_from_arbitrary_device(&mut Cursor::new(sectors), lb)
    {
        Ok(header) => header,
        Err(HeaderError::InvalidGptSignature) => return Ok(Err(GptProblem::Missing { lba })),
        Err(HeaderError::InvalidCRC32Checksum) => return Ok(Err(GptProblem::HeaderCrc { lba })),
        Err(HeaderError::Io(e)) => return Err(e),
        Err(e) => {
            return Ok(Err(GptProblem::Header {
                lba,
                reason: e.to_string(),
            }));
        }
    };
    if header.current_lba != lba {
        return Ok(Err(GptProblem::Misplaced {
            lba,
            claims: header.current_lba,
        }));
    }
    if header.part_size != GPT_ENTRY_SIZE {
        return Ok(Err(GptProblem::EntrySize {
            lba,
            size: header.part_size,
        }));
    }
    let fits = header
        .part_start
        .checked_mul(size)
        .and_then(|start| {
            start.checked_add(u64::from(header.num_parts) * u64::from(GPT_ENTRY_SIZE))
        })
        .is_some_and(|end| end <= len);
    if !fits || header.num_parts > GPT_MAX_ENTRIES {
        return Ok(Err(GptProblem::EntriesOutside {
            lba,
            count: header.num_parts,
            start: header.part_start,
        }));
    }
    Ok(Ok(header))
}

/// The used partition entries `header` lists, once the gpt crate has checked their CRC32.
fn gpt_entries(
    disk: &mut (impl Read + Seek),
    lb: LogicalBlockSize,
    header: &Header,
) -> io::Result<Result<Vec<Partition>, GptProblem>> {
    match gpt::partition::file_read_partitions(disk, header, lb) {
        Ok(entries) => Ok(Ok(entries
            .into_iter()
            .filter(|(_, p)| p.is_used())
            .filter_map(|(number, p)| {
                Some(Partition {
                    number,
                    start: p.bytes_start(lb).ok()?,
                    // Fails for an entry ending before it starts: it is skipped.
                    size: p.bytes_len(lb).ok()?,
                })
            })
            .collect())),
        // The crate's own complaint (a CRC mismatch; the bounds were checked before), not the OS's.
        Err(e) if e.kind() == io::ErrorKind::Other && e.raw_os_error().is_none() => {
            Ok(Err(GptProblem::Entries {
                start: header.part_start,
                reason: e.to_string(),
            }))
        }
        Err(e) => Err(e),
    }
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

    /// A protective MBR and a GPT written by the gpt crate on a disk of `total` sectors of `lb`,
    /// with Linux partitions at `(first LBA, sectors)`.
    fn gpt_disk(lb: LogicalBlockSize, total: u64, parts: &[(u64, u64)]) -> Vec<u8> {
        let len = usize::try_from(total * lb.as_u64()).expect("size");
        let mut dev = Cursor::new(vec![0u8; len]);
        gpt::mbr::ProtectiveMBR::with_lb_size(u32::try_from(total - 1).expect("size"))
            .overwrite_lba0(&mut dev)
            .expect("protective MBR");
        let mut disk = gpt::GptConfig::new()
            .writable(true)
            .logical_block_size(lb)
            .create_from_device(dev, None)
            .expect("GPT");
        for (id, &(first, sectors)) in (1u32..).zip(parts) {
            disk.add_partition_at("p", id, first, sectors, gpt::partition_types::LINUX_FS, 0)
                .expect("partition");
        }
        disk.write().expect("write").into_inner()
    }

    /// 8 MiB of 512-byte sectors: the backup header is at LBA 16383, its entries from 16351.
    fn gpt_512() -> Vec<u8> {
        gpt_disk(
            LogicalBlockSize::Lb512,
            16384,
            &[(2048, 2048), (4096, 5904)],
        )
    }

    fn gpt_512_partitions() -> Vec<Partition> {
        vec![
            Partition {
                number: 1,
                start: 1_048_576,
                size: 1_048_576,
            },
            Partition {
                number: 2,
                start: 2_097_152,
                size: 3_022_848,
            },
        ]
    }

    fn read_vec(disk: Vec<u8>, sector_size: Option<u32>) -> Result<Option<Table>, ReadError> {
        read(&mut Cursor::new(disk), sector_size)
    }

    fn table_error(result: Result<Option<Table>, ReadError>) -> TableError {
        match result {
            Err(ReadError::Table(e)) => e,
            other => panic!("expected a table error, got {other:?}"),
        }
    }

    #[test]
    fn gpt_partitions() {
        let (kind, parts) = read_table(&mut Cursor::new(gpt_512()))
            .expect("read")
            .expect("table");
        assert_eq!(kind, TableKind::Gpt);
        assert_eq!(parts, gpt_512_partitions());
        let table = read_vec(gpt_512(), None).expect("read").expect("table");
        assert_eq!(table.sector_size, 512);
        assert_eq!(table.primary_damaged, None);
    }

    #[test]
    fn gpt_with_4096_byte_sectors() {
        // 8 MiB of 4096-byte sectors: the GPT header is at byte 4096, not 512.
        let disk = || gpt_disk(LogicalBlockSize::Lb4096, 2048, &[(256, 512), (768, 1024)]);
        assert_eq!(&disk()[4096..4104], b"EFI PART");
        let expected = vec![
            Partition {
                number: 1,
                start: 1_048_576,
                size: 2_097_152,
            },
            Partition {
                number: 2,
                start: 3_145_728,
                size: 4_194_304,
            },
        ];
        for sector_size in [None, Some(4096)] {
            let table = read_vec(disk(), sector_size).expect("read").expect("table");
            assert_eq!(table.kind, TableKind::Gpt);
            assert_eq!(table.sector_size, 4096);
            assert_eq!(table.partitions, expected);
            assert_eq!(table.primary_damaged, None);
        }
        // Told (wrongly) that the sectors are 512 bytes, no GPT is found: nothing is guessed.
        assert_eq!(
            table_error(read_vec(disk(), Some(512))),
            TableError::NoGpt {
                sector_sizes: vec![512]
            }
        );
        assert_eq!(
            table_error(read_vec(disk(), Some(2048))),
            TableError::SectorSize(2048)
        );
    }

    #[test]
    fn damaged_primary_header_falls_back_to_the_backup() {
        let mut disk = gpt_512();
        // The primary header now points at entries that aren't there (LBA 40, all zero), without
        // its CRC being updated: read with the CRC unchecked, the disk would have no partitions.
        disk[512 + 72..512 + 80].copy_from_slice(&40u64.to_le_bytes());
        let table = read_vec(disk, None).expect("read").expect("table");
        assert_eq!(
            table.primary_damaged,
            Some(GptProblem::HeaderCrc { lba: 1 })
        );
        assert_eq!(table.partitions, gpt_512_partitions());
    }

    #[test]
    fn both_gpt_headers_damaged_is_refused() {
        let mut disk = gpt_512();
        disk[512 + 72] ^= 0xFF;
        let backup = 16383 * 512;
        assert_eq!(&disk[backup..backup + 8], b"EFI PART");
        disk[backup + 72] ^= 0xFF;
        assert_eq!(
            table_error(read_vec(disk.clone(), None)),
            TableError::DamagedGpt {
                sector_size: 512,
                primary: GptProblem::HeaderCrc { lba: 1 },
                backup: GptProblem::HeaderCrc { lba: 16383 },
            }
        );
        let err = read_table(&mut Cursor::new(disk)).expect_err("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(
            err.to_string(),
            "the GPT is damaged (512-byte sectors): primary: the header at LBA 1 fails its CRC32 \
             check; backup: the header at LBA 16383 fails its CRC32 check"
        );
    }

    #[test]
    fn damaged_partition_entries_fall_back_to_the_backup_then_are_refused() {
        let mut disk = gpt_512();
        // A byte of partition 1's name in the primary entries (LBA 2).
        disk[1024 + 56] ^= 0xFF;
        let table = read_vec(disk.clone(), None).expect("read").expect("table");
        assert_eq!(table.partitions, gpt_512_partitions());
        let Some(GptProblem::Entries { start: 2, reason }) = table.primary_damaged else {
            panic!(
                "primary entries reported damaged: {:?}",
                table.primary_damaged
            );
        };
        assert!(reason.contains("CRC"), "{reason}");

        // The same byte in the backup's entries (LBA 16351).
        disk[16351 * 512 + 56] ^= 0xFF;
        let TableError::DamagedGpt {
            primary: GptProblem::Entries { start: 2, .. },
            backup: GptProblem::Entries { start: 16351, .. },
            ..
        } = table_error(read_vec(disk.clone(), None))
        else {
            panic!("both entry arrays reported damaged");
        };
        let err = read_table(&mut Cursor::new(disk)).expect_err("refused");
        assert!(
            err.to_string()
                .contains("backup: the partition entries at LBA 16351 are damaged"),
            "{err}"
        );
    }

    #[test]
    fn gpt_entries_of_another_size_are_refused_without_a_panic() {
        // A primary header with a valid CRC announcing 256-byte entries (the gpt crate would
        // assert): the backup, still of 128-byte entries, is used.
        let mut dev = Cursor::new(gpt_512());
        let primary = gpt::GptConfig::new()
            .open_from_device(&mut dev)
            .expect("open")
            .primary_header()
            .expect("primary")
            .clone();
        gpt::header::HeaderBuilder::from_header(&primary)
            .part_size(256)
            .build(LogicalBlockSize::Lb512)
            .expect("header")
            .write_primary(&mut dev, LogicalBlockSize::Lb512)
            .expect("write");
        let table = read_vec(dev.into_inner(), None)
            .expect("read")
            .expect("table");
        assert_eq!(
            table.primary_damaged,
            Some(GptProblem::EntrySize { lba: 1, size: 256 })
        );
        assert_eq!(table.partitions, gpt_512_partitions());
    }

    #[test]
    fn the_protective_0xee_entry_makes_it_gpt() {
        let disk = gpt_512();
        assert_eq!(disk[446 + 4], 0xEE, "the protective entry");
        let table = read_vec(disk.clone(), None).expect("read").expect("table");
        assert_eq!(table.kind, TableKind::Gpt);

        // The same disk with the entry's type changed: an MBR with one partition from LBA 1.
        let mut retyped = disk;
        retyped[446 + 4] = 0x83;
        let table = read_vec(retyped, None).expect("read").expect("table");
        assert_eq!(table.kind, TableKind::Mbr);
        assert_eq!(
            table.partitions,
            vec![Partition {
                number: 1,
                start: 512,
                size: 16383 * 512
            }]
        );

        // A protective entry without any GPT behind it is reported, not read as an MBR.
        assert_eq!(
            table_error(read_vec(mbr(&[(0xEE, 1, 7)]), None)),
            TableError::NoGpt {
                sector_sizes: vec![512, 4096]
            }
        );
        let err = read_table(&mut Cursor::new(mbr(&[(0xEE, 1, 7)]))).expect_err("no GPT");
        assert!(
            err.to_string().contains("(512- or 4096-byte sectors)"),
            "{err}"
        );
    }

    #[test]
    fn mbr_with_an_impossible_boot_flag_is_no_table() {
        let mut disk = mbr(&[(0x83, 2048, 100)]);
        disk[446] = 0x12;
        assert_eq!(read_table(&mut Cursor::new(disk)).expect("read"), None);
    }

    #[test]
    fn mbr_counts_the_sectors_it_is_told() {
        let table = read_vec(mbr(&[(0x83, 256, 1000)]), Some(4096))
            .expect("read")
            .expect("table");
        assert_eq!(
            table.partitions,
            vec![Partition {
                number: 1,
                start: 1_048_576,
                size: 4_096_000
            }]
        );
    }
}

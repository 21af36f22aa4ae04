//! Partition tables written by real tools (util-linux's `sfdisk` and `fdisk`, from the fdisk
//! package: scripts/test installs it), read back with the card crate's public API, also after
//! damaging them.
//!
//! Every image is 16 MiB; the expected offsets and sizes are written out in bytes.

use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use card::{GptProblem, Partition, TableError, TableKind, read_table, read_table_sized};

const MIB: u64 = 1 << 20;

/// A 16 MiB image file partitioned by `program args… image`, fed `script` on stdin.
fn partitioned(dir: &Path, program: &str, args: &[&str], script: &str) -> PathBuf {
    let image = dir.join("disk.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(16 * MIB))
        .expect("image");
    let mut child = Command::new(program)
        .args(args)
        .arg(&image)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program} (scripts/test installs fdisk): {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("script");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{program}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    image
}

fn sfdisk(dir: &Path, script: &str) -> Vec<u8> {
    std::fs::read(partitioned(dir, "sfdisk", &["-q"], script)).expect("read image")
}

/// Two Linux partitions at 1 MiB (4 MiB long) and 5 MiB (10 MiB long), 512-byte sectors.
fn sfdisk_gpt(dir: &Path) -> Vec<u8> {
    sfdisk(
        dir,
        "label: gpt\nstart=2048, size=8192, type=L\nstart=10240, size=20480, type=L\n",
    )
}

fn sfdisk_gpt_partitions() -> Vec<Partition> {
    vec![
        Partition {
            number: 1,
            start: MIB,
            size: 4 * MIB,
        },
        Partition {
            number: 2,
            start: 5 * MIB,
            size: 10 * MIB,
        },
    ]
}

fn table(disk: &[u8], sector_size: Option<u32>) -> (TableKind, Vec<Partition>) {
    read_table_sized(&mut Cursor::new(disk), sector_size)
        .expect("read")
        .expect("a partition table")
}

/// The [`TableError`] inside the error of a refused table.
fn refusal(disk: &[u8], sector_size: Option<u32>) -> (String, TableError) {
    let err = read_table_sized(&mut Cursor::new(disk), sector_size).expect_err("refused");
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    let message = err.to_string();
    let inner = err
        .into_inner()
        .expect("an inner error")
        .downcast::<TableError>()
        .expect("a TableError");
    (message, *inner)
}

#[test]
fn sfdisk_gpt_behind_its_protective_mbr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = sfdisk_gpt(dir.path());
    assert_eq!(disk[446 + 4], 0xEE, "sfdisk wrote a protective MBR entry");
    assert_eq!(
        read_table(&mut Cursor::new(&disk)).expect("read"),
        Some((TableKind::Gpt, sfdisk_gpt_partitions()))
    );
    assert_eq!(
        table(&disk, Some(512)),
        (TableKind::Gpt, sfdisk_gpt_partitions())
    );
}

#[test]
fn fdisk_gpt_with_4096_byte_sectors() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 4096 sectors of 4096 bytes: partitions at sectors 256-767 and 768-2815.
    let image = partitioned(
        dir.path(),
        "fdisk",
        &["-b", "4096"],
        "g\nn\n1\n256\n767\nn\n2\n768\n2815\nw\n",
    );
    let disk = std::fs::read(image).expect("read image");
    assert_eq!(&disk[4096..4104], b"EFI PART", "the header is in sector 1");
    let expected = vec![
        Partition {
            number: 1,
            start: MIB,
            size: 2 * MIB,
        },
        Partition {
            number: 2,
            start: 3 * MIB,
            size: 8 * MIB,
        },
    ];
    assert_eq!(
        read_table(&mut Cursor::new(&disk)).expect("read"),
        Some((TableKind::Gpt, expected.clone()))
    );
    assert_eq!(table(&disk, Some(4096)), (TableKind::Gpt, expected));
    // A device that says its sectors are 512 bytes does not have this GPT: nothing is guessed.
    let (message, err) = refusal(&disk, Some(512));
    assert_eq!(
        err,
        TableError::NoGpt {
            sector_sizes: vec![512]
        }
    );
    assert!(message.contains("no GPT header"), "{message}");
}

#[test]
fn sfdisk_gpt_with_a_damaged_header_uses_the_backup_then_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut disk = sfdisk_gpt(dir.path());
    // The primary header's first-entries LBA (2) now says 40, where there are no entries, and
    // its CRC32 no longer matches: the backup at the last LBA (32767) gives the partitions.
    assert_eq!(&disk[512 + 72..512 + 80], &2u64.to_le_bytes());
    disk[512 + 72..512 + 80].copy_from_slice(&40u64.to_le_bytes());
    assert_eq!(
        table(&disk, None),
        (TableKind::Gpt, sfdisk_gpt_partitions())
    );

    let backup = 32767 * 512;
    assert_eq!(&disk[backup..backup + 8], b"EFI PART");
    disk[backup + 72] ^= 0x01;
    let (message, err) = refusal(&disk, None);
    assert_eq!(
        err,
        TableError::DamagedGpt {
            sector_size: 512,
            primary: GptProblem::HeaderCrc { lba: 1 },
            backup: GptProblem::HeaderCrc { lba: 32767 },
        }
    );
    assert_eq!(
        message,
        "the GPT is damaged (512-byte sectors): primary: the header at LBA 1 fails its CRC32 check; \
         backup: the header at LBA 32767 fails its CRC32 check"
    );
}

#[test]
fn sfdisk_gpt_with_damaged_entries_uses_the_backup_then_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut disk = sfdisk_gpt(dir.path());
    // Partition 2's last LBA in the primary entries (LBA 2, entry 2 at byte 128): 30719 -> 30975.
    let last = 1024 + 128 + 40;
    assert_eq!(&disk[last..last + 8], &30719u64.to_le_bytes());
    disk[last + 1] ^= 0x01;
    assert_eq!(
        table(&disk, None),
        (TableKind::Gpt, sfdisk_gpt_partitions())
    );

    // The backup entries sit just before the backup header: 128 entries of 128 bytes, LBA 32735.
    let backup_last = 32735 * 512 + 128 + 40;
    assert_eq!(&disk[backup_last..backup_last + 8], &30719u64.to_le_bytes());
    disk[backup_last + 1] ^= 0x01;
    let (message, err) = refusal(&disk, None);
    assert!(
        matches!(
            err,
            TableError::DamagedGpt {
                primary: GptProblem::Entries { start: 2, .. },
                backup: GptProblem::Entries { start: 32735, .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        message.contains("primary: the partition entries at LBA 2 are damaged")
            && message.contains("CRC"),
        "{message}"
    );
}

#[test]
fn an_mbr_entry_of_type_0xee_means_gpt() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A DOS label whose only entry has the GPT-protective type, and no GPT behind it.
    let disk = sfdisk(dir.path(), "label: dos\nstart=1, size=32767, type=ee\n");
    assert_eq!(disk[446 + 4], 0xEE);
    let (message, err) = refusal(&disk, None);
    assert_eq!(
        err,
        TableError::NoGpt {
            sector_sizes: vec![512, 4096]
        }
    );
    assert!(message.contains("protective 0xEE entry"), "{message}");

    // The same entry as a Linux one is an MBR partition.
    let disk = sfdisk(dir.path(), "label: dos\nstart=2048, size=30720, type=83\n");
    assert_eq!(
        table(&disk, None),
        (
            TableKind::Mbr,
            vec![Partition {
                number: 1,
                start: MIB,
                size: 15 * MIB
            }]
        )
    );
}

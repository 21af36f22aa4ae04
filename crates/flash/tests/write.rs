//! Writing raw and zstd images to regular files and loop devices, catching bad writes, and opening
//! targets safely: never the image under another name, never a block device something holds.

mod support;

use std::io::{self, Write};

use flash::{
    Hashing, Image, NoProgress, SystemView, Target, VerifyError, WriteError, verify, write_image,
    write_to,
};
use support::{Loop, Mounted, Swap, backing_file, image_bytes, write_image as make_image};

/// The target as `pifleet flash` passes it: judged by its path on the running system.
fn judged(path: &std::path::Path) -> Target {
    SystemView::live().target(path).expect("target")
}

/// How a block device the kernel won't open exclusively is reported.
fn busy(device: &std::path::Path) -> String {
    format!(
        "cannot write {}: it is in use: mounted, swap, or held by another program; nothing was written",
        device.display()
    )
}

/// Whether the first KiB of a card is still zero: ext4 and mkswap leave it alone, and every test
/// image starts with pseudo-random bytes there, so a write would show.
fn untouched_start(backing: &std::path::Path) -> bool {
    let on_card = std::fs::read(backing).expect("read the card");
    on_card[..1024].iter().all(|b| *b == 0)
}

const LEN: usize = 9 * 1024 * 1024 + 1234; // not a multiple of the chunk or of a sector

#[test]
fn raw_and_zstd_images_to_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 1);
    for (name, zstd) in [("a.img", false), ("a.img.zst", true)] {
        let image = Image::open(make_image(dir.path(), name, &bytes, zstd)).expect("open");
        assert_eq!(image.size(), Some(LEN as u64));
        let target = dir.path().join(format!("{name}.out"));
        let mut calls = Vec::new();
        let written = write_image(
            &image,
            &judged(&target),
            Hashing::Sha256,
            &mut |done, total| calls.push((done, total)),
        )
        .expect("write");
        assert_eq!(written.len, LEN as u64);
        assert_eq!(std::fs::read(&target).expect("read"), bytes, "{name}");
        assert_eq!(calls.last(), Some(&(LEN as u64, Some(LEN as u64))));
        assert_eq!(calls.len(), LEN.div_ceil(flash::CHUNK));
        verify(&target, &written, &mut NoProgress).expect("verify");
    }
}

#[test]
fn a_streamed_zstd_image_of_unknown_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 8);
    let path = dir.path().join("streamed.img.zst");
    std::fs::write(&path, zstd::encode_all(&bytes[..], 3).expect("encode")).expect("write");
    let image = Image::open(&path).expect("open");
    assert_eq!(image.size(), None);
    let target = dir.path().join("out");
    let mut totals = Vec::new();
    let written = write_image(
        &image,
        &judged(&target),
        Hashing::Sha256,
        &mut |_, total| totals.push(total),
    )
    .expect("write");
    assert!(totals.iter().all(Option::is_none));
    assert_eq!(std::fs::read(&target).expect("read"), bytes);
    verify(&target, &written, &mut NoProgress).expect("verify");
}

#[test]
fn a_longer_existing_file_is_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(100_000, 2);
    let image = Image::open(make_image(dir.path(), "a.img", &bytes, false)).expect("open");
    let target = dir.path().join("out");
    std::fs::write(&target, vec![7u8; 300_000]).expect("prefill");
    write_image(&image, &judged(&target), Hashing::Sha256, &mut NoProgress).expect("write");
    assert_eq!(std::fs::read(&target).expect("read"), bytes);
}

#[test]
fn raw_and_zstd_images_to_a_loop_device() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 3);
    let backing = backing_file(dir.path(), "card", 16 << 20);
    let Some(card) = Loop::attach(&backing) else {
        return;
    };
    for (name, zstd) in [("a.img", false), ("a.img.zst", true)] {
        let image = Image::open(make_image(dir.path(), name, &bytes, zstd)).expect("open");
        let written = write_image(
            &image,
            &judged(&card.device),
            Hashing::Sha256,
            &mut NoProgress,
        )
        .expect("write");
        verify(&card.device, &written, &mut NoProgress).expect("verify");
        let on_card = std::fs::read(&backing).expect("read backing file");
        assert_eq!(&on_card[..LEN], &bytes[..], "{name}");
        // Scribble over the card between rounds so the second round proves its own write.
        std::fs::write(&backing, vec![0xAAu8; 16 << 20]).expect("scribble");
    }
}

/// A writer that corrupts one byte on its way to the target, like a failing card.
struct FlipOneByte<W> {
    inner: W,
    at: u64,
    pos: u64,
}

impl<W: Write> Write for FlipOneByte<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut owned = buf.to_vec();
        if (self.pos..self.pos + buf.len() as u64).contains(&self.at) {
            owned[(self.at - self.pos) as usize] ^= 0x01;
        }
        let n = self.inner.write(&owned)?;
        self.pos += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[test]
fn verification_catches_a_corrupted_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 4);
    let image = Image::open(make_image(dir.path(), "a.img.zst", &bytes, true)).expect("open");
    let target = dir.path().join("out");
    let mut out = FlipOneByte {
        inner: std::fs::File::create(&target).expect("create"),
        at: 5_000_000,
        pos: 0,
    };
    let written = write_to(&image, &mut out, Hashing::Sha256, &mut NoProgress).expect("write");
    drop(out);
    let err = verify(&target, &written, &mut NoProgress).expect_err("must not verify");
    assert!(matches!(err, VerifyError::Mismatch { .. }), "{err}");
    assert!(err.to_string().contains("verification failed"), "{err}");
}

#[test]
fn verification_catches_a_card_changed_after_writing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 5);
    let backing = backing_file(dir.path(), "card", 16 << 20);
    let Some(card) = Loop::attach(&backing) else {
        return;
    };
    let image = Image::open(make_image(dir.path(), "a.img", &bytes, false)).expect("open");
    let written = write_image(
        &image,
        &judged(&card.device),
        Hashing::Sha256,
        &mut NoProgress,
    )
    .expect("write");
    // Corrupt the medium behind the block device's back: only a real read-back notices.
    let mut on_card = std::fs::read(&backing).expect("read");
    on_card[LEN - 1] ^= 0xFF;
    std::fs::write(&backing, &on_card).expect("corrupt");
    let err = verify(&card.device, &written, &mut NoProgress).expect_err("must not verify");
    assert!(matches!(err, VerifyError::Mismatch { .. }), "{err}");
}

#[test]
fn corrupt_zstd_data_fails_cleanly_mid_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 6);
    let mut packed = support::compress(&bytes);
    // Damage a byte deep inside the compressed data: the structure walk still passes, decoding fails.
    let mid = packed.len() * 3 / 4;
    packed[mid] ^= 0x55;
    packed[mid + 1] ^= 0x55;
    let path = dir.path().join("bad.img.zst");
    std::fs::write(&path, &packed).expect("write");
    let image = Image::open(&path).expect("the structure is intact");
    let target = dir.path().join("out");
    let err = write_image(&image, &judged(&target), Hashing::Sha256, &mut NoProgress)
        .expect_err("must fail");
    assert!(
        matches!(
            err,
            WriteError::Decode { .. } | WriteError::SizeMismatch { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("partially written"), "{err}");
}

#[test]
fn a_device_too_small_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 7);
    let backing = backing_file(dir.path(), "card", 4 << 20);
    let Some(card) = Loop::attach(&backing) else {
        return;
    };
    let image = Image::open(make_image(dir.path(), "a.img", &bytes, false)).expect("open");
    let err = write_image(
        &image,
        &judged(&card.device),
        Hashing::Sha256,
        &mut NoProgress,
    )
    .expect_err("too small");
    assert!(matches!(err, WriteError::Target { .. }), "{err}");
}

#[test]
fn an_unhashed_write_cannot_be_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(100_000, 10);
    let image = Image::open(make_image(dir.path(), "a.img.zst", &bytes, true)).expect("open");
    let target = dir.path().join("out");
    let written =
        write_image(&image, &judged(&target), Hashing::Off, &mut NoProgress).expect("write");
    assert_eq!(written.sha256, None);
    assert_eq!(std::fs::read(&target).expect("read"), bytes);
    let err = verify(&target, &written, &mut NoProgress).expect_err("no hash");
    assert!(matches!(err, VerifyError::NotHashed { .. }), "{err}");
}

#[test]
fn a_target_shorter_than_the_write_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 11);
    let image = Image::open(make_image(dir.path(), "a.img", &bytes, false)).expect("open");
    let target = dir.path().join("out");
    let written =
        write_image(&image, &judged(&target), Hashing::Sha256, &mut NoProgress).expect("write");
    std::fs::File::options()
        .write(true)
        .open(&target)
        .and_then(|f| f.set_len(LEN as u64 - 10))
        .expect("shorten");
    let err = verify(&target, &written, &mut NoProgress).expect_err("short");
    assert!(
        matches!(err, VerifyError::Short { found, .. } if found == LEN as u64 - 10),
        "{err}"
    );
}

#[test]
fn the_image_under_another_name_is_never_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(LEN, 12);
    for zstd in [false, true] {
        let path = make_image(dir.path(), "disk.img", &bytes, zstd);
        let stored = std::fs::read(&path).expect("read");
        let image = Image::open(&path).expect("open");
        let link = dir.path().join("link.img");
        let symlink = dir.path().join("symlink.img");
        let _ = std::fs::remove_file(&link);
        let _ = std::fs::remove_file(&symlink);
        std::fs::hard_link(&path, &link).expect("hard link");
        std::os::unix::fs::symlink(&path, &symlink).expect("symlink");
        for target in [&path, &link, &symlink] {
            let err = write_image(&image, &judged(target), Hashing::Sha256, &mut NoProgress)
                .expect_err("the image itself");
            assert!(matches!(err, WriteError::TheImage { .. }), "{err}");
            assert_eq!(
                err.to_string(),
                format!(
                    "refusing to write {}: it is the image file itself (the same inode on the same device); nothing was written",
                    target.display()
                )
            );
            assert_eq!(std::fs::read(&path).expect("read"), stored, "zstd: {zstd}");
        }
    }
}

#[test]
fn a_path_that_is_new_is_created_and_an_existing_file_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(100_000, 13);
    let image = Image::open(make_image(dir.path(), "a.img", &bytes, false)).expect("open");
    let target = dir.path().join("new");
    write_image(&image, &judged(&target), Hashing::Off, &mut NoProgress).expect("create");
    assert_eq!(std::fs::read(&target).expect("read"), bytes);
    // Same bytes, other inode: a copy of the image is not the image, and is overwritten.
    let copy = dir.path().join("copy");
    std::fs::copy(image.path(), &copy).expect("copy");
    write_image(&image, &judged(&copy), Hashing::Off, &mut NoProgress).expect("replace");
    assert_eq!(std::fs::read(&copy).expect("read"), bytes);
}

#[test]
fn a_mounted_loop_device_is_busy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backing = backing_file(dir.path(), "card", 16 << 20);
    let Some(card) = Loop::attach(&backing) else {
        return;
    };
    let Some(mounted) = support::Mounted::ext4(&card.device) else {
        return;
    };
    let image = Image::open(make_image(
        dir.path(),
        "a.img",
        &image_bytes(LEN, 14),
        false,
    ))
    .expect("open");
    let err = write_image(
        &image,
        &judged(&card.device),
        Hashing::Sha256,
        &mut NoProgress,
    )
    .expect_err("busy");
    assert!(matches!(err, WriteError::Busy { .. }), "{err}");
    assert_eq!(err.to_string(), busy(&card.device));
    assert!(untouched_start(&backing));
    // The mount, nothing else, was in the way.
    drop(mounted);
    write_image(
        &image,
        &judged(&card.device),
        Hashing::Sha256,
        &mut NoProgress,
    )
    .expect("write");
    assert!(!untouched_start(&backing));
}

#[test]
fn a_disk_whose_partition_is_mounted_is_busy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backing = backing_file(dir.path(), "card", 16 << 20);
    let Some((card, part)) = Loop::attach_partitioned(&backing) else {
        return;
    };
    let Some(_mounted) = Mounted::ext4(&part) else {
        return;
    };
    let image = Image::open(make_image(
        dir.path(),
        "a.img",
        &image_bytes(LEN, 15),
        false,
    ))
    .expect("open");
    let err = write_image(
        &image,
        &judged(&card.device),
        Hashing::Sha256,
        &mut NoProgress,
    )
    .expect_err("busy");
    assert!(matches!(err, WriteError::Busy { .. }), "{err}");
    assert_eq!(err.to_string(), busy(&card.device));
    let table = std::fs::read(&backing).expect("read");
    assert_eq!(
        &table[510..512],
        &[0x55, 0xAA],
        "the partition table is still there"
    );
}

#[test]
fn active_swap_is_busy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backing = backing_file(dir.path(), "card", 16 << 20);
    let Some(card) = Loop::attach(&backing) else {
        return;
    };
    let Some(_swap) = Swap::on(&card.device) else {
        return;
    };
    let image = Image::open(make_image(
        dir.path(),
        "a.img",
        &image_bytes(LEN, 16),
        false,
    ))
    .expect("open");
    let err = write_image(
        &image,
        &judged(&card.device),
        Hashing::Sha256,
        &mut NoProgress,
    )
    .expect_err("busy");
    assert!(matches!(err, WriteError::Busy { .. }), "{err}");
    assert!(untouched_start(&backing));
}

#[test]
fn a_device_another_program_holds_exclusively_is_busy() {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let backing = backing_file(dir.path(), "card", 16 << 20);
    let Some(card) = Loop::attach(&backing) else {
        return;
    };
    // Another opener's exclusive claim, as a second flasher or a partitioning tool would hold it.
    // The kernel's holder is the open file, so a second open in this process is turned away just
    // like one from another process. When the claim ends after `drop` is not asserted: a child
    // that a parallel test spawns meanwhile shares the handle until it execs.
    let holder = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(0o200) // O_EXCL on Linux
        .open(&card.device)
        .expect("claim the device");
    let image = Image::open(make_image(
        dir.path(),
        "a.img",
        &image_bytes(LEN, 17),
        false,
    ))
    .expect("open");
    let err = write_image(
        &image,
        &judged(&card.device),
        Hashing::Sha256,
        &mut NoProgress,
    )
    .expect_err("busy");
    assert!(matches!(err, WriteError::Busy { .. }), "{err}");
    assert!(untouched_start(&backing));
    drop(holder);
}

#[test]
fn a_file_that_appears_after_the_path_was_judged_new_is_not_truncated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = Image::open(make_image(
        dir.path(),
        "a.img",
        &image_bytes(100_000, 18),
        false,
    ))
    .expect("open");
    let precious = b"not to be truncated".repeat(100);

    // A file created between the judgement and the write.
    let path = dir.path().join("out.img");
    let target = judged(&path);
    assert_eq!(target, Target::NewFile(path.clone()));
    std::fs::write(&path, &precious).expect("appears");
    let err = write_image(&image, &target, Hashing::Off, &mut NoProgress).expect_err("exists");
    assert!(
        matches!(&err, WriteError::Open { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
        "{err:?}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), precious);

    // A symlink planted there, pointing at another file (the /tmp attack on a root process).
    let victim = dir.path().join("victim");
    std::fs::write(&victim, &precious).expect("victim");
    let path = dir.path().join("link-out.img");
    let target = judged(&path);
    std::os::unix::fs::symlink(&victim, &path).expect("plant");
    let err = write_image(&image, &target, Hashing::Off, &mut NoProgress).expect_err("exists");
    assert!(matches!(err, WriteError::Open { .. }), "{err:?}");
    assert_eq!(std::fs::read(&victim).expect("read"), precious);
}

#[test]
fn an_existing_file_that_vanished_is_not_recreated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let image = Image::open(make_image(
        dir.path(),
        "a.img",
        &image_bytes(100_000, 19),
        false,
    ))
    .expect("open");
    let path = dir.path().join("out.img");
    std::fs::write(&path, b"old").expect("write");
    let target = judged(&path);
    assert_eq!(target, Target::File(path.clone()));
    std::fs::remove_file(&path).expect("remove");
    let err = write_image(&image, &target, Hashing::Off, &mut NoProgress).expect_err("gone");
    assert!(
        matches!(&err, WriteError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(!path.exists());
}

//! Writing raw and zstd images to regular files and loop devices, and catching bad writes.

mod support;

use std::io::{self, Write};

use flash::{Hashing, Image, NoProgress, VerifyError, WriteError, verify, write_image, write_to};
use support::{Loop, backing_file, image_bytes, write_image as make_image};

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
        let written = write_image(&image, &target, Hashing::Sha256, &mut |done, total| {
            calls.push((done, total))
        })
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
    let written = write_image(&image, &target, Hashing::Sha256, &mut |_, total| {
        totals.push(total)
    })
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
    write_image(&image, &target, Hashing::Sha256, &mut NoProgress).expect("write");
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
        let written =
            write_image(&image, &card.device, Hashing::Sha256, &mut NoProgress).expect("write");
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
    let written =
        write_image(&image, &card.device, Hashing::Sha256, &mut NoProgress).expect("write");
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
    let err =
        write_image(&image, &target, Hashing::Sha256, &mut NoProgress).expect_err("must fail");
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
    let err =
        write_image(&image, &card.device, Hashing::Sha256, &mut NoProgress).expect_err("too small");
    assert!(matches!(err, WriteError::Target { .. }), "{err}");
}

#[test]
fn an_unhashed_write_cannot_be_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = image_bytes(100_000, 10);
    let image = Image::open(make_image(dir.path(), "a.img.zst", &bytes, true)).expect("open");
    let target = dir.path().join("out");
    let written = write_image(&image, &target, Hashing::Off, &mut NoProgress).expect("write");
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
    let written = write_image(&image, &target, Hashing::Sha256, &mut NoProgress).expect("write");
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

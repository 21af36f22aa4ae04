//! Opening an image and checking it before a single byte reaches the card.
//!
//! A card that was half written with a broken image is worse than one left alone, so [`Image::open`]
//! finds every problem it can cheaply: the format is told by magic bytes (a `.img.zst` that is not zstd
//! is an error, and so is an image compressed with something we can't stream), and a zstd file has its
//! frame structure walked block by block without decompressing. That walk catches a truncated download
//! or a cut-off copy in milliseconds, and yields the decoded size when the frame header records it (the
//! `zstd` CLI and the NixOS SD image builder always do). Corruption inside a compressed block can only
//! be seen by decoding it; the writer reports that with the number of bytes already on the card.
//!
//! The walk also notes whether every frame carries a content checksum. The decoder checks those, so
//! with them a damaged `.zst` is caught while decoding; without them damage can decode to wrong bytes
//! that the read-back then faithfully confirms. Callers need to know which proof they got.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The four bytes that open a zstd frame (RFC 8878), little endian `0xFD2FB528`.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xB5, 0x2F, 0xFD];

/// How the image file is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The bytes of the disk, as they go on the card.
    Raw,
    /// One or more zstd frames that decode to the bytes of the disk.
    Zstd,
}

/// An image file that passed the checks that can be made without decoding it.
#[derive(Debug, Clone)]
pub struct Image {
    path: PathBuf,
    format: Format,
    file_len: u64,
    size: Option<u64>,
    frame_checksums: Option<bool>,
    id: FileId,
}

/// Which file a path or handle is: device and inode numbers. Two names for one file (a hard link, a
/// symlink, a bind mount) compare equal here, and unequal as paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    pub(crate) fn of(meta: &std::fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }

    /// The file `path` names, following symlinks; `None` if it can't be looked up.
    pub(crate) fn of_path(path: &Path) -> Option<Self> {
        std::fs::metadata(path).ok().map(|m| Self::of(&m))
    }
}

/// Why an image can't be flashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file could not be opened or read.
    #[error("cannot read image {path}")]
    Io {
        /// The image file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: io::Error,
    },
    /// The image has no bytes.
    #[error("image {path} is empty")]
    Empty {
        /// The image file.
        path: PathBuf,
    },
    /// The image is compressed in a format that is not streamed here.
    #[error(
        "image {path} is compressed with {format}; decompress it first (or recompress it with zstd)"
    )]
    Unsupported {
        /// The image file.
        path: PathBuf,
        /// The compression that was recognised.
        format: &'static str,
    },
    /// The file is named `.zst` but does not start with the zstd magic bytes.
    #[error("image {path} is named .zst but is not zstd data (it starts with {start})")]
    NotZstd {
        /// The image file.
        path: PathBuf,
        /// The first bytes, in hex.
        start: String,
    },
    /// The zstd data ends before its last frame does: an interrupted download or copy.
    #[error(
        "image {path} is truncated: {detail} (at byte {offset} of {len}); download or build it again"
    )]
    Truncated {
        /// The image file.
        path: PathBuf,
        /// Where the structure broke off.
        offset: u64,
        /// The file's length.
        len: u64,
        /// What was expected there.
        detail: String,
    },
    /// The zstd data is malformed.
    #[error("image {path} is corrupt: {detail} (at byte {offset}); download or build it again")]
    Corrupt {
        /// The image file.
        path: PathBuf,
        /// Where the problem is.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
}

impl Image {
    /// Opens `path`, tells its format by its first bytes, and for zstd walks every frame to prove the
    /// file is complete and to learn the decoded size.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ImageError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| ImageError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io_err)?;
        let meta = file.metadata().map_err(io_err)?;
        let (file_len, id) = (meta.len(), FileId::of(&meta));
        if file_len == 0 {
            return Err(ImageError::Empty { path });
        }
        let mut head = [0u8; 6];
        let got = read_up_to(&file, 0, &mut head).map_err(io_err)?;
        let head = &head[..got];
        if head.starts_with(&ZSTD_MAGIC) || skippable_magic(head) {
            let walk = walk_zstd(&file, file_len).map_err(|e| e.into_error(&path, file_len))?;
            return Ok(Self {
                path,
                format: Format::Zstd,
                file_len,
                size: walk.size,
                frame_checksums: Some(walk.checksummed),
                id,
            });
        }
        if let Some(format) = other_compression(head) {
            return Err(ImageError::Unsupported { path, format });
        }
        if path.extension().is_some_and(|e| e == "zst" || e == "zstd") {
            let start = head.iter().map(|b| format!("{b:02x}")).collect();
            return Err(ImageError::NotZstd { path, start });
        }
        Ok(Self {
            path,
            format: Format::Raw,
            file_len,
            size: Some(file_len),
            frame_checksums: None,
            id,
        })
    }

    /// The image file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The identity of the file that was opened and checked, whatever name it is reached by.
    pub(crate) fn file_id(&self) -> FileId {
        self.id
    }

    /// How the file is stored.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The length of the file itself (compressed, for zstd).
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The number of bytes that go on the card, when known: the file length for a raw image, the sum
    /// of the frames' recorded content sizes for zstd (unknown if any frame leaves it out).
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// For a zstd image, whether every frame carries a content checksum (the frame header's
    /// `Content_Checksum_flag`, RFC 8878 section 3.1.1.1.1): the decoder checks each one, so damage
    /// inside the file is caught while decoding. When any frame has none, a read-back can only prove
    /// that the target matches what the file decoded to. `None` for a raw image, which has no frames.
    ///
    /// The `zstd` CLI writes checksums unless given `--no-check`; the zstd library leaves them out
    /// unless asked.
    pub fn frame_checksums(&self) -> Option<bool> {
        self.frame_checksums
    }

    /// Decodes the whole image without writing it, to find corruption inside compressed blocks (a bad
    /// checksum, a broken block) before the card is touched. Costs one decompression pass, about half
    /// a second of CPU per GiB decoded: worth it for small images, and whenever the card is slow
    /// enough that a failed write would cost more. A raw image has nothing to check.
    pub fn check_decode(&self) -> Result<(), ImageError> {
        if self.format == Format::Raw {
            return Ok(());
        }
        let mut reader = self.reader()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut decoded = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => decoded += n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(ImageError::Corrupt {
                        path: self.path.clone(),
                        offset: decoded,
                        detail: format!("decoding fails after {decoded} bytes: {e}"),
                    });
                }
            }
        }
        if let Some(size) = self.size
            && size != decoded
        {
            return Err(ImageError::Corrupt {
                path: self.path.clone(),
                offset: decoded,
                detail: format!("the header promises {size} bytes but {decoded} decode"),
            });
        }
        Ok(())
    }

    /// A stream of the bytes that go on the card.
    pub fn reader(&self) -> Result<Box<dyn Read + Send>, ImageError> {
        let file = File::open(&self.path).map_err(|source| ImageError::Io {
            path: self.path.clone(),
            source,
        })?;
        // Large reads: the file is read sequentially once, and fewer syscalls keep up with dd.
        let file = BufReader::with_capacity(1 << 20, file);
        Ok(match self.format {
            Format::Raw => Box::new(file),
            Format::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file).map_err(
                |source| ImageError::Io {
                    path: self.path.clone(),
                    source,
                },
            )?),
        })
    }
}

fn read_up_to(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn skippable_magic(head: &[u8]) -> bool {
    head.len() >= 4 && head[0] & 0xF0 == 0x50 && head[1..4] == [0x2A, 0x4D, 0x18]
}

fn other_compression(head: &[u8]) -> Option<&'static str> {
    if head.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
        Some("xz")
    } else if head.starts_with(&[0x1F, 0x8B]) {
        Some("gzip")
    } else if head.starts_with(b"BZh") {
        Some("bzip2")
    } else if head.starts_with(&[0x04, 0x22, 0x4D, 0x18]) {
        Some("lz4")
    } else {
        None
    }
}

/// A structural problem found while walking zstd frames.
enum WalkError {
    Io(io::Error),
    Truncated { offset: u64, detail: String },
    Corrupt { offset: u64, detail: String },
}

impl WalkError {
    fn into_error(self, path: &Path, len: u64) -> ImageError {
        let path = path.to_path_buf();
        match self {
            Self::Io(source) => ImageError::Io { path, source },
            Self::Truncated { offset, detail } => ImageError::Truncated {
                path,
                offset,
                len,
                detail,
            },
            Self::Corrupt { offset, detail } => ImageError::Corrupt {
                path,
                offset,
                detail,
            },
        }
    }
}

/// Reads exactly `buf.len()` bytes at `offset`, or says what was cut off.
fn read_field(file: &File, offset: u64, buf: &mut [u8], what: &str) -> Result<(), WalkError> {
    let got = read_up_to(file, offset, buf).map_err(WalkError::Io)?;
    if got < buf.len() {
        return Err(WalkError::Truncated {
            offset: offset + got as u64,
            detail: format!("the file ends inside {what}"),
        });
    }
    Ok(())
}

/// What walking a zstd file's frames found out.
struct Walk {
    /// The total decoded size, when every frame records it.
    size: Option<u64>,
    /// Whether every frame carries a content checksum.
    checksummed: bool,
}

/// One zstd frame's header facts and where it ends.
struct Frame {
    content_size: Option<u64>,
    checksum: bool,
    end: u64,
}

/// Walks every frame (RFC 8878 section 3.1): headers are read, block contents are skipped by offset.
fn walk_zstd(file: &File, len: u64) -> Result<Walk, WalkError> {
    let mut offset = 0u64;
    let mut total = Some(0u64);
    let mut checksummed = true;
    let mut frames = 0u32;
    while offset < len {
        let mut magic = [0u8; 4];
        read_field(file, offset, &mut magic, "a frame's magic number")?;
        if skippable_magic(&magic) {
            let mut size = [0u8; 4];
            read_field(file, offset + 4, &mut size, "a skippable frame's header")?;
            offset += 8 + u64::from(u32::from_le_bytes(size));
            if offset > len {
                return Err(WalkError::Truncated {
                    offset: len,
                    detail: "the file ends inside a skippable frame".into(),
                });
            }
            continue;
        }
        if magic != ZSTD_MAGIC {
            return Err(WalkError::Corrupt {
                offset,
                detail: format!(
                    "expected a zstd frame, found bytes {}",
                    magic.iter().map(|b| format!("{b:02x}")).collect::<String>()
                ),
            });
        }
        let frame = walk_frame(file, offset, len)?;
        total = total.zip(frame.content_size).map(|(t, c)| t + c);
        checksummed &= frame.checksum;
        frames += 1;
        offset = frame.end;
    }
    if frames == 0 {
        return Err(WalkError::Corrupt {
            offset: 0,
            detail: "no zstd frame in the file".into(),
        });
    }
    Ok(Walk {
        size: total,
        checksummed,
    })
}

/// Walks one frame starting at `start`.
fn walk_frame(file: &File, start: u64, len: u64) -> Result<Frame, WalkError> {
    let mut descriptor = [0u8; 1];
    read_field(file, start + 4, &mut descriptor, "a frame header")?;
    let fhd = descriptor[0];
    if fhd & 0x08 != 0 {
        return Err(WalkError::Corrupt {
            offset: start + 4,
            detail: "a frame header has its reserved bit set".into(),
        });
    }
    let fcs_flag = fhd >> 6;
    let single_segment = fhd & 0x20 != 0;
    let checksum = fhd & 0x04 != 0;
    let dict_len = [0u64, 1, 2, 4][usize::from(fhd & 0x03)];
    let window_len = if single_segment { 0 } else { 1 };
    let fcs_len: u64 = match (fcs_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let fcs_at = start + 5 + window_len + dict_len;
    let content_size = if fcs_len == 0 {
        None
    } else {
        let mut raw = [0u8; 8];
        let field = &mut raw[..fcs_len as usize];
        read_field(file, fcs_at, field, "a frame header")?;
        let value = u64::from_le_bytes(raw);
        Some(if fcs_len == 2 { value + 256 } else { value })
    };
    let mut offset = fcs_at + fcs_len;
    loop {
        let mut header = [0u8; 3];
        read_field(file, offset, &mut header, "a block header")?;
        let header = u32::from(header[0]) | u32::from(header[1]) << 8 | u32::from(header[2]) << 16;
        let last = header & 1 != 0;
        let block_type = (header >> 1) & 3;
        let block_size = u64::from(header >> 3);
        let content = match block_type {
            0 | 2 => block_size,
            1 => 1,
            _ => {
                return Err(WalkError::Corrupt {
                    offset,
                    detail: "a block has the reserved block type".into(),
                });
            }
        };
        offset += 3 + content;
        if offset > len {
            return Err(WalkError::Truncated {
                offset: len,
                detail: "the file ends inside a compressed block".into(),
            });
        }
        if last {
            break;
        }
    }
    if checksum {
        offset += 4;
        if offset > len {
            return Err(WalkError::Truncated {
                offset: len,
                detail: "the file ends before the frame's checksum".into(),
            });
        }
    }
    Ok(Frame {
        content_size,
        checksum,
        end: offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        let mut f = File::create(&path).expect("create");
        f.write_all(bytes).expect("write");
        path
    }

    /// Compresses like the `zstd` CLI does for a file: content size and checksum in the frame.
    fn compress(data: &[u8]) -> Vec<u8> {
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 3).expect("encoder");
        enc.set_pledged_src_size(Some(data.len() as u64))
            .expect("pledge");
        enc.include_checksum(true).expect("checksum");
        enc.write_all(data).expect("compress");
        enc.finish().expect("finish")
    }

    fn sample() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn raw_image_has_its_file_length() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "a.img", &sample());
        let image = Image::open(&path).expect("open");
        assert_eq!(image.format(), Format::Raw);
        assert_eq!(image.size(), Some(1_200_000));
    }

    #[test]
    fn zstd_is_told_by_magic_not_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = sample();
        let path = write(dir.path(), "disk.img", &compress(&data));
        let image = Image::open(&path).expect("open");
        assert_eq!(image.format(), Format::Zstd);
        assert_eq!(image.size(), Some(data.len() as u64));
        // A streamed frame (`zstd < in > out`) records no size: unknown, not wrong.
        let streamed = zstd::encode_all(&data[..], 3).expect("encode");
        let path = write(dir.path(), "streamed.img.zst", &streamed);
        assert_eq!(Image::open(&path).expect("open").size(), None);
    }

    #[test]
    fn concatenated_frames_add_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = sample();
        let mut packed = compress(&data);
        packed.extend(compress(&data[..1000]));
        let path = write(dir.path(), "a.img.zst", &packed);
        assert_eq!(
            Image::open(&path).expect("open").size(),
            Some(data.len() as u64 + 1000)
        );
    }

    #[test]
    fn frame_checksums_are_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = sample();
        let raw = write(dir.path(), "a.img", &data);
        assert_eq!(Image::open(&raw).expect("open").frame_checksums(), None);
        let checked = write(dir.path(), "checked.img.zst", &compress(&data));
        assert_eq!(
            Image::open(&checked).expect("open").frame_checksums(),
            Some(true)
        );
        // The library's default, like `zstd --no-check`: no checksum in the frame.
        let unchecked = zstd::encode_all(&data[..], 3).expect("encode");
        let path = write(dir.path(), "unchecked.img.zst", &unchecked);
        assert_eq!(
            Image::open(&path).expect("open").frame_checksums(),
            Some(false)
        );
        // One frame without a checksum is enough to lose the guarantee for the file.
        let mut mixed = compress(&data);
        mixed.extend(&unchecked);
        mixed.extend(compress(&data[..1000]));
        let path = write(dir.path(), "mixed.img.zst", &mixed);
        assert_eq!(
            Image::open(&path).expect("open").frame_checksums(),
            Some(false)
        );
    }

    #[test]
    fn a_frame_checksum_is_checked_when_decoding() {
        // What `frame_checksums` promises callers: a damaged checksum (here the frame's last four
        // bytes) fails the decode, although every decoded byte is right.
        let dir = tempfile::tempdir().expect("tempdir");
        let mut packed = compress(&sample());
        let last = packed.len() - 1;
        packed[last] ^= 0xFF;
        let path = write(dir.path(), "a.img.zst", &packed);
        let image = Image::open(&path).expect("the structure is intact");
        assert_eq!(image.frame_checksums(), Some(true));
        let err = image.check_decode().expect_err("checksum mismatch");
        assert!(matches!(err, ImageError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn truncated_zstd_is_refused_before_writing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let packed = compress(&sample());
        for cut in [5, 20, packed.len() / 2, packed.len() - 1] {
            let path = write(dir.path(), "a.img.zst", &packed[..cut]);
            let err = Image::open(&path).expect_err("truncated");
            assert!(
                matches!(err, ImageError::Truncated { .. }),
                "cut at {cut}: {err}"
            );
            assert!(err.to_string().contains("truncated"), "{err}");
        }
    }

    #[test]
    fn a_full_decode_finds_damage_inside_blocks() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut packed = compress(&sample());
        let path = write(dir.path(), "good.img.zst", &packed);
        Image::open(&path)
            .expect("open")
            .check_decode()
            .expect("good");
        let mid = packed.len() / 2;
        packed[mid] ^= 0x5A;
        packed[mid + 1] ^= 0x5A;
        let path = write(dir.path(), "bad.img.zst", &packed);
        let image = Image::open(&path).expect("the structure is intact");
        let err = image.check_decode().expect_err("damaged");
        assert!(matches!(err, ImageError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn misnamed_and_foreign_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "a.img.zst", b"not zstd at all");
        assert!(matches!(
            Image::open(&path),
            Err(ImageError::NotZstd { .. })
        ));
        let path = write(dir.path(), "a.img.xz", b"\xFD7zXZ\x00rest");
        assert!(matches!(
            Image::open(&path),
            Err(ImageError::Unsupported { format: "xz", .. })
        ));
        let path = write(dir.path(), "empty.img", b"");
        assert!(matches!(Image::open(&path), Err(ImageError::Empty { .. })));
    }
}

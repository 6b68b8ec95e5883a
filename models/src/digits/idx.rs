//! The IDX file format of MNIST, gzip-compressed or raw, read without trusting the file.
//!
//! An IDX file is a big-endian `u32` magic number (`0x00000801` = 2049 for labels,
//! `0x00000803` = 2051 for images: unsigned bytes, 1 or 3 dimensions), one big-endian `u32` per
//! dimension, then the bytes, row-major. [`read_labels`] and [`read_images`] check, before
//! allocating anything the size of the data:
//!
//! - the magic number;
//! - that the sizes the header declares fit in the file: for a raw file its length, for a gzip
//!   file the uncompressed length written in its trailer (ISIZE), checked again by the
//!   decompressor along with the CRC;
//! - that no declared size exceeds [`MAX_DATA_BYTES`], so a hostile header cannot ask for
//!   terabytes;
//! - that the file is a regular file (a device such as `/dev/zero` or a named pipe is refused
//!   by name instead of being read forever or blocking), and that nothing past the declared data
//!   is read: a gzip stream is inflated to the declared size and one byte more, so a "gzip bomb"
//!   behind a small header stops there ([`IdxErrorKind::TrailingData`]);
//! - that every label is a digit (0-9), and images have non-zero sides.
//!
//! Each failure is an [`IdxError`] naming the file. The SHA-256 of the uncompressed content is
//! computed while reading; [`expected_sha256`] gives the published value of the four MNIST files
//! (those of `data/README.md`), and [`read_labels`]/[`read_images`] compare them when asked to.

use std::fmt;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The magic number of a label file (unsigned bytes, one dimension).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// The magic number of an image file (unsigned bytes, three dimensions).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// The largest data section accepted, in bytes (1 GiB: MNIST's largest file holds 47 MB).
pub const MAX_DATA_BYTES: u64 = 1 << 30;

/// The SHA-256 of the uncompressed IDX content of the MNIST files, as published in the
/// provenance note `data/README.md`.
pub const MNIST_SHA256: [(&str, &str); 4] = [
    ("train-images-idx3-ubyte.gz", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
    ("train-labels-idx1-ubyte.gz", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
    ("t10k-images-idx3-ubyte.gz", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
    ("t10k-labels-idx1-ubyte.gz", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
];

/// The published SHA-256 (lowercase hex) of the uncompressed content of the MNIST file named
/// `file_name` (with or without its `.gz`), if it is one of the four.
pub fn expected_sha256(file_name: &str) -> Option<&'static str> {
    let gz = if file_name.ends_with(".gz") { file_name.to_string() } else { format!("{file_name}.gz") };
    MNIST_SHA256.iter().find(|(name, _)| *name == gz).map(|(_, sha)| *sha)
}

/// What went wrong reading an IDX file; see [`IdxError`].
#[derive(Debug)]
pub enum IdxErrorKind {
    /// Opening or reading the file failed.
    Io(std::io::Error),
    /// The gzip stream is damaged (bad header, bad deflate data, CRC or length mismatch).
    Gzip(std::io::Error),
    /// The file ends before its header does.
    ShortHeader {
        /// Bytes the header needs.
        needed: u64,
        /// Bytes present.
        found: u64,
    },
    /// The magic number is not the one expected.
    WrongMagic {
        /// The magic number read.
        found: u32,
        /// The magic number expected ([`LABELS_MAGIC`] or [`IMAGES_MAGIC`]).
        expected: u32,
    },
    /// The header declares more data than [`MAX_DATA_BYTES`] (or than a `u64` holds).
    TooLarge {
        /// The dimensions declared.
        dims: Vec<u32>,
    },
    /// The data the header declares does not match the file's (uncompressed) length.
    SizeMismatch {
        /// Bytes of data the header declares.
        declared: u64,
        /// Bytes of data the file holds after its header.
        found: u64,
    },
    /// The content goes on past the data the IDX header declares, although the file's size (or a
    /// gzip stream's trailer) said it would not: a gzip stream that inflates to more than it
    /// claims, or a file that grew while read. Reading stopped at the first byte past the data.
    TrailingData {
        /// Bytes of data the header declares.
        declared: u64,
    },
    /// An image side is zero.
    EmptyImages {
        /// Rows per image.
        rows: u32,
        /// Columns per image.
        cols: u32,
    },
    /// A label is not a digit.
    BadLabel {
        /// Its position.
        index: usize,
        /// Its value.
        value: u8,
    },
    /// The images and labels of a split do not have the same count.
    CountMismatch {
        /// Images in the image file.
        images: usize,
        /// Labels in the label file (named by [`IdxError::path`]).
        labels: usize,
    },
    /// The SHA-256 of the uncompressed content differs from the published one.
    Checksum {
        /// The published value (hex).
        expected: String,
        /// The value computed (hex).
        found: String,
    },
}

/// An error reading an IDX file: the file and what went wrong.
#[derive(Debug)]
pub struct IdxError {
    /// The file.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: IdxErrorKind,
}

impl fmt::Display for IdxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            IdxErrorKind::Io(e) => write!(f, "{path}: {e}"),
            IdxErrorKind::Gzip(e) => write!(f, "{path}: damaged gzip stream: {e}"),
            IdxErrorKind::ShortHeader { needed, found } => {
                write!(f, "{path}: truncated IDX header: {needed} bytes needed, {found} present")
            }
            IdxErrorKind::WrongMagic { found, expected } => write!(
                f,
                "{path}: not an IDX {} file: magic number {found:#010x}, expected {expected:#010x}",
                if *expected == LABELS_MAGIC { "label" } else { "image" }
            ),
            IdxErrorKind::TooLarge { dims } => {
                write!(f, "{path}: IDX header declares dimensions {dims:?}, more than {MAX_DATA_BYTES} bytes")
            }
            IdxErrorKind::SizeMismatch { declared, found } => write!(
                f,
                "{path}: IDX header declares {declared} bytes of data but the file holds {found}{}",
                if found < declared { " (truncated)" } else { " (trailing bytes)" }
            ),
            IdxErrorKind::TrailingData { declared } => write!(
                f,
                "{path}: IDX header declares {declared} bytes of data but the content goes on past them \
                 (trailing bytes, not read further: a gzip stream inflating to more than its trailer says)"
            ),
            IdxErrorKind::EmptyImages { rows, cols } => write!(f, "{path}: images of {rows}×{cols} pixels"),
            IdxErrorKind::BadLabel { index, value } => write!(f, "{path}: label {index} is {value}, not a digit"),
            IdxErrorKind::CountMismatch { images, labels } => {
                write!(f, "{path}: {labels} labels for {images} images")
            }
            IdxErrorKind::Checksum { expected, found } => write!(
                f,
                "{path}: SHA-256 of the uncompressed content is {found}, but the provenance note \
                 (data/README.md) gives {expected}: the file differs from the published MNIST"
            ),
        }
    }
}

impl std::error::Error for IdxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            IdxErrorKind::Io(e) | IdxErrorKind::Gzip(e) => Some(e),
            _ => None,
        }
    }
}

/// An IDX array of unsigned bytes, with the SHA-256 of the file's uncompressed content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// The dimensions, outermost first.
    pub dims: Vec<usize>,
    /// The bytes, row-major.
    pub data: Vec<u8>,
    /// SHA-256 of the uncompressed content (header included).
    pub sha256: [u8; 32],
}

impl IdxArray {
    /// [`IdxArray::sha256`] as lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex(&self.sha256)
    }
}

/// Images: `count` of `rows × cols` grey bytes (0 = background, 255 = ink).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count · rows · cols` bytes, image after image, row-major.
    pub pixels: Vec<u8>,
    /// SHA-256 of the uncompressed content (hex).
    pub sha256: String,
}

/// Labels, one byte (0-9) each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxLabels {
    /// The labels.
    pub labels: Vec<u8>,
    /// SHA-256 of the uncompressed content (hex).
    pub sha256: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Feeds every byte read through a SHA-256.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Reads an IDX file of unsigned bytes with magic `magic` (gzip if it starts with the gzip
/// magic bytes, raw otherwise). See the [module docs](self) for what is checked.
///
/// # Errors
/// An [`IdxError`] naming `path` for every check that fails.
pub fn read_idx(path: &Path, magic: u32) -> Result<IdxArray, IdxError> {
    let err = |kind| IdxError { path: path.to_path_buf(), kind };
    let (file, _) = nn::checkpoint::untrusted::open_regular(path).map_err(|e| err(IdxErrorKind::Io(e)))?;
    read_idx_from(BufReader::new(file), path, magic)
}

/// [`read_idx`] on any seekable source (a file, an in-memory `Cursor`): the same checks, with
/// `path` naming the source in errors.
///
/// # Errors
/// As [`read_idx`].
pub fn read_idx_from<R: Read + Seek>(mut file: R, path: &Path, magic: u32) -> Result<IdxArray, IdxError> {
    let err = |kind| IdxError { path: path.to_path_buf(), kind };
    let file_len = file.seek(SeekFrom::End(0)).and_then(|n| file.seek(SeekFrom::Start(0)).map(|_| n));
    let file_len = file_len.map_err(|e| err(IdxErrorKind::Io(e)))?;
    let mut head = [0u8; 2];
    let gzip = file_len >= 2 && {
        file.read_exact(&mut head).map_err(|e| err(IdxErrorKind::Io(e)))?;
        head == [0x1f, 0x8b]
    };
    // The uncompressed length, known before decompressing anything: a gzip member ends with
    // its uncompressed length mod 2^32 (ISIZE), which the decompressor checks again at the end.
    let content_len = if gzip {
        if file_len < 18 {
            let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "shorter than a gzip header and trailer");
            return Err(err(IdxErrorKind::Gzip(e)));
        }
        let mut isize = [0u8; 4];
        file.seek(SeekFrom::End(-4)).and_then(|_| file.read_exact(&mut isize)).map_err(|e| err(IdxErrorKind::Io(e)))?;
        u64::from(u32::from_le_bytes(isize))
    } else {
        file_len
    };
    file.seek(SeekFrom::Start(0)).map_err(|e| err(IdxErrorKind::Io(e)))?;
    // Never inflate more than the content the trailer claims (which the header must match,
    // checked before the data is read) and one byte to find out whether the stream goes on.
    let reader: Box<dyn Read + '_> = if gzip {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)).take(content_len + 1))
    } else {
        Box::new(file)
    };
    let mut r = Hashing { inner: reader, hasher: Sha256::new() };
    // Raw files fail with Io, gzip ones with Gzip (a damaged stream) unless the header is short.
    let read_err = |e: std::io::Error| if gzip { IdxErrorKind::Gzip(e) } else { IdxErrorKind::Io(e) };

    let ndims: u64 = match magic {
        LABELS_MAGIC => 1,
        _ => 3,
    };
    let header_len = 4 + 4 * ndims;
    if content_len < header_len {
        return Err(err(IdxErrorKind::ShortHeader { needed: header_len, found: content_len }));
    }
    let mut word = [0u8; 4];
    let mut read_u32 = |r: &mut Hashing<Box<dyn Read + '_>>| -> Result<u32, IdxError> {
        r.read_exact(&mut word).map_err(|e| err(read_err(e)))?;
        Ok(u32::from_be_bytes(word))
    };
    let found = read_u32(&mut r)?;
    if found != magic {
        return Err(err(IdxErrorKind::WrongMagic { found, expected: magic }));
    }
    let dims: Vec<u32> = (0..ndims).map(|_| read_u32(&mut r)).collect::<Result<_, _>>()?;
    let declared = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .filter(|&n| n <= MAX_DATA_BYTES)
        .ok_or_else(|| err(IdxErrorKind::TooLarge { dims: dims.clone() }))?;
    let found = content_len - header_len;
    if declared != found {
        return Err(err(IdxErrorKind::SizeMismatch { declared, found }));
    }
    // Now the allocation is known to fit in the file (and under the limit).
    let mut data = vec![0u8; declared as usize];
    r.read_exact(&mut data).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof if !gzip => err(IdxErrorKind::SizeMismatch { declared, found: 0 }),
        _ => err(read_err(e)),
    })?;
    // Reading to the end makes the decompressor check the CRC and length in the trailer.
    let mut rest = [0u8; 1];
    match r.read(&mut rest) {
        Ok(0) => {}
        Ok(_) => return Err(err(IdxErrorKind::TrailingData { declared })),
        Err(e) => return Err(err(read_err(e))),
    }
    let sha256 = r.hasher.finalize().into();
    Ok(IdxArray { dims: dims.iter().map(|&d| d as usize).collect(), data, sha256 })
}

fn check_sha256(path: &Path, found: &str) -> Result<(), IdxError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match expected_sha256(name) {
        Some(expected) if expected != found => Err(IdxError {
            path: path.to_path_buf(),
            kind: IdxErrorKind::Checksum { expected: expected.to_string(), found: found.to_string() },
        }),
        _ => Ok(()),
    }
}

/// Reads a label file. With `verify`, a file named like one of the MNIST files must have its
/// published SHA-256 ([`MNIST_SHA256`]); files of other names are not checked.
///
/// # Errors
/// An [`IdxError`] naming `path`: see [`read_idx`], plus [`IdxErrorKind::BadLabel`] and
/// [`IdxErrorKind::Checksum`].
pub fn read_labels(path: &Path, verify: bool) -> Result<IdxLabels, IdxError> {
    let a = read_idx(path, LABELS_MAGIC)?;
    let sha256 = a.sha256_hex();
    if verify {
        check_sha256(path, &sha256)?;
    }
    if let Some((index, &value)) = a.data.iter().enumerate().find(|(_, &v)| v > 9) {
        return Err(IdxError { path: path.to_path_buf(), kind: IdxErrorKind::BadLabel { index, value } });
    }
    Ok(IdxLabels { labels: a.data, sha256 })
}

/// Reads an image file. With `verify`, as [`read_labels`].
///
/// # Errors
/// An [`IdxError`] naming `path`: see [`read_idx`], plus [`IdxErrorKind::EmptyImages`] and
/// [`IdxErrorKind::Checksum`].
pub fn read_images(path: &Path, verify: bool) -> Result<IdxImages, IdxError> {
    let a = read_idx(path, IMAGES_MAGIC)?;
    let sha256 = a.sha256_hex();
    if verify {
        check_sha256(path, &sha256)?;
    }
    let (count, rows, cols) = (a.dims[0], a.dims[1], a.dims[2]);
    if rows == 0 || cols == 0 {
        let kind = IdxErrorKind::EmptyImages { rows: rows as u32, cols: cols as u32 };
        return Err(IdxError { path: path.to_path_buf(), kind });
    }
    Ok(IdxImages { count, rows, cols, pixels: a.data, sha256 })
}

/// Encodes an IDX file of unsigned bytes (for tests and tools): `magic`, `dims`, then `data`.
///
/// # Panics
/// If `data` does not hold the product of `dims` bytes.
#[track_caller]
pub fn encode_idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let n: usize = dims.iter().map(|&d| d as usize).product();
    assert_eq!(n, data.len(), "encode_idx: dims {dims:?} need {n} bytes, got {}", data.len());
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend(magic.to_be_bytes());
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;

    use super::*;

    struct Dir(PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn dir(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("pente-idx-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        Dir(d)
    }
    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).expect("in memory");
        e.finish().expect("in memory")
    }
    fn write(d: &Dir, name: &str, bytes: &[u8]) -> PathBuf {
        let p = d.0.join(name);
        std::fs::write(&p, bytes).expect("temp file");
        p
    }

    #[test]
    fn raw_and_gzip_files_read_the_same() {
        let d = dir("ok");
        let pixels: Vec<u8> = (0..2 * 3 * 4).map(|i| i as u8 * 10).collect();
        let idx = encode_idx(IMAGES_MAGIC, &[2, 3, 4], &pixels);
        for (name, bytes) in [("raw", idx.clone()), ("gzip", gz(&idx))] {
            let img = read_images(&write(&d, name, &bytes), true).expect("valid file");
            assert_eq!((img.count, img.rows, img.cols), (2, 3, 4));
            assert_eq!(img.pixels, pixels);
            assert_eq!(img.sha256, hex(&Sha256::digest(&idx)));
        }
        let labels = read_labels(&write(&d, "l.gz", &gz(&encode_idx(LABELS_MAGIC, &[3], &[7, 0, 9]))), true);
        assert_eq!(labels.expect("valid").labels, vec![7, 0, 9]);
    }

    #[test]
    fn wrong_magic_is_named() {
        let d = dir("magic");
        let p = write(&d, "labels", &encode_idx(IMAGES_MAGIC, &[1, 1, 1], &[0]));
        let e = read_labels(&p, false).expect_err("image file read as labels");
        assert!(matches!(e.kind, IdxErrorKind::WrongMagic { found: IMAGES_MAGIC, expected: LABELS_MAGIC }));
        assert!(e.to_string().contains(&p.display().to_string()), "{e}");
        let p = write(&d, "junk.gz", &gz(b"<html>not found</html>"));
        assert!(matches!(read_images(&p, false).map_err(|e| e.kind), Err(IdxErrorKind::WrongMagic { .. })));
    }

    #[test]
    fn truncated_files_are_errors() {
        let d = dir("trunc");
        let idx = encode_idx(LABELS_MAGIC, &[100], &[1; 100]);
        let p = write(&d, "cut", &idx[..60]);
        let e = read_labels(&p, false).expect_err("truncated raw");
        assert!(matches!(e.kind, IdxErrorKind::SizeMismatch { declared: 100, found: 52 }), "{e}");
        assert!(e.to_string().contains("truncated"), "{e}");
        let p = write(&d, "short", &idx[..6]);
        assert!(matches!(read_labels(&p, false).map_err(|e| e.kind), Err(IdxErrorKind::ShortHeader { .. })));
        let z = gz(&idx);
        let p = write(&d, "cut.gz", &z[..z.len() / 2]);
        assert!(read_labels(&p, false).is_err());
        let p = write(&d, "empty", b"");
        assert!(matches!(read_labels(&p, false).map_err(|e| e.kind), Err(IdxErrorKind::ShortHeader { .. })));
    }

    #[test]
    fn huge_declared_size_is_refused_before_allocating() {
        let d = dir("huge");
        let mut idx = encode_idx(IMAGES_MAGIC, &[1, 1, 1], &[0]);
        idx[4..16].copy_from_slice(&[0xff; 12]); // 2^32-1 images of 2^32-1 × 2^32-1 pixels
        for (name, bytes) in [("raw", idx.clone()), ("gz", gz(&idx))] {
            let e = read_images(&write(&d, name, &bytes), false).expect_err("hostile header");
            assert!(matches!(e.kind, IdxErrorKind::TooLarge { .. }), "{e}");
        }
        // Under the limit but far larger than the file: a size mismatch, still before allocating.
        let mut idx = encode_idx(LABELS_MAGIC, &[1], &[0]);
        idx[4..8].copy_from_slice(&(1u32 << 29).to_be_bytes());
        let e = read_labels(&write(&d, "big", &idx), false).expect_err("declared > file");
        assert!(matches!(e.kind, IdxErrorKind::SizeMismatch { .. }), "{e}");
    }

    #[test]
    fn gzip_with_a_lying_trailer_or_bad_crc_is_an_error() {
        let d = dir("crc");
        let idx = encode_idx(LABELS_MAGIC, &[4], &[1, 2, 3, 4]);
        let mut z = gz(&idx);
        let n = z.len();
        z[n - 8] ^= 0xff; // CRC
        assert!(matches!(read_labels(&write(&d, "crc.gz", &z), false).map_err(|e| e.kind), Err(IdxErrorKind::Gzip(_))));
        let mut z = gz(&idx);
        z[n - 4..].copy_from_slice(&1000u32.to_le_bytes()); // ISIZE claims more
        assert!(read_labels(&write(&d, "isize.gz", &z), false).is_err());
    }

    #[test]
    fn trailing_bytes_and_bad_labels_and_empty_images_are_errors() {
        let d = dir("misc");
        let mut idx = encode_idx(LABELS_MAGIC, &[2], &[1, 2]);
        idx.push(0);
        let e = read_labels(&write(&d, "trail", &idx), false).expect_err("trailing byte");
        assert!(matches!(e.kind, IdxErrorKind::SizeMismatch { declared: 2, found: 3 }), "{e}");
        let p = write(&d, "bad", &encode_idx(LABELS_MAGIC, &[3], &[1, 12, 3]));
        assert!(matches!(
            read_labels(&p, false).map_err(|e| e.kind),
            Err(IdxErrorKind::BadLabel { index: 1, value: 12 })
        ));
        let p = write(&d, "empty", &encode_idx(IMAGES_MAGIC, &[5, 0, 28], &[]));
        assert!(matches!(read_images(&p, false).map_err(|e| e.kind), Err(IdxErrorKind::EmptyImages { .. })));
    }

    /// A source that counts the bytes read from it.
    struct Counting<R> {
        inner: R,
        read: u64,
    }
    impl<R: Read> Read for Counting<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            self.read += n as u64;
            Ok(n)
        }
    }
    impl<R: Seek> Seek for Counting<R> {
        fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn a_gzip_bomb_behind_a_small_header_is_not_inflated_past_the_declared_size() {
        // 100 labels, then 256 MiB of zeros in the same gzip stream, whose trailer (ISIZE) claims
        // only the 108 bytes of the IDX content, as a hostile file's would: the header and the
        // trailer agree, and only inflating the stream shows what follows.
        let idx = encode_idx(LABELS_MAGIC, &[100], &[0; 100]);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&idx).expect("in memory");
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            e.write_all(&zeros).expect("in memory");
        }
        let mut bomb = e.finish().expect("in memory");
        let n = bomb.len();
        bomb[n - 4..].copy_from_slice(&(idx.len() as u32).to_le_bytes());
        let mut src = Counting { inner: std::io::Cursor::new(&bomb), read: 0 };
        let e = read_idx_from(&mut src, Path::new("bomb.gz"), LABELS_MAGIC).expect_err("trailing data");
        assert!(matches!(e.kind, IdxErrorKind::TrailingData { declared: 100 }), "{e}");
        assert!(e.to_string().contains("bomb.gz") && e.to_string().contains("more"), "{e}");
        // Inflating stopped one byte after the declared content: a few buffers of the stream read.
        assert!(src.read < n as u64 / 4, "{} of the {n} compressed bytes read", src.read);
    }

    #[test]
    fn a_3_gb_sparse_file_fails_without_being_read() {
        let d = dir("sparse");
        for (name, start) in [("zeros", vec![]), ("labels", encode_idx(LABELS_MAGIC, &[100], &[0; 100]))] {
            let p = d.0.join(name);
            let mut f = File::create(&p).expect("temp file");
            f.write_all(&start).expect("write");
            f.set_len(3 << 30).expect("sparse file");
            drop(f);
            let start = std::time::Instant::now();
            let e = read_labels(&p, false).expect_err("not a label file");
            assert!(start.elapsed() < std::time::Duration::from_secs(5), "{name}: {:?}", start.elapsed());
            match (name, e.kind) {
                ("zeros", IdxErrorKind::WrongMagic { found: 0, .. }) => {}
                ("labels", IdxErrorKind::SizeMismatch { declared: 100, found }) => assert_eq!(found, (3 << 30) - 8),
                (_, other) => panic!("{name}: {other:?}"),
            }
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_device_or_a_fifo_is_refused_by_name_without_reading() {
        let e = read_images(Path::new("/dev/zero"), false).expect_err("a device");
        assert!(e.to_string().contains("/dev/zero: not a regular file but a character device"), "{e}");
        let d = dir("fifo");
        let fifo = d.0.join("train-labels-idx1-ubyte");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
        assert!(status.success());
        let p = fifo.clone();
        let worker = std::thread::spawn(move || read_labels(&p, false).map(|_| ()).map_err(|e| e.to_string()));
        let start = std::time::Instant::now();
        while !worker.is_finished() {
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "reading a FIFO blocked");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let msg = worker.join().expect("no panic").expect_err("a FIFO");
        assert!(msg.contains("train-labels-idx1-ubyte: not a regular file but a FIFO"), "{msg}");
    }

    #[test]
    fn checksum_of_a_file_named_like_mnist_is_verified() {
        let d = dir("sha");
        let p = write(&d, "t10k-labels-idx1-ubyte.gz", &gz(&encode_idx(LABELS_MAGIC, &[2], &[7, 2])));
        let e = read_labels(&p, true).expect_err("not the real file");
        assert!(matches!(e.kind, IdxErrorKind::Checksum { .. }), "{e}");
        assert!(e.to_string().contains("data/README.md"), "{e}");
        assert!(read_labels(&p, false).is_ok());
    }

    #[test]
    fn published_checksums_match_the_provenance_note() {
        let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/README.md");
        let text = std::fs::read_to_string(&readme).expect("data/README.md is in the repository");
        for (name, sha) in MNIST_SHA256 {
            assert!(text.lines().any(|l| l.contains(name) && l.contains(sha)), "{name} {sha} not in {readme:?}");
        }
        assert_eq!(expected_sha256("t10k-labels-idx1-ubyte"), Some(MNIST_SHA256[3].1));
        assert_eq!(expected_sha256("other.gz"), None);
    }
}

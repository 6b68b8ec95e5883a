//! Reading files that are not trusted: only regular files are opened, and every read is bounded
//! by a length known beforehand (the file's size, or what a checked header declares).
//!
//! A loader that calls `std::fs::read` trusts the file twice: to end (`/dev/zero` never does, a
//! named pipe blocks until a writer comes) and to be worth reading whole (a 3 GB file is read into
//! 3 GB of memory before its first bytes say that it is not a checkpoint). [`open_regular`] takes
//! the size from the file's metadata and refuses anything but a regular file, naming what it is;
//! [`read_exactly`] then reads a stated number of bytes and never allocates more. The native
//! checkpoint loader, the safetensors import and `models`' MNIST reader go through both.

use std::fs::{self, File, FileType};
use std::io::{self, Read};
use std::path::Path;

/// What kind of file `t` is, in words, for an error message ("a directory", "a FIFO (named
/// pipe)", ...).
fn describe(t: FileType) -> &'static str {
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a file"
}

fn not_regular(t: FileType) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "not a regular file but {}: only regular files are read, since nothing else has a size to \
             check before reading",
            describe(t)
        ),
    )
}

/// Opens `path` for reading if it is a regular file (symbolic links followed), and returns it
/// with its size in bytes.
///
/// The type is checked before opening, because opening a FIFO for reading blocks until a writer
/// appears, and again on the opened file, whose size is the one returned.
///
/// # Errors
/// The error of `metadata` or `open`, or one of kind [`io::ErrorKind::InvalidInput`] saying
/// what the path is instead ("not a regular file but a FIFO (named pipe)"). The caller adds the
/// path.
pub fn open_regular(path: &Path) -> io::Result<(File, u64)> {
    let t = fs::metadata(path)?.file_type();
    if !t.is_file() {
        return Err(not_regular(t));
    }
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    Ok((file, meta.len()))
}

/// Reads exactly `len` bytes from `reader`, allocating `len` bytes at most (the caller has checked
/// `len` against the file's size or a limit).
///
/// # Errors
/// The reader's error, or [`io::ErrorKind::UnexpectedEof`] if it ends before `len` bytes (the file
/// shrank since its size was taken), or [`io::ErrorKind::OutOfMemory`] if `len` does not fit in
/// memory.
pub fn read_exactly(reader: &mut impl Read, len: u64) -> io::Result<Vec<u8>> {
    let n = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    reader.take(len).read_to_end(&mut out)?;
    if out.len() != n {
        let why = format!("the file ended after {} of the {len} bytes expected (it shrank while read)", out.len());
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, why));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_exactly_reads_no_further_and_reports_a_short_source() {
        let mut src: &[u8] = b"abcdef";
        assert_eq!(read_exactly(&mut src, 4).expect("4 of 6"), b"abcd");
        assert_eq!(src, b"ef");
        let e = read_exactly(&mut src, 3).expect_err("2 of 3");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("after 2 of the 3 bytes"), "{e}");
    }

    #[test]
    fn a_regular_file_opens_with_its_size_and_a_directory_is_named() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        fs::write(&path, b"12345").expect("write");
        let (_, len) = open_regular(&path).expect("regular");
        assert_eq!(len, 5);
        let e = open_regular(dir.path()).expect_err("a directory");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("not a regular file but a directory"), "{e}");
    }
}

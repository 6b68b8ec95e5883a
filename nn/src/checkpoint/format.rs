//! The native checkpoint file format, version 1: a fixed 40-byte prefix, a header encoded by
//! the private `codec` module, then the raw tensor data.
//!
//! ```text
//! offset  size  field
//!      0     8  magic "PENTECKP"
//!      8     4  format version, u32 little-endian (1)
//!     12     4  flags, u32 (0)
//!     16     8  header length H, u64 LE
//!     24     8  data length D, u64 LE
//!     32     4  CRC-32 of the header and the data (bytes 40 .. 40 + H + D)
//!     36     4  CRC-32 of bytes 0 .. 36
//!     40     H  header: step, metadata, and per tensor its name, dtype, shape, offset and length
//!   40+H     D  tensor data, little-endian, each tensor a contiguous range of the header's offsets
//! ```
//!
//! Tensor data sits outside the header so that its bytes are copied, not decoded element by
//! element, and so that every length the header claims is checked against `D` (itself checked
//! against the file's size) before anything is allocated for it. A file is read in that order:
//! the prefix, whose lengths must add up to the file's size; the header (at most 16 MiB), whose
//! tensors must end exactly at `D`; only then the data.

use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use super::crc32::{crc32, Crc32};
use super::Checkpoint;
use super::{codec, untrusted};
use crate::optim::{OptimizerState, SlotState};
use crate::{AnyTensor, DType, Error, Result};

/// The first eight bytes of every checkpoint.
pub const MAGIC: [u8; 8] = *b"PENTECKP";
/// The newest format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes before the header.
pub(crate) const PREFIX_LEN: usize = 40;

#[derive(Serialize, Deserialize)]
pub(crate) struct Header {
    pub step: u64,
    pub metadata: Vec<(String, String)>,
    pub tensors: Vec<Entry>,
    pub optimizer: Option<OptimHeader>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Entry {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
    pub offset: u64,
    pub len: u64,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct OptimHeader {
    pub kind: String,
    pub step: u64,
    pub scalars: Vec<(String, f64)>,
    pub slots: Vec<SlotEntry>,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct SlotEntry {
    pub param: String,
    pub slot: String,
    pub tensor: Entry,
}

/// Appends a tensor's bytes to `data` and describes them.
fn entry(name: &str, t: &AnyTensor, data: &mut Vec<u8>) -> Entry {
    let bytes = t.to_le_bytes();
    let e = Entry {
        name: name.to_string(),
        dtype: t.dtype().name().to_string(),
        shape: t.shape().iter().map(|&d| d as u64).collect(),
        offset: data.len() as u64,
        len: bytes.len() as u64,
    };
    data.extend_from_slice(&bytes);
    e
}

/// The complete file.
pub(crate) fn encode(ckpt: &Checkpoint) -> Vec<u8> {
    let mut data = Vec::new();
    let tensors = ckpt.tensors.iter().map(|(k, t)| entry(k, t, &mut data)).collect();
    let optimizer = ckpt.optimizer.as_ref().map(|o| OptimHeader {
        kind: o.kind.clone(),
        step: o.step,
        scalars: o.scalars.clone(),
        slots: o
            .slots
            .iter()
            .map(|s| SlotEntry {
                param: s.param.clone(),
                slot: s.slot.clone(),
                tensor: entry(&format!("{}/{}", s.param, s.slot), &s.tensor, &mut data),
            })
            .collect(),
    });
    let header = codec::encode(&Header {
        step: ckpt.step,
        metadata: ckpt.metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        tensors,
        optimizer,
    });
    frame(&header, &data, FORMAT_VERSION)
}

/// Prefix + header + data, with both checksums.
pub(crate) fn frame(header: &[u8], data: &[u8], version: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX_LEN + header.len() + data.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    let mut body = Crc32::new();
    body.update(header);
    body.update(data);
    out.extend_from_slice(&body.finish().to_le_bytes());
    let head = crc32(&out[..36]);
    out.extend_from_slice(&head.to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(data);
    out
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The lengths and body checksum of a checked 40-byte prefix.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Prefix {
    /// The header's length, H (at most `codec::MAX_HEADER`).
    pub header_len: u64,
    /// The data section's length, D.
    pub data_len: u64,
    /// The CRC-32 of the header and the data.
    body_crc: u32,
}

/// Checks the start of a file of `file_len` bytes, of which `start` holds the first
/// `min(file_len, 40)`: magic number, version, prefix checksum, flags, and that the lengths it
/// declares are exactly what the file holds, with a header within `codec::MAX_HEADER`. So a
/// reader knows, from 40 bytes, whether and how much more to read. `path` only labels errors.
pub(crate) fn check_prefix(start: &[u8], file_len: u64, path: &Path) -> Result<Prefix> {
    let found = file_len;
    let magic_len = start.len().min(MAGIC.len());
    if start[..magic_len] != MAGIC[..magic_len] {
        return Err(Error::Foreign { path: path.into() });
    }
    if start.len() < 12 {
        return Err(Error::Truncated { path: path.into(), expected: PREFIX_LEN as u64, found });
    }
    let version = u32_at(start, 8);
    if version > FORMAT_VERSION {
        return Err(Error::FutureVersion { path: path.into(), found: version, supported: FORMAT_VERSION });
    }
    if version == 0 {
        return Err(Error::corrupt(path, "format version 0"));
    }
    if start.len() < PREFIX_LEN {
        return Err(Error::Truncated { path: path.into(), expected: PREFIX_LEN as u64, found });
    }
    if crc32(&start[..36]) != u32_at(start, 36) {
        return Err(Error::corrupt(path, "checksum mismatch in the 40-byte prefix"));
    }
    let flags = u32_at(start, 12);
    if flags != 0 {
        return Err(Error::corrupt(path, format!("unknown flags {flags:#x}")));
    }
    let (h, d) = (u64_at(start, 16), u64_at(start, 24));
    let expected = (PREFIX_LEN as u64)
        .checked_add(h)
        .and_then(|n| n.checked_add(d))
        .ok_or_else(|| Error::corrupt(path, format!("impossible lengths: header {h}, data {d}")))?;
    if h > codec::MAX_HEADER as u64 {
        return Err(Error::corrupt(path, format!("header of {h} bytes exceeds the {}-byte limit", codec::MAX_HEADER)));
    }
    if expected > found {
        return Err(Error::Truncated { path: path.into(), expected, found });
    }
    if expected < found {
        return Err(Error::corrupt(path, format!("{} bytes after the end of the data", found - expected)));
    }
    Ok(Prefix { header_len: h, data_len: d, body_crc: u32_at(start, 32) })
}

/// Decodes the header's bytes and checks that its tensors end exactly at the end of the data
/// section, so that the data is read only when the header accounts for all of it.
pub(crate) fn decode_header(prefix: &Prefix, bytes: &[u8], path: &Path) -> Result<Header> {
    let header: Header = codec::decode(bytes)
        .map_err(|e| Error::corrupt(path, format!("header: {e} (the file is damaged or not written by pente)")))?;
    let slots = header.optimizer.iter().flat_map(|o| o.slots.iter().map(|s| &s.tensor));
    let mut used = 0u64;
    for e in header.tensors.iter().chain(slots) {
        let end = e.offset.checked_add(e.len).ok_or_else(|| {
            Error::corrupt(path, format!("tensor `{}`: bytes {}..+{} overflow", e.name, e.offset, e.len))
        })?;
        used = used.max(end);
    }
    if used != prefix.data_len {
        return Err(Error::corrupt(
            path,
            format!("the tensors end at byte {used} of the {}-byte data section", prefix.data_len),
        ));
    }
    Ok(header)
}

/// Checks the body's checksum and builds the checkpoint from a decoded header and the data
/// section. `header_bytes` are the header's bytes, for the checksum.
pub(crate) fn build(
    prefix: &Prefix,
    header_bytes: &[u8],
    header: Header,
    data: &[u8],
    path: &Path,
) -> Result<Checkpoint> {
    let mut crc = Crc32::new();
    crc.update(header_bytes);
    crc.update(data);
    if crc.finish() != prefix.body_crc {
        return Err(Error::corrupt(path, "checksum mismatch (the file is damaged)"));
    }
    let tensor = |e: &Entry| -> Result<AnyTensor> {
        let dtype = DType::from_name(&e.dtype)
            .ok_or_else(|| Error::UnsupportedDtype { name: e.name.clone(), dtype: e.dtype.clone() })?;
        let bad = |why: String| Error::corrupt(path, format!("tensor `{}`: {why}", e.name));
        let end = e.offset.checked_add(e.len).filter(|&end| end <= data.len() as u64).ok_or_else(|| {
            bad(format!("bytes {}..+{} lie outside the {}-byte data section", e.offset, e.len, data.len()))
        })?;
        let shape = e
            .shape
            .iter()
            .map(|&s| usize::try_from(s).ok())
            .collect::<Option<Vec<usize>>>()
            .ok_or_else(|| bad(format!("shape {:?} overflows", e.shape)))?;
        AnyTensor::from_le_bytes(dtype, &shape, &data[e.offset as usize..end as usize])
            .ok_or_else(|| bad(format!("shape {:?} of {} does not match its {} bytes", e.shape, e.dtype, e.len)))
    };
    let mut tensors = IndexMap::with_capacity(header.tensors.len().min(data.len() + 1));
    for e in &header.tensors {
        if tensors.insert(e.name.clone(), tensor(e)?).is_some() {
            return Err(Error::corrupt(path, format!("tensor `{}` appears twice", e.name)));
        }
    }
    let optimizer = match header.optimizer {
        None => None,
        Some(o) => Some(OptimizerState {
            kind: o.kind,
            step: o.step,
            scalars: o.scalars,
            slots: o
                .slots
                .iter()
                .map(|s| Ok(SlotState { param: s.param.clone(), slot: s.slot.clone(), tensor: tensor(&s.tensor)? }))
                .collect::<Result<Vec<_>>>()?,
        }),
    };
    Ok(Checkpoint { tensors, optimizer, step: header.step, metadata: header.metadata.into_iter().collect() })
}

/// Parses and validates a whole file held in memory. `path` only labels errors.
pub(crate) fn decode(bytes: &[u8], path: &Path) -> Result<Checkpoint> {
    let prefix = check_prefix(&bytes[..bytes.len().min(PREFIX_LEN)], bytes.len() as u64, path)?;
    // The prefix matched the slice's length, so every length fits in it, hence in usize.
    let (header_bytes, data) = bytes[PREFIX_LEN..].split_at(prefix.header_len as usize);
    let header = decode_header(&prefix, header_bytes, path)?;
    build(&prefix, header_bytes, header, data, path)
}

/// Reads and validates the file at `path`, reading no more than its prefix declares: the prefix
/// (40 bytes) first, then the header, and the data section only once the header accounts for it.
pub(crate) fn load(path: &Path) -> Result<Checkpoint> {
    let io = |e| Error::io(path, e);
    let (file, file_len) = untrusted::open_regular(path).map_err(io)?;
    let mut file = std::io::BufReader::new(file);
    let start = untrusted::read_exactly(&mut file, file_len.min(PREFIX_LEN as u64)).map_err(io)?;
    let prefix = check_prefix(&start, file_len, path)?;
    let header_bytes = untrusted::read_exactly(&mut file, prefix.header_len).map_err(io)?;
    let header = decode_header(&prefix, &header_bytes, path)?;
    let data = untrusted::read_exactly(&mut file, prefix.data_len).map_err(io)?;
    build(&prefix, &header_bytes, header, &data, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::Tensor;

    fn sample() -> Checkpoint {
        let mut c = Checkpoint::default();
        c.tensors.insert("w".into(), AnyTensor::F32(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2])));
        c.tensors.insert("b".into(), AnyTensor::F64(Tensor::from(vec![0.5, -0.5])));
        c.step = 7;
        c.metadata.insert("config".into(), "{\"n\": 2}".into());
        c
    }

    #[test]
    fn round_trip_preserves_everything_in_order() {
        let c = sample();
        let back = decode(&encode(&c), Path::new("x")).expect("valid");
        assert_eq!(back, c);
        assert_eq!(back.tensors.keys().collect::<Vec<_>>(), ["w", "b"]);
    }

    #[test]
    fn every_truncation_is_a_typed_error() {
        let bytes = encode(&sample());
        for n in 0..bytes.len() {
            match decode(&bytes[..n], Path::new("x")) {
                Err(Error::Truncated { .. }) => {}
                other => panic!("{n} bytes: {other:?}"),
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let bytes = encode(&sample());
        for i in 0..bytes.len() {
            for bit in [0, 3, 7] {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                assert!(decode(&b, Path::new("x")).is_err(), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn foreign_and_future_files_are_named_as_such() {
        let bytes = encode(&sample());
        let mut foreign = bytes.clone();
        foreign[0] = b'X';
        assert!(matches!(decode(&foreign, Path::new("x")), Err(Error::Foreign { .. })));
        assert!(matches!(decode(b"PK\x03\x04", Path::new("x")), Err(Error::Foreign { .. })));
        let future = frame(b"", b"", FORMAT_VERSION + 1);
        let e = decode(&future, Path::new("m.ckpt")).expect_err("future");
        assert!(matches!(e, Error::FutureVersion { found: 2, .. }), "{e}");
        assert!(e.to_string().contains("m.ckpt"), "{e}");
    }

    #[test]
    fn a_tiny_file_claiming_a_terabyte_tensor_is_an_error_not_an_allocation() {
        // A valid frame whose header claims a tensor of 2^38 f32 elements (1 TiB) with no data.
        let header = codec::encode(&Header {
            step: 0,
            metadata: vec![],
            tensors: vec![Entry {
                name: "huge".into(),
                dtype: "f32".into(),
                shape: vec![1 << 38],
                offset: 0,
                len: 4 << 38,
            }],
            optimizer: None,
        });
        let file = frame(&header, &[], FORMAT_VERSION);
        assert!(file.len() < 80, "{}", file.len());
        let e = decode(&file, Path::new("huge.ckpt")).expect_err("must fail");
        assert!(e.to_string().contains("huge"), "{e}");

        // A 40-byte file (the prefix alone) declaring 1 TiB of data: truncated, caught before
        // anything is read or allocated.
        let mut big = frame(&[], &[], FORMAT_VERSION);
        assert_eq!(big.len(), 40);
        big[24..32].copy_from_slice(&(1u64 << 40).to_le_bytes());
        let head = crc32(&big[..36]);
        big[36..40].copy_from_slice(&head.to_le_bytes());
        assert!(matches!(decode(&big, Path::new("x")), Err(Error::Truncated { .. })));

        // A header whose string length field claims 2^60 bytes: bincode's limit stops it.
        let mut hostile = vec![0u8]; // step 0
        hostile.push(1); // one metadata entry
        hostile.push(0xFF); // u64 length marker in bincode's varint
        hostile.extend_from_slice(&(1u64 << 60).to_le_bytes());
        let file = frame(&hostile, &[], FORMAT_VERSION);
        assert!(matches!(decode(&file, Path::new("x")), Err(Error::Corrupt { .. })));
    }
}

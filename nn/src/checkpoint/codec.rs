//! The codec of the checkpoint header: serde + bincode 2.0.1. This is the only file that names
//! bincode; swapping the codec means changing these two functions (and bumping the format
//! version).
//!
//! bincode 2.0.1 can panic or try huge allocations on hostile input without a byte limit, so
//! decoding always sets one: the smallest of a few fixed limits (bincode takes it as a const
//! generic) that is at least 16× the header's actual size, so a length field in a hostile header
//! can make bincode reserve at most that much.

use bincode::config;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The largest header this build decodes.
pub(crate) const MAX_HEADER: usize = 16 << 20;

/// Encodes a header.
pub(crate) fn encode<S: Serialize>(value: &S) -> Vec<u8> {
    bincode::serde::encode_to_vec(value, config::standard())
        .expect("encoding plain structs, strings and numbers into a Vec cannot fail")
}

/// Decodes a header that must fill `bytes` exactly.
pub(crate) fn decode<D: DeserializeOwned>(bytes: &[u8]) -> Result<D, String> {
    const KB: usize = 1 << 10;
    const MB: usize = 1 << 20;
    let n = bytes.len();
    let (value, used) = if n <= 64 * KB {
        bincode::serde::decode_from_slice(bytes, config::standard().with_limit::<{ MB }>())
    } else if n <= MB {
        bincode::serde::decode_from_slice(bytes, config::standard().with_limit::<{ 16 * MB }>())
    } else if n <= MAX_HEADER {
        bincode::serde::decode_from_slice(bytes, config::standard().with_limit::<{ 256 * MB }>())
    } else {
        return Err(format!("header of {n} bytes exceeds the {MAX_HEADER}-byte limit"));
    }
    .map_err(|e| e.to_string())?;
    if used != n {
        return Err(format!("{} stray bytes after the header", n - used));
    }
    Ok(value)
}

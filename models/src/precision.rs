//! The training precision as the models' configurations store it: [`Precision`] saved by name
//! (`"f32"`, `"bf16"`) in a checkpoint's JSON, read as f32 from checkpoints that predate it.
//! The weights themselves stay f32 whatever the precision (see [`autograd::precision`]).

use autograd::precision::Precision;
use serde::{Deserialize, Deserializer, Serializer};

/// `#[serde(with = "crate::precision::by_name")]`: a [`Precision`] as its name.
pub mod by_name {
    use super::*;

    /// Writes the precision's name.
    pub fn serialize<S: Serializer>(precision: &Precision, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(precision.name())
    }

    /// Reads a precision's name; any other text is an error naming it.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Precision, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses `--precision`'s value (for clap's `value_parser`).
pub fn parse(s: &str) -> Result<Precision, String> {
    s.parse()
}

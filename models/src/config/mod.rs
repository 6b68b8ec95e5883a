//! One configuration path for every model: its configuration is a `serde` struct whose
//! defaults live in its `Default` (the command line reads them from there), which checks itself
//! with one `validate()` for values from flags and from files alike, and which a checkpoint
//! stores as it is, as one JSON metadata entry ([`CONFIG_KEY`], and [`TRAIN_KEY`] for a
//! training run), as nanoGPT keeps `model_args` and `config` beside the weights.
//!
//! Checkpoints written before this layout hold one metadata entry per field; [`legacy`] reads
//! them into the same structs, so that they keep loading.
//!
//! ```
//! use models::config::{self, Invalid};
//! use std::collections::BTreeMap;
//!
//! #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
//! struct Widths { hidden: usize }
//!
//! let mut meta = BTreeMap::new();
//! meta.insert(config::CONFIG_KEY.to_string(), config::to_json(&Widths { hidden: 8 }));
//! let back: Widths = config::from_json(&meta, config::CONFIG_KEY).expect("present").expect("parses");
//! assert_eq!(back, Widths { hidden: 8 });
//! assert_eq!(Invalid::at_most("hidden", 9, 8, "").unwrap_err().to_string(), "hidden = 9 is above the limit 8");
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub mod legacy;
pub mod limits;

/// The metadata key holding a model's configuration (with what rebuilding it needs, such as
/// a vocabulary or the attractors) as JSON.
pub const CONFIG_KEY: &str = "config";

/// The metadata key holding a training run's configuration and state (char-lm) as JSON.
pub const TRAIN_KEY: &str = "train";

/// `value` as JSON.
///
/// # Panics
/// Never for the plain structs of this crate (their fields are numbers, strings, lists and
/// enums); a type whose `Serialize` fails would panic here.
pub fn to_json<C: Serialize>(value: &C) -> String {
    serde_json::to_string(value).expect("a configuration of plain fields serializes")
}

/// The struct stored as JSON under `key`: `None` if the key is absent (a checkpoint written
/// before this layout), or the parser's message naming the field that does not fit.
pub fn from_json<C: DeserializeOwned>(meta: &BTreeMap<String, String>, key: &str) -> Option<Result<C, String>> {
    meta.get(key).map(|json| serde_json::from_str(json).map_err(|e| format!("its `{key}` entry: {e}")))
}

/// A configuration value out of its range: the field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The field, as named in the struct and the checkpoint (`n_embd`, `test_points`).
    pub field: &'static str,
    /// What is wrong, after the field's name: `"= 0 must be at least 1"`.
    pub problem: String,
}

impl Invalid {
    /// An error for `field`.
    pub fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Invalid { field, problem: problem.into() }
    }

    /// Checks `value ≤ limit`; `why` (may be empty) says where the limit comes from.
    ///
    /// # Errors
    /// `"FIELD = VALUE is above the limit LIMIT (WHY)"`.
    pub fn at_most(field: &'static str, value: u128, limit: u128, why: &str) -> Result<(), Invalid> {
        if value <= limit {
            return Ok(());
        }
        let why = if why.is_empty() { String::new() } else { format!(" ({why})") };
        Err(Invalid::new(field, format!("= {value} is above the limit {limit}{why}")))
    }

    /// Checks `1 ≤ value ≤ limit`.
    ///
    /// # Errors
    /// As [`Invalid::at_most`], or `"FIELD = 0 must be at least 1"`.
    pub fn in_range(field: &'static str, value: u128, limit: u128) -> Result<(), Invalid> {
        if value == 0 {
            return Err(Invalid::new(field, "= 0 must be at least 1"));
        }
        Self::at_most(field, value, limit, "")
    }

    /// The same error with the field written as the command-line flag that set it
    /// (`n_embd` → `--n-embd`, or the name given in `renames`).
    pub fn as_flag(&self, renames: &[(&str, &str)]) -> String {
        let flag = renames
            .iter()
            .find(|(field, _)| *field == self.field)
            .map_or_else(|| format!("--{}", self.field.replace('_', "-")), |(_, flag)| (*flag).to_string());
        format!("{flag} {}", self.problem)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.problem)
    }
}

impl std::error::Error for Invalid {}

impl From<Invalid> for crate::Error {
    fn from(e: Invalid) -> Self {
        crate::Error::Config(e.to_string())
    }
}

/// Checks, before anything is built, that the parameters a configuration describes are the
/// tensors a checkpoint holds: `described` elements (computed from the configuration with
/// checked arithmetic; `None` if it overflows) against the `present` elements of its tensors.
///
/// # Errors
/// A message giving both counts.
pub fn check_described(described: Option<u128>, present: u128) -> Result<(), String> {
    match described {
        Some(d) if d == present => Ok(()),
        Some(d) => Err(format!("its configuration describes {d} parameters, its tensors hold {present}")),
        None => {
            Err(format!("its configuration describes more parameters than can be counted, its tensors hold {present}"))
        }
    }
}

/// The elements of a checkpoint's tensors.
pub fn present(ckpt: &nn::Checkpoint) -> u128 {
    ckpt.tensors.values().map(|t| t.shape().iter().map(|&d| d as u128).product::<u128>()).sum()
}

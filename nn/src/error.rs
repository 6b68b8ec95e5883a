//! [`Error`]: the one error type of the crate. Every variant names the file or tensor it is about.

use std::path::PathBuf;

use crate::checkpoint::LoadReport;

/// Everything that can go wrong in `nn` at run time: file IO, checkpoint and safetensors
/// decoding, and loading tensors into a model. (Shape mistakes in layers are programming errors
/// and panic instead.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading, writing, syncing or renaming a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file (or directory) concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file does not start with the pente checkpoint magic number.
    #[error("{path}: not a pente checkpoint (its first bytes are not the magic number)")]
    Foreign {
        /// The file concerned.
        path: PathBuf,
    },
    /// The file was written by a newer version of the format than this build reads.
    #[error("{path}: checkpoint format version {found}, but this build reads versions up to {supported}")]
    FutureVersion {
        /// The file concerned.
        path: PathBuf,
        /// The version the file declares.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// The file ends before the lengths its header declares.
    #[error("{path}: truncated: {expected} bytes expected, {found} present")]
    Truncated {
        /// The file concerned.
        path: PathBuf,
        /// How many bytes the header requires.
        expected: u64,
        /// How many there are.
        found: u64,
    },
    /// The file is damaged: a checksum mismatch, an impossible length or an invalid header.
    #[error("{path}: corrupt checkpoint: {reason}")]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A safetensors file could not be read or written.
    #[error("{path}: safetensors: {reason}")]
    Safetensors {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor has an element type this crate does not handle.
    #[error("tensor `{name}`: unsupported dtype {dtype} (f32 and f64 are supported)")]
    UnsupportedDtype {
        /// The tensor's name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// The checkpoint's tensors do not match the model's parameters (strict loading).
    #[error("checkpoint does not match the model: {0}")]
    Mismatch(Box<LoadReport>),
    /// Saved optimizer state does not fit this optimizer or these parameters.
    #[error("optimizer state: {0}")]
    OptimizerState(String),
    /// Training produced a loss that is NaN or ±∞ (see [`check_loss`](crate::check_loss)): the
    /// run has diverged, and going on would only write NaN weights.
    #[error(
        "training diverged at step {step}: the loss is {loss} (lower the learning rate; anomaly \
         mode, Tape::set_anomaly_detection, names the first op that produced a non-finite value)"
    )]
    Diverged {
        /// The step whose loss was not finite (counted from 1).
        step: u64,
        /// That loss.
        loss: f64,
    },
    /// A checkpoint was not saved because a tensor holds NaN or ±∞ (a diverged run): the file
    /// on disk, if any, still holds the previous checkpoint.
    #[error(
        "{path}: not saved: tensor {tensor:?} holds {count} non-finite values (NaN or ±∞), so \
         training has diverged; the file keeps its previous contents (Checkpoint::save_non_finite \
         saves such a checkpoint on purpose)"
    )]
    NonFinite {
        /// The file that was not written.
        path: PathBuf,
        /// The first tensor, by name, with a non-finite value.
        tensor: String,
        /// How many of its values are not finite.
        count: usize,
    },
    /// A PyTorch state dict does not fit the model (see [`torch`](crate::torch)): every
    /// missing, unexpected, mis-shaped, wrongly typed or non-finite entry, one per line. Nothing
    /// was loaded.
    #[error("{path}: the state dict does not fit the model ({} problems):\n  {}", problems.len(), problems.join("\n  "))]
    StateDict {
        /// The file concerned.
        path: PathBuf,
        /// What is wrong, one entry per item.
        problems: Vec<String>,
    },
}

/// `Result<T, nn::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt { path: path.into(), reason: reason.into() }
    }
}

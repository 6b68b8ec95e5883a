//! The errors of an export, a save and a load, each naming what it concerns.

use std::path::PathBuf;

/// What can go wrong exporting, saving or reading an ONNX model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A node of the traced graph has no ONNX form.
    #[error("cannot export op `{op}` (node %{id}, made at {location}): {reason}")]
    Unsupported {
        /// The op's name, as on the tape.
        op: String,
        /// The node's id on the tape.
        id: usize,
        /// The source line that made the node.
        location: String,
        /// Why.
        reason: String,
    },
    /// The description of the graph does not fit the tape (an id that is not on it, a name
    /// given twice, an output that depends on nothing declared).
    #[error("ONNX export: {0}")]
    Graph(String),
    /// A weight or traced value that cannot be right: NaN or infinite.
    #[error("ONNX export: {what} holds a non-finite value (NaN or infinity)")]
    NonFinite {
        /// The parameter or node.
        what: String,
    },
    /// Writing the file failed (the old file, if any, is left as it was).
    #[error(transparent)]
    Save(#[from] nn::Error),
    /// Reading the file failed.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not an ONNX model.
    #[error("{path}: not an ONNX model: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What the protobuf decoder said.
        reason: String,
    },
}

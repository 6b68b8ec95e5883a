//! pente's models, the figures that explain them, and the library side of the `pente` CLI.
//!
//! Each model is a module with a `<Model>Config` (its hyperparameters, with defaults that run
//! in seconds) and a small API that trains it and returns a report. None of them contains
//! derivative code: gradients come from [`autograd`], layers and optimizers from [`nn`].
//!
//! | module | data | command | expected result (seed 0, measured) |
//! | --- | --- | --- | --- |
//! | [`curve_fit`] | fall times of a ball dropped from 6 of the 8 floors of the tower of Pisa (3 drops each, simulated, σ = 0.05 s) | `pente curve-fit` | gradient descent on 0-d parameters lands within 1e-4 (relative) of the exact least-squares fit (measured: 4e-13); RMSE 0.107 s for `a + b·x`, 0.049 s for `a + b·x + c·x²` |
//! | [`physics_fit`] | the same drops as one fall `h(t)`, plus `d²h/dt² = −g` asked at 32 times | `pente curve-fit --physics` | largest fall-time error at the unmeasured floors 5 and 8: 14.3 ms for the network with the law in its loss, 104.8 ms for the quadratic, 17.4 ms for the same network trained on the data alone; `|h'' + g|` RMS 0.023 m/s² (the physics net beats the quadratic asserted) |
//! | [`attractor`] | 4,000 points of the plane labelled by their nearest of 5 seeded attractors; 10,000 fresh test points | `pente attractor` | test accuracy 63.5 % with one hidden neuron, 98.5 % with 8, 99.6 % with 32×32 (≥ 99 % asserted) |
//! | [`char_lm`] | Shakespeare, 1.16 M characters: first 90 % train, last 10 % validate | `pente char-lm train --model bigram` (also `mlp`, `gpt`; `sample`, `eval`) | validation nats/char: bigram 2.5255 vs the exact count-based 2.5224 (within 0.01 asserted), MLP 1.7497 in 202 s, GPT (block 128, 192 wide, 6 heads, 4 layers: 1.82 M parameters) 1.5876 after 2,300 steps in 1,234 s |
//! | [`digits`] | MNIST: 60,000 training and 10,000 test images of handwritten digits, 28×28 (`data/mnist`) | `pente digits train --model mlp` (or `cnn`); `eval`, `predict` | test accuracy 98.38 % for the MLP 784→512→256→10, 99.13 % for the CNN, 10 epochs each (≥ 98.0 % / 99.0 % asserted by `scripts/digits_accuracy.sh`) |
//! | [`figures`] | a 1-D function, a two-weight loss, the activation functions | `pente figures` | three SVG figures: snapshots of a network learning, gradient descent on a loss surface, the activations and their derivatives |
//! | [`inspect`] | a checkpoint or safetensors file | `pente inspect out/attractor.ckpt` | format, metadata, and per tensor its dtype, shape, size and min/mean/std/max; a damaged file gives a one-line error |
//! | all of the above | | `pente demo --out out/` | each model run briefly: its figures and weights (the attractor's also as `.safetensors`) in `out/`, in about 9 s on 2 idle cores with `--release` |
//!
//! Every configuration is a `serde` struct with its defaults in `Default`, checked by one
//! `validate()` for flags and files alike, and saved in each checkpoint as one JSON entry
//! ([`config`]); checkpoints written before that layout still load ([`config::legacy`]).
//!
//! The figures are SVG written by [`plot`] with plotters' SVG backend only: the browser draws the
//! text, so no font or system library is needed to make them.
//!
//! ```
//! use models::curve_fit::{fit, CurveFitConfig};
//!
//! let report = fit(&CurveFitConfig::default()).expect("the default configuration is valid");
//! assert!(report.quadratic.max_rel_gap() < 1e-4); // gradient descent ≈ exact least squares
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod attractor;
pub mod bench;
pub mod char_lm;
pub mod config;
pub mod curve_fit;
pub mod digits;
pub mod figures;
pub mod inspect;
pub mod physics_fit;
pub mod plot;
pub mod precision;
pub mod torch;

/// The progress bar the training functions report to (`indicatif`'s), re-exported so that a
/// caller needs no dependency of its own: `ProgressBar::hidden()` trains silently.
pub use indicatif::ProgressBar;

use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::ProgressStyle;

/// Everything that can go wrong in `models`: the outside world (files, checkpoints) and
/// configurations that cannot be run. Programming errors panic instead, as in [`autograd`].
#[derive(Debug)]
pub enum Error {
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Drawing a figure failed.
    Plot {
        /// The figure being drawn.
        path: PathBuf,
        /// What plotters said.
        message: String,
    },
    /// Saving or loading a checkpoint or safetensors file failed: the loader's typed error.
    Checkpoint(nn::Error),
    /// A checkpoint that loads but does not hold the model asked for.
    NotAModel {
        /// The file.
        path: PathBuf,
        /// The model expected, e.g. `"attractor"`.
        expected: &'static str,
        /// What is missing or wrong.
        reason: String,
    },
    /// A configuration that cannot be run, e.g. fewer measured floors than parameters.
    Config(String),
    /// An MNIST IDX file that cannot be read or is not what it claims (see [`digits::idx`]).
    Idx(digits::IdxError),
    /// A picture that cannot be read or decoded (see [`digits::image`]).
    Image(digits::ImageError),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Error::Plot { path, message } => {
                write!(f, "drawing {}: {message}", path.display())
            }
            Error::Checkpoint(e) => write!(f, "{e}"),
            Error::NotAModel { path, expected, reason } => {
                write!(f, "{}: not a pente {expected} model: {reason}", path.display())
            }
            Error::Config(msg) => write!(f, "invalid configuration: {msg}"),
            Error::Idx(e) => write!(f, "{e}"),
            Error::Image(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            Error::Checkpoint(e) => Some(e),
            Error::Idx(e) => Some(e),
            Error::Image(e) => Some(e),
            _ => None,
        }
    }
}

impl From<digits::IdxError> for Error {
    fn from(e: digits::IdxError) -> Self {
        Error::Idx(e)
    }
}

impl From<digits::ImageError> for Error {
    fn from(e: digits::ImageError) -> Self {
        Error::Image(e)
    }
}

impl From<nn::Error> for Error {
    fn from(e: nn::Error) -> Self {
        Error::Checkpoint(e)
    }
}

/// Makes sure a training run can save to `path` before it starts: creates its directory (as a
/// save would) and checks that a file can be written there, so that a read-only or missing
/// directory is reported at once rather than at the first save, an epoch later.
///
/// # Errors
/// [`Error::Io`] naming the directory, or [`Error::Checkpoint`] naming `path`.
pub fn check_save_path(path: &std::path::Path) -> Result<(), Error> {
    create_parent_dir(path)?;
    Ok(nn::checkpoint::atomic::check_writable(path)?)
}

/// Creates the directory that will hold `path`, if it has one and it is missing.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn create_parent_dir(path: &std::path::Path) -> Result<(), Error> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source }),
        None => Ok(()),
    }
}

/// A progress bar of `len` steps labelled `msg`, drawn on stderr only when both stdout and stderr
/// are terminals (so logs, pipes and tests stay clean).
pub fn progress_bar(len: u64, msg: &str) -> ProgressBar {
    if !(std::io::stdout().is_terminal() && std::io::stderr().is_terminal()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template("{msg:>24} [{bar:32}] {pos}/{len} {elapsed}")
        .expect("the template is a literal that parses")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(msg.to_string());
    bar
}

//! The corpus and its batches: reading the text, the positional 90/10 split, the vocabulary of
//! the training part, random training windows and the validation windows.
//!
//! The split is by position, never by shuffling characters: the first 90 % of the characters
//! train, the last 10 % validate, so no validation line was seen in training.
//!
//! A training batch is `batch` windows of `window` consecutive ids starting at random positions
//! of the training ids. The starts of step `s` depend only on `(seed, s)` ([`batch_starts`]), so
//! a resumed run sees exactly the batches of one that never stopped.

use std::path::{Path, PathBuf};

use autograd::{Rng, SeedableRng};
use rand::RngCore;

use super::vocab::Vocab;
use crate::Error;

/// The Shakespeare corpus, relative to the repository root.
pub const CORPUS: &str = "data/shakespeare/shakespeare.txt";

/// The fraction of characters (from the start) that trains.
pub const TRAIN_FRACTION: f64 = 0.9;

/// [`CORPUS`] from the working directory if it is there, otherwise from the source tree this
/// binary was built from (so tests and `cargo run` work from any directory of the repository).
pub fn default_corpus_path() -> PathBuf {
    let local = PathBuf::from(CORPUS);
    if local.exists() {
        local
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(CORPUS)
    }
}

/// Reads a UTF-8 text file.
///
/// # Errors
/// [`Error::Io`] naming the file if it cannot be read or is not UTF-8.
pub fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })
}

/// Encodes `text` with `vocab`, reporting a character outside it as an error about `source`.
///
/// # Errors
/// [`Error::Io`] (kind `InvalidData`) naming `source`, the character and its line and column.
pub fn encode(vocab: &Vocab, text: &str, source: &Path) -> Result<Vec<usize>, Error> {
    vocab.encode(text).map_err(|e| Error::Io {
        path: source.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    })
}

/// The training text (first `fraction` of the characters) and the validation text (the rest).
pub fn split_text(text: &str, fraction: f64) -> (&str, &str) {
    let n = text.chars().count();
    let cut = (n as f64 * fraction) as usize;
    let byte = text.char_indices().nth(cut).map_or(text.len(), |(i, _)| i);
    text.split_at(byte)
}

/// What identifies a corpus in a checkpoint: a training run continues on the text whose
/// SHA-256 it records.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CorpusId {
    /// The file it was read from, as given (for messages and as `--resume`'s default).
    pub path: PathBuf,
    /// The SHA-256 of its text, in hexadecimal.
    pub sha256: String,
    /// Its characters.
    pub chars: usize,
}

impl CorpusId {
    /// The identity of `text` read from `source`.
    pub fn of(text: &str, source: &Path) -> Self {
        use sha2::{Digest as _, Sha256};
        let digest = Sha256::digest(text.as_bytes());
        let sha256 = digest.iter().map(|b| format!("{b:02x}")).collect();
        CorpusId { path: source.to_path_buf(), sha256, chars: text.chars().count() }
    }
}

/// A corpus split by position and encoded with the vocabulary of its training part.
#[derive(Clone, Debug)]
pub struct Corpus {
    /// Where it comes from and the hash of its text.
    pub id: CorpusId,
    /// The vocabulary (of the training text, plus the unknown symbol if asked for).
    pub vocab: Vocab,
    /// Training ids.
    pub train: Vec<usize>,
    /// Validation ids.
    pub val: Vec<usize>,
}

impl Corpus {
    /// Splits `text` 90/10 by position, builds the vocabulary from the training part, and
    /// encodes both parts. `vocab` replaces the built vocabulary (when resuming or evaluating a
    /// saved model).
    ///
    /// # Errors
    /// [`Error::Io`] naming `source` if the validation part holds a character outside a strict
    /// vocabulary.
    pub fn new(text: &str, source: &Path, unknown_symbol: bool, vocab: Option<Vocab>) -> Result<Self, Error> {
        let (train_text, val_text) = split_text(text, TRAIN_FRACTION);
        let vocab = vocab.unwrap_or_else(|| Vocab::from_text(train_text, unknown_symbol));
        let train = encode(&vocab, train_text, source)?;
        let val = encode(&vocab, val_text, source)?;
        Ok(Corpus { id: CorpusId::of(text, source), vocab, train, val })
    }

    /// Reads and splits [`default_corpus_path`].
    ///
    /// # Errors
    /// As [`read_text`] and [`Corpus::new`].
    pub fn shakespeare(unknown_symbol: bool) -> Result<Self, Error> {
        let path = default_corpus_path();
        Self::new(&read_text(&path)?, &path, unknown_symbol, None)
    }
}

/// A generator seeded from `(seed, step)` alone.
pub fn step_rng(seed: u64, step: u64, stream: u64) -> Rng {
    let mix = step.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03);
    Rng::seed_from_u64(seed ^ mix)
}

/// The starts of step `step`'s `batch` windows of `window` ids in a sequence of `len` ids,
/// uniform over `0..=len − window`.
///
/// # Panics
/// If the sequence is shorter than one window.
#[track_caller]
pub fn batch_starts(len: usize, window: usize, batch: usize, seed: u64, step: u64) -> Vec<usize> {
    assert!(len >= window, "batch_starts: {len} ids cannot hold a window of {window}");
    let choices = (len - window + 1) as u128;
    let mut rng = step_rng(seed, step, 1);
    (0..batch).map(|_| ((rng.next_u64() as u128 * choices) >> 64) as usize).collect()
}

/// The ids of the windows starting at `starts`, concatenated: `(starts.len(), window)`.
pub fn gather_windows(data: &[usize], starts: &[usize], window: usize) -> Vec<usize> {
    starts.iter().flat_map(|&s| data[s..s + window].iter().copied()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_positional_and_complete() {
        let text = "abcdefghij";
        assert_eq!(split_text(text, 0.9), ("abcdefghi", "j"));
        let (a, b) = split_text("ééééé", 0.6);
        assert_eq!((a, b), ("ééé", "éé"));
    }

    #[test]
    fn batch_starts_depend_only_on_seed_and_step() {
        let a = batch_starts(100, 10, 8, 3, 5);
        assert_eq!(a, batch_starts(100, 10, 8, 3, 5));
        assert_ne!(a, batch_starts(100, 10, 8, 3, 6));
        assert!(a.iter().all(|&s| s <= 90));
        assert_eq!(batch_starts(10, 10, 3, 0, 0), vec![0, 0, 0]);
    }

    #[test]
    fn the_shakespeare_validation_part_needs_the_unknown_symbol() {
        // One '{' occurs only in the last 10 %: with a strict vocabulary it is a clear error.
        let err = Corpus::shakespeare(false).expect_err("'{' is not in the training text");
        assert!(err.to_string().contains("'{'"), "{err}");
        let c = Corpus::shakespeare(true).expect("readable");
        assert_eq!(c.vocab.len(), 78); // 77 characters of the training text and the unknown symbol
        assert_eq!(c.train.len() + c.val.len(), 1_158_805);
    }
}

//! Checkpoints: a model's tensors, optional optimizer state, the step count and free-form
//! metadata, saved crash-safely and loaded without trusting the file.
//!
//! - [`Checkpoint`] is the in-memory form; [`Checkpoint::save`] writes it through
//!   [`atomic`] (temporary file, `sync_all`, rename, directory sync), so the file on disk is
//!   always the complete old checkpoint or the complete new one.
//! - [`Checkpoint::load`] checks the magic number, version, lengths and checksums before decoding
//!   ([`format`](mod@format) describes the layout; `codec` is the one place that knows bincode),
//!   and reads no more of the file than its first 40 bytes declare ([`untrusted`]: regular files
//!   only).
//! - [`Checkpoint::load_into`] puts the tensors into a [`ParamStore`], reporting every missing,
//!   unexpected and mis-shaped tensor by name in one [`LoadReport`].
//!
//! ```
//! use nn::{Checkpoint, Linear, ParamStore};
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("model.ckpt");
//!
//! let mut store = ParamStore::<f32>::with_seed(1);
//! Linear::new(store.scope("fc"), 4, 2);
//! Checkpoint::from_store(&store).with_step(10).with_metadata("in_dim", "4").save(&path)?;
//!
//! let mut fresh = ParamStore::<f32>::with_seed(2);
//! Linear::new(fresh.scope("fc"), 4, 2);
//! let ckpt = Checkpoint::load(&path)?;
//! ckpt.load_into(&mut fresh, true)?;
//! assert_eq!(ckpt.step, 10);
//! assert_eq!(ckpt.metadata["in_dim"], "4");
//! assert_eq!(fresh.get(fresh.id("fc.weight").unwrap()), store.get(store.id("fc.weight").unwrap()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use autograd::Float;
use indexmap::IndexMap;

use crate::optim::{Optimizer, OptimizerState};
use crate::{AnyTensor, Error, ParamStore, Result};

pub mod atomic;
pub(crate) mod codec;
mod crc32;
pub mod format;
pub mod untrusted;

pub use format::{FORMAT_VERSION, MAGIC};

/// Everything a training run needs to resume: named tensors, optimizer state, step count and
/// metadata (e.g. the model's hyper-parameters as text).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// The model's tensors by full name, in the store's order.
    pub tensors: IndexMap<String, AnyTensor>,
    /// The optimizer's state, if saved.
    pub optimizer: Option<OptimizerState>,
    /// The training step.
    pub step: u64,
    /// Free-form key → value text.
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// A checkpoint of every parameter of `store` (frozen ones included).
    pub fn from_store<T: Float>(store: &ParamStore<T>) -> Self {
        Checkpoint {
            tensors: store.iter().map(|(_, name, t)| (name.to_string(), AnyTensor::new(t))).collect(),
            ..Default::default()
        }
    }

    /// Adds the optimizer's state (its buffers keyed by `store`'s names).
    pub fn with_optimizer<T: Float>(mut self, optimizer: &dyn Optimizer<T>, store: &ParamStore<T>) -> Self {
        self.optimizer = Some(optimizer.state(store));
        self
    }

    /// Sets the step count.
    pub fn with_step(mut self, step: u64) -> Self {
        self.step = step;
        self
    }

    /// Adds one metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The file's bytes (see [`format`](mod@format)).
    pub fn to_bytes(&self) -> Vec<u8> {
        format::encode(self)
    }

    /// Parses a file's bytes, validating everything.
    ///
    /// # Errors
    /// [`Error::Foreign`], [`Error::FutureVersion`], [`Error::Truncated`], [`Error::Corrupt`] or
    /// [`Error::UnsupportedDtype`], labelled `<memory>`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        format::decode(bytes, Path::new("<memory>"))
    }

    /// Writes the checkpoint to `path` crash-safely: when this returns `Ok`, the new file is
    /// durable; if it fails or the process dies, `path` still holds the previous checkpoint.
    ///
    /// A checkpoint with a NaN or infinite value in any tensor is refused, so that a run that
    /// diverged never overwrites the last good weights; [`Checkpoint::save_non_finite`] writes
    /// one on purpose (to inspect a divergence, say).
    ///
    /// ```
    /// use autograd::Tensor;
    /// use nn::{AnyTensor, Checkpoint};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("m.ckpt");
    /// let mut ckpt = Checkpoint::default();
    /// ckpt.tensors.insert("w".into(), AnyTensor::F32(Tensor::from(vec![1.0, 2.0])));
    /// ckpt.save(&path)?;
    /// ckpt.tensors.insert("w".into(), AnyTensor::F32(Tensor::from(vec![1.0, f32::NAN])));
    /// assert!(matches!(ckpt.save(&path), Err(nn::Error::NonFinite { count: 1, .. })));
    /// assert_eq!(Checkpoint::load(&path)?.tensors["w"].to::<f32>().to_vec(), vec![1.0, 2.0]); // kept
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the file and the tensor; [`Error::Io`] naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        for (name, tensor) in &self.tensors {
            let count = tensor.non_finite_count();
            if count > 0 {
                return Err(Error::NonFinite { path: path.to_path_buf(), tensor: name.clone(), count });
            }
        }
        self.save_non_finite(path)
    }

    /// [`Checkpoint::save`] without its check for NaN and infinite values.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save_non_finite(&self, path: impl AsRef<Path>) -> Result<()> {
        atomic::write_atomic(path.as_ref(), &self.to_bytes())
    }

    /// Reads and validates a checkpoint file, reading no more than its 40-byte prefix declares
    /// and its size allows (see [`format`](mod@format)): a large file that is not a checkpoint fails after
    /// its first bytes.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be read or is not a regular file (a directory, a device such
    /// as `/dev/zero`, a named pipe: each named as such); otherwise as
    /// [`Checkpoint::from_bytes`], naming the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        format::load(path.as_ref())
    }

    /// Copies the tensors into `store`, matched by name and converted to its element type.
    ///
    /// Strict (`strict = true`): any missing, unexpected or mis-shaped tensor is an
    /// [`Error::Mismatch`] listing all of them, and nothing is changed. Lenient: every tensor
    /// that matches is loaded and the report lists the rest.
    ///
    /// # Errors
    /// [`Error::Mismatch`] in strict mode.
    pub fn load_into<T: Float>(&self, store: &mut ParamStore<T>, strict: bool) -> Result<LoadReport> {
        load_tensors(&self.tensors, store, strict)
    }

    /// Restores the saved optimizer state into `optimizer`.
    ///
    /// # Errors
    /// [`Error::OptimizerState`] if none was saved or it does not fit.
    pub fn restore_optimizer<T: Float>(&self, optimizer: &mut dyn Optimizer<T>, store: &ParamStore<T>) -> Result<()> {
        let state = self
            .optimizer
            .as_ref()
            .ok_or_else(|| Error::OptimizerState("the checkpoint holds no optimizer state".into()))?;
        optimizer.load_state(store, state)
    }
}

impl<T: Float> ParamStore<T> {
    /// Saves every parameter to `path` (see [`Checkpoint::save`]).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        Checkpoint::from_store(self).save(path)
    }

    /// Loads every parameter from `path`, strictly (see [`Checkpoint::load_into`]).
    ///
    /// # Errors
    /// As [`Checkpoint::load`] and [`Checkpoint::load_into`].
    pub fn load(&mut self, path: impl AsRef<Path>) -> Result<LoadReport> {
        Checkpoint::load(path)?.load_into(self, true)
    }
}

/// A tensor whose shape differs between file and model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeMismatch {
    /// Its name.
    pub name: String,
    /// The model's shape.
    pub expected: Vec<usize>,
    /// The file's shape.
    pub found: Vec<usize>,
}

/// What loading tensors into a model did: every name in exactly one list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Loaded.
    pub loaded: Vec<String>,
    /// In the model, not in the file (left as they were).
    pub missing: Vec<String>,
    /// In the file, not in the model (ignored).
    pub unexpected: Vec<String>,
    /// In both with different shapes (left as they were).
    pub mismatched: Vec<ShapeMismatch>,
    /// Loaded with a conversion between `f32` and `f64`.
    pub converted: Vec<String>,
    /// Of those, the ones rounded from `f64` to `f32`: a lossy conversion, which the report's
    /// `Display` says.
    pub narrowed: Vec<String>,
}

impl LoadReport {
    /// Whether everything matched (conversions aside).
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing {}", self.missing.join(", ")));
        }
        if !self.unexpected.is_empty() {
            parts.push(format!("unexpected {}", self.unexpected.join(", ")));
        }
        if !self.mismatched.is_empty() {
            let m: Vec<String> = self
                .mismatched
                .iter()
                .map(|m| format!("{} (model {:?}, file {:?})", m.name, m.expected, m.found))
                .collect();
            parts.push(format!("mis-shaped {}", m.join(", ")));
        }
        if !self.narrowed.is_empty() {
            parts.push(format!(
                "{} rounded from f64 to f32 (lossy: {})",
                self.narrowed.len(),
                self.narrowed.join(", ")
            ));
        }
        if self.is_complete() {
            parts.insert(0, format!("all {} tensors loaded", self.loaded.len()));
        }
        write!(f, "{}", parts.join("; "))
    }
}

/// Matches `tensors` against `store` by name; see [`Checkpoint::load_into`].
pub(crate) fn load_tensors<T: Float>(
    tensors: &IndexMap<String, AnyTensor>,
    store: &mut ParamStore<T>,
    strict: bool,
) -> Result<LoadReport> {
    let mut report = LoadReport::default();
    let mut todo = Vec::new();
    for (_, name, t) in store.iter() {
        match tensors.get(name) {
            None => report.missing.push(name.to_string()),
            Some(src) if src.shape() != t.shape() => report.mismatched.push(ShapeMismatch {
                name: name.to_string(),
                expected: t.shape().to_vec(),
                found: src.shape().to_vec(),
            }),
            Some(src) => todo.push((name.to_string(), src)),
        }
    }
    report.unexpected = tensors.keys().filter(|k| store.id(k).is_none()).cloned().collect();
    if strict && !report.is_complete() {
        return Err(Error::Mismatch(Box::new(report)));
    }
    for (name, src) in todo {
        let id = store.id(&name).expect("name taken from the store");
        if src.dtype() != crate::DType::of::<T>() {
            report.converted.push(name.clone());
            if src.dtype() == crate::DType::F64 {
                report.narrowed.push(name.clone());
            }
        }
        store.set(id, src.to());
        report.loaded.push(name);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::Tensor;

    #[test]
    fn strict_loading_reports_every_problem_by_name_and_changes_nothing() {
        let mut store = ParamStore::<f32>::default();
        store.add("a", Tensor::zeros(&[2]));
        store.add("b", Tensor::zeros(&[2, 2]));
        store.add("c", Tensor::zeros(&[1]));
        let mut ckpt = Checkpoint::default();
        ckpt.tensors.insert("a".into(), AnyTensor::F32(Tensor::ones(&[2])));
        ckpt.tensors.insert("b".into(), AnyTensor::F32(Tensor::ones(&[4])));
        ckpt.tensors.insert("z".into(), AnyTensor::F64(Tensor::ones(&[1])));
        let err = ckpt.load_into(&mut store, true).expect_err("mismatch");
        let msg = err.to_string();
        assert!(
            msg.contains("missing c") && msg.contains("unexpected z") && msg.contains("b (model [2, 2], file [4])"),
            "{msg}"
        );
        assert_eq!(store.get(store.id("a").unwrap()).data(), &[0.0, 0.0]);

        let report = ckpt.load_into(&mut store, false).expect("lenient");
        assert_eq!(report.loaded, ["a"]);
        assert_eq!(report.missing, ["c"]);
        assert_eq!(report.unexpected, ["z"]);
        assert_eq!(report.mismatched.len(), 1);
        assert_eq!(store.get(store.id("a").unwrap()).data(), &[1.0, 1.0]);
    }

    #[test]
    fn f64_tensors_load_into_an_f32_model_with_a_note() {
        let mut store = ParamStore::<f32>::default();
        store.add("a", Tensor::zeros(&[1]));
        let mut ckpt = Checkpoint::default();
        ckpt.tensors.insert("a".into(), AnyTensor::F64(Tensor::from(vec![0.25])));
        let r = ckpt.load_into(&mut store, true).expect("ok");
        assert_eq!(r.converted, ["a"]);
        assert_eq!(r.narrowed, ["a"]);
        assert_eq!(r.to_string(), "all 1 tensors loaded; 1 rounded from f64 to f32 (lossy: a)");
        assert_eq!(store.get(store.id("a").unwrap()).data(), &[0.25]);
        // Widening is exact and says nothing more.
        let mut wide = ParamStore::<f64>::default();
        wide.add("a", Tensor::zeros(&[1]));
        ckpt.tensors.insert("a".into(), AnyTensor::F32(Tensor::from(vec![0.25f32])));
        let r = ckpt.load_into(&mut wide, true).expect("ok");
        assert_eq!((r.converted.len(), r.narrowed.len(), r.to_string()), (1, 0, "all 1 tensors loaded".to_string()));
    }
}

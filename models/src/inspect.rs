//! What a weights file holds, for `pente inspect`: its format and version, its metadata, and per
//! tensor the name, dtype, shape, parameter count and min/mean/std/max.
//!
//! Files are read with `nn`'s loaders ([`nn::Checkpoint::load`], [`nn::safetensors::import`]),
//! which check everything before trusting it; a damaged file gives their typed error.
//!
//! ```no_run
//! let report = models::inspect::inspect("out/attractor.ckpt".as_ref()).expect("a readable checkpoint");
//! print!("{report}");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use nn::AnyTensor;

use crate::Error;

/// The file formats `inspect` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// pente's native checkpoint, with its format version.
    Checkpoint {
        /// The version in the file's prefix.
        version: u32,
    },
    /// A safetensors file.
    Safetensors,
}

/// Statistics of one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorStats {
    /// The tensor's name.
    pub name: String,
    /// `"f32"` or `"f64"`.
    pub dtype: &'static str,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its number of elements.
    pub numel: usize,
    /// Smallest element (NaN for an empty tensor).
    pub min: f64,
    /// Mean of the elements.
    pub mean: f64,
    /// Population standard deviation of the elements.
    pub std: f64,
    /// Largest element.
    pub max: f64,
}

/// Everything `pente inspect` prints about a file.
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// The file.
    pub path: PathBuf,
    /// Its format.
    pub format: Format,
    /// The training step recorded (checkpoints only).
    pub step: Option<u64>,
    /// The optimizer whose state is saved, and its step (checkpoints only).
    pub optimizer: Option<(String, u64)>,
    /// Free-form metadata.
    pub metadata: BTreeMap<String, String>,
    /// The tensors, in file order.
    pub tensors: Vec<TensorStats>,
}

/// Reads `path` (a pente checkpoint, recognized by its magic number, or else a safetensors file)
/// and summarizes it.
///
/// # Errors
/// [`Error::Io`] if the file cannot be opened; [`Error::Checkpoint`] with the loader's error for
/// a damaged, truncated or foreign file.
pub fn inspect(path: &Path) -> Result<Inspection, Error> {
    let mut prefix = Vec::with_capacity(12);
    std::fs::File::open(path)
        .and_then(|f| f.take(12).read_to_end(&mut prefix))
        .map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let is_safetensors = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
    if prefix.starts_with(&nn::checkpoint::MAGIC) || !is_safetensors {
        let ckpt = nn::Checkpoint::load(path)?;
        // The version is the u32 after the magic (nn::checkpoint::format); the loader has
        // just checked it.
        let version = prefix.get(8..12).and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes);
        Ok(Inspection {
            path: path.to_path_buf(),
            format: Format::Checkpoint { version },
            step: Some(ckpt.step),
            optimizer: ckpt.optimizer.as_ref().map(|o| (o.kind.clone(), o.step)),
            metadata: ckpt.metadata.clone(),
            tensors: ckpt.tensors.iter().map(|(n, t)| stats(n, t)).collect(),
        })
    } else {
        let (tensors, metadata) = nn::safetensors::import(path)?;
        Ok(Inspection {
            path: path.to_path_buf(),
            format: Format::Safetensors,
            step: None,
            optimizer: None,
            metadata,
            tensors: tensors.iter().map(|(n, t)| stats(n, t)).collect(),
        })
    }
}

fn stats(name: &str, t: &AnyTensor) -> TensorStats {
    let values = t.to::<f64>();
    let v = values.data();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    TensorStats {
        name: name.to_string(),
        dtype: t.dtype().name(),
        shape: t.shape().to_vec(),
        numel: t.numel(),
        min: v.iter().copied().fold(f64::NAN, f64::min),
        mean,
        std: var.sqrt(),
        max: v.iter().copied().fold(f64::NAN, f64::max),
    }
}

impl Inspection {
    /// Total number of elements over all tensors.
    pub fn num_params(&self) -> usize {
        self.tensors.iter().map(|t| t.numel).sum()
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "file:      {}", self.path.display())?;
        match self.format {
            Format::Checkpoint { version } => writeln!(f, "format:    pente checkpoint, version {version}")?,
            Format::Safetensors => writeln!(f, "format:    safetensors")?,
        }
        if let Some(step) = self.step {
            writeln!(f, "step:      {step}")?;
        }
        match &self.optimizer {
            Some((kind, step)) => writeln!(f, "optimizer: {kind} state at step {step}")?,
            None if self.step.is_some() => writeln!(f, "optimizer: none saved")?,
            None => {}
        }
        if self.metadata.is_empty() {
            writeln!(f, "metadata:  none")?;
        } else {
            writeln!(f, "metadata:")?;
            let width = self.metadata.keys().map(|k| k.chars().count()).max().unwrap_or(0);
            for (k, v) in &self.metadata {
                writeln!(f, "  {k:<width$} = {v}")?;
            }
        }
        writeln!(f, "tensors:   {} holding {} parameters", self.tensors.len(), self.num_params())?;
        let name_w = self.tensors.iter().map(|t| t.name.chars().count()).max().unwrap_or(4).max(4);
        let shapes: Vec<String> = self.tensors.iter().map(|t| format!("{:?}", t.shape)).collect();
        let shape_w = shapes.iter().map(String::len).max().unwrap_or(5).max(5);
        writeln!(
            f,
            "  {:<name_w$}  dtype  {:<shape_w$}  {:>8}  {:>10}  {:>10}  {:>10}  {:>10}",
            "name", "shape", "params", "min", "mean", "std", "max"
        )?;
        for (t, shape) in self.tensors.iter().zip(&shapes) {
            writeln!(
                f,
                "  {:<name_w$}  {:<5}  {:<shape_w$}  {:>8}  {:>10.4}  {:>10.4}  {:>10.4}  {:>10.4}",
                t.name, t.dtype, shape, t.numel, t.min, t.mean, t.std, t.max
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::Tensor;
    use nn::{Checkpoint, ParamStore};

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pente-inspect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir is writable");
        dir.join(name)
    }

    #[test]
    fn checkpoint_and_safetensors_show_the_same_tensors() {
        let mut store = ParamStore::<f32>::with_seed(0);
        store.add("w", Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]));
        let ckpt = temp("w.ckpt");
        Checkpoint::from_store(&store).with_step(7).with_metadata("model", "test").save(&ckpt).expect("writable");
        let st = temp("w.safetensors");
        nn::safetensors::export(&store, &st, &BTreeMap::new()).expect("writable");

        let a = inspect(&ckpt).expect("just written");
        assert_eq!(a.format, Format::Checkpoint { version: nn::checkpoint::FORMAT_VERSION });
        assert_eq!((a.step, a.metadata["model"].as_str()), (Some(7), "test"));
        let b = inspect(&st).expect("just written");
        assert_eq!(b.format, Format::Safetensors);
        for i in [&a, &b] {
            let t = &i.tensors[0];
            assert_eq!((t.name.as_str(), t.dtype, t.shape.as_slice(), t.numel), ("w", "f32", &[2, 2][..], 4));
            assert_eq!((t.min, t.mean, t.max), (1.0, 2.5, 4.0));
            assert!((t.std - 1.25f64.sqrt()).abs() < 1e-12);
        }
        assert!(a.to_string().contains("pente checkpoint, version 1"));
    }

    #[test]
    fn damaged_checkpoint_is_the_loaders_error() {
        let mut store = ParamStore::<f32>::with_seed(0);
        store.add("w", Tensor::from_vec(vec![1.0; 16], &[4, 4]));
        let path = temp("damaged.ckpt");
        Checkpoint::from_store(&store).save(&path).expect("writable");
        let mut bytes = std::fs::read(&path).expect("just written");
        let last = bytes.len() - 1;
        bytes[last] ^= 0xFF;
        std::fs::write(&path, &bytes).expect("writable");
        let err = inspect(&path).expect_err("a flipped byte fails the checksum");
        assert!(matches!(err, Error::Checkpoint(_)), "{err}");
        assert!(!err.to_string().contains('\n'));
    }
}

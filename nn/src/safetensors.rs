//! Export to and import from [safetensors](https://github.com/huggingface/safetensors), the
//! format PyTorch, JAX and NumPy users read with `safetensors.numpy.load_file`.
//!
//! Tensors keep their names (`"blocks.0.attn.qkv.weight"`) and dtypes (`F32`/`F64`). Note that
//! [`Linear`](crate::Linear) weights are stored `(in_dim, out_dim)`, not as a PyTorch
//! `nn.Linear`'s; [`torch`](crate::torch) writes and reads PyTorch's names and layouts instead.
//! Files are written with the same crash-safe replace as checkpoints.
//!
//! ```
//! use nn::{Linear, ParamStore};
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("model.safetensors");
//! let mut store = ParamStore::<f32>::with_seed(0);
//! Linear::new(store.scope("fc"), 3, 2);
//! nn::safetensors::export(&store, &path, &Default::default())?;
//!
//! let mut other = ParamStore::<f32>::with_seed(1);
//! Linear::new(other.scope("fc"), 3, 2);
//! nn::safetensors::load_into(&mut other, &path, true)?;
//! assert_eq!(other.get(other.id("fc.bias").unwrap()), store.get(store.id("fc.bias").unwrap()));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use autograd::Float;
use indexmap::IndexMap;
use safetensors::tensor::{Dtype, Metadata, SafeTensors, View};

use crate::checkpoint::{atomic, load_tensors, untrusted};
use crate::{AnyTensor, DType, Error, LoadReport, ParamStore, Result};

/// One tensor's bytes, as the `safetensors` crate wants to see it.
struct Raw {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Raw {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// The safetensors bytes of every parameter of `store`, with `metadata` as the file's
/// `__metadata__`.
///
/// # Errors
/// [`Error::Safetensors`] if the crate refuses (e.g. a header over its 100 MB limit).
pub fn to_bytes<T: Float>(store: &ParamStore<T>, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let dtype = match DType::of::<T>() {
        DType::F32 => Dtype::F32,
        DType::F64 => Dtype::F64,
    };
    let raws: Vec<(String, Raw)> = store
        .iter()
        .map(|(_, name, t)| {
            let bytes = AnyTensor::new(t).to_le_bytes();
            (name.to_string(), Raw { dtype, shape: t.shape().to_vec(), bytes })
        })
        .collect();
    let info: HashMap<String, String> = metadata.clone().into_iter().collect();
    safetensors::serialize(raws.iter().map(|(k, r)| (k.as_str(), r)), (!info.is_empty()).then_some(info))
        .map_err(|e| Error::Safetensors { path: "<memory>".into(), reason: e.to_string() })
}

/// Writes every parameter of `store` to a safetensors file, crash-safely.
///
/// # Errors
/// [`Error::Io`] or [`Error::Safetensors`], naming the file.
pub fn export<T: Float>(
    store: &ParamStore<T>,
    path: impl AsRef<Path>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let path = path.as_ref();
    let bytes = to_bytes(store, metadata).map_err(|e| relabel(e, path))?;
    atomic::write_atomic(path, &bytes)
}

/// The tensors (in file order) and `__metadata__` of safetensors bytes.
///
/// # Errors
/// [`Error::Safetensors`] for anything the `safetensors` crate rejects (it bounds the header and
/// checks every offset against the buffer), [`Error::UnsupportedDtype`] for a tensor that is not
/// `F32` or `F64`.
pub fn from_bytes(bytes: &[u8]) -> Result<(IndexMap<String, AnyTensor>, BTreeMap<String, String>)> {
    let bad = |e: safetensors::SafeTensorError| Error::Safetensors { path: "<memory>".into(), reason: e.to_string() };
    let (_, meta) = SafeTensors::read_metadata(bytes).map_err(bad)?;
    let st = SafeTensors::deserialize(bytes).map_err(bad)?;
    let mut out = IndexMap::new();
    for name in meta.offset_keys() {
        let view = st.tensor(&name).map_err(bad)?;
        let dtype = match view.dtype() {
            Dtype::F32 => DType::F32,
            Dtype::F64 => DType::F64,
            other => return Err(Error::UnsupportedDtype { name, dtype: format!("{other:?}") }),
        };
        let t = AnyTensor::from_le_bytes(dtype, view.shape(), view.data()).ok_or_else(|| Error::Safetensors {
            path: "<memory>".into(),
            reason: format!("tensor `{name}`: shape {:?} does not match its bytes", view.shape()),
        })?;
        out.insert(name, t);
    }
    let metadata = meta.metadata().clone().unwrap_or_default().into_iter().collect();
    Ok((out, metadata))
}

/// The `safetensors` crate's limit on the JSON header, in bytes.
const MAX_HEADER: u64 = 100_000_000;

/// Reads a safetensors file: its tensors in file order and its `__metadata__`.
///
/// Nothing is read beyond what the file's header accounts for: first the 8-byte header length
/// (at most 100 MB, and within the file), then the JSON header, and the data only if the
/// tensors it describes end exactly at the end of the file. A large file that is not safetensors
/// fails after its first bytes.
///
/// # Errors
/// [`Error::Io`] if it cannot be read or is not a regular file (a directory, a device, a named
/// pipe: each named as such); [`Error::Safetensors`] naming the file for a header that does not
/// fit or does not describe the file; otherwise as [`from_bytes`], naming the file.
pub fn import(path: impl AsRef<Path>) -> Result<(IndexMap<String, AnyTensor>, BTreeMap<String, String>)> {
    let path = path.as_ref();
    from_bytes(&read_checked(path)?).map_err(|e| relabel(e, path))
}

/// The bytes of the safetensors file at `path`, read as [`import`] describes (the header's
/// lengths checked against the file before the data is read), not yet decoded.
pub(crate) fn read_checked(path: &Path) -> Result<Vec<u8>> {
    let io = |e| Error::io(path, e);
    let bad = |reason: String| Error::Safetensors { path: path.into(), reason };
    let (file, file_len) = untrusted::open_regular(path).map_err(io)?;
    let mut file = std::io::BufReader::new(file);
    if file_len < 8 {
        return Err(bad(format!("{file_len} bytes, fewer than the 8 of the header length")));
    }
    let mut bytes = untrusted::read_exactly(&mut file, 8).map_err(io)?;
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    if n > MAX_HEADER || n > file_len - 8 {
        return Err(bad(format!(
            "header length {n} exceeds {} (the file's {file_len} bytes, or the limit of {MAX_HEADER})",
            MAX_HEADER.min(file_len - 8)
        )));
    }
    let header = untrusted::read_exactly(&mut file, n).map_err(io)?;
    let meta: Metadata = serde_json::from_slice(&header).map_err(|e| bad(format!("invalid header: {e}")))?;
    let data_len = meta.data_len() as u64;
    let held = file_len - 8 - n;
    if data_len != held {
        return Err(bad(format!("the header describes {data_len} bytes of data but the file holds {held}")));
    }
    bytes.extend_from_slice(&header);
    drop(header);
    bytes.extend_from_slice(&untrusted::read_exactly(&mut file, data_len).map_err(io)?);
    Ok(bytes)
}

/// Loads a safetensors file into `store` by name, strictly or not (see
/// [`Checkpoint::load_into`](crate::Checkpoint::load_into)).
///
/// # Errors
/// As [`import`], and [`Error::Mismatch`] in strict mode.
pub fn load_into<T: Float>(store: &mut ParamStore<T>, path: impl AsRef<Path>, strict: bool) -> Result<LoadReport> {
    let (tensors, _) = import(path)?;
    load_tensors(&tensors, store, strict)
}

fn relabel(e: Error, path: &Path) -> Error {
    match e {
        Error::Safetensors { reason, .. } => Error::Safetensors { path: path.into(), reason },
        other => other,
    }
}

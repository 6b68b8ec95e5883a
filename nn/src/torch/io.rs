//! Writing a [`StateDictMap`]'s state dict to safetensors and loading one back, every problem
//! of a file reported at once.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use autograd::{Float, Tensor};
use indexmap::IndexMap;
use safetensors::tensor::{Dtype, SafeTensors};

use super::StateDictMap;
use crate::{AnyTensor, DType, Error, ParamStore, Result};

impl StateDictMap {
    /// The state dict of `store`: each entry's name and its parameter in PyTorch's layout, in
    /// the map's order.
    ///
    /// # Panics
    /// If the map does not name every parameter of `store` (a model whose map forgot a layer):
    /// exporting part of a model would write a file that looks complete.
    #[track_caller]
    pub fn state_dict<T: Float>(&self, store: &ParamStore<T>) -> IndexMap<String, Tensor<T>> {
        self.assert_covers(store);
        self.entries().iter().map(|e| (e.name.clone(), e.layout.to_torch(store.get(e.param)))).collect()
    }

    /// Writes the state dict of `store` to a safetensors file at `path`, crash-safely (through
    /// [`checkpoint::atomic`](crate::checkpoint::atomic): the file is the old one or the
    /// complete new one), with `metadata` plus `"format": "pt"` (what
    /// `safetensors.torch.save_file` writes) as its `__metadata__`.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Safetensors`], naming the file.
    ///
    /// # Panics
    /// As [`StateDictMap::state_dict`].
    #[track_caller]
    pub fn save<T: Float>(
        &self,
        store: &ParamStore<T>,
        path: impl AsRef<Path>,
        metadata: &BTreeMap<String, String>,
    ) -> Result<()> {
        let mut out = ParamStore::<T>::with_seed(0);
        for (name, t) in self.state_dict(store) {
            out.add(name, t);
        }
        let mut metadata = metadata.clone();
        metadata.entry("format".into()).or_insert_with(|| "pt".into());
        crate::safetensors::export(&out, path, &metadata)
    }

    /// Loads the state dict in the safetensors file at `path` into `store`. Nothing is changed
    /// unless every entry fits: the file must hold exactly the map's names, each with the
    /// PyTorch shape of its parameter, a dtype that converts without loss (see the
    /// [module docs](super)), and finite values.
    ///
    /// # Errors
    /// [`Error::StateDict`] naming the file and listing every problem; as
    /// [`safetensors::import`](crate::safetensors::import) for a file that is not safetensors.
    ///
    /// # Panics
    /// As [`StateDictMap::state_dict`].
    #[track_caller]
    pub fn load<T: Float>(&self, store: &mut ParamStore<T>, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = crate::safetensors::read_checked(path)?;
        self.load_bytes(store, &bytes).map_err(|e| match e {
            Error::StateDict { problems, .. } => Error::StateDict { path: path.into(), problems },
            Error::Safetensors { reason, .. } => Error::Safetensors { path: path.into(), reason },
            other => other,
        })
    }

    /// As [`StateDictMap::load`], from the bytes of a safetensors file (errors name the file
    /// `<memory>`).
    ///
    /// # Errors
    /// As [`StateDictMap::load`].
    ///
    /// # Panics
    /// As [`StateDictMap::state_dict`].
    #[track_caller]
    pub fn load_bytes<T: Float>(&self, store: &mut ParamStore<T>, bytes: &[u8]) -> Result<()> {
        self.assert_covers(store);
        let bad =
            |e: safetensors::SafeTensorError| Error::Safetensors { path: "<memory>".into(), reason: e.to_string() };
        let (_, meta) = SafeTensors::read_metadata(bytes).map_err(bad)?;
        let file = SafeTensors::deserialize(bytes).map_err(bad)?;
        let names: Vec<String> = meta.offset_keys();
        let mut problems = Vec::new();
        let mut loaded = Vec::new();
        for e in self.entries() {
            let expected = e.layout.torch_shape(store.get(e.param).shape());
            let Ok(view) = file.tensor(&e.name) else {
                problems.push(format!("missing `{}` (expected shape {expected:?})", e.name));
                continue;
            };
            let dtype = match (view.dtype(), DType::of::<T>()) {
                (Dtype::F32, _) => DType::F32,
                (Dtype::F64, DType::F64) => DType::F64,
                (Dtype::F64, DType::F32) => {
                    problems.push(format!(
                        "`{}`: dtype F64, but the model is f32 and rounding would change it (save it from \
                         PyTorch after `module.float()`)",
                        e.name
                    ));
                    continue;
                }
                (other, _) => {
                    problems.push(format!(
                        "`{}`: dtype {other:?}, which is not read (F32, or F64 into an f64 model)",
                        e.name
                    ));
                    continue;
                }
            };
            if view.shape() != expected.as_slice() {
                problems.push(format!(
                    "`{}`: shape {:?} in the file, the model expects {expected:?}",
                    e.name,
                    view.shape()
                ));
                continue;
            }
            let Some(t) = AnyTensor::from_le_bytes(dtype, view.shape(), view.data()) else {
                problems.push(format!("`{}`: shape {:?} does not match its bytes", e.name, view.shape()));
                continue;
            };
            let non_finite = t.non_finite_count();
            if non_finite > 0 {
                problems.push(format!("`{}`: {non_finite} non-finite values (NaN or ±∞)", e.name));
                continue;
            }
            loaded.push((e.param, e.layout.from_torch(&t.to::<T>())));
        }
        let known: HashSet<&str> = self.entries().iter().map(|e| e.name.as_str()).collect();
        for name in names.iter().filter(|n| !known.contains(n.as_str())) {
            let view = file.tensor(name).map_err(bad)?;
            problems.push(format!("unexpected `{name}` (shape {:?}, dtype {:?})", view.shape(), view.dtype()));
        }
        if !problems.is_empty() {
            return Err(Error::StateDict { path: "<memory>".into(), problems });
        }
        for (id, t) in loaded {
            store.set(id, t);
        }
        Ok(())
    }

    /// Panics unless every parameter of `store` has exactly one entry (the map's constructors
    /// already refuse a parameter twice) and every entry is a parameter of `store`.
    #[track_caller]
    fn assert_covers<T: Float>(&self, store: &ParamStore<T>) {
        let mapped: HashSet<usize> = self.entries().iter().map(|e| e.param.index()).collect();
        if let Some(e) = self.entries().iter().find(|e| e.param.index() >= store.len()) {
            panic!("StateDictMap: `{}` names parameter {} of a store of {}", e.name, e.param.index(), store.len());
        }
        let unmapped: Vec<&str> =
            store.iter().filter(|(id, _, _)| !mapped.contains(&id.index())).map(|(_, name, _)| name).collect();
        assert!(unmapped.is_empty(), "StateDictMap: no PyTorch name for the parameters {unmapped:?}");
    }
}

//! PyTorch state dicts of the models' networks, both ways: what `pente export --torch` and
//! `pente import --torch` do. The names and layouts are each model's `torch_state_dict` (built
//! with [`nn::torch`]); the equivalent PyTorch modules are the references in `bench/reference/`
//! (`gpt_torch.py`'s `Gpt`, `mnist_torch.py`'s `build`).
//!
//! An exported file's `__metadata__` holds `"format": "pt"`, `"pente.model"` (`digits`,
//! `char-lm` or `attractor`) and `"pente.config"`: the checkpoint's configuration JSON (the
//! digits' input normalization, the char-lm vocabulary), which a PyTorch user needs to feed the
//! module the same inputs.

use std::collections::BTreeMap;
use std::path::Path;

use nn::torch::StateDictMap;
use nn::{Checkpoint, ParamStore};

use crate::attractor::{self, AttractorModel};
use crate::char_lm::{self, CharLm};
use crate::config::CONFIG_KEY;
use crate::digits::{self, DigitsModel};
use crate::Error;

/// A model loaded from a pente checkpoint, whichever it is.
enum Loaded {
    Digits(DigitsModel),
    CharLm(CharLm),
    Attractor(AttractorModel),
}

impl Loaded {
    /// The model a checkpoint holds, by its `"model"` metadata.
    fn from_checkpoint(ckpt: &Checkpoint, path: &Path) -> Result<Self, Error> {
        match ckpt.metadata.get("model").map(String::as_str) {
            Some(digits::model::MODEL_NAME) => Ok(Loaded::Digits(DigitsModel::from_checkpoint(ckpt, path)?)),
            Some(char_lm::model::MODEL_NAME) => Ok(Loaded::CharLm(CharLm::from_checkpoint(ckpt, path)?)),
            Some(attractor::MODEL_NAME) => Ok(Loaded::Attractor(AttractorModel::from_checkpoint(ckpt, path)?)),
            other => Err(Error::NotAModel {
                path: path.to_path_buf(),
                expected: "digits, char-lm or attractor",
                reason: format!("its metadata says model = {other:?}"),
            }),
        }
    }

    fn parts(&mut self) -> (StateDictMap, &mut ParamStore<f32>) {
        match self {
            Loaded::Digits(m) => (m.net.torch_state_dict(), &mut m.store),
            Loaded::CharLm(m) => (m.torch_state_dict(), &mut m.store),
            Loaded::Attractor(m) => (m.torch_state_dict(), &mut m.store),
        }
    }

    /// Saves the model as a fresh checkpoint: its configuration, no optimizer state, and no
    /// training history (the weights came from elsewhere).
    fn save(&mut self, path: &Path) -> Result<(), Error> {
        match self {
            Loaded::Digits(m) => {
                m.history = Default::default();
                m.save(path)
            }
            Loaded::CharLm(m) => {
                crate::create_parent_dir(path)?;
                Ok(m.checkpoint().save(path)?)
            }
            Loaded::Attractor(m) => {
                m.steps_trained = 0;
                m.save(path)
            }
        }
    }
}

/// Refuses to write `out` over `input`: a mistyped flag must not destroy the user's file.
fn refuse_overwrite(out: &Path, input: &Path, what: &str) -> Result<(), Error> {
    let same = match (out.canonicalize(), input.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(Error::Config(format!(
            "{} is also the {what}: writing it would destroy it; choose another output file",
            out.display()
        )));
    }
    Ok(())
}

/// Writes the weights of the pente checkpoint `load` (a digits, char-lm or attractor model) to
/// `out` as a PyTorch state dict in safetensors, crash-safely. Returns a one-line summary.
///
/// # Errors
/// As [`Checkpoint::load`] and the models' `from_checkpoint`; [`Error::Config`] if `out` is
/// `load`; [`Error::Checkpoint`] if `out` cannot be written.
pub fn export(load: &Path, out: &Path) -> Result<String, Error> {
    refuse_overwrite(out, load, "checkpoint read (--load)")?;
    let ckpt = Checkpoint::load(load)?;
    let mut model = Loaded::from_checkpoint(&ckpt, load)?;
    let (map, store) = model.parts();
    let mut metadata = BTreeMap::new();
    metadata.insert("pente.model".to_string(), ckpt.metadata.get("model").cloned().unwrap_or_default());
    if let Some(config) = ckpt.metadata.get(CONFIG_KEY) {
        metadata.insert("pente.config".to_string(), config.clone());
    }
    crate::create_parent_dir(out)?;
    map.save(store, out, &metadata)?;
    Ok(format!("wrote {} ({} tensors, PyTorch names and layouts)", out.display(), map.entries().len()))
}

/// Loads the PyTorch state dict `torch` (safetensors) into the model of the pente checkpoint
/// `like` (which gives the model, its configuration and, for char-lm, its vocabulary) and
/// saves the result as a pente checkpoint at `save`, crash-safely. Returns a one-line summary.
///
/// # Errors
/// As [`Checkpoint::load`]; [`nn::Error::StateDict`] (in [`Error::Checkpoint`]) listing every
/// missing, unexpected, mis-shaped, lossy or non-finite entry; [`Error::Config`] if `save` is
/// `torch` or `like`.
pub fn import(torch: &Path, like: &Path, save: &Path) -> Result<String, Error> {
    refuse_overwrite(save, torch, "PyTorch state dict read (--torch)")?;
    let ckpt = Checkpoint::load(like)?;
    let mut model = Loaded::from_checkpoint(&ckpt, like)?;
    let (map, store) = model.parts();
    map.load(store, torch)?;
    let n = map.entries().len();
    model.save(save)?;
    Ok(format!("wrote {} ({n} tensors from {})", save.display(), torch.display()))
}

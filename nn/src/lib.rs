//! Everything needed to define a model on pente's tape, train it, and keep it: parameters,
//! layers, losses, optimizers, and checkpoints that never lose work.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{loss, Activation, Adam, AdamConfig, Checkpoint, Mlp, Optimizer, ParamStore};
//!
//! // A two-layer MLP, 2 → 8 → 1, its parameters drawn from seed 0.
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let mlp = Mlp::new(store.scope("mlp"), &[2, 8, 1], Activation::Tanh);
//! let mut opt = Adam::new(AdamConfig { lr: 1e-2, ..Default::default() });
//!
//! // One step: bind the store to a fresh tape, compute the loss, back-propagate, update.
//! let x = Tensor::from_vec(vec![0.0, 1.0, 1.0, 0.0], &[2, 2]);
//! let y = Tensor::from_vec(vec![1.0, -1.0], &[2, 1]);
//! let (before, grads) = store.value_and_grad(0, |p| {
//!     let tape = p.tape();
//!     loss::mse(mlp.forward(p, tape.constant(x.clone())), tape.constant(y.clone()))
//! });
//! opt.step(&mut store, &grads);
//!
//! // Save the model with the optimizer's state; load it into a freshly built model.
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("mlp.ckpt");
//! Checkpoint::from_store(&store).with_optimizer(&opt, &store).with_step(1).save(&path)?;
//!
//! let mut fresh = ParamStore::<f32>::with_seed(99);
//! let mlp2 = Mlp::new(fresh.scope("mlp"), &[2, 8, 1], Activation::Tanh);
//! let ckpt = Checkpoint::load(&path)?;
//! ckpt.load_into(&mut fresh, true)?;
//! let mut opt2 = Adam::<f32>::new(AdamConfig::default());
//! ckpt.restore_optimizer(&mut opt2, &fresh)?;
//! assert_eq!((opt2.steps(), opt2.lr()), (1, 1e-2));
//!
//! let predict = |store: &ParamStore<f32>, mlp: &Mlp| {
//!     let tape = Tape::new();
//!     mlp.forward(&store.bind(&tape), tape.constant(x.clone())).value()
//! };
//! assert_eq!(predict(&store, &mlp), predict(&fresh, &mlp2));
//! assert!(before > 0.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Brief overview
//!
//! - [`ParamStore`] owns a model's tensors by hierarchical name; layers are built against a
//!   [`Scope`] and keep [`ParamId`]s. [`ParamStore::bind`] lifts them onto a tape lazily as a
//!   [`Bound`]; [`Bound::backward`] returns [`ParamGrads`].
//! - [`layers`]: [`Linear`], [`Mlp`], [`Embedding`], [`LayerNorm`], [`Dropout`], [`Conv2d`],
//!   [`MaxPool2d`], [`Flatten`], [`CausalSelfAttention`], [`TransformerBlock`]; [`Init`] draws
//!   initial values from the store's ChaCha8 generator.
//! - [`loss`]: mse, cross-entropy (optionally label-smoothed), nll, binary cross-entropy with
//!   logits, accuracy.
//! - [`optim`]: [`Sgd`], [`Adam`], [`AdamW`], [`LrSchedule`], [`clip_grad_norm`].
//! - [`data`]: seeded shuffled mini-batches.
//! - [`parallel`]: [`DataParallel`], a step's batch in shards side by side, one per core.
//! - [`comm`]: communicators (threads, or processes under `mpirun` with the `mpi` feature) and
//!   [`comm::Ddp`], the same step across them with gradients reduced in buckets during backward.
//! - [`checkpoint`]: the native format (crash-safe save, untrusting load) and [`safetensors`]
//!   export and import.
//! - [`torch`]: PyTorch state dicts (PyTorch's names and layouts) in safetensors, both ways.
//!
//! Errors at run time (files) are [`Error`]; shape mistakes are programming errors and panic.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod checkpoint;
pub mod comm;
pub mod data;
mod dtype;
mod error;
mod init;
pub mod layers;
pub mod loss;
pub mod optim;
pub mod parallel;
mod params;
mod recompute;
pub mod safetensors;
pub mod torch;

pub use checkpoint::{Checkpoint, LoadReport, ShapeMismatch};
pub use dtype::{AnyTensor, DType};
pub use error::{Error, Result};

/// Stops a training loop whose loss is NaN or ±∞: returns [`Error::Diverged`] naming `step`.
/// Call it on each step's loss, before the optimizer's step, so that a diverged run ends with
/// an error (and a non-zero exit) instead of training on, and saving, NaN weights. (Saving is
/// guarded too: [`Checkpoint::save`] refuses non-finite tensors.)
///
/// ```
/// assert!(nn::check_loss(1, 0.69).is_ok());
/// let err = nn::check_loss(7, f64::NAN).unwrap_err();
/// assert!(err.to_string().starts_with("training diverged at step 7: the loss is NaN"));
/// ```
///
/// # Errors
/// [`Error::Diverged`] when `loss` is not finite.
pub fn check_loss(step: u64, loss: f64) -> Result<()> {
    if loss.is_finite() {
        Ok(())
    } else {
        Err(Error::Diverged { step, loss })
    }
}
pub use init::Init;
pub use layers::{
    Activation, CausalSelfAttention, Conv2d, Conv2dConfig, Dropout, Embedding, Flatten, LayerNorm, Linear,
    LinearConfig, MaxPool2d, Mlp, Module, TransformerBlock, TransformerConfig,
};
pub use layers::{AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv1dConfig, ConvTranspose2d, ConvTranspose2dConfig};
pub use layers::{AlphaDropout, Dropout1d, Dropout2d, EmbeddingConfig, GroupNorm, RmsNorm};
pub use layers::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig};
pub use layers::{Gru, GruCell, Lstm, LstmCell, Nonlinearity, RecurrentConfig, Rnn, RnnCell};
pub use optim::{
    clip_grad_norm, Adam, AdamConfig, AdamW, Decay, DecayOn, LrSchedule, Optimizer, OptimizerState, Sgd, SgdConfig,
    SlotState,
};
pub use optim::{Accumulate, Adagrad, AdagradConfig, Anneal, Lion, LionConfig, OneCycleLr, RmsProp, RmsPropConfig};
pub use parallel::DataParallel;
pub use params::{Bound, ParamGrads, ParamId, ParamInfo, ParamStore, Scope};

/// Fuzzing entry points: decode untrusted bytes and report whether they parsed. Not part of
/// the stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Parses a native checkpoint's bytes.
    pub fn native(bytes: &[u8]) -> bool {
        crate::Checkpoint::from_bytes(bytes).is_ok()
    }

    /// Parses a native checkpoint header (bypassing the checksum, so that mutations reach the
    /// decoder).
    pub fn native_header(bytes: &[u8]) -> bool {
        let framed = crate::checkpoint::format::frame(bytes, &[], crate::checkpoint::FORMAT_VERSION);
        crate::Checkpoint::from_bytes(&framed).is_ok()
    }

    /// Parses safetensors bytes.
    pub fn safetensors(bytes: &[u8]) -> bool {
        crate::safetensors::from_bytes(bytes).is_ok()
    }
}

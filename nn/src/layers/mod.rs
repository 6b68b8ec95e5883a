//! The layers, one per file. Each keeps only [`ParamId`](crate::ParamId)s and reads its
//! parameters through a [`Bound`] store at `forward` time.
//!
//! | file | layers |
//! | --- | --- |
//! | [`linear`] | [`Linear`] |
//! | [`mlp`] | [`Mlp`], [`Activation`] |
//! | [`embedding`] | [`Embedding`], [`EmbeddingConfig`] (with `padding_idx`) |
//! | [`norm`] | [`LayerNorm`] |
//! | [`dropout`] | [`Dropout`], [`Dropout1d`], [`Dropout2d`], [`AlphaDropout`] |
//! | [`conv`] | [`Conv2d`], [`MaxPool2d`], [`Flatten`] |
//! | [`attention`] | [`CausalSelfAttention`] |
//! | [`transformer`] | [`TransformerBlock`] (pre-LayerNorm) |
//! | [`conv1d`], [`conv_transpose`], [`pool`] | [`Conv1d`], [`ConvTranspose2d`], [`AvgPool2d`], [`AdaptiveAvgPool2d`] |
//! | [`recurrent`] | [`RnnCell`], [`GruCell`], [`LstmCell`], [`Rnn`], [`Gru`], [`Lstm`] |
//! | [`rmsnorm`] | [`RmsNorm`] |
//! | [`groupnorm`] | [`GroupNorm`] |
//! | [`batch_norm`] | [`BatchNorm1d`], [`BatchNorm2d`] (running statistics as buffers) |

use autograd::{Float, Var};

use crate::Bound;

pub mod attention;
pub mod batch_norm;
pub mod conv;
pub mod conv1d;
pub mod conv_transpose;
pub mod dropout;
pub mod embedding;
pub mod groupnorm;
pub mod linear;
pub mod mlp;
pub mod norm;
pub mod pool;
pub mod recurrent;
pub mod rmsnorm;
pub mod transformer;

pub use attention::CausalSelfAttention;
pub use batch_norm::{BatchNorm, BatchNorm1d, BatchNorm2d, BatchNormConfig};
pub use conv::{Conv2d, Conv2dConfig, Flatten, MaxPool2d};
pub use conv1d::{Conv1d, Conv1dConfig};
pub use conv_transpose::{ConvTranspose2d, ConvTranspose2dConfig};
pub use dropout::{AlphaDropout, Dropout, Dropout1d, Dropout2d};
pub use embedding::{Embedding, EmbeddingConfig};
pub use groupnorm::GroupNorm;
pub use linear::{Linear, LinearConfig};
pub use mlp::{Activation, Mlp};
pub use norm::LayerNorm;
pub use pool::{AdaptiveAvgPool2d, AvgPool2d};
pub use recurrent::{Gru, GruCell, Lstm, LstmCell, Nonlinearity, RecurrentConfig, Rnn, RnnCell};
pub use rmsnorm::RmsNorm;
pub use transformer::{TransformerBlock, TransformerConfig};

/// A layer with one input and one output, so that layers compose generically
/// (`fn run<M: Module>(m: &M, …)`). Every layer also has the same `forward` as an inherent
/// method, so calling it needs no import.
pub trait Module {
    /// Applies the layer to `x`, reading parameters from `p`.
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T>;
}

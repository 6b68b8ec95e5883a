//! [`TransformerBlock`]: a pre-LayerNorm transformer block (GPT-2's):
//! `x = x + attn(ln₁(x))`, then `x = x + mlp(ln₂(x))` with `mlp = proj(gelu(fc(·)))`.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{ParamStore, TransformerBlock, TransformerConfig};
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let cfg = TransformerConfig { n_embd: 16, n_head: 2, ..Default::default() };
//! let block = TransformerBlock::new(store.scope("blocks").scope(0), &cfg);
//! assert!(store.id("blocks.0.attn.qkv.weight").is_some());
//! let tape = Tape::new();
//! let y = block.forward(&store.bind(&tape), tape.constant(Tensor::ones(&[1, 4, 16])));
//! assert_eq!(y.shape().as_slice(), &[1, 4, 16]);
//! ```

use autograd::{Float, Var};

use crate::{
    Activation, Bound, CausalSelfAttention, Dropout, Init, LayerNorm, Linear, LinearConfig, Module, ParamId, Scope,
};

/// The hyper-parameters of a [`TransformerBlock`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerConfig {
    /// Model width. Default 128.
    pub n_embd: usize,
    /// Attention heads (must divide `n_embd`). Default 4.
    pub n_head: usize,
    /// Hidden width of the MLP as a multiple of `n_embd`. Default 4.
    pub mlp_ratio: usize,
    /// Dropout after attention weights, and after each residual branch. Default 0.
    pub dropout: f64,
    /// Biases in the linear layers and layer norms. Default true.
    pub bias: bool,
    /// The MLP's nonlinearity. Default exact (erf) GELU.
    pub activation: Activation,
    /// Standard deviation of the normal init of linear weights (biases start at zero);
    /// `None` for PyTorch's default uniform init. Default `Some(0.02)` (GPT-2's).
    pub init_std: Option<f64>,
}

impl Default for TransformerConfig {
    fn default() -> Self {
        TransformerConfig {
            n_embd: 128,
            n_head: 4,
            mlp_ratio: 4,
            dropout: 0.0,
            bias: true,
            activation: Activation::Gelu,
            init_std: Some(0.02),
        }
    }
}

/// A pre-LN transformer block; see the [module docs](self). Parameters: `ln_1.*`, `attn.*`,
/// `ln_2.*`, `mlp.fc.*`, `mlp.proj.*`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerBlock {
    /// Norm before attention.
    pub ln_1: LayerNorm,
    /// Causal self-attention.
    pub attn: CausalSelfAttention,
    /// Norm before the MLP.
    pub ln_2: LayerNorm,
    /// MLP up-projection `n_embd → mlp_ratio·n_embd`.
    pub fc: Linear,
    /// MLP down-projection back to `n_embd`.
    pub proj: Linear,
    /// The MLP's nonlinearity.
    pub activation: Activation,
    /// Dropout after the MLP.
    pub dropout: Dropout,
}

impl TransformerBlock {
    /// A block with the given hyper-parameters.
    ///
    /// # Panics
    /// If `n_head` does not divide `n_embd`.
    #[track_caller]
    pub fn new<T: Float>(mut scope: Scope<'_, T>, config: &TransformerConfig) -> Self {
        let c = config.n_embd;
        let linear = LinearConfig {
            bias: config.bias,
            weight_init: config.init_std.map(|std| Init::Normal { mean: 0.0, std }),
            bias_init: config.init_std.map(|_| Init::Zeros),
        };
        let ln_1 = LayerNorm::with_options(scope.scope("ln_1"), c, config.bias, 1e-5);
        let attn =
            CausalSelfAttention::with_linear_config(scope.scope("attn"), c, config.n_head, config.dropout, linear);
        let ln_2 = LayerNorm::with_options(scope.scope("ln_2"), c, config.bias, 1e-5);
        let mut mlp = scope.scope("mlp");
        let hidden = config.mlp_ratio * c;
        let fc = Linear::with_config(mlp.scope("fc"), c, hidden, linear);
        let proj = Linear::with_config(mlp.scope("proj"), hidden, c, linear);
        TransformerBlock {
            ln_1,
            attn,
            ln_2,
            fc,
            proj,
            activation: config.activation,
            dropout: Dropout::new(config.dropout),
        }
    }

    /// Applies the block to `x (batch, seq_len, n_embd)`.
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let x = x + self.attn.forward(p, self.ln_1.forward(p, x));
        let h = self.fc.forward(p, self.ln_2.forward(p, x)); // (batch, seq_len, hidden)
        let h = self.proj.forward(p, self.activation.apply(h));
        x + self.dropout.forward(p, h)
    }

    /// The block's parameters: those of `ln_1`, `attn`, `ln_2`, `fc` and `proj`.
    pub fn params(&self) -> Vec<ParamId> {
        let linear = |l: &Linear| std::iter::once(l.weight).chain(l.bias);
        let norm = |n: &LayerNorm| std::iter::once(n.weight).chain(n.bias);
        norm(&self.ln_1)
            .chain(linear(&self.attn.qkv))
            .chain(linear(&self.attn.proj))
            .chain(norm(&self.ln_2))
            .chain(linear(&self.fc))
            .chain(linear(&self.proj))
            .collect()
    }

    /// [`forward`](Self::forward) with gradient checkpointing ([`Bound::checkpoint`]): only `x`
    /// and the output are kept on the tape, and backward runs the block again. The values and
    /// gradients are the same to the last bit, dropout included; what changes is the memory (the
    /// block's activations are not kept: its norms, projections, attention and MLP, whose hidden
    /// layer is `mlp_ratio` times wider than `x`) and the time (one more forward of the block in
    /// backward).
    pub fn forward_checkpointed<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let block = *self;
        p.checkpoint(&self.params(), &[x], move |p, xs| block.forward(p, xs[0]))
    }
}

impl Module for TransformerBlock {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        TransformerBlock::forward(self, p, x)
    }
}

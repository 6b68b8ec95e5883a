//! [`CausalSelfAttention`]: multi-head self-attention in which position `t` attends only to
//! positions `≤ t` (GPT's).
//!
//! For `x (batch, seq_len, n_embd)`, one [`Linear`] makes queries, keys and values, split into
//! `n_head` heads of size `d = n_embd / n_head`; each head computes
//! `softmax(q·kᵀ / √d + causal mask)·v`, the heads are concatenated and a second `Linear`
//! projects back to `n_embd`.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{CausalSelfAttention, ParamStore};
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let attn = CausalSelfAttention::new(store.scope("attn"), 16, 4, 0.0);
//! let tape = Tape::new();
//! let x = tape.constant(Tensor::ones(&[2, 5, 16]));
//! let y = attn.forward(&store.bind(&tape), x); // (batch 2, seq_len 5, n_embd 16)
//! assert_eq!(y.shape().as_slice(), &[2, 5, 16]);
//! ```

use autograd::ops::attention::causal_mask;
use autograd::{Float, Var};

use crate::{Bound, Dropout, Linear, LinearConfig, Module, Scope};

/// Causal multi-head self-attention; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CausalSelfAttention {
    /// Queries, keys and values at once: `n_embd → 3·n_embd`.
    pub qkv: Linear,
    /// Output projection: `n_embd → n_embd`.
    pub proj: Linear,
    /// Number of heads.
    pub n_head: usize,
    /// Model width.
    pub n_embd: usize,
    /// Dropout on the attention weights and on the output.
    pub dropout: Dropout,
}

impl CausalSelfAttention {
    /// With biases and PyTorch's default initialization; parameters `qkv.*` and `proj.*`.
    ///
    /// # Panics
    /// If `n_head` does not divide `n_embd`.
    #[track_caller]
    pub fn new<T: Float>(scope: Scope<'_, T>, n_embd: usize, n_head: usize, dropout: f64) -> Self {
        Self::with_linear_config(scope, n_embd, n_head, dropout, LinearConfig::default())
    }

    /// With the given options for both projections.
    ///
    /// # Panics
    /// If `n_head` does not divide `n_embd`.
    #[track_caller]
    pub fn with_linear_config<T: Float>(
        mut scope: Scope<'_, T>,
        n_embd: usize,
        n_head: usize,
        dropout: f64,
        linear: LinearConfig,
    ) -> Self {
        assert!(
            n_head > 0 && n_embd.is_multiple_of(n_head),
            "CausalSelfAttention: n_head = {n_head} does not divide n_embd = {n_embd}"
        );
        CausalSelfAttention {
            qkv: Linear::with_config(scope.scope("qkv"), n_embd, 3 * n_embd, linear),
            proj: Linear::with_config(scope.scope("proj"), n_embd, n_embd, linear),
            n_head,
            n_embd,
            dropout: Dropout::new(dropout),
        }
    }

    /// Attends over `x (batch, seq_len, n_embd)`.
    ///
    /// # Panics
    /// If `x` is not 3-d with last axis `n_embd`.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            shape.len() == 3 && shape[2] == self.n_embd,
            "CausalSelfAttention: expected (batch, seq_len, {}), got {:?}",
            self.n_embd,
            shape.as_slice()
        );
        let qkv = self.qkv.forward(p, x); // (b, t, 3c)
        let y = if self.dropout.p == 0.0 || !p.is_training() {
            qkv.causal_attention(self.n_head) // fused: no dropout on the probabilities to apply
        } else {
            self.attention_with_dropout(p, qkv)
        };
        self.dropout.forward(p, self.proj.forward(p, y))
    }
}

impl CausalSelfAttention {
    /// The attention composed from primitive ops, for training with dropout on the attention
    /// probabilities (which the fused [`Var::causal_attention`] does not apply).
    fn attention_with_dropout<'t, T: Float>(&self, p: &Bound<'t, T>, qkv: Var<'t, T>) -> Var<'t, T> {
        let shape = qkv.shape();
        let (b, t, c, h) = (shape[0], shape[1], shape[2] / 3, self.n_head);
        let d = c / h;
        // (b, t, c) → (b, t, h, d) → (b, h, t, d) → (b·h, t, d)
        let heads = |z: Var<'t, T>| z.reshape(&[b, t, h, d]).permute(&[0, 2, 1, 3]).reshape(&[b * h, t, d]);
        let q = heads(qkv.narrow(-1, 0, c));
        let k = heads(qkv.narrow(-1, c, c));
        let v = heads(qkv.narrow(-1, 2 * c, c));
        let att = q.matmul(k.transpose(-2, -1)) * (1.0 / (d as f64).sqrt()); // (b·h, t, t)
        let att = att.masked_fill(&causal_mask(t), MASKED).softmax(-1);
        let y = self.dropout.forward(p, att).matmul(v); // (b·h, t, d)
        y.reshape(&[b, h, t, d]).permute(&[0, 2, 1, 3]).reshape(&[b, t, c])
    }
}

/// The score given to masked (future) positions. Finite, so that anomaly mode does not flag it,
/// and low enough that its softmax weight is exactly 0 in `f32` and `f64`.
const MASKED: f64 = -1e30;

impl Module for CausalSelfAttention {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        CausalSelfAttention::forward(self, p, x)
    }
}

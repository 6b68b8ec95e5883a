//! [`LayerNorm`]: normalizes over the last axis, then scales and shifts:
//! `y = (x − mean) / √(var + eps) · γ + β`, with the biased variance (as PyTorch). `x` is
//! `(…, dim)`; `γ` and `β` are `(dim)`, initialized to ones and zeros.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{LayerNorm, ParamStore};
//! let mut store = ParamStore::<f64>::with_seed(0);
//! let ln = LayerNorm::new(store.scope("ln"), 4);
//! let tape = Tape::new();
//! let x = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 4]));
//! let y = ln.forward(&store.bind(&tape), x).value();
//! assert!(y.data().iter().sum::<f64>().abs() < 1e-12); // mean 0
//! ```

use autograd::{Float, Tensor, Var};

use crate::{Bound, Init, Module, ParamId, Scope};

/// Layer normalization over the last axis; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNorm {
    /// The scale `γ`, `(dim)`.
    pub weight: ParamId,
    /// The shift `β`, `(dim)`, if any.
    pub bias: Option<ParamId>,
    /// The normalized axis's size.
    pub dim: usize,
    /// Added to the variance.
    pub eps: f64,
}

impl LayerNorm {
    /// With a bias and `eps = 1e-5` (PyTorch's defaults).
    pub fn new<T: Float>(scope: Scope<'_, T>, dim: usize) -> Self {
        Self::with_options(scope, dim, true, 1e-5)
    }

    /// With or without a bias, and the given `eps`.
    pub fn with_options<T: Float>(mut scope: Scope<'_, T>, dim: usize, bias: bool, eps: f64) -> Self {
        let weight = scope.param("weight", &[dim], Init::Ones);
        let bias = bias.then(|| scope.param("bias", &[dim], Init::Zeros));
        LayerNorm { weight, bias, dim, eps }
    }

    /// Normalizes `x` over its last axis.
    ///
    /// # Panics
    /// If the last axis of `x` is not `dim`.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            shape.last() == Some(&self.dim),
            "LayerNorm: input of shape {:?} does not end in dim = {}",
            shape.as_slice(),
            self.dim
        );
        let bias = match self.bias {
            Some(b) => p.get(b),
            None => p.tape().constant(Tensor::zeros(&[self.dim])),
        };
        x.layer_norm(p.get(self.weight), bias, self.eps)
    }
}

impl Module for LayerNorm {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        LayerNorm::forward(self, p, x)
    }
}

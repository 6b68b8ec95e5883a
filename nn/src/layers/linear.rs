//! [`Linear`]: the affine map `y = x·W + b`.
//!
//! `W` has shape `(in_dim, out_dim)` (so no transpose is needed in forward: note that PyTorch
//! stores `(out_dim, in_dim)`), `b` has shape `(out_dim)`. `x` may be `(in_dim)`,
//! `(batch, in_dim)` or `(…, in_dim)` of any rank; `y` has the same leading dimensions.
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{Linear, ParamStore};
//! let mut store = ParamStore::<f32>::with_seed(0);
//! let fc = Linear::new(store.scope("fc"), 3, 2);
//! let tape = Tape::new();
//! let p = store.bind(&tape);
//! let y = fc.forward(&p, tape.constant(Tensor::ones(&[5, 7, 3]))); // (5, 7, 3) → (5, 7, 2)
//! assert_eq!(y.shape().as_slice(), &[5, 7, 2]);
//! ```

use autograd::{Float, Var};

use crate::{Bound, Init, Module, ParamId, Scope};

/// Options of a [`Linear`] layer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearConfig {
    /// Whether to add a bias. Default true.
    pub bias: bool,
    /// The weight's initializer; default `LecunUniform { fan_in: in_dim }` (PyTorch's default).
    pub weight_init: Option<Init>,
    /// The bias's initializer; default `LecunUniform { fan_in: in_dim }` (PyTorch's default).
    pub bias_init: Option<Init>,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig { bias: true, weight_init: None, bias_init: None }
    }
}

/// `y = x·W + b`; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Linear {
    /// The weight, `(in_dim, out_dim)`.
    pub weight: ParamId,
    /// The bias, `(out_dim)`, if any.
    pub bias: Option<ParamId>,
    /// Input features.
    pub in_dim: usize,
    /// Output features.
    pub out_dim: usize,
}

impl Linear {
    /// A layer with a bias and PyTorch's default initialization, parameters `weight` and `bias`
    /// in `scope`.
    pub fn new<T: Float>(scope: Scope<'_, T>, in_dim: usize, out_dim: usize) -> Self {
        Self::with_config(scope, in_dim, out_dim, LinearConfig::default())
    }

    /// A layer with the given options.
    pub fn with_config<T: Float>(mut scope: Scope<'_, T>, in_dim: usize, out_dim: usize, config: LinearConfig) -> Self {
        let default = Init::LecunUniform { fan_in: in_dim };
        let weight = scope.param("weight", &[in_dim, out_dim], config.weight_init.unwrap_or(default));
        let bias = config.bias.then(|| scope.param("bias", &[out_dim], config.bias_init.unwrap_or(default)));
        Linear { weight, bias, in_dim, out_dim }
    }

    /// `x·W + b` over the last axis of `x`.
    ///
    /// # Panics
    /// If the last axis of `x` is not `in_dim`.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        let last = shape.last().copied();
        assert!(
            last == Some(self.in_dim),
            "Linear: input of shape {:?} does not end in in_dim = {}",
            shape.as_slice(),
            self.in_dim
        );
        if shape.len() == 2 {
            self.affine(p, x)
        } else {
            // Fold every leading axis into one batch axis: (…, in) → (n, in) · (in, out).
            let rows = shape[..shape.len() - 1].iter().product::<usize>();
            let mut out_shape = shape[..shape.len() - 1].to_vec();
            out_shape.push(self.out_dim);
            self.affine(p, x.reshape(&[rows, self.in_dim])).reshape(&out_shape)
        }
    }

    /// `x·W + b` for a 2-d `x`, the bias fused into the product. A method rather than a
    /// closure, so that `#[track_caller]` carries the user's line to the nodes it records.
    #[track_caller]
    fn affine<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let w = p.get(self.weight);
        match self.bias {
            Some(b) => x.matmul_bias(w, p.get(b)),
            None => x.matmul(w),
        }
    }
}

impl Module for Linear {
    #[track_caller]
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        Linear::forward(self, p, x)
    }
}

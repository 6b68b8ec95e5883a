//! [`RmsNorm`]: normalizes over the last axis by the root mean square, then scales:
//! `y = x / √(mean(x²) + eps) · γ`, as PyTorch's `nn.RMSNorm(dim)`. `x` is `(…, dim)`; `γ` is
//! `(dim)`, initialized to ones. With no `eps` given, `eps` is the machine epsilon of the input's
//! dtype (`f32::EPSILON` for `f32`), as PyTorch's `eps=None`. Runs as one fused op
//! ([`Var::rms_norm`]).
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{ParamStore, RmsNorm};
//! let mut store = ParamStore::<f64>::with_seed(0);
//! let norm = RmsNorm::new(store.scope("norm"), 2);
//! let tape = Tape::new();
//! let x = tape.constant(Tensor::from_vec(vec![4.0, 4.0, 2.0, -2.0], &[2, 2]));
//! let y = norm.forward(&store.bind(&tape), x).value(); // each row divided by its rms
//! assert!((y.data()[0] - 1.0).abs() < 1e-15 && (y.data()[3] + 1.0).abs() < 1e-15);
//! ```

use autograd::{Float, Tensor, Var};

use crate::{Bound, Init, Module, ParamId, Scope};

/// RMS normalization over the last axis; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsNorm {
    /// The scale `γ`, `(dim)`, if the norm has one (PyTorch's `elementwise_affine`).
    pub weight: Option<ParamId>,
    /// The normalized axis's size.
    pub dim: usize,
    /// Added to the mean square; `None` for the machine epsilon of the input's dtype.
    pub eps: Option<f64>,
}

impl RmsNorm {
    /// With a scale and `eps = None` (PyTorch's defaults).
    pub fn new<T: Float>(scope: Scope<'_, T>, dim: usize) -> Self {
        Self::with_options(scope, dim, true, None)
    }

    /// With or without the scale `γ` (`elementwise_affine`), and the given `eps` (`None`: the
    /// dtype's machine epsilon).
    ///
    /// # Panics
    /// If `eps` is negative or not finite.
    #[track_caller]
    pub fn with_options<T: Float>(
        mut scope: Scope<'_, T>,
        dim: usize,
        elementwise_affine: bool,
        eps: Option<f64>,
    ) -> Self {
        if let Some(e) = eps {
            assert!(e.is_finite() && e >= 0.0, "RmsNorm: eps must be finite and ≥ 0, got {e}");
        }
        let weight = elementwise_affine.then(|| scope.param("weight", &[dim], Init::Ones));
        RmsNorm { weight, dim, eps }
    }

    /// The `eps` used for dtype `T`: the configured one, or `T`'s machine epsilon.
    pub fn eps_for<T: Float>(&self) -> f64 {
        self.eps.unwrap_or(if T::DTYPE == "f32" { f64::from(f32::EPSILON) } else { f64::EPSILON })
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
            "RmsNorm: input of shape {:?} does not end in dim = {}",
            shape.as_slice(),
            self.dim
        );
        let weight = match self.weight {
            Some(w) => p.get(w),
            None => p.tape().constant(Tensor::ones(&[self.dim])),
        };
        x.rms_norm(weight, self.eps_for::<T>())
    }
}

impl Module for RmsNorm {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        RmsNorm::forward(self, p, x)
    }
}

//! [`GroupNorm`]: splits the channels of `x` of shape `(batch, channels, …)` into `num_groups`
//! groups, normalizes each sample's group over its channels and positions (biased variance),
//! then scales and shifts each channel: `y = (x − mean_g) / √(var_g + eps) · γ_c + β_c`, as
//! PyTorch's `nn.GroupNorm(num_groups, num_channels, eps=1e-5, affine=True)`. `γ` and `β` are
//! `(channels)`, initialized to ones and zeros. Unlike batch norm, it uses no batch statistics,
//! so training and evaluation compute the same thing. Runs as [`Var::group_norm`].
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{GroupNorm, ParamStore};
//! let mut store = ParamStore::<f64>::with_seed(0);
//! let gn = GroupNorm::new(store.scope("gn"), 2, 4);
//! let tape = Tape::new();
//! let x = tape.constant(Tensor::from_vec((0..24).map(f64::from).collect(), &[2, 4, 3])); // (batch, channels, length)
//! let y = gn.forward(&store.bind(&tape), x).value();
//! let group: f64 = y.data()[..6].iter().sum(); // sample 0, channels 0 and 1
//! assert!(group.abs() < 1e-12);
//! ```

use autograd::{Float, Tensor, Var};

use crate::{Bound, Init, Module, ParamId, Scope};

/// Group normalization over `(channels / num_groups, …)` per sample; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupNorm {
    /// The per-channel scale `γ`, `(num_channels)`, if `affine`.
    pub weight: Option<ParamId>,
    /// The per-channel shift `β`, `(num_channels)`, if `affine`.
    pub bias: Option<ParamId>,
    /// How many groups the channels are split into.
    pub num_groups: usize,
    /// The channels of the input (its second axis).
    pub num_channels: usize,
    /// Added to the variance.
    pub eps: f64,
}

impl GroupNorm {
    /// With a per-channel scale and shift and `eps = 1e-5` (PyTorch's defaults).
    ///
    /// # Panics
    /// If `num_groups` is 0 or does not divide `num_channels`.
    #[track_caller]
    pub fn new<T: Float>(scope: Scope<'_, T>, num_groups: usize, num_channels: usize) -> Self {
        Self::with_options(scope, num_groups, num_channels, true, 1e-5)
    }

    /// With or without the per-channel scale and shift (`affine`), and the given `eps`.
    ///
    /// # Panics
    /// If `num_groups` is 0 or does not divide `num_channels`, or `eps` is negative or not
    /// finite.
    #[track_caller]
    pub fn with_options<T: Float>(
        mut scope: Scope<'_, T>,
        num_groups: usize,
        num_channels: usize,
        affine: bool,
        eps: f64,
    ) -> Self {
        assert!(
            num_groups > 0 && num_channels.is_multiple_of(num_groups),
            "GroupNorm: num_groups = {num_groups} does not divide num_channels = {num_channels}"
        );
        assert!(eps.is_finite() && eps >= 0.0, "GroupNorm: eps must be finite and ≥ 0, got {eps}");
        let weight = affine.then(|| scope.param("weight", &[num_channels], Init::Ones));
        let bias = affine.then(|| scope.param("bias", &[num_channels], Init::Zeros));
        GroupNorm { weight, bias, num_groups, num_channels, eps }
    }

    /// Normalizes `x`, of shape `(batch, num_channels, …)`.
    ///
    /// # Panics
    /// If `x` has fewer than 2 axes or its second axis is not `num_channels`.
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            shape.len() >= 2 && shape[1] == self.num_channels,
            "GroupNorm: input of shape {:?} is not (batch, num_channels = {}, …)",
            shape.as_slice(),
            self.num_channels
        );
        let c = self.num_channels;
        let weight = self.weight.map_or_else(|| p.tape().constant(Tensor::ones(&[c])), |w| p.get(w));
        let bias = self.bias.map_or_else(|| p.tape().constant(Tensor::zeros(&[c])), |b| p.get(b));
        x.group_norm(self.num_groups, weight, bias, self.eps)
    }
}

impl Module for GroupNorm {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        GroupNorm::forward(self, p, x)
    }
}

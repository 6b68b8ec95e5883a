//! [`BatchNorm1d`] and [`BatchNorm2d`]: each channel (axis 1) normalized, then scaled and
//! shifted, `y = (x − μ_c) / √(σ²_c + eps) · γ_c + β_c`, as PyTorch's.
//!
//! In training mode (after [`ParamStore::bind`](crate::ParamStore::bind)) `μ` and `σ²` are the
//! batch's mean and biased variance over every axis but 1, and the running estimates are
//! updated: `running_mean ← (1 − m)·running_mean + m·μ`, `running_var ← (1 − m)·running_var +
//! m·σ²·n/(n − 1)` (the unbiased variance of the `n` values per channel), with momentum
//! `m = 0.1`, and `num_batches_tracked` counts the steps. In evaluation mode
//! ([`Bound::eval`](crate::Bound::eval)) the running estimates are used. They are buffers
//! ([`ParamStore::add_buffer`](crate::ParamStore::add_buffer)): saved and loaded with the
//! weights under PyTorch's names, never trained. Their new values come back with the gradients
//! and are stored by the optimizer's `step` (or [`ParamStore::update_buffers`](crate::ParamStore::update_buffers)).
//!
//! ```
//! use autograd::{Tape, Tensor};
//! use nn::{BatchNorm1d, ParamStore};
//! let mut store = ParamStore::<f64>::with_seed(0);
//! let bn = BatchNorm1d::new(store.scope("bn"), 2);
//! let x = Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2]); // (N, C)
//! let (_, grads) = store.value_and_grad(0, |p| {
//!     let y = bn.forward(p, p.tape().constant(x.clone()));
//!     let want = [-1.0, -1.0, 1.0, 1.0]; // each channel standardized (up to eps)
//!     assert!(y.value().data().iter().zip(want).all(|(y, w)| (y - w).abs() < 1e-4));
//!     y.powi(2).sum()
//! });
//! store.update_buffers(&grads);
//! // μ = [2, 20], unbiased σ² = [2, 200]: 0.9·[0, 0] + 0.1·μ and 0.9·[1, 1] + 0.1·σ²
//! let (rm, rv) = (store.get(bn.0.running_mean).data(), store.get(bn.0.running_var).data());
//! assert!((rm[0] - 0.2).abs() < 1e-12 && (rm[1] - 2.0).abs() < 1e-12);
//! assert!((rv[0] - 1.1).abs() < 1e-12 && (rv[1] - 20.9).abs() < 1e-12);
//! assert_eq!(store.get(bn.0.num_batches_tracked).item(), 1.0);
//! ```

use autograd::{Float, Tensor, Var};

use crate::{Bound, Init, Module, ParamId, Scope};

/// The settings of a batch-norm layer; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig {
    /// Added to the variance.
    pub eps: f64,
    /// The weight of the new batch in the running estimates; `None` is the cumulative average
    /// (`1 / num_batches_tracked`), PyTorch's `momentum=None`.
    pub momentum: Option<f64>,
    /// Whether the layer has a learned scale `γ` and shift `β`.
    pub affine: bool,
}

impl Default for BatchNormConfig {
    /// `eps = 1e-5`, `momentum = 0.1`, affine.
    fn default() -> Self {
        BatchNormConfig { eps: 1e-5, momentum: Some(0.1), affine: true }
    }
}

/// Batch normalization over axis 1 of an input of any rank ≥ 2; [`BatchNorm1d`] and
/// [`BatchNorm2d`] check the rank. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm {
    /// The scale `γ`, `(channels)`, initialized to ones, if affine.
    pub weight: Option<ParamId>,
    /// The shift `β`, `(channels)`, initialized to zeros, if affine.
    pub bias: Option<ParamId>,
    /// The buffer `running_mean`, `(channels)`, initialized to zeros.
    pub running_mean: ParamId,
    /// The buffer `running_var`, `(channels)`, initialized to ones.
    pub running_var: ParamId,
    /// The buffer `num_batches_tracked`, a 0-d count of training steps.
    pub num_batches_tracked: ParamId,
    /// The number of channels.
    pub channels: usize,
    /// The settings.
    pub config: BatchNormConfig,
}

impl BatchNorm {
    /// A layer over `channels` channels with the given settings.
    ///
    /// # Panics
    /// If `eps` is negative or not finite, or `momentum` is outside `[0, 1]`.
    #[track_caller]
    pub fn with_config<T: Float>(mut scope: Scope<'_, T>, channels: usize, config: BatchNormConfig) -> Self {
        assert!(
            config.eps.is_finite() && config.eps >= 0.0,
            "BatchNorm: eps must be finite and ≥ 0, got {}",
            config.eps
        );
        if let Some(m) = config.momentum {
            assert!((0.0..=1.0).contains(&m), "BatchNorm: momentum must be in [0, 1], got {m}");
        }
        let weight = config.affine.then(|| scope.param("weight", &[channels], Init::Ones));
        let bias = config.affine.then(|| scope.param("bias", &[channels], Init::Zeros));
        let running_mean = scope.buffer("running_mean", Tensor::zeros(&[channels]));
        let running_var = scope.buffer("running_var", Tensor::ones(&[channels]));
        let num_batches_tracked = scope.buffer("num_batches_tracked", Tensor::scalar(T::ZERO));
        BatchNorm { weight, bias, running_mean, running_var, num_batches_tracked, channels, config }
    }

    /// Normalizes `x` `(N, C, …)`: by the batch's statistics in training mode (recording the
    /// running estimates' new values), by the running estimates in evaluation mode.
    ///
    /// # Panics
    /// If `x` has fewer than 2 axes or axis 1 is not `channels`; in training mode, if a channel
    /// holds a single value (`N · L = 1`, whose variance is not defined).
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            shape.len() >= 2 && shape[1] == self.channels,
            "BatchNorm: input of shape {:?} is not (N, {}, …)",
            shape.as_slice(),
            self.channels
        );
        let tape = p.tape();
        let c = self.channels;
        let weight = self.weight.map_or_else(|| tape.constant(Tensor::ones(&[c])), |w| p.get(w));
        let bias = self.bias.map_or_else(|| tape.constant(Tensor::zeros(&[c])), |b| p.get(b));
        if p.is_training() {
            let (y, stats) = x.batch_norm_with_stats(weight, bias, self.config.eps);
            self.record_running_stats(p, &stats);
            return y;
        }
        // (x − μ)/√(σ² + ε)·γ + β = x·s + (β − μ·s) with s = γ/√(σ² + ε), per channel.
        let mut channel = vec![1; shape.len()];
        channel[1] = c;
        let rm = p.get(self.running_mean);
        let inv_std = p.get(self.running_var).value().map(|v| T::ONE / (v + T::from_f64(self.config.eps)).sqrt());
        let scale = weight * tape.constant(inv_std);
        let shift = bias - rm * scale;
        x * scale.reshape(&channel) + shift.reshape(&channel)
    }

    /// Records the running estimates' new values from one batch's statistics.
    fn record_running_stats<T: Float>(&self, p: &Bound<'_, T>, stats: &autograd::ops::batch_norm::ChannelStats) {
        let tracked = p.get(self.num_batches_tracked).value().item().to_f64() + 1.0;
        let m = self.config.momentum.unwrap_or(1.0 / tracked);
        let unbias = stats.count as f64 / (stats.count - 1) as f64;
        let blend = |old: &Tensor<T>, new: &[f64], factor: f64| {
            let v = old.data().iter().zip(new).map(|(&o, &n)| T::from_f64((1.0 - m) * o.to_f64() + m * n * factor));
            Tensor::from_vec(v.collect(), old.shape())
        };
        let rm = blend(&p.get(self.running_mean).value(), &stats.mean, 1.0);
        let rv = blend(&p.get(self.running_var).value(), &stats.var, unbias);
        p.set_buffer(self.running_mean, rm);
        p.set_buffer(self.running_var, rv);
        p.set_buffer(self.num_batches_tracked, Tensor::scalar(T::from_f64(tracked)));
    }
}

/// Batch normalization of `(N, C)` or `(N, C, L)` inputs (PyTorch's `nn.BatchNorm1d`); see the
/// [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm1d(pub BatchNorm);

impl BatchNorm1d {
    /// With PyTorch's defaults (`eps = 1e-5`, `momentum = 0.1`, affine).
    pub fn new<T: Float>(scope: Scope<'_, T>, channels: usize) -> Self {
        BatchNorm1d(BatchNorm::with_config(scope, channels, BatchNormConfig::default()))
    }

    /// With the given settings.
    ///
    /// # Panics
    /// As [`BatchNorm::with_config`].
    #[track_caller]
    pub fn with_config<T: Float>(scope: Scope<'_, T>, channels: usize, config: BatchNormConfig) -> Self {
        BatchNorm1d(BatchNorm::with_config(scope, channels, config))
    }

    /// Normalizes `x`, `(N, C)` or `(N, C, L)`.
    ///
    /// # Panics
    /// If `x` is not 2-d or 3-d with `C` channels; see [`BatchNorm::forward`].
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(
            matches!(shape.len(), 2 | 3),
            "BatchNorm1d: input of shape {:?} is not (N, C) or (N, C, L)",
            shape.as_slice()
        );
        self.0.forward(p, x)
    }
}

impl Module for BatchNorm1d {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        BatchNorm1d::forward(self, p, x)
    }
}

/// Batch normalization of `(N, C, H, W)` inputs (PyTorch's `nn.BatchNorm2d`); see the
/// [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm2d(pub BatchNorm);

impl BatchNorm2d {
    /// With PyTorch's defaults (`eps = 1e-5`, `momentum = 0.1`, affine).
    pub fn new<T: Float>(scope: Scope<'_, T>, channels: usize) -> Self {
        BatchNorm2d(BatchNorm::with_config(scope, channels, BatchNormConfig::default()))
    }

    /// With the given settings.
    ///
    /// # Panics
    /// As [`BatchNorm::with_config`].
    #[track_caller]
    pub fn with_config<T: Float>(scope: Scope<'_, T>, channels: usize, config: BatchNormConfig) -> Self {
        BatchNorm2d(BatchNorm::with_config(scope, channels, config))
    }

    /// Normalizes `x`, `(N, C, H, W)`.
    ///
    /// # Panics
    /// If `x` is not 4-d with `C` channels; see [`BatchNorm::forward`].
    #[track_caller]
    pub fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        let shape = x.shape();
        assert!(shape.len() == 4, "BatchNorm2d: input of shape {:?} is not (N, C, H, W)", shape.as_slice());
        self.0.forward(p, x)
    }
}

impl Module for BatchNorm2d {
    fn forward<'t, T: Float>(&self, p: &Bound<'t, T>, x: Var<'t, T>) -> Var<'t, T> {
        BatchNorm2d::forward(self, p, x)
    }
}

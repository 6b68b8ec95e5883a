//! [`Accumulate`]: gradient accumulation over micro-batches. A batch too large for memory (or
//! for the time one step may take) is split into `K` micro-batches of equal size; the mean of
//! their gradients is the gradient of the whole batch's mean loss, so one optimizer step on it
//! is the step on the whole batch.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{Accumulate, Optimizer, ParamStore, Sgd, SgdConfig};
//! let mut store = ParamStore::<f64>::default();
//! let w = store.add("w", Tensor::scalar(1.0));
//! let mut opt = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() });
//! let mut acc = Accumulate::new(2);
//! for target in [3.0, 5.0] {
//!     // Each micro-batch's loss is (w − target)²; the batch's mean loss has gradient
//!     // ((1 − 3)·2 + (1 − 5)·2) / 2 = −6.
//!     let (_, grads) = store.value_and_grad(0, |p| {
//!         let d = p.get(w) - target;
//!         d * d
//!     });
//!     if let Some(mean) = acc.add(&grads) {
//!         opt.step(&mut store, &mean);
//!     }
//! }
//! assert!((store.get(w).item() - 1.6).abs() < 1e-15); // 1 − 0.1·(−6)
//! ```

use autograd::Float;

use crate::ParamGrads;

/// Sums the gradients of `micro_batches` micro-batches and hands back their mean after the
/// last one; see the [module docs](self).
#[derive(Clone)]
pub struct Accumulate<T: Float> {
    micro_batches: usize,
    seen: usize,
    sum: ParamGrads<T>,
}

impl<T: Float> Accumulate<T> {
    /// An accumulator over `micro_batches` micro-batches per step (1: each gradient is
    /// returned as it is).
    ///
    /// # Panics
    /// If `micro_batches` is 0.
    #[track_caller]
    pub fn new(micro_batches: usize) -> Self {
        assert!(micro_batches > 0, "Accumulate: micro_batches must be at least 1, got 0");
        Accumulate { micro_batches, seen: 0, sum: ParamGrads::default() }
    }

    /// Micro-batches per step.
    pub fn micro_batches(&self) -> usize {
        self.micro_batches
    }

    /// Micro-batches added since the last step.
    pub fn pending(&self) -> usize {
        self.seen
    }

    /// Adds one micro-batch's gradients (of its mean loss). After the `micro_batches`-th, returns
    /// the mean of the gradients since the last return, `Σ gₖ / K`, and starts over; before, `None`.
    /// A parameter that some micro-batches did not reach counts zero for them.
    ///
    /// # Panics
    /// If a gradient's shape differs between micro-batches.
    #[track_caller]
    pub fn add(&mut self, grads: &ParamGrads<T>) -> Option<ParamGrads<T>> {
        self.sum.accumulate(grads);
        self.seen += 1;
        if self.seen < self.micro_batches {
            return None;
        }
        self.seen = 0;
        let mut mean = std::mem::take(&mut self.sum);
        if self.micro_batches > 1 {
            let k = T::from_f64(self.micro_batches as f64);
            for (_, g) in mean.iter_mut() {
                for x in g.data_mut() {
                    *x /= k;
                }
            }
        }
        Some(mean)
    }
}

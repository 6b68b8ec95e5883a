//! [`LrSchedule`]: the learning rate as a function of the step, a linear warm-up followed by a
//! [`Decay`].
//!
//! ```
//! use nn::{Decay, LrSchedule};
//! let s = LrSchedule { base_lr: 1.0, warmup_steps: 4, decay: Decay::Cosine { total_steps: 14, min_lr: 0.0 } };
//! assert_eq!(s.lr(0), 0.25);   // warm-up: (step + 1) / 4
//! assert_eq!(s.lr(3), 1.0);
//! assert_eq!(s.lr(4), 1.0);    // cosine starts at the base rate
//! assert!((s.lr(9) - 0.5).abs() < 1e-12); // half way through the 10 decay steps
//! assert_eq!(s.lr(14), 0.0);
//! ```

use autograd::Float;

use super::Optimizer;

/// What the learning rate does after warm-up.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decay {
    /// Stays at the base rate.
    Constant,
    /// Multiplied by `gamma` every `every` steps (PyTorch's `StepLR`).
    Step {
        /// Steps between drops.
        every: u64,
        /// Factor per drop.
        gamma: f64,
    },
    /// Half a cosine from the base rate down to `min_lr`, reached at `total_steps` (counted from
    /// step 0, warm-up included) and kept after (PyTorch's `CosineAnnealingLR`).
    Cosine {
        /// The step at which `min_lr` is reached.
        total_steps: u64,
        /// The final rate.
        min_lr: f64,
    },
}

/// A learning-rate schedule: linear warm-up from `base_lr / warmup_steps` to `base_lr` over
/// `warmup_steps` steps, then `decay`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    /// The peak rate.
    pub base_lr: f64,
    /// Steps of linear warm-up (0 for none).
    pub warmup_steps: u64,
    /// What happens after warm-up.
    pub decay: Decay,
}

impl LrSchedule {
    /// A constant rate.
    pub fn constant(lr: f64) -> Self {
        LrSchedule { base_lr: lr, warmup_steps: 0, decay: Decay::Constant }
    }

    /// The rate for step `step` (0-based: the first step is 0).
    pub fn lr(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let s = step - self.warmup_steps;
        match self.decay {
            Decay::Constant => self.base_lr,
            Decay::Step { every, gamma } => {
                let drops = s / every.max(1);
                self.base_lr * gamma.powi(drops.min(i32::MAX as u64) as i32)
            }
            Decay::Cosine { total_steps, min_lr } => {
                let span = total_steps.saturating_sub(self.warmup_steps);
                if span == 0 || s >= span {
                    return min_lr;
                }
                let progress = s as f64 / span as f64;
                min_lr + (self.base_lr - min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
            }
        }
    }

    /// Sets the optimizer's rate for its next step (`self.lr(opt.steps())`) and returns it.
    pub fn apply<T: Float>(&self, opt: &mut dyn Optimizer<T>) -> f64 {
        let lr = self.lr(opt.steps());
        opt.set_lr(lr);
        lr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_decay_drops_by_gamma_after_warmup() {
        let s = LrSchedule { base_lr: 0.1, warmup_steps: 2, decay: Decay::Step { every: 3, gamma: 0.5 } };
        let lrs: Vec<f64> = (0..9).map(|i| s.lr(i)).collect();
        assert_eq!(lrs, [0.05, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]);
    }

    #[test]
    fn cosine_without_warmup_is_monotone_and_ends_at_min() {
        let s = LrSchedule { base_lr: 1.0, warmup_steps: 0, decay: Decay::Cosine { total_steps: 100, min_lr: 0.1 } };
        assert_eq!(s.lr(0), 1.0);
        assert!((1..=100).all(|i| s.lr(i) <= s.lr(i - 1)));
        assert_eq!(s.lr(100), 0.1);
        assert_eq!(s.lr(1000), 0.1);
    }
}

//! Learning-rate schedules: [`LrSchedule`], a linear warm-up followed by a [`Decay`] (constant,
//! step, cosine or linear), and [`OneCycleLr`], the one-cycle policy.
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
    /// A straight line from the base rate down to `min_lr`, reached at `total_steps` (counted
    /// from step 0, warm-up included) and kept after: nanoGPT's warm-up and linear decay, or
    /// PyTorch's `LinearLR` (a `SequentialLR` of two with a warm-up).
    Linear {
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
            Decay::Linear { total_steps, min_lr } => {
                let span = total_steps.saturating_sub(self.warmup_steps);
                if span == 0 || s >= span {
                    return min_lr;
                }
                self.base_lr - (self.base_lr - min_lr) * (s as f64 / span as f64)
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

/// How [`OneCycleLr`] moves between two rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Anneal {
    /// Half a cosine (PyTorch's `anneal_strategy="cos"`, its default).
    #[default]
    Cos,
    /// A straight line (`anneal_strategy="linear"`).
    Linear,
}

impl Anneal {
    /// The rate a fraction `pct` of the way from `start` to `end`.
    fn at(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((std::f64::consts::PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

/// The one-cycle policy (Smith & Topin, 2018), as PyTorch's `OneCycleLR` computes it: the rate
/// rises from `max_lr / div_factor` to `max_lr` over the first `pct_start` of `total_steps`,
/// then falls to `max_lr / div_factor / final_div_factor` at the last step. With `three_phase`,
/// it first comes back down to the starting rate over as many steps as it rose, then falls to
/// the final rate. (Momentum is not cycled.)
///
/// ```
/// use nn::{Anneal, OneCycleLr};
/// let s = OneCycleLr { max_lr: 1.0, total_steps: 10, pct_start: 0.5, div_factor: 10.0,
///                      final_div_factor: 10.0, anneal: Anneal::Linear, three_phase: false };
/// assert!((s.lr(0) - 0.1).abs() < 1e-12);  // max_lr / div_factor
/// assert!((s.lr(2) - 0.55).abs() < 1e-12); // half way up: the peak is at step 0.5·10 − 1 = 4
/// assert!((s.lr(4) - 1.0).abs() < 1e-12);
/// assert!((s.lr(9) - 0.01).abs() < 1e-12); // the last step: 0.1 / final_div_factor
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycleLr {
    /// The peak rate.
    pub max_lr: f64,
    /// Steps in the cycle; the last one is `total_steps − 1`, after which the rate stays at the
    /// final rate.
    pub total_steps: u64,
    /// The fraction of the steps spent rising. PyTorch's default 0.3.
    pub pct_start: f64,
    /// The starting rate is `max_lr / div_factor`. PyTorch's default 25.
    pub div_factor: f64,
    /// The final rate is the starting rate divided by this. PyTorch's default 1e4.
    pub final_div_factor: f64,
    /// How the rate moves. PyTorch's default cosine.
    pub anneal: Anneal,
    /// Three phases rather than two (see above). PyTorch's default false.
    pub three_phase: bool,
}

impl OneCycleLr {
    /// A cycle of `total_steps` up to `max_lr` with PyTorch's defaults for the rest.
    pub fn new(max_lr: f64, total_steps: u64) -> Self {
        OneCycleLr {
            max_lr,
            total_steps,
            pct_start: 0.3,
            div_factor: 25.0,
            final_div_factor: 1e4,
            anneal: Anneal::Cos,
            three_phase: false,
        }
    }

    /// The rate for step `step` (0-based), PyTorch's value for its `step`-th `get_last_lr()`.
    /// Past the last step, the final rate (where PyTorch raises an error).
    ///
    /// # Panics
    /// If a phase has no steps (`pct_start · total_steps ≤ 1`, or the rise reaching the end), a
    /// division by zero in PyTorch.
    #[track_caller]
    pub fn lr(&self, step: u64) -> f64 {
        let initial = self.max_lr / self.div_factor;
        let min = initial / self.final_div_factor;
        let total = self.total_steps as f64;
        let up_end = self.pct_start * total - 1.0;
        let phases: &[(f64, f64, f64)] = if self.three_phase {
            &[
                (up_end, initial, self.max_lr),
                (2.0 * self.pct_start * total - 2.0, self.max_lr, initial),
                (total - 1.0, initial, min),
            ]
        } else {
            &[(up_end, initial, self.max_lr), (total - 1.0, self.max_lr, min)]
        };
        let ends: Vec<f64> = phases.iter().map(|p| p.0).collect();
        assert!(
            ends[0] > 0.0 && ends.windows(2).all(|w| w[0] < w[1]),
            "OneCycleLr: pct_start = {} of total_steps = {} leaves a phase without steps (phase ends {ends:?})",
            self.pct_start,
            self.total_steps
        );
        let step = (step as f64).min(total - 1.0);
        let mut start_step = 0.0;
        for (i, &(end_step, from, to)) in phases.iter().enumerate() {
            if step <= end_step || i == phases.len() - 1 {
                let pct = (step - start_step) / (end_step - start_step);
                return self.anneal.at(from, to, pct);
            }
            start_step = end_step;
        }
        unreachable!("the last phase always returns")
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

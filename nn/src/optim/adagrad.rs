//! [`Adagrad`] (Duchi, Hazan & Singer, 2011), with PyTorch's update rule (`torch.optim.Adagrad`)
//! at step `t = 1, 2, …`:
//!
//! ```text
//! g ← g + weight_decay·p
//! lr_t = lr / (1 + (t − 1)·lr_decay)
//! s ← s + g²                    (sum, starting at initial_accumulator_value)
//! p ← p − lr_t · g / (√s + eps)
//! ```

use autograd::{Float, Tensor};

use super::{fused, load_slots, save_slots, Optimizer, OptimizerState};
use crate::{ParamGrads, ParamStore, Result};

/// Hyper-parameters of [`Adagrad`]; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// Learning rate. Default 1e-2.
    pub lr: f64,
    /// The rate at step `t` is `lr / (1 + (t − 1)·lr_decay)`. Default 0.
    pub lr_decay: f64,
    /// L2 penalty added to the gradient. Default 0.
    pub weight_decay: f64,
    /// The sum of squared gradients starts here. Default 0.
    pub initial_accumulator_value: f64,
    /// Added to the denominator. Default 1e-10.
    pub eps: f64,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        AdagradConfig { lr: 1e-2, lr_decay: 0.0, weight_decay: 0.0, initial_accumulator_value: 0.0, eps: 1e-10 }
    }
}

/// Adagrad; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Adagrad<T: Float> {
    config: AdagradConfig,
    step: u64,
    sum: Vec<Option<Tensor<T>>>,
}

/// The numbers of one step, as [`update`] takes them.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    clr: T,
    eps: T,
    wd: T,
    l2: bool,
}

autograd::simd::kernel! {
    /// One Adagrad step over a chunk of a parameter `p`, its gradient `g` and sum `s`.
    fn update[T: Float](k: Coefficients<T>, p: &mut [T], g: &[T], s: &mut [T]) where [] {
        for ((p, &g), s) in p.iter_mut().zip(g).zip(s.iter_mut()) {
            let g = if k.l2 { g + k.wd * *p } else { g };
            *s += g * g;
            *p -= k.clr * g / (s.sqrt() + k.eps);
        }
    }
}

impl<T: Float> Adagrad<T> {
    /// An optimizer with no state yet.
    pub fn new(config: AdagradConfig) -> Self {
        Adagrad { config, step: 0, sum: Vec::new() }
    }

    /// The hyper-parameters (with the current learning rate).
    pub fn config(&self) -> &AdagradConfig {
        &self.config
    }
}

impl<T: Float> Optimizer<T> for Adagrad<T> {
    fn step(&mut self, store: &mut ParamStore<T>, grads: &ParamGrads<T>) {
        store.update_buffers(grads);
        self.step += 1;
        let c = self.config;
        let k = Coefficients {
            clr: T::from_f64(c.lr / (1.0 + (self.step - 1) as f64 * c.lr_decay)),
            eps: T::from_f64(c.eps),
            wd: T::from_f64(c.weight_decay),
            l2: c.weight_decay != 0.0,
        };
        if self.sum.len() < store.len() {
            self.sum.resize(store.len(), None);
        }
        let init = T::from_f64(c.initial_accumulator_value);
        for (id, p, frozen) in store.iter_mut() {
            let Some(g) = grads.get(id) else { continue };
            if frozen {
                continue;
            }
            assert_eq!(p.shape(), g.shape(), "Adagrad: gradient shape differs from its parameter's");
            let s = self.sum[id.index()].get_or_insert_with(|| Tensor::full(g.shape(), init));
            fused(p.data_mut(), g.data(), s.data_mut(), &mut [], |p, g, s, _| update(k, p, g, s));
        }
    }

    fn lr(&self) -> f64 {
        self.config.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    fn steps(&self) -> u64 {
        self.step
    }

    fn state(&self, store: &ParamStore<T>) -> OptimizerState {
        OptimizerState {
            kind: "adagrad".into(),
            step: self.step,
            scalars: vec![("lr".into(), self.config.lr)],
            slots: save_slots(store, &["sum"], &[&self.sum]),
        }
    }

    fn load_state(&mut self, store: &ParamStore<T>, state: &OptimizerState) -> Result<()> {
        let mut bufs = load_slots(store, state, "adagrad", &["sum"])?;
        self.sum = bufs.pop().expect("one slot");
        self.step = state.step;
        if let Some(lr) = state.scalar("lr") {
            self.config.lr = lr;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two steps from p = 1 with g = 2 then g = 1, lr 0.5, lr_decay 1, initial sum 5, eps 0:
    /// step 1: s = 5 + 4 = 9, p = 1 − 0.5·2/3 = 2/3; step 2: lr_t = 0.5/2 = 0.25, s = 10,
    /// p = 2/3 − 0.25/√10.
    #[test]
    fn two_steps_match_hand_computation() {
        let mut store = ParamStore::<f64>::default();
        let w = store.add("w", Tensor::scalar(1.0));
        let mut opt = Adagrad::new(AdagradConfig {
            lr: 0.5,
            lr_decay: 1.0,
            initial_accumulator_value: 5.0,
            eps: 0.0,
            ..Default::default()
        });
        opt.step(&mut store, &ParamGrads::from_vec(vec![Some(Tensor::scalar(2.0))]));
        assert!((store.get(w).item() - 2.0 / 3.0).abs() < 1e-15);
        opt.step(&mut store, &ParamGrads::from_vec(vec![Some(Tensor::scalar(1.0))]));
        assert!((store.get(w).item() - (2.0 / 3.0 - 0.25 / 10f64.sqrt())).abs() < 1e-15);
    }
}

//! [`Lion`] (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"), with the update
//! of the paper and of lucidrains' `lion-pytorch`:
//!
//! ```text
//! p ← p·(1 − lr·weight_decay)
//! p ← p − lr · sign(β₁·m + (1 − β₁)·g)        (sign(0) = 0)
//! m ← β₂·m + (1 − β₂)·g                       (exp_avg)
//! ```
//!
//! Every coordinate moves by exactly `lr` (or not at all), so Lion wants a learning rate 3 to
//! 10 times smaller than AdamW's, and a weight decay as many times larger.

use autograd::{Float, Tensor};

use super::{fused, load_slots, save_slots, Optimizer, OptimizerState};
use crate::{ParamGrads, ParamStore, Result};

/// Hyper-parameters of [`Lion`]; the defaults are lion-pytorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LionConfig {
    /// Learning rate. Default 1e-4.
    pub lr: f64,
    /// Interpolation between the moment and the gradient for the update's sign. Default 0.9.
    pub beta1: f64,
    /// Decay of the moment. Default 0.99.
    pub beta2: f64,
    /// Decoupled weight decay: `p ← p·(1 − lr·weight_decay)`. Default 0.
    pub weight_decay: f64,
}

impl Default for LionConfig {
    fn default() -> Self {
        LionConfig { lr: 1e-4, beta1: 0.9, beta2: 0.99, weight_decay: 0.0 }
    }
}

/// Lion; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Lion<T: Float> {
    config: LionConfig,
    step: u64,
    exp_avg: Vec<Option<Tensor<T>>>,
}

/// The numbers of one step, as [`update`] takes them.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    lr: T,
    shrink: T,
    b1: T,
    one_b1: T,
    b2: T,
    one_b2: T,
}

autograd::simd::kernel! {
    /// One Lion step over a chunk of a parameter `p`, its gradient `g` and moment `m`.
    fn update[T: Float](k: Coefficients<T>, p: &mut [T], g: &[T], m: &mut [T]) where [] {
        let (zero, one) = (T::from_f64(0.0), T::from_f64(1.0));
        for ((p, &g), m) in p.iter_mut().zip(g).zip(m.iter_mut()) {
            let u = k.b1 * *m + k.one_b1 * g;
            // torch.sign: 0 at 0 (a NaN stays NaN and shows in the parameter).
            let sign = if u > zero { one } else if u < zero { -one } else { u };
            *p = *p * k.shrink - k.lr * sign;
            *m = k.b2 * *m + k.one_b2 * g;
        }
    }
}

impl<T: Float> Lion<T> {
    /// An optimizer with no state yet.
    pub fn new(config: LionConfig) -> Self {
        Lion { config, step: 0, exp_avg: Vec::new() }
    }

    /// The hyper-parameters (with the current learning rate).
    pub fn config(&self) -> &LionConfig {
        &self.config
    }
}

impl<T: Float> Optimizer<T> for Lion<T> {
    fn step(&mut self, store: &mut ParamStore<T>, grads: &ParamGrads<T>) {
        store.update_buffers(grads);
        self.step += 1;
        let c = self.config;
        let k = Coefficients {
            lr: T::from_f64(c.lr),
            shrink: T::from_f64(1.0 - c.lr * c.weight_decay),
            b1: T::from_f64(c.beta1),
            one_b1: T::from_f64(1.0 - c.beta1),
            b2: T::from_f64(c.beta2),
            one_b2: T::from_f64(1.0 - c.beta2),
        };
        if self.exp_avg.len() < store.len() {
            self.exp_avg.resize(store.len(), None);
        }
        for (id, p, frozen) in store.iter_mut() {
            let Some(g) = grads.get(id) else { continue };
            if frozen {
                continue;
            }
            assert_eq!(p.shape(), g.shape(), "Lion: gradient shape differs from its parameter's");
            let m = self.exp_avg[id.index()].get_or_insert_with(|| Tensor::zeros(g.shape()));
            fused(p.data_mut(), g.data(), m.data_mut(), &mut [], |p, g, m, _| update(k, p, g, m));
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
            kind: "lion".into(),
            step: self.step,
            scalars: vec![("lr".into(), self.config.lr)],
            slots: save_slots(store, &["exp_avg"], &[&self.exp_avg]),
        }
    }

    fn load_state(&mut self, store: &ParamStore<T>, state: &OptimizerState) -> Result<()> {
        let mut bufs = load_slots(store, state, "lion", &["exp_avg"])?;
        self.exp_avg = bufs.pop().expect("one slot");
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

    /// Each coordinate moves by lr against the sign of 0.9·m + 0.1·g, and not at all where that
    /// is 0; with decay 0.5 and lr 0.1, p first shrinks by 5 %.
    #[test]
    fn the_update_is_the_sign_and_zero_at_zero() {
        let mut store = ParamStore::<f64>::default();
        let w = store.add("w", Tensor::from(vec![1.0, 1.0, 1.0]));
        let mut opt = Lion::new(LionConfig { lr: 0.1, weight_decay: 0.5, ..Default::default() });
        opt.step(&mut store, &ParamGrads::from_vec(vec![Some(Tensor::from(vec![3.0, -1e-3, 0.0]))]));
        assert_eq!(store.get(w).to_vec(), vec![0.95 - 0.1, 0.95 + 0.1, 0.95]);
        assert_eq!(opt.state(&store).kind, "lion");
    }
}

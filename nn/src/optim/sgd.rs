//! [`Sgd`]: stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay,
//! with PyTorch's update rule:
//!
//! ```text
//! g ← g + weight_decay·p
//! b ← g on the first step, else momentum·b + (1 − dampening)·g
//! g ← g + momentum·b  (Nesterov)   or   g ← b  (classical; plain SGD when momentum = 0)
//! p ← p − lr·g
//! ```

use autograd::{Float, Tensor};

use super::{fused, load_slots, save_slots, Optimizer, OptimizerState};
use crate::{ParamGrads, ParamStore, Result};

/// Hyper-parameters of [`Sgd`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// Learning rate. Default 0.01.
    pub lr: f64,
    /// Momentum factor (0 for none). Default 0.
    pub momentum: f64,
    /// Dampening of the momentum's gradient term. Default 0.
    pub dampening: f64,
    /// Nesterov momentum (needs momentum > 0 and dampening 0). Default false.
    pub nesterov: bool,
    /// L2 penalty added to the gradient. Default 0.
    pub weight_decay: f64,
}

impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig { lr: 0.01, momentum: 0.0, dampening: 0.0, nesterov: false, weight_decay: 0.0 }
    }
}

/// Stochastic gradient descent; see the [module docs](self).
///
/// ```
/// use autograd::Tensor;
/// use nn::{Optimizer, ParamGrads, ParamStore, Sgd, SgdConfig};
/// let mut store = ParamStore::<f64>::default();
/// let w = store.add("w", Tensor::from(vec![1.0, -2.0]));
/// let mut opt = Sgd::new(SgdConfig { lr: 0.5, ..Default::default() });
/// opt.step(&mut store, &ParamGrads::from_vec(vec![Some(Tensor::from(vec![0.2, 0.4]))]));
/// assert_eq!(store.get(w).to_vec(), vec![0.9, -2.2]); // p − 0.5·g
/// ```
#[derive(Clone, Debug)]
pub struct Sgd<T: Float> {
    config: SgdConfig,
    step: u64,
    momentum: Vec<Option<Tensor<T>>>,
}

impl<T: Float> Sgd<T> {
    /// An optimizer with no state yet.
    ///
    /// # Panics
    /// If Nesterov is asked for without momentum or with dampening (as PyTorch).
    #[track_caller]
    pub fn new(config: SgdConfig) -> Self {
        assert!(
            !config.nesterov || (config.momentum > 0.0 && config.dampening == 0.0),
            "Sgd: Nesterov momentum needs momentum > 0 and dampening = 0"
        );
        Sgd { config, step: 0, momentum: Vec::new() }
    }

    /// The hyper-parameters (with the current learning rate).
    pub fn config(&self) -> &SgdConfig {
        &self.config
    }
}

impl<T: Float> Optimizer<T> for Sgd<T> {
    fn step(&mut self, store: &mut ParamStore<T>, grads: &ParamGrads<T>) {
        store.update_buffers(grads);
        let c = self.config;
        let (lr, mu, damp, wd) =
            (T::from_f64(c.lr), T::from_f64(c.momentum), T::from_f64(1.0 - c.dampening), T::from_f64(c.weight_decay));
        let (use_wd, nesterov) = (c.weight_decay != 0.0, c.nesterov);
        if self.momentum.len() < store.len() {
            self.momentum.resize(store.len(), None);
        }
        for (id, p, frozen) in store.iter_mut() {
            let Some(g) = grads.get(id) else { continue };
            if frozen {
                continue;
            }
            assert_eq!(p.shape(), g.shape(), "Sgd: gradient shape differs from its parameter's");
            if c.momentum == 0.0 {
                fused(p.data_mut(), g.data(), &mut [], &mut [], |p, g, _, _| {
                    for (p, &g) in p.iter_mut().zip(g) {
                        let g = if use_wd { g + wd * *p } else { g };
                        *p -= lr * g;
                    }
                });
                continue;
            }
            let slot = &mut self.momentum[id.index()];
            let fresh = slot.is_none();
            let buf = slot.get_or_insert_with(|| Tensor::zeros(g.shape()));
            fused(p.data_mut(), g.data(), buf.data_mut(), &mut [], |p, g, b, _| {
                for ((p, &g), b) in p.iter_mut().zip(g).zip(b.iter_mut()) {
                    let g = if use_wd { g + wd * *p } else { g };
                    *b = if fresh { g } else { mu * *b + damp * g };
                    let d = if nesterov { g + mu * *b } else { *b };
                    *p -= lr * d;
                }
            });
        }
        self.step += 1;
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
            kind: "sgd".into(),
            step: self.step,
            scalars: vec![("lr".into(), self.config.lr)],
            slots: save_slots(store, &["momentum"], &[&self.momentum]),
        }
    }

    fn load_state(&mut self, store: &ParamStore<T>, state: &OptimizerState) -> Result<()> {
        let mut bufs = load_slots(store, state, "sgd", &["momentum"])?;
        self.momentum = bufs.remove(0);
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

    fn grads(g: Vec<f64>) -> ParamGrads<f64> {
        ParamGrads::from_vec(vec![Some(Tensor::from(g))])
    }

    #[test]
    fn momentum_and_nesterov_match_hand_computed_updates() {
        // p = 1, g = 1 then g = 1 again; lr 0.1, momentum 0.9.
        // classical: b1 = 1, p1 = 1 − 0.1 = 0.9;  b2 = 0.9 + 1 = 1.9, p2 = 0.9 − 0.19 = 0.71
        // Nesterov: b1 = 1, d1 = 1 + 0.9 = 1.9, p1 = 1 − 0.19 = 0.81;
        //           b2 = 1.9, d2 = 1 + 0.9·1.9 = 2.71, p2 = 0.81 − 0.271 = 0.539
        for (nesterov, want) in [(false, [0.9, 0.71]), (true, [0.81, 0.539])] {
            let mut store = ParamStore::<f64>::default();
            let w = store.add("w", Tensor::from(vec![1.0]));
            let mut opt = Sgd::new(SgdConfig { lr: 0.1, momentum: 0.9, nesterov, ..Default::default() });
            for want in want {
                opt.step(&mut store, &grads(vec![1.0]));
                assert!((store.get(w).item() - want).abs() < 1e-12, "{nesterov}");
            }
        }
    }

    #[test]
    fn weight_decay_adds_the_l2_gradient() {
        // g' = 0 + 0.5·2 = 1; p = 2 − 0.1·1 = 1.9
        let mut store = ParamStore::<f64>::default();
        let w = store.add("w", Tensor::from(vec![2.0]));
        let mut opt = Sgd::new(SgdConfig { lr: 0.1, weight_decay: 0.5, ..Default::default() });
        opt.step(&mut store, &grads(vec![0.0]));
        assert!((store.get(w).item() - 1.9).abs() < 1e-12);
    }

    #[test]
    fn frozen_parameters_and_missing_gradients_are_left_alone() {
        let mut store = ParamStore::<f64>::default();
        let a = store.add("a", Tensor::from(vec![1.0]));
        let b = store.add("b", Tensor::from(vec![1.0]));
        let c = store.add("c", Tensor::from(vec![1.0]));
        store.set_frozen(b, true);
        let g = ParamGrads::from_vec(vec![Some(Tensor::from(vec![1.0])), Some(Tensor::from(vec![1.0])), None]);
        Sgd::new(SgdConfig { lr: 1.0, ..Default::default() }).step(&mut store, &g);
        assert_eq!([store.get(a).item(), store.get(b).item(), store.get(c).item()], [0.0, 1.0, 1.0]);
    }
}

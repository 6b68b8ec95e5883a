//! [`Adam`] (Kingma & Ba, 2015) with optional L2 weight decay, and [`AdamW`] (Loshchilov &
//! Hutter, 2019) with decoupled weight decay, with PyTorch's update rule at step `t = 1, 2, …`:
//!
//! ```text
//! Adam:  g ← g + weight_decay·p          AdamW:  p ← p·(1 − lr·weight_decay)
//! m ← β₁·m + (1 − β₁)·g
//! v ← β₂·v + (1 − β₂)·g²
//! p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + eps)
//! ```

use autograd::{Float, Tensor};

use super::{fused, load_slots, save_slots, Optimizer, OptimizerState};
use crate::{ParamGrads, ParamStore, Result};

/// Which parameters weight decay applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum DecayOn {
    /// Every parameter (PyTorch's default).
    #[default]
    All,
    /// Parameters of rank ≥ 2 only (weight matrices and kernels; not biases, norms' scales or
    /// shifts), as GPT-2 training does.
    Matrices,
}

/// Hyper-parameters of [`Adam`] and [`AdamW`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// Learning rate. Default 1e-3.
    pub lr: f64,
    /// Decay of the first moment. Default 0.9.
    pub beta1: f64,
    /// Decay of the second moment. Default 0.999.
    pub beta2: f64,
    /// Added to the denominator. Default 1e-8.
    pub eps: f64,
    /// Weight decay: an L2 term in `Adam`, decoupled in `AdamW`. Default 0.
    pub weight_decay: f64,
    /// Which parameters are decayed. Default all.
    pub decay_on: DecayOn,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, decay_on: DecayOn::All }
    }
}

/// Adam; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct Adam<T: Float> {
    config: AdamConfig,
    decoupled: bool,
    step: u64,
    exp_avg: Vec<Option<Tensor<T>>>,
    exp_avg_sq: Vec<Option<Tensor<T>>>,
}

/// AdamW: Adam with weight decay applied directly to the parameters rather than through the
/// gradient; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct AdamW<T: Float>(Adam<T>);

const SLOTS: [&str; 2] = ["exp_avg", "exp_avg_sq"];

impl<T: Float> Adam<T> {
    /// An optimizer with no state yet.
    pub fn new(config: AdamConfig) -> Self {
        Adam { config, decoupled: false, step: 0, exp_avg: Vec::new(), exp_avg_sq: Vec::new() }
    }

    /// The hyper-parameters (with the current learning rate).
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    fn kind(&self) -> &'static str {
        if self.decoupled {
            "adamw"
        } else {
            "adam"
        }
    }
}

impl<T: Float> AdamW<T> {
    /// An optimizer with no state yet.
    pub fn new(config: AdamConfig) -> Self {
        let mut adam = Adam::new(config);
        adam.decoupled = true;
        AdamW(adam)
    }

    /// The hyper-parameters (with the current learning rate).
    pub fn config(&self) -> &AdamConfig {
        &self.0.config
    }
}

/// The numbers of one Adam step for one parameter, as [`update`] takes them.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    b1: T,
    b2: T,
    one_b1: T,
    one_b2: T,
    step_size: T,
    inv_bias2_sqrt: T,
    eps: T,
    wd: T,
    shrink: T,
    l2: bool,
    decoupled: bool,
}

autograd::simd::kernel! {
    /// One Adam step over a chunk of a parameter `p`, its gradient `g` and moments `m`, `v`,
    /// compiled for the CPU's vector instructions (a kernel of its own rather than a closure
    /// given to one, so that its loop is compiled for them whatever the inliner decides).
    fn update[T: Float](k: Coefficients<T>, p: &mut [T], g: &[T], m: &mut [T], v: &mut [T]) where [] {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            let g = if k.l2 { g + k.wd * *p } else { g };
            if k.decoupled {
                *p *= k.shrink;
            }
            *m = k.b1 * *m + k.one_b1 * g;
            *v = k.b2 * *v + k.one_b2 * g * g;
            *p -= k.step_size * *m / (v.sqrt() * k.inv_bias2_sqrt + k.eps);
        }
    }
}

impl<T: Float> Optimizer<T> for Adam<T> {
    fn step(&mut self, store: &mut ParamStore<T>, grads: &ParamGrads<T>) {
        store.update_buffers(grads);
        self.step += 1;
        let c = self.config;
        let t = self.step as i32;
        let bias1 = 1.0 - c.beta1.powi(t);
        let bias2_sqrt = (1.0 - c.beta2.powi(t)).sqrt();
        let (b1, b2) = (T::from_f64(c.beta1), T::from_f64(c.beta2));
        let (one_b1, one_b2) = (T::from_f64(1.0 - c.beta1), T::from_f64(1.0 - c.beta2));
        let step_size = T::from_f64(c.lr / bias1);
        let inv_bias2_sqrt = T::from_f64(1.0 / bias2_sqrt);
        let eps = T::from_f64(c.eps);
        let wd = T::from_f64(c.weight_decay);
        let shrink = T::from_f64(1.0 - c.lr * c.weight_decay);
        if self.exp_avg.len() < store.len() {
            self.exp_avg.resize(store.len(), None);
            self.exp_avg_sq.resize(store.len(), None);
        }
        for (id, p, frozen) in store.iter_mut() {
            let Some(g) = grads.get(id) else { continue };
            if frozen {
                continue;
            }
            assert_eq!(p.shape(), g.shape(), "Adam: gradient shape differs from its parameter's");
            let decay = c.weight_decay != 0.0
                && match c.decay_on {
                    DecayOn::All => true,
                    DecayOn::Matrices => p.rank() >= 2,
                };
            let (l2, decoupled) = (decay && !self.decoupled, decay && self.decoupled);
            let m = self.exp_avg[id.index()].get_or_insert_with(|| Tensor::zeros(g.shape()));
            let v = self.exp_avg_sq[id.index()].get_or_insert_with(|| Tensor::zeros(g.shape()));
            let k = Coefficients { b1, b2, one_b1, one_b2, step_size, inv_bias2_sqrt, eps, wd, shrink, l2, decoupled };
            fused(p.data_mut(), g.data(), m.data_mut(), v.data_mut(), |p, g, m, v| update(k, p, g, m, v));
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
            kind: self.kind().into(),
            step: self.step,
            scalars: vec![("lr".into(), self.config.lr)],
            slots: save_slots(store, &SLOTS, &[&self.exp_avg, &self.exp_avg_sq]),
        }
    }

    fn load_state(&mut self, store: &ParamStore<T>, state: &OptimizerState) -> Result<()> {
        let mut bufs = load_slots(store, state, self.kind(), &SLOTS)?;
        self.exp_avg_sq = bufs.pop().expect("two slots");
        self.exp_avg = bufs.pop().expect("two slots");
        self.step = state.step;
        if let Some(lr) = state.scalar("lr") {
            self.config.lr = lr;
        }
        Ok(())
    }
}

impl<T: Float> Optimizer<T> for AdamW<T> {
    fn step(&mut self, store: &mut ParamStore<T>, grads: &ParamGrads<T>) {
        self.0.step(store, grads)
    }
    fn lr(&self) -> f64 {
        self.0.lr()
    }
    fn set_lr(&mut self, lr: f64) {
        self.0.set_lr(lr)
    }
    fn steps(&self) -> u64 {
        self.0.steps()
    }
    fn state(&self, store: &ParamStore<T>) -> OptimizerState {
        self.0.state(store)
    }
    fn load_state(&mut self, store: &ParamStore<T>, state: &OptimizerState) -> Result<()> {
        self.0.load_state(store, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two steps of Adam on f(x, y) = x² + 10·y² from (1, 1), lr 0.1, β = (0.9, 0.999), eps 1e-8.
    ///
    /// Step 1: g = ∇f = (2x, 20y) = (2, 20).
    ///   m = 0.1·g = (0.2, 2);  v = 0.001·g² = (0.004, 0.4)
    ///   m̂ = m / (1 − 0.9) = (2, 20);  v̂ = v / (1 − 0.999) = (4, 400);  √v̂ = (2, 20)
    ///   update = 0.1 · m̂ / (√v̂ + eps) = 0.1 · (2/(2+1e-8), 20/(20+1e-8)) ≈ (0.1, 0.1)
    ///   x = 1 − 0.1·(1 − 5e-9) = 0.9000000005,  y = 1 − 0.1·(1 − 5e-10) = 0.90000000005
    /// Step 2: g = (2x, 20y) = (1.800000001, 18.000000001)
    ///   m = 0.9·(0.2, 2) + 0.1·g = (0.3600000001, 3.6000000001)
    ///   v = 0.999·(0.004, 0.4) + 0.001·g² = (0.003996 + 0.0032400000036, 0.3996 + 0.324000000036)
    ///     = (0.0072360000036, 0.723600000036)
    ///   m̂ = m / (1 − 0.81) = m / 0.19 = (1.894736842632, 18.947368421579)
    ///   v̂ = v / (1 − 0.998001) = v / 0.001999 = (3.619809906, 361.9809906)
    ///   √v̂ = (1.902579800, 19.02579800)
    ///   update = 0.1 · m̂ / √v̂ = (0.0995878…, 0.0995878…)
    ///   x ≈ 0.9000000005 − 0.0995878 ≈ 0.8004122,  y ≈ 0.8004122
    #[test]
    fn two_adam_steps_match_hand_computation() {
        let mut store = ParamStore::<f64>::default();
        let x = store.add("x", Tensor::scalar(1.0));
        let y = store.add("y", Tensor::scalar(1.0));
        let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() });
        let grad = |s: &ParamStore<f64>| {
            ParamGrads::from_vec(vec![
                Some(Tensor::scalar(2.0 * s.get(x).item())),
                Some(Tensor::scalar(20.0 * s.get(y).item())),
            ])
        };
        let g = grad(&store);
        opt.step(&mut store, &g);
        assert!((store.get(x).item() - 0.900_000_000_5).abs() < 1e-15);
        assert!((store.get(y).item() - 0.900_000_000_05).abs() < 1e-15);
        let g = grad(&store);
        opt.step(&mut store, &g);
        // Exact second step, from the formulas above with the exact first-step values.
        let (x1, y1) = (1.0 - 0.1 * 2.0 / (2.0 + 1e-8), 1.0 - 0.1 * 20.0 / (20.0 + 1e-8));
        let second = |p1: f64, scale: f64, g0: f64| {
            let g1 = scale * p1;
            let m = 0.9 * 0.1 * g0 + 0.1 * g1;
            let v = 0.999 * 0.001 * g0 * g0 + 0.001 * g1 * g1;
            let (mh, vh) = (m / (1.0 - 0.81), v / (1.0 - 0.998001));
            p1 - 0.1 * mh / (vh.sqrt() + 1e-8)
        };
        assert!((store.get(x).item() - second(x1, 2.0, 2.0)).abs() < 1e-14);
        assert!((store.get(y).item() - second(y1, 20.0, 20.0)).abs() < 1e-14);
        // And the rounded hand values.
        assert!((store.get(x).item() - 0.800_412_2).abs() < 1e-6);
        assert!((store.get(y).item() - 0.800_412_2).abs() < 1e-6);
    }

    #[test]
    fn adamw_decays_parameters_directly_and_only_matrices_when_asked() {
        // Zero gradient: m = v = 0, so the Adam term is 0 and only the decay acts:
        // p = p·(1 − lr·wd) = 2·(1 − 0.1·0.5) = 1.9 for the matrix; the vector is untouched.
        let mut store = ParamStore::<f64>::default();
        let w = store.add("w", Tensor::full(&[1, 1], 2.0));
        let b = store.add("b", Tensor::from(vec![2.0]));
        let mut opt =
            AdamW::new(AdamConfig { lr: 0.1, weight_decay: 0.5, decay_on: DecayOn::Matrices, ..Default::default() });
        let g = ParamGrads::from_vec(vec![Some(Tensor::zeros(&[1, 1])), Some(Tensor::zeros(&[1]))]);
        opt.step(&mut store, &g);
        assert!((store.get(w).item() - 1.9).abs() < 1e-15);
        assert_eq!(store.get(b).item(), 2.0);
        assert_eq!(opt.state(&store).kind, "adamw");
    }

    #[test]
    fn state_round_trips_and_rejects_another_kind() {
        let mut store = ParamStore::<f32>::default();
        store.add("w", Tensor::from(vec![1.0f32, 2.0]));
        let mut opt = Adam::new(AdamConfig::default());
        opt.step(&mut store, &ParamGrads::from_vec(vec![Some(Tensor::from(vec![0.5f32, -1.0]))]));
        let s = opt.state(&store);
        assert_eq!(s.slots.len(), 2);
        let mut fresh = Adam::<f32>::new(AdamConfig::default());
        fresh.load_state(&store, &s).expect("same kind");
        assert_eq!(fresh.state(&store), s);
        let mut w = AdamW::<f32>::new(AdamConfig::default());
        assert!(w.load_state(&store, &s).is_err());
    }
}

//! [`RmsProp`] (Hinton's lecture 6e, 2012), with PyTorch's update rule (`torch.optim.RMSprop`):
//!
//! ```text
//! g ← g + weight_decay·p
//! v ← α·v + (1 − α)·g²                               (square_avg)
//! centered:  ḡ ← ḡ + (1 − α)·(g − ḡ);  d = √(v − ḡ²) + eps   (grad_avg)
//! otherwise: d = √v + eps
//! momentum > 0:  b ← momentum·b + g / d;  p ← p − lr·b    (momentum_buffer)
//! otherwise:     p ← p − lr·g / d
//! ```

use autograd::{Float, Tensor};
use rayon::join;

use super::{load_slots, save_slots, Optimizer, OptimizerState, CHUNK, PAR_MIN};
use crate::{ParamGrads, ParamStore, Result};

/// Hyper-parameters of [`RmsProp`]; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmsPropConfig {
    /// Learning rate. Default 1e-2.
    pub lr: f64,
    /// Decay of the running average of squared gradients. Default 0.99.
    pub alpha: f64,
    /// Added to the denominator. Default 1e-8.
    pub eps: f64,
    /// L2 penalty added to the gradient. Default 0.
    pub weight_decay: f64,
    /// Momentum of the scaled update. Default 0.
    pub momentum: f64,
    /// Divide by the variance of the gradient (its mean square minus its squared mean) rather
    /// than its mean square. Default false.
    pub centered: bool,
}

impl Default for RmsPropConfig {
    fn default() -> Self {
        RmsPropConfig { lr: 1e-2, alpha: 0.99, eps: 1e-8, weight_decay: 0.0, momentum: 0.0, centered: false }
    }
}

/// RMSprop; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct RmsProp<T: Float> {
    config: RmsPropConfig,
    step: u64,
    square_avg: Vec<Option<Tensor<T>>>,
    momentum_buffer: Vec<Option<Tensor<T>>>,
    grad_avg: Vec<Option<Tensor<T>>>,
}

const SLOTS: [&str; 3] = ["square_avg", "momentum_buffer", "grad_avg"];

/// The numbers of one step, as [`update`] takes them.
#[derive(Clone, Copy)]
struct Coefficients<T> {
    lr: T,
    alpha: T,
    one_alpha: T,
    eps: T,
    wd: T,
    momentum: T,
    l2: bool,
    with_momentum: bool,
    centered: bool,
}

autograd::simd::kernel! {
    /// One RMSprop step over a chunk of a parameter `p`, its gradient `g`, `square_avg` `v`, and
    /// (empty when unused) `momentum_buffer` `b` and `grad_avg` `m`.
    fn update[T: Float](k: Coefficients<T>, p: &mut [T], g: &[T], v: &mut [T], b: &mut [T], m: &mut [T]) where [] {
        for (i, (p, &g)) in p.iter_mut().zip(g).enumerate() {
            let g = if k.l2 { g + k.wd * *p } else { g };
            let vi = k.alpha * v[i] + k.one_alpha * g * g;
            v[i] = vi;
            let d = if k.centered {
                let mi = m[i] + k.one_alpha * (g - m[i]);
                m[i] = mi;
                (vi - mi * mi).sqrt() + k.eps
            } else {
                vi.sqrt() + k.eps
            };
            if k.with_momentum {
                let bi = k.momentum * b[i] + g / d;
                b[i] = bi;
                *p -= k.lr * bi;
            } else {
                *p -= k.lr * g / d;
            }
        }
    }
}

/// Splits `s` at `mid`, or gives two empty halves for an unused (empty) buffer.
fn halve<T>(s: &mut [T], mid: usize) -> (&mut [T], &mut [T]) {
    if s.is_empty() {
        (&mut [], &mut [])
    } else {
        s.split_at_mut(mid)
    }
}

/// Runs [`update`] over halves in parallel down to chunks of [`CHUNK`] elements (three state
/// buffers do not fit [`super::fused`]'s two).
fn par_update<T: Float>(k: Coefficients<T>, p: &mut [T], g: &[T], v: &mut [T], b: &mut [T], m: &mut [T]) {
    if p.len() <= CHUNK {
        return update(k, p, g, v, b, m);
    }
    let mid = p.len() / 2;
    let (p0, p1) = p.split_at_mut(mid);
    let (g0, g1) = g.split_at(mid);
    let (v0, v1) = v.split_at_mut(mid);
    let (b0, b1) = halve(b, mid);
    let (m0, m1) = halve(m, mid);
    join(|| par_update(k, p0, g0, v0, b0, m0), || par_update(k, p1, g1, v1, b1, m1));
}

impl<T: Float> RmsProp<T> {
    /// An optimizer with no state yet.
    pub fn new(config: RmsPropConfig) -> Self {
        RmsProp { config, step: 0, square_avg: Vec::new(), momentum_buffer: Vec::new(), grad_avg: Vec::new() }
    }

    /// The hyper-parameters (with the current learning rate).
    pub fn config(&self) -> &RmsPropConfig {
        &self.config
    }
}

impl<T: Float> Optimizer<T> for RmsProp<T> {
    fn step(&mut self, store: &mut ParamStore<T>, grads: &ParamGrads<T>) {
        store.update_buffers(grads);
        self.step += 1;
        let c = self.config;
        let k = Coefficients {
            lr: T::from_f64(c.lr),
            alpha: T::from_f64(c.alpha),
            one_alpha: T::from_f64(1.0 - c.alpha),
            eps: T::from_f64(c.eps),
            wd: T::from_f64(c.weight_decay),
            momentum: T::from_f64(c.momentum),
            l2: c.weight_decay != 0.0,
            with_momentum: c.momentum > 0.0,
            centered: c.centered,
        };
        for bufs in [&mut self.square_avg, &mut self.momentum_buffer, &mut self.grad_avg] {
            if bufs.len() < store.len() {
                bufs.resize(store.len(), None);
            }
        }
        for (id, p, frozen) in store.iter_mut() {
            let Some(g) = grads.get(id) else { continue };
            if frozen {
                continue;
            }
            assert_eq!(p.shape(), g.shape(), "RmsProp: gradient shape differs from its parameter's");
            let i = id.index();
            let v = self.square_avg[i].get_or_insert_with(|| Tensor::zeros(g.shape())).data_mut();
            let b: &mut [T] = if k.with_momentum {
                self.momentum_buffer[i].get_or_insert_with(|| Tensor::zeros(g.shape())).data_mut()
            } else {
                &mut []
            };
            let m: &mut [T] = if k.centered {
                self.grad_avg[i].get_or_insert_with(|| Tensor::zeros(g.shape())).data_mut()
            } else {
                &mut []
            };
            let (p, g) = (p.data_mut(), g.data());
            if p.len() < PAR_MIN {
                update(k, p, g, v, b, m);
            } else {
                par_update(k, p, g, v, b, m);
            }
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
            kind: "rmsprop".into(),
            step: self.step,
            scalars: vec![("lr".into(), self.config.lr)],
            slots: save_slots(store, &SLOTS, &[&self.square_avg, &self.momentum_buffer, &self.grad_avg]),
        }
    }

    fn load_state(&mut self, store: &ParamStore<T>, state: &OptimizerState) -> Result<()> {
        let mut bufs = load_slots(store, state, "rmsprop", &SLOTS)?;
        self.grad_avg = bufs.pop().expect("three slots");
        self.momentum_buffer = bufs.pop().expect("three slots");
        self.square_avg = bufs.pop().expect("three slots");
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

    /// One step from p = 1 with g = 2, lr 0.1, α 0.99, eps 0: v = 0.01·4 = 0.04, √v = 0.2,
    /// p = 1 − 0.1·2/0.2 = 0. Centered: ḡ = 0.01·2 = 0.02, v − ḡ² = 0.0396, so
    /// p = 1 − 0.1·2/√0.0396.
    #[test]
    fn one_step_matches_hand_computation() {
        for (centered, expected) in [(false, 0.0), (true, 1.0 - 0.2 / 0.0396f64.sqrt())] {
            let mut store = ParamStore::<f64>::default();
            let w = store.add("w", Tensor::scalar(1.0));
            let mut opt = RmsProp::new(RmsPropConfig { lr: 0.1, eps: 0.0, centered, ..Default::default() });
            opt.step(&mut store, &ParamGrads::from_vec(vec![Some(Tensor::scalar(2.0))]));
            assert!((store.get(w).item() - expected).abs() < 1e-15, "centered {centered}: {}", store.get(w).item());
        }
    }

    #[test]
    fn large_parameters_split_across_threads_give_the_serial_result() {
        // 3·PAR_MIN + 5 elements: split in uneven halves, with all three buffers in use.
        let n = 3 * PAR_MIN + 5;
        let config = RmsPropConfig { momentum: 0.9, centered: true, weight_decay: 0.01, ..Default::default() };
        let values = Tensor::from((0..n).map(|i| (i as f64 * 0.37).sin()).collect::<Vec<_>>());
        let grad = Tensor::from((0..n).map(|i| (i as f64 * 0.11).cos()).collect::<Vec<_>>());
        let mut store = ParamStore::<f64>::default();
        let w = store.add("w", values.clone());
        let mut opt = RmsProp::new(config);
        for _ in 0..2 {
            opt.step(&mut store, &ParamGrads::from_vec(vec![Some(grad.clone())]));
        }
        // The same update on pieces of 1000 elements, each below the threshold, never split.
        let mut serial = ParamStore::<f64>::default();
        let pieces: Vec<_> = values.data().chunks(1000).map(|c| c.to_vec()).collect();
        let ids: Vec<_> =
            pieces.into_iter().enumerate().map(|(i, c)| serial.add(format!("w{i}"), Tensor::from(c))).collect();
        let mut opt = RmsProp::new(config);
        let grads = ParamGrads::from_vec(grad.data().chunks(1000).map(|c| Some(Tensor::from(c.to_vec()))).collect());
        for _ in 0..2 {
            opt.step(&mut serial, &grads);
        }
        let joined: Vec<f64> = ids.iter().flat_map(|id| serial.get(*id).data().to_vec()).collect();
        assert_eq!(store.get(w).data(), joined.as_slice());
    }
}

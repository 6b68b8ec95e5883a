//! Batch normalization in training mode, fused: each channel normalized by the batch's own
//! statistics over every axis but axis 1 (`(N, C)`, `(N, C, L)`, `(N, C, H, W)`, …).
//!
//! NOTE: fused because batch norm sits after every convolution of a CNN: the composed form
//! (mean, centre, variance, rsqrt, scale, shift, each with a broadcast) records about a dozen
//! nodes, each reading the whole activation; the fused forward reads it twice for the
//! statistics and once to write, and the backward reads `x` and `g` twice with the saved
//! statistics. The statistics are accumulated in `f64`: a channel of a 128-image batch of
//! 28×28 maps holds 100,352 values.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::recycle;
use crate::tape::shape_panic;
use crate::{Float, Op, Tensor, Var};

/// Per-channel statistics of the batch: the mean and the biased variance (divided by the
/// count `m`, as the normalization uses), computed in `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelStats {
    /// Each channel's mean.
    pub mean: Vec<f64>,
    /// Each channel's biased variance.
    pub var: Vec<f64>,
    /// The number of values each channel's statistics are over (`N · L`).
    pub count: usize,
}

/// `(n, c, l)` of a batch-norm input: the batch, the channels and the product of the rest.
fn dims(shape: &[usize]) -> (usize, usize, usize) {
    (shape[0], shape[1], shape[2..].iter().product())
}

/// The `l`-long runs of channel `ch` in a `(n, c, l)` buffer, one per image.
fn runs<T>(data: &[T], (n, c, l): (usize, usize, usize), ch: usize) -> impl Iterator<Item = &[T]> {
    (0..n).map(move |i| &data[(i * c + ch) * l..(i * c + ch + 1) * l])
}

/// The mean and biased variance of every channel (two passes per channel).
fn channel_stats<T: Float>(x: &Tensor<T>) -> ChannelStats {
    let d = dims(x.shape());
    let m = d.0 * d.2;
    let one = |ch: usize| {
        let inv = 1.0 / m as f64;
        let mean = runs(x.data(), d, ch).flatten().map(|v| v.to_f64()).sum::<f64>() * inv;
        let var = runs(x.data(), d, ch).flatten().map(|v| (v.to_f64() - mean).powi(2)).sum::<f64>() * inv;
        (mean, var)
    };
    let pairs: Vec<(f64, f64)> = if x.numel() >= crate::PAR_THRESHOLD {
        (0..d.1).into_par_iter().map(one).collect()
    } else {
        (0..d.1).map(one).collect()
    };
    let (mean, var) = pairs.into_iter().unzip();
    ChannelStats { mean, var, count: m }
}

/// Writes `o = x · scale[ch] + shift[ch]` over a `(n, c, l)` buffer, in parallel when large.
fn scale_shift<T: Float>(out: &mut [T], x: &[T], (_, c, l): (usize, usize, usize), scale: &[T], shift: &[T]) {
    let run = |(i, (o, x)): (usize, (&mut [T], &[T]))| {
        let (a, b) = (scale[i % c], shift[i % c]);
        o.iter_mut().zip(x).for_each(|(o, &v)| *o = v * a + b);
    };
    if l == 0 {
        return;
    }
    if out.len() >= crate::PAR_THRESHOLD {
        let min = (8192 / l).max(1);
        out.par_chunks_mut(l).zip(x.par_chunks(l)).enumerate().with_min_len(min).for_each(run);
    } else {
        out.chunks_mut(l).zip(x.chunks(l)).enumerate().for_each(run);
    }
}

/// One `l`-long run of the backward: its index, and the output, input and gradient runs.
type GradRun<'a, T> = (usize, ((&'a mut [T], &'a [T]), &'a [T]));

/// `y = (x − μ_c) / √(σ²_c + eps) · weight_c + bias_c` with the batch's statistics; inputs
/// `[x, weight, bias]`.
struct BatchNormOp {
    eps: f64,
    /// The statistics: computed by the `Var` method before the op runs (so that it can return
    /// them), or by the forward itself when the tape replays it.
    stats: RefCell<Option<ChannelStats>>,
}

impl BatchNormOp {
    /// Each channel's `(μ, 1/√(σ² + eps))`, from the saved statistics.
    fn mean_rstd<T: Float>(&self) -> (Vec<T>, Vec<T>) {
        let stats = self.stats.borrow();
        let s = stats.as_ref().expect("batch_norm: backward before forward");
        let mean = s.mean.iter().map(|&m| T::from_f64(m)).collect();
        let rstd = s.var.iter().map(|&v| T::from_f64(1.0 / (v + self.eps).sqrt())).collect();
        (mean, rstd)
    }
}

/// The axes batch norm reduces over: all but axis 1.
fn reduced_axes(rank: usize) -> Vec<isize> {
    (0..rank as isize).filter(|&a| a != 1).collect()
}

/// The shape `[1, C, 1, …]` a per-channel vector is reshaped to for broadcasting.
fn channel_shape(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    s[1] = shape[1];
    s
}

impl<T: Float> Op<T> for BatchNormOp {
    fn name(&self) -> &'static str {
        "batch_norm"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let (x, w, b) = (inputs[0], inputs[1].data(), inputs[2].data());
        let stats = self.stats.borrow_mut().take().unwrap_or_else(|| channel_stats(x));
        let (mut scale, mut shift) = (Vec::with_capacity(w.len()), Vec::with_capacity(w.len()));
        for ((&w, &b), (&m, &v)) in w.iter().zip(b).zip(stats.mean.iter().zip(&stats.var)) {
            let a = w.to_f64() / (v + self.eps).sqrt();
            scale.push(T::from_f64(a));
            shift.push(T::from_f64(b.to_f64() - m * a));
        }
        let mut out = recycle::zeros(x.numel());
        scale_shift(&mut out, x.data(), dims(x.shape()), &scale, &shift);
        *self.stats.borrow_mut() = Some(stats);
        Tensor::from_vec(out, x.shape())
    }
    // With x̂ = (x − μ)·r, r = 1/√(σ² + ε), m values per channel and ĝ = g·w, per channel:
    // ∂/∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂)), ∂/∂w = Σ g ⊙ x̂, ∂/∂b = Σ g.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        let (need_x, need_w, need_b) = (x.requires_grad(), w.requires_grad(), b.requires_grad());
        let tape = x.tape();
        let shape = x.shape();
        if tape.is_recording() {
            let axes = reduced_axes(shape.len());
            let cs = channel_shape(&shape);
            let mean = x.mean_axes(&axes, true);
            let xc = x - mean;
            let rstd = ((xc * xc).mean_axes(&axes, true) + self.eps).powf(-0.5);
            let xhat = xc * rstd;
            let gx = need_x.then(|| {
                let gh = grad_out * w.reshape(&cs);
                let a = gh.mean_axes(&axes, true);
                let c = (gh * xhat).mean_axes(&axes, true);
                rstd * (gh - a - xhat * c)
            });
            let c = shape[1];
            return vec![
                gx,
                need_w.then(|| (grad_out * xhat).sum_axes(&axes, false).reshape(&[c])),
                need_b.then(|| grad_out.sum_axes(&axes, false).reshape(&[c])),
            ];
        }
        let (xv, wv, g) = (x.value(), w.value(), grad_out.value());
        let d = dims(&shape);
        let (mean, rstd) = self.mean_rstd::<T>();
        // Σ g and Σ g ⊙ x̂ per channel, accumulated in f64.
        let sums = |ch: usize| {
            let (mut sg, mut sgx) = (0.0f64, 0.0f64);
            for (xr, gr) in runs(xv.data(), d, ch).zip(runs(g.data(), d, ch)) {
                for (&v, &g) in xr.iter().zip(gr) {
                    sg += g.to_f64();
                    sgx += (g * (v - mean[ch]) * rstd[ch]).to_f64();
                }
            }
            (sg, sgx)
        };
        let sums: Vec<(f64, f64)> = if xv.numel() >= crate::PAR_THRESHOLD {
            (0..d.1).into_par_iter().map(sums).collect()
        } else {
            (0..d.1).map(sums).collect()
        };
        let gx = need_x.then(|| {
            // gx = a·g + b·x + c per channel, with a = w·r, b = −w·r²·Σgx̂/m,
            // c = −w·r·Σg/m − b·μ: one fused multiply-add pass per element.
            let inv_m = 1.0 / (d.0 * d.2) as f64;
            let mut coef = Vec::with_capacity(d.1);
            for (ch, &(sg, sgx)) in sums.iter().enumerate() {
                let (wr, r, mu) = (wv.data()[ch].to_f64() * rstd[ch].to_f64(), rstd[ch].to_f64(), mean[ch].to_f64());
                let bb = -wr * r * sgx * inv_m;
                let cc = -wr * sg * inv_m - bb * mu;
                coef.push((T::from_f64(wr), T::from_f64(bb), T::from_f64(cc)));
            }
            let mut out = recycle::zeros(xv.numel());
            let l = d.2;
            let run = |(i, ((o, x), g)): GradRun<'_, T>| {
                let (a, bb, cc) = coef[i % d.1];
                for ((o, &v), &g) in o.iter_mut().zip(x).zip(g) {
                    *o = a * g + bb * v + cc;
                }
            };
            if l > 0 && out.len() >= crate::PAR_THRESHOLD {
                out.par_chunks_mut(l)
                    .zip(xv.data().par_chunks(l))
                    .zip(g.data().par_chunks(l))
                    .enumerate()
                    .with_min_len((8192 / l).max(1))
                    .for_each(run);
            } else if l > 0 {
                out.chunks_mut(l).zip(xv.data().chunks(l)).zip(g.data().chunks(l)).enumerate().for_each(run);
            }
            tape.constant(Tensor::from_vec(out, &shape))
        });
        let per_channel = |f: fn(&(f64, f64)) -> f64| {
            tape.constant(Tensor::from_vec(sums.iter().map(|s| T::from_f64(f(s))).collect(), &[d.1]))
        };
        vec![gx, need_w.then(|| per_channel(|s| s.1)), need_b.then(|| per_channel(|s| s.0))]
    }
    // With x̂ = (x − μ)·r, whose Jacobian within a channel is r·(I − 11ᵀ/m − x̂x̂ᵀ/m):
    // dy = r·(dx − mean(dx) − x̂·mean(x̂ ⊙ dx))·w + x̂·dw + db, per channel.
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let (x, w) = (inputs[0], inputs[1]);
        let (dx, dw, db) = (tangents[0], tangents[1], tangents[2]);
        let shape = x.shape();
        let axes = reduced_axes(shape.len());
        let cs = channel_shape(&shape);
        let mean = x.mean_axes(&axes, true);
        let xc = x - mean;
        let rstd = ((xc * xc).mean_axes(&axes, true) + self.eps).powf(-0.5);
        let xhat = xc * rstd;
        let terms = [
            dx.map(|dx| {
                let centred = dx - dx.mean_axes(&axes, true) - xhat * (xhat * dx).mean_axes(&axes, true);
                rstd * centred * w.reshape(&cs)
            }),
            dw.map(|dw| xhat * dw.reshape(&cs)),
            db.map(|db| db.reshape(&cs).broadcast_to(&shape)),
        ];
        terms.into_iter().flatten().reduce(|a, b| a + b)
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Batch normalization in training mode: each channel (axis 1) normalized by the mean and
    /// the biased variance of the batch over every other axis, then scaled and shifted:
    /// `y = (x − μ_c) / √(σ²_c + eps) · weight_c + bias_c`. `x` is `(N, C)`, `(N, C, L)` or
    /// `(N, C, H, W)` (any rank ≥ 2); `weight` and `bias` are `[C]`. The derivative with respect
    /// to `x` is `(1/σ)·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂))` per channel, with `x̂` the normalized
    /// values and `ĝ = g · weight`; smooth for `eps > 0`. Fused, one pass each way after the
    /// statistics. PyTorch: `torch.nn.functional.batch_norm(x, None, None, weight, bias,
    /// training=True, eps=eps)`. Returns the output and the batch's statistics (which a layer
    /// folds into its running estimates; see [`Var::batch_norm`] for the output alone).
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 10.0, 3.0, 30.0], &[2, 2])); // (N, C)
    /// let w = tape.var(Tensor::from(vec![1.0, 2.0]));
    /// let b = tape.var(Tensor::from(vec![0.0, 1.0]));
    /// let (y, stats) = x.batch_norm_with_stats(w, b, 0.0); // each channel becomes [−1, 1]
    /// assert_eq!(y.value().data(), &[-1.0, -1.0, 1.0, 3.0]);
    /// assert_eq!((stats.mean, stats.var), (vec![2.0, 20.0], vec![1.0, 100.0]));
    /// let grads = y.sum().backward();
    /// assert_eq!(grads[b].data(), &[2.0, 2.0]);
    /// assert_eq!(grads[w].data(), &[0.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If `self` has fewer than 2 axes, a channel holds fewer than 2 values (its variance is
    /// not defined), or `weight` or `bias` is not `[C]`.
    #[track_caller]
    pub fn batch_norm_with_stats(self, weight: Var<'t, T>, bias: Var<'t, T>, eps: f64) -> (Var<'t, T>, ChannelStats) {
        let shape = self.shape();
        if shape.len() < 2 {
            shape_panic("batch_norm", &format!("input {shape:?} must be (N, C, …) with at least 2 axes"));
        }
        let (n, c, l) = dims(&shape);
        if n * l < 2 {
            shape_panic(
                "batch_norm",
                &format!("input {shape:?} has {} value(s) per channel; training mode needs at least 2", n * l),
            );
        }
        let (ws, bs) = (weight.shape(), bias.shape());
        if ws.as_slice() != [c] || bs.as_slice() != [c] {
            shape_panic(
                "batch_norm",
                &format!("weight {ws:?} and bias {bs:?} must both be [{c}] for input of shape {shape:?}"),
            );
        }
        let stats = channel_stats(&self.value());
        let op = BatchNormOp { eps, stats: RefCell::new(Some(stats.clone())) };
        (self.tape().apply(op, &[self, weight, bias]), stats)
    }

    /// [`Var::batch_norm_with_stats`] without the statistics.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![0.0, 4.0], &[2, 1]));
    /// let y = x.batch_norm(tape.var(Tensor::from(vec![3.0])), tape.var(Tensor::from(vec![1.0])), 0.0);
    /// assert_eq!(y.value().data(), &[-2.0, 4.0]);
    /// ```
    ///
    /// # Panics
    /// As [`Var::batch_norm_with_stats`].
    #[track_caller]
    pub fn batch_norm(self, weight: Var<'t, T>, bias: Var<'t, T>, eps: f64) -> Var<'t, T> {
        self.batch_norm_with_stats(weight, bias, eps).0
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{assert_close, gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    fn x4() -> Tensor<f64> {
        Tensor::from_vec((0..24).map(|i| ((i * 7) % 11) as f64 * 0.3 - 1.4).collect(), &[2, 3, 2, 2])
    }
    fn w3() -> Tensor<f64> {
        Tensor::from(vec![1.5, -0.5, 0.8])
    }
    fn b3() -> Tensor<f64> {
        Tensor::from(vec![0.1, 0.2, -0.3])
    }

    #[test]
    fn batch_norm_grad_matches_hand_value() {
        // One channel of [0, 0, 3] as (N = 3, C = 1): μ = 1, σ² = 2, x̂ = [−1, −1, 2]/√2.
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_vec(vec![0.0, 0.0, 3.0], &[3, 1]));
        let w = tape.constant(Tensor::from(vec![1.0]));
        let b = tape.constant(Tensor::from(vec![0.0]));
        let sel = tape.constant(Tensor::from_vec(vec![1.0, 0.0, 2.0], &[3, 1]));
        let grads = (x.batch_norm(w, b, 0.0) * sel).sum().backward();
        // ĝ = [1, 0, 2], mean(ĝ) = 1, mean(ĝ ⊙ x̂) = 1/√2: ∂L/∂x = (1/√2)[½, −½, 0]
        let h = 0.5 / std::f64::consts::SQRT_2;
        assert_close(&grads[x], &Tensor::from_vec(vec![h, -h, 0.0], &[3, 1]), 1e-15, 0.0);
    }

    #[test]
    fn batch_norm_grads_match_finite_diff() {
        gradcheck(|v| v[0].batch_norm(v[1], v[2], 1e-5).exp().mean(), &[x4(), w3(), b3()]);
        let x2: Tensor<f64> = Tensor::from_vec(vec![0.3, -1.2, 2.0, 0.7, 1.1, -0.4, 0.9, 0.0, -2.0], &[3, 3]);
        gradcheck(|v| v[0].batch_norm(v[1], v[2], 1e-5).exp().mean(), &[x2, w3(), b3()]);
    }

    #[test]
    fn batch_norm_second_order_matches_finite_diff() {
        gradgradcheck(|v| v[0].batch_norm(v[1], v[2], 1e-5).exp().mean(), &[x4(), w3(), b3()]);
    }

    #[test]
    fn fused_and_composed_backward_agree_on_the_parallel_path() {
        // 64 images of 8 channels of 12×12: above PAR_THRESHOLD.
        let tape = Tape::<f64>::new();
        let data: Vec<f64> = (0..64 * 8 * 144).map(|i| ((i * 37) % 101) as f64 * 0.05 - 2.0).collect();
        let x = tape.var(Tensor::from_vec(data, &[64, 8, 12, 12]));
        let w = tape.var(Tensor::from((0..8).map(|i| 0.5 + i as f64 * 0.1).collect::<Vec<_>>()));
        let b = tape.var(Tensor::from((0..8).map(|i| i as f64 * 0.01).collect::<Vec<_>>()));
        let y = x.batch_norm(w, b, 1e-5);
        let loss = (y * y * y).mean();
        let grads = loss.backward();
        let composed = tape.grad(loss, &[x, w, b]);
        for (v, c) in [x, w, b].iter().zip(composed) {
            assert_close(&grads[*v], &c.value(), 1e-12, 1e-10);
        }
    }

    #[test]
    fn statistics_are_per_channel_over_batch_and_space() {
        let tape = Tape::<f64>::new();
        let x = tape.var(x4());
        let (_, s) = x.batch_norm_with_stats(tape.var(w3()), tape.var(b3()), 1e-5);
        let d = x4();
        for ch in 0..3 {
            let vals: Vec<f64> =
                (0..2).flat_map(|n| d.data()[(n * 3 + ch) * 4..(n * 3 + ch + 1) * 4].to_vec()).collect();
            let m = vals.iter().sum::<f64>() / 8.0;
            let v = vals.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 8.0;
            assert!((s.mean[ch] - m).abs() < 1e-14 && (s.var[ch] - v).abs() < 1e-14, "channel {ch}");
        }
        assert_eq!(s.count, 8);
    }

    #[test]
    #[should_panic(expected = "batch_norm: input [1, 3] has 1 value(s) per channel")]
    fn batch_norm_refuses_one_value_per_channel() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::zeros(&[1, 3]));
        x.batch_norm(tape.var(w3()), tape.var(b3()), 1e-5);
    }

    #[test]
    #[should_panic(expected = "batch_norm: weight [3] and bias [4] must both be [3]")]
    fn batch_norm_names_shapes_on_mismatch() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::zeros(&[2, 3]));
        x.batch_norm(tape.var(w3()), tape.var(Tensor::zeros(&[4])), 1e-5);
    }
}

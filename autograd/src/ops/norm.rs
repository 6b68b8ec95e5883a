//! Layer normalization over the last axis, fused: one pass per row forward, one per row backward.
//!
//! NOTE: fused because the composed form (mean, centre, variance, rsqrt, scale, shift) records
//! nine nodes and reads each row about ten times; the fused forward reads it three times and
//! saves each row's mean and `1/σ` for a backward that reads it once more.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::kernels::lanes::sum_zip;
use crate::recycle;
use crate::simd;
use crate::tape::shape_panic;
use crate::trace::OpAttrs;
use crate::{Float, Op, Tensor, Var};

/// Rows per parallel task are grouped so that a task holds at least this many elements.
const MIN_TASK_ELEMS: usize = 8192;

/// `y = (x − mean) / √(var + eps) · weight + bias` over the last axis; inputs `[x, weight, bias]`.
struct LayerNormOp<T> {
    eps: f64,
    /// Each row's `(mean, 1/√(var + eps))`, saved by the forward for the fused backward.
    stats: RefCell<Vec<(T, T)>>,
}

/// Mean and `1/√(var + eps)` of one row (biased variance, two passes for accuracy).
#[inline(always)]
fn row_stats<T: Float>(x: &[T], eps: T) -> (T, T) {
    let inv_n = T::ONE / T::from_usize(x.len());
    let mean = sum_zip(x, x, |v, _| v) * inv_n;
    let var = sum_zip(x, x, |v, _| (v - mean) * (v - mean)) * inv_n;
    (mean, T::ONE / (var + eps).sqrt())
}

simd::kernel! {
    /// `o = (x − μ)·r ⊙ w + b` for one row; returns the row's `(μ, r)`.
    fn normalize_row[T: Float](o: &mut [T], x: &[T], affine: (&[T], &[T]), eps: T) -> (T, T) where [] {
        let (w, b) = affine;
        let (mean, rstd) = row_stats(x, eps);
        for (((o, &v), &w), &b) in o.iter_mut().zip(x).zip(w).zip(b) {
            *o = (v - mean) * rstd * w + b;
        }
        (mean, rstd)
    }
}

simd::kernel! {
    /// Layer norm's backward over a block of rows (`stats` holds each row's `(μ, r)`): writes the
    /// rows of ∂/∂x into `gx` (when asked) and returns the block's partial ∂/∂w and ∂/∂b.
    fn grad_rows[T: Float](gx: &mut [T], x: &[T], g: &[T], stats: &[(T, T)], wd: &[T], need: (bool, bool, bool)) -> (Vec<T>, Vec<T>) where [] {
        let (need_x, need_w, need_b) = need;
        let d = wd.len();
        let inv_n = T::ONE / T::from_usize(d);
        let mut gw = recycle::zeros(if need_w { d } else { 0 });
        let mut gb = recycle::zeros(if need_b { d } else { 0 });
        let mut gh = recycle::zeros(if need_x { d } else { 0 });
        for (r, &(mean, rstd)) in stats.iter().enumerate() {
            let (x, g) = (&x[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
            if need_w {
                for ((a, &v), &g) in gw.iter_mut().zip(x).zip(g) {
                    *a += g * (v - mean) * rstd;
                }
            }
            if need_b {
                gb.iter_mut().zip(g).for_each(|(a, &g)| *a += g);
            }
            if need_x {
                // ĝ = g ⊙ w first, then Σ ĝ and Σ ĝ ⊙ (x − μ) as two vectorized sums: in one
                // pass over both, the compiler left the sums scalar.
                gh.iter_mut().zip(g).zip(wd).for_each(|((h, &g), &w)| *h = g * w);
                let ta = sum_zip(&gh, &gh, |h, _| h);
                let tc = sum_zip(&gh, x, |h, v| h * (v - mean));
                let (a, c) = (ta * inv_n, tc * rstd * inv_n);
                let o = &mut gx[r * d..(r + 1) * d];
                for ((o, &v), &h) in o.iter_mut().zip(x).zip(&gh) {
                    *o = rstd * (h - a - (v - mean) * rstd * c);
                }
            }
        }
        (gw, gb)
    }
}

/// One row of layer norm's tangent, given the row's `(μ, r)` and `(w, dw, db)`:
/// `o = r·(dx − mean(dx) − x̂·mean(x̂ ⊙ dx)) ⊙ w + x̂ ⊙ dw + db`, with absent tangents zero.
fn tangent_row<T: Float>(
    o: &mut [T],
    x: &[T],
    dx: Option<&[T]>,
    (mean, rstd): (T, T),
    affine: (&[T], Option<&[T]>, Option<&[T]>),
) {
    let (w, dw, db) = affine;
    let inv_n = T::ONE / T::from_usize(x.len());
    if let Some(dx) = dx {
        let m_dx = sum_zip(dx, dx, |v, _| v) * inv_n;
        let m_xdx = sum_zip(x, dx, |v, t| (v - mean) * rstd * t) * inv_n;
        for (((o, &v), &t), &w) in o.iter_mut().zip(x).zip(dx).zip(w) {
            let xhat = (v - mean) * rstd;
            *o = rstd * (t - m_dx - xhat * m_xdx) * w;
        }
    }
    if let Some(dw) = dw {
        for ((o, &v), &t) in o.iter_mut().zip(x).zip(dw) {
            *o += (v - mean) * rstd * t;
        }
    }
    if let Some(db) = db {
        o.iter_mut().zip(db).for_each(|(o, &t)| *o += t);
    }
}

impl<T: Float> Op<T> for LayerNormOp<T> {
    fn name(&self) -> &'static str {
        "layer_norm"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let (x, w, b) = (inputs[0], inputs[1].data(), inputs[2].data());
        let d = w.len();
        let eps = T::from_f64(self.eps);
        let mut out = recycle::zeros(x.numel());
        let mut stats = vec![(T::ZERO, T::ZERO); x.numel() / d.max(1)];
        let row = |o: &mut [T], s: &mut (T, T), x: &[T]| *s = normalize_row(o, x, (w, b), eps);
        if d > 0 && out.len() >= crate::PAR_THRESHOLD {
            out.par_chunks_mut(d)
                .zip(stats.par_iter_mut())
                .zip(x.data().par_chunks(d))
                .with_min_len((MIN_TASK_ELEMS / d).max(1))
                .for_each(|((o, s), x)| row(o, s, x));
        } else if d > 0 {
            out.chunks_mut(d).zip(stats.iter_mut()).zip(x.data().chunks(d)).for_each(|((o, s), x)| row(o, s, x));
        }
        *self.stats.borrow_mut() = stats;
        Tensor::from_vec(out, x.shape())
    }
    // With x̂ = (x − μ)·r, r = 1/√(σ² + ε) and ĝ = g ⊙ w, per row of n:
    // ∂/∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂)), ∂/∂w = Σ_rows g ⊙ x̂, ∂/∂b = Σ_rows g.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        let (need_x, need_w, need_b) = (x.requires_grad(), w.requires_grad(), b.requires_grad());
        let tape = x.tape();
        if tape.is_recording() {
            let mean = x.mean_axes(&[-1], true);
            let xc = x - mean;
            let var = (xc * xc).mean_axes(&[-1], true);
            let rstd = (var + self.eps).powf(-0.5);
            let xhat = xc * rstd;
            let gx = need_x.then(|| {
                let gh = grad_out * w;
                let a = gh.mean_axes(&[-1], true);
                let c = (gh * xhat).mean_axes(&[-1], true);
                rstd * (gh - a - xhat * c)
            });
            return vec![
                gx,
                need_w.then(|| (grad_out * xhat).sum_to(&w.shape())),
                need_b.then(|| grad_out.sum_to(&b.shape())),
            ];
        }
        let (xv, wv, g) = (x.value(), w.value(), grad_out.value());
        let d = wv.numel();
        let stats = self.stats.borrow();
        let mut gx = recycle::zeros(if need_x { xv.numel() } else { 0 });
        let wd = wv.data();
        // One block of rows: writes its rows of ∂/∂x and returns its partial ∂/∂w, ∂/∂b.
        let block =
            |gx: &mut [T], x: &[T], g: &[T], stats: &[(T, T)]| grad_rows(gx, x, g, stats, wd, (need_x, need_w, need_b));
        let add = |(mut w1, mut b1): (Vec<T>, Vec<T>), (w2, b2): (Vec<T>, Vec<T>)| {
            w1.iter_mut().zip(w2).for_each(|(a, b)| *a += b);
            b1.iter_mut().zip(b2).for_each(|(a, b)| *a += b);
            (w1, b1)
        };
        let (gw, gb) = if d > 0 && xv.numel() >= crate::PAR_THRESHOLD {
            let rows_per = (MIN_TASK_ELEMS / d).max(1);
            let n = rows_per * d;
            let parts: Vec<(Vec<T>, Vec<T>)> = if need_x {
                gx.par_chunks_mut(n)
                    .zip(xv.data().par_chunks(n))
                    .zip(g.data().par_chunks(n))
                    .zip(stats.par_chunks(rows_per))
                    .map(|(((gx, x), g), s)| block(gx, x, g, s))
                    .collect()
            } else {
                xv.data()
                    .par_chunks(n)
                    .zip(g.data().par_chunks(n))
                    .zip(stats.par_chunks(rows_per))
                    .map(|((x, g), s)| block(&mut [], x, g, s))
                    .collect()
            };
            parts.into_iter().reduce(add).expect("at least one block")
        } else {
            block(&mut gx, xv.data(), g.data(), &stats)
        };
        vec![
            need_x.then(|| tape.constant(Tensor::from_vec(gx, xv.shape()))),
            need_w.then(|| tape.constant(Tensor::from_vec(gw, wv.shape()))),
            need_b.then(|| tape.constant(Tensor::from_vec(gb, &[d]))),
        ]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::LayerNorm { eps: self.eps })
    }
    // With x̂ = (x − μ)·r, whose Jacobian r·(I − 11ᵀ/n − x̂x̂ᵀ/n) is symmetric:
    // dy = r·(dx − mean(dx) − x̂·mean(x̂ ⊙ dx)) ⊙ w + x̂ ⊙ dw + db.
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let (x, w) = (inputs[0], inputs[1]);
        let (dx, dw, db) = (tangents[0], tangents[1], tangents[2]);
        let tape = x.tape();
        let differentiable =
            tape.is_recording() && inputs.iter().chain(tangents.iter().flatten()).any(|v| v.requires_grad());
        if !differentiable {
            // Nobody differentiates the tangent: one pass per row with the forward's statistics.
            let (xv, wv) = (x.value(), w.value());
            let (dxv, dwv, dbv) = (dx.map(|t| t.value()), dw.map(|t| t.value()), db.map(|t| t.value()));
            let d = wv.numel();
            let saved = self.stats.borrow();
            let stats: &[(T, T)] = &saved;
            let mut out = recycle::zeros(xv.numel());
            if d > 0 {
                let affine = (wv.data(), dwv.as_ref().map(|t| t.data()), dbv.as_ref().map(|t| t.data()));
                let row = |(r, (o, x)): (usize, (&mut [T], &[T]))| {
                    let dx = dxv.as_ref().map(|t| &t.data()[r * d..(r + 1) * d]);
                    tangent_row(o, x, dx, stats[r], affine);
                };
                if out.len() >= crate::PAR_THRESHOLD {
                    out.par_chunks_mut(d).zip(xv.data().par_chunks(d)).enumerate().for_each(row);
                } else {
                    out.chunks_mut(d).zip(xv.data().chunks(d)).enumerate().for_each(row);
                }
            }
            return Some(tape.constant(Tensor::from_vec(out, xv.shape())));
        }
        let mean = x.mean_axes(&[-1], true);
        let xc = x - mean;
        let rstd = ((xc * xc).mean_axes(&[-1], true) + self.eps).powf(-0.5);
        let xhat = xc * rstd;
        let terms = [
            dx.map(|dx| {
                let centred = dx - dx.mean_axes(&[-1], true) - xhat * (xhat * dx).mean_axes(&[-1], true);
                rstd * centred * w
            }),
            dw.map(|dw| xhat * dw),
            db.map(|db| db.broadcast_to(&x.shape())),
        ];
        terms.into_iter().flatten().reduce(|a, b| a + b)
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Layer normalization over the last axis: `(x − mean) / √(var + eps) · weight + bias`, with
    /// the biased variance (divided by n, as in PyTorch) and `weight`, `bias` of shape `[n]` for
    /// the last dim `n`. Fused: one pass per row each way. The derivative with respect to `x` is
    /// `(1/σ)·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂))` with `x̂` the normalized row and `ĝ = g ⊙ weight`;
    /// the function is smooth for `eps > 0` (no kinks). A frozen (constant) `weight` or `bias`
    /// costs no gradient work. PyTorch:
    /// `torch.nn.functional.layer_norm(x, (n,), weight, bias, eps)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 3.0, 10.0, 30.0], &[2, 2]));
    /// let w = tape.var(Tensor::from(vec![1.0, 2.0]));
    /// let b = tape.var(Tensor::from(vec![0.0, 1.0]));
    /// let y = x.layer_norm(w, b, 0.0); // each row normalizes to [−1, 1]
    /// assert_eq!(y.value().data(), &[-1.0, 3.0, -1.0, 3.0]);
    /// let grads = y.sum().backward();
    /// assert_eq!(grads[w].data(), &[-2.0, 2.0]);
    /// assert_eq!(grads[b].data(), &[2.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// If `self` is 0-d, or `weight` or `bias` is not of shape `[n]`.
    #[track_caller]
    pub fn layer_norm(self, weight: Var<'t, T>, bias: Var<'t, T>, eps: f64) -> Var<'t, T> {
        let shape = self.shape();
        let Some(&d) = shape.last() else {
            shape_panic("layer_norm", "cannot normalize a 0-d tensor");
        };
        let (ws, bs) = (weight.shape(), bias.shape());
        if ws.as_slice() != [d] || bs.as_slice() != [d] {
            shape_panic(
                "layer_norm",
                &format!("weight {ws:?} and bias {bs:?} must both be [{d}] for input of shape {shape:?}"),
            );
        }
        let op = LayerNormOp { eps, stats: RefCell::new(Vec::new()) };
        self.tape().apply(op, &[self, weight, bias])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{assert_close, gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    fn x23() -> Tensor<f64> {
        Tensor::from_vec(vec![0.3, -1.2, 2.0, 0.7, 1.1, -0.4], &[2, 3])
    }
    fn w3() -> Tensor<f64> {
        Tensor::from(vec![1.5, -0.5, 0.8])
    }
    fn b3() -> Tensor<f64> {
        Tensor::from(vec![0.1, 0.2, -0.3])
    }

    #[test]
    fn layer_norm_grad_matches_hand_value() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from(vec![0.0, 0.0, 3.0]));
        let w = tape.constant(Tensor::from(vec![1.0, 1.0, 1.0]));
        let b = tape.constant(Tensor::from(vec![0.0, 0.0, 0.0]));
        let sel = tape.constant(Tensor::from(vec![1.0, 0.0, 2.0]));
        let grads = (x.layer_norm(w, b, 0.0) * sel).sum().backward();
        // μ = 1, σ² = 2, x̂ = [−1, −1, 2]/√2; ĝ = [1, 0, 2], mean(ĝ) = 1, mean(ĝ ⊙ x̂) = 1/√2:
        // ∂L/∂x = (1/√2)(ĝ − 1 − x̂/√2) = (1/√2)[½, −½, 0]
        let h = 0.5 / std::f64::consts::SQRT_2;
        assert_close(&grads[x], &Tensor::from(vec![h, -h, 0.0]), 1e-15, 0.0);
    }

    #[test]
    fn layer_norm_grads_match_finite_diff() {
        gradcheck(|v| v[0].layer_norm(v[1], v[2], 1e-5).exp().mean(), &[x23(), w3(), b3()]);
        let x3: Tensor<f64> =
            Tensor::from_vec((0..24).map(|i| ((i * 7) % 11) as f64 * 0.3 - 1.4).collect(), &[2, 3, 4]);
        let w4: Tensor<f64> = Tensor::from(vec![0.9, -1.1, 0.4, 2.0]);
        let b4: Tensor<f64> = Tensor::from(vec![0.0, 0.5, -0.5, 0.1]);
        gradcheck(|v| v[0].layer_norm(v[1], v[2], 1e-5).exp().mean(), &[x3, w4, b4]);
    }

    #[test]
    fn layer_norm_second_order_matches_finite_diff() {
        gradgradcheck(|v| v[0].layer_norm(v[1], v[2], 1e-5).exp().mean(), &[x23(), w3(), b3()]);
    }

    #[test]
    fn fused_and_composed_backward_agree() {
        let tape = Tape::<f64>::new();
        let (x, w, b) = (tape.var(x23()), tape.var(w3()), tape.var(b3()));
        let y = x.layer_norm(w, b, 1e-5).exp().mean();
        let grads = y.backward();
        let composed = tape.grad(y, &[x, w, b]);
        for (v, c) in [x, w, b].iter().zip(composed) {
            assert_close(&grads[*v], &c.value(), 1e-14, 1e-12);
        }
    }

    #[test]
    fn frozen_weight_and_big_input_take_the_parallel_path() {
        // 300 rows of 128: above PAR_THRESHOLD, and the weight and bias are constants.
        let tape = Tape::<f32>::new();
        let data: Vec<f32> = (0..300 * 128).map(|i| ((i * 37) % 101) as f32 * 0.05).collect();
        let x = tape.var(Tensor::from_vec(data, &[300, 128]));
        let w = tape.constant(Tensor::full(&[128], 1.5f32));
        let b = tape.var(Tensor::zeros(&[128]));
        let y = x.layer_norm(w, b, 1e-5);
        let loss = (y * y).mean();
        let grads = loss.backward();
        assert!(grads.get(w).is_none());
        // Σ over rows of g = 2y/N, and Σ y per column is whatever it is; compare with composed.
        let composed = tape.grad(loss, &[x, b]);
        assert_close(&grads[x], &composed[0].value(), 1e-6, 1e-3);
        assert_close(&grads[b], &composed[1].value(), 1e-6, 1e-3);
    }

    #[test]
    #[should_panic(expected = "layer_norm: weight [3] and bias [4] must both be [4]")]
    fn layer_norm_names_shapes_on_mismatch() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::zeros(&[2, 4]));
        x.layer_norm(tape.var(w3()), tape.var(Tensor::zeros(&[4])), 1e-5);
    }
}

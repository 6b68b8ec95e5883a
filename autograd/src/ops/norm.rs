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

// ---- RMS normalization ------------------------------------------------------------------------
//
// NOTE: fused for the same reason as layer norm: composed, `x · (mean(x²) + eps)^(−½) · w` records
// six nodes and reads each row about six times each way; fused, the forward reads a row twice and
// saves its `1/rms`, and the plain backward reads it once more.

/// `y = x / √(mean(x²) + eps) · weight` over the last axis; inputs `[x, weight]`.
struct RmsNormOp<T> {
    eps: f64,
    /// Each row's `r = 1/√(mean(x²) + eps)`, saved by the forward for the fused backward.
    rstd: RefCell<Vec<T>>,
}

simd::kernel! {
    /// `o = x·r ⊙ w` for one row; returns the row's `r = 1/√(mean(x²) + eps)`.
    fn rms_normalize_row[T: Float](o: &mut [T], x: &[T], w: &[T], eps: T) -> T where [] {
        let ms = sum_zip(x, x, |v, _| v * v) / T::from_usize(x.len());
        let rstd = T::ONE / (ms + eps).sqrt();
        for ((o, &v), &w) in o.iter_mut().zip(x).zip(w) {
            *o = v * rstd * w;
        }
        rstd
    }
}

simd::kernel! {
    /// RMS norm's backward over a block of rows (`rstd` holds each row's `r`): writes the rows of
    /// ∂/∂x into `gx` (when asked) and returns the block's partial ∂/∂w.
    fn rms_grad_rows[T: Float](gx: &mut [T], x: &[T], g: &[T], rstd: &[T], wd: &[T], need: (bool, bool)) -> Vec<T> where [] {
        let (need_x, need_w) = need;
        let d = wd.len();
        let inv_n = T::ONE / T::from_usize(d);
        let mut gw = recycle::zeros(if need_w { d } else { 0 });
        let mut gh = recycle::zeros(if need_x { d } else { 0 });
        for (r, &rs) in rstd.iter().enumerate() {
            let (x, g) = (&x[r * d..(r + 1) * d], &g[r * d..(r + 1) * d]);
            if need_w {
                for ((a, &v), &g) in gw.iter_mut().zip(x).zip(g) {
                    *a += g * v * rs;
                }
            }
            if need_x {
                gh.iter_mut().zip(g).zip(wd).for_each(|((h, &g), &w)| *h = g * w);
                // mean(ĝ ⊙ x̂) = r·mean(ĝ ⊙ x), so ∂/∂x = r·ĝ − x·r³·mean(ĝ ⊙ x).
                let c = sum_zip(&gh, x, |h, v| h * v) * inv_n * rs * rs * rs;
                let o = &mut gx[r * d..(r + 1) * d];
                for ((o, &v), &h) in o.iter_mut().zip(x).zip(&gh) {
                    *o = rs * h - v * c;
                }
            }
        }
        gw
    }
}

impl<T: Float> Op<T> for RmsNormOp<T> {
    fn name(&self) -> &'static str {
        "rms_norm"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let (x, w) = (inputs[0], inputs[1].data());
        let d = w.len();
        let eps = T::from_f64(self.eps);
        let mut out = recycle::zeros(x.numel());
        let mut rstd = vec![T::ZERO; x.numel() / d.max(1)];
        let row = |o: &mut [T], r: &mut T, x: &[T]| *r = rms_normalize_row(o, x, w, eps);
        if d > 0 && out.len() >= crate::PAR_THRESHOLD {
            out.par_chunks_mut(d)
                .zip(rstd.par_iter_mut())
                .zip(x.data().par_chunks(d))
                .with_min_len((MIN_TASK_ELEMS / d).max(1))
                .for_each(|((o, r), x)| row(o, r, x));
        } else if d > 0 {
            out.chunks_mut(d).zip(rstd.iter_mut()).zip(x.data().chunks(d)).for_each(|((o, r), x)| row(o, r, x));
        }
        *self.rstd.borrow_mut() = rstd;
        Tensor::from_vec(out, x.shape())
    }
    // With r = 1/√(mean(x²) + ε), x̂ = x·r and ĝ = g ⊙ w, per row of n:
    // ∂/∂x = r·(ĝ − x̂·mean(ĝ ⊙ x̂)), ∂/∂w = Σ_rows g ⊙ x̂.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let (x, w) = (inputs[0], inputs[1]);
        let (need_x, need_w) = (x.requires_grad(), w.requires_grad());
        let tape = x.tape();
        if tape.is_recording() {
            let rstd = ((x * x).mean_axes(&[-1], true) + self.eps).powf(-0.5);
            let xhat = x * rstd;
            let gx = need_x.then(|| {
                let gh = grad_out * w;
                rstd * (gh - xhat * (gh * xhat).mean_axes(&[-1], true))
            });
            return vec![gx, need_w.then(|| (grad_out * xhat).sum_to(&w.shape()))];
        }
        let (xv, wv, g) = (x.value(), w.value(), grad_out.value());
        let d = wv.numel();
        let rstd = self.rstd.borrow();
        let mut gx = recycle::zeros(if need_x { xv.numel() } else { 0 });
        let wd = wv.data();
        let block = |gx: &mut [T], x: &[T], g: &[T], rstd: &[T]| rms_grad_rows(gx, x, g, rstd, wd, (need_x, need_w));
        let gw = if d > 0 && xv.numel() >= crate::PAR_THRESHOLD {
            let rows_per = (MIN_TASK_ELEMS / d).max(1);
            let n = rows_per * d;
            let parts: Vec<Vec<T>> = if need_x {
                gx.par_chunks_mut(n)
                    .zip(xv.data().par_chunks(n))
                    .zip(g.data().par_chunks(n))
                    .zip(rstd.par_chunks(rows_per))
                    .map(|(((gx, x), g), r)| block(gx, x, g, r))
                    .collect()
            } else {
                xv.data()
                    .par_chunks(n)
                    .zip(g.data().par_chunks(n))
                    .zip(rstd.par_chunks(rows_per))
                    .map(|((x, g), r)| block(&mut [], x, g, r))
                    .collect()
            };
            let add = |mut a: Vec<T>, b: Vec<T>| {
                a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                a
            };
            parts.into_iter().reduce(add).expect("at least one block")
        } else {
            block(&mut gx, xv.data(), g.data(), &rstd)
        };
        vec![
            need_x.then(|| tape.constant(Tensor::from_vec(gx, xv.shape()))),
            need_w.then(|| tape.constant(Tensor::from_vec(gw, wv.shape()))),
        ]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::RmsNorm { eps: self.eps })
    }
    // The Jacobian of x̂ = x·r is r·(I − x̂x̂ᵀ/n): dy = r·(dx − x̂·mean(x̂ ⊙ dx)) ⊙ w + x̂ ⊙ dw.
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let (x, w) = (inputs[0], inputs[1]);
        let (dx, dw) = (tangents[0], tangents[1]);
        let rstd = ((x * x).mean_axes(&[-1], true) + self.eps).powf(-0.5);
        let xhat = x * rstd;
        let terms = [dx.map(|dx| rstd * (dx - xhat * (xhat * dx).mean_axes(&[-1], true)) * w), dw.map(|dw| xhat * dw)];
        terms.into_iter().flatten().reduce(|a, b| a + b)
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// RMS normalization over the last axis: `x / √(mean(x²) + eps) · weight`, with `weight` of
    /// shape `[n]` for the last dim `n`. Fused: one pass per row each way. The derivative with
    /// respect to `x` is `r·(ĝ − x̂·mean(ĝ ⊙ x̂))` with `r = 1/√(mean(x²) + eps)`, `x̂ = x·r` and
    /// `ĝ = g ⊙ weight`; smooth for `eps > 0`. PyTorch:
    /// `torch.nn.functional.rms_norm(x, (n,), weight, eps)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![4.0, 4.0, 2.0, -2.0], &[2, 2]));
    /// let w = tape.var(Tensor::from(vec![1.0, 2.0]));
    /// let y = x.rms_norm(w, 0.0); // the rms of [4, 4] is 4, of [2, −2] is 2
    /// assert_eq!(y.value().data(), &[1.0, 2.0, 1.0, -2.0]);
    /// let grads = y.sum().backward();
    /// assert_eq!(grads[w].data(), &[2.0, 0.0]); // Σ over rows of x̂
    /// // row [4, 4]: r = ¼, ĝ = w, x̂ = [1, 1]: r·(ĝ − x̂·mean(ĝ ⊙ x̂)) = ¼·([1, 2] − 1.5)
    /// assert_eq!(grads[x].data()[..2], [-0.125, 0.125]);
    /// ```
    ///
    /// # Panics
    /// If `self` is 0-d, or `weight` is not of shape `[n]`.
    #[track_caller]
    pub fn rms_norm(self, weight: Var<'t, T>, eps: f64) -> Var<'t, T> {
        let shape = self.shape();
        let Some(&d) = shape.last() else {
            shape_panic("rms_norm", "cannot normalize a 0-d tensor");
        };
        let ws = weight.shape();
        if ws.as_slice() != [d] {
            shape_panic("rms_norm", &format!("weight {ws:?} must be [{d}] for input of shape {shape:?}"));
        }
        let op = RmsNormOp { eps, rstd: RefCell::new(Vec::new()) };
        self.tape().apply(op, &[self, weight])
    }

    /// Group normalization of `x` of shape `(batch, channels, …)`: the channels are split into
    /// `num_groups` groups of `channels / num_groups`, each sample's group is normalized over its
    /// channels and positions (biased variance), then channel `c` is scaled by `weight[c]` and
    /// shifted by `bias[c]`. Composed of [`layer_norm`](Var::layer_norm) over
    /// `(batch, num_groups, rest)` with a fixed unit scale and the per-channel affine map, so its
    /// derivatives are those ops'. PyTorch:
    /// `torch.nn.functional.group_norm(x, num_groups, weight, bias, eps)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// // one sample, 4 channels of 1 position, 2 groups: [1, 3] and [10, 30]
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 3.0, 10.0, 30.0], &[1, 4, 1]));
    /// let w = tape.var(Tensor::from(vec![1.0, 1.0, 2.0, 2.0]));
    /// let b = tape.var(Tensor::from(vec![0.0, 0.0, 0.0, 1.0]));
    /// let y = x.group_norm(2, w, b, 0.0);
    /// assert_eq!(y.value().data(), &[-1.0, 1.0, -2.0, 3.0]);
    /// ```
    ///
    /// # Panics
    /// If `x` has fewer than 2 dims, `num_groups` is 0 or does not divide the channels, or
    /// `weight` or `bias` is not of shape `[channels]`.
    #[track_caller]
    pub fn group_norm(self, num_groups: usize, weight: Var<'t, T>, bias: Var<'t, T>, eps: f64) -> Var<'t, T> {
        let shape = self.shape();
        if shape.len() < 2 {
            shape_panic("group_norm", &format!("input of shape {shape:?} is not (batch, channels, …)"));
        }
        let (n, c) = (shape[0], shape[1]);
        if num_groups == 0 || !c.is_multiple_of(num_groups) {
            shape_panic(
                "group_norm",
                &format!("{num_groups} groups do not divide the {c} channels of input {shape:?}"),
            );
        }
        let (ws, bs) = (weight.shape(), bias.shape());
        if ws.as_slice() != [c] || bs.as_slice() != [c] {
            shape_panic(
                "group_norm",
                &format!("weight {ws:?} and bias {bs:?} must both be [{c}] for input of shape {shape:?}"),
            );
        }
        let m = shape.iter().skip(1).product::<usize>() / num_groups;
        let tape = self.tape();
        let (one, zero) = (tape.constant(Tensor::full(&[m], T::ONE)), tape.constant(Tensor::zeros(&[m])));
        let normed = self.reshape(&[n, num_groups, m]).layer_norm(one, zero, eps).reshape(&shape);
        let mut per_channel = vec![1; shape.len()];
        per_channel[1] = c;
        normed * weight.reshape(&per_channel) + bias.reshape(&per_channel)
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

    #[test]
    fn rms_norm_grad_matches_hand_value() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from(vec![3.0, 4.0]));
        let w = tape.constant(Tensor::from(vec![1.0, 1.0]));
        let sel = tape.constant(Tensor::from(vec![1.0, 0.0]));
        let grads = (x.rms_norm(w, 0.0) * sel).sum().backward();
        // ms = 12.5, r = 1/√12.5, x̂ = x·r; ĝ = [1, 0], mean(ĝ ⊙ x̂) = 1.5·r:
        // ∂L/∂x = r·(ĝ − x̂·1.5·r) = r·([1, 0] − x·1.5/12.5) = r·[0.64, −0.48]
        let r = 1.0 / 12.5f64.sqrt();
        assert_close(&grads[x], &Tensor::from(vec![0.64 * r, -0.48 * r]), 1e-15, 1e-15);
    }

    #[test]
    fn rms_norm_grads_match_finite_diff_to_second_order() {
        gradcheck(|v| v[0].rms_norm(v[1], 1e-5).exp().mean(), &[x23(), w3()]);
        gradgradcheck(|v| v[0].rms_norm(v[1], 1e-5).exp().mean(), &[x23(), w3()]);
    }

    #[test]
    fn rms_norm_fused_and_composed_backward_agree_on_the_parallel_path() {
        // 300 rows of 128: above PAR_THRESHOLD; the plain (fused) and recorded backwards agree.
        let tape = Tape::<f64>::new();
        let data: Vec<f64> = (0..300 * 128).map(|i| ((i * 37) % 101) as f64 * 0.05 - 2.0).collect();
        let x = tape.var(Tensor::from_vec(data, &[300, 128]));
        let w = tape.var(Tensor::from_vec((0..128).map(|i| 0.5 + i as f64 / 128.0).collect(), &[128]));
        let loss = x.rms_norm(w, 1e-6).exp().mean();
        let grads = loss.backward();
        let composed = tape.grad(loss, &[x, w]);
        assert_close(&grads[x], &composed[0].value(), 1e-13, 1e-10);
        assert_close(&grads[w], &composed[1].value(), 1e-13, 1e-10);
    }

    #[test]
    fn group_norm_grads_match_finite_diff() {
        let x: Tensor<f64> = Tensor::from_vec((0..24).map(|i| ((i * 7) % 11) as f64 * 0.3 - 1.4).collect(), &[2, 4, 3]);
        let w: Tensor<f64> = Tensor::from(vec![0.9, -1.1, 0.4, 2.0]);
        let b: Tensor<f64> = Tensor::from(vec![0.0, 0.5, -0.5, 0.1]);
        gradcheck(|v| v[0].group_norm(2, v[1], v[2], 1e-5).exp().mean(), &[x.clone(), w.clone(), b.clone()]);
        gradgradcheck(|v| v[0].group_norm(2, v[1], v[2], 1e-5).exp().mean(), &[x, w, b]);
    }

    #[test]
    #[should_panic(expected = "group_norm: 3 groups do not divide the 4 channels")]
    fn group_norm_names_groups_that_do_not_divide_the_channels() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::zeros(&[2, 4, 3]));
        x.group_norm(3, tape.var(Tensor::ones(&[4])), tape.var(Tensor::zeros(&[4])), 1e-5);
    }

    #[test]
    #[should_panic(expected = "rms_norm: weight [3] must be [4]")]
    fn rms_norm_names_shapes_on_mismatch() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::zeros(&[2, 4]));
        x.rms_norm(tape.var(w3()), 1e-5);
    }
}

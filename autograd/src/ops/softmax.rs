//! Softmax along an axis, log-softmax, and the fused softmax cross-entropy over integer targets.
//!
//! Forwards are one pass per lane (the elements along the axis), shifted by the lane's maximum
//! so that `exp` never overflows, with lanes processed in parallel above
//! [`PAR_THRESHOLD`](crate::PAR_THRESHOLD) elements. Each backward has two paths: when the tape
//! is recording ([`Tape::grad`](crate::Tape::grad), second order) the gradient is composed from
//! `Var` ops so that it can be differentiated again; otherwise it is computed by one fused
//! kernel and enters the tape as a constant.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::kernels::lanes::{
    cross_entropy_grad_row, log_softmax_grad_lane, log_softmax_lane, logsumexp_row, softmax_grad_lane, softmax_lane,
};
use crate::recycle;
use crate::shape;
use crate::tape::shape_panic;
use crate::trace::OpAttrs;
use crate::{Float, Op, Tensor, Var};

/// Lanes per parallel task are grouped so that a task holds at least this many elements.
const MIN_TASK_ELEMS: usize = 4096;

/// `(outer, n, inner)`: the shape seen as `outer` blocks of `n` lanes-elements spaced `inner`
/// apart, so that a lane along `axis` is `n` elements with stride `inner`.
fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = shape::numel(&shape[..axis]);
    let inner = shape::numel(&shape[axis + 1..]);
    (outer, shape[axis], inner)
}

/// Runs `f(a_lane, b_lane, out_lane)` over every lane (the `n` elements along the axis), in
/// parallel above `PAR_THRESHOLD` elements. Lanes along the last axis are contiguous and handed
/// over in place; lanes along another axis are gathered into per-block scratch buffers.
fn for_each_lane<T: Float>(
    a: &[T],
    b: &[T],
    out: &mut [T],
    n: usize,
    inner: usize,
    f: impl Fn(&[T], &[T], &mut [T]) + Sync + Send,
) {
    if out.is_empty() {
        return;
    }
    let block = n * inner;
    let run_block = |(o, (a, b)): (&mut [T], (&[T], &[T]))| {
        if inner == 1 {
            f(a, b, o);
            return;
        }
        let mut scratch = recycle::zeros(3 * n);
        let (sa, rest) = scratch.split_at_mut(n);
        let (sb, so) = rest.split_at_mut(n);
        for k in 0..inner {
            for j in 0..n {
                sa[j] = a[j * inner + k];
                sb[j] = b[j * inner + k];
            }
            f(sa, sb, so);
            for j in 0..n {
                o[j * inner + k] = so[j];
            }
        }
    };
    if out.len() >= crate::PAR_THRESHOLD {
        let min_len = (MIN_TASK_ELEMS / block).max(1);
        out.par_chunks_mut(block)
            .zip(a.par_chunks(block).zip(b.par_chunks(block)))
            .with_min_len(min_len)
            .for_each(run_block);
    } else {
        out.chunks_mut(block).zip(a.chunks(block).zip(b.chunks(block))).for_each(run_block);
    }
}

/// Validates `axis` against `x`'s rank and returns it as an index.
#[track_caller]
fn norm_axis(op: &str, axis: isize, rank: usize) -> usize {
    shape::normalize_axis(axis, rank)
        .unwrap_or_else(|| shape_panic(op, &format!("axis {axis} out of range for rank {rank}")))
}

struct SoftmaxOp {
    axis: usize,
}

impl<T: Float> Op<T> for SoftmaxOp {
    fn name(&self) -> &'static str {
        "softmax"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let x = inputs[0];
        let (_, n, inner) = split_at_axis(x.shape(), self.axis);
        let mut out = recycle::zeros(x.numel());
        let src = x.data();
        for_each_lane(src, src, &mut out, n, inner, |x, _, o| softmax_lane(x, o));
        Tensor::from_vec(out, x.shape())
    }
    // ∂yᵢ/∂xⱼ = yᵢ(δᵢⱼ − yⱼ), so grad_x = y ⊙ (g − Σⱼ gⱼyⱼ) along the axis.
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let axis = self.axis as isize;
        let tape = grad_out.tape();
        if tape.is_recording() {
            let dot = (grad_out * out).sum_axes(&[axis], true);
            return vec![Some(out * (grad_out - dot))];
        }
        let (y, g) = (out.value(), grad_out.value());
        let (_, n, inner) = split_at_axis(y.shape(), self.axis);
        let mut gx = recycle::zeros(y.numel());
        for_each_lane(y.data(), g.data(), &mut gx, n, inner, softmax_grad_lane);
        vec![Some(tape.constant(Tensor::from_vec(gx, y.shape())))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Softmax { axis: self.axis })
    }
    // The Jacobian y ⊙ (I − yᵀ) is symmetric: the tangent is the backward applied to dx,
    // dy = y ⊙ (dx − Σⱼ yⱼdxⱼ).
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let t = tangents[0]?;
        self.backward(inputs, out, t).pop().flatten()
    }
}

struct LogSoftmaxOp {
    axis: usize,
}

impl<T: Float> Op<T> for LogSoftmaxOp {
    fn name(&self) -> &'static str {
        "log_softmax"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let x = inputs[0];
        let (_, n, inner) = split_at_axis(x.shape(), self.axis);
        let mut out = recycle::zeros(x.numel());
        let src = x.data();
        for_each_lane(src, src, &mut out, n, inner, |x, _, o| log_softmax_lane(x, o));
        Tensor::from_vec(out, x.shape())
    }
    // yᵢ = xᵢ − logsumexp(x), so grad_x = g − exp(y) · Σⱼ gⱼ along the axis.
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let axis = self.axis as isize;
        let tape = grad_out.tape();
        if tape.is_recording() {
            let total = grad_out.sum_axes(&[axis], true);
            return vec![Some(grad_out - out.exp() * total)];
        }
        let (y, g) = (out.value(), grad_out.value());
        let (_, n, inner) = split_at_axis(y.shape(), self.axis);
        let mut gx = recycle::zeros(y.numel());
        for_each_lane(y.data(), g.data(), &mut gx, n, inner, log_softmax_grad_lane);
        vec![Some(tape.constant(Tensor::from_vec(gx, y.shape())))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::LogSoftmax { axis: self.axis })
    }
    // dy = dx − Σⱼ softmax(x)ⱼ·dxⱼ along the axis, softmax(x) = exp(y).
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let t = tangents[0]?;
        Some(t - (out.exp() * t).sum_axes(&[self.axis as isize], true))
    }
}

/// Mean softmax cross-entropy of logits `(N, C)` against `N` class indices.
struct CrossEntropyOp<T> {
    targets: Vec<usize>,
    /// Each row's `logsumexp` as `(max, ln Σ exp(x − max))` ([`logsumexp_parts`](crate::kernels::lanes::logsumexp_parts)), saved by the
    /// forward for the fused backward.
    lse: RefCell<Vec<(T, T)>>,
}

impl<T: Float> Op<T> for CrossEntropyOp<T> {
    fn name(&self) -> &'static str {
        "cross_entropy"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let x = inputs[0];
        let c = x.shape()[1];
        let mut lse = Vec::with_capacity(self.targets.len());
        if c > 0 && x.numel() >= crate::PAR_THRESHOLD {
            x.data()
                .par_chunks(c)
                .with_min_len((MIN_TASK_ELEMS / c).max(1))
                .map(logsumexp_row)
                .collect_into_vec(&mut lse);
        } else if c > 0 {
            lse.extend(x.data().chunks(c).map(logsumexp_row));
        }
        // NOTE: the N per-row losses are summed in f64 so that an f32 mean over a big batch
        // does not drift; each is `(m − xₜ) + ln s`, the maximum subtracted first.
        let total: f64 = lse
            .iter()
            .zip(&self.targets)
            .enumerate()
            .map(|(i, (&(m, ls), &t))| (m - x.data()[i * c + t]).to_f64() + ls.to_f64())
            .sum();
        *self.lse.borrow_mut() = lse;
        Tensor::scalar(T::from_f64(total / self.targets.len() as f64))
    }
    // loss = (1/N) Σᵢ (logsumexp(xᵢ) − xᵢ,tᵢ), so ∂loss/∂xᵢⱼ = (softmax(xᵢ)ⱼ − [j = tᵢ]) / N.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let x = inputs[0];
        let tape = x.tape();
        let shape = x.shape();
        let (rows, c) = (shape[0], shape[1]);
        let scale = 1.0 / rows as f64;
        if tape.is_recording() {
            let mut onehot = recycle::zeros(rows * c);
            for (i, &t) in self.targets.iter().enumerate() {
                onehot[i * c + t] = T::ONE;
            }
            let onehot = tape.constant(Tensor::from_vec(onehot, &shape));
            return vec![Some((x.softmax(-1) - onehot) * (grad_out * scale))];
        }
        let g = grad_out.item() * T::from_f64(scale);
        let xv = x.value();
        let lse = self.lse.borrow();
        let mut gx = recycle::zeros(rows * c);
        let row = |o: &mut [T], x: &[T], l: (T, T), t: usize| cross_entropy_grad_row(o, x, l, t, g);
        if c > 0 && gx.len() >= crate::PAR_THRESHOLD {
            gx.par_chunks_mut(c)
                .zip(xv.data().par_chunks(c))
                .zip(lse.par_iter().zip(self.targets.par_iter()))
                .with_min_len((MIN_TASK_ELEMS / c).max(1))
                .for_each(|((o, x), (&l, &t))| row(o, x, l, t));
        } else if c > 0 {
            gx.chunks_mut(c)
                .zip(xv.data().chunks(c))
                .zip(lse.iter().zip(&self.targets))
                .for_each(|((o, x), (&l, &t))| row(o, x, l, t));
        }
        vec![Some(tape.constant(Tensor::from_vec(gx, &shape)))]
    }
    // dloss = Σᵢⱼ ∂loss/∂xᵢⱼ·dxᵢⱼ: the gradient (the backward at g = 1) against the tangent.
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let t = tangents[0]?;
        let grad = self.backward(inputs, out, out.tape().constant(Tensor::ones(&out.shape()))).pop().flatten()?;
        Some((grad * t).sum())
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// `softmax(x)ᵢ = exp(xᵢ) / Σⱼ exp(xⱼ)` along `axis` (negative counts from the end),
    /// computed stably by shifting each lane by its maximum. The derivative is
    /// `∂yᵢ/∂xⱼ = yᵢ(δᵢⱼ − yⱼ)`; the function is smooth (no kinks). PyTorch:
    /// `torch.softmax(x, dim=axis)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from(vec![0.0, 0.0, 1000.0, 1000.0]).reshape(&[2, 2]));
    /// assert_eq!(x.softmax(0).value().data(), &[0.0, 0.0, 1.0, 1.0]); // no overflow
    /// assert_eq!(x.softmax(-1).value().data(), &[0.5, 0.5, 0.5, 0.5]);
    /// ```
    ///
    /// # Panics
    /// If `axis` is out of range.
    #[track_caller]
    pub fn softmax(self, axis: isize) -> Var<'t, T> {
        let axis = norm_axis("softmax", axis, self.rank());
        self.tape().apply(SoftmaxOp { axis }, &[self])
    }

    /// `log_softmax(x)ᵢ = xᵢ − ln Σⱼ exp(xⱼ)` along `axis` (negative counts from the end),
    /// computed stably. The derivative is `∂yᵢ/∂xⱼ = δᵢⱼ − softmax(x)ⱼ`; the function is smooth
    /// (no kinks). PyTorch: `torch.log_softmax(x, dim=axis)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from(vec![0.0, 0.0]));
    /// assert_eq!(x.log_softmax(-1).value().data(), &[-std::f64::consts::LN_2; 2]);
    /// let big = tape.var(Tensor::from(vec![1000.0, 1000.0])).log_softmax(-1).value();
    /// assert!((big.data()[0] + std::f64::consts::LN_2).abs() < 1e-12); // no overflow
    /// ```
    ///
    /// # Panics
    /// If `axis` is out of range.
    #[track_caller]
    pub fn log_softmax(self, axis: isize) -> Var<'t, T> {
        let axis = norm_axis("log_softmax", axis, self.rank());
        self.tape().apply(LogSoftmaxOp { axis }, &[self])
    }

    /// The mean softmax cross-entropy of logits `(N, C)` against `N` integer class targets:
    /// `(1/N) Σᵢ (ln Σⱼ exp(xᵢⱼ) − xᵢ,tᵢ)`, a 0-d tensor. Fused (one stable pass per row, no
    /// softmax tensor materialized) for speed and stability. The derivative is
    /// `(softmax(xᵢ)ⱼ − [j = tᵢ]) / N`; the function is smooth (no kinks). With `N = 0` the
    /// mean is NaN, as in PyTorch. PyTorch: `torch.nn.functional.cross_entropy(x, targets)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let logits = tape.var(Tensor::from_vec(vec![0.0, 0.0, 0.0, 0.0], &[2, 2]));
    /// let loss = logits.cross_entropy(&[0, 1]);
    /// assert_eq!(loss.item(), std::f64::consts::LN_2); // both rows are a fair coin: ln 2
    /// assert_eq!(loss.backward()[logits].data(), &[-0.25, 0.25, 0.25, -0.25]);
    /// ```
    ///
    /// # Panics
    /// If the logits are not 2-d, if `targets.len()` is not `N`, or if a target is `≥ C`.
    #[track_caller]
    pub fn cross_entropy(self, targets: &[usize]) -> Var<'t, T> {
        let shape = self.shape();
        if shape.len() != 2 {
            shape_panic("cross_entropy", &format!("logits must be 2-d (N, C), got shape {shape:?}"));
        }
        let (rows, c) = (shape[0], shape[1]);
        if targets.len() != rows {
            shape_panic(
                "cross_entropy",
                &format!("{} targets for logits of shape {shape:?} (expected one per row: {rows})", targets.len()),
            );
        }
        if let Some((i, &t)) = targets.iter().enumerate().find(|(_, &t)| t >= c) {
            shape_panic(
                "cross_entropy",
                &format!("target {t} at row {i} is out of range for {c} classes (logits {shape:?})"),
            );
        }
        let op = CrossEntropyOp { targets: targets.to_vec(), lse: RefCell::new(Vec::new()) };
        self.tape().apply(op, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{assert_close, gradcheck, gradgradcheck};
    use crate::{Tape, Tensor, Var};

    fn x23() -> Tensor<f64> {
        Tensor::from_vec(vec![0.3, -1.2, 2.0, 0.7, 1.1, -0.4], &[2, 3])
    }
    fn x234() -> Tensor<f64> {
        let data = (0..24).map(|i| ((i * 7) % 11) as f64 * 0.3 - 1.4).collect();
        Tensor::from_vec(data, &[2, 3, 4])
    }

    #[test]
    fn softmax_grads_match_hand_values() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from(vec![0.0, 0.0]));
        let w = tape.constant(Tensor::from(vec![1.0, 3.0]));
        // y = [½, ½]; ∂(w·y)/∂x = y ⊙ (w − w·y) = ½·([1, 3] − 2) = [−½, ½]
        let grads = (x.softmax(0) * w).sum().backward();
        assert_eq!(grads[x].data(), &[-0.5, 0.5]);
        // ∂(w·log_softmax(x))/∂x = w − softmax(x)·Σw = [1, 3] − ½·4 = [−1, 1]
        let grads = (x.log_softmax(0) * w).sum().backward();
        assert_eq!(grads[x].data(), &[-1.0, 1.0]);
        // cross_entropy([[0, 0]], [1]) = ln 2; ∂/∂x = softmax − onehot = [½, −½]
        let logits = tape.var(Tensor::from_vec(vec![0.0, 0.0], &[1, 2]));
        let loss = logits.cross_entropy(&[1]);
        assert_eq!(loss.item(), std::f64::consts::LN_2);
        assert_eq!(loss.backward()[logits].data(), &[0.5, -0.5]);
    }

    #[test]
    fn softmax_along_inner_axis_sums_to_one() {
        let tape = Tape::<f64>::new();
        let y = tape.var(x234()).softmax(1).sum_axes(&[1], false).value();
        assert_close(&y, &Tensor::ones(&[2, 4]), 1e-15, 0.0);
        let z = tape.var(x234()).log_softmax(1).exp().sum_axes(&[1], false).value();
        assert_close(&z, &Tensor::ones(&[2, 4]), 1e-15, 0.0);
    }

    #[test]
    fn cross_entropy_matches_log_softmax_composition() {
        let tape = Tape::<f32>::new();
        let data: Vec<f32> = (0..300 * 130).map(|i| ((i * 37) % 101) as f32 * 0.1 - 5.0).collect();
        let x = tape.var(Tensor::from_vec(data, &[300, 130])); // above PAR_THRESHOLD
        let targets: Vec<usize> = (0..300).map(|i| (i * 13) % 130).collect();
        let fused = x.cross_entropy(&targets);
        let onehot: Vec<f32> = (0..300 * 130).map(|k| if targets[k / 130] == k % 130 { 1.0 } else { 0.0 }).collect();
        let composed = -(x.log_softmax(-1) * tape.constant(Tensor::from_vec(onehot, &[300, 130]))).sum() / 300.0;
        assert!((fused.item() - composed.item()).abs() < 1e-5);
        let (gf, gc) = (fused.backward()[x].clone(), composed.backward()[x].clone());
        assert_close(&gf, &gc, 1e-7, 1e-4);
    }

    #[test]
    fn softmax_propagates_nan_and_ignores_masked_entries() {
        let tape = Tape::<f64>::new();
        let y = tape.var(Tensor::from(vec![f64::NAN, 1.0])).softmax(0).value();
        assert!(y.data().iter().all(|v| v.is_nan()));
        let z = tape.var(Tensor::from(vec![f64::NEG_INFINITY, 0.0])).softmax(0).value();
        assert_eq!(z.data(), &[0.0, 1.0]);
    }

    #[test]
    #[should_panic(expected = "cross_entropy: target 3 at row 1 is out of range for 3 classes")]
    fn cross_entropy_rejects_a_target_past_the_classes() {
        let tape = Tape::<f64>::new();
        tape.var(x23()).cross_entropy(&[0, 3]);
    }

    #[test]
    #[should_panic(expected = "cross_entropy: 1 targets for logits of shape [2, 3]")]
    fn cross_entropy_rejects_a_wrong_target_count() {
        let tape = Tape::<f64>::new();
        tape.var(x23()).cross_entropy(&[0]);
    }

    #[test]
    #[should_panic(expected = "softmax: axis 2 out of range for rank 2")]
    fn softmax_rejects_a_bad_axis() {
        let tape = Tape::<f64>::new();
        tape.var(x23()).softmax(2);
    }

    #[test]
    fn softmax_grads_match_finite_diff() {
        gradcheck(|v| v[0].softmax(-1).exp().mean(), &[x23()]);
        gradcheck(|v| v[0].softmax(1).exp().mean(), &[x234()]);
        gradcheck(|v| v[0].log_softmax(-1).square().mean(), &[x23()]);
        gradcheck(|v| v[0].log_softmax(0).square().mean(), &[x234()]);
        gradcheck(|v| v[0].cross_entropy(&[2, 0]).exp(), &[x23()]);
    }

    #[test]
    fn softmax_second_order_matches_finite_diff() {
        gradgradcheck(|v| v[0].softmax(-1).exp().mean(), &[x23()]);
        gradgradcheck(|v| v[0].softmax(1).exp().mean(), &[x234()]);
        gradgradcheck(|v| v[0].log_softmax(-1).square().mean(), &[x23()]);
        gradgradcheck(|v| v[0].log_softmax(0).square().mean(), &[x234()]);
        gradgradcheck(|v| v[0].cross_entropy(&[2, 0]).exp(), &[x23()]);
    }

    #[test]
    fn fused_and_composed_backward_agree() {
        type F = for<'t> fn(Var<'t, f64>) -> Var<'t, f64>;
        let fs: [F; 5] = [
            |x| x.softmax(-1).exp().mean(),
            |x| x.softmax(1).exp().mean(),
            |x| x.log_softmax(-1).square().mean(),
            |x| x.log_softmax(0).square().mean(),
            |x| x.reshape(&[6, 4]).cross_entropy(&[0, 3, 1, 2, 2, 0]).exp(),
        ];
        for f in fs {
            let tape = Tape::<f64>::new();
            let x = tape.var(x234());
            let y = f(x);
            let fast = y.backward()[x].clone();
            let composed = tape.grad(y, &[x])[0].value();
            assert_close(&fast, &composed, 1e-14, 1e-12);
        }
    }
}

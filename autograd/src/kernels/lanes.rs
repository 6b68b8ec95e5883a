//! The loops over one lane (the elements along a softmax's axis, a row of logits, a layer
//! norm's row): pairwise sums, the lane maximum, softmax and log-softmax with their gradients,
//! `logsumexp` and cross-entropy's gradient, each a [`kernel!`](crate::simd::kernel) compiled for
//! the CPU's vector instructions where it is called once per lane.

use crate::kernels::simd;
use crate::Float;

/// Elements per leaf of [`sum_zip`]'s pairwise sum (a multiple of 8).
const PAIRWISE_BLOCK: usize = 128;

/// `Σᵢ f(aᵢ, bᵢ)`, summed pairwise: blocks of [`PAIRWISE_BLOCK`] elements are summed by
/// [`block_sum`], and the block sums are added as a balanced binary tree, so that the rounding
/// error grows with `log₂ n` rather than with `n` (eight plain accumulators over a row of 10⁵
/// `f32` values were 10–50× less accurate than PyTorch). The tree is built without recursion
/// (a stack of partial sums, merged when the block count reaches a power of two) so that it
/// stays inside the calling [`simd::kernel!`].
#[inline(always)]
pub(crate) fn sum_zip<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    if n <= PAIRWISE_BLOCK {
        return block_sum(a, b, &f);
    }
    // Partial sums of 2^k blocks, larger k deeper; at most one per bit of the block count.
    let mut stack = [T::ZERO; usize::BITS as usize];
    let mut depth = 0;
    for (i, (ca, cb)) in a.chunks(PAIRWISE_BLOCK).zip(b.chunks(PAIRWISE_BLOCK)).enumerate() {
        let mut s = block_sum(ca, cb, &f);
        for _ in 0..(i + 1).trailing_zeros() {
            depth -= 1;
            s = stack[depth] + s;
        }
        stack[depth] = s;
        depth += 1;
    }
    stack[..depth - 1].iter().rev().fold(stack[depth - 1], |s, &p| p + s)
}

/// `Σᵢ f(aᵢ, bᵢ)` over a short slice with eight independent accumulators, so that the compiler
/// can vectorize the sum (a single running float sum is a serial dependency chain it may not
/// reorder).
#[inline(always)]
fn block_sum<T: Float>(a: &[T], b: &[T], f: &impl Fn(T, T) -> T) -> T {
    let mut acc = [T::ZERO; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += f(x[k], y[k]);
        }
    }
    let mut s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (&x, &y) in ra.iter().zip(rb) {
        s += f(x, y);
    }
    s
}

/// The largest element of a lane. A plain comparison (unlike the NaN-aware `Float::max`) over
/// eight independent running maxima, so that it vectorizes: a NaN in the lane is skipped here
/// but still makes the lane's `exp` sum NaN.
#[inline(always)]
pub(crate) fn lane_max<T: Float>(x: &[T]) -> T {
    let pick = |m: T, v: T| if v > m { v } else { m };
    let mut acc = [T::NEG_INFINITY; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for k in 0..8 {
            acc[k] = pick(acc[k], c[k]);
        }
    }
    rest.iter().fold(acc.into_iter().fold(T::NEG_INFINITY, pick), |m, &v| pick(m, v))
}

simd::kernel! {
    /// `out = softmax(x)` over one lane.
    pub(crate) fn softmax_lane[T: Float](x: &[T], out: &mut [T]) where [] {
        let m = lane_max(x);
        // Separate passes, so that the exp loop vectorizes (a running sum would serialize it).
        out.iter_mut().zip(x).for_each(|(o, &v)| *o = (v - m).exp());
        let r = T::ONE / sum_zip(out, out, |e, _| e);
        out.iter_mut().for_each(|o| *o *= r);
    }
}

simd::kernel! {
    /// Softmax's gradient over one lane: `o = y ⊙ (g − Σ g ⊙ y)`.
    pub(crate) fn softmax_grad_lane[T: Float](y: &[T], g: &[T], o: &mut [T]) where [] {
        let dot = sum_zip(y, g, |y, g| y * g);
        for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
            *o = y * (g - dot);
        }
    }
}

simd::kernel! {
    /// `o = log_softmax(x)` over one lane, as `(x − m) − ln s`: the maximum is subtracted
    /// first, so that no `m + ln s` (rounded at the size of the logits) enters the result.
    pub(crate) fn log_softmax_lane[T: Float](x: &[T], o: &mut [T]) where [] {
        let (m, ls) = logsumexp_parts(x);
        o.iter_mut().zip(x).for_each(|(o, &v)| *o = (v - m) - ls);
    }
}

simd::kernel! {
    /// Log-softmax's gradient over one lane: `o = g − exp(y) · Σ g`.
    pub(crate) fn log_softmax_grad_lane[T: Float](y: &[T], g: &[T], o: &mut [T]) where [] {
        let total = sum_zip(g, g, |g, _| g);
        for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
            *o = g - y.exp() * total;
        }
    }
}

simd::kernel! {
    /// Cross-entropy's gradient over one row of logits `x` with maximum `m`, `ls = ln Σ exp(x − m)`
    /// and target `t`: `o = g·(softmax(x) − onehot(t))`, with `softmax(x) = exp((x − m) − ls)`.
    pub(crate) fn cross_entropy_grad_row[T: Float](o: &mut [T], x: &[T], lse: (T, T), t: usize, g: T) where [] {
        let (m, ls) = lse;
        for (o, &v) in o.iter_mut().zip(x) {
            *o = g * ((v - m) - ls).exp();
        }
        o[t] -= g;
    }
}

/// `ln Σ exp(x)` over one lane as its two parts `(m, ln Σ exp(x − m))`, `m` the lane's maximum.
/// Callers subtract `m` before adding the second part: `m + ln s` rounds at the size of `m`.
#[inline(always)]
pub(crate) fn logsumexp_parts<T: Float>(x: &[T]) -> (T, T) {
    let m = lane_max(x);
    let s = sum_zip(x, x, |v, _| (v - m).exp());
    (m, s.ln())
}

simd::kernel! {
    /// [`logsumexp_parts`] of one row, compiled for the CPU's vector instructions.
    pub(crate) fn logsumexp_row[T: Float](x: &[T]) -> (T, T) where [] {
        logsumexp_parts(x)
    }
}

//! Fused causal self-attention: per head, `softmax(q·kᵀ/√d + causal mask)·v`, read straight out
//! of the packed `(batch, seq, 3·n_embd)` query-key-value projection and written as the heads
//! concatenated, `(batch, seq, n_embd)`.
//!
//! Composed from primitives, the same computation materializes a split, two permutes per
//! operand, a mask, the scaled scores and their softmax, each with its own backward. Fused, q, k
//! and v are read in place through strides and masked positions are never exponentiated. The
//! probabilities are kept from forward to backward while they are no larger than the input (short
//! sequences: `heads · t ≤ 3·n_embd`), and recomputed in backward otherwise (FlashAttention's
//! trade: one small `t × t` product per head against a `t × t` buffer per head held in between).
//! The per-head products are `tile` products, which skip the half of each that
//! the causal mask makes zero; batch rows run in parallel, each task reusing its buffers for its
//! heads and writing their columns of the output in place.
//!
//! The differentiable backward (for second order) is composed from `Var` ops; the plain one is a
//! tensor kernel. The gradient property tests check both against finite differences and each
//! other.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::kernels::gemm::Operand;
use crate::kernels::lanes;
use crate::kernels::tile::{self, Part};
use crate::op::TensorGrads;
use crate::recycle;
use crate::simd;
use crate::tape::shape_panic;
use crate::trace::OpAttrs;
use crate::{Float, Op, Tensor, Var};

/// Causal self-attention over a packed `(batch, seq, 3·n_embd)` input; see the module docs.
struct CausalAttentionOp<T> {
    n_head: usize,
    /// Every head's probabilities, `(batch, head, t, t)`, kept by the forward for the backward
    /// when [`Dims::keeps_probabilities`]; empty when they are recomputed instead.
    probabilities: RefCell<Vec<T>>,
}

/// The sizes of one attention: batch, sequence, embedding, heads, head size.
#[derive(Clone, Copy)]
struct Dims {
    b: usize,
    t: usize,
    c: usize,
    h: usize,
    d: usize,
}

impl Dims {
    #[track_caller]
    fn of(shape: &[usize], n_head: usize) -> Dims {
        if shape.len() != 3 || n_head == 0 || !shape[2].is_multiple_of(3 * n_head) {
            shape_panic(
                "causal_attention",
                &format!("expected (batch, seq, 3·n_embd) with n_head = {n_head} dividing n_embd, got {shape:?}"),
            );
        }
        let c = shape[2] / 3;
        Dims { b: shape[0], t: shape[1], c, h: n_head, d: c / n_head }
    }

    /// Whether the forward keeps the probabilities for the backward instead of leaving it to
    /// recompute them: when they are no larger than the packed input (`h·t ≤ 3c`, e.g. char-gpt's
    /// 4 heads over 64 positions, 256 ≤ 384). Recomputing costs the scores' product and the
    /// softmax again; keeping costs `b·h·t²` elements, which for long sequences would dwarf
    /// everything else the tape holds.
    fn keeps_probabilities(self) -> bool {
        self.h * self.t <= 3 * self.c
    }

    /// `1/√d`, the scores' scale.
    fn scale<T: Float>(self) -> T {
        T::from_f64(1.0 / (self.d as f64).sqrt())
    }

    /// Where head `head` of batch row `i` starts in the packed input, for part 0 (q), 1 (k) or
    /// 2 (v): the rows of that part are `d` contiguous elements, `3c` apart.
    fn packed(self, i: usize, head: usize, part: usize) -> usize {
        i * self.t * 3 * self.c + part * self.c + head * self.d
    }

    /// Where head `head` of batch row `i` starts in an output-shaped `(b, t, c)` tensor: rows of
    /// `d` elements, `c` apart.
    fn unpacked(self, i: usize, head: usize) -> usize {
        i * self.t * self.c + head * self.d
    }
}

/// A `rows × d` block starting at `data[0]`, rows `stride` apart.
fn rows<T>(data: &[T], stride: usize) -> Operand<'_, T> {
    Operand { data, row_stride: stride, col_stride: 1 }
}

/// The transpose of [`rows`]: a `d × rows` view.
fn rows_t<T>(data: &[T], stride: usize) -> Operand<'_, T> {
    Operand { data, row_stride: 1, col_stride: stride }
}

/// One task's buffers, reused across its heads: the `t × t` probabilities and their gradient,
/// and the `d × t` transposes of the head's keys and values (the right operand of a
/// [`tile::product`] is read by rows).
struct Scratch<T> {
    p: Vec<T>,
    ds: Vec<T>,
    k_t: Vec<T>,
    v_t: Vec<T>,
}

impl<T: Float> Scratch<T> {
    fn new(dims: Dims) -> Self {
        let (tt, dt) = (dims.t * dims.t, dims.d * dims.t);
        Scratch { p: recycle::zeros(tt), ds: recycle::zeros(tt), k_t: recycle::zeros(dt), v_t: recycle::zeros(dt) }
    }
}

/// Writes the `t × d` rows at `src` (`stride` apart) transposed into the `d × t` matrix `dst`.
#[inline(always)]
fn transpose_into<T: Float>(src: &[T], stride: usize, (t, d): (usize, usize), dst: &mut [T]) {
    assert!(t > 0 && (t - 1) * stride + d <= src.len() && dst.len() >= d * t, "transpose_into: sizes");
    for (e, column) in dst.chunks_exact_mut(t).take(d).enumerate() {
        let src = &src[e..];
        for (r, x) in column.iter_mut().enumerate() {
            *x = src[r * stride];
        }
    }
}

/// Writes one head's attention probabilities into the `t × t` buffer `p`: the scores
/// `q·kᵀ/√d` (`k_t` holds the keys transposed), then a softmax over the first `r + 1` entries of
/// row `r`, and zeros after them.
#[inline(always)]
fn probabilities<T: Float>(qkv: &[T], dims: Dims, i: usize, head: usize, k_t: &[T], p: &mut [T]) {
    let Dims { t, c, d, .. } = dims;
    let q = rows(&qkv[dims.packed(i, head, 0)..], 3 * c);
    tile::product(p, t, (t, d, t), q, rows(k_t, t), Part::LowerColumns);
    let scale = dims.scale::<T>();
    for (r, row) in p.chunks_exact_mut(t).enumerate() {
        let (live, masked) = row.split_at_mut(r + 1);
        let m = lanes::lane_max(live);
        // Separate passes, so that the exp loop vectorizes (a running sum would serialize it).
        live.iter_mut().for_each(|v| *v = ((*v - m) * scale).exp());
        let inv = T::ONE / lanes::sum_zip(live, live, |v, _| v);
        live.iter_mut().for_each(|v| *v *= inv);
        masked.fill(T::ZERO);
    }
}

/// The output, and every head's probabilities `(batch, head, t, t)` when
/// [`Dims::keeps_probabilities`] (else an empty vector).
fn forward<T: Float>(qkv: &Tensor<T>, dims: Dims) -> (Tensor<T>, Vec<T>) {
    let Dims { b, t, c, h, .. } = dims;
    if b * t * c == 0 {
        return (Tensor::zeros(&[b, t, c]), Vec::new()); // no rows to cut the work into
    }
    let data = qkv.data();
    let mut out = recycle::zeros(b * t * c);
    let mut kept = recycle::zeros(if dims.keeps_probabilities() { b * h * t * t } else { 0 });
    // One task per batch row: it owns that row's (t, c) block of the output, and its heads
    // write their t × d columns of it in place; their probabilities go to the row's part of
    // `kept`, or to the task's scratch buffer.
    let row = |s: &mut Scratch<T>, i: usize, out_i: &mut [T], kept_i: Option<&mut [T]>| {
        attend_row(s, data, dims, i, out_i, kept_i)
    };
    let scratch = || Scratch::new(dims);
    if kept.is_empty() {
        out.par_chunks_mut(t * c).enumerate().for_each_init(scratch, |s, (i, out_i)| row(s, i, out_i, None));
    } else {
        out.par_chunks_mut(t * c)
            .zip(kept.par_chunks_mut(h * t * t))
            .enumerate()
            .for_each_init(scratch, |s, (i, (out_i, kept_i))| row(s, i, out_i, Some(kept_i)));
    }
    (Tensor::from_vec(out, &[b, t, c]), kept)
}

simd::kernel! {
    /// Batch row `i` of the forward: each head's probabilities (into `kept_i` when given, else
    /// the scratch buffer) and its `t × d` columns of the output row `out_i`.
    fn attend_row[T: Float](s: &mut Scratch<T>, data: &[T], dims: Dims, i: usize, out_i: &mut [T], kept_i: Option<&mut [T]>) where [] {
        let Dims { t, c, h, d, .. } = dims;
        let mut kept_i = kept_i;
        for head in 0..h {
            let p = match kept_i.as_deref_mut() {
                Some(kept_i) => &mut kept_i[head * t * t..(head + 1) * t * t],
                None => &mut s.p[..],
            };
            transpose_into(&data[dims.packed(i, head, 1)..], 3 * c, (t, d), &mut s.k_t);
            probabilities(data, dims, i, head, &s.k_t, p);
            let v = rows(&data[dims.packed(i, head, 2)..], 3 * c);
            tile::product(&mut out_i[head * d..], c, (t, t, d), rows(p, t), v, Part::InnerUpToRow);
        }
    }
}

/// The gradient of the packed input, given the output's gradient `g`:
///
/// ```text
/// dv = Pᵀ·G    dP = G·vᵀ    dS = P ⊙ (dP − rowsum(P ⊙ dP)) / √d    dq = dS·k    dk = dSᵀ·q
/// ```
///
/// `kept` holds the forward's probabilities (`(batch, head, t, t)`), or is empty, and then they
/// are recomputed.
fn backward_kernel<T: Float>(qkv: &Tensor<T>, g: &Tensor<T>, dims: Dims, kept: &[T]) -> Tensor<T> {
    let Dims { b, t, c, .. } = dims;
    if b * t * c == 0 {
        return Tensor::zeros(&[b, t, 3 * c]);
    }
    let (data, g) = (qkv.data(), g.data());
    let mut grad = recycle::zeros(b * t * 3 * c);
    // One task per batch row, as in forward: its heads write dq, dk and dv into their columns
    // of the row's (t, 3c) block of the packed gradient.
    grad.par_chunks_mut(t * 3 * c)
        .enumerate()
        .for_each_init(|| Scratch::new(dims), |s, (i, grad_i)| attend_grad_row(s, (data, g), dims, kept, i, grad_i));
    Tensor::from_vec(grad, &[b, t, 3 * c])
}

simd::kernel! {
    /// Batch row `i` of the backward: each head's dq, dk and dv into their columns of the row's
    /// `(t, 3c)` block `grad_i` of the packed gradient (`qkv` the packed input, `g` the output's
    /// gradient; `kept` the forward's probabilities, or empty to recompute them).
    fn attend_grad_row[T: Float](s: &mut Scratch<T>, inputs: (&[T], &[T]), dims: Dims, kept: &[T], i: usize, grad_i: &mut [T]) where [] {
        let (data, g) = inputs;
        let Dims { t, c, h, d, .. } = dims;
        let scale = dims.scale::<T>();
        for head in 0..h {
            let part = |n: usize| &data[dims.packed(i, head, n)..];
            let (q, k, v) = (part(0), part(1), part(2));
            transpose_into(v, 3 * c, (t, d), &mut s.v_t);
            let p: &[T] = if kept.is_empty() {
                transpose_into(k, 3 * c, (t, d), &mut s.k_t);
                probabilities(data, dims, i, head, &s.k_t, &mut s.p);
                &s.p
            } else {
                &kept[(i * h + head) * t * t..(i * h + head + 1) * t * t]
            };
            let g_h = rows(&g[dims.unpacked(i, head)..], c);
            // The column where this head's q, k or v part starts in the row's block.
            let col = |n: usize| n * c + head * d;
            let ds = &mut s.ds;
            tile::product(&mut grad_i[col(2)..], 3 * c, (t, t, d), rows_t(p, t), g_h, Part::InnerFromRow);
            tile::product(ds, t, (t, d, t), g_h, rows(&s.v_t, t), Part::LowerColumns);
            for (r, (ds_row, p_row)) in ds.chunks_exact_mut(t).zip(p.chunks_exact(t)).enumerate() {
                let live = r + 1;
                let dot = lanes::sum_zip(&ds_row[..live], &p_row[..live], |a, b| a * b);
                for (x, &pv) in ds_row[..live].iter_mut().zip(&p_row[..live]) {
                    *x = pv * (*x - dot) * scale;
                }
                ds_row[live..].fill(T::ZERO);
            }
            tile::product(
                &mut grad_i[col(0)..],
                3 * c,
                (t, t, d),
                rows(ds, t),
                rows(k, 3 * c),
                Part::InnerUpToRow,
            );
            tile::product(
                &mut grad_i[col(1)..],
                3 * c,
                (t, t, d),
                rows_t(ds, t),
                rows(q, 3 * c),
                Part::InnerFromRow,
            );
        }
    }
}

/// The causal mask of `t` positions: a `t × t` tensor with `1` above the diagonal (row `r`'s
/// future positions, which a query may not attend to) and `0` elsewhere, as
/// [`Var::masked_fill`] takes it. For attention composed from primitive ops, e.g. with dropout
/// on the probabilities, which [`Var::causal_attention`] does not apply.
///
/// ```
/// let mask = autograd::ops::attention::causal_mask::<f32>(3);
/// assert_eq!(mask.data(), &[0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
/// ```
pub fn causal_mask<T: Float>(t: usize) -> Tensor<T> {
    Tensor::from_vec((0..t * t).map(|i| if i % t > i / t { T::ONE } else { T::ZERO }).collect(), &[t, t])
}

/// The attention composed from primitive ops, for the differentiable backward and the tests.
fn composed<'t, T: Float>(qkv: Var<'t, T>, dims: Dims) -> [Var<'t, T>; 4] {
    let Dims { b, t, c, h, d } = dims;
    let heads = |z: Var<'t, T>| z.reshape(&[b, t, h, d]).permute(&[0, 2, 1, 3]).reshape(&[b * h, t, d]);
    let (q, k, v) = (heads(qkv.narrow(-1, 0, c)), heads(qkv.narrow(-1, c, c)), heads(qkv.narrow(-1, 2 * c, c)));
    let scale = 1.0 / (d as f64).sqrt();
    let p = (q.matmul(k.transpose(-2, -1)) * scale).masked_fill(&causal_mask(t), -1e30).softmax(-1);
    [q, k, v, p]
}

/// `(b·h, t, d)` heads back to `(b, t, c)`.
fn merge<'t, T: Float>(y: Var<'t, T>, dims: Dims) -> Var<'t, T> {
    let Dims { b, t, c, h, d } = dims;
    y.reshape(&[b, h, t, d]).permute(&[0, 2, 1, 3]).reshape(&[b, t, c])
}

impl<T: Float> Op<T> for CausalAttentionOp<T> {
    fn name(&self) -> &'static str {
        "causal_attention"
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let (out, kept) = forward(inputs[0], Dims::of(inputs[0].shape(), self.n_head));
        *self.probabilities.borrow_mut() = kept;
        out
    }

    // The differentiable backward, for `Tape::grad`: `backward_kernel`'s formulas with `Var` ops
    // (a plain backward always takes `backward_values`).
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let qkv = inputs[0];
        let dims = Dims::of(&qkv.shape(), self.n_head);
        let Dims { b, t, h, d, .. } = dims;
        let [q, k, v, p] = composed(qkv, dims);
        let g = grad_out.reshape(&[b, t, h, d]).permute(&[0, 2, 1, 3]).reshape(&[b * h, t, d]);
        let dv = p.transpose(-2, -1).matmul(g);
        let dp = g.matmul(v.transpose(-2, -1));
        let ds = p * (dp - (p * dp).sum_axes(&[-1], true)) * (1.0 / (d as f64).sqrt());
        let (dq, dk) = (ds.matmul(k), ds.transpose(-2, -1).matmul(q));
        vec![Some(Var::concat(&[merge(dq, dims), merge(dk, dims), merge(dv, dims)], -1))]
    }

    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        _out: &Tensor<T>,
        grad_out: &Tensor<T>,
        _needs_grad: &[bool],
    ) -> Option<TensorGrads<T>> {
        let dims = Dims::of(inputs[0].shape(), self.n_head);
        let kept = self.probabilities.borrow();
        Some(smallvec::smallvec![Some(backward_kernel(inputs[0], grad_out, dims, &kept))])
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::CausalAttention { n_head: self.n_head })
    }
    // Per head, with S = q·kᵀ/√d (masked) and P = softmax(S): dS = (dq·kᵀ + q·dkᵀ)/√d,
    // dP = P ⊙ (dS − Σⱼ P·dS) (masked entries have P = 0), dy = dP·v + P·dv, on the composed
    // heads (the tangent's split into heads is linear, so it is the same layout op).
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let dqkv = tangents[0]?;
        let dims = Dims::of(&inputs[0].shape(), self.n_head);
        let Dims { b, t, c, h, d } = dims;
        let [q, k, v, p] = composed(inputs[0], dims);
        let heads = |z: Var<'t, T>| z.reshape(&[b, t, h, d]).permute(&[0, 2, 1, 3]).reshape(&[b * h, t, d]);
        let (dq, dk, dv) =
            (heads(dqkv.narrow(-1, 0, c)), heads(dqkv.narrow(-1, c, c)), heads(dqkv.narrow(-1, 2 * c, c)));
        let ds = (dq.matmul_t(k, false, true) + q.matmul_t(dk, false, true)) * (1.0 / (d as f64).sqrt());
        let dp = p * (ds - (p * ds).sum_axes(&[-1], true));
        Some(merge(dp.matmul(v) + p.matmul(dv), dims))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Causal multi-head self-attention from a packed projection: `self` is `(batch, seq,
    /// 3·n_embd)` holding the queries, keys and values side by side (`[q | k | v]` along the
    /// last dim, each split into `n_head` heads of `d = n_embd / n_head`); the result is
    /// `(batch, seq, n_embd)`, the heads' `softmax(q·kᵀ/√d + mask)·v` concatenated, where
    /// position `r` attends to positions `≤ r` only. Fused: see the [module docs](self).
    /// PyTorch: `q, k, v = x.split(n_embd, 2)`, each viewed as `(b, t, h, d)` and transposed to
    /// `(b, h, t, d)`, then `F.scaled_dot_product_attention(q, k, v, is_causal=True)`, transposed
    /// back and reshaped to `(b, t, n_embd)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// // One sequence of two positions, n_embd 2, one head: [q | k | v] per position.
    /// let qkv = tape.var(Tensor::from_vec(vec![1.0, 0.0, 1.0, 0.0, 1.0, 2.0, //
    ///                                          1.0, 1.0, 0.0, 1.0, 3.0, 4.0], &[1, 2, 6]));
    /// let y = qkv.causal_attention(1);
    /// // Position 0 sees only itself; position 1 mixes both values equally (q₁·k₀ = q₁·k₁ = 1).
    /// assert_eq!(y.value().data(), &[1.0, 2.0, 2.0, 3.0]);
    /// ```
    ///
    /// # Panics
    /// If `self` is not 3-d or its last dim is not `3·n_embd` with `n_head` dividing `n_embd`.
    #[track_caller]
    pub fn causal_attention(self, n_head: usize) -> Var<'t, T> {
        Dims::of(&self.shape(), n_head);
        self.tape().apply(CausalAttentionOp { n_head, probabilities: RefCell::new(Vec::new()) }, &[self])
    }
}

#[cfg(test)]
mod tests {
    use super::{composed, merge, Dims};
    use crate::check::{assert_close, gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    fn packed(b: usize, t: usize, c: usize, seed: u64) -> Tensor<f64> {
        let n = b * t * 3 * c;
        let data = (0..n).map(|i| (((i as u64 * 7919 + seed * 104_729) % 101) as f64) / 25.0 - 2.0).collect();
        Tensor::from_vec(data, &[b, t, 3 * c])
    }

    #[test]
    fn fused_forward_and_backward_match_the_composed_ops() {
        // (2, 21, 64, 2) and (1, 64, 64, 2) cover the product tiles' edges and whole tiles (8 rows
        // by 16 columns): a head of 32 with 21 and with 64 positions. (2, 16, 12, 4) and
        // (1, 64, 48, 4) have more probabilities than inputs, so the backward recomputes them; the
        // others keep them from the forward.
        let cases =
            [(1, 1, 2, 1), (2, 5, 6, 3), (3, 7, 8, 2), (2, 16, 12, 4), (2, 21, 64, 2), (1, 64, 64, 2), (1, 64, 48, 4)];
        for (b, t, c, h) in cases {
            let x = packed(b, t, c, (b * t + c) as u64);
            let dims = Dims::of(x.shape(), h);
            let tape = Tape::<f64>::new();
            let (v, w) = (tape.var(x.clone()), tape.var(x));
            let weights =
                tape.constant(Tensor::from_vec((0..b * t * c).map(|i| (i % 7) as f64 - 3.0).collect(), &[b, t, c]));
            let fused = v.causal_attention(h);
            let [_, _, vals, p] = composed(w, dims);
            let reference = merge(p.matmul(vals), dims);
            assert_close(&fused.value(), &reference.value(), 1e-12, 1e-12);
            let grads = ((fused * weights).sum() + (reference * weights).sum()).backward();
            assert_close(&grads[v], &grads[w], 1e-12, 1e-12);
        }
    }

    #[test]
    fn gradients_match_finite_differences_to_second_order() {
        let x = packed(2, 4, 6, 3).map(|v| v * 0.5);
        gradcheck(|v| (v[0].causal_attention(2) * v[0].narrow(-1, 0, 6)).sum(), std::slice::from_ref(&x));
        gradgradcheck(|v| (v[0].causal_attention(2) * v[0].narrow(-1, 6, 6)).sum(), &[x]);
    }

    #[test]
    fn empty_batches_and_sequences_give_empty_outputs_and_gradients() {
        for shape in [[0, 4, 6], [2, 0, 6], [2, 3, 0]] {
            let tape = Tape::<f64>::new();
            let x = tape.var(Tensor::zeros(&shape));
            let y = x.causal_attention(2);
            assert_eq!(y.shape().as_slice(), &[shape[0], shape[1], shape[2] / 3]);
            assert_eq!(y.sum().backward()[x].shape(), &shape);
        }
    }

    #[test]
    #[should_panic(expected = "causal_attention")]
    fn a_last_dim_that_is_not_three_heads_wide_is_a_shape_error() {
        let tape = Tape::<f32>::new();
        tape.var(Tensor::zeros(&[1, 2, 8])).causal_attention(2);
    }
}

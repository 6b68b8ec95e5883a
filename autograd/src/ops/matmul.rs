//! Matrix products: `matmul` of 2-d and batched 3-d operands, with a broadcast batch dim, through
//! the `gemm` crate.
//!
//! The op carries transpose flags, so that backward (`dA = G·Bᵀ`, `dB = Aᵀ·G`) hands the
//! transposes to `gemm` as strides instead of copying them. A 3-d·2-d product whose left side is
//! not transposed is one `(B·M, K)·(K, N)` gemm, and so is the gradient of its right side.

use gemm::Parallelism;

use crate::kernels::gemm::Operand;
use crate::kernels::mixed::product_into;
use crate::kernels::uninit;
use crate::precision::Precision;
use crate::shape::Shape;
use crate::tape::shape_panic;
use crate::trace::OpAttrs;
use crate::{Float, Op, Tensor, Var};

/// Per-matrix work (`m·n·k`) below which a batch is split across threads one matrix per task,
/// rather than each matrix across threads by gemm.
const BATCH_PAR_WORK: usize = 1 << 21;

/// `lhs · rhs` over the last two dims, reading `lhs` (`rhs`) transposed when `trans_lhs`
/// (`trans_rhs`) is set. Only `Var::matmul` (flags off) and backward (flags on) build it.
pub(crate) struct MatMul {
    /// Read the left operand's last two dims transposed.
    pub trans_lhs: bool,
    /// Read the right operand's last two dims transposed.
    pub trans_rhs: bool,
    /// The tape's precision when the op was created, used by its backward products too.
    pub precision: Precision,
}

/// The sizes of one (batched) product, after transposes and batch broadcasting.
struct Dims {
    batch_lhs: usize,
    batch_rhs: usize,
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    out_shape: Shape,
}

/// Resolves the product's sizes, or panics naming both shapes.
#[track_caller]
fn dims(lhs: &[usize], rhs: &[usize], trans_lhs: bool, trans_rhs: bool) -> Dims {
    if !(2..=3).contains(&lhs.len()) || !(2..=3).contains(&rhs.len()) {
        shape_panic("matmul", &format!("operands must be 2-d or 3-d: lhs {lhs:?}, rhs {rhs:?}"));
    }
    let (lr, lc) = (lhs[lhs.len() - 2], lhs[lhs.len() - 1]);
    let (rr, rc) = (rhs[rhs.len() - 2], rhs[rhs.len() - 1]);
    let (m, k) = if trans_lhs { (lc, lr) } else { (lr, lc) };
    let (k2, n) = if trans_rhs { (rc, rr) } else { (rr, rc) };
    if k != k2 {
        shape_panic("matmul", &format!("inner dims differ: lhs {lhs:?}, rhs {rhs:?}"));
    }
    let batch_lhs = if lhs.len() == 3 { lhs[0] } else { 1 };
    let batch_rhs = if rhs.len() == 3 { rhs[0] } else { 1 };
    if batch_lhs != batch_rhs && batch_lhs != 1 && batch_rhs != 1 {
        shape_panic("matmul", &format!("batch dims differ: lhs {lhs:?}, rhs {rhs:?}"));
    }
    // A batch of 1 broadcasts to the other's, 0 included (an empty batch stays empty).
    let batch = if batch_lhs == 1 { batch_rhs } else { batch_lhs };
    let out_shape =
        if lhs.len() == 2 && rhs.len() == 2 { Shape::from_slice(&[m, n]) } else { Shape::from_slice(&[batch, m, n]) };
    Dims { batch_lhs, batch_rhs, batch, m, k, n, out_shape }
}

/// The product of `a` and `b` (each read transposed per its flag), as a new tensor.
#[track_caller]
fn matmul_forward<T: Float>(a: &Tensor<T>, b: &Tensor<T>, op: &MatMul) -> Tensor<T> {
    let (trans_lhs, trans_rhs, precision) = (op.trans_lhs, op.trans_rhs, op.precision);
    let d = dims(a.shape(), b.shape(), trans_lhs, trans_rhs);
    let (m, k, n) = (d.m, d.k, d.n);
    let lhs =
        |data| Operand { data, row_stride: if trans_lhs { 1 } else { k }, col_stride: if trans_lhs { m } else { 1 } };
    let rhs =
        |data| Operand { data, row_stride: if trans_rhs { 1 } else { n }, col_stride: if trans_rhs { k } else { 1 } };
    let len = d.batch * m * n;
    let out = uninit::new_vec(len, |dst| {
        if d.batch_rhs == 1 && !trans_lhs {
            // (B, M, K)·(K, N) is one (B·M, K)·(K, N) product: the left side's rows are contiguous.
            return product_into(
                precision,
                dst,
                (d.batch * m, k, n),
                lhs(a.data()),
                rhs(b.data()),
                Parallelism::Rayon(0),
            );
        }
        let (a_step, b_step) = (if d.batch_lhs == 1 { 0 } else { m * k }, if d.batch_rhs == 1 { 0 } else { k * n });
        let operands =
            |i: usize| (lhs(&a.data()[i * a_step..i * a_step + m * k]), rhs(&b.data()[i * b_step..i * b_step + k * n]));
        // An empty `dst` (m·n = 0 or an empty batch) is not cut into chunks.
        if m * n * k < BATCH_PAR_WORK {
            uninit::par_fill_chunks(dst, m * n, |i, chunk| {
                let (l, r) = operands(i);
                product_into(precision, chunk, (m, k, n), l, r, Parallelism::None)
            })
        } else {
            uninit::fill_chunks(dst, m * n, |i, chunk| {
                let (l, r) = operands(i);
                product_into(precision, chunk, (m, k, n), l, r, Parallelism::Rayon(0))
            })
        }
    });
    Tensor::from_parts(d.out_shape, out)
}

impl<T: Float> Op<T> for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        matmul_forward(inputs[0], inputs[1], self)
    }
    // C = op(A)·op(B): dop(A) = G·op(B)ᵀ, dop(B) = op(A)ᵀ·G, transposed back when op is ᵀ, and
    // summed over a broadcast batch dim.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let (a, b, g) = (inputs[0], inputs[1], grad_out);
        let (ta, tb, p) = (self.trans_lhs, self.trans_rhs, self.precision);
        let grad_lhs = a.requires_grad().then(|| {
            let ga = if ta {
                b.matmul_p(g, tb, true, p) // (G·op(B)ᵀ)ᵀ = op(B)·Gᵀ
            } else {
                g.matmul_p(b, false, !tb, p)
            };
            ga.sum_to(&a.shape())
        });
        let grad_rhs = b.requires_grad().then(|| {
            let (a_shape, b_shape) = (a.shape(), b.shape());
            if !ta && (b_shape.len() == 2 || b_shape[0] == 1) {
                // B is shared by every batch: flatten (B, M, ·) to (B·M, ·) and let one gemm
                // sum over the batch.
                // Rows are the product of the leading dims (not numel / last dim, which may be 0).
                let flat = |s: &[usize]| [s[..s.len() - 1].iter().product(), s[s.len() - 1]];
                let a2 = a.reshape(&flat(&a_shape));
                let g2 = g.reshape(&flat(&g.shape()));
                let gb = if tb {
                    g2.matmul_p(a2, true, false, p) // (A·ᵀG)ᵀ = Gᵀ·A
                } else {
                    a2.matmul_p(g2, true, false, p)
                };
                gb.reshape(&b_shape)
            } else {
                let gb = if tb {
                    g.matmul_p(a, true, ta, p) // (op(A)ᵀ·G)ᵀ = Gᵀ·op(A)
                } else {
                    a.matmul_p(g, !ta, false, p)
                };
                gb.sum_to(&b_shape)
            }
        });
        vec![grad_lhs, grad_rhs]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::MatMul { trans_lhs: self.trans_lhs, trans_rhs: self.trans_rhs })
    }
    // d(op(A)·op(B)) = op(dA)·op(B) + op(A)·op(dB).
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let (a, b) = (inputs[0], inputs[1]);
        let (ta, tb, p) = (self.trans_lhs, self.trans_rhs, self.precision);
        let da = tangents[0].map(|da| da.matmul_p(b, ta, tb, p));
        let db = tangents[1].map(|db| a.matmul_p(db, ta, tb, p));
        match (da, db) {
            (Some(x), Some(y)) => Some(x + y),
            (x, y) => x.or(y),
        }
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Matrix product over the last two dims: `(M, K)·(K, N) → (M, N)`, batched
    /// `(B, M, K)·(B, K, N) → (B, M, N)`, with a batch dim of 1 or a 2-d operand broadcast
    /// against the other's batch. The gradients are `G·Bᵀ` for the left side and `Aᵀ·G` for the
    /// right, summed over a broadcast batch. Size-0 dims work as in PyTorch: an empty inner dim
    /// gives zeros, an empty batch (broadcast against a batch of 1 or a 2-d operand) stays
    /// empty. PyTorch: `torch.matmul(a, b)` (`a @ b`) for 2-d and 3-d operands.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]));
    /// let b = tape.var(Tensor::from_vec(vec![5.0, 6.0, 7.0, 8.0], &[2, 2]));
    /// assert_eq!(a.matmul(b).value().data(), &[19.0, 22.0, 43.0, 50.0]);
    /// ```
    ///
    /// # Panics
    /// If an operand is not 2-d or 3-d, the inner dims differ, or the batch dims are neither
    /// equal nor 1.
    #[track_caller]
    pub fn matmul(self, rhs: Var<'t, T>) -> Var<'t, T> {
        self.matmul_t(rhs, false, false)
    }

    /// `op(self)·op(rhs)`, where `op` transposes the last two dims when its flag is set: the
    /// transposes are read through strides, never copied. Backward is written with it.
    #[track_caller]
    pub(crate) fn matmul_t(self, rhs: Var<'t, T>, trans_lhs: bool, trans_rhs: bool) -> Var<'t, T> {
        self.matmul_p(rhs, trans_lhs, trans_rhs, self.tape().precision())
    }

    /// [`matmul_t`](Var::matmul_t) at a given precision rather than the tape's: how an op's
    /// backward keeps the precision it recorded.
    #[track_caller]
    pub(crate) fn matmul_p(
        self,
        rhs: Var<'t, T>,
        trans_lhs: bool,
        trans_rhs: bool,
        precision: Precision,
    ) -> Var<'t, T> {
        dims(&self.shape(), &rhs.shape(), trans_lhs, trans_rhs);
        self.tape().apply(MatMul { trans_lhs, trans_rhs, precision }, &[self, rhs])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{assert_close, filled, gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    /// Textbook triple loop over the last two dims, broadcasting the batch, for reference.
    fn naive(a: &Tensor<f64>, b: &Tensor<f64>) -> Tensor<f64> {
        let (ra, rb) = (a.rank(), b.rank());
        let (m, k) = (a.shape()[ra - 2], a.shape()[ra - 1]);
        let n = b.shape()[rb - 1];
        let ba = if ra == 3 { a.shape()[0] } else { 1 };
        let bb = if rb == 3 { b.shape()[0] } else { 1 };
        let batch = ba.max(bb);
        let mut out = Vec::new();
        for i in 0..batch {
            let (ia, ib) = (if ba == 1 { 0 } else { i }, if bb == 1 { 0 } else { i });
            for r in 0..m {
                for c in 0..n {
                    out.push((0..k).map(|p| a.data()[ia * m * k + r * k + p] * b.data()[ib * k * n + p * n + c]).sum());
                }
            }
        }
        let shape: Vec<usize> = if ra == 2 && rb == 2 { vec![m, n] } else { vec![batch, m, n] };
        Tensor::from_vec(out, &shape)
    }

    #[test]
    fn matmul_grads_match_hand_values() {
        let tape = Tape::<f64>::new();
        let a = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]));
        let b = tape.var(Tensor::from_vec(vec![7.0, 8.0, 9.0, 10.0, 11.0, 12.0], &[3, 2]));
        let w = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]));
        let c = a.matmul(b);
        // C = [[1·7 + 2·9 + 3·11, 1·8 + 2·10 + 3·12], [4·7 + 5·9 + 6·11, 4·8 + 5·10 + 6·12]]
        //   = [[58, 64], [139, 154]].
        assert_eq!(c.value().data(), &[58.0, 64.0, 139.0, 154.0]);
        // L = Σ C ⊙ W, so G = ∂L/∂C = W = [[1, 2], [3, 4]].
        let grads = (c * w).sum().backward();
        // dA = G·Bᵀ: row 0 = [1·7 + 2·8, 1·9 + 2·10, 1·11 + 2·12] = [23, 29, 35],
        //            row 1 = [3·7 + 4·8, 3·9 + 4·10, 3·11 + 4·12] = [53, 67, 81].
        assert_eq!(grads[a].data(), &[23.0, 29.0, 35.0, 53.0, 67.0, 81.0]);
        // dB = Aᵀ·G: row 0 = [1·1 + 4·3, 1·2 + 4·4] = [13, 18], row 1 = [2·1 + 5·3, 2·2 + 5·4]
        //            = [17, 24], row 2 = [3·1 + 6·3, 3·2 + 6·4] = [21, 30].
        assert_eq!(grads[b].data(), &[13.0, 18.0, 17.0, 24.0, 21.0, 30.0]);
    }

    /// The operand shape pairs matmul accepts: 2-d, batched, and each way of broadcasting.
    fn shape_pairs() -> Vec<(Vec<usize>, Vec<usize>)> {
        vec![
            (vec![2, 3], vec![3, 4]),
            (vec![2, 2, 3], vec![2, 3, 4]),
            (vec![3, 2, 3], vec![3, 2]),
            (vec![2, 3], vec![2, 3, 4]),
            (vec![1, 2, 3], vec![3, 3, 2]),
            (vec![3, 2, 3], vec![1, 3, 2]),
        ]
    }

    #[test]
    fn matmul_values_match_naive_loops() {
        for (sa, sb) in shape_pairs() {
            let tape = Tape::<f64>::new();
            let (a, b) = (filled(&sa, 1), filled(&sb, 2));
            let c = tape.var(a.clone()).matmul(tape.var(b.clone())).value();
            assert_close(&c, &naive(&a, &b), 1e-12, 1e-12);
        }
    }

    #[test]
    fn matmul_grad_matches_finite_diff() {
        for (sa, sb) in shape_pairs() {
            gradcheck(|v| v[0].matmul(v[1]).exp().mean(), &[filled(&sa, 3), filled(&sb, 4)]);
        }
    }

    #[test]
    fn matmul_second_order_matches_finite_diff() {
        for (sa, sb) in shape_pairs() {
            gradgradcheck(|v| v[0].matmul(v[1]).exp().mean(), &[filled(&sa, 5), filled(&sb, 6)]);
        }
    }

    #[test]
    fn transpose_flags_read_strides_like_explicit_transposes() {
        // Every flag combination, 2-d and batched, against materialized transposes, and their
        // gradients (which use the other combinations) to second order.
        for (sa, sb) in shape_pairs() {
            for (ta, tb) in [(false, true), (true, false), (true, true)] {
                let tape = Tape::<f64>::new();
                let (lhs, rhs) = (tape.var(filled(&sa, 7)), tape.var(filled(&sb, 8)));
                let expected = lhs.matmul(rhs).value();
                // The operands as stored: op(a1) = lhs, op(b1) = rhs.
                let a1 = if ta { lhs.t() } else { lhs }.detach();
                let b1 = if tb { rhs.t() } else { rhs }.detach();
                assert_close(&a1.matmul_t(b1, ta, tb).value(), &expected, 1e-12, 1e-12);
                let inputs = [a1.value(), b1.value()];
                gradcheck(|v| v[0].matmul_t(v[1], ta, tb).exp().mean(), &inputs);
                gradgradcheck(|v| v[0].matmul_t(v[1], ta, tb).exp().mean(), &inputs);
            }
        }
    }

    #[test]
    fn big_products_match_naive_loops() {
        // Sizes past BATCH_PAR_WORK (gemm's own threads), a many-small-matrices batch (one task
        // per matrix) and the flattened 3-d·2-d path, in f32 as in training.
        let cases =
            [(vec![130, 140], vec![140, 120]), (vec![16, 9, 20], vec![16, 20, 7]), (vec![4, 33, 70], vec![70, 50])];
        for (sa, sb) in cases {
            let (a, b) = (filled(&sa, 9), filled(&sb, 10));
            let tape = Tape::<f32>::new();
            let c = tape.var(a.cast::<f32>()).matmul(tape.var(b.cast::<f32>())).value();
            assert_close(&c, &naive(&a, &b).cast::<f32>(), 1e-4, 1e-4);
        }
    }

    #[test]
    fn empty_inner_dim_gives_zeros() {
        let tape = Tape::<f32>::new();
        let a = tape.var(Tensor::zeros(&[2, 0]));
        let b = tape.var(Tensor::zeros(&[0, 3]));
        assert_eq!(a.matmul(b).value(), Tensor::zeros(&[2, 3]));
        let e = tape.var(Tensor::zeros(&[0, 4])).matmul(tape.var(Tensor::zeros(&[4, 2])));
        assert_eq!(e.shape().as_slice(), &[0, 2]);
    }

    #[test]
    fn constant_operand_gets_no_gradient() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(filled(&[3, 2, 4], 11));
        let w = tape.var(filled(&[4, 5], 12));
        let grads = x.matmul(w).exp().mean().backward();
        assert!(grads.get(x).is_none());
        assert_eq!(grads[w].shape(), &[4, 5]);
    }

    #[test]
    #[should_panic(expected = "matmul: inner dims differ: lhs [2, 3], rhs [4, 5]")]
    fn inner_dim_mismatch_names_shapes() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[2, 3])).matmul(tape.var(Tensor::zeros(&[4, 5])));
    }

    /// A shape error raised outside any forward names the user's line, not the standard
    /// library's; and a forward that panicked leaves no stale location for the next error.
    #[test]
    fn shape_errors_name_the_callers_line() {
        let message = |f: &dyn Fn()| {
            let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("a shape error");
            err.downcast_ref::<String>().cloned().unwrap_or_default()
        };
        let tape = Tape::<f64>::new();
        let (a, b) = (tape.var(Tensor::zeros(&[2, 3])), tape.var(Tensor::zeros(&[4, 5])));
        // A forward that panics: the error names this line, where `where_cond` was called.
        let in_forward = message(&|| {
            a.where_cond(&Tensor::zeros(&[4]), a);
        });
        assert!(in_forward.contains(&format!("{}:{}", file!(), line!() - 2)), "{in_forward}");
        let outside = message(&|| {
            a.matmul(b);
        });
        assert!(outside.contains(&format!("(called at {}:{}", file!(), line!() - 2)), "{outside}");
    }

    #[test]
    #[should_panic(expected = "matmul: batch dims differ: lhs [2, 2, 3], rhs [3, 3, 4]")]
    fn batch_mismatch_names_shapes() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[2, 2, 3])).matmul(tape.var(Tensor::zeros(&[3, 3, 4])));
    }

    #[test]
    #[should_panic(expected = "matmul: operands must be 2-d or 3-d: lhs [3], rhs [3, 4]")]
    fn vector_operand_is_rejected() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[3])).matmul(tape.var(Tensor::zeros(&[3, 4])));
    }
}

//! `x·W + b` as one op: the affine map of a dense layer, PyTorch's `torch.addmm(b, x, W)`.
//!
//! Composed, the bias is a second op: a broadcast add that reads the product and the bias and
//! writes a second output-sized buffer. Fused, the bias is copied into the output's rows first
//! and the gemm adds the product onto it in place (its `dst = dst + lhs·rhs` mode), so the bias
//! costs one write of the output and no extra allocation. Backward is the composition's:
//! `dx = G·Wᵀ`, `dW = xᵀ·G`, `db` the column sums of `G`.

use gemm::Parallelism;
use smallvec::smallvec;

use crate::kernels::gemm::Operand;
use crate::kernels::mixed::{product_accumulate, product_new};
use crate::kernels::uninit;
use crate::op::TensorGrads;
use crate::precision::Precision;
use crate::tape::{bilinear_tangent, shape_panic};
use crate::tensor::PAR_THRESHOLD;
use crate::trace::OpAttrs;
use crate::{Float, Op, Tensor, Var};

/// `x·W + b` for a 2-d `x (n, in)`, `W (in, out)` and `b (out)`, its products (forward and
/// backward) at the tape's precision when the op was created.
struct MatMulBias {
    precision: Precision,
}

/// The output's rows, each a copy of `bias`, for `rows` rows. Written straight into fresh memory:
/// zero-filling it first (`vec![0; n]`) cost as much as the copy.
fn bias_rows<T: Float>(bias: &[T], rows: usize) -> Vec<T> {
    let (width, len) = (bias.len(), rows * bias.len());
    uninit::new_vec(len, |dst| {
        if len >= PAR_THRESHOLD {
            // Whole rows per task, about PAR_THRESHOLD / 4 elements each.
            let per_task = (PAR_THRESHOLD / 4).div_ceil(width) * width;
            uninit::par_fill_chunks(dst, per_task, |_, chunk| {
                uninit::fill_chunks(chunk, width, |_, row| uninit::write_slice(row, bias))
            })
        } else {
            // An empty `dst` (no rows, or `width` 0) is not cut into rows.
            uninit::fill_chunks(dst, width, |_, row| uninit::write_slice(row, bias))
        }
    })
}

impl<T: Float> Op<T> for MatMulBias {
    fn name(&self) -> &'static str {
        "matmul_bias"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let (x, w, b) = (inputs[0], inputs[1], inputs[2]);
        let (n, k, m) = (x.shape()[0], x.shape()[1], w.shape()[1]);
        let mut out = bias_rows(b.data(), n);
        product_accumulate(
            self.precision,
            &mut out,
            (n, k, m),
            Operand::by_rows(x.data(), k),
            Operand::by_rows(w.data(), m),
            Parallelism::Rayon(0),
        );
        Tensor::from_vec(out, &[n, m])
    }
    /// The tensor-level backward: `dx` and `dW` are products of the same size (`n·in·out`
    /// multiply-adds each), so when both are needed they run side by side, each on half of the
    /// threads, instead of one after the other, each split across all of them (which then meet
    /// at gemm's internal barriers).
    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        _out: &Tensor<T>,
        grad_out: &Tensor<T>,
        needs: &[bool],
    ) -> Option<TensorGrads<T>> {
        let (x, w, g) = (inputs[0], inputs[1], grad_out);
        let (n, k, m) = (x.shape()[0], x.shape()[1], w.shape()[1]);
        // Side by side when both are needed, each with half of the threads (one each on two
        // cores); one alone gets every thread (a first layer's input needs no gradient).
        let half = rayon::current_num_threads() / 2;
        let threads = match (needs[0] && needs[1], half) {
            (false, _) => Parallelism::Rayon(0),
            (true, 0 | 1) => Parallelism::None,
            (true, half) => Parallelism::Rayon(half),
        };
        let product = |rows: usize, inner: usize, cols: usize, lhs: Operand<'_, T>, rhs: Operand<'_, T>| {
            Tensor::from_vec(product_new(self.precision, (rows, inner, cols), lhs, rhs, threads), &[rows, cols])
        };
        // dx = G·Wᵀ (n × in), dW = xᵀ·G (in × out), the transposes read through strides.
        let dx = || needs[0].then(|| product(n, m, k, Operand::by_rows(g.data(), m), Operand::transposed(w.data(), m)));
        let dw = || needs[1].then(|| product(k, n, m, Operand::transposed(x.data(), k), Operand::by_rows(g.data(), m)));
        let db = || needs[2].then(|| g.sum_to(&[m]));
        let (dx, (dw, db)) = rayon::join(dx, || rayon::join(dw, db));
        Some(smallvec![dx, dw, db])
    }
    // dx = G·Wᵀ, dW = xᵀ·G (transposes read through strides), db = Σ over rows of G.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let (x, w, b, g) = (inputs[0], inputs[1], inputs[2], grad_out);
        vec![
            x.requires_grad().then(|| g.matmul_p(w, false, true, self.precision)),
            w.requires_grad().then(|| x.matmul_p(g, true, false, self.precision)),
            b.requires_grad().then(|| g.sum_to(&b.shape())),
        ]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Plain)
    }
    // d(x·W + b) = dx·W + x·dW + db (db folded into the first product when there is one).
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let p = self.precision;
        let product = |x: Var<'t, T>, w: Var<'t, T>, b: Option<Var<'t, T>>| match b {
            Some(b) => x.tape().apply(MatMulBias { precision: p }, &[x, w, b]),
            None => x.matmul_p(w, false, false, p),
        };
        bilinear_tangent(inputs, tangents, product, |db| db.broadcast_to(&out.shape()))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// `self·weight + bias` in one op, for `self (n, in)`, `weight (in, out)` and `bias (out)`:
    /// the same values and gradients as `self.matmul(weight) + bias`, without the broadcast
    /// add's pass and buffer (see the [module docs](crate::ops::linear)). PyTorch:
    /// `torch.addmm(bias, x, weight)`; note that `torch.nn.functional.linear` takes the weight
    /// as `(out, in)`, where here it is `(in, out)` as in `x @ W`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[1, 2]));
    /// let w = tape.var(Tensor::from_vec(vec![1.0, 0.0, 3.0, 0.0, 1.0, 4.0], &[2, 3]));
    /// let b = tape.var(Tensor::from_vec(vec![0.5, -1.0, 0.0], &[3]));
    /// assert_eq!(x.matmul_bias(w, b).value().data(), &[1.5, 1.0, 11.0]);
    /// ```
    ///
    /// # Panics
    /// If `self` or `weight` is not 2-d, `bias` not 1-d, or the sizes do not chain.
    #[track_caller]
    pub fn matmul_bias(self, weight: Var<'t, T>, bias: Var<'t, T>) -> Var<'t, T> {
        let (xs, ws, bs) = (self.shape(), weight.shape(), bias.shape());
        if xs.len() != 2 || ws.len() != 2 || bs.len() != 1 || xs[1] != ws[0] || bs[0] != ws[1] {
            shape_panic(
                "matmul_bias",
                &format!(
                    "expected x (n, in), weight (in, out), bias (out); got {:?}, {:?}, {:?}",
                    xs.as_slice(),
                    ws.as_slice(),
                    bs.as_slice()
                ),
            );
        }
        self.tape().apply(MatMulBias { precision: self.tape().precision() }, &[self, weight, bias])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{assert_close, gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    fn values(shape: &[usize], seed: u64) -> Tensor<f64> {
        let n: usize = shape.iter().product();
        Tensor::from_vec((0..n).map(|i| ((i as u64 * 37 + seed * 11) % 17) as f64 / 8.0 - 1.0).collect(), shape)
    }

    #[test]
    fn values_and_gradients_match_the_composition() {
        // Sizes on both sides of the parallel threshold of the bias fill.
        for (n, k, m) in [(1, 1, 1), (3, 4, 5), (300, 7, 130)] {
            let (x, w, b) = (values(&[n, k], 1), values(&[k, m], 2), values(&[m], 3));
            let tape = Tape::new();
            let (xv, wv, bv) = (tape.var(x), tape.var(w), tape.var(b));
            let g = values(&[n, m], 4);
            let fused = xv.matmul_bias(wv, bv);
            let composed = xv.matmul(wv) + bv;
            assert_close(&fused.value(), &composed.value(), 1e-12, 0.0);
            let weights = tape.constant(g);
            let gf = (fused * weights).sum().backward();
            let gc = (composed * weights).sum().backward();
            for v in [xv, wv, bv] {
                assert_close(&gf[v], &gc[v], 1e-12, 0.0);
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let inputs = [values(&[4, 3], 5), values(&[3, 2], 6), values(&[2], 7)];
        gradcheck(|v| v[0].matmul_bias(v[1], v[2]).tanh().sum(), &inputs);
        gradgradcheck(|v| v[0].matmul_bias(v[1], v[2]).tanh().sum(), &inputs);
    }

    #[test]
    fn constant_operands_get_no_gradient() {
        let tape = Tape::new();
        let x = tape.constant(values(&[2, 3], 8));
        let w = tape.var(values(&[3, 4], 9));
        let b = tape.constant(values(&[4], 10));
        let grads = x.matmul_bias(w, b).sum().backward();
        assert!(grads.get(x).is_none() && grads.get(b).is_none());
        assert_eq!(grads[w].shape(), &[3, 4]);
    }

    #[test]
    #[should_panic(expected = "matmul_bias")]
    fn a_bias_of_the_wrong_length_names_the_op() {
        let tape = Tape::<f64>::new();
        let x = tape.var(values(&[2, 3], 1));
        x.matmul_bias(tape.var(values(&[3, 4], 2)), tape.var(values(&[3], 3)));
    }
}

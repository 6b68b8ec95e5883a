//! Shape ops: broadcast_to, reshape (and the other layout ops of this family).

use crate::shape::{self, Shape};
use crate::tape::shape_panic;
use crate::{Float, Op, Tensor, Var};

struct BroadcastToOp {
    shape: Shape,
}

impl<T: Float> Op<T> for BroadcastToOp {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].broadcast_to(&self.shape)
    }
    // Each input element is copied to several outputs: its gradient is their sum.
    fn backward<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _out: Var<'t, T>,
        grad_out: Var<'t, T>,
    ) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out.sum_to(&inputs[0].shape()))]
    }
}

struct ReshapeOp {
    shape: Shape,
}

impl<T: Float> Op<T> for ReshapeOp {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].reshape(&self.shape)
    }
    // A reshape moves no element: the gradient is reshaped back.
    fn backward<'t>(
        &self,
        inputs: &[Var<'t, T>],
        _out: Var<'t, T>,
        grad_out: Var<'t, T>,
    ) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out.reshape(&inputs[0].shape()))]
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Repeats this tensor along stretched dims to fill `shape` (NumPy broadcasting rules).
    /// The gradient is summed back. PyTorch: `x.expand(shape)` (but materialized).
    ///
    /// # Panics
    /// If this tensor does not broadcast to `shape`.
    #[track_caller]
    pub fn broadcast_to(self, shape: &[usize]) -> Var<'t, T> {
        let own = self.shape();
        if own.as_slice() == shape {
            return self;
        }
        if !shape::broadcasts_to(&own, shape) {
            shape_panic(
                "broadcast_to",
                &format!("shape {:?} does not broadcast to {:?}", own, shape),
            );
        }
        self.tape().apply(
            BroadcastToOp {
                shape: Shape::from_slice(shape),
            },
            &[self],
        )
    }

    /// The same elements under another shape. One dimension may be `usize::MAX` (PyTorch's
    /// `-1`) to be inferred. Shares the data. PyTorch: `x.reshape(shape)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f32>::new();
    /// let x = tape.var(Tensor::zeros(&[2, 6]));
    /// assert_eq!(x.reshape(&[3, usize::MAX]).shape().as_slice(), &[3, 4]);
    /// ```
    ///
    /// # Panics
    /// If the element counts differ.
    #[track_caller]
    pub fn reshape(self, shape: &[usize]) -> Var<'t, T> {
        let own = self.shape();
        let n = shape::numel(&own);
        let mut target = Shape::from_slice(shape);
        if let Some(pos) = target.iter().position(|&d| d == usize::MAX) {
            let rest: usize = target.iter().filter(|&&d| d != usize::MAX).product();
            if rest == 0 || n % rest != 0 {
                shape_panic(
                    "reshape",
                    &format!("cannot infer a dim to view shape {:?} as {:?}", own, shape),
                );
            }
            target[pos] = n / rest;
        }
        if shape::numel(&target) != n {
            shape_panic(
                "reshape",
                &format!("cannot view shape {:?} ({n} elements) as {:?}", own, target),
            );
        }
        if own == target {
            return self;
        }
        self.tape().apply(ReshapeOp { shape: target }, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    #[test]
    #[should_panic(expected = "reshape: cannot view shape [2, 3] (6 elements) as [4]")]
    fn reshape_mismatch_names_shapes() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[2, 3])).reshape(&[4]);
    }

    #[test]
    fn broadcast_to_grad_sums_copies() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2, 1]));
        let y = x.broadcast_to(&[3, 2, 4]);
        assert_eq!(
            y.backward_with(Tensor::ones(&[3, 2, 4]))[x].data(),
            &[12.0, 12.0]
        );
    }

    #[test]
    fn shape_grads_match_finite_diff() {
        let x: Tensor<f64> = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3, 1]);
        gradcheck(
            |v| {
                v[0].broadcast_to(&[2, 3, 4])
                    .reshape(&[6, 4])
                    .exp()
                    .sum_axes(&[0], false)
                    .powi(2)
                    .sum()
            },
            &[x.clone()],
        );
        gradgradcheck(
            |v| v[0].broadcast_to(&[3, 2]).reshape(&[6]).powi(3).sum(),
            &[x],
        );
    }
}

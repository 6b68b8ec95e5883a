//! Reductions: sum, mean, max and logsumexp over all elements or given axes (with `keepdim`),
//! and `sum_to`, which sums a broadcast result back to an input's shape.

use rayon::prelude::*;

use crate::kernels::runs::{max_runs, sum_runs};
use crate::shape::{self, Shape};
use crate::tape::shape_panic;
use smallvec::smallvec;

use crate::op::TensorGrads;
use crate::trace::OpAttrs;
use crate::{Float, Op, Tensor, Var};

/// Normalizes `axes` (negative counts from the end; empty means all) into a per-dimension mask.
#[track_caller]
fn axis_mask(op: &str, axes: &[isize], rank: usize) -> Shape {
    let mut mask: Shape = Shape::from_elem(0, rank);
    if axes.is_empty() {
        mask.iter_mut().for_each(|m| *m = 1);
    }
    for &a in axes {
        let d = shape::normalize_axis(a, rank)
            .unwrap_or_else(|| shape_panic(op, &format!("axis {a} out of range for rank {rank}")));
        if mask[d] == 1 {
            shape_panic(op, &format!("axis {a} given twice"));
        }
        mask[d] = 1;
    }
    mask
}

/// The shape after reducing the masked dims, kept as 1 (`keep`) or removed.
fn reduced_shape(shape: &[usize], mask: &[usize], keep: bool) -> Shape {
    shape
        .iter()
        .zip(mask)
        .filter_map(|(&n, &m)| match (m, keep) {
            (0, _) => Some(n),
            (_, true) => Some(1),
            _ => None,
        })
        .collect()
}

/// Sum over the masked axes (keepdim shape).
fn sum_kept<T: Float>(t: &Tensor<T>, kept: &[usize]) -> Vec<T> {
    // Summing the last axis of a big row-major tensor: one row per task.
    let rank = t.rank();
    if rank >= 1
        && kept[..rank - 1] == t.shape()[..rank - 1]
        && kept[rank - 1] == 1
        && t.numel() >= crate::tensor::PAR_THRESHOLD
    {
        let n = t.shape()[rank - 1].max(1);
        return t.data().par_chunks(n).map(|row| row.iter().copied().sum()).collect();
    }
    sum_runs(t, kept)
}

/// Maximum over the masked axes (keepdim shape); NaN propagates.
fn max_kept<T: Float>(t: &Tensor<T>, kept: &[usize]) -> Vec<T> {
    max_runs(t, kept)
}

/// The reduction ops share their axis handling.
#[derive(Clone)]
struct Reduce {
    mask: Shape,
    keepdim: bool,
}

impl Reduce {
    fn kept<T: Float>(&self, t: &Tensor<T>) -> Shape {
        reduced_shape(t.shape(), &self.mask, true)
    }
    fn out_shape<T: Float>(&self, t: &Tensor<T>) -> Shape {
        reduced_shape(t.shape(), &self.mask, self.keepdim)
    }
    /// A keepdim-shaped view of an output-shaped `Var`, ready to broadcast against the input.
    fn as_kept<'t, T: Float>(&self, v: Var<'t, T>, input: Var<'t, T>) -> Var<'t, T> {
        let kept = reduced_shape(&input.shape(), &self.mask, true);
        v.reshape(&kept)
    }
    /// The reduction's attributes: the reduced axes (where the mask is 1) and keepdim.
    fn attrs(&self) -> OpAttrs {
        OpAttrs::Reduce {
            axes: self.mask.iter().enumerate().filter(|(_, &m)| m == 1).map(|(d, _)| d).collect(),
            keepdim: self.keepdim,
        }
    }
}

struct SumOp(Reduce);

impl<T: Float> Op<T> for SumOp {
    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        _out: &Tensor<T>,
        grad_out: &Tensor<T>,
        _needs: &[bool],
    ) -> Option<TensorGrads<T>> {
        Some(smallvec![Some(grad_out.reshape(&self.0.kept(inputs[0])).broadcast_to(inputs[0].shape()))])
    }
    fn name(&self) -> &'static str {
        "sum"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let t = inputs[0];
        Tensor::from_parts(self.0.out_shape(t), sum_kept(t, &self.0.kept(t)))
    }
    // ∂(Σx)/∂x = 1: the gradient is broadcast back over the summed axes.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let x = inputs[0];
        vec![Some(self.0.as_kept(grad_out, x).broadcast_to(&x.shape()))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(self.0.attrs())
    }
    // A sum is linear: d(Σx) = Σdx.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.tape().apply(SumOp(self.0.clone()), &[t]))
    }
}

struct MaxOp(Reduce);

impl<T: Float> Op<T> for MaxOp {
    fn name(&self) -> &'static str {
        "max"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let t = inputs[0];
        // The maximum of nothing is undefined: PyTorch refuses a reduced dim of size 0 too.
        if let Some(d) = (0..t.rank()).find(|&d| self.0.mask[d] == 1 && t.shape()[d] == 0) {
            shape_panic(
                "max",
                &format!(
                    "reduced dim {d} of shape {:?} has size 0: the maximum of an empty set is undefined",
                    t.shape()
                ),
            );
        }
        Tensor::from_parts(self.0.out_shape(t), max_kept(t, &self.0.kept(t)))
    }
    // ∂max/∂x_i = 1 where x_i is the maximum, 0 elsewhere; ties share the gradient equally
    // (PyTorch's `amax`). The mask is piecewise constant, so it enters as a constant.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let x = inputs[0];
        let xv = x.value();
        let kept = self.0.kept(&xv);
        let m = out.value().reshape(&kept);
        let hit = xv.zip_map(&m, "max", |a, b| if a == b { T::ONE } else { T::ZERO });
        let count = Tensor::from_parts(kept.clone(), sum_kept(&hit, &kept));
        let mask = hit.zip_map(&count, "max", |h, c| h / c);
        let tape = x.tape();
        vec![Some(self.0.as_kept(grad_out, x).broadcast_to(&x.shape()) * tape.constant(mask))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(self.0.attrs())
    }
    // dmax = Σ mask·dx, the tangent gathered at the maximum (ties averaged), with the
    // backward's mask.
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let t = tangents[0]?;
        let x = inputs[0];
        let weighted = self.backward(inputs, out, x.tape().constant(Tensor::ones(&out.shape())))[0]
            .expect("max's backward gives its input a gradient");
        Some(x.tape().apply(SumOp(self.0.clone()), &[weighted * t]))
    }
}

struct LogSumExpOp(Reduce);

impl<T: Float> Op<T> for LogSumExpOp {
    fn name(&self) -> &'static str {
        "logsumexp"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let t = inputs[0];
        let kept = self.0.kept(t);
        // Shift by the maximum so that exp never overflows; a row of −∞ stays −∞.
        let m = Tensor::from_parts(kept.clone(), max_kept(t, &kept));
        let m_safe = m.map(|v| if v.is_finite() { v } else { T::ZERO });
        let e = t.zip_map(&m_safe, "logsumexp", |x, m| (x - m).exp());
        let s = sum_kept(&e, &kept);
        let out = s.iter().zip(m_safe.data()).map(|(&s, &m)| s.ln() + m).collect();
        Tensor::from_parts(self.0.out_shape(t), out)
    }
    // ∂ logsumexp(x)/∂x_i = exp(x_i − out) = softmax(x)_i.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let x = inputs[0];
        let softmax = (x - self.0.as_kept(out, x)).exp();
        vec![Some(self.0.as_kept(grad_out, x) * softmax)]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(self.0.attrs())
    }
    // d logsumexp(x) = Σ softmax(x)·dx.
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let t = tangents[0]?;
        let x = inputs[0];
        let softmax = (x - self.0.as_kept(out, x)).exp();
        Some(x.tape().apply(SumOp(self.0.clone()), &[softmax * t]))
    }
}

#[derive(Clone)]
struct SumToOp {
    shape: Shape,
}

impl<T: Float> Tensor<T> {
    /// Sums this tensor down to `shape`, which must broadcast to this tensor's shape (the
    /// adjoint of [`Tensor::broadcast_to`]).
    ///
    /// # Panics
    /// If `shape` does not broadcast to this tensor's shape.
    #[track_caller]
    #[inline]
    pub fn sum_to(&self, shape: &[usize]) -> Tensor<T> {
        if shape::same(self.shape(), shape) {
            return self.clone();
        }
        self.sum_to_reduce(shape)
    }

    #[track_caller]
    fn sum_to_reduce(&self, shape: &[usize]) -> Tensor<T> {
        if !shape::broadcasts_to(shape, self.shape()) {
            shape_panic("sum_to", &format!("shape {:?} is not a broadcast of {:?}", self.shape(), shape));
        }
        // Keepdim shape in the input's rank: leading dims summed away, size-1 dims summed.
        let lead = self.rank() - shape.len();
        let kept: Shape = (0..self.rank()).map(|d| if d < lead { 1 } else { shape[d - lead] }).collect();
        Tensor::from_parts(Shape::from_slice(shape), sum_kept(self, &kept))
    }
}

impl<T: Float> Op<T> for SumToOp {
    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        _out: &Tensor<T>,
        grad_out: &Tensor<T>,
        _needs: &[bool],
    ) -> Option<TensorGrads<T>> {
        Some(smallvec![Some(grad_out.broadcast_to(inputs[0].shape()))])
    }
    fn name(&self) -> &'static str {
        "sum_to"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].sum_to(&self.shape)
    }
    // Summing is the adjoint of broadcasting: the gradient is broadcast back.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out.broadcast_to(&inputs[0].shape()))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::SumTo { shape: self.shape.clone() })
    }
    // Linear: the tangent is summed the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.tape().apply(self.clone(), &[t]))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Sum of all elements, as a 0-d tensor. The gradient is 1 for every element.
    /// PyTorch: `x.sum()`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]));
    /// assert_eq!(x.sum().item(), 6.0);
    /// ```
    #[track_caller]
    pub fn sum(self) -> Var<'t, T> {
        self.sum_axes(&[], false)
    }

    /// Sum over `axes` (negative counts from the end; empty means all), keeping them as size-1
    /// dims when `keepdim`. PyTorch: `x.sum(dim=axes, keepdim=keepdim)`.
    ///
    /// # Panics
    /// If an axis is out of range or repeated.
    #[track_caller]
    pub fn sum_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let mask = axis_mask("sum", axes, self.rank());
        self.tape().apply(SumOp(Reduce { mask, keepdim }), &[self])
    }

    /// Mean of all elements. PyTorch: `x.mean()`.
    #[track_caller]
    pub fn mean(self) -> Var<'t, T> {
        self.mean_axes(&[], false)
    }

    /// Mean over `axes` (empty means all): the sum divided by the number of elements reduced.
    #[track_caller]
    pub fn mean_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let shape = self.shape();
        let mask = axis_mask("mean", axes, shape.len());
        let count: usize = shape.iter().zip(&mask).filter(|(_, &m)| m == 1).map(|(&n, _)| n).product();
        self.sum_axes(axes, keepdim) / count as f64
    }

    /// Maximum of all elements. The gradient goes to the maximal element (shared equally among
    /// ties). PyTorch: `x.amax()`.
    ///
    /// # Panics
    /// If the tensor is empty (PyTorch refuses it too).
    #[track_caller]
    pub fn max(self) -> Var<'t, T> {
        self.max_axes(&[], false)
    }

    /// Maximum over `axes` (empty means all). PyTorch: `x.amax(dim=axes, keepdim=keepdim)`.
    /// A size-0 dim that is not reduced gives an empty result.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 5.0, 3.0, 2.0], &[2, 2]));
    /// assert_eq!(x.max_axes(&[-1], false).value().data(), &[5.0, 3.0]);
    /// ```
    ///
    /// # Panics
    /// If an axis is out of range or repeated, or if a reduced dim has size 0 (the maximum of
    /// nothing is undefined; PyTorch refuses it too).
    #[track_caller]
    pub fn max_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let mask = axis_mask("max", axes, self.rank());
        self.tape().apply(MaxOp(Reduce { mask, keepdim }), &[self])
    }

    /// `ln Σ exp(x)` over all elements, computed stably. The gradient is `softmax(x)`.
    #[track_caller]
    pub fn logsumexp(self) -> Var<'t, T> {
        self.logsumexp_axes(&[], false)
    }

    /// `ln Σ exp(x)` over `axes` (empty means all). PyTorch: `torch.logsumexp(x, dim, keepdim)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1000.0, 1000.0], &[2]));
    /// assert!((x.logsumexp().item() - (1000.0 + 2f64.ln())).abs() < 1e-9); // no overflow
    /// ```
    #[track_caller]
    pub fn logsumexp_axes(self, axes: &[isize], keepdim: bool) -> Var<'t, T> {
        let mask = axis_mask("logsumexp", axes, self.rank());
        self.tape().apply(LogSumExpOp(Reduce { mask, keepdim }), &[self])
    }

    /// Sums this tensor down to `shape`, which must broadcast to this tensor's shape: the adjoint
    /// of [`Var::broadcast_to`], used by the backward of every broadcasting op.
    ///
    /// # Panics
    /// If `shape` does not broadcast to this tensor's shape.
    #[track_caller]
    pub fn sum_to(self, shape: &[usize]) -> Var<'t, T> {
        if self.shape().as_slice() == shape {
            return self;
        }
        self.tape().apply(SumToOp { shape: Shape::from_slice(shape) }, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    fn m23() -> Tensor<f64> {
        Tensor::from_vec(vec![0.3, -1.2, 2.0, 0.7, 1.1, -0.4], &[2, 3])
    }

    #[test]
    fn sum_axes_shapes_follow_keepdim() {
        let tape = Tape::<f64>::new();
        let x = tape.var(m23());
        assert_eq!(x.sum_axes(&[0], false).shape().as_slice(), &[3]);
        assert_eq!(x.sum_axes(&[-1], true).shape().as_slice(), &[2, 1]);
        assert_eq!(x.sum().shape().as_slice(), &[] as &[usize]);
        assert!((x.mean_axes(&[1], false).value().data()[0] - 1.1 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn max_grad_splits_ties() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::from_vec(vec![2.0, 2.0, 1.0], &[3]));
        // Two maxima share the gradient: ∂max/∂x = [0.5, 0.5, 0].
        assert_eq!(x.max().backward()[x].data(), &[0.5, 0.5, 0.0]);
    }

    #[test]
    #[should_panic(expected = "sum: axis 2 out of range for rank 2")]
    fn bad_axis_names_op() {
        let tape = Tape::<f64>::new();
        tape.var(m23()).sum_axes(&[2], false);
    }

    #[test]
    fn reduce_grads_match_finite_diff() {
        gradcheck(|v| v[0].sum_axes(&[0], false).exp().sum(), &[m23()]);
        gradcheck(|v| v[0].mean_axes(&[1], true).powi(2).sum(), &[m23()]);
        gradcheck(|v| v[0].max_axes(&[1], false).tanh().sum(), &[m23()]);
        gradcheck(|v| v[0].logsumexp_axes(&[0], false).sum(), &[m23()]);
        gradgradcheck(|v| v[0].logsumexp_axes(&[-1], true).powi(2).sum(), &[m23()]);
        gradgradcheck(|v| (v[0].sum_axes(&[0], false) * v[0].sum_axes(&[0], false)).sum(), &[m23()]);
    }
}

//! Layout ops: broadcast_to, reshape, transpose, permute, narrow and its adjoint pad, concat,
//! stack, and index_select (embedding lookup) with its adjoint index_add.
//!
//! Every op here moves elements without arithmetic (index_add and broadcast's adjoint aside), so
//! each backward is another layout op and second derivatives come for free. Copies go run by
//! run: a contiguous run is one `memcpy`, and outputs of [`PAR_THRESHOLD`] elements or more are
//! filled by several threads.

use rayon::prelude::*;

use crate::recycle;
use crate::shape::{self, Shape};
use crate::tape::shape_panic;
use crate::trace::OpAttrs;
use crate::{Float, Op, Tensor, Var, PAR_THRESHOLD};

/// Fills `out` chunk by chunk (`f(chunk_index, chunk)`), on several threads when `out` holds
/// [`PAR_THRESHOLD`] elements or more.
pub(crate) fn fill_chunks<T: Float>(out: &mut [T], chunk: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if out.is_empty() || chunk == 0 {
        return;
    }
    if out.len() >= PAR_THRESHOLD && out.len() > chunk {
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        out.chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i, c));
    }
}

/// `(outer, size, inner)`: the products of the dims before `axis`, the dim itself, and the dims
/// after it. A row-major tensor is `outer` blocks of `size × inner` contiguous elements.
fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape::numel(&shape[..axis]), shape[axis], shape::numel(&shape[axis + 1..]))
}

#[track_caller]
fn axis_or_panic(op: &str, axis: isize, shape: &[usize]) -> usize {
    shape::normalize_axis(axis, shape.len()).unwrap_or_else(|| {
        shape_panic(op, &format!("axis {axis} out of range for shape {shape:?} (rank {})", shape.len()))
    })
}

/// The elements of `t` with its dims reordered: output dim `d` is input dim `perm[d]`.
fn permute_tensor<T: Float>(t: &Tensor<T>, perm: &[usize]) -> Tensor<T> {
    let in_strides = shape::strides(t.shape());
    let out_shape: Shape = perm.iter().map(|&p| t.shape()[p]).collect();
    let strides: Shape = perm.iter().map(|&p| in_strides[p]).collect();
    let src = t.data();
    let n = src.len();
    if n <= 1 || perm.iter().enumerate().all(|(d, &p)| d == p) {
        return t.reshape(&out_shape);
    }
    let mut out = recycle::zeros(n);
    // One chunk per index of the outermost output dim; within it, runs along the innermost.
    let (rest_shape, rest_strides) = (&out_shape[1..], &strides[1..]);
    fill_chunks(&mut out, n / out_shape[0], |i, chunk| {
        let base = i * strides[0];
        let mut pos = 0;
        shape::for_each_run(rest_shape, rest_strides, |o, s, len| {
            let dst = &mut chunk[pos..pos + len];
            let o = base + o;
            if s == 1 {
                dst.copy_from_slice(&src[o..o + len]);
            } else {
                dst.iter_mut().enumerate().for_each(|(k, d)| *d = src[o + k * s]);
            }
            pos += len;
        });
    });
    Tensor::from_parts(out_shape, out)
}

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
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out.sum_to(&inputs[0].shape()))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::BroadcastTo { shape: self.shape.clone() })
    }
    // Linear: the tangent moves the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.broadcast_to(&self.shape))
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
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out.reshape(&inputs[0].shape()))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Reshape { shape: self.shape.clone() })
    }
    // Linear: the tangent moves the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.reshape(&self.shape))
    }
}

struct TransposeOp {
    a: usize,
    b: usize,
}

impl<T: Float> Op<T> for TransposeOp {
    fn name(&self) -> &'static str {
        "transpose"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let mut perm: Shape = (0..inputs[0].rank()).collect();
        perm.swap(self.a, self.b);
        permute_tensor(inputs[0], &perm)
    }
    // A swap of two axes is its own inverse: the gradient is swapped back.
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out.transpose(self.a as isize, self.b as isize))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Transpose { a: self.a, b: self.b })
    }
    // Linear: the tangent moves the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.transpose(self.a as isize, self.b as isize))
    }
}

struct PermuteOp {
    perm: Shape,
}

impl<T: Float> Op<T> for PermuteOp {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        permute_tensor(inputs[0], &self.perm)
    }
    // out[.., i_d, ..] = x[.., i_perm[d], ..]: the gradient goes back through the inverse permutation.
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let mut inverse = vec![0; self.perm.len()];
        for (d, &p) in self.perm.iter().enumerate() {
            inverse[p] = d;
        }
        vec![Some(grad_out.permute(&inverse))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Permute { perm: self.perm.clone() })
    }
    // Linear: the tangent moves the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.permute(&self.perm))
    }
}

struct NarrowOp {
    axis: usize,
    start: usize,
    len: usize,
}

impl<T: Float> Op<T> for NarrowOp {
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let t = inputs[0];
        let (outer, size, inner) = split_at_axis(t.shape(), self.axis);
        if self.start + self.len > size {
            shape_panic(
                "narrow",
                &format!(
                    "range {}..{} out of bounds for axis {} of shape {:?}",
                    self.start,
                    self.start + self.len,
                    self.axis,
                    t.shape()
                ),
            );
        }
        let mut out_shape = Shape::from_slice(t.shape());
        out_shape[self.axis] = self.len;
        let src = t.data();
        let block = self.len * inner;
        let mut out = recycle::zeros(outer * block);
        fill_chunks(&mut out, block, |i, chunk| {
            let o = i * size * inner + self.start * inner;
            chunk.copy_from_slice(&src[o..o + block]);
        });
        Tensor::from_parts(out_shape, out)
    }
    // Narrowing selects a window: its adjoint puts the gradient back into zeros (pad).
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let size = inputs[0].shape()[self.axis];
        let after = size - self.start - self.len;
        vec![Some(grad_out.pad(self.axis as isize, self.start, after))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Narrow { axis: self.axis, start: self.start, len: self.len })
    }
    // Linear: the tangent moves the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.narrow(self.axis as isize, self.start, self.len))
    }
}

struct PadOp {
    axis: usize,
    before: usize,
    after: usize,
}

impl<T: Float> Op<T> for PadOp {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let t = inputs[0];
        let (outer, len, inner) = split_at_axis(t.shape(), self.axis);
        let size = self.before + len + self.after;
        let mut out_shape = Shape::from_slice(t.shape());
        out_shape[self.axis] = size;
        let src = t.data();
        let block = len * inner;
        let mut out = recycle::zeros(outer * size * inner);
        fill_chunks(&mut out, size * inner, |i, chunk| {
            let o = self.before * inner;
            chunk[o..o + block].copy_from_slice(&src[i * block..(i + 1) * block]);
        });
        Tensor::from_parts(out_shape, out)
    }
    // Padding embeds x in a window of zeros: its adjoint reads the window back (narrow).
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let len = inputs[0].shape()[self.axis];
        vec![Some(grad_out.narrow(self.axis as isize, self.before, len))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Pad { axis: self.axis, before: self.before, after: self.after })
    }
    // Linear: the tangent moves the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.pad(self.axis as isize, self.before, self.after))
    }
}

struct ConcatOp {
    axis: usize,
}

impl<T: Float> Op<T> for ConcatOp {
    fn name(&self) -> &'static str {
        "concat"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let first = inputs[0].shape();
        for t in &inputs[1..] {
            let s = t.shape();
            let same =
                s.len() == first.len() && s.iter().zip(first).enumerate().all(|(d, (a, b))| d == self.axis || a == b);
            if !same {
                shape_panic("concat", &format!("shapes differ outside axis {}: {:?} and {:?}", self.axis, first, s));
            }
        }
        let (outer, _, inner) = split_at_axis(first, self.axis);
        let total: usize = inputs.iter().map(|t| t.shape()[self.axis]).sum();
        let mut out_shape = Shape::from_slice(first);
        out_shape[self.axis] = total;
        let mut out = recycle::zeros(outer * total * inner);
        fill_chunks(&mut out, total * inner, |i, chunk| {
            let mut pos = 0;
            for t in inputs {
                let block = t.shape()[self.axis] * inner;
                chunk[pos..pos + block].copy_from_slice(&t.data()[i * block..(i + 1) * block]);
                pos += block;
            }
        });
        Tensor::from_parts(out_shape, out)
    }
    // Each part is a window of the output: its gradient is that window of grad_out (narrow).
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let mut start = 0;
        inputs
            .iter()
            .map(|x| {
                let len = x.shape()[self.axis];
                start += len;
                x.requires_grad().then(|| grad_out.narrow(self.axis as isize, start - len, len))
            })
            .collect()
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Concat { axis: self.axis })
    }
    // Linear: the tangents are concatenated, zeros for parts that carry none.
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let parts: Vec<Var<'t, T>> = inputs
            .iter()
            .zip(tangents)
            .map(|(x, t)| t.unwrap_or_else(|| x.tape().constant(Tensor::zeros(&x.shape()))))
            .collect();
        Some(Var::concat(&parts, self.axis as isize))
    }
}

/// Checks that every id indexes a row of a tensor of shape `shape`.
#[track_caller]
fn check_ids(op: &str, ids: &[usize], shape: &[usize]) {
    if let Some(&bad) = ids.iter().find(|&&i| i >= shape[0]) {
        shape_panic(op, &format!("index {bad} out of range for axis 0 of size {} (shape {shape:?})", shape[0]));
    }
}

struct IndexSelectOp {
    ids: Vec<usize>,
}

impl<T: Float> Op<T> for IndexSelectOp {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let t = inputs[0];
        check_ids("index_select", &self.ids, t.shape());
        let row = shape::numel(&t.shape()[1..]);
        let mut out_shape = Shape::from_slice(t.shape());
        out_shape[0] = self.ids.len();
        let src = t.data();
        let mut out = recycle::zeros(self.ids.len() * row);
        fill_chunks(&mut out, row, |k, chunk| {
            let o = self.ids[k] * row;
            chunk.copy_from_slice(&src[o..o + row]);
        });
        Tensor::from_parts(out_shape, out)
    }
    // out[k] = x[ids[k]]: row i of the gradient sums grad_out[k] over every k with ids[k] = i.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out.index_add(&self.ids, inputs[0].shape()[0]))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::IndexSelect { ids: self.ids.clone() })
    }
    // Linear: the tangent moves the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.index_select(&self.ids))
    }
}

struct IndexAddOp {
    ids: Vec<usize>,
    rows: usize,
}

impl<T: Float> Op<T> for IndexAddOp {
    fn name(&self) -> &'static str {
        "index_add"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let t = inputs[0];
        if t.rank() == 0 || t.shape()[0] != self.ids.len() {
            shape_panic("index_add", &format!("{} ids for a source of shape {:?}", self.ids.len(), t.shape()));
        }
        let mut out_shape = Shape::from_slice(t.shape());
        out_shape[0] = self.rows;
        check_ids("index_add", &self.ids, &out_shape);
        let row = shape::numel(&t.shape()[1..]);
        let src = t.data();
        let mut out = recycle::zeros(self.rows * row);
        // Ids may repeat, so rows are accumulated one after another (each add vectorizes).
        for (k, &i) in self.ids.iter().enumerate() {
            out[i * row..(i + 1) * row].iter_mut().zip(&src[k * row..(k + 1) * row]).for_each(|(o, &x)| *o += x);
        }
        Tensor::from_parts(out_shape, out)
    }
    // out[i] = Σ_{k: ids[k] = i} x[k], linear in x: ∂/∂x[k] reads row ids[k] (index_select).
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out.index_select(&self.ids))]
    }
    // Linear: the tangent moves the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.index_add(&self.ids, self.rows))
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
            shape_panic("broadcast_to", &format!("shape {:?} does not broadcast to {:?}", own, shape));
        }
        self.tape().apply(BroadcastToOp { shape: Shape::from_slice(shape) }, &[self])
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
            if rest == 0 || !n.is_multiple_of(rest) {
                shape_panic("reshape", &format!("cannot infer a dim to view shape {:?} as {:?}", own, shape));
            }
            target[pos] = n / rest;
        }
        if shape::numel(&target) != n {
            shape_panic("reshape", &format!("cannot view shape {:?} ({n} elements) as {:?}", own, target));
        }
        if own == target {
            return self;
        }
        self.tape().apply(ReshapeOp { shape: target }, &[self])
    }

    /// Swaps axes `a` and `b` (negative counts from the end). The gradient is swapped back.
    /// PyTorch: `x.transpose(a, b)` (but materialized: the result is contiguous).
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]));
    /// assert_eq!(x.transpose(0, 1).value().data(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    /// ```
    ///
    /// # Panics
    /// If an axis is out of range.
    #[track_caller]
    pub fn transpose(self, a: isize, b: isize) -> Var<'t, T> {
        let own = self.shape();
        let a = axis_or_panic("transpose", a, &own);
        let b = axis_or_panic("transpose", b, &own);
        if a == b {
            return self;
        }
        let (a, b) = (a.min(b), a.max(b));
        self.tape().apply(TransposeOp { a, b }, &[self])
    }

    /// The transpose of the last two dims: a matrix transpose, batched over any leading dims.
    /// PyTorch: `x.mT` (`x.t()` for a matrix).
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 2]));
    /// assert_eq!(x.t().value().data(), &[1.0, 3.0, 2.0, 4.0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor has fewer than two dims.
    #[track_caller]
    pub fn t(self) -> Var<'t, T> {
        if self.rank() < 2 {
            shape_panic("transpose", &format!("t() needs at least 2 dims, got shape {:?}", self.shape()));
        }
        self.transpose(-2, -1)
    }

    /// Reorders the dims: output dim `d` is input dim `dims[d]`. The gradient goes back through
    /// the inverse permutation. PyTorch: `x.permute(dims)` (but materialized).
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::<f64>::zeros(&[2, 3, 4]));
    /// assert_eq!(x.permute(&[2, 0, 1]).shape().as_slice(), &[4, 2, 3]);
    /// ```
    ///
    /// # Panics
    /// If `dims` is not a permutation of `0..rank`.
    #[track_caller]
    pub fn permute(self, dims: &[usize]) -> Var<'t, T> {
        let own = self.shape();
        let mut seen = vec![false; own.len()];
        let valid =
            dims.len() == own.len() && dims.iter().all(|&d| d < own.len() && !std::mem::replace(&mut seen[d], true));
        if !valid {
            shape_panic("permute", &format!("{dims:?} is not a permutation of the dims of shape {own:?}"));
        }
        if dims.iter().enumerate().all(|(d, &p)| d == p) {
            return self;
        }
        self.tape().apply(PermuteOp { perm: Shape::from_slice(dims) }, &[self])
    }

    /// The window `start..start + len` of `axis`. The gradient is grad_out placed back into
    /// zeros of the input's shape ([`Var::pad`]). PyTorch: `x.narrow(axis, start, len)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]));
    /// assert_eq!(x.narrow(-1, 1, 2).value().data(), &[2.0, 3.0, 5.0, 6.0]);
    /// ```
    ///
    /// # Panics
    /// If the axis is out of range or the window does not fit in it.
    #[track_caller]
    pub fn narrow(self, axis: isize, start: usize, len: usize) -> Var<'t, T> {
        let own = self.shape();
        let axis = axis_or_panic("narrow", axis, &own);
        if start + len > own[axis] {
            shape_panic(
                "narrow",
                &format!("range {start}..{} out of bounds for axis {axis} of shape {own:?}", start + len),
            );
        }
        if start == 0 && len == own[axis] {
            return self;
        }
        self.tape().apply(NarrowOp { axis, start, len }, &[self])
    }

    /// Adds `before` zeros in front of and `after` zeros behind `axis`: the adjoint of
    /// [`Var::narrow`], whose gradient narrows back. PyTorch: `F.pad` with zeros along one dim.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    /// assert_eq!(x.pad(0, 1, 2).value().data(), &[0.0, 1.0, 2.0, 0.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If the axis is out of range.
    #[track_caller]
    pub fn pad(self, axis: isize, before: usize, after: usize) -> Var<'t, T> {
        let axis = axis_or_panic("pad", axis, &self.shape());
        if before == 0 && after == 0 {
            return self;
        }
        self.tape().apply(PadOp { axis, before, after }, &[self])
    }

    /// Joins `parts` end to end along `axis`; their shapes must agree elsewhere. Each part's
    /// gradient is its window of the output gradient. PyTorch: `torch.cat(parts, axis)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor, Var};
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[1, 2]));
    /// let b = tape.var(Tensor::from_vec(vec![3.0, 4.0], &[1, 2]));
    /// assert_eq!(Var::concat(&[a, b], 1).value().data(), &[1.0, 2.0, 3.0, 4.0]);
    /// assert_eq!(Var::concat(&[a, b], 0).shape().as_slice(), &[2, 2]);
    /// ```
    ///
    /// # Panics
    /// If `parts` is empty, the axis is out of range, or the shapes differ off `axis`.
    #[track_caller]
    pub fn concat(parts: &[Var<'t, T>], axis: isize) -> Var<'t, T> {
        let Some(first) = parts.first() else {
            shape_panic("concat", "no tensors to concatenate");
        };
        let first_shape = first.shape();
        let axis = axis_or_panic("concat", axis, &first_shape);
        for p in &parts[1..] {
            let s = p.shape();
            let same = s.len() == first_shape.len()
                && s.iter().zip(&first_shape).enumerate().all(|(d, (a, b))| d == axis || a == b);
            if !same {
                shape_panic("concat", &format!("shapes differ outside axis {axis}: {first_shape:?} and {s:?}"));
            }
        }
        if parts.len() == 1 {
            return *first;
        }
        first.tape().apply(ConcatOp { axis }, parts)
    }

    /// Stacks equally shaped `parts` along a new dim at `axis` (`-1` appends it last). Built from
    /// [`Var::reshape`] and [`Var::concat`]. PyTorch: `torch.stack(parts, axis)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor, Var};
    /// let tape = Tape::<f64>::new();
    /// let a = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[2]));
    /// let b = tape.var(Tensor::from_vec(vec![3.0, 4.0], &[2]));
    /// let s = Var::stack(&[a, b], -1); // (2, 2): [[1, 3], [2, 4]]
    /// assert_eq!(s.value().data(), &[1.0, 3.0, 2.0, 4.0]);
    /// ```
    ///
    /// # Panics
    /// If `parts` is empty, the shapes differ, or the axis is out of range.
    #[track_caller]
    pub fn stack(parts: &[Var<'t, T>], axis: isize) -> Var<'t, T> {
        let Some(first) = parts.first() else {
            shape_panic("stack", "no tensors to stack");
        };
        let own = first.shape();
        if let Some(p) = parts.iter().find(|p| p.shape() != own) {
            shape_panic("stack", &format!("all shapes must be equal: {own:?} and {:?}", p.shape()));
        }
        let axis = shape::normalize_axis(axis, own.len() + 1)
            .unwrap_or_else(|| shape_panic("stack", &format!("axis {axis} out of range for stacking shape {own:?}")));
        let mut unsqueezed = own.clone();
        unsqueezed.insert(axis, 1);
        let parts: Vec<Var<'t, T>> = parts.iter().map(|p| p.reshape(&unsqueezed)).collect();
        Var::concat(&parts, axis as isize)
    }

    /// Rows of axis 0 gathered by integer ids: `out[k] = x[ids[k]]`, so a `[V, D]` embedding
    /// table gives `[ids.len(), D]`. Works for any rank ≥ 1; ids may repeat. The gradient
    /// scatter-adds grad_out's rows back ([`Var::index_add`]). PyTorch: `x.index_select(0, ids)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let table = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]));
    /// assert_eq!(table.index_select(&[2, 0, 2]).value().data(), &[5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor is 0-d or an id is out of range.
    #[track_caller]
    pub fn index_select(self, ids: &[usize]) -> Var<'t, T> {
        let own = self.shape();
        if own.is_empty() {
            shape_panic("index_select", "cannot index rows of a 0-d tensor");
        }
        check_ids("index_select", ids, &own);
        self.tape().apply(IndexSelectOp { ids: ids.to_vec() }, &[self])
    }

    /// Scatter-adds the rows of this tensor into zeros with `rows` rows:
    /// `out[ids[k]] += x[k]`. The adjoint of [`Var::index_select`], whose gradient reads the
    /// rows back. PyTorch: `torch.zeros(rows, ...).index_add(0, ids, x)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0], &[3]));
    /// assert_eq!(x.index_add(&[1, 0, 1], 3).value().data(), &[2.0, 4.0, 0.0]);
    /// ```
    ///
    /// # Panics
    /// If the tensor is 0-d, its first dim is not `ids.len()`, or an id is not below `rows`.
    #[track_caller]
    pub fn index_add(self, ids: &[usize], rows: usize) -> Var<'t, T> {
        let own = self.shape();
        if own.is_empty() || own[0] != ids.len() {
            shape_panic("index_add", &format!("{} ids for a source of shape {own:?}", ids.len()));
        }
        let mut out_shape = own.clone();
        out_shape[0] = rows;
        check_ids("index_add", ids, &out_shape);
        self.tape().apply(IndexAddOp { ids: ids.to_vec(), rows }, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{gradcheck, gradgradcheck};
    use crate::{Tape, Tensor, Var};

    fn m23() -> Tensor<f64> {
        Tensor::from_vec(vec![0.3, -1.2, 2.0, 0.7, 1.1, -0.4], &[2, 3])
    }

    fn t234() -> Tensor<f64> {
        Tensor::from_vec((0..24).map(|i| 0.1 * i as f64 - 1.1).collect(), &[2, 3, 4])
    }

    #[test]
    fn layout_values_match_hand_results() {
        let tape = Tape::<f64>::new();
        let x = tape.var(t234());
        // permute [2, 0, 1]: out[k, i, j] = x[i, j, k] = 0.1·(12i + 4j + k) − 1.1.
        let p = x.permute(&[2, 0, 1]).value();
        assert_eq!(p.shape(), &[4, 2, 3]);
        assert!((p.at(&[3, 1, 2]) - (0.1 * 23.0 - 1.1)).abs() < 1e-12);
        let tr = x.transpose(0, -1).value();
        assert_eq!(tr.shape(), &[4, 3, 2]);
        assert!((tr.at(&[1, 2, 1]) - (0.1 * 21.0 - 1.1)).abs() < 1e-12);
        assert_eq!(x.t().shape().as_slice(), &[2, 4, 3]);
        let n = x.narrow(1, 1, 2).value();
        assert_eq!(n.shape(), &[2, 2, 4]);
        assert!((n.at(&[1, 0, 3]) - x.value().at(&[1, 1, 3])).abs() < 1e-15);
        let s = Var::stack(&[x, x], 1);
        assert_eq!(s.shape().as_slice(), &[2, 2, 3, 4]);
        let c = Var::concat(&[x, x.narrow(2, 0, 1)], 2).value();
        assert_eq!(c.shape(), &[2, 3, 5]);
        assert_eq!(c.at(&[1, 2, 4]), x.value().at(&[1, 2, 0]));
    }

    #[test]
    fn index_select_grad_counts_repeats() {
        let tape = Tape::<f64>::new();
        let table = tape.var(m23().reshape(&[3, 2]));
        let rows = table.index_select(&[2, 0, 2]);
        // out = [x2, x0, x2], so ∂Σ(out·w)/∂x2 = w0 + w2, ∂/∂x0 = w1, ∂/∂x1 = 0.
        let w = tape.constant(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[3, 2]));
        let grads = (rows * w).sum().backward();
        assert_eq!(grads[table].data(), &[3.0, 4.0, 0.0, 0.0, 6.0, 8.0]);
    }

    #[test]
    fn narrow_grad_is_padded_window() {
        let tape = Tape::<f64>::new();
        let x = tape.var(m23());
        // ∂Σ narrow(x, 1, 1, 2)/∂x = [[0, 1, 1], [0, 1, 1]].
        let grads = x.narrow(1, 1, 2).sum().backward();
        assert_eq!(grads[x].data(), &[0.0, 1.0, 1.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    #[should_panic(expected = "narrow: range 2..4 out of bounds for axis 1 of shape [2, 3]")]
    fn narrow_out_of_bounds_names_shape() {
        let tape = Tape::<f64>::new();
        tape.var(m23()).narrow(1, 2, 2);
    }

    #[test]
    #[should_panic(expected = "concat: shapes differ outside axis 0: [2, 3] and [2, 2]")]
    fn concat_mismatch_names_shapes() {
        let tape = Tape::<f64>::new();
        let x = tape.var(m23());
        Var::concat(&[x, x.narrow(1, 0, 2)], 0);
    }

    #[test]
    #[should_panic(expected = "index_select: index 3 out of range for axis 0 of size 2")]
    fn index_select_out_of_range_panics() {
        let tape = Tape::<f64>::new();
        tape.var(m23()).index_select(&[0, 3]);
    }

    #[test]
    #[should_panic(expected = "permute: [0, 0, 1] is not a permutation")]
    fn permute_rejects_repeats() {
        let tape = Tape::<f64>::new();
        tape.var(t234()).permute(&[0, 0, 1]);
    }

    #[test]
    fn big_copies_match_small_path() {
        // Above PAR_THRESHOLD the kernels split work across threads; compare with element reads.
        let tape = Tape::<f32>::new();
        let n = 40 * 30 * 32;
        let x = tape.var(Tensor::from_vec((0..n).map(|i| i as f32).collect(), &[40, 30, 32]));
        let p = x.permute(&[1, 2, 0]).value();
        assert_eq!(p.at(&[7, 31, 39]), x.value().at(&[39, 7, 31]));
        let nar = x.narrow(2, 5, 20).value();
        assert_eq!(nar.at(&[39, 29, 19]), x.value().at(&[39, 29, 24]));
        let c = Var::concat(&[x, x], 1).value();
        assert_eq!(c.at(&[39, 59, 31]), x.value().at(&[39, 29, 31]));
        let ids: Vec<usize> = (0..40).rev().collect();
        assert_eq!(x.index_select(&ids).value().at(&[0, 3, 4]), x.value().at(&[39, 3, 4]));
    }

    #[test]
    fn layout_grads_match_finite_diff() {
        gradcheck(|v| v[0].transpose(0, 2).exp().mean(), &[t234()]);
        gradcheck(|v| v[0].t().exp().mean(), &[t234()]);
        gradcheck(|v| v[0].permute(&[1, 2, 0]).exp().mean(), &[t234()]);
        gradcheck(|v| v[0].narrow(-1, 1, 2).exp().mean(), &[t234()]);
        gradcheck(|v| v[0].pad(1, 2, 1).exp().mean(), &[m23()]);
        gradcheck(|v| Var::concat(&[v[0], v[1], v[0]], 0).exp().mean(), &[m23(), m23().map(|x| 0.5 * x)]);
        gradcheck(|v| Var::stack(&[v[0], v[1]], 1).exp().mean(), &[m23(), m23()]);
        gradcheck(|v| v[0].index_select(&[1, 0, 1, 1]).exp().mean(), &[m23()]);
        gradcheck(|v| v[0].index_add(&[2, 0], 3).exp().mean(), &[m23()]);
    }

    #[test]
    fn layout_second_order_matches_finite_diff() {
        gradgradcheck(|v| v[0].t().powi(3).exp().mean(), &[m23()]);
        gradgradcheck(|v| v[0].permute(&[2, 0, 1]).powi(3).mean(), &[t234()]);
        gradgradcheck(|v| v[0].narrow(1, 1, 2).exp().mean(), &[m23()]);
        gradgradcheck(|v| v[0].pad(0, 1, 1).exp().mean(), &[m23()]);
        gradgradcheck(
            |v| (Var::concat(&[v[0], v[1]], -1) * Var::stack(&[v[0], v[1]], 2).reshape(&[2, 6])).exp().mean(),
            &[m23(), m23().map(|x| 0.5 * x)],
        );
        gradgradcheck(|v| v[0].index_select(&[1, 1, 0]).exp().mean(), &[m23()]);
        gradgradcheck(|v| v[0].index_add(&[0, 0], 1).exp().mean(), &[m23()]);
    }

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
        assert_eq!(y.backward_with(Tensor::ones(&[3, 2, 4]))[x].data(), &[12.0, 12.0]);
    }

    #[test]
    fn shape_grads_match_finite_diff() {
        let x: Tensor<f64> = Tensor::from_vec(vec![0.3, -1.2, 2.0], &[3, 1]);
        gradcheck(
            |v| v[0].broadcast_to(&[2, 3, 4]).reshape(&[6, 4]).exp().sum_axes(&[0], false).powi(2).sum(),
            std::slice::from_ref(&x),
        );
        gradgradcheck(|v| v[0].broadcast_to(&[3, 2]).reshape(&[6]).powi(3).sum(), &[x]);
    }
}

//! Max pooling over NCHW images, with its adjoint scatter (and the scatter's adjoint gather),
//! so that gradients of any order flow through the saved argmax; average pooling (fixed and
//! adaptive windows) with its adjoint.

use std::cell::OnceCell;
use std::rc::Rc;

use rayon::prelude::*;

use super::conv::{check_rank4, Window};
use super::shape::fill_chunks;
use crate::recycle;
use crate::tape::shape_panic;
use crate::trace::OpAttrs;
use crate::{Float, Op, Tensor, Var, PAR_THRESHOLD};

/// Where each max-pool output came from: a flat index into its input (N, C) plane, per output
/// element, with the input shape it indexes.
struct Argmax {
    in_shape: [usize; 4],
    out_hw: (usize, usize),
    idx: Vec<usize>,
}

/// Whether `x` is NaN: the one value that is not equal to itself.
#[inline]
fn is_nan<T: Float>(x: T) -> bool {
    #[allow(clippy::eq_op)]
    let same = x == x;
    !same
}

/// Max pooling. Its forward finds the maxima and saves where they are; built with `argmax`
/// already set (as the adjoint of [`MaxPool2dScatterOp`]) it instead gathers from those
/// positions, which is the linear map that max pooling is locally.
struct MaxPool2dOp {
    kernel: usize,
    stride: usize,
    argmax: OnceCell<Rc<Argmax>>,
}

impl MaxPool2dOp {
    fn gather<T: Float>(&self, x: &Tensor<T>, am: &Argmax) -> Tensor<T> {
        if x.shape() != am.in_shape {
            shape_panic(
                "max_pool2d",
                &format!("gathering from shape {:?} with maxima found in shape {:?}", x.shape(), am.in_shape),
            );
        }
        let [n, c, h, w] = am.in_shape;
        let (oh, ow) = am.out_hw;
        let src = x.data();
        let mut out = recycle::zeros(n * c * oh * ow);
        fill_chunks(&mut out, oh * ow, |p, dst| {
            let plane = &src[p * h * w..(p + 1) * h * w];
            let idx = &am.idx[p * oh * ow..(p + 1) * oh * ow];
            dst.iter_mut().zip(idx).for_each(|(d, &i)| *d = plane[i]);
        });
        Tensor::from_vec(out, &[n, c, oh, ow])
    }
}

/// Output row `r` of 2×2, stride-2 max pooling of a plane `w` wide (the usual case, and the one
/// worth a loop of its own): the same maxima and first-maximum positions as the general loop,
/// computed from whole pairs of elements with no index arithmetic or bounds check per element
/// (4–5× faster than the general loop on the CNN's (32, 64, 24, 24) pooling).
#[inline(always)]
fn pool_row_2x2<T: Float>(plane: &[T], r: usize, w: usize, dst: &mut [T], arg: &mut [usize]) {
    let ow = dst.len();
    let (top, bottom) = (2 * r * w, (2 * r + 1) * w);
    let pairs = |start: usize| plane[start..start + 2 * ow].chunks_exact(2);
    let windows = pairs(top).zip(pairs(bottom));
    for (q, ((d, a), (t, b))) in dst.iter_mut().zip(arg.iter_mut()).zip(windows).enumerate() {
        let v = [t[0], t[1], b[0], b[1]];
        let pos = [top + 2 * q, top + 2 * q + 1, bottom + 2 * q, bottom + 2 * q + 1];
        let m01 = if v[1] > v[0] { v[1] } else { v[0] };
        let m23 = if v[3] > v[2] { v[3] } else { v[2] };
        let mut m = if m23 > m01 { m23 } else { m01 };
        let nan = is_nan(v[0]) | is_nan(v[1]) | is_nan(v[2]) | is_nan(v[3]);
        m = if nan { T::NAN } else { m };
        let hit = |i: usize| (v[i] == m) | is_nan(v[i]);
        let mut at = pos[3];
        for i in (0..3).rev() {
            at = if hit(i) { pos[i] } else { at };
        }
        (*d, *a) = (m, at);
    }
}

impl<T: Float> Op<T> for MaxPool2dOp {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let x = inputs[0];
        if let Some(am) = self.argmax.get() {
            return self.gather(x, am);
        }
        let s = x.shape();
        check_rank4("max_pool2d", s);
        let (k, st) = (self.kernel, self.stride);
        let win = Window::new("max_pool2d", s, (s[2], s[3]), (k, k), st, 0);
        let (h, w, oh, ow) = (win.h, win.w, win.oh, win.ow);
        let planes = s[0] * s[1];
        let src = x.data();
        let mut out = recycle::zeros(planes * oh * ow);
        let mut idx = vec![0usize; planes * oh * ow];
        // Per window, the maximum first (a NaN beats any number, so it propagates), then the
        // first position in row-major order that holds it (so a tie goes to the first). Both
        // are written as selects rather than branches: which element wins is data, and
        // mispredicted branches made this loop slower than the convolution feeding it.
        let pool_plane = |p: usize, (dst, arg): (&mut [T], &mut [usize])| {
            pool_plane(&src[p * h * w..(p + 1) * h * w], dst, arg, (k, st), (w, ow))
        };
        let chunk = (oh * ow).max(1);
        if out.len() * k * k >= PAR_THRESHOLD {
            out.par_chunks_mut(chunk)
                .zip(idx.par_chunks_mut(chunk))
                .enumerate()
                .for_each(|(p, pair)| pool_plane(p, pair));
        } else {
            out.chunks_mut(chunk).zip(idx.chunks_mut(chunk)).enumerate().for_each(|(p, pair)| pool_plane(p, pair));
        }
        let am = Argmax { in_shape: [s[0], s[1], h, w], out_hw: (oh, ow), idx };
        // The cell was empty (checked at the top) and forward runs once per op.
        let _ = self.argmax.set(Rc::new(am));
        Tensor::from_vec(out, &[s[0], s[1], oh, ow])
    }
    // ∂out[o]/∂x[i] = 1 if i is the argmax of window o, else 0: the gradient is scattered to
    // the argmax positions (the argmax is piecewise constant, so it is saved, not differentiated).
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let argmax = Rc::clone(self.argmax.get().expect("forward saved the argmax"));
        vec![Some(grad_out.tape().apply(MaxPool2dScatterOp { argmax }, &[grad_out]))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::MaxPool2d { kernel: self.kernel, stride: self.stride })
    }
    // dout[o] = dx[argmax(o)]: the tangent gathered at the saved argmax (max_pool2d with the
    // argmax fixed).
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let t = tangents[0]?;
        let argmax = Rc::clone(self.argmax.get().expect("forward saved the argmax"));
        let gather = MaxPool2dOp { kernel: 0, stride: 0, argmax: OnceCell::from(argmax) };
        Some(t.tape().apply(gather, &[t]))
    }
}

/// The adjoint of max pooling: each output-gradient element is added at its window's argmax in
/// zeros of the input's shape (added, since overlapping windows can share a maximum).
struct MaxPool2dScatterOp {
    argmax: Rc<Argmax>,
}

impl<T: Float> Op<T> for MaxPool2dScatterOp {
    fn name(&self) -> &'static str {
        "max_pool2d_scatter"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let g = inputs[0];
        let am = &*self.argmax;
        let [n, c, h, w] = am.in_shape;
        let (oh, ow) = am.out_hw;
        if g.shape() != [n, c, oh, ow] {
            shape_panic(
                "max_pool2d_scatter",
                &format!("gradient of shape {:?} for a pooled output of shape {:?}", g.shape(), [n, c, oh, ow]),
            );
        }
        let src = g.data();
        let mut out = recycle::zeros(n * c * h * w);
        fill_chunks(&mut out, h * w, |p, plane| {
            let from = &src[p * oh * ow..(p + 1) * oh * ow];
            let idx = &am.idx[p * oh * ow..(p + 1) * oh * ow];
            from.iter().zip(idx).for_each(|(&v, &i)| plane[i] += v);
        });
        Tensor::from_vec(out, &[n, c, h, w])
    }
    // The scatter is linear: its adjoint gathers from the same argmax positions (max_pool2d
    // with the argmax fixed).
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let gather = MaxPool2dOp { kernel: 0, stride: 0, argmax: OnceCell::from(Rc::clone(&self.argmax)) };
        vec![Some(grad_out.tape().apply(gather, &[grad_out]))]
    }
    // Linear: the tangent is scattered the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let t = tangents[0]?;
        Some(t.tape().apply(MaxPool2dScatterOp { argmax: Rc::clone(&self.argmax) }, &[t]))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Max pooling over `kernel × kernel` windows slid by `stride` across an (N, C, H, W) input,
    /// without padding: (N, C, OH, OW) with `OH = (H − kernel) / stride + 1`. The gradient flows
    /// to each window's maximum only; on a tie the first maximum in row-major order takes it.
    /// PyTorch: `F.max_pool2d(x, kernel, stride)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec((1..=16).map(f64::from).collect(), &[1, 1, 4, 4]));
    /// assert_eq!(x.max_pool2d(2, 2).value().data(), &[6.0, 8.0, 14.0, 16.0]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 4-d, the kernel or stride is zero, or the kernel is larger than the
    /// image.
    #[track_caller]
    pub fn max_pool2d(self, kernel: usize, stride: usize) -> Var<'t, T> {
        let s = self.shape();
        check_rank4("max_pool2d", &s);
        Window::new("max_pool2d", &s, (s[2], s[3]), (kernel, kernel), stride, 0);
        self.tape().apply(MaxPool2dOp { kernel, stride, argmax: OnceCell::new() }, &[self])
    }
}

crate::simd::kernel! {
    /// One plane's max pooling (`k × k` windows, stride `st`, planes `w` wide, `ow` outputs per
    /// row): the maxima into `dst` and their positions into `arg`.
    fn pool_plane[T: Float](plane: &[T], dst: &mut [T], arg: &mut [usize], kernel: (usize, usize), widths: (usize, usize)) where [] {
        let ((k, st), (w, ow)) = (kernel, widths);
        for (r, (dst, arg)) in dst.chunks_mut(ow).zip(arg.chunks_mut(ow)).enumerate() {
            if k == 2 && st == 2 {
                pool_row_2x2(plane, r, w, dst, arg);
                continue;
            }
            for (q, (d, a)) in dst.iter_mut().zip(arg.iter_mut()).enumerate() {
                let base = r * st * w + q * st;
                let window_row = |i: usize| &plane[base + i * w..base + i * w + k];
                let (mut m, mut nan) = (plane[base], false);
                for i in 0..k {
                    for &v in window_row(i) {
                        m = if v > m { v } else { m };
                        nan |= is_nan(v);
                    }
                }
                if nan {
                    m = T::NAN;
                }
                let mut at = usize::MAX;
                for i in (0..k).rev() {
                    for (j, &v) in window_row(i).iter().enumerate().rev() {
                        let hit = (v == m) | is_nan(v);
                        at = if hit { base + i * w + j } else { at };
                    }
                }
                (*d, *a) = (m, at);
            }
        }
    }
}

/// The windows of one average pooling: along each axis, the input range each output averages
/// (clipped to the image) and the factor it is scaled by, so that output `(y, x)` is
/// `row_scale[y] · col_scale[x] · Σ x[rows[y], cols[x]]`.
struct AvgWindows {
    kind: AvgKind,
    /// The input's (H, W).
    in_hw: (usize, usize),
    /// Per output row, the input rows `start..end` it averages.
    rows: Vec<(usize, usize)>,
    /// Per output column, the input columns `start..end` it averages.
    cols: Vec<(usize, usize)>,
    /// Per output row, its share of the divisor (1/kernel, or 1/len for adaptive windows).
    row_scale: Vec<f64>,
    /// Per output column, its share of the divisor.
    col_scale: Vec<f64>,
}

/// The two average poolings: fixed windows (zeros of the padding counted, as PyTorch's default
/// `count_include_pad=True`) or adaptive ones (PyTorch's start and end index formula).
#[derive(Clone, Copy)]
enum AvgKind {
    Fixed { kernel: usize, stride: usize, padding: usize },
    Adaptive,
}

impl AvgWindows {
    /// `kernel × kernel` windows slid by `stride` over the image zero-padded by `padding`, or a
    /// panic naming the input shape and what is wrong.
    #[track_caller]
    fn fixed(shape: &[usize], kernel: usize, stride: usize, padding: usize) -> Self {
        check_rank4("avg_pool2d", shape);
        let win = Window::new("avg_pool2d", shape, (shape[2], shape[3]), (kernel, kernel), stride, padding);
        if 2 * padding > kernel {
            shape_panic(
                "avg_pool2d",
                &format!("padding {padding} must be at most half the kernel {kernel} (input {shape:?})"),
            );
        }
        // Window y covers padded rows y·stride .. y·stride + kernel, input rows shifted by padding.
        let axis = |len: usize, out: usize| -> Vec<(usize, usize)> {
            (0..out)
                .map(|y| {
                    let start = (y * stride).saturating_sub(padding);
                    let end = (y * stride + kernel).saturating_sub(padding).min(len);
                    (start.min(end), end)
                })
                .collect()
        };
        let scale = 1.0 / kernel as f64;
        AvgWindows {
            kind: AvgKind::Fixed { kernel, stride, padding },
            in_hw: (win.h, win.w),
            rows: axis(win.h, win.oh),
            cols: axis(win.w, win.ow),
            row_scale: vec![scale; win.oh],
            col_scale: vec![scale; win.ow],
        }
    }

    /// `output` windows per axis, window `i` of an axis of length `len` covering
    /// `⌊i·len/out⌋ .. ⌈(i+1)·len/out⌉`, or a panic naming the input shape and what is wrong.
    #[track_caller]
    fn adaptive(shape: &[usize], output: (usize, usize)) -> Self {
        check_rank4("adaptive_avg_pool2d", shape);
        let (h, w) = (shape[2], shape[3]);
        if output.0 == 0 || output.1 == 0 || h == 0 || w == 0 {
            shape_panic(
                "adaptive_avg_pool2d",
                &format!("output size {output:?} and the input's H and W must be positive (input {shape:?})"),
            );
        }
        let axis = |len: usize, out: usize| -> Vec<(usize, usize)> {
            (0..out).map(|i| (i * len / out, ((i + 1) * len).div_ceil(out))).collect()
        };
        let (rows, cols) = (axis(h, output.0), axis(w, output.1));
        let scale = |ranges: &[(usize, usize)]| ranges.iter().map(|&(a, b)| 1.0 / (b - a) as f64).collect();
        AvgWindows {
            kind: AvgKind::Adaptive,
            in_hw: (h, w),
            row_scale: scale(&rows),
            col_scale: scale(&cols),
            rows,
            cols,
        }
    }

    fn out_hw(&self) -> (usize, usize) {
        (self.rows.len(), self.cols.len())
    }
}

/// Average pooling (`adjoint` false), or its adjoint (`adjoint` true), which spreads each
/// output-gradient element, scaled, over its window in zeros of the input's shape. Both are
/// linear and each is the other's adjoint, so gradients of any order are these two ops.
struct AvgPool2dOp {
    windows: Rc<AvgWindows>,
    adjoint: bool,
}

impl<T: Float> Op<T> for AvgPool2dOp {
    fn name(&self) -> &'static str {
        match (self.adjoint, self.windows.kind) {
            (true, _) => "avg_pool2d_adjoint",
            (false, AvgKind::Fixed { .. }) => "avg_pool2d",
            (false, AvgKind::Adaptive) => "adaptive_avg_pool2d",
        }
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let x = inputs[0];
        let s = x.shape();
        let aw = &*self.windows;
        let ((h, w), (oh, ow)) = (aw.in_hw, aw.out_hw());
        let (from, to) = if self.adjoint { ((oh, ow), (h, w)) } else { ((h, w), (oh, ow)) };
        if s.len() != 4 || (s[2], s[3]) != from {
            let name = <Self as Op<T>>::name(self);
            shape_panic(name, &format!("expects an (N, C, {}, {}) input, got shape {s:?}", from.0, from.1));
        }
        let src = x.data();
        let mut out = recycle::zeros(s[0] * s[1] * to.0 * to.1);
        let (in_plane, out_plane) = (from.0 * from.1, to.0 * to.1);
        let adjoint = self.adjoint;
        fill_chunks(&mut out, out_plane, |p, dst| {
            let plane = &src[p * in_plane..(p + 1) * in_plane];
            for (y, &(r0, r1)) in aw.rows.iter().enumerate() {
                for (q, &(c0, c1)) in aw.cols.iter().enumerate() {
                    let scale = T::from_f64(aw.row_scale[y] * aw.col_scale[q]);
                    if adjoint {
                        let v = plane[y * ow + q] * scale;
                        (r0..r1).for_each(|r| dst[r * w + c0..r * w + c1].iter_mut().for_each(|d| *d += v));
                    } else {
                        let mut acc = T::ZERO;
                        (r0..r1).for_each(|r| plane[r * w + c0..r * w + c1].iter().for_each(|&v| acc += v));
                        dst[y * ow + q] = acc * scale;
                    }
                }
            }
        });
        Tensor::from_vec(out, &[s[0], s[1], to.0, to.1])
    }
    // Linear: out = A·x with A the (scaled) window sums, so ∂x = Aᵀ·G, the adjoint op, and the
    // adjoint's own gradient is A again.
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let op = AvgPool2dOp { windows: Rc::clone(&self.windows), adjoint: !self.adjoint };
        vec![Some(grad_out.tape().apply(op, &[grad_out]))]
    }
    fn attrs(&self) -> Option<OpAttrs> {
        match (self.adjoint, self.windows.kind) {
            (true, _) => None,
            (false, AvgKind::Fixed { kernel, stride, padding }) => Some(OpAttrs::AvgPool2d { kernel, stride, padding }),
            (false, AvgKind::Adaptive) => {
                Some(OpAttrs::AdaptiveAvgPool2d { input: self.windows.in_hw, output: self.windows.out_hw() })
            }
        }
    }
    // Linear: the tangent is pooled (or spread) the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let t = tangents[0]?;
        let op = AvgPool2dOp { windows: Rc::clone(&self.windows), adjoint: self.adjoint };
        Some(t.tape().apply(op, &[t]))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Average pooling over `kernel × kernel` windows slid by `stride` across an (N, C, H, W)
    /// input zero-padded by `padding`: (N, C, OH, OW) with `OH = (H + 2·padding − kernel) /
    /// stride + 1`, each output the sum of its window divided by `kernel²` (padding zeros count,
    /// as PyTorch's default `count_include_pad=True`). The gradient spreads each output's
    /// gradient over its window, divided by `kernel²`. PyTorch: `F.avg_pool2d(x, kernel, stride,
    /// padding)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec((1..=16).map(f64::from).collect(), &[1, 1, 4, 4]));
    /// assert_eq!(x.avg_pool2d(2, 2, 0).value().data(), &[3.5, 5.5, 11.5, 13.5]);
    /// // Padding 1: the corner window holds x[0, 0] = 1 and three zeros.
    /// assert_eq!(x.avg_pool2d(2, 2, 1).value().data()[0], 0.25);
    /// ```
    ///
    /// # Panics
    /// If the input is not 4-d, the kernel or stride is zero, the padding is more than half the
    /// kernel, or the kernel is larger than the padded image.
    #[track_caller]
    pub fn avg_pool2d(self, kernel: usize, stride: usize, padding: usize) -> Var<'t, T> {
        let windows = Rc::new(AvgWindows::fixed(&self.shape(), kernel, stride, padding));
        self.tape().apply(AvgPool2dOp { windows, adjoint: false }, &[self])
    }

    /// Adaptive average pooling of an (N, C, H, W) input to (N, C, OH, OW) for `output = (OH,
    /// OW)`: output row `i` averages input rows `⌊i·H/OH⌋ .. ⌈(i+1)·H/OH⌉` (and likewise for
    /// columns), so windows may overlap or differ in size when OH does not divide H. The
    /// gradient spreads each output's gradient over its window, divided by the window's size.
    /// `(1, 1)` is global average pooling. PyTorch: `F.adaptive_avg_pool2d(x, output)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec((1..=6).map(f64::from).collect(), &[1, 1, 2, 3]));
    /// // Columns 0..2 and 1..3 of both rows: (1 + 2 + 4 + 5) / 4 and (2 + 3 + 5 + 6) / 4.
    /// assert_eq!(x.adaptive_avg_pool2d((1, 2)).value().data(), &[3.0, 4.0]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 4-d, or the output size or the input's H or W is zero.
    #[track_caller]
    pub fn adaptive_avg_pool2d(self, output: (usize, usize)) -> Var<'t, T> {
        let windows = Rc::new(AvgWindows::adaptive(&self.shape(), output));
        self.tape().apply(AvgPool2dOp { windows, adjoint: false }, &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{filled, gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    /// Max pooling by definition, for reference.
    fn naive_pool(x: &Tensor<f64>, k: usize, st: usize) -> Tensor<f64> {
        let s = x.shape();
        let (oh, ow) = ((s[2] - k) / st + 1, (s[3] - k) / st + 1);
        let mut out = vec![];
        for p in 0..s[0] * s[1] {
            for r in 0..oh {
                for q in 0..ow {
                    let window = (0..k).flat_map(|i| (0..k).map(move |j| (i, j)));
                    let at = |(i, j): (usize, usize)| x.data()[(p * s[2] + r * st + i) * s[3] + q * st + j];
                    out.push(window.map(at).fold(f64::NEG_INFINITY, f64::max));
                }
            }
        }
        Tensor::from_vec(out, &[s[0], s[1], oh, ow])
    }

    #[test]
    fn max_pool2d_matches_direct_pooling() {
        for (k, st) in [(2, 2), (2, 1), (3, 2), (3, 3), (1, 1)] {
            let x = filled(&[2, 3, 7, 8], k as u64 + st as u64);
            let tape = Tape::<f64>::new();
            assert_eq!(tape.var(x.clone()).max_pool2d(k, st).value().to_vec(), naive_pool(&x, k, st).to_vec());
        }
    }

    #[test]
    fn max_pool2d_grad_goes_to_first_max() {
        let tape = Tape::<f64>::new();
        // One 2×3 plane, 2×2 windows at stride 1: windows [[1, 5], [5, 2]] (tie: the first 5,
        // at (0, 1), wins) and [[5, 3], [2, 0]] (max 5 at (0, 1) again).
        let x = tape.var(Tensor::from_vec(vec![1.0, 5.0, 3.0, 5.0, 2.0, 0.0], &[1, 1, 2, 3]));
        let y = x.max_pool2d(2, 1);
        assert_eq!(y.value().data(), &[5.0, 5.0]);
        // Both windows route their gradient (weights 1 and 2) to x[0, 1]: 1 + 2 = 3.
        let w = tape.constant(Tensor::from_vec(vec![1.0, 2.0], &[1, 1, 1, 2]));
        let grads = (y * w).sum().backward();
        assert_eq!(grads[x].data(), &[0.0, 3.0, 0.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn max_pool2d_propagates_nan() {
        let tape = Tape::<f32>::new();
        // NaN first, second (before larger numbers) or last in its window: the maximum is NaN.
        let nan = f32::NAN;
        let x =
            tape.var(Tensor::from_vec(vec![nan, 1.0, 1.0, nan, 3.0, 4.0, 2.0, 3.0, 5.0, 6.0, 7.0, nan], &[1, 1, 2, 6]));
        let y = x.max_pool2d(2, 2).value();
        assert!(y.data().iter().all(|v| v.is_nan()), "{y:?}");
    }

    #[test]
    fn max_pool2d_grad_matches_finite_diff() {
        gradcheck(|v| v[0].max_pool2d(2, 2).exp().mean(), &[filled(&[2, 2, 4, 5], 13)]);
        gradcheck(|v| v[0].max_pool2d(3, 1).exp().mean(), &[filled(&[1, 2, 4, 4], 14)]);
        // Piecewise linear: the second derivative is that of the head, routed through the
        // argmax by scatter and gather.
        gradgradcheck(|v| v[0].max_pool2d(2, 1).exp().mean(), &[filled(&[2, 1, 3, 4], 15)]);
        gradgradcheck(|v| (v[0].max_pool2d(2, 2) * v[0].max_pool2d(2, 2)).mean(), &[filled(&[1, 2, 4, 4], 16)]);
    }

    #[test]
    fn big_batches_match_direct_pooling() {
        // Past PAR_THRESHOLD the planes are split across threads; f32, as in training.
        let x = filled(&[16, 8, 24, 24], 17);
        let tape = Tape::<f32>::new();
        let xv = tape.var(x.cast::<f32>());
        let y = xv.max_pool2d(2, 2);
        assert_eq!(y.value().to_vec(), naive_pool(&x, 2, 2).cast::<f32>().to_vec());
        let g = y.sum().backward();
        // Every window sends exactly one 1 to its maximum.
        assert_eq!(g[xv].data().iter().sum::<f32>(), (16 * 8 * 12 * 12) as f32);
    }

    #[test]
    #[should_panic(expected = "max_pool2d: kernel 3×3 larger than the padded 2×4 image of input [1, 1, 2, 4]")]
    fn max_pool2d_kernel_too_big_names_shape() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[1, 1, 2, 4])).max_pool2d(3, 1);
    }

    /// Average pooling by definition (count_include_pad), for reference.
    fn naive_avg(x: &Tensor<f64>, k: usize, st: usize, pad: usize) -> Tensor<f64> {
        let s = x.shape();
        let (oh, ow) = ((s[2] + 2 * pad - k) / st + 1, (s[3] + 2 * pad - k) / st + 1);
        let mut out = vec![];
        for p in 0..s[0] * s[1] {
            for r in 0..oh {
                for q in 0..ow {
                    let mut acc = 0.0;
                    for i in 0..k {
                        for j in 0..k {
                            let (y, z) = ((r * st + i) as isize - pad as isize, (q * st + j) as isize - pad as isize);
                            if y >= 0 && z >= 0 && (y as usize) < s[2] && (z as usize) < s[3] {
                                acc += x.data()[(p * s[2] + y as usize) * s[3] + z as usize];
                            }
                        }
                    }
                    out.push(acc / (k * k) as f64);
                }
            }
        }
        Tensor::from_vec(out, &[s[0], s[1], oh, ow])
    }

    #[test]
    fn avg_pool2d_matches_direct_pooling() {
        for (k, st, pad) in [(2, 2, 0), (2, 1, 1), (3, 2, 1), (3, 3, 0), (1, 1, 0), (4, 3, 2)] {
            let x = filled(&[2, 3, 7, 8], (k + st + pad) as u64);
            let tape = Tape::<f64>::new();
            let y = tape.var(x.clone()).avg_pool2d(k, st, pad);
            crate::check::assert_close(&y.value(), &naive_avg(&x, k, st, pad), 1e-12, 1e-12);
        }
    }

    #[test]
    fn adaptive_avg_pool2d_of_divisible_sizes_is_avg_pool2d() {
        let tape = Tape::<f64>::new();
        let x = tape.var(filled(&[2, 3, 6, 8], 40));
        let a = x.adaptive_avg_pool2d((3, 4));
        crate::check::assert_close(&a.value(), &x.avg_pool2d(2, 2, 0).value(), 1e-12, 1e-12);
        // (1, 1): the mean of each plane.
        let g = x.adaptive_avg_pool2d((1, 1));
        crate::check::assert_close(&g.value(), &x.mean_axes(&[2, 3], true).value(), 1e-12, 1e-12);
    }

    #[test]
    fn avg_pool2d_grads_match_hand_values() {
        let tape = Tape::<f64>::new();
        // A 3×3 plane, 2×2 windows at stride 1: the centre is under all four windows, each
        // dividing by 4, so ∂Σout/∂x[1, 1] = 4/4 = 1; a corner is under one: 1/4.
        let x = tape.var(filled(&[1, 1, 3, 3], 41));
        let g = x.avg_pool2d(2, 1, 0).sum().backward();
        assert_eq!(g[x].data(), &[0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25]);
        // Adaptive 3 → 2 rows: windows 0..2 and 1..3 (each of 2 rows, divided by 2); the middle
        // row is in both: ∂Σout/∂x = 1/2 + 1/2 = 1 there, 1/2 on the edges (one column, W = 1).
        let y = tape.var(filled(&[1, 1, 3, 1], 42));
        let g = y.adaptive_avg_pool2d((2, 1)).sum().backward();
        assert_eq!(g[y].data(), &[0.5, 1.0, 0.5]);
    }

    #[test]
    fn avg_pool2d_grad_matches_finite_diff() {
        gradcheck(|v| v[0].avg_pool2d(3, 2, 1).exp().mean(), &[filled(&[2, 2, 5, 4], 43)]);
        gradcheck(|v| v[0].adaptive_avg_pool2d((3, 2)).exp().mean(), &[filled(&[1, 2, 5, 7], 44)]);
        gradgradcheck(|v| v[0].avg_pool2d(2, 1, 1).exp().mean(), &[filled(&[1, 2, 3, 3], 45)]);
        gradgradcheck(|v| v[0].adaptive_avg_pool2d((2, 2)).exp().mean(), &[filled(&[1, 1, 3, 5], 46)]);
    }

    #[test]
    #[should_panic(expected = "avg_pool2d: padding 2 must be at most half the kernel 3 (input [1, 1, 5, 5])")]
    fn avg_pool2d_padding_too_large_is_named() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[1, 1, 5, 5])).avg_pool2d(3, 1, 2);
    }

    #[test]
    #[should_panic(expected = "adaptive_avg_pool2d: output size (0, 2) and the input's H and W must be positive")]
    fn adaptive_avg_pool2d_empty_output_is_named() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[1, 1, 5, 5])).adaptive_avg_pool2d((0, 2));
    }
}

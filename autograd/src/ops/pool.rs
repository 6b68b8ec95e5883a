//! Max pooling over NCHW images, with its adjoint scatter (and the scatter's adjoint gather),
//! so that gradients of any order flow through the saved argmax.

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
}

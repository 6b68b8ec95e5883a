//! Convolution and pooling over NCHW images: im2col and its adjoint col2im, conv2d built from
//! them and matmul, and max_pool2d with its adjoint scatter.
//!
//! `conv2d(x, w)` unfolds every receptive field of `x` into a column (`im2col`), so that the
//! convolution is one matrix product per image, `w.reshape(O, C·kh·kw) · cols`, which `gemm`
//! runs fast. `im2col` and `col2im` are each other's adjoints, so each is the other's backward and
//! second derivatives come for free.

use std::cell::OnceCell;
use std::rc::Rc;

use rayon::prelude::*;

use super::shape::fill_chunks;
use crate::tape::shape_panic;
use crate::{Float, Op, Tensor, Var, PAR_THRESHOLD};

/// The geometry of a sliding window over an `h × w` image: kernel, stride, zero padding, and the
/// resulting output size.
#[derive(Clone, Copy, Debug)]
struct Window {
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
}

impl Window {
    /// The window over an `h × w` image, or a panic naming `op` and `shape` if it does not fit.
    #[track_caller]
    fn new(
        op: &str,
        shape: &[usize],
        (h, w): (usize, usize),
        kernel: (usize, usize),
        stride: usize,
        padding: usize,
    ) -> Self {
        let (kh, kw) = kernel;
        if stride == 0 || kh == 0 || kw == 0 {
            shape_panic(op, &format!("kernel {kh}×{kw} and stride {stride} must be positive (input {shape:?})"));
        }
        if kh > h + 2 * padding || kw > w + 2 * padding {
            shape_panic(
                op,
                &format!(
                    "kernel {kh}×{kw} larger than the padded {}×{} image of input {shape:?}",
                    h + 2 * padding,
                    w + 2 * padding
                ),
            );
        }
        Window {
            kh,
            kw,
            stride,
            padding,
            h,
            w,
            oh: (h + 2 * padding - kh) / stride + 1,
            ow: (w + 2 * padding - kw) / stride + 1,
        }
    }

    /// The output columns `lo..hi` whose input column `ow·stride + j − padding` lies inside the
    /// image, for kernel column `j`.
    fn valid_cols(&self, j: usize) -> (usize, usize) {
        let s = self.stride;
        let lo = self.padding.saturating_sub(j).div_ceil(s);
        let hi = (self.w + self.padding).saturating_sub(j).div_ceil(s).min(self.ow);
        (lo, hi.max(lo))
    }

    /// Calls `f(row, ih, oh, iw0, ow_lo, ow_hi)` for every kernel row of the columns matrix and
    /// every output row `oh` whose input row `ih` lies inside the image: output columns
    /// `ow_lo..ow_hi` read input columns `iw0 + (ow − ow_lo)·stride`.
    fn for_each_segment(&self, channels: usize, mut f: impl FnMut(usize, usize, usize, usize, usize, usize)) {
        for c in 0..channels {
            for i in 0..self.kh {
                for j in 0..self.kw {
                    let row = (c * self.kh + i) * self.kw + j;
                    let (lo, hi) = self.valid_cols(j);
                    if lo == hi {
                        continue;
                    }
                    let iw0 = lo * self.stride + j - self.padding;
                    for oh in 0..self.oh {
                        let Some(ih) = (oh * self.stride + i).checked_sub(self.padding) else {
                            continue;
                        };
                        if ih < self.h {
                            f(row, c * self.h + ih, oh, iw0, lo, hi);
                        }
                    }
                }
            }
        }
    }
}

#[track_caller]
fn check_rank4(op: &str, shape: &[usize]) {
    if shape.len() != 4 {
        shape_panic(op, &format!("expects an (N, C, H, W) input, got shape {shape:?}"));
    }
}

struct Im2ColOp {
    kernel: (usize, usize),
    stride: usize,
    padding: usize,
}

impl<T: Float> Op<T> for Im2ColOp {
    fn name(&self) -> &'static str {
        "im2col"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let x = inputs[0];
        let s = x.shape();
        check_rank4("im2col", s);
        let (n, c) = (s[0], s[1]);
        let win = Window::new("im2col", s, (s[2], s[3]), self.kernel, self.stride, self.padding);
        let (rows, cols) = (c * win.kh * win.kw, win.oh * win.ow);
        let plane = c * win.h * win.w;
        let src = x.data();
        // Padding positions stay zero; every in-image position is copied, one image per task.
        let mut out = vec![T::ZERO; n * rows * cols];
        fill_chunks(&mut out, rows * cols, |b, dst| {
            let img = &src[b * plane..(b + 1) * plane];
            win.for_each_segment(c, |row, ih, oh, iw0, lo, hi| {
                let d = &mut dst[row * cols + oh * win.ow + lo..row * cols + oh * win.ow + hi];
                let o = ih * win.w + iw0;
                if win.stride == 1 {
                    d.copy_from_slice(&img[o..o + (hi - lo)]);
                } else {
                    d.iter_mut().enumerate().for_each(|(k, v)| *v = img[o + k * win.stride]);
                }
            });
        });
        Tensor::from_vec(out, &[n, rows, cols])
    }
    // im2col copies each input element into several columns: its adjoint col2im sums them back.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let s = inputs[0].shape();
        vec![Some(grad_out.col2im((s[2], s[3]), self.kernel, self.stride, self.padding))]
    }
}

struct Col2ImOp {
    size: (usize, usize),
    kernel: (usize, usize),
    stride: usize,
    padding: usize,
}

impl<T: Float> Op<T> for Col2ImOp {
    fn name(&self) -> &'static str {
        "col2im"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let cols_t = inputs[0];
        let s = cols_t.shape();
        let win = Window::new("col2im", s, self.size, self.kernel, self.stride, self.padding);
        let k = win.kh * win.kw;
        let cols = win.oh * win.ow;
        if s.len() != 3 || s[1] % k != 0 || s[2] != cols {
            shape_panic(
                "col2im",
                &format!(
                    "expects (N, C·{}·{}, {}) columns for a {}×{} image, got shape {s:?}",
                    win.kh, win.kw, cols, win.h, win.w
                ),
            );
        }
        let (n, c) = (s[0], s[1] / k);
        let rows = s[1];
        let src = cols_t.data();
        let mut out = vec![T::ZERO; n * c * win.h * win.w];
        fill_chunks(&mut out, c * win.h * win.w, |b, img| {
            let col = &src[b * rows * cols..(b + 1) * rows * cols];
            win.for_each_segment(c, |row, ih, oh, iw0, lo, hi| {
                let from = &col[row * cols + oh * win.ow + lo..row * cols + oh * win.ow + hi];
                let o = ih * win.w + iw0;
                if win.stride == 1 {
                    img[o..o + (hi - lo)].iter_mut().zip(from).for_each(|(v, &g)| *v += g);
                } else {
                    from.iter().enumerate().for_each(|(k, &g)| img[o + k * win.stride] += g);
                }
            });
        });
        Tensor::from_vec(out, &[n, c, win.h, win.w])
    }
    // col2im sums columns into the image (linear): its adjoint im2col reads them back out.
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out.im2col(self.kernel, self.stride, self.padding))]
    }
}

/// Where each max-pool output came from: a flat index into its input (N, C) plane, per output
/// element, with the input shape it indexes.
struct Argmax {
    in_shape: [usize; 4],
    out_hw: (usize, usize),
    idx: Vec<usize>,
}

/// Whether `x` is NaN, without `x != x` (which reads like a typo).
fn is_nan<T: Float>(x: T) -> bool {
    x.partial_cmp(&x).is_none()
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
        let mut out = vec![T::ZERO; n * c * oh * ow];
        fill_chunks(&mut out, oh * ow, |p, dst| {
            let plane = &src[p * h * w..(p + 1) * h * w];
            let idx = &am.idx[p * oh * ow..(p + 1) * oh * ow];
            dst.iter_mut().zip(idx).for_each(|(d, &i)| *d = plane[i]);
        });
        Tensor::from_vec(out, &[n, c, oh, ow])
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
        let mut out = vec![T::ZERO; planes * oh * ow];
        let mut idx = vec![0usize; planes * oh * ow];
        let pool_plane = |p: usize, (dst, arg): (&mut [T], &mut [usize])| {
            let plane = &src[p * h * w..(p + 1) * h * w];
            for r in 0..oh {
                for q in 0..ow {
                    let first = r * st * w + q * st;
                    let (mut best, mut at) = (plane[first], first);
                    for i in 0..k {
                        for j in 0..k {
                            let o = (r * st + i) * w + q * st + j;
                            let v = plane[o];
                            // Strictly greater: the first maximum in row-major order wins a tie.
                            // A NaN wins over any number, so it propagates.
                            if v > best || (is_nan(v) && !is_nan(best)) {
                                (best, at) = (v, o);
                            }
                        }
                    }
                    dst[r * ow + q] = best;
                    arg[r * ow + q] = at;
                }
            }
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
        let mut out = vec![T::ZERO; n * c * h * w];
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
}

impl<'t, T: Float> Var<'t, T> {
    /// Unfolds every `kh × kw` window of an (N, C, H, W) image, zero-padded by `padding` and
    /// slid by `stride`, into a column: the result is (N, C·kh·kw, OH·OW), row `(c·kh + i)·kw + j`
    /// holding `x[n, c, oh·stride + i − padding, ow·stride + j − padding]` at column `oh·OW + ow`.
    /// The gradient sums the columns back ([`Var::col2im`]). PyTorch: `F.unfold(x, kernel,
    /// padding=padding, stride=stride)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec((1..=9).map(f64::from).collect(), &[1, 1, 3, 3]));
    /// let cols = x.im2col((2, 2), 1, 0); // (1, 4, 4): one row per kernel position
    /// assert_eq!(&cols.value().data()[..4], &[1.0, 2.0, 4.0, 5.0]);
    /// ```
    ///
    /// # Panics
    /// If the input is not 4-d, the stride or kernel is zero, or the kernel is larger than the
    /// padded image.
    #[track_caller]
    pub fn im2col(self, kernel: (usize, usize), stride: usize, padding: usize) -> Var<'t, T> {
        let s = self.shape();
        check_rank4("im2col", &s);
        Window::new("im2col", &s, (s[2], s[3]), kernel, stride, padding);
        self.tape().apply(Im2ColOp { kernel, stride, padding }, &[self])
    }

    /// Folds (N, C·kh·kw, OH·OW) columns back into an (N, C, H, W) image of size `size`,
    /// summing where windows overlap: the adjoint of [`Var::im2col`], whose gradient unfolds it
    /// again. PyTorch: `F.fold(cols, size, kernel, padding=padding, stride=stride)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let cols = tape.var(Tensor::ones(&[1, 4, 4]));
    /// // Each pixel of a 3×3 image is counted once per 2×2 window that covers it.
    /// let counts = cols.col2im((3, 3), (2, 2), 1, 0);
    /// assert_eq!(counts.value().data(), &[1.0, 2.0, 1.0, 2.0, 4.0, 2.0, 1.0, 2.0, 1.0]);
    /// ```
    ///
    /// # Panics
    /// If the stride or kernel is zero, the kernel is larger than the padded image, or the
    /// columns' shape does not match the window.
    #[track_caller]
    pub fn col2im(self, size: (usize, usize), kernel: (usize, usize), stride: usize, padding: usize) -> Var<'t, T> {
        let s = self.shape();
        let win = Window::new("col2im", &s, size, kernel, stride, padding);
        let k = win.kh * win.kw;
        if s.len() != 3 || s[1] % k != 0 || s[2] != win.oh * win.ow {
            shape_panic(
                "col2im",
                &format!(
                    "expects (N, C·{}·{}, {}) columns for a {}×{} image, got shape {s:?}",
                    win.kh,
                    win.kw,
                    win.oh * win.ow,
                    win.h,
                    win.w
                ),
            );
        }
        self.tape().apply(Col2ImOp { size, kernel, stride, padding }, &[self])
    }

    /// 2-d cross-correlation (what deep learning calls convolution) of an (N, C, H, W) input
    /// with an (O, C, kh, kw) weight, zero-padded by `padding` on every side and slid by `stride`:
    /// `out[n, o, y, x] = Σ_{c,i,j} w[o, c, i, j] · x[n, c, y·stride + i − padding,
    /// x·stride + j − padding]`, of shape (N, O, OH, OW) with `OH = (H + 2·padding − kh) /
    /// stride + 1`. Built as `w.reshape(O, C·kh·kw) · x.im2col(..)`, so the gradients are those of
    /// matmul and im2col. No bias: add one of shape (O, 1, 1) by broadcasting. PyTorch:
    /// `F.conv2d(x, w, stride=stride, padding=padding)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec((1..=9).map(f64::from).collect(), &[1, 1, 3, 3]));
    /// let w = tape.var(Tensor::from_vec(vec![1.0, 0.0, 0.0, -1.0], &[1, 1, 2, 2]));
    /// // Each output is x[y, x] − x[y + 1, x + 1] = −4.
    /// assert_eq!(x.conv2d(w, 1, 0).value().data(), &[-4.0, -4.0, -4.0, -4.0]);
    /// ```
    ///
    /// # Panics
    /// If the input or weight is not 4-d, their channels differ, the stride is zero, or the
    /// kernel is larger than the padded image.
    #[track_caller]
    pub fn conv2d(self, weight: Var<'t, T>, stride: usize, padding: usize) -> Var<'t, T> {
        let (xs, ws) = (self.shape(), weight.shape());
        if xs.len() != 4 || ws.len() != 4 || xs[1] != ws[1] {
            shape_panic(
                "conv2d",
                &format!("expects input (N, C, H, W) and weight (O, C, kh, kw): input {xs:?}, weight {ws:?}"),
            );
        }
        let (o, c, kh, kw) = (ws[0], ws[1], ws[2], ws[3]);
        let win = Window::new("conv2d", &xs, (xs[2], xs[3]), (kh, kw), stride, padding);
        let cols = self.im2col((kh, kw), stride, padding); // (N, C·kh·kw, OH·OW)
        let out = weight.reshape(&[o, c * kh * kw]).matmul(cols); // (N, O, OH·OW)
        out.reshape(&[xs[0], o, win.oh, win.ow])
    }

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

#[cfg(test)]
mod tests {
    use crate::check::{assert_close, gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    /// Deterministic, pairwise distinct values in about [-1, 1] for a shape (no pooling ties).
    fn filled(shape: &[usize], seed: u64) -> Tensor<f64> {
        let n: usize = shape.iter().product();
        let data = (0..n).map(|i| (((i as u64 * 7919 + seed * 104_729) % 997) as f64) / 498.0 - 1.0).collect();
        Tensor::from_vec(data, shape)
    }

    /// Direct convolution by definition, for reference.
    fn naive_conv(x: &Tensor<f64>, w: &Tensor<f64>, stride: usize, pad: usize) -> Tensor<f64> {
        let [n, c, h, wd] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
        let [o, _, kh, kw] = [w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]];
        let (oh, ow) = ((h + 2 * pad - kh) / stride + 1, (wd + 2 * pad - kw) / stride + 1);
        let mut out = vec![];
        for b in 0..n {
            for f in 0..o {
                for y in 0..oh {
                    for z in 0..ow {
                        let mut acc = 0.0;
                        for ch in 0..c {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let (iy, ix) = (
                                        (y * stride + i) as isize - pad as isize,
                                        (z * stride + j) as isize - pad as isize,
                                    );
                                    if iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < wd {
                                        acc += w.at(&[f, ch, i, j]) * x.at(&[b, ch, iy as usize, ix as usize]);
                                    }
                                }
                            }
                        }
                        out.push(acc);
                    }
                }
            }
        }
        Tensor::from_vec(out, &[n, o, oh, ow])
    }

    #[test]
    fn conv2d_grads_match_hand_values() {
        let tape = Tape::<f64>::new();
        // x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], w = [[1, 0], [0, −1]].
        let x = tape.var(Tensor::from_vec((1..=9).map(f64::from).collect(), &[1, 1, 3, 3]));
        let w = tape.var(Tensor::from_vec(vec![1.0, 0.0, 0.0, -1.0], &[1, 1, 2, 2]));
        let grads = x.conv2d(w, 1, 0).sum().backward();
        // ∂Σout/∂w[i, j] = Σ of the 2×2 block of x at offset (i, j): 1+2+4+5 = 12, 2+3+5+6 = 16,
        // 4+5+7+8 = 24, 5+6+8+9 = 28.
        assert_eq!(grads[w].data(), &[12.0, 16.0, 24.0, 28.0]);
        // ∂Σout/∂x[p, q] = Σ of w over the windows covering (p, q): the corner (0, 0) is only under
        // w[0, 0] = 1, the centre under all four (1 + 0 + 0 − 1 = 0), (2, 2) under w[1, 1] = −1.
        assert_eq!(grads[x].data(), &[1.0, 1.0, 0.0, 1.0, 0.0, -1.0, 0.0, -1.0, -1.0]);
    }

    #[test]
    fn conv2d_matches_direct_convolution() {
        for (stride, pad) in [(1, 0), (1, 1), (2, 1), (2, 0), (3, 2)] {
            let x = filled(&[2, 3, 7, 6], 1);
            let w = filled(&[4, 3, 3, 2], 2);
            let tape = Tape::<f64>::new();
            let y = tape.var(x.clone()).conv2d(tape.var(w.clone()), stride, pad);
            assert_close(&y.value(), &naive_conv(&x, &w, stride, pad), 1e-12, 1e-12);
        }
    }

    #[test]
    fn im2col_and_col2im_are_adjoint() {
        // ⟨im2col(x), y⟩ = ⟨x, col2im(y)⟩ for every geometry, including strides that skip pixels.
        for (k, stride, pad) in [((2, 3), 1, 0), ((3, 3), 2, 1), ((1, 2), 3, 2)] {
            let tape = Tape::<f64>::new();
            let x = tape.var(filled(&[2, 2, 5, 6], 3));
            let cols = x.im2col(k, stride, pad);
            let y = tape.var(filled(&cols.shape(), 4));
            let lhs = (cols * y).sum().item();
            let rhs = (x * y.col2im((5, 6), k, stride, pad)).sum().item();
            assert!((lhs - rhs).abs() < 1e-12, "{lhs} vs {rhs}");
        }
    }

    #[test]
    fn conv2d_grad_matches_finite_diff() {
        for (stride, pad) in [(1, 0), (2, 1)] {
            gradcheck(
                |v| v[0].conv2d(v[1], stride, pad).exp().mean(),
                &[filled(&[2, 2, 4, 5], 5), filled(&[3, 2, 2, 3], 6)],
            );
        }
        gradcheck(|v| v[0].im2col((2, 2), 2, 1).exp().mean(), &[filled(&[1, 2, 3, 4], 7)]);
        gradcheck(|v| v[0].col2im((3, 4), (2, 2), 1, 1).exp().mean(), &[filled(&[1, 8, 20], 8)]);
    }

    #[test]
    fn conv2d_second_order_matches_finite_diff() {
        gradgradcheck(|v| v[0].conv2d(v[1], 2, 1).exp().mean(), &[filled(&[2, 2, 4, 3], 9), filled(&[2, 2, 2, 2], 10)]);
        gradgradcheck(|v| v[0].im2col((2, 1), 1, 1).exp().mean(), &[filled(&[1, 1, 3, 3], 11)]);
        gradgradcheck(|v| v[0].col2im((3, 3), (2, 2), 1, 0).exp().mean(), &[filled(&[1, 4, 4], 12)]);
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
        let x = tape.var(Tensor::from_vec(vec![1.0, f32::NAN, 3.0, 2.0], &[1, 1, 2, 2]));
        assert!(x.max_pool2d(2, 2).item().is_nan());
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
    fn big_images_match_direct_convolution() {
        // Past PAR_THRESHOLD the batch is split across threads; f32, as in training.
        let (x, w) = (filled(&[8, 3, 28, 28], 17), filled(&[4, 3, 3, 3], 18));
        let tape = Tape::<f32>::new();
        let xv = tape.var(x.cast::<f32>());
        let y = xv.conv2d(tape.var(w.cast::<f32>()), 1, 1);
        assert_close(&y.value(), &naive_conv(&x, &w, 1, 1).cast::<f32>(), 1e-4, 1e-4);
        let p = xv.max_pool2d(2, 2).value();
        assert_eq!(
            p.at(&[7, 2, 13, 13]),
            xv.value()
                .at(&[7, 2, 26, 26])
                .max(xv.value().at(&[7, 2, 26, 27]))
                .max(xv.value().at(&[7, 2, 27, 26]))
                .max(xv.value().at(&[7, 2, 27, 27]))
        );
        let g = y.sum().backward();
        assert_eq!(g[xv].shape(), &[8, 3, 28, 28]);
    }

    #[test]
    #[should_panic(
        expected = "conv2d: expects input (N, C, H, W) and weight (O, C, kh, kw): input [1, 2, 5, 5], weight [4, 3, 3, 3]"
    )]
    fn conv2d_channel_mismatch_names_shapes() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[1, 2, 5, 5])).conv2d(tape.var(Tensor::zeros(&[4, 3, 3, 3])), 1, 0);
    }

    #[test]
    #[should_panic(expected = "max_pool2d: kernel 3×3 larger than the padded 2×4 image of input [1, 1, 2, 4]")]
    fn max_pool2d_kernel_too_big_names_shape() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[1, 1, 2, 4])).max_pool2d(3, 1);
    }
}

//! Convolution over NCHW images: im2col and its adjoint col2im, and conv2d.
//!
//! `conv2d(x, w)` is, per image, one matrix product `w.reshape(O, C·kh·kw) · cols` of the weight
//! and the image's receptive fields unfolded into columns (im2col). The op is fused: each thread
//! takes a contiguous group of the batch and unfolds one image at a time into a buffer of its
//! own, which stays in cache for the gemm that reads it, instead of unfolding the whole batch
//! into memory first; its backward recomputes the columns the same way for the weight's
//! gradient, and folds (col2im) the columns' gradient into the input's. The differentiable
//! backward is built from `im2col`, `col2im` and `matmul`, which are each other's adjoints, so
//! second derivatives come for free.
//!
//! 3×3, stride-1 kernels over at least 32 input channels (`winograd::MIN_CHANNELS`) take Winograd's
//! F(2×2, 3×3) instead, forward and fused backward (see the `winograd` module); the
//! differentiable backward is the same composition as above.

use gemm::Parallelism;
use rayon::prelude::*;

use super::shape::fill_chunks;
use crate::kernels::gemm::{batch_split, Operand};
use crate::kernels::mixed::{product_accumulate, product_into, product_overwrite};
use crate::kernels::uninit;
use crate::kernels::winograd;
use crate::op::TensorGrads;
use crate::precision::Precision;
use crate::recycle::{self, Buffer};
use crate::tape::{bilinear_tangent, shape_panic};
use crate::trace::OpAttrs;
use crate::{Float, Op, Tensor, Var};

/// The geometry of a sliding window over an `h × w` image: kernel, stride, zero padding, and the
/// resulting output size.
#[derive(Clone, Copy, Debug)]
pub(super) struct Window {
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
}

impl Window {
    /// The window over an `h × w` image, or a panic naming `op` and `shape` if it does not fit.
    #[track_caller]
    pub(super) fn new(
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

    /// The output rows `lo..hi` whose input row `oh·stride + i − padding` lies inside the
    /// image, for kernel row `i`.
    fn valid_rows(&self, i: usize) -> (usize, usize) {
        let s = self.stride;
        let lo = self.padding.saturating_sub(i).div_ceil(s);
        let hi = (self.h + self.padding).saturating_sub(i).div_ceil(s).min(self.oh);
        (lo, hi.max(lo))
    }

    /// Calls `f(row, run)` for every kernel position `(c, i, j)` that reads any pixel: `row` is
    /// its row `(c·kh + i)·kw + j` of the columns matrix, and `run` says which output rows and
    /// columns read inside the image and where in the image they start (output row `oh.start
    /// + t` reads input row `t·stride` after `first`, from column `iw0` on, every
    /// `stride`-th).
    fn for_each_run(&self, channels: usize, mut f: impl FnMut(usize, Run)) {
        for i in 0..self.kh {
            let (oh_lo, oh_hi) = self.valid_rows(i);
            for j in 0..self.kw {
                let (lo, hi) = self.valid_cols(j);
                if lo == hi || oh_lo == oh_hi {
                    continue;
                }
                let iw0 = lo * self.stride + j - self.padding;
                let ih0 = oh_lo * self.stride + i - self.padding;
                for c in 0..channels {
                    let row = (c * self.kh + i) * self.kw + j;
                    let first = c * self.h * self.w + ih0 * self.w;
                    f(row, Run { oh: oh_lo..oh_hi, cols: lo..hi, first, iw0 });
                }
            }
        }
    }

    /// Unfolds one image of `channels` planes into `dst`, its `(C·kh·kw) × (OH·OW)` columns
    /// matrix. Only in-image positions are written: padding positions keep what `dst` held,
    /// so a buffer zeroed once serves every image of the same geometry.
    fn unfold<T: Float>(&self, channels: usize, img: &[T], dst: &mut [T]) {
        let (cols, ow, s, row_step) = (self.oh * self.ow, self.ow, self.stride, self.stride * self.w);
        self.for_each_run(channels, |row, run| {
            let out_rows = dst[row * cols..(row + 1) * cols].chunks_exact_mut(ow).skip(run.oh.start);
            let in_rows = img[run.first..].chunks(row_step);
            for (out, input) in out_rows.take(run.oh.len()).zip(in_rows) {
                let out = &mut out[run.cols.clone()];
                if s == 1 {
                    // A call to memmove per row, ~10 % of the CNN's step; yet an inline copy in
                    // blocks of 8 measured slower twice (2026-11-26: 1,343–1,464 images/s
                    // against 1,433–1,572, alternating).
                    out.copy_from_slice(&input[run.iw0..run.iw0 + out.len()]);
                } else {
                    out.iter_mut().zip(input[run.iw0..].iter().step_by(s)).for_each(|(o, &v)| *o = v);
                }
            }
        });
    }

    /// Adds a columns matrix into one image of `channels` planes, each column element onto the
    /// pixel it was unfolded from: the adjoint of [`Window::unfold`].
    pub(super) fn fold_add<T: Float>(&self, channels: usize, cols_data: &[T], img: &mut [T]) {
        let (cols, ow, s, row_step) = (self.oh * self.ow, self.ow, self.stride, self.stride * self.w);
        self.for_each_run(channels, |row, run| {
            let from_rows = cols_data[row * cols..(row + 1) * cols].chunks_exact(ow).skip(run.oh.start);
            let img_rows = img[run.first..].chunks_mut(row_step);
            for (from, pixels) in from_rows.take(run.oh.len()).zip(img_rows) {
                let from = &from[run.cols.clone()];
                if s == 1 {
                    let pixels = &mut pixels[run.iw0..run.iw0 + from.len()];
                    pixels.iter_mut().zip(from).for_each(|(p, &g)| *p += g);
                } else {
                    pixels[run.iw0..].iter_mut().step_by(s).zip(from).for_each(|(p, &g)| *p += g);
                }
            }
        });
    }
}

/// The pixels one kernel position reads from one channel (see [`Window::for_each_run`]).
struct Run {
    /// Output rows whose input row lies inside the image.
    oh: std::ops::Range<usize>,
    /// Output columns whose input column lies inside the image.
    cols: std::ops::Range<usize>,
    /// Index in the image of the first input row read (that of output row `oh.start`).
    first: usize,
    /// Input column read by output column `cols.start`.
    iw0: usize,
}

/// Panics naming `op` unless `shape` is that of an (N, C, H, W) batch.
#[track_caller]
pub(super) fn check_rank4(op: &str, shape: &[usize]) {
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
        let mut out = recycle::zeros(n * rows * cols);
        fill_chunks(&mut out, rows * cols, |b, dst| win.unfold(c, &src[b * plane..(b + 1) * plane], dst));
        Tensor::from_vec(out, &[n, rows, cols])
    }
    // im2col copies each input element into several columns: its adjoint col2im sums them back.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let s = inputs[0].shape();
        vec![Some(grad_out.col2im((s[2], s[3]), self.kernel, self.stride, self.padding))]
    }
    // Linear: the tangent is unfolded the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.im2col(self.kernel, self.stride, self.padding))
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
        if s.len() != 3 || !s[1].is_multiple_of(k) || s[2] != cols {
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
        let mut out = recycle::zeros(n * c * win.h * win.w);
        fill_chunks(&mut out, c * win.h * win.w, |b, img| {
            win.fold_add(c, &src[b * rows * cols..(b + 1) * rows * cols], img);
        });
        Tensor::from_vec(out, &[n, c, win.h, win.w])
    }
    // col2im sums columns into the image (linear): its adjoint im2col reads them back out.
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out.im2col(self.kernel, self.stride, self.padding))]
    }
    // Linear: the tangent is folded the same way.
    fn jvp<'t>(&self, _inputs: &[Var<'t, T>], _out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        tangents[0].map(|t| t.col2im(self.size, self.kernel, self.stride, self.padding))
    }
}

/// Output channels per product in the forward pass. For an image's product, gemm packs (copies
/// into its own layout) the image's columns, the large operand, whenever more than 48 output
/// channels share it (its single-thread threshold: 8 micro-kernel widths of 6 with AVX-512, of
/// 4 with AVX2), so the channels go in bands of 32, which read the columns in place. With the
/// weight gradient's product turned around the same way (below), `cargo bench --bench conv`
/// measured the CNN's second convolution (batch 32, 32 → 64 channels) at 12.0–13.6 ms forward
/// and backward, against 14.1–17.9 ms before (five rounds, the two binaries alternating).
const OUT_BAND: usize = 32;

/// The sizes of one convolution: batch, input and output channels, the window, the columns
/// matrix of one image (`rows × cols`), and how the batch is split across threads.
struct ConvDims {
    n: usize,
    c: usize,
    o: usize,
    win: Window,
    rows: usize,
    cols: usize,
    /// Elements of one input image.
    plane: usize,
    /// Images per thread: the batch in one contiguous group per thread.
    group: usize,
    /// How each image's gemm runs: alone when the batch keeps every thread busy, split across
    /// threads by gemm when it does not (a batch of one image, say).
    inner: Parallelism,
}

impl ConvDims {
    /// The sizes for an (N, C, H, W) input and an (O, C, kh, kw) weight, or a panic naming both
    /// shapes.
    #[track_caller]
    fn of(xs: &[usize], ws: &[usize], stride: usize, padding: usize) -> Self {
        if xs.len() != 4 || ws.len() != 4 || xs[1] != ws[1] {
            shape_panic(
                "conv2d",
                &format!("expects input (N, C, H, W) and weight (O, C, kh, kw): input {xs:?}, weight {ws:?}"),
            );
        }
        let win = Window::new("conv2d", xs, (xs[2], xs[3]), (ws[2], ws[3]), stride, padding);
        let (group, inner) = batch_split(xs[0]);
        ConvDims {
            n: xs[0],
            c: xs[1],
            o: ws[0],
            win,
            rows: ws[1] * ws[2] * ws[3],
            cols: win.oh * win.ow,
            plane: xs[1] * xs[2] * xs[3],
            group,
            inner,
        }
    }

    /// Rows of the columns matrix, one more with a bias: the bias is an extra column of the
    /// weight matrix, multiplied by a row of ones under the image's columns, so that the one
    /// product adds it, and the weight gradient's product (`G·colsᵀ`) yields its gradient
    /// (`G·1`, the sums of the output gradient's rows) as an extra column.
    fn depth(&self, bias: bool) -> usize {
        self.rows + usize::from(bias)
    }

    /// A thread's columns buffer: zeros (what padding positions keep), with the row of ones
    /// under them when there is a bias.
    fn columns_buffer<T: Float>(&self, bias: bool) -> Buffer<T> {
        let mut cols = Buffer::new(recycle::zeros(self.depth(bias) * self.cols));
        cols[self.rows * self.cols..].fill(T::ONE);
        cols
    }
}

/// 2-d convolution of an (N, C, H, W) input with an (O, C, kh, kw) weight, fused (see the
/// [module docs](self)).
struct Conv2dOp {
    stride: usize,
    padding: usize,
    /// The tape's precision when the op was created, for its products forward and backward
    /// (Winograd's stay f32: see [`crate::precision`]).
    precision: Precision,
}

impl<T: Float> Op<T> for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let (x, w, bias) = (inputs[0], inputs[1], inputs.get(2));
        // ConvDims::of checks the shapes, for either path.
        let d = ConvDims::of(x.shape(), w.shape(), self.stride, self.padding);
        if winograd::applies(x.shape(), w.shape(), self.stride) {
            return winograd::forward(x, w, bias.copied(), self.padding);
        }
        let k = d.depth(bias.is_some());
        // [W | bias] transposed once, (k, O) row-major: gemm reads a column-major left operand
        // in place, where a row-major one would be packed again for every image.
        let mut w_t = recycle::zeros(k * d.o);
        for (o, w_row) in w.data().chunks(d.rows.max(1)).enumerate() {
            w_row.iter().enumerate().for_each(|(r, &v)| w_t[r * d.o + o] = v);
        }
        if let Some(bias) = bias {
            w_t[d.rows * d.o..].copy_from_slice(bias.data());
        }
        let src = x.data();
        let per = d.o * d.cols;
        let len = d.n * per;
        // An empty output (no image, or no output pixel) is not cut into chunks.
        let out = uninit::new_vec(len, |dst| {
            uninit::par_fill_chunks(dst, d.group * per, |g, chunk| {
                let mut cols = d.columns_buffer(bias.is_some());
                uninit::fill_chunks(chunk, per, |j, out_b| {
                    let b = g * d.group + j;
                    d.win.unfold(d.c, &src[b * d.plane..(b + 1) * d.plane], &mut cols);
                    let cols = Operand::by_rows(&cols, d.cols);
                    uninit::fill_chunks(out_b, OUT_BAND * d.cols, |band, out| {
                        let lo = band * OUT_BAND;
                        let rows = out.len() / d.cols.max(1);
                        let weight = Operand::transposed(&w_t[lo..], d.o);
                        product_into::<T>(self.precision, out, (rows, k, d.cols), weight, cols, d.inner)
                    })
                })
            })
        });
        Tensor::from_vec(out, &[d.n, d.o, d.win.oh, d.win.ow])
    }
    // out_b = W·cols_b (+ bias per row) per image b, with W the (O, C·kh·kw) weight matrix:
    // ∂W = Σ_b G_b·cols_bᵀ, ∂cols_b = Wᵀ·G_b, folded back into the image by col2im (im2col's
    // adjoint), and ∂bias[o] = Σ_b Σ_p G_b[o, p].
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let (x, w) = (inputs[0], inputs[1]);
        let (xs, ws) = (x.shape(), w.shape());
        let d = ConvDims::of(&xs, &ws, self.stride, self.padding);
        let kernel = (ws[2], ws[3]);
        let g = grad_out.reshape(&[d.n, d.o, d.cols]);
        let w2 = w.reshape(&[d.o, d.rows]);
        let gx = x.requires_grad().then(|| {
            w2.matmul_p(g, true, false, self.precision).col2im((xs[2], xs[3]), kernel, self.stride, self.padding)
        });
        let gw = w.requires_grad().then(|| {
            let cols = x.im2col(kernel, self.stride, self.padding);
            g.matmul_p(cols, false, true, self.precision).sum_to(&[d.o, d.rows]).reshape(&ws)
        });
        let mut grads = vec![gx, gw];
        if let Some(b) = inputs.get(2) {
            grads.push(b.requires_grad().then(|| g.sum_to(&[d.o, 1]).reshape(&[d.o])));
        }
        grads
    }
    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        _out: &Tensor<T>,
        grad_out: &Tensor<T>,
        needs_grad: &[bool],
    ) -> Option<TensorGrads<T>> {
        let (x, w) = (inputs[0], inputs[1]);
        let d = ConvDims::of(x.shape(), w.shape(), self.stride, self.padding);
        let has_bias = inputs.len() == 3;
        if winograd::applies(x.shape(), w.shape(), self.stride) {
            return Some(winograd::backward(x, w, has_bias, self.padding, grad_out, needs_grad));
        }
        let (need_x, need_w) = (needs_grad[0], needs_grad[1]);
        let need_b = has_bias && needs_grad[2];
        let need_cols = need_w || need_b;
        let k = d.depth(has_bias);
        let (src, wt, g) = (x.data(), w.data(), grad_out.data());
        let per = d.o * d.cols;
        // The input's gradient is summed into by col2im, so it starts at zero.
        let mut gx = if need_x { recycle::zeros(d.n * d.plane) } else { Vec::new() };
        let groups = d.n.div_ceil(d.group);
        let gx_groups: Vec<&mut [T]> = if need_x {
            gx.chunks_mut(d.group * d.plane).collect()
        } else {
            (0..groups).map(|_| <&mut [T]>::default()).collect()
        };
        // Each thread sums its images' [∂W | ∂bias]ᵀ into its own (k, O) matrix; the few
        // matrices are added at the end.
        let gwb_t = gx_groups
            .into_par_iter()
            .enumerate()
            .map(|(gi, gx_group)| {
                {
                    let mut cols = if need_cols { d.columns_buffer(has_bias) } else { Buffer::default() };
                    let mut gcols = Buffer::new(if need_x { recycle::zeros(d.rows * d.cols) } else { Vec::new() });
                    let mut gwb_t = recycle::zeros(k * d.o);
                    let first = gi * d.group;
                    for b in first..(first + d.group).min(d.n) {
                        let g_b = &g[b * per..(b + 1) * per];
                        if need_cols {
                            // [∂W | ∂bias]ᵀ += cols·G_bᵀ, kept transposed, (k, O): gemm then reads
                            // the large columns matrix in place and packs only G_b.
                            d.win.unfold(d.c, &src[b * d.plane..(b + 1) * d.plane], &mut cols);
                            let (cols, g_b_t) = (Operand::by_rows(&cols, d.cols), Operand::transposed(g_b, d.cols));
                            product_accumulate(self.precision, &mut gwb_t, (k, d.cols, d.o), cols, g_b_t, d.inner);
                        }
                        if need_x {
                            let w_t = Operand::transposed(wt, d.rows);
                            product_overwrite(
                                self.precision,
                                &mut gcols,
                                (d.rows, d.o, d.cols),
                                w_t,
                                Operand::by_rows(g_b, d.cols),
                                d.inner,
                            );
                            let j = b - first;
                            d.win.fold_add(d.c, &gcols, &mut gx_group[j * d.plane..(j + 1) * d.plane]);
                        }
                    }
                    gwb_t
                }
            })
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(&b).for_each(|(a, &b)| *a += b);
                a
            })
            .unwrap_or_else(|| recycle::zeros(k * d.o));
        let gw = || (0..d.o).flat_map(|o| gwb_t[o..d.rows * d.o].iter().step_by(d.o).copied()).collect();
        let gb = || gwb_t[d.rows * d.o..].to_vec();
        let mut grads = smallvec::smallvec![
            need_x.then(|| Tensor::from_vec(gx, x.shape())),
            need_w.then(|| Tensor::from_vec(gw(), w.shape())),
        ];
        if has_bias {
            grads.push(need_b.then(|| Tensor::from_vec(gb(), &[d.o])));
        }
        Some(grads)
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Conv2d { stride: self.stride, padding: self.padding })
    }
    // Bilinear in (x, W), affine in the bias: dout = conv(dx, W) + conv(x, dW) + db, the bias
    // tangent folded into one of the two convolutions.
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let (s, p) = (self.stride, self.padding);
        let conv = |x: Var<'t, T>, w: Var<'t, T>, b: Option<Var<'t, T>>| match b {
            Some(b) => x.conv2d_with_bias(w, b, s, p),
            None => x.conv2d(w, s, p),
        };
        bilinear_tangent(inputs, tangents, conv, |db| db.reshape(&[1, db.numel(), 1, 1]).broadcast_to(&out.shape()))
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
        if s.len() != 3 || !s[1].is_multiple_of(k) || s[2] != win.oh * win.ow {
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
    /// stride + 1`. Computed as `w.reshape(O, C·kh·kw) · x.im2col(..)` one image at a time (see
    /// the [module docs](self)), with the gradients of that product. No bias (see
    /// [`Var::conv2d_with_bias`]). PyTorch:
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
        ConvDims::of(&self.shape(), &weight.shape(), stride, padding);
        self.tape().apply(Conv2dOp { stride, padding, precision: self.tape().precision() }, &[self, weight])
    }

    /// [`Var::conv2d`] plus a bias per output channel, `bias` of shape (O): the same as adding
    /// `bias.reshape(&[1, O, 1, 1])` to the convolution, in one op: the bias is one more column
    /// of the weight matrix, against a row of ones under each image's columns, so the same
    /// matrix products compute it and its gradient.
    /// PyTorch: `F.conv2d(x, w, bias, stride=stride, padding=padding)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec((1..=9).map(f64::from).collect(), &[1, 1, 3, 3]));
    /// let w = tape.var(Tensor::from_vec(vec![1.0, 0.0, 0.0, -1.0], &[1, 1, 2, 2]));
    /// let b = tape.var(Tensor::from_vec(vec![10.0], &[1]));
    /// assert_eq!(x.conv2d_with_bias(w, b, 1, 0).value().data(), &[6.0, 6.0, 6.0, 6.0]);
    /// ```
    ///
    /// # Panics
    /// As [`Var::conv2d`], and if `bias` is not of shape (O).
    #[track_caller]
    pub fn conv2d_with_bias(self, weight: Var<'t, T>, bias: Var<'t, T>, stride: usize, padding: usize) -> Var<'t, T> {
        let ws = weight.shape();
        let d = ConvDims::of(&self.shape(), &ws, stride, padding);
        if bias.shape().as_slice() != [d.o] {
            shape_panic("conv2d", &format!("bias must be ({},) for weight {ws:?}, got shape {:?}", d.o, bias.shape()));
        }
        self.tape().apply(Conv2dOp { stride, padding, precision: self.tape().precision() }, &[self, weight, bias])
    }
}

#[cfg(test)]
mod tests {
    use super::OUT_BAND;
    use crate::check::{assert_close, filled, gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

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
    fn big_images_match_direct_convolution() {
        // A batch split across threads (and a single image, whose gemm is split instead); f32,
        // as in training.
        for n in [8, 1] {
            let (x, w) = (filled(&[n, 3, 28, 28], 17), filled(&[4, 3, 3, 3], 18));
            let tape = Tape::<f32>::new();
            let (xv, wv) = (tape.var(x.cast::<f32>()), tape.var(w.cast::<f32>()));
            let y = xv.conv2d(wv, 1, 1);
            assert_close(&y.value(), &naive_conv(&x, &w, 1, 1).cast::<f32>(), 1e-4, 1e-4);
            // The fused backward against the one composed of im2col, col2im and matmul.
            let loss = (y * tape.constant(filled(&y.shape(), 19).cast::<f32>())).sum();
            let fused = loss.backward();
            let composed = tape.grad(loss, &[xv, wv]);
            assert_close(&fused[xv], &composed[0].value(), 1e-4, 1e-4);
            assert_close(&fused[wv], &composed[1].value(), 1e-3, 1e-4);
        }
    }

    #[test]
    fn output_channels_in_several_bands_match_direct_convolution() {
        // More output channels than one forward product takes (two full bands and a part),
        // with a bias, whose gradient comes out of the transposed weight-gradient product.
        let o = 2 * OUT_BAND + 5;
        let (x, w, b) = (filled(&[3, 2, 6, 7], 32), filled(&[o, 2, 3, 2], 33), filled(&[o], 34));
        let tape = Tape::<f64>::new();
        let (xv, wv, bv) = (tape.var(x.clone()), tape.var(w.clone()), tape.var(b.clone()));
        let y = xv.conv2d_with_bias(wv, bv, 1, 1);
        let want = tape.constant(naive_conv(&x, &w, 1, 1)) + bv.reshape(&[1, o, 1, 1]);
        assert_close(&y.value(), &want.value(), 1e-12, 1e-12);
        // The fused backward against the one composed of im2col, col2im and matmul.
        let loss = (y * tape.constant(filled(&y.shape(), 35))).sum();
        let fused = loss.backward();
        let composed = tape.grad(loss, &[xv, wv, bv]);
        for (v, c) in [xv, wv, bv].into_iter().zip(&composed) {
            assert_close(&fused[v], &c.value(), 1e-12, 1e-12);
        }
    }

    #[test]
    fn conv2d_with_bias_is_conv2d_plus_broadcast_bias() {
        for (stride, pad) in [(1, 0), (2, 1)] {
            let tape = Tape::<f64>::new();
            let x = tape.var(filled(&[3, 2, 6, 5], 22));
            let w = tape.var(filled(&[4, 2, 3, 2], 23));
            let b = tape.var(filled(&[4], 24));
            let fused = x.conv2d_with_bias(w, b, stride, pad);
            let composed = x.conv2d(w, stride, pad) + b.reshape(&[1, 4, 1, 1]);
            assert_close(&fused.value(), &composed.value(), 1e-12, 1e-12);
            let seed = tape.constant(filled(&fused.shape(), 25));
            let (gf, gc) = ((fused * seed).sum().backward(), (composed * seed).sum().backward());
            for v in [x, w, b] {
                assert_close(&gf[v], &gc[v], 1e-12, 1e-12);
            }
        }
        gradcheck(
            |v| v[0].conv2d_with_bias(v[1], v[2], 2, 1).exp().mean(),
            &[filled(&[2, 2, 4, 5], 26), filled(&[3, 2, 2, 3], 27), filled(&[3], 28)],
        );
        gradgradcheck(
            |v| v[0].conv2d_with_bias(v[1], v[2], 1, 1).exp().mean(),
            &[filled(&[1, 2, 3, 3], 29), filled(&[2, 2, 2, 2], 30), filled(&[2], 31)],
        );
    }

    #[test]
    #[should_panic(expected = "conv2d: bias must be (4,) for weight [4, 3, 3, 3], got shape [3]")]
    fn conv2d_bias_of_the_wrong_size_names_shapes() {
        let tape = Tape::<f64>::new();
        let x = tape.var(Tensor::zeros(&[1, 3, 5, 5]));
        x.conv2d_with_bias(tape.var(Tensor::zeros(&[4, 3, 3, 3])), tape.var(Tensor::zeros(&[3])), 1, 0);
    }

    #[test]
    fn conv2d_of_a_constant_input_gives_only_the_weight_gradient() {
        let tape = Tape::<f64>::new();
        let x = tape.constant(filled(&[3, 2, 5, 5], 20));
        let w = tape.var(filled(&[2, 2, 3, 3], 21));
        let grads = x.conv2d(w, 1, 1).sum().backward();
        assert!(grads.get(x).is_none());
        // ∂Σout/∂w[o, c, i, j] = Σ over images and output positions of the input pixel under
        // (i, j): for the centre tap with padding 1, every pixel of channel c once.
        let centre: f64 = (0..3).map(|b| (0..25).map(|p| x.value().data()[(b * 2 + 1) * 25 + p]).sum::<f64>()).sum();
        assert!((grads[w].at(&[0, 1, 1, 1]) - centre).abs() < 1e-12);
    }

    #[test]
    #[should_panic(
        expected = "conv2d: expects input (N, C, H, W) and weight (O, C, kh, kw): input [1, 2, 5, 5], weight [4, 3, 3, 3]"
    )]
    fn conv2d_channel_mismatch_names_shapes() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[1, 2, 5, 5])).conv2d(tape.var(Tensor::zeros(&[4, 3, 3, 3])), 1, 0);
    }
}

//! Transposed convolution over NCHW images (conv2d's adjoint in its input).
//!
//! `conv_transpose2d(x, w)` with an (C_in, C_out, kh, kw) weight is, per image, one matrix
//! product `cols = Wᵀ · x` of the weight seen as a (C_in, C_out·kh·kw) matrix and the image seen
//! as (C_in, H·W), whose columns are then folded (col2im) into the (C_out, H_out, W_out) output:
//! exactly what conv2d's backward does to turn an output gradient into an input gradient. The
//! forward reuses conv2d's window and fold; the differentiable backward is built from conv2d,
//! im2col and matmul, so second derivatives come for free.

use rayon::prelude::*;

use super::conv::{check_rank4, Window};
use crate::kernels::gemm::{batch_split, gemm_overwrite, Operand};
use crate::recycle::{self, Buffer};
use crate::tape::{bilinear_tangent, shape_panic};
use crate::trace::OpAttrs;
use crate::{Float, Op, Tensor, Var};

/// The sizes of one transposed convolution: batch, input and output channels, the input and
/// output sizes, and the window that maps the output onto the input (conv2d's, run backwards).
struct TransposeDims {
    n: usize,
    c_in: usize,
    c_out: usize,
    kernel: (usize, usize),
    /// The window of a conv2d from the (H_out, W_out) output back to the (H, W) input.
    win: Window,
}

impl TransposeDims {
    /// The sizes for an (N, C_in, H, W) input and a (C_in, C_out, kh, kw) weight, or a panic
    /// naming the shapes and what is wrong.
    #[track_caller]
    fn of(xs: &[usize], ws: &[usize], stride: usize, padding: usize, output_padding: usize) -> Self {
        check_rank4("conv_transpose2d", xs);
        if ws.len() != 4 || xs[1] != ws[0] {
            shape_panic(
                "conv_transpose2d",
                &format!("expects input (N, C_in, H, W) and weight (C_in, C_out, kh, kw): input {xs:?}, weight {ws:?}"),
            );
        }
        if stride == 0 || ws[2] == 0 || ws[3] == 0 {
            shape_panic(
                "conv_transpose2d",
                &format!("kernel {}×{} and stride {stride} must be positive (weight {ws:?})", ws[2], ws[3]),
            );
        }
        if output_padding >= stride {
            shape_panic(
                "conv_transpose2d",
                &format!("output_padding {output_padding} must be smaller than the stride {stride}"),
            );
        }
        // H_out = (H − 1)·stride − 2·padding + kh + output_padding, which must be positive.
        let side = |len: usize, k: usize| {
            let full = len.saturating_sub(1) * stride + k + output_padding;
            if len == 0 || full <= 2 * padding {
                shape_panic(
                    "conv_transpose2d",
                    &format!(
                        "padding {padding} leaves no output for input {xs:?} and weight {ws:?} (stride {stride}, \
                         output_padding {output_padding})"
                    ),
                );
            }
            full - 2 * padding
        };
        let size = (side(xs[2], ws[2]), side(xs[3], ws[3]));
        let kernel = (ws[2], ws[3]);
        let win = Window::new("conv_transpose2d", xs, size, kernel, stride, padding);
        debug_assert_eq!((win.oh, win.ow), (xs[2], xs[3]), "the window maps the output back onto the input");
        TransposeDims { n: xs[0], c_in: xs[1], c_out: ws[1], kernel, win }
    }

    /// Rows of one image's columns matrix: C_out·kh·kw.
    fn rows(&self) -> usize {
        self.c_out * self.kernel.0 * self.kernel.1
    }

    /// The output's shape (N, C_out, H_out, W_out).
    fn out_shape(&self) -> [usize; 4] {
        [self.n, self.c_out, self.win.h, self.win.w]
    }
}

/// Transposed 2-d convolution of an (N, C_in, H, W) input with a (C_in, C_out, kh, kw) weight
/// and an optional (C_out) bias.
struct ConvTranspose2dOp {
    stride: usize,
    padding: usize,
    output_padding: usize,
}

impl<T: Float> Op<T> for ConvTranspose2dOp {
    fn name(&self) -> &'static str {
        "conv_transpose2d"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let (x, w, bias) = (inputs[0], inputs[1], inputs.get(2));
        let d = TransposeDims::of(x.shape(), w.shape(), self.stride, self.padding, self.output_padding);
        let (rows, hw) = (d.rows(), d.win.oh * d.win.ow);
        let (in_plane, out_plane) = (d.c_in * hw, d.c_out * d.win.h * d.win.w);
        let (group, inner) = batch_split(d.n);
        let (src, wt) = (x.data(), w.data());
        let mut out = recycle::zeros(d.n * out_plane);
        if !out.is_empty() {
            out.par_chunks_mut(group * out_plane).enumerate().for_each(|(g, chunk)| {
                let mut cols = Buffer::new(recycle::zeros(rows * hw));
                for (j, img) in chunk.chunks_mut(out_plane).enumerate() {
                    let b = g * group + j;
                    // cols = Wᵀ·x_b, (C_out·kh·kw, H·W), folded into the zeroed output image.
                    let x_b = Operand::by_rows(&src[b * in_plane..(b + 1) * in_plane], hw);
                    gemm_overwrite(&mut cols, (rows, d.c_in, hw), Operand::transposed(wt, rows), x_b, inner);
                    d.win.fold_add(d.c_out, &cols, img);
                    if let Some(bias) = bias {
                        let plane = d.win.h * d.win.w;
                        for (channel, &v) in img.chunks_mut(plane).zip(bias.data()) {
                            channel.iter_mut().for_each(|o| *o += v);
                        }
                    }
                }
            });
        }
        Tensor::from_vec(out, &d.out_shape())
    }
    // out_b = col2im(Wᵀ·x_b) + bias: ∂x_b = W·im2col(G_b), which is conv2d(G, W) with the same
    // stride and padding; ∂W = Σ_b x_b·im2col(G_b)ᵀ; ∂bias[o] = Σ_b Σ_p G_b[o, p].
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let (x, w) = (inputs[0], inputs[1]);
        let (xs, ws) = (x.shape(), w.shape());
        let d = TransposeDims::of(&xs, &ws, self.stride, self.padding, self.output_padding);
        let (s, p) = (self.stride, self.padding);
        let gx = x.requires_grad().then(|| grad_out.conv2d(w, s, p));
        let gw = w.requires_grad().then(|| {
            let cols = grad_out.im2col(d.kernel, s, p); // (N, C_out·kh·kw, H·W)
            let x2 = x.reshape(&[d.n, d.c_in, xs[2] * xs[3]]);
            x2.matmul_t(cols, false, true).sum_to(&[d.c_in, d.rows()]).reshape(&ws)
        });
        let mut grads = vec![gx, gw];
        if let Some(b) = inputs.get(2) {
            grads.push(b.requires_grad().then(|| {
                let g = grad_out.reshape(&[d.n, d.c_out, d.win.h * d.win.w]);
                g.sum_to(&[d.c_out, 1]).reshape(&[d.c_out])
            }));
        }
        grads
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::ConvTranspose2d {
            stride: self.stride,
            padding: self.padding,
            output_padding: self.output_padding,
        })
    }
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let (s, p, op) = (self.stride, self.padding, self.output_padding);
        let conv = |x: Var<'t, T>, w: Var<'t, T>, b: Option<Var<'t, T>>| match b {
            Some(b) => x.conv_transpose2d_with_bias(w, b, s, p, op),
            None => x.conv_transpose2d(w, s, p, op),
        };
        bilinear_tangent(inputs, tangents, conv, |db| db.reshape(&[1, db.numel(), 1, 1]).broadcast_to(&out.shape()))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// Transposed 2-d convolution (sometimes called deconvolution) of an (N, C_in, H, W) input
    /// with a (C_in, C_out, kh, kw) weight: the input gradient of [`Var::conv2d`] with the same
    /// stride and padding, `out[n, o, y·stride + i − padding, x·stride + j − padding] +=
    /// Σ_c x[n, c, y, x] · w[c, o, i, j]`, of shape (N, C_out, H_out, W_out) with
    /// `H_out = (H − 1)·stride − 2·padding + kh + output_padding`. `output_padding` (smaller
    /// than the stride) picks among the output sizes that a stride-`stride` conv2d maps onto
    /// the same input size. The gradient in the input is conv2d of the output gradient. No bias
    /// (see [`Var::conv_transpose2d_with_bias`]). PyTorch: `F.conv_transpose2d(x, w,
    /// stride=stride, padding=padding, output_padding=output_padding)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[1, 1, 2, 2]));
    /// let w = tape.var(Tensor::ones(&[1, 1, 2, 2]));
    /// // Stride 2: each input pixel paints its own 2×2 block.
    /// let y = x.conv_transpose2d(w, 2, 0, 0); // (1, 1, 4, 4)
    /// assert_eq!(&y.value().data()[..8], &[1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// If the input or weight is not 4-d, the input's channels differ from the weight's first
    /// axis, the stride or kernel is zero, `output_padding` is not smaller than the stride, or
    /// the padding leaves no output.
    #[track_caller]
    pub fn conv_transpose2d(
        self,
        weight: Var<'t, T>,
        stride: usize,
        padding: usize,
        output_padding: usize,
    ) -> Var<'t, T> {
        TransposeDims::of(&self.shape(), &weight.shape(), stride, padding, output_padding);
        self.tape().apply(ConvTranspose2dOp { stride, padding, output_padding }, &[self, weight])
    }

    /// [`Var::conv_transpose2d`] plus a bias per output channel, `bias` of shape (C_out), in one
    /// op. PyTorch: `F.conv_transpose2d(x, w, bias, stride=stride, padding=padding,
    /// output_padding=output_padding)`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::ones(&[1, 1, 2, 2]));
    /// let w = tape.var(Tensor::ones(&[1, 2, 1, 1]));
    /// let b = tape.var(Tensor::from_vec(vec![10.0, 20.0], &[2]));
    /// let y = x.conv_transpose2d_with_bias(w, b, 1, 0, 0); // (1, 2, 2, 2)
    /// assert_eq!(y.value().data(), &[11.0, 11.0, 11.0, 11.0, 21.0, 21.0, 21.0, 21.0]);
    /// ```
    ///
    /// # Panics
    /// As [`Var::conv_transpose2d`], and if `bias` is not of shape (C_out).
    #[track_caller]
    pub fn conv_transpose2d_with_bias(
        self,
        weight: Var<'t, T>,
        bias: Var<'t, T>,
        stride: usize,
        padding: usize,
        output_padding: usize,
    ) -> Var<'t, T> {
        let ws = weight.shape();
        let d = TransposeDims::of(&self.shape(), &ws, stride, padding, output_padding);
        if bias.shape().as_slice() != [d.c_out] {
            shape_panic(
                "conv_transpose2d",
                &format!("bias must be ({},) for weight {ws:?}, got shape {:?}", d.c_out, bias.shape()),
            );
        }
        self.tape().apply(ConvTranspose2dOp { stride, padding, output_padding }, &[self, weight, bias])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{assert_close, filled, gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    /// Transposed convolution by definition (each input pixel scatters its weighted kernel),
    /// for reference.
    fn naive(x: &Tensor<f64>, w: &Tensor<f64>, stride: usize, pad: usize, out_pad: usize) -> Tensor<f64> {
        let [n, c, h, wd] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
        let [_, o, kh, kw] = [w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]];
        let (oh, ow) = ((h - 1) * stride + kh + out_pad - 2 * pad, (wd - 1) * stride + kw + out_pad - 2 * pad);
        let mut out = vec![0.0; n * o * oh * ow];
        for b in 0..n {
            for ch in 0..c {
                for y in 0..h {
                    for z in 0..wd {
                        for f in 0..o {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let (oy, ox) = (
                                        (y * stride + i) as isize - pad as isize,
                                        (z * stride + j) as isize - pad as isize,
                                    );
                                    if oy >= 0 && ox >= 0 && (oy as usize) < oh && (ox as usize) < ow {
                                        out[((b * o + f) * oh + oy as usize) * ow + ox as usize] +=
                                            x.at(&[b, ch, y, z]) * w.at(&[ch, f, i, j]);
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        Tensor::from_vec(out, &[n, o, oh, ow])
    }

    #[test]
    fn conv_transpose2d_matches_direct_definition() {
        for (stride, pad, out_pad) in [(1, 0, 0), (2, 0, 1), (2, 1, 1), (3, 2, 2), (1, 1, 0)] {
            let x = filled(&[2, 3, 4, 5], 1);
            let w = filled(&[3, 2, 3, 2], 2);
            let tape = Tape::<f64>::new();
            let y = tape.var(x.clone()).conv_transpose2d(tape.var(w.clone()), stride, pad, out_pad);
            assert_close(&y.value(), &naive(&x, &w, stride, pad, out_pad), 1e-12, 1e-12);
        }
    }

    #[test]
    fn conv_transpose2d_is_the_adjoint_of_conv2d() {
        // ⟨conv2d(y, W), x⟩ = ⟨y, conv_transpose2d(x, W)⟩ for every geometry.
        for (stride, pad, out_pad) in [(1, 0, 0), (2, 1, 1), (3, 1, 0)] {
            let tape = Tape::<f64>::new();
            let x = tape.var(filled(&[2, 3, 3, 4], 3));
            let w = tape.var(filled(&[3, 2, 3, 3], 4));
            let t = x.conv_transpose2d(w, stride, pad, out_pad);
            let y = tape.var(filled(&t.shape(), 5));
            let lhs = (y.conv2d(w, stride, pad) * x).sum().item();
            let rhs = (y * t).sum().item();
            assert!((lhs - rhs).abs() < 1e-10, "{lhs} vs {rhs}");
        }
    }

    #[test]
    fn conv_transpose2d_grad_matches_finite_diff() {
        for (stride, pad, out_pad) in [(1, 0, 0), (2, 1, 1)] {
            gradcheck(
                |v| v[0].conv_transpose2d_with_bias(v[1], v[2], stride, pad, out_pad).exp().mean(),
                &[filled(&[2, 2, 3, 2], 6), filled(&[2, 3, 2, 3], 7), filled(&[3], 8)],
            );
        }
        gradgradcheck(
            |v| v[0].conv_transpose2d_with_bias(v[1], v[2], 2, 1, 1).exp().mean(),
            &[filled(&[1, 2, 2, 3], 9), filled(&[2, 2, 3, 2], 10), filled(&[2], 11)],
        );
    }

    #[test]
    fn big_batches_match_direct_definition() {
        // A batch split across threads (and a single image, whose gemm is split instead).
        for n in [8, 1] {
            let (x, w, b) = (filled(&[n, 4, 9, 7], 12), filled(&[4, 3, 3, 3], 13), filled(&[3], 14));
            let tape = Tape::<f64>::new();
            let y = tape.var(x.clone()).conv_transpose2d_with_bias(tape.var(w.clone()), tape.var(b.clone()), 2, 1, 1);
            let want = tape.constant(naive(&x, &w, 2, 1, 1)) + tape.constant(b).reshape(&[1, 3, 1, 1]);
            assert_close(&y.value(), &want.value(), 1e-12, 1e-12);
        }
    }

    #[test]
    #[should_panic(expected = "conv_transpose2d: output_padding 2 must be smaller than the stride 2")]
    fn conv_transpose2d_output_padding_too_large_is_named() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[1, 1, 3, 3])).conv_transpose2d(tape.var(Tensor::zeros(&[1, 1, 3, 3])), 2, 0, 2);
    }

    #[test]
    #[should_panic(
        expected = "conv_transpose2d: expects input (N, C_in, H, W) and weight (C_in, C_out, kh, kw): input [1, 2, 3, 3], weight [3, 2, 3, 3]"
    )]
    fn conv_transpose2d_channel_mismatch_names_shapes() {
        let tape = Tape::<f64>::new();
        tape.var(Tensor::zeros(&[1, 2, 3, 3])).conv_transpose2d(tape.var(Tensor::zeros(&[3, 2, 3, 3])), 1, 0, 0);
    }
}

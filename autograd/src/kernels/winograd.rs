//! conv2d's 3×3, stride-1 case by Winograd's minimal filtering algorithm F(2×2, 3×3) (Lavin and
//! Gray, "Fast Algorithms for Convolutional Neural Networks", 2015), forward and backward.
//!
//! Each 2×2 block of outputs of one channel pair reads a 4×4 tile of the input. The tile `d` and
//! the 3×3 kernel `g` are mapped to 16 points each, `V = Bᵀ·d·B` and `U = G·g·Gᵀ`, where a 3×3
//! correlation becomes an element-wise product, and the block comes back as `Y = Aᵀ·M·A` with
//! `M = U ⊙ V`. Summed over input channels, the element-wise products are 16 matrix products per
//! image, `M_ξ (O × tiles) = U_ξ (O × C) · V_ξ (C × tiles)`, of 16·C·O multiplications per tile
//! instead of im2col's 36·C·O: 2.25× fewer. The transforms' coefficients are 0, ±1 and ±½, so
//! the result differs from the direct sum by rounding only.
//!
//! The backward is the exact adjoint of those steps: `∂M = A·∂Y·Aᵀ`, then `∂V_ξ = U_ξᵀ·∂M_ξ`
//! folded back into the input by `B·∂V·Bᵀ` (neighbouring tiles overlap by two pixels and sum),
//! and `∂U_ξ = Σ ∂M_ξ·V_ξᵀ` mapped to the kernel by `Gᵀ·∂U·G`.
//!
//! # Layout
//! A row of tiles is 12 tiles wide for the CNN's 24×24 outputs: loops along one row are too
//! short for 16-lane vectors. So each transform runs over a whole channel at once, as flat loops
//! over "slots": tile row `ty` has `tw + 1` slots, the last of which is spare, which makes both a
//! tile's right neighbour (`slot + 1`) and the tile row below (`slot + tw + 1`) fixed offsets.
//! The image is held with its even and odd rows apart, zero-padded to `(2·th + 2) × (2·tw + 2)`
//! pixels; a tile row's columns then split into even and odd ones by one flat de-interleave. The
//! slot count is rounded up to a multiple of 16 (see [`Tiles`]). The spare slots are kept at zero
//! in `V`, `∂M` and `∂V`, so the products carry them at no harm (they cost about `1/tw` more
//! work) and no non-finite pixel or weight can leak through them.

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;

use super::gemm::{batch_split, gemm_accumulate, gemm_overwrite, Operand};
use super::uninit;
use crate::op::TensorGrads;
use crate::recycle;
use crate::{Float, Tensor};

/// Input channels from which conv2d takes this path for a 3×3, stride-1 kernel: below it the
/// products are too shallow to repay the transforms. `cargo bench --bench conv` at batch 32,
/// 26×26 images into 32 channels, im2col against Winograd (two rounds, forward + backward):
/// 2 input channels 0.93 / 0.91 ms against 1.79 / 1.63, 4: 1.56 / 1.39 against 2.29 / 2.51,
/// 8: 2.42 / 2.22 against 3.31 / 3.04, 16: 5.14 / 4.50 against 4.48 / 4.43 (even). The digits
/// CNN's second convolution, 32 into 64 channels (24×24 outputs), three rounds alternating:
/// 14.4 / 15.7 / 13.6 ms against 11.3 / 11.5 / 11.6 (forward alone 4.32 / 4.35 / 4.40 against
/// 4.21 / 3.71 / 3.38).
pub(crate) const MIN_CHANNELS: usize = 32;

/// Output channels per band of the forward's products: their points then stay in cache until
/// the output transform reads them, and gemm reads the input's points in place (it packs them
/// for more than 48 channels).
const OUT_BAND: usize = 32;

/// Points of the transformed tile: 4×4.
const POINTS: usize = 16;

/// Whether a convolution of an (N, C, H, W) input by an (O, C, kh, kw) weight with this stride
/// takes the Winograd path.
pub(crate) fn applies(xs: &[usize], ws: &[usize], stride: usize) -> bool {
    xs.len() == 4 && ws.len() == 4 && ws[2] == 3 && ws[3] == 3 && stride == 1 && xs[1] >= MIN_CHANNELS
}

/// The tiling of one convolution: batch, channels, the image and its output, and the tiles
/// (`th × tw` tiles of 2×2 outputs, reading `(2·th + 2) × (2·tw + 2)` padded pixels).
#[derive(Clone, Copy, Debug)]
struct Tiles {
    n: usize,
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    pad: usize,
    oh: usize,
    ow: usize,
    th: usize,
    tw: usize,
    /// Width of a padded row: `2·tw + 2`.
    wp: usize,
    /// Slots per tile row, `tw + 1`, and per image: `th·(tw + 1)` rounded up to a multiple of
    /// 16, so that gemm reads the points in place rather than packing them (it packs a left
    /// operand whose rows are not a whole number of 16-lane vectors).
    row_slots: usize,
    slots: usize,
    /// Images per thread, in one contiguous group each.
    group: usize,
    /// Whether each image's products run alone (the batch keeps every thread busy) or split
    /// across threads.
    inner: Parallelism,
}

/// A thread's buffers for one image at a time. The three image-sized ones are allocated only
/// for the passes that use them (see [`Uses`]), and are empty otherwise.
struct Buffers<T> {
    /// The image, zero-padded, each channel as its even rows then its odd rows:
    /// `[c][parity][th + 1][wp]`.
    rows: Vec<T>,
    /// The input's gradient for one image, laid out like `rows`.
    grad_rows: Vec<T>,
    /// Four planes of `th × wp`: a transform's vertical pass.
    planes: Vec<T>,
    /// Twelve rows of `slots + 1`: even and odd columns apart, and partial sums.
    split: Vec<T>,
    /// Two planes of `th × wp` for the output gradient's rows, zero where there is no output.
    dy_rows: Vec<T>,
}

/// Which of the image-sized [`Buffers`] a pass uses.
struct Uses {
    /// `rows`: the forward, and the backward when it computes the weight's gradient.
    rows: bool,
    /// `grad_rows`: the backward when it computes the input's gradient.
    grad_rows: bool,
    /// `dy_rows`: the backward when it computes either of those.
    dy_rows: bool,
}

impl Tiles {
    /// The tiling for an (N, C, H, W) input, an (O, C, 3, 3) weight and zero padding `pad`,
    /// whose shapes the caller has checked.
    fn of(xs: &[usize], ws: &[usize], pad: usize) -> Self {
        let (h, w) = (xs[2], xs[3]);
        let (oh, ow) = (h + 2 * pad - 2, w + 2 * pad - 2);
        let (th, tw) = (oh.div_ceil(2), ow.div_ceil(2));
        let (group, inner) = batch_split(xs[0]);
        let row_slots = tw + 1;
        Tiles {
            n: xs[0],
            c: xs[1],
            o: ws[0],
            h,
            w,
            pad,
            oh,
            ow,
            th,
            tw,
            wp: 2 * row_slots,
            row_slots,
            slots: (th * row_slots).next_multiple_of(16),
            group,
            inner,
        }
    }

    /// Elements of one channel in [`Buffers::rows`].
    fn rows_plane(&self) -> usize {
        2 * (self.th + 1) * self.wp
    }

    /// A thread's buffers, all zero: the image-sized ones as `uses` says, the rest always.
    fn buffers<T: Float>(&self, uses: Uses) -> Buffers<T> {
        let plane = self.th * self.wp;
        let zeros = |used: bool, n: usize| if used { recycle::zeros(n) } else { Vec::new() };
        Buffers {
            rows: zeros(uses.rows, self.c * self.rows_plane()),
            grad_rows: zeros(uses.grad_rows, self.c * self.rows_plane()),
            planes: recycle::zeros(4 * plane),
            split: recycle::zeros(12 * (self.slots + 1)),
            dy_rows: zeros(uses.dy_rows, 2 * plane),
        }
    }

    /// Where padded row `y` of a channel starts in [`Buffers::rows`].
    fn row_at(&self, y: usize) -> usize {
        ((y % 2) * (self.th + 1) + y / 2) * self.wp
    }

    /// Copies one image into `rows` (padding positions keep the zeros they were made with).
    fn split_rows<T: Float>(&self, img: &[T], rows: &mut [T]) {
        let (w, pad) = (self.w, self.pad);
        for (src, dst) in img.chunks_exact(self.h * w).zip(rows.chunks_exact_mut(self.rows_plane())) {
            for (y, row) in src.chunks_exact(w).enumerate() {
                let at = self.row_at(y + pad) + pad;
                dst[at..at + w].copy_from_slice(row);
            }
        }
    }

    /// `V = Bᵀ·d·B` of every tile of one image held in `b.rows`, into `v`, laid out
    /// `[ξ][c][slot]`.
    fn input_transform<T: Float>(&self, b: &mut Buffers<T>, v: &mut [T]) {
        let (wp, slots, plane) = (self.wp, self.slots, self.th * self.wp);
        let [q0, q1, q2, q3] = rows(&mut b.planes, plane);
        let [qe0, qo0, qe1, qo1, qe2, qo2, qe3, qo3] = rows(&mut b.split, slots + 1);
        for (ci, img) in b.rows.chunks_exact(self.rows_plane()).enumerate() {
            let (even, odd) = img.split_at(img.len() / 2);
            // Down: (d0 − d2, d1 + d2, d2 − d1, d1 − d3) of rows 2ty..2ty + 4, which are even[ty],
            // odd[ty], even[ty + 1], odd[ty + 1].
            let (e0, e1, o0, o1) = (&even[..plane], &even[wp..], &odd[..plane], &odd[wp..]);
            map2(q0, e0, e1, |a, b| a - b);
            map2(q1, o0, e1, |a, b| a + b);
            map2(q2, e1, o0, |a, b| a - b);
            map2(q3, o0, o1, |a, b| a - b);
            // Across: tile t's four columns are qe[t], qo[t], qe[t + 1], qo[t + 1]; one slot
            // per tile, and the spare slot of each tile row is set to zero.
            let rows_q = [
                (&*q0, &mut *qe0, &mut *qo0),
                (&*q1, &mut *qe1, &mut *qo1),
                (&*q2, &mut *qe2, &mut *qo2),
                (&*q3, &mut *qe3, &mut *qo3),
            ];
            for (r, (q, qe, qo)) in rows_q.into_iter().enumerate() {
                deinterleave(q, qe, qo);
                let at = |s: usize| ((r * 4 + s) * self.c + ci) * slots;
                let (next_e, next_o) = (&qe[1..], &qo[1..]);
                map2(&mut v[at(0)..at(0) + slots], qe, next_e, |a, b| a - b);
                map2(&mut v[at(1)..at(1) + slots], qo, next_e, |a, b| a + b);
                map2(&mut v[at(2)..at(2) + slots], next_e, qo, |a, b| a - b);
                map2(&mut v[at(3)..at(3) + slots], qo, next_o, |a, b| a - b);
                for s in 0..4 {
                    self.clear_spare(&mut v[at(s)..at(s) + slots]);
                }
            }
        }
    }

    /// Zeroes the spare slots of one channel's points: the last of every tile row, and those
    /// past the last tile row.
    fn clear_spare<T: Float>(&self, points: &mut [T]) {
        let (rows, rest) = points.split_at_mut(self.th * self.row_slots);
        rows.chunks_exact_mut(self.row_slots).for_each(|row| row[self.tw] = T::ZERO);
        rest.fill(T::ZERO);
    }

    /// `Y = Aᵀ·M·A` of every tile, plus the bias, into `out`: some output channels of one image,
    /// `(o, OH, OW)`, whose points `m` holds as `[ξ][o][slot]`.
    fn output_transform<T: Float>(&self, m: &[T], bias: Option<&[T]>, out: &mut [MaybeUninit<T>], b: &mut Buffers<T>) {
        let (ow, slots, plane) = (self.ow, self.slots, self.th * self.wp);
        let o = out.len() / (self.oh * ow).max(1);
        let [p00, p01, p02, p03, p10, p11, p12, p13, ye, yo] = rows(&mut b.split, slots + 1);
        let y_rows = &mut b.planes[..plane];
        for (oi, image) in out.chunks_exact_mut(self.oh * ow).enumerate() {
            let bias = bias.map_or(T::ZERO, |b| b[oi]);
            let point = |xi: usize| &m[(xi * o + oi) * slots..][..slots];
            // Down each column s of points: (m0 + m1 + m2, m1 − m2 − m3).
            let columns =
                [(&mut *p00, &mut *p10), (&mut *p01, &mut *p11), (&mut *p02, &mut *p12), (&mut *p03, &mut *p13)];
            for (s, (p0, p1)) in columns.into_iter().enumerate() {
                let (m0, m1, m2, m3) = (point(s), point(4 + s), point(8 + s), point(12 + s));
                map3(p0, m0, m1, m2, |a, b, c| a + b + c);
                map3(p1, m1, m2, m3, |a, b, c| a - b - c);
            }
            // Across each of the two rows of a tile: (p0 + p1 + p2, p1 − p2 − p3), plus the
            // bias; then the rows of outputs, 2ty + i, out of the interleaved columns.
            for (i, [p0, p1, p2, p3]) in
                [[&*p00, &*p01, &*p02, &*p03], [&*p10, &*p11, &*p12, &*p13]].into_iter().enumerate()
            {
                map3(ye, p0, p1, p2, |a, c, d| a + c + d + bias);
                map3(yo, p1, p2, p3, |a, c, d| a - c - d + bias);
                interleave(y_rows, ye, yo);
                for (ty, from) in y_rows.chunks_exact(self.wp).enumerate() {
                    let y = 2 * ty + i;
                    if y < self.oh {
                        write_row(&mut image[y * ow..(y + 1) * ow], from);
                    }
                }
            }
        }
    }

    /// `∂M = A·∂Y·Aᵀ` of every tile of one output gradient image, into `dm` laid out like `M`
    /// (spare slots zero).
    fn output_adjoint<T: Float>(&self, dy: &[T], dm: &mut [T], b: &mut Buffers<T>) {
        let (ow, slots, plane) = (self.ow, self.slots, self.th * self.wp);
        let [ae, ao, be, bo, pa, pb] = rows(&mut b.split, slots + 1);
        let (rows_a, rows_b) = b.dy_rows.split_at_mut(plane);
        for (oi, image) in dy.chunks_exact(self.oh * ow).enumerate() {
            // Rows 2ty (into rows_a) and 2ty + 1 (rows_b) of ∂Y, which keep zeros past the
            // output; then their even and odd columns apart, one slot per tile.
            for (y, row) in image.chunks_exact(ow).enumerate() {
                let dst = if y % 2 == 0 { &mut *rows_a } else { &mut *rows_b };
                dst[(y / 2) * self.wp..][..ow].copy_from_slice(row);
            }
            for (pixels, e, o) in [(&*rows_a, &mut *ae, &mut *ao), (&*rows_b, &mut *be, &mut *bo)] {
                deinterleave(pixels, e, o);
                // Past the last tile row, zero: ∂M's spare slots are.
                e[plane / 2..].fill(T::ZERO);
                o[plane / 2..].fill(T::ZERO);
            }
            // With A's rows (1, 0), (1, 1), (1, −1), (0, −1): across each row, a pair (u, w)
            // gives (u, u + w, u − w, −w) for s = 0..4; down, a pair of rows (p0, p1) gives
            // (p0, p0 + p1, p0 − p1, −p1) for r = 0..4.
            for s in 0..4 {
                for (e, o, p) in [(&*ae, &*ao, &mut *pa), (&*be, &*bo, &mut *pb)] {
                    match s {
                        0 => map2(p, e, o, |u, _| u),
                        1 => map2(p, e, o, |u, w| u + w),
                        2 => map2(p, e, o, |u, w| u - w),
                        _ => map2(p, e, o, |_, w| -w),
                    }
                }
                let at = |r: usize| ((r * 4 + s) * self.o + oi) * slots;
                map2(&mut dm[at(0)..at(0) + slots], pa, pb, |a, _| a);
                map2(&mut dm[at(1)..at(1) + slots], pa, pb, |a, b| a + b);
                map2(&mut dm[at(2)..at(2) + slots], pa, pb, |a, b| a - b);
                map2(&mut dm[at(3)..at(3) + slots], pa, pb, |_, b| -b);
            }
        }
    }

    /// `B·∂V·Bᵀ` of every tile of one image, summed into `b.grad_rows` (zeroed here;
    /// neighbouring tiles overlap by two pixels, whose contributions sum).
    fn input_adjoint<T: Float>(&self, dv: &[T], b: &mut Buffers<T>) {
        let (wp, slots, plane) = (self.wp, self.slots, self.th * self.wp);
        let [q0, q1, q2, q3] = rows(&mut b.planes, plane);
        let [e0, o0, e1, o1, e2, o2, e3, o3] = rows(&mut b.split, slots + 1);
        b.grad_rows.fill(T::ZERO);
        for (ci, img) in b.grad_rows.chunks_exact_mut(self.rows_plane()).enumerate() {
            // Across: tile t adds (v0, v1 − v2 + v3) to columns 2t, 2t + 1 and
            // (v1 + v2 − v0, −v3) to columns 2t + 2, 2t + 3, the even and odd columns of the
            // next slot (a spare slot's points are zero, so a tile row's last tile reaches its
            // last two columns and no further).
            let rows_q = [
                (&mut *e0, &mut *o0, &mut *q0),
                (&mut *e1, &mut *o1, &mut *q1),
                (&mut *e2, &mut *o2, &mut *q2),
                (&mut *e3, &mut *o3, &mut *q3),
            ];
            for (r, (e, o, q)) in rows_q.into_iter().enumerate() {
                let point = |s: usize| &dv[((r * 4 + s) * self.c + ci) * slots..][..slots];
                let (v0, v1, v2, v3) = (point(0), point(1), point(2), point(3));
                e[..slots].copy_from_slice(v0);
                map3(o, v1, v2, v3, |a, b, c| a - b + c);
                (e[slots], o[slots]) = (T::ZERO, T::ZERO);
                update3(&mut e[1..], v1, v2, v0, |acc, a, b, c| acc + (a + b - c));
                update1(&mut o[1..], v3, |acc, a| acc - a);
                interleave(q, e, o);
            }
            // Down: rows 2ty..2ty + 4 (even[ty], odd[ty], even[ty + 1], odd[ty + 1]) gain
            // (q0, q1 − q2 + q3, q1 + q2 − q0, −q3).
            let (even, odd) = img.split_at_mut(img.len() / 2);
            update1(&mut even[..plane], q0, |acc, a| acc + a);
            update3(&mut odd[..plane], q1, q2, q3, |acc, a, b, c| acc + (a - b + c));
            update3(&mut even[wp..], q1, q2, q0, |acc, a, b, c| acc + (a + b - c));
            update1(&mut odd[wp..], q3, |acc, a| acc - a);
        }
    }

    /// Copies the image out of `rows` (dropping the padding): the inverse of
    /// [`Tiles::split_rows`].
    fn join_rows<T: Float>(&self, rows: &[T], img: &mut [MaybeUninit<T>]) {
        let (w, pad) = (self.w, self.pad);
        for (src, dst) in rows.chunks_exact(self.rows_plane()).zip(img.chunks_exact_mut(self.h * w)) {
            for (y, row) in dst.chunks_exact_mut(w).enumerate() {
                let at = self.row_at(y + pad) + pad;
                write_row(row, &src[at..]);
            }
        }
    }
}

/// `K` rows of `n` elements at the start of a scratch buffer.
fn rows<T, const K: usize>(scratch: &mut [T], n: usize) -> [&mut [T]; K] {
    let mut it = scratch.chunks_exact_mut(n);
    std::array::from_fn(|_| it.next().expect("the scratch buffer holds enough rows"))
}

/// Initializes all of `dst` with the first `dst.len()` elements of `src`.
fn write_row<T: Float>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    assert!(src.len() >= dst.len(), "write_row: {} elements to fill from {}", dst.len(), src.len());
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

/// Splits an even-length `src` into its elements at even and at odd positions.
fn deinterleave<T: Float>(src: &[T], even: &mut [T], odd: &mut [T]) {
    for (pair, (e, o)) in src.chunks_exact(2).zip(even.iter_mut().zip(odd.iter_mut())) {
        (*e, *o) = (pair[0], pair[1]);
    }
}

/// Fills an even-length `dst` with `even` and `odd` alternately (the inverse of
/// [`deinterleave`]).
fn interleave<T: Float>(dst: &mut [T], even: &[T], odd: &[T]) {
    for (pair, (&e, &o)) in dst.chunks_exact_mut(2).zip(even.iter().zip(odd)) {
        (pair[0], pair[1]) = (e, o);
    }
}

/// `dst[k] = f(a[k], b[k])` over the shortest of the three.
fn map2<T: Float>(dst: &mut [T], a: &[T], b: &[T], f: impl Fn(T, T) -> T) {
    for (d, (&x, &y)) in dst.iter_mut().zip(a.iter().zip(b)) {
        *d = f(x, y);
    }
}

/// `dst[k] = f(a[k], b[k], c[k])` over the shortest of the four.
fn map3<T: Float>(dst: &mut [T], a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T) -> T) {
    for (d, ((&x, &y), &z)) in dst.iter_mut().zip(a.iter().zip(b).zip(c)) {
        *d = f(x, y, z);
    }
}

/// `dst[k] = f(dst[k], a[k])` over the shorter of the two.
fn update1<T: Float>(dst: &mut [T], a: &[T], f: impl Fn(T, T) -> T) {
    for (d, &x) in dst.iter_mut().zip(a) {
        *d = f(*d, x);
    }
}

/// `dst[k] = f(dst[k], a[k], b[k], c[k])` over the shortest of the four.
fn update3<T: Float>(dst: &mut [T], a: &[T], b: &[T], c: &[T], f: impl Fn(T, T, T, T) -> T) {
    for (d, ((&x, &y), &z)) in dst.iter_mut().zip(a.iter().zip(b).zip(c)) {
        *d = f(*d, x, y, z);
    }
}

/// `U = G·g·Gᵀ` of every (O, C) kernel of a (O, C, 3, 3) weight, laid out `[ξ][c][o]`, with G's
/// rows (1, 0, 0), (½, ½, ½), (½, −½, ½), (0, 0, 1).
fn weight_transform<T: Float>(w: &[T], o: usize, c: usize) -> Vec<T> {
    let half = T::from_f64(0.5);
    let g1 = |a: T, b: T, c: T| [a, (a + b + c) * half, (a - b + c) * half, c];
    let mut u = recycle::zeros(POINTS * o * c);
    for (k, g) in w.chunks_exact(9).enumerate() {
        let at = (k % c) * o + k / c;
        // Down each kernel column, then across each of the four rows.
        let cols = [g1(g[0], g[3], g[6]), g1(g[1], g[4], g[7]), g1(g[2], g[5], g[8])];
        for r in 0..4 {
            for (s, val) in g1(cols[0][r], cols[1][r], cols[2][r]).into_iter().enumerate() {
                u[(r * 4 + s) * o * c + at] = val;
            }
        }
    }
    u
}

/// The adjoint of [`weight_transform`]: `∂g = Gᵀ·∂U·G` for every (O, C) kernel, as an
/// (O, C, 3, 3) gradient.
fn weight_adjoint<T: Float>(du: &[T], o: usize, c: usize) -> Vec<T> {
    let half = T::from_f64(0.5);
    let g1t = |u: [T; 4]| [u[0] + (u[1] + u[2]) * half, (u[1] - u[2]) * half, (u[1] + u[2]) * half + u[3]];
    let mut gw = recycle::zeros(o * c * 9);
    for (k, g) in gw.chunks_exact_mut(9).enumerate() {
        let at = (k % c) * o + k / c;
        let point = |r: usize, s: usize| du[(r * 4 + s) * o * c + at];
        // Across each of the four rows (s → j), then down each kernel column (r → i).
        let rows: [[T; 3]; 4] = std::array::from_fn(|r| g1t([point(r, 0), point(r, 1), point(r, 2), point(r, 3)]));
        for j in 0..3 {
            let col = g1t([rows[0][j], rows[1][j], rows[2][j], rows[3][j]]);
            for i in 0..3 {
                g[i * 3 + j] = col[i];
            }
        }
    }
    gw
}

/// The forward convolution of `x` (N, C, H, W) by `w` (O, C, 3, 3), stride 1, zero padding
/// `pad`, plus `bias` (O) if given.
pub(crate) fn forward<T: Float>(x: &Tensor<T>, w: &Tensor<T>, bias: Option<&Tensor<T>>, pad: usize) -> Tensor<T> {
    let t = Tiles::of(x.shape(), w.shape(), pad);
    let u = weight_transform(w.data(), t.o, t.c);
    let (src, plane, per) = (x.data(), t.c * t.h * t.w, t.o * t.oh * t.ow);
    let (slots, bias) = (t.slots, bias.map(Tensor::data));
    let len = t.n * per;
    let mut out: Vec<T> = recycle::take(len);
    if per > 0 {
        out.spare_capacity_mut()[..len].par_chunks_mut(t.group * per).enumerate().for_each(|(g, chunk)| {
            let mut buf = t.buffers(Uses { rows: true, grad_rows: false, dy_rows: false });
            let mut v = recycle::zeros(POINTS * t.c * slots);
            let mut m = recycle::zeros(POINTS * OUT_BAND.min(t.o) * slots);
            for (j, out_b) in chunk.chunks_mut(per).enumerate() {
                let b = g * t.group + j;
                t.split_rows(&src[b * plane..(b + 1) * plane], &mut buf.rows);
                t.input_transform(&mut buf, &mut v);
                for (band, out) in out_b.chunks_mut(OUT_BAND * t.oh * t.ow).enumerate() {
                    let (lo, o) = (band * OUT_BAND, out.len() / (t.oh * t.ow));
                    for xi in 0..POINTS {
                        let u_xi = Operand::transposed(&u[xi * t.o * t.c + lo..(xi + 1) * t.o * t.c], t.o);
                        let v_xi = Operand::by_rows(&v[xi * t.c * slots..(xi + 1) * t.c * slots], slots);
                        let m_xi = &mut m[xi * o * slots..(xi + 1) * o * slots];
                        gemm_overwrite(m_xi, (o, t.c, slots), u_xi, v_xi, t.inner);
                    }
                    t.output_transform(&m[..POINTS * o * slots], bias.map(|b| &b[lo..lo + o]), out, &mut buf);
                }
            }
        });
    }
    // SAFETY: the chunks of `per` = O·OH·OW elements partition the first `len` slots of `out`'s
    // capacity (or it is empty), and output_transform wrote every element of each: for every
    // output channel of the chunk, every row y < OH (y = 2·ty + i, ty < th = ⌈OH/2⌉, i < 2), all
    // OW elements of it.
    unsafe { uninit::assume_init(&mut out, len) };
    Tensor::from_vec(out, &[t.n, t.o, t.oh, t.ow])
}

/// The gradients of [`forward`] with respect to the input, the weight and the bias (each if
/// asked for in `needs`), for the output gradient `grad`.
pub(crate) fn backward<T: Float>(
    x: &Tensor<T>,
    w: &Tensor<T>,
    has_bias: bool,
    pad: usize,
    grad: &Tensor<T>,
    needs: &[bool],
) -> TensorGrads<T> {
    let t = Tiles::of(x.shape(), w.shape(), pad);
    let (need_x, need_w) = (needs[0], needs[1]);
    let need_b = has_bias && needs[2];
    // U is only read for the input's gradient (∂V = Uᵀ·∂M).
    let u = if need_x { weight_transform(w.data(), t.o, t.c) } else { Vec::new() };
    let (src, g) = (x.data(), grad.data());
    let (plane, per, slots) = (t.c * t.h * t.w, t.o * t.oh * t.ow, t.slots);
    let gx_len = if need_x { t.n * plane } else { 0 };
    let mut gx: Vec<T> = recycle::take(gx_len);
    let groups = t.n.div_ceil(t.group);
    let gx_groups: Vec<&mut [MaybeUninit<T>]> = if need_x {
        gx.spare_capacity_mut()[..gx_len].chunks_mut(t.group * plane).collect()
    } else {
        (0..groups).map(|_| <&mut [MaybeUninit<T>]>::default()).collect()
    };
    // Each thread sums its images' ∂U (and bias gradient) into buffers of its own; the few
    // buffers are added at the end.
    let zeros = |n: usize| recycle::zeros(n);
    let (du, db) = gx_groups
        .into_par_iter()
        .enumerate()
        .map(|(gi, gx_group)| {
            {
                let (mut du, mut db) = (zeros(POINTS * t.o * t.c), zeros(t.o));
                let mut buf = t.buffers(Uses { rows: need_w, grad_rows: need_x, dy_rows: need_x || need_w });
                let mut v = zeros(if need_w { POINTS * t.c * slots } else { 0 });
                let mut dv = zeros(if need_x { POINTS * t.c * slots } else { 0 });
                let mut dm = zeros(POINTS * t.o * slots);
                let first = gi * t.group;
                for b in first..(first + t.group).min(t.n) {
                    let g_b = &g[b * per..(b + 1) * per];
                    if need_b {
                        for (d, img) in db.iter_mut().zip(g_b.chunks_exact((t.oh * t.ow).max(1))) {
                            *d += img.iter().fold(T::ZERO, |acc, &v| acc + v);
                        }
                    }
                    if !(need_x || need_w) {
                        continue;
                    }
                    t.output_adjoint(g_b, &mut dm, &mut buf);
                    if need_w {
                        t.split_rows(&src[b * plane..(b + 1) * plane], &mut buf.rows);
                        t.input_transform(&mut buf, &mut v);
                        for xi in 0..POINTS {
                            // ∂U_ξ kept as (C, O), like U: gemm then runs along the 64 output
                            // channels rather than the 32 input ones, its full micro-kernel height.
                            let dm_xi = Operand::transposed(&dm[xi * t.o * slots..(xi + 1) * t.o * slots], slots);
                            let v_xi = Operand::by_rows(&v[xi * t.c * slots..(xi + 1) * t.c * slots], slots);
                            let du_xi = &mut du[xi * t.o * t.c..(xi + 1) * t.o * t.c];
                            gemm_accumulate(du_xi, (t.c, slots, t.o), v_xi, dm_xi, t.inner);
                        }
                    }
                    if need_x {
                        for xi in 0..POINTS {
                            let u_xi = Operand::by_rows(&u[xi * t.o * t.c..(xi + 1) * t.o * t.c], t.o);
                            let dm_xi = Operand::by_rows(&dm[xi * t.o * slots..(xi + 1) * t.o * slots], slots);
                            let dv_xi = &mut dv[xi * t.c * slots..(xi + 1) * t.c * slots];
                            gemm_overwrite(dv_xi, (t.c, t.o, slots), u_xi, dm_xi, t.inner);
                            // Zero as ∂M's spare slots are, whatever the weights hold.
                            dv_xi.chunks_exact_mut(slots).for_each(|points| t.clear_spare(points));
                        }
                        t.input_adjoint(&dv, &mut buf);
                        let j = b - first;
                        t.join_rows(&buf.grad_rows, &mut gx_group[j * plane..(j + 1) * plane]);
                    }
                }
                (du, db)
            }
        })
        .reduce_with(|(mut du, mut db), (du2, db2)| {
            du.iter_mut().zip(&du2).for_each(|(a, &b)| *a += b);
            db.iter_mut().zip(&db2).for_each(|(a, &b)| *a += b);
            (du, db)
        })
        .unwrap_or_else(|| (zeros(POINTS * t.o * t.c), zeros(t.o)));
    // SAFETY: with need_x, the groups of `t.group·plane` elements partition the first `gx_len`
    // slots of `gx`'s capacity, each image's `plane` of them written whole by join_rows (every
    // channel, row and column of the image); without, `gx_len` is 0.
    unsafe { uninit::assume_init(&mut gx, gx_len) };
    let mut grads = smallvec::smallvec![
        need_x.then(|| Tensor::from_vec(gx, x.shape())),
        need_w.then(|| Tensor::from_vec(weight_adjoint(&du, t.o, t.c), w.shape())),
    ];
    if has_bias {
        grads.push(need_b.then(|| Tensor::from_vec(db, &[t.o])));
    }
    grads
}

#[cfg(test)]
mod tests {
    use super::{weight_adjoint, weight_transform, MIN_CHANNELS, OUT_BAND};
    use crate::check::{assert_close, filled, gradcheck};
    use crate::{Tape, Var};

    /// The convolution as im2col and one product, which shares no code with this module.
    fn by_im2col<'t>(x: Var<'t, f64>, w: Var<'t, f64>, pad: usize) -> Var<'t, f64> {
        let (xs, ws) = (x.shape(), w.shape());
        let (oh, ow) = (xs[2] + 2 * pad - 2, xs[3] + 2 * pad - 2);
        let cols = x.im2col((3, 3), 1, pad);
        w.reshape(&[ws[0], ws[1] * 9]).matmul(cols).reshape(&[xs[0], ws[0], oh, ow])
    }

    #[test]
    fn matches_im2col_forward_and_backward() {
        // Even and odd output sizes, with and without padding, several images per thread, and
        // output channels in one band or in two.
        let two_bands = OUT_BAND + 3;
        for (h, w, pad, o) in [(6, 6, 0, 3), (7, 5, 0, two_bands), (6, 7, 1, 3), (5, 4, 2, two_bands), (3, 3, 0, 3)] {
            let c = MIN_CHANNELS + 1;
            let (x, wt, b) = (filled(&[5, c, h, w], 1), filled(&[o, c, 3, 3], 2), filled(&[o], 3));
            let tape = Tape::<f64>::new();
            let (xv, wv, bv) = (tape.var(x), tape.var(wt), tape.var(b));
            let y = xv.conv2d_with_bias(wv, bv, 1, pad);
            let want = by_im2col(xv, wv, pad) + bv.reshape(&[1, o, 1, 1]);
            assert_close(&y.value(), &want.value(), 1e-12, 1e-12);
            // The fused backward (this module's) against the one composed of im2col, col2im and
            // matmul.
            let loss = (y * tape.constant(filled(&y.shape(), 4))).sum();
            let fused = loss.backward();
            let composed = tape.grad(loss, &[xv, wv, bv]);
            for (v, c) in [xv, wv, bv].into_iter().zip(&composed) {
                assert_close(&fused[v], &c.value(), 1e-12, 1e-12);
            }
        }
    }

    #[test]
    fn one_image_in_f32_matches_im2col() {
        // A batch of one splits each product across threads instead.
        let (x, w) = (filled(&[1, MIN_CHANNELS, 12, 12], 5), filled(&[8, MIN_CHANNELS, 3, 3], 6));
        let tape = Tape::<f64>::new();
        let want = by_im2col(tape.var(x.clone()), tape.var(w.clone()), 1).value();
        let tape = Tape::<f32>::new();
        let (xv, wv) = (tape.var(x.cast::<f32>()), tape.var(w.cast::<f32>()));
        let y = xv.conv2d(wv, 1, 1);
        assert_close(&y.value(), &want.cast::<f32>(), 1e-4, 1e-4);
        let fused = (y * y).sum().backward();
        let tape64 = Tape::<f64>::new();
        let (x64, w64) = (tape64.var(x), tape64.var(w));
        let y64 = by_im2col(x64, w64, 1);
        let want = (y64 * y64).sum().backward();
        assert_close(&fused[xv], &want[x64].cast::<f32>(), 1e-3, 1e-4);
        assert_close(&fused[wv], &want[w64].cast::<f32>(), 1e-2, 1e-4);
    }

    #[test]
    fn gradients_match_finite_differences() {
        gradcheck(
            |v| v[0].conv2d_with_bias(v[1], v[2], 1, 1).tanh().mean(),
            &[filled(&[2, MIN_CHANNELS, 3, 4], 7), filled(&[2, MIN_CHANNELS, 3, 3], 8), filled(&[2], 9)],
        );
    }

    #[test]
    fn only_the_gradients_asked_for() {
        // Each pass allocates only the buffers (and builds U only) for what is asked: the
        // weight's gradient alone, then the input's alone.
        let tape = Tape::<f64>::new();
        let x = tape.constant(filled(&[2, MIN_CHANNELS, 5, 5], 10));
        let w = tape.var(filled(&[2, MIN_CHANNELS, 3, 3], 11));
        let grads = x.conv2d(w, 1, 0).sum().backward();
        assert!(grads.get(x).is_none());
        let want = by_im2col(x, w, 0).sum().backward();
        assert_close(&grads[w], &want[w], 1e-12, 1e-12);

        let x = tape.var(filled(&[2, MIN_CHANNELS, 5, 5], 10));
        let w = tape.constant(filled(&[2, MIN_CHANNELS, 3, 3], 11));
        let grads = (x.conv2d(w, 1, 1) * tape.constant(filled(&[2, 2, 5, 5], 12))).sum().backward();
        assert!(grads.get(w).is_none());
        let want = (by_im2col(x, w, 1) * tape.constant(filled(&[2, 2, 5, 5], 12))).sum().backward();
        assert_close(&grads[x], &want[x], 1e-12, 1e-12);
    }

    #[test]
    fn weight_transform_and_adjoint_are_adjoint() {
        // ⟨U(g), u⟩ = ⟨g, U*(u)⟩.
        let (o, c) = (3, 2);
        let g = filled(&[o, c, 3, 3], 12);
        let u = filled(&[16 * o * c], 13);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let lhs = dot(&weight_transform(g.data(), o, c), u.data());
        let rhs = dot(g.data(), &weight_adjoint(u.data(), o, c));
        assert!((lhs - rhs).abs() < 1e-12, "{lhs} vs {rhs}");
        // G's second row is (½, ½, ½), so point (1, 1) of U is the kernel's sum over 4.
        let first: f64 = g.data()[..9].iter().sum();
        assert!((weight_transform(g.data(), o, c)[5 * o * c] - first / 4.0).abs() < 1e-12);
    }
}

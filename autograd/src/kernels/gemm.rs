//! Matrix products through the `gemm` crate: `Operand` (a matrix as a slice and two
//! strides, so that a transpose is a change of strides rather than a copy) and the safe
//! wrappers every product in autograd goes through, which check that the strides stay inside
//! each operand's slice before handing raw pointers to `gemm`.

use std::mem::MaybeUninit;

use gemm::Parallelism;

use super::uninit::{self, Written};
use crate::Float;

/// How a batch of `n` independent products (a convolution's images) is split across threads:
/// the products per thread (one contiguous group each), and how each product runs: alone when
/// the batch keeps every thread busy, split across threads by gemm when it does not (a batch of
/// one image, say).
pub(crate) fn batch_split(n: usize) -> (usize, Parallelism) {
    let threads = rayon::current_num_threads();
    (n.div_ceil(threads).max(1), if n >= threads { Parallelism::None } else { Parallelism::Rayon(0) })
}

/// One row-major matrix operand: its elements and the strides (in elements) of its logical
/// rows and columns.
#[derive(Clone, Copy)]
pub(crate) struct Operand<'a, T> {
    pub data: &'a [T],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a, T> Operand<'a, T> {
    /// A row-major matrix whose rows are `row_stride` elements apart.
    pub fn by_rows(data: &'a [T], row_stride: usize) -> Self {
        Operand { data, row_stride, col_stride: 1 }
    }

    /// The transpose of a row-major `_ × row_stride` matrix.
    pub fn transposed(data: &'a [T], row_stride: usize) -> Self {
        Operand { data, row_stride: 1, col_stride: row_stride }
    }
}

/// Runs `dst = lhs · rhs` (or `dst += lhs · rhs` when `accumulate`) for an `m × k` `lhs` and a
/// `k × n` `rhs` into the row-major `m × n` matrix at `dst`, after checking that every operand
/// element the strides reach lies inside its slice.
///
/// # Safety
/// `dst` must be valid for writes of `m·n` elements, aliasing neither operand, and, when
/// `accumulate`, initialized (it is read).
///
/// # Panics
/// If a stride reaches past an operand's data.
unsafe fn gemm_raw<T: Float>(
    dst: *mut T,
    (m, k, n): (usize, usize, usize),
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    accumulate: bool,
    parallelism: Parallelism,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k > 0 {
        // The furthest element each operand is read at, for (row, col) = (m − 1, k − 1) and
        // (k − 1, n − 1): strides are non-negative, so every other element read lies below it.
        assert!(
            (m - 1) * lhs.row_stride + (k - 1) * lhs.col_stride < lhs.data.len(),
            "gemm: lhs strides reach past its data"
        );
        assert!(
            (k - 1) * rhs.row_stride + (n - 1) * rhs.col_stride < rhs.data.len(),
            "gemm: rhs strides reach past its data"
        );
    }
    let isize_of = |x: usize| isize::try_from(x).expect("a stride fits in isize");
    // SAFETY: `dst` is valid for writes (and, when accumulating, reads) of m·n elements laid out
    // row-major (row stride n, column stride 1), by this function's contract; gemm writes each
    // of them exactly once and reads them only with read_dst = accumulate (it zeroes them when
    // k = 0 and not accumulating). The operands are valid for reads at every (i, p) ·
    // (row_stride, col_stride) with i < m (resp. k) and p < k (resp. n): the largest such offset
    // was checked against each slice's length above, and nothing is read when k = 0. `T: Float`
    // is f32 or f64, both of which gemm supports (it panics, rather than misbehaving, on any
    // other type).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            isize_of(n),
            accumulate,
            lhs.data.as_ptr(),
            isize_of(lhs.col_stride),
            isize_of(lhs.row_stride),
            rhs.data.as_ptr(),
            isize_of(rhs.col_stride),
            isize_of(rhs.row_stride),
            if accumulate { T::ONE } else { T::ZERO },
            T::ONE,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Writes `dst = lhs · rhs` for an `m × k` `lhs` and a `k × n` `rhs`, into a row-major `m × n`
/// `dst`. Every element of `dst` is written and none is read, so `dst` may be uninitialized; the
/// returned proof says so (see [`uninit`]).
///
/// # Panics
/// If `dst` does not hold `m·n` elements or a stride reaches past an operand's data.
pub(crate) fn gemm_into<'a, T: Float>(
    dst: &'a mut [MaybeUninit<T>],
    mkn: (usize, usize, usize),
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    parallelism: Parallelism,
) -> Written<'a, T> {
    assert_eq!(dst.len(), mkn.0 * mkn.2, "gemm_into: destination size");
    // SAFETY: `dst` holds m·n elements (checked) and is a distinct `&mut` borrow, so it aliases
    // neither operand; without accumulating, gemm_raw does not read it, so it may be
    // uninitialized.
    unsafe { gemm_raw(dst.as_mut_ptr().cast::<T>(), mkn, lhs, rhs, false, parallelism) };
    // SAFETY: gemm_raw wrote every one of the m·n elements of `dst` (it returns early only
    // when m·n = 0, and writes zeros when k = 0).
    unsafe { Written::assume(dst) }
}

/// `lhs · rhs` for an `m × k` `lhs` and a `k × n` `rhs`, as a new row-major `m × n` vector.
///
/// # Panics
/// If a stride reaches past an operand's data.
pub(crate) fn gemm_new<T: Float>(
    mkn: (usize, usize, usize),
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    parallelism: Parallelism,
) -> Vec<T> {
    uninit::new_vec(mkn.0 * mkn.2, |dst| gemm_into(dst, mkn, lhs, rhs, parallelism))
}

/// [`gemm_into`] over an initialized destination, which it overwrites.
pub(crate) fn gemm_overwrite<T: Float>(
    dst: &mut [T],
    mkn: (usize, usize, usize),
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    parallelism: Parallelism,
) {
    assert_eq!(dst.len(), mkn.0 * mkn.2, "gemm_overwrite: destination size");
    // SAFETY: `dst` holds m·n initialized elements (checked) and is a distinct `&mut` borrow,
    // so it aliases neither operand.
    unsafe { gemm_raw(dst.as_mut_ptr(), mkn, lhs, rhs, false, parallelism) }
}

/// `dst += lhs · rhs`, with the sizes and layout of [`gemm_into`].
pub(crate) fn gemm_accumulate<T: Float>(
    dst: &mut [T],
    mkn: (usize, usize, usize),
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    parallelism: Parallelism,
) {
    assert_eq!(dst.len(), mkn.0 * mkn.2, "gemm_accumulate: destination size");
    // SAFETY: `dst` holds m·n initialized elements (checked), which gemm reads and writes, and
    // is a distinct `&mut` borrow, so it aliases neither operand.
    unsafe { gemm_raw(dst.as_mut_ptr(), mkn, lhs, rhs, true, parallelism) }
}

/// `dst = a · b` for a row-major `m × k` matrix `a` and `k × n` matrix `b`, straight through the
/// `gemm` crate on rayon's threads, with no tape, no tensor and no buffer reuse: the reference
/// that `pente bench` measures `matmul` against.
///
/// ```
/// let (a, b) = ([1.0f32, 2.0, 3.0, 4.0], [5.0f32, 6.0, 7.0, 8.0]);
/// let mut c = [0.0f32; 4];
/// autograd::kernels::gemm::product(&mut c, (2, 2, 2), &a, &b);
/// assert_eq!(c, [19.0, 22.0, 43.0, 50.0]);
/// ```
///
/// # Panics
/// If `a`, `b` or `dst` does not hold `m·k`, `k·n` or `m·n` elements.
pub fn product<T: Float>(dst: &mut [T], (m, k, n): (usize, usize, usize), a: &[T], b: &[T]) {
    assert!(a.len() == m * k && b.len() == k * n, "gemm::product: operands are not m×k and k×n");
    gemm_overwrite(dst, (m, k, n), Operand::by_rows(a, k), Operand::by_rows(b, n), Parallelism::Rayon(0));
}

//! Products of small matrices (a few dozen rows and columns) computed in registers, without the
//! packing, the workspace allocation and the dispatch of a call to the `gemm` crate; and the
//! triangular shapes of causal attention, where half of every product is known to be zero.
//!
//! Attention's per-head products (char-gpt's are 64 × 32 × 64) are too small for the `gemm`
//! crate's packing to pay, and each call allocated its packing buffers: with both workers doing
//! so at once, they queued on the allocator's lock. Here a block of [`MR`] rows and [`NR`]
//! columns of the result lives in a fixed-size array the compiler keeps in vector registers,
//! updated by one row of the right operand (contiguous, `NR` wide) and one element of each of
//! the left operand's rows per step of the inner dimension.

use super::gemm::Operand;
use crate::Float;

/// Rows of the result computed together (each reads one element of the left operand per step).
const MR: usize = 8;
/// Columns of the result computed together: one contiguous run of the right operand's row.
const NR: usize = 16;

/// Which part of a product is computed, for the triangular products of causal attention. Row
/// `i` of the result is one query (or, for the transposed products, one key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    /// Every element (the tests' general products).
    #[cfg(test)]
    Full,
    /// Row `i` needs only its columns `j ≤ i` (scores `q·kᵀ` and their gradient `G·vᵀ`); the
    /// others may be left as they were, or computed.
    LowerColumns,
    /// The inner index `p` runs only over `p ≤ i`, because the left operand is zero beyond
    /// (probabilities times values: `P·v`, `dS·k`).
    InnerUpToRow,
    /// The inner index `p` runs only over `p ≥ i`, because the left operand is zero before it
    /// (the transposed products `Pᵀ·G`, `dSᵀ·q`).
    InnerFromRow,
}

/// `dst = a · b` for an `m × k` `a` and a `k × n` `b` whose rows are contiguous
/// (`b.col_stride == 1`), into the `m × n` block of `dst` whose rows are `dst_row_stride` apart,
/// computing the [`Part`] asked for (elements outside it are left untouched).
///
/// `f32` products run on [`avx512`]'s wider block on a CPU with AVX-512 (chosen at run time,
/// see [`simd`](crate::simd)); the sums are the same, in the same order, each step fused, so the
/// results are identical to the generic block's at every level.
///
/// # Panics
/// If `b`'s columns are not contiguous, `dst_row_stride < n`, or an operand's or the
/// destination's last element lies past its slice.
pub(crate) fn product<T: Float>(
    dst: &mut [T],
    dst_row_stride: usize,
    mkn: (usize, usize, usize),
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    part: Part,
) {
    check(dst.len(), dst_row_stride, mkn, a, b);
    #[cfg(target_arch = "x86_64")]
    if crate::simd::level() >= crate::simd::Level::Avx512 {
        if let (Some(a32), Some(b32)) = (T::as_f32s(a.data), T::as_f32s(b.data)) {
            let dst = T::as_f32s_mut(dst).expect("the destination is f32 when its operands are");
            let a = Operand { data: a32, row_stride: a.row_stride, col_stride: a.col_stride };
            let b = Operand { data: b32, row_stride: b.row_stride, col_stride: b.col_stride };
            // SAFETY: the level is `Avx512` only where `simd::detected` found AVX-512 F (and
            // FMA, part of the `Avx2` level below it) on this CPU, the features `avx512::product`
            // is compiled for; and `check` passed for these lengths, sizes and strides, which is
            // its contract.
            unsafe { avx512::product(dst, dst_row_stride, mkn, a, b, part) };
            return;
        }
    }
    generic_product(dst, dst_row_stride, mkn, a, b, part);
}

crate::simd::kernel! {
    /// [`product`] with the generic block, for operands that passed [`check`].
    fn generic_product[T: Float](
        dst: &mut [T],
        dst_row_stride: usize,
        mkn: (usize, usize, usize),
        a: Operand<'_, T>,
        b: Operand<'_, T>,
        part: Part,
    ) where [] {
        // SAFETY: `product`, the only caller, ran `check` on these arguments, which is the
        // contract of `blocks`; `blocks` calls the closure only as its contract for `block` says
        // (rows of `a` below `m`, `p < k`, `j0 + NR ≤ n`).
        unsafe { blocks::<T, MR, NR>(dst, dst_row_stride, mkn, a, b, part, |r, j0, ps| block(r, a, b, j0, ps)) }
    }
}

/// The checks that make every read and write of [`blocks`] land inside its slice: `b`'s rows
/// contiguous, `dst`'s rows not overlapping, and each operand's and the destination's last
/// element inside it.
fn check<T>(
    dst_len: usize,
    dst_row_stride: usize,
    (m, k, n): (usize, usize, usize),
    a: Operand<'_, T>,
    b: Operand<'_, T>,
) {
    assert_eq!(b.col_stride, 1, "tile::product: the right operand's rows must be contiguous");
    assert!(dst_row_stride >= n, "tile::product: destination rows overlap");
    if m == 0 || n == 0 {
        return;
    }
    // Offsets computed saturating: one that overflows becomes usize::MAX and fails its check.
    let end = |i: usize, s: usize, j: usize| i.saturating_mul(s).saturating_add(j);
    assert!(end(m - 1, dst_row_stride, n) <= dst_len, "tile::product: destination too short");
    if k > 0 {
        let last_a = end(k - 1, a.col_stride, 0).saturating_add(end(m - 1, a.row_stride, 0));
        assert!(last_a < a.data.len(), "tile::product: lhs too short");
        assert!(end(k - 1, b.row_stride, n) <= b.data.len(), "tile::product: rhs too short");
    }
}

/// The product cut into `BM × BN` blocks, each computed by `block(rows, j0, ps)` (the block at
/// columns `j0..j0 + BN` for the rows of `a` starting at the offsets `rows`, summed over the
/// inner indices `ps`), and the columns past the last whole block one element at a time.
///
/// # Safety
/// [`check`] must have passed for `dst.len()`, `dst_row_stride`, the sizes and the operands, and
/// `block` must be sound to call with any `rows`, `j0` and `ps` such that every `rows[r]` is at
/// most `(m − 1)·a.row_stride`, `ps` lies within `0..k`, and `j0 + BN ≤ n`: the only ones it is
/// called with.
#[inline(always)]
unsafe fn blocks<T: Float, const BM: usize, const BN: usize>(
    dst: &mut [T],
    dst_row_stride: usize,
    (m, k, n): (usize, usize, usize),
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    part: Part,
    block: impl Fn(&[usize; BM], usize, std::ops::Range<usize>) -> [[T; BN]; BM],
) {
    if m == 0 || n == 0 {
        return;
    }
    for i0 in (0..m).step_by(BM) {
        let last = (i0 + BM).min(m); // one past the block's last row
        let (p_from, p_to, n_end) = match part {
            #[cfg(test)]
            Part::Full => (0, k, n),
            Part::LowerColumns => (0, k, n.min(last)),
            Part::InnerUpToRow => (0, k.min(last), n),
            Part::InnerFromRow => (i0.min(k), k, n),
        };
        // Row i0 + r of the block reads row `rows[r]` of `a`: the block's last row stands in for
        // rows past `m`, whose results are not stored.
        let rows: [usize; BM] = std::array::from_fn(|r| (i0 + r).min(m - 1) * a.row_stride);
        let mut j0 = 0;
        while j0 < n_end {
            if j0 + BN <= n {
                // Within `block`'s contract: `rows[r] ≤ (m − 1)·a.row_stride`, `p_from..p_to`
                // within `0..k`, and `j0 + BN ≤ n`.
                let acc = block(&rows, j0, p_from..p_to);
                for (r, acc_row) in acc.iter().enumerate().take(last - i0) {
                    let start = (i0 + r) * dst_row_stride + j0;
                    dst[start..start + BN].copy_from_slice(acc_row);
                }
                j0 += BN;
            } else {
                // The columns past the last whole block, one element at a time.
                for i in i0..last {
                    for j in j0..n_end {
                        let mut s = T::ZERO;
                        for p in p_from..p_to {
                            s = a.data[i * a.row_stride + p * a.col_stride].mul_add(b.data[p * b.row_stride + j], s);
                        }
                        dst[i * dst_row_stride + j] = s;
                    }
                }
                break;
            }
        }
    }
}

/// The `MR × NR` block of `a · b` at columns `j0..j0 + NR`, for the rows of `a` starting at the
/// offsets `rows`, summed over the inner indices `ps`.
///
/// # Safety
/// Every element read must lie inside its operand: `rows[r] + p·a.col_stride < a.data.len()` and
/// `p·b.row_stride + j0 + NR ≤ b.data.len()` for every `r` and every `p` in `ps`. (Given
/// [`check`], that holds for the arguments of [`blocks`]'s contract.)
#[inline(always)]
unsafe fn block<T: Float>(
    rows: &[usize; MR],
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    j0: usize,
    ps: std::ops::Range<usize>,
) -> [[T; NR]; MR] {
    let mut acc = [[T::ZERO; NR]; MR];
    // Each row's first element and the first column's first element: in the loop, one offset
    // per step moves all of them (`p·a.col_stride` and `p·b.row_stride`).
    let a_rows: [*const T; MR] = std::array::from_fn(|r| a.data.as_ptr().wrapping_add(rows[r]));
    let b_col = b.data.as_ptr().wrapping_add(j0);
    for p in ps {
        // SAFETY: both reads are in bounds by this function's contract: `a_rows[r] + p·a.col_stride`
        // is element `rows[r] + p·a.col_stride` of `a`, and `b_col + p·b.row_stride + j` for
        // `j < NR` is element `p·b.row_stride + j0 + j` of `b`. Unchecked, the loop is the
        // MR·NR/lanes multiply-adds, the MR broadcasts and the NR/lanes loads it needs; checked,
        // it ran about twice as many instructions.
        unsafe {
            let (a_off, b_row) = (p * a.col_stride, b_col.add(p * b.row_stride));
            for (acc_row, a_row) in acc.iter_mut().zip(&a_rows) {
                let x = *a_row.add(a_off);
                for (j, s) in acc_row.iter_mut().enumerate() {
                    *s = x.mul_add(*b_row.add(j), *s);
                }
            }
        }
    }
    acc
}

/// The `f32` block on AVX-512: 8 rows by 32 columns, in 16 registers of 16 lanes. The generic
/// block compiles to 256-bit vectors (the width the compiler prefers on these CPUs, kept for the
/// element-wise code), half the multiply-adds per instruction. With this block, char-gpt's
/// attention backward took 119–134 ms over 60 steps against 134–136 (three runs each, timing
/// each op; the forward within noise); the compiler's own 512-bit code for the generic block,
/// with the preference turned off for the whole build, had made attention 5–8 times slower.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_set1_ps, _mm512_setzero_ps, _mm512_storeu_ps,
    };

    use super::{blocks, Part};
    use crate::kernels::gemm::Operand;

    /// [`super::product`] for `f32` with the `8 × 32` block, compiled for AVX-512 (and FMA):
    /// `blocks` and `block` are inlined here, so the intrinsics compile to single instructions.
    ///
    /// # Safety
    /// The CPU has AVX-512 F and FMA; and `super::check` passed for these arguments.
    #[target_feature(enable = "avx512f,fma")]
    pub(super) unsafe fn product(
        dst: &mut [f32],
        dst_row_stride: usize,
        mkn: (usize, usize, usize),
        a: Operand<'_, f32>,
        b: Operand<'_, f32>,
        part: Part,
    ) {
        // SAFETY: `check` passed (this function's contract), which is `blocks`'s; `blocks` calls
        // the closure only as `block`'s contract says (rows of `a` below `m`, `p < k`,
        // `j0 + 32 ≤ n`); the CPU features are this function's contract too.
        unsafe { blocks::<f32, 8, 32>(dst, dst_row_stride, mkn, a, b, part, |r, j0, ps| block(r, a, b, j0, ps)) }
    }

    /// The `8 × 32` block of `a · b` at columns `j0..j0 + 32`, for the rows of `a` starting at
    /// the offsets `rows`, summed over the inner indices `ps`: the generic block's sums, in the
    /// same order, each step one fused multiply-add (as the generic block's `mul_add` is, at
    /// every level: see [`Float::mul_add`](crate::Float::mul_add)).
    ///
    /// # Safety
    /// As the generic block's: `rows[r] + p·a.col_stride < a.data.len()` and
    /// `p·b.row_stride + j0 + 32 ≤ b.data.len()` for every `r` and every `p` in `ps`.
    #[inline(always)]
    pub(super) unsafe fn block(
        rows: &[usize; 8],
        a: Operand<'_, f32>,
        b: Operand<'_, f32>,
        j0: usize,
        ps: std::ops::Range<usize>,
    ) -> [[f32; 32]; 8] {
        let mut acc: [[__m512; 2]; 8] = [[_mm512_setzero_ps(); 2]; 8];
        let a_rows: [*const f32; 8] = std::array::from_fn(|r| a.data.as_ptr().wrapping_add(rows[r]));
        let b_col = b.data.as_ptr().wrapping_add(j0);
        for p in ps {
            // SAFETY: `a_rows[r] + p·a.col_stride` is element `rows[r] + p·a.col_stride` of `a`,
            // and `b_row + j` for `j < 32` is element `p·b.row_stride + j0 + j` of `b`: both in
            // bounds by this function's contract. The loads are unaligned ones.
            unsafe {
                let b_row = b_col.add(p * b.row_stride);
                let (b0, b1) = (_mm512_loadu_ps(b_row), _mm512_loadu_ps(b_row.add(16)));
                let a_off = p * a.col_stride;
                for (acc_row, a_row) in acc.iter_mut().zip(&a_rows) {
                    let x = _mm512_set1_ps(*a_row.add(a_off));
                    acc_row[0] = _mm512_fmadd_ps(x, b0, acc_row[0]);
                    acc_row[1] = _mm512_fmadd_ps(x, b1, acc_row[1]);
                }
            }
        }
        let mut out = [[0.0f32; 32]; 8];
        for (row, acc_row) in out.iter_mut().zip(&acc) {
            // SAFETY: `row` is 32 f32s, the two unaligned stores write its halves.
            unsafe {
                _mm512_storeu_ps(row.as_mut_ptr(), acc_row[0]);
                _mm512_storeu_ps(row.as_mut_ptr().add(16), acc_row[1]);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a · b` by the definition, in f64, for row-major `a` (m × k) and `b` (k × n).
    fn naive(a: &[f64], b: &[f64], (m, k, n): (usize, usize, usize)) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn values(len: usize, seed: u64) -> Vec<f64> {
        (0..len).map(|i| (((i as u64 + 1) * (seed + 7) * 2_654_435_761) % 1000) as f64 / 500.0 - 1.0).collect()
    }

    /// Sizes around the block edges: below, at and past MR and NR, and char-gpt's head.
    const SIZES: [(usize, usize, usize); 7] =
        [(1, 1, 1), (3, 5, 7), (8, 3, 16), (9, 17, 17), (17, 2, 33), (64, 32, 64), (64, 64, 32)];

    #[test]
    fn full_products_match_the_definition() {
        for (m, k, n) in SIZES {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let want = naive(&a, &b, (m, k, n));
            let mut got = vec![f64::NAN; m * n];
            product(&mut got, n, (m, k, n), Operand::by_rows(&a, k), Operand::by_rows(&b, n), Part::Full);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-12, "{m}×{k}×{n}: {g} against {w}");
            }
        }
    }

    #[test]
    fn a_strided_destination_keeps_what_lies_between_its_rows() {
        let (m, k, n, stride) = (6, 4, 20, 23);
        let (a, b) = (values(m * k, 3), values(k * n, 4));
        let want = naive(&a, &b, (m, k, n));
        let mut dst = vec![-7.0; (m - 1) * stride + n + 2];
        product(&mut dst, stride, (m, k, n), Operand::by_rows(&a, k), Operand::by_rows(&b, n), Part::Full);
        for (idx, &v) in dst.iter().enumerate() {
            let (i, j) = (idx / stride, idx % stride);
            if i < m && j < n {
                assert!((v - want[i * n + j]).abs() < 1e-12);
            } else {
                assert_eq!(v, -7.0, "element {idx}, outside the block, was written");
            }
        }
    }

    #[test]
    fn a_transposed_left_operand_reads_columns() {
        let (m, k, n) = (7, 5, 16);
        let a_t = values(k * m, 5); // k × m, read as its transpose
        let a: Vec<f64> = (0..m * k).map(|idx| a_t[(idx % k) * m + idx / k]).collect();
        let b = values(k * n, 6);
        let want = naive(&a, &b, (m, k, n));
        let mut got = vec![0.0; m * n];
        product(&mut got, n, (m, k, n), Operand::transposed(&a_t, m), Operand::by_rows(&b, n), Part::Full);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12);
        }
    }

    /// A left operand, the sizes, a right operand and the part to compute.
    type Case<'a> = (&'a [f64], (usize, usize, usize), &'a [f64], Part);

    /// Each triangular part against the full product of operands zeroed where the part assumes
    /// zeros, on the elements the part promises.
    #[test]
    fn triangular_parts_match_the_full_product_where_they_promise() {
        for (t, d) in [(5, 3), (17, 4), (21, 16), (64, 32)] {
            // Lower-triangular t × t left operands (row i zero past column i), and their transposes.
            let lower: Vec<f64> =
                values(t * t, 7).iter().enumerate().map(|(idx, &v)| if idx % t > idx / t { 0.0 } else { v }).collect();
            let upper: Vec<f64> = (0..t * t).map(|idx| lower[(idx % t) * t + idx / t]).collect();
            let (x, y) = (values(t * d, 8), values(d * t, 9));
            let cases: [Case<'_>; 4] = [
                (&x, (t, d, t), &y, Part::LowerColumns),
                (&lower, (t, t, d), &x, Part::InnerUpToRow),
                (&upper, (t, t, d), &x, Part::InnerFromRow),
                (&x, (t, d, t), &y, Part::Full),
            ];
            for (a, (m, k, n), b, part) in cases {
                let want = naive(a, b, (m, k, n));
                let mut got = vec![f64::NAN; m * n];
                product(&mut got, n, (m, k, n), Operand::by_rows(a, k), Operand::by_rows(b, n), part);
                for i in 0..m {
                    for j in 0..n {
                        if part == Part::LowerColumns && j > i {
                            continue; // not promised
                        }
                        let (g, w) = (got[i * n + j], want[i * n + j]);
                        assert!((g - w).abs() < 1e-12, "{part:?} t={t} d={d} ({i}, {j}): {g} against {w}");
                    }
                }
            }
        }
    }

    #[test]
    fn f32_products_round_like_f64_ones() {
        let (m, k, n) = (64, 32, 64);
        let (a, b) = (values(m * k, 10), values(k * n, 11));
        let want = naive(&a, &b, (m, k, n));
        let (a32, b32): (Vec<f32>, Vec<f32>) =
            (a.iter().map(|&v| v as f32).collect(), b.iter().map(|&v| v as f32).collect());
        let mut got = vec![0.0f32; m * n];
        product(&mut got, n, (m, k, n), Operand::by_rows(&a32, k), Operand::by_rows(&b32, n), Part::Full);
        for (g, w) in got.iter().zip(&want) {
            assert!((f64::from(*g) - w).abs() < 1e-5 * (1.0 + w.abs()), "{g} against {w}");
        }
    }

    /// `product` on f32 (the AVX-512 block, where the build has it) against the generic block,
    /// bit for bit: every size around the block edges, every part, a strided destination and
    /// a transposed left operand.
    #[test]
    fn f32_products_equal_the_generic_blocks_bit_for_bit() {
        let f32s = |v: Vec<f64>| -> Vec<f32> { v.into_iter().map(|x| x as f32).collect() };
        let sizes = SIZES.iter().copied().chain([(8, 5, 32), (9, 33, 65), (64, 64, 64), (33, 7, 96)]);
        for (m, k, n) in sizes {
            for transposed in [false, true] {
                let a = f32s(values(m * k, 12));
                let b = f32s(values(k * n, 13));
                let lhs = if transposed { Operand::transposed(&a, m) } else { Operand::by_rows(&a, k) };
                let parts: &[Part] = if m == n {
                    &[Part::Full, Part::LowerColumns, Part::InnerUpToRow, Part::InnerFromRow]
                } else {
                    &[Part::Full]
                };
                for &part in parts {
                    let stride = n + 3;
                    let mut got = vec![-7.0f32; m * stride];
                    let mut want = got.clone();
                    product(&mut got, stride, (m, k, n), lhs, Operand::by_rows(&b, n), part);
                    check(want.len(), stride, (m, k, n), lhs, Operand::by_rows(&b, n));
                    let rhs = Operand::by_rows(&b, n);
                    // SAFETY: `check` passed just above, and the closure is the generic block,
                    // which is sound for every argument `blocks` passes it.
                    unsafe {
                        blocks::<f32, MR, NR>(&mut want, stride, (m, k, n), lhs, rhs, part, |r, j0, ps| {
                            block(r, lhs, rhs, j0, ps)
                        })
                    };
                    for (idx, (g, w)) in got.iter().zip(&want).enumerate() {
                        let (i, j) = (idx / stride, idx % stride);
                        if part == Part::LowerColumns && i < j && j < n {
                            continue; // not promised: each block width computes its own
                        }
                        assert_eq!(
                            g.to_bits(),
                            w.to_bits(),
                            "{m}×{k}×{n} {part:?} transposed={transposed} at {idx}: {g} against {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "lhs too short")]
    fn a_left_operand_shorter_than_its_strides_reach_is_refused() {
        let (a, b) = ([0.0f64; 5], [0.0f64; 4]);
        product(&mut [0.0; 4], 2, (2, 3, 2), Operand::by_rows(&a, 3), Operand::by_rows(&b, 2), Part::Full);
    }

    #[test]
    #[should_panic(expected = "rows must be contiguous")]
    fn a_strided_right_operand_is_refused() {
        let x = [0.0f64; 4];
        product(&mut [0.0; 4], 2, (2, 2, 2), Operand::by_rows(&x, 2), Operand::transposed(&x, 2), Part::Full);
    }
}

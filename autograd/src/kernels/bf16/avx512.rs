//! The AVX512-BF16 kernel: `vdpbf16ps` multiplies 16 pairs of bf16 by 16 pairs and adds each
//! pair's two products to one f32 lane, 32 multiply-adds per instruction (an f32 FMA does 16).
//!
//! Both operands are packed first, rounded to bf16 and paired along k (the layout `vdpbf16ps`
//! wants, the pair as one 32-bit word, the even k in its low half): `rhs` in panels of [`NR`]
//! columns, each k-pair's `NR` words together (two vectors); `lhs` in panels of [`MR`] rows,
//! each k-pair's `MR` words together, or, when its rows are contiguous (the activations of a
//! forward product, the output gradient of an input gradient's), row by row, which is a
//! contiguous conversion rather than a transposition. An odd k gets a zero as its last pair's
//! second half; panels past the last row or column are zero. The packed words live in buffers
//! of the [`recycle`](crate::recycle) pool. (The row-by-row conversion and the pooled buffers
//! made gpt-10m in bf16 train 3.5 % faster than every `lhs` transposed into fresh buffers:
//! median of six alternating rounds, bench/RESULTS.md 2026-12-08.) The micro-kernel keeps an
//! `MR × NR` tile of the output in 28 of the 32 vector registers for the whole of k: per k-pair
//! it loads the two vectors of `rhs` and, for each row, broadcasts that row's word of `lhs`
//! into two `vdpbf16ps`. It stores (or adds) the tile's valid rows and columns with masked stores, so
//! odd m and n need no second kernel. The output is split into blocks of [`MC`] rows and
//! [`NC`] columns, one rayon task each for a large product; in a block the `rhs` panel stays in
//! L1/L2 while the `lhs` panels of the block (`MC` rows × k, in L2) stream past it.

use std::arch::x86_64::*;

use gemm::Parallelism;
use rayon::prelude::*;

use super::{bf16_bits, Dst};
use crate::kernels::gemm::Operand;
use crate::recycle;

/// Rows of the register tile (14 × 2 accumulators, 2 `rhs` vectors and a broadcast: 31 of the 32
/// registers).
pub(super) const MR: usize = 14;
/// Columns of the register tile: two vectors of 16 f32 lanes.
pub(super) const NR: usize = 32;
/// Rows of a block of the output: 8 row panels.
const MC: usize = 8 * MR;
/// Columns of a block of the output: 8 column panels.
const NC: usize = 8 * NR;
/// Below this many multiply-adds (m·k·n) a product runs on one thread even when asked for rayon:
/// splitting it costs more than it gains.
const PARALLEL_MIN: usize = 1 << 21;

/// Whether this CPU runs the kernel (its instructions are AVX-512 F, BW and BF16).
fn supported() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512bf16")
}

/// The word holding the bf16 of `lo` (low half) and of `hi` (high half).
#[inline]
pub(super) fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(bf16_bits(lo)) | (u32::from(bf16_bits(hi)) << 16)
}

/// A packed operand's words, in a buffer of the [`recycle`] pool: a product packs megabytes
/// per call, and a fresh allocation that large comes from the kernel as new pages, each faulted
/// in and zeroed, on every product of every step.
pub(super) struct Packed {
    /// The words' storage: `f32`s, because the pool keeps buffers of the float types; the words
    /// are their bits.
    buffer: Vec<f32>,
}

impl Packed {
    /// `len` zero words.
    fn zeros(len: usize) -> Packed {
        Packed { buffer: recycle::zeros(len) }
    }

    /// The words.
    pub(super) fn words(&self) -> &[u32] {
        // SAFETY: `f32` and `u32` have the same size (4) and alignment (4), and every bit
        // pattern is a valid value of both, so the buffer's initialized `f32`s read as as many
        // `u32`s; the new slice borrows `self`, so the buffer outlives it and is not written
        // meanwhile.
        unsafe { std::slice::from_raw_parts(self.buffer.as_ptr().cast::<u32>(), self.buffer.len()) }
    }

    /// The words, to write.
    fn words_mut(&mut self) -> &mut [u32] {
        // SAFETY: as in `words`; the slice borrows `self` mutably, so it is the only access to
        // the buffer while it lives, and any `u32` written is a valid `f32` bit pattern.
        unsafe { std::slice::from_raw_parts_mut(self.buffer.as_mut_ptr().cast::<u32>(), self.buffer.len()) }
    }
}

impl Drop for Packed {
    fn drop(&mut self) {
        recycle::give(std::mem::take(&mut self.buffer));
    }
}

/// Packs the `rows × k` matrix `x` into panels of `panel` rows: word `(q·kp + p)·panel + r` is
/// the pair `(x[q·panel + r][2p], x[q·panel + r][2p + 1])`, with kp = ⌈k/2⌉ and zeros past the
/// last row and column. `x`'s strides have been checked to stay inside its data.
pub(super) fn pack(x: Operand<'_, f32>, rows: usize, k: usize, panel: usize, parallel: bool) -> Packed {
    let kp = k.div_ceil(2);
    let panels = rows.div_ceil(panel);
    let mut packed = Packed::zeros(panels * kp * panel);
    let out = packed.words_mut();
    let fill = |q: usize, dst: &mut [u32]| {
        let r0 = q * panel;
        let valid = panel.min(rows - r0);
        if x.col_stride == 1 && k >= 32 {
            // SAFETY: the kernel's instructions were detected (checked by `gemm` before packing);
            // `x`'s rows r0..r0 + valid, columns 0..k lie inside its data (checked by `gemm`);
            // `dst` holds kp·panel words and valid ≤ panel.
            unsafe { pack_rows_contiguous(x, r0, valid, k, panel, dst) }
        } else if x.row_stride == 1 && valid >= 8 {
            // SAFETY: as above.
            unsafe { pack_cols_contiguous(x, r0, valid, k, panel, dst) }
        } else {
            for r in 0..valid {
                let row = &x.data[(r0 + r) * x.row_stride..];
                for p in 0..kp {
                    let lo = row[2 * p * x.col_stride];
                    let hi = if 2 * p + 1 < k { row[(2 * p + 1) * x.col_stride] } else { 0.0 };
                    dst[p * panel + r] = pair(lo, hi);
                }
            }
        }
    };
    if kp > 0 {
        if parallel {
            out.par_chunks_mut(kp * panel).enumerate().for_each(|(q, dst)| fill(q, dst));
        } else {
            out.chunks_mut(kp * panel).enumerate().for_each(|(q, dst)| fill(q, dst));
        }
    }
    packed
}

/// The 16 words of pairs of `row[c..c + 32]`: word i is the pair `(row[c + 2i], row[c + 2i + 1])`,
/// with zeros for the elements past the row's end.
///
/// # Safety
/// The CPU has AVX-512 F and BF16, and `c < row.len()`.
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pairs_at(row: &[f32], c: usize) -> __m512i {
    let left = row.len() - c;
    // Masks of the valid lanes of the two 16-element halves.
    let lo_mask = if left >= 16 { u16::MAX } else { (1u16 << left) - 1 };
    let hi_mask = if left >= 32 {
        u16::MAX
    } else if left > 16 {
        (1u16 << (left - 16)) - 1
    } else {
        0
    };
    // SAFETY: lane i of the first load reads row[c + i] only where bit i of lo_mask is set, i.e.
    // c + i < row.len(); likewise row[c + 16 + i] for hi_mask. Masked-off lanes are not read
    // (AVX-512 masked loads do not fault on them).
    let (lo, hi) = unsafe {
        (
            _mm512_maskz_loadu_ps(lo_mask, row.as_ptr().add(c)),
            _mm512_maskz_loadu_ps(hi_mask, row.as_ptr().wrapping_add(c + 16)),
        )
    };
    // bf16 lanes 0..15 from `lo`, 16..31 from `hi`: in order, so word i is the pair
    // (row[c + 2i], row[c + 2i + 1]).
    // SAFETY: `__m512bh` and `__m512i` are both 64 bytes of plain data.
    unsafe { std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(hi, lo)) }
}

/// [`pack`]'s panel for rows whose k elements are contiguous (`col_stride` 1): 32 elements of a
/// row become 16 pairs in one conversion, which are then spread `panel` words apart.
///
/// # Safety
/// The CPU has AVX-512 F and BF16; `x.col_stride` is 1 and rows `r0..r0 + valid`, columns
/// `0..k` of `x` lie inside `x.data`; `dst` holds ⌈k/2⌉·`panel` words and `valid ≤ panel`.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn pack_rows_contiguous(x: Operand<'_, f32>, r0: usize, valid: usize, k: usize, panel: usize, dst: &mut [u32]) {
    let kp = k.div_ceil(2);
    let mut words = [0u32; 16];
    for r in 0..valid {
        let row = &x.data[(r0 + r) * x.row_stride..][..k];
        for c in (0..k).step_by(32) {
            // SAFETY: the features are enabled here; c < k = row.len(). `words` holds 16 u32,
            // 64 bytes.
            unsafe { _mm512_storeu_si512(words.as_mut_ptr().cast(), pairs_at(row, c)) };
            let p0 = c / 2;
            for (i, &w) in words.iter().enumerate().take((kp - p0).min(16)) {
                dst[(p0 + i) * panel + r] = w;
            }
        }
    }
}

/// Writes the pairs of `row` into `dst`: word p is `(row[2p], row[2p + 1])`, a zero half past
/// the row's end.
///
/// # Safety
/// The CPU has AVX-512 F and BF16, and `dst` holds ⌈row.len()/2⌉ words.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn convert_row(row: &[f32], dst: &mut [u32]) {
    let kp = dst.len();
    for c in (0..row.len()).step_by(32) {
        let words = (kp - c / 2).min(16);
        let out = &mut dst[c / 2..][..words];
        let mask = if words == 16 { u16::MAX } else { (1u16 << words) - 1 };
        // SAFETY: the features are enabled here; c < row.len(); the store writes the first
        // `words` words, under the mask, into `out`, which is that long (checked by the
        // indexing above).
        unsafe { _mm512_mask_storeu_epi32(out.as_mut_ptr().cast(), mask, pairs_at(row, c)) };
    }
}

/// Converts the `rows × k` matrix `x`, whose rows are contiguous (`col_stride` 1), to pairs row
/// by row: word `r·kp + p` is the pair `(x[r][2p], x[r][2p + 1])`, kp = ⌈k/2⌉, with a zero half
/// past column k and zero rows up to a multiple of [`MR`]. Its row panel q (words
/// `q·MR·kp..(q + 1)·MR·kp`) holds the words of [`pack`]'s panel q laid out by row instead of by
/// k-pair, which [`micro`] reads with `ROWS`: a contiguous conversion instead of a transposition
/// that stores each word on its own. `x`'s strides have been checked to stay inside its data.
pub(super) fn convert_rows(x: Operand<'_, f32>, rows: usize, k: usize, parallel: bool) -> Packed {
    assert_eq!(x.col_stride, 1, "convert_rows: the rows must be contiguous");
    let kp = k.div_ceil(2);
    let mut packed = Packed::zeros(rows.div_ceil(MR) * MR * kp);
    if kp > 0 {
        let out = &mut packed.words_mut()[..rows * kp];
        // SAFETY: the kernel's instructions were detected (checked by `gemm` before converting);
        // each `dst` is a chunk of kp = ⌈k/2⌉ words.
        let fill = |r: usize, dst: &mut [u32]| unsafe { convert_row(&x.data[r * x.row_stride..][..k], dst) };
        if parallel {
            out.par_chunks_mut(kp).enumerate().for_each(|(r, dst)| fill(r, dst));
        } else {
            out.chunks_mut(kp).enumerate().for_each(|(r, dst)| fill(r, dst));
        }
    }
    packed
}

/// [`pack`]'s panel for columns whose rows are contiguous (`row_stride` 1, a transposed
/// operand): 16 rows' elements 2p and 2p + 1 become 16 pairs in one conversion and one
/// interleave, stored as they lie.
///
/// # Safety
/// The CPU has AVX-512 F, BW and BF16; `x.row_stride` is 1 and rows `r0..r0 + valid`, columns
/// `0..k` of `x` lie inside `x.data`; `dst` holds ⌈k/2⌉·`panel` words and `valid ≤ panel`.
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
unsafe fn pack_cols_contiguous(x: Operand<'_, f32>, r0: usize, valid: usize, k: usize, panel: usize, dst: &mut [u32]) {
    let kp = k.div_ceil(2);
    // Word i takes bf16 lane i (element 2p of row i) low and lane 16 + i (element 2p + 1) high.
    let interleave: [u16; 32] = std::array::from_fn(|j| ((j % 2) * 16 + j / 2) as u16);
    // SAFETY: `interleave` is 64 bytes.
    let idx = unsafe { _mm512_loadu_si512(interleave.as_ptr().cast()) };
    let mut r = 0;
    while r < valid {
        let lanes = (valid - r).min(16);
        let mask = if lanes == 16 { u16::MAX } else { (1u16 << lanes) - 1 };
        for p in 0..kp {
            let col = |c: usize| x.data[c * x.col_stride + r0 + r..][..lanes].as_ptr();
            // SAFETY: each load reads `lanes` elements, the first `lanes` lanes under `mask`,
            // from a slice of exactly that length (the bounds are checked by the indexing in
            // `col`); masked-off lanes are not read.
            let lo = unsafe { _mm512_maskz_loadu_ps(mask, col(2 * p)) };
            let hi = if 2 * p + 1 < k {
                // SAFETY: as above.
                unsafe { _mm512_maskz_loadu_ps(mask, col(2 * p + 1)) }
            } else {
                _mm512_setzero_ps()
            };
            let bf = _mm512_cvtne2ps_pbh(hi, lo);
            // SAFETY: `__m512bh` and `__m512i` are both 64 bytes of plain data.
            let words = _mm512_permutexvar_epi16(idx, unsafe { std::mem::transmute::<__m512bh, __m512i>(bf) });
            let out = &mut dst[p * panel + r..][..lanes];
            // SAFETY: the store writes the first `lanes` words, under `mask`, into `out`, which
            // is that long (checked by the indexing above).
            unsafe { _mm512_mask_storeu_epi32(out.as_mut_ptr().cast(), mask, words) };
        }
        r += lanes;
    }
}

/// A raw pointer to the output shared by the tasks, each of which writes its own disjoint block.
#[derive(Clone, Copy)]
struct OutPtr(*mut f32);

impl OutPtr {
    /// The element `offset` places on. A method, so that closures capture the whole `OutPtr`
    /// (which is `Sync`), not its field.
    fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

// SAFETY: the pointer is only written through by tasks whose blocks of the output are disjoint
// (see `gemm`), so sending it to other threads creates no data race.
unsafe impl Send for OutPtr {}
// SAFETY: as above.
unsafe impl Sync for OutPtr {}

/// The micro-kernel: the `(rows, cols)` tile (rows ≤ MR, cols ≤ NR) at `c` (row stride `ldc`)
/// gets (or, when `accumulate`, has added) the product of the packed `lhs` panel `a` (kp·MR
/// words: k-pair by k-pair as [`pack`] lays them out, or with `ROWS` row by row as
/// [`convert_rows`] does) and `rhs` panel `b` (kp·NR words).
///
/// # Safety
/// The CPU has AVX-512 F and BF16; `a` and `b` hold kp·MR and kp·NR words; `c` is valid for
/// writes (and, when `accumulate`, reads) of `rows` rows of `cols` elements, `ldc` apart, that no
/// other thread accesses meanwhile.
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn micro<const ROWS: bool>(
    a: &[u32],
    b: &[u32],
    kp: usize,
    c: *mut f32,
    ldc: usize,
    (rows, cols): (usize, usize),
    accumulate: bool,
) {
    debug_assert!(a.len() == kp * MR && b.len() == kp * NR && rows <= MR && cols <= NR);
    let mut acc = [[_mm512_setzero_ps(); 2]; MR];
    for (p, b) in b.chunks_exact(NR).enumerate() {
        // SAFETY: `b` is a chunk of NR = 32 words: two 16-word vectors.
        let (b0, b1) =
            unsafe { (_mm512_loadu_si512(b.as_ptr().cast()), _mm512_loadu_si512(b.as_ptr().add(16).cast())) };
        // SAFETY: `__m512i` and `__m512bh` are both 64 bytes of plain data.
        let (b0, b1) =
            unsafe { (std::mem::transmute::<__m512i, __m512bh>(b0), std::mem::transmute::<__m512i, __m512bh>(b1)) };
        for (r, acc) in acc.iter_mut().enumerate() {
            let at = if ROWS { r * kp + p } else { p * MR + r };
            // SAFETY: r < MR and p < kp (b holds kp chunks), so `at` < MR·kp = a.len() in either
            // layout. `__m512i` and `__m512bh` are both 64 bytes of plain data.
            let w = unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*a.get_unchecked(at) as i32)) };
            acc[0] = _mm512_dpbf16_ps(acc[0], w, b0);
            acc[1] = _mm512_dpbf16_ps(acc[1], w, b1);
        }
    }
    let mask = |v: usize| -> u16 {
        let lanes = cols.saturating_sub(16 * v).min(16);
        if lanes == 16 {
            u16::MAX
        } else {
            (1u16 << lanes) - 1
        }
    };
    let masks = [mask(0), mask(1)];
    for (r, acc) in acc.iter().enumerate().take(rows) {
        for (v, &m) in masks.iter().enumerate() {
            if m == 0 {
                continue;
            }
            let out = c.wrapping_add(r * ldc + 16 * v);
            // SAFETY: lane i touches out[i] = c[r·ldc + 16v + i] only where bit i of `m` is set,
            // that is 16v + i < cols, inside the tile the caller vouches for; masked-off lanes
            // are not accessed. It is read only when `accumulate`.
            unsafe {
                let sum = if accumulate { _mm512_add_ps(_mm512_maskz_loadu_ps(m, out), acc[v]) } else { acc[v] };
                _mm512_mask_storeu_ps(out, m, sum);
            }
        }
    }
}

/// Runs the product into `dst` (see [`super::gemm_at`]).
///
/// # Panics
/// If the CPU lacks AVX-512 F, BW or BF16, `dst` does not hold m·n elements, or a stride reaches
/// past an operand's data.
pub(super) fn gemm(
    dst: Dst<'_>,
    (m, k, n): (usize, usize, usize),
    lhs: Operand<'_, f32>,
    rhs: Operand<'_, f32>,
    parallelism: Parallelism,
) {
    assert!(supported(), "bf16 gemm: this CPU lacks AVX512-BF16");
    let (c, accumulate) = match dst {
        Dst::Uninit(d) => {
            assert_eq!(d.len(), m * n, "bf16 gemm: destination size");
            (d.as_mut_ptr().cast::<f32>(), false)
        }
        Dst::Overwrite(d) => {
            assert_eq!(d.len(), m * n, "bf16 gemm: destination size");
            (d.as_mut_ptr(), false)
        }
        Dst::Accumulate(d) => {
            assert_eq!(d.len(), m * n, "bf16 gemm: destination size");
            (d.as_mut_ptr(), true)
        }
    };
    if m == 0 || n == 0 {
        return;
    }
    if k > 0 {
        assert!(
            (m - 1) * lhs.row_stride + (k - 1) * lhs.col_stride < lhs.data.len(),
            "bf16 gemm: lhs strides reach past its data"
        );
        assert!(
            (k - 1) * rhs.row_stride + (n - 1) * rhs.col_stride < rhs.data.len(),
            "bf16 gemm: rhs strides reach past its data"
        );
    }
    let parallel =
        matches!(parallelism, Parallelism::Rayon(_)) && m * n * k >= PARALLEL_MIN && rayon::current_num_threads() > 1;
    // `rhs` packed as its transpose: n rows of k.
    let rhs_t = Operand { data: rhs.data, row_stride: rhs.col_stride, col_stride: rhs.row_stride };
    // `lhs` with contiguous rows (the activations of a forward product) is converted row by row;
    // otherwise packed by k-pair.
    let rows_layout = lhs.col_stride == 1;
    let a = if rows_layout { convert_rows(lhs, m, k, parallel) } else { pack(lhs, m, k, MR, parallel) };
    let b = pack(rhs_t, n, k, NR, parallel);
    let (a, b) = (a.words(), b.words());
    let kp = k.div_ceil(2);
    let out = OutPtr(c);
    let (row_blocks, col_blocks) = (m.div_ceil(MC), n.div_ceil(NC));
    let block = |t: usize| {
        let (i0, j0) = ((t / col_blocks) * MC, (t % col_blocks) * NC);
        for j in (j0..n.min(j0 + NC)).step_by(NR) {
            let b = &b[(j / NR) * kp * NR..][..kp * NR];
            for i in (i0..m.min(i0 + MC)).step_by(MR) {
                let a = &a[(i / MR) * kp * MR..][..kp * MR];
                // SAFETY: the kernel's instructions were checked at entry; `a` and `b` are
                // panels of kp·MR and kp·NR words (sliced just above); the tile of rows
                // i..min(i + MR, m), columns j..min(j + NR, n) lies inside the m × n output,
                // which `dst` (m·n elements, checked) holds row-major, and it is written only by
                // this block, whose tiles are disjoint from every other block's. When
                // accumulating, `dst` is initialized (`Dst::Accumulate` is a `&mut [f32]`); when
                // not, the tile is only written.
                unsafe {
                    let (c, tile) = (out.at(i * n + j), (MR.min(m - i), NR.min(n - j)));
                    if rows_layout {
                        micro::<true>(a, b, kp, c, n, tile, accumulate)
                    } else {
                        micro::<false>(a, b, kp, c, n, tile, accumulate)
                    }
                };
            }
        }
    };
    if parallel {
        (0..row_blocks * col_blocks).into_par_iter().for_each(block);
    } else {
        (0..row_blocks * col_blocks).for_each(block);
    }
}

//! Matrix products in bf16 with f32 accumulation: `dst (=, or +=) round_bf16(lhs) ·
//! round_bf16(rhs)`, each operand element rounded to bfloat16 (8 significant bits, f32's
//! exponent range), each product of two bf16 values exact in f32, the products summed in f32.
//! This is what PyTorch's bf16 autocast computes for a product on the CPU.
//!
//! **Dispatch.** [`level`] says which kernel runs, detected once per process:
//!
//! | CPU | [`Bf16Level`] | kernel |
//! | --- | --- | --- |
//! | AMX-BF16 tiles (Intel Xeon since Sapphire Rapids) | [`Bf16Level::Amx`] | the AVX512-BF16 kernel (see below) |
//! | AVX512-BF16 (Intel Cooper Lake, AMD Zen 4 and later) | [`Bf16Level::Avx512Bf16`] | `avx512`: operands packed in bf16 pairs along k (the left one row by row when its rows are contiguous), a 14 × 32 register tile of `vdpbf16ps`, rayon over blocks of the output |
//! | anything else, or `PENTE_BF16=off` | [`Bf16Level::None`] | portable: the operands rounded with [`round_bf16`], then the f32 `gemm` on the rounded copies |
//!
//! At every level the wrappers compute the same mathematical quantity; the levels differ only in
//! the order in which the exact f32 products are summed (and in f32 subnormal products, which the
//! `vdpbf16ps` instruction flushes to zero). The portable path is numerically the bf16 product
//! and is the oracle of the tests; it is no faster than the f32 product, so callers route to plain
//! f32 at [`Bf16Level::None`] and use these functions where [`level`] is above it.
//!
//! The environment variable `PENTE_BF16=off`, read once when [`level`] is first asked, forces
//! [`Bf16Level::None`], so that the fallback can be run and tested on any machine.
//!
//! **AMX is detected but not used.** The machine this kernel was written and measured on (AMD
//! Zen 4) has no AMX, and untested code is not committed, so [`Bf16Level::Amx`] runs the
//! AVX512-BF16 kernel (every CPU with AMX-BF16 so far also has AVX512-BF16). An AMX path would
//! need: permission for the tile state from Linux, once per process, with
//! `arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)` (syscall 158, code 0x1023, feature 18;
//! without it the first tile instruction kills the thread with SIGILL); a 64-byte tile
//! configuration (palette 1, rows and bytes per row of each of the 8 tiles) loaded with
//! `ldtilecfg`; and the tile instructions (`tileloadd`, `tdpbf16ps`, `tilestored`, `tilerelease`)
//! through `asm!`, since Rust's AMX intrinsics are unstable. Its micro-kernel would hold a 2 × 2
//! block of 16 × 16 f32 accumulator tiles, with A's tiles as 16 rows of 32 bf16 (16 k-pairs) and
//! B's tiles packed in the same k-pair layout as the AVX512-BF16 kernel's.

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(test)]
mod tests;

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

use gemm::Parallelism;

use super::gemm::{gemm_accumulate, gemm_into, gemm_overwrite, Operand};
use super::uninit::Written;

/// Which bf16 product kernel this CPU can run, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bf16Level {
    /// The CPU has AMX-BF16 tiles (and AVX512-BF16). The products run on the AVX512-BF16
    /// kernel: there is no AMX kernel yet (see the [module docs](self)).
    Amx,
    /// The CPU has the AVX512-BF16 dot-product instructions (`vdpbf16ps`).
    Avx512Bf16,
    /// Neither, or `PENTE_BF16=off`: the products run the portable path, which is correct but
    /// no faster than f32.
    None,
}

impl Bf16Level {
    fn from_u8(v: u8) -> Bf16Level {
        match v {
            3 => Bf16Level::Amx,
            2 => Bf16Level::Avx512Bf16,
            _ => Bf16Level::None,
        }
    }

    fn to_u8(self) -> u8 {
        match self {
            Bf16Level::Amx => 3,
            Bf16Level::Avx512Bf16 => 2,
            Bf16Level::None => 1,
        }
    }
}

/// The detected level; 0 until first asked.
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The bf16 kernel the products run: the best the CPU has, or [`Bf16Level::None`] when the
/// environment variable `PENTE_BF16` is `off` (read once, at the first call).
///
/// ```
/// use autograd::kernels::bf16::{level, Bf16Level};
/// if std::env::var("PENTE_BF16").as_deref() == Ok("off") {
///     assert_eq!(level(), Bf16Level::None);
/// }
/// ```
#[inline]
pub fn level() -> Bf16Level {
    match LEVEL.load(Ordering::Relaxed) {
        0 => {
            let level = if std::env::var("PENTE_BF16").as_deref() == Ok("off") { Bf16Level::None } else { detected() };
            LEVEL.store(level.to_u8(), Ordering::Relaxed);
            level
        }
        v => Bf16Level::from_u8(v),
    }
}

/// The best bf16 level this CPU has, whatever `PENTE_BF16` says.
pub fn detected() -> Bf16Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f") && has!("avx512bf16") {
            // AMX's feature names are unstable in `is_x86_feature_detected!`; CPUID leaf 7
            // sub-leaf 0 reports them in EDX: bit 22 AMX-BF16, bit 24 AMX-TILE.
            #[allow(unused_unsafe)] // `__cpuid_count` is an `unsafe fn` before Rust 1.94.
            // SAFETY: CPUID exists on every x86-64 CPU, and leaf 7 on every CPU with AVX-512,
            // which was detected just above.
            let edx = unsafe { std::arch::x86_64::__cpuid_count(7, 0) }.edx;
            if edx & (1 << 22) != 0 && edx & (1 << 24) != 0 {
                return Bf16Level::Amx;
            }
            return Bf16Level::Avx512Bf16;
        }
    }
    Bf16Level::None
}

/// `x` rounded to the nearest bfloat16 (ties to even), returned as the f32 of the same value:
/// the upper 16 bits of the result hold the bf16, the lower 16 are zero. NaN stays NaN (made
/// quiet, keeping its sign and upper payload bits), ±∞ stay ±∞, finite values beyond bf16's
/// largest round to ±∞ as round-to-nearest says, and f32 subnormals (|x| < 2⁻¹²⁶) become zero
/// of the same sign. This is bit for bit the conversion of the AVX512-BF16 instructions
/// (`vcvtne2ps2bf16`), so the portable path and the AVX512-BF16 kernel round alike.
///
/// ```
/// use autograd::kernels::bf16::round_bf16;
/// assert_eq!(round_bf16(1.0 + 1.0 / 256.0), 1.0); // a tie: to the even neighbour, 1
/// assert_eq!(round_bf16(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0); // a tie: to 1 + 2⁻⁶
/// assert_eq!(round_bf16(3.14159), 3.140625);
/// assert!(round_bf16(f32::NAN).is_nan());
/// assert_eq!(round_bf16(f32::NEG_INFINITY), f32::NEG_INFINITY);
/// ```
#[inline]
pub fn round_bf16(x: f32) -> f32 {
    f32::from_bits(u32::from(bf16_bits(x)) << 16)
}

/// The bfloat16 nearest `x`, as its 16 bits (see [`round_bf16`] for the rules).
#[inline]
pub(crate) fn bf16_bits(x: f32) -> u16 {
    let bits = x.to_bits();
    let upper = (bits >> 16) as u16;
    if x.is_nan() {
        upper | 0x0040 // the quiet bit
    } else if bits & 0x7f80_0000 == 0 {
        upper & 0x8000 // zero or subnormal: a zero of the same sign
    } else {
        // Adding 0x7fff plus the kept part's lowest bit, then truncating, rounds to nearest with
        // ties to even; a carry out of the significand moves into the exponent as it should (up to
        // ∞ from beyond the largest bf16). ∞ has zero low bits and stays ∞.
        let rounded = bits.wrapping_add(0x7fff + ((bits >> 16) & 1));
        (rounded >> 16) as u16
    }
}

/// The `rows × cols` matrix `a` reads, rounded to bf16 into a new row-major vector.
fn rounded_copy(a: Operand<'_, f32>, rows: usize, cols: usize) -> Vec<f32> {
    if rows > 0 && cols > 0 {
        // The furthest element read, as in the f32 gemm's check: a stride past the data is a
        // caller's mistake, reported as such rather than as an index out of bounds.
        assert!(
            (rows - 1) * a.row_stride + (cols - 1) * a.col_stride < a.data.len(),
            "bf16 gemm: operand strides reach past its data"
        );
    }
    let mut out = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        out.extend((0..cols).map(|j| round_bf16(a.data[i * a.row_stride + j * a.col_stride])));
    }
    out
}

/// Where a product goes: slots it writes without reading, or initialized elements it
/// overwrites or adds to.
#[allow(dead_code, reason = "`Uninit` and `Accumulate` are built by the wrappers the ops will call")]
pub(super) enum Dst<'a> {
    /// `dst = product`, into slots that may be uninitialized.
    Uninit(&'a mut [MaybeUninit<f32>]),
    /// `dst = product`.
    Overwrite(&'a mut [f32]),
    /// `dst += product`.
    Accumulate(&'a mut [f32]),
}

impl Dst<'_> {
    fn len(&self) -> usize {
        match self {
            Dst::Uninit(d) => d.len(),
            Dst::Overwrite(d) | Dst::Accumulate(d) => d.len(),
        }
    }
}

/// The portable path: the product through the f32 gemm on copies of the operands rounded to
/// bf16. Each product of two bf16 values is exact in f32 (8 + 8 significant bits), so this is
/// the bf16 product with f32 accumulation.
fn portable(
    dst: Dst<'_>,
    (m, k, n): (usize, usize, usize),
    lhs: Operand<'_, f32>,
    rhs: Operand<'_, f32>,
    parallelism: Parallelism,
) {
    let (a, b) = (rounded_copy(lhs, m, k), rounded_copy(rhs, k, n));
    let (a, b) = (Operand::by_rows(&a, k), Operand::by_rows(&b, n));
    match dst {
        Dst::Uninit(d) => {
            let _proof = gemm_into(d, (m, k, n), a, b, parallelism);
        }
        Dst::Overwrite(d) => gemm_overwrite(d, (m, k, n), a, b, parallelism),
        Dst::Accumulate(d) => gemm_accumulate(d, (m, k, n), a, b, parallelism),
    }
}

/// Runs the product into `dst` at `level` (the tests call each level; the wrappers pass
/// [`level`]).
///
/// # Panics
/// If `dst` does not hold `m·n` elements or a stride reaches past an operand's data.
pub(super) fn gemm_at(
    level: Bf16Level,
    dst: Dst<'_>,
    mkn: (usize, usize, usize),
    lhs: Operand<'_, f32>,
    rhs: Operand<'_, f32>,
    parallelism: Parallelism,
) {
    assert_eq!(dst.len(), mkn.0 * mkn.2, "bf16 gemm: destination size");
    match level {
        #[cfg(target_arch = "x86_64")]
        Bf16Level::Amx | Bf16Level::Avx512Bf16 => avx512::gemm(dst, mkn, lhs, rhs, parallelism),
        _ => portable(dst, mkn, lhs, rhs, parallelism),
    }
}

/// Writes `dst = round_bf16(lhs) · round_bf16(rhs)` for an `m × k` `lhs` and a `k × n` `rhs`,
/// into a row-major `m × n` `dst`, with the kernel [`level`] selects; as
/// [`gemm_into`](super::gemm::gemm_into), `dst` may be uninitialized and the returned proof says
/// every element was written.
///
/// # Panics
/// If `dst` does not hold `m·n` elements or a stride reaches past an operand's data.
#[allow(dead_code, reason = "the API for the ops' mixed-precision routing")]
pub(crate) fn bf16_gemm_into<'a>(
    dst: &'a mut [MaybeUninit<f32>],
    mkn: (usize, usize, usize),
    lhs: Operand<'_, f32>,
    rhs: Operand<'_, f32>,
    parallelism: Parallelism,
) -> Written<'a, f32> {
    gemm_at(level(), Dst::Uninit(&mut *dst), mkn, lhs, rhs, parallelism);
    // SAFETY: every level writes all m·n elements of an `Uninit` destination (its length was
    // checked to be m·n): the portable path through `gemm_into`, which proves it, and the
    // AVX512-BF16 kernel by storing each tile of the output once (zeros when k = 0).
    unsafe { Written::assume(dst) }
}

/// [`bf16_gemm_into`] over an initialized destination, which it overwrites.
///
/// # Panics
/// If `dst` does not hold `m·n` elements or a stride reaches past an operand's data.
pub(crate) fn bf16_gemm_overwrite(
    dst: &mut [f32],
    mkn: (usize, usize, usize),
    lhs: Operand<'_, f32>,
    rhs: Operand<'_, f32>,
    parallelism: Parallelism,
) {
    gemm_at(level(), Dst::Overwrite(dst), mkn, lhs, rhs, parallelism);
}

/// `dst += round_bf16(lhs) · round_bf16(rhs)`, with the sizes and layout of [`bf16_gemm_into`].
///
/// # Panics
/// If `dst` does not hold `m·n` elements or a stride reaches past an operand's data.
#[allow(dead_code, reason = "the API for the ops' mixed-precision routing")]
pub(crate) fn bf16_gemm_accumulate(
    dst: &mut [f32],
    mkn: (usize, usize, usize),
    lhs: Operand<'_, f32>,
    rhs: Operand<'_, f32>,
    parallelism: Parallelism,
) {
    gemm_at(level(), Dst::Accumulate(dst), mkn, lhs, rhs, parallelism);
}

/// `dst = round_bf16(a) · round_bf16(b)` for a row-major `m × k` matrix `a` and `k × n` matrix
/// `b`, accumulated in f32, on rayon's threads with the kernel [`level`] selects: the bf16
/// counterpart of [`gemm::product`](super::gemm::product), for benchmarks.
///
/// ```
/// let (a, b) = ([1.0f32, 2.0, 3.0, 4.0], [5.0f32, 6.0, 7.0, 8.01]);
/// let mut c = [0.0f32; 4];
/// autograd::kernels::bf16::product(&mut c, (2, 2, 2), &a, &b);
/// assert_eq!(c, [19.0, 22.0, 43.0, 50.0]); // 8.01 rounds to 8 in bf16
/// ```
///
/// # Panics
/// If `a`, `b` or `dst` does not hold `m·k`, `k·n` or `m·n` elements.
pub fn product(dst: &mut [f32], (m, k, n): (usize, usize, usize), a: &[f32], b: &[f32]) {
    assert!(a.len() == m * k && b.len() == k * n, "bf16::product: operands are not m×k and k×n");
    bf16_gemm_overwrite(dst, (m, k, n), Operand::by_rows(a, k), Operand::by_rows(b, n), Parallelism::Rayon(0));
}

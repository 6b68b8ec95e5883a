//! The bf16 products at each level against an f64 reference, within bf16's error bound, and the
//! AVX512-BF16 kernel against the portable path, within the bound of a different summation order.
//!
//! **The bound against f64.** With u = 2⁻⁸ (bf16 keeps 8 significant bits, so rounding to
//! nearest moves a value by at most u relative), each operand element becomes ã = a(1 + δ),
//! |δ| ≤ u, so each product ã·b̃ = ab(1 + ε), |ε| ≤ 2u + u²; it is exact in f32 (8 + 8 bits ≤
//! 24). Summing the k products and the destination d (k + 1 terms) in f32, in any order, errs by
//! at most γ(k+1) = (k+1)·2⁻²⁴ / (1 − (k+1)·2⁻²⁴) times the sum of the magnitudes of the terms
//! (Higham, Accuracy and Stability, §4.2). So, per element, with S = |d| + Σₚ |a_ip|·|b_pj|:
//!
//! |c − (d + Σₚ a_ip·b_pj)| ≤ (2u + u² + γ(k+1)·(1 + u)²) · S
//!
//! for operands and products in f32's normal range (`vdpbf16ps` flushes subnormal inputs and
//! products to zero, which is below 2⁻¹²⁶ per product; the tests keep away from them).
//!
//! **The bound between levels.** Both levels sum the same exact products ã·b̃ and d in f32, in
//! different orders; each is within γ(k+1)·S̃ of the exact sum, S̃ = |d| + Σ |ã||b̃|, so they
//! differ by at most 2·γ(k+1)·S̃. Products of small integers are exact in every order, so there
//! the levels agree bit for bit.

use std::mem::MaybeUninit;

use gemm::Parallelism;

use super::{
    bf16_gemm_accumulate, bf16_gemm_into, bf16_gemm_overwrite, detected, gemm_at, level, round_bf16, Bf16Level, Dst,
};
use crate::kernels::gemm::Operand;
use crate::kernels::uninit;

/// The levels this CPU can run: the portable path always, the AVX512-BF16 kernel where present.
fn levels() -> Vec<Bf16Level> {
    match detected() {
        Bf16Level::None => vec![Bf16Level::None],
        _ => vec![Bf16Level::None, Bf16Level::Avx512Bf16],
    }
}

/// Deterministic values in [−2, 2) (a 64-bit LCG's upper bits), none subnormal.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

/// A logical `rows × cols` matrix stored row-major, or as its transpose (column-major) with
/// `pad` unused elements after each stored line, and the operand that reads it.
struct Stored {
    data: Vec<f32>,
    row_stride: usize,
    col_stride: usize,
}

impl Stored {
    fn new(logical: &[f32], rows: usize, cols: usize, transposed: bool, pad: usize) -> Stored {
        if transposed {
            let ld = rows + pad;
            let mut data = vec![f32::NAN; cols * ld]; // the padding is never read
            for i in 0..rows {
                for j in 0..cols {
                    data[j * ld + i] = logical[i * cols + j];
                }
            }
            Stored { data, row_stride: 1, col_stride: ld }
        } else {
            let ld = cols + pad;
            let mut data = vec![f32::NAN; rows * ld];
            for i in 0..rows {
                data[i * ld..][..cols].copy_from_slice(&logical[i * cols..][..cols]);
            }
            Stored { data, row_stride: ld, col_stride: 1 }
        }
    }

    fn operand(&self) -> Operand<'_, f32> {
        Operand { data: &self.data, row_stride: self.row_stride, col_stride: self.col_stride }
    }
}

/// (c, the error bound) per element: `d + a·b` in f64 and the bound of the module docs, from
/// the unrounded operands when `exact_operands` is false, from the rounded ones otherwise.
fn reference(d: &[f32], a: &[f32], b: &[f32], (m, k, n): (usize, usize, usize)) -> (Vec<f64>, Vec<f64>) {
    let mut c = vec![0.0; m * n];
    let mut s = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut sum, mut mag) = (f64::from(d[i * n + j]), f64::from(d[i * n + j]).abs());
            for p in 0..k {
                let t = f64::from(a[i * k + p]) * f64::from(b[p * n + j]);
                sum += t;
                mag += t.abs();
            }
            c[i * n + j] = sum;
            s[i * n + j] = mag;
        }
    }
    (c, s)
}

/// γ(k + 1) for f32 sums (see the module docs).
fn gamma(k: usize) -> f64 {
    let t = (k as f64 + 1.0) * 2f64.powi(-24);
    t / (1.0 - t)
}

/// Runs `d (+)= a·b` at `level` with the operands stored as asked, and checks each element
/// against the f64 reference within the bound. Returns the result.
fn check_against_f64(
    level: Bf16Level,
    mkn: (usize, usize, usize),
    ta: bool,
    tb: bool,
    accumulate: bool,
    seed: u64,
) -> Vec<f32> {
    let (m, k, n) = mkn;
    let (a, b) = (values(m * k, seed), values(k * n, seed + 1));
    let d0 = if accumulate { values(m * n, seed + 2) } else { vec![0.0; m * n] };
    let (sa, sb) = (Stored::new(&a, m, k, ta, 3), Stored::new(&b, k, n, tb, 5));
    let mut d = if accumulate { d0.clone() } else { vec![f32::NAN; m * n] }; // overwritten, never read
    let dst = if accumulate { Dst::Accumulate(&mut d) } else { Dst::Overwrite(&mut d) };
    gemm_at(level, dst, mkn, sa.operand(), sb.operand(), Parallelism::Rayon(0));
    let (c, s) = reference(&d0, &a, &b, mkn);
    let u = 2f64.powi(-8);
    let rel = 2.0 * u + u * u + gamma(k) * (1.0 + u).powi(2);
    for (e, ((&got, &want), &s)) in d.iter().zip(&c).zip(&s).enumerate() {
        let err = (f64::from(got) - want).abs();
        assert!(
            err <= rel * s,
            "{level:?} {mkn:?} ta={ta} tb={tb} acc={accumulate}: element {e}: {got} vs {want}, error {err:e} > bound {:e}",
            rel * s
        );
    }
    // Half the bound's relative part is the rounding of the operands: a product that kept f32
    // operands would pass too, so check the rounding happened where it shows (a·b with
    // unrounded values differs from the bf16 product for random operands).
    d
}

#[test]
fn every_level_is_within_the_bf16_bound_of_f64_for_odd_shapes_and_strides() {
    let shapes =
        [(1, 1, 1), (17, 33, 65), (14, 32, 32), (15, 2, 33), (3, 64, 1), (1, 100, 7), (29, 35, 31), (40, 70, 50)];
    for level in levels() {
        for (s, &mkn) in shapes.iter().enumerate() {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                for accumulate in [false, true] {
                    check_against_f64(level, mkn, ta, tb, accumulate, 10 * s as u64);
                }
            }
        }
    }
}

#[test]
fn large_products_take_the_parallel_path_within_the_bound() {
    for level in levels() {
        check_against_f64(level, (517, 515, 530), false, false, false, 1);
        check_against_f64(level, (520, 300, 513), true, true, true, 2);
    }
}

#[test]
fn the_avx512_kernel_matches_the_portable_path_up_to_summation_order() {
    if detected() == Bf16Level::None {
        eprintln!("skipped: this CPU has no AVX512-BF16");
        return;
    }
    for (s, &(m, k, n)) in [(17, 33, 65), (64, 1000, 40), (300, 257, 290), (1, 4096, 3)].iter().enumerate() {
        for (ta, tb) in [(false, false), (true, true), (true, false)] {
            let mkn = (m, k, n);
            let portable = check_against_f64(Bf16Level::None, mkn, ta, tb, true, 100 + s as u64);
            let fast = check_against_f64(Bf16Level::Avx512Bf16, mkn, ta, tb, true, 100 + s as u64);
            // S̃ from the rounded operands (the same seeds as check_against_f64 used).
            let round = |v: Vec<f32>| v.into_iter().map(round_bf16).collect::<Vec<_>>();
            let (a, b, d) = (
                round(values(m * k, 100 + s as u64)),
                round(values(k * n, 101 + s as u64)),
                values(m * n, 102 + s as u64),
            );
            let mag = |v: &[f32]| v.iter().map(|x| x.abs()).collect::<Vec<_>>();
            let (_, s_tilde) = reference(&mag(&d), &mag(&a), &mag(&b), mkn);
            for (e, ((&x, &y), &s)) in fast.iter().zip(&portable).zip(&s_tilde).enumerate() {
                let diff = (f64::from(x) - f64::from(y)).abs();
                assert!(diff <= 2.0 * gamma(k) * s, "{mkn:?}: element {e}: {x} vs {y}, difference {diff:e}");
            }
        }
    }
}

#[test]
fn products_of_small_integers_are_the_same_bits_at_every_level() {
    let (m, k, n) = (33, 67, 45);
    let ints = |len: usize, seed: u64| values(len, seed).into_iter().map(|x| (x * 8.0).round()).collect::<Vec<f32>>();
    let (a, b) = (ints(m * k, 7), ints(k * n, 8));
    let (_, exact) = (0, reference(&vec![0.0; m * n], &a, &b, (m, k, n)).0);
    for level in levels() {
        let mut d = vec![0.0; m * n];
        gemm_at(
            level,
            Dst::Overwrite(&mut d),
            (m, k, n),
            Operand::by_rows(&a, k),
            Operand::by_rows(&b, n),
            Parallelism::None,
        );
        assert!(d.iter().zip(&exact).all(|(&x, &y)| f64::from(x) == y), "{level:?}");
    }
}

#[test]
fn bf16_rounding_drops_the_low_bits_of_the_operands() {
    // 1 + 2⁻¹⁰ is not a bf16: it rounds to 1, so 1 × (1 + 2⁻¹⁰) is 1, where f32 gives 1 + 2⁻¹⁰.
    let x = 1.0 + 2f32.powi(-10);
    for level in levels() {
        let mut d = [0.0];
        gemm_at(
            level,
            Dst::Overwrite(&mut d),
            (1, 1, 1),
            Operand::by_rows(&[1.0], 1),
            Operand::by_rows(&[x], 1),
            Parallelism::None,
        );
        assert_eq!(d[0], 1.0, "{level:?}");
    }
}

#[test]
fn empty_and_k_zero_products_write_zeros_or_leave_the_destination() {
    for level in levels() {
        for (m, k, n) in [(0, 5, 3), (4, 3, 0), (0, 0, 0)] {
            let mut d = vec![7.0; m * n];
            let (a, b) = (vec![1.0; m * k], vec![1.0; k * n]);
            gemm_at(
                level,
                Dst::Overwrite(&mut d),
                (m, k, n),
                Operand::by_rows(&a, k),
                Operand::by_rows(&b, n),
                Parallelism::Rayon(0),
            );
            assert!(d.is_empty());
        }
        let mut d = vec![7.0f32; 15];
        gemm_at(
            level,
            Dst::Accumulate(&mut d),
            (3, 0, 5),
            Operand::by_rows(&[], 0),
            Operand::by_rows(&[], 5),
            Parallelism::None,
        );
        assert_eq!(d, vec![7.0; 15], "{level:?}: k = 0 adds nothing");
        gemm_at(
            level,
            Dst::Overwrite(&mut d),
            (3, 0, 5),
            Operand::by_rows(&[], 0),
            Operand::by_rows(&[], 5),
            Parallelism::None,
        );
        assert_eq!(d, vec![0.0; 15], "{level:?}: k = 0 writes zeros");
        let mut slots = vec![MaybeUninit::new(7.0f32); 15];
        gemm_at(
            level,
            Dst::Uninit(&mut slots),
            (3, 0, 5),
            Operand::by_rows(&[], 0),
            Operand::by_rows(&[], 5),
            Parallelism::None,
        );
        // SAFETY: the slots were initialized with 7 when made, and overwritten since.
        assert!(slots.iter().all(|s| unsafe { s.assume_init() } == 0.0), "{level:?}: k = 0 into writes zeros");
    }
}

#[test]
fn nan_and_infinity_propagate_at_every_level() {
    let (m, k, n) = (20, 40, 35);
    let mut a: Vec<f32> = values(m * k, 3).iter().map(|x| x.abs() + 0.5).collect();
    let b: Vec<f32> = values(k * n, 4).iter().map(|x| x.abs() + 0.5).collect();
    a[3 * k + 17] = f32::NAN; // row 3 is NaN
    let mut b_inf = b.clone();
    b_inf[5 * n + 30] = f32::INFINITY; // column 30 is +∞ where a's column 5 is positive
    for level in levels() {
        let mut d = vec![0.0; m * n];
        gemm_at(
            level,
            Dst::Overwrite(&mut d),
            (m, k, n),
            Operand::by_rows(&a, k),
            Operand::by_rows(&b_inf, n),
            Parallelism::None,
        );
        for i in 0..m {
            for j in 0..n {
                let c = d[i * n + j];
                match (i, j) {
                    (3, _) => assert!(c.is_nan(), "{level:?} ({i}, {j}): {c}"),
                    (_, 30) => assert_eq!(c, f32::INFINITY, "{level:?} ({i}, {j})"),
                    _ => assert!(c.is_finite(), "{level:?} ({i}, {j}): {c}"),
                }
            }
        }
    }
}

#[test]
fn round_bf16_rounds_to_nearest_even_and_keeps_specials() {
    assert_eq!(round_bf16(1.0 + 2f32.powi(-8)), 1.0); // tie, to even
    assert_eq!(round_bf16(1.0 + 3.0 * 2f32.powi(-8)), 1.0 + 2f32.powi(-6)); // tie, to even (up)
    assert_eq!(round_bf16(1.0 + 2f32.powi(-8) + 2f32.powi(-20)), 1.0 + 2f32.powi(-7)); // above the tie
    assert_eq!(round_bf16(-2.5), -2.5);
    assert_eq!(round_bf16(f32::INFINITY), f32::INFINITY);
    assert_eq!(round_bf16(f32::NEG_INFINITY), f32::NEG_INFINITY);
    assert_eq!(round_bf16(f32::MAX), f32::INFINITY); // beyond bf16's largest, 2¹²⁸ − 2¹²⁰
    assert_eq!(round_bf16(-f32::MAX), f32::NEG_INFINITY);
    assert!(round_bf16(f32::NAN).is_nan());
    assert!(round_bf16(f32::from_bits(0x7fff_ffff)).is_nan()); // a NaN whose rounding would carry
    assert!(round_bf16(f32::from_bits(0xff80_0001)).is_nan()); // a signalling NaN with low payload
    assert_eq!(round_bf16(1e-40).to_bits(), 0); // subnormal: zero
    assert_eq!(round_bf16(-1e-40).to_bits(), 0x8000_0000); // of the same sign
    assert_eq!(round_bf16(f32::MIN_POSITIVE), f32::MIN_POSITIVE);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn the_packing_paths_round_like_round_bf16_and_pair_along_k() {
    use super::avx512::{convert_rows, pack, pair, MR, NR};
    if detected() == Bf16Level::None {
        eprintln!("skipped: this CPU has no AVX512-BF16");
        return;
    }
    // A 70 × 37 operand with every kind of value, packed through each of the three packing paths
    // (contiguous rows, contiguous columns, general strides) and converted row by row, against
    // the scalar layouts.
    let specials =
        [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e-40, -1e-40, f32::MAX, 1.0 + 2f32.powi(-8), -0.0, 3.0e38];
    let (rows, k) = (70, 37);
    let mut a = values(rows * k, 9);
    for (i, x) in a.iter_mut().enumerate().filter(|(i, _)| i % 7 == 0) {
        *x = specials[(i / 7) % specials.len()];
    }
    let kp = k.div_ceil(2);
    for panel in [MR, NR] {
        let mut want = vec![0u32; rows.div_ceil(panel) * kp * panel];
        for r in 0..rows {
            for p in 0..kp {
                let hi = if 2 * p + 1 < k { a[r * k + 2 * p + 1] } else { 0.0 };
                want[((r / panel) * kp + p) * panel + r % panel] = pair(a[r * k + 2 * p], hi);
            }
        }
        let by_rows = Stored::new(&a, rows, k, false, 1);
        let by_cols = Stored::new(&a, rows, k, true, 2);
        let spread: Vec<f32> = a.iter().flat_map(|&x| [x, 0.0]).collect();
        let general = Operand { data: &spread, row_stride: 2 * k, col_stride: 2 };
        for (name, op) in [("rows", by_rows.operand()), ("columns", by_cols.operand()), ("general", general)] {
            for parallel in [false, true] {
                assert_eq!(pack(op, rows, k, panel, parallel).words(), want, "{name}, panel {panel}");
            }
        }
    }
    // Row by row, for the micro-kernel's `ROWS` layout: the same words, rows padded to MR.
    let mut want = vec![0u32; rows.div_ceil(MR) * MR * kp];
    for r in 0..rows {
        for p in 0..kp {
            let hi = if 2 * p + 1 < k { a[r * k + 2 * p + 1] } else { 0.0 };
            want[r * kp + p] = pair(a[r * k + 2 * p], hi);
        }
    }
    let by_rows = Stored::new(&a, rows, k, false, 3);
    for parallel in [false, true] {
        assert_eq!(convert_rows(by_rows.operand(), rows, k, parallel).words(), want, "by rows");
    }
    for (&x, &s) in a.iter().zip(&a[1..]) {
        let w = pair(x, s);
        assert_eq!(f32::from_bits(w << 16).to_bits(), round_bf16(x).to_bits());
        assert_eq!(f32::from_bits(w & 0xffff_0000).to_bits(), round_bf16(s).to_bits());
    }
}

#[test]
fn the_wrappers_run_the_selected_level() {
    let (m, k, n) = (19, 23, 37);
    let (a, b) = (values(m * k, 11), values(k * n, 12));
    let (a, b) = (Operand::by_rows(&a, k), Operand::by_rows(&b, n));
    let mut want = vec![0.0; m * n];
    gemm_at(level(), Dst::Overwrite(&mut want), (m, k, n), a, b, Parallelism::None);
    let into = uninit::new_vec(m * n, |dst| bf16_gemm_into(dst, (m, k, n), a, b, Parallelism::None));
    assert_eq!(into, want);
    let mut over = vec![f32::NAN; m * n];
    bf16_gemm_overwrite(&mut over, (m, k, n), a, b, Parallelism::None);
    assert_eq!(over, want);
    let mut acc = vec![1.0; m * n];
    bf16_gemm_accumulate(&mut acc, (m, k, n), a, b, Parallelism::None);
    let mut acc_want = vec![1.0; m * n];
    gemm_at(level(), Dst::Accumulate(&mut acc_want), (m, k, n), a, b, Parallelism::None);
    assert_eq!(acc, acc_want);
}

#[test]
#[should_panic(expected = "strides reach past its data")]
fn strides_past_the_data_are_refused() {
    let mut d = vec![0.0; 4];
    bf16_gemm_overwrite(
        &mut d,
        (2, 3, 2),
        Operand::by_rows(&[1.0; 5], 3),
        Operand::by_rows(&[1.0; 6], 2),
        Parallelism::None,
    );
}

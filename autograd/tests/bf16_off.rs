//! `PENTE_BF16=off` forces the portable bf16 path on any CPU, and it still computes the bf16
//! product. Its own test binary: the variable is read once per process, at the first
//! `kernels::bf16::level()`.

use autograd::kernels::bf16::{self, round_bf16, Bf16Level};

#[test]
fn pente_bf16_off_forces_the_portable_path_which_rounds_the_operands() {
    std::env::set_var("PENTE_BF16", "off");
    assert_eq!(bf16::level(), Bf16Level::None);
    // Entries of a carry bits below bf16's 8 significant ones, which the rounding drops.
    let (m, k, n) = (3, 5, 4);
    let a: Vec<f32> = (0..m * k).map(|i| 1.0 + i as f32 * 2f32.powi(-10)).collect();
    let b: Vec<f32> = (0..k * n).map(|i| 3.0 + i as f32 * 2f32.powi(-7)).collect();
    let mut c = vec![f32::NAN; m * n];
    bf16::product(&mut c, (m, k, n), &a, &b);
    for i in 0..m {
        for j in 0..n {
            // Small exact sums: the bf16 product equals the f64 product of the rounded operands.
            let want: f64 =
                (0..k).map(|p| f64::from(round_bf16(a[i * k + p])) * f64::from(round_bf16(b[p * n + j]))).sum();
            assert_eq!(f64::from(c[i * n + j]), want, "({i}, {j})");
        }
    }
    let unrounded: f64 = (0..k).map(|p| f64::from(a[k + p]) * f64::from(b[p * n + 1])).sum();
    assert_ne!(f64::from(c[n + 1]), unrounded, "the operands were rounded");
}

//! The scalar-mlp workload reproduces the reference implementation's losses: same LCG data,
//! same initial weights, same operation order, so pente and micrograd agree to 1e-9.
//!
//! The expected values were printed by `python bench/reference/scalar_micrograd.py 2 10`
//! (micrograd 0.1.0): the loss of the first step and of the twelfth.

use autograd::Tape;
use models::bench::scalar_mlp;

#[test]
fn scalar_mlp_losses_match_micrograd() {
    let (xs, ys, mut params) = scalar_mlp::problem();
    let mut tape = Tape::new();
    let losses: Vec<f64> = (0..12).map(|_| scalar_mlp::step(&mut tape, &xs, &ys, &mut params, 0.05)).collect();
    assert!((losses[0] - 1.714_944_018_068_042_9).abs() < 1e-9, "first loss {}", losses[0]);
    assert!((losses[11] - 0.896_191_584_121_668_5).abs() < 1e-9, "twelfth loss {}", losses[11]);
}

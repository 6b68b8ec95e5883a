//! Every kernel gives the same bits at every instruction-set level that this CPU supports (see
//! `autograd::simd`): a step of ops that reach each dispatched kernel, forward and backward, in
//! `f32` and `f64`, computed at the CPU's best level and again at each lower one.
//!
//! The levels are switched with `simd::set_max_level`, which is process-wide, so this file holds
//! one test (a file's tests share a process and run side by side).

use autograd::simd::{self, Level};
use autograd::{Float, Tape, Tensor};

/// Deterministic values in about [-2, 2], some exactly zero and some repeated (ties for max pool).
fn values<T: Float>(n: usize, seed: u64) -> Vec<T> {
    (0..n)
        .map(|i| {
            let h = (i as u64 + 1).wrapping_mul(seed * 2 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
            T::from_f64(((h % 4001) as f64 - 2000.0) / 1000.0)
        })
        .collect()
}

fn bits<T: Float>(t: &Tensor<T>) -> Vec<u64> {
    t.data().iter().map(|x| x.to_f64().to_bits()).collect()
}

/// Outputs and gradients of a step that goes through every dispatched kernel. Sizes are above
/// the element-wise parallel threshold where it matters, so the threaded paths run too.
fn step<T: Float>() -> Vec<Vec<u64>> {
    let tape = Tape::<T>::new();
    let n = 40_000;
    let x = tape.var(Tensor::from_vec(values(n, 1), &[200, 200]));
    let w = tape.var(Tensor::from_vec(values(200 * 64, 2), &[200, 64]));
    let b = tape.var(Tensor::from_vec(values(64, 3), &[64]));
    let gamma = tape.var(Tensor::from_vec(values(64, 4), &[64]));
    let beta = tape.var(Tensor::from_vec(values(64, 5), &[64]));
    // Element-wise maps and zips (GELU's erf and exp, tanh, a broadcast add), reductions, layer
    // norm, softmax, cross-entropy.
    let h = x.matmul_bias(w, b).gelu();
    let h = (h + b).layer_norm(gamma, beta, 1e-5).tanh();
    let targets: Vec<usize> = (0..200).map(|i| (i * 7) % 64).collect();
    let ce = h.cross_entropy(&targets);
    let sm = h.softmax(-1).sum_axes(&[0], false).sum();
    let ls = (h.log_softmax(0) * h).mean();
    let mx = h.max_axes(&[1], false).sum();
    // Attention: (batch 2, t 40, 3·c with c = 16, two heads): the tile products.
    let qkv = tape.var(Tensor::from_vec(values(2 * 40 * 48, 6), &[2, 40, 48]));
    let att = qkv.causal_attention(2).square().mean();
    // Convolution and max pooling: (4, 3, 12, 12) images, 8 filters of 3 × 3.
    let img = tape.var(Tensor::from_vec(values(4 * 3 * 12 * 12, 7), &[4, 3, 12, 12]));
    let k = tape.var(Tensor::from_vec(values(8 * 3 * 9, 8), &[8, 3, 3, 3]));
    let kb = tape.var(Tensor::from_vec(values(8, 9), &[8]));
    let conv = img.conv2d_with_bias(k, kb, 1, 1).relu().max_pool2d(2, 2).sigmoid().mean();
    let loss = ce + sm + ls + mx + att + conv;
    let grads = loss.backward();
    let mut out = vec![bits(&loss.value()), bits(&h.value())];
    for v in [x, w, b, gamma, beta, qkv, img, k, kb] {
        out.push(bits(&grads[v]));
    }
    out
}

#[test]
fn every_level_gives_the_same_bits() {
    let best = simd::detected();
    let want32 = step::<f32>();
    let want64 = step::<f64>();
    let mut checked = vec![best];
    for level in [Level::Avx2, Level::Baseline] {
        if level >= best {
            continue;
        }
        simd::set_max_level(level);
        assert_eq!(simd::level(), level);
        assert!(step::<f32>() == want32, "f32 at {} differs from {}", level.name(), best.name());
        assert!(step::<f64>() == want64, "f64 at {} differs from {}", level.name(), best.name());
        checked.push(level);
    }
    simd::set_max_level(Level::Avx512);
    println!("compared levels {:?}", checked.iter().map(|l| l.name()).collect::<Vec<_>>());
}

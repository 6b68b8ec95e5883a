//! `PENTE_BF16=off` (or a CPU without AMX and AVX512-BF16): a tape set to bf16 computes exactly
//! what an f32 tape does, bit for bit. Its own test binary, because the level is read from the
//! environment once per process.

use autograd::kernels::bf16::{level, Bf16Level};
use autograd::precision::Precision;
use autograd::{Tape, Tensor};

fn tensor(shape: &[usize], seed: u64) -> Tensor<f32> {
    let n: usize = shape.iter().product();
    let data = (0..n).map(|i| (((i as u64 * 7919 + seed * 104_729) % 1009) as f32) / 251.7 - 2.0).collect();
    Tensor::from_vec(data, shape)
}

#[test]
fn bf16_off_runs_the_f32_products_bit_for_bit() {
    // The only test in this binary, so nothing has read the level before this line.
    std::env::set_var("PENTE_BF16", "off");
    assert_eq!(level(), Bf16Level::None);
    let (x, w, b) = (tensor(&[33, 70], 1), tensor(&[70, 20], 2), tensor(&[20], 3));
    let (img, k, qkv) = (tensor(&[2, 3, 9, 9], 4), tensor(&[5, 3, 3, 3], 5), tensor(&[2, 7, 12], 6));
    let results = |precision: Precision| {
        let tape = Tape::<f32>::new();
        tape.mixed_precision(precision);
        let (xv, wv, bv) = (tape.var(x.clone()), tape.var(w.clone()), tape.var(b.clone()));
        let (iv, kv, qv) = (tape.var(img.clone()), tape.var(k.clone()), tape.var(qkv.clone()));
        let dense = xv.matmul_bias(wv, bv).tanh().matmul(wv.t());
        let conv = iv.conv2d(kv, 1, 1);
        let attention = qv.causal_attention(2);
        let loss = dense.tanh().sum() + conv.tanh().sum() + attention.tanh().sum();
        let grads = loss.backward();
        let mut all = vec![dense.value(), conv.value(), attention.value()];
        all.extend([xv, wv, bv, iv, kv, qv].iter().map(|v| grads[*v].clone()));
        all
    };
    assert_eq!(results(Precision::Bf16), results(Precision::F32));
}

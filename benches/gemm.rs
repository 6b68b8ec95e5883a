//! Matrix products through `Var::matmul`: C = A·B, f32, square row-major, n = 128, 512, 1024.
//!
//! The throughput criterion prints as "elem/s" is FLOP/s: 2n³ per forward product, 6n³ for
//! forward and backward (the two backward products, A's and B's gradients, read the transposes
//! through strides). `pente bench --workload gemm` reports the same forward figure as best of
//! 10 trials, next to the `gemm` crate called directly.
//!
//! `cargo bench --bench gemm`; one size: `cargo bench --bench gemm -- gemm/fwd/512`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn gemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    for n in [128usize, 512, 1024] {
        if n >= 1024 {
            group.sample_size(10); // about 15 ms a product: 10 samples are plenty
        }
        let inputs = [common::random(&[n, n], 1), common::random(&[n, n], 2)];
        let flop = 2 * (n as u64).pow(3);
        group.throughput(Throughput::Elements(flop));
        common::forward(&mut group, &format!("fwd/{n}"), &inputs, |v| v[0].matmul(v[1]));
        group.throughput(Throughput::Elements(3 * flop));
        common::forward_backward(&mut group, &format!("fwd_bwd/{n}"), &inputs, |v| v[0].matmul(v[1]));
    }
    group.finish();
}

criterion_group! { name = benches; config = common::config(); targets = gemm }
criterion_main!(benches);

//! bf16 against f32 matrix products, the kernels alone (no tape): `kernels::bf16::product` (the
//! level `kernels::bf16::level` selects, AVX512-BF16 where the CPU has it) beside
//! `kernels::gemm::product` (the `gemm` crate in f32), both on rayon's threads.
//!
//! Square products at n = 256, 512, 1024, and the products of a GPT of nanoGPT's
//! shakespeare_char size (batch 12 × block 256 = 3072 rows, n_embd 384): the attention's input
//! projection 3072×384×1152, the MLP's 3072×384×1536 and 3072×1536×384. The throughput criterion
//! prints as "elem/s" is FLOP/s: 2·m·k·n per product.
//!
//! `cargo bench --bench gemm_bf16`; one shape: `cargo bench --bench gemm_bf16 -- 1024`;
//! `PENTE_BF16=off` runs the portable bf16 path instead.

use autograd::kernels::{bf16, gemm};
use autograd::{Rng, SeedableRng, Tensor};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::time::Duration;

fn products(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm_bf16");
    let shapes =
        [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (3072, 384, 1152), (3072, 384, 1536), (3072, 1536, 384)];
    eprintln!("bf16 level: {:?}", bf16::level());
    for (m, k, n) in shapes {
        let mut rng = Rng::seed_from_u64(1);
        let a = Tensor::<f32>::rand_uniform(&[m, k], -1.0, 1.0, &mut rng).into_vec();
        let b = Tensor::<f32>::rand_uniform(&[k, n], -1.0, 1.0, &mut rng).into_vec();
        let mut out = vec![0.0f32; m * n];
        group.throughput(Throughput::Elements(2 * (m * k * n) as u64));
        let id = format!("{m}x{k}x{n}");
        group.bench_function(format!("f32/{id}"), |bench| bench.iter(|| gemm::product(&mut out, (m, k, n), &a, &b)));
        group.bench_function(format!("bf16/{id}"), |bench| bench.iter(|| bf16::product(&mut out, (m, k, n), &a, &b)));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(20);
    targets = products
}
criterion_main!(benches);

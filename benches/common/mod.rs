//! Helpers shared by the kernel benchmarks: one criterion configuration, seeded random inputs,
//! and the two ways an op is timed (forward alone; forward and backward).
//!
//! Every iteration records on a fresh tape, as a training step does, so the times include the
//! tape's bookkeeping and the output buffers' allocation and release.

use std::time::Duration;

use autograd::{Rng, SeedableRng, Tape, Tensor, Var};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion};

/// Shorter than criterion's defaults (3 s warm-up, 5 s and 100 samples per benchmark), so that a
/// whole file runs in minutes on two cores; `--warm-up-time`, `--measurement-time`,
/// `--sample-size` and `--quick` on the command line still override it.
pub fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(20)
}

/// A tensor of `shape` with entries uniform in [-1, 1), the same for the same `seed`.
pub fn random(shape: &[usize], seed: u64) -> Tensor<f32> {
    Tensor::rand_uniform(shape, -1.0, 1.0, &mut Rng::seed_from_u64(seed))
}

/// Times `op` on `inputs`, forward only: the inputs are lifted onto a fresh tape as variables
/// and the op is recorded on it.
pub fn forward<F>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, inputs: &[Tensor<f32>], op: F)
where
    F: for<'t> Fn(&[Var<'t, f32>]) -> Var<'t, f32>,
{
    group.bench_function(id, |b| {
        b.iter(|| {
            let tape = Tape::<f32>::new();
            let vars: Vec<_> = inputs.iter().map(|x| tape.var(x.clone())).collect();
            std::hint::black_box(op(&vars).value());
        })
    });
}

/// Times `op` on `inputs`, forward then backward: backward is seeded with ones of the output's
/// shape (no extra reduction on the tape), and returns the gradient of every input.
pub fn forward_backward<F>(group: &mut BenchmarkGroup<'_, WallTime>, id: &str, inputs: &[Tensor<f32>], op: F)
where
    F: for<'t> Fn(&[Var<'t, f32>]) -> Var<'t, f32>,
{
    let out_shape = {
        let tape = Tape::<f32>::new();
        let vars: Vec<_> = inputs.iter().map(|x| tape.var(x.clone())).collect();
        op(&vars).shape()
    };
    let seed = Tensor::<f32>::ones(&out_shape);
    group.bench_function(id, |b| {
        b.iter(|| {
            let tape = Tape::<f32>::new();
            let vars: Vec<_> = inputs.iter().map(|x| tape.var(x.clone())).collect();
            std::hint::black_box(op(&vars).backward_with(seed.clone()));
        })
    });
}

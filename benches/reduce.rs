//! Reductions and the row-wise normalizations of the standard workloads, forward and forward +
//! backward:
//!
//! - `sum` and `mean` over one axis of a (1024, 1024) f32 matrix: the last axis (contiguous
//!   rows) and the first (strided columns, what a bias gradient does);
//! - `softmax` over the last axis of (48, 64, 64): char-gpt's attention weights (batch 12 ×
//!   4 heads, 64 × 64);
//! - `layer_norm` over the last axis of (768, 128) with weight and bias: char-gpt's
//!   activations (12 × 64 tokens, n_embd 128);
//! - `rms_norm` on the same activations, the fused op beside its composition
//!   `x · (mean(x²) + eps)^(−½) · w` (what the fusion buys).
//!
//! Throughput is in input elements per second.
//! `cargo bench --bench reduce`; one family: `cargo bench --bench reduce -- softmax`.

mod common;

use autograd::Tensor;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn sum_mean(c: &mut Criterion) {
    let mut group = c.benchmark_group("reduce");
    let inputs = [common::random(&[1024, 1024], 1)];
    group.throughput(Throughput::Elements(1024 * 1024));
    for (axis, name) in [(-1isize, "last"), (0, "first")] {
        common::forward(&mut group, &format!("sum_axis_{name}/fwd"), &inputs, |v| v[0].sum_axes(&[axis], false));
        common::forward_backward(&mut group, &format!("sum_axis_{name}/fwd_bwd"), &inputs, |v| {
            v[0].sum_axes(&[axis], false)
        });
        common::forward(&mut group, &format!("mean_axis_{name}/fwd"), &inputs, |v| v[0].mean_axes(&[axis], false));
        common::forward_backward(&mut group, &format!("mean_axis_{name}/fwd_bwd"), &inputs, |v| {
            v[0].mean_axes(&[axis], false)
        });
    }
    group.finish();
}

fn softmax(c: &mut Criterion) {
    let mut group = c.benchmark_group("softmax");
    let inputs = [common::random(&[48, 64, 64], 1)];
    group.throughput(Throughput::Elements(48 * 64 * 64));
    common::forward(&mut group, "48x64x64/fwd", &inputs, |v| v[0].softmax(-1));
    common::forward_backward(&mut group, "48x64x64/fwd_bwd", &inputs, |v| v[0].softmax(-1));
    group.finish();
}

fn layer_norm(c: &mut Criterion) {
    let mut group = c.benchmark_group("layer_norm");
    let inputs = [common::random(&[768, 128], 1), Tensor::ones(&[128]), Tensor::zeros(&[128])];
    group.throughput(Throughput::Elements(768 * 128));
    common::forward(&mut group, "768x128/fwd", &inputs, |v| v[0].layer_norm(v[1], v[2], 1e-5));
    common::forward_backward(&mut group, "768x128/fwd_bwd", &inputs, |v| v[0].layer_norm(v[1], v[2], 1e-5));
    group.finish();
}

/// RMS norm composed of primitive ops: `x · (mean(x²) + eps)^(−½) · w`.
fn composed<'t>(v: &[autograd::Var<'t, f32>]) -> autograd::Var<'t, f32> {
    v[0] * ((v[0] * v[0]).mean_axes(&[-1], true) + 1e-5).powf(-0.5) * v[1]
}

fn rms_norm(c: &mut Criterion) {
    let mut group = c.benchmark_group("rms_norm");
    let inputs = [common::random(&[768, 128], 1), Tensor::ones(&[128])];
    group.throughput(Throughput::Elements(768 * 128));
    common::forward(&mut group, "768x128/fwd", &inputs, |v| v[0].rms_norm(v[1], 1e-5));
    common::forward_backward(&mut group, "768x128/fwd_bwd", &inputs, |v| v[0].rms_norm(v[1], 1e-5));
    common::forward(&mut group, "768x128_composed/fwd", &inputs, composed);
    common::forward_backward(&mut group, "768x128_composed/fwd_bwd", &inputs, composed);
    group.finish();
}

criterion_group! { name = benches; config = common::config(); targets = sum_mean, softmax, layer_norm, rms_norm }
criterion_main!(benches);

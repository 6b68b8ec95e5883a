//! `Var::conv2d` (fused: one image at a time unfolded into a cached buffer and multiplied) at the
//! digits CNN's two shapes, batch 32, and its max pooling:
//!
//! - conv1: input (32, 1, 28, 28), weight (32, 1, 3, 3) → (32, 32, 26, 26);
//! - conv2: input (32, 32, 26, 26), weight (64, 32, 3, 3) → (32, 64, 24, 24).
//!
//! - pool: `max_pool2d(2, 2)` of (32, 64, 24, 24) → (32, 64, 12, 12).
//! - up: `conv_transpose2d` of (32, 64, 7, 7) with a (64, 32, 3, 3) weight, stride 2, padding 1,
//!   output padding 1 → (32, 32, 14, 14);
//! - avg: `avg_pool2d(3, 2, 1)` of (32, 64, 24, 24) → (32, 64, 12, 12).
//!
//! Forward, and forward + backward (gradients of input and weight). Throughput is FLOP/s of the
//! forward product, 2·N·O·OH·OW·C·kh·kw, for both (compare the two rows' times, not their rates);
//! for pooling, input elements per second. `cargo bench --bench conv`; one shape:
//! `cargo bench --bench conv -- conv2`.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d");
    // (name, input channels, output channels, input side)
    for (name, c_in, c_out, side) in [("conv1", 1usize, 32usize, 28usize), ("conv2", 32, 64, 26)] {
        let inputs = [common::random(&[32, c_in, side, side], 1), common::random(&[c_out, c_in, 3, 3], 2)];
        let out_side = side - 2;
        group.throughput(Throughput::Elements((2 * 32 * c_out * out_side * out_side * c_in * 9) as u64));
        common::forward(&mut group, &format!("{name}/fwd"), &inputs, |v| v[0].conv2d(v[1], 1, 0));
        common::forward_backward(&mut group, &format!("{name}/fwd_bwd"), &inputs, |v| v[0].conv2d(v[1], 1, 0));
    }
    group.finish();
    let mut group = c.benchmark_group("max_pool2d");
    let inputs = [common::random(&[32, 64, 24, 24], 3)];
    group.throughput(Throughput::Elements(inputs[0].numel() as u64));
    common::forward(&mut group, "pool/fwd", &inputs, |v| v[0].max_pool2d(2, 2));
    common::forward_backward(&mut group, "pool/fwd_bwd", &inputs, |v| v[0].max_pool2d(2, 2));
    group.finish();
    // A decoder's upsampling: (32, 64, 7, 7) → (32, 32, 14, 14), kernel 3, stride 2, padding 1,
    // output padding 1; FLOP/s of its product, 2·N·C_in·H·W·C_out·kh·kw.
    let mut group = c.benchmark_group("conv_transpose2d");
    let inputs = [common::random(&[32, 64, 7, 7], 4), common::random(&[64, 32, 3, 3], 5)];
    group.throughput(Throughput::Elements((2 * 32 * 64 * 7 * 7 * 32 * 9) as u64));
    common::forward(&mut group, "up/fwd", &inputs, |v| v[0].conv_transpose2d(v[1], 2, 1, 1));
    common::forward_backward(&mut group, "up/fwd_bwd", &inputs, |v| v[0].conv_transpose2d(v[1], 2, 1, 1));
    group.finish();
    let mut group = c.benchmark_group("avg_pool2d");
    let inputs = [common::random(&[32, 64, 24, 24], 6)];
    group.throughput(Throughput::Elements(inputs[0].numel() as u64));
    common::forward(&mut group, "avg/fwd", &inputs, |v| v[0].avg_pool2d(3, 2, 1));
    common::forward_backward(&mut group, "avg/fwd_bwd", &inputs, |v| v[0].avg_pool2d(3, 2, 1));
    group.finish();
}

criterion_group! { name = benches; config = common::config(); targets = conv }
criterion_main!(benches);

//! Element-wise kernels: `a + b`, `a * b` (same shapes, no broadcast), `exp` and the exact (erf)
//! `gelu`, on 1e3, 1e5 and 1e6 f32 elements, forward and forward + backward.
//!
//! 1e3 elements shows the fixed cost of an op (tape node, allocation); 1e5 and 1e6 are above
//! `autograd::PAR_THRESHOLD`, where the kernels split across rayon's threads. Throughput is in
//! elements of the output per second.
//!
//! `cargo bench --bench elementwise`; one op: `cargo bench --bench elementwise -- gelu`.

mod common;

use autograd::Var;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// One op over the three sizes.
fn family(c: &mut Criterion, name: &str, arity: usize, op: for<'t> fn(&[Var<'t, f32>]) -> Var<'t, f32>) {
    let mut group = c.benchmark_group(format!("elementwise/{name}"));
    for n in [1_000usize, 100_000, 1_000_000] {
        let inputs: Vec<_> = (0..arity).map(|i| common::random(&[n], i as u64 + 1)).collect();
        group.throughput(Throughput::Elements(n as u64));
        common::forward(&mut group, &format!("fwd/{n}"), &inputs, op);
        common::forward_backward(&mut group, &format!("fwd_bwd/{n}"), &inputs, op);
    }
    group.finish();
}

fn elementwise(c: &mut Criterion) {
    family(c, "add", 2, |v| v[0] + v[1]);
    family(c, "mul", 2, |v| v[0] * v[1]);
    family(c, "exp", 1, |v| v[0].exp());
    family(c, "gelu", 1, |v| v[0].gelu());
}

criterion_group! { name = benches; config = common::config(); targets = elementwise }
criterion_main!(benches);

//! The tape's own cost: recording 10,000 tiny scalar (0-d, f64) ops, and recording them then
//! sweeping backward, where the arithmetic is nothing and the bookkeeping is everything (the
//! scalar-mlp workload is made of such nodes).
//!
//! The chain is `y ← y·a + b`, 5,000 times (10,000 nodes beside the three leaves). `reused`
//! records on one tape cleared by `Tape::reset` each iteration, as `pente bench`'s scalar-mlp
//! does; `fresh` builds a new tape each iteration, as most training loops do. Throughput is in
//! recorded ops per second.
//! `cargo bench --bench tape`.

use autograd::{Tape, Var};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Tiny ops recorded per iteration.
const OPS: usize = 10_000;

/// Records `OPS` scalar ops on `tape` and returns the last.
fn chain(tape: &Tape<f64>) -> (Var<'_, f64>, [Var<'_, f64>; 3]) {
    let (x, a, b) = (tape.var(0.5), tape.var(0.999), tape.var(0.001));
    let mut y = x;
    for _ in 0..OPS / 2 {
        y = y * a + b;
    }
    (y, [x, a, b])
}

fn tape(c: &mut Criterion) {
    let mut group = c.benchmark_group("tape");
    group.throughput(Throughput::Elements(OPS as u64));
    let mut tape = Tape::<f64>::new();
    group.bench_function("record_10k/reused", |bench| {
        bench.iter(|| {
            tape.reset();
            std::hint::black_box(chain(&tape).0.item());
        })
    });
    group.bench_function("record_backward_10k/reused", |bench| {
        bench.iter(|| {
            tape.reset();
            let (y, leaves) = chain(&tape);
            let grads = y.backward();
            std::hint::black_box(leaves.map(|v| grads[v].item()));
        })
    });
    group.bench_function("record_backward_10k/fresh", |bench| {
        bench.iter(|| {
            let tape = Tape::<f64>::new();
            let (y, leaves) = chain(&tape);
            let grads = y.backward();
            std::hint::black_box(leaves.map(|v| grads[v].item()));
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3))
        .sample_size(20);
    targets = tape
}
criterion_main!(benches);

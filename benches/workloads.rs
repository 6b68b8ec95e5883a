//! The `gemm` and `scalar-mlp` standard workloads of DESIGN.md, printed as one JSON object per
//! line: `cargo bench --bench workloads [-- gemm|scalar-mlp]`.
//!
//! - gemm: C = A·B in f32, square row-major, n = 128, 256, 512, 1024, best of 10 trials, through
//!   pente's `matmul` (recorded on a tape, as a model would) and through the `gemm` crate called
//!   directly with the same parallelism, so the overhead of pente is the ratio of the two.
//! - scalar-mlp: an MLP 2→16→16→1 built from 0-d tensors (one node per scalar operation, as in
//!   micrograd), mean squared error over 100 fixed points, full-batch SGD; data and initial
//!   weights from the 64-bit LCG of the reference scripts, so the losses match theirs.

use std::time::Instant;

use autograd::{SeedableRng, Tape, Tensor};

#[path = "common/scalar_mlp.rs"]
mod scalar_mlp;
use scalar_mlp::{scalar_problem, scalar_step};

fn emit(fields: &[(&str, String)]) {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
    println!("{{{}}}", body.join(", "));
}

fn time<F: FnOnce()>(f: F) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn gemm_workload() {
    let mut rng = autograd::Rng::seed_from_u64(0);
    for n in [128usize, 256, 512, 1024] {
        let a = Tensor::<f32>::rand_uniform(&[n, n], -1.0, 1.0, &mut rng);
        let b = Tensor::<f32>::rand_uniform(&[n, n], -1.0, 1.0, &mut rng);
        let flops = 2.0 * (n as f64).powi(3);
        let (ad, bd) = (a.data(), b.data());
        let mut c = vec![0f32; n * n];
        // Trials alternate between the two so that load from elsewhere hits both alike.
        let (mut pente, mut direct) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..10 {
            pente = pente.min(time(|| {
                let tape = Tape::new();
                let c = tape.constant(a.clone()).matmul(tape.constant(b.clone()));
                std::hint::black_box(c.value());
            }));
            direct = direct.min(time(|| {
                // SAFETY: a, b and c are n×n row-major buffers of exactly n·n elements (asserted
                // by their construction above); column stride 1 and row stride n address only them.
                unsafe {
                    gemm::gemm(
                        n,
                        n,
                        n,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        ad.as_ptr(),
                        1,
                        n as isize,
                        bd.as_ptr(),
                        1,
                        n as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::Rayon(0),
                    )
                };
                std::hint::black_box(&c);
            }));
        }
        for (imp, t) in [("pente", pente), ("gemm-crate", direct)] {
            emit(&[
                ("workload", "\"gemm\"".into()),
                ("impl", format!("\"{imp}\"")),
                ("n", n.to_string()),
                ("gflops", format!("{:.1}", flops / t / 1e9)),
                ("seconds", format!("{t:.6}")),
                ("threads", rayon::current_num_threads().to_string()),
            ]);
        }
    }
}

fn scalar_mlp_workload(steps: usize) {
    let (xs, ys, mut params) = scalar_problem();
    let warmup = 2;
    let mut tape = Tape::new();
    let first = scalar_step(&mut tape, &xs, &ys, &mut params, 0.05);
    for _ in 1..warmup {
        scalar_step(&mut tape, &xs, &ys, &mut params, 0.05);
    }
    let t = Instant::now();
    let mut last = 0.0;
    for _ in 0..steps {
        last = scalar_step(&mut tape, &xs, &ys, &mut params, 0.05);
    }
    let secs = t.elapsed().as_secs_f64();
    emit(&[
        ("workload", "\"scalar-mlp\"".into()),
        ("impl", "\"pente\"".into()),
        ("steps", steps.to_string()),
        ("steps_per_s", format!("{:.2}", steps as f64 / secs)),
        ("ms_per_step", format!("{:.3}", secs * 1e3 / steps as f64)),
        ("loss_first", format!("{first:.12}")),
        ("loss_last", format!("{last:.12}")),
        ("seconds", format!("{secs:.4}")),
    ]);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `--steps N` shortens the scalar-mlp run (for profiling under valgrind).
    let steps = args.iter().position(|a| a == "--steps").and_then(|i| args.get(i + 1)?.parse().ok()).unwrap_or(50);
    let which: Vec<&String> = args.iter().filter(|a| !a.starts_with('-') && a.parse::<usize>().is_err()).collect();
    let wants = |w: &str| which.is_empty() || which.iter().any(|a| *a == w);
    if wants("gemm") {
        gemm_workload();
    }
    if wants("scalar-mlp") {
        scalar_mlp_workload(steps);
    }
}

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

use autograd::{SeedableRng, Tape, Tensor, Var};

fn emit(fields: &[(&str, String)]) {
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\": {v}")).collect();
    println!("{{{}}}", body.join(", "));
}

fn best_of<F: FnMut()>(trials: usize, mut f: F) -> f64 {
    (0..trials)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn gemm_workload() {
    let mut rng = autograd::Rng::seed_from_u64(0);
    for n in [128usize, 256, 512, 1024] {
        let a = Tensor::<f32>::rand_uniform(&[n, n], -1.0, 1.0, &mut rng);
        let b = Tensor::<f32>::rand_uniform(&[n, n], -1.0, 1.0, &mut rng);
        let flops = 2.0 * (n as f64).powi(3);
        let pente = best_of(10, || {
            let tape = Tape::new();
            let c = tape.constant(a.clone()).matmul(tape.constant(b.clone()));
            std::hint::black_box(c.value());
        });
        let (ad, bd) = (a.data(), b.data());
        let mut c = vec![0f32; n * n];
        let direct = best_of(10, || {
            // SAFETY: a, b and c are n×n row-major buffers of exactly n·n elements (asserted by
            // their construction above); column stride 1 and row stride n address only them.
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
        });
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

/// The 64-bit LCG (Knuth's MMIX constants) of the reference scripts: floats in [0, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Per layer: (weights, one row of `n_in` per neuron; biases).
type Layers = Vec<(Vec<Vec<f64>>, Vec<f64>)>;

fn scalar_problem() -> (Vec<[f64; 2]>, Vec<f64>, Layers) {
    let mut g = Lcg(42);
    let (mut xs, mut ys) = (vec![], vec![]);
    for _ in 0..100 {
        let (x0, x1) = (2.0 * g.next() - 1.0, 2.0 * g.next() - 1.0);
        xs.push([x0, x1]);
        ys.push(if x0 * x1 > 0.0 { 1.0 } else { -1.0 });
    }
    let mut g = Lcg(7);
    let sizes = [2usize, 16, 16, 1];
    let layers = sizes
        .windows(2)
        .map(|w| {
            let (n_in, n_out) = (w[0], w[1]);
            let mut weights = vec![];
            let mut biases = vec![];
            for _ in 0..n_out {
                weights.push((0..n_in).map(|_| 2.0 * g.next() - 1.0).collect());
                biases.push(2.0 * g.next() - 1.0);
            }
            (weights, biases)
        })
        .collect();
    (xs, ys, layers)
}

/// One full-batch SGD step on the scalar graph; returns the loss before the update.
fn scalar_step(tape: &mut Tape<f64>, xs: &[[f64; 2]], ys: &[f64], params: &mut Layers, lr: f64) -> f64 {
    tape.reset();
    let tape = &*tape;
    let lifted: Vec<(Vec<Vec<Var<'_, f64>>>, Vec<Var<'_, f64>>)> = params
        .iter()
        .map(|(w, b)| {
            (
                w.iter().map(|row| row.iter().map(|&v| tape.var(v)).collect()).collect(),
                b.iter().map(|&v| tape.var(v)).collect(),
            )
        })
        .collect();
    let last = lifted.len() - 1;
    let mut loss: Option<Var<'_, f64>> = None;
    for (x, &y) in xs.iter().zip(ys) {
        let mut h: Vec<Var<'_, f64>> = vec![tape.constant(x[0]), tape.constant(x[1])];
        for (li, (w, b)) in lifted.iter().enumerate() {
            h = w
                .iter()
                .zip(b)
                .map(|(row, &bias)| {
                    let pre = row.iter().zip(&h).fold(bias, |acc, (&wi, &hi)| acc + wi * hi);
                    if li < last {
                        pre.tanh()
                    } else {
                        pre
                    }
                })
                .collect();
        }
        let err = (h[0] - y).powi(2);
        loss = Some(match loss {
            None => err,
            Some(l) => l + err,
        });
    }
    let loss = loss.expect("at least one point") * (1.0 / xs.len() as f64);
    let grads = loss.backward();
    for ((w, b), (wv, bv)) in params.iter_mut().zip(&lifted) {
        for (row, rowv) in w.iter_mut().zip(wv) {
            for (p, &v) in row.iter_mut().zip(rowv) {
                *p -= lr * grads[v].item();
            }
        }
        for (p, &v) in b.iter_mut().zip(bv) {
            *p -= lr * grads[v].item();
        }
    }
    loss.item()
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

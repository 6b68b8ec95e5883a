//! Forward mode's cost: `jvp` of char-gpt's forward (the default `GptConfig`, batch 12 × 64
//! tokens, one tangent over every parameter) against the forward alone, and a Hessian-vector
//! product by forward over reverse (`functional::hvp`) against double backward
//! (`functional::hvp_by_double_backward`) on an MLP's loss as a function of its flat
//! parameters. The tangents are constants (`Tape::set_differentiable_tangents(false)`), as in
//! `functional::jvp`; the forward and the jvp run once recording and once under `no_grad`.
//! The variants alternate round by round, so that a loaded machine slows them
//! alike; each prints its median and the ratios. `cargo bench --bench forward`.

use std::time::Instant;

use autograd::functional::{hvp, hvp_by_double_backward};
use autograd::{Rng, SeedableRng, Tape, Tensor, Var};
use nn::ParamStore;
use pente::models::char_lm::gpt::{Gpt, GptConfig};

const ROUNDS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Times each closure once per round, alternating, and returns each one's median in ms.
fn alternate(runs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut times = vec![Vec::new(); runs.len()];
    for run in runs.iter_mut() {
        run(); // warm-up
    }
    for _ in 0..ROUNDS {
        for (run, t) in runs.iter_mut().zip(&mut times) {
            let start = Instant::now();
            run();
            t.push(start.elapsed().as_secs_f64() * 1e3);
        }
    }
    times.into_iter().map(median).collect()
}

/// The mean cross-entropy of `gpt` predicting `targets` from `ids`.
fn gpt_loss<'t>(gpt: &Gpt, p: &nn::Bound<'t, f32>, ids: &[usize], targets: &[usize]) -> Var<'t, f32> {
    let block = gpt.config.block_size;
    nn::loss::cross_entropy(gpt.forward(p, ids, ids.len() / block, block), targets)
}

fn char_gpt() {
    const VOCAB: usize = 65;
    const BATCH: usize = 12;
    let config = GptConfig::default();
    let block = config.block_size;
    let mut store = ParamStore::<f32>::with_seed(0);
    let gpt = Gpt::new(store.scope("gpt"), VOCAB, config);
    let mut rng = Rng::seed_from_u64(1);
    // Random tokens, drawn as uniform numbers in [0, VOCAB).
    let mut tokens = || -> Vec<usize> {
        let u = Tensor::<f64>::rand_uniform(&[BATCH * block], 0.0, VOCAB as f64, &mut rng);
        u.data().iter().map(|&v| (v as usize).min(VOCAB - 1)).collect()
    };
    let (ids, targets) = (tokens(), tokens());
    let tangents: Vec<_> =
        store.iter().map(|(id, _, t)| (id, Tensor::rand_uniform(t.shape(), -1.0, 1.0, &mut rng))).collect();
    let loss = |p: &nn::Bound<'_, f32>| -> f32 { gpt_loss(&gpt, p, &ids, &targets).item() };
    let loss_and_tangent = |p: &nn::Bound<'_, f32>| -> (f32, f32) {
        let y = gpt_loss(&gpt, p, &ids, &targets);
        (y.item(), y.tangent().expect("the loss depends on the parameters").item())
    };
    let forward = |no_grad: bool| {
        let tape = Tape::new();
        let p = store.bind(&tape);
        let run = || loss(&p);
        std::hint::black_box(if no_grad { tape.no_grad(run) } else { run() });
    };
    let jvp = |no_grad: bool| {
        let tape = Tape::new();
        tape.set_differentiable_tangents(false);
        let p = store.bind(&tape);
        for (id, t) in &tangents {
            p.get_dual(*id, t.clone());
        }
        let run = || loss_and_tangent(&p);
        std::hint::black_box(if no_grad { tape.no_grad(run) } else { run() });
    };
    let t = alternate(&mut [&mut || forward(false), &mut || jvp(false), &mut || forward(true), &mut || jvp(true)]);
    println!("char-gpt ({} parameters, batch {BATCH} x {block}):", store.num_params());
    println!("  recording: forward {:.1} ms, jvp {:.1} ms, ratio {:.2}", t[0], t[1], t[1] / t[0]);
    println!("  no_grad:   forward {:.1} ms, jvp {:.1} ms, ratio {:.2}", t[2], t[3], t[3] / t[2]);
}

/// An MLP's mean squared error as a function of its flat parameters `(in·h + h + h·out)`.
fn mlp_loss<'t>(
    theta: Var<'t, f64>,
    x: &Tensor<f64>,
    y: &Tensor<f64>,
    (i, h, o): (usize, usize, usize),
) -> Var<'t, f64> {
    let tape = theta.tape();
    let w1 = theta.narrow(0, 0, i * h).reshape(&[i, h]);
    let b1 = theta.narrow(0, i * h, h);
    let w2 = theta.narrow(0, i * h + h, h * o).reshape(&[h, o]);
    let hidden = tape.constant(x.clone()).matmul_bias(w1, b1).tanh();
    (hidden.matmul(w2) - tape.constant(y.clone())).powi(2).mean()
}

fn mlp_hvp() {
    let dims = (64, 128, 10);
    let n = dims.0 * dims.1 + dims.1 + dims.1 * dims.2;
    let mut rng = Rng::seed_from_u64(2);
    let x = Tensor::rand_uniform(&[256, dims.0], -1.0, 1.0, &mut rng);
    let y = Tensor::rand_uniform(&[256, dims.2], -1.0, 1.0, &mut rng);
    let theta = Tensor::rand_uniform(&[n], -0.2, 0.2, &mut rng);
    let v = Tensor::rand_uniform(&[n], -1.0, 1.0, &mut rng);
    // A product takes about 2 ms: each sample times HVPS of them, so that one slow wake-up of
    // the thread pool does not decide the figure.
    const HVPS: usize = 20;
    let t = alternate(&mut [
        &mut || {
            for _ in 0..HVPS {
                std::hint::black_box(hvp(|_, t| mlp_loss(t, &x, &y, dims), &theta, &v));
            }
        },
        &mut || {
            for _ in 0..HVPS {
                std::hint::black_box(hvp_by_double_backward(|_, t| mlp_loss(t, &x, &y, dims), &theta, &v));
            }
        },
    ]);
    let (fwd, rev) = (t[0] / HVPS as f64, t[1] / HVPS as f64);
    println!("MLP hvp ({n} parameters, batch 256, f64):");
    println!("  forward over reverse {fwd:.2} ms, double backward {rev:.2} ms, ratio {:.2}", fwd / rev);
}

fn main() {
    // `cargo bench` passes `--bench`; there are no options.
    char_gpt();
    mlp_hvp();
}

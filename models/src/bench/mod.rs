//! The standard workloads, measured: what `pente bench` runs.
//!
//! | workload | what is timed | figure |
//! | --- | --- | --- |
//! | gemm | `C = A·B`, f32, square, n = 128…1024, through pente's `matmul` and through the `gemm` crate directly, trials alternating, best of 10; and the CPU's peak ([`peak`]), beside n = 1024 | GFLOP/s (2n³/t) |
//! | mlp-mnist | MLP 784→512→256→10 (ReLU), mean cross-entropy, Adam 1e-3, batch 64 and 512, 16 random batches cycled, 20 warm-up then 200 timed steps | samples/s |
//! | char-gpt | the small GPT of [`crate::char_lm`] (809,856 parameters), AdamW 1e-3 with weight decay 0.1 on matrices, batch 12 × 64 random tokens, 10 warm-up then 50 timed steps | tokens/s |
//! | scalar-mlp | [`scalar_mlp`]: an MLP 2→16→16→1 of 0-d tensors (one node per scalar op), 100 points, full-batch SGD, 2 warm-up then 50 timed steps | steps/s |
//! | gpt-10m | a GPT of nanoGPT's shakespeare_char size (n_embd 384, 6 heads, 6 layers, block 256: 10,770,816 parameters), AdamW as char-gpt, batch 12 × 256 random tokens, data-parallel, 2 warm-up then 5 timed steps | tokens/s |
//! | digits-cnn | the CNN of [`crate::digits`] (1,199,882 parameters, dropout on), mean cross-entropy, Adam 1e-3, batch 128, 8 random batches cycled, one tape reset after each step as the trainer does, 5 warm-up then 40 timed steps | samples/s |
//!
//! Each measurement is one [`Measurement`], printed as a JSON object by `pente bench --json`.
//! [`Workload::run_at`] runs a workload's training steps (and gemm's `matmul`) at a
//! [`Precision`]; in bf16 the implementation's name ends in `-bf16` (`pente-bf16`).
//! Figures from a shared machine are noisy: compare ratios measured in one run.

pub use autograd::kernels::peak;
pub mod across;
pub mod scalar_mlp;

use std::fmt;
use std::time::Instant;

use autograd::precision::Precision;
use autograd::{Rng, SeedableRng, Tape, Tensor, Var};
use nn::{loss, Activation, Adam, AdamConfig, AdamW, DataParallel, DecayOn, Mlp, Optimizer, ParamStore};
use rand::Rng as _;

use crate::char_lm::gpt::{Gpt, GptConfig};
use crate::digits::model::{Arch, Net};

/// One of the standard workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Square f32 matrix products.
    Gemm,
    /// MLP training steps on MNIST-shaped random data.
    MlpMnist,
    /// Small-GPT training steps on random tokens.
    CharGpt,
    /// A scalar graph (micrograd's style) trained by SGD.
    ScalarMlp,
    /// Training steps of the digits CNN on MNIST-shaped random data.
    DigitsCnn,
    /// Training steps of a 10.8 M-parameter GPT on random tokens.
    Gpt10m,
}

impl Workload {
    /// All six: the four first standard workloads, then the digits CNN and the 10 M GPT.
    pub const ALL: [Workload; 6] = [
        Workload::Gemm,
        Workload::MlpMnist,
        Workload::CharGpt,
        Workload::ScalarMlp,
        Workload::DigitsCnn,
        Workload::Gpt10m,
    ];

    /// The workload's name as `pente bench --workload` and the reference scripts spell it.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Gemm => "gemm",
            Workload::MlpMnist => "mlp-mnist",
            Workload::CharGpt => "char-gpt",
            Workload::ScalarMlp => "scalar-mlp",
            Workload::DigitsCnn => "digits-cnn",
            Workload::Gpt10m => "gpt-10m",
        }
    }

    /// Parses a name as printed by [`Workload::name`].
    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    /// Runs the workload in f32 and returns its measurements.
    pub fn run(self) -> Vec<Measurement> {
        self.run_at(Precision::F32)
    }

    /// Runs the workload with its products at `precision` (see [`autograd::precision`]) and
    /// returns its measurements. scalar-mlp has no matrix product: it runs the same either way.
    pub fn run_at(self, precision: Precision) -> Vec<Measurement> {
        match self {
            Workload::Gemm => gemm(precision),
            Workload::MlpMnist => [64, 512].into_iter().map(|batch| mlp_mnist(batch, precision)).collect(),
            Workload::CharGpt => vec![char_gpt(true, precision), char_gpt(false, precision)],
            Workload::ScalarMlp => vec![scalar(50)],
            Workload::DigitsCnn => vec![digits_cnn(precision)],
            Workload::Gpt10m => vec![gpt_10m(precision)],
        }
    }
}

/// The implementation's name at `precision`: `name` in f32, `name-bf16` in bf16.
fn named(name: &'static str, precision: Precision) -> &'static str {
    match (name, precision) {
        (_, Precision::F32) => name,
        ("pente", Precision::Bf16) => "pente-bf16",
        ("pente-1tape", Precision::Bf16) => "pente-1tape-bf16",
        (other, Precision::Bf16) => unreachable!("no bf16 name for {other}"),
    }
}

/// One measured figure.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// The workload's name.
    pub workload: &'static str,
    /// What was measured: `pente`, a variant of it (`pente-1tape`: char-gpt on one tape, its
    /// ops split across the threads), or a reference run in the same process (`gemm-crate`;
    /// `fma-peak`, the machine's multiply-add ceiling on every thread, [`peak::fma_peak`]).
    pub implementation: &'static str,
    /// The size or batch (`n=1024`, `batch=64`).
    pub size: String,
    /// The figure's unit (`gflops`, `samples_per_s`, `tokens_per_s`, `steps_per_s`).
    pub figure: &'static str,
    /// Its value.
    pub value: f64,
    /// Timed steps or trials.
    pub steps: usize,
    /// Seconds the timed part took (for gemm, the best trial).
    pub seconds: f64,
    /// A workload-specific check (the loss after the timed steps, for training workloads).
    pub check: Option<f64>,
}

impl Measurement {
    /// The measurement as one JSON object (with pente's version and the thread count).
    pub fn to_json(&self) -> String {
        let check = self.check.map_or("null".to_string(), |c| format!("{c:.12}"));
        format!(
            "{{\"workload\": \"{}\", \"impl\": \"{}\", \"size\": \"{}\", \"figure\": \"{}\", \"value\": {:.3}, \
             \"steps\": {}, \"seconds\": {:.6}, \"check\": {check}, \"pente\": \"{}\", \"threads\": {}}}",
            self.workload,
            self.implementation,
            self.size,
            self.figure,
            self.value,
            self.steps,
            self.seconds,
            env!("CARGO_PKG_VERSION"),
            rayon::current_num_threads()
        )
    }
}

impl fmt::Display for Measurement {
    /// One row of the readable table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<11} {:<11} {:<11} {:>12.1} {:<13} {:>5} steps {:>9.3} s",
            self.workload, self.implementation, self.size, self.value, self.figure, self.steps, self.seconds
        )
    }
}

fn time(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_secs_f64()
}

fn gemm(precision: Precision) -> Vec<Measurement> {
    let mut rng = Rng::seed_from_u64(0);
    let mut out = vec![];
    for n in [128usize, 256, 512, 1024] {
        let a = Tensor::<f32>::rand_uniform(&[n, n], -1.0, 1.0, &mut rng);
        let b = Tensor::<f32>::rand_uniform(&[n, n], -1.0, 1.0, &mut rng);
        let mut c = vec![0f32; n * n];
        // Trials alternate between the two, so that load from elsewhere hits both alike.
        let (mut pente, mut direct) = (f64::INFINITY, f64::INFINITY);
        for _ in 0..10 {
            pente = pente.min(time(|| {
                let tape = Tape::new();
                tape.mixed_precision(precision);
                let product = tape.constant(a.clone()).matmul(tape.constant(b.clone()));
                std::hint::black_box(product.value());
            }));
            direct = direct.min(time(|| gemm_crate(n, a.data(), b.data(), &mut c)));
        }
        for (implementation, seconds) in [(named("pente", precision), pente), ("gemm-crate", direct)] {
            out.push(Measurement {
                workload: "gemm",
                implementation,
                size: format!("n={n}"),
                figure: "gflops",
                value: 2.0 * (n as f64).powi(3) / seconds / 1e9,
                steps: 10,
                seconds,
                check: None,
            });
        }
    }
    // The ceiling for the figures above, beside the largest size: every thread's multiply-adds
    // held in registers (none on a CPU without AVX-512).
    const PEAK_STEPS: u64 = 20_000_000;
    let threads = rayon::current_num_threads();
    if let Some(value) = peak::fma_peak(threads, PEAK_STEPS, 5) {
        let flop = PEAK_STEPS as f64 * (peak::CHAINS * 16 * 2 * threads) as f64;
        out.push(Measurement {
            workload: "gemm",
            implementation: "fma-peak",
            size: "n=1024".into(),
            figure: "gflops",
            value,
            steps: 5,
            seconds: flop / value / 1e9,
            check: None,
        });
    }
    out
}

/// `c = a·b` for n×n row-major matrices, straight through the `gemm` crate
/// ([`autograd::kernels::gemm::product`]): the reference that pente's `matmul` is measured
/// against.
fn gemm_crate(n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    assert!(a.len() == n * n && b.len() == n * n && c.len() == n * n, "gemm_crate: buffers are not n×n");
    autograd::kernels::gemm::product(c, (n, n, n), a, b);
    std::hint::black_box(c);
}

/// Runs `warmup + steps` training steps; returns (seconds of the timed steps, last loss).
fn timed_steps(warmup: usize, steps: usize, mut step: impl FnMut(usize) -> f32) -> (f64, f32) {
    for i in 0..warmup {
        step(i);
    }
    let start = Instant::now();
    let mut last = 0.0;
    for i in 0..steps {
        last = step(warmup + i);
    }
    (start.elapsed().as_secs_f64(), last)
}

fn mlp_mnist(batch: usize, precision: Precision) -> Measurement {
    let mut store = ParamStore::<f32>::with_seed(0);
    let mlp = Mlp::new(store.scope("mlp"), &[784, 512, 256, 10], Activation::Relu);
    let mut opt = Adam::new(AdamConfig { lr: 1e-3, ..Default::default() });
    let batches = mnist_shaped_batches(16, batch);
    let (warmup, steps) = (20, 200);
    let (seconds, last) = timed_steps(warmup, steps, |i| {
        let (x, y) = &batches[i % batches.len()];
        let (loss, grads) = store.value_and_grad(i as u64, |p| {
            p.tape().mixed_precision(precision);
            loss::cross_entropy(mlp.forward(p, p.tape().constant(x.clone())), y)
        });
        opt.step(&mut store, &grads);
        loss
    });
    samples_per_s("mlp-mnist", named("pente", precision), batch, steps, seconds, last)
}

fn digits_cnn(precision: Precision) -> Measurement {
    const BATCH: usize = 128;
    let mut store = ParamStore::<f32>::with_seed(0);
    let net = Net::new(Arch::Cnn, &mut store);
    let mut opt = Adam::new(AdamConfig { lr: 1e-3, ..Default::default() });
    let batches = mnist_shaped_batches(8, BATCH);
    // One tape for the whole run, reset after each step, as `digits::train::train` trains: its
    // random stream (the dropout masks) goes on from step to step.
    let mut tape = Tape::<f32>::with_seed(7919);
    tape.mixed_precision(precision);
    let (warmup, steps) = (5, 40);
    let (seconds, last) = timed_steps(warmup, steps, |i| {
        let (x, y) = &batches[i % batches.len()];
        let (loss, grads) = {
            let p = store.bind(&tape);
            let loss = loss::cross_entropy(net.forward(&p, tape.constant(x.clone())), y);
            (loss.item(), p.backward(loss))
        };
        tape.reset(); // drop the tape's references to the weights: Adam updates them in place
        opt.step(&mut store, &grads);
        loss
    });
    samples_per_s("digits-cnn", named("pente", precision), BATCH, steps, seconds, last)
}

/// `count` batches of `batch` MNIST-shaped images (pixels uniform in [0, 1)) with random labels
/// 0–9, drawn from seed 1: the data of the mlp-mnist and digits-cnn workloads.
fn mnist_shaped_batches(count: usize, batch: usize) -> Vec<(Tensor<f32>, Vec<usize>)> {
    let mut rng = Rng::seed_from_u64(1);
    (0..count)
        .map(|_| {
            let x = Tensor::rand_uniform(&[batch, 784], 0.0, 1.0, &mut rng);
            (x, (0..batch).map(|_| rng.gen_range(0..10)).collect())
        })
        .collect()
}

/// The measurement of `steps` training steps of `batch` samples that took `seconds`, with the
/// last loss as its check.
fn samples_per_s(
    workload: &'static str,
    implementation: &'static str,
    batch: usize,
    steps: usize,
    seconds: f64,
    last: f32,
) -> Measurement {
    Measurement {
        workload,
        implementation,
        size: format!("batch={batch}"),
        figure: "samples_per_s",
        value: (batch * steps) as f64 / seconds,
        steps,
        seconds,
        check: Some(f64::from(last)),
    }
}

/// The mean cross-entropy of `gpt` on `rows` of `block + 1` ids each: inputs their first
/// `block` ids, targets their last `block`; the products at `precision`.
fn mean_loss<'t>(gpt: &Gpt, p: &nn::Bound<'t, f32>, rows: &[Vec<usize>], precision: Precision) -> Var<'t, f32> {
    p.tape().mixed_precision(precision);
    let block = gpt.config.block_size;
    let ids: Vec<usize> = rows.iter().flat_map(|r| r[..block].iter().copied()).collect();
    let targets: Vec<usize> = rows.iter().flat_map(|r| r[1..].iter().copied()).collect();
    loss::cross_entropy(gpt.forward(p, &ids, rows.len(), block), &targets)
}

fn char_gpt(data_parallel: bool, precision: Precision) -> Measurement {
    let (tokens_per_s, steps, seconds, last, params) =
        gpt_steps(GptConfig::default(), data_parallel, (10, 50), precision);
    Measurement {
        workload: "char-gpt",
        implementation: named(if data_parallel { "pente" } else { "pente-1tape" }, precision),
        size: format!("params={params}"),
        figure: "tokens_per_s",
        value: tokens_per_s,
        steps,
        seconds,
        check: Some(f64::from(last)),
    }
}

/// The sizes of the gpt-10m workload: nanoGPT's shakespeare_char GPT (without its dropout).
pub fn gpt_10m_config() -> GptConfig {
    GptConfig { block_size: 256, n_embd: 384, n_head: 6, n_layer: 6, dropout: 0.0 }
}

fn gpt_10m(precision: Precision) -> Measurement {
    let (tokens_per_s, steps, seconds, last, params) = gpt_steps(gpt_10m_config(), true, (2, 5), precision);
    Measurement {
        workload: "gpt-10m",
        implementation: named("pente", precision),
        size: format!("params={params}"),
        figure: "tokens_per_s",
        value: tokens_per_s,
        steps,
        seconds,
        check: Some(f64::from(last)),
    }
}

/// `warmup` then `steps` timed training steps of a GPT of `config` on batches of 12 rows of
/// random tokens (vocabulary 65), AdamW 1e-3 with weight decay 0.1 on matrices: tokens per
/// second, the timed steps, their seconds, the last loss and the parameter count.
fn gpt_steps(
    config: GptConfig,
    data_parallel: bool,
    (warmup, steps): (usize, usize),
    precision: Precision,
) -> (f64, usize, f64, f32, usize) {
    const VOCAB: usize = 65;
    const BATCH: usize = 12;
    let block = config.block_size;
    let mut store = ParamStore::<f32>::with_seed(0);
    let gpt = Gpt::new(store.scope("gpt"), VOCAB, config);
    let mut opt =
        AdamW::new(AdamConfig { lr: 1e-3, weight_decay: 0.1, decay_on: DecayOn::Matrices, ..Default::default() });
    let mut rng = Rng::seed_from_u64(1);
    let dp = DataParallel::per_thread(if data_parallel { BATCH } else { 1 });
    let (seconds, last) = timed_steps(warmup, steps, |i| {
        // Random tokens: each row is block + 1 ids, inputs the first block, targets the last.
        let rows: Vec<Vec<usize>> =
            (0..BATCH).map(|_| (0..=block).map(|_| rng.gen_range(0..VOCAB)).collect()).collect();
        let (loss, grads) = if dp.shards() > 1 {
            // Each shard its rows, its loss term the mean over them times their share.
            dp.value_and_grad(&store, i as u64, |p, shard| {
                let (range, weight) = dp.split(BATCH, shard);
                mean_loss(&gpt, p, &rows[range], precision) * weight
            })
        } else {
            store.value_and_grad(i as u64, |p| mean_loss(&gpt, p, &rows, precision))
        };
        opt.step(&mut store, &grads);
        loss
    });
    ((BATCH * block * steps) as f64 / seconds, steps, seconds, last, store.num_params())
}

/// The scalar-mlp workload with `steps` timed steps (after 2 warm-up steps); the check is the
/// last loss, which matches the reference implementation's.
pub fn scalar(steps: usize) -> Measurement {
    let (xs, ys, mut params) = scalar_mlp::problem();
    let mut tape = Tape::new();
    for _ in 0..2 {
        scalar_mlp::step(&mut tape, &xs, &ys, &mut params, 0.05);
    }
    let start = Instant::now();
    let mut last = 0.0;
    for _ in 0..steps {
        last = scalar_mlp::step(&mut tape, &xs, &ys, &mut params, 0.05);
    }
    let seconds = start.elapsed().as_secs_f64();
    Measurement {
        workload: "scalar-mlp",
        implementation: "pente",
        size: "2-16-16-1".into(),
        figure: "steps_per_s",
        value: steps as f64 / seconds,
        steps,
        seconds,
        check: Some(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_round_trip() {
        for w in Workload::ALL {
            assert_eq!(Workload::parse(w.name()), Some(w));
        }
        assert_eq!(Workload::parse("nope"), None);
    }

    #[test]
    fn char_gpt_has_the_design_parameter_count() {
        let mut store = ParamStore::<f32>::with_seed(0);
        let _gpt = Gpt::new(store.scope("gpt"), 65, GptConfig::default());
        assert_eq!(store.num_params(), 809_856);
    }

    #[test]
    fn digits_cnn_has_the_documented_parameter_count() {
        let mut store = ParamStore::<f32>::with_seed(0);
        let _net = Net::new(Arch::Cnn, &mut store);
        assert_eq!(store.num_params(), 1_199_882);
    }

    #[test]
    fn measurements_print_as_json() {
        let m = scalar(1);
        let json = m.to_json();
        assert!(json.starts_with("{\"workload\": \"scalar-mlp\""), "{json}");
        assert!(m.value > 0.0 && m.check.is_some_and(f64::is_finite));
    }
}

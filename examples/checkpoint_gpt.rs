//! Gradient checkpointing measured: a GPT of about 10 M parameters (nanoGPT's
//! `shakespeare_char`: `n_embd` 384, 6 heads, 6 layers, block 256, batch 12, dropout 0.2)
//! trained with every transformer block checkpointed, against the same GPT without. The
//! figures measured are in `bench/RESULTS.md` and the guide's performance chapter.
//!
//! Run: `cargo run --release --example checkpoint_gpt` (options: `--rounds N`, `--batch N`,
//! `--block N`, `--layers N`).
//! Expected: the checkpointed step's peak memory (the process's peak resident set, `VmHWM`,
//! each mode in a process of its own) about 75 % lower with the buffer pool off and 65 % with
//! it on, its step about 30 % longer, and the two modes' losses equal to the bit.
//!
//! Memory: each mode runs three training steps (forward, backward, AdamW) in a child process,
//! once with the buffer pool off (`PENTE_RECYCLE_LIMIT=0`: freed activations go back to the
//! allocator at once) and once with its default (1 GiB of freed buffers kept for reuse);
//! reported are the peak and the resident set before the first step (the model built; AdamW's
//! moments are made by its first step, so they count in the peak of both modes). Time: both
//! modes alternate step by step in one process (so that the load of other programs falls on
//! both alike), after one warm-up step each; reported are the medians and the median of the
//! rounds' ratios.
//! Linux only (it reads `/proc/self/status`).

use std::process::Command;
use std::time::Instant;

use autograd::Tape;
use nn::{AdamConfig, AdamW, Optimizer, ParamStore};
use pente::models::char_lm::gpt::{Gpt, GptConfig};

/// nanoGPT's `shakespeare_char` vocabulary.
const VOCAB: usize = 65;

/// The measured configuration, changeable from the command line for a quick look.
#[derive(Clone, Copy)]
struct Setup {
    batch: usize,
    block: usize,
    layers: usize,
    rounds: usize,
}

impl Setup {
    fn from_args(args: &[String]) -> (Setup, Option<bool>) {
        let mut setup = Setup { batch: 12, block: 256, layers: 6, rounds: 5 };
        let mut child = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || -> usize {
                let v = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
                v.parse().unwrap_or_else(|_| panic!("{flag}: `{v}` is not a positive integer"))
            };
            match flag.as_str() {
                "--batch" => setup.batch = value(),
                "--block" => setup.block = value(),
                "--layers" => setup.layers = value(),
                "--rounds" => setup.rounds = value(),
                "--memory-of" => child = Some(value() == 1),
                other => panic!("unknown option `{other}` (--rounds, --batch, --block, --layers)"),
            }
        }
        (setup, child)
    }

    fn args(&self) -> Vec<String> {
        let pairs = [("--batch", self.batch), ("--block", self.block), ("--layers", self.layers)];
        pairs.iter().flat_map(|(f, v)| [f.to_string(), v.to_string()]).collect()
    }
}

/// A model, its optimizer and a fixed batch.
struct Run {
    store: ParamStore<f32>,
    gpt: Gpt,
    opt: AdamW<f32>,
    ids: Vec<usize>,
    targets: Vec<usize>,
    setup: Setup,
}

impl Run {
    fn new(setup: Setup) -> Run {
        let mut store = ParamStore::<f32>::with_seed(0);
        let config = GptConfig { block_size: setup.block, n_embd: 384, n_head: 6, n_layer: setup.layers, dropout: 0.2 };
        let gpt = Gpt::new(store.root(), VOCAB, config);
        let n = setup.batch * setup.block;
        // A fixed pseudo-random batch: the cost of a step does not depend on the text.
        let ids: Vec<usize> = (0..n).map(|i| (i * 7919 + 13) % VOCAB).collect();
        let targets: Vec<usize> = (0..n).map(|i| (i * 104_729 + 5) % VOCAB).collect();
        let opt = AdamW::new(AdamConfig { lr: 1e-3, weight_decay: 0.1, ..Default::default() });
        Run { store, gpt, opt, ids, targets, setup }
    }

    /// One training step, every block checkpointed or none; returns the loss.
    fn step(&mut self, checkpointed: bool, seed: u64) -> f32 {
        self.gpt.checkpoint_blocks = checkpointed;
        let tape = Tape::with_seed(seed);
        let p = self.store.bind(&tape);
        let logits = self.gpt.forward(&p, &self.ids, self.setup.batch, self.setup.block);
        let loss = logits.cross_entropy(&self.targets);
        let value = loss.item();
        let grads = p.backward(loss);
        drop(p);
        drop(tape);
        self.opt.step(&mut self.store, &grads);
        value
    }
}

/// A field of `/proc/self/status` in MiB (`VmHWM`: peak resident set; `VmRSS`: now).
fn status_mib(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux's /proc/self/status");
    let line =
        status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: f64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("a number of kB");
    kib / 1024.0
}

/// The child: three steps of one mode, then `before peak loss` on stdout.
fn measure_memory(setup: Setup, checkpointed: bool) {
    let mut run = Run::new(setup);
    let before = status_mib("VmRSS");
    let mut loss = 0.0;
    for seed in 0..3 {
        loss = run.step(checkpointed, seed);
    }
    println!("{before:.1} {:.1} {}", status_mib("VmHWM"), loss.to_bits());
}

/// Runs the child for one mode and pool setting; returns (MiB before the steps, peak MiB, loss bits).
fn child_memory(setup: Setup, checkpointed: bool, pool_off: bool) -> (f64, f64, u32) {
    let exe = std::env::current_exe().expect("the example's own path");
    let mut cmd = Command::new(exe);
    cmd.args(setup.args()).args(["--memory-of", if checkpointed { "1" } else { "0" }]);
    if pool_off {
        cmd.env("PENTE_RECYCLE_LIMIT", "0");
    } else {
        cmd.env_remove("PENTE_RECYCLE_LIMIT");
    }
    let out = cmd.output().expect("the child runs");
    assert!(out.status.success(), "the child failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let fields: Vec<&str> = text.split_whitespace().collect();
    let parse = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).expect("the child's figures");
    (parse(0), parse(1), fields[2].parse().expect("loss bits"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (setup, child) = Setup::from_args(&args);
    if let Some(checkpointed) = child {
        measure_memory(setup, checkpointed);
        return;
    }
    let params = {
        let mut store = ParamStore::<f32>::with_seed(0);
        let config = GptConfig { block_size: setup.block, n_embd: 384, n_head: 6, n_layer: setup.layers, dropout: 0.2 };
        Gpt::new(store.root(), VOCAB, config);
        store.num_params()
    };
    println!(
        "GPT: {params} parameters, n_embd 384, 6 heads, {} layers, block {}, batch {}, dropout 0.2",
        setup.layers, setup.block, setup.batch
    );
    println!("peak memory (VmHWM) over 3 training steps, each mode in its own process:");
    for pool_off in [true, false] {
        let pool = if pool_off { "pool off (PENTE_RECYCLE_LIMIT=0)" } else { "pool on (default)" };
        let (plain_before, plain_peak, plain_loss) = child_memory(setup, false, pool_off);
        let (ckpt_before, ckpt_peak, ckpt_loss) = child_memory(setup, true, pool_off);
        assert_eq!(plain_loss, ckpt_loss, "the third step's loss differs: the gradients before it were not the same");
        println!(
            "  {pool}: plain {plain_peak:.0} MiB, checkpointed {ckpt_peak:.0} MiB: {:.1} % lower \
             (before the first step: {plain_before:.0} / {ckpt_before:.0} MiB; \
             above that: {:.0} vs {:.0} MiB, {:.1} % lower)",
            100.0 * (1.0 - ckpt_peak / plain_peak),
            plain_peak - plain_before,
            ckpt_peak - ckpt_before,
            100.0 * (1.0 - (ckpt_peak - ckpt_before) / (plain_peak - plain_before)),
        );
    }

    let mut run = Run::new(setup);
    run.step(false, 0);
    run.step(true, 0);
    let (mut plain, mut ckpt) = (Vec::new(), Vec::new());
    for round in 0..setup.rounds {
        for checkpointed in [false, true] {
            let start = Instant::now();
            run.step(checkpointed, round as u64);
            let seconds = start.elapsed().as_secs_f64();
            if checkpointed { &mut ckpt } else { &mut plain }.push(seconds);
        }
    }
    let mut ratios: Vec<f64> = ckpt.iter().zip(&plain).map(|(c, p)| c / p).collect();
    ratios.sort_by(f64::total_cmp);
    let (p, c) = (median(plain), median(ckpt));
    println!(
        "step time, {} alternating rounds: plain {p:.3} s, checkpointed {c:.3} s (medians); \
         checkpointed / plain {:.3} (median of the rounds' ratios; {:.3} to {:.3})",
        setup.rounds,
        median(ratios.clone()),
        ratios[0],
        ratios[ratios.len() - 1]
    );
}

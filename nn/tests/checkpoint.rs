//! Checkpoints on disk: exact resume, identical outputs after a reload, typed errors naming the
//! file, safetensors round trips, and (when `PENTE_INTEROP_DIR` is set) files written by Python.

use std::collections::BTreeMap;
use std::path::Path;

use autograd::{SeedableRng, Tape, Tensor};
use nn::data::Batcher;
use nn::{
    clip_grad_norm, loss, AdamConfig, AdamW, Checkpoint, Decay, DecayOn, Embedding, Error, Linear, LrSchedule,
    Optimizer, ParamStore, TransformerBlock, TransformerConfig,
};

const VOCAB: usize = 13;
const SEQ: usize = 6;

struct TinyGpt {
    wte: Embedding,
    blocks: Vec<TransformerBlock>,
    head: Linear,
}

fn build(seed: u64) -> (ParamStore<f32>, TinyGpt) {
    let mut store = ParamStore::with_seed(seed);
    let cfg = TransformerConfig { n_embd: 8, n_head: 2, dropout: 0.1, ..Default::default() };
    let wte = Embedding::new(store.scope("wte"), VOCAB, 8);
    let blocks = (0..2).map(|i| TransformerBlock::new(store.scope("blocks").scope(i), &cfg)).collect();
    let head = Linear::new(store.scope("head"), 8, VOCAB);
    (store, TinyGpt { wte, blocks, head })
}

/// 40 sequences of SEQ + 1 tokens: inputs are the first SEQ, targets the last SEQ.
fn dataset() -> Vec<Vec<usize>> {
    let mut rng = autograd::Rng::seed_from_u64(77);
    (0..40).map(|_| (0..=SEQ).map(|_| (rand::Rng::gen::<u32>(&mut rng) as usize) % VOCAB).collect()).collect()
}

fn optimizer() -> AdamW<f32> {
    AdamW::new(AdamConfig { lr: 3e-3, weight_decay: 0.1, decay_on: DecayOn::Matrices, ..Default::default() })
}

const SCHEDULE: LrSchedule =
    LrSchedule { base_lr: 3e-3, warmup_steps: 3, decay: Decay::Cosine { total_steps: 20, min_lr: 1e-4 } };

/// Runs steps `from..to`: batches from a seeded batcher by epoch, dropout seeded by the step,
/// the schedule, clipping and AdamW. Returns the losses.
fn train(store: &mut ParamStore<f32>, m: &TinyGpt, opt: &mut AdamW<f32>, from: u64, to: u64) -> Vec<f32> {
    let data = dataset();
    let batcher = Batcher { batch_size: 8, shuffle: true, drop_last: true, seed: 5 };
    let per_epoch = batcher.num_batches(data.len()) as u64;
    let mut losses = Vec::new();
    for step in from..to {
        let idx = batcher.epoch(data.len(), step / per_epoch).nth((step % per_epoch) as usize).expect("batch");
        let inputs: Vec<usize> = idx.iter().flat_map(|&i| data[i][..SEQ].to_vec()).collect();
        let targets: Vec<usize> = idx.iter().flat_map(|&i| data[i][1..].to_vec()).collect();
        SCHEDULE.apply(opt);
        let (l, mut grads) = store.value_and_grad(step, |p| {
            let x = m.wte.forward_shaped(p, &inputs, &[idx.len(), SEQ]); // (batch, seq_len, n_embd)
            let h = m.blocks.iter().fold(x, |h, b| b.forward(p, h));
            loss::cross_entropy(m.head.forward(p, h), &targets)
        });
        clip_grad_norm(&mut grads, 1.0);
        opt.step(store, &grads);
        losses.push(l);
    }
    losses
}

fn assert_bit_identical(a: &ParamStore<f32>, b: &ParamStore<f32>) {
    assert_eq!(a.len(), b.len());
    for ((_, name, x), (_, _, y)) in a.iter().zip(b.iter()) {
        let same = x.shape() == y.shape() && x.data().iter().zip(y.data()).all(|(u, v)| u.to_bits() == v.to_bits());
        assert!(same, "`{name}` differs");
    }
}

#[test]
fn training_resumed_from_a_checkpoint_matches_an_uninterrupted_run_bit_for_bit() {
    let (n, m) = (7, 8);
    let (mut straight, model) = build(1);
    let mut opt = optimizer();
    let all = train(&mut straight, &model, &mut opt, 0, n + m);
    assert!(all[all.len() - 1] < all[0], "the loss should fall: {all:?}");

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("run.ckpt");
    {
        let (mut store, model) = build(1);
        let mut opt = optimizer();
        let first = train(&mut store, &model, &mut opt, 0, n);
        assert_eq!(first, all[..n as usize]);
        Checkpoint::from_store(&store)
            .with_optimizer(&opt, &store)
            .with_step(n)
            .with_metadata("config", "n_embd=8 n_head=2 n_layer=2")
            .save(&path)
            .expect("save");
    } // everything of the first "process" is gone

    let (mut store, model) = build(999); // a different init, overwritten by the load
    let mut opt =
        AdamW::new(AdamConfig { lr: 42.0, weight_decay: 0.1, decay_on: DecayOn::Matrices, ..Default::default() });
    let ckpt = Checkpoint::load(&path).expect("load");
    let report = ckpt.load_into(&mut store, true).expect("strict load");
    assert!(report.is_complete() && report.converted.is_empty(), "{report}");
    ckpt.restore_optimizer(&mut opt, &store).expect("optimizer state");
    assert_eq!(opt.steps(), n);
    assert_eq!(ckpt.metadata["config"], "n_embd=8 n_head=2 n_layer=2");
    let rest = train(&mut store, &model, &mut opt, ckpt.step, n + m);
    assert_eq!(rest, all[n as usize..]);
    assert_bit_identical(&store, &straight);
    assert_eq!(opt.state(&store), optimizer_state_of(&straight, &model, n + m));
}

/// The optimizer state after `steps` uninterrupted steps (recomputed).
fn optimizer_state_of(_: &ParamStore<f32>, _: &TinyGpt, steps: u64) -> nn::OptimizerState {
    let (mut store, model) = build(1);
    let mut opt = optimizer();
    train(&mut store, &model, &mut opt, 0, steps);
    opt.state(&store)
}

#[test]
fn a_reloaded_model_predicts_exactly_the_same() {
    let (store, model) = build(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.ckpt");
    store.save(&path).expect("save");
    let (mut other, model2) = build(4);
    other.load(&path).expect("load");
    let predict = |s: &ParamStore<f32>, m: &TinyGpt| {
        let tape = Tape::new();
        let p = s.bind(&tape).eval();
        let x = m.wte.forward_shaped(&p, &[1, 2, 3, 4, 5, 6], &[1, SEQ]);
        m.head.forward(&p, m.blocks.iter().fold(x, |h, b| b.forward(&p, h))).value()
    };
    assert_eq!(predict(&store, &model), predict(&other, &model2));
}

#[test]
fn damaged_files_on_disk_give_typed_errors_naming_the_file() {
    let (store, _) = build(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.ckpt");
    store.save(&path).expect("save");
    let bytes = std::fs::read(&path).expect("read");
    let name = path.display().to_string();

    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    let e = Checkpoint::load(&path).expect_err("truncated");
    assert!(matches!(e, Error::Truncated { .. }) && e.to_string().contains(&name), "{e}");

    let mut flipped = bytes.clone();
    let mid = flipped.len() - 100;
    flipped[mid] ^= 0x10;
    std::fs::write(&path, &flipped).expect("write");
    let e = Checkpoint::load(&path).expect_err("corrupt");
    assert!(matches!(e, Error::Corrupt { .. }) && e.to_string().contains("checksum"), "{e}");

    std::fs::write(&path, b"{\"not\": \"a checkpoint\"}").expect("write");
    assert!(matches!(Checkpoint::load(&path), Err(Error::Foreign { .. })));

    let e = Checkpoint::load(dir.path().join("absent.ckpt")).expect_err("missing");
    assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("absent.ckpt"), "{e}");
}

#[test]
fn loading_into_a_different_model_reports_every_difference_at_once() {
    let (store, _) = build(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.ckpt");
    store.save(&path).expect("save");
    // One block fewer, a wider head, and an extra parameter.
    let mut other = ParamStore::<f32>::with_seed(0);
    let cfg = TransformerConfig { n_embd: 8, n_head: 2, ..Default::default() };
    Embedding::new(other.scope("wte"), VOCAB, 8);
    TransformerBlock::new(other.scope("blocks").scope(0), &cfg);
    Linear::new(other.scope("head"), 8, VOCAB + 1);
    other.add("extra", Tensor::zeros(&[1]));
    let msg = other.load(&path).expect_err("mismatch").to_string();
    for needle in [
        "missing extra",
        "unexpected blocks.1.ln_1.weight",
        "blocks.1.mlp.proj.bias",
        "head.weight (model [8, 14], file [8, 13])",
        "head.bias",
    ] {
        assert!(msg.contains(needle), "`{needle}` not in: {msg}");
    }
    let report = Checkpoint::load(&path).expect("load").load_into(&mut other, false).expect("lenient");
    assert_eq!(report.missing, ["extra"]);
    assert_eq!(report.unexpected.len(), 12);
    assert_eq!(report.mismatched.len(), 2);
    assert_eq!(report.loaded.len(), 1 + 12);
}

#[test]
fn safetensors_round_trip_keeps_names_values_and_metadata() {
    let (store, _) = build(3);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.safetensors");
    let meta = BTreeMap::from([("config".to_string(), "n_embd=8".to_string())]);
    nn::safetensors::export(&store, &path, &meta).expect("export");
    let (tensors, back_meta) = nn::safetensors::import(&path).expect("import");
    assert_eq!(back_meta, meta);
    assert_eq!(tensors.len(), store.len());
    let (mut other, _) = build(4);
    nn::safetensors::load_into(&mut other, &path, true).expect("load");
    assert_bit_identical(&store, &other);
    // And an f32 model's file loads into an f64 model, exactly (widening is exact).
    let mut wide = ParamStore::<f64>::default();
    for (_, name, t) in store.iter() {
        wide.add(name, Tensor::zeros(t.shape()));
    }
    let r = nn::safetensors::load_into(&mut wide, &path, true).expect("load f64");
    assert_eq!(r.converted.len(), store.len());
}

/// The values `scripts/safetensors_interop.py` writes, recomputed here.
fn python_probe() -> (Vec<f32>, Vec<f64>) {
    let a = (0..12).map(|i| i as f32 / 8.0 - 0.75).collect();
    let b = (0..5).map(|i| i as f64 * 0.1).collect();
    (a, b)
}

/// A file written by NumPy with the real `safetensors` package (committed; regenerate with the
/// snippet in `nn/tests/fixtures/README.md`), read by pente. `.ci/run` repeats this with a file
/// written fresh by Python (`scripts/safetensors_interop.sh`).
#[test]
fn safetensors_written_by_numpy_load_in_pente() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/from_python.safetensors");
    let (tensors, meta) = nn::safetensors::import(&path).expect("import");
    assert_eq!(meta.get("written_by").map(String::as_str), Some("numpy"));
    let (a, b) = python_probe();
    assert_eq!(tensors["probe.a"], nn::AnyTensor::F32(Tensor::from_vec(a, &[3, 4])));
    assert_eq!(tensors["probe.b"], nn::AnyTensor::F64(Tensor::from_vec(b, &[5])));
}

//! Checkpoints in practice: train an MLP classifier with a checkpoint every 50 steps, "crash"
//! half way, resume from the last checkpoint, and finish with exactly the weights an
//! uninterrupted run reaches; then export the weights to safetensors for NumPy or PyTorch.
//!
//! Run: `cargo run --release --example save_load [-- OUT_DIR]`
//! Expected: "resumed run matches the uninterrupted run bit for bit", accuracy 1.00 on the two
//! rings, and OUT_DIR (a temporary directory by default) holding `run.ckpt`,
//! `model.safetensors` and `model.bits.json` (the exact values, which
//! `scripts/safetensors_interop.py` compares against what Python reads).
//!
//! `cargo run --release --example save_load -- verify OUT_DIR` is the Rust half of that check,
//! run by `scripts/safetensors_interop.sh` after the Python half: the arrays Python wrote back
//! (`roundtrip.safetensors`) must equal pente's export, and those NumPy computed
//! (`from_python.safetensors`) must equal the same formula computed here.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use autograd::{Tape, Tensor};
use nn::data::{gather, gather_rows, Batcher};
use nn::{loss, Activation, Checkpoint, Decay, LrSchedule, Mlp, Optimizer, ParamStore, Sgd, SgdConfig};

const STEPS: u64 = 300;
const CRASH_AT: u64 = 170;
const SAVE_EVERY: u64 = 50;
const SIZES: [usize; 4] = [2, 16, 16, 2];

/// Two concentric rings of 200 points each: class 0 inside, class 1 outside.
fn rings() -> (Tensor<f32>, Vec<usize>) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..400 {
        let angle = i as f32 * 0.7;
        let r = if i % 2 == 0 { 0.5 } else { 1.0 } + 0.1 * ((i * 7919) % 13) as f32 / 13.0;
        x.extend([r * angle.cos(), r * angle.sin()]);
        y.push(i % 2);
    }
    (Tensor::from_vec(x, &[400, 2]), y)
}

fn build() -> (ParamStore<f32>, Mlp) {
    let mut store = ParamStore::with_seed(7);
    let mlp = Mlp::new(store.scope("mlp"), &SIZES, Activation::Relu);
    (store, mlp)
}

/// Trains steps `from..to`, saving a checkpoint every SAVE_EVERY steps when `ckpt` is given.
fn train(
    store: &mut ParamStore<f32>,
    mlp: &Mlp,
    opt: &mut Sgd<f32>,
    from: u64,
    to: u64,
    ckpt: Option<&Path>,
) -> nn::Result<()> {
    let (x, y) = rings();
    let batcher = Batcher { batch_size: 32, shuffle: true, drop_last: true, seed: 1 };
    let per_epoch = batcher.num_batches(y.len()) as u64;
    let schedule =
        LrSchedule { base_lr: 0.1, warmup_steps: 20, decay: Decay::Cosine { total_steps: STEPS, min_lr: 0.01 } };
    for step in from..to {
        let idx = batcher.epoch(y.len(), step / per_epoch).nth((step % per_epoch) as usize).expect("a batch");
        let (xb, yb) = (gather_rows(&x, &idx), gather(&y, &idx)); // (32, 2), 32 labels
        schedule.apply(opt);
        let (_, grads) =
            store.value_and_grad(step, |p| loss::cross_entropy(mlp.forward(p, p.tape().constant(xb.clone())), &yb));
        opt.step(store, &grads);
        if let Some(path) = ckpt {
            if (step + 1) % SAVE_EVERY == 0 {
                let meta = format!("sizes={SIZES:?} activation=relu");
                Checkpoint::from_store(store)
                    .with_optimizer(opt, store)
                    .with_step(step + 1)
                    .with_metadata("config", meta)
                    .save(path)?;
            }
        }
    }
    Ok(())
}

fn optimizer() -> Sgd<f32> {
    Sgd::new(SgdConfig { momentum: 0.9, nesterov: true, weight_decay: 1e-4, ..Default::default() })
}

/// The Rust half of the interoperability check; see the file's header.
fn verify(dir: &Path) -> nn::Result<()> {
    let (probe, meta) = nn::safetensors::import(dir.join("from_python.safetensors"))?;
    assert_eq!(meta.get("written_by").map(String::as_str), Some("numpy"), "metadata of the NumPy file");
    let a: Vec<f32> = (0..12).map(|i| i as f32 / 8.0 - 0.75).collect();
    let b: Vec<f64> = (0..5).map(|i| i as f64 * 0.1).collect();
    assert_eq!(probe["probe.a"], nn::AnyTensor::F32(Tensor::from_vec(a, &[3, 4])), "probe.a from NumPy");
    assert_eq!(probe["probe.b"], nn::AnyTensor::F64(Tensor::from_vec(b, &[5])), "probe.b from NumPy");
    let (ours, _) = nn::safetensors::import(dir.join("model.safetensors"))?;
    let (theirs, _) = nn::safetensors::import(dir.join("roundtrip.safetensors"))?;
    assert_eq!(ours.len(), theirs.len(), "tensor count after the trip through Python");
    for (name, t) in &ours {
        assert_eq!(Some(t), theirs.get(name), "`{name}` changed on the way through Python");
    }
    println!("rust: {} tensors back from Python bit-identical; NumPy's arrays read exactly", ours.len());
    Ok(())
}

fn main() -> nn::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("verify") {
        let dir = args.get(1).expect("usage: save_load verify DIR");
        return verify(Path::new(dir));
    }
    let out = match args.first() {
        Some(d) => PathBuf::from(d),
        None => std::env::temp_dir().join(format!("pente-save-load-{}", std::process::id())),
    };
    std::fs::create_dir_all(&out).map_err(|e| nn::Error::Io { path: out.clone(), source: e })?;
    let ckpt_path = out.join("run.ckpt");

    // The uninterrupted reference run.
    let (mut reference, mlp) = build();
    let mut opt = optimizer();
    train(&mut reference, &mlp, &mut opt, 0, STEPS, None)?;

    // A run that dies at step CRASH_AT, after its last checkpoint at step 150.
    {
        let (mut store, mlp) = build();
        let mut opt = optimizer();
        train(&mut store, &mlp, &mut opt, 0, CRASH_AT, Some(&ckpt_path))?;
        println!("crashed at step {CRASH_AT}");
    }

    // A new process: build the model, load the last checkpoint, continue.
    let (mut store, mlp) = build();
    let mut opt = optimizer();
    let ckpt = Checkpoint::load(&ckpt_path)?;
    ckpt.load_into(&mut store, true)?;
    ckpt.restore_optimizer(&mut opt, &store)?;
    println!("resuming from step {} ({})", ckpt.step, ckpt.metadata["config"]);
    train(&mut store, &mlp, &mut opt, ckpt.step, STEPS, Some(&ckpt_path))?;
    let identical = store.iter().zip(reference.iter()).all(|((_, _, a), (_, _, b))| a == b);
    assert!(identical, "the resumed run diverged");
    println!("resumed run matches the uninterrupted run bit for bit");

    let (x, y) = rings();
    let tape = Tape::new();
    let logits = mlp.forward(&store.bind(&tape), tape.constant(x)).value();
    println!("accuracy {:.2}", loss::accuracy(&logits, &y));

    // Export for Python, with the exact bit patterns alongside for the interop check.
    let meta = BTreeMap::from([("config".to_string(), format!("sizes={SIZES:?} activation=relu"))]);
    nn::safetensors::export(&store, out.join("model.safetensors"), &meta)?;
    let mut json = String::from("{");
    for (i, (_, name, t)) in store.iter().enumerate() {
        let bits: Vec<String> = t.data().iter().map(|v| v.to_bits().to_string()).collect();
        let sep = if i == 0 { "" } else { "," };
        write!(
            json,
            "{sep}\n  \"{name}\": {{\"dtype\": \"f32\", \"shape\": {:?}, \"bits\": [{}]}}",
            t.shape(),
            bits.join(", ")
        )
        .expect("writing to a String");
    }
    json.push_str("\n}\n");
    let bits_path = out.join("model.bits.json");
    std::fs::write(&bits_path, json).map_err(|e| nn::Error::Io { path: bits_path, source: e })?;
    println!("wrote {}", out.join("model.safetensors").display());
    Ok(())
}

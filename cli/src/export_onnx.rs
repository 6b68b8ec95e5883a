//! `pente export --onnx FILE`: a saved model's inference graph as ONNX, traced from a forward
//! pass of the attractor MLP, the digits MLP or CNN, or the char-lm GPT.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use autograd::{Rng, SeedableRng, Tape, Tensor};
use models::attractor::{self, AttractorModel};
use models::char_lm::{self, CharLm};
use models::digits::data::PIXELS;
use models::digits::model::{DigitsModel, MODEL_NAME as DIGITS};
use models::Error;
use nn::{Checkpoint, ParamStore};
use onnx::IdsInput;

use crate::export::ExportArgs;
use rand::Rng as _;

/// What an export produced: the model, and the sample inputs with pente's outputs.
struct Exported {
    model: onnx::ModelProto,
    samples: ParamStore<f32>,
}

/// Writes `args.load`'s inference graph as ONNX to `path`.
///
/// # Errors
/// The model cannot be loaded, has an op without an ONNX form, or a file cannot be written.
pub fn run(args: &ExportArgs, path: &Path, seed: u64) -> Result<(), Error> {
    nn::checkpoint::atomic::check_writable(path)?;
    let ckpt = Checkpoint::load(&args.load)?;
    let kind = ckpt.metadata.get("model").cloned().unwrap_or_default();
    let batch = args.batch as usize;
    let mut rng = Rng::seed_from_u64(seed);
    let exported = match kind.as_str() {
        attractor::MODEL_NAME => {
            export_attractor(&AttractorModel::from_checkpoint(&ckpt, &args.load)?, args, &mut rng)?
        }
        DIGITS => export_digits(&DigitsModel::from_checkpoint(&ckpt, &args.load)?, batch, &mut rng)?,
        char_lm::model::MODEL_NAME => {
            export_gpt(&CharLm::from_checkpoint(&ckpt, &args.load)?, &args.load, batch, args.seq_len, &mut rng)?
        }
        other => {
            return Err(Error::NotAModel {
                path: args.load.clone(),
                expected: "attractor, digits or char-lm",
                reason: format!("its metadata says model = {other:?}"),
            })
        }
    };
    onnx::save(&exported.model, path).map_err(onnx_error)?;
    println!("wrote {} (the {kind} model of {})", path.display(), args.load.display());
    if args.test_data {
        let data = test_data_path(path);
        nn::safetensors::export(&exported.samples, &data, &BTreeMap::new())?;
        println!("wrote {}", data.display());
    }
    Ok(())
}

/// `model.onnx` → `model.test.safetensors`.
pub fn test_data_path(onnx: &Path) -> PathBuf {
    onnx.with_extension("test.safetensors")
}

/// An ONNX error as the command line reports it.
pub fn onnx_error(e: onnx::Error) -> Error {
    match e {
        onnx::Error::Save(e) => Error::Checkpoint(e),
        onnx::Error::Read { path, source } => Error::Io { path, source },
        other => Error::Config(other.to_string()),
    }
}

fn export_attractor(model: &AttractorModel, args: &ExportArgs, rng: &mut Rng) -> Result<Exported, Error> {
    let Some(mlp) = model.mlps.get(args.index) else {
        return Err(Error::Config(format!(
            "--index {}: the file holds {} attractor models (0 to {})",
            args.index,
            model.mlps.len(),
            model.mlps.len() - 1
        )));
    };
    let extent = model.config.extent as f32;
    let points = uniform(rng, args.batch as usize * 2, -extent, extent, &[args.batch as usize, 2]);
    // The store holds every model of the file; the export writes only the parameters of this one.
    let onnx = onnx::export(&model.store, &[("points", points.clone())], &[], |p, x| {
        vec![("logits".to_string(), mlp.forward(p, x[0]))]
    })
    .map_err(onnx_error)?;
    let samples = samples(&[("points", points.clone())], &[("logits", model.logits(args.index, &points))]);
    Ok(Exported { model: onnx, samples })
}

fn export_digits(model: &DigitsModel, batch: usize, rng: &mut Rng) -> Result<Exported, Error> {
    // Inputs as the model takes them: pixels in [0, 1], normalized.
    let raw = uniform(rng, batch * PIXELS, 0.0, 1.0, &[batch, PIXELS]);
    let x = raw.map(|v| model.norm.apply(v));
    let mut onnx = onnx::export(&model.store, &[("pixels", x.clone())], &[], |p, x| {
        vec![("logits".to_string(), model.net.forward(p, x[0]))]
    })
    .map_err(onnx_error)?;
    for (key, value) in [("pente.normalization.mean", model.norm.mean), ("pente.normalization.std", model.norm.std)] {
        onnx.metadata_props
            .push(onnx::proto::StringStringEntryProto { key: Some(key.into()), value: Some(format!("{value:?}")) });
    }
    let samples = samples(&[("pixels", x.clone())], &[("logits", model.logits(&x))]);
    Ok(Exported { model: onnx, samples })
}

fn export_gpt(
    lm: &CharLm,
    path: &Path,
    batch: usize,
    seq_len: Option<usize>,
    rng: &mut Rng,
) -> Result<Exported, Error> {
    let char_lm::model::Net::Gpt(gpt) = &lm.net else {
        return Err(Error::NotAModel {
            path: path.to_path_buf(),
            expected: "char-lm GPT",
            reason: format!("it holds the {} model; only the GPT exports to ONNX", lm.config.kind()),
        });
    };
    let block = gpt.config.block_size;
    let t = seq_len.unwrap_or(block);
    if t == 0 || t > block {
        return Err(Error::Config(format!("--seq-len {t}: the GPT takes 1 to {block} positions (its block size)")));
    }
    let vocab = lm.vocab.len();
    let ids: Vec<usize> = (0..batch * t).map(|_| rng.gen_range(0..vocab)).collect();
    let ids_input = IdsInput { name: "ids".into(), shape: vec![batch, t], ids: ids.clone() };
    let onnx = onnx::export(&lm.store, &[], &[ids_input], |p, _| {
        vec![("logits".to_string(), gpt.forward(p, &ids, batch, t).reshape(&[batch, t, vocab]))]
    })
    .map_err(onnx_error)?;
    let logits = {
        let tape = Tape::new();
        let p = lm.store.bind(&tape).eval();
        tape.no_grad(|| gpt.forward(&p, &ids, batch, t).value()).reshape(&[batch, t, vocab])
    };
    let id_values = Tensor::from_vec(ids.iter().map(|&i| i as f32).collect(), &[batch, t]);
    let samples = samples(&[("ids", id_values)], &[("logits", logits)]);
    Ok(Exported { model: onnx, samples })
}

/// `n` numbers drawn uniformly from `[lo, hi)` as a tensor of `shape`.
fn uniform(rng: &mut Rng, n: usize, lo: f32, hi: f32, shape: &[usize]) -> Tensor<f32> {
    Tensor::from_vec((0..n).map(|_| rng.gen_range(lo..hi)).collect(), shape)
}

/// The sample inputs and pente's outputs, as `input.NAME` and `output.NAME`.
fn samples(inputs: &[(&str, Tensor<f32>)], outputs: &[(&str, Tensor<f32>)]) -> ParamStore<f32> {
    let mut store = ParamStore::<f32>::default();
    for (name, t) in inputs {
        store.add(format!("input.{name}"), t.clone());
    }
    for (name, t) in outputs {
        store.add(format!("output.{name}"), t.clone());
    }
    store
}

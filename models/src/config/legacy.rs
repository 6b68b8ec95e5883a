//! Checkpoints written before configurations were stored as JSON: one metadata entry per field,
//! as text. Each reader turns them into the struct a JSON entry holds today, so that an old
//! file goes through the same validation as a new one. Each keeps the rule its format had for a
//! missing entry: the attractor's and the digits' training fields took their defaults, the
//! char-lm's every field was required (and `train.shards`, added later, meant 1).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::str::FromStr;

use crate::attractor::{self, AttractorConfig};
use crate::char_lm::bigram::BigramConfig;
use crate::char_lm::gpt::GptConfig;
use crate::char_lm::mlp::MlpConfig;
use crate::char_lm::model::{self as char_lm, ModelConfig};
use crate::char_lm::train::{History, RunRecord, TrainConfig};
use crate::digits::data::Normalization;
use crate::digits::model::{self as digits, Arch, DigitsConfig};

type Meta = BTreeMap<String, String>;

/// A required entry.
fn required<T: FromStr>(meta: &Meta, key: &str) -> Result<T, String> {
    meta.get(key).and_then(|v| v.parse().ok()).ok_or_else(|| format!("no readable `{key}` in its metadata"))
}

/// An optional entry: `default` when absent, an error when present and unreadable.
fn optional<T: FromStr>(meta: &Meta, key: &str, default: T) -> Result<T, String> {
    match meta.get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("metadata `{key}` = {v:?} does not parse")),
    }
}

/// An attractor checkpoint's entries (`attractors` as `x,y;x,y`, `hidden_sizes` as `1;8;32,32`).
///
/// # Errors
/// A message naming the entry that is missing or unreadable.
pub fn attractor(meta: &Meta) -> Result<attractor::Saved, String> {
    let field = |key: &str| meta.get(key).ok_or_else(|| format!("no `{key}` in its metadata"));
    let attractors = field("attractors")?
        .split(';')
        .map(|a| {
            let (x, y) = a.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect::<Option<Vec<(f64, f64)>>>()
        .ok_or_else(|| "unreadable `attractors`".to_string())?;
    let d = AttractorConfig::default();
    let config = AttractorConfig {
        attractors: attractors.len(),
        hidden_sizes: attractor::parse_hidden_sizes(field("hidden_sizes")?).map_err(|e| e.to_string())?,
        activation: attractor::parse_activation(field("activation")?).map_err(|e| e.to_string())?,
        seed: optional(meta, "seed", d.seed)?,
        extent: optional(meta, "extent", d.extent)?,
        train_points: optional(meta, "train_points", d.train_points)?,
        test_points: optional(meta, "test_points", d.test_points)?,
        steps: optional(meta, "steps", d.steps)?,
        batch_size: optional(meta, "batch_size", d.batch_size)?,
        learning_rate: optional(meta, "learning_rate", d.learning_rate)?,
    };
    Ok(attractor::Saved { config, attractors })
}

/// A digits checkpoint's entries: `arch` required, the training fields optional, the
/// normalization (`norm_mean`, `norm_std`) required.
///
/// # Errors
/// A message naming the entry that is missing or unreadable.
pub fn digits(meta: &Meta) -> Result<digits::Saved, String> {
    let arch = match meta.get("arch").map(String::as_str) {
        Some("mlp") => Arch::Mlp,
        Some("cnn") => Arch::Cnn,
        other => return Err(format!("unknown digits model {other:?} (mlp, cnn)")),
    };
    let d = DigitsConfig::for_arch(arch);
    let config = DigitsConfig {
        arch,
        seed: optional(meta, "seed", d.seed)?,
        epochs: optional(meta, "epochs", d.epochs)?,
        batch_size: optional(meta, "batch_size", d.batch_size)?,
        learning_rate: optional(meta, "learning_rate", d.learning_rate)?,
        weight_decay: optional(meta, "weight_decay", d.weight_decay)?,
        cosine: optional(meta, "cosine", d.cosine)?,
        validation: optional(meta, "validation", d.validation)?,
        shift: optional(meta, "shift", d.shift)?,
        normalize: optional(meta, "normalize", d.normalize)?,
        data_dir: meta.get("data_dir").map_or(d.data_dir, PathBuf::from),
        verify_sha256: optional(meta, "verify_sha256", d.verify_sha256)?,
        eval_every: optional(meta, "eval_every", d.eval_every)?,
        target: optional(meta, "target", d.target)?,
        max_steps: optional(meta, "max_steps", d.max_steps)?,
        precision: d.precision,
        rotate: d.rotate,
        preset: d.preset,
        one_cycle: d.one_cycle,
        batch_norm: d.batch_norm,
        width: d.width,
    };
    let norm = Normalization { mean: required(meta, "norm_mean")?, std: required(meta, "norm_std")? };
    Ok(digits::Saved { config, norm })
}

/// A char-lm checkpoint's model entries: `kind`, its sizes, `vocab` and `unknown_symbol`.
///
/// # Errors
/// A message naming the entry that is missing or unreadable.
pub fn char_lm(meta: &Meta) -> Result<char_lm::Saved, String> {
    let config = match meta.get("kind").map(String::as_str) {
        Some("bigram") => ModelConfig::Bigram(BigramConfig { smoothing: required(meta, "smoothing")? }),
        Some("mlp") => ModelConfig::Mlp(MlpConfig {
            context: required(meta, "context")?,
            n_embd: required(meta, "n_embd")?,
            hidden: required(meta, "hidden")?,
        }),
        Some("gpt") => ModelConfig::Gpt(GptConfig {
            block_size: required(meta, "block_size")?,
            n_embd: required(meta, "n_embd")?,
            n_head: required(meta, "n_head")?,
            n_layer: required(meta, "n_layer")?,
            dropout: required(meta, "dropout")?,
        }),
        other => return Err(format!("unknown model kind {other:?}")),
    };
    let vocab = meta.get("vocab").cloned().ok_or_else(|| "no readable `vocab` in its metadata".to_string())?;
    let unknown_symbol = meta.get("unknown_symbol").map(String::as_str) == Some("true");
    Ok(char_lm::Saved { config, vocab, unknown_symbol })
}

/// A char-lm training checkpoint's run entries (`train.*`, `history.*`, `train_seconds`,
/// `interval`). These files recorded neither the corpus nor the save cadence: the cadence
/// becomes the validation interval, the command line's default then.
///
/// # Errors
/// A message naming the entry that is missing or unreadable.
pub fn char_lm_run(meta: &Meta) -> Result<RunRecord, String> {
    let eval_every = required(meta, "train.eval_every")?;
    let config = TrainConfig {
        steps: required(meta, "train.steps")?,
        batch_size: required(meta, "train.batch_size")?,
        learning_rate: required(meta, "train.learning_rate")?,
        min_lr_fraction: required(meta, "train.min_lr_fraction")?,
        warmup_steps: required(meta, "train.warmup_steps")?,
        weight_decay: required(meta, "train.weight_decay")?,
        grad_clip: required(meta, "train.grad_clip")?,
        eval_every,
        eval_windows: required(meta, "train.eval_windows")?,
        seed: required(meta, "train.seed")?,
        // Checkpoints from before data parallelism trained on one tape.
        shards: optional(meta, "train.shards", 1)?,
        save_every: eval_every,
        // Checkpoints from before gradient checkpointing kept every activation.
        checkpoint_blocks: false,
        // Checkpoints from before mixed precision trained in f32.
        precision: autograd::precision::Precision::F32,
        // Checkpoints from before gradient accumulation took one micro-batch per step, and
        // had no time limit.
        accumulate: 1,
        time_limit: None,
    };
    let points =
        |key: &str| points(meta.get(key).map_or("", String::as_str)).ok_or_else(|| format!("unreadable `{key}`"));
    let history = History { train: points("history.train")?, val: points("history.val")? };
    let interval = meta
        .get("interval")
        .and_then(|s| s.split_once(':'))
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .unwrap_or((0.0, 0));
    Ok(RunRecord {
        config,
        corpus: None,
        history,
        train_seconds: meta.get("train_seconds").and_then(|s| s.parse().ok()).unwrap_or(0.0),
        interval,
    })
}

/// `step:loss;step:loss`.
fn points(s: &str) -> Option<Vec<(u64, f64)>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    s.split(';')
        .map(|p| {
            let (a, b) = p.split_once(':')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

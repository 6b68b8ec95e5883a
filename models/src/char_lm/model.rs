//! [`CharLm`]: one of the three models with its vocabulary and parameters, and what every
//! model answers the same way: the training objective on a batch of windows, the loss over
//! full-length validation windows, the logits of the next character, and the checkpoint form.
//!
//! A *window* is `context + 1` consecutive ids. The bigram (context 1) and the MLP (context
//! `k`) predict its last id from the ones before it; the GPT (context `block_size`) predicts
//! every id of the window from the ones before it, so each window gives it `block_size`
//! targets.

use std::path::Path;

use autograd::{Tape, Var};
use nn::{loss, Bound, Checkpoint, ParamStore};
use serde::{Deserialize, Serialize};

use super::bigram::{Bigram, BigramConfig};
use super::gpt::{Gpt, GptConfig};
use super::mlp::{MlpConfig, MlpLm};
use super::vocab::Vocab;
use crate::config::limits::{self, MAX_CONTEXT, MAX_LAYERS, MAX_VOCAB, MAX_WIDTH};
use crate::config::{self, Invalid};
use crate::Error;

/// The value of the `"model"` metadata key in a char-lm checkpoint.
pub const MODEL_NAME: &str = "char-lm";

/// Which model, with its hyperparameters; in JSON, an object tagged by `"kind"`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelConfig {
    /// The bigram logit table.
    Bigram(BigramConfig),
    /// The Bengio MLP.
    Mlp(MlpConfig),
    /// The transformer.
    Gpt(GptConfig),
}

impl ModelConfig {
    /// `"bigram"`, `"mlp"` or `"gpt"`.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelConfig::Bigram(_) => "bigram",
            ModelConfig::Mlp(_) => "mlp",
            ModelConfig::Gpt(_) => "gpt",
        }
    }

    /// The ids a prediction sees: 1, `context`, or `block_size`.
    pub fn context_len(&self) -> usize {
        match self {
            ModelConfig::Bigram(_) => 1,
            ModelConfig::Mlp(c) => c.context,
            ModelConfig::Gpt(c) => c.block_size,
        }
    }

    /// Ids per window: `context_len() + 1`.
    pub fn window(&self) -> usize {
        self.context_len() + 1
    }

    /// Targets per window: `block_size` for the GPT, 1 otherwise.
    pub fn targets_per_window(&self) -> usize {
        match self {
            ModelConfig::Gpt(c) => c.block_size,
            _ => 1,
        }
    }

    /// Checks every size against its bound and that the parameters of a model over `vocab`
    /// symbols fit in memory, before anything is built (for flags and checkpoints alike).
    ///
    /// # Errors
    /// [`Invalid`] naming the field and its bound.
    pub fn validate(&self, vocab: usize) -> Result<(), Invalid> {
        Invalid::in_range("vocab", vocab as u128, MAX_VOCAB as u128)?;
        let (field, value) = match *self {
            ModelConfig::Bigram(c) => {
                if !(c.smoothing.is_finite() && c.smoothing >= 0.0) {
                    return Err(Invalid::new(
                        "smoothing",
                        format!("= {} must be finite and non-negative", c.smoothing),
                    ));
                }
                ("vocab", vocab)
            }
            ModelConfig::Mlp(c) => {
                Invalid::in_range("context", c.context as u128, MAX_CONTEXT as u128)?;
                Invalid::in_range("n_embd", c.n_embd as u128, MAX_WIDTH as u128)?;
                Invalid::in_range("hidden", c.hidden as u128, MAX_WIDTH as u128)?;
                ("hidden", c.hidden)
            }
            ModelConfig::Gpt(c) => {
                Invalid::in_range("block_size", c.block_size as u128, MAX_CONTEXT as u128)?;
                Invalid::in_range("n_embd", c.n_embd as u128, MAX_WIDTH as u128)?;
                Invalid::in_range("n_head", c.n_head as u128, MAX_LAYERS as u128)?;
                Invalid::in_range("n_layer", c.n_layer as u128, MAX_LAYERS as u128)?;
                if let Some(p) = c.problem() {
                    return Err(Invalid::new("n_head", format!("= {}: {p}", c.n_head)));
                }
                ("n_embd", c.n_embd)
            }
        };
        limits::parameters_fit(field, value as u128, self.param_count(vocab))
    }

    /// The parameters of the model over `vocab` symbols, counted without building it (`None`
    /// if they cannot be counted in a `u128`).
    pub fn param_count(&self, vocab: usize) -> Option<u128> {
        let v = vocab as u128;
        let sum = |terms: &[Option<u128>]| terms.iter().try_fold(0u128, |acc, t| acc.checked_add((*t)?));
        match *self {
            ModelConfig::Bigram(_) => v.checked_mul(v),
            ModelConfig::Mlp(c) => {
                let (k, e, h) = (c.context as u128, c.n_embd as u128, c.hidden as u128);
                // embeddings, hidden layer (weight and bias), head (weight and bias)
                sum(&[
                    v.checked_mul(e),
                    k.checked_mul(e).and_then(|ke| ke.checked_mul(h)),
                    Some(h),
                    h.checked_mul(v),
                    Some(v),
                ])
            }
            ModelConfig::Gpt(c) => {
                let (b, e, l) = (c.block_size as u128, c.n_embd as u128, c.n_layer as u128);
                // a block: two layer norms (4e), qkv (3e² + 3e), projection (e² + e), MLP (8e² + 5e)
                let block = e.checked_mul(e).and_then(|ee| ee.checked_mul(12)).and_then(|x| x.checked_add(13 * e));
                sum(&[v.checked_mul(e), b.checked_mul(e), block.and_then(|x| x.checked_mul(l)), Some(2 * e)])
            }
        }
    }
}

/// What a char-lm checkpoint's [`config::CONFIG_KEY`] entry holds: the model's configuration
/// and its vocabulary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// Which model, with its hyperparameters.
    pub config: ModelConfig,
    /// The vocabulary's code points, comma-separated ([`Vocab::to_metadata`]).
    pub vocab: String,
    /// Whether the vocabulary ends with the unknown symbol.
    pub unknown_symbol: bool,
}

/// The network of a [`CharLm`].
#[derive(Clone, Debug, PartialEq)]
pub enum Net {
    /// The bigram logit table.
    Bigram(Bigram),
    /// The Bengio MLP.
    Mlp(MlpLm),
    /// The transformer.
    Gpt(Gpt),
}

/// A character-level language model: vocabulary, configuration, parameters; see the
/// [module docs](self).
#[derive(Clone)]
pub struct CharLm {
    /// The characters it knows.
    pub vocab: Vocab,
    /// Which model, with its hyperparameters.
    pub config: ModelConfig,
    /// Its parameters (`f32`).
    pub store: ParamStore<f32>,
    /// The layers.
    pub net: Net,
}

impl CharLm {
    /// A freshly initialized model, its parameters drawn from `seed`.
    ///
    /// # Errors
    /// [`Error::Config`] for a configuration that cannot be built.
    pub fn new(vocab: Vocab, config: ModelConfig, seed: u64) -> Result<Self, Error> {
        config.validate(vocab.len())?;
        let mut store = ParamStore::<f32>::with_seed(seed);
        let v = vocab.len();
        let net = match config {
            ModelConfig::Bigram(c) => Net::Bigram(Bigram::new(store.root(), v, c)),
            ModelConfig::Mlp(c) => Net::Mlp(MlpLm::new(store.root(), v, c)),
            ModelConfig::Gpt(c) => Net::Gpt(Gpt::new(store.root(), v, c)),
        };
        Ok(CharLm { vocab, config, store, net })
    }

    /// The logits of `windows` (`batch` windows of [`ModelConfig::window`] ids, concatenated)
    /// and the ids they predict: `((batch·targets, vocab_size), targets)`.
    ///
    /// # Panics
    /// If `windows.len()` is not a whole number of windows.
    #[track_caller]
    pub fn logits<'t>(&self, p: &Bound<'t, f32>, windows: &[usize]) -> (Var<'t, f32>, Vec<usize>) {
        let w = self.config.window();
        assert!(windows.len().is_multiple_of(w), "CharLm: {} ids are not windows of {w}", windows.len());
        let batch = windows.len() / w;
        let rows = || windows.chunks(w);
        match &self.net {
            Net::Bigram(m) => {
                let prev: Vec<usize> = rows().map(|r| r[0]).collect();
                (m.forward(p, &prev), rows().map(|r| r[1]).collect())
            }
            Net::Mlp(m) => {
                let k = w - 1;
                let ctx: Vec<usize> = rows().flat_map(|r| r[..k].iter().copied()).collect();
                (m.forward(p, &ctx), rows().map(|r| r[k]).collect())
            }
            Net::Gpt(m) => {
                let t = w - 1;
                let inputs: Vec<usize> = rows().flat_map(|r| r[..t].iter().copied()).collect();
                let targets: Vec<usize> = rows().flat_map(|r| r[1..].iter().copied()).collect();
                (m.forward(p, &inputs, batch, t), targets)
            }
        }
    }

    /// The training objective on `windows` and, separately, its mean cross-entropy (they
    /// differ only for the bigram, whose objective adds the smoothing term for a training
    /// sequence of `train_len` ids).
    pub fn loss<'t>(&self, p: &Bound<'t, f32>, windows: &[usize], train_len: usize) -> (Var<'t, f32>, Var<'t, f32>) {
        let (logits, targets) = self.logits(p, windows);
        let ce = loss::cross_entropy(logits, &targets);
        match &self.net {
            Net::Bigram(m) => (ce + m.smoothing_term(p, train_len.saturating_sub(1)), ce),
            _ => (ce, ce),
        }
    }

    /// The starts of the full-length evaluation windows of a sequence of `len` ids: every
    /// position for the bigram and the MLP (each id after the first `context` is predicted
    /// once), and consecutive non-overlapping blocks for the GPT.
    pub fn eval_starts(&self, len: usize) -> Vec<usize> {
        let w = self.config.window();
        if len < w {
            return Vec::new();
        }
        let stride = self.config.targets_per_window();
        (0..=len - w).step_by(stride).collect()
    }

    /// The summed negative log-likelihood (nats) and the number of predictions over the windows
    /// of `data` starting at `starts`, in evaluation mode, without recording gradients.
    pub fn nll(&self, data: &[usize], starts: &[usize]) -> (f64, usize) {
        let w = self.config.window();
        let chunk = match self.config {
            ModelConfig::Gpt(c) => (2048 / c.block_size).max(1),
            _ => 8192,
        };
        let mut tape = Tape::<f32>::new();
        let (mut sum, mut count) = (0.0, 0);
        for part in starts.chunks(chunk) {
            tape.reset();
            let windows = super::data::gather_windows(data, part, w);
            let p = self.store.bind(&tape).eval();
            let (mean, n) = tape.no_grad(|| {
                let (logits, targets) = self.logits(&p, &windows);
                (f64::from(loss::cross_entropy(logits, &targets).item()), targets.len())
            });
            drop(p);
            sum += mean * n as f64;
            count += n;
        }
        (sum, count)
    }

    /// The mean loss in nats per character over `data`'s full-length evaluation windows,
    /// or over `max_windows` of them evenly spaced (a fixed subset, for periodic validation).
    pub fn evaluate(&self, data: &[usize], max_windows: Option<usize>) -> f64 {
        let mut starts = self.eval_starts(data.len());
        if let Some(m) = max_windows.filter(|&m| m > 0 && m < starts.len()) {
            let n = starts.len();
            starts = (0..m).map(|i| starts[i * n / m]).collect();
        }
        let (sum, count) = self.nll(data, &starts);
        sum / count.max(1) as f64
    }

    /// The id a context shorter than the model's is padded with on the left: the newline
    /// (where the corpus's lines begin), or id 0 if the vocabulary lacks it.
    pub fn pad_id(&self) -> usize {
        self.vocab.chars().iter().position(|&c| c == '\n').unwrap_or(0)
    }

    /// The logits of the character after `context` (its last `context_len` ids are used,
    /// padded on the left with [`CharLm::pad_id`]), computed without any cache.
    pub fn next_logits(&self, context: &[usize]) -> Vec<f32> {
        let k = self.config.context_len();
        let tail = &context[context.len().saturating_sub(k)..];
        if let Net::Gpt(g) = &self.net {
            let ids: Vec<usize> = if tail.is_empty() { vec![self.pad_id()] } else { tail.to_vec() };
            let all = g.logits(&self.store, &ids);
            let v = self.vocab.len();
            return all.data()[(ids.len() - 1) * v..].to_vec();
        }
        let mut window = vec![self.pad_id(); k - tail.len()];
        window.extend_from_slice(tail);
        window.push(0); // the target slot: not used for the logits
        let tape = Tape::new();
        let p = self.store.bind(&tape).eval();
        tape.no_grad(|| self.logits(&p, &window).0.value().into_vec())
    }

    /// A checkpoint of the parameters with the vocabulary and configuration in its metadata.
    pub fn checkpoint(&self) -> Checkpoint {
        let saved = Saved {
            config: self.config,
            vocab: self.vocab.to_metadata(),
            unknown_symbol: self.vocab.has_unknown_symbol(),
        };
        Checkpoint::from_store(&self.store)
            .with_metadata("model", MODEL_NAME)
            .with_metadata(config::CONFIG_KEY, config::to_json(&saved))
    }

    /// Rebuilds the model a checkpoint of [`CharLm::checkpoint`] holds.
    ///
    /// # Errors
    /// [`Error::NotAModel`] for a checkpoint of something else or with unreadable metadata;
    /// [`Error::Checkpoint`] if its tensors do not match the configuration it declares.
    pub fn from_checkpoint(ckpt: &Checkpoint, path: &Path) -> Result<Self, Error> {
        let meta = &ckpt.metadata;
        let not_ours = |reason: String| Error::NotAModel { path: path.to_path_buf(), expected: MODEL_NAME, reason };
        if meta.get("model").map(String::as_str) != Some(MODEL_NAME) {
            return Err(not_ours(format!("its metadata says model = {:?}", meta.get("model"))));
        }
        let saved = match config::from_json::<Saved>(meta, config::CONFIG_KEY) {
            Some(saved) => saved,
            None => config::legacy::char_lm(meta),
        }
        .map_err(not_ours)?;
        let vocab = Vocab::from_metadata(&saved.vocab, saved.unknown_symbol)
            .ok_or_else(|| not_ours("its vocabulary is not a list of distinct characters".into()))?;
        saved.config.validate(vocab.len()).map_err(|e| not_ours(e.to_string()))?;
        config::check_described(saved.config.param_count(vocab.len()), config::present(ckpt)).map_err(not_ours)?;
        let mut model = CharLm::new(vocab, saved.config, 0).map_err(|e| not_ours(e.to_string()))?;
        ckpt.load_into(&mut model.store, true)?;
        Ok(model)
    }

    /// Loads a model saved by `pente char-lm train`.
    ///
    /// # Errors
    /// As [`Checkpoint::load`] and [`CharLm::from_checkpoint`].
    pub fn load(path: &Path) -> Result<Self, Error> {
        Self::from_checkpoint(&Checkpoint::load(path)?, path)
    }

    /// The PyTorch state dict of the network (see each model's `torch_state_dict`).
    pub fn torch_state_dict(&self) -> nn::torch::StateDictMap {
        match &self.net {
            Net::Bigram(m) => m.torch_state_dict(),
            Net::Mlp(m) => m.torch_state_dict(),
            Net::Gpt(m) => m.torch_state_dict(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The count that guards loading (before anything is built) is the count of what is built.
    #[test]
    fn param_count_is_the_built_models() {
        let vocab = Vocab::from_text("abcdefg\n", true);
        for config in [
            ModelConfig::Bigram(BigramConfig::default()),
            ModelConfig::Mlp(MlpConfig { context: 3, n_embd: 5, hidden: 7 }),
            ModelConfig::Gpt(GptConfig { block_size: 6, n_embd: 8, n_head: 2, n_layer: 3, dropout: 0.0 }),
        ] {
            let model = CharLm::new(vocab.clone(), config, 0).expect("valid");
            assert_eq!(config.param_count(vocab.len()), Some(model.store.num_params() as u128), "{config:?}");
        }
        let huge = ModelConfig::Gpt(GptConfig { n_embd: usize::MAX, ..GptConfig::default() });
        assert_eq!(huge.param_count(65), None, "an overflow is not a count");
    }

    #[test]
    fn validate_names_the_field_and_its_bound() {
        let gpt = |c: GptConfig| ModelConfig::Gpt(c).validate(65).unwrap_err().to_string();
        assert_eq!(
            gpt(GptConfig { n_embd: 1 << 40, ..Default::default() }),
            "n_embd = 1099511627776 is above the limit 65536"
        );
        assert_eq!(gpt(GptConfig { block_size: 0, ..Default::default() }), "block_size = 0 must be at least 1");
        assert!(gpt(GptConfig { n_head: 3, ..Default::default() }).contains("does not divide n_embd = 128"));
        let e = ModelConfig::Bigram(BigramConfig::default()).validate(100_000).unwrap_err().to_string();
        assert_eq!(e, "vocab = 100000 is above the limit 65536");
    }
}

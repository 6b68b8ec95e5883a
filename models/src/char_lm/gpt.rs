//! The GPT: a decoder-only transformer over characters (GPT-2's layout, nanoGPT's naming).
//!
//! ```text
//! ids (batch, seq_len) → wte[ids] + wpe[0..seq_len]            (batch, seq_len, n_embd)
//!                      → n_layer × pre-LayerNorm block          (causal multi-head attention, GELU MLP)
//!                      → ln_f → · wteᵀ                          (batch, seq_len, vocab_size)
//! ```
//!
//! The output projection is tied to the token embedding (one matrix, both gradients summed),
//! positions are learned, every linear layer has a bias, weights start from `N(0, 0.02)`. The
//! small configuration ([`GptConfig::default`]) is the `char-gpt` workload of `pente bench`: block 64,
//! `n_embd` 128, 4 heads, 4 layers, which with a 65-symbol vocabulary has 809,856 parameters.
//! Larger ones are a flag away (`--block`, `--n-embd`, `--n-head`, `--n-layer`).
//!
//! Generation with a key/value cache lives in [`super::kv_cache`].

use autograd::{Tensor, Var};
use nn::torch::StateDictMap;
use nn::{Bound, Embedding, Init, LayerNorm, Scope, TransformerBlock, TransformerConfig};

/// Hyperparameters of the GPT.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GptConfig {
    /// Context length (positions). Default 64.
    pub block_size: usize,
    /// Model width. Default 128.
    pub n_embd: usize,
    /// Attention heads. Default 4.
    pub n_head: usize,
    /// Transformer blocks. Default 4.
    pub n_layer: usize,
    /// Dropout on the embeddings, attention weights and residual branches. Default 0.
    pub dropout: f64,
}

impl Default for GptConfig {
    fn default() -> Self {
        GptConfig { block_size: 64, n_embd: 128, n_head: 4, n_layer: 4, dropout: 0.0 }
    }
}

impl GptConfig {
    /// The blocks' configuration.
    pub fn block(&self) -> TransformerConfig {
        TransformerConfig { n_embd: self.n_embd, n_head: self.n_head, dropout: self.dropout, ..Default::default() }
    }

    /// Why this configuration cannot be built, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.block_size == 0 || self.n_embd == 0 || self.n_head == 0 || self.n_layer == 0 {
            return Some(format!("block, n_embd, n_head and n_layer must be positive: {self:?}"));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Some(format!("n_head = {} does not divide n_embd = {}", self.n_head, self.n_embd));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return Some(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        None
    }
}

/// The transformer; see the [module docs](self). Parameters `wte.weight`, `wpe.weight`,
/// `blocks.{i}.…`, `ln_f.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct Gpt {
    /// Token embeddings `(vocab_size, n_embd)`, also the output projection.
    pub wte: Embedding,
    /// Position embeddings `(block_size, n_embd)`.
    pub wpe: Embedding,
    /// The blocks, input first.
    pub blocks: Vec<TransformerBlock>,
    /// The final norm.
    pub ln_f: LayerNorm,
    /// The configuration.
    pub config: GptConfig,
    /// Whether a recorded forward checkpoints every block
    /// ([`TransformerBlock::forward_checkpointed`]): less memory, one more forward of each
    /// block in backward, the same gradients to the last bit. Off after [`Gpt::new`]; the
    /// trainer sets it from [`TrainConfig::checkpoint_blocks`](super::train::TrainConfig::checkpoint_blocks).
    pub checkpoint_blocks: bool,
}

impl Gpt {
    /// A model drawn from the store's generator.
    ///
    /// # Panics
    /// If the configuration has a [`problem`](GptConfig::problem).
    #[track_caller]
    pub fn new(mut scope: Scope<'_, f32>, vocab_size: usize, config: GptConfig) -> Self {
        if let Some(p) = config.problem() {
            panic!("Gpt::new: {p}");
        }
        let init = Init::Normal { mean: 0.0, std: 0.02 };
        let wte = Embedding::with_init(scope.scope("wte"), vocab_size, config.n_embd, init);
        let wpe = Embedding::with_init(scope.scope("wpe"), config.block_size, config.n_embd, init);
        let block = config.block();
        let blocks = {
            let mut s = scope.scope("blocks");
            (0..config.n_layer).map(|i| TransformerBlock::new(s.scope(i), &block)).collect()
        };
        let ln_f = LayerNorm::new(scope.scope("ln_f"), config.n_embd);
        Gpt { wte, wpe, blocks, ln_f, config, checkpoint_blocks: false }
    }

    /// The logits of every position of `ids`, `batch` rows of `seq_len ≤ block_size` ids:
    /// `(batch·seq_len, vocab_size)`, row `b·seq_len + t` predicting the id after `ids[b, t]`.
    ///
    /// # Panics
    /// If `ids.len()` is not `batch·seq_len`, `seq_len` exceeds `block_size`, or an id is out of
    /// range.
    #[track_caller]
    pub fn forward<'t>(&self, p: &Bound<'t, f32>, ids: &[usize], batch: usize, seq_len: usize) -> Var<'t, f32> {
        assert!(
            seq_len <= self.config.block_size && ids.len() == batch * seq_len,
            "Gpt: {} ids as ({batch}, {seq_len}) with block_size {}",
            ids.len(),
            self.config.block_size
        );
        let c = self.config.n_embd;
        let tok = self.wte.forward_shaped(p, ids, &[batch, seq_len]); // (batch, seq_len, n_embd)
        let pos = p.get(self.wpe.weight).narrow(0, 0, seq_len); // (seq_len, n_embd), broadcast over batch
        let mut x = tok + pos;
        if self.config.dropout > 0.0 && p.is_training() {
            x = x.dropout(self.config.dropout, true);
        }
        let checkpoint = self.checkpoint_blocks && p.tape().is_recording();
        for block in &self.blocks {
            x = if checkpoint { block.forward_checkpointed(p, x) } else { block.forward(p, x) };
        }
        let x = self.ln_f.forward(p, x).reshape(&[batch * seq_len, c]);
        x.matmul(p.get(self.wte.weight).t()) // (batch·seq_len, vocab_size)
    }

    /// The logits of every position of one sequence, as a plain tensor `(ids.len(), vocab_size)`
    /// (evaluation mode, nothing recorded): the uncached reference for generation.
    pub fn logits(&self, store: &nn::ParamStore<f32>, ids: &[usize]) -> Tensor<f32> {
        let tape = autograd::Tape::new();
        let p = store.bind(&tape).eval();
        tape.no_grad(|| self.forward(&p, ids, 1, ids.len()).value())
    }

    /// The PyTorch state dict of the model: the names of the `Gpt` module of
    /// `bench/reference/gpt_torch.py` (`tokens`, `positions`, `blocks.{i}.…` as
    /// [`StateDictMap::transformer_block`], `norm`), whose head is tied to `tokens` as here.
    pub fn torch_state_dict(&self) -> StateDictMap {
        let mut map = StateDictMap::new();
        map.embedding("tokens", &self.wte).embedding("positions", &self.wpe);
        for (i, block) in self.blocks.iter().enumerate() {
            map.transformer_block(&format!("blocks.{i}"), block);
        }
        map.layer_norm("norm", &self.ln_f);
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nn::ParamStore;

    #[test]
    fn char_gpt_configuration_has_809_856_parameters_with_65_symbols() {
        let mut store = ParamStore::<f32>::with_seed(0);
        Gpt::new(store.root(), 65, GptConfig::default());
        assert_eq!(store.num_params(), 809_856);
    }

    #[test]
    fn logits_do_not_depend_on_the_future() {
        let mut store = ParamStore::<f32>::with_seed(1);
        let gpt = Gpt::new(
            store.root(),
            10,
            GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 2, ..Default::default() },
        );
        let a = gpt.logits(&store, &[1, 2, 3, 4, 5]);
        let b = gpt.logits(&store, &[1, 2, 3, 9, 0]);
        assert_eq!(a.data()[..30], b.data()[..30]); // the first three positions agree exactly
        assert_ne!(a.data()[30..40], b.data()[30..40]);
    }
}

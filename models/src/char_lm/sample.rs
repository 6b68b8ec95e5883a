//! Sampling text: temperature, top-k, a seed, characters streamed as they are generated.
//!
//! The GPT generates through a [`KvCache`]: each new character runs one position through the
//! network. Its context is at most `block_size` characters; when the cache is full, the last
//! `block_size / 2` characters are fed again to a fresh cache (one pass over half a block), so
//! a long generation costs about two positions per character. The uncached path
//! ([`Generator::uncached`]) recomputes the whole context every time with the *same* context
//! windows, which makes the two comparable logit for logit (tested below).

use std::time::Instant;

use autograd::{Rng, SeedableRng};
use rand::Rng as _;

use super::kv_cache::KvCache;
use super::model::{CharLm, Net};

/// How to pick each next character.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleConfig {
    /// Characters to generate.
    pub len: usize,
    /// Logits are divided by this before the softmax: below 1 sharpens, above 1 flattens; 0
    /// picks the most likely character every time. Default 1.
    pub temperature: f64,
    /// Sample only among the `k` most likely characters (`None`: all). Default `None`.
    pub top_k: Option<usize>,
    /// Seed of the draws. Default 0.
    pub seed: u64,
}

impl Default for SampleConfig {
    fn default() -> Self {
        SampleConfig { len: 500, temperature: 1.0, top_k: None, seed: 0 }
    }
}

/// Draws an id from `logits` with temperature and top-k (ties at the k-th value are kept).
pub fn pick(logits: &[f32], config: &SampleConfig, rng: &mut Rng) -> usize {
    let argmax = || (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b]).then(b.cmp(&a))).unwrap_or(0);
    if config.temperature <= 0.0 || config.top_k == Some(1) {
        return argmax();
    }
    let cutoff = match config.top_k {
        Some(k) if k > 0 && k < logits.len() => {
            let mut sorted = logits.to_vec();
            sorted.sort_unstable_by(|a, b| b.total_cmp(a));
            sorted[k - 1]
        }
        _ => f32::NEG_INFINITY,
    };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f64> = logits
        .iter()
        .map(|&l| if l >= cutoff { ((f64::from(l) - f64::from(max)) / config.temperature).exp() } else { 0.0 })
        .collect();
    let total: f64 = weights.iter().sum();
    if !(total.is_finite() && total > 0.0) {
        return argmax();
    }
    let mut u = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if u < *w {
            return i;
        }
        u -= w;
    }
    weights.iter().rposition(|&w| w > 0.0).unwrap_or(0)
}

/// Produces the logits of the next character of a growing sequence, with or without the cache.
/// A clone continues the same sequence independently.
#[derive(Clone)]
pub struct Generator<'m> {
    model: &'m CharLm,
    cache: Option<KvCache<'m>>,
    ids: Vec<usize>,
    /// Where the GPT's current context window starts in `ids`.
    window_start: usize,
    /// Ids fed to the cache so far (a suffix of `ids` from `window_start`).
    fed: usize,
}

impl<'m> Generator<'m> {
    /// A generator using the KV cache for the GPT (the other models need none: their context
    /// is a few characters).
    pub fn new(model: &'m CharLm) -> Self {
        let cache = match &model.net {
            Net::Gpt(g) => Some(KvCache::new(g, &model.store)),
            _ => None,
        };
        Generator { model, cache, ids: Vec::new(), window_start: 0, fed: 0 }
    }

    /// A generator that recomputes the whole context for every character (the reference).
    pub fn uncached(model: &'m CharLm) -> Self {
        Generator { model, cache: None, ids: Vec::new(), window_start: 0, fed: 0 }
    }

    /// Appends ids (a prompt, or a generated character).
    pub fn push(&mut self, ids: &[usize]) {
        self.ids.extend_from_slice(ids);
    }

    /// The sequence so far.
    pub fn ids(&self) -> &[usize] {
        &self.ids
    }

    /// The logits of the character after the sequence (which starts with the pad id if empty).
    pub fn next_logits(&mut self) -> Vec<f32> {
        if self.ids.is_empty() {
            self.ids.push(self.model.pad_id());
        }
        let block = self.model.config.context_len();
        if !matches!(self.model.net, Net::Gpt(_)) {
            return self.model.next_logits(&self.ids);
        }
        // The context window: at most `block` ids; when it would overflow, restart it at the
        // last half block.
        if self.ids.len() - self.window_start > block {
            self.window_start = self.ids.len() - (block / 2).max(1);
            self.fed = 0;
            if let Some(c) = &mut self.cache {
                c.clear();
            }
        }
        let window = &self.ids[self.window_start..];
        match &mut self.cache {
            None => self.model.next_logits(window),
            Some(cache) => {
                let mut logits = Vec::new();
                for &id in &window[self.fed..] {
                    logits = cache.step(id);
                }
                self.fed = window.len();
                logits
            }
        }
    }

    /// The ids the last [`Generator::next_logits`] saw: the GPT's window (at most
    /// `block_size`, restarted at the last half block when it overflows), the last
    /// `context_len` ids for the bigram and the MLP (padded on the left with the pad id when
    /// shorter, padding not shown).
    pub fn context(&self) -> &[usize] {
        let k = self.model.config.context_len();
        match self.model.net {
            Net::Gpt(_) => &self.ids[self.window_start.min(self.ids.len())..],
            _ => &self.ids[self.ids.len().saturating_sub(k)..],
        }
    }
}

/// The outcome of [`generate`].
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The generated characters (without the prompt).
    pub text: String,
    /// Generated characters per second (prompt processing included).
    pub chars_per_second: f64,
}

/// Generates `config.len` characters after `prompt` (ids), calling `on_char` with each as soon
/// as it is drawn.
pub fn generate(model: &CharLm, prompt: &[usize], config: &SampleConfig, mut on_char: impl FnMut(char)) -> Sample {
    let mut rng = Rng::seed_from_u64(config.seed);
    let mut gen = Generator::new(model);
    gen.push(prompt);
    let start = Instant::now();
    let mut text = String::with_capacity(config.len);
    for _ in 0..config.len {
        let logits = gen.next_logits();
        let id = pick(&logits, config, &mut rng);
        gen.push(&[id]);
        let ch = model.vocab.char(id);
        text.push(ch);
        on_char(ch);
    }
    let secs = start.elapsed().as_secs_f64();
    Sample { text, chars_per_second: config.len as f64 / secs.max(1e-9) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::char_lm::gpt::GptConfig;
    use crate::char_lm::model::ModelConfig;
    use crate::char_lm::vocab::Vocab;

    #[test]
    fn top_k_and_zero_temperature_restrict_the_choice() {
        let logits = [0.0f32, 3.0, 1.0, 2.0];
        let mut rng = Rng::seed_from_u64(0);
        let greedy = SampleConfig { temperature: 0.0, ..Default::default() };
        assert_eq!(pick(&logits, &greedy, &mut rng), 1);
        let top2 = SampleConfig { top_k: Some(2), ..Default::default() };
        assert!((0..200).all(|_| matches!(pick(&logits, &top2, &mut rng), 1 | 3)));
        let all: std::collections::BTreeSet<usize> =
            (0..400).map(|_| pick(&logits, &SampleConfig::default(), &mut rng)).collect();
        assert_eq!(all.len(), 4);
    }

    #[test]
    fn cached_and_uncached_generation_give_the_same_logits_past_the_block() {
        let vocab = Vocab::from_text("abcdefghij \n", false);
        let config = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 2, dropout: 0.0 });
        let model = CharLm::new(vocab, config, 5).expect("valid");
        let (mut a, mut b) = (Generator::new(&model), Generator::uncached(&model));
        let mut rng = Rng::seed_from_u64(1);
        a.push(&[1, 2, 3]);
        b.push(&[1, 2, 3]);
        for _ in 0..30 {
            let (la, lb) = (a.next_logits(), b.next_logits());
            let worst = la.iter().zip(&lb).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
            assert!(worst < 1e-5, "logits differ by {worst} at length {}", a.ids().len());
            let id = pick(&la, &SampleConfig::default(), &mut rng);
            a.push(&[id]);
            b.push(&[id]);
        }
    }

    #[test]
    fn a_seed_makes_sampling_reproducible() {
        let vocab = Vocab::from_text("abc", false);
        let model = CharLm::new(vocab, ModelConfig::Bigram(Default::default()), 0).expect("valid");
        let config = SampleConfig { len: 40, ..Default::default() };
        let mut streamed = String::new();
        let s = generate(&model, &[0], &config, |c| streamed.push(c));
        assert_eq!(s.text, streamed);
        assert_eq!(s.text, generate(&model, &[0], &config, |_| {}).text);
        assert_ne!(s.text, generate(&model, &[0], &SampleConfig { seed: 1, ..config }, |_| {}).text);
    }
}

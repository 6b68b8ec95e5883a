//! Generation with a key/value cache: each new character costs one position, not the whole
//! context.
//!
//! A [`KvCache`] keeps, for every layer, the keys and values of the positions seen so far. A
//! [`step`](KvCache::step) embeds one new id at the next position, runs it through the blocks
//! attending over the cached keys and values (so causality needs no mask), appends its own key
//! and value, and returns the logits of the character after it. The layers are the model's own
//! (`LayerNorm`, `Linear`, the activation) applied to one row; only the attention over the
//! cache is written here. Its logits equal row `t` of the full forward pass over the same ids
//! ([`Gpt::logits`]), up to float rounding: tested below.

use autograd::{Tape, Tensor};
use nn::ParamStore;

use super::gpt::Gpt;

/// The cached keys and values of one sequence; see the [module docs](self). A clone continues
/// the same sequence independently (a beam of `next::next_words`).
#[derive(Clone)]
pub struct KvCache<'m> {
    gpt: &'m Gpt,
    store: &'m ParamStore<f32>,
    /// `keys[layer]`: `len × n_embd` (all heads side by side), position-major.
    keys: Vec<Vec<f32>>,
    values: Vec<Vec<f32>>,
    len: usize,
    /// When set, each step appends its attention weights to [`KvCache::attention`].
    pub record_attention: bool,
    /// `attention[layer][head][t]`: the weights position `t` gave to positions `0..=t`.
    pub attention: Vec<Vec<Vec<Vec<f32>>>>,
}

impl<'m> KvCache<'m> {
    /// An empty cache for `gpt` with parameters `store`.
    pub fn new(gpt: &'m Gpt, store: &'m ParamStore<f32>) -> Self {
        let layers = gpt.blocks.len();
        KvCache {
            gpt,
            store,
            keys: vec![Vec::new(); layers],
            values: vec![Vec::new(); layers],
            len: 0,
            record_attention: false,
            attention: vec![vec![Vec::new(); gpt.config.n_head]; layers],
        }
    }

    /// Positions cached.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether every position of the block is used (the next step would have no position).
    pub fn is_full(&self) -> bool {
        self.len >= self.gpt.config.block_size
    }

    /// Forgets every position (and recorded attention).
    pub fn clear(&mut self) {
        self.keys.iter_mut().chain(self.values.iter_mut()).for_each(Vec::clear);
        self.attention.iter_mut().flatten().for_each(Vec::clear);
        self.len = 0;
    }

    /// Feeds `id` at the next position and returns the logits of the character after it
    /// (`vocab_size` values).
    ///
    /// # Panics
    /// If the cache [`is_full`](Self::is_full) or `id` is out of range.
    #[track_caller]
    pub fn step(&mut self, id: usize) -> Vec<f32> {
        let cfg = self.gpt.config;
        assert!(!self.is_full(), "KvCache::step: all {} positions are used", cfg.block_size);
        let (c, h) = (cfg.n_embd, cfg.n_head);
        let d = c / h;
        let t = self.len;
        let tape = Tape::new();
        let p = self.store.bind(&tape).eval();
        tape.no_grad(|| {
            let wpe = p.get(self.gpt.wpe.weight).narrow(0, t, 1); // (1, n_embd)
            let mut x = self.gpt.wte.forward(&p, &[id]) + wpe;
            for (layer, block) in self.gpt.blocks.iter().enumerate() {
                let qkv = block.attn.qkv.forward(&p, block.ln_1.forward(&p, x)).value(); // (1, 3·n_embd)
                let qkv = qkv.data();
                self.keys[layer].extend_from_slice(&qkv[c..2 * c]);
                self.values[layer].extend_from_slice(&qkv[2 * c..]);
                let (keys, values) = (&self.keys[layer], &self.values[layer]);
                let scale = 1.0 / (d as f32).sqrt();
                let mut y = vec![0.0f32; c];
                for head in 0..h {
                    let q = &qkv[head * d..(head + 1) * d];
                    let mut w: Vec<f32> = (0..=t)
                        .map(|j| {
                            let k = &keys[j * c + head * d..j * c + (head + 1) * d];
                            q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() * scale
                        })
                        .collect();
                    let max = w.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let mut sum = 0.0;
                    for v in &mut w {
                        *v = (*v - max).exp();
                        sum += *v;
                    }
                    w.iter_mut().for_each(|v| *v /= sum);
                    let out = &mut y[head * d..(head + 1) * d];
                    for (j, &wj) in w.iter().enumerate() {
                        let v = &values[j * c + head * d..j * c + (head + 1) * d];
                        out.iter_mut().zip(v).for_each(|(o, &vv)| *o += wj * vv);
                    }
                    if self.record_attention {
                        self.attention[layer][head].push(w);
                    }
                }
                let y = tape.constant(Tensor::from_vec(y, &[1, c]));
                x = x + block.attn.proj.forward(&p, y);
                let m = block.fc.forward(&p, block.ln_2.forward(&p, x));
                x = x + block.proj.forward(&p, block.activation.apply(m));
            }
            let x = self.gpt.ln_f.forward(&p, x);
            self.len += 1;
            x.matmul(p.get(self.gpt.wte.weight).t()).value().into_vec()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::char_lm::gpt::GptConfig;

    #[test]
    fn cached_and_uncached_logits_are_equal() {
        let mut store = ParamStore::<f32>::with_seed(3);
        let config = GptConfig { block_size: 16, n_embd: 32, n_head: 4, n_layer: 3, dropout: 0.0 };
        let gpt = Gpt::new(store.root(), 20, config);
        // Random weights with larger spread than the init, so that attention is far from uniform.
        let ids: Vec<usize> = (0..16).map(|i| (i * 7 + 3) % 20).collect();
        for (_, name, t) in store.clone().iter() {
            if name.ends_with("weight") && t.rank() == 2 {
                let id = store.id(name).expect("listed");
                let scaled = t.map(|v| v * 10.0);
                store.set(id, scaled);
            }
        }
        let full = gpt.logits(&store, &ids); // (16, 20)
        let mut cache = KvCache::new(&gpt, &store);
        let mut worst = 0.0f32;
        for (t, &id) in ids.iter().enumerate() {
            let step = cache.step(id);
            let row = &full.data()[t * 20..(t + 1) * 20];
            for (a, b) in step.iter().zip(row) {
                worst = worst.max((a - b).abs() / (1.0 + b.abs()));
            }
        }
        assert!(worst < 1e-4, "cached and uncached logits differ by {worst}");
        assert!(cache.is_full());
    }
}

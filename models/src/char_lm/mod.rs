//! A character-level language model on Shakespeare: "given the text so far, what is the next
//! character?", answered by three models of growing power.
//!
//! | file | holds |
//! | --- | --- |
//! | [`vocab`] | the characters of the training text (and the unknown symbol), saved with the model |
//! | [`data`] | the corpus, its positional 90/10 split, training and validation windows |
//! | [`bigram`] | the learned 78×78 logit table, and the exact count-based bigram it must match |
//! | [`mlp`] | the MLP of Bengio et al. (2003): embeddings of the last k characters, a tanh layer |
//! | [`gpt`] | the decoder-only transformer (`pente bench`'s `char-gpt` is its small configuration) |
//! | [`kv_cache`] | GPT generation that costs one position per character |
//! | [`model`] | [`CharLm`]: any of the three, its losses, logits and checkpoint |
//! | [`train`] | AdamW, schedule, periodic validation, exact resume, accumulation, time limit |
//! | [`preset`] | `--preset best`: the GPT and recipe for 20 minutes of training |
//! | [`sample`] | temperature, top-k, seeded, streamed generation |
//! | [`next`] | the next character's probabilities and the most likely next words (beam search) |
//! | [`figures`] | loss curves and attention weights (SVG) |
//! | [`cli`] | `pente char-lm train / sample / eval` |
//! | `next_cli` | `pente char-lm next`: the ranked next characters and words, the comparison figure |
//!
//! Losses are nats per character on the validation split (the last 10 %), over full-length
//! windows; bits per character are nats / ln 2.

pub mod bigram;
#[cfg(feature = "cli")]
pub mod cli;
pub mod data;
pub mod figures;
pub mod gpt;
pub mod kv_cache;
pub mod mlp;
pub mod model;
pub mod next;
#[cfg(feature = "cli")]
pub mod next_cli;
pub mod preset;
pub mod sample;
pub mod train;
pub mod vocab;

pub use model::{CharLm, ModelConfig};

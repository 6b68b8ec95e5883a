//! `pente char-lm train --preset best`: the GPT and the recipe that reached the lowest
//! validation loss on Shakespeare within 20 minutes of training on two cores, among the recipes
//! measured (bench/RESULTS.md, 2026-12-08, AMD EPYC Zen 4 with AVX512-BF16).
//!
//! The model is the one of the earlier best run (n_embd 192, 4 layers, 6 heads, block 128:
//! 1.82 M parameters, no dropout), with batches of 32 windows, AdamW at 2·10⁻³ (weight decay 0.1
//! on the matrices, gradients clipped to norm 1), 200 warm-up steps and a cosine decay to a
//! tenth over [`BEST_STEPS`] steps, and the products in bf16 (at 19,100 tokens/s there). What
//! the measurements said:
//!
//! - **The corpus is small** (1.04 M training characters), and this model overfits it: with a
//!   5,300-step schedule (22 M tokens, 20 minutes) the validation loss was lowest around step
//!   3,500 and ended at 1.70 nats/char. A 2,800-step schedule (11.5 M tokens, about 11 passes
//!   over the text) ends at 1.590 in 10 minutes.
//! - **Dropout does not pay within the budget.** Dropout 0.1 stops the overfitting, but it
//!   makes the attention run composed instead of fused (26 % fewer tokens per second), and
//!   4,144 steps in 20 minutes ended at 1.5905: no better than the 10-minute run without it.
//! - **bf16 pays**: the same steps take less time than in f32, with the same loss to about
//!   0.01 nats (the mixed-precision tests).
//!
//! So the preset stops at [`BEST_STEPS`] well inside the budget; [`BEST_TIME_LIMIT`] is the
//! guard that ends a run after 20 minutes of training on a machine too slow for the steps
//! (losing the end of the cosine, and with it more of the decay the slower the machine).

use super::gpt::GptConfig;
use super::train::TrainConfig;
use autograd::precision::Precision;

/// Optimizer steps of the best recipe: about 10 minutes at 19,000 tokens/s (see the module
/// docs for why not 20).
pub const BEST_STEPS: u64 = 2800;

/// The best recipe's training time limit, in seconds: 20 minutes.
pub const BEST_TIME_LIMIT: f64 = 1200.0;

/// The best recipe's GPT.
pub fn best_gpt() -> GptConfig {
    GptConfig { block_size: 128, n_embd: 192, n_head: 6, n_layer: 4, dropout: 0.0 }
}

/// The best recipe's training configuration (its seed 0; the caller sets it).
pub fn best_training() -> TrainConfig {
    let base = TrainConfig::for_model(&super::model::ModelConfig::Gpt(best_gpt()));
    TrainConfig {
        steps: BEST_STEPS,
        batch_size: 32,
        learning_rate: 2e-3,
        min_lr_fraction: 0.1,
        warmup_steps: 200,
        weight_decay: 0.1,
        grad_clip: 1.0,
        eval_every: 500,
        save_every: 500,
        precision: Precision::Bf16,
        accumulate: 1,
        time_limit: Some(BEST_TIME_LIMIT),
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::char_lm::model::ModelConfig;

    #[test]
    fn the_best_recipe_is_valid_for_the_shakespeare_vocabulary() {
        let model = ModelConfig::Gpt(best_gpt());
        model.validate(78).expect("a valid GPT");
        best_training().validate(&model, 78).expect("a valid recipe");
        assert_eq!(best_training().time_limit, Some(1200.0));
    }
}

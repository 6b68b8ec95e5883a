//! `pente char-lm train --preset best`: the GPT and the recipe that reach the lowest
//! validation loss on Shakespeare within 20 minutes of training on two cores.
//!
//! The budget fixes the tokens a run sees (tokens/s × 1200 s), and the corpus is small (about
//! 1.04 M training characters): a model much larger than a few million parameters sees too few
//! tokens per parameter in 20 minutes, a smaller one stops improving early. The choice, its
//! measurements and the runs it was chosen from are in `bench/RESULTS.md`. The schedule is the
//! one of [`BEST_STEPS`] steps (warm-up, cosine decay to a tenth), sized to end within the
//! budget on the CPU it was measured on; [`BEST_TIME_LIMIT`] is the guard that ends the run
//! after 20 minutes of training on a slower machine (its learning rate then not fully decayed).
//! On a faster machine, give more `--steps` to use the whole budget.

use super::gpt::GptConfig;
use super::train::TrainConfig;
use autograd::precision::Precision;

/// Optimizer steps of the best recipe.
pub const BEST_STEPS: u64 = 6000;

/// The best recipe's training time limit, in seconds: 20 minutes.
pub const BEST_TIME_LIMIT: f64 = 1200.0;

/// The best recipe's GPT.
pub fn best_gpt() -> GptConfig {
    GptConfig { block_size: 128, n_embd: 192, n_head: 6, n_layer: 4, dropout: 0.1 }
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

//! Training in bf16 (`TrainConfig::precision`): a short char-lm GPT run ends within 0.01 nats
//! of the same run in f32, and its checkpoint holds f32 weights and records the precision.

use std::path::Path;

use autograd::precision::Precision;
use models::char_lm::data::Corpus;
use models::char_lm::gpt::GptConfig;
use models::char_lm::model::{CharLm, ModelConfig};
use models::char_lm::train::{TrainConfig, Trainer};
use nn::AnyTensor;

/// The first 40,000 characters of the repository's Shakespeare.
fn corpus() -> Corpus {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/shakespeare/shakespeare.txt");
    let text = std::fs::read_to_string(&path).expect("data/shakespeare/shakespeare.txt is in the repository");
    let text: String = text.chars().take(40_000).collect();
    Corpus::new(&text, &path, false, None).expect("plain text")
}

fn config() -> ModelConfig {
    ModelConfig::Gpt(GptConfig { block_size: 32, n_embd: 64, n_head: 4, n_layer: 2, dropout: 0.0 })
}

/// A trainer of the small GPT at `precision`, same seeds whatever the precision.
fn trainer(corpus: &Corpus, precision: Precision) -> Trainer {
    let model = CharLm::new(corpus.vocab.clone(), config(), 3).expect("valid");
    let tc = TrainConfig {
        steps: 150,
        batch_size: 16,
        learning_rate: 3e-3,
        warmup_steps: 10,
        eval_every: 150,
        eval_windows: 0,
        shards: 1,
        precision,
        ..TrainConfig::for_model(&config())
    };
    Trainer::new(model, tc)
}

#[test]
fn a_bf16_gpt_run_ends_within_a_hundredth_of_a_nat_of_the_f32_run() {
    let corpus = corpus();
    let mut losses = Vec::new();
    for precision in [Precision::F32, Precision::Bf16] {
        let mut t = trainer(&corpus, precision);
        t.run(&corpus, None, &mut |_| {}).expect("trains");
        losses.push(t.model.evaluate(&corpus.val, None));
    }
    let (f32, bf16) = (losses[0], losses[1]);
    eprintln!("validation cross-entropy after 150 steps: f32 {f32:.5}, bf16 {bf16:.5} nats/char");
    // It learned something (the untrained loss is ln 65 ≈ 4.2), and bf16 learned the same.
    assert!(f32 < 3.0, "f32 run: {f32}");
    assert!((f32 - bf16).abs() < 0.01, "f32 {f32:.5}, bf16 {bf16:.5}");
}

#[test]
fn a_bf16_run_saves_f32_weights_and_its_precision() {
    let corpus = corpus();
    let mut t = trainer(&corpus, Precision::Bf16);
    t.train_step(&corpus.train);
    t.train_step(&corpus.train);
    let dir = std::env::temp_dir().join(format!("pente-bf16-checkpoint-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("gpt.ckpt");
    t.save_to(&path).expect("saves");
    let saved = nn::Checkpoint::load(&path).expect("loads");
    for (name, tensor) in &saved.tensors {
        assert!(matches!(tensor, AnyTensor::F32(_)), "{name} is not f32");
    }
    let resumed = Trainer::resume(&path).expect("resumes");
    assert_eq!(resumed.config.precision, Precision::Bf16);
    for ((_, name, a), (_, _, b)) in t.model.store.iter().zip(resumed.model.store.iter()) {
        assert_eq!(a.data(), b.data(), "{name} changed through the checkpoint");
    }
    std::fs::remove_dir_all(&dir).expect("cleans up");
}

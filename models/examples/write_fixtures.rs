//! Writes the checkpoints of `models/tests/fixtures/` with the code of the commit it is part of:
//! one small checkpoint of every model kind, in the metadata layout of that code, so that a
//! later reader can be tested against files it did not write. The digits networks have fixed
//! sizes (2 and 4.8 MB of weights): their weights are set to a repeating pattern and the files
//! gzip-compressed, which keeps them small.
//!
//! `cargo run --release -p pente-models --example write_fixtures`

use std::io::Write as _;
use std::path::Path;

use autograd::Tensor;
use flate2::{write::GzEncoder, Compression};
use models::attractor::{AttractorConfig, AttractorModel};
use models::char_lm::data::Corpus;
use models::char_lm::gpt::GptConfig;
use models::char_lm::mlp::MlpConfig;
use models::char_lm::model::{CharLm, ModelConfig};
use models::char_lm::train::{TrainConfig, Trainer};
use models::digits::data::Normalization;
use models::digits::model::{Arch, DigitsConfig, DigitsModel};
use models::digits::train::{EpochRecord, History};
use nn::{Adam, AdamConfig};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    std::fs::create_dir_all(&dir).expect("writable");

    let config = AttractorConfig { hidden_sizes: vec![vec![3], vec![4, 4]], steps: 20, seed: 3, ..Default::default() };
    let mut model = AttractorModel::new(&config).expect("valid");
    model.train(&indicatif::ProgressBar::hidden());
    model.save(&dir.join("attractor.ckpt")).expect("writable");

    let text = "to be, or not to be: that is the question.\n".repeat(12);
    let corpus = Corpus::new(&text, Path::new("<fixture>"), true, None).expect("plain ASCII");
    let kinds = [
        ModelConfig::Bigram(Default::default()),
        ModelConfig::Mlp(MlpConfig { context: 3, n_embd: 4, hidden: 8 }),
        ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.1 }),
    ];
    for config in kinds {
        let model = CharLm::new(corpus.vocab.clone(), config, 1).expect("valid");
        let tc = TrainConfig { steps: 10, batch_size: 4, eval_every: 3, shards: 2, ..TrainConfig::for_model(&config) };
        let mut t = Trainer::new(model, tc);
        t.run(&corpus, Some(4), &mut |_| {}).expect("trains");
        t.save_to(&dir.join(format!("char_lm_{}.ckpt", config.kind()))).expect("writable");
    }

    for arch in [Arch::Mlp, Arch::Cnn] {
        let config = DigitsConfig { seed: 4, shift: 1, normalize: true, ..DigitsConfig::for_arch(arch) };
        let mut model = DigitsModel::new(&config).expect("valid");
        let ids: Vec<_> = model.store.iter().map(|(id, _, _)| id).collect();
        for id in ids {
            let t = model.store.get(id);
            let pattern: Vec<f32> = (0..t.numel()).map(|i| (i % 7) as f32 * 0.01 - 0.03).collect();
            *model.store.get_mut(id) = Tensor::from_vec(pattern, t.shape());
        }
        model.norm = Normalization { mean: 0.13, std: 0.31 };
        model.history = History {
            epochs: vec![EpochRecord {
                epoch: 1,
                train_loss: 0.5,
                train_accuracy: 0.9,
                val_loss: 0.4,
                val_accuracy: 0.91,
                seconds: 2.0,
                samples_per_s: 100.0,
            }],
            steps: 3,
            train_s: 2.0,
            first_hit: None,
        };
        let opt = Adam::<f32>::new(AdamConfig::default());
        let path = dir.join(format!("digits_{}.ckpt", arch.name()));
        models::digits::train::save_with_optimizer(&model, &opt, &path).expect("writable");
        let bytes = std::fs::read(&path).expect("just written");
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(&bytes).expect("in memory");
        std::fs::write(path.with_extension("ckpt.gz"), gz.finish().expect("in memory")).expect("writable");
        std::fs::remove_file(&path).expect("just written");
    }
}

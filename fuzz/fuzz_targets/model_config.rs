//! Building models from checkpoint metadata: arbitrary bytes become the configuration entries
//! of a real checkpoint of each kind (the JSON entries of today's files, or the per-field
//! entries of older ones), and each model's load-from-checkpoint path must return a model or
//! an error: never panic, never abort on a size it was told.
//!
//! Input: one selector byte, then text. The selector picks the checkpoint (attractor, char-lm
//! training runs of a bigram, an MLP and a GPT, a digits MLP; today's layout or the fixtures'
//! older one) and whether the text replaces a JSON entry or adds `key=value` lines.
#![no_main]
use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use models::attractor::{AttractorConfig, AttractorModel};
use models::char_lm::data::Corpus;
use models::char_lm::gpt::GptConfig;
use models::char_lm::mlp::MlpConfig;
use models::char_lm::model::{CharLm, ModelConfig};
use models::char_lm::train::{TrainConfig, Trainer};
use models::config::{CONFIG_KEY, TRAIN_KEY};
use models::digits::model::{DigitsConfig, DigitsModel};
use nn::Checkpoint;

#[derive(Clone, Copy)]
enum Kind {
    Attractor,
    CharLm,
    Digits,
}

fn templates() -> &'static [(Kind, Checkpoint)] {
    static TEMPLATES: OnceLock<Vec<(Kind, Checkpoint)>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        let attractor = AttractorConfig { hidden_sizes: vec![vec![3], vec![2, 2]], steps: 1, ..Default::default() };
        let attractor = AttractorModel::new(&attractor).expect("valid");
        let dir = std::env::temp_dir().join(format!("pente-fuzz-model-config-{}", std::process::id()));
        let path = dir.join("attractor.ckpt");
        attractor.save(&path).expect("writable temp dir");
        let mut out = vec![(Kind::Attractor, Checkpoint::load(&path).expect("just saved"))];
        let _ = std::fs::remove_dir_all(&dir);

        let text = "to be, or not to be: that is the question.\n".repeat(4);
        let corpus = Corpus::new(&text, Path::new("<fuzz>"), true, None).expect("plain ASCII");
        for config in [
            ModelConfig::Bigram(Default::default()),
            ModelConfig::Mlp(MlpConfig { context: 3, n_embd: 4, hidden: 8 }),
            ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 8, n_head: 2, n_layer: 1, dropout: 0.1 }),
        ] {
            let model = CharLm::new(corpus.vocab.clone(), config, 1).expect("valid");
            let t = Trainer::new(model, TrainConfig { batch_size: 4, shards: 1, ..TrainConfig::for_model(&config) });
            out.push((Kind::CharLm, t.checkpoint()));
        }
        out.push((Kind::Digits, DigitsModel::new(&DigitsConfig::default()).expect("valid").checkpoint()));
        // The older layout, as written before configurations were JSON.
        for bytes in [
            &include_bytes!("../../models/tests/fixtures/attractor.ckpt")[..],
            include_bytes!("../../models/tests/fixtures/char_lm_bigram.ckpt"),
            include_bytes!("../../models/tests/fixtures/char_lm_gpt.ckpt"),
        ] {
            let ckpt = Checkpoint::from_bytes(bytes).expect("a fixture");
            let kind = if ckpt.metadata["model"] == "attractor" { Kind::Attractor } else { Kind::CharLm };
            out.push((kind, ckpt));
        }
        out
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let all = templates();
    let (kind, template) = &all[usize::from(selector >> 2) % all.len()];
    let mut ckpt = template.clone();
    match selector & 3 {
        0 => {
            ckpt.metadata.insert(CONFIG_KEY.into(), text.into_owned());
        }
        1 => {
            ckpt.metadata.insert(TRAIN_KEY.into(), text.into_owned());
        }
        _ => {
            for line in text.lines() {
                let (key, value) = line.split_once('=').unwrap_or((line, ""));
                ckpt.metadata.insert(key.into(), value.into());
            }
        }
    }
    let path = Path::new("<fuzz>");
    match kind {
        Kind::Attractor => drop(AttractorModel::from_checkpoint(&ckpt, path)),
        Kind::Digits => drop(DigitsModel::from_checkpoint(&ckpt, path)),
        Kind::CharLm => {
            drop(CharLm::from_checkpoint(&ckpt, path));
            drop(Trainer::from_checkpoint(&ckpt, path, |_, _| Ok(())));
        }
    }
});

//! Checkpoints with valid checksums whose metadata describes a huge model, or a model other
//! than the tensors they hold, are refused with an error naming the file, the field and the
//! bound, before anything is built (no allocation failure, no abort). Both layouts: the JSON
//! entry of today and the per-field entries of older files.

use std::path::{Path, PathBuf};

use models::attractor::{AttractorConfig, AttractorModel};
use models::char_lm::data::Corpus;
use models::char_lm::gpt::GptConfig;
use models::char_lm::model::{CharLm, ModelConfig};
use models::char_lm::train::{TrainConfig, Trainer};
use models::config::{self, CONFIG_KEY, TRAIN_KEY};
use nn::Checkpoint;

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pente-sizes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// `ckpt` with the JSON entry `key` edited by `edit`, saved to a new file.
fn with_json(ckpt: &Checkpoint, key: &str, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut value: serde_json::Value = serde_json::from_str(&ckpt.metadata[key]).expect("JSON");
    edit(&mut value);
    let path = temp(name);
    ckpt.clone().with_metadata(key, value.to_string()).save(&path).expect("writable");
    path
}

fn gpt_run() -> Trainer {
    let text = "to be, or not to be: that is the question.\n".repeat(12);
    let corpus = Corpus::new(&text, Path::new("<tiny>"), false, None).expect("plain ASCII");
    let config = ModelConfig::Gpt(GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 1, dropout: 0.0 });
    let model = CharLm::new(corpus.vocab.clone(), config, 1).expect("valid");
    Trainer::new(model, TrainConfig { shards: 1, ..TrainConfig::for_model(&config) })
}

#[track_caller]
fn refused<T>(result: Result<T, models::Error>, path: &Path, expect: &[&str]) {
    let Err(err) = result else { panic!("{} was accepted; expected {expect:?}", path.display()) };
    let err = err.to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    for e in expect {
        assert!(err.contains(e), "{err}\nshould contain {e:?}");
    }
}

#[test]
fn huge_char_lm_sizes_in_json_are_refused_before_building() {
    let ckpt = gpt_run().checkpoint();
    let n_embd = with_json(&ckpt, CONFIG_KEY, "n_embd.ckpt", |v| v["config"]["n_embd"] = (1u64 << 40).into());
    refused(CharLm::load(&n_embd), &n_embd, &["n_embd = 1099511627776 is above the limit 65536"]);
    let block = with_json(&ckpt, CONFIG_KEY, "block.ckpt", |v| v["config"]["block_size"] = (1u64 << 40).into());
    refused(CharLm::load(&block), &block, &["block_size = 1099511627776 is above the limit 16384"]);
    // Within every bound, and yet not the model its tensors hold.
    let other = with_json(&ckpt, CONFIG_KEY, "other.ckpt", |v| v["config"]["n_embd"] = 32.into());
    refused(CharLm::load(&other), &other, &["its configuration describes", "parameters, its tensors hold"]);
    // Many layers of the widest width: past this machine's memory.
    let memory = with_json(&ckpt, CONFIG_KEY, "memory.ckpt", |v| {
        v["config"]["n_embd"] = 65536.into();
        v["config"]["n_layer"] = 1024.into();
    });
    refused(CharLm::load(&memory), &memory, &["n_embd = 65536 makes the parameters", "GiB, more than this machine's"]);
    let shards = with_json(&ckpt, TRAIN_KEY, "shards.ckpt", |v| v["config"]["shards"] = 1_000_000.into());
    refused(Trainer::resume(&shards), &shards, &["shards = 1000000 is above the limit 256"]);
    let batch = with_json(&ckpt, TRAIN_KEY, "batch.ckpt", |v| v["config"]["batch_size"] = (1u64 << 40).into());
    refused(Trainer::resume(&batch), &batch, &["batch_size = 1099511627776 makes one step's activations need"]);
    let garbage = with_json(&ckpt, CONFIG_KEY, "garbage.ckpt", |v| v["config"]["n_embd"] = "wide".into());
    refused(CharLm::load(&garbage), &garbage, &["its `config` entry: invalid type"]);
}

#[test]
fn huge_sizes_in_old_per_field_metadata_are_refused_too() {
    let old = Checkpoint::load(fixture("char_lm_gpt.ckpt")).expect("fixture");
    assert!(!old.metadata.contains_key(CONFIG_KEY), "an old-layout file");
    for (key, value, expect) in [
        ("n_embd", "1099511627776", "n_embd = 1099511627776 is above the limit 65536"),
        ("block_size", "1099511627776", "block_size = 1099511627776 is above the limit 16384"),
        ("train.shards", "1000000", "shards = 1000000 is above the limit 256"),
    ] {
        let path = temp(&format!("old-{key}.ckpt"));
        old.clone().with_metadata(key, value).save(&path).expect("writable");
        refused(Trainer::resume(&path), &path, &[expect]);
    }
    let old = Checkpoint::load(fixture("attractor.ckpt")).expect("fixture");
    for (key, value, expect) in [
        ("hidden_sizes", "100000,100000", "width 100000 is not in 1 to 65536"),
        ("hidden_sizes", "60000,60000", "GiB, more than this machine's"),
        ("test_points", "1000000000", "test_points = 1000000000 is above the limit 10000000"),
    ] {
        let path = temp(&format!("old-attractor-{key}.ckpt"));
        old.clone().with_metadata(key, value).save(&path).expect("writable");
        refused(AttractorModel::load(&path), &path, &[expect]);
    }
}

#[test]
fn huge_attractor_sizes_in_json_are_refused_before_building() {
    let config = AttractorConfig { hidden_sizes: vec![vec![3]], steps: 1, ..Default::default() };
    let model = AttractorModel::new(&config).expect("valid");
    let path = temp("attractor.ckpt");
    model.save(&path).expect("writable");
    let ckpt = Checkpoint::load(&path).expect("just saved");
    let points = with_json(&ckpt, CONFIG_KEY, "points.ckpt", |v| v["config"]["test_points"] = 1_000_000_000.into());
    refused(AttractorModel::load(&points), &points, &["test_points = 1000000000 is above the limit 10000000"]);
    let wide = with_json(&ckpt, CONFIG_KEY, "wide.ckpt", |v| {
        v["config"]["hidden_sizes"] = serde_json::json!([[100_000, 100_000]])
    });
    refused(AttractorModel::load(&wide), &wide, &["width 100000 is not in 1 to 65536"]);
    let many = with_json(&ckpt, CONFIG_KEY, "many.ckpt", |v| {
        v["config"]["hidden_sizes"] = serde_json::json!(vec![vec![3]; 1000])
    });
    refused(AttractorModel::load(&many), &many, &["lists 1000 models, which must be 1 to 64"]);
    let other =
        with_json(&ckpt, CONFIG_KEY, "other-sizes.ckpt", |v| v["config"]["hidden_sizes"] = serde_json::json!([[4]]));
    refused(AttractorModel::load(&other), &other, &["describes 37 parameters, its tensors hold 29"]);
    assert!(config::from_json::<AttractorConfig>(&ckpt.metadata, "absent").is_none());
}

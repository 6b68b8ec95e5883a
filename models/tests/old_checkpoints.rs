//! Checkpoints written before configurations were stored as JSON (`tests/fixtures/`, one per
//! model kind, see its README) still load, with the configuration they were written with, and
//! a char-lm run saved by them still resumes.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use models::attractor::AttractorModel;
use models::char_lm::data::Corpus;
use models::char_lm::model::ModelConfig;
use models::char_lm::train::Trainer;
use models::digits::model::{Arch, DigitsModel};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

#[test]
fn an_old_attractor_checkpoint_loads_with_its_configuration() {
    let model = AttractorModel::load(&fixture("attractor.ckpt")).expect("an old checkpoint loads");
    assert_eq!(model.config.hidden_sizes, vec![vec![3], vec![4, 4]]);
    assert_eq!((model.config.seed, model.config.steps, model.steps_trained), (3, 20, 20));
    assert_eq!(model.attractors.len(), 5);
    // The attractors are the ones the seed draws: the file's were read, not made up.
    assert_eq!(model.attractors, models::attractor::random_attractors(5, 1.0, 3));
    assert_eq!(model.evaluate().len(), 2);
}

#[test]
fn old_char_lm_runs_resume_and_continue() {
    let text = "to be, or not to be: that is the question.\n".repeat(12);
    let corpus = Corpus::new(&text, Path::new("<fixture>"), true, None).expect("plain ASCII");
    for (kind, shards) in [("bigram", 1), ("mlp", 1), ("gpt", 2)] {
        let mut t = Trainer::resume(&fixture(&format!("char_lm_{kind}.ckpt"))).expect("an old run resumes");
        assert_eq!(t.model.config.kind(), kind);
        assert_eq!((t.step(), t.config.steps, t.config.batch_size, t.config.shards), (4, 10, 4, shards), "{kind}");
        // Older files recorded neither the corpus nor the cadence: it was the validation interval.
        assert_eq!((t.config.eval_every, t.config.save_every), (3, 3), "{kind}");
        assert_eq!(t.corpus, None);
        assert_eq!(t.history.val.len(), 1, "{kind}: validated at step 3");
        if let ModelConfig::Gpt(g) = t.model.config {
            assert_eq!((g.block_size, g.n_embd, g.n_head, g.n_layer, g.dropout), (8, 16, 2, 1, 0.1));
        }
        t.run(&corpus, None, &mut |_| {}).expect("continues");
        assert_eq!(t.step(), 10);
        assert_eq!(t.corpus.as_ref().map(|c| c.chars), Some(text.len()), "recorded from now on");
    }
}

#[test]
fn old_digits_checkpoints_load_with_their_configuration_and_weights() {
    let dir = std::env::temp_dir().join(format!("pente-old-digits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for arch in [Arch::Mlp, Arch::Cnn] {
        let gz = fixture(&format!("digits_{}.ckpt.gz", arch.name()));
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&gz).expect("fixture present"))
            .read_to_end(&mut bytes)
            .expect("gzip");
        let path = dir.join(format!("{}.ckpt", arch.name()));
        std::fs::write(&path, bytes).expect("writable");
        let model = DigitsModel::load_arch(&path, arch).expect("an old checkpoint loads");
        let c = &model.config;
        assert_eq!((c.seed, c.shift, c.normalize, c.epochs, c.batch_size), (4, 1, true, 10, 128));
        assert_eq!((model.norm.mean, model.norm.std), (0.13, 0.31));
        assert_eq!((model.history.epochs.len(), model.history.steps), (1, 3));
        for (_, name, t) in model.store.iter() {
            let expected: Vec<f32> = (0..t.numel()).map(|i| (i % 7) as f32 * 0.01 - 0.03).collect();
            assert_eq!(t.data(), &expected[..], "{name}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

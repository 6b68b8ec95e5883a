//! The models' PyTorch state dicts: a GPT trained by PyTorch (a checked-in fixture written by
//! `scripts/torch_fixtures.py`) loads into pente's GPT and gives PyTorch's logits and
//! validation loss; every model's export round-trips bit for bit; `models::torch::{export,
//! import}` work from checkpoints and never write over their input.

use std::path::{Path, PathBuf};

use autograd::Tensor;
use models::attractor::{AttractorConfig, AttractorModel};
use models::char_lm::bigram::BigramConfig;
use models::char_lm::data::Corpus;
use models::char_lm::gpt::GptConfig;
use models::char_lm::mlp::MlpConfig;
use models::char_lm::vocab::Vocab;
use models::char_lm::{CharLm, ModelConfig};
use models::digits::{Arch, DigitsConfig, DigitsModel};
use nn::torch::StateDictMap;
use nn::{AnyTensor, ParamStore};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch").join(name)
}

/// The configuration of the fixture's GPT (scripts/torch_fixtures.py's `GPT`).
const FIXTURE_GPT: GptConfig = GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 2, dropout: 0.0 };

#[test]
fn pytorch_trained_gpt_gives_pytorchs_logits_and_validation_loss() {
    let path = fixture("corpus.txt");
    let text = std::fs::read_to_string(&path).expect("corpus fixture");
    let corpus = Corpus::new(&text, &path, true, None).expect("encodes");
    let mut model = CharLm::new(corpus.vocab.clone(), ModelConfig::Gpt(FIXTURE_GPT), 0).expect("valid");
    model.torch_state_dict().load(&mut model.store, fixture("gpt.safetensors")).expect("PyTorch's state dict fits");

    let (io, meta) = nn::safetensors::import(fixture("gpt_io.safetensors")).expect("reads");
    let ids: Vec<usize> = io["ids"].to::<f32>().data().iter().map(|&x| x as usize).collect();
    let want = io["logits"].to::<f32>(); // (2, 8, vocab)
    let v = corpus.vocab.len();
    assert_eq!(want.shape(), &[2, 8, v]);
    let models::char_lm::model::Net::Gpt(gpt) = &model.net else { unreachable!("built as a GPT") };
    for (row, seq) in ids.chunks(8).enumerate() {
        let got = gpt.logits(&model.store, seq);
        let want = &want.data()[row * 8 * v..(row + 1) * 8 * v];
        let worst = got.data().iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-5, "row {row}: logits differ from PyTorch's by {worst}");
    }
    let torch_loss: f64 = meta["val_loss"].parse().expect("a number");
    let loss = model.evaluate(&corpus.val, None);
    assert!((loss - torch_loss).abs() <= 1e-5, "validation loss {loss}, PyTorch's {torch_loss}");
}

/// Saves `store` through `map`, loads the file into `other` through `other_map`, and checks
/// that every parameter came back bit for bit (and was different before).
fn assert_round_trip(
    map: &StateDictMap,
    store: &ParamStore<f32>,
    other_map: &StateDictMap,
    other: &mut ParamStore<f32>,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.safetensors");
    map.save(store, &path, &Default::default()).expect("saves");
    assert!(store.iter().zip(other.iter()).any(|((_, _, a), (_, _, b))| a != b), "the stores start equal");
    other_map.load(other, &path).expect("loads back");
    let bits = |t: &Tensor<f32>| t.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for ((_, name, a), (_, _, b)) in store.iter().zip(other.iter()) {
        assert_eq!(bits(a), bits(b), "{name}");
    }
}

#[test]
fn every_char_lm_round_trips_through_pytorch_names_bit_for_bit() {
    let vocab = Vocab::from_text("to be or not to be\n", true);
    for config in [
        ModelConfig::Bigram(BigramConfig::default()),
        ModelConfig::Mlp(MlpConfig { context: 3, n_embd: 4, hidden: 6 }),
        ModelConfig::Gpt(FIXTURE_GPT),
    ] {
        let mut a = CharLm::new(vocab.clone(), config, 1).expect("valid");
        if let ModelConfig::Bigram(_) = config {
            // the bigram starts at zero: give it values to carry
            let id = a.store.id("table").expect("table");
            let shape = a.store.get(id).shape().to_vec();
            let n = shape.iter().product::<usize>();
            a.store.set(id, Tensor::from_vec((0..n).map(|i| i as f32 / 7.0).collect(), &shape));
        }
        let mut b = CharLm::new(vocab.clone(), config, 2).expect("valid");
        assert_round_trip(&a.torch_state_dict(), &a.store, &b.torch_state_dict(), &mut b.store);
    }
}

#[test]
fn digits_networks_round_trip_with_mnist_torch_py_names() {
    for (arch, names) in [
        (Arch::Mlp, vec![("0.weight", vec![512, 784]), ("4.bias", vec![10])]),
        (
            Arch::Cnn,
            vec![
                ("0.weight", vec![32, 1, 3, 3]),
                ("2.bias", vec![64]),
                ("7.weight", vec![128, 9216]),
                ("10.weight", vec![10, 128]),
            ],
        ),
    ] {
        let a = DigitsModel::new(&DigitsConfig { seed: 1, ..DigitsConfig::for_arch(arch) }).expect("valid");
        let mut b = DigitsModel::new(&DigitsConfig { seed: 2, ..DigitsConfig::for_arch(arch) }).expect("valid");
        let dict = a.net.torch_state_dict().state_dict(&a.store);
        for (name, shape) in names {
            assert_eq!(dict[name].shape(), shape.as_slice(), "{arch:?} {name}");
        }
        assert_eq!(dict.len(), if arch == Arch::Mlp { 6 } else { 8 });
        assert_round_trip(&a.net.torch_state_dict(), &a.store, &b.net.torch_state_dict(), &mut b.store);
    }
}

#[test]
fn attractor_models_round_trip_as_a_module_dict() {
    let a = AttractorModel::new(&AttractorConfig { seed: 1, ..Default::default() }).expect("valid");
    let mut b = AttractorModel::new(&AttractorConfig { seed: 2, ..Default::default() }).expect("valid");
    let map = a.torch_state_dict();
    assert_eq!(map.entries()[0].name, "size0.0.weight");
    assert_round_trip(&map, &a.store, &b.torch_state_dict(), &mut b.store);
}

#[test]
fn export_then_import_restores_the_checkpoints_weights() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ckpt, torch, back) = (dir.path().join("m.ckpt"), dir.path().join("m.safetensors"), dir.path().join("b.ckpt"));
    let model = DigitsModel::new(&DigitsConfig::for_arch(Arch::Mlp)).expect("valid");
    model.save(&ckpt).expect("saves");
    models::torch::export(&ckpt, &torch).expect("exports");
    let (tensors, meta) = nn::safetensors::import(&torch).expect("safetensors");
    assert_eq!(meta["format"], "pt");
    assert_eq!(meta["pente.model"], "digits");
    assert!(meta["pente.config"].contains("\"norm\""), "{meta:?}");
    assert!(matches!(&tensors["0.weight"], AnyTensor::F32(t) if t.shape() == [512, 784]));

    let template = DigitsModel::new(&DigitsConfig { seed: 5, ..DigitsConfig::for_arch(Arch::Mlp) }).expect("valid");
    let like = dir.path().join("like.ckpt");
    template.save(&like).expect("saves");
    models::torch::import(&torch, &like, &back).expect("imports");
    let imported = DigitsModel::load(&back).expect("a digits checkpoint");
    for ((_, name, a), (_, _, b)) in model.store.iter().zip(imported.store.iter()) {
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn export_and_import_refuse_to_write_over_their_input() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ckpt, torch) = (dir.path().join("m.ckpt"), dir.path().join("m.safetensors"));
    DigitsModel::new(&DigitsConfig::for_arch(Arch::Mlp)).expect("valid").save(&ckpt).expect("saves");
    models::torch::export(&ckpt, &torch).expect("exports");
    let (ckpt_bytes, torch_bytes) = (std::fs::read(&ckpt).expect("read"), std::fs::read(&torch).expect("read"));

    let e = models::torch::export(&ckpt, &ckpt).unwrap_err().to_string();
    assert!(e.contains("is also the checkpoint read (--load)"), "{e}");
    let e = models::torch::import(&torch, &ckpt, &torch).unwrap_err().to_string();
    assert!(e.contains("is also the PyTorch state dict read (--torch)"), "{e}");
    assert_eq!(std::fs::read(&ckpt).expect("read"), ckpt_bytes);
    assert_eq!(std::fs::read(&torch).expect("read"), torch_bytes);
}

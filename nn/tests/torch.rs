//! `nn::torch`: PyTorch state dicts both ways. A state dict written by PyTorch
//! (`fixtures/torch/layers.safetensors`, by `scripts/torch_fixtures.py`) loads into the
//! equivalent pente layers and gives the outputs PyTorch computed; pente's export has PyTorch's
//! names and shapes and round-trips bit for bit; a file that does not fit is refused with every
//! problem listed and nothing loaded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use autograd::{Tape, Tensor};
use nn::torch::StateDictMap;
use nn::{
    Activation, AnyTensor, CausalSelfAttention, Conv2d, Conv2dConfig, Embedding, Error, Flatten, LayerNorm, Linear,
    MaxPool2d, Mlp, ParamStore, TransformerBlock, TransformerConfig,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/torch").join(name)
}

/// The pente twin of `Layers` in scripts/torch_fixtures.py.
struct Layers {
    conv: Conv2d,
    fc: Linear,
    mlp: Mlp,
    emb: Embedding,
    norm: LayerNorm,
    block: TransformerBlock,
    mha: CausalSelfAttention,
}

impl Layers {
    fn new<T: autograd::Float>(store: &mut ParamStore<T>) -> Self {
        let block = TransformerConfig { n_embd: 8, n_head: 2, activation: Activation::Gelu, ..Default::default() };
        Layers {
            conv: Conv2d::new(store.scope("conv"), 1, 2, Conv2dConfig { kernel_size: 3, ..Default::default() }),
            fc: Linear::new(store.scope("fc"), 8, 3),
            mlp: Mlp::new(store.scope("mlp"), &[4, 5, 3], Activation::Tanh),
            emb: Embedding::new(store.scope("emb"), 7, 8),
            norm: LayerNorm::new(store.scope("norm"), 8),
            block: TransformerBlock::new(store.scope("block"), &block),
            mha: CausalSelfAttention::new(store.scope("mha"), 8, 2, 0.0),
        }
    }

    /// The names of `Layers`' PyTorch state dict.
    fn torch_state_dict(&self) -> StateDictMap {
        let mut map = StateDictMap::new();
        map.conv2d("cnn.0", &self.conv)
            .linear("cnn.4", &self.fc)
            .sequential_mlp("mlp", &self.mlp)
            .embedding("emb", &self.emb)
            .layer_norm("norm", &self.norm)
            .transformer_block("block", &self.block)
            .multihead_attention("mha", &self.mha);
        map
    }
}

fn read(path: &Path) -> indexmap::IndexMap<String, AnyTensor> {
    nn::safetensors::import(path).expect("fixture reads").0
}

fn assert_close(name: &str, got: &Tensor<f32>, want: &AnyTensor) {
    let want = want.to::<f32>();
    assert_eq!(got.shape(), want.shape(), "{name}: shapes");
    let worst = got.data().iter().zip(want.data()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst <= 1e-5, "{name}: differs from PyTorch by {worst}");
}

#[test]
fn pytorch_written_layers_load_and_give_pytorch_outputs() {
    let mut store = ParamStore::<f32>::with_seed(0);
    let l = Layers::new(&mut store);
    l.torch_state_dict().load(&mut store, fixture("layers.safetensors")).expect("PyTorch's state dict fits");
    let io = read(&fixture("layers_io.safetensors"));
    let input = |k: &str| io[k].to::<f32>();
    let ids: Vec<usize> = input("ids").data().iter().map(|&x| x as usize).collect();

    let tape = Tape::new();
    let p = store.bind(&tape).eval();
    let c = |t: Tensor<f32>| tape.constant(t);
    let h = MaxPool2d::new(2, 2).forward(&p, l.conv.forward(&p, c(input("img"))).relu()); // (2, 2, 2, 2)
    assert_close("cnn", &l.fc.forward(&p, Flatten.forward(&p, h)).value(), &io["cnn_out"]);
    assert_close("mlp", &l.mlp.forward(&p, c(input("vec"))).value(), &io["mlp_out"]);
    assert_close("emb", &l.emb.forward_shaped(&p, &ids, &[2, 5]).value(), &io["emb_out"]);
    assert_close("norm", &l.norm.forward(&p, c(input("seq"))).value(), &io["norm_out"]);
    assert_close("block", &l.block.forward(&p, c(input("seq"))).value(), &io["block_out"]);
    assert_close("mha", &l.mha.forward(&p, c(input("seq"))).value(), &io["mha_out"]);
}

#[test]
fn export_has_pytorchs_names_and_shapes_and_round_trips_bit_for_bit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("layers.safetensors");
    let mut store = ParamStore::<f32>::with_seed(3);
    let l = Layers::new(&mut store);
    l.torch_state_dict().save(&store, &path, &BTreeMap::new()).expect("saves");

    let torch = read(&fixture("layers.safetensors"));
    let ours = read(&path);
    let shapes = |m: &indexmap::IndexMap<String, AnyTensor>| {
        let mut v: Vec<(String, Vec<usize>)> = m.iter().map(|(k, t)| (k.clone(), t.shape().to_vec())).collect();
        v.sort();
        v
    };
    assert_eq!(shapes(&ours), shapes(&torch), "the names and shapes of PyTorch's state dict");
    // a Linear weight is stored (out, in): fc is 8 → 3
    assert_eq!(ours["cnn.4.weight"].to::<f32>().at(&[2, 5]), store.get(l.fc.weight).at(&[5, 2]));

    let mut other = ParamStore::<f32>::with_seed(4);
    let l2 = Layers::new(&mut other);
    assert_ne!(other.get(l2.block.fc.weight), store.get(l.block.fc.weight));
    l2.torch_state_dict().load(&mut other, &path).expect("loads back");
    for ((_, name, a), (_, _, b)) in store.iter().zip(other.iter()) {
        let bits = |t: &Tensor<f32>| t.data().iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(a), bits(b), "{name} changed in the round trip");
    }
}

#[test]
fn import_reports_every_problem_at_once_and_loads_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.safetensors");
    // The file: `fc.bias` missing, `fc.weight` as pente's (in, out) instead of (out, in),
    // `extra` unexpected; and for a second layer, an f64 weight and a NaN bias.
    let mut file = ParamStore::<f64>::with_seed(0);
    file.add("fc.weight", Tensor::zeros(&[4, 3]));
    file.add("extra", Tensor::zeros(&[2]));
    file.add("out.weight", Tensor::zeros(&[2, 3]));
    file.add("out.bias", Tensor::from_vec(vec![0.0, f64::NAN], &[2]));
    nn::safetensors::export(&file, &path, &BTreeMap::new()).expect("writes");

    let mut store = ParamStore::<f32>::with_seed(0);
    let fc = Linear::new(store.scope("fc"), 4, 3);
    let out = Linear::new(store.scope("out"), 3, 2);
    let before = store.clone();
    let mut map = StateDictMap::new();
    map.linear("fc", &fc).linear("out", &out);
    let err = map.load(&mut store, &path).unwrap_err();
    let Error::StateDict { path: named, problems } = &err else { panic!("not a StateDict error: {err}") };
    assert_eq!(named, &path);
    assert_eq!(problems.len(), 5, "{err}");
    let text = err.to_string();
    for needle in [
        "`fc.weight`: dtype F64, but the model is f32",
        "missing `fc.bias` (expected shape [3])",
        "`out.weight`: dtype F64",
        "`out.bias`: dtype F64",
        "unexpected `extra` (shape [2], dtype F64)",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    assert!(text.starts_with(&format!("{}: the state dict does not fit the model (5 problems)", path.display())));
    for ((_, name, a), (_, _, b)) in store.iter().zip(before.iter()) {
        assert_eq!(a, b, "{name} was changed by a load that failed");
    }
}

#[test]
fn import_names_mis_shaped_and_non_finite_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.safetensors");
    let mut file = ParamStore::<f32>::with_seed(0);
    file.add("fc.weight", Tensor::zeros(&[4, 3])); // pente's layout, not PyTorch's (3, 4)
    file.add("fc.bias", Tensor::from_vec(vec![0.0, f32::NAN, f32::INFINITY], &[3]));
    nn::safetensors::export(&file, &path, &BTreeMap::new()).expect("writes");

    let mut store = ParamStore::<f32>::with_seed(0);
    let fc = Linear::new(store.scope("fc"), 4, 3);
    let mut map = StateDictMap::new();
    map.linear("fc", &fc);
    let err = map.load(&mut store, &path).unwrap_err().to_string();
    assert!(err.contains("`fc.weight`: shape [4, 3] in the file, the model expects [3, 4]"), "{err}");
    assert!(err.contains("`fc.bias`: 2 non-finite values (NaN or ±∞)"), "{err}");
}

#[test]
fn f32_state_dict_loads_into_an_f64_model_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("fc.safetensors");
    let mut store = ParamStore::<f32>::with_seed(0);
    let fc = Linear::new(store.scope("fc"), 4, 3);
    let mut map = StateDictMap::new();
    map.linear("fc", &fc);
    map.save(&store, &path, &BTreeMap::new()).expect("saves");

    let mut wide = ParamStore::<f64>::with_seed(1);
    let fc64 = Linear::new(wide.scope("fc"), 4, 3);
    let mut map64 = StateDictMap::new();
    map64.linear("fc", &fc64);
    map64.load(&mut wide, &path).expect("f32 widens exactly");
    assert_eq!(wide.get(fc64.weight), &store.get(fc.weight).cast::<f64>());
}

#[test]
#[should_panic(expected = "no PyTorch name for the parameters [\"b.weight\", \"b.bias\"]")]
fn a_map_that_forgets_a_layer_panics_instead_of_writing_part_of_the_model() {
    let mut store = ParamStore::<f32>::with_seed(0);
    let a = Linear::new(store.scope("a"), 2, 2);
    Linear::new(store.scope("b"), 2, 2);
    let mut map = StateDictMap::new();
    map.linear("a", &a);
    map.state_dict(&store);
}

//! Exports of the example models' networks decoded back through prost: their ops, counted,
//! and their weights, as initializers named by parameter; the attributes of each mapped op;
//! and the errors (an op without an ONNX form, a non-finite weight, a file that is not ONNX).

use std::collections::BTreeMap;

use autograd::{Float, Op, Tape, Tensor, Var};
use models::attractor::{AttractorConfig, AttractorModel};
use models::char_lm::gpt::{Gpt, GptConfig};
use models::digits::model::{Arch, Net};
use nn::{Activation, ParamStore};
use onnx::proto::{tensor_proto, AttributeProto, ModelProto, NodeProto};
use onnx::{Error, GraphSpec, IdsInput};
use prost::Message;

/// The model after a trip through its protobuf bytes.
fn round_trip(model: &ModelProto) -> ModelProto {
    ModelProto::decode(model.encode_to_vec().as_slice()).expect("pente's bytes decode")
}

fn op_counts(model: &ModelProto) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for n in &model.graph.as_ref().expect("a graph").node {
        *counts.entry(n.op_type().to_string()).or_default() += 1;
    }
    counts
}

fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// The float initializers (the weights), by name, with their dims.
fn weights(model: &ModelProto) -> BTreeMap<String, Vec<i64>> {
    let float = tensor_proto::DataType::Float as i32;
    model
        .graph
        .as_ref()
        .expect("a graph")
        .initializer
        .iter()
        .filter(|t| t.data_type() == float && !t.dims.is_empty())
        .map(|t| (t.name().to_string(), t.dims.clone()))
        .collect()
}

fn nodes<'m>(model: &'m ModelProto, op: &str) -> Vec<&'m NodeProto> {
    model.graph.as_ref().expect("a graph").node.iter().filter(|n| n.op_type() == op).collect()
}

fn attr<'n>(node: &'n NodeProto, name: &str) -> &'n AttributeProto {
    node.attribute.iter().find(|a| a.name() == name).unwrap_or_else(|| panic!("{} has no {name}", node.op_type()))
}

#[test]
fn attractor_mlp_exports_its_layers_and_only_its_weights() {
    let config = AttractorConfig {
        hidden_sizes: vec![vec![4], vec![16, 8]],
        activation: Activation::Gelu,
        ..Default::default()
    };
    let model = AttractorModel::new(&config).unwrap();
    let points = Tensor::from_vec(vec![0.5; 6], &[3, 2]);
    let exported = onnx::export(&model.store, &[("points", points)], &[], |p, x| {
        vec![("logits".into(), model.mlps[1].forward(p, x[0]))]
    })
    .unwrap();
    let decoded = round_trip(&exported);
    // Three layers (MatMul + Add each), GELU twice through Erf, and the output's Identity.
    let ops = op_counts(&decoded);
    assert_eq!((ops["MatMul"], ops["Erf"], ops["Identity"]), (3, 2, 1), "{ops:?}");
    let w = weights(&decoded);
    let expected: BTreeMap<String, Vec<i64>> = [
        ("size1.0.weight", vec![2, 16]),
        ("size1.0.bias", vec![16]),
        ("size1.1.weight", vec![16, 8]),
        ("size1.1.bias", vec![8]),
        ("size1.2.weight", vec![8, 5]),
        ("size1.2.bias", vec![5]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(w, expected, "the other model's weights (size0.*) stay out");
    let graph = decoded.graph.unwrap();
    assert_eq!(graph.input[0].name(), "points");
    assert_eq!(graph.output[0].name(), "logits");
    assert_eq!(decoded.opset_import[0].version(), onnx::OPSET);
    // The weights' values are the store's, bit for bit.
    let init = graph.initializer.iter().find(|t| t.name() == "size1.2.bias").unwrap();
    let values: Vec<f32> =
        init.raw_data().chunks(4).map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))).collect();
    let id = model.store.id("size1.2.bias").unwrap();
    assert_eq!(values, model.store.get(id).data());
}

#[test]
fn digits_mlp_and_cnn_export_with_the_expected_ops() {
    let mut store = ParamStore::<f32>::with_seed(0);
    let mlp = Net::new(Arch::Mlp, &mut store);
    let x = Tensor::zeros(&[2, 784]);
    let exported =
        onnx::export(&store, &[("pixels", x.clone())], &[], |p, x| vec![("logits".into(), mlp.forward(p, x[0]))])
            .unwrap();
    let decoded = round_trip(&exported);
    assert_eq!(op_counts(&decoded), counts(&[("Add", 3), ("Identity", 1), ("MatMul", 3), ("Relu", 2)]));
    assert_eq!(weights(&decoded)["mlp.0.weight"], vec![784, 512]);

    let mut store = ParamStore::<f32>::with_seed(0);
    let cnn = Net::new(Arch::Cnn, &mut store);
    let exported =
        onnx::export(&store, &[("pixels", x)], &[], |p, x| vec![("logits".into(), cnn.forward(p, x[0]))]).unwrap();
    let decoded = round_trip(&exported);
    // Dropout is the identity in evaluation mode: no node.
    let ops = op_counts(&decoded);
    assert_eq!(
        (ops["Conv"], ops["Relu"], ops["MaxPool"], ops["MatMul"], ops["Reshape"], ops.get("Dropout")),
        (2, 3, 1, 2, 2, None),
        "{ops:?}"
    );
    let w = weights(&decoded);
    assert_eq!((w["cnn.conv1.weight"].clone(), w["cnn.conv2.bias"].clone()), (vec![32, 1, 3, 3], vec![64]));
    assert_eq!(w["cnn.fc1.weight"], vec![64 * 12 * 12, 128]);
}

#[test]
fn gpt_exports_with_an_ids_input_and_decomposed_attention() {
    let mut store = ParamStore::<f32>::with_seed(3);
    let config = GptConfig { block_size: 8, n_embd: 16, n_head: 2, n_layer: 2, dropout: 0.1 };
    let gpt = Gpt::new(store.root(), 11, config);
    let ids: Vec<usize> = (0..2 * 5).map(|i| i % 11).collect();
    let spec = IdsInput { name: "ids".into(), shape: vec![2, 5], ids: ids.clone() };
    let exported =
        onnx::export(&store, &[], &[spec], |p, _| vec![("logits".into(), gpt.forward(p, &ids, 2, 5))]).unwrap();
    let decoded = round_trip(&exported);
    let ops = op_counts(&decoded);
    // Per block: two layer norms, one attention (a Where on the scores, a Softmax), a GELU.
    assert_eq!(
        (ops["LayerNormalization"], ops["Softmax"], ops["Where"], ops["Erf"], ops.get("Dropout")),
        (5, 2, 2, 2, None),
        "{ops:?}"
    );
    // The token embedding is read with the ids input (and tied to the output projection).
    let gathers = nodes(&decoded, "Gather");
    assert_eq!(gathers.len(), 1);
    assert_eq!(gathers[0].input[0], "wte.weight");
    let graph = decoded.graph.as_ref().unwrap();
    assert_eq!(graph.input.len(), 1);
    assert_eq!(graph.input[0].name(), "ids");
    assert!(nodes(&decoded, "Transpose").iter().any(|n| n.input[0] == "wte.weight"), "the tied output projection");
    let w = weights(&decoded);
    assert_eq!((w["wte.weight"].clone(), w["wpe.weight"].clone()), (vec![11, 16], vec![8, 16]));
    assert_eq!(w.len(), 2 + 2 * 12 + 2, "every weight once: {:?}", w.keys());
}

#[test]
fn op_attributes_become_onnx_attributes() {
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::zeros(&[1, 2, 6, 6]));
    let w = tape.var(Tensor::zeros(&[3, 2, 3, 3]));
    let conv = x.conv2d(w, 2, 1); // (1, 3, 3, 3)
    let pooled = conv.max_pool2d(2, 1); // (1, 3, 2, 2)
    let flat = pooled.reshape(&[3, 4]).transpose(0, 1).softmax(0).sum_axes(&[-1], true);
    let spec = GraphSpec {
        inputs: vec![("x".into(), x.id())],
        params: vec![(w.id(), "w".into())],
        outputs: vec![("y".into(), flat.id())],
        ..Default::default()
    };
    let model = round_trip(&onnx::from_tape(&tape, &spec).unwrap());
    let conv = nodes(&model, "Conv")[0];
    assert_eq!(attr(conv, "strides").ints, vec![2, 2]);
    assert_eq!(attr(conv, "pads").ints, vec![1, 1, 1, 1]);
    assert_eq!(attr(conv, "kernel_shape").ints, vec![3, 3]);
    let pool = nodes(&model, "MaxPool")[0];
    assert_eq!((attr(pool, "kernel_shape").ints.clone(), attr(pool, "strides").ints.clone()), (vec![2, 2], vec![1, 1]));
    assert_eq!(attr(nodes(&model, "Transpose")[0], "perm").ints, vec![1, 0]);
    assert_eq!(attr(nodes(&model, "Softmax")[0], "axis").i, Some(0));
    let sum = nodes(&model, "ReduceSum")[0];
    assert_eq!(attr(sum, "keepdims").i, Some(1));
    let graph = model.graph.as_ref().unwrap();
    let axes = graph.initializer.iter().find(|t| t.name() == sum.input[1]).unwrap();
    assert_eq!(axes.raw_data(), 1i64.to_le_bytes());
    let shape = graph.initializer.iter().find(|t| t.name() == nodes(&model, "Reshape")[0].input[1]).unwrap();
    let dims: Vec<i64> = shape.raw_data().chunks(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect();
    assert_eq!(dims, vec![3, 4]);
}

#[test]
fn layer_norm_keeps_its_epsilon() {
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::zeros(&[2, 4]));
    let (g, b) = (tape.var(Tensor::ones(&[4])), tape.var(Tensor::zeros(&[4])));
    let y = x.layer_norm(g, b, 1e-3);
    let spec = GraphSpec {
        inputs: vec![("x".into(), x.id())],
        params: vec![(g.id(), "g".into()), (b.id(), "b".into())],
        outputs: vec![("y".into(), y.id())],
        ..Default::default()
    };
    let model = onnx::from_tape(&tape, &spec).unwrap();
    let ln = nodes(&model, "LayerNormalization")[0];
    assert_eq!(ln.input, vec!["x", "g", "b"]);
    assert_eq!((attr(ln, "epsilon").f, attr(ln, "axis").i), (Some(1e-3), Some(-1)));
}

#[test]
fn a_training_only_op_fails_naming_it() {
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::ones(&[2, 3]));
    let y = x.dropout(0.5, true).relu();
    let spec =
        GraphSpec { inputs: vec![("x".into(), x.id())], outputs: vec![("y".into(), y.id())], ..Default::default() };
    let err = onnx::from_tape(&tape, &spec).unwrap_err();
    assert!(matches!(&err, Error::Unsupported { op, .. } if op == "dropout"), "{err}");
    let text = err.to_string();
    assert!(text.contains("`dropout`") && text.contains("training") && text.contains("export.rs"), "{text}");
}

/// A custom op that does not describe its attributes.
struct Cube;

impl<T: Float> Op<T> for Cube {
    fn name(&self) -> &'static str {
        "cube"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].map(|x| x * x * x)
    }
    // d x³/dx = 3x².
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out * 3.0 * inputs[0] * inputs[0])]
    }
}

#[test]
fn a_custom_op_fails_naming_it() {
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::ones(&[2]));
    let y = tape.apply(Cube, &[x]).exp();
    let spec =
        GraphSpec { inputs: vec![("x".into(), x.id())], outputs: vec![("y".into(), y.id())], ..Default::default() };
    let text = onnx::from_tape(&tape, &spec).unwrap_err().to_string();
    assert!(text.starts_with("cannot export op `cube` (node %1"), "{text}");
}

#[test]
fn a_non_finite_weight_is_refused_naming_it() {
    let mut store = ParamStore::<f32>::with_seed(0);
    let fc = nn::Linear::new(store.scope("fc"), 2, 2);
    store.set(fc.weight, Tensor::from_vec(vec![1.0, f32::NAN, 0.0, 1.0], &[2, 2]));
    let err =
        onnx::export(&store, &[("x", Tensor::zeros(&[1, 2]))], &[], |p, x| vec![("y".into(), fc.forward(p, x[0]))])
            .unwrap_err();
    assert_eq!(err.to_string(), "ONNX export: parameter \"fc.weight\" holds a non-finite value (NaN or infinity)");
}

#[test]
fn a_name_given_twice_is_refused() {
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::ones(&[2]));
    let y = x.relu();
    let spec =
        GraphSpec { inputs: vec![("x".into(), x.id())], outputs: vec![("x".into(), y.id())], ..Default::default() };
    let text = onnx::from_tape(&tape, &spec).unwrap_err().to_string();
    assert_eq!(text, "ONNX export: the name \"x\" is given to an input and to an output");
}

#[test]
fn save_then_load_gives_the_same_model_and_garbage_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::ones(&[2]));
    let y = x.sigmoid();
    let spec =
        GraphSpec { inputs: vec![("x".into(), x.id())], outputs: vec![("y".into(), y.id())], ..Default::default() };
    let model = onnx::from_tape(&tape, &spec).unwrap();
    let path = dir.path().join("m.onnx");
    onnx::save(&model, &path).unwrap();
    assert_eq!(onnx::load(&path).unwrap(), model);
    let bad = dir.path().join("bad.onnx");
    std::fs::write(&bad, b"\xff\xff\xff not protobuf").unwrap();
    let text = onnx::load(&bad).unwrap_err().to_string();
    assert!(text.contains("bad.onnx: not an ONNX model"), "{text}");
}

#[test]
fn transposed_convolution_and_average_pooling_keep_their_attributes() {
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::zeros(&[1, 2, 5, 5]));
    let w = tape.var(Tensor::zeros(&[2, 3, 3, 3]));
    let up = x.conv_transpose2d(w, 2, 1, 1); // (1, 3, 10, 10)
    let pooled = up.avg_pool2d(3, 2, 1); // (1, 3, 5, 5)
    let halves = up.adaptive_avg_pool2d((5, 2)); // windows of 2×5
    let global = pooled.adaptive_avg_pool2d((1, 1));
    let spec = GraphSpec {
        inputs: vec![("x".into(), x.id())],
        params: vec![(w.id(), "w".into())],
        outputs: vec![("halves".into(), halves.id()), ("global".into(), global.id())],
        ..Default::default()
    };
    let model = round_trip(&onnx::from_tape(&tape, &spec).unwrap());
    let t = nodes(&model, "ConvTranspose")[0];
    assert_eq!(attr(t, "kernel_shape").ints, vec![3, 3]);
    assert_eq!(attr(t, "strides").ints, vec![2, 2]);
    assert_eq!(attr(t, "pads").ints, vec![1, 1, 1, 1]);
    assert_eq!(attr(t, "output_padding").ints, vec![1, 1]);
    let pools = nodes(&model, "AveragePool");
    assert_eq!(pools.len(), 2);
    let fixed = pools.iter().find(|n| attr(n, "kernel_shape").ints == vec![3, 3]).expect("avg_pool2d's node");
    assert_eq!((attr(fixed, "strides").ints.clone(), attr(fixed, "pads").ints.clone()), (vec![2, 2], vec![1, 1, 1, 1]));
    assert_eq!(attr(fixed, "count_include_pad").i, Some(1));
    let adaptive = pools.iter().find(|n| attr(n, "kernel_shape").ints == vec![2, 5]).expect("adaptive pooling's node");
    assert_eq!(attr(adaptive, "strides").ints, vec![2, 5]);
    assert_eq!(nodes(&model, "GlobalAveragePool").len(), 1);
}

#[test]
fn adaptive_pooling_of_uneven_windows_fails_naming_the_sizes() {
    let tape = Tape::<f32>::new();
    let x = tape.var(Tensor::zeros(&[1, 1, 7, 5]));
    let y = x.adaptive_avg_pool2d((3, 2));
    let spec =
        GraphSpec { inputs: vec![("x".into(), x.id())], outputs: vec![("y".into(), y.id())], ..Default::default() };
    let text = onnx::from_tape(&tape, &spec).unwrap_err().to_string();
    assert!(text.contains("adaptive_avg_pool2d") && text.contains("from 7×5 to 3×2"), "{text}");
}

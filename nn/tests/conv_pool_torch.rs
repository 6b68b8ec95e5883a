//! Conv1d, ConvTranspose2d, AvgPool2d and AdaptiveAvgPool2d against values PyTorch computed:
//! the output and the gradients with respect to the input, weight and bias, for odd shapes,
//! strides above one and non-zero padding. The fixture `fixtures/conv_pool_torch.json` is
//! written by `bench/reference/conv_pool_torch.py`.

use autograd::check::assert_close;
use autograd::{Tape, Tensor};
use nn::torch::StateDictMap;
use nn::{
    AdaptiveAvgPool2d, AvgPool2d, Conv1d, Conv1dConfig, ConvTranspose2d, ConvTranspose2dConfig, Module, ParamStore,
};
use serde_json::Value;

/// The fixture's tensor under `key` of `case`.
fn tensor(case: &Value, key: &str) -> Tensor<f64> {
    let t = &case[key];
    let shape: Vec<usize> =
        t["shape"].as_array().expect("a shape").iter().map(|d| d.as_u64().unwrap() as usize).collect();
    let data: Vec<f64> = t["data"].as_array().expect("data").iter().map(|v| v.as_f64().unwrap()).collect();
    Tensor::from_vec(data, &shape)
}

fn option(case: &Value, key: &str) -> usize {
    case["options"][key].as_u64().unwrap_or_else(|| panic!("option {key}")) as usize
}

/// Runs `layer` on the case's input with its weight and bias loaded by their PyTorch names,
/// and compares the output and `d Σ(y·seed) / d (x, weight, bias)` with PyTorch's.
fn check<M: Module>(case: &Value, store: &mut ParamStore<f64>, map: &StateDictMap, layer: &M) {
    for entry in map.entries() {
        store.set(entry.param, tensor(case, &entry.name));
    }
    let tape = Tape::new();
    let p = store.bind(&tape);
    let x = tape.var(tensor(case, "x"));
    let y = layer.forward(&p, x);
    let what = format!("{} {}", case["layer"], case["options"]);
    assert_eq!(y.shape().as_slice(), tensor(case, "y").shape(), "{what}: output shape");
    assert_close(&y.value(), &tensor(case, "y"), 1e-12, 1e-12);
    let loss = (y * tape.constant(tensor(case, "seed"))).sum();
    let grads = loss.backward();
    assert_close(&grads[x], &tensor(case, "grad_x"), 1e-12, 1e-12);
    let param_grads = p.grads(grads);
    for entry in map.entries() {
        let g = param_grads.get(entry.param).unwrap_or_else(|| panic!("{what}: no gradient for {}", entry.name));
        assert_close(g, &tensor(case, &format!("grad_{}", entry.name)), 1e-12, 1e-12);
    }
}

fn cases(layer: &str) -> Vec<Value> {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/conv_pool_torch.json")).expect("the fixture is JSON");
    let all = fixture["cases"].as_array().expect("cases").clone();
    let picked: Vec<Value> = all.into_iter().filter(|c| c["layer"] == layer).collect();
    assert!(picked.len() >= 3, "{layer}: the fixture has {} cases", picked.len());
    picked
}

#[test]
fn conv1d_matches_pytorch() {
    for case in cases("Conv1d") {
        let mut store = ParamStore::<f64>::with_seed(0);
        let config = Conv1dConfig {
            kernel_size: option(&case, "kernel_size"),
            stride: option(&case, "stride"),
            padding: option(&case, "padding"),
            bias: true,
        };
        let layer = Conv1d::new(store.root(), option(&case, "in_ch"), option(&case, "out_ch"), config);
        let mut map = StateDictMap::new();
        map.conv1d("", &layer);
        check(&case, &mut store, &map, &layer);
    }
}

#[test]
fn conv_transpose2d_matches_pytorch() {
    for case in cases("ConvTranspose2d") {
        let mut store = ParamStore::<f64>::with_seed(0);
        let config = ConvTranspose2dConfig {
            kernel_size: option(&case, "kernel_size"),
            stride: option(&case, "stride"),
            padding: option(&case, "padding"),
            output_padding: option(&case, "output_padding"),
            bias: true,
        };
        let layer = ConvTranspose2d::new(store.root(), option(&case, "in_ch"), option(&case, "out_ch"), config);
        let mut map = StateDictMap::new();
        map.conv_transpose2d("", &layer);
        check(&case, &mut store, &map, &layer);
    }
}

#[test]
fn avg_pool2d_matches_pytorch() {
    for case in cases("AvgPool2d") {
        let layer = AvgPool2d::new(option(&case, "kernel"), option(&case, "stride"), option(&case, "padding"));
        check(&case, &mut ParamStore::with_seed(0), &StateDictMap::new(), &layer);
    }
}

#[test]
fn adaptive_avg_pool2d_matches_pytorch() {
    for case in cases("AdaptiveAvgPool2d") {
        let out = &case["options"]["output"];
        let output = (out[0].as_u64().unwrap() as usize, out[1].as_u64().unwrap() as usize);
        check(&case, &mut ParamStore::with_seed(0), &StateDictMap::new(), &AdaptiveAvgPool2d::new(output));
    }
}

#[test]
#[should_panic(
    expected = "Conv1d: kernel 5 and stride 1 must be positive and the kernel no longer than the padded length 4"
)]
fn conv1d_sequence_shorter_than_kernel_is_named() {
    let mut store = ParamStore::<f64>::with_seed(0);
    let layer = Conv1d::new(store.root(), 2, 3, Conv1dConfig { kernel_size: 5, padding: 1, ..Default::default() });
    let tape = Tape::new();
    layer.forward(&store.bind(&tape), tape.constant(Tensor::zeros(&[1, 2, 2])));
}

#[test]
#[should_panic(expected = "ConvTranspose2d: expected input (batch, 4, h, w), got [1, 3, 5, 5]")]
fn conv_transpose2d_wrong_channels_is_named() {
    let mut store = ParamStore::<f64>::with_seed(0);
    let layer = ConvTranspose2d::new(store.root(), 4, 2, ConvTranspose2dConfig::default());
    let tape = Tape::new();
    layer.forward(&store.bind(&tape), tape.constant(Tensor::zeros(&[1, 3, 5, 5])));
}

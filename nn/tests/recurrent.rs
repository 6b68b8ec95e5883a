//! The recurrent layers against PyTorch (`fixtures/recurrent.json`, written by
//! `bench/reference/recurrent_torch.py`): with PyTorch's parameters, loaded through their
//! state-dict names, a 2-layer GRU and LSTM, a 2-layer batch-first RNN, a relu RNN and a GRU
//! without biases give PyTorch's outputs, final states and gradients with respect to the input,
//! the initial state and every parameter, in f64. The cells pass the finite-difference check
//! and agree with one step of the sequence layers; bad shapes are refused with the shapes named.

use autograd::check::Tolerance;
use autograd::{Tape, Tensor, Var};
use nn::torch::StateDictMap;
use nn::{Bound, Gru, GruCell, Lstm, LstmCell, Nonlinearity, ParamId, ParamStore, RecurrentConfig, Rnn, RnnCell};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/recurrent.json");

fn tensor(v: &Value) -> Tensor<f64> {
    let shape: Vec<usize> =
        v["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().expect("dim") as usize).collect();
    let data: Vec<f64> = v["data"].as_array().expect("data").iter().map(|x| x.as_f64().expect("number")).collect();
    Tensor::from_vec(data, &shape)
}

/// Elements equal to within `1e-12` relative to the largest magnitude (f64 throughout; the sums
/// are ordered differently from PyTorch's).
fn assert_matches(what: &str, case: &str, actual: &Tensor<f64>, expected: &Tensor<f64>) {
    assert_eq!(actual.shape(), expected.shape(), "{case}: {what}: shapes differ");
    let scale = expected.data().iter().fold(1.0f64, |m, x| m.max(x.abs()));
    for (i, (a, e)) in actual.data().iter().zip(expected.data()).enumerate() {
        assert!((a - e).abs() <= 1e-12 * scale, "{case}: {what}[{i}]: {a} vs PyTorch's {e}");
    }
}

enum Layer {
    Rnn(Rnn),
    Gru(Gru),
    Lstm(Lstm),
}

#[test]
fn sequence_layers_match_pytorch_outputs_states_and_gradients() {
    let doc: Value = serde_json::from_str(FIXTURE).expect("fixture parses");
    let cases = doc["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 5);
    for case in cases {
        let name = case["name"].as_str().expect("name");
        let config = RecurrentConfig {
            num_layers: case["num_layers"].as_u64().expect("num_layers") as usize,
            bias: case["bias"].as_bool().expect("bias"),
            batch_first: case["batch_first"].as_bool().expect("batch_first"),
            nonlinearity: match case["nonlinearity"].as_str() {
                Some("relu") => Nonlinearity::Relu,
                _ => Nonlinearity::Tanh,
            },
        };
        let (input, hidden) =
            (case["input_size"].as_u64().unwrap() as usize, case["hidden_size"].as_u64().unwrap() as usize);
        let mut store = ParamStore::<f64>::with_seed(1);
        let scope = store.scope("layer");
        let (layer, stack) = match case["kind"].as_str().expect("kind") {
            "rnn" => {
                let l = Rnn::new(scope, input, hidden, config);
                let s = l.stack().clone();
                (Layer::Rnn(l), s)
            }
            "gru" => {
                let l = Gru::new(scope, input, hidden, config);
                let s = l.stack().clone();
                (Layer::Gru(l), s)
            }
            _ => {
                let l = Lstm::new(scope, input, hidden, config);
                let s = l.stack().clone();
                (Layer::Lstm(l), s)
            }
        };
        // PyTorch's parameters, by their state-dict names.
        let mut map = StateDictMap::new();
        map.recurrent("", &stack);
        let params = case["params"].as_object().expect("params");
        assert_eq!(map.entries().len(), params.len(), "{name}: the map names every PyTorch parameter");
        for e in map.entries() {
            let value = tensor(&params[&e.name]);
            assert_eq!(store.get(e.param).shape(), value.shape(), "{name}: {}", e.name);
            *store.get_mut(e.param) = value;
        }

        let tape = Tape::new();
        let p = store.bind(&tape);
        let x = tape.var(tensor(&case["x"]));
        let h0 = tape.var(tensor(&case["h0"]));
        let c0 = case.get("c0").map(|c| tape.var(tensor(c)));
        let (out, h_n, c_n) = match &layer {
            Layer::Rnn(l) => {
                let (o, h) = l.forward(&p, x, Some(h0));
                (o, h, None)
            }
            Layer::Gru(l) => {
                let (o, h) = l.forward(&p, x, Some(h0));
                (o, h, None)
            }
            Layer::Lstm(l) => {
                let (o, (h, c)) = l.forward(&p, x, Some((h0, c0.expect("LSTM case has c0"))));
                (o, h, Some(c))
            }
        };
        assert_matches("output", name, &out.value(), &tensor(&case["out"]));
        assert_matches("h_n", name, &h_n.value(), &tensor(&case["h_n"]));
        let mut loss =
            (out * tape.constant(tensor(&case["w_out"]))).sum() + (h_n * tape.constant(tensor(&case["w_h"]))).sum();
        if let Some(c_n) = c_n {
            assert_matches("c_n", name, &c_n.value(), &tensor(&case["c_n"]));
            loss = loss + (c_n * tape.constant(tensor(&case["w_c"]))).sum();
        }
        let expected_loss = case["loss"].as_f64().expect("loss");
        assert!((loss.item() - expected_loss).abs() <= 1e-12 * expected_loss.abs().max(1.0), "{name}: loss");
        let grads = loss.backward();
        assert_matches("grad of x", name, &grads[x], &tensor(&case["grad_x"]));
        assert_matches("grad of h0", name, &grads[h0], &tensor(&case["grad_h0"]));
        if let Some(c0) = c0 {
            assert_matches("grad of c0", name, &grads[c0], &tensor(&case["grad_c0"]));
        }
        let param_grads = p.grads(grads);
        let expected = case["grads"].as_object().expect("grads");
        for e in map.entries() {
            let g = param_grads.get(e.param).unwrap_or_else(|| panic!("{name}: no gradient for {}", e.name));
            assert_matches(&format!("grad of {}", e.name), name, g, &tensor(&expected[&e.name]));
        }
    }
}

/// Central differences of `f` with respect to every element of every parameter of `store`
/// against the analytic gradients (PyTorch's `gradcheck` tolerances, `Tolerance::default()`).
/// The inputs and states are parameters too, so one check covers them all.
fn finite_difference_check(
    what: &str,
    store: &mut ParamStore<f64>,
    f: impl for<'t> Fn(&Bound<'t, f64>) -> Var<'t, f64>,
) {
    let tol = Tolerance::default();
    let (_, analytic) = store.value_and_grad(0, |p| f(p));
    let ids: Vec<ParamId> = store.iter().map(|(id, _, _)| id).collect();
    for id in ids {
        let name = store.name(id).to_string();
        let g = analytic.get(id).unwrap_or_else(|| panic!("{what}: no gradient for {name}")).clone();
        for i in 0..g.numel() {
            let x0 = store.get(id).data()[i];
            let mut at = |x: f64| {
                store.get_mut(id).data_mut()[i] = x;
                let tape = Tape::new();
                let value = f(&store.bind(&tape)).item();
                value
            };
            let numeric = (at(x0 + tol.eps) - at(x0 - tol.eps)) / (2.0 * tol.eps);
            at(x0);
            let a = g.data()[i];
            assert!(
                (a - numeric).abs() <= tol.atol + tol.rtol * numeric.abs(),
                "{what}: d/d {name}[{i}]: analytic {a}, numeric {numeric}"
            );
        }
    }
}

/// A value in (−0.8, 0.8) for every element of `shape`, different for each `seed`.
fn filled(shape: &[usize], seed: f64) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    Tensor::from_vec((0..n).map(|i| ((i as f64 + 1.0) * seed).sin() * 0.8).collect(), shape)
}

#[test]
fn cells_match_finite_differences() {
    let (batch, input, hidden) = (2, 3, 2);
    for which in ["rnn_tanh", "rnn_relu", "gru", "lstm"] {
        let mut store = ParamStore::<f64>::with_seed(3);
        let x = store.add("x", filled(&[batch, input], 0.7));
        let h = store.add("h", filled(&[batch, hidden], 1.3));
        let c = store.add("c", filled(&[batch, hidden], 2.1));
        let s = store.scope("cell");
        match which {
            "rnn_tanh" => {
                let cell = RnnCell::new(s, input, hidden);
                finite_difference_check(which, &mut store, |p| {
                    let h = cell.forward(p, p.get(x), p.get(h));
                    (h * h).sum() + p.get(c).sum()
                });
            }
            "rnn_relu" => {
                let cell = RnnCell::with_nonlinearity(s, input, hidden, Nonlinearity::Relu);
                finite_difference_check(which, &mut store, |p| {
                    let h = cell.forward(p, p.get(x), p.get(h));
                    (h * h).sum() + p.get(c).sum()
                });
            }
            "gru" => {
                let cell = GruCell::new(s, input, hidden);
                finite_difference_check(which, &mut store, |p| {
                    let h = cell.forward(p, p.get(x), p.get(h));
                    (h * h).sum() + p.get(c).sum()
                });
            }
            _ => {
                let cell = LstmCell::new(s, input, hidden);
                finite_difference_check(which, &mut store, |p| {
                    let (h, c) = cell.forward(p, p.get(x), (p.get(h), p.get(c)));
                    (h * h).sum() + (c * c * c).sum()
                });
            }
        }
    }
}

#[test]
fn a_two_layer_lstm_matches_finite_differences() {
    let mut store = ParamStore::<f64>::with_seed(5);
    let x = store.add("x", filled(&[3, 2, 2], 0.9));
    let lstm = Lstm::new(
        store.scope("lstm"),
        2,
        3,
        RecurrentConfig { num_layers: 2, batch_first: true, ..Default::default() },
    );
    finite_difference_check("lstm", &mut store, |p| {
        let (out, (h, c)) = lstm.forward(p, p.get(x), None);
        (out * out).sum() + h.sum() + (c * c).sum()
    });
}

#[test]
fn a_cell_step_is_one_step_of_the_sequence_layer() {
    let mut store = ParamStore::<f64>::with_seed(7);
    let gru = Gru::new(store.scope("gru"), 3, 4, RecurrentConfig::default());
    // A cell over the same parameters: the names differ only by the layer suffix `_l0`.
    let c = gru.stack().layers[0];
    let tape = Tape::new();
    let p = store.bind(&tape);
    let x = tape.constant(filled(&[1, 2, 3], 0.3));
    let h0 = tape.constant(filled(&[1, 2, 4], 0.5));
    let (out, h_n) = gru.forward(&p, x, Some(h0));
    let mut cell_store = ParamStore::<f64>::with_seed(99);
    let cell = GruCell::new(cell_store.scope("cell"), 3, 4);
    let cp = *cell.params();
    for (from, to) in [(c.weight_ih, cp.weight_ih), (c.weight_hh, cp.weight_hh)]
        .into_iter()
        .chain([(c.bias_ih.unwrap(), cp.bias_ih.unwrap()), (c.bias_hh.unwrap(), cp.bias_hh.unwrap())])
    {
        *cell_store.get_mut(to) = store.get(from).clone();
    }
    let cell_tape = Tape::new();
    let cp_bound = cell_store.bind(&cell_tape);
    let h = cell.forward(
        &cp_bound,
        cell_tape.constant(filled(&[1, 2, 3], 0.3).reshape(&[2, 3])),
        cell_tape.constant(filled(&[1, 2, 4], 0.5).reshape(&[2, 4])),
    );
    assert_eq!(h.value().to_vec(), out.value().to_vec());
    assert_eq!(h.value().to_vec(), h_n.value().to_vec());
}

#[test]
fn bad_shapes_are_refused_with_the_shapes_named() {
    let message = |f: &dyn Fn()| {
        let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("must panic");
        e.downcast_ref::<String>().cloned().unwrap_or_default()
    };
    let mut store = ParamStore::<f64>::with_seed(0);
    let lstm = Lstm::new(store.scope("lstm"), 3, 4, RecurrentConfig { num_layers: 2, ..Default::default() });
    let cell = GruCell::new(store.scope("cell"), 3, 4);
    let m = message(&|| {
        let tape = Tape::new();
        let p = store.bind(&tape);
        lstm.forward(&p, tape.constant(Tensor::zeros(&[5, 2, 4])), None);
    });
    assert!(m.contains("LSTM: input has shape [5, 2, 4], expected (seq_len, batch, input_size = 3)"), "{m}");
    let m = message(&|| {
        let tape = Tape::new();
        let p = store.bind(&tape);
        let h = tape.constant(Tensor::zeros(&[1, 2, 4]));
        lstm.forward(&p, tape.constant(Tensor::zeros(&[5, 2, 3])), Some((h, h)));
    });
    assert!(
        m.contains("initial state h0 has shape [1, 2, 4], expected (num_layers = 2, batch = 2, hidden_size = 4)"),
        "{m}"
    );
    let m = message(&|| {
        let tape = Tape::new();
        let p = store.bind(&tape);
        cell.forward(&p, tape.constant(Tensor::zeros(&[2, 3])), tape.constant(Tensor::zeros(&[3, 4])));
    });
    assert!(m.contains("GRU: state h has shape [3, 4], expected (batch = 2, hidden_size = 4)"), "{m}");
    let m = message(&|| {
        let mut s = ParamStore::<f64>::default();
        Gru::new(s.scope("g"), 3, 4, RecurrentConfig { num_layers: 0, ..Default::default() });
    });
    assert!(m.contains("num_layers must be at least 1"), "{m}");
}

//! BatchNorm1d and BatchNorm2d against PyTorch (`bench/reference/batchnorm_torch.py` wrote
//! `fixtures/batchnorm_torch.json`): the training-mode output and gradients, the running
//! statistics after three steps and the evaluation-mode output; and the running statistics as
//! buffers: no gradient, untouched by the optimizer's update, saved and loaded by name.

use autograd::Tensor;
use nn::{Adam, AdamConfig, BatchNorm, BatchNorm1d, BatchNorm2d, Optimizer, ParamStore};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/batchnorm_torch.json");

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().expect("an array").iter().map(|x| x.as_f64().expect("a number")).collect()
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-10 * (1.0 + w.abs()), "{what}[{i}]: pente {g}, PyTorch {w}");
    }
}

/// A layer of the case's kind over `channels` in `store`'s scope `bn`.
fn layer(name: &str, store: &mut ParamStore<f64>, channels: usize) -> BatchNorm {
    if name.contains("2d") {
        BatchNorm2d::new(store.scope("bn"), channels).0
    } else {
        BatchNorm1d::new(store.scope("bn"), channels).0
    }
}

#[test]
fn batch_norm_matches_pytorch_in_training_and_evaluation() {
    let fixture: Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    let cases = fixture["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().expect("a name");
        let shape: Vec<usize> = floats(&case["shape"]).iter().map(|&d| d as usize).collect();
        let mut store = ParamStore::<f64>::with_seed(0);
        let bn = layer(name, &mut store, shape[1]);
        let (w, b) = (bn.weight.expect("affine"), bn.bias.expect("affine"));
        store.set(w, Tensor::from(floats(&case["weight"])));
        store.set(b, Tensor::from(floats(&case["bias"])));
        for (k, step) in case["steps"].as_array().expect("steps").iter().enumerate() {
            let x = Tensor::from_vec(floats(&step["x"]), &shape);
            let r = Tensor::from_vec(floats(&step["r"]), &shape);
            let tape = autograd::Tape::new();
            let p = store.bind(&tape);
            let xv = tape.var(x);
            let out = bn.forward(&p, xv);
            let y = out.value();
            let all = (out * tape.constant(r)).sum().backward();
            let grad_x = all[xv].clone();
            let grads = p.grads(all);
            drop(p);
            let what = format!("{name} step {k}");
            assert_close(y.data(), &floats(&step["y"]), &format!("{what}: y"));
            assert_close(grad_x.data(), &floats(&step["grad_x"]), &format!("{what}: ∂/∂x"));
            assert_close(grads.get(w).expect("∂/∂w").data(), &floats(&step["grad_weight"]), &format!("{what}: ∂/∂w"));
            assert_close(grads.get(b).expect("∂/∂b").data(), &floats(&step["grad_bias"]), &format!("{what}: ∂/∂b"));
            for buffer in [bn.running_mean, bn.running_var, bn.num_batches_tracked] {
                assert!(grads.get(buffer).is_none(), "{what}: a buffer got a gradient");
            }
            store.update_buffers(&grads);
        }
        assert_close(
            store.get(bn.running_mean).data(),
            &floats(&case["running_mean"]),
            &format!("{name}: running_mean"),
        );
        assert_close(store.get(bn.running_var).data(), &floats(&case["running_var"]), &format!("{name}: running_var"));
        assert_eq!(store.get(bn.num_batches_tracked).item(), case["num_batches_tracked"].as_f64().expect("a count"));
        let tape = autograd::Tape::new();
        let p = store.bind(&tape).eval();
        let x = tape.constant(Tensor::from_vec(floats(&case["x_eval"]), &shape));
        assert_close(bn.forward(&p, x).value().data(), &floats(&case["y_eval"]), &format!("{name}: evaluation"));
    }
}

#[test]
fn running_statistics_are_buffers_that_the_optimizer_updates_only_from_the_step() {
    let mut store = ParamStore::<f64>::with_seed(0);
    let bn = BatchNorm2d::new(store.scope("bn"), 2);
    let names: Vec<&str> = store.names().collect();
    assert_eq!(names, ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]);
    assert_eq!(store.num_params(), 4, "buffers are not parameters");
    assert!(store.is_buffer(bn.0.running_var) && !store.is_buffer(bn.0.weight.expect("affine")));
    let x = Tensor::from_vec((0..16).map(|i| (i * i % 7) as f64).collect(), &[2, 2, 2, 2]);
    let mut opt = Adam::new(AdamConfig { lr: 0.1, ..Default::default() });
    let (_, grads) = store.value_and_grad(0, |p| bn.forward(p, p.tape().constant(x.clone())).powi(3).sum());
    // Adam moves every parameter with a gradient by about lr; a buffer moved by lr would be wrong.
    opt.step(&mut store, &grads);
    assert_eq!(store.get(bn.0.num_batches_tracked).item(), 1.0, "the step stored the buffers");
    let mean: Vec<f64> = store.get(bn.0.running_mean).to_vec();
    let x0: Vec<f64> = (0..2).flat_map(|n| x.data()[n * 8..n * 8 + 4].to_vec()).collect();
    let want = 0.1 * x0.iter().sum::<f64>() / 8.0;
    assert!((mean[0] - want).abs() < 1e-12, "running_mean[0] = {}, want {want}", mean[0]);
    // Evaluation mode records nothing.
    let tape = autograd::Tape::new();
    let p = store.bind(&tape).eval();
    let y = bn.forward(&p, tape.constant(x.clone()));
    let grads = p.backward(y.sum());
    assert_eq!(grads.buffer_updates().count(), 0);
    let y_eval = y.value();
    drop(p);
    // Saved and loaded by name, the running statistics give the same evaluation output.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("bn.ckpt");
    store.save(&path).expect("saved");
    let mut fresh = ParamStore::<f64>::with_seed(5);
    let bn2 = BatchNorm2d::new(fresh.scope("bn"), 2);
    fresh.load(&path).expect("loaded");
    assert_eq!(fresh.get(bn2.0.running_mean), store.get(bn.0.running_mean));
    assert_eq!(fresh.get(bn2.0.num_batches_tracked).item(), 1.0);
    let tape = autograd::Tape::new();
    let p = fresh.bind(&tape).eval();
    assert_eq!(bn2.forward(&p, tape.constant(x)).value(), y_eval);
}

//! RmsProp, Adagrad and Lion against PyTorch (`fixtures/optim.json`, written by
//! `bench/reference/optim_torch.py`): 20 steps on a fixed quadratic give PyTorch's parameters
//! to 1e-12 in f64 (Lion against the reference update in plain torch ops); a run saved to a
//! checkpoint after 10 steps, loaded and run 10 more ends bit for bit where the uninterrupted run
//! does. OneCycleLr and the linear decay give torch's OneCycleLR, LinearLR and SequentialLR
//! rates. Accumulating micro-batches' gradients gives the whole batch's step.

use autograd::Tensor;
use nn::{
    Accumulate, Adagrad, AdagradConfig, Anneal, Checkpoint, Decay, Linear, Lion, LionConfig, LrSchedule, OneCycleLr,
    Optimizer, ParamGrads, ParamId, ParamStore, RmsProp, RmsPropConfig, Sgd, SgdConfig,
};
use serde_json::Value;

const FIXTURE: &str = include_str!("fixtures/optim.json");

fn doc() -> Value {
    serde_json::from_str(FIXTURE).expect("fixture parses")
}

fn tensor(v: &Value) -> Tensor<f64> {
    let shape: Vec<usize> =
        v["shape"].as_array().expect("shape").iter().map(|d| d.as_u64().expect("dim") as usize).collect();
    let data: Vec<f64> = v["data"].as_array().expect("data").iter().map(|x| x.as_f64().expect("number")).collect();
    Tensor::from_vec(data, &shape)
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} is a number"))
}

/// The fixture's problem: parameters `w` (2, 3) and `b` (3), gradient a·(p − c) of
/// ½·Σ a·(p − c)², computed element by element as the script does.
struct Problem {
    store: ParamStore<f64>,
    ids: [ParamId; 2],
    a: [Tensor<f64>; 2],
    c: [Tensor<f64>; 2],
}

impl Problem {
    fn new(doc: &Value) -> Self {
        let mut store = ParamStore::default();
        let ids = ["w", "b"].map(|k| store.add(k, tensor(&doc["init"][k])));
        Problem { store, ids, a: ["w", "b"].map(|k| tensor(&doc["a"][k])), c: ["w", "b"].map(|k| tensor(&doc["c"][k])) }
    }

    fn grads(&self) -> ParamGrads<f64> {
        ParamGrads::from_vec(
            (0..2)
                .map(|i| {
                    let p = self.store.get(self.ids[i]);
                    let g: Vec<f64> = p
                        .data()
                        .iter()
                        .zip(self.a[i].data())
                        .zip(self.c[i].data())
                        .map(|((p, a), c)| a * (p - c))
                        .collect();
                    Some(Tensor::from_vec(g, p.shape()))
                })
                .collect(),
        )
    }

    fn run(&mut self, opt: &mut dyn Optimizer<f64>, steps: usize) {
        for _ in 0..steps {
            let g = self.grads();
            opt.step(&mut self.store, &g);
        }
    }

    fn values(&self) -> Vec<Vec<f64>> {
        self.ids.iter().map(|id| self.store.get(*id).to_vec()).collect()
    }
}

fn assert_matches_torch(what: &str, p: &Problem, expected: &Value) {
    for (k, id) in ["w", "b"].iter().zip(p.ids) {
        let want = tensor(&expected[k]);
        for (i, (a, e)) in p.store.get(id).data().iter().zip(want.data()).enumerate() {
            assert!((a - e).abs() <= 1e-12, "{what}: {k}[{i}] = {a}, PyTorch {e}");
        }
    }
}

/// 20 uninterrupted steps match PyTorch; 10 steps, a checkpoint through bytes, a fresh optimizer
/// restored from it and 10 more give the same bits as the uninterrupted run.
fn check(what: &str, doc: &Value, expected: &Value, make: &dyn Fn() -> Box<dyn Optimizer<f64>>) {
    let mut whole = Problem::new(doc);
    whole.run(make().as_mut(), 20);
    assert_matches_torch(what, &whole, expected);

    let mut first = Problem::new(doc);
    let mut opt = make();
    first.run(opt.as_mut(), 10);
    let bytes = Checkpoint::from_store(&first.store).with_optimizer(opt.as_ref(), &first.store).to_bytes();
    drop((first, opt));
    let saved = Checkpoint::from_bytes(&bytes).expect("checkpoint decodes");
    let mut resumed = Problem::new(doc);
    saved.load_into(&mut resumed.store, true).expect("parameters load");
    let mut opt = make();
    saved.restore_optimizer(opt.as_mut(), &resumed.store).expect("optimizer state loads");
    assert_eq!(opt.steps(), 10, "{what}: step count restored");
    resumed.run(opt.as_mut(), 10);
    assert_eq!(resumed.values(), whole.values(), "{what}: resumed run differs from the uninterrupted one");
}

#[test]
fn rmsprop_matches_pytorch_and_resumes_exactly() {
    let doc = doc();
    for case in doc["rmsprop"].as_array().expect("rmsprop cases") {
        let h = &case["config"];
        let config = RmsPropConfig {
            lr: f(h, "lr"),
            alpha: f(h, "alpha"),
            eps: f(h, "eps"),
            weight_decay: f(h, "weight_decay"),
            momentum: f(h, "momentum"),
            centered: h["centered"].as_bool().expect("centered"),
        };
        check(&format!("rmsprop {config:?}"), &doc, &case["final"], &|| Box::new(RmsProp::new(config)));
    }
}

#[test]
fn adagrad_matches_pytorch_and_resumes_exactly() {
    let doc = doc();
    for case in doc["adagrad"].as_array().expect("adagrad cases") {
        let h = &case["config"];
        let config = AdagradConfig {
            lr: f(h, "lr"),
            lr_decay: f(h, "lr_decay"),
            weight_decay: f(h, "weight_decay"),
            initial_accumulator_value: f(h, "initial_accumulator_value"),
            eps: f(h, "eps"),
        };
        check(&format!("adagrad {config:?}"), &doc, &case["final"], &|| Box::new(Adagrad::new(config)));
    }
}

#[test]
fn lion_matches_the_reference_update_and_resumes_exactly() {
    let doc = doc();
    for case in doc["lion"].as_array().expect("lion cases") {
        let h = &case["config"];
        let config = LionConfig {
            lr: f(h, "lr"),
            beta1: f(h, "beta1"),
            beta2: f(h, "beta2"),
            weight_decay: f(h, "weight_decay"),
        };
        check(&format!("lion {config:?}"), &doc, &case["final"], &|| Box::new(Lion::new(config)));
    }
}

#[test]
fn a_state_of_another_kind_is_refused() {
    let doc = doc();
    let mut p = Problem::new(&doc);
    let mut lion = Lion::new(LionConfig::default());
    p.run(&mut lion, 1);
    let state = lion.state(&p.store);
    let err = RmsProp::new(RmsPropConfig::default()).load_state(&p.store, &state).expect_err("kind differs");
    assert!(err.to_string().contains("saved by a `lion` optimizer, loading into `rmsprop`"), "{err}");
    assert!(Adagrad::new(AdagradConfig::default()).load_state(&p.store, &state).is_err());
}

fn assert_rates(what: &str, ours: impl Fn(u64) -> f64, torch: &Value) {
    for (step, want) in torch.as_array().expect("rates").iter().enumerate() {
        let (a, e) = (ours(step as u64), want.as_f64().expect("rate"));
        assert!((a - e).abs() <= 1e-12 * e.abs().max(1e-300), "{what}: step {step}: {a}, torch {e}");
    }
}

#[test]
fn one_cycle_matches_torch_one_cycle_lr() {
    let doc = doc();
    for case in doc["one_cycle"].as_array().expect("one_cycle cases") {
        let h = &case["config"];
        let s = OneCycleLr {
            max_lr: f(h, "max_lr"),
            total_steps: h["total_steps"].as_u64().expect("total_steps"),
            pct_start: f(h, "pct_start"),
            div_factor: f(h, "div_factor"),
            final_div_factor: f(h, "final_div_factor"),
            anneal: if h["anneal_strategy"] == "linear" { Anneal::Linear } else { Anneal::Cos },
            three_phase: h["three_phase"].as_bool().expect("three_phase"),
        };
        assert_rates(&format!("{s:?}"), |i| s.lr(i), &case["lrs"]);
    }
}

#[test]
fn one_cycle_defaults_are_torchs_and_a_phase_without_steps_is_refused() {
    let s = OneCycleLr::new(0.1, 50);
    assert_eq!(
        (s.pct_start, s.div_factor, s.final_div_factor, s.anneal, s.three_phase),
        (0.3, 25.0, 1e4, Anneal::Cos, false)
    );
    let e = std::panic::catch_unwind(|| OneCycleLr::new(1.0, 3).lr(0)).expect_err("0.3·3 − 1 < 0");
    let m = e.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(m.contains("OneCycleLr: pct_start = 0.3 of total_steps = 3 leaves a phase without steps"), "{m}");
}

#[test]
fn linear_decay_matches_torch_linear_lr_and_sequential_warmup() {
    let doc = doc();
    // LinearLR decaying from the base rate: a linear decay without warm-up.
    let decaying = &doc["linear"][0];
    let h = &decaying["config"];
    assert_eq!(f(h, "start_factor"), 1.0);
    let base = f(h, "base_lr");
    let s = LrSchedule {
        base_lr: base,
        warmup_steps: 0,
        decay: Decay::Linear { total_steps: h["total_iters"].as_u64().unwrap(), min_lr: base * f(h, "end_factor") },
    };
    assert_rates("LinearLR decay", |i| s.lr(i), &decaying["lrs"]);
    // LinearLR rising from a quarter over 3 steps: the warm-up of 4 steps with a constant rate after.
    let rising = &doc["linear"][1];
    let s = LrSchedule { base_lr: f(&rising["config"], "base_lr"), warmup_steps: 4, decay: Decay::Constant };
    assert_rates("LinearLR warm-up", |i| s.lr(i), &rising["lrs"]);
    // nanoGPT's warm-up and linear decay to a floor = SequentialLR of the two LinearLRs.
    let h = &doc["warmup_linear"]["config"];
    let s = LrSchedule {
        base_lr: f(h, "base_lr"),
        warmup_steps: h["warmup_steps"].as_u64().unwrap(),
        decay: Decay::Linear { total_steps: h["total_steps"].as_u64().unwrap(), min_lr: f(h, "min_lr") },
    };
    assert_rates("warm-up + linear decay", |i| s.lr(i), &doc["warmup_linear"]["lrs"]);
}

#[test]
fn accumulated_micro_batches_give_the_whole_batchs_step() {
    // A linear layer's mean squared error on 8 rows, as one batch or as 4 micro-batches of 2.
    let mut store = ParamStore::<f64>::with_seed(11);
    let fc = Linear::new(store.scope("fc"), 3, 2);
    let x = Tensor::from_vec((0..24).map(|i| (i as f64 * 0.73).sin()).collect(), &[8, 3]);
    let y = Tensor::from_vec((0..16).map(|i| (i as f64 * 1.31).cos()).collect(), &[8, 2]);
    let loss = |store: &ParamStore<f64>, rows: std::ops::Range<usize>| {
        let (xs, ys) = (rows_of(&x, rows.clone()), rows_of(&y, rows));
        store.value_and_grad(0, |p| {
            let t = p.tape();
            let d = fc.forward(p, t.constant(xs)) - t.constant(ys);
            (d * d).mean()
        })
    };
    let mut whole = store.clone();
    let (_, g) = loss(&whole, 0..8);
    let mut opt = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() });
    opt.step(&mut whole, &g);

    let mut acc = Accumulate::new(4);
    let mut opt = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() });
    for k in 0..4 {
        let (_, g) = loss(&store, 2 * k..2 * k + 2);
        let mean = acc.add(&g);
        assert_eq!(mean.is_some(), k == 3, "the mean comes after the fourth micro-batch only");
        assert_eq!(acc.pending(), (k + 1) % 4);
        if let Some(mean) = mean {
            opt.step(&mut store, &mean);
        }
    }
    for ((_, name, a), (_, _, b)) in store.iter().zip(whole.iter()) {
        for (i, (a, b)) in a.data().iter().zip(b.data()).enumerate() {
            assert!((a - b).abs() <= 1e-12, "{name}[{i}]: accumulated {a}, whole batch {b}");
        }
    }
}

fn rows_of(t: &Tensor<f64>, rows: std::ops::Range<usize>) -> Tensor<f64> {
    let cols = t.shape()[1];
    Tensor::from_vec(t.data()[rows.start * cols..rows.end * cols].to_vec(), &[rows.len(), cols])
}

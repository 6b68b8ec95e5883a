//! Optimizers reach the known minimum of a quadratic, update in place, and train a small net.

use autograd::{Tape, Tensor};
use nn::{
    clip_grad_norm, loss, Activation, Adam, AdamConfig, AdamW, Decay, LrSchedule, Mlp, Optimizer, ParamStore, Sgd,
    SgdConfig,
};

/// f(w) = Σ aᵢ (wᵢ − cᵢ)², minimum at w = c.
fn quadratic_min(opt: &mut dyn Optimizer<f64>, steps: usize) -> Vec<f64> {
    let mut store = ParamStore::<f64>::default();
    let w = store.add("w", Tensor::from(vec![5.0, -3.0, 0.0]));
    let a = Tensor::from(vec![1.0, 3.0, 0.5]);
    let c = Tensor::from(vec![1.0, 2.0, -1.0]);
    for _ in 0..steps {
        let (_, grads) = store.value_and_grad(0, |p| {
            let t = p.tape();
            let d = p.get(w) - t.constant(c.clone());
            (t.constant(a.clone()) * d * d).sum()
        });
        opt.step(&mut store, &grads);
    }
    store.get(w).to_vec()
}

fn assert_near(w: &[f64], tol: f64, what: &str) {
    for (x, c) in w.iter().zip([1.0, 2.0, -1.0]) {
        assert!((x - c).abs() < tol, "{what}: {w:?}");
    }
}

#[test]
fn every_optimizer_reaches_the_minimum_of_a_quadratic() {
    let sgd = |momentum, nesterov| Sgd::new(SgdConfig { lr: 0.05, momentum, nesterov, ..Default::default() });
    assert_near(&quadratic_min(&mut sgd(0.0, false), 300), 1e-6, "sgd");
    assert_near(&quadratic_min(&mut sgd(0.9, false), 300), 1e-6, "momentum");
    assert_near(&quadratic_min(&mut sgd(0.9, true), 300), 1e-6, "nesterov");
    let cfg = AdamConfig { lr: 0.05, ..Default::default() };
    assert_near(&quadratic_min(&mut Adam::new(cfg), 2000), 1e-3, "adam");
    // A tiny decoupled decay moves the minimum only slightly.
    assert_near(&quadratic_min(&mut AdamW::new(AdamConfig { weight_decay: 1e-4, ..cfg }), 2000), 1e-2, "adamw");
}

#[test]
fn the_step_updates_the_stores_tensors_in_place() {
    let mut store = ParamStore::<f32>::with_seed(0);
    let mlp = Mlp::new(store.scope("mlp"), &[4, 64, 1], Activation::Relu);
    let x = Tensor::ones(&[2, 4]);
    let mut opt = Adam::new(AdamConfig::default());
    let ptrs = |s: &ParamStore<f32>| s.iter().map(|(_, _, t)| t.data().as_ptr() as usize).collect::<Vec<_>>();
    for step in 0..3 {
        let (_, grads) = store.value_and_grad(0, |p| mlp.forward(p, p.tape().constant(x.clone())).sum());
        let before = ptrs(&store);
        opt.step(&mut store, &grads);
        assert_eq!(before, ptrs(&store), "step {step} reallocated a parameter");
    }
}

#[test]
fn clipping_then_stepping_bounds_the_update() {
    let mut store = ParamStore::<f64>::default();
    let w = store.add("w", Tensor::from(vec![0.0, 0.0]));
    let (_, mut grads) =
        store.value_and_grad(0, |p| (p.get(w) * p.tape().constant(Tensor::from(vec![30.0, 40.0]))).sum());
    assert_eq!(clip_grad_norm(&mut grads, 5.0), 50.0);
    Sgd::new(SgdConfig { lr: 1.0, ..Default::default() }).step(&mut store, &grads);
    let moved = store.get(w).norm();
    assert!((moved - 5.0).abs() < 1e-6, "{moved}");
}

#[test]
fn a_schedule_drives_the_optimizers_rate() {
    let sched = LrSchedule { base_lr: 0.1, warmup_steps: 2, decay: Decay::Step { every: 1, gamma: 0.5 } };
    let mut store = ParamStore::<f64>::default();
    let w = store.add("w", Tensor::scalar(0.0));
    let mut opt = Sgd::new(SgdConfig::default());
    let mut lrs = Vec::new();
    for _ in 0..4 {
        lrs.push(sched.apply(&mut opt));
        let g = nn::ParamGrads::from_vec(vec![Some(Tensor::scalar(-1.0))]);
        opt.step(&mut store, &g);
    }
    assert_eq!(lrs, [0.05, 0.1, 0.1, 0.05]);
    assert!((store.get(w).item() - 0.3).abs() < 1e-12);
}

#[test]
fn an_mlp_learns_xor() {
    let mut store = ParamStore::<f32>::with_seed(3);
    let mlp = Mlp::new(store.scope("mlp"), &[2, 16, 2], Activation::Tanh);
    let x = Tensor::from_vec(vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0], &[4, 2]);
    let y = [0usize, 1, 1, 0];
    let mut opt = Adam::new(AdamConfig { lr: 0.05, ..Default::default() });
    let mut first = None;
    let mut last = 0.0;
    for _ in 0..300 {
        let (l, grads) =
            store.value_and_grad(0, |p| loss::cross_entropy(mlp.forward(p, p.tape().constant(x.clone())), &y));
        first.get_or_insert(l);
        last = l;
        opt.step(&mut store, &grads);
    }
    assert!(last < 0.05 && last < first.expect("ran") / 10.0, "{first:?} → {last}");
    let tape = Tape::new();
    let logits = mlp.forward(&store.bind(&tape), tape.constant(x)).value();
    assert_eq!(loss::accuracy(&logits, &y), 1.0);
}

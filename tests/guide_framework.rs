//! The answers to the exercises of the guide's framework chapters (`docs/guide/src/`), one test
//! per chapter, and a check that the tape chapter's DOT text is the source of its picture.
//! Try each exercise before reading its test.

use std::panic::{catch_unwind, AssertUnwindSafe};

use autograd::check::{check_gradients, check_second_order, Tolerance};
use autograd::{Float, Op, Tape, Tensor, Var};
use nn::{loss, Activation, Checkpoint, Error, Linear, Mlp, Optimizer, ParamStore, Sgd, SgdConfig};

/// Chapter "The tape and how backward works" (`tape.md`): `f(x, y) = x·y + x²·y` at (2, 5).
#[test]
fn tape_exercise() {
    let tape = Tape::<f64>::new();
    let x = tape.var(2.0);
    let y = tape.var(5.0);
    let xx = x * x;
    let f = x * y + xx * y;

    // 1. Six nodes: the two leaves, x·x, x·y, (x·x)·y and the sum.
    let ops: Vec<&str> = tape.nodes().iter().map(|n| n.name).collect();
    assert_eq!(ops, ["var", "var", "mul", "mul", "mul", "add"]);

    // 2. x reaches f three times (x·y, and twice through x·x), so its gradient has three
    //    contributions: y = 5 from x·y, and x·(∂f/∂(x·x)) = 2·5 = 10 from each side of x·x.
    let grads = f.backward();
    assert_eq!(grads[xx].item(), 5.0); // ∂f/∂(x·x) = y
    assert_eq!(grads[x].item(), 25.0); // y + 2xy
    assert_eq!(grads[y].item(), 6.0); // x + x²
    assert_eq!(tape.len(), 6, "a plain backward leaves the tape as it was");

    // 3. ∂²f/∂x² = 2y = 10, by differentiating the recorded gradient once more.
    let dfdx = tape.grad(f, &[x])[0];
    let d2fdx2 = tape.grad(dfdx, &[x])[0];
    assert_eq!(d2fdx2.item(), 10.0);
    assert!(tape.len() > 6, "tape.grad records the gradient's computation");
}

/// `log_cosh(x) = ln(cosh x)`, whose derivative is `tanh x`.
struct LogCosh;

impl<T: Float> Op<T> for LogCosh {
    fn name(&self) -> &'static str {
        "log_cosh"
    }

    // ln cosh x = |x| + ln(1 + e^(−2|x|)) − ln 2: no overflow for large |x|.
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let ln2 = T::from_f64(std::f64::consts::LN_2);
        inputs[0].map(|x| x.abs() + (T::from_f64(-2.0) * x.abs()).exp().ln_1p() - ln2)
    }

    // d ln cosh x / dx = tanh x, written with a Var op so that it is differentiable again.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out * inputs[0].tanh())]
    }
}

fn log_cosh<'t, T: Float>(x: Var<'t, T>) -> Var<'t, T> {
    x.tape().apply(LogCosh, &[x])
}

/// Chapter "Writing a custom layer and a custom op" (`custom-layers-and-ops.md`): the log-cosh
/// op, checked, then used as a regression loss.
#[test]
fn custom_layers_and_ops_exercise() {
    // Values: ln cosh 0 = 0, ln cosh 1 = 0.43378…, and no overflow at 1000 (≈ 1000 − ln 2).
    let tape = Tape::<f64>::new();
    let x = tape.var(Tensor::from_vec(vec![0.0, 1.0, -1000.0], &[3]));
    let y = log_cosh(x).value();
    assert_eq!(y.data()[0], 0.0);
    assert!((y.data()[1] - 1f64.cosh().ln()).abs() < 1e-15);
    assert!((y.data()[2] - (1000.0 - std::f64::consts::LN_2)).abs() < 1e-9);
    assert_eq!(log_cosh(x).op_name(), "log_cosh");

    // First and second order against finite differences.
    let points = [Tensor::from_vec(vec![-2.0, -0.5, 0.0, 0.3, 1.7], &[5])];
    fn f<'t>(v: &[Var<'t, f64>]) -> Var<'t, f64> {
        log_cosh(v[0]).exp().mean()
    }
    check_gradients(f, &points, Tolerance::default()).expect("first order");
    check_second_order(f, &points, Tolerance::default()).expect("second order");

    // As a loss: mean(log_cosh(prediction − target)) for a Linear layer fitting y = 3x − 1;
    // 200 steps of SGD bring it well below where it starts.
    let mut store = ParamStore::<f32>::with_seed(0);
    let fc = Linear::new(store.scope("fc"), 1, 1);
    let xs = Tensor::from_vec((0..16).map(|i| i as f32 / 8.0 - 1.0).collect(), &[16, 1]);
    let ys = xs.map(|x| 3.0 * x - 1.0);
    let mut opt = Sgd::new(SgdConfig { lr: 0.5, ..Default::default() });
    let mut losses = vec![];
    for step in 0..200 {
        let (l, grads) = store.value_and_grad(step, |p| {
            let t = p.tape();
            log_cosh(fc.forward(p, t.constant(xs.clone())) - t.constant(ys.clone())).mean()
        });
        opt.step(&mut store, &grads);
        losses.push(l);
    }
    assert!(losses[199] < 1e-3 * losses[0], "log-cosh loss {} -> {}", losses[0], losses[199]);
    let w = store.get(fc.weight).item();
    assert!((w - 3.0).abs() < 0.05, "weight {w}");
}

/// Chapter "Inspecting and debugging gradients" (`debugging-gradients.md`): a softmax written
/// as `exp(x) / Σ exp(x)` overflows for x = [1000, 0]; anomaly mode names the op, and
/// subtracting the maximum first fixes it.
#[test]
fn debugging_gradients_exercise() {
    fn naive_softmax<'t>(x: Var<'t, f64>) -> Var<'t, f64> {
        x.exp() / x.exp().sum()
    }
    fn stable_softmax<'t>(x: Var<'t, f64>) -> Var<'t, f64> {
        let z = x - x.max().detach(); // softmax(x − c) = softmax(x) for any constant c
        z.exp() / z.exp().sum()
    }
    let logits = Tensor::from_vec(vec![1000.0, 0.0], &[2]);

    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(logits.clone());
    let report = catch_unwind(AssertUnwindSafe(|| naive_softmax(x)));
    let message = *report.expect_err("anomaly mode stops at the overflow").downcast::<String>().expect("a message");
    assert!(message.contains("`exp` produced a non-finite value"), "{message}");
    assert!(message.contains("inputs of shapes [[2]], all finite"), "{message}");
    assert!(message.contains("guide_framework.rs"), "{message}");

    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(logits);
    let p = stable_softmax(x);
    assert_eq!(p.value().data(), &[1.0, 0.0]);
    let grads = (p * tape.constant(Tensor::from_vec(vec![1.0, 2.0], &[2]))).sum().backward();
    assert!(grads[x].all_finite());
    autograd::check::assert_close(&p.value(), &x.softmax(-1).value(), 0.0, 1e-15);
}

/// Chapter "Saving, resuming and exporting weights" (`saving.md`): a checkpoint of an MLP
/// 2 → 8 → 1 loaded into one widened to 2 → 16 → 1.
#[test]
fn saving_exercise() {
    let mut small = ParamStore::<f32>::with_seed(0);
    Mlp::new(small.scope("mlp"), &[2, 8, 1], Activation::Tanh);
    let bytes = Checkpoint::from_store(&small).with_step(100).to_bytes();

    let mut wide = ParamStore::<f32>::with_seed(0);
    Mlp::new(wide.scope("mlp"), &[2, 16, 1], Activation::Tanh);
    let ckpt = Checkpoint::from_bytes(&bytes).expect("a valid checkpoint");

    // Strict: an error listing the three tensors whose shape changed, and nothing loaded.
    let before = wide.clone();
    let Err(Error::Mismatch(report)) = ckpt.load_into(&mut wide, true) else {
        panic!("strict loading must fail with Error::Mismatch");
    };
    let mis: Vec<(&str, &[usize], &[usize])> =
        report.mismatched.iter().map(|m| (m.name.as_str(), m.expected.as_slice(), m.found.as_slice())).collect();
    assert_eq!(
        mis,
        [
            ("mlp.0.weight", &[2, 16][..], &[2, 8][..]),
            ("mlp.0.bias", &[16][..], &[8][..]),
            ("mlp.1.weight", &[16, 1][..], &[8, 1][..]),
        ]
    );
    assert!(report.missing.is_empty() && report.unexpected.is_empty());
    assert!(wide.iter().zip(before.iter()).all(|((_, _, a), (_, _, b))| a == b), "strict loading changed nothing");

    // Lenient: only the output bias, shape [1] in both, is loaded.
    let report = ckpt.load_into(&mut wide, false).expect("lenient loading does not fail");
    assert_eq!(report.loaded, ["mlp.1.bias"]);
    let bias = wide.id("mlp.1.bias").expect("the output bias");
    assert_eq!(wide.get(bias), small.get(small.id("mlp.1.bias").expect("the output bias")));
}

/// Chapter "Making training fast" (`performance.md`): does an optimizer step update a
/// parameter in place, or copy it first?
#[test]
fn performance_exercise() {
    let mut store = ParamStore::<f32>::with_seed(0);
    let fc = Linear::new(store.scope("fc"), 64, 64);
    let x = Tensor::<f32>::ones(&[8, 64]);
    let mut opt = Sgd::new(SgdConfig { lr: 0.01, ..Default::default() });
    let address = |store: &ParamStore<f32>| store.get(fc.weight).data().as_ptr();
    let start = address(&store);

    // (a) value_and_grad drops its tape before returning: the store holds the only reference
    //     to the weight's data, and the step writes into it where it is.
    let (_, grads) = store
        .value_and_grad(0, |p| loss::mse(fc.forward(p, p.tape().constant(x.clone())), p.tape().constant(x.clone())));
    opt.step(&mut store, &grads);
    assert_eq!(address(&store), start, "(a) updates in place");

    // (b) A tape that still holds the parameters when the step runs: the data is shared, so the
    //     first write copies the whole tensor (copy-on-write) to leave the tape's value intact.
    let tape = Tape::new();
    let grads = {
        let p = store.bind(&tape);
        let loss = loss::mse(fc.forward(&p, tape.constant(x.clone())), tape.constant(x.clone()));
        p.backward(loss)
    };
    let on_tape = tape.nodes().iter().filter(|n| n.name == "var").count();
    assert_eq!(on_tape, 2, "weight and bias were lifted onto the tape");
    opt.step(&mut store, &grads);
    assert_ne!(address(&store), start, "(b) copies");
    drop(tape);

    // (c) Once that tape is gone, the copy is the store's alone and later steps are in place again.
    let moved = address(&store);
    let (_, grads) = store
        .value_and_grad(1, |p| loss::mse(fc.forward(p, p.tape().constant(x.clone())), p.tape().constant(x.clone())));
    opt.step(&mut store, &grads);
    assert_eq!(address(&store), moved, "(c) in place again");
}

/// Chapter "The tape and how backward works" (`tape.md`): the DOT text the chapter shows is the
/// file its picture was drawn from (`images/tape-graph.dot`, which the chapter's snippet checks
/// against `Tape::to_dot`).
#[test]
fn tape_chapter_shows_the_committed_dot_file() {
    let chapter = std::fs::read_to_string("docs/guide/src/tape.md").expect("the chapter");
    let dot = std::fs::read_to_string("docs/guide/src/images/tape-graph.dot").expect("the DOT file");
    let shown = chapter.split("```dot\n").nth(1).and_then(|rest| rest.split("```").next()).expect("a ```dot block");
    assert_eq!(shown, dot);
    let svg = std::fs::read_to_string("docs/guide/src/images/tape-graph.svg").expect("the picture");
    for label in ["%0 var", "%1 var", "%2 mul", "%3 add", "%4 mul"] {
        assert!(svg.contains(label), "the picture lacks {label}: redraw it with `dot -Tsvg`");
    }
}

//! Forward mode and the functional helpers across crates: Hessian-vector products by forward
//! over reverse against double backward (to 1e-10 in f64, on composite functions and an MLP
//! built from nn's layers), Jacobians both ways, per-example gradients, a custom op without a
//! tangent rule (the double-vjp fallback), and forward mode with recording off.

use autograd::check::{check_jvp, Tolerance};
use autograd::functional::{
    grad, hessian, hvp, hvp_by_double_backward, jacfwd, jacobian, jacrev, jvp, jvp_n, per_example_grads, vjp,
};
use autograd::{Float, Op, Rng, SeedableRng, Tape, Tensor, Var};
use nn::{Linear, ParamStore};

fn random(shape: &[usize], seed: u64) -> Tensor<f64> {
    Tensor::rand_uniform(shape, -1.0, 1.0, &mut Rng::seed_from_u64(seed))
}

fn assert_close(a: &Tensor<f64>, b: &Tensor<f64>, tol: f64, what: &str) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    for (i, (x, y)) in a.data().iter().zip(b.data()).enumerate() {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{what}: element {i}: {x} vs {y}");
    }
}

type Scalar = for<'t> fn(&'t Tape<f64>, Var<'t, f64>) -> Var<'t, f64>;

/// Composite functions of a vector of 12 elements, one each of the op families a network uses.
fn functions() -> Vec<(&'static str, Scalar)> {
    vec![
        ("rosenbrock", |_, x| {
            let (a, b) = (x.narrow(0, 0, 11), x.narrow(0, 1, 11));
            ((b - a * a).powi(2) * 100.0 + (1.0 - a).powi(2)).sum()
        }),
        ("softmax entropy", |_, x| {
            let p = x.reshape(&[3, 4]).softmax(-1);
            -(p * p.ln()).sum()
        }),
        ("log-sum-exp of a quadratic form", |tape, x| {
            let m = tape.constant(random(&[4, 3], 7));
            x.reshape(&[3, 4]).matmul(m).gelu().logsumexp()
        }),
        ("layer norm and cross-entropy", |tape, x| {
            let w = tape.constant(random(&[4], 8));
            let b = tape.constant(random(&[4], 9));
            x.reshape(&[3, 4]).layer_norm(w, b, 1e-5).tanh().cross_entropy(&[0, 3, 1])
        }),
        ("causal attention", |_, x| x.reshape(&[1, 2, 6]).causal_attention(2).sigmoid().powi(2).sum()),
    ]
}

#[test]
fn hvp_by_forward_over_reverse_equals_double_backward() {
    let x = random(&[12], 1);
    let v = random(&[12], 2);
    for (name, f) in functions() {
        let fwd = hvp(f, &x, &v);
        let rev = hvp_by_double_backward(f, &x, &v);
        assert_close(&fwd, &rev, 1e-10, name);
        assert!(fwd.data().iter().any(|&h| h != 0.0), "{name}: a zero Hessian-vector product checks nothing");
    }
}

/// An MLP of nn's `Linear` layers (8 → 16 → 3, tanh), its cross-entropy as a function of the
/// flat vector of all its parameters.
fn mlp_loss<'t>(tape: &'t Tape<f64>, theta: Var<'t, f64>) -> Var<'t, f64> {
    let mut store = ParamStore::<f64>::with_seed(0);
    let (l1, l2) = (Linear::new(store.scope("l1"), 8, 16), Linear::new(store.scope("l2"), 16, 3));
    // The store's parameters, in order, read from theta instead of the store.
    let p = store.bind(tape);
    let mut at = 0;
    let mut replace = vec![];
    for (id, _, t) in store.iter() {
        let n = t.numel();
        replace.push((id, theta.narrow(0, at, n).reshape(t.shape())));
        at += n;
    }
    let lookup = |name: &str| replace.iter().find(|(id, _)| store.name(*id).ends_with(name)).expect("parameter").1;
    let x = tape.constant(random(&[5, 8], 11));
    let h = x.matmul_bias(lookup("l1.weight"), lookup("l1.bias")).tanh();
    let logits = h.matmul_bias(lookup("l2.weight"), lookup("l2.bias"));
    // The layers themselves, evaluated on the store's values, agree with the flat form.
    let direct = l2.forward(&p, l1.forward(&p, x).tanh());
    assert_eq!(direct.shape(), logits.shape());
    logits.cross_entropy(&[0, 2, 1, 1, 0])
}

fn mlp_size() -> usize {
    8 * 16 + 16 + 16 * 3 + 3
}

#[test]
fn mlp_hvp_by_forward_over_reverse_equals_double_backward() {
    let n = mlp_size();
    let x = random(&[n], 3).map(|v| v * 0.5);
    let v = random(&[n], 4);
    let fwd = hvp(mlp_loss, &x, &v);
    let rev = hvp_by_double_backward(mlp_loss, &x, &v);
    assert_close(&fwd, &rev, 1e-10, "mlp");
    // And the Hessian's columns are such products: the full Hessian is symmetric.
    let h = hessian(mlp_loss, &x);
    for i in 0..n {
        for j in 0..i {
            let (a, b) = (h.data()[i * n + j], h.data()[j * n + i]);
            assert!((a - b).abs() <= 1e-10 * (1.0 + a.abs()), "H[{i},{j}] = {a} but H[{j},{i}] = {b}");
        }
    }
}

#[test]
fn hessian_of_a_cubic_matches_its_hand_derivatives() {
    // f = x₀²x₁ + x₁³: H = [[2x₁, 2x₀], [2x₀, 6x₁]].
    let f: Scalar = |_, x| {
        let (a, b) = (x.narrow(0, 0, 1), x.narrow(0, 1, 1));
        (a * a * b + b.powi(3)).sum()
    };
    let h = hessian(f, &Tensor::from(vec![1.5, -2.0]));
    assert_eq!(h.shape(), &[2, 2]);
    assert_close(&h, &Tensor::from_vec(vec![-4.0, 3.0, 3.0, -12.0], &[2, 2]), 1e-14, "hessian");
    assert_close(&grad(f, &Tensor::from(vec![1.5, -2.0])), &Tensor::from(vec![-6.0, 2.25 + 12.0]), 1e-14, "grad");
}

#[test]
fn jacobians_by_forward_and_reverse_mode_agree() {
    // 3 inputs to 2 × 4 outputs and 6 inputs to 1 output: each mode, and `jacobian`'s choice.
    let wide: Scalar = |tape, x| {
        let m = tape.constant(random(&[3, 8], 5));
        x.reshape(&[1, 3]).matmul(m).tanh().reshape(&[2, 4]) * x.sum()
    };
    let x = random(&[3], 6);
    let (f, r) = (jacfwd(wide, &x), jacrev(wide, &x));
    assert_eq!(f.shape(), &[2, 4, 3]);
    assert_close(&f, &r, 1e-12, "wide");
    assert_close(&jacobian(wide, &x), &f, 0.0, "jacobian");
    let narrow: Scalar = |_, x| x.exp().sum().reshape(&[1]);
    let x = random(&[6], 7);
    let (f, r) = (jacfwd(narrow, &x), jacrev(narrow, &x));
    assert_eq!(r.shape(), &[1, 6]);
    assert_close(&f, &r, 1e-12, "narrow");
    assert_close(&r, &x.map(f64::exp).reshape(&[1, 6]), 1e-14, "d Σeˣ/dx = eˣ");
    // A column of the Jacobian is a jvp along a unit vector, a row a vjp.
    let (_, col) = jvp(narrow, &x, &Tensor::from(vec![0.0, 0.0, 1.0, 0.0, 0.0, 0.0]));
    assert_close(&col, &Tensor::from(vec![x.data()[2].exp()]), 1e-14, "jvp");
    let (_, row) = vjp(narrow, &x, &Tensor::from(vec![2.0]));
    assert_close(&row, &x.map(|v| 2.0 * v.exp()), 1e-14, "vjp");
}

#[test]
fn jvp_of_several_inputs_sums_the_partial_tangents() {
    // f(a, b) = a·b element-wise: df = da·b + a·db.
    let (a, b) = (random(&[4], 8), random(&[4], 9));
    let (da, db) = (random(&[4], 10), random(&[4], 11));
    let (y, dy) = jvp_n(|_, x| x[0] * x[1], &[a.clone(), b.clone()], &[da.clone(), db.clone()]);
    let want: Vec<f64> = (0..4).map(|i| da.data()[i] * b.data()[i] + a.data()[i] * db.data()[i]).collect();
    assert_close(&dy, &Tensor::from(want), 1e-15, "jvp_n");
    assert_close(&y, &a.zip_map(&b, "mul", |p, q| p * q), 0.0, "value");
}

#[test]
fn per_example_gradients_match_each_example_alone() {
    // loss(w, b; x) = tanh(x·w + b)², per example x of 3 features.
    fn loss<'t>(p: &[Var<'t, f64>], x: Var<'t, f64>) -> Var<'t, f64> {
        (x.reshape(&[1, 3]).matmul(p[0]) + p[1]).tanh().powi(2).sum()
    }
    let (w, b) = (random(&[3, 1], 12), random(&[1], 13));
    let batch = random(&[5, 3], 14);
    let grads = per_example_grads(loss, &[w.clone(), b.clone()], &batch);
    assert_eq!((grads[0].shape(), grads[1].shape()), (&[5, 3, 1][..], &[5, 1][..]));
    for i in 0..5 {
        let tape = Tape::new();
        let (wv, bv) = (tape.var(w.clone()), tape.var(b.clone()));
        let x = tape.constant(batch.reshape(&[5, 3]).to_vec()[i * 3..i * 3 + 3].to_vec());
        let g = loss(&[wv, bv], x).backward();
        assert_close(&grads[0].to_vec()[i * 3..i * 3 + 3].to_vec().into(), &g[wv].reshape(&[3]), 0.0, "w");
        assert_eq!(grads[1].data()[i], g[bv].data()[0], "b of example {i}");
    }
}

/// `x³` with a backward and no tangent rule: forward mode derives its tangent from the
/// backward (the double-vjp identity).
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
fn a_custom_op_without_a_tangent_rule_gets_one_from_its_backward() {
    fn f<'t>(x: &[Var<'t, f64>]) -> Var<'t, f64> {
        x[0].tape().apply(Cube, &[x[0]]).exp()
    }
    let before = autograd::op::double_vjp_calls();
    check_jvp(f, &[vec![0.5, -1.5, 0.7].into()], Tolerance::default()).unwrap();
    assert!(autograd::op::double_vjp_calls() > before, "the fallback did not run");
    // Forward over reverse through it, and under no_grad.
    let g: Scalar = |tape, x| tape.apply(Cube, &[x]).sum() * x.sum();
    let (x, v) = (random(&[3], 15), random(&[3], 16));
    assert_close(&hvp(g, &x, &v), &hvp_by_double_backward(g, &x, &v), 1e-12, "custom hvp");
    let tape = Tape::new();
    let y = tape.no_grad(|| tape.apply(Cube, &[tape.dual(2.0, 1.0)]));
    assert_eq!(y.tangent().expect("a tangent").item(), 12.0);
}

#[test]
fn recording_off_gives_the_same_tangents_as_recording_on() {
    let x = random(&[12], 17);
    let v = random(&[12], 18);
    for (name, f) in functions() {
        let (_, on) = jvp(f, &x, &v);
        let (_, off) = jvp(|tape, x| tape.no_grad(|| f(tape, x)), &x, &v);
        assert_close(&off, &on, 1e-12, name);
    }
}

#[test]
fn the_gradient_of_a_tangent_is_reverse_over_forward() {
    // y = x³ · 2: dy = 6x²·dx; ∂(dy)/∂x = 12x·dx.
    let tape = Tape::<f64>::new();
    let x = tape.dual(1.5, 0.5);
    let dy = (x.powi(3) * 2.0).tangent().expect("a tangent");
    assert_eq!(dy.item(), 6.0 * 2.25 * 0.5);
    assert_eq!(tape.grad(dy, &[x])[0].item(), 12.0 * 1.5 * 0.5);
}

#[test]
#[should_panic(expected = "dual: a tangent of shape [2] for a value of shape [3]")]
fn a_tangent_of_another_shape_is_refused() {
    let tape = Tape::<f64>::new();
    tape.dual(Tensor::zeros(&[3]), Tensor::zeros(&[2]));
}

//! pente's value, gradient, Hessian, `jvp` and Hessian-vector product of composite functions
//! against JAX's, in f64, to 1e-10.
//!
//! The fixture `tests/fixtures/jax_autodiff.json` is written by
//! `bench/reference/jax_autodiff.py` (how to regenerate it is in that script): for each
//! function, its input `x`, its constants, a tangent `v`, and JAX's value, `grad`, `hessian`,
//! `jvp` (value and `∇f·v`) and `hvp` (`H·v`, forward over reverse). Each function is written
//! here once, as a function of `Var`s ([`COMPOSITES`]), and every check reuses it. The Hessian is
//! taken by double backward: row `i` is the gradient of `(∇f)ᵢ`, one `Tape::grad` of the first
//! gradient per row. The `jvp` is forward mode (`Tape::dual`), and the Hessian-vector product
//! forward over reverse: the tangent of the gradient of a function of dual numbers.

use pente::autograd::{Tape, Tensor, Var};
use serde_json::Value;

/// A function of the input `x` and the constants (in the fixture's order) to one number.
type Composite = for<'t> fn(Var<'t, f64>, &[Var<'t, f64>]) -> Var<'t, f64>;

/// Agreement asked of every number: `|pente − jax| ≤ TOL · max(1, |jax|)`.
const TOL: f64 = 1e-10;

/// pente's twin of each function of `bench/reference/jax_autodiff.py`, by its name there.
const COMPOSITES: &[(&str, Composite)] = &[
    ("tanh_exp", tanh_exp),
    ("softmax_log", softmax_log),
    ("mlp_tanh_gelu", mlp_tanh_gelu),
    ("layer_norm", layer_norm),
    ("logsumexp", logsumexp),
    ("matmul_chain", matmul_chain),
    ("attention", attention),
    ("softplus_erf_sigmoid", softplus_erf_sigmoid),
];

/// `Σ tanh(x) ⊙ exp(x/2)`.
fn tanh_exp<'t>(x: Var<'t, f64>, _: &[Var<'t, f64>]) -> Var<'t, f64> {
    (x.tanh() * (x * 0.5).exp()).sum()
}

/// `Σ c ⊙ ln softmax(x)` over the last axis; constants `c`.
fn softmax_log<'t>(x: Var<'t, f64>, k: &[Var<'t, f64>]) -> Var<'t, f64> {
    (k[0] * x.softmax(-1).ln()).sum()
}

/// `Σ c ⊙ gelu(tanh(x·W₁ + b₁)·W₂ + b₂)` (GELU with the exact erf); constants `W₁, b₁, W₂, b₂, c`.
fn mlp_tanh_gelu<'t>(x: Var<'t, f64>, k: &[Var<'t, f64>]) -> Var<'t, f64> {
    let hidden = x.matmul_bias(k[0], k[1]).tanh(); // (2, 4)
    (k[4] * hidden.matmul_bias(k[2], k[3]).gelu()).sum()
}

/// `Σ c ⊙ tanh(layer_norm(x) ⊙ w + b)`, ε = 1e-5; constants `w, b, c`.
fn layer_norm<'t>(x: Var<'t, f64>, k: &[Var<'t, f64>]) -> Var<'t, f64> {
    (k[2] * x.layer_norm(k[0], k[1], 1e-5).tanh()).sum()
}

/// `logsumexp(x) + Σ_rows c ⊙ logsumexp(x, last axis)`; constants `c`.
fn logsumexp<'t>(x: Var<'t, f64>, k: &[Var<'t, f64>]) -> Var<'t, f64> {
    x.logsumexp() + (k[0] * x.logsumexp_axes(&[-1], false)).sum()
}

/// `Σ c ⊙ tanh(x·A·xᵀ)`; constants `A, c`.
fn matmul_chain<'t>(x: Var<'t, f64>, k: &[Var<'t, f64>]) -> Var<'t, f64> {
    (k[1] * x.matmul(k[0]).matmul(x.t()).tanh()).sum()
}

/// One attention head: `Σ c ⊙ softmax(q·kᵀ/√2)·v` with `q, k, v = x·W_q, x·W_k, x·W_v`;
/// constants `W_q, W_k, W_v, c`.
fn attention<'t>(x: Var<'t, f64>, k: &[Var<'t, f64>]) -> Var<'t, f64> {
    let (q, key, v) = (x.matmul(k[0]), x.matmul(k[1]), x.matmul(k[2])); // (3, 2) each
    let weights = (q.matmul(key.t()) * std::f64::consts::FRAC_1_SQRT_2).softmax(-1); // (3, 3)
    (k[3] * weights.matmul(v)).sum()
}

/// `Σ softplus(x) ⊙ erf(x) + Σ √(x² + 1) ⊙ sigmoid(x)`.
fn softplus_erf_sigmoid<'t>(x: Var<'t, f64>, _: &[Var<'t, f64>]) -> Var<'t, f64> {
    (x.softplus() * x.erf()).sum() + ((x * x + 1.0).sqrt() * x.sigmoid()).sum()
}

/// One function of the fixture.
struct Case {
    name: String,
    x: Tensor<f64>,
    constants: Vec<Tensor<f64>>,
    value: f64,
    grad: Vec<f64>,
    hessian: Vec<Vec<f64>>,
    /// The direction of `jax.jvp` and of the Hessian-vector product.
    tangent: Tensor<f64>,
    /// `jax.jvp(f, (x,), (tangent,))[1]`.
    jvp: f64,
    /// `jax.jvp(jax.grad(f), (x,), (tangent,))[1]`.
    hvp: Vec<f64>,
}

fn numbers(v: &Value, what: &str) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("fixture: {what} is not an array"))
        .iter()
        .map(|n| n.as_f64().unwrap_or_else(|| panic!("fixture: {what} holds {n}, not a number")))
        .collect()
}

fn tensor(v: &Value, what: &str) -> Tensor<f64> {
    let shape: Vec<usize> = numbers(&v["shape"], what).iter().map(|&d| d as usize).collect();
    Tensor::from_vec(numbers(&v["data"], what), &shape)
}

fn cases() -> Vec<Case> {
    let fixture: Value = serde_json::from_str(include_str!("fixtures/jax_autodiff.json")).expect("the fixture is JSON");
    assert_eq!(fixture["dtype"], "float64", "the fixture must be computed in f64 (jax_enable_x64)");
    let functions = fixture["functions"].as_array().expect("fixture: `functions` is an array");
    functions
        .iter()
        .map(|f| {
            let name = f["name"].as_str().expect("fixture: each function has a name").to_string();
            let hessian = f["hessian"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: hessian is not an array"))
                .iter()
                .map(|row| numbers(row, &format!("{name}: a hessian row")))
                .collect();
            Case {
                x: tensor(&f["x"], &format!("{name}: x")),
                constants: f["constants"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{name}: constants is not an array"))
                    .iter()
                    .map(|c| tensor(c, &format!("{name}: constant {}", c["name"])))
                    .collect(),
                value: f["value"].as_f64().unwrap_or_else(|| panic!("{name}: value is not a number")),
                grad: numbers(&f["grad"], &format!("{name}: grad")),
                hessian,
                tangent: tensor(&f["tangent"], &format!("{name}: tangent")),
                jvp: f["jvp"]["tangent"].as_f64().unwrap_or_else(|| panic!("{name}: jvp.tangent is not a number")),
                hvp: numbers(&f["hvp"], &format!("{name}: hvp")),
                name,
            }
        })
        .collect()
}

fn composite(name: &str) -> Composite {
    COMPOSITES
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("the fixture has `{name}`, which has no pente twin in COMPOSITES"))
        .1
}

/// Panics naming the function, the quantity and the index where pente and JAX differ.
fn assert_close(name: &str, what: &str, pente: &[f64], jax: &[f64]) {
    assert_eq!(pente.len(), jax.len(), "{name}: {what} has {} entries, JAX {}", pente.len(), jax.len());
    for (i, (p, j)) in pente.iter().zip(jax).enumerate() {
        assert!(
            (p - j).abs() <= TOL * j.abs().max(1.0),
            "{name}: {what}[{i}]: pente {p:e}, JAX {j:e}, difference {:e}",
            (p - j).abs()
        );
    }
}

#[test]
fn fixture_and_pente_list_the_same_functions() {
    let names: Vec<String> = cases().into_iter().map(|c| c.name).collect();
    assert!(names.len() >= 6, "the fixture holds only {names:?}");
    let ours: Vec<&str> = COMPOSITES.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ours, "regenerate the fixture or update COMPOSITES so that they agree");
}

#[test]
fn values_match_jax() {
    for case in cases() {
        let tape = Tape::<f64>::new();
        let k: Vec<Var<'_, f64>> = case.constants.iter().map(|c| tape.constant(c.clone())).collect();
        let y = composite(&case.name)(tape.constant(case.x.clone()), &k);
        assert_close(&case.name, "value", &[y.item()], &[case.value]);
    }
}

#[test]
fn gradients_match_jax() {
    for case in cases() {
        let tape = Tape::<f64>::new();
        let k: Vec<Var<'_, f64>> = case.constants.iter().map(|c| tape.constant(c.clone())).collect();
        let x = tape.var(case.x.clone());
        let grads = composite(&case.name)(x, &k).backward();
        assert_close(&case.name, "grad", grads[x].data(), &case.grad);
    }
}

#[test]
fn hessians_by_double_backward_match_jax() {
    for case in cases() {
        let n = case.x.numel();
        assert_eq!(case.hessian.len(), n, "{}: the Hessian has {} rows for {n} inputs", case.name, case.hessian.len());
        let tape = Tape::<f64>::new();
        let k: Vec<Var<'_, f64>> = case.constants.iter().map(|c| tape.constant(c.clone())).collect();
        let x = tape.var(case.x.clone());
        let grad = tape.grad(composite(&case.name)(x, &k), &[x])[0];
        assert_close(&case.name, "grad (differentiable)", grad.value().data(), &case.grad);
        for (i, row) in case.hessian.iter().enumerate() {
            // Row i: the gradient of (∇f)ᵢ = Σ ∇f ⊙ eᵢ.
            let mut e = vec![0.0; n];
            e[i] = 1.0;
            let pick = tape.constant(Tensor::from_vec(e, case.x.shape()));
            let second = tape.grad((grad * pick).sum(), &[x])[0];
            assert_close(&case.name, &format!("hessian row {i}"), second.value().data(), row);
        }
    }
}

#[test]
fn jvps_by_forward_mode_match_jax() {
    for case in cases() {
        let tape = Tape::<f64>::new();
        let k: Vec<Var<'_, f64>> = case.constants.iter().map(|c| tape.constant(c.clone())).collect();
        let x = tape.dual(case.x.clone(), case.tangent.clone());
        let y = composite(&case.name)(x, &k);
        assert_close(&case.name, "jvp primal", &[y.item()], &[case.value]);
        let t = y.tangent().unwrap_or_else(|| panic!("{}: the output carries no tangent", case.name));
        assert_close(&case.name, "jvp tangent", &[t.item()], &[case.jvp]);
    }
}

#[test]
fn hvps_by_forward_over_reverse_match_jax() {
    for case in cases() {
        let tape = Tape::<f64>::new();
        let k: Vec<Var<'_, f64>> = case.constants.iter().map(|c| tape.constant(c.clone())).collect();
        let x = tape.dual(case.x.clone(), case.tangent.clone());
        let grad = tape.grad(composite(&case.name)(x, &k), &[x])[0];
        assert_close(&case.name, "grad (of dual numbers)", grad.value().data(), &case.grad);
        let hvp = grad.tangent().unwrap_or_else(|| panic!("{}: the gradient carries no tangent", case.name));
        assert_close(&case.name, "hvp", hvp.value().data(), &case.hvp);
    }
}

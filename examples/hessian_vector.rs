//! A Hessian-vector product by double backward, checked against finite differences of the
//! gradient.
//!
//! For `f(w) = Σ tanh(X·w)²` the Hessian-vector product `H·v` is the gradient of `⟨∇f(w), v⟩`:
//! one `tape.grad` with a recorded graph, then one ordinary backward. No Hessian is formed.
//! Run: `cargo run --example hessian_vector`. Expected: the two columns agree to ~1e-8.

use autograd::{Tape, Tensor, Var};

/// The function whose curvature we probe.
fn f<'t>(w: Var<'t, f64>, x: Var<'t, f64>) -> Var<'t, f64> {
    x.matmul(w).tanh().powi(2).sum()
}

fn data() -> (Tensor<f64>, Tensor<f64>, Tensor<f64>) {
    let x = Tensor::from_vec(vec![0.5, -1.0, 0.3, 1.2, 0.8, -0.4, -0.7, 0.2, 0.9], &[3, 3]);
    let w = Tensor::from_vec(vec![0.3, -0.2, 0.6], &[3, 1]);
    let v = Tensor::from_vec(vec![1.0, 0.5, -1.5], &[3, 1]);
    (x, w, v)
}

/// `H·v` through the tape: differentiate `⟨∇f, v⟩` once more.
fn hvp(x: &Tensor<f64>, w: &Tensor<f64>, v: &Tensor<f64>) -> Tensor<f64> {
    let tape = Tape::new();
    let (xv, wv) = (tape.constant(x.clone()), tape.var(w.clone()));
    let g = tape.grad(f(wv, xv), &[wv])[0];
    let gv = (g * tape.constant(v.clone())).sum();
    gv.backward()[wv].clone()
}

/// `(∇f(w + εv) − ∇f(w − εv)) / 2ε`.
fn hvp_finite_difference(x: &Tensor<f64>, w: &Tensor<f64>, v: &Tensor<f64>, eps: f64) -> Tensor<f64> {
    let grad_at = |w: Tensor<f64>| {
        let tape = Tape::new();
        let wv = tape.var(w);
        f(wv, tape.constant(x.clone())).backward()[wv].clone()
    };
    let shifted = |s: f64| Tensor::from_vec(w.data().iter().zip(v.data()).map(|(a, b)| a + s * b).collect(), w.shape());
    let (plus, minus) = (grad_at(shifted(eps)), grad_at(shifted(-eps)));
    let d = plus.data().iter().zip(minus.data()).map(|(p, m)| (p - m) / (2.0 * eps)).collect();
    Tensor::from_vec(d, w.shape())
}

fn main() {
    let (x, w, v) = data();
    let exact = hvp(&x, &w, &v);
    let numeric = hvp_finite_difference(&x, &w, &v, 1e-5);
    println!("{:>14} {:>14}", "tape H·v", "finite diff");
    for (a, b) in exact.data().iter().zip(numeric.data()) {
        println!("{a:>14.9} {b:>14.9}");
        assert!((a - b).abs() < 1e-7 * (1.0 + b.abs()), "H·v disagrees: {a} vs {b}");
    }
}

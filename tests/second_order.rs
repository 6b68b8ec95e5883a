//! Second-order gradients beyond the per-op table: a Hessian-vector product against finite
//! differences, and a gradient penalty trained through.

use autograd::{Tape, Tensor, Var};

fn f<'t>(w: Var<'t, f64>, x: Var<'t, f64>) -> Var<'t, f64> {
    x.matmul(w).tanh().powi(2).sum() + w.exp().sum()
}

#[test]
fn hessian_vector_product_matches_finite_differences() {
    let x = Tensor::from_vec(vec![0.5, -1.0, 0.3, 1.2, 0.8, -0.4, -0.7, 0.2, 0.9, 0.1, 0.0, -0.6], &[4, 3]);
    let w = Tensor::from_vec(vec![0.3, -0.2, 0.6], &[3, 1]);
    let v = Tensor::from_vec(vec![1.0, 0.5, -1.5], &[3, 1]);

    let tape = Tape::new();
    let (xv, wv) = (tape.constant(x.clone()), tape.var(w.clone()));
    let g = tape.grad(f(wv, xv), &[wv])[0];
    let hv = (g * tape.constant(v.clone())).sum().backward()[wv].clone();

    let eps = 1e-5;
    let grad_at = |s: f64| {
        let t = Tape::new();
        let shifted = Tensor::from_vec(w.data().iter().zip(v.data()).map(|(a, b)| a + s * b).collect(), w.shape());
        let wv = t.var(shifted);
        f(wv, t.constant(x.clone())).backward()[wv].clone()
    };
    let (plus, minus) = (grad_at(eps), grad_at(-eps));
    for i in 0..3 {
        let numeric = (plus.data()[i] - minus.data()[i]) / (2.0 * eps);
        assert!((hv.data()[i] - numeric).abs() < 1e-7, "H·v[{i}]: {} vs {numeric}", hv.data()[i]);
    }
}

#[test]
fn third_derivative_of_a_polynomial() {
    let tape = Tape::<f64>::new();
    let x = tape.var(1.5);
    let y = x.powi(4) - x * x * 3.0; // y''' = 24x
    let d1 = tape.grad(y, &[x])[0];
    let d2 = tape.grad(d1, &[x])[0];
    let d3 = tape.grad(d2, &[x])[0];
    assert_eq!(d3.item(), 36.0);
}

#[test]
fn gradient_hook_replacement_and_detach_stop_as_documented() {
    let tape = Tape::<f64>::new();
    let a = tape.var(2.0);
    let b = a.detach() * a; // d/da = detach(a) = 2
    assert_eq!(b.backward()[a].item(), 2.0);
    let c = a * 3.0;
    c.register_hook(|g| Some(g * 0.0));
    let grads = (c * c + a).backward();
    assert_eq!(grads[a].item(), 1.0, "the zeroed path through c contributes nothing");
}

#[test]
fn no_grad_records_constants() {
    let tape = Tape::<f64>::new();
    let a = tape.var(2.0);
    let b = tape.no_grad(|| a * a);
    assert!(!b.requires_grad());
    assert!(tape.is_recording(), "recording restored after the scope");
    assert!((b * a).backward().get(b).is_none());
}

#[test]
fn anomaly_mode_names_op_and_line() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(Tensor::from_vec(vec![1.0, -1.0], &[2]));
    let line = line!() + 1;
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| x.sqrt())).unwrap_err();
    let msg = err.downcast_ref::<String>().expect("a formatted message").clone();
    assert!(msg.contains("`sqrt`"), "{msg}");
    assert!(msg.contains(&format!("second_order.rs:{line}")), "{msg}");
}

#[test]
fn anomaly_mode_catches_non_finite_gradients() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(0.0);
    let y = x.sqrt(); // finite value 0, infinite derivative
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| y.backward())).unwrap_err();
    let msg = err.downcast_ref::<String>().expect("a formatted message").clone();
    assert!(msg.contains("backward of `sqrt`") && msg.contains("non-finite gradient"), "{msg}");
}

#[test]
fn shape_mismatch_panics_with_op_shapes_and_caller() {
    let tape = Tape::<f32>::new();
    let a = tape.var(Tensor::zeros(&[2, 3]));
    let b = tape.var(Tensor::zeros(&[4]));
    let line = line!() + 1;
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| a + b)).unwrap_err();
    let msg = err.downcast_ref::<String>().expect("a formatted message").clone();
    assert!(msg.starts_with("add: shapes [2, 3] and [4] do not broadcast"), "{msg}");
    assert!(msg.contains(&format!("second_order.rs:{line}")), "{msg}");
}

//! Gradient hooks and second order: a hook's replacement built from the gradient it receives is
//! differentiated through by `Tape::grad`, so an identity hook changes nothing and a scaling hook
//! scales the second derivative too.

use autograd::check::{check_second_order, Tolerance};
use autograd::{Tape, Tensor, Var};

fn point() -> Tensor<f64> {
    Tensor::from_vec(vec![0.3, -0.7, 1.1], &[3])
}

/// The gradient of `Σ ∂y/∂x` for `y = Σ tanh(x)²·x`, with `hook` (if any) on the `tanh` node.
fn second_derivative(hook: Option<f64>) -> Vec<f64> {
    let tape = Tape::<f64>::new();
    let x = tape.var(point());
    let h = x.tanh();
    if let Some(scale) = hook {
        h.register_hook(move |g| Some(g * scale));
    }
    let y = (h * h * x).sum();
    let g = tape.grad(y, &[x])[0];
    tape.grad(g.sum(), &[x])[0].value().to_vec()
}

#[test]
fn identity_hook_leaves_second_derivatives_unchanged() {
    let tape = Tape::<f64>::new();
    let x = tape.var(point());
    let h = x.tanh();
    h.register_hook(|g| Some(g));
    let y = (h * h * x).sum();
    let g = tape.grad(y, &[x])[0];
    let hooked = tape.grad(g.sum(), &[x])[0].value().to_vec();
    assert_eq!(hooked, second_derivative(None));
}

#[test]
fn scaling_hook_scales_the_differentiated_path_in_both_sweeps() {
    // y = Σ h²x with h = tanh x. The hook halves ∂y/∂h = 2hx, so ∂y/∂x = G(x, h) = hx(1 − h²) + h².
    // Differentiating G, the hook fires again on what flows into h (as in PyTorch, a hook runs in
    // every backward through its node): d/dx = ∂G/∂x + ½·∂G/∂h·(1 − h²), with
    // ∂G/∂x = h(1 − h²) and ∂G/∂h = x(1 − 3h²) + 2h.
    let hooked = second_derivative(Some(0.5));
    for (k, &x) in point().data().iter().enumerate() {
        let h = x.tanh();
        let dh = 1.0 - h * h;
        let expected = h * dh + 0.5 * dh * (x * (1.0 - 3.0 * h * h) + 2.0 * h);
        assert!((hooked[k] - expected).abs() < 1e-12, "element {k}: {} vs {expected}", hooked[k]);
    }
}

#[test]
fn gradgradcheck_through_hooked_nodes_matches_finite_differences() {
    fn hooked<'t>(x: &[Var<'t, f64>]) -> Var<'t, f64> {
        let h = x[0].tanh() * x[1];
        h.register_hook(|g| Some(g));
        h.register_hook(|g| Some(g.clamp(-10.0, 10.0))); // inactive at this point: identity
        (h * h * x[0]).sum()
    }
    let inputs = [point(), Tensor::from_vec(vec![0.4, 1.2, -0.9], &[3])];
    check_second_order(hooked, &inputs, Tolerance::default()).unwrap();
}

#[test]
fn read_only_hook_sees_the_gradient_and_constant_replacement_stops_second_order() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = Rc::clone(&seen);
    let tape = Tape::<f64>::new();
    let x = tape.var(2.0);
    let h = x * x;
    h.register_hook(move |g| {
        log.borrow_mut().push(g.item());
        None
    });
    let y = h * h; // dy/dh = 2h = 8
    assert_eq!(y.backward()[x].item(), 32.0);
    assert_eq!(*seen.borrow(), [8.0]);
    // A replacement made of values is a constant: its derivative with respect to x is zero, so
    // only the path through dh/dx = 2x remains: d/dx (c · 2x) = 2c with c = 8.
    let tape = Tape::<f64>::new();
    let x = tape.var(2.0);
    let h = x * x;
    h.register_hook(|g| Some(g.tape().constant(g.value())));
    let g = tape.grad(h * h, &[x])[0];
    assert_eq!(g.item(), 32.0);
    assert_eq!(tape.grad(g, &[x])[0].item(), 16.0);
}

#[test]
#[should_panic(expected = "a gradient hook on `affine`")]
fn hook_returning_another_shape_names_the_node() {
    let tape = Tape::<f64>::new();
    let x = tape.var(point());
    let h = x * 2.0;
    h.register_hook(|g| Some(g.sum()));
    let _ = h.sum().backward();
}

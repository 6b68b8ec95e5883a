//! Numerical gradient checking: the analytic gradients of the tape against central finite
//! differences, in `f64`, first and second order. PyTorch's `gradcheck` and `gradgradcheck` are
//! the reference, defaults included (eps 1e-6, atol 1e-5, rtol 1e-3).
//!
//! ```
//! use autograd::check::{gradcheck, gradgradcheck};
//! // Any function of Vars to a Var; a non-scalar output is reduced with fixed random weights.
//! gradcheck(|x| (x[0] * x[1]).tanh(), &[vec![0.5, -1.0].into(), vec![2.0, 0.3].into()]);
//! gradgradcheck(|x| x[0].exp().sum(), &[vec![0.1, 0.2].into()]);
//! // Forward mode: the tangents of the ops against central differences.
//! autograd::check::jvpcheck(|x| (x[0] * x[1]).tanh(), &[vec![0.5, -1.0].into(), vec![2.0, 0.3].into()]);
//! ```

use std::fmt;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{Tape, Tensor, Var};

/// Finite-difference step and the tolerance `|analytic − numeric| ≤ atol + rtol·|numeric|`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// Half-width of the central difference.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance.
    pub rtol: f64,
}

impl Default for Tolerance {
    /// PyTorch's `gradcheck` defaults: eps 1e-6, atol 1e-5, rtol 1e-3.
    fn default() -> Self {
        Tolerance { eps: 1e-6, atol: 1e-5, rtol: 1e-3 }
    }
}

/// The first element where the analytic and numerical gradients disagree.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// 1 for the gradient, 2 for the gradient of the gradient, 0 for a forward-mode tangent
    /// ([`check_jvp`]).
    pub order: u8,
    /// Which input (0 for a tangent, which is the output's).
    pub input: usize,
    /// Flat index of the element within that input (within the output, for a tangent).
    pub index: usize,
    /// What the tape computed.
    pub analytic: f64,
    /// What central differences computed.
    pub numeric: f64,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.order {
            0 => "tangent (forward mode)",
            1 => "gradient",
            _ => "second-order gradient",
        };
        write!(
            f,
            "{what} mismatch at input {} element {}: analytic {:e}, numeric {:e} (difference {:e})",
            self.input,
            self.index,
            self.analytic,
            self.numeric,
            (self.analytic - self.numeric).abs()
        )
    }
}

impl std::error::Error for Mismatch {}

/// Reduces an output to a scalar: itself if it has one element, otherwise a weighted sum with
/// fixed pseudo-random weights in [0.5, 1.5), so that the gradient flowing in is not all ones.
fn scalarize<'t>(y: Var<'t, f64>) -> Var<'t, f64> {
    if y.numel() == 1 {
        return y.sum();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
    let w = Tensor::rand_uniform(&y.shape(), 0.5, 1.5, &mut rng);
    (y * y.tape().constant(w)).sum()
}

fn eval<F>(f: &F, inputs: &[Tensor<f64>]) -> f64
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let tape = Tape::new();
    let xs: Vec<_> = inputs.iter().map(|x| tape.var(x.clone())).collect();
    scalarize(f(&xs)).item()
}

fn analytic_grads<F>(f: &F, inputs: &[Tensor<f64>]) -> Vec<Tensor<f64>>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let tape = Tape::new();
    let xs: Vec<_> = inputs.iter().map(|x| tape.var(x.clone())).collect();
    let grads = scalarize(f(&xs)).backward();
    xs.iter().map(|&x| grads.get(x).cloned().unwrap_or_else(|| Tensor::zeros(&x.shape()))).collect()
}

/// Compares `analytic` against central differences of the scalar function `g`.
fn compare(
    order: u8,
    inputs: &[Tensor<f64>],
    analytic: &[Tensor<f64>],
    tol: Tolerance,
    g: impl Fn(&[Tensor<f64>]) -> f64,
) -> Result<(), Mismatch> {
    let mut probe: Vec<Tensor<f64>> = inputs.to_vec();
    for (i, a) in analytic.iter().enumerate() {
        for k in 0..inputs[i].numel() {
            let x0 = inputs[i].data()[k];
            probe[i].data_mut()[k] = x0 + tol.eps;
            let plus = g(&probe);
            probe[i].data_mut()[k] = x0 - tol.eps;
            let minus = g(&probe);
            probe[i].data_mut()[k] = x0;
            let numeric = (plus - minus) / (2.0 * tol.eps);
            let analytic = a.data()[k];
            let ok = (analytic - numeric).abs() <= tol.atol + tol.rtol * numeric.abs();
            if !ok || !analytic.is_finite() {
                return Err(Mismatch { order, input: i, index: k, analytic, numeric });
            }
        }
    }
    Ok(())
}

/// Checks the gradient of `f` at `inputs` against central differences.
///
/// `f` maps the inputs (as `Var`s on a fresh tape) to an output; a non-scalar output is reduced
/// to a scalar with fixed random weights.
pub fn check_gradients<F>(f: F, inputs: &[Tensor<f64>], tol: Tolerance) -> Result<(), Mismatch>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let analytic = analytic_grads(&f, inputs);
    compare(1, inputs, &analytic, tol, |x| eval(&f, x))
}

/// Checks the second derivative of `f` at `inputs`: the gradient of `Σᵢ ⟨∂f/∂xᵢ, vᵢ⟩` for fixed
/// random directions `vᵢ`, taken through the tape's differentiable gradient ([`Tape::grad`]),
/// against central differences of the first-order analytic gradient.
pub fn check_second_order<F>(f: F, inputs: &[Tensor<f64>], tol: Tolerance) -> Result<(), Mismatch>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let mut rng = ChaCha8Rng::seed_from_u64(0x2ec0);
    let dirs: Vec<Tensor<f64>> = inputs.iter().map(|x| Tensor::rand_uniform(x.shape(), 0.5, 1.5, &mut rng)).collect();
    // Analytic: differentiate ⟨∇f, v⟩ through the recorded gradient graph.
    let analytic = {
        let tape = Tape::new();
        let xs: Vec<_> = inputs.iter().map(|x| tape.var(x.clone())).collect();
        let gs = tape.grad(scalarize(f(&xs)), &xs);
        let mut s = tape.constant(0.0);
        for (g, v) in gs.iter().zip(&dirs) {
            s = s + (*g * tape.constant(v.clone())).sum();
        }
        let grads = s.backward();
        xs.iter().map(|&x| grads.get(x).cloned().unwrap_or_else(|| Tensor::zeros(&x.shape()))).collect::<Vec<_>>()
    };
    let directional = |x: &[Tensor<f64>]| -> f64 {
        analytic_grads(&f, x)
            .iter()
            .zip(&dirs)
            .map(|(g, v)| g.data().iter().zip(v.data()).map(|(a, b)| a * b).sum::<f64>())
            .sum()
    };
    compare(2, inputs, &analytic, tol, directional)
}

/// Checks the forward-mode tangent of `f` at `inputs` ([`Tape::dual`], each op's
/// [`Op::jvp`](crate::Op::jvp)) against central differences along the same direction:
/// `J·v ≈ (f(x + εv) − f(x − εv)) / 2ε`, element by element of the output, for fixed random
/// directions `vᵢ` in [−1, 1).
pub fn check_jvp<F>(f: F, inputs: &[Tensor<f64>], tol: Tolerance) -> Result<(), Mismatch>
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    let mut rng = ChaCha8Rng::seed_from_u64(0x7a9e);
    let dirs: Vec<Tensor<f64>> = inputs.iter().map(|x| Tensor::rand_uniform(x.shape(), -1.0, 1.0, &mut rng)).collect();
    let analytic = {
        let tape = Tape::new();
        let xs: Vec<_> = inputs.iter().zip(&dirs).map(|(x, v)| tape.dual(x.clone(), v.clone())).collect();
        let y = f(&xs);
        y.tangent().map(|t| t.value()).unwrap_or_else(|| Tensor::zeros(&y.shape()))
    };
    let at = |step: f64| {
        let tape = Tape::new();
        let xs: Vec<_> =
            inputs.iter().zip(&dirs).map(|(x, v)| tape.var(x.zip_map(v, "check_jvp", |a, b| a + step * b))).collect();
        f(&xs).value()
    };
    let (plus, minus) = (at(tol.eps), at(-tol.eps));
    for (k, ((&a, &p), &m)) in analytic.data().iter().zip(plus.data()).zip(minus.data()).enumerate() {
        let numeric = (p - m) / (2.0 * tol.eps);
        if (a - numeric).abs() > tol.atol + tol.rtol * numeric.abs() || !a.is_finite() {
            return Err(Mismatch { order: 0, input: 0, index: k, analytic: a, numeric });
        }
    }
    Ok(())
}

/// [`check_jvp`] with the default tolerance, panicking with the mismatch.
///
/// # Panics
/// If a tangent element differs from the numerical one beyond tolerance.
#[track_caller]
pub fn jvpcheck<F>(f: F, inputs: &[Tensor<f64>])
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    if let Err(e) = check_jvp(f, inputs, Tolerance::default()) {
        panic!("jvpcheck failed: {e}");
    }
}

/// [`check_gradients`] with the default tolerance, panicking with the mismatch.
///
/// # Panics
/// If an analytic gradient element differs from the numerical one beyond tolerance.
#[track_caller]
pub fn gradcheck<F>(f: F, inputs: &[Tensor<f64>])
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    if let Err(e) = check_gradients(f, inputs, Tolerance::default()) {
        panic!("gradcheck failed: {e}");
    }
}

/// [`check_second_order`] with the default tolerance, panicking with the mismatch.
///
/// # Panics
/// If a second-order gradient element differs from the numerical one beyond tolerance.
#[track_caller]
pub fn gradgradcheck<F>(f: F, inputs: &[Tensor<f64>])
where
    F: for<'t> Fn(&[Var<'t, f64>]) -> Var<'t, f64>,
{
    if let Err(e) = check_second_order(f, inputs, Tolerance::default()) {
        panic!("gradgradcheck failed: {e}");
    }
}

/// Asserts that two tensors have the same shape and agree element-wise within
/// `atol + rtol·|expected|`.
///
/// # Panics
/// On a shape difference or the first element out of tolerance, naming its index.
#[track_caller]
pub fn assert_close<T: crate::Float>(actual: &Tensor<T>, expected: &Tensor<T>, atol: f64, rtol: f64) {
    assert_eq!(actual.shape(), expected.shape(), "assert_close: shapes differ");
    for (i, (a, e)) in actual.data().iter().zip(expected.data()).enumerate() {
        let (a, e) = (a.to_f64(), e.to_f64());
        assert!(
            (a - e).abs() <= atol + rtol * e.abs(),
            "assert_close: element {i}: {a} vs expected {e} (atol {atol}, rtol {rtol})"
        );
    }
}

/// Deterministic values in about [-1, 1] for a shape, pairwise distinct up to 997 elements
/// (so that pooling has no ties), for the ops' unit tests.
#[cfg(test)]
pub(crate) fn filled(shape: &[usize], seed: u64) -> Tensor<f64> {
    let n: usize = shape.iter().product();
    let data = (0..n).map(|i| (((i as u64 * 7919 + seed * 104_729) % 997) as f64) / 498.0 - 1.0).collect();
    Tensor::from_vec(data, shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Op;

    /// An op with a deliberately wrong derivative (2x instead of 3x²), to prove the checker
    /// catches it.
    struct WrongCube;

    impl Op<f64> for WrongCube {
        fn name(&self) -> &'static str {
            "wrong_cube"
        }
        fn forward(&self, inputs: &[&Tensor<f64>]) -> Tensor<f64> {
            inputs[0].map(|x| x * x * x)
        }
        fn backward<'t>(
            &self,
            inputs: &[Var<'t, f64>],
            _out: Var<'t, f64>,
            grad_out: Var<'t, f64>,
        ) -> Vec<Option<Var<'t, f64>>> {
            vec![Some(grad_out * inputs[0] * 2.0)]
        }
    }

    #[test]
    fn checker_catches_a_wrong_derivative() {
        let err = check_gradients(|x| x[0].tape().apply(WrongCube, &[x[0]]), &[vec![1.5].into()], Tolerance::default())
            .unwrap_err();
        assert_eq!((err.order, err.input, err.index), (1, 0, 0));
        assert!((err.numeric - 6.75).abs() < 1e-6, "{err}");
    }

    #[test]
    fn checker_catches_a_wrong_tangent() {
        // The right backward (3x²) with a wrong tangent rule (2x·dx).
        struct WrongTangent;
        impl Op<f64> for WrongTangent {
            fn name(&self) -> &'static str {
                "wrong_tangent"
            }
            fn forward(&self, inputs: &[&Tensor<f64>]) -> Tensor<f64> {
                inputs[0].map(|x| x * x * x)
            }
            fn backward<'t>(
                &self,
                inputs: &[Var<'t, f64>],
                _out: Var<'t, f64>,
                grad_out: Var<'t, f64>,
            ) -> Vec<Option<Var<'t, f64>>> {
                vec![Some(grad_out * 3.0 * inputs[0] * inputs[0])]
            }
            fn jvp<'t>(
                &self,
                inputs: &[Var<'t, f64>],
                _out: Var<'t, f64>,
                tangents: &[Option<Var<'t, f64>>],
            ) -> Option<Var<'t, f64>> {
                tangents[0].map(|t| t * inputs[0] * 2.0)
            }
        }
        fn f<'t>(x: &[Var<'t, f64>]) -> Var<'t, f64> {
            x[0].tape().apply(WrongTangent, &[x[0]])
        }
        assert!(check_gradients(f, &[vec![1.5, -0.5].into()], Tolerance::default()).is_ok());
        let err = check_jvp(f, &[vec![1.5, -0.5].into()], Tolerance::default()).unwrap_err();
        assert_eq!((err.order, err.index), (0, 0), "{err}");
        assert!(err.to_string().starts_with("tangent (forward mode) mismatch"), "{err}");
    }

    #[test]
    fn checker_catches_a_wrong_second_derivative() {
        // First order right (3x²), second order wrong: the backward uses a constant 3x².
        struct FrozenCube;
        impl Op<f64> for FrozenCube {
            fn name(&self) -> &'static str {
                "frozen_cube"
            }
            fn forward(&self, inputs: &[&Tensor<f64>]) -> Tensor<f64> {
                inputs[0].map(|x| x * x * x)
            }
            fn backward<'t>(
                &self,
                inputs: &[Var<'t, f64>],
                _out: Var<'t, f64>,
                grad_out: Var<'t, f64>,
            ) -> Vec<Option<Var<'t, f64>>> {
                let d = inputs[0].value().map(|x| 3.0 * x * x);
                vec![Some(grad_out * inputs[0].tape().constant(d))]
            }
        }
        fn f<'t>(x: &[Var<'t, f64>]) -> Var<'t, f64> {
            x[0].tape().apply(FrozenCube, &[x[0]])
        }
        assert!(check_gradients(f, &[vec![1.5].into()], Tolerance::default()).is_ok());
        let err = check_second_order(f, &[vec![1.5].into()], Tolerance::default()).unwrap_err();
        assert_eq!(err.order, 2);
    }
}

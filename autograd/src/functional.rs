//! Derivatives of functions over tensors, as JAX writes them: [`jvp`], [`vjp`], [`grad`],
//! [`jacobian`] (with [`jacfwd`] and [`jacrev`]), [`hessian`], [`hvp`] and
//! [`per_example_grads`].
//!
//! Each takes the function as a closure `|tape, x| -> Var` (written at the call, or a `fn`,
//! so that Rust sees it works for every tape's lifetime) that builds its output on the tape
//! it is given (a fresh one per evaluation), and returns tensors. Forward mode carries a tangent
//! beside every value ([`Tape::dual`]); reverse mode sweeps the tape back once per output
//! direction ([`Var::backward_with`]). Costs below are in evaluations of `f` ("a forward") and
//! reverse sweeps (each about one to two forwards), for an input of `n` and an output of `m`
//! elements.
//!
//! | function | computes | cost |
//! | --- | --- | --- |
//! | [`jvp`] | `f(x)` and `J·v` | one forward with tangents (about 2–3 forwards) |
//! | [`vjp`] | `f(x)` and `uᵀJ` | one forward and one reverse sweep |
//! | [`grad`] | `∇f(x)` for a one-element `f` | one forward and one reverse sweep |
//! | [`jacfwd`] | `J`, shape `f(x).shape ++ x.shape` | `n` forwards with tangents |
//! | [`jacrev`] | `J`, same shape | one forward and `m` reverse sweeps |
//! | [`jacobian`] | `J`, by the cheaper of the two | [`jacfwd`] when `n ≤ m`, else [`jacrev`] |
//! | [`hvp`] | `H·v` for a one-element `f` | one forward and one reverse sweep, both with tangents (forward over reverse) |
//! | [`hvp_by_double_backward`] | the same | one forward, a recorded reverse sweep and a reverse sweep through it |
//! | [`hessian`] | `H`, shape `x.shape ++ x.shape` | `n` [`hvp`]s |
//! | [`per_example_grads`] | `∇_θ loss(θ, xᵢ)` for each example | one forward and one reverse sweep per example |
//!
//! ```
//! use autograd::functional::{hessian, hvp, jacobian, jvp};
//! use autograd::{Tape, Tensor, Var};
//!
//! // f(x) = (x₀², x₀·x₁): J = [[2x₀, 0], [x₁, x₀]].
//! fn f<'t>(_: &'t Tape<f64>, x: Var<'t, f64>) -> Var<'t, f64> {
//!     let (a, b) = (x.narrow(0, 0, 1), x.narrow(0, 1, 1));
//!     Var::concat(&[a * a, a * b], 0)
//! }
//! let x = Tensor::from(vec![3.0, 2.0]);
//! let (y, dy) = jvp(f, &x, &Tensor::from(vec![1.0, 0.0]));
//! assert_eq!((y.to_vec(), dy.to_vec()), (vec![9.0, 6.0], vec![6.0, 2.0]));
//! assert_eq!(jacobian(f, &x).to_vec(), vec![6.0, 0.0, 2.0, 3.0]);
//!
//! // g(x) = x₀²·x₁: H = [[2x₁, 2x₀], [2x₀, 0]].
//! fn g<'t>(_: &'t Tape<f64>, x: Var<'t, f64>) -> Var<'t, f64> {
//!     (x.narrow(0, 0, 1).powi(2) * x.narrow(0, 1, 1)).sum()
//! }
//! assert_eq!(hessian(g, &x).to_vec(), vec![4.0, 6.0, 6.0, 0.0]);
//! assert_eq!(hvp(g, &x, &Tensor::from(vec![1.0, 1.0])).to_vec(), vec![10.0, 6.0]);
//! //! ```

use crate::{shape_panic, Float, Tape, Tensor, Var};

/// `f(x)` and the Jacobian-vector product `J·v` (the derivative of `f` at `x` along `v`), in one
/// forward pass that carries `v`'s image beside each value. JAX: `jax.jvp(f, (x,), (v,))`.
///
/// Cost: one evaluation of `f` with a tangent rule per op, about two to three times the
/// evaluation alone. `f` runs with recording on, so it may take gradients inside (the tangents
/// are constants: [`Tape::set_differentiable_tangents`]); a function that takes none can wrap
/// its body in [`Tape::no_grad`] to record nothing.
///
/// # Panics
/// If `v` does not have `x`'s shape.
#[track_caller]
pub fn jvp<T, F>(f: F, x: &Tensor<T>, v: &Tensor<T>) -> (Tensor<T>, Tensor<T>)
where
    T: Float,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Var<'t, T>,
{
    jvp_n(|tape, xs| f(tape, xs[0]), std::slice::from_ref(x), std::slice::from_ref(v))
}

/// [`jvp`] of a function of several inputs, with one tangent per input: `f(x)` and
/// `Σᵢ ∂f/∂xᵢ·vᵢ`. JAX: `jax.jvp(f, xs, vs)`.
///
/// # Panics
/// If `xs` and `vs` differ in length, or a tangent's shape differs from its input's.
#[track_caller]
pub fn jvp_n<T, F>(f: F, xs: &[Tensor<T>], vs: &[Tensor<T>]) -> (Tensor<T>, Tensor<T>)
where
    T: Float,
    F: for<'t> Fn(&'t Tape<T>, &[Var<'t, T>]) -> Var<'t, T>,
{
    if xs.len() != vs.len() {
        shape_panic("jvp", &format!("{} inputs but {} tangents", xs.len(), vs.len()));
    }
    let tape = Tape::new();
    tape.set_differentiable_tangents(false);
    let duals: Vec<Var<'_, T>> = xs.iter().zip(vs).map(|(x, v)| tape.dual(x.clone(), v.clone())).collect();
    let y = f(&tape, &duals);
    (y.value(), tangent_or_zeros(y))
}

/// `f(x)` and the vector-Jacobian product `uᵀJ` (the gradient of `⟨f(x), u⟩`), shaped like
/// `x`. JAX: `jax.vjp(f, x)[1](u)`.
///
/// Cost: one evaluation of `f` and one reverse sweep.
///
/// # Panics
/// If `u` does not have the shape of `f(x)`.
#[track_caller]
pub fn vjp<T, F>(f: F, x: &Tensor<T>, u: &Tensor<T>) -> (Tensor<T>, Tensor<T>)
where
    T: Float,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Var<'t, T>,
{
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let y = f(&tape, xv);
    let grads = y.backward_with(u.clone());
    (y.value(), grads.get(xv).cloned().unwrap_or_else(|| Tensor::zeros(x.shape())))
}

/// The gradient of a one-element `f` at `x`, shaped like `x`. JAX: `jax.grad(f)(x)`.
///
/// Cost: one evaluation of `f` and one reverse sweep.
///
/// # Panics
/// If `f(x)` has more than one element.
#[track_caller]
pub fn grad<T, F>(f: F, x: &Tensor<T>) -> Tensor<T>
where
    T: Float,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Var<'t, T>,
{
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let grads = f(&tape, xv).backward();
    grads.get(xv).cloned().unwrap_or_else(|| Tensor::zeros(x.shape()))
}

/// The Jacobian of `f` at `x` by forward mode, one [`jvp`] per input element: shape
/// `f(x).shape ++ x.shape`. JAX: `jax.jacfwd(f)(x)`.
///
/// Cost: `n` evaluations of `f` with tangents, for `n` input elements. Cheaper than
/// [`jacrev`] when the input is smaller than the output.
pub fn jacfwd<T, F>(f: F, x: &Tensor<T>) -> Tensor<T>
where
    T: Float,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Var<'t, T>,
{
    let n = x.numel();
    let mut columns = Vec::with_capacity(n);
    let mut out_shape = Vec::new();
    for j in 0..n {
        let (y, dy) = jvp(&f, x, &basis(x.shape(), j));
        out_shape = y.shape().to_vec();
        columns.push(dy);
    }
    if n == 0 {
        let tape = Tape::new();
        out_shape = f(&tape, tape.var(x.clone())).shape().to_vec();
    }
    // columns[j][i] = ∂yᵢ/∂xⱼ: transpose into row-major (m, n).
    let m: usize = out_shape.iter().product();
    let data = (0..m * n).map(|k| columns[k % n].data()[k / n]).collect();
    Tensor::from_vec(data, &[out_shape.as_slice(), x.shape()].concat())
}

/// The Jacobian of `f` at `x` by reverse mode, one reverse sweep per output element over a
/// single recorded evaluation: shape `f(x).shape ++ x.shape`. JAX: `jax.jacrev(f)(x)`.
///
/// Cost: one evaluation of `f` and `m` reverse sweeps, for `m` output elements. Cheaper than
/// [`jacfwd`] when the output is smaller than the input.
pub fn jacrev<T, F>(f: F, x: &Tensor<T>) -> Tensor<T>
where
    T: Float,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Var<'t, T>,
{
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let y = f(&tape, xv);
    let out_shape = y.shape();
    let m = y.numel();
    let mut data = Vec::with_capacity(m * x.numel());
    for i in 0..m {
        let grads = y.backward_with(basis(&out_shape, i));
        match grads.get(xv) {
            Some(g) => data.extend_from_slice(g.data()),
            None => data.extend(std::iter::repeat_n(T::ZERO, x.numel())),
        }
    }
    Tensor::from_vec(data, &[out_shape.as_slice(), x.shape()].concat())
}

/// The Jacobian of `f` at `x`, shape `f(x).shape ++ x.shape`, by [`jacfwd`] when the input has
/// no more elements than the output and by [`jacrev`] otherwise (as JAX advises choosing
/// between `jax.jacfwd` and `jax.jacrev`).
///
/// Cost: one evaluation of `f` to learn the output's size, then the chosen mode's cost:
/// `min(n, m)` passes.
pub fn jacobian<T, F>(f: F, x: &Tensor<T>) -> Tensor<T>
where
    T: Float,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Var<'t, T>,
{
    let m = {
        let tape = Tape::new();
        tape.no_grad(|| f(&tape, tape.constant(x.clone())).numel())
    };
    if x.numel() <= m {
        jacfwd(f, x)
    } else {
        jacrev(f, x)
    }
}

/// The Hessian-vector product `H·v` of a one-element `f` at `x`, by forward over reverse: the
/// tangent along `v` of the gradient (the [`jvp`] of [`grad`]), shaped like `x`. JAX:
/// `jax.jvp(jax.grad(f), (x,), (v,))[1]`.
///
/// Cost: one evaluation of `f` and one recorded reverse sweep, both carrying tangents: about
/// the cost of a gradient times the tangents' overhead. Measured on an MLP (`cargo bench --bench
/// forward`), that is about what [`hvp_by_double_backward`] costs (it sweeps the recorded
/// gradient once more in reverse instead).
///
/// # Panics
/// If `f(x)` has more than one element, or `v` does not have `x`'s shape.
#[track_caller]
pub fn hvp<T, F>(f: F, x: &Tensor<T>, v: &Tensor<T>) -> Tensor<T>
where
    T: Float,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Var<'t, T>,
{
    let tape = Tape::new();
    tape.set_differentiable_tangents(false);
    let xv = tape.dual(x.clone(), v.clone());
    let g = tape.grad(f(&tape, xv), &[xv])[0];
    tangent_or_zeros(g)
}

/// The Hessian-vector product by reverse over reverse: the gradient of `⟨∇f(x), v⟩`, through
/// the recorded gradient ([`Tape::grad`]). The same result as [`hvp`], for comparison (and for
/// functions with a custom op whose tangent would fall back to the double-vjp identity).
///
/// Cost: one evaluation of `f`, one recorded reverse sweep and a reverse sweep through both.
///
/// # Panics
/// If `f(x)` has more than one element, or `v` does not have `x`'s shape.
#[track_caller]
pub fn hvp_by_double_backward<T, F>(f: F, x: &Tensor<T>, v: &Tensor<T>) -> Tensor<T>
where
    T: Float,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Var<'t, T>,
{
    if v.shape() != x.shape() {
        shape_panic("hvp", &format!("a direction of shape {:?} for an input of shape {:?}", v.shape(), x.shape()));
    }
    let tape = Tape::new();
    let xv = tape.var(x.clone());
    let g = tape.grad(f(&tape, xv), &[xv])[0];
    let grads = (g * tape.constant(v.clone())).sum().backward();
    grads.get(xv).cloned().unwrap_or_else(|| Tensor::zeros(x.shape()))
}

/// The Hessian of a one-element `f` at `x`, shape `x.shape ++ x.shape`, one [`hvp`] per input
/// element (forward over reverse). JAX: `jax.hessian(f)(x)` (`jacfwd(jacrev(f))`).
///
/// Cost: `n` Hessian-vector products, for `n` input elements.
///
/// # Panics
/// If `f(x)` has more than one element.
#[track_caller]
pub fn hessian<T, F>(f: F, x: &Tensor<T>) -> Tensor<T>
where
    T: Float,
    F: for<'t> Fn(&'t Tape<T>, Var<'t, T>) -> Var<'t, T>,
{
    let n = x.numel();
    let columns: Vec<Tensor<T>> = (0..n).map(|j| hvp(&f, x, &basis(x.shape(), j))).collect();
    // The Hessian is symmetric, but its columns are laid out as rows of (n, n) explicitly, so
    // that a function whose mixed partials differ numerically is reported as computed.
    let data = (0..n * n).map(|k| columns[k % n].data()[k / n]).collect();
    Tensor::from_vec(data, &[x.shape(), x.shape()].concat())
}

/// The gradient of `loss(θ, example)` with respect to each parameter tensor `θ`, for each
/// example of `batch` taken along its first dim: for parameter `k`, a tensor of shape
/// `(batch, θₖ.shape)` (what `jax.vmap(jax.grad(loss), in_axes=(None, 0))` gives, or Opacus'
/// per-sample gradients for differential privacy).
///
/// `loss` gets the parameters as `Var`s and one example as a `Var` of shape `batch.shape[1..]`,
/// and returns a one-element loss.
///
/// Cost: one evaluation and one reverse sweep per example, on one tape reused from example to
/// example: the time of the batch's gradient computed example by example, and the memory of
/// one example's graph plus the result.
///
/// # Panics
/// If `batch` is 0-d, or a loss has more than one element.
#[track_caller]
pub fn per_example_grads<T, F>(loss: F, params: &[Tensor<T>], batch: &Tensor<T>) -> Vec<Tensor<T>>
where
    T: Float,
    F: for<'t> Fn(&[Var<'t, T>], Var<'t, T>) -> Var<'t, T>,
{
    if batch.rank() == 0 {
        shape_panic("per_example_grads", "the batch is 0-d: it needs a first dim to take examples along");
    }
    let b = batch.shape()[0];
    let example_shape = &batch.shape()[1..];
    let per = example_shape.iter().product::<usize>();
    let mut out: Vec<Vec<T>> = params.iter().map(|p| Vec::with_capacity(b * p.numel())).collect();
    let mut tape = Tape::new();
    for i in 0..b {
        tape.reset();
        let example = Tensor::from_vec(batch.data()[i * per..(i + 1) * per].to_vec(), example_shape);
        let ps: Vec<Var<'_, T>> = params.iter().map(|p| tape.var(p.clone())).collect();
        let grads = loss(&ps, tape.constant(example)).backward();
        for ((o, p), v) in out.iter_mut().zip(params).zip(&ps) {
            match grads.get(*v) {
                Some(g) => o.extend_from_slice(g.data()),
                None => o.extend(std::iter::repeat_n(T::ZERO, p.numel())),
            }
        }
    }
    out.into_iter().zip(params).map(|(data, p)| Tensor::from_vec(data, &[&[b], p.shape()].concat())).collect()
}

/// The tangent `y` carries, or zeros of its shape if it depends on no dual leaf.
fn tangent_or_zeros<T: Float>(y: Var<'_, T>) -> Tensor<T> {
    y.tangent().map(|t| t.value()).unwrap_or_else(|| Tensor::zeros(&y.shape()))
}

/// The `j`-th unit tensor of `shape` (row-major).
fn basis<T: Float>(shape: &[usize], j: usize) -> Tensor<T> {
    let mut e = Tensor::zeros(shape);
    e.data_mut()[j] = T::ONE;
    e
}

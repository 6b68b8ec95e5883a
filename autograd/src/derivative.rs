//! Derivatives written once: an element-wise op states its derivative as one generic rule over
//! [`Value`], and [`Derived`] turns it into an [`Op`] whose three backward paths are all that
//! rule.
//!
//! A plain [`Var::backward`] over single numbers (a micrograd-style graph) runs the rule on
//! numbers ([`Op::backward_scalar`]); over tensors it runs the same number rule element by
//! element, in one fused pass ([`Op::backward_values`]); [`Tape::grad`](crate::Tape::grad) runs
//! it on `Var`s ([`Op::backward`]), recording the gradient so that it can be differentiated
//! again. This is dfdx's `UnaryDerivative { f, df }` taken one step further: the same `df`
//! also builds the differentiable gradient.
//!
//! Tensors are not a [`Value`] themselves on purpose: a rule such as tanh's `g·(1 − out²)`,
//! run on whole tensors, would make a pass and a buffer per operation, where the number rule
//! applied element by element makes one.
//!
//! # An element-wise op from its rule
//!
//! `cube(x) = x³`, with `d cube / dx = 3x²`: the rule is the whole backward.
//!
//! ```
//! use autograd::derivative::{Derived, Elementwise, Value};
//! use autograd::{check, Float, Tape};
//!
//! struct Cube;
//!
//! impl Elementwise<1> for Cube {
//!     fn name(&self) -> &'static str {
//!         "cube"
//!     }
//!     fn f<T: Float>(&self, [x]: [T; 1]) -> T {
//!         x * x * x
//!     }
//!     // g · d x³/dx = g · 3x².
//!     fn df<T: Float, X: Value<T>>(&self, _i: usize, [x]: [X; 1], _out: X, g: X) -> X {
//!         (g * x * x).scale(3.0)
//!     }
//! }
//!
//! let tape = Tape::<f64>::new();
//! let x = tape.var(2.0);
//! let y = tape.apply(Derived::unary(Cube), &[x]);
//! assert_eq!(y.backward()[x].item(), 12.0);
//! fn cube<'t>(v: &[autograd::Var<'t, f64>]) -> autograd::Var<'t, f64> {
//!     v[0].tape().apply(Derived::unary(Cube), &[v[0]]).sum()
//! }
//! check::gradcheck(cube, &[vec![0.5, -1.5, 2.0].into()]);
//! check::gradgradcheck(cube, &[vec![0.5, -1.5, 2.0].into()]);
//! ```

use std::ops::{Add, Div, Mul, Neg, Sub};

use smallvec::SmallVec;

use crate::op::TensorGrads;
use crate::{shape, Float, Op, Tensor, Var};

/// What a derivative rule computes with: a number `T`, or a [`Var`] (whose operations are
/// recorded, so that the gradient can be differentiated again).
///
/// Besides the arithmetic operators, it has the functions the built-in rules need. Each
/// method is the same function for both; a test checks that they agree.
pub trait Value<T: Float>:
    Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self> + Neg<Output = Self>
{
    /// `scale·self + shift`, for constants `scale` and `shift`.
    fn affine(self, scale: f64, shift: f64) -> Self;
    /// `eˣ`.
    fn exp(self) -> Self;
    /// `tanh(x)`.
    fn tanh(self) -> Self;
    /// The logistic sigmoid `1/(1 + e^(−x))`.
    fn sigmoid(self) -> Self;
    /// `xᵖ` for a real constant `p`.
    fn powf(self, p: f64) -> Self;
    /// `xⁿ` for an integer constant `n`.
    fn powi(self, n: i32) -> Self;
    /// Zero, shaped like `self` but not a function of it (a constant on the tape).
    fn zero(self) -> Self;
    /// `f(self)` for a piecewise-constant `f` (a sign, a mask). Its derivative is zero wherever
    /// it is defined, so for a `Var` it enters the tape as a constant.
    fn step(self, f: impl Fn(T) -> T + Copy + Send + Sync) -> Self;
    /// `self` where `keep(at)`, else exactly zero, also where `self` is infinite or NaN (a mask
    /// multiplied in would give NaN there).
    fn keep_where(self, at: Self, keep: impl Fn(T) -> bool + Copy + Send + Sync) -> Self;
    /// `Φ(self)`, the standard normal distribution function, given GELU's output
    /// `out = self·Φ(self)`. A number reads it back as `out / self` (within an ulp or two of
    /// `Φ`, and much cheaper than its erfc), and as ½ where `|self| < 1e-20` (where `out` may
    /// round to zero and `Φ` is ½ to working precision); a `Var` computes `½(1 + erf(x/√2))`,
    /// which can be differentiated again.
    fn normal_cdf_given_gelu(self, out: Self) -> Self;

    /// `c·self`, for a constant `c`.
    #[inline(always)]
    fn scale(self, c: f64) -> Self {
        self.affine(c, 0.0)
    }
}

impl<T: Float> Value<T> for T {
    #[inline(always)]
    fn affine(self, scale: f64, shift: f64) -> Self {
        // The same float operations as the `affine` op's forward.
        let (s, c) = (T::from_f64(scale), T::from_f64(shift));
        match (scale == 1.0, shift == 0.0) {
            (true, _) => self + c,
            (false, true) => self * s,
            (false, false) => self * s + c,
        }
    }
    #[inline(always)]
    fn exp(self) -> Self {
        Float::exp(self)
    }
    #[inline(always)]
    fn tanh(self) -> Self {
        Float::tanh(self)
    }
    #[inline(always)]
    fn sigmoid(self) -> Self {
        crate::ops::activation::sigmoid_scalar(self)
    }
    #[inline(always)]
    fn powf(self, p: f64) -> Self {
        Float::powf(self, T::from_f64(p))
    }
    #[inline(always)]
    fn powi(self, n: i32) -> Self {
        Float::powi(self, n)
    }
    #[inline(always)]
    fn zero(self) -> Self {
        T::ZERO
    }
    #[inline(always)]
    fn step(self, f: impl Fn(T) -> T + Copy + Send + Sync) -> Self {
        f(self)
    }
    #[inline(always)]
    fn keep_where(self, at: Self, keep: impl Fn(T) -> bool + Copy + Send + Sync) -> Self {
        if keep(at) {
            self
        } else {
            T::ZERO
        }
    }
    #[inline(always)]
    fn normal_cdf_given_gelu(self, out: Self) -> Self {
        if self.abs() < T::from_f64(1e-20) {
            T::from_f64(0.5)
        } else {
            out / self
        }
    }
}

impl<'t, T: Float> Value<T> for Var<'t, T> {
    fn affine(self, scale: f64, shift: f64) -> Self {
        Var::affine(self, scale, shift)
    }
    fn exp(self) -> Self {
        Var::exp(self)
    }
    fn tanh(self) -> Self {
        Var::tanh(self)
    }
    fn sigmoid(self) -> Self {
        Var::sigmoid(self)
    }
    fn powf(self, p: f64) -> Self {
        Var::powf(self, p)
    }
    fn powi(self, n: i32) -> Self {
        Var::powi(self, n)
    }
    fn zero(self) -> Self {
        self.tape().constant(Tensor::zeros(&self.shape()))
    }
    fn step(self, f: impl Fn(T) -> T + Copy + Send + Sync) -> Self {
        self.tape().constant(self.value().map(f))
    }
    fn keep_where(self, at: Self, keep: impl Fn(T) -> bool + Copy + Send + Sync) -> Self {
        let cond = at.value().map(|v| if keep(v) { T::ONE } else { T::ZERO });
        self.where_cond(&cond, self.tape().constant(T::ZERO))
    }
    fn normal_cdf_given_gelu(self, _out: Self) -> Self {
        ((self * std::f64::consts::FRAC_1_SQRT_2).erf() + 1.0) * 0.5
    }
}

/// An element-wise op of `N` inputs (1 or 2; two broadcast against each other as NumPy does),
/// given by what it computes on numbers and its derivative rule. [`Derived`] makes it an
/// [`Op`]; the built-in rules without parameters are declared with `rules!`.
pub trait Elementwise<const N: usize>: Send + Sync + 'static {
    /// The op's name, as [`Op::name`].
    fn name(&self) -> &'static str;

    /// The op on numbers.
    fn f<T: Float>(&self, x: [T; N]) -> T;

    /// The rule: `g · ∂out/∂xᵢ` at one point, where `x` are the inputs, `out` the output and `g`
    /// the gradient flowing into the output. Written once over [`Value`], it runs on numbers
    /// (single numbers, and tensors element by element) and on `Var`s (second order).
    ///
    /// `i` is always a literal where the tensor pass calls it, so a `match i` in the rule
    /// costs nothing per element.
    fn df<T: Float, X: Value<T>>(&self, i: usize, x: [X; N], out: X, g: X) -> X;

    /// Whether input `i`'s gradient is `g` itself (its derivative is 1 everywhere, as for both
    /// inputs of `+`): tensors then pass `g` on (summed over broadcast dims) without a pass
    /// over the elements. `df` must then return `g` for that input.
    fn passes_gradient(&self, i: usize) -> bool {
        let _ = i;
        false
    }

    /// The output over tensors: [`f`](Elementwise::f) element by element, in one pass (for two
    /// inputs, over their broadcast shape). Override it to hoist a choice on the op's
    /// parameters out of the loop.
    ///
    /// # Panics
    /// If two inputs do not broadcast; the message names the op.
    fn forward<T: Float>(&self, x: [&Tensor<T>; N]) -> Tensor<T> {
        match N {
            1 => x[0].map(|v| self.f(std::array::from_fn(|_| v))),
            _ => x[0].zip_map(x[N - 1], self.name(), |a, b| {
                let ab = [a, b];
                self.f(std::array::from_fn(|k| ab[k]))
            }),
        }
    }

    /// The rule's attributes for an exporter, as [`Op::attrs`]: `None` (the default) says it
    /// cannot be exported.
    fn attrs(&self) -> Option<crate::trace::OpAttrs> {
        None
    }
}

/// Declares element-wise rules without parameters, one entry each, as
///
/// ```text
/// /// What it is; its derivative in math notation.
/// Name = "name", fn(x) value_of_x, d(i, [x], out, g) g_times_the_derivative;
/// ```
///
/// for [`Elementwise::f`] and [`Elementwise::df`] (two inputs: `fn(a, b)` and `[a, b]`), with
/// `, passes(i) bool` after the derivative for [`Elementwise::passes_gradient`]. In the
/// derivative, `T` is the element type and the values are any [`Value`]`<T>`.
macro_rules! rules {
    ($(
        $(#[$attr:meta])*
        $rule:ident = $name:literal, fn($($x:ident),+) $f:expr,
        d($i:pat, [$($dx:pat),+], $out:pat, $g:pat) $df:expr $(, passes($pi:pat) $pass:expr)?;
    )*) => {$(
        $(#[$attr])*
        struct $rule;

        impl $crate::derivative::Elementwise<{ [$(stringify!($x)),+].len() }> for $rule {
            fn name(&self) -> &'static str {
                $name
            }
            #[inline(always)]
            fn f<T: $crate::Float>(&self, [$($x),+]: [T; { [$(stringify!($x)),+].len() }]) -> T {
                $f
            }
            #[inline(always)]
            fn df<T: $crate::Float, X: $crate::derivative::Value<T>>(
                &self,
                $i: usize,
                [$($dx),+]: [X; { [$(stringify!($x)),+].len() }],
                $out: X,
                $g: X,
            ) -> X {
                $df
            }
            $(fn passes_gradient(&self, $pi: usize) -> bool {
                $pass
            })?
            fn attrs(&self) -> Option<$crate::trace::OpAttrs> {
                Some($crate::trace::OpAttrs::Plain)
            }
        }
    )*};
}

pub(crate) use rules;

/// The [`Op`] of an [`Elementwise`] rule: its forward, and a backward on every path from
/// [`Elementwise::df`].
pub struct Derived<R, const N: usize>(R);

impl<R: Elementwise<1>> Derived<R, 1> {
    /// The op of a one-input rule.
    pub fn unary(rule: R) -> Self {
        Derived(rule)
    }
}

impl<R: Elementwise<2>> Derived<R, 2> {
    /// The op of a two-input rule.
    pub fn binary(rule: R) -> Self {
        Derived(rule)
    }
}

impl<R: Elementwise<N>, const N: usize> Derived<R, N> {
    /// Input `i`'s gradient over tensors: `df` on numbers, element by element in one pass over
    /// the output's shape, summed back to the input's shape.
    #[inline(always)]
    fn tensor_grad<T: Float>(
        &self,
        inputs: &[&Tensor<T>],
        out: &Tensor<T>,
        g: &Tensor<T>,
        df: impl Fn([T; N], T, T) -> T + Sync + Send,
    ) -> Tensor<T> {
        let full = out.shape();
        if out.numel() == 1 {
            // A single number (a 0-d node outside the scalar lane): no buffer.
            let x = std::array::from_fn(|k| inputs[k].data()[0]);
            return Tensor::scalar(df(x, out.data()[0], g.data()[0])).reshape(full);
        }
        // Each input as a tensor of the output's shape, or, if it has one element, as a number
        // held by the closure (the output stands in for it in the pass and is not read).
        let operand = |k: usize| {
            let t = inputs[k.min(N - 1)];
            if shape::same(t.shape(), full) {
                (t.clone(), None)
            } else if t.numel() == 1 {
                (out.clone(), Some(t.data()[0]))
            } else {
                (t.broadcast_to(full), None)
            }
        };
        let ((a, one_a), (b, one_b)) = (operand(0), operand(1));
        g.zip4_map(out, &a, &b, self.0.name(), move |g, out, a, b| {
            let both = [one_a.unwrap_or(a), one_b.unwrap_or(b)];
            df(std::array::from_fn(|k| both[k]), out, g)
        })
    }
}

impl<T: Float, R: Elementwise<N>, const N: usize> Op<T> for Derived<R, N> {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        self.0.forward(std::array::from_fn(|k| inputs[k]))
    }

    fn backward<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let x: [Var<'t, T>; N] = std::array::from_fn(|k| inputs[k]);
        (0..N).map(|i| x[i].requires_grad().then(|| self.0.df(i, x, out, grad_out).sum_to(&x[i].shape()))).collect()
    }

    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        out: &Tensor<T>,
        grad_out: &Tensor<T>,
        needs_grad: &[bool],
    ) -> Option<TensorGrads<T>> {
        let rule = &self.0;
        let grad = |i: usize| -> Tensor<T> {
            let shape = inputs[i].shape();
            if rule.passes_gradient(i) {
                return grad_out.sum_to(shape);
            }
            // `i` as a literal in each closure, so the rule's `match i` folds away.
            let d = match i {
                0 => self.tensor_grad(inputs, out, grad_out, |x, o, g| rule.df(0, x, o, g)),
                _ => self.tensor_grad(inputs, out, grad_out, |x, o, g| rule.df(1, x, o, g)),
            };
            d.sum_to(shape)
        };
        let grads: SmallVec<_> = (0..N).map(|i| needs_grad[i].then(|| grad(i))).collect();
        Some(grads)
    }

    fn backward_scalar(&self, inputs: &[T], out: T, grad_out: T, grads: &mut [T]) -> bool {
        let x: [T; N] = std::array::from_fn(|k| inputs[k]);
        for (i, d) in grads.iter_mut().enumerate() {
            *d = self.0.df(i, x, out, grad_out);
        }
        true
    }

    fn attrs(&self) -> Option<crate::trace::OpAttrs> {
        self.0.attrs()
    }

    // Forward mode from the same rule: df(i, x, out, g) = g·∂out/∂xᵢ, so with g = dxᵢ it is
    // that input's share of the tangent, and dout = Σᵢ ∂out/∂xᵢ·dxᵢ.
    fn jvp<'t>(&self, inputs: &[Var<'t, T>], out: Var<'t, T>, tangents: &[Option<Var<'t, T>>]) -> Option<Var<'t, T>> {
        let tape = out.tape();
        let shape = out.shape();
        let full = |t: Var<'t, T>| if t.shape() == shape { t } else { t.broadcast_to(&shape) };
        // Nobody differentiates the tangent: the number rule in one fused pass per input, as a
        // constant, as `backward_values` does for the gradient.
        if !tape.is_recording() || !(inputs.iter().chain(tangents.iter().flatten()).any(|v| v.requires_grad())) {
            let values: SmallVec<[Tensor<T>; 2]> = inputs.iter().map(|v| v.value()).collect();
            let refs: SmallVec<[&Tensor<T>; 2]> = values.iter().collect();
            let out_value = out.value();
            let mut sum: Option<Tensor<T>> = None;
            for (i, t) in tangents.iter().enumerate() {
                let Some(t) = t else { continue };
                let t = t.value();
                let t = if t.shape() == shape.as_slice() { t } else { t.broadcast_to(&shape) };
                let d = if self.0.passes_gradient(i) {
                    t
                } else {
                    match i {
                        0 => self.tensor_grad(&refs, &out_value, &t, |x, o, g| self.0.df(0, x, o, g)),
                        _ => self.tensor_grad(&refs, &out_value, &t, |x, o, g| self.0.df(1, x, o, g)),
                    }
                };
                sum = Some(match sum {
                    None => d,
                    Some(s) => s.zip_map(&d, "jvp", |a, b| a + b),
                });
            }
            return sum.map(|s| tape.constant(s));
        }
        let x: [Var<'t, T>; N] = std::array::from_fn(|k| inputs[k]);
        let mut sum: Option<Var<'t, T>> = None;
        for (i, t) in tangents.iter().enumerate() {
            let Some(t) = t else { continue };
            let d = self.0.df(i, x, out, full(*t));
            sum = Some(match sum {
                None => d,
                Some(s) => s + d,
            });
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::Value;
    use crate::{Tape, Tensor, Var};

    /// Every [`Value`] method on numbers and on `Var`s, at points on both sides of the kinks
    /// and of GELU's small-`x` branch: the two must be the same function, since a rule's plain
    /// gradient runs on numbers and its differentiable one on `Var`s.
    #[test]
    fn numbers_and_vars_are_the_same_value() {
        type Method = for<'t> fn(Var<'t, f64>, Var<'t, f64>) -> Var<'t, f64>;
        type Number = fn(f64, f64) -> f64;
        let methods: [(&str, Number, Method); 10] = [
            ("affine", |x, _| x.affine(-1.5, 0.25), |x, _| x.affine(-1.5, 0.25)),
            ("exp", |x, _| Value::exp(x), |x, _| Value::exp(x)),
            ("tanh", |x, _| Value::tanh(x), |x, _| Value::tanh(x)),
            ("sigmoid", |x, _| Value::sigmoid(x), |x, _| Value::sigmoid(x)),
            ("powf", |x, _| Value::powf(x.abs(), 2.5), |x, _| Value::powf(x.abs(), 2.5)),
            ("powi", |x, _| Value::powi(x, 3), |x, _| Value::powi(x, 3)),
            ("zero", |x, _| x.zero(), |x, _| x.zero()),
            ("step", |x, _| x.step(f64::signum), |x, _| x.step(f64::signum)),
            ("keep_where", |x, y| y.keep_where(x, |v| v > 0.0), |x, y| y.keep_where(x, |v| v > 0.0)),
            (
                "normal_cdf_given_gelu",
                |x, _| x.normal_cdf_given_gelu(x * gelu_cdf(x)),
                |x, y| x.normal_cdf_given_gelu(y),
            ),
        ];
        let points = [-3.0, -0.7, -1e-30, 0.0, 1e-30, 0.3, 2.5];
        for (name, number, method) in methods {
            for x in points {
                let y = x * gelu_cdf(x);
                let tape = Tape::<f64>::new();
                let got = method(tape.var(x), tape.var(y)).item();
                let want = number(x, y);
                assert!((got - want).abs() <= 1e-15 * (1.0 + want.abs()), "{name} at {x}: Var {got}, number {want}");
            }
        }
        // `keep_where` gives exactly zero where it drops, also for an infinite gradient.
        let tape = Tape::<f64>::new();
        let dropped = tape.var(f64::INFINITY).keep_where(tape.var(-1.0), |v| v > 0.0);
        assert_eq!((dropped.item(), Value::keep_where(f64::INFINITY, -1.0, |v| v > 0.0)), (0.0, 0.0));
        assert_eq!(tape.var(Tensor::from(vec![1.0, 2.0])).zero().value().to_vec(), vec![0.0, 0.0]);
    }

    fn gelu_cdf(x: f64) -> f64 {
        0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
    }
}

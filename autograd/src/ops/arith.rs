//! Arithmetic: `+ - * /` between `Var`s (with NumPy broadcasting), unary minus, reciprocal, and
//! the affine map `a·x + b` through which plain numbers mix in on either side.

use std::ops::{Add, Div, Mul, Neg, Sub};

// `Value` is named by path, not imported: in scope, its methods would clash with `Float`'s on `T`.
use crate::derivative::{self, rules, Derived, Elementwise};
use crate::trace::OpAttrs;
use crate::{Float, Tensor, Var};

rules! {
    /// `a + b`; ∂(a+b)/∂a = 1, ∂(a+b)/∂b = 1 (each summed back over its broadcast dims).
    AddOp = "add", fn(a, b) a + b, d(_, [_, _], _, g) g, passes(_) true;
    /// `a − b`; ∂(a−b)/∂a = 1, ∂(a−b)/∂b = −1.
    SubOp = "sub", fn(a, b) a - b, d(i, [_, _], _, g) match i {
        0 => g,
        _ => -g,
    }, passes(i) i == 0;
    /// `a·b`; ∂(a·b)/∂a = b, ∂(a·b)/∂b = a.
    MulOp = "mul", fn(a, b) a * b, d(i, [a, b], _, g) match i {
        0 => g * b,
        _ => g * a,
    };
    /// `a/b`; ∂(a/b)/∂a = 1/b, ∂(a/b)/∂b = −a/b² = −out/b.
    DivOp = "div", fn(a, b) a / b, d(i, [_, b], out, g) match i {
        0 => g / b,
        _ => -(g * out / b),
    };
    /// `−x`; ∂(−x)/∂x = −1.
    NegOp = "neg", fn(x) -x, d(_, [_], _, g) -g;
    /// `1/x`; d(1/x)/dx = −1/x² = −out².
    RecipOp = "recip", fn(x) T::ONE / x, d(_, [_], out, g) -(g * out * out);
}

/// `scale · x + shift` with constants `scale` and `shift`: how `x * 2.0`, `1.0 - x` and friends
/// are recorded, as one node and without a constant node for the number.
struct AffineOp {
    scale: f64,
    shift: f64,
}

impl Elementwise<1> for AffineOp {
    fn name(&self) -> &'static str {
        "affine"
    }
    fn f<T: Float>(&self, [x]: [T; 1]) -> T {
        derivative::Value::affine(x, self.scale, self.shift)
    }
    // d(s·x + c)/dx = s.
    fn df<T: Float, X: derivative::Value<T>>(&self, _: usize, _: [X; 1], _: X, g: X) -> X {
        g.scale(self.scale)
    }
    // Which of the scale and the shift to apply, chosen once per tensor.
    fn forward<T: Float>(&self, [x]: [&Tensor<T>; 1]) -> Tensor<T> {
        let (scale, shift) = (T::from_f64(self.scale), T::from_f64(self.shift));
        match (self.scale == 1.0, self.shift == 0.0) {
            (true, _) => x.map(|x| x + shift),
            (false, true) => x.map(|x| x * scale),
            (false, false) => x.map(|x| x * scale + shift),
        }
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Affine { scale: self.scale, shift: self.shift })
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// `scale · self + shift`, element-wise, for constants `scale` and `shift`; the derivative is
    /// `scale`. `x * 2.0`, `x + 1.0`, `1.0 - x` and `x / 4.0` are recorded as this op.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(3.0);
    /// assert_eq!(x.affine(2.0, 1.0).item(), 7.0);
    /// ```
    #[track_caller]
    pub fn affine(self, scale: f64, shift: f64) -> Var<'t, T> {
        if scale == 1.0 && shift == 0.0 {
            return self;
        }
        self.tape().apply(Derived::unary(AffineOp { scale, shift }), &[self])
    }

    /// `1 / self`, element-wise; the derivative is `−1/x²`. PyTorch: `torch.reciprocal`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// assert_eq!(tape.var(4.0).recip().item(), 0.25);
    /// ```
    #[track_caller]
    pub fn recip(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(RecipOp), &[self])
    }
}

macro_rules! var_binary {
    ($trait:ident, $method:ident, $op:ident) => {
        impl<'t, T: Float> $trait<Var<'t, T>> for Var<'t, T> {
            type Output = Var<'t, T>;
            /// Element-wise, with NumPy broadcasting.
            ///
            /// # Panics
            /// If the shapes do not broadcast.
            #[track_caller]
            fn $method(self, rhs: Var<'t, T>) -> Var<'t, T> {
                self.tape().apply(Derived::binary($op), &[self, rhs])
            }
        }
    };
}

var_binary!(Add, add, AddOp);
var_binary!(Sub, sub, SubOp);
var_binary!(Mul, mul, MulOp);
var_binary!(Div, div, DivOp);

impl<'t, T: Float> Neg for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn neg(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(NegOp), &[self])
    }
}

impl<'t, T: Float> Add<f64> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn add(self, rhs: f64) -> Var<'t, T> {
        self.affine(1.0, rhs)
    }
}

impl<'t, T: Float> Sub<f64> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn sub(self, rhs: f64) -> Var<'t, T> {
        self.affine(1.0, -rhs)
    }
}

impl<'t, T: Float> Mul<f64> for Var<'t, T> {
    type Output = Var<'t, T>;
    #[track_caller]
    fn mul(self, rhs: f64) -> Var<'t, T> {
        self.affine(rhs, 0.0)
    }
}

impl<'t, T: Float> Div<f64> for Var<'t, T> {
    type Output = Var<'t, T>;
    /// Multiplies by `1 / rhs` (rounded once), as PyTorch does for a scalar divisor.
    #[track_caller]
    fn div(self, rhs: f64) -> Var<'t, T> {
        self.affine(1.0 / rhs, 0.0)
    }
}

impl<'t, T: Float> Add<Var<'t, T>> for f64 {
    type Output = Var<'t, T>;
    #[track_caller]
    fn add(self, rhs: Var<'t, T>) -> Var<'t, T> {
        rhs.affine(1.0, self)
    }
}

impl<'t, T: Float> Sub<Var<'t, T>> for f64 {
    type Output = Var<'t, T>;
    #[track_caller]
    fn sub(self, rhs: Var<'t, T>) -> Var<'t, T> {
        rhs.affine(-1.0, self)
    }
}

impl<'t, T: Float> Mul<Var<'t, T>> for f64 {
    type Output = Var<'t, T>;
    #[track_caller]
    fn mul(self, rhs: Var<'t, T>) -> Var<'t, T> {
        rhs.affine(self, 0.0)
    }
}

impl<'t, T: Float> Div<Var<'t, T>> for f64 {
    type Output = Var<'t, T>;
    #[track_caller]
    fn div(self, rhs: Var<'t, T>) -> Var<'t, T> {
        rhs.recip().affine(self, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    #[test]
    fn mul_div_grads_match_hand_values() {
        let tape = Tape::<f64>::new();
        let (a, b) = (tape.var(3.0), tape.var(2.0));
        let grads = (a * b + a / b).backward();
        // ∂/∂a = b + 1/b = 2.5; ∂/∂b = a − a/b² = 3 − 0.75 = 2.25
        assert_eq!(grads[a].item(), 2.5);
        assert_eq!(grads[b].item(), 2.25);
    }

    #[test]
    fn scalars_mix_in_on_either_side() {
        let tape = Tape::<f32>::new();
        let x = tape.var(2.0f32);
        let y = 1.0 - x * 3.0 + 8.0 / x - x / 2.0; // 1 − 6 + 4 − 1 = −2
        assert_eq!(y.item(), -2.0);
        // dy/dx = −3 − 8/x² − 1/2 = −5.5
        assert_eq!(y.backward()[x].item(), -5.5);
    }

    #[test]
    fn broadcast_grads_sum_over_stretched_dims() {
        let tape = Tape::<f64>::new();
        let m = tape.var(Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]));
        let row = tape.var(Tensor::from_vec(vec![1.0, 1.0, 1.0], &[3]));
        let grads = (m * row).sum().backward();
        assert_eq!(grads[row].data(), &[5.0, 7.0, 9.0]);
        assert_eq!(grads[m].shape(), &[2, 3]);
    }

    #[test]
    fn arith_grads_match_finite_diff() {
        let a: Tensor<f64> = Tensor::from_vec(vec![0.5, -1.2, 2.0, 0.7, 1.1, -0.3], &[2, 3]);
        let b: Tensor<f64> = Tensor::from_vec(vec![1.5, -2.0, 0.8], &[3]);
        gradcheck(|v| ((v[0] + v[1]) * v[0] - v[1] / v[0] * 2.0).exp().mean(), &[a.clone(), b.clone()]);
        gradgradcheck(|v| ((v[0] - v[1]) * v[1] / (v[0] * v[0] + 1.0)).sum(), &[a, b]);
    }
}

//! Element-wise functions of one input: exp, ln, sqrt, abs, powf, powi, erf.

// `Value` is named by path, not imported: in scope, its methods would clash with `Float`'s on `T`.
use crate::derivative::{self, rules, Derived, Elementwise};
use crate::trace::OpAttrs;
use crate::{Float, Tensor, Var};

rules! {
    /// `eˣ`; d eˣ/dx = eˣ = out.
    Exp = "exp", fn(x) x.exp(), d(_, [_], out, g) g * out;
    /// `ln x`; d ln x/dx = 1/x.
    Ln = "ln", fn(x) x.ln(), d(_, [x], _, g) g / x;
    /// `√x`; d √x/dx = 1/(2√x) = 0.5/out.
    Sqrt = "sqrt", fn(x) x.sqrt(), d(_, [_], out, g) (g / out).scale(0.5);
    /// `|x|`; d|x|/dx = sign(x), taken as 0 at x = 0 (PyTorch's choice), piecewise constant.
    Abs = "abs", fn(x) x.abs(), d(_, [x], _, g) g * x.step(|v| {
        if v > T::ZERO {
            T::ONE
        } else if v < T::ZERO {
            -T::ONE
        } else {
            T::ZERO
        }
    });
    /// `erf x`; d erf(x)/dx = 2/√π · e^(−x²).
    Erf = "erf", fn(x) x.erf(), d(_, [x], _, g) (g * (-(x * x)).exp()).scale(std::f64::consts::FRAC_2_SQRT_PI);
}

/// `xᵖ` for a real constant `p`.
struct Powf(f64);

impl Elementwise<1> for Powf {
    fn name(&self) -> &'static str {
        "powf"
    }
    fn f<T: Float>(&self, [x]: [T; 1]) -> T {
        x.powf(T::from_f64(self.0))
    }
    // d xᵖ/dx = p·xᵖ⁻¹; exactly 0 for p = 0 (x⁰ is constant), where the formula would give
    // 0·0⁻¹ = NaN at x = 0 (PyTorch returns 0 there too).
    fn df<T: Float, X: derivative::Value<T>>(&self, _: usize, [x]: [X; 1], _: X, g: X) -> X {
        if self.0 == 0.0 {
            return g.zero();
        }
        (g * x.powf(self.0 - 1.0)).scale(self.0)
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Powf(self.0))
    }
}

/// `xⁿ` for an integer constant `n`.
struct Powi(i32);

impl Elementwise<1> for Powi {
    fn name(&self) -> &'static str {
        "powi"
    }
    fn f<T: Float>(&self, [x]: [T; 1]) -> T {
        x.powi(self.0)
    }
    // d xⁿ/dx = n·xⁿ⁻¹, with x²'s as g·x·2 and x⁰'s exactly 0.
    fn df<T: Float, X: derivative::Value<T>>(&self, _: usize, [x]: [X; 1], _: X, g: X) -> X {
        match self.0 {
            0 => g.zero(),
            1 => g,
            2 => (g * x).scale(2.0),
            n => (g * x.powi(n - 1)).scale(f64::from(n)),
        }
    }
    // x² as x·x, chosen once per tensor.
    fn forward<T: Float>(&self, [x]: [&Tensor<T>; 1]) -> Tensor<T> {
        match self.0 {
            2 => x.map(|x| x * x),
            n => x.map(|x| x.powi(n)),
        }
    }
    fn attrs(&self) -> Option<OpAttrs> {
        Some(OpAttrs::Powi(self.0))
    }
}

impl<'t, T: Float> Var<'t, T> {
    /// `eˣ`, element-wise. The derivative is `eˣ`. PyTorch: `torch.exp`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// assert_eq!(tape.var(0.0).exp().item(), 1.0);
    /// ```
    #[track_caller]
    pub fn exp(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Exp), &[self])
    }

    /// Natural logarithm, element-wise. The derivative is `1/x`. PyTorch: `torch.log`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// assert_eq!(tape.var(1.0).ln().item(), 0.0);
    /// ```
    #[track_caller]
    pub fn ln(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Ln), &[self])
    }

    /// Square root, element-wise. The derivative is `1/(2√x)` (infinite at 0). PyTorch:
    /// `torch.sqrt`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// assert_eq!(tape.var(9.0).sqrt().item(), 3.0);
    /// ```
    #[track_caller]
    pub fn sqrt(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Sqrt), &[self])
    }

    /// Absolute value, element-wise. The derivative is `sign(x)`, taken as 0 at the kink
    /// `x = 0` as in PyTorch. PyTorch: `torch.abs`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(-2.0);
    /// assert_eq!(x.abs().backward()[x].item(), -1.0);
    /// ```
    #[track_caller]
    pub fn abs(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Abs), &[self])
    }

    /// The Gauss error function, element-wise. The derivative is `2/√π · e^(−x²)`.
    /// PyTorch: `torch.erf`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// assert_eq!(tape.var(0.0).erf().item(), 0.0);
    /// ```
    #[track_caller]
    pub fn erf(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Erf), &[self])
    }

    /// `xᵖ` for a real constant `p`, element-wise. The derivative is `p·xᵖ⁻¹`. For negative `x`
    /// and non-integer `p` the value is NaN (use [`Var::powi`]). PyTorch: `torch.pow`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(4.0);
    /// assert_eq!(x.powf(1.5).item(), 8.0);
    /// assert_eq!(x.powf(1.5).backward()[x].item(), 3.0); // 1.5·√4
    /// ```
    #[track_caller]
    pub fn powf(self, p: f64) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Powf(p)), &[self])
    }

    /// `xⁿ` for an integer constant `n`, element-wise; defined for negative `x`. The derivative
    /// is `n·xⁿ⁻¹`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(-2.0);
    /// assert_eq!(x.powi(3).item(), -8.0);
    /// assert_eq!(x.powi(3).backward()[x].item(), 12.0);
    /// ```
    #[track_caller]
    pub fn powi(self, n: i32) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Powi(n)), &[self])
    }

    /// `x²`, element-wise (a shorthand for `powi(2)`).
    #[track_caller]
    pub fn square(self) -> Var<'t, T> {
        self.powi(2)
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    #[test]
    fn powf_zero_has_a_zero_gradient_at_zero_on_every_path() {
        // PyTorch: torch.tensor(0., requires_grad=True).pow(0.).backward() gives grad 0, where
        // p·x^(p−1) = 0·0⁻¹ is NaN.
        let tape = Tape::<f64>::new();
        let s = tape.var(0.0);
        assert_eq!(s.powf(0.0).backward()[s].item(), 0.0, "scalar sweep");
        let t = tape.var(Tensor::from(vec![0.0, 2.0]));
        assert_eq!(t.powf(0.0).sum().backward()[t].to_vec(), vec![0.0, 0.0], "tensor sweep");
        let g = tape.grad(t.powf(0.0).sum(), &[t]);
        assert!(g[0].value().data().iter().all(|&v| v == 0.0), "recorded sweep: {:?}", g[0].value());
    }

    #[test]
    fn ln_sqrt_grads_match_hand_values() {
        let tape = Tape::<f64>::new();
        let x = tape.var(4.0);
        let grads = (x.ln() + x.sqrt()).backward();
        // d/dx (ln x + √x) = 1/x + 1/(2√x) = 0.25 + 0.25
        assert_eq!(grads[x].item(), 0.5);
    }

    #[test]
    fn unary_grads_match_finite_diff() {
        let pos: Tensor<f64> = vec![0.4, 1.3, 2.2].into();
        let any: Tensor<f64> = vec![-1.1, 0.35, 1.7].into();
        gradcheck(|v| v[0].exp().ln().sqrt().powf(2.5).mean(), std::slice::from_ref(&pos));
        gradcheck(|v| (v[0].abs() + v[0].erf()).powi(3).sum(), std::slice::from_ref(&any));
        gradgradcheck(|v| (v[0].ln() * v[0].sqrt() + v[0].powf(1.7)).sum(), &[pos]);
        gradgradcheck(|v| (v[0].erf() * v[0].exp() + v[0].powi(-2)).sum(), &[any]);
    }
}

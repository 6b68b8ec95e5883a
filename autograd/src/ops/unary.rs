//! Element-wise functions of one input: exp, ln, sqrt, abs, powf, powi, erf.

use smallvec::smallvec;

use crate::op::TensorGrads;
use crate::{Float, Op, Tensor, Var};

struct ExpOp;
struct LnOp;
struct SqrtOp;
struct AbsOp;
struct ErfOp;
struct PowfOp(f64);
struct PowiOp(i32);

/// `g · d eˣ/dx` from the output: `g · out`. Shared by the tensor and the scalar backward.
fn exp_grad<T: Float>(g: T, out: T) -> T {
    g * out
}

/// `g · d ln x/dx = g / x`.
fn ln_grad<T: Float>(g: T, x: T) -> T {
    g / x
}

/// `g · d √x/dx` from the output: `g / out · ½`.
fn sqrt_grad<T: Float>(g: T, out: T) -> T {
    g / out * T::from_f64(0.5)
}

impl PowfOp {
    /// `g · d xᵖ/dx = g · xᵖ⁻¹ · p`; exactly 0 for `p = 0` (`x⁰` is constant), where the formula
    /// would give `0 · 0⁻¹ = NaN` at `x = 0` (PyTorch returns 0 there too).
    fn grad<T: Float>(&self, g: T, x: T) -> T {
        if self.0 == 0.0 {
            return T::ZERO;
        }
        g * x.powf(T::from_f64(self.0 - 1.0)) * T::from_f64(self.0)
    }
}

impl PowiOp {
    /// `g · d xⁿ/dx = g · xⁿ⁻¹ · n`, with `x²`'s as `g · x · 2`.
    fn grad<T: Float>(&self, g: T, x: T) -> T {
        match self.0 {
            0 => T::ZERO,
            1 => g,
            2 => g * x * T::from_f64(2.0),
            n => g * x.powi(n - 1) * T::from_f64(f64::from(n)),
        }
    }
}

impl<T: Float> Op<T> for ExpOp {
    fn backward_scalar(&self, _inputs: &[T], out: T, g: T, grads: &mut [T]) -> bool {
        grads[0] = exp_grad(g, out);
        true
    }
    fn backward_values(
        &self,
        _inputs: &[&Tensor<T>],
        out: &Tensor<T>,
        grad_out: &Tensor<T>,
        _needs: &[bool],
    ) -> Option<TensorGrads<T>> {
        Some(smallvec![Some(grad_out.zip_map(out, "exp", exp_grad))])
    }
    fn name(&self) -> &'static str {
        "exp"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].map(T::exp)
    }
    // d eˣ/dx = eˣ = out.
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out * out)]
    }
}

impl<T: Float> Op<T> for LnOp {
    fn backward_scalar(&self, inputs: &[T], _out: T, g: T, grads: &mut [T]) -> bool {
        grads[0] = ln_grad(g, inputs[0]);
        true
    }
    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        _out: &Tensor<T>,
        grad_out: &Tensor<T>,
        _needs: &[bool],
    ) -> Option<TensorGrads<T>> {
        Some(smallvec![Some(grad_out.zip_map(inputs[0], "ln", ln_grad))])
    }
    fn name(&self) -> &'static str {
        "ln"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].map(T::ln)
    }
    // d ln x/dx = 1/x.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out / inputs[0])]
    }
}

impl<T: Float> Op<T> for SqrtOp {
    fn backward_scalar(&self, _inputs: &[T], out: T, g: T, grads: &mut [T]) -> bool {
        grads[0] = sqrt_grad(g, out);
        true
    }
    fn backward_values(
        &self,
        _inputs: &[&Tensor<T>],
        out: &Tensor<T>,
        grad_out: &Tensor<T>,
        _needs: &[bool],
    ) -> Option<TensorGrads<T>> {
        Some(smallvec![Some(grad_out.zip_map(out, "sqrt", sqrt_grad))])
    }
    fn name(&self) -> &'static str {
        "sqrt"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].map(T::sqrt)
    }
    // d √x/dx = 1/(2√x) = 0.5/out.
    fn backward<'t>(&self, _inputs: &[Var<'t, T>], out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        vec![Some(grad_out / out * 0.5)]
    }
}

impl<T: Float> Op<T> for AbsOp {
    fn name(&self) -> &'static str {
        "abs"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].map(T::abs)
    }
    // d|x|/dx = sign(x), taken as 0 at x = 0 (PyTorch's choice). Piecewise constant: a constant.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let x = inputs[0];
        let sign = x.value().map(|v| {
            if v > T::ZERO {
                T::ONE
            } else if v < T::ZERO {
                -T::ONE
            } else {
                T::ZERO
            }
        });
        vec![Some(grad_out * x.tape().constant(sign))]
    }
}

impl<T: Float> Op<T> for ErfOp {
    fn name(&self) -> &'static str {
        "erf"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        inputs[0].map(T::erf)
    }
    // d erf(x)/dx = 2/√π · e^(−x²).
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let x = inputs[0];
        vec![Some(grad_out * (-(x * x)).exp() * std::f64::consts::FRAC_2_SQRT_PI)]
    }
}

impl<T: Float> Op<T> for PowfOp {
    fn backward_scalar(&self, inputs: &[T], _out: T, g: T, grads: &mut [T]) -> bool {
        grads[0] = self.grad(g, inputs[0]);
        true
    }
    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        _out: &Tensor<T>,
        grad_out: &Tensor<T>,
        _needs: &[bool],
    ) -> Option<TensorGrads<T>> {
        if self.0 == 0.0 {
            return Some(smallvec![Some(Tensor::zeros(inputs[0].shape()))]);
        }
        Some(smallvec![Some(grad_out.zip_map(inputs[0], "powf", |g, x| self.grad(g, x)))])
    }
    fn name(&self) -> &'static str {
        "powf"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let p = T::from_f64(self.0);
        inputs[0].map(|x| x.powf(p))
    }
    // d xᵖ/dx = p·xᵖ⁻¹, and zeros for p = 0, as `grad` says.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        if self.0 == 0.0 {
            return vec![Some(grad_out.tape().constant(Tensor::zeros(&inputs[0].shape())))];
        }
        vec![Some(grad_out * inputs[0].powf(self.0 - 1.0) * self.0)]
    }
}

impl<T: Float> Op<T> for PowiOp {
    fn backward_scalar(&self, inputs: &[T], _out: T, g: T, grads: &mut [T]) -> bool {
        grads[0] = self.grad(g, inputs[0]);
        true
    }
    fn backward_values(
        &self,
        inputs: &[&Tensor<T>],
        _out: &Tensor<T>,
        grad_out: &Tensor<T>,
        _needs: &[bool],
    ) -> Option<TensorGrads<T>> {
        let d = match self.0 {
            0 => grad_out.map(|_| T::ZERO),
            1 => grad_out.clone(),
            _ => grad_out.zip_map(inputs[0], "powi", |g, x| self.grad(g, x)),
        };
        Some(smallvec![Some(d)])
    }
    fn name(&self) -> &'static str {
        "powi"
    }
    fn forward(&self, inputs: &[&Tensor<T>]) -> Tensor<T> {
        let n = self.0;
        match n {
            2 => inputs[0].map(|x| x * x),
            _ => inputs[0].map(|x| x.powi(n)),
        }
    }
    // d xⁿ/dx = n·xⁿ⁻¹.
    fn backward<'t>(&self, inputs: &[Var<'t, T>], _out: Var<'t, T>, grad_out: Var<'t, T>) -> Vec<Option<Var<'t, T>>> {
        let n = self.0;
        let x = inputs[0];
        let d = match n {
            0 => return vec![Some(grad_out * 0.0)],
            1 => grad_out,
            2 => grad_out * x * 2.0,
            _ => grad_out * x.powi(n - 1) * f64::from(n),
        };
        vec![Some(d)]
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
        self.tape().apply(ExpOp, &[self])
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
        self.tape().apply(LnOp, &[self])
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
        self.tape().apply(SqrtOp, &[self])
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
        self.tape().apply(AbsOp, &[self])
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
        self.tape().apply(ErfOp, &[self])
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
        self.tape().apply(PowfOp(p), &[self])
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
        self.tape().apply(PowiOp(n), &[self])
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

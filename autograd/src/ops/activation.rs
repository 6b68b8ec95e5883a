//! Element-wise activations: tanh, sigmoid, relu, gelu (exact and tanh approximation), softplus.
//!
//! Each op is a [`derivative`](crate::derivative) rule: its derivative is written once, for
//! numbers and `Var`s alike.

use crate::derivative::{rules, Derived};
use crate::{Float, Var};

/// `√(2/π)`, the scale inside the tanh approximation of GELU.
const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of the tanh approximation of GELU.
const GELU_TANH_CUBIC: f64 = 0.044_715;
/// `1/√(2π)`, the normalization of the standard normal density.
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// The logistic function `1/(1 + e^(−x))`, without overflow for large `|x|`.
#[inline(always)]
pub(crate) fn sigmoid_scalar<T: Float>(x: T) -> T {
    if x >= T::ZERO {
        T::ONE / (T::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (T::ONE + e)
    }
}

rules! {
    /// `tanh x`; d tanh(x)/dx = 1 − tanh²(x) = 1 − out².
    Tanh = "tanh", fn(x) x.tanh(), d(_, [_], out, g) g * (out * out).affine(-1.0, 1.0);
    /// `σ(x)`; dσ(x)/dx = σ(x)·(1 − σ(x)) = out·(1 − out).
    Sigmoid = "sigmoid", fn(x) sigmoid_scalar(x), d(_, [_], out, g) g * out * out.affine(-1.0, 1.0);
    /// `max(x, 0)` (`Float::max` keeps NaN as NaN, as `torch.relu` does); d relu(x)/dx = 1 for
    /// x > 0, else 0 (0 at the kink, as in PyTorch): the gradient where x > 0, exactly 0
    /// elsewhere (also for an infinite gradient).
    Relu = "relu", fn(x) x.max(T::ZERO), d(_, [x], _, g) g.keep_where(x, |v| v > T::ZERO);
    /// `x·Φ(x)`; d gelu(x)/dx = Φ(x) + x·φ(x), with Φ the standard normal CDF (which numbers
    /// read back from the output, see `normal_cdf_given_gelu`) and φ(x) = e^(−x²/2)/√(2π).
    Gelu = "gelu", fn(x) x * x.normal_cdf(), d(_, [x], out, g) {
        let pdf = (x * x).scale(-0.5).exp().scale(INV_SQRT_2PI);
        g * (x.normal_cdf_given_gelu(out) + x * pdf)
    };
    /// `½x(1 + tanh(k(x + a·x³)))`; with t that tanh, d/dx = ½(1 + t) + ½x(1 − t²)·k(1 + 3a·x²).
    GeluTanh = "gelu_tanh", fn(x) {
        let (half, k, a) = (T::from_f64(0.5), T::from_f64(SQRT_2_OVER_PI), T::from_f64(GELU_TANH_CUBIC));
        half * x * (T::ONE + (k * (x + a * x * x * x)).tanh())
    }, d(_, [x], _, g) {
        let x2 = x * x;
        let t = (x + (x2 * x).scale(GELU_TANH_CUBIC)).scale(SQRT_2_OVER_PI).tanh();
        let slope = x * (t * t).affine(-1.0, 1.0) * x2.affine(3.0 * GELU_TANH_CUBIC, 1.0);
        g * (t.affine(0.5, 0.5) + slope.scale(0.5 * SQRT_2_OVER_PI))
    };
    /// `ln(1 + eˣ)` as `max(x, 0) + ln(1 + e^(−|x|))` (no overflow, and accurate for large −x);
    /// d softplus(x)/dx = σ(x).
    Softplus = "softplus", fn(x) x.max(T::ZERO) + (-x.abs()).exp().ln_1p(), d(_, [x], _, g) g * x.sigmoid();
}

impl<'t, T: Float> Var<'t, T> {
    /// Hyperbolic tangent, element-wise. The derivative is `1 − tanh²(x)`. PyTorch: `torch.tanh`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// assert_eq!(tape.var(0.0).tanh().item(), 0.0);
    /// ```
    #[track_caller]
    pub fn tanh(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Tanh), &[self])
    }

    /// The logistic sigmoid `σ(x) = 1/(1 + e^(−x))`, element-wise, computed without overflow for
    /// large `|x|`. The derivative is `σ(x)·(1 − σ(x))`; the function is smooth (no kinks).
    /// PyTorch: `torch.sigmoid`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(0.0);
    /// assert_eq!(x.sigmoid().item(), 0.5);
    /// assert_eq!(x.sigmoid().backward()[x].item(), 0.25);
    /// assert_eq!(tape.var(-1000.0).sigmoid().item(), 0.0); // no NaN from e^1000
    /// ```
    #[track_caller]
    pub fn sigmoid(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Sigmoid), &[self])
    }

    /// The rectified linear unit `max(x, 0)`, element-wise. The derivative is 1 for `x > 0`
    /// and 0 for `x < 0`; at the kink `x = 0` it is taken as 0, as in PyTorch. NaN stays NaN.
    /// PyTorch: `torch.relu`.
    ///
    /// ```
    /// # use autograd::{Tape, Tensor};
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(Tensor::from(vec![-1.0, 0.0, 2.0]));
    /// let y = x.relu();
    /// assert_eq!(y.value().data(), &[0.0, 0.0, 2.0]);
    /// assert_eq!(y.sum().backward()[x].data(), &[0.0, 0.0, 1.0]);
    /// ```
    #[track_caller]
    pub fn relu(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Relu), &[self])
    }

    /// The exact Gaussian error linear unit `x·Φ(x) = ½x(1 + erf(x/√2))`, element-wise. The
    /// derivative is `Φ(x) + x·φ(x)` (Φ, φ: the standard normal CDF and density); the function
    /// is smooth (no kinks). PyTorch: `torch.nn.functional.gelu(x)` (`approximate='none'`).
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(0.0);
    /// assert_eq!(x.gelu().item(), 0.0);
    /// assert_eq!(x.gelu().backward()[x].item(), 0.5); // Φ(0) + 0·φ(0)
    /// assert!((tape.var(1.0).gelu().item() - 0.841_344_746_068_542_9).abs() < 1e-15);
    /// ```
    #[track_caller]
    pub fn gelu(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Gelu), &[self])
    }

    /// The tanh approximation of GELU, `½x(1 + tanh(√(2/π)(x + 0.044715x³)))`, element-wise.
    /// With `t` that tanh, the derivative is `½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²)`;
    /// the function is smooth (no kinks). PyTorch:
    /// `torch.nn.functional.gelu(x, approximate='tanh')`.
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(0.0);
    /// assert_eq!(x.gelu_tanh().item(), 0.0);
    /// assert_eq!(x.gelu_tanh().backward()[x].item(), 0.5);
    /// assert!((tape.var(1.0).gelu_tanh().item() - 0.841_191_990_608_276_8).abs() < 1e-15);
    /// ```
    #[track_caller]
    pub fn gelu_tanh(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(GeluTanh), &[self])
    }

    /// `ln(1 + eˣ)`, element-wise, computed stably as `max(x, 0) + ln(1 + e^(−|x|))`. The
    /// derivative is `σ(x)`, the logistic sigmoid; the function is smooth (no kinks). PyTorch:
    /// `torch.nn.functional.softplus(x)`, except that no `threshold` switches to the identity
    /// (the stable form is exact for every `x`).
    ///
    /// ```
    /// # use autograd::Tape;
    /// let tape = Tape::<f64>::new();
    /// let x = tape.var(0.0);
    /// assert_eq!(x.softplus().item(), std::f64::consts::LN_2);
    /// assert_eq!(x.softplus().backward()[x].item(), 0.5);
    /// assert_eq!(tape.var(1000.0).softplus().item(), 1000.0); // no overflow
    /// ```
    #[track_caller]
    pub fn softplus(self) -> Var<'t, T> {
        self.tape().apply(Derived::unary(Softplus), &[self])
    }
}

#[cfg(test)]
mod tests {
    use crate::check::{gradcheck, gradgradcheck};
    use crate::{Tape, Tensor};

    fn xs() -> Tensor<f64> {
        Tensor::from_vec(vec![-2.5, -0.7, 0.3, 1.1, 3.0, -0.05], &[2, 3])
    }

    #[test]
    fn tanh_grad_at_half_matches_hand_value() {
        let tape = Tape::<f64>::new();
        let x = tape.var(0.5);
        let grads = x.tanh().backward();
        // 1 − tanh²(0.5) = 0.7864477329659274
        assert!((grads[x].item() - 0.786_447_732_965_927_4).abs() < 1e-15);
    }

    #[test]
    fn tanh_grad_matches_finite_diff() {
        gradcheck(|x| x[0].tanh().exp().mean(), &[vec![-1.5, 0.5, 2.0].into()]);
        gradgradcheck(|x| x[0].tanh().exp().mean(), &[vec![-1.5, 0.5, 2.0].into()]);
    }

    #[test]
    fn activation_grads_at_one_match_hand_values() {
        let tape = Tape::<f64>::new();
        let x = tape.var(1.0);
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-14, "{a} vs {b}");
        // σ'(1) = σ(1)(1 − σ(1)) = 0.7310585786300049 · 0.2689414213699951
        close(x.sigmoid().backward()[x].item(), 0.196_611_933_241_481_85);
        // gelu'(1) = Φ(1) + φ(1) = 0.8413447460685429 + 0.24197072451914337
        close(x.gelu().backward()[x].item(), 1.083_315_470_587_686_4);
        // gelu_tanh'(1) = ½(1 + t) + ½(1 − t²)·√(2/π)(1 + 3·0.044715), t = tanh(√(2/π)·1.044715)
        close(x.gelu_tanh().backward()[x].item(), 1.082_964_083_845_782_6);
        // softplus'(1) = σ(1)
        close(x.softplus().backward()[x].item(), 0.731_058_578_630_004_9);
        // relu'(1) = 1, relu'(−1) = 0, relu'(0) = 0 (PyTorch's choice at the kink)
        close(x.relu().backward()[x].item(), 1.0);
        let z = tape.var(0.0);
        close(z.relu().backward()[z].item(), 0.0);
    }

    #[test]
    fn sigmoid_and_softplus_are_stable_for_large_inputs() {
        let tape = Tape::<f32>::new();
        let x = tape.var(Tensor::from(vec![-200.0f32, -30.0, 30.0, 200.0]));
        let s = x.sigmoid().value();
        assert!(s.all_finite());
        assert_eq!(s.data()[0], 0.0);
        assert_eq!(s.data()[3], 1.0);
        let sp = x.softplus().value();
        assert_eq!(sp.data()[3], 200.0);
        assert_eq!(sp.data()[0], 0.0); // e^−200 underflows f32
        assert!((sp.data()[1] / 9.357_623e-14 - 1.0).abs() < 1e-5); // ln(1 + e^−30) ≈ e^−30
        let g = x.softplus().sum().backward();
        assert!(g[x].all_finite());
    }

    #[test]
    fn activation_grads_match_finite_diff() {
        gradcheck(|v| v[0].sigmoid().exp().mean(), &[xs()]);
        gradcheck(|v| v[0].relu().exp().mean(), &[xs()]);
        gradcheck(|v| v[0].gelu().exp().mean(), &[xs()]);
        gradcheck(|v| v[0].gelu_tanh().exp().mean(), &[xs()]);
        gradcheck(|v| v[0].softplus().exp().mean(), &[xs()]);
    }

    #[test]
    fn activation_second_order_matches_finite_diff() {
        gradgradcheck(|v| v[0].sigmoid().exp().mean(), &[xs()]);
        gradgradcheck(|v| (v[0].relu() * v[0]).exp().mean(), &[xs()]);
        gradgradcheck(|v| v[0].gelu().exp().mean(), &[xs()]);
        gradgradcheck(|v| v[0].gelu_tanh().exp().mean(), &[xs()]);
        gradgradcheck(|v| v[0].softplus().exp().mean(), &[xs()]);
    }

    /// GELU's f32 gradient, which reads `Φ(x)` back from the output, against the f64 derivative
    /// over a sweep and at the edges: zero (both signs), subnormal and tiny inputs (where the
    /// output rounds to zero), the far negative tail (where `Φ` is flushed to zero) and large
    /// positive values.
    #[test]
    fn gelu_f32_gradient_matches_the_f64_derivative() {
        let mut points: Vec<f32> = (-1200..=1200).map(|i| i as f32 / 100.0).collect();
        points.extend([0.0, -0.0, 1e-45, -1e-45, 1e-30, -1e-21, 1e-19, -15.0, -40.0, 30.0, 1e4]);
        let tape = Tape::<f32>::new();
        let x = tape.var(Tensor::from_vec(points.clone(), &[points.len()]));
        let grad = x.gelu().sum().backward()[x].clone();
        for (&p, &got) in points.iter().zip(grad.data()) {
            let p = f64::from(p);
            let cdf = 0.5 * libm::erfc(-p * std::f64::consts::FRAC_1_SQRT_2);
            let want = cdf + p * super::INV_SQRT_2PI * (-0.5 * p * p).exp();
            let err = (f64::from(got) - want).abs();
            assert!(err <= 1e-6 * want.abs() + 2e-7, "gelu'({p}) = {got}, want {want}");
        }
    }
}

//! The element types a [`Tensor`](crate::Tensor) can hold: `f32` for training, `f64` for
//! gradient checks.

use std::fmt::{Debug, Display};
use std::iter::Sum;
use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Sub, SubAssign};

/// A real floating-point element type: the arithmetic and the elementary functions that the ops
/// need, implemented for `f32` and `f64`.
///
/// The trait is sealed in spirit (only the two IEEE types make sense), but it is public so that
/// generic user code can name it: `fn model<T: Float>(x: Var<'_, T>) -> Var<'_, T>`.
pub trait Float:
    Copy
    + Default
    + Send
    + Sync
    + 'static
    + Debug
    + Display
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + AddAssign
    + SubAssign
    + MulAssign
    + DivAssign
    + Sum
{
    /// The additive identity.
    const ZERO: Self;
    /// The multiplicative identity.
    const ONE: Self;
    /// Positive infinity.
    const INFINITY: Self;
    /// Negative infinity.
    const NEG_INFINITY: Self;
    /// Not a number.
    const NAN: Self;
    /// The dtype's name as PyTorch and safetensors spell it (`"f32"`, `"f64"`).
    const DTYPE: &'static str;

    /// `self·a + b` with one rounding (a fused multiply-add), on every CPU: one instruction in
    /// code compiled for FMA (inside [`simd::vectorized`](crate::simd::vectorized) on a CPU that
    /// has it, and on aarch64), a call to the C library's exact `fma` elsewhere. So a kernel's
    /// result has the same bits whichever level computed it.
    fn mul_add(self, a: Self, b: Self) -> Self;
    /// Converts from `f64`, rounding to nearest.
    fn from_f64(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn to_f64(self) -> f64;
    /// `e^self` (for `f32`, within 1.2 ulp, vectorizable: see [`fastmath`](crate::fastmath)).
    fn exp(self) -> Self;
    /// Natural logarithm.
    fn ln(self) -> Self;
    /// `ln(1 + self)`, accurate near zero.
    fn ln_1p(self) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// Hyperbolic tangent.
    fn tanh(self) -> Self;
    /// Absolute value.
    fn abs(self) -> Self;
    /// `self^p` for a real exponent.
    fn powf(self, p: Self) -> Self;
    /// `self^n` for an integer exponent.
    fn powi(self, n: i32) -> Self;
    /// The Gauss error function (for `f32`, within 3 ulp, vectorizable).
    fn erf(self) -> Self;
    /// `Φ(self)`, the standard normal distribution function `½(1 + erf(x/√2))` (for `f32`,
    /// computed through erfc so that it keeps its relative accuracy for negative `x`).
    fn normal_cdf(self) -> Self;
    /// The larger of the two; NaN if either is NaN.
    fn max(self, other: Self) -> Self;
    /// The smaller of the two; NaN if either is NaN.
    fn min(self, other: Self) -> Self;
    /// Neither infinite nor NaN.
    fn is_finite(self) -> bool;
    /// Converts from a count or index.
    fn from_usize(n: usize) -> Self {
        Self::from_f64(n as f64)
    }
    /// The slice as `f32`s when `Self` is `f32`, else `None`: how a kernel written for one type
    /// (the AVX-512 ones of [`fastmath`](crate::fastmath) and the attention tiles) is reached
    /// from code generic over the type, without a cast.
    fn as_f32s(values: &[Self]) -> Option<&[f32]> {
        let _ = values;
        None
    }
    /// The pool of free buffers of this element type (see [`recycle`](crate::recycle)).
    fn pool() -> &'static crate::recycle::Pool<Self>;
    /// The mutable counterpart of [`as_f32s`](Float::as_f32s).
    fn as_f32s_mut(values: &mut [Self]) -> Option<&mut [f32]> {
        let _ = values;
        None
    }
}

macro_rules! impl_float {
    ($t:ident, $exp:path, $erf:path, $cdf:expr $(, $extra:item)*) => {
        impl Float for $t {
            $($extra)*

            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const INFINITY: Self = $t::INFINITY;
            const NEG_INFINITY: Self = $t::NEG_INFINITY;
            const NAN: Self = $t::NAN;
            const DTYPE: &'static str = stringify!($t);

            fn pool() -> &'static crate::recycle::Pool<Self> {
                static POOL: crate::recycle::Pool<$t> = crate::recycle::Pool::new();
                &POOL
            }

            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                $t::mul_add(self, a, b)
            }
            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn ln(self) -> Self {
                $t::ln(self)
            }
            #[inline(always)]
            fn ln_1p(self) -> Self {
                $t::ln_1p(self)
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                $t::sqrt(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $t::tanh(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                $t::abs(self)
            }
            #[inline(always)]
            fn powf(self, p: Self) -> Self {
                $t::powf(self, p)
            }
            #[inline(always)]
            fn powi(self, n: i32) -> Self {
                $t::powi(self, n)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn normal_cdf(self) -> Self {
                $cdf(self)
            }
            #[inline(always)]
            fn max(self, other: Self) -> Self {
                if self.is_nan() || other.is_nan() {
                    $t::NAN
                } else if self >= other {
                    self
                } else {
                    other
                }
            }
            #[inline(always)]
            fn min(self, other: Self) -> Self {
                if self.is_nan() || other.is_nan() {
                    $t::NAN
                } else if self <= other {
                    self
                } else {
                    other
                }
            }
            #[inline(always)]
            fn is_finite(self) -> bool {
                $t::is_finite(self)
            }
        }
    };
}

// f32 takes the vectorizable approximations of `fastmath` (within 1.2 and 3 ulp); f64, the type of
// gradient checks, the platform's correctly rounded-or-nearly functions.
impl_float!(
    f32,
    crate::fastmath::exp_f32,
    crate::fastmath::erf_f32,
    crate::fastmath::normal_cdf_f32,
    fn as_f32s(values: &[f32]) -> Option<&[f32]> {
        Some(values)
    },
    fn as_f32s_mut(values: &mut [f32]) -> Option<&mut [f32]> {
        Some(values)
    }
);
impl_float!(f64, f64::exp, libm::erf, |x: f64| 0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2));

#[cfg(test)]
mod tests {
    use super::Float;

    #[test]
    fn max_and_min_propagate_nan() {
        assert!(Float::max(f64::NAN, 1.0).is_nan());
        assert!(Float::min(1.0f32, f32::NAN).is_nan());
        assert_eq!(Float::max(2.0f64, 1.0), 2.0);
    }

    #[test]
    fn erf_matches_known_value() {
        // erf(0.5) = 0.5204998778130465 (Abramowitz & Stegun table 7.1)
        assert!((Float::erf(0.5f64) - 0.520_499_877_813_046_5).abs() < 1e-15);
    }
}

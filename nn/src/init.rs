//! [`Init`]: how a parameter's initial values are drawn. Every draw comes from the store's
//! ChaCha8 generator, whose stream does not change across `rand` versions, so the same seed
//! gives bit-identical parameters.
//!
//! | variant | distribution | PyTorch |
//! | --- | --- | --- |
//! | `KaimingUniform { fan_in }` | `U(−b, b)`, `b = √2 · √(3 / fan_in)` | `kaiming_uniform_(nonlinearity="relu")` |
//! | `KaimingNormal { fan_in }` | `N(0, 2 / fan_in)` | `kaiming_normal_(nonlinearity="relu")` |
//! | `XavierUniform { fan_in, fan_out }` | `U(−b, b)`, `b = √(6 / (fan_in + fan_out))` | `xavier_uniform_` |
//! | `XavierNormal { fan_in, fan_out }` | `N(0, 2 / (fan_in + fan_out))` | `xavier_normal_` |
//! | `LecunUniform { fan_in }` | `U(−b, b)`, `b = 1 / √fan_in` | `nn.Linear`'s default |
//! | `Normal { mean, std }` | `N(mean, std²)` | `normal_` |
//! | `Uniform { low, high }` | `U(low, high)` | `uniform_` |
//! | `Zeros`, `Ones`, `Constant(c)` | constant | `zeros_`, `ones_`, `constant_` |
//!
//! ```
//! use autograd::{Rng, SeedableRng};
//! use nn::Init;
//! let a = Init::KaimingUniform { fan_in: 4 }.tensor::<f32>(&[4, 3], &mut Rng::seed_from_u64(7));
//! let b = Init::KaimingUniform { fan_in: 4 }.tensor::<f32>(&[4, 3], &mut Rng::seed_from_u64(7));
//! assert_eq!(a, b); // bit for bit
//! assert!(a.data().iter().all(|x| x.abs() <= (6.0f32 / 4.0).sqrt()));
//! ```

use autograd::{Float, Rng, Tensor};

/// An initialization scheme for a parameter tensor (the formulas are in `nn/src/init.rs`'s opening comment).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// He et al. (2015), uniform, gain √2 (for ReLU).
    KaimingUniform {
        /// Inputs feeding each output unit.
        fan_in: usize,
    },
    /// He et al. (2015), normal, gain √2 (for ReLU).
    KaimingNormal {
        /// Inputs feeding each output unit.
        fan_in: usize,
    },
    /// Glorot & Bengio (2010), uniform.
    XavierUniform {
        /// Inputs feeding each output unit.
        fan_in: usize,
        /// Outputs each input feeds.
        fan_out: usize,
    },
    /// Glorot & Bengio (2010), normal.
    XavierNormal {
        /// Inputs feeding each output unit.
        fan_in: usize,
        /// Outputs each input feeds.
        fan_out: usize,
    },
    /// `U(−1/√fan_in, 1/√fan_in)`: PyTorch's default for `nn.Linear` and `nn.Conv2d` weights and
    /// biases (its "Kaiming uniform with a = √5").
    LecunUniform {
        /// Inputs feeding each output unit.
        fan_in: usize,
    },
    /// `N(mean, std²)`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std: f64,
    },
    /// `U(low, high)`.
    Uniform {
        /// Lower bound (inclusive).
        low: f64,
        /// Upper bound (exclusive).
        high: f64,
    },
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// Every element equal to the value.
    Constant(f64),
}

impl Init {
    /// Draws a tensor of the given shape. Constant schemes draw nothing from `rng`.
    pub fn tensor<T: Float>(&self, shape: &[usize], rng: &mut Rng) -> Tensor<T> {
        let uniform = |b: f64, rng: &mut Rng| Tensor::rand_uniform(shape, -b, b, rng);
        match *self {
            Init::KaimingUniform { fan_in } => uniform((6.0 / fan(fan_in)).sqrt(), rng),
            Init::KaimingNormal { fan_in } => Tensor::rand_normal(shape, 0.0, (2.0 / fan(fan_in)).sqrt(), rng),
            Init::XavierUniform { fan_in, fan_out } => uniform((6.0 / fan(fan_in + fan_out)).sqrt(), rng),
            Init::XavierNormal { fan_in, fan_out } => {
                Tensor::rand_normal(shape, 0.0, (2.0 / fan(fan_in + fan_out)).sqrt(), rng)
            }
            Init::LecunUniform { fan_in } => uniform(1.0 / fan(fan_in).sqrt(), rng),
            Init::Normal { mean, std } => Tensor::rand_normal(shape, mean, std, rng),
            Init::Uniform { low, high } => Tensor::rand_uniform(shape, low, high, rng),
            Init::Zeros => Tensor::zeros(shape),
            Init::Ones => Tensor::ones(shape),
            Init::Constant(c) => Tensor::full(shape, T::from_f64(c)),
        }
    }
}

/// A fan as a float, never zero (an empty layer would otherwise divide by zero).
fn fan(n: usize) -> f64 {
    n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use autograd::SeedableRng;

    #[test]
    fn same_seed_gives_bit_identical_tensors_for_every_scheme() {
        let schemes = [
            Init::KaimingUniform { fan_in: 8 },
            Init::KaimingNormal { fan_in: 8 },
            Init::XavierUniform { fan_in: 8, fan_out: 3 },
            Init::XavierNormal { fan_in: 8, fan_out: 3 },
            Init::LecunUniform { fan_in: 8 },
            Init::Normal { mean: 1.0, std: 0.02 },
            Init::Uniform { low: -2.0, high: 5.0 },
        ];
        for s in schemes {
            let a = s.tensor::<f32>(&[8, 3], &mut Rng::seed_from_u64(11));
            let b = s.tensor::<f32>(&[8, 3], &mut Rng::seed_from_u64(11));
            let c = s.tensor::<f32>(&[8, 3], &mut Rng::seed_from_u64(12));
            assert_eq!(a, b, "{s:?}");
            assert_ne!(a, c, "{s:?}");
        }
    }

    #[test]
    fn kaiming_normal_has_the_right_spread() {
        // std = √(2 / 50) = 0.2; with 40_000 samples the estimate is within ±0.005 (≈ 7σ).
        let t = Init::KaimingNormal { fan_in: 50 }.tensor::<f64>(&[200, 200], &mut Rng::seed_from_u64(3));
        let n = t.numel() as f64;
        let mean = t.data().iter().sum::<f64>() / n;
        let std = (t.data().iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        assert!(mean.abs() < 0.005, "{mean}");
        assert!((std - 0.2).abs() < 0.005, "{std}");
    }

    #[test]
    fn bounded_schemes_stay_in_their_bounds() {
        let mut rng = Rng::seed_from_u64(0);
        let b = (6.0f64 / 30.0).sqrt(); // Xavier: √(6 / (10 + 20))
        let t = Init::XavierUniform { fan_in: 10, fan_out: 20 }.tensor::<f64>(&[10, 20], &mut rng);
        assert!(t.data().iter().all(|x| x.abs() <= b));
        assert!(t.data().iter().any(|x| x.abs() > 0.9 * b));
        let z = Init::Zeros.tensor::<f32>(&[3], &mut rng);
        assert_eq!(z.data(), &[0.0; 3]);
        assert_eq!(Init::Constant(2.5).tensor::<f32>(&[2], &mut rng).data(), &[2.5, 2.5]);
    }
}

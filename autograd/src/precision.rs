//! Mixed precision, PyTorch's autocast for the CPU: a [`Precision`] set on a [`Tape`] under
//! which the matrix products of `matmul`, `matmul_bias` and `conv2d` (forward and backward) read
//! their operands rounded to bf16 and accumulate in f32, while everything else stays f32.
//!
//! What stays f32 follows `torch.autocast("cpu", dtype=torch.bfloat16)`'s lists: parameters,
//! gradients and optimizer state (they are never converted), reductions, softmax, layer norm,
//! element-wise ops and the losses (they are not products). Three differences from PyTorch:
//! - An op's output is f32, not bf16: the product is rounded from f32 accumulators to f32, so a
//!   following op reads no extra rounding error (PyTorch rounds every autocast output to bf16).
//! - The fused [`causal_attention`](crate::Var::causal_attention) stays f32: its per-head
//!   products are small register-tile products, not gemm calls, and take about 5 % of a GPT's
//!   multiply-adds (`t / 12·n_embd` of the linear layers' at block `t`), so rounding them would
//!   cost accuracy for no measurable time.
//! - Winograd's 3×3 convolutions (`conv2d` over at least 32 channels, stride 1) stay f32: their
//!   products run on transformed tiles whose rounding error the output transform amplifies (its
//!   coefficients sum to 4 per output in each dimension), and they already do 2.25× fewer
//!   multiplies than the direct product.
//!
//! Each op records the tape's precision when it is created, and its backward products use that
//! precision, whatever the tape's setting when backward runs. `f64` tapes ignore the setting
//! (gradient checks stay exact). When the CPU has neither AMX nor AVX512-BF16, or `PENTE_BF16=off`
//! is set, [`Precision::Bf16`] runs the plain f32 products: the same results as
//! [`Precision::F32`], bit for bit (see [`kernels::bf16::level`](crate::kernels::bf16::level)).
//!
//! ```
//! use autograd::{precision::Precision, Tape, Tensor};
//! let tape = Tape::<f32>::new();
//! tape.mixed_precision(Precision::Bf16);
//! let x = tape.var(Tensor::from_vec(vec![1.0, 2.0], &[1, 2]));
//! let w = tape.var(Tensor::from_vec(vec![3.0, 4.0], &[2, 1]));
//! let y = x.matmul(w); // 1·3 + 2·4, exact in bf16
//! assert_eq!(y.value().data(), &[11.0]);
//! let grads = y.sum().backward(); // dW = xᵀ·1, in bf16 too (the op recorded the precision)
//! assert_eq!(grads[w].data(), &[1.0, 2.0]);
//! ```

use std::fmt;
use std::str::FromStr;

use crate::{Float, Tape};

/// The arithmetic of a tape's matrix products: see the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f32 operands and accumulation (the default).
    #[default]
    F32,
    /// Operands rounded to bf16 (8 bits of mantissa), products accumulated in f32.
    Bf16,
}

impl Precision {
    /// The name the command line takes and prints: `"f32"` or `"bf16"`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;

    /// Parses `"f32"` or `"bf16"`; any other text is an error naming it and the choices.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            other => Err(format!("precision: unknown value {other:?}; expected \"f32\" or \"bf16\"")),
        }
    }
}

impl<T: Float> Tape<T> {
    /// Sets the precision of the matrix products recorded from now on (autocast; see the
    /// [`precision`](crate::precision) module). Ops already on the tape keep the precision they
    /// were created with, also in backward. [`Tape::reset`] keeps the setting.
    pub fn mixed_precision(&self, precision: Precision) {
        self.precision.set(precision);
    }

    /// The precision the next matrix product will record: [`Precision::F32`] unless
    /// [`Tape::mixed_precision`] set another.
    pub fn precision(&self) -> Precision {
        self.precision.get()
    }
}

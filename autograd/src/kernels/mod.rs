//! The numeric kernels: the loops the ops run, with no tape, no `Var` and no knowledge of
//! layers. Every `unsafe` block of autograd is here (`scripts/check-architecture` fails
//! otherwise), each with a `// SAFETY:` comment; the ops in [`ops`](crate::ops) call the safe
//! functions below.
//!
//! | file | what |
//! | --- | --- |
//! | [`simd`] | run-time CPU dispatch: [`kernel!`](simd::kernel) and [`vectorized`](simd::vectorized) |
//! | [`gemm`] | matrix products through the `gemm` crate: `Operand` and the checked wrappers |
//! | `tile` | small products in registers, and causal attention's triangular ones |
//! | `winograd` | conv2d's 3×3, stride-1 case by Winograd's F(2×2, 3×3) |
//! | `lanes` | one-lane loops: pairwise sums, lane maximum, softmax, log-softmax, cross-entropy |
//! | `runs` | the reductions' run-by-run fold (sum, max) |
//! | `zip` | element-wise maps of up to four operands into a new vector |
//! | `uninit` | new vectors written in place: the one owner of `Vec::set_len`, with proofs of writing |
//! | [`bf16`] | bf16 matrix products with f32 accumulation: run-time level, AVX512-BF16 kernel, portable path |
//! | [`peak`] | the CPU's peak multiply-add rate, for reading `pente bench`'s gemm figures |

pub mod bf16;
pub mod gemm;
pub(crate) mod lanes;
pub(crate) mod mixed;
pub mod peak;
pub(crate) mod runs;
pub mod simd;
pub(crate) mod tile;
pub(crate) mod uninit;
pub(crate) mod winograd;
pub(crate) mod zip;

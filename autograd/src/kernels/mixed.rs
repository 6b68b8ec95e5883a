//! The one place that chooses between f32 and bf16 matrix products: the ops call these twins of
//! [`gemm`](super::gemm)'s wrappers with the [`Precision`] they recorded, and get the bf16
//! kernel (operands rounded to bf16, f32 accumulation; see [`bf16`](super::bf16)) when the
//! precision is [`Precision::Bf16`], the element type is `f32` and the CPU has a bf16 level;
//! otherwise the f32 product, so `f64` and a CPU without bf16 arithmetic (or `PENTE_BF16=off`)
//! compute exactly what [`Precision::F32`] does.

use std::any::TypeId;
use std::mem::MaybeUninit;

use gemm::Parallelism;

use super::bf16::{self, Bf16Level};
use super::gemm::{gemm_accumulate, gemm_into, gemm_new, gemm_overwrite, Operand};
use super::uninit::{self, Written};
use crate::precision::Precision;
use crate::Float;

/// Whether a product of `T`s at `precision` runs the bf16 kernel.
pub(crate) fn uses_bf16<T: Float>(precision: Precision) -> bool {
    precision == Precision::Bf16 && TypeId::of::<T>() == TypeId::of::<f32>() && bf16::level() != Bf16Level::None
}

/// The operand as `f32`s (`T` is `f32` whenever [`uses_bf16`] holds).
fn as_f32<T: Float>(operand: Operand<'_, T>) -> Operand<'_, f32> {
    Operand {
        data: T::as_f32s(operand.data).expect("uses_bf16 holds only for f32"),
        row_stride: operand.row_stride,
        col_stride: operand.col_stride,
    }
}

/// [`gemm_into`] at `precision`.
pub(crate) fn product_into<'a, T: Float>(
    precision: Precision,
    dst: &'a mut [MaybeUninit<T>],
    mkn: (usize, usize, usize),
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    parallelism: Parallelism,
) -> Written<'a, T> {
    if !uses_bf16::<T>(precision) {
        return gemm_into(dst, mkn, lhs, rhs, parallelism);
    }
    let (start, len) = (dst.as_mut_ptr(), dst.len());
    // SAFETY: `T` is `f32` (uses_bf16 checked its TypeId), so the slots have the type, size and
    // alignment of `MaybeUninit<f32>`; the new slice covers exactly `dst`'s memory, which is not
    // otherwise touched while it lives (it ends with this statement).
    let dst32 = unsafe { std::slice::from_raw_parts_mut(start.cast::<MaybeUninit<f32>>(), len) };
    let _ = bf16::bf16_gemm_into(dst32, mkn, as_f32(lhs), as_f32(rhs), parallelism);
    // SAFETY: bf16_gemm_into returned its proof that it wrote every slot of `dst32`, which are
    // the slots of `dst`.
    unsafe { Written::assume(dst) }
}

/// [`gemm_into`] at `precision`, into a new row-major `m × n` vector.
pub(crate) fn product_new<T: Float>(
    precision: Precision,
    mkn: (usize, usize, usize),
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    parallelism: Parallelism,
) -> Vec<T> {
    if !uses_bf16::<T>(precision) {
        return gemm_new(mkn, lhs, rhs, parallelism);
    }
    uninit::new_vec(mkn.0 * mkn.2, |dst| product_into(precision, dst, mkn, lhs, rhs, parallelism))
}

/// [`gemm_overwrite`] at `precision`.
pub(crate) fn product_overwrite<T: Float>(
    precision: Precision,
    dst: &mut [T],
    mkn: (usize, usize, usize),
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    parallelism: Parallelism,
) {
    if uses_bf16::<T>(precision) {
        let dst = T::as_f32s_mut(dst).expect("uses_bf16 holds only for f32");
        bf16::bf16_gemm_overwrite(dst, mkn, as_f32(lhs), as_f32(rhs), parallelism);
    } else {
        gemm_overwrite(dst, mkn, lhs, rhs, parallelism);
    }
}

/// [`gemm_accumulate`] at `precision`.
pub(crate) fn product_accumulate<T: Float>(
    precision: Precision,
    dst: &mut [T],
    mkn: (usize, usize, usize),
    lhs: Operand<'_, T>,
    rhs: Operand<'_, T>,
    parallelism: Parallelism,
) {
    if uses_bf16::<T>(precision) {
        let dst = T::as_f32s_mut(dst).expect("uses_bf16 holds only for f32");
        bf16::bf16_gemm_accumulate(dst, mkn, as_f32(lhs), as_f32(rhs), parallelism);
    } else {
        gemm_accumulate(dst, mkn, lhs, rhs, parallelism);
    }
}

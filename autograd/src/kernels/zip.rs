//! Element-wise maps of up to four operands into a new vector, the loop under every
//! element-wise op of [`Tensor`](crate::Tensor).

use std::mem::MaybeUninit;

use super::simd;
use super::uninit::{self, Written};
use crate::tensor::ELEMENTWISE_CHUNK;
use crate::{Float, PAR_THRESHOLD};

/// `[f(a₀, b₀, c₀, d₀), …]` as a new vector, computed over chunks in parallel from
/// [`PAR_THRESHOLD`] elements. Each chunk is a plain slice loop, which the compiler vectorizes
/// when `f` inlines (a per-element parallel iterator does not); an operand `f` ignores is not
/// read.
///
/// # Panics
/// If the operands differ in length.
pub(crate) fn zip4_into<T: Float>(
    a: &[T],
    b: &[T],
    c: &[T],
    d: &[T],
    f: impl Fn(T, T, T, T) -> T + Sync + Send,
) -> Vec<T> {
    let n = a.len();
    assert!(b.len() == n && c.len() == n && d.len() == n, "zip_into: operands differ in length");
    uninit::new_vec(n, |dst| {
        if n >= PAR_THRESHOLD {
            uninit::par_fill_chunks(dst, ELEMENTWISE_CHUNK, |i, o| {
                let len = o.len();
                write4(o, (part(a, i, len), part(b, i, len), part(c, i, len), part(d, i, len)), &f)
            })
        } else {
            write4(dst, (a, b, c, d), &f)
        }
    })
}

/// The `len` elements of chunk `i` of `s` (chunks of [`ELEMENTWISE_CHUNK`]).
fn part<T>(s: &[T], i: usize, len: usize) -> &[T] {
    &s[i * ELEMENTWISE_CHUNK..i * ELEMENTWISE_CHUNK + len]
}

/// [`fill4`] over operands as long as `o`, with the proof that it wrote all of `o`.
///
/// # Panics
/// If an operand is not as long as `o`.
#[inline(always)]
fn write4<'o, T: Float, F: Fn(T, T, T, T) -> T>(
    o: &'o mut [MaybeUninit<T>],
    operands: (&[T], &[T], &[T], &[T]),
    f: &F,
) -> Written<'o, T> {
    let n = o.len();
    let (a, b, c, d) = operands;
    assert!(a.len() == n && b.len() == n && c.len() == n && d.len() == n, "write4: operands differ in length");
    fill4(o, operands, f);
    // SAFETY: `fill4` zips `o` with the four operands, each as long as `o` (checked above), and
    // writes each slot it reaches: all of them.
    unsafe { Written::assume(o) }
}

simd::kernel! {
    /// Writes `f(aᵢ, bᵢ, cᵢ, dᵢ)` into every slot of `o` (the operands as long as `o`), compiled
    /// for the CPU's vector instructions.
    fn fill4[T: Float, F: Fn(T, T, T, T) -> T](o: &mut [MaybeUninit<T>], operands: (&[T], &[T], &[T], &[T]), f: &F) where [] {
        let (a, b, c, d) = operands;
        for ((((o, &w), &x), &y), &z) in o.iter_mut().zip(a).zip(b).zip(c).zip(d) {
            o.write(f(w, x, y, z));
        }
    }
}

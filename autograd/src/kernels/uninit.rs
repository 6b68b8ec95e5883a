//! New vectors written in place, without being zeroed first: the one owner of `Vec::set_len`.
//!
//! An op's output is taken from [`recycle`] with its capacity but no length, and its slots are
//! written once by the kernel that computes them. Code outside `kernels` does this safely through
//! [`new_vec`]: its closure must return a [`Written`] proof for the whole slice it was given,
//! and a proof is made only by a writer that writes every slot of its slice ([`write_slice`],
//! [`gemm_into`](super::gemm::gemm_into)), by [`fill_chunks`] and [`par_fill_chunks`] from a
//! proof per chunk. A proof
//! borrows its slice, so the slots cannot be written again (or un-written) while it lives, and
//! [`new_vec`] checks that the proof covers exactly the slice it handed out.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::{recycle, Float};

/// Proof that every slot of one slice of `MaybeUninit<T>` holds a value. It keeps the slice
/// borrowed for `'a`, so nothing can change the slots while the proof lives.
#[must_use = "a proof is only worth handing to new_vec or fill_chunks"]
pub(crate) struct Written<'a, T> {
    start: *const T,
    len: usize,
    _slots: PhantomData<&'a mut [MaybeUninit<T>]>,
}

impl<'a, T> Written<'a, T> {
    /// The proof for `slots`, which the caller has written.
    ///
    /// # Safety
    /// Every slot of `slots` must hold a value.
    pub(in crate::kernels) unsafe fn assume(slots: &'a mut [MaybeUninit<T>]) -> Self {
        Written { start: slots.as_ptr().cast(), len: slots.len(), _slots: PhantomData }
    }

    /// Whether this is the proof for the `len` slots from `start`.
    fn covers(&self, start: *const MaybeUninit<T>, len: usize) -> bool {
        std::ptr::eq(self.start, start.cast()) && self.len == len
    }
}

/// A new vector of `len` elements, each written by `fill`, which gets the uninitialized slots
/// and returns the proof that it wrote all of them. The buffer comes from [`recycle::take`].
///
/// # Panics
/// If the proof `fill` returns is for another slice.
pub(crate) fn new_vec<T: Float>(
    len: usize,
    fill: impl for<'s> FnOnce(&'s mut [MaybeUninit<T>]) -> Written<'s, T>,
) -> Vec<T> {
    let mut out = recycle::take(len);
    let dst = &mut out.spare_capacity_mut()[..len];
    let (start, written) = (dst.as_ptr(), fill(dst));
    assert!(written.covers(start, len), "new_vec: the proof is not for the slots handed out");
    // SAFETY: `written` proves that the `len` slots starting at `start`, the first `len` slots
    // of `out`'s spare capacity (checked just above), all hold values.
    unsafe { assume_init(&mut out, len) };
    out
}

/// Sets the length of `v`, which is 0, to `len`.
///
/// # Safety
/// `v`'s capacity holds at least `len` slots and each of the first `len` holds a value.
pub(in crate::kernels) unsafe fn assume_init<T>(v: &mut Vec<T>, len: usize) {
    debug_assert!(v.is_empty() && v.capacity() >= len);
    // SAFETY: the caller's contract is `set_len`'s: `len` ≤ capacity, the slots initialized.
    unsafe { v.set_len(len) }
}

/// Copies `src` into `slots`, which must be as long.
///
/// # Panics
/// If the lengths differ.
#[inline]
pub(crate) fn write_slice<'a, T: Copy>(slots: &'a mut [MaybeUninit<T>], src: &[T]) -> Written<'a, T> {
    assert_eq!(slots.len(), src.len(), "write_slice: lengths differ");
    for (s, &v) in slots.iter_mut().zip(src) {
        s.write(v);
    }
    // SAFETY: the zip ran over all of `slots`, as `src` is as long, and wrote each slot.
    unsafe { Written::assume(slots) }
}

/// Writes `slots` chunk by chunk: `fill(i, chunk)` writes the `i`-th chunk of `chunk_len`
/// elements (the last may be shorter) and returns its proof.
///
/// # Panics
/// If `chunk_len` is 0 and `slots` is not empty, or a proof is not its chunk's.
pub(crate) fn fill_chunks<'a, T>(
    slots: &'a mut [MaybeUninit<T>],
    chunk_len: usize,
    mut fill: impl for<'c> FnMut(usize, &'c mut [MaybeUninit<T>]) -> Written<'c, T>,
) -> Written<'a, T> {
    if !slots.is_empty() {
        for (i, chunk) in slots.chunks_mut(chunk_len).enumerate() {
            let (start, len) = (chunk.as_ptr(), chunk.len());
            let written = fill(i, chunk);
            assert!(written.covers(start, len), "fill_chunks: a proof is not its chunk's");
        }
    }
    // SAFETY: the chunks partition `slots` (or it is empty), and each was proven written.
    unsafe { Written::assume(slots) }
}

/// [`fill_chunks`] with the chunks written in parallel.
///
/// # Panics
/// If `chunk_len` is 0 and `slots` is not empty, or a proof is not its chunk's.
pub(crate) fn par_fill_chunks<'a, T: Send + Sync>(
    slots: &'a mut [MaybeUninit<T>],
    chunk_len: usize,
    fill: impl for<'c> Fn(usize, &'c mut [MaybeUninit<T>]) -> Written<'c, T> + Sync,
) -> Written<'a, T> {
    if !slots.is_empty() {
        slots.par_chunks_mut(chunk_len).enumerate().for_each(|(i, chunk)| {
            let (start, len) = (chunk.as_ptr(), chunk.len());
            let written = fill(i, chunk);
            assert!(written.covers(start, len), "par_fill_chunks: a proof is not its chunk's");
        });
    }
    // SAFETY: the chunks partition `slots` (or it is empty), and each was proven written.
    unsafe { Written::assume(slots) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_written_in_parallel_fill_the_vector() {
        let src: Vec<f64> = (0..10_000).map(f64::from).collect();
        let v = new_vec(src.len(), |dst| par_fill_chunks(dst, 333, |i, c| write_slice(c, &src[i * 333..][..c.len()])));
        assert_eq!(v, src);
        let empty: Vec<f32> = new_vec(0, |dst| par_fill_chunks(dst, 0, |_, c| write_slice(c, &[])));
        assert!(empty.is_empty());
    }

    #[test]
    #[should_panic(expected = "not for the slots handed out")]
    fn a_proof_for_part_of_the_slots_is_refused() {
        let _: Vec<f32> = new_vec(4, |dst| write_slice(&mut dst[..2], &[1.0, 2.0]));
    }

    #[test]
    #[should_panic(expected = "not its chunk's")]
    fn a_chunk_proof_for_part_of_its_chunk_is_refused() {
        let _: Vec<f32> = new_vec(4, |dst| fill_chunks(dst, 2, |_, c| write_slice(&mut c[..1], &[1.0])));
    }
}

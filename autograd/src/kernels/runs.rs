//! The reductions' loop: every element of a tensor folded into the slot of the result it
//! reduces to, run by run (the innermost contiguous stretches), compiled for the CPU's vector
//! instructions as [`kernel!`](crate::simd::kernel)s for sums and maxima.

use crate::kernels::simd;
use crate::shape;
use crate::{Float, Tensor};

/// Folds every element of `t` into the output slot it reduces to. `kept` is the shape of the
/// result with reduced dims kept as 1. The innermost run is handed over whole, so sums over
/// the last axis and over leading axes both vectorize.
#[inline(always)]
fn reduce_into<T: Float>(t: &Tensor<T>, kept: &[usize], init: T, fold_run: impl Fn(&mut [T], &[T], usize)) -> Vec<T> {
    let mut out = vec![init; shape::numel(kept)];
    let ostrides = shape::broadcast_strides(kept, t.shape());
    let src = t.data();
    let mut pos = 0;
    shape::for_each_run(t.shape(), &ostrides, |o, s, n| {
        let run = &src[pos..pos + n];
        pos += n;
        if s == 0 {
            fold_run(&mut out[o..o + 1], run, 0);
        } else {
            fold_run(&mut out[o..o + n], run, 1);
        }
    });
    out
}

simd::kernel! {
    /// `sum_kept`'s general case: the runs folded by [`reduce_into`].
    pub(crate) fn sum_runs[T: Float](t: &Tensor<T>, kept: &[usize]) -> Vec<T> where [] {
        reduce_into(t, kept, T::ZERO, |acc, run, step| {
            if step == 0 {
                acc[0] += run.iter().copied().sum::<T>();
            } else {
                acc.iter_mut().zip(run).for_each(|(a, &x)| *a += x);
            }
        })
    }
}

simd::kernel! {
    /// `max_kept`'s runs folded by [`reduce_into`].
    pub(crate) fn max_runs[T: Float](t: &Tensor<T>, kept: &[usize]) -> Vec<T> where [] {
        reduce_into(t, kept, T::NEG_INFINITY, |acc, run, step| {
            if step == 0 {
                acc[0] = run.iter().fold(acc[0], |m, &x| m.max(x));
            } else {
                acc.iter_mut().zip(run).for_each(|(a, &x)| *a = a.max(x));
            }
        })
    }
}

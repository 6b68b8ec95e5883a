//! Communicators: how the ranks of a data-parallel run (the threads of one process, or the
//! processes that `mpirun` starts on one or several machines) sum their gradients, take rank 0's
//! parameters and wait for each other.
//!
//! A [`Communicator`] is the four collective operations data parallelism needs: an all-reduce
//! sum of a buffer in place, a broadcast from rank 0, an all-gather of one number per rank (for
//! checksums) and a barrier. [`SingleProcess`] is a world of one, [`LocalCommunicator`] a world
//! of threads in one process and, with the `mpi` feature, `MpiCommunicator` a world of processes
//! over MPI. A training step written against `&dyn Communicator` (or with [`Ddp`], which buckets
//! the gradients and overlaps their reduction with backward) runs under any of them.
//!
//! Every all-reduce sums the ranks' buffers in rank order, `((b₀ + b₁) + b₂) + …`, whatever the
//! communicator: a run is repeatable, and W ranks give bit for bit the gradient of
//! [`DataParallel`](crate::DataParallel) with W shards, which sums in the same order.
//!
//! ```
//! use nn::comm::{Buffer, Communicator, LocalCommunicator};
//!
//! // Three ranks, each holding its own numbers; after the all-reduce every rank has the sum.
//! let sums = LocalCommunicator::run(3, |comm| {
//!     let mut g = vec![comm.rank() as f64, 1.0];
//!     comm.all_reduce_sum(Buffer::F64(&mut g));
//!     g
//! });
//! assert!(sums.iter().all(|s| s == &[0.0 + 1.0 + 2.0, 3.0]));
//! ```

use std::any::Any;

use autograd::Float;

mod ddp;
mod local;
#[cfg(feature = "mpi")]
mod mpi;

pub use ddp::{Ddp, DdpConfig, DdpStats, ParamsDiffer};
pub use local::LocalCommunicator;
#[cfg(feature = "mpi")]
pub use mpi::MpiCommunicator;

/// A buffer of either element type, lent to a collective operation that rewrites it in place.
#[derive(Debug)]
pub enum Buffer<'a> {
    /// Single precision.
    F32(&'a mut [f32]),
    /// Double precision.
    F64(&'a mut [f64]),
}

impl<'a> Buffer<'a> {
    /// The buffer of a vector of pente's element type `T` (`f32` or `f64`).
    // A `Vec`, not a slice: `Any` tells the element type of sized values only.
    #[allow(clippy::ptr_arg)]
    pub fn of<T: Float>(v: &'a mut Vec<T>) -> Self {
        let any: &'a mut dyn Any = v;
        if any.is::<Vec<f32>>() {
            Buffer::F32(any.downcast_mut::<Vec<f32>>().expect("checked to be Vec<f32>"))
        } else {
            Buffer::F64(any.downcast_mut::<Vec<f64>>().expect("pente's element types are f32 and f64"))
        }
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            Buffer::F32(b) => b.len(),
            Buffer::F64(b) => b.len(),
        }
    }

    /// Whether it has no element.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The collective operations of data-parallel training, across the ranks of one world.
///
/// Every rank must call the same operations in the same order with buffers of the same length
/// (as MPI requires). A rank that fails makes the others fail too, naming it, instead of
/// leaving them waiting: [`LocalCommunicator`] panics on every rank, MPI aborts the job.
pub trait Communicator: Send + Sync {
    /// This rank, in `0..world_size()`.
    fn rank(&self) -> usize;

    /// The number of ranks.
    fn world_size(&self) -> usize;

    /// Replaces `buf` on every rank with the sum over the ranks of their `buf`, taken in rank
    /// order (`((b₀ + b₁) + b₂) + …`, the same bits on every rank and in every run).
    ///
    /// # Panics
    /// If the ranks' buffers differ in length or element type, or another rank failed.
    fn all_reduce_sum(&self, buf: Buffer<'_>);

    /// Replaces `buf` on every rank with rank 0's.
    ///
    /// # Panics
    /// As [`Communicator::all_reduce_sum`].
    fn broadcast(&self, buf: Buffer<'_>);

    /// Every rank's `value`, in rank order, on every rank.
    ///
    /// # Panics
    /// If another rank failed.
    fn all_gather(&self, value: u64) -> Vec<u64>;

    /// Returns once every rank has called it.
    ///
    /// # Panics
    /// If another rank failed.
    fn barrier(&self);

    /// Ends every rank of the world after printing `message` (with this rank) to standard
    /// error: the way out of an error that one rank meets alone, which would otherwise leave
    /// the others waiting in their next collective forever.
    fn abort(&self, message: &str) -> !;
}

/// The world of one rank: every collective returns at once, leaving the buffer as it is.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleProcess;

impl Communicator for SingleProcess {
    fn rank(&self) -> usize {
        0
    }

    fn world_size(&self) -> usize {
        1
    }

    fn all_reduce_sum(&self, _buf: Buffer<'_>) {}

    fn broadcast(&self, _buf: Buffer<'_>) {}

    fn all_gather(&self, value: u64) -> Vec<u64> {
        vec![value]
    }

    fn barrier(&self) {}

    fn abort(&self, message: &str) -> ! {
        panic!("{message}")
    }
}

/// Adds `from` into `into` element by element (`into[i] = into[i] + from[i]`).
fn add_into<T: Copy + std::ops::Add<Output = T>>(into: &mut [T], from: &[T]) {
    for (a, &b) in into.iter_mut().zip(from) {
        *a = *a + b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_of_picks_the_element_type() {
        let mut a = vec![1.0f32, 2.0];
        assert!(matches!(Buffer::of(&mut a), Buffer::F32(b) if b == [1.0, 2.0]));
        let mut b = vec![3.0f64];
        assert!(matches!(Buffer::of(&mut b), Buffer::F64(b) if b == [3.0]));
        assert_eq!(Buffer::of(&mut Vec::<f32>::new()).len(), 0);
    }

    #[test]
    fn a_single_process_leaves_buffers_as_they_are() {
        let mut g = vec![1.5f32, -2.0];
        SingleProcess.all_reduce_sum(Buffer::F32(&mut g));
        SingleProcess.broadcast(Buffer::F32(&mut g));
        SingleProcess.barrier();
        assert_eq!(g, [1.5, -2.0]);
        assert_eq!((SingleProcess.rank(), SingleProcess.world_size()), (0, 1));
        assert_eq!(SingleProcess.all_gather(7), [7]);
    }
}

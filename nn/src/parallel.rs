//! Data parallelism on one machine: a batch cut into shards, each shard's forward and backward
//! recorded on its own tape on its own thread, and the shards' gradients summed.
//!
//! pente's ops split their work across rayon's threads one op at a time, which pays a
//! hand-off and a wait at every op. A transformer step of small matrices (char-gpt: a batch of
//! 12 × 64 tokens, 128 wide) runs hundreds of such ops, and `perf` put about a sixth of its
//! samples on the second core waiting. [`DataParallel`] instead gives each core a whole shard
//! of the batch: every op of a shard runs on that shard's thread alone, with no hand-off, and
//! the cores meet once per step, to sum the gradients. This is PyTorch's
//! `DistributedDataParallel` (or JAX's `pmap`) across the cores of one machine, in one process,
//! without copies of the parameters: every shard reads the same [`ParamStore`].
//!
//! The gradient is the same as the whole batch's when each shard returns its *term* of the
//! batch's loss (for a mean over the batch: the shard's mean times its share of the rows, as
//! [`DataParallel::split`] gives it), up to the order in which the floating-point sums are
//! taken.
//!
//! ```
//! use autograd::Tensor;
//! use nn::{loss, Activation, DataParallel, Mlp, ParamStore};
//!
//! let mut store = ParamStore::<f64>::with_seed(0);
//! let mlp = Mlp::new(store.scope("mlp"), &[3, 4, 2], Activation::Tanh);
//! let x: Vec<f64> = (0..18).map(|i| f64::from(i) / 10.0).collect(); // 6 rows of 3
//! let labels = [0, 1, 1, 0, 1, 0];
//!
//! // The whole batch on one tape...
//! let (whole, grads) = store.value_and_grad(0, |p| {
//!     let x = p.tape().constant(Tensor::from_vec(x.clone(), &[6, 3]));
//!     loss::cross_entropy(mlp.forward(p, x), &labels)
//! });
//! // ...and in two shards of three rows, side by side.
//! let dp = DataParallel::new(2);
//! let (sharded, sharded_grads) = dp.value_and_grad(&store, 0, |p, shard| {
//!     let (rows, weight) = dp.split(6, shard);
//!     let x = p.tape().constant(Tensor::from_vec(x[rows.start * 3..rows.end * 3].to_vec(), &[rows.len(), 3]));
//!     loss::cross_entropy(mlp.forward(p, x), &labels[rows]) * weight
//! });
//! assert!((whole - sharded).abs() < 1e-12);
//! for (id, g) in grads.iter() {
//!     let h = sharded_grads.get(id).unwrap();
//!     assert!(g.data().iter().zip(h.data()).all(|(a, b)| (a - b).abs() < 1e-12));
//! }
//! ```

use std::ops::Range;

use autograd::{Float, Var};
use rayon::prelude::*;

use crate::params::{Bound, ParamGrads, ParamStore};

/// Runs a step's forward and backward as shards side by side, each on its own thread and tape,
/// and sums their gradients; see the [module docs](self).
///
/// Each shard runs on a pool of one thread of its own (made once, with the `DataParallel`), so
/// the ops inside a shard never split their work, and never wait for another core: the
/// [`KeepWarm`](autograd::KeepWarm) guard of a shard's tape does nothing in a one-thread pool.
pub struct DataParallel {
    pools: Vec<rayon::ThreadPool>,
}

impl DataParallel {
    /// Runs `shards` shards, each on a thread of its own.
    ///
    /// # Panics
    /// If `shards` is 0, or the operating system refuses to start a thread.
    pub fn new(shards: usize) -> Self {
        assert!(shards > 0, "DataParallel: at least one shard");
        let pools = (0..shards)
            .map(|i| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("pente-shard-{i}"))
                    .build()
                    .unwrap_or_else(|e| panic!("DataParallel: cannot start shard {i}'s thread: {e}"))
            })
            .collect();
        DataParallel { pools }
    }

    /// One shard per thread of the current rayon pool (per core, by default), at most `rows`
    /// (a batch of 3 rows on 4 cores runs as 3 shards of one row).
    pub fn per_thread(rows: usize) -> Self {
        Self::new(Self::per_thread_count(rows))
    }

    /// How many shards [`per_thread`](Self::per_thread) runs a batch of `rows` as, without
    /// starting their threads (at least 1).
    pub fn per_thread_count(rows: usize) -> usize {
        rayon::current_num_threads().min(rows).max(1)
    }

    /// How many shards a step runs as.
    pub fn shards(&self) -> usize {
        self.pools.len()
    }

    /// Shard `shard`'s rows of a batch of `rows`, and its share of them as the weight of its
    /// loss term: the rows cut into [`shards`](Self::shards) runs whose sizes differ by at most
    /// one, in order. A shard may get no rows (more shards than rows), and then a weight of 0.
    ///
    /// # Panics
    /// If `shard` is not below the number of shards.
    pub fn split(&self, rows: usize, shard: usize) -> (Range<usize>, f64) {
        let n = self.shards();
        assert!(shard < n, "DataParallel::split: shard {shard} of {n}");
        let range = rows * shard / n..rows * (shard + 1) / n;
        let weight = if rows == 0 { 0.0 } else { range.len() as f64 / rows as f64 };
        (range, weight)
    }

    /// Runs `f(p, shard)` for every shard on its own thread and tape, seeded with
    /// `seed + shard·2³²` (the seed drives dropout; shard 0's is `seed`), back-propagates each
    /// one-element result, and returns their sum and the sum of their parameters' gradients.
    ///
    /// `f` returns its shard's term of the batch's loss, so that the terms sum to it (for a mean
    /// over rows, weight each shard's mean by [`split`](Self::split)'s share). The sums are taken
    /// in shard order, so a run is repeatable; against the whole batch on one tape, they differ
    /// by the rounding of a different order of additions. A panic in a shard reaches the caller.
    ///
    /// Buffers (batch norm's running statistics, [`Bound::set_buffer`]) come back as shard 0
    /// set them: each shard normalizes with its own rows' statistics, and shard 0's update of
    /// the running ones is kept, which is what PyTorch's `DistributedDataParallel` does by
    /// broadcasting rank 0's buffers.
    pub fn value_and_grad<T, F>(&self, store: &ParamStore<T>, seed: u64, f: F) -> (T, ParamGrads<T>)
    where
        T: Float,
        F: for<'t> Fn(&Bound<'t, T>, usize) -> Var<'t, T> + Sync,
    {
        let run = |shard: usize| {
            let shard_seed = seed.wrapping_add((shard as u64) << 32);
            self.pools[shard].install(|| store.value_and_grad(shard_seed, |p| f(p, shard)))
        };
        let mut results: Vec<(T, ParamGrads<T>)> = (0..self.shards()).into_par_iter().map(run).collect();
        let rest = results.split_off(1);
        let (mut loss, mut grads) = results.pop().expect("at least one shard");
        // Shard 0's new running statistics are the step's, as rank 0's are under PyTorch's
        // DDP (and pente's `Ddp`): `accumulate` would keep the last shard's.
        let shard_0_buffers = grads.buffers.clone();
        for (l, g) in &rest {
            loss += *l;
            grads.accumulate(g);
        }
        grads.buffers = shard_0_buffers;
        (loss, grads)
    }
}

#[cfg(test)]
mod tests {
    use autograd::Tensor;

    use super::*;
    use crate::{loss, Activation, Mlp};

    /// An MLP and a batch of `rows` rows of 3 features with labels in 0..2.
    fn problem(rows: usize) -> (ParamStore<f64>, Mlp, Vec<f64>, Vec<usize>) {
        let mut store = ParamStore::<f64>::with_seed(3);
        let mlp = Mlp::new(store.scope("mlp"), &[3, 5, 2], Activation::Tanh);
        let x = (0..rows * 3).map(|i| ((i * 37) % 11) as f64 / 5.0 - 1.0).collect();
        let y = (0..rows).map(|i| (i * 7) % 2).collect();
        (store, mlp, x, y)
    }

    #[test]
    fn shards_sum_to_the_whole_batch() {
        for (rows, shards) in [(6, 2), (7, 3), (5, 1), (2, 4)] {
            let (store, mlp, x, y) = problem(rows);
            let (whole, want) = store.value_and_grad(0, |p| loss_on(p, &mlp, &x, &y));
            let dp = DataParallel::new(shards);
            let (sharded, got) = dp.value_and_grad(&store, 0, |p, shard| {
                let (r, weight) = dp.split(rows, shard);
                if r.is_empty() {
                    return p.tape().constant(Tensor::scalar(0.0)); // a shard without rows adds nothing
                }
                loss_on(p, &mlp, &x[r.start * 3..r.end * 3], &y[r]) * weight
            });
            assert!((whole - sharded).abs() < 1e-12, "{rows} rows in {shards}: {whole} against {sharded}");
            let mut compared = 0;
            for (id, w) in want.iter() {
                let g = got.get(id).expect("every parameter has a gradient");
                for (a, b) in w.data().iter().zip(g.data()) {
                    assert!((a - b).abs() < 1e-12, "{rows} rows in {shards}, {}: {a} against {b}", store.name(id));
                }
                compared += 1;
            }
            assert_eq!(compared, store.len());
        }
    }

    /// The mean cross-entropy of `mlp` on the rows `x` (3 features each) labelled `y`.
    fn loss_on<'t>(p: &Bound<'t, f64>, mlp: &Mlp, x: &[f64], y: &[usize]) -> Var<'t, f64> {
        let xs = p.tape().constant(Tensor::from_vec(x.to_vec(), &[y.len(), 3]));
        loss::cross_entropy(mlp.forward(p, xs), y)
    }

    #[test]
    fn one_shard_is_value_and_grad_exactly() {
        let (store, mlp, x, y) = problem(4);
        let (a, ga) = store.value_and_grad(9, |p| loss_on(p, &mlp, &x, &y));
        let (b, gb) = DataParallel::new(1).value_and_grad(&store, 9, |p, _| loss_on(p, &mlp, &x, &y));
        assert_eq!(a.to_bits(), b.to_bits());
        for (id, g) in ga.iter() {
            assert_eq!(g.data(), gb.get(id).unwrap().data());
        }
    }

    #[test]
    fn split_covers_the_rows_in_order_with_shares_that_sum_to_one() {
        let dp = DataParallel::new(3);
        let parts: Vec<_> = (0..3).map(|s| dp.split(10, s)).collect();
        assert_eq!(parts.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(), vec![0..3, 3..6, 6..10]);
        assert!((parts.iter().map(|(_, w)| w).sum::<f64>() - 1.0).abs() < 1e-15);
        assert_eq!(dp.split(0, 2), (0..0, 0.0));
    }

    #[test]
    fn every_shard_runs_on_a_thread_of_its_own() {
        let (store, _, _, _) = problem(1);
        let dp = DataParallel::new(2);
        let names = std::sync::Mutex::new(Vec::new());
        dp.value_and_grad(&store, 0, |p, _| {
            names.lock().unwrap().push(std::thread::current().name().map(str::to_owned));
            assert_eq!(rayon::current_num_threads(), 1, "a shard's ops run on one thread");
            p.tape().constant(Tensor::scalar(1.0))
        });
        let mut names = names.into_inner().unwrap();
        names.sort();
        assert_eq!(names, vec![Some("pente-shard-0".to_owned()), Some("pente-shard-1".to_owned())]);
    }

    #[test]
    #[should_panic(expected = "boom in shard 1")]
    fn a_panic_in_a_shard_reaches_the_caller() {
        let (store, _, _, _) = problem(1);
        DataParallel::new(2).value_and_grad(&store, 0, |p, shard| {
            assert!(shard != 1, "boom in shard {shard}");
            p.tape().constant(Tensor::scalar(1.0))
        });
    }

    #[test]
    #[should_panic(expected = "at least one shard")]
    fn zero_shards_are_refused() {
        let _ = DataParallel::new(0);
    }
}

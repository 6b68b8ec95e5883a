//! [`Batcher`]: mini-batches of row indices, shuffled by a seeded generator, with the last
//! partial batch kept or dropped; [`gather_rows`] and [`gather`] to cut tensors and label lists
//! by those indices.
//!
//! The order of epoch `e` depends only on `(seed, e)`, so a run resumed at epoch `e` sees the
//! same batches as one that never stopped.
//!
//! ```
//! use autograd::Tensor;
//! use nn::data::{gather, gather_rows, Batcher};
//! let x = Tensor::from_vec((0..10).map(|i| i as f32).collect(), &[5, 2]);
//! let y = [0usize, 1, 0, 1, 1];
//! let batcher = Batcher { batch_size: 2, shuffle: true, drop_last: false, seed: 7 };
//! let mut seen = 0;
//! for idx in batcher.epoch(5, 0) {
//!     let (xb, yb) = (gather_rows(&x, &idx), gather(&y, &idx));  // (≤ 2, 2), ≤ 2 labels
//!     assert_eq!(xb.shape()[0], yb.len());
//!     seen += idx.len();
//! }
//! assert_eq!(seen, 5); // the last batch holds one row
//! assert_eq!(batcher.num_batches(5), 3);
//! ```

use autograd::{Float, Rng, SeedableRng, Tensor};
use rand::RngCore;

/// How to cut `n` rows into mini-batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batcher {
    /// Rows per batch (the last may hold fewer unless `drop_last`).
    pub batch_size: usize,
    /// Visit rows in a fresh random order each epoch (otherwise in order).
    pub shuffle: bool,
    /// Drop a last batch smaller than `batch_size`.
    pub drop_last: bool,
    /// Seed of the shuffling.
    pub seed: u64,
}

impl Batcher {
    /// The number of batches an epoch over `n` rows yields.
    pub fn num_batches(&self, n: usize) -> usize {
        let b = self.batch_size.max(1);
        if self.drop_last {
            n / b
        } else {
            n.div_ceil(b)
        }
    }

    /// The row order of epoch `epoch` over `n` rows: a permutation of `0..n` (the identity when
    /// not shuffling). Fisher–Yates with ChaCha8 seeded from `(seed, epoch)`, and a
    /// multiply-shift draw that does not depend on `rand`'s range sampling.
    pub fn order(&self, n: usize, epoch: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        if self.shuffle {
            let mut rng = Rng::seed_from_u64(self.seed ^ epoch.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for i in (1..n).rev() {
                let j = ((rng.next_u64() as u128 * (i as u128 + 1)) >> 64) as usize;
                idx.swap(i, j);
            }
        }
        idx
    }

    /// The batches of epoch `epoch` over `n` rows, each a list of row indices.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    #[track_caller]
    pub fn epoch(&self, n: usize, epoch: u64) -> impl Iterator<Item = Vec<usize>> {
        assert!(self.batch_size > 0, "Batcher: batch_size must be positive");
        let order = self.order(n, epoch);
        let b = self.batch_size;
        let count = self.num_batches(n);
        (0..count).map(move |k| order[k * b..((k + 1) * b).min(order.len())].to_vec())
    }
}

/// The rows `idx` of `t` (along its first axis), in that order.
///
/// # Panics
/// If `t` is 0-d or an index is out of range.
#[track_caller]
pub fn gather_rows<T: Float>(t: &Tensor<T>, idx: &[usize]) -> Tensor<T> {
    let shape = t.shape();
    assert!(!shape.is_empty(), "gather_rows: tensor is a scalar");
    let row: usize = shape[1..].iter().product();
    let data = t.data();
    let mut out = Vec::with_capacity(idx.len() * row);
    for &i in idx {
        assert!(i < shape[0], "gather_rows: row {i} out of range for shape {shape:?}");
        out.extend_from_slice(&data[i * row..(i + 1) * row]);
    }
    let mut out_shape = shape.to_vec();
    out_shape[0] = idx.len();
    Tensor::from_vec(out, &out_shape)
}

/// The elements `idx` of `v`, in that order.
///
/// # Panics
/// If an index is out of range.
#[track_caller]
pub fn gather<U: Copy>(v: &[U], idx: &[usize]) -> Vec<U> {
    idx.iter().map(|&i| v[i]).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_last_drops_only_the_partial_batch() {
        let b = Batcher { batch_size: 4, shuffle: false, drop_last: true, seed: 0 };
        let batches: Vec<_> = b.epoch(10, 0).collect();
        assert_eq!(batches, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7]]);
        let keep = Batcher { drop_last: false, ..b };
        assert_eq!(keep.epoch(10, 0).last(), Some(vec![8, 9]));
    }

    #[test]
    fn shuffling_is_a_permutation_seeded_by_seed_and_epoch() {
        let b = Batcher { batch_size: 3, shuffle: true, drop_last: false, seed: 42 };
        let e0 = b.order(100, 0);
        let mut sorted = e0.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..100).collect::<Vec<_>>());
        assert_eq!(e0, b.order(100, 0));
        assert_ne!(e0, b.order(100, 1));
        assert_ne!(e0, Batcher { seed: 43, ..b }.order(100, 0));
        assert_ne!(e0, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn gather_rows_keeps_trailing_axes() {
        let t = Tensor::from_vec((0..12).map(|i| i as f64).collect(), &[3, 2, 2]);
        let g = gather_rows(&t, &[2, 0]);
        assert_eq!(g.shape(), &[2, 2, 2]);
        assert_eq!(g.to_vec(), vec![8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0]);
    }
}

//! Recycling large buffers: a tensor's buffer of [`MIN_BYTES`] or more goes back to a pool,
//! keyed by its capacity, when the tensor is dropped, and the next op that needs a buffer of that
//! size takes it from there instead of from the allocator.
//!
//! Why: a training step allocates the same buffers in the same sizes every step. glibc's
//! allocator serves a block above its mmap threshold (128 KiB at first, growing to at most
//! 32 MiB) with fresh pages from the kernel and returns them on free, so every step paid a page
//! fault per 4 KiB of every large activation, and the kernel zeroed each page first: the digits
//! CNN trained at half speed that way, and a forward-only GPT validation spent half its time in
//! the kernel. Freed memory of rayon's worker threads goes to per-thread arenas, which give it
//! back to the kernel the same way. A pool in the library fixes this for every program that uses
//! it (the `pente` binary used to change glibc's tunables for itself with `mallopt` instead).
//!
//! What it keeps: at most [`limit`] bytes of free buffers across both element types (1 GiB,
//! unless [`set_limit`] or the environment variable `PENTE_RECYCLE_LIMIT`, in MiB, says
//! otherwise; 0 turns recycling off); a buffer given back beyond that is freed as before. A
//! training loop takes back on each step what the previous one gave, so the pool holds about one
//! step's activations between steps and little during one. When the sizes change (evaluation on
//! another batch size, a second model), each new size that finds no kept buffer frees kept
//! buffers of other sizes, least recently used first, for as many bytes ([`take`]), so old
//! sizes make room instead of piling up. [`clear`] frees everything kept. Buffers under
//! [`MIN_BYTES`] are left to the allocator, which serves them from its free lists quickly.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::Float;

/// Buffers smaller than this many bytes are never kept: the allocator reuses small blocks from
/// its own free lists. (Measured with `perf stat -e page-faults pente bench --workload
/// char-gpt`: 59,000 page faults with a 64 KiB threshold, 43,000 with 16 KiB or 4 KiB.)
pub const MIN_BYTES: usize = 16 << 10;

/// The default of [`limit`]: 1 GiB.
pub const DEFAULT_LIMIT: usize = 1 << 30;

/// Bytes the pools may keep, across element types; `usize::MAX` until first read, when
/// `PENTE_RECYCLE_LIMIT` (in MiB) or [`DEFAULT_LIMIT`] sets it.
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Bytes kept right now, across element types.
static KEPT: AtomicUsize = AtomicUsize::new(0);

/// The free buffers of one element type, by capacity (in elements).
pub struct Pool<T> {
    inner: Mutex<Classes<T>>,
}

/// A pool's buffers by capacity, and a clock of its takes.
struct Classes<T> {
    by_capacity: BTreeMap<usize, Class<T>>,
    /// Counts [`take`]s: a class's `last_take` is this clock's reading at its latest one.
    clock: u64,
}

/// The free buffers of one capacity.
struct Class<T> {
    free: Vec<Vec<T>>,
    last_take: u64,
}

impl<T: Float> Pool<T> {
    /// An empty pool (a `static` per element type: see [`Float::pool`]).
    pub const fn new() -> Self {
        Pool { inner: Mutex::new(Classes { by_capacity: BTreeMap::new(), clock: 0 }) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Classes<T>> {
        // A panic while the lock was held left the map consistent (every change to it is one
        // call that cannot panic half-way), so a poisoned lock is used as it is.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<T: Float> Default for Pool<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn bytes<T>(capacity: usize) -> usize {
    capacity * std::mem::size_of::<T>()
}

/// An empty vector with room for `n` elements: a kept buffer of capacity exactly `n` when there
/// is one, else a new allocation.
///
/// A miss (no kept buffer of that capacity) first frees kept buffers of other capacities, least
/// recently taken first, for at least as many bytes as it allocates: so when a program changes
/// the sizes it works with (training then evaluating on another batch size, a benchmark's
/// second configuration), the buffers of the old sizes make room for the new ones instead of
/// adding to them. A training loop that repeats its steps misses only in its first step.
pub fn take<T: Float>(n: usize) -> Vec<T> {
    let size = bytes::<T>(n);
    if size < MIN_BYTES {
        return Vec::with_capacity(n);
    }
    let evicted = {
        let mut pool = T::pool().lock();
        pool.clock += 1;
        let clock = pool.clock;
        let class = pool.by_capacity.entry(n).or_insert_with(|| Class { free: Vec::new(), last_take: 0 });
        class.last_take = clock;
        if let Some(mut v) = class.free.pop() {
            KEPT.fetch_sub(size, Ordering::Relaxed);
            v.clear();
            return v;
        }
        evict_for(&mut pool, n, size)
    };
    drop(evicted); // freed outside the lock
    Vec::with_capacity(n)
}

/// Takes kept buffers of capacities other than `n` out of `pool`, least recently taken first,
/// until they add up to `size` bytes or none is left, and returns them to be freed.
fn evict_for<T: Float>(pool: &mut Classes<T>, n: usize, size: usize) -> Vec<Vec<T>> {
    let mut evicted = Vec::new();
    let mut freed = 0;
    while freed < size {
        let oldest = pool
            .by_capacity
            .iter_mut()
            .filter(|(&cap, class)| cap != n && !class.free.is_empty())
            .min_by_key(|(_, class)| class.last_take);
        let Some((&cap, class)) = oldest else { break };
        let v = class.free.pop().expect("the class is not empty");
        freed += bytes::<T>(cap);
        evicted.push(v);
    }
    KEPT.fetch_sub(freed, Ordering::Relaxed);
    evicted
}

/// `n` copies of `value` in a vector from [`take`].
pub fn filled<T: Float>(n: usize, value: T) -> Vec<T> {
    let mut v = take(n);
    v.resize(n, value);
    v
}

/// `n` zeros in a vector from [`take`].
pub fn zeros<T: Float>(n: usize) -> Vec<T> {
    filled(n, T::ZERO)
}

/// Gives a buffer back for [`take`] to hand out again; it is freed instead when it is small,
/// or when keeping it would pass [`limit`].
pub fn give<T: Float>(v: Vec<T>) {
    let capacity = v.capacity();
    let size = bytes::<T>(capacity);
    if size < MIN_BYTES {
        return;
    }
    let limit = limit();
    let admitted = KEPT
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |kept| (kept + size <= limit).then_some(kept + size))
        .is_ok();
    if admitted {
        let mut pool = T::pool().lock();
        let class = pool.by_capacity.entry(capacity).or_insert_with(|| Class { free: Vec::new(), last_take: 0 });
        class.free.push(v);
    }
}

/// The most bytes of free buffers kept, across element types: [`set_limit`]'s, else the
/// environment variable `PENTE_RECYCLE_LIMIT` in MiB (0 turns recycling off), else
/// [`DEFAULT_LIMIT`].
pub fn limit() -> usize {
    match LIMIT.load(Ordering::Relaxed) {
        usize::MAX => {
            let from_env = std::env::var("PENTE_RECYCLE_LIMIT")
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .map_or(DEFAULT_LIMIT, |mib| mib.saturating_mul(1 << 20).min(usize::MAX - 1));
            // A limit set in the meantime by `set_limit` wins.
            match LIMIT.compare_exchange(usize::MAX, from_env, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => from_env,
                Err(set) => set,
            }
        }
        set => set,
    }
}

/// Sets [`limit`]; 0 turns recycling off. Buffers already kept beyond a lowered limit are freed.
pub fn set_limit(bytes: usize) {
    // `usize::MAX` marks the limit as not yet read from the environment.
    let bytes = bytes.min(usize::MAX - 1);
    LIMIT.store(bytes, Ordering::Relaxed);
    if KEPT.load(Ordering::Relaxed) > bytes {
        clear();
    }
}

/// Bytes of free buffers kept right now, across element types.
pub fn kept() -> usize {
    KEPT.load(Ordering::Relaxed)
}

/// Frees every kept buffer.
pub fn clear() {
    fn drain<T: Float>() {
        let drained = std::mem::take(&mut T::pool().lock().by_capacity);
        let size: usize = drained.iter().map(|(&cap, class)| bytes::<T>(cap) * class.free.len()).sum();
        KEPT.fetch_sub(size, Ordering::Relaxed);
    }
    drain::<f32>();
    drain::<f64>();
}

/// A vector that gives its buffer back to the pool when dropped: what a [`Tensor`](crate::Tensor)
/// holds its elements in.
///
/// It carries the function that gives the buffer back, set where the element type is known to
/// be a [`Float`], so that `Tensor<T>` itself needs no bound on `T` (a user's
/// `struct Layer<T> { w: Tensor<T> }` compiles as before).
pub(crate) struct Buffer<T> {
    data: Vec<T>,
    give: fn(Vec<T>),
}

impl<T: Float> Buffer<T> {
    pub(crate) fn new(data: Vec<T>) -> Self {
        Buffer { data, give: give::<T> }
    }
}

impl<T: Float> Default for Buffer<T> {
    fn default() -> Self {
        Buffer::new(Vec::new())
    }
}

impl<T> Buffer<T> {
    /// The vector, which then no longer goes back to the pool by itself.
    pub(crate) fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.data)
    }
}

impl<T> Drop for Buffer<T> {
    fn drop(&mut self) {
        (self.give)(std::mem::take(&mut self.data));
    }
}

impl<T: Float> Clone for Buffer<T> {
    fn clone(&self) -> Self {
        let mut v = take(self.data.len());
        v.extend_from_slice(&self.data);
        Buffer::new(v)
    }
}

impl<T> std::ops::Deref for Buffer<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.data
    }
}

impl<T> std::ops::DerefMut for Buffer<T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The pool is process-wide and every test of the crate uses it side by side, so the tests
    // of what it keeps, hands out and evicts run in a process of their own
    // (`autograd/tests/recycle_limit.rs`); these hold whatever the pool does meanwhile.

    #[test]
    fn small_buffers_are_left_to_the_allocator() {
        let n = MIN_BYTES / 8 - 1;
        give(vec![0.0f64; n]);
        assert_eq!(T::pool_len::<f64>(n), 0);
    }

    #[test]
    fn filled_writes_every_element_of_a_recycled_buffer() {
        let n = 100_019;
        give(vec![7.0f64; n]);
        let z: Vec<f64> = zeros(n);
        assert_eq!(z.len(), n);
        assert!(z.iter().all(|&x| x == 0.0));
    }

    /// Kept buffers of `capacity`.
    struct T;
    impl T {
        fn pool_len<F: Float>(capacity: usize) -> usize {
            F::pool().lock().by_capacity.get(&capacity).map_or(0, |class| class.free.len())
        }
    }
}

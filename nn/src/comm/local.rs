//! [`LocalCommunicator`]: a world of ranks that are threads of one process, meeting at a
//! barrier that a failed rank breaks for the others.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use super::{add_into, Buffer, Communicator};

/// One rank's deposit for the collective in progress.
#[derive(Clone, Default)]
enum Slot {
    #[default]
    Empty,
    F32(Vec<f32>),
    F64(Vec<f64>),
    Word(u64),
}

struct State {
    /// Ranks waiting at the barrier of this generation.
    arrived: usize,
    generation: u64,
    /// The first failure: which rank and what it said.
    failed: Option<String>,
    slots: Vec<Slot>,
}

struct Shared {
    size: usize,
    state: Mutex<State>,
    changed: Condvar,
}

/// One rank of a world of threads in one process (see [`LocalCommunicator::run`]): the
/// in-process counterpart of `MpiCommunicator`, what [`DataParallel`](crate::DataParallel)'s
/// shards amount to when each keeps its own copy of the parameters.
///
/// Collectives copy each rank's buffer into a shared slot, meet at a barrier, and let every
/// rank sum the slots in rank order. When a rank panics, [`LocalCommunicator::run`] marks the
/// world failed and every rank waiting in (or later entering) a collective panics with
/// `"rank R failed: …"` instead of waiting forever.
#[derive(Clone)]
pub struct LocalCommunicator {
    rank: usize,
    shared: Arc<Shared>,
}

impl LocalCommunicator {
    /// The `size` ranks of a new world, rank 0 first, to hand one to each thread.
    ///
    /// # Panics
    /// If `size` is 0.
    pub fn group(size: usize) -> Vec<LocalCommunicator> {
        assert!(size > 0, "LocalCommunicator::group: a world has at least one rank");
        let shared = Arc::new(Shared {
            size,
            state: Mutex::new(State { arrived: 0, generation: 0, failed: None, slots: vec![Slot::Empty; size] }),
            changed: Condvar::new(),
        });
        (0..size).map(|rank| LocalCommunicator { rank, shared: Arc::clone(&shared) }).collect()
    }

    /// Runs `f` on `size` threads, one rank each, and returns their results in rank order.
    ///
    /// # Panics
    /// If a rank panics: the other ranks' collectives fail too, and the first failing rank's
    /// panic reaches the caller.
    pub fn run<R: Send>(size: usize, f: impl Fn(&LocalCommunicator) -> R + Sync) -> Vec<R> {
        let ranks = Self::group(size);
        let results: Vec<std::thread::Result<R>> = std::thread::scope(|s| {
            let handles: Vec<_> = ranks
                .iter()
                .map(|comm| {
                    let f = &f;
                    std::thread::Builder::new()
                        .name(format!("pente-rank-{}", comm.rank))
                        .spawn_scoped(s, move || {
                            let out = catch_unwind(AssertUnwindSafe(|| f(comm)));
                            if let Err(e) = &out {
                                comm.fail(panic_message(e.as_ref()));
                            }
                            out
                        })
                        .expect("LocalCommunicator::run: cannot start a rank's thread")
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a rank's panic is caught in its thread")).collect()
        });
        // The rank that failed first, not one that failed because of it.
        let first = ranks[0].state().failed.clone();
        let mut out = Vec::with_capacity(size);
        let mut panics = Vec::new();
        for (rank, r) in results.into_iter().enumerate() {
            match r {
                Ok(v) => out.push(v),
                Err(e) => panics.push((rank, e)),
            }
        }
        if let Some((rank, e)) = panics.into_iter().next() {
            match first {
                Some(first) => panic!("{first}"),
                None => panic!("rank {rank} failed: {}", panic_message(e.as_ref())),
            }
        }
        out
    }

    /// Marks the world failed by this rank (the first failure is the one reported).
    fn fail(&self, message: String) {
        let mut st = self.state();
        if st.failed.is_none() {
            st.failed = Some(format!("rank {} failed: {message}", self.rank));
        }
        self.shared.changed.notify_all();
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until every rank has reached this barrier.
    fn wait<'a>(&'a self, mut st: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        check(&st, self.rank);
        let generation = st.generation;
        st.arrived += 1;
        if st.arrived == self.shared.size {
            st.arrived = 0;
            st.generation += 1;
            self.shared.changed.notify_all();
            return st;
        }
        while st.generation == generation {
            st = self.shared.changed.wait(st).unwrap_or_else(PoisonError::into_inner);
            check(&st, self.rank);
        }
        st
    }

    /// Deposits `slot`, waits for every rank's, runs `read` on all of them, and waits again
    /// (so that no slot is overwritten before every rank has read it).
    fn exchange<R>(&self, slot: Slot, read: impl FnOnce(&[Slot]) -> R) -> R {
        let mut st = self.state();
        st.slots[self.rank] = slot;
        let st = self.wait(st);
        let out = read(&st.slots);
        let mut st = self.wait(st);
        st.slots[self.rank] = Slot::Empty;
        out
    }
}

/// Panics on this rank if another one failed.
fn check(st: &State, rank: usize) {
    if let Some(failed) = &st.failed {
        panic!("rank {rank} stops: {failed}");
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// `slots`' vectors of the element type of `T`, in rank order, checked to have `len` elements.
macro_rules! vectors {
    ($slots:expr, $variant:ident, $len:expr, $what:literal) => {
        $slots
            .iter()
            .enumerate()
            .map(|(r, s)| match s {
                Slot::$variant(v) if v.len() == $len => v.as_slice(),
                Slot::$variant(v) => {
                    panic!(concat!($what, ": rank {} gave {} elements, this rank {}"), r, v.len(), $len)
                }
                _ => panic!(concat!($what, ": rank {} gave another element type"), r),
            })
            .collect::<Vec<_>>()
    };
}

impl Communicator for LocalCommunicator {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.shared.size
    }

    fn all_reduce_sum(&self, buf: Buffer<'_>) {
        match buf {
            Buffer::F32(b) => self.exchange(Slot::F32(b.to_vec()), |slots| {
                let v = vectors!(slots, F32, b.len(), "all_reduce_sum");
                b.copy_from_slice(v[0]);
                v[1..].iter().for_each(|x| add_into(b, x));
            }),
            Buffer::F64(b) => self.exchange(Slot::F64(b.to_vec()), |slots| {
                let v = vectors!(slots, F64, b.len(), "all_reduce_sum");
                b.copy_from_slice(v[0]);
                v[1..].iter().for_each(|x| add_into(b, x));
            }),
        }
    }

    fn broadcast(&self, buf: Buffer<'_>) {
        match buf {
            Buffer::F32(b) => {
                let mine = if self.rank == 0 { Slot::F32(b.to_vec()) } else { Slot::Empty };
                self.exchange(mine, |slots| b.copy_from_slice(vectors!(slots[..1], F32, b.len(), "broadcast")[0]));
            }
            Buffer::F64(b) => {
                let mine = if self.rank == 0 { Slot::F64(b.to_vec()) } else { Slot::Empty };
                self.exchange(mine, |slots| b.copy_from_slice(vectors!(slots[..1], F64, b.len(), "broadcast")[0]));
            }
        }
    }

    fn all_gather(&self, value: u64) -> Vec<u64> {
        self.exchange(Slot::Word(value), |slots| {
            slots
                .iter()
                .map(|s| if let Slot::Word(w) = s { *w } else { panic!("all_gather: a rank gave no word") })
                .collect()
        })
    }

    fn barrier(&self) {
        let st = self.state();
        drop(self.wait(st));
    }

    fn abort(&self, message: &str) -> ! {
        panic!("{message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_reduce_sums_in_rank_order_on_every_rank() {
        // (1e16 + -1e16) + 1 is 1 in rank order; from the last rank, (1 + -1e16) + 1e16 is 0.
        let out = LocalCommunicator::run(3, |comm| {
            let mut b = vec![[1e16, -1e16, 1.0][comm.rank()], comm.rank() as f64];
            comm.all_reduce_sum(Buffer::F64(&mut b));
            let mut c = vec![comm.rank() as f32 + 0.5];
            comm.all_reduce_sum(Buffer::F32(&mut c));
            (b, c)
        });
        for (b, c) in out {
            assert_eq!(b, [1.0, 3.0]);
            assert_eq!(c, [4.5]);
        }
    }

    #[test]
    fn broadcast_gather_and_barrier_agree_across_ranks() {
        let out = LocalCommunicator::run(4, |comm| {
            let mut b = vec![comm.rank() as f32 + 10.0; 3];
            comm.broadcast(Buffer::F32(&mut b));
            comm.barrier();
            (b, comm.all_gather(comm.rank() as u64 * 2), comm.world_size())
        });
        for (b, g, w) in out {
            assert_eq!((b, g, w), (vec![10.0; 3], vec![0, 2, 4, 6], 4));
        }
    }

    #[test]
    #[should_panic(expected = "rank 1 failed: cannot read data")]
    fn a_failed_rank_ends_the_others_naming_it() {
        LocalCommunicator::run(3, |comm| {
            if comm.rank() == 1 {
                panic!("cannot read data");
            }
            // The others wait for rank 1 here: they must stop, not hang.
            comm.barrier();
        });
    }

    #[test]
    #[should_panic(expected = "elements, this rank")]
    fn buffers_of_different_lengths_are_refused() {
        LocalCommunicator::run(2, |comm| {
            let mut b = vec![0.0f64; comm.rank() + 1];
            comm.all_reduce_sum(Buffer::F64(&mut b));
        });
    }
}

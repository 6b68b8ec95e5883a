//! Where pente's parallel ops find their threads: the program's main thread joins rayon's global
//! pool as its worker 0, so that a plain training loop on `main` runs its ops *inside* the pool.
//!
//! A parallel op started from a thread outside the pool (rayon's `in_worker_cold`) hands all of
//! its work to the pool's workers and puts the caller to sleep until they are done: a futex wait
//! and a wake-up per op, and the calling core idle meanwhile. Started from a worker, the caller
//! does its own share and the other workers join in; and [`KeepWarm`](crate::KeepWarm), which
//! keeps those other workers spinning between ops, works only there. A program could get this by
//! wrapping its loop in `rayon::scope(|_| …)`, but that closure must be `Send` and nobody thinks
//! of it. So [`Tape::new`](crate::Tape::new) calls [`join_global_pool`] on the main thread: when
//! the global pool is not built yet, it is built with `use_current_thread` (rayon's
//! `ThreadPoolBuilder::use_current_thread`), the main thread becoming worker 0 and rayon
//! starting the other `cores − 1` workers. It replaces the `rayon::scope` the `pente` binary
//! used to wrap its commands in (with char-gpt on one tape, the two were within the run-to-run
//! noise of each other in a check on 2026-12-07).
//!
//! What a program should know:
//! - Only the thread named `main` (Rust's name for the thread `fn main` runs on) joins, and only
//!   if rayon's global pool has not been built: a program that builds it itself
//!   (`rayon::ThreadPoolBuilder::new()….build_global()`) before its first tape keeps its pool
//!   as it made it. Test harness threads never join.
//! - Once joined, the main thread stays a worker for the rest of the process. It runs pool work
//!   only while it waits inside rayon (a `join`, a parallel iterator, a `scope`); rayon's
//!   blocking `broadcast` called from *another* thread waits until the main thread next does so.

use std::cell::Cell;
use std::sync::Once;

thread_local! {
    /// Whether this thread joined the global pool through [`join_global_pool`].
    static JOINED: Cell<bool> = const { Cell::new(false) };
    /// Whether [`join_global_pool`] has looked at this thread already (the answer never changes
    /// for a thread, and a tape is made per step in some loops).
    static LOOKED: Cell<bool> = const { Cell::new(false) };
}

/// Makes the calling thread worker 0 of rayon's global pool when it is the program's main thread
/// and the global pool is not built yet; see the [module docs](self). Returns whether the calling
/// thread is a worker of a rayon pool afterwards (joined now, before, or already a worker).
///
/// [`Tape::new`](crate::Tape::new) calls it, so a program needs to call it only to have the
/// pool built before its first tape (to time the first step without the pool's start-up, say).
///
/// ```
/// // A doctest is a program of its own: this runs on its main thread, before any use of rayon.
/// assert!(autograd::threads::join_global_pool());
/// assert_eq!(rayon::current_thread_index(), Some(0));
/// ```
pub fn join_global_pool() -> bool {
    if rayon::current_thread_index().is_some() {
        return true;
    }
    if LOOKED.with(|l| l.replace(true)) || std::thread::current().name() != Some("main") {
        return false;
    }
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        // An error means that the global pool exists already (the program built it, or used it
        // before its first tape): then it is left as it is, and this thread stays outside.
        if rayon::ThreadPoolBuilder::new().use_current_thread().build_global().is_ok() {
            JOINED.with(|j| j.set(true));
        }
    });
    rayon::current_thread_index().is_some()
}

/// Whether this thread joined the global pool through [`join_global_pool`]. Such a thread does
/// not run rayon's work-stealing loop, so the jobs broadcast to it wait until it next waits
/// inside rayon: [`KeepWarm`](crate::KeepWarm) runs the stale ones when it makes a new guard.
pub(crate) fn joined() -> bool {
    JOINED.with(Cell::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_not_named_main_never_joins() {
        let outcome = std::thread::Builder::new()
            .name("trainer".into())
            .spawn(|| (join_global_pool(), joined(), rayon::current_thread_index()))
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(outcome, (false, false, None));
    }

    #[test]
    fn a_pool_worker_is_reported_as_one_and_left_alone() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let (inside, joined_here) = pool.install(|| (join_global_pool(), joined()));
        assert!(inside);
        assert!(!joined_here, "a worker of another pool is not the joined main thread");
    }
}

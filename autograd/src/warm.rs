//! Keeping rayon's other workers awake while a step runs, so that each parallel op starts on
//! both cores at once instead of first waking a sleeping thread.
//!
//! Rayon puts an idle worker to sleep after a few dozen unsuccessful looks for work (tens of
//! microseconds), and the next parallel op then wakes it through the kernel: a futex call on the
//! side that hands out the work and a context switch on the side that takes it, each several
//! microseconds on a virtual machine. A training step runs hundreds of parallel ops with short
//! serial stretches between them, so its workers fall asleep and are woken again at almost every
//! op (`perf` put 13 % of char-gpt's samples in the kernel's wake-up and context-switch code).
//! While a [`KeepWarm`] is alive, every other worker of the pool runs a job that keeps asking
//! rayon for work ([`rayon::yield_now`]) and runs whatever it is given, so it never sleeps and
//! picks up each op's second half at once. This is what OpenMP runtimes do by default (their
//! threads spin for a while before sleeping: `OMP_WAIT_POLICY`, `KMP_BLOCKTIME`), and so what
//! PyTorch's threads do between ops.
//!
//! The price is the other cores kept busy through the serial stretches, up to [`IDLE_LIMIT`]
//! without work. A [`Tape`](crate::Tape) holds a guard for its lifetime (one step's forward and
//! backward) and renews it when [`reset`](crate::Tape::reset) for the next step, so the workers
//! spin only while steps are recorded and swept, and go back to rayon's own idling once the tape
//! is dropped or idle.
//!
//! Only a guard made on one of the pool's own threads does anything: the work it waits for comes
//! from that thread's own deque. Made elsewhere (a test harness's thread, a thread the program
//! spawned) it does nothing, as spinning every worker would take the cores from the thread that
//! is doing the serial work. A program's main thread is one of the pool's threads once it has
//! made a tape (see [`threads`](crate::threads)), so a plain training loop in `main` gets it.

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a worker spins without being given work before it returns to rayon (which then
/// lets it sleep), for [`KeepWarm::new`].
///
/// Serial stretches within a training step are shorter than this, so the worker stays awake
/// through a step, while a tape kept alive with nothing running costs at most this much
/// spinning. The limit also ends what would otherwise be a deadlock: a worker that picks up the
/// spinner while it waits inside a job of its own (a rayon join) resumes that job only once the
/// spinner returns, and the guard's owner may be waiting for exactly that job. Then neither side
/// is given work, and the spinner returns after this long.
pub const IDLE_LIMIT: Duration = Duration::from_millis(1);

/// How many workers are spinning for some guard right now (read by the tests, to see that the
/// workers stop once their guards drop).
static SPINNING: AtomicUsize = AtomicUsize::new(0);

/// While alive, keeps the pool's other workers looking for work instead of sleeping; see the
/// [module docs](self).
///
/// ```
/// # use autograd::KeepWarm;
/// rayon::scope(|_| {
///     let warm = KeepWarm::new(); // the other workers spin from here...
///     let total: u64 = rayon::join(|| 1, || 2).0 + 3;
///     drop(warm); // ...to here
///     assert_eq!(total, 4);
/// });
/// ```
#[must_use = "the workers spin only while the guard is alive"]
pub struct KeepWarm {
    /// Cleared when the guard drops; each spinning worker returns when it sees that. `None`
    /// when the guard was made outside the pool, or the pool has a single thread.
    alive: Option<Arc<AtomicBool>>,
}

/// What a spinning worker watches: a guard's flag and idle limit.
#[derive(Clone)]
struct Watch {
    alive: Arc<AtomicBool>,
    idle_limit: Duration,
}

thread_local! {
    /// The guard this thread's spinner watches, when one runs on it: the newest handed to it.
    static WATCHED: RefCell<Option<Watch>> = const { RefCell::new(None) };
    /// How many spinner loops run on this thread, one inside another (read by the tests: it
    /// stays at most 1).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// The deepest [`DEPTH`] any thread has reached (read by the tests).
static MAX_DEPTH: AtomicUsize = AtomicUsize::new(0);

/// The job a guard gives each other worker: run the pool's work as it comes, spinning in
/// between, until the watched guard drops or no work came for its idle limit.
///
/// A spinner runs jobs, and one of them can be another guard's spinner (a tape made while the
/// previous one's spinner still runs, as [`Tape::reset`](crate::Tape::reset) does every step).
/// Run inside the first, it would keep the first from returning until it returned itself, and
/// a loop that renews its guard every step would pile them up one per step. So a spinner that
/// starts where one already runs hands its guard to that one, which watches it from then on,
/// and returns at once.
fn spin(watch: Watch) {
    let nested = WATCHED.with(|w| w.borrow_mut().replace(watch).is_some());
    if nested {
        return;
    }
    SPINNING.fetch_add(1, Ordering::Relaxed);
    let depth = DEPTH.with(|d| {
        d.set(d.get() + 1);
        d.get()
    });
    MAX_DEPTH.fetch_max(depth, Ordering::Relaxed);
    let mut idle_since: Option<Instant> = None;
    // No borrow is held across `yield_now`, which may run a spinner that replaces the watch.
    while let Some((alive, idle_limit)) =
        WATCHED.with(|w| w.borrow().as_ref().map(|w| (w.alive.load(Ordering::Relaxed), w.idle_limit)))
    {
        if !alive {
            break;
        }
        if let Some(rayon::Yield::Executed) = rayon::yield_now() {
            // It ran a job (an op's other half, most often).
            idle_since = None;
            continue;
        }
        let idle = *idle_since.get_or_insert_with(Instant::now);
        if idle.elapsed() > idle_limit {
            break;
        }
        // A few pauses (each ~100 cycles on recent Intel cores) between looks; more (32) picked
        // up work later and measured slower on char-gpt.
        for _ in 0..4 {
            std::hint::spin_loop();
        }
    }
    WATCHED.with(|w| w.borrow_mut().take());
    DEPTH.with(|d| d.set(d.get() - 1));
    SPINNING.fetch_sub(1, Ordering::Relaxed);
}

impl KeepWarm {
    /// Starts keeping the other workers of the current rayon pool awake, when called on one of
    /// its threads; otherwise returns a guard that does nothing. A worker given no work for
    /// [`IDLE_LIMIT`] stops spinning even while the guard lives.
    pub fn new() -> Self {
        KeepWarm::with_idle_limit(IDLE_LIMIT)
    }

    /// [`KeepWarm::new`] with another idle limit: how long a worker spins without being given
    /// work before it returns to rayon.
    pub fn with_idle_limit(idle_limit: Duration) -> Self {
        let Some(owner) = rayon::current_thread_index() else { return KeepWarm { alive: None } };
        if rayon::current_num_threads() < 2 {
            return KeepWarm { alive: None };
        }
        if crate::threads::joined() {
            // The main thread, joined to the pool, runs no work-stealing loop: the spinner jobs
            // earlier guards broadcast to it (each returning at once there) wait in its queue
            // until it next waits inside rayon, which a loop of small serial steps never does.
            // Run them now, so that they cannot pile up one per tape.
            while let Some(rayon::Yield::Executed) = rayon::yield_local() {}
        }
        let alive = Arc::new(AtomicBool::new(true));
        let watch = Watch { alive: Arc::clone(&alive), idle_limit };
        rayon::spawn_broadcast(move |ctx| {
            if ctx.index() != owner {
                spin(watch.clone()); // the thread that made the guard has its own work to do
            }
        });
        KeepWarm { alive: Some(alive) }
    }

    /// Whether this guard keeps any worker awake (it was made on a pool thread of a pool with
    /// more than one thread).
    pub fn is_active(&self) -> bool {
        self.alive.is_some()
    }

    /// A guard that keeps nobody awake, for a tape made inside another tape's step (the
    /// recomputation of a checkpointed segment): the outer tape's guard already does the job,
    /// and a second one would take over its spinners and stop them when it drops.
    pub(crate) fn inert() -> Self {
        KeepWarm { alive: None }
    }
}

impl Default for KeepWarm {
    fn default() -> Self {
        KeepWarm::new()
    }
}

impl Drop for KeepWarm {
    fn drop(&mut self) {
        if let Some(alive) = &self.alive {
            alive.store(false, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use rayon::prelude::*;

    use super::*;
    use crate::{Tape, Tensor};

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("a thread pool")
    }

    /// Whether `done` comes true within 20 s (generous: the host may be busy).
    fn soon(done: impl Fn() -> bool) -> bool {
        let start = Instant::now();
        while !done() {
            if start.elapsed() > Duration::from_secs(20) {
                return false;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        true
    }

    fn spinner_starts() -> bool {
        soon(|| SPINNING.load(Ordering::Relaxed) != 0)
    }

    fn spinners_stop() -> bool {
        soon(|| SPINNING.load(Ordering::Relaxed) == 0)
    }

    #[test]
    fn only_a_pool_thread_of_a_multi_thread_pool_gets_an_active_guard() {
        assert!(!KeepWarm::new().is_active(), "made outside any pool");
        assert!(!pool(1).install(KeepWarm::new).is_active(), "a one-thread pool has no other worker");
        let two = pool(2);
        two.install(|| {
            let warm = KeepWarm::new();
            assert!(warm.is_active());
        });
    }

    #[test]
    fn the_other_worker_spins_while_the_guard_lives_and_stops_when_it_drops() {
        let two = pool(2);
        two.install(|| {
            // Idle for an hour before giving up on its own: only the dropped guard stops it.
            let warm = KeepWarm::with_idle_limit(Duration::from_secs(3600));
            assert!(spinner_starts(), "no worker started spinning");
            // The spinning worker still takes work: a parallel sum is right.
            let total: u64 = (0..100_000u64).into_par_iter().sum();
            assert_eq!(total, 100_000 * 99_999 / 2);
            drop(warm);
        });
        assert!(spinners_stop(), "a worker kept spinning after its guard dropped");
    }

    /// Tapes made inside parallel jobs, so that both workers make guards at once and each
    /// worker's spinner runs the other's jobs: everything finishes, with the right gradients.
    #[test]
    fn tapes_on_both_workers_at_once_finish_with_right_gradients() {
        let two = pool(2);
        let grads: Vec<f64> = two.install(|| {
            (0..64)
                .into_par_iter()
                .map(|i| {
                    let tape = Tape::<f64>::new();
                    let x = tape.var(Tensor::full(&[300, 300], i as f64 / 64.0));
                    // 90,000 elements: above the threshold at which elementwise ops split.
                    let loss = (x * x).sum();
                    loss.backward()[x].data()[0]
                })
                .collect()
        });
        for (i, g) in grads.iter().enumerate() {
            assert_eq!(*g, 2.0 * i as f64 / 64.0, "tape {i}");
        }
        assert!(spinners_stop(), "a worker kept spinning after every tape dropped");
    }

    /// The pattern of a loop that reuses one tape: each step's guard is made while the previous
    /// one's spinner still runs, and only then is the previous guard dropped. The new spinner is
    /// handed to the running one instead of running inside it, so they never pile up.
    #[test]
    fn renewed_guards_are_handed_over_not_nested() {
        let two = pool(2);
        two.install(|| {
            let mut warm = KeepWarm::with_idle_limit(Duration::from_secs(3600));
            for step in 0..2_000u64 {
                let (a, b) = rayon::join(|| step * 2, || step * 3);
                assert_eq!(a + b, step * 5);
                warm = KeepWarm::with_idle_limit(Duration::from_secs(3600));
            }
            drop(warm);
        });
        assert!(spinners_stop(), "a worker kept spinning after the last guard dropped");
        assert_eq!(MAX_DEPTH.load(Ordering::Relaxed), 1, "spinners ran one inside another");
    }

    #[test]
    fn a_worker_given_no_work_stops_spinning_while_the_guard_lives() {
        let two = pool(2);
        two.install(|| {
            let warm = KeepWarm::with_idle_limit(Duration::from_millis(50));
            assert!(spinner_starts(), "no worker started spinning");
            assert!(spinners_stop(), "an idle worker kept spinning");
            drop(warm);
        });
    }
}

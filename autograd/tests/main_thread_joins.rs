//! A program's main thread joins rayon's global pool at its first tape, and its parallel ops then
//! run inside the pool (see `autograd::threads`). This needs a process of its own whose `main`
//! makes the first tape, so it runs without libtest's harness (which runs tests on other threads).

use autograd::{KeepWarm, Tape, Tensor};

fn main() {
    assert_eq!(rayon::current_thread_index(), None, "main starts outside the pool");
    let tape = Tape::<f32>::new();
    assert_eq!(rayon::current_thread_index(), Some(0), "the first tape made main worker 0");
    assert_eq!(rayon::current_num_threads(), std::thread::available_parallelism().unwrap().get());
    // A parallel op from main now runs in the pool, both halves of a join included.
    let n = 1 << 20;
    let x = tape.var(Tensor::<f32>::full(&[n], 1.0));
    let y = (x * 2.0).sum(); // 2²¹: exact in f32
    assert_eq!(y.item(), 2.0 * n as f32);
    let (a, b) = rayon::join(rayon::current_thread_index, || 7);
    assert_eq!((a, b), (Some(0), 7));
    // The guard is active on main (it is a pool thread of a pool with several threads).
    if rayon::current_num_threads() > 1 {
        assert!(KeepWarm::new().is_active());
    }
    // Many tapes on main, each broadcasting spinner jobs, leave none of them queued on main.
    for _ in 0..10_000 {
        let t = Tape::<f64>::new();
        let v = t.var(1.0);
        assert_eq!((v * v).backward()[v].item(), 2.0);
    }
    let mut queued = 0;
    while let Some(rayon::Yield::Executed) = rayon::yield_local() {
        queued += 1;
    }
    assert!(queued <= 1, "{queued} jobs were queued on main; at most the last tape's spinner may be");
    println!("main_thread_joins: 1 passed, 0 failed");
}

//! The buffer pool (see `autograd::recycle`): what it keeps, hands out again, evicts and frees.
//! A process of its own with a single test, as the pool is process-wide.

use autograd::recycle;
use autograd::Tensor;

#[test]
fn the_pool_keeps_reuses_evicts_and_obeys_its_limit() {
    assert_eq!(recycle::limit(), recycle::DEFAULT_LIMIT);
    let n = 1 << 20; // 4 MiB of f32
    recycle::clear();

    // A dropped tensor's buffer is handed out again for the same size.
    let t = Tensor::<f32>::zeros(&[n]);
    let ptr = t.data().as_ptr();
    drop(t);
    assert_eq!(recycle::kept(), 4 << 20);
    let again: Vec<f32> = recycle::take(n);
    assert_eq!((again.as_ptr(), again.len(), again.capacity()), (ptr, 0, n));
    assert_eq!(recycle::kept(), 0);
    recycle::give(again);

    // A miss for a new size evicts kept buffers of other sizes for as many bytes, the least
    // recently taken first.
    recycle::give(Vec::<f32>::with_capacity(n / 2)); // 2 MiB, never taken: evicted first
    assert_eq!(recycle::kept(), 6 << 20);
    let fresh: Vec<f32> = recycle::take(n / 4); // 1 MiB, a miss
    assert_eq!(recycle::kept(), 4 << 20, "the 2 MiB buffer made room");
    drop(fresh);
    let old: Vec<f32> = recycle::take(n);
    assert_eq!(old.as_ptr(), ptr, "the recently taken 4 MiB buffer stayed");
    drop(old);

    // The limit bounds what is kept; 0 turns recycling off.
    recycle::clear();
    recycle::set_limit(6 << 20);
    drop(Tensor::<f32>::zeros(&[n]));
    assert_eq!(recycle::kept(), 4 << 20, "one buffer fits");
    let (a, b) = (Tensor::<f32>::zeros(&[n]), Tensor::<f32>::zeros(&[n]));
    assert_eq!(recycle::kept(), 0, "the kept buffer was handed out again");
    drop((a, b));
    assert_eq!(recycle::kept(), 4 << 20, "the second buffer would pass the limit: freed");
    recycle::set_limit(0);
    assert_eq!(recycle::kept(), 0, "a lowered limit frees what is kept");
    drop(Tensor::<f64>::zeros(&[n]));
    assert_eq!(recycle::kept(), 0);
    recycle::set_limit(recycle::DEFAULT_LIMIT);
    drop(Tensor::<f64>::zeros(&[n]));
    assert_eq!(recycle::kept(), 8 << 20);
    recycle::clear();
    assert_eq!(recycle::kept(), 0);
}

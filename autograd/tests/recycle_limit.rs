//! The buffer pool's limit (see `autograd::recycle`): its own process, as the limit is global.

use autograd::recycle;
use autograd::Tensor;

#[test]
fn the_limit_bounds_what_is_kept_and_zero_turns_recycling_off() {
    assert_eq!(recycle::limit(), recycle::DEFAULT_LIMIT);
    let n = 1 << 20; // 4 MiB of f32
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

//! The machine's peak `f32` multiply-add rate, the ceiling for reading the gemm figures: each
//! thread runs [`CHAINS`] independent chains of AVX-512 fused multiply-adds held in registers,
//! with no memory traffic at all, so no matrix product can go faster on the same threads.
//! `pente bench --workload gemm` prints it beside the products.

/// Independent chains per thread: enough to keep two FMA units busy through their latency.
pub const CHAINS: usize = 24;

/// GFLOP/s of `threads` threads, each running `steps` multiply-adds on every one of its
/// [`CHAINS`] chains of 16 lanes (2 FLOP per lane per multiply-add), best of `trials`; `None` on a
/// CPU without AVX-512F (or not x86-64).
pub fn fma_peak(threads: usize, steps: u64, trials: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let flop = steps as f64 * (CHAINS * 16 * 2 * threads.max(1)) as f64;
        let mut best = 0.0f64;
        for _ in 0..trials.max(1) {
            let start = std::time::Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads.max(1) {
                    // SAFETY: `chains` requires AVX-512F and nothing else, and the CPU has it
                    // (detected just above).
                    s.spawn(|| std::hint::black_box(unsafe { avx512::chains(std::hint::black_box(steps)) }));
                }
            });
            best = best.max(flop / start.elapsed().as_secs_f64() / 1e9);
        }
        return Some(best);
    }
    let _ = (threads, steps, trials);
    None
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{__m512, _mm512_add_ps, _mm512_fmadd_ps, _mm512_reduce_add_ps, _mm512_set1_ps};

    use super::CHAINS;

    /// `steps` rounds of `x ← x·a + b` on each of [`CHAINS`] vectors, and the sum of the results
    /// (so that the work is not optimized away). With `a` just below 1 and `b` tiny, the values
    /// stay finite and normal (no slow subnormal arithmetic) for any number of steps.
    #[target_feature(enable = "avx512f")]
    pub(super) fn chains(steps: u64) -> f32 {
        let (a, b) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
        let mut acc: [__m512; CHAINS] = [_mm512_set1_ps(1.0); CHAINS];
        for _ in 0..steps {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        _mm512_reduce_add_ps(acc.into_iter().fold(_mm512_set1_ps(0.0), |s, x| _mm512_add_ps(s, x)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_is_measured_where_avx512_exists() {
        let peak = fma_peak(2, 20_000, 2);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(peak.is_some(), std::arch::is_x86_feature_detected!("avx512f"));
        if let Some(gflops) = peak {
            assert!(gflops.is_finite() && gflops > 0.0, "{gflops}");
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_chains_compute_what_they_say() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return; // nothing to run on this CPU
        }
        // SAFETY: the CPU has AVX-512F (checked above), all `chains` requires.
        let got = unsafe { avx512::chains(3) };
        let mut x = 1.0f32;
        for _ in 0..3 {
            x = x.mul_add(0.999_999, 1e-7);
        }
        // 384 equal lanes summed: exact up to the rounding of the additions.
        let want = x * (CHAINS * 16) as f32;
        assert!((got - want).abs() <= want * 1e-6, "{got} against {want}");
    }
}

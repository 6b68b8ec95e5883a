//! Run-time CPU dispatch: the kernels' loops are compiled for several instruction sets and the
//! best one the CPU has is chosen when the program runs, so that a crate built with plain
//! `cargo build --release` (baseline x86-64: SSE2, 4 `f32` lanes, no fused multiply-add) runs
//! them with AVX2 and FMA, or AVX-512, where the CPU has them, and still runs everywhere.
//!
//! [`kernel!`] defines a function whose body is compiled once per level, with the best one chosen
//! at each call; the element-wise maps and zips, the reductions, softmax, log-softmax and
//! cross-entropy, layer norm, the attention rows, the tile products, max pooling and the
//! optimizers' updates are such kernels. A kernel runs inside one parallel task (the dispatch
//! does not cross threads). [`vectorized`] runs a closure inside a function compiled for the
//! level (through [`pulp`], which the `gemm` crate already uses for the same job), which helps
//! only where the optimizer inlines the closure there: `objdump` showed it often does not for
//! large closures, which is why the kernels are [`kernel!`] functions. Code outside both is
//! compiled for the build's target, as any Rust code.
//!
//! | CPU | [`Level`] | what the loops are compiled for |
//! | --- | --- | --- |
//! | x86-64 with AVX-512 F, BW, CD, DQ, VL (Intel server cores since 2017, AMD Zen 4) | [`Level::Avx512`] | x86-64-v4: 512-bit vectors; the `f32` tile products of attention use a hand-written 512-bit block |
//! | x86-64 with AVX2 and FMA (Intel since 2013, AMD since 2015) | [`Level::Avx2`] | x86-64-v3: 256-bit vectors, fused multiply-add |
//! | older x86-64 | [`Level::Baseline`] | the build's target |
//! | aarch64 | [`Level::Baseline`] | the build's target, which includes NEON and FMA |
//!
//! **The same bits at every level.** Rust never fuses a multiply and an add by itself, and every
//! multiply-add written as one ([`Float::mul_add`](crate::Float::mul_add)) is fused at every
//! level (with the instruction where the CPU has it, by the C library's `fma` otherwise, slowly
//! but exactly), so a result does not depend on the level that computed it: the tests compare
//! every level bit for bit. Sums split across lanes are split the same way at every level.
//!
//! For testing and measuring, [`set_max_level`] caps the level (the environment variable
//! `PENTE_SIMD=baseline|avx2|avx512` sets the cap at start-up).

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction-set level a kernel loop can run at, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// What the build targets (for a default build: SSE2 on x86-64, NEON on aarch64).
    Baseline = 1,
    /// x86-64-v3: AVX2, FMA, BMI1/2, LZCNT.
    Avx2 = 2,
    /// x86-64-v4: AVX-512 F, BW, CD, DQ and VL on top of `Avx2`.
    Avx512 = 3,
}

impl Level {
    fn from_u8(v: u8) -> Level {
        match v {
            3 => Level::Avx512,
            2 => Level::Avx2,
            _ => Level::Baseline,
        }
    }

    /// The level's name as `PENTE_SIMD` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }

    /// Parses a name as [`Level::name`] prints it.
    pub fn parse(name: &str) -> Option<Level> {
        [Level::Baseline, Level::Avx2, Level::Avx512].into_iter().find(|l| l.name() == name)
    }
}

/// The level in use: the CPU's best, capped by [`set_max_level`]; 0 until first asked.
static LEVEL: AtomicU8 = AtomicU8::new(0);

/// The cap of [`set_max_level`]; 0 until first asked.
static CAP: AtomicU8 = AtomicU8::new(0);

/// The best level this CPU supports.
pub fn detected() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if pulp::x86::V3::try_new().is_some() {
            if has!("avx512f") && has!("avx512bw") && has!("avx512cd") && has!("avx512dq") && has!("avx512vl") {
                return Level::Avx512;
            }
            return Level::Avx2;
        }
    }
    Level::Baseline
}

/// The level kernels run at: [`detected`], capped by [`set_max_level`] or `PENTE_SIMD`.
#[inline]
pub fn level() -> Level {
    match LEVEL.load(Ordering::Relaxed) {
        0 => init(),
        v => Level::from_u8(v),
    }
}

#[cold]
fn init() -> Level {
    let cap = match CAP.load(Ordering::Relaxed) {
        0 => {
            let from_env = std::env::var("PENTE_SIMD").ok().and_then(|v| Level::parse(&v)).unwrap_or(Level::Avx512);
            // A cap set by another thread in the meantime wins over the environment.
            match CAP.compare_exchange(0, from_env as u8, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => from_env,
                Err(set) => Level::from_u8(set),
            }
        }
        v => Level::from_u8(v),
    };
    let level = detected().min(cap);
    LEVEL.store(level as u8, Ordering::Relaxed);
    level
}

/// Caps the level kernels run at from now on, for every thread (a cap above [`detected`] has
/// no effect). For tests that compare levels and for measurements; results are the same bits
/// at every level.
pub fn set_max_level(cap: Level) {
    CAP.store(cap as u8, Ordering::Relaxed);
    LEVEL.store(detected().min(cap) as u8, Ordering::Relaxed);
}

/// Runs `f` inside a function compiled for the level in use (see the [module docs](self)): the
/// loops in `f` are vectorized for it when `f` is inlined there, which the optimizer decides
/// (small closures are; large ones may not be, and then run as code for the build's target,
/// correct but slower). For a loop that matters, write a [`kernel!`] function instead.
///
/// ```
/// let a = vec![1.5f32; 1000];
/// let mut b = vec![2.0f32; 1000];
/// autograd::simd::vectorized(|| b.iter_mut().zip(&a).for_each(|(b, a)| *b = a.mul_add(*b, 1.0)));
/// assert!(b.iter().all(|&b| b == 4.0));
/// ```
#[inline(always)]
pub fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match level() {
        Level::Avx512 => {
            // SAFETY: `level()` is `Avx512` only when `detected()` found every feature of
            // x86-64-v4 on this CPU (`V3::try_new` checks those of v3, then each AVX-512 one),
            // which is the contract of `V4::new_unchecked`: the token may exist only where its
            // features are present.
            let v4 = unsafe { pulp::x86::V4::new_unchecked() };
            return v4.vectorize(f);
        }
        Level::Avx2 => {
            // SAFETY: `level()` is `Avx2` only when `detected()` found every feature of x86-64-v3
            // on this CPU (`V3::try_new` checks each), which is `V3::new_unchecked`'s contract.
            let v3 = unsafe { pulp::x86::V3::new_unchecked() };
            return v3.vectorize(f);
        }
        Level::Baseline => {}
    }
    f()
}

/// Defines a function compiled three times, for x86-64-v4 (AVX-512), x86-64-v3 (AVX2, FMA, BMI)
/// and the build's target, that runs the best one [`level`] allows: run-time dispatch without a closure
/// boundary, so that the loops of the body are compiled for the level whatever the optimizer
/// decides about inlining (a closure given to [`vectorized`] is compiled for the level only when
/// it is inlined there).
///
/// The generics go in square brackets and the where clause (possibly empty) in square brackets
/// after `where`; the body cannot name `Self`.
///
/// ```
/// autograd::simd::kernel! {
///     /// `out[i] = a[i]·b[i] + out[i]`, fused.
///     fn fma_into[T: autograd::Float](out: &mut [T], a: &[T], b: &[T]) where [] {
///         for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
///             *o = a.mul_add(b, *o);
///         }
///     }
/// }
/// let mut out = vec![1.0f32; 100];
/// fma_into(&mut out, &vec![2.0; 100], &vec![3.0; 100]);
/// assert!(out.iter().all(|&o| o == 7.0));
/// ```
#[macro_export]
macro_rules! kernel {
    (
        $(#[$attr:meta])*
        $vis:vis fn $name:ident [$($generics:tt)*] ($($arg:ident : $ty:ty),* $(,)?) $(-> $ret:ty)?
        where [$($where:tt)*] $body:block
    ) => {
        $(#[$attr])*
        #[inline]
        $vis fn $name<$($generics)*>($($arg: $ty),*) $(-> $ret)? where $($where)* {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx,avx2,bmi1,bmi2,fma,lzcnt,popcnt,avx512f,avx512bw,avx512cd,avx512dq,avx512vl")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v4<$($generics)*>($($arg: $ty),*) $(-> $ret)? where $($where)* $body
                #[target_feature(enable = "avx,avx2,bmi1,bmi2,fma,lzcnt,popcnt")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn v3<$($generics)*>($($arg: $ty),*) $(-> $ret)? where $($where)* $body
                match $crate::simd::level() {
                    // SAFETY: `level()` is `Avx512` only when `simd::detected` found every feature
                    // of x86-64-v4 on this CPU, which includes every feature `v4` is compiled for.
                    $crate::simd::Level::Avx512 => return unsafe { v4($($arg),*) },
                    // SAFETY: `level()` is `Avx2` only when `simd::detected` found every feature
                    // of x86-64-v3 on this CPU, which includes every feature `v3` is compiled for.
                    $crate::simd::Level::Avx2 => return unsafe { v3($($arg),*) },
                    $crate::simd::Level::Baseline => {}
                }
            }
            $body
        }
    };
}

pub use kernel;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for level in [Level::Baseline, Level::Avx2, Level::Avx512] {
            assert_eq!(Level::parse(level.name()), Some(level));
        }
        assert_eq!(Level::parse("sse9"), None);
    }

    #[test]
    fn the_level_never_exceeds_the_cpu() {
        assert!(level() <= detected());
    }

    #[test]
    fn a_vectorized_multiply_add_is_fused() {
        // 0.1·10 − 1 is 0 when rounded once after the product and 2⁻²⁷·… when fused.
        let x = [0.1f32; 64];
        let mut out = [0.0f32; 64];
        vectorized(|| out.iter_mut().zip(&x).for_each(|(o, &x)| *o = crate::Float::mul_add(x, 10.0, -1.0)));
        let fused = 0.1f32.mul_add(10.0, -1.0);
        assert_ne!(fused, 0.1f32 * 10.0 - 1.0, "the check needs a case where fusing changes the result");
        assert!(out.iter().all(|&o| o.to_bits() == fused.to_bits()));
    }
}

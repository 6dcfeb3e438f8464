//! Run-time choice of instruction set, written once for the whole workspace.
//!
//! rensa's CPU kernels are plain loops over slices, marked `#[inline(always)]`. LLVM vectorises
//! such loops as wide as the target features of the function they end up in allow; a portable
//! build only has SSE2 (4 `f32` lanes). [`with_best_isa`] compiles the caller's closure into one
//! function per [`Level`], each with that level's `#[target_feature]`s enabled, and runs the
//! widest one the CPU has (up to a cap the caller picks):
//!
//! ```
//! use rensa_isa::{Level, with_best_isa};
//!
//! #[inline(always)]
//! fn scale(xs: &mut [f32], k: f32) {
//!     for x in xs {
//!         *x = *x * k + 1.0;
//!     }
//! }
//!
//! let mut xs = vec![1.0f32; 1000];
//! // `#[inline(always)]` on the closure: it is compiled into each level's wrapper.
//! with_best_isa(Level::Avx2Fma, #[inline(always)] || scale(&mut xs, 2.0));
//! assert!(xs.iter().all(|&x| x == 3.0));
//! ```
//!
//! # Same results on every machine
//! Every level performs the same IEEE operations in the same order: Rust never contracts
//! `a * b + c` into a fused multiply-add (FMA rounds once, the two operations twice), and
//! LLVM does not reassociate floating-point arithmetic without fast-math flags, which Rust does
//! not set; enabling FMA changes nothing but explicit `mul_add` calls. So the result of a
//! kernel does not depend on the level it ran at, bit for bit; the tests check this on a float
//! loop for every level the CPU can run. (An explicit `f32::mul_add` is exact at every level
//! too: an FMA instruction where the level has one, a slower library call at the baseline.)
//!
//! # Safety
//! Calling a `#[target_feature]` function on a CPU without those features is undefined
//! behaviour. This crate's wrappers are private and called only from [`with_best_isa`] and
//! [`with_level`], after [`Level::detected`] has checked that the CPU has every feature the
//! wrapper is compiled for; the closure they run is ordinary safe code. The detection is done
//! once and cached (an atomic; a race only repeats the same detection).
//!
//! Hand-written intrinsic kernels (`std::arch`) that need one feature check it with [`has`]
//! before their own `unsafe` call; their safety argument stays beside them.
//!
//! # Subnormals
//! [`subnormal`] turns a thread's flushing of subnormal floats to zero on and off (the x86
//! DAZ/FTZ bits, AArch64's FZ), which TensorFlow sets in its threads: operations on subnormals
//! are tens of times slower on x86.
#![allow(unsafe_code)]

pub mod relaxed;
pub mod subnormal;

/// Asks the CPU to bring the memory of `items` into its caches ahead of use: one hint per
/// 64-byte line. A hint reads nothing, changes nothing and may be ignored; on other
/// architectures than x86-64 this does nothing.
#[inline]
pub fn prefetch<T>(items: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = std::mem::size_of_val(items);
        if bytes == 0 {
            return;
        }
        let start = items.as_ptr().cast::<i8>();
        // from the start of the first line touched, so that a slice not aligned to 64 bytes
        // gets its last line too
        let skew = start as usize % 64;
        for offset in (0..skew + bytes).step_by(64) {
            // SAFETY: a prefetch never faults and has no effect on memory, whatever the address;
            // `wrapping_add`/`wrapping_sub` keep even the pointer arithmetic defined.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_sub(skew).wrapping_add(offset)) }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}

use std::sync::atomic::{AtomicU32, Ordering};

/// An instruction-set level a kernel can be compiled for, from the narrowest to the widest
/// (`Baseline < Avx2Fma < Avx512`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// The compilation target's own features (SSE2 on x86-64); every CPU runs it.
    Baseline,
    /// AVX2 and FMA (x86-64, Haswell and Zen onwards): 8 `f32` lanes.
    Avx2Fma,
    /// AVX-512 F, VL, DQ and BW, with AVX2 and FMA (x86-64, Skylake-X and Zen 4 onwards):
    /// 16 `f32` lanes.
    Avx512,
}

impl Level {
    /// Every level, narrowest first.
    pub const ALL: [Level; 3] = [Level::Baseline, Level::Avx2Fma, Level::Avx512];

    /// The widest level this CPU has (detected on the first call, then cached).
    pub fn detected() -> Level {
        let f = features();
        if f & AVX512 != 0 {
            Level::Avx512
        } else if f & AVX2_FMA != 0 {
            Level::Avx2Fma
        } else {
            Level::Baseline
        }
    }

    /// Whether this CPU can run code compiled for this level.
    pub fn is_available(self) -> bool {
        self <= Level::detected()
    }

    /// The `target_feature`s the level enables beyond the baseline.
    pub fn target_features(self) -> &'static str {
        match self {
            Level::Baseline => "",
            Level::Avx2Fma => "avx2,fma",
            Level::Avx512 => "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Level::Baseline => "baseline",
            Level::Avx2Fma => "AVX2+FMA",
            Level::Avx512 => "AVX-512",
        })
    }
}

/// A single CPU feature, for hand-written intrinsic kernels that need one (see [`has`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// SSSE3 (byte shuffles).
    Ssse3,
    /// AVX2 (256-bit integer operations, gathers).
    Avx2,
    /// FMA (fused multiply-add).
    Fma,
    /// AVX-512 F, VL, DQ and BW together (what [`Level::Avx512`] is compiled for, with AVX2 and
    /// FMA).
    Avx512,
}

/// Whether this CPU has `feature` (detected on the first call, then cached: one atomic load).
#[inline]
pub fn has(feature: Feature) -> bool {
    let bit = match feature {
        Feature::Ssse3 => SSSE3,
        Feature::Avx2 => AVX2,
        Feature::Fma => FMA,
        Feature::Avx512 => AVX512,
    };
    features() & bit != 0
}

/// Whether this CPU has AVX (for [`relaxed`]'s choice of move encoding).
#[inline(always)]
pub(crate) fn has_avx() -> bool {
    features() & AVX != 0
}

const DETECTED: u32 = 1 << 31;
const SSSE3: u32 = 1 << 0;
const AVX2: u32 = 1 << 1;
const FMA: u32 = 1 << 2;
/// AVX2 and FMA both.
const AVX2_FMA: u32 = 1 << 3;
/// AVX (the VEX encoding of SSE moves; implied by every level above the baseline).
const AVX: u32 = 1 << 5;
/// The AVX-512 subsets of [`Level::Avx512`], AVX2 and FMA all present.
const AVX512: u32 = 1 << 4;

static FEATURES: AtomicU32 = AtomicU32::new(0);

/// The feature bits, detected once.
#[inline]
fn features() -> u32 {
    let f = FEATURES.load(Ordering::Relaxed);
    if f & DETECTED != 0 { f } else { detect() }
}

#[cold]
fn detect() -> u32 {
    let mut f = DETECTED;
    #[cfg(target_arch = "x86_64")]
    {
        use std::is_x86_feature_detected as has;
        let flag = |on: bool, bit: u32| if on { bit } else { 0 };
        let (avx2, fma) = (has!("avx2"), has!("fma"));
        f |= flag(has!("ssse3"), SSSE3) | flag(avx2, AVX2) | flag(fma, FMA);
        f |= flag(has!("avx"), AVX);
        f |= flag(avx2 && fma, AVX2_FMA);
        // The AVX-512 wrapper is compiled with AVX2 and FMA too, so it needs them as well.
        let avx512 = has!("avx512f") && has!("avx512vl") && has!("avx512dq") && has!("avx512bw");
        f |= flag(avx512 && avx2 && fma, AVX512);
    }
    FEATURES.store(f, Ordering::Relaxed);
    f
}

/// Runs `f` compiled for the widest level the CPU has, but no wider than `max`.
///
/// `f` and the kernels it calls should be `#[inline(always)]` (mark the closure too:
/// `with_best_isa(max, #[inline(always)] || kernel(..))`), so that they are compiled into
/// each level's wrapper; code that is not inlined runs at the baseline whatever the level.
/// Results are bit-identical at every level (see the [crate documentation](crate)).
#[inline(always)]
pub fn with_best_isa<R>(max: Level, f: impl FnOnce() -> R) -> R {
    let level = Level::detected().min(max);
    // SAFETY: `level` is at most the detected level, so the CPU has its features.
    unsafe { run_at(level, f) }
}

/// Runs `f` compiled for exactly `level`, or returns `None` when this CPU lacks it (for tests
/// and benchmarks that compare levels).
#[inline(always)]
pub fn with_level<R>(level: Level, f: impl FnOnce() -> R) -> Option<R> {
    if !level.is_available() {
        return None;
    }
    // SAFETY: the CPU has `level`'s features (just checked).
    Some(unsafe { run_at(level, f) })
}

/// Runs `f` in the wrapper compiled for `level`.
///
/// # Safety
/// The CPU must have `level`'s features ([`Level::is_available`]).
#[inline(always)]
unsafe fn run_at<R>(level: Level, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512bw,avx2,fma")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2_fma<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        match level {
            // SAFETY: the caller guarantees the CPU has this level's features, which are the
            // ones the wrapper is compiled for.
            Level::Avx512 => return unsafe { avx512(f) },
            // SAFETY: as above.
            Level::Avx2Fma => return unsafe { avx2_fma(f) },
            Level::Baseline => {}
        }
    }
    // Other architectures detect only the baseline, so `level` is `Baseline` here.
    let _ = level;
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A float loop where a fused multiply-add, a reassociation or a different order of
    /// operations would change low bits: products and sums of values with different
    /// exponents, a division and a square root.
    #[inline(always)]
    fn kernel(a: &[f32], b: &[f32], c: &[f64], out: &mut [f32], out64: &mut [f64]) {
        for i in 0..out.len() {
            out[i] = a[i] * b[i] + a[i] / (b[i] + 3.0) - (a[i] * a[i] + 0.5).sqrt();
        }
        for i in 0..out64.len() {
            out64[i] = c[i] * c[(i + 1) % c.len()] + c[i] * 1e-3 - 0.1;
        }
    }

    fn inputs(n: usize) -> (Vec<f32>, Vec<f32>, Vec<f64>) {
        // a small LCG: reproducible values in [-2, 2) with varied low bits
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) * 4.0 - 2.0
        };
        let a = (0..n).map(|_| next() as f32).collect();
        let b = (0..n).map(|_| next() as f32 + 2.5).collect();
        let c = (0..n).map(|_| next() * 1e3).collect();
        (a, b, c)
    }

    fn run(level: Level, n: usize) -> Option<(Vec<f32>, Vec<f64>)> {
        let (a, b, c) = inputs(n);
        let (mut out, mut out64) = (vec![0f32; n], vec![0f64; n]);
        with_level(
            level,
            #[inline(always)]
            || kernel(&a, &b, &c, &mut out, &mut out64),
        )?;
        Some((out, out64))
    }

    #[test]
    fn prefetch_changes_nothing() {
        let xs: Vec<f32> = (0..1000).map(|i| i as f32).collect();
        for range in [0..0, 0..1, 3..20, 17..1000] {
            prefetch(&xs[range]);
        }
        prefetch::<()>(&[(); 7]);
        prefetch::<u8>(&[]);
        assert!(xs.iter().enumerate().all(|(i, &x)| x == i as f32));
    }

    #[test]
    fn every_available_level_gives_the_baseline_bits() {
        let n = 1037; // not a multiple of any vector width: the tails run too
        let (base, base64) = run(Level::Baseline, n).expect("the baseline always runs");
        let mut ran = 0;
        for level in Level::ALL {
            let Some((out, out64)) = run(level, n) else {
                assert!(
                    !level.is_available(),
                    "{level} is available but did not run"
                );
                continue;
            };
            ran += 1;
            for i in 0..n {
                assert_eq!(
                    out[i].to_bits(),
                    base[i].to_bits(),
                    "{level}, f32 sample {i}"
                );
                assert_eq!(
                    out64[i].to_bits(),
                    base64[i].to_bits(),
                    "{level}, f64 sample {i}"
                );
            }
        }
        assert_eq!(ran, Level::ALL.iter().filter(|l| l.is_available()).count());
    }

    #[test]
    fn fused_multiply_add_would_differ_on_these_inputs() {
        // The check above can fail: on these inputs `mul_add` (one rounding) differs from
        // `a * b + c` (two roundings) somewhere.
        let (a, b, _) = inputs(1037);
        let differs = (0..a.len()).any(|i| {
            let c = a[i] / (b[i] + 3.0);
            a[i].mul_add(b[i], c).to_bits() != (a[i] * b[i] + c).to_bits()
        });
        assert!(differs);
    }

    #[test]
    fn best_level_is_capped_and_returns_the_result() {
        for max in Level::ALL {
            assert_eq!(with_best_isa(max, || 6 * 7), 42);
        }
        let best = Level::detected();
        assert!(Level::Baseline.is_available() && best.is_available());
        assert_eq!(Level::detected(), best, "the detection is stable");
        for level in Level::ALL {
            assert_eq!(level.is_available(), level <= best);
            assert_eq!(with_level(level, || ()).is_some(), level <= best);
        }
    }

    #[test]
    fn cached_features_agree_with_std() {
        #[cfg(target_arch = "x86_64")]
        {
            use std::is_x86_feature_detected as std_has;
            assert_eq!(has(Feature::Ssse3), std_has!("ssse3"));
            assert_eq!(has(Feature::Avx2), std_has!("avx2"));
            assert_eq!(has(Feature::Fma), std_has!("fma"));
            assert_eq!(
                Level::Avx2Fma.is_available(),
                std_has!("avx2") && std_has!("fma")
            );
            assert_eq!(
                has(Feature::Avx512),
                std_has!("avx512f")
                    && std_has!("avx512vl")
                    && std_has!("avx512dq")
                    && std_has!("avx512bw")
                    && std_has!("avx2")
                    && std_has!("fma")
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(Level::detected(), Level::Baseline);
    }
}

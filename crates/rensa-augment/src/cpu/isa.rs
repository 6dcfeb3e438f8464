//! Runtime choice of instruction set for the CPU kernels.
//!
//! The kernels are written as plain loops over arrays and marked `#[inline(always)]`; the two
//! entry points below compile them a second time inside functions with AVX2 and FMA enabled,
//! where LLVM vectorises them 8 floats or 32 bytes wide (and rounds with one instruction instead
//! of a library call), and pick that build on CPUs that have both. Other CPUs run the baseline
//! build. Both builds do the same IEEE operations in the same order (no fused multiply-adds are
//! written), so results are bit-identical on every machine.
#![allow(unsafe_code)]

use crate::image::Image;
use crate::ops::Op;

macro_rules! dispatch {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? => $inner:path) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $inner($($arg),*)
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: `avx2` is the same code compiled for AVX2 and FMA, and the CPU
                    // was just checked to have both.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $inner($($arg),*)
        }
    };
}

dispatch!(
    /// [`super::execute_inline`] for the best instruction set.
    fn execute(ops: &[Op], img: &Image) -> Image => super::execute_inline
);
dispatch!(
    /// [`super::to_chw_inline`] for the best instruction set.
    fn to_chw(img: &Image, normalize: Option<([f32; 3], [f32; 3])>, out: &mut [f32]) => super::to_chw_inline
);

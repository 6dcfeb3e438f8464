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

/// Writes the pixels of the RGB row `src` into `dst` in reverse order, five pixels per 16-byte
/// shuffle, and returns how many leading pixels of `dst` it wrote (the caller finishes the
/// rest). LLVM does not reliably turn the portable loop into this shuffle.
#[inline(always)]
pub(crate) fn reverse_rgb_prefix(src: &[u8], dst: &mut [u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("ssse3") {
            // SAFETY: the CPU has SSSE3 (just checked); the function's memory accesses are
            // to bounds-checked 16-byte subslices.
            return unsafe { reverse_rgb_ssse3(src, dst) };
        }
    }
    let _ = (src, dst);
    0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
fn reverse_rgb_ssse3(src: &[u8], dst: &mut [u8]) -> usize {
    use std::arch::x86_64::{
        __m128i, _mm_loadu_si128, _mm_setr_epi8, _mm_shuffle_epi8, _mm_storeu_si128,
    };
    let n = src.len() / 3;
    // bytes 1..16 of the window are five pixels; reversed they fill bytes 0..15 of the output,
    // whose byte 15 the next window overwrites
    let perm = _mm_setr_epi8(13, 14, 15, 10, 11, 12, 7, 8, 9, 4, 5, 6, 1, 2, 3, 0);
    let mut j = 0;
    while j + 6 <= n && 3 * j + 16 <= dst.len() {
        let base = 3 * (n - j - 5) - 1;
        let window = &src[base..base + 16];
        let out = &mut dst[3 * j..3 * j + 16];
        // SAFETY: `window` and `out` are 16 bytes long; unaligned loads and stores are allowed.
        unsafe {
            let v = _mm_loadu_si128(window.as_ptr().cast::<__m128i>());
            _mm_storeu_si128(
                out.as_mut_ptr().cast::<__m128i>(),
                _mm_shuffle_epi8(v, perm),
            );
        }
        j += 5;
    }
    j
}

/// One row of a bilinear RGB warp, eight output pixels per step with AVX2 gathers, for as long
/// as every tap lies inside the image: output pixel `k` of `out` samples the 16.16 fixed-point
/// position `(sx + k step_x, sy + k step_y)`. Returns the number of pixels written; the caller
/// does the rest with the scalar kernel, whose arithmetic this repeats exactly.
#[inline(always)]
pub(crate) fn warp_row_rgb(
    data: &[u8],
    w: usize,
    h: usize,
    pos: (i64, i64),
    step: (i64, i64),
    out: &mut [u8],
) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && w < 1 << 14 && h < 1 << 14 {
            // SAFETY: the CPU has AVX2 (just checked); every gather is checked to lie inside
            // `data` and every store inside `out` before it is made (see the function).
            return unsafe { warp_row_rgb_avx2(data, w, h, pos, step, out) };
        }
    }
    let _ = (data, w, h, pos, step, out);
    0
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn warp_row_rgb_avx2(
    data: &[u8],
    w: usize,
    h: usize,
    pos: (i64, i64),
    step: (i64, i64),
    out: &mut [u8],
) -> usize {
    use std::arch::x86_64::*;
    let row = (w * 3) as i32;
    let n = out.len() / 3;
    let inside = |k: usize| {
        let (x, y) = (pos.0 + k as i64 * step.0, pos.1 + k as i64 * step.1);
        let (ix, iy) = (x >> 16, y >> 16);
        // the gathers read 4 bytes at the tap offsets +0, +3, +row, +row+3
        ix >= 0
            && iy >= 0
            && ix < w as i64 - 1
            && iy < h as i64 - 1
            && ((iy as usize * w + ix as usize) * 3 + w * 3 + 7) < data.len()
    };
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let (sx_step, sy_step) = (
        _mm256_set1_epi32(step.0 as i32),
        _mm256_set1_epi32(step.1 as i32),
    );
    let (dx, dy) = (
        _mm256_mullo_epi32(lanes, sx_step),
        _mm256_mullo_epi32(lanes, sy_step),
    );
    let mask = _mm256_set1_epi32(255);
    let (v256, half) = (_mm256_set1_epi32(256), _mm256_set1_epi32(32768));
    let three = _mm256_set1_epi32(3);
    let width = _mm256_set1_epi32(w as i32);
    let compact = _mm256_setr_epi8(
        0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13,
        14, -1, -1, -1, -1,
    );
    let base = data.as_ptr().cast::<i32>();
    let mut k = 0;
    // a block writes 28 bytes (24 and 4 that the next block or the caller overwrites)
    while k + 8 <= n && 3 * k + 28 <= out.len() && inside(k) && inside(k + 7) {
        let x0 = (pos.0 + k as i64 * step.0) as i32;
        let y0 = (pos.1 + k as i64 * step.1) as i32;
        let sx = _mm256_add_epi32(_mm256_set1_epi32(x0), dx);
        let sy = _mm256_add_epi32(_mm256_set1_epi32(y0), dy);
        let (ix, iy) = (_mm256_srai_epi32(sx, 16), _mm256_srai_epi32(sy, 16));
        let wx = _mm256_and_si256(_mm256_srai_epi32(sx, 8), mask);
        let wy = _mm256_and_si256(_mm256_srai_epi32(sy, 8), mask);
        let idx = _mm256_mullo_epi32(_mm256_add_epi32(_mm256_mullo_epi32(iy, width), ix), three);
        // SAFETY: positions k and k + 7 are inside, so are all between (the inside region is
        // convex and positions are linear in k); `inside` checked the furthest byte read.
        let (p00, p01, p10, p11) = unsafe {
            (
                _mm256_i32gather_epi32::<1>(base, idx),
                _mm256_i32gather_epi32::<1>(base, _mm256_add_epi32(idx, three)),
                _mm256_i32gather_epi32::<1>(base, _mm256_add_epi32(idx, _mm256_set1_epi32(row))),
                _mm256_i32gather_epi32::<1>(
                    base,
                    _mm256_add_epi32(idx, _mm256_set1_epi32(row + 3)),
                ),
            )
        };
        let mut px = _mm256_setzero_si256();
        macro_rules! channel {
            ($shift:literal) => {{
                let t0 = _mm256_and_si256(_mm256_srli_epi32(p00, $shift), mask);
                let t1 = _mm256_and_si256(_mm256_srli_epi32(p01, $shift), mask);
                let b0 = _mm256_and_si256(_mm256_srli_epi32(p10, $shift), mask);
                let b1 = _mm256_and_si256(_mm256_srli_epi32(p11, $shift), mask);
                let t = _mm256_add_epi32(
                    _mm256_mullo_epi32(t0, v256),
                    _mm256_mullo_epi32(_mm256_sub_epi32(t1, t0), wx),
                );
                let bt = _mm256_add_epi32(
                    _mm256_mullo_epi32(b0, v256),
                    _mm256_mullo_epi32(_mm256_sub_epi32(b1, b0), wx),
                );
                let v = _mm256_add_epi32(
                    _mm256_mullo_epi32(t, v256),
                    _mm256_mullo_epi32(_mm256_sub_epi32(bt, t), wy),
                );
                let v = _mm256_srli_epi32(_mm256_add_epi32(v, half), 16);
                px = _mm256_or_si256(px, _mm256_slli_epi32(v, $shift));
            }};
        }
        channel!(0);
        channel!(8);
        channel!(16);
        let packed = _mm256_shuffle_epi8(px, compact);
        let dst = &mut out[3 * k..3 * k + 28];
        // SAFETY: `dst` is 28 bytes long: the first store covers 0..16, the second 12..28.
        unsafe {
            _mm_storeu_si128(
                dst.as_mut_ptr().cast::<__m128i>(),
                _mm256_castsi256_si128(packed),
            );
            _mm_storeu_si128(
                dst.as_mut_ptr().add(12).cast::<__m128i>(),
                _mm256_extracti128_si256::<1>(packed),
            );
        }
        k += 8;
    }
    k
}

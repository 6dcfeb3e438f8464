//! Hand-written SSSE3 and AVX2 row kernels, for the loops LLVM does not vectorise well: the
//! reversal of RGB rows (flips) and the gathers of bilinear warps and resizes. Each checks its
//! instruction set with [`rensa_isa::has`] (cached) and returns how much of the row it did; the
//! caller's portable kernel does the rest with the same arithmetic, so results do not depend on
//! the CPU.
#![allow(unsafe_code)]

#[cfg(target_arch = "x86_64")]
use rensa_isa::{Feature, has};

/// Writes the pixels of the RGB row `src` into `dst` in reverse order, five pixels per 16-byte
/// shuffle, and returns how many leading pixels of `dst` it wrote (the caller finishes the
/// rest). LLVM does not reliably turn the portable loop into this shuffle.
#[inline(always)]
pub(crate) fn reverse_rgb_prefix(src: &[u8], dst: &mut [u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if has(Feature::Ssse3) {
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
    // windows j = 5 i for i < count: j + 6 <= n (the window starts a byte before its five
    // pixels, which must not include pixel 0) and the 16-byte store fits in `dst`
    if n < 6 || dst.len() < 16 {
        return 0;
    }
    let count = ((n - 6) / 5 + 1).min((dst.len() - 16) / 15 + 1);
    // the lowest source byte read is 3 (n - 5 (count - 1) - 5) - 1 >= 0 because
    // 5 (count - 1) + 6 <= n; the highest, 3 (n - 5) + 15 = 3 n, is the row's end; stores end
    // at 15 (count - 1) + 16 <= dst.len()
    let src_end = src[..3 * n].as_ptr_range().end;
    let out = dst.as_mut_ptr();
    for i in 0..count {
        // SAFETY: the bounds above; unaligned 16-byte loads and stores are allowed.
        unsafe {
            let window = src_end.sub(15 * i + 16);
            let v = _mm_loadu_si128(window.cast::<__m128i>());
            _mm_storeu_si128(out.add(15 * i).cast::<__m128i>(), _mm_shuffle_epi8(v, perm));
        }
    }
    5 * count
}

/// One row of a bilinear RGB warp, eight output pixels per step with AVX2 gathers, for as long
/// as every tap lies inside the image: output pixel `k` of `out` samples the 16.16 fixed-point
/// position `(sx + k step_x, sy + k step_y)`. Returns the number of pixels written; the caller
/// does the rest with the scalar kernel, whose arithmetic this repeats exactly.
#[inline(always)]
pub(crate) fn warp_row_rgb(row: RgbRow<'_>, out: &mut [u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    {
        if has(Feature::Avx2) && row.w < 1 << 14 && row.h < 1 << 14 {
            // SAFETY: the CPU has AVX2 (just checked); every gather is checked to lie inside
            // `data` and every store inside `out` before it is made (see the function).
            return unsafe { warp_row_rgb_avx2(row, out) };
        }
    }
    let _ = (row, out);
    0
}

/// The source of one warped RGB row: the image `data` (`w x h`, interleaved), the 16.16
/// position of the row's first output pixel and the step from one output pixel to the next.
#[derive(Clone, Copy)]
pub(crate) struct RgbRow<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) w: usize,
    pub(crate) h: usize,
    pub(crate) pos: (i64, i64),
    pub(crate) step: (i64, i64),
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn warp_row_rgb_avx2(row_src: RgbRow<'_>, out: &mut [u8]) -> usize {
    use std::arch::x86_64::*;
    let RgbRow {
        data,
        w,
        h,
        pos,
        step,
    } = row_src;
    let row = (w * 3) as i32;
    let n = out.len() / 3;
    let inside = |k: usize| {
        let (x, y) = (pos.0 + k as i64 * step.0, pos.1 + k as i64 * step.1);
        let (ix, iy) = (x >> 16, y >> 16);
        // The gathers read 4 bytes at the tap offsets +0, +3, +row and +row+3; the last of
        // these runs one byte past the taps, which is past the image only for the bottom-right
        // pixel. Keeping the taps' top row above h - 2 keeps every read inside, and (unlike a
        // byte-offset test) it is a convex condition, so checking a block's two ends covers it.
        ix >= 0 && iy >= 0 && ix < w as i64 - 1 && iy < h as i64 - 2 && data.len() >= 3 * w * h
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
        // SAFETY: positions k and k + 7 are inside, so are all between (the region is convex
        // and positions are linear in k); there the furthest byte read is
        // 3 ((h - 3) w + w - 2) + 3 w + 6 = 3 w h - 3 w < data.len().
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

/// The taps of the horizontal pass of a separable resize, checked once against the source row
/// length so that every row can run [`RowTaps::run`] without further checks.
pub(crate) struct RowTaps {
    off0: Vec<i32>,
    wt: Vec<f32>,
    row_len: usize,
    /// How many leading samples (a multiple of 8) one 32-bit gather serves: the offset leaves 4
    /// bytes in a row of `row_len`, and the second tap is the same sample of the next pixel
    /// (its 4th byte) or the same sample (clamped at the edge; weight 0 then).
    gatherable: usize,
}

impl RowTaps {
    /// Output sample `j` interpolates source samples `off0[j]` and `off1[j]` with weight
    /// `wt[j]`; `channels` apart is the next pixel.
    pub(crate) fn new(
        off0: &[usize],
        off1: &[usize],
        wt: &[f32],
        row_len: usize,
        channels: usize,
    ) -> Self {
        let n = wt.len().min(off0.len()).min(off1.len());
        let ok = |j: usize| {
            let (a, b) = (off0[j], off1[j]);
            a + 4 <= row_len
                && i32::try_from(a).is_ok()
                && (b == a + channels && channels == 3 || b == a)
        };
        let first_bad = (0..n).find(|&j| !ok(j)).unwrap_or(n);
        Self {
            off0: off0[..n].iter().map(|&v| v as i32).collect(),
            // v0 + w (v0 - v0) is v0 whatever w: a clamped tap can take weight 0
            wt: (0..n)
                .map(|j| if off1[j] == off0[j] { 0.0 } else { wt[j] })
                .collect(),
            row_len,
            gatherable: first_bad / 8 * 8,
        }
    }

    /// `out[j] = v0 + wt[j] (v1 - v0)` with `v0 = row[off0[j]]`, `v1 = row[off1[j]]` (the
    /// scalar kernel's arithmetic), eight samples per step with one AVX2 gather. Returns how
    /// many leading samples it wrote (none when it cannot run); the caller does the rest.
    #[inline(always)]
    pub(crate) fn run(&self, row: &[u8], out: &mut [f32]) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            let n = self.gatherable.min(out.len() / 8 * 8);
            if n > 0 && row.len() == self.row_len && has(Feature::Avx2) {
                // SAFETY: the CPU has AVX2 (just checked); the first `n` offsets leave 4 bytes
                // in a row of this length (checked in `new`); `n` samples fit in `out`.
                return unsafe { resize_row_avx2(row, &self.off0, &self.wt, &mut out[..n]) };
            }
        }
        let _ = (row, out);
        0
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn resize_row_avx2(row: &[u8], off0: &[i32], wt: &[f32], out: &mut [f32]) -> usize {
    use std::arch::x86_64::*;
    let n = out.len() / 8 * 8;
    let mask = _mm256_set1_epi32(255);
    let base = row.as_ptr().cast::<i32>();
    for j in (0..n).step_by(8) {
        // SAFETY: j + 8 <= out.len() <= `gatherable`, so the offsets exist and leave 4 bytes
        // in `row` (both checked by `RowTaps`).
        unsafe {
            let i0 = _mm256_loadu_si256(off0.as_ptr().add(j).cast::<__m256i>());
            let g = _mm256_i32gather_epi32::<1>(base, i0);
            let v0 = _mm256_cvtepi32_ps(_mm256_and_si256(g, mask));
            let v1 = _mm256_cvtepi32_ps(_mm256_srli_epi32::<24>(g));
            let w = _mm256_loadu_ps(wt.as_ptr().add(j));
            let r = _mm256_add_ps(v0, _mm256_mul_ps(w, _mm256_sub_ps(v1, v0)));
            _mm256_storeu_ps(out.as_mut_ptr().add(j), r);
        }
    }
    n
}

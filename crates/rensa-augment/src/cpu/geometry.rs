//! Resampling: one pass per folded warp. Maps that move whole pixels (flips, quarter turns,
//! crops, padding) copy; axis-aligned maps (resizes) interpolate separably with precomputed
//! taps; everything else interpolates per pixel.

use crate::image::{Image, Size};
use crate::ops::{Affine2, Border, Interp};

/// Nearest-neighbour rounding: `floor(s + NEAREST_BIAS)`. Ties (a source position exactly
/// between two pixels, common in resizes) go to the right/lower pixel on both paths even when
/// their float arithmetic differs in the last bits.
pub(crate) const NEAREST_BIAS: f64 = 0.5 + 1e-3;

/// Where index `i` of an axis of length `n` reads from, or `None` for the constant.
#[inline(always)]
pub(crate) fn resolve(i: isize, n: usize, border: Option<Border>) -> Option<usize> {
    let n_i = n as isize;
    if (0..n_i).contains(&i) {
        return Some(i as usize);
    }
    match border {
        None | Some(Border::Edge) => Some(i.clamp(0, n_i - 1) as usize),
        Some(Border::Constant(_)) => None,
        Some(Border::Reflect) => {
            if n == 1 {
                return Some(0);
            }
            let period = 2 * (n_i - 1);
            let m = i.rem_euclid(period);
            Some(if m < n_i { m } else { period - m } as usize)
        }
    }
}

fn fill_value(border: Option<Border>) -> u8 {
    match border {
        Some(Border::Constant(v)) => v,
        _ => 0,
    }
}

/// Resamples `src` so that output pixel `p` shows input position `inverse(p)`.
#[inline(always)]
pub(crate) fn warp(
    src: &Image,
    inverse: &Affine2,
    size: Size,
    interp: Option<Interp>,
    border: Option<Border>,
) -> Image {
    let c = src.channels();
    let mut out = vec![0u8; size.width * size.height * c];
    if inverse.is_integral() {
        integral(src, inverse, size, border, &mut out);
    } else {
        let interp = interp.unwrap_or(Interp::Bilinear);
        let [_, b, _, d, _, _] = inverse.0;
        let job = Resample {
            src,
            m: inverse,
            size,
            interp,
            border,
        };
        if b == 0.0 && d == 0.0 {
            separable(&job, &mut out);
        } else {
            match src.channels() {
                3 => general::<3>(&job, &mut out),
                _ => general::<1>(&job, &mut out),
            }
        }
    }
    Image::from_parts(size.width, size.height, c, out)
}

#[inline(always)]
fn integral(src: &Image, m: &Affine2, size: Size, border: Option<Border>, out: &mut [u8]) {
    let (w, h, c) = (src.width(), src.height(), src.channels());
    let [a, b, tx, d, e, ty] = m.0.map(|v| v.round() as isize);
    let data = src.data();
    let row_len = size.width * c;
    // Is every output pixel inside the source? (the map is linear: check the corners)
    let (ow, oh) = (size.width as isize - 1, size.height as isize - 1);
    let inside = [(0, 0), (ow, 0), (0, oh), (ow, oh)].iter().all(|&(x, y)| {
        let (sx, sy) = (a * x + b * y + tx, d * x + e * y + ty);
        (0..w as isize).contains(&sx) && (0..h as isize).contains(&sy)
    });
    if inside && b == 0 && d == 0 {
        for (y, dst) in out.chunks_exact_mut(row_len).enumerate() {
            let sy = (e * y as isize + ty) as usize;
            let row = &data[sy * w * c..(sy + 1) * w * c];
            if a == 1 {
                let x0 = tx as usize * c;
                dst.copy_from_slice(&row[x0..x0 + row_len]);
            } else {
                // mirrored: output x reads tx - x
                let x_last = tx as usize; // source column of output x = 0
                let span = &row[(x_last + 1 - size.width) * c..(x_last + 1) * c];
                reverse_pixels(span, dst, c);
            }
        }
        return;
    }
    let fill = fill_value(border);
    for y in 0..size.height {
        for x in 0..size.width {
            let (xi, yi) = (x as isize, y as isize);
            let sx = resolve(a * xi + b * yi + tx, w, border);
            let sy = resolve(d * xi + e * yi + ty, h, border);
            let o = (y * size.width + x) * c;
            match (sx, sy) {
                (Some(sx), Some(sy)) => {
                    let i = (sy * w + sx) * c;
                    out[o..o + c].copy_from_slice(&data[i..i + c]);
                }
                _ => out[o..o + c].fill(fill),
            }
        }
    }
}

/// `dst` = the pixels of `src` in reverse order.
#[inline(always)]
fn reverse_pixels(src: &[u8], dst: &mut [u8], c: usize) {
    if c != 3 {
        for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
            *d = *s;
        }
        return;
    }
    let j = super::isa::reverse_rgb_prefix(src, dst);
    let n = src.len() / 3;
    for (d, s) in dst[3 * j..]
        .chunks_exact_mut(3)
        .zip(src[..3 * (n - j)].chunks_exact(3).rev())
    {
        d.copy_from_slice(s);
    }
}

/// One axis's taps for each output index: first source index, second source index (either may
/// be the constant) and the weight of the second.
struct Taps {
    i0: Vec<Option<usize>>,
    i1: Vec<Option<usize>>,
    w1: Vec<f32>,
}

#[inline(always)]
fn taps(
    n_out: usize,
    n_in: usize,
    scale: f64,
    offset: f64,
    interp: Interp,
    border: Option<Border>,
) -> Taps {
    let mut t = Taps {
        i0: Vec::with_capacity(n_out),
        i1: Vec::with_capacity(n_out),
        w1: Vec::with_capacity(n_out),
    };
    for o in 0..n_out {
        let s = scale * o as f64 + offset;
        match interp {
            Interp::Nearest => {
                let i = resolve((s + NEAREST_BIAS).floor() as isize, n_in, border);
                t.i0.push(i);
                t.i1.push(i);
                t.w1.push(0.0);
            }
            Interp::Bilinear => {
                let f = s.floor();
                t.i0.push(resolve(f as isize, n_in, border));
                t.i1.push(resolve(f as isize + 1, n_in, border));
                t.w1.push((s - f) as f32);
            }
        }
    }
    t
}

/// An interpolating resample: output pixel `p` of `size` reads `src` at `m(p)`.
struct Resample<'a> {
    src: &'a Image,
    m: &'a Affine2,
    size: Size,
    interp: Interp,
    border: Option<Border>,
}

/// Scale and shift only: one horizontal and one vertical pass of precomputed taps.
#[inline(always)]
fn separable(job: &Resample<'_>, out: &mut [u8]) {
    let (src, m, size, interp, border) = (job.src, job.m, job.size, job.interp, job.border);
    let (w, h, c) = (src.width(), src.height(), src.channels());
    let [a, _, tx, _, e, ty] = m.0;
    let xs = taps(size.width, w, a, tx, interp, border);
    let ys = taps(size.height, h, e, ty, interp, border);
    let fill = fill_value(border) as f32;
    let data = src.data();
    let inside = xs.i0.iter().chain(&xs.i1).all(Option::is_some);
    // sample offsets of the two taps of every output sample, and the second tap's weight
    let ow = size.width * c;
    let mut off0 = Vec::with_capacity(ow);
    let mut off1 = Vec::with_capacity(ow);
    let mut wt1 = Vec::with_capacity(ow);
    for x in 0..size.width {
        for ch in 0..c {
            off0.push(xs.i0[x].unwrap_or(0) * c + ch);
            off1.push(xs.i1[x].unwrap_or(0) * c + ch);
            wt1.push(xs.w1[x]);
        }
    }
    // Horizontal pass of one source row into floats; the two rows a line needs are cached.
    // (A nested function rather than a closure: closures are not compiled for the kernels'
    // instruction set unless inlined.)
    #[inline(always)]
    fn hrow(
        sy: Option<usize>,
        buf: &mut [f32],
        data: &[u8],
        w: usize,
        taps: (&[usize], &[usize], &[f32]),
        gather: Option<&super::isa::RowTaps>,
        xs: &Taps,
        inside: bool,
        fill: f32,
        c: usize,
    ) {
        let Some(sy) = sy else {
            buf.fill(fill);
            return;
        };
        let row = &data[sy * w * c..(sy + 1) * w * c];
        if inside && let Some(rt) = gather {
            let (off0, off1, wt1) = taps;
            let done = rt.run(row, buf);
            for j in done..buf.len() {
                let v0 = row[off0[j]] as f32;
                buf[j] = v0 + wt1[j] * (row[off1[j]] as f32 - v0);
            }
        } else if inside && c == 3 {
            // one 8-byte load per output pixel holds both taps (adjacent pixels); the last
            // pixels of the row, where 8 bytes would run past its end, read byte by byte
            let (off0, off1, wt1) = taps;
            for (x, o) in buf.chunks_exact_mut(3).enumerate() {
                let (i0, i1, wt) = (off0[3 * x], off1[3 * x], wt1[3 * x]);
                if i1 == i0 + 3 && i0 + 8 <= row.len() {
                    let v = u64::from_le_bytes(row[i0..i0 + 8].try_into().expect("8 bytes"));
                    for (ch, o) in o.iter_mut().enumerate() {
                        let v0 = ((v >> (8 * ch)) & 255) as f32;
                        let v1 = ((v >> (24 + 8 * ch)) & 255) as f32;
                        *o = v0 + wt * (v1 - v0);
                    }
                } else {
                    for (ch, o) in o.iter_mut().enumerate() {
                        let v0 = row[i0 + ch] as f32;
                        *o = v0 + wt * (row[i1 + ch] as f32 - v0);
                    }
                }
            }
        } else if inside {
            let (off0, off1, wt1) = taps;
            for (((o, &i0), &i1), &wt) in buf.iter_mut().zip(off0).zip(off1).zip(wt1) {
                let v0 = row[i0] as f32;
                *o = v0 + wt * (row[i1] as f32 - v0);
            }
        } else {
            for x in 0..xs.w1.len() {
                let wt = xs.w1[x];
                for ch in 0..c {
                    let v0 = xs.i0[x].map_or(fill, |i| row[i * c + ch] as f32);
                    let v1 = xs.i1[x].map_or(fill, |i| row[i * c + ch] as f32);
                    buf[x * c + ch] = v0 + wt * (v1 - v0);
                }
            }
        }
    }
    let tp = (&off0[..], &off1[..], &wt1[..]);
    let row_taps = super::isa::RowTaps::new(&off0, &off1, &wt1, w * c, c);
    let gather = Some(&row_taps);
    let (mut r0, mut r1) = (vec![0f32; ow], vec![0f32; ow]);
    let (mut k0, mut k1) = (None::<Option<usize>>, None::<Option<usize>>);
    for (y, dst) in out.chunks_exact_mut(ow).enumerate() {
        let (s0, s1, wt) = (ys.i0[y], ys.i1[y], ys.w1[y]);
        if k0 != Some(s0) {
            if k1 == Some(s0) {
                std::mem::swap(&mut r0, &mut r1);
                k1 = None;
            } else {
                hrow(s0, &mut r0, data, w, tp, gather, &xs, inside, fill, c);
            }
            k0 = Some(s0);
        }
        if wt == 0.0 {
            for (d, v) in dst.iter_mut().zip(&r0) {
                *d = super::round_u8_in_range(*v);
            }
            continue;
        }
        if k1 != Some(s1) {
            hrow(s1, &mut r1, data, w, tp, gather, &xs, inside, fill, c);
            k1 = Some(s1);
        }
        for ((d, v0), v1) in dst.iter_mut().zip(&r0).zip(&r1) {
            *d = super::round_u8_in_range(v0 + wt * (v1 - v0));
        }
    }
}

/// Fixed-point positions: 16 fractional bits, stepped by integer additions along a row (the
/// error after a 10,000-pixel row stays below 0.1 pixel); 8-bit interpolation weights.
const FRAC: u32 = 16;

/// Any affine map, `C` channels: fixed-point positions stepped along each row.
#[inline(always)]
fn general<const C: usize>(job: &Resample<'_>, out: &mut [u8]) {
    let (src, m, size, interp, border) = (job.src, job.m, job.size, job.interp, job.border);
    let (w, h) = (src.width(), src.height());
    let [a, b, tx, d, e, ty] = m.0;
    let one = (1u64 << FRAC) as f64;
    let px = Pixels::<C> {
        data: src.data(),
        w,
        h,
        border,
        fill: fill_value(border),
    };
    let step = ((a * one).round() as i64, (d * one).round() as i64);
    for (y, dst) in out.chunks_exact_mut(size.width * C).enumerate() {
        let yf = y as f64;
        let pos = (
            ((b * yf + tx) * one).round() as i64,
            ((e * yf + ty) * one).round() as i64,
        );
        let at = |k: usize| (pos.0 + k as i64 * step.0, pos.1 + k as i64 * step.1);
        if interp == Interp::Nearest {
            for (k, o) in dst.chunks_exact_mut(C).enumerate() {
                px.nearest(at(k), o);
            }
            continue;
        }
        // RGB: from the first pixel whose taps are all inside, the vector kernel runs as far as
        // they stay inside; the pixels before and after go through the scalar kernel.
        let (mut begin, mut end) = (size.width, size.width);
        if C == 3 {
            if let Some(k) = (0..size.width).find(|&k| px.inside(at(k))) {
                let row = super::isa::RgbRow {
                    data: px.data,
                    w,
                    h,
                    pos: at(k),
                    step,
                };
                let done = super::isa::warp_row_rgb(row, &mut dst[k * C..]);
                (begin, end) = (k, k + done);
            }
        }
        for (k, o) in dst.chunks_exact_mut(C).enumerate() {
            if k < begin || k >= end {
                px.bilinear(at(k), o);
            }
        }
    }
}

/// A source image as the general warp reads it.
struct Pixels<'a, const C: usize> {
    data: &'a [u8],
    w: usize,
    h: usize,
    border: Option<Border>,
    fill: u8,
}

impl<const C: usize> Pixels<'_, C> {
    /// Whether all four bilinear taps of a 16.16 position lie inside.
    #[inline(always)]
    fn inside(&self, (sx, sy): (i64, i64)) -> bool {
        let (ix, iy) = (sx >> FRAC, sy >> FRAC);
        ix >= 0 && iy >= 0 && ix < self.w as i64 - 1 && iy < self.h as i64 - 1
    }

    #[inline(always)]
    fn nearest(&self, (sx, sy): (i64, i64), o: &mut [u8]) {
        let bias = (NEAREST_BIAS * (1u64 << FRAC) as f64).round() as i64;
        let (ix, iy) = ((sx + bias) >> FRAC, (sy + bias) >> FRAC);
        match (
            resolve(ix as isize, self.w, self.border),
            resolve(iy as isize, self.h, self.border),
        ) {
            (Some(x), Some(y)) => {
                let i = (y * self.w + x) * C;
                o.copy_from_slice(&self.data[i..i + C]);
            }
            _ => o.fill(self.fill),
        }
    }

    /// Bilinear sample with 8-bit weights (the vector kernel repeats this arithmetic).
    #[inline(always)]
    fn bilinear(&self, (sx, sy): (i64, i64), o: &mut [u8]) {
        let (w, data) = (self.w, self.data);
        let (ix, iy) = (sx >> FRAC, sy >> FRAC);
        let wx = ((sx >> (FRAC - 8)) & 255) as i32;
        let wy = ((sy >> (FRAC - 8)) & 255) as i32;
        let lerp = |t0: i32, t1: i32, b0: i32, b1: i32| {
            let t = t0 * 256 + (t1 - t0) * wx;
            let bt = b0 * 256 + (b1 - b0) * wx;
            ((t * 256 + (bt - t) * wy + 32768) >> 16) as u8
        };
        if self.inside((sx, sy)) {
            let i = (iy as usize * w + ix as usize) * C;
            let (top, bot) = (&data[i..i + 2 * C], &data[i + w * C..i + w * C + 2 * C]);
            for (ch, v) in o.iter_mut().enumerate() {
                *v = lerp(
                    top[ch] as i32,
                    top[ch + C] as i32,
                    bot[ch] as i32,
                    bot[ch + C] as i32,
                );
            }
            return;
        }
        // near or past the border: resolve the four taps once per pixel
        let (x0, x1) = (
            resolve(ix as isize, w, self.border),
            resolve(ix as isize + 1, w, self.border),
        );
        let (y0, y1) = (
            resolve(iy as isize, self.h, self.border),
            resolve(iy as isize + 1, self.h, self.border),
        );
        if x0.is_none() && x1.is_none() || y0.is_none() && y1.is_none() {
            o.fill(self.fill);
            return;
        }
        let tap = |x: Option<usize>, y: Option<usize>| match (x, y) {
            (Some(x), Some(y)) => Some((y * w + x) * C),
            _ => None,
        };
        let taps = [tap(x0, y0), tap(x1, y0), tap(x0, y1), tap(x1, y1)];
        let fill = self.fill as i32;
        for (ch, v) in o.iter_mut().enumerate() {
            let [t0, t1, b0, b1] = taps.map(|t| t.map_or(fill, |i| data[i + ch] as i32));
            *v = lerp(t0, t1, b0, b1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_warp_equals_the_scalar_kernel() {
        let (w, h) = (53, 41);
        let data: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7919) % 251) as u8).collect();
        let img = Image::new(w, h, 3, data).unwrap();
        for (k, m) in [
            Affine2([0.93, -0.31, 9.0, 0.29, 0.95, -6.0]),
            Affine2([1.07, 0.12, -3.5, -0.05, 0.88, 4.25]),
            Affine2([0.5, 0.0, 0.3, 0.0, 0.5, 0.7]),
        ]
        .iter()
        .enumerate()
        {
            let size = Size::new(47 + k, 39);
            let fast = warp(
                &img,
                m,
                size,
                Some(Interp::Bilinear),
                Some(Border::Constant(17)),
            );
            let px = Pixels::<3> {
                data: img.data(),
                w,
                h,
                border: Some(Border::Constant(17)),
                fill: 17,
            };
            let one = (1u64 << FRAC) as f64;
            let [a, b, tx, d, e, ty] = m.0;
            let mut slow = vec![0u8; size.width * size.height * 3];
            for (y, row) in slow.chunks_exact_mut(size.width * 3).enumerate() {
                let pos = (
                    ((b * y as f64 + tx) * one).round() as i64,
                    ((e * y as f64 + ty) * one).round() as i64,
                );
                let step = ((a * one).round() as i64, (d * one).round() as i64);
                for (x, o) in row.chunks_exact_mut(3).enumerate() {
                    px.bilinear((pos.0 + x as i64 * step.0, pos.1 + x as i64 * step.1), o);
                }
            }
            if m.0[1] != 0.0 {
                assert_eq!(fast.data(), &slow[..], "matrix {k}");
            }
        }
    }

    #[test]
    fn reversed_rows_match_a_plain_reversal() {
        for n in [1usize, 5, 6, 7, 11, 16, 64, 255, 256] {
            let src: Vec<u8> = (0..n * 3).map(|i| (i % 256) as u8).collect();
            let mut dst = vec![0u8; n * 3];
            reverse_pixels(&src, &mut dst, 3);
            let want: Vec<u8> = src.chunks_exact(3).rev().flatten().copied().collect();
            assert_eq!(dst, want, "{n} pixels");
        }
    }
}

#[cfg(test)]
mod resize_tests {
    use super::*;

    /// The separable kernel (with its vector horizontal pass) against the same formulas written
    /// out per sample.
    #[test]
    fn separable_resize_equals_the_formula() {
        let (w, h) = (37, 23);
        let data: Vec<u8> = (0..w * h * 3)
            .map(|i| ((i * 104_729) % 253) as u8)
            .collect();
        let img = Image::new(w, h, 3, data.clone()).unwrap();
        for (ow, oh) in [(61, 40), (20, 11), (37, 23)] {
            let (sx, sy) = (w as f64 / ow as f64, h as f64 / oh as f64);
            let m = Affine2([sx, 0.0, 0.5 * sx - 0.5, 0.0, sy, 0.5 * sy - 0.5]);
            let got = warp(&img, &m, Size::new(ow, oh), Some(Interp::Bilinear), None);
            let xs = taps(ow, w, sx, 0.5 * sx - 0.5, Interp::Bilinear, None);
            let ys = taps(oh, h, sy, 0.5 * sy - 0.5, Interp::Bilinear, None);
            let hv = |y: usize, x: usize, c: usize| {
                let v0 = data[(y * w + xs.i0[x].unwrap()) * 3 + c] as f32;
                v0 + xs.w1[x] * (data[(y * w + xs.i1[x].unwrap()) * 3 + c] as f32 - v0)
            };
            for y in 0..oh {
                for x in 0..ow {
                    for c in 0..3 {
                        let t = hv(ys.i0[y].unwrap(), x, c);
                        let want = if ys.w1[y] == 0.0 {
                            crate::cpu::round_u8(t)
                        } else {
                            crate::cpu::round_u8(t + ys.w1[y] * (hv(ys.i1[y].unwrap(), x, c) - t))
                        };
                        assert_eq!(
                            got.data()[(y * ow + x) * 3 + c],
                            want,
                            "{ow}x{oh} at ({x}, {y}, {c})"
                        );
                    }
                }
            }
        }
    }
}

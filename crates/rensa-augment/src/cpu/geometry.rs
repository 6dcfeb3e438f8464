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
        if b == 0.0 && d == 0.0 {
            separable(src, inverse, size, interp, border, &mut out);
        } else {
            general(src, inverse, size, interp, border, &mut out);
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
    // Five pixels at a time through one 16-byte shuffle (a single `pshufb` where the CPU has
    // it): bytes 1..16 of the window hold five source pixels, written reversed to 15 bytes of
    // `dst` plus one byte that the next window overwrites.
    let n = src.len() / 3;
    let mut j = 0;
    // the window starts one byte before the five pixels, so their first must not be pixel 0
    while j + 6 <= n {
        let base = 3 * (n - j - 5) - 1;
        let s: [u8; 16] = src[base..base + 16].try_into().expect("16 bytes");
        let d = [
            s[13], s[14], s[15], s[10], s[11], s[12], s[7], s[8], s[9], s[4], s[5], s[6], s[1],
            s[2], s[3], s[0],
        ];
        if 3 * j + 16 <= dst.len() {
            dst[3 * j..3 * j + 16].copy_from_slice(&d);
        } else {
            dst[3 * j..3 * j + 15].copy_from_slice(&d[..15]);
        }
        j += 5;
    }
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

#[inline(always)]
fn separable(
    src: &Image,
    m: &Affine2,
    size: Size,
    interp: Interp,
    border: Option<Border>,
    out: &mut [u8],
) {
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
        if inside && c == 3 {
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
    let (mut r0, mut r1) = (vec![0f32; ow], vec![0f32; ow]);
    let (mut k0, mut k1) = (None::<Option<usize>>, None::<Option<usize>>);
    for (y, dst) in out.chunks_exact_mut(ow).enumerate() {
        let (s0, s1, wt) = (ys.i0[y], ys.i1[y], ys.w1[y]);
        if k0 != Some(s0) {
            if k1 == Some(s0) {
                std::mem::swap(&mut r0, &mut r1);
                k1 = None;
            } else {
                hrow(s0, &mut r0, data, w, tp, &xs, inside, fill, c);
            }
            k0 = Some(s0);
        }
        if wt == 0.0 {
            for (d, v) in dst.iter_mut().zip(&r0) {
                *d = super::round_u8(*v);
            }
            continue;
        }
        if k1 != Some(s1) {
            hrow(s1, &mut r1, data, w, tp, &xs, inside, fill, c);
            k1 = Some(s1);
        }
        for ((d, v0), v1) in dst.iter_mut().zip(&r0).zip(&r1) {
            *d = super::round_u8(v0 + wt * (v1 - v0));
        }
    }
}

#[inline(always)]
fn general(
    src: &Image,
    m: &Affine2,
    size: Size,
    interp: Interp,
    border: Option<Border>,
    out: &mut [u8],
) {
    match src.channels() {
        3 => general_c::<3>(src, m, size, interp, border, out),
        _ => general_c::<1>(src, m, size, interp, border, out),
    }
}

/// Fixed-point positions: 16 fractional bits, stepped by integer additions along a row (the
/// error after a 10,000-pixel row stays below 0.1 pixel); 8-bit interpolation weights.
const FRAC: u32 = 16;

#[inline(always)]
fn general_c<const C: usize>(
    src: &Image,
    m: &Affine2,
    size: Size,
    interp: Interp,
    border: Option<Border>,
    out: &mut [u8],
) {
    let (w, h) = (src.width(), src.height());
    let [a, b, tx, d, e, ty] = m.0;
    let one = (1u64 << FRAC) as f64;
    let fill = fill_value(border);
    let data = src.data();
    let row = w * C;
    let (step_x, step_y) = ((a * one).round() as i64, (d * one).round() as i64);
    let bias = (NEAREST_BIAS * one).round() as i64;
    let (wl, hl) = (w as i64 - 1, h as i64 - 1);
    #[inline(always)]
    fn at<const C: usize>(
        data: &[u8],
        w: usize,
        h: usize,
        border: Option<Border>,
        fill: u8,
        x: i64,
        y: i64,
        ch: usize,
    ) -> i32 {
        match (
            resolve(x as isize, w, border),
            resolve(y as isize, h, border),
        ) {
            (Some(x), Some(y)) => data[(y * w + x) * C + ch] as i32,
            _ => fill as i32,
        }
    }
    for (y, dst) in out.chunks_exact_mut(size.width * C).enumerate() {
        let yf = y as f64;
        let mut sx = ((b * yf + tx) * one).round() as i64;
        let mut sy = ((e * yf + ty) * one).round() as i64;
        for o in dst.chunks_exact_mut(C) {
            if interp == Interp::Nearest {
                let (ix, iy) = ((sx + bias) >> FRAC, (sy + bias) >> FRAC);
                for (ch, v) in o.iter_mut().enumerate() {
                    *v = at::<C>(data, w, h, border, fill, ix, iy, ch) as u8;
                }
            } else {
                let (ix, iy) = (sx >> FRAC, sy >> FRAC);
                let wx = ((sx >> (FRAC - 8)) & 255) as i32;
                let wy = ((sy >> (FRAC - 8)) & 255) as i32;
                if ix >= 0 && iy >= 0 && ix < wl && iy < hl {
                    let i = (iy as usize * w + ix as usize) * C;
                    if C == 3 && i + row + 8 <= data.len() {
                        // both taps of a row in one 8-byte load
                        let top = u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
                        let bot = u64::from_le_bytes(data[i + row..i + row + 8].try_into().expect("8 bytes"));
                        for (ch, v) in o.iter_mut().enumerate() {
                            let t0 = ((top >> (8 * ch)) & 255) as i32;
                            let t1 = ((top >> (24 + 8 * ch)) & 255) as i32;
                            let b0 = ((bot >> (8 * ch)) & 255) as i32;
                            let b1 = ((bot >> (24 + 8 * ch)) & 255) as i32;
                            let t = t0 * 256 + (t1 - t0) * wx;
                            let bt = b0 * 256 + (b1 - b0) * wx;
                            *v = ((t * 256 + (bt - t) * wy + 32768) >> 16) as u8;
                        }
                        sx += step_x;
                        sy += step_y;
                        continue;
                    }
                    let top = &data[i..i + 2 * C];
                    let bot = &data[i + row..i + row + 2 * C];
                    for ch in 0..C {
                        let (t0, b0) = (top[ch] as i32, bot[ch] as i32);
                        let t = t0 * 256 + (top[ch + C] as i32 - t0) * wx;
                        let bt = b0 * 256 + (bot[ch + C] as i32 - b0) * wx;
                        o[ch] = ((t * 256 + (bt - t) * wy + 32768) >> 16) as u8;
                    }
                } else {
                    for (ch, v) in o.iter_mut().enumerate() {
                        let (t0, b0) = (
                            at::<C>(data, w, h, border, fill, ix, iy, ch),
                            at::<C>(data, w, h, border, fill, ix, iy + 1, ch),
                        );
                        let t = t0 * 256
                            + (at::<C>(data, w, h, border, fill, ix + 1, iy, ch) - t0) * wx;
                        let bt = b0 * 256
                            + (at::<C>(data, w, h, border, fill, ix + 1, iy + 1, ch) - b0) * wx;
                        *v = ((t * 256 + (bt - t) * wy + 32768) >> 16) as u8;
                    }
                }
            }
            sx += step_x;
            sy += step_y;
        }
    }
}

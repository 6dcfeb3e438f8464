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
#[inline]
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
fn reverse_pixels(src: &[u8], dst: &mut [u8], c: usize) {
    match c {
        3 => {
            for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(3).rev()) {
                d.copy_from_slice(s);
            }
        }
        _ => {
            for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
                *d = *s;
            }
        }
    }
}

/// One axis's taps for each output index: first source index, second source index (either may
/// be the constant) and the weight of the second.
struct Taps {
    i0: Vec<Option<usize>>,
    i1: Vec<Option<usize>>,
    w1: Vec<f32>,
}

fn taps(n_out: usize, n_in: usize, scale: f64, offset: f64, interp: Interp, border: Option<Border>) -> Taps {
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

fn separable(src: &Image, m: &Affine2, size: Size, interp: Interp, border: Option<Border>, out: &mut [u8]) {
    let (w, h, c) = (src.width(), src.height(), src.channels());
    let [a, _, tx, _, e, ty] = m.0;
    let xs = taps(size.width, w, a, tx, interp, border);
    let ys = taps(size.height, h, e, ty, interp, border);
    let fill = fill_value(border) as f32;
    let data = src.data();
    // Horizontal pass for one source row into f32, cached for the two rows a line needs.
    let hrow = |sy: Option<usize>, buf: &mut Vec<f32>| {
        buf.clear();
        let Some(sy) = sy else {
            buf.resize(size.width * c, fill);
            return;
        };
        let row = &data[sy * w * c..(sy + 1) * w * c];
        for x in 0..size.width {
            let wt = xs.w1[x];
            for ch in 0..c {
                let v0 = xs.i0[x].map_or(fill, |i| row[i * c + ch] as f32);
                let v1 = xs.i1[x].map_or(fill, |i| row[i * c + ch] as f32);
                buf.push(v0 + wt * (v1 - v0));
            }
        }
    };
    let (mut r0, mut r1) = (Vec::new(), Vec::new());
    let (mut k0, mut k1) = (None::<Option<usize>>, None::<Option<usize>>);
    for (y, dst) in out.chunks_exact_mut(size.width * c).enumerate() {
        let (s0, s1, wt) = (ys.i0[y], ys.i1[y], ys.w1[y]);
        if k0 != Some(s0) {
            if k1 == Some(s0) {
                std::mem::swap(&mut r0, &mut r1);
                k1 = None;
            } else {
                hrow(s0, &mut r0);
            }
            k0 = Some(s0);
        }
        if wt == 0.0 {
            for (d, v) in dst.iter_mut().zip(&r0) {
                *d = (v + 0.5) as u8;
            }
            continue;
        }
        if k1 != Some(s1) {
            hrow(s1, &mut r1);
            k1 = Some(s1);
        }
        for ((d, v0), v1) in dst.iter_mut().zip(&r0).zip(&r1) {
            *d = (v0 + wt * (v1 - v0) + 0.5) as u8;
        }
    }
}

fn general(src: &Image, m: &Affine2, size: Size, interp: Interp, border: Option<Border>, out: &mut [u8]) {
    let (w, h, c) = (src.width(), src.height(), src.channels());
    let [a, b, tx, d, e, ty] = m.0.map(|v| v as f32);
    let fill = fill_value(border) as f32;
    let data = src.data();
    let (wl, hl) = (w as f32 - 1.0, h as f32 - 1.0);
    let px = |sx: isize, sy: isize, ch: usize| -> f32 {
        match (resolve(sx, w, border), resolve(sy, h, border)) {
            (Some(x), Some(y)) => data[(y * w + x) * c + ch] as f32,
            _ => fill,
        }
    };
    for (y, dst) in out.chunks_exact_mut(size.width * c).enumerate() {
        let yf = y as f32;
        for (x, o) in dst.chunks_exact_mut(c).enumerate() {
            let xf = x as f32;
            let sx = a * xf + b * yf + tx;
            let sy = d * xf + e * yf + ty;
            match interp {
                Interp::Nearest => {
                    let (ix, iy) = ((sx + NEAREST_BIAS as f32).floor() as isize, (sy + NEAREST_BIAS as f32).floor() as isize);
                    for (ch, v) in o.iter_mut().enumerate() {
                        *v = px(ix, iy, ch) as u8;
                    }
                }
                Interp::Bilinear => {
                    let (fx, fy) = (sx.floor(), sy.floor());
                    let (wx, wy) = (sx - fx, sy - fy);
                    if fx >= 0.0 && fy >= 0.0 && fx < wl && fy < hl {
                        let i = (fy as usize * w + fx as usize) * c;
                        let row = w * c;
                        for (ch, v) in o.iter_mut().enumerate() {
                            let p00 = data[i + ch] as f32;
                            let p01 = data[i + c + ch] as f32;
                            let p10 = data[i + row + ch] as f32;
                            let p11 = data[i + row + c + ch] as f32;
                            let top = p00 + wx * (p01 - p00);
                            let bot = p10 + wx * (p11 - p10);
                            *v = (top + wy * (bot - top) + 0.5) as u8;
                        }
                    } else {
                        let (ix, iy) = (fx as isize, fy as isize);
                        for (ch, v) in o.iter_mut().enumerate() {
                            let top = px(ix, iy, ch) + wx * (px(ix + 1, iy, ch) - px(ix, iy, ch));
                            let bot = px(ix, iy + 1, ch)
                                + wx * (px(ix + 1, iy + 1, ch) - px(ix, iy + 1, ch));
                            *v = (top + wy * (bot - top) + 0.5).clamp(0.0, 255.0) as u8;
                        }
                    }
                }
            }
        }
    }
}

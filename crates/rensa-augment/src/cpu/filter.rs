//! Neighbourhood and stochastic operations: Gaussian blur, additive noise, erasing.

use super::geometry::resolve;
use crate::ops::Border;
use crate::rng::SampleRng;

/// The normalised 1-D Gaussian of `sigma`, radius `ceil(3 sigma)` (at least 1).
pub(crate) fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let r = (3.0 * sigma).ceil().max(1.0) as isize;
    let k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// `out[i] = sum_t k[t] * src(t)[i]`, 32 outputs at a time with the sums held in registers
/// (one store per output instead of one per tap).
#[inline(always)]
fn weighted_rows<'a>(out: &mut [f32], k: &[f32], src: impl Fn(usize) -> &'a [f32]) {
    const W: usize = 32;
    let n = out.len();
    let mut x0 = 0;
    while x0 + W <= n {
        let mut acc = [0f32; W];
        for (t, &wt) in k.iter().enumerate() {
            let s: &[f32; W] = src(t)[x0..x0 + W].try_into().expect("a block");
            for i in 0..W {
                acc[i] += wt * s[i];
            }
        }
        out[x0..x0 + W].copy_from_slice(&acc);
        x0 += W;
    }
    for x in x0..n {
        out[x] = k.iter().enumerate().map(|(t, &wt)| wt * src(t)[x]).sum();
    }
}

/// Separable Gaussian blur with reflected borders (OpenCV's default, REFLECT_101).
#[inline(always)]
pub(crate) fn blur(data: &mut [u8], width: usize, height: usize, c: usize, sigma: f32) {
    let k = gaussian_kernel(sigma);
    let r = k.len() / 2;
    let row_len = width * c;
    // horizontal pass into f32 rows
    let mut tmp = vec![0f32; width * height * c];
    let mut padded = vec![0f32; (width + 2 * r) * c];
    for y in 0..height {
        let row = &data[y * row_len..(y + 1) * row_len];
        for (p, &v) in padded[r * c..r * c + row_len].iter_mut().zip(row) {
            *p = v as f32;
        }
        for px in (0..r).chain(width + r..width + 2 * r) {
            let sx = resolve(px as isize - r as isize, width, Some(Border::Reflect)).unwrap();
            for ch in 0..c {
                padded[px * c + ch] = row[sx * c + ch] as f32;
            }
        }
        let padded = &padded;
        weighted_rows(&mut tmp[y * row_len..(y + 1) * row_len], &k, |t| {
            &padded[t * c..t * c + row_len]
        });
    }
    // vertical pass back to u8
    let mut acc = vec![0f32; row_len];
    let mut rows = vec![0usize; k.len()];
    for y in 0..height {
        for (t, r0) in rows.iter_mut().enumerate() {
            *r0 = resolve(
                y as isize + t as isize - r as isize,
                height,
                Some(Border::Reflect),
            )
            .unwrap()
                * row_len;
        }
        let (tmp, rows) = (&tmp, &rows);
        weighted_rows(&mut acc, &k, |t| &tmp[rows[t]..rows[t] + row_len]);
        for (d, a) in data[y * row_len..(y + 1) * row_len].iter_mut().zip(&acc) {
            *d = super::round_u8_in_range(*a);
        }
    }
}

/// The noise field of an [`Op::Noise`](crate::ops::Op::Noise), in sample units (255 scale):
/// one value per sample, or one per pixel repeated over its channels.
pub(crate) fn noise_field(
    len: usize,
    channels: usize,
    std: f32,
    mean: f32,
    per_channel: bool,
    seed: u64,
) -> Vec<f32> {
    let mut rng = SampleRng::from_seed(seed);
    let (s, m) = (std * 255.0, mean * 255.0);
    if per_channel || channels == 1 {
        (0..len).map(|_| m + s * rng.normal()).collect()
    } else {
        let mut out = Vec::with_capacity(len);
        for _ in 0..len / channels {
            let v = m + s * rng.normal();
            out.extend(std::iter::repeat_n(v, channels));
        }
        out
    }
}

/// Adds a noise field.
#[inline(always)]
pub(crate) fn add_noise(data: &mut [u8], field: &[f32]) {
    for (d, n) in data.iter_mut().zip(field) {
        *d = super::round_u8(*d as f32 + n);
    }
}

/// Fills rectangles `[x, y, w, h]`.
#[inline(always)]
pub(crate) fn erase(data: &mut [u8], width: usize, c: usize, rects: &[[usize; 4]], fill: u8) {
    let height = data.len() / (width * c);
    for &[x, y, w, h] in rects {
        let (x1, y1) = (
            x.saturating_add(w).min(width),
            y.saturating_add(h).min(height),
        );
        for yy in y.min(height)..y1 {
            data[(yy * width + x.min(width)) * c..(yy * width + x1) * c].fill(fill);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_flat_images_and_smooths_a_step() {
        let mut flat = vec![77u8; 9 * 7 * 3];
        blur(&mut flat, 9, 7, 3, 1.3);
        assert!(flat.iter().all(|&v| v == 77));
        let mut step: Vec<u8> = (0..10)
            .flat_map(|x| [if x < 5 { 0u8 } else { 200 }])
            .collect();
        blur(&mut step, 10, 1, 1, 1.0);
        assert!(
            step[4] > 0 && step[4] < 100 && step[5] > 100 && step[5] < 200,
            "{step:?}"
        );
        let k = gaussian_kernel(0.5);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}

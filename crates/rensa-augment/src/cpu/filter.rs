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
        let out = &mut tmp[y * row_len..(y + 1) * row_len];
        out.fill(0.0);
        for (t, &wt) in k.iter().enumerate() {
            let src = &padded[t * c..t * c + row_len];
            for (o, s) in out.iter_mut().zip(src) {
                *o += wt * s;
            }
        }
    }
    // vertical pass back to u8
    let mut acc = vec![0f32; row_len];
    for y in 0..height {
        acc.fill(0.0);
        for (t, &wt) in k.iter().enumerate() {
            let sy = resolve(
                y as isize + t as isize - r as isize,
                height,
                Some(Border::Reflect),
            )
            .unwrap();
            let src = &tmp[sy * row_len..(sy + 1) * row_len];
            for (a, s) in acc.iter_mut().zip(src) {
                *a += wt * s;
            }
        }
        for (d, a) in data[y * row_len..(y + 1) * row_len].iter_mut().zip(&acc) {
            *d = super::round_u8(*a);
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
        let (x1, y1) = ((x + w).min(width), (y + h).min(height));
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

//! Colour operations, in place on u8 samples. Gray images (one channel) take the operations
//! that make sense for them (gain, contrast, gamma) and ignore the chromatic ones.

/// Luma weights (ITU-R BT.601), as torchvision and OpenCV.
pub(crate) const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

#[inline]
fn to_u8(v: f32) -> u8 {
    (v + 0.5).clamp(0.0, 255.0) as u8
}

/// Applies `lut` to every sample.
pub(crate) fn apply_lut(data: &mut [u8], lut: &[u8; 256]) {
    for v in data.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// `v * alpha + offset` (offset in sample units) through a lookup table.
pub(crate) fn linear(data: &mut [u8], alpha: f32, offset: f32) {
    let mut lut = [0u8; 256];
    for (i, l) in lut.iter_mut().enumerate() {
        *l = to_u8(i as f32 * alpha + offset);
    }
    apply_lut(data, &lut);
}

/// The mean luma of an image (the mean sample of a gray one).
pub(crate) fn mean_gray(data: &[u8], channels: usize) -> f32 {
    if channels == 1 {
        let s: u64 = data.iter().map(|&v| v as u64).sum();
        return s as f32 / data.len() as f32;
    }
    let mut sums = [0u64; 3];
    for p in data.chunks_exact(3) {
        sums[0] += p[0] as u64;
        sums[1] += p[1] as u64;
        sums[2] += p[2] as u64;
    }
    let n = (data.len() / 3) as f32;
    (0..3).map(|i| LUMA[i] * sums[i] as f32).sum::<f32>() / n
}

/// Blend with the mean gray level.
pub(crate) fn contrast(data: &mut [u8], channels: usize, factor: f32) {
    let m = mean_gray(data, channels);
    linear(data, factor, (1.0 - factor) * m);
}

/// Blend each pixel with its gray level.
pub(crate) fn saturation(data: &mut [u8], channels: usize, factor: f32) {
    if channels != 3 {
        return;
    }
    for p in data.chunks_exact_mut(3) {
        let (r, g, b) = (p[0] as f32, p[1] as f32, p[2] as f32);
        let gray = (1.0 - factor) * (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b);
        p[0] = to_u8(gray + factor * r);
        p[1] = to_u8(gray + factor * g);
        p[2] = to_u8(gray + factor * b);
    }
}

/// Gray in all three channels.
pub(crate) fn grayscale(data: &mut [u8], channels: usize) {
    if channels != 3 {
        return;
    }
    for p in data.chunks_exact_mut(3) {
        let g = to_u8(LUMA[0] * p[0] as f32 + LUMA[1] * p[1] as f32 + LUMA[2] * p[2] as f32);
        p.fill(g);
    }
}

/// `255 (v / 255)^gamma`.
pub(crate) fn gamma(data: &mut [u8], gamma: f32) {
    let mut lut = [0u8; 256];
    for (i, l) in lut.iter_mut().enumerate() {
        *l = to_u8(255.0 * (i as f32 / 255.0).powf(gamma));
    }
    apply_lut(data, &lut);
}

/// One pixel (0..1 floats) through RGB -> HSV, the shifts, and back. Branch-free so that the
/// loop over a block of pixels vectorises.
#[inline(always)]
pub(crate) fn hsv_shift(r: f32, g: f32, b: f32, dh: f32, ds: f32, dv: f32) -> (f32, f32, f32) {
    let v = r.max(g).max(b);
    let mn = r.min(g).min(b);
    let delta = v - mn;
    let safe = if delta > 0.0 { delta } else { 1.0 };
    // hue in sixths of a turn, 0..6
    let hr = (g - b) / safe;
    let hg = (b - r) / safe + 2.0;
    let hb = (r - g) / safe + 4.0;
    let mut h = if v == r { hr } else if v == g { hg } else { hb };
    h = if delta > 0.0 { h } else { 0.0 };
    let s = if v > 0.0 { delta / v } else { 0.0 };
    // shifts
    let mut h = h / 6.0 + dh;
    h -= h.floor();
    let s = (s + ds).clamp(0.0, 1.0);
    let v = (v + dv).clamp(0.0, 1.0);
    // back: channel n takes v - v s max(0, min(k, 4 - k, 1)), k = (n + 6h) mod 6
    let f = |n: f32| {
        let mut k = n + 6.0 * h;
        k = if k >= 6.0 { k - 6.0 } else { k };
        v - v * s * k.min(4.0 - k).clamp(0.0, 1.0)
    };
    (f(5.0), f(3.0), f(1.0))
}

/// Hue, saturation and value shifts.
pub(crate) fn hsv(data: &mut [u8], channels: usize, dh: f32, ds: f32, dv: f32) {
    if channels != 3 {
        // gray: only the value shift means anything
        linear(data, 1.0, dv * 255.0);
        return;
    }
    const BLOCK: usize = 64;
    let mut buf = [[0f32; BLOCK]; 3];
    for chunk in data.chunks_mut(BLOCK * 3) {
        let n = chunk.len() / 3;
        for (i, p) in chunk.chunks_exact(3).enumerate() {
            buf[0][i] = p[0] as f32 * (1.0 / 255.0);
            buf[1][i] = p[1] as f32 * (1.0 / 255.0);
            buf[2][i] = p[2] as f32 * (1.0 / 255.0);
        }
        for i in 0..n {
            let (r, g, b) = hsv_shift(buf[0][i], buf[1][i], buf[2][i], dh, ds, dv);
            buf[0][i] = r;
            buf[1][i] = g;
            buf[2][i] = b;
        }
        for (i, p) in chunk.chunks_exact_mut(3).enumerate() {
            p[0] = to_u8(buf[0][i] * 255.0);
            p[1] = to_u8(buf[1][i] * 255.0);
            p[2] = to_u8(buf[2][i] * 255.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_round_trip_and_known_hues() {
        for &(r, g, b) in &[(1.0, 0.0, 0.0), (0.2, 0.7, 0.4), (0.5, 0.5, 0.5), (0.0, 0.0, 0.0), (0.9, 0.1, 0.8)] {
            let (r2, g2, b2) = hsv_shift(r, g, b, 0.0, 0.0, 0.0);
            assert!((r - r2).abs() < 1e-5 && (g - g2).abs() < 1e-5 && (b - b2).abs() < 1e-5);
        }
        // red + a third of a turn = green
        let (r, g, b) = hsv_shift(1.0, 0.0, 0.0, 1.0 / 3.0, 0.0, 0.0);
        assert!(r.abs() < 1e-5 && (g - 1.0).abs() < 1e-5 && b.abs() < 1e-5);
        // a full turn changes nothing
        let (r, g, b) = hsv_shift(0.2, 0.7, 0.4, 1.0, 0.0, 0.0);
        assert!((r - 0.2).abs() < 1e-5 && (g - 0.7).abs() < 1e-5 && (b - 0.4).abs() < 1e-5);
    }

    #[test]
    fn colour_ops_keep_identity_parameters_exact() {
        let orig: Vec<u8> = (0..=255u8).cycle().take(300).collect();
        let mut d = orig.clone();
        linear(&mut d, 1.0, 0.0);
        saturation(&mut d, 3, 1.0);
        gamma(&mut d, 1.0);
        hsv(&mut d, 3, 0.0, 0.0, 0.0);
        assert_eq!(d, orig);
        grayscale(&mut d, 3);
        assert!(d.chunks_exact(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    }
}

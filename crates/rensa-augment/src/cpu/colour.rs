//! Colour operations, in place on u8 samples. Gray images (one channel) take the operations
//! that make sense for them (gain, contrast, gamma) and ignore the chromatic ones.

/// Luma weights (ITU-R BT.601), as torchvision and OpenCV.
pub(crate) const LUMA: [f32; 3] = [0.299, 0.587, 0.114];

#[inline(always)]
fn to_u8(v: f32) -> u8 {
    super::round_u8(v)
}

/// Applies `lut` to every sample.
#[inline(always)]
pub(crate) fn apply_lut(data: &mut [u8], lut: &[u8; 256]) {
    for v in data.iter_mut() {
        *v = lut[*v as usize];
    }
}

/// `v * alpha + offset` (offset in sample units), rounded and saturated.
#[inline(always)]
pub(crate) fn linear(data: &mut [u8], alpha: f32, offset: f32) {
    // 16.16 fixed point in i32 lanes (vectorises; a float or a table lookup per byte does
    // not). Clamped to gains of ±64 and offsets of ±8192, |v a + b| < 2^31. Within those the
    // result is exact; a plan's gains and offsets are validated to stay there (an offset beyond
    // ±8192 with a gain of 1 saturates every sample anyway, as the clamped one does).
    let a = (alpha.clamp(-64.0, 64.0) * 65536.0).round() as i32;
    let b = ((offset + 0.5).clamp(-8192.0, 8192.0) * 65536.0).round() as i32;
    for v in data.iter_mut() {
        *v = ((*v as i32 * a + b) >> 16).clamp(0, 255) as u8;
    }
}

/// The mean luma of an image (the mean sample of a gray one).
#[inline(always)]
pub(crate) fn mean_gray(data: &[u8], channels: usize) -> f32 {
    if channels == 1 {
        let s: u64 = data.iter().map(|&v| v as u64).sum();
        return s as f32 / data.len() as f32;
    }
    // 16 pixels per block summed lane-wise (vectorises), lanes folded by channel at the end;
    // u32 lanes cannot overflow below 2^24 blocks.
    const LANES: usize = 48;
    let mut lanes = [0u32; LANES];
    let mut blocks = data.chunks_exact(LANES);
    for b in &mut blocks {
        for (l, &v) in lanes.iter_mut().zip(b) {
            *l += v as u32;
        }
    }
    let mut sums = [0u64; 3];
    for (i, l) in lanes.iter().enumerate() {
        sums[i % 3] += *l as u64;
    }
    for p in blocks.remainder().chunks_exact(3) {
        for ch in 0..3 {
            sums[ch] += p[ch] as u64;
        }
    }
    let n = (data.len() / 3) as f32;
    (0..3).map(|i| LUMA[i] * sums[i] as f32).sum::<f32>() / n
}

/// Pixels per block of the planar helpers.
const BLOCK: usize = 64;

/// Runs `f` over blocks of up to 64 RGB pixels converted to three planes of floats (0..255),
/// and writes the planes back rounded and saturated.
#[inline(always)]
fn planar(
    data: &mut [u8],
    mut f: impl FnMut(&mut [f32; BLOCK], &mut [f32; BLOCK], &mut [f32; BLOCK]),
) {
    // Whole blocks go through fixed-size arrays with constant strides, which LLVM turns into
    // vector shuffles (interleaved loads and stores); the conversions to and from floats run on
    // whole planes. The last, partial block goes through a zero-padded copy.
    let mut planes = [[0f32; BLOCK]; 3];
    let mut flat = [0f32; BLOCK * 3];
    let mut blocks = data.chunks_exact_mut(BLOCK * 3);
    for chunk in &mut blocks {
        let chunk: &mut [u8; BLOCK * 3] = chunk.try_into().expect("a whole block");
        for (f, &v) in flat.iter_mut().zip(chunk.iter()) {
            *f = v as f32;
        }
        for i in 0..BLOCK {
            planes[0][i] = flat[3 * i];
            planes[1][i] = flat[3 * i + 1];
            planes[2][i] = flat[3 * i + 2];
        }
        let [r, g, b] = &mut planes;
        f(r, g, b);
        for i in 0..BLOCK {
            flat[3 * i] = planes[0][i];
            flat[3 * i + 1] = planes[1][i];
            flat[3 * i + 2] = planes[2][i];
        }
        for (v, &f) in chunk.iter_mut().zip(flat.iter()) {
            *v = to_u8(f);
        }
    }
    let tail = blocks.into_remainder();
    if !tail.is_empty() {
        let mut block = [0u8; BLOCK * 3];
        block[..tail.len()].copy_from_slice(tail);
        for i in 0..BLOCK {
            planes[0][i] = block[3 * i] as f32;
            planes[1][i] = block[3 * i + 1] as f32;
            planes[2][i] = block[3 * i + 2] as f32;
        }
        let [r, g, b] = &mut planes;
        f(r, g, b);
        for i in 0..tail.len() / 3 {
            tail[3 * i] = to_u8(planes[0][i]);
            tail[3 * i + 1] = to_u8(planes[1][i]);
            tail[3 * i + 2] = to_u8(planes[2][i]);
        }
    }
}

/// Maps every RGB pixel (as floats in 0..255) through `f`, a block of pixels at a time so that
/// the loop over the block vectorises.
#[inline(always)]
fn map_rgb(data: &mut [u8], f: impl Fn(f32, f32, f32) -> (f32, f32, f32)) {
    planar(
        data,
        #[inline(always)]
        |r, g, b| {
            for i in 0..BLOCK {
                (r[i], g[i], b[i]) = f(r[i], g[i], b[i]);
            }
        },
    );
}

/// Blend with the mean gray level.
#[inline(always)]
pub(crate) fn contrast(data: &mut [u8], channels: usize, factor: f32) {
    let m = mean_gray(data, channels);
    linear(data, factor, (1.0 - factor) * m);
}

/// Blend each pixel with its gray level.
#[inline(always)]
pub(crate) fn saturation(data: &mut [u8], channels: usize, factor: f32) {
    if channels != 3 {
        return;
    }
    map_rgb(
        data,
        #[inline(always)]
        |r, g, b| {
            let gray = (1.0 - factor) * (LUMA[0] * r + LUMA[1] * g + LUMA[2] * b);
            (gray + factor * r, gray + factor * g, gray + factor * b)
        },
    );
}

/// Gray in all three channels: saturation 0.
#[inline(always)]
pub(crate) fn grayscale(data: &mut [u8], channels: usize) {
    saturation(data, channels, 0.0);
}

/// `255 (v / 255)^gamma`.
#[inline(always)]
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
    let mut h = if v == r {
        hr
    } else if v == g {
        hg
    } else {
        hb
    };
    h = if delta > 0.0 { h } else { 0.0 };
    let s = if v > 0.0 { delta / v } else { 0.0 };
    // shifts
    let mut h = h / 6.0 + dh;
    h -= h.floor();
    let s = (s + ds).clamp(0.0, 1.0);
    let v = (v + dv).clamp(0.0, 1.0);
    // back: channel n takes v - v s max(0, min(k, 4 - k, 1)), k = (n + 6h) mod 6
    #[inline(always)]
    fn channel(n: f32, h: f32, s: f32, v: f32) -> f32 {
        let mut k = n + 6.0 * h;
        k = if k >= 6.0 { k - 6.0 } else { k };
        v - v * s * k.min(4.0 - k).clamp(0.0, 1.0)
    }
    (
        channel(5.0, h, s, v),
        channel(3.0, h, s, v),
        channel(1.0, h, s, v),
    )
}

/// Hue, saturation and value shifts.
#[inline(always)]
pub(crate) fn hsv(data: &mut [u8], channels: usize, dh: f32, ds: f32, dv: f32) {
    if channels != 3 {
        // gray: only the value shift means anything
        linear(data, 1.0, dv * 255.0);
        return;
    }
    map_rgb(
        data,
        #[inline(always)]
        |r, g, b| {
            let k = 1.0 / 255.0;
            let (r, g, b) = hsv_shift(r * k, g * k, b * k, dh, ds, dv);
            (r * 255.0, g * 255.0, b * 255.0)
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_round_trip_and_known_hues() {
        for &(r, g, b) in &[
            (1.0, 0.0, 0.0),
            (0.2, 0.7, 0.4),
            (0.5, 0.5, 0.5),
            (0.0, 0.0, 0.0),
            (0.9, 0.1, 0.8),
        ] {
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

//! Shared fixtures for the augmentation tests.
#![allow(dead_code)]

use rensa_augment::Image;

/// A smooth RGB test picture with edges: gradients, a disc and a bar.
pub fn picture(w: usize, h: usize) -> Image {
    let mut data = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let d = ((fx - 0.6).powi(2) + (fy - 0.4).powi(2)).sqrt();
            let disc = if d < 0.25 { 1.0 } else { 0.0 };
            let bar = if (0.15..0.3).contains(&fx) { 1.0 } else { 0.0 };
            let r = 40.0 + 180.0 * fx * (1.0 - disc) + 200.0 * disc;
            let g = 30.0 + 200.0 * fy * (1.0 - bar) + 20.0 * disc;
            let b = 90.0 + 120.0 * (1.0 - fx) * fy + 130.0 * bar;
            data.extend([r, g, b].map(|v: f32| v.clamp(0.0, 255.0) as u8));
        }
    }
    Image::new(w, h, 3, data).unwrap()
}

/// Differences between two equally long sample lists, in 0..255 units: (mean, max, share above 4).
pub fn diff_stats(a: &[f32], b: &[f32]) -> (f32, f32, f32) {
    assert_eq!(a.len(), b.len());
    let d: Vec<f32> = a.iter().zip(b).map(|(x, y)| (x - y).abs()).collect();
    let mean = d.iter().sum::<f32>() / d.len() as f32;
    let max = d.iter().cloned().fold(0.0, f32::max);
    let above = d.iter().filter(|&&v| v > 4.0).count() as f32 / d.len() as f32;
    (mean, max, above)
}

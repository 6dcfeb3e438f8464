//! Contact sheets: many images in one grid, as a PNG (the `show_images` helper of the
//! tf.image data-augmentation exercise draws the same grid with matplotlib subplots).

use crate::image::Image;

/// Lays `images` out in an `n x n` grid, `n` the smallest with `n^2 >= len` (as the
/// exercise's `show_images`), with `gap` pixels of `background` between cells. Images of
/// different sizes are centred in cells of the largest size; gray images are shown as RGB.
pub fn contact_sheet(images: &[Image], gap: usize, background: u8) -> Image {
    let count = images.len().max(1);
    let mut n = 1;
    while n * n < count {
        n += 1;
    }
    let cols = n;
    let rows = count.div_ceil(cols);
    let cw = images.iter().map(Image::width).max().unwrap_or(1);
    let ch = images.iter().map(Image::height).max().unwrap_or(1);
    let (w, h) = (cols * cw + (cols + 1) * gap, rows * ch + (rows + 1) * gap);
    let mut out = vec![background; w * h * 3];
    for (i, img) in images.iter().enumerate() {
        let img = img.to_rgb();
        let (col, row) = (i % cols, i / cols);
        let x0 = gap + col * (cw + gap) + (cw - img.width()) / 2;
        let y0 = gap + row * (ch + gap) + (ch - img.height()) / 2;
        for y in 0..img.height() {
            let src = &img.data()[y * img.width() * 3..(y + 1) * img.width() * 3];
            let o = ((y0 + y) * w + x0) * 3;
            out[o..o + src.len()].copy_from_slice(src);
        }
    }
    Image::from_parts(w, h, 3, out)
}

//! The augmentation example's parts: the demonstration list (one contact sheet per operation)
//! and the sheet writer shared by the per-operation and pipeline sheets.

use anyhow::{Context, Result};
use rensa_augment::{Image, Pipeline, Plan, contact_sheet};
use std::path::Path;
use std::time::Instant;

/// The pipeline shown when none is given: the left-right flip of the tf.image augmentation
/// exercise (`tf.image.random_flip_left_right`) plus the usual training recipe.
pub const DEFAULT_PIPELINE: &str = "horizontal_flip affine(rotate=[-20,20], translate_x=[-0.1,0.1], translate_y=[-0.1,0.1], scale=[0.9,1.1]) color_jitter(brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05) grayscale(p=0.1) erasing(p=0.3)";

/// One demonstration per operation, `(file stem, pipeline)`, with ranges wide enough to see;
/// crop and resize sizes follow the image's.
pub fn demonstrations(width: usize, height: usize) -> Vec<(String, String)> {
    // (at least a pixel: a 1-pixel side keeps its pixel)
    let (cw, ch) = ((width * 3 / 5).max(1), (height * 3 / 5).max(1));
    let list = [
        ("horizontal_flip", "horizontal_flip".to_string()),
        ("vertical_flip", "vertical_flip".to_string()),
        ("rot90", "rot90(p=1)".to_string()),
        ("rotate", "rotate(limit=30)".to_string()),
        ("shift", "shift(limit=0.2)".to_string()),
        ("zoom", "zoom(range=[0.6,1.4])".to_string()),
        ("shear", "shear(limit=20)".to_string()),
        (
            "affine",
            "affine(rotate=[-25,25], translate_x=[-0.1,0.1], translate_y=[-0.1,0.1], scale=[0.8,1.2], shear_x=[-10,10], border=\"reflect\")".to_string(),
        ),
        ("random_crop", format!("random_crop(width={cw}, height={ch})")),
        ("center_crop", format!("center_crop(width={cw}, height={ch})")),
        (
            "random_resized_crop",
            format!("random_resized_crop(width={width}, height={height})"),
        ),
        (
            "resize_nearest",
            format!(
                "resize(width={}, height={}, interp=\"nearest\") resize(width={width}, height={height}, interp=\"nearest\")",
                (width / 12).max(1),
                (height / 12).max(1)
            ),
        ),
        (
            "pad",
            format!(
                "one_of(steps=[{{\"op\":\"pad\",\"left\":{p},\"right\":{p},\"top\":{p},\"bottom\":{p},\"border\":\"reflect\"}},{{\"op\":\"pad\",\"left\":{p},\"right\":{p},\"top\":{p},\"bottom\":{p},\"border\":\"edge\"}},{{\"op\":\"pad\",\"left\":{p},\"right\":{p},\"top\":{p},\"bottom\":{p},\"border\":{{\"constant\":128}}}}])",
                p = width.min(height) / 5
            ),
        ),
        ("brightness", "brightness(range=[0.4,1.6])".to_string()),
        ("contrast", "contrast(range=[0.3,1.7])".to_string()),
        ("saturation", "saturation(range=[0.0,2.0])".to_string()),
        ("hue", "hue(range=[-0.5,0.5])".to_string()),
        ("color_jitter", "color_jitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)".to_string()),
        ("brightness_contrast", "brightness_contrast(brightness=0.3, contrast=0.3)".to_string()),
        ("hue_saturation_value", "hue_saturation_value".to_string()),
        ("grayscale", "grayscale(p=0.5)".to_string()),
        ("gamma", "gamma(range=[0.4,2.5])".to_string()),
        ("gaussian_blur", "gaussian_blur(range=[0.5,4.0])".to_string()),
        ("gaussian_noise", "gaussian_noise(std=[0.03,0.2])".to_string()),
        ("erasing", "erasing(holes=[1,4])".to_string()),
    ];
    list.into_iter().map(|(n, s)| (n.to_string(), s)).collect()
}

/// What one sheet took.
pub struct SheetReport {
    /// The file written.
    pub file: String,
    /// Variants on it.
    pub count: usize,
    /// Mean augmentation time per image, in microseconds (CPU path).
    pub micros_per_image: f64,
}

/// Augments `img` `count` times with `pipeline` (samples `0..count` of epoch 0), writes the
/// contact sheet to `out/<stem>.png` and returns the plans drawn.
pub fn write_sheet(
    pipeline: &Pipeline,
    img: &Image,
    count: usize,
    out: &Path,
    stem: &str,
) -> Result<(SheetReport, Vec<Plan>)> {
    let start = Instant::now();
    let plans: Vec<Plan> = (0..count as u64)
        .map(|i| pipeline.plan(img.size(), 0, i))
        .collect::<rensa_augment::Result<_>>()
        .with_context(|| format!("drawing {stem}"))?;
    let variants: Vec<Image> = plans
        .iter()
        .map(|p| p.apply(img))
        .collect::<rensa_augment::Result<_>>()?;
    let micros = start.elapsed().as_secs_f64() * 1e6 / count as f64;
    let file = out.join(format!("{stem}.png"));
    contact_sheet(&variants, 4, 255).save(&file)?;
    Ok((
        SheetReport {
            file: file.display().to_string(),
            count,
            micros_per_image: micros,
        },
        plans,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demonstration_and_the_default_pipeline_parse_and_run() {
        let img = Image::filled(40, 30, 3, 90).unwrap();
        for (name, spec) in demonstrations(40, 30) {
            let p = Pipeline::parse(&spec, 0).unwrap_or_else(|e| panic!("{name}: {e}"));
            p.apply(&img, 0, 1)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let p = Pipeline::parse(DEFAULT_PIPELINE, 0).unwrap();
        let dir =
            std::env::temp_dir().join(format!("rensa-augment-example-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (report, plans) = write_sheet(&p, &img, 5, &dir, "pipeline").unwrap();
        assert_eq!(plans.len(), 5);
        let sheet = Image::open(&report.file).unwrap();
        // 3x3 grid for 5 images (n x n with n^2 >= count, as `show_images`), 4 px gaps
        assert_eq!(
            (sheet.width(), sheet.height()),
            (3 * 40 + 4 * 4, 2 * 30 + 3 * 4)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

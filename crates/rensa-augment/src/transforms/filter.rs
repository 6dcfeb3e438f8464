//! Transforms that filter or overwrite pixels: Gaussian blur, Gaussian noise and random
//! erasing.

use super::Transform;
use super::support::{factor_op, param};
use crate::error::{Result, check_p, check_range};
use crate::image::Size;
use crate::ops::Op;
use crate::rng::SampleRng;
use serde::{Deserialize, Serialize};

factor_op!(
    /// Gaussian blur with a standard deviation in pixels: default 0.1 to 2.0 (torchvision).
    GaussianBlur, (0.1, 2.0), (0.01, 50.0), |f| Op::Blur { sigma: f }
);

/// Additive Gaussian noise with a standard deviation drawn from `std` (units of 255).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaussianNoise {
    /// Probability of applying it (default 1).
    pub p: f64,
    /// Standard deviation range, as a fraction of 255 (default 0.2 to 0.44, albumentations').
    pub std: (f64, f64),
    /// Mean range, as a fraction of 255 (default 0).
    pub mean: (f64, f64),
    /// Independent noise per channel (default) or one value per pixel.
    pub per_channel: bool,
}
impl Default for GaussianNoise {
    fn default() -> Self {
        Self {
            p: 1.0,
            std: (0.2, 0.44),
            mean: (0.0, 0.0),
            per_channel: true,
        }
    }
}
impl Transform for GaussianNoise {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        let op = Self::NAME;
        check_p(op, self.p)?;
        check_range(op, "std", self.std, 0.0, 10.0)?;
        check_range(op, "mean", self.mean, -1.0, 1.0)
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if rng.chance(self.p) {
            let std = rng.uniform(self.std.0, self.std.1) as f32;
            let mean = rng.uniform(self.mean.0, self.mean.1) as f32;
            ops.push(Op::Noise {
                std,
                mean,
                per_channel: self.per_channel,
                seed: rng.seed(),
            });
        }
        Ok(size)
    }
}

/// Random erasing / cutout (albumentations' CoarseDropout): a random number of rectangles with
/// random sides (fractions of the image's) filled with a constant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Erasing {
    /// Probability of applying it (default 1).
    pub p: f64,
    /// How many rectangles (default 1 to 1).
    pub holes: (usize, usize),
    /// Rectangle height as a fraction of the image height (default 0.1 to 0.2).
    pub height: (f64, f64),
    /// Rectangle width as a fraction of the image width (default 0.1 to 0.2).
    pub width: (f64, f64),
    /// Fill value (default 0).
    pub fill: u8,
}
impl Default for Erasing {
    fn default() -> Self {
        Self {
            p: 1.0,
            holes: (1, 1),
            height: (0.1, 0.2),
            width: (0.1, 0.2),
            fill: 0,
        }
    }
}
impl Transform for Erasing {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        let op = Self::NAME;
        check_p(op, self.p)?;
        if self.holes.0 > self.holes.1 || self.holes.1 > 10_000 {
            return Err(param(
                op,
                "holes",
                "must be an ordered range of at most 10000",
            ));
        }
        check_range(op, "height", self.height, 0.0, 1.0)?;
        check_range(op, "width", self.width, 0.0, 1.0)
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if !rng.chance(self.p) {
            return Ok(size);
        }
        let n = rng.int(self.holes.0, self.holes.1);
        let rects = (0..n)
            .map(|_| {
                let h = ((rng.uniform(self.height.0, self.height.1) * size.height as f64).round()
                    as usize)
                    .clamp(1, size.height);
                let w = ((rng.uniform(self.width.0, self.width.1) * size.width as f64).round()
                    as usize)
                    .clamp(1, size.width);
                let x = rng.int(0, size.width - w);
                let y = rng.int(0, size.height - h);
                [x, y, w, h]
            })
            .collect();
        ops.push(Op::Erase {
            rects,
            fill: self.fill,
        });
        Ok(size)
    }
}

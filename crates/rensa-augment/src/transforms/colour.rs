//! Colour transforms: brightness, contrast, saturation, hue, gamma, their combinations
//! (torchvision's colour jitter, albumentations' brightness-contrast and HSV shifts) and
//! grayscale. Each becomes per-image factors.

use super::Transform;
use super::support::{factor_op, param};
use crate::error::{Result, check_p, check_range};
use crate::image::Size;
use crate::ops::Op;
use crate::rng::SampleRng;
use serde::{Deserialize, Serialize};

factor_op!(
    /// Multiply by a factor (torchvision's brightness): default 0.8 to 1.2.
    Brightness, (0.8, 1.2), (0.0, 10.0), |f| Op::Linear { alpha: f, beta: 0.0 }
);
factor_op!(
    /// Blend with the mean gray level by a factor: default 0.8 to 1.2.
    Contrast, (0.8, 1.2), (0.0, 10.0), |f| Op::Contrast { factor: f }
);
factor_op!(
    /// Blend with each pixel's gray level by a factor: default 0.8 to 1.2.
    Saturation, (0.8, 1.2), (0.0, 10.0), |f| Op::Saturation { factor: f }
);
factor_op!(
    /// Rotate the hue by a fraction of a turn: default -0.05 to 0.05.
    Hue, (-0.05, 0.05), (-0.5, 0.5), |f| Op::Hsv { hue: f, saturation: 0.0, value: 0.0 }
);
factor_op!(
    /// Gamma correction `255 (v/255)^gamma`: default 0.8 to 1.2.
    Gamma, (0.8, 1.2), (0.01, 100.0), |f| Op::Gamma { gamma: f }
);

/// torchvision's ColorJitter: brightness, contrast, saturation and hue factors drawn from
/// `[1 - b, 1 + b]` (hue: `[-h, h]` turns), applied in a random order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ColorJitter {
    /// Probability of applying it (default 1).
    pub p: f64,
    /// Brightness spread (default 0.2).
    pub brightness: f64,
    /// Contrast spread (default 0.2).
    pub contrast: f64,
    /// Saturation spread (default 0.2).
    pub saturation: f64,
    /// Hue spread in turns, at most 0.5 (default 0.1).
    pub hue: f64,
}
impl Default for ColorJitter {
    fn default() -> Self {
        Self {
            p: 1.0,
            brightness: 0.2,
            contrast: 0.2,
            saturation: 0.2,
            hue: 0.1,
        }
    }
}

impl Transform for ColorJitter {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        let op = Self::NAME;
        check_p(op, self.p)?;
        for (name, v, max) in [
            ("brightness", self.brightness, 10.0),
            ("contrast", self.contrast, 10.0),
            ("saturation", self.saturation, 10.0),
            ("hue", self.hue, 0.5),
        ] {
            if !(0.0..=max).contains(&v) {
                return Err(param(op, name, format!("= {v} must be in [0, {max}]")));
            }
        }
        Ok(())
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if !rng.chance(self.p) {
            return Ok(size);
        }
        let spread = |rng: &mut SampleRng, s: f64| rng.uniform((1.0 - s).max(0.0), 1.0 + s) as f32;
        let b = spread(rng, self.brightness);
        let c = spread(rng, self.contrast);
        let s = spread(rng, self.saturation);
        let h = rng.symmetric(self.hue) as f32;
        for i in rng.permutation(4) {
            ops.push(match i {
                0 => Op::Linear {
                    alpha: b,
                    beta: 0.0,
                },
                1 => Op::Contrast { factor: c },
                2 => Op::Saturation { factor: s },
                _ => Op::Hsv {
                    hue: h,
                    saturation: 0.0,
                    value: 0.0,
                },
            });
        }
        Ok(size)
    }
}

/// albumentations' RandomBrightnessContrast: `v * alpha + beta * 255` with
/// `alpha` in `1 ± contrast` and `beta` in `± brightness`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrightnessContrast {
    /// Probability of applying it (default 1).
    pub p: f64,
    /// Brightness offset limit, as a fraction of 255 (default 0.2).
    pub brightness: f64,
    /// Contrast gain limit (default 0.2).
    pub contrast: f64,
}
impl Default for BrightnessContrast {
    fn default() -> Self {
        Self {
            p: 1.0,
            brightness: 0.2,
            contrast: 0.2,
        }
    }
}
impl Transform for BrightnessContrast {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        let op = Self::NAME;
        check_p(op, self.p)?;
        check_range(op, "brightness", (0.0, self.brightness), 0.0, 1.0)?;
        check_range(op, "contrast", (0.0, self.contrast), 0.0, 1.0)
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if rng.chance(self.p) {
            let alpha = (1.0 + rng.symmetric(self.contrast)) as f32;
            let beta = rng.symmetric(self.brightness) as f32;
            ops.push(Op::Linear { alpha, beta });
        }
        Ok(size)
    }
}

/// albumentations' HueSaturationValue: shifts in HSV space (hue in turns, saturation and value
/// on a 0..1 scale), each drawn from `± limit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HueSaturationValue {
    /// Probability of applying it (default 1).
    pub p: f64,
    /// Hue shift limit in turns (default 20/180, albumentations' 20 OpenCV hue units).
    pub hue: f64,
    /// Saturation shift limit (default 30/255).
    pub saturation: f64,
    /// Value shift limit (default 20/255).
    pub value: f64,
}
impl Default for HueSaturationValue {
    fn default() -> Self {
        Self {
            p: 1.0,
            hue: 20.0 / 180.0,
            saturation: 30.0 / 255.0,
            value: 20.0 / 255.0,
        }
    }
}
impl Transform for HueSaturationValue {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        let op = Self::NAME;
        check_p(op, self.p)?;
        check_range(op, "hue", (0.0, self.hue), 0.0, 0.5)?;
        check_range(op, "saturation", (0.0, self.saturation), 0.0, 1.0)?;
        check_range(op, "value", (0.0, self.value), 0.0, 1.0)
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if rng.chance(self.p) {
            let hue = rng.symmetric(self.hue) as f32;
            let saturation = rng.symmetric(self.saturation) as f32;
            let value = rng.symmetric(self.value) as f32;
            ops.push(Op::Hsv {
                hue,
                saturation,
                value,
            });
        }
        Ok(size)
    }
}

/// Convert to gray (kept as three equal channels).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grayscale {
    /// Probability of applying it (default 0.1, as torchvision's RandomGrayscale).
    #[serde(default = "tenth")]
    pub p: f64,
}
fn tenth() -> f64 {
    0.1
}
impl Default for Grayscale {
    fn default() -> Self {
        Self { p: 0.1 }
    }
}
impl Transform for Grayscale {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        check_p(Self::NAME, self.p)
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if rng.chance(self.p) {
            ops.push(Op::Grayscale);
        }
        Ok(size)
    }
}

//! Transforms that change the size: random and centre crops, torchvision's random resized crop,
//! resize and padding.

use super::support::{MAX_SIDE, check_side, param};
use super::{Step, Transform};
use crate::error::{AugmentError, Result, check_range};
use crate::image::Size;
use crate::ops::{Border, Interp, Op};
use crate::rng::SampleRng;
use serde::{Deserialize, Serialize};

/// A crop window of a fixed size at a random position (`random = true`) or in the centre.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crop {
    /// Window width.
    pub width: usize,
    /// Window height.
    pub height: usize,
    /// Random position (default) or centred.
    #[serde(default = "yes")]
    pub random: bool,
}
fn yes() -> bool {
    true
}

impl Crop {
    /// A random `width x height` window.
    pub fn random(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            random: true,
        }
    }
    /// The centred `width x height` window.
    pub fn center(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            random: false,
        }
    }
    /// `random_crop` or `center_crop`, as the step it stands for.
    fn op_name(&self) -> &'static str {
        Step::from(self.clone()).name()
    }
}

impl Transform for Crop {
    fn name(&self) -> &'static str {
        self.op_name()
    }
    fn validate(&self) -> Result<()> {
        check_side(self.op_name(), self.width, self.height)
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if self.width > size.width || self.height > size.height {
            return Err(AugmentError::CropTooLarge {
                op: self.op_name(),
                crop_width: self.width,
                crop_height: self.height,
                width: size.width,
                height: size.height,
            });
        }
        let (x, y) = if self.random {
            (
                rng.int(0, size.width - self.width),
                rng.int(0, size.height - self.height),
            )
        } else {
            (
                (size.width - self.width) / 2,
                (size.height - self.height) / 2,
            )
        };
        ops.push(Op::Crop {
            x,
            y,
            width: self.width,
            height: self.height,
        });
        Ok(Size::new(self.width, self.height))
    }
}

/// torchvision's RandomResizedCrop: a window with a random share of the area (`scale`) and a
/// random aspect ratio (`ratio`, log-uniform), resized to `width x height`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomResizedCrop {
    /// Output width.
    pub width: usize,
    /// Output height.
    pub height: usize,
    /// Share of the image area (default 0.08 to 1).
    #[serde(default = "rrc_scale")]
    pub scale: (f64, f64),
    /// Aspect ratio width/height (default 3/4 to 4/3).
    #[serde(default = "rrc_ratio")]
    pub ratio: (f64, f64),
    /// Interpolation.
    #[serde(default)]
    pub interp: Interp,
}
fn rrc_scale() -> (f64, f64) {
    (0.08, 1.0)
}
fn rrc_ratio() -> (f64, f64) {
    (3.0 / 4.0, 4.0 / 3.0)
}

impl RandomResizedCrop {
    /// The default ranges with output size `width x height`.
    pub fn new(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            scale: rrc_scale(),
            ratio: rrc_ratio(),
            interp: Interp::Bilinear,
        }
    }
}

impl Transform for RandomResizedCrop {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        let op = Self::NAME;
        check_side(op, self.width, self.height)?;
        check_range(op, "scale", self.scale, 1e-6, 1.0)?;
        check_range(op, "ratio", self.ratio, 1e-3, 1e3)
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        let (w, h) = (size.width as f64, size.height as f64);
        let area = w * h;
        let (lr0, lr1) = (self.ratio.0.ln(), self.ratio.1.ln());
        let mut window = None;
        for _ in 0..10 {
            let target = area * rng.uniform(self.scale.0, self.scale.1);
            let ar = rng.uniform(lr0, lr1).exp();
            let cw = (target * ar).sqrt().round() as usize;
            let ch = (target / ar).sqrt().round() as usize;
            if cw >= 1 && ch >= 1 && cw <= size.width && ch <= size.height {
                window = Some((cw, ch));
                break;
            }
        }
        // Fallback (as torchvision): the central crop with the ratio clamped into range.
        let fallback = window.is_none();
        let (cw, ch) = window.unwrap_or_else(|| {
            let r = w / h;
            if r < self.ratio.0 {
                (
                    size.width,
                    ((w / self.ratio.0).round() as usize).clamp(1, size.height),
                )
            } else if r > self.ratio.1 {
                (
                    ((h * self.ratio.1).round() as usize).clamp(1, size.width),
                    size.height,
                )
            } else {
                (size.width, size.height)
            }
        });
        let (x, y) = if fallback {
            ((size.width - cw) / 2, (size.height - ch) / 2)
        } else {
            (rng.int(0, size.width - cw), rng.int(0, size.height - ch))
        };
        ops.push(Op::Crop {
            x,
            y,
            width: cw,
            height: ch,
        });
        Ok(push_resize(ops, self.width, self.height, self.interp))
    }
}

/// Appends a resize to `width x height` and returns that size.
fn push_resize(ops: &mut Vec<Op>, width: usize, height: usize, interp: Interp) -> Size {
    ops.push(Op::Resize {
        width,
        height,
        interp,
    });
    Size::new(width, height)
}

/// Resample to a fixed size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resize {
    /// New width.
    pub width: usize,
    /// New height.
    pub height: usize,
    /// Interpolation (default bilinear).
    #[serde(default)]
    pub interp: Interp,
}

impl Transform for Resize {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        check_side(Self::NAME, self.width, self.height)
    }
    fn plan(&self, _rng: &mut SampleRng, _size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        Ok(push_resize(ops, self.width, self.height, self.interp))
    }
}

/// Add borders of fixed widths.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pad {
    /// Columns added on the left.
    pub left: usize,
    /// Rows added on top.
    pub top: usize,
    /// Columns added on the right.
    pub right: usize,
    /// Rows added at the bottom.
    pub bottom: usize,
    /// What fills them (constant, reflect or edge).
    pub border: Border,
}
impl Default for Pad {
    fn default() -> Self {
        Self {
            left: 0,
            top: 0,
            right: 0,
            bottom: 0,
            border: Border::Constant(0),
        }
    }
}
impl Pad {
    /// `n` pixels on every side.
    pub fn all(n: usize, border: Border) -> Self {
        Self {
            left: n,
            top: n,
            right: n,
            bottom: n,
            border,
        }
    }
}

impl Transform for Pad {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        if [self.left, self.top, self.right, self.bottom]
            .iter()
            .any(|&v| v > MAX_SIDE)
        {
            return Err(param(
                Self::NAME,
                "left/top/right/bottom",
                format!("must be at most {MAX_SIDE}"),
            ));
        }
        Ok(())
    }
    fn plan(&self, _rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        let (l, t, r, b) = (self.left, self.top, self.right, self.bottom);
        if self.border == Border::Reflect && (l.max(r) >= size.width || t.max(b) >= size.height) {
            return Err(param(
                Self::NAME,
                "left/top/right/bottom",
                format!("reflect padding must be smaller than the image ({size})"),
            ));
        }
        let op = Op::Pad {
            left: l,
            top: t,
            right: r,
            bottom: b,
            border: self.border,
        };
        let out = op.output_size(size);
        ops.push(op);
        Ok(out)
    }
}

/// Parameters of `random_crop` and `center_crop`: the window size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CropSize {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

impl From<Crop> for Step {
    fn from(c: Crop) -> Step {
        let s = CropSize {
            width: c.width,
            height: c.height,
        };
        if c.random {
            Step::RandomCrop(s)
        } else {
            Step::CenterCrop(s)
        }
    }
}

//! Geometric transforms: flips, quarter turns, and the affine family (rotation, shift, zoom,
//! shear, or all at once), each folded into one resampling pass with its neighbours.

use super::Transform;
use super::support::{flip, half, one, param};
use crate::error::{Result, check_p, check_range};
use crate::image::Size;
use crate::ops::{Affine2, Border, Interp, Op};
use crate::rng::SampleRng;
use serde::{Deserialize, Serialize};

flip!(
    /// Mirror left-right (tf.image.random_flip_left_right).
    HorizontalFlip, Op::HorizontalFlip
);
flip!(
    /// Mirror top-bottom.
    VerticalFlip, Op::VerticalFlip
);

/// Rotate by a random number (1 to 3) of quarter turns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rot90 {
    /// Probability of applying it (default 0.5).
    #[serde(default = "half")]
    pub p: f64,
}
impl Default for Rot90 {
    fn default() -> Self {
        Self { p: 0.5 }
    }
}
impl Transform for Rot90 {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        check_p(Self::NAME, self.p)
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if !rng.chance(self.p) {
            return Ok(size);
        }
        let op = Op::Rot90 {
            k: rng.int(1, 3) as u8,
        };
        let out = op.output_size(size);
        ops.push(op);
        Ok(out)
    }
}

/// The largest `tan(shear_x) tan(shear_y)` an [`Affine`]'s ranges may draw (see its
/// `validate`): at 0.5 the shear halves the image's area.
pub const MAX_SHEAR_PRODUCT: f64 = 0.5;

/// Random affine map about the image centre: rotation, translation (shift), scale (zoom) and
/// shear, folded into one matrix and applied in one resampling pass. Each range is drawn
/// uniformly; `(0, 0)` ranges (and `(1, 1)` for scale) leave that part out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Affine {
    /// Probability of applying it (default 1).
    pub p: f64,
    /// Rotation in degrees, counter-clockwise positive.
    pub rotate: (f64, f64),
    /// Horizontal shift as a fraction of the width.
    pub translate_x: (f64, f64),
    /// Vertical shift as a fraction of the height.
    pub translate_y: (f64, f64),
    /// Scale factor (zoom; > 1 enlarges).
    pub scale: (f64, f64),
    /// Horizontal shear in degrees.
    pub shear_x: (f64, f64),
    /// Vertical shear in degrees. With both shears, `tan(shear_x) tan(shear_y)` may not reach
    /// above [`MAX_SHEAR_PRODUCT`] anywhere in the ranges (`shear(limit)`: a limit of at most
    /// 35.26°): the map would mirror the image or squeeze it towards a line.
    pub shear_y: (f64, f64),
    /// Interpolation.
    pub interp: Interp,
    /// What shows where the source lies outside the image.
    pub border: Border,
}

impl Default for Affine {
    fn default() -> Self {
        Self {
            p: 1.0,
            rotate: (0.0, 0.0),
            translate_x: (0.0, 0.0),
            translate_y: (0.0, 0.0),
            scale: (1.0, 1.0),
            shear_x: (0.0, 0.0),
            shear_y: (0.0, 0.0),
            interp: Interp::Bilinear,
            border: Border::Constant(0),
        }
    }
}

impl Affine {
    /// Rotation by up to `limit` degrees either way.
    pub fn rotate(limit: f64) -> Self {
        Self {
            rotate: (-limit, limit),
            ..Self::default()
        }
    }
    /// Shift by up to `limit` of the width and height either way.
    pub fn shift(limit: f64) -> Self {
        Self {
            translate_x: (-limit, limit),
            translate_y: (-limit, limit),
            ..Self::default()
        }
    }
    /// Zoom by a factor in `range`.
    pub fn zoom(range: (f64, f64)) -> Self {
        Self {
            scale: range,
            ..Self::default()
        }
    }
    /// Shear by up to `limit` degrees either way, in both directions.
    pub fn shear(limit: f64) -> Self {
        Self {
            shear_x: (-limit, limit),
            shear_y: (-limit, limit),
            ..Self::default()
        }
    }

    /// The forward map (input to output coordinates) for drawn parameters.
    pub fn matrix(
        size: Size,
        rotate: f64,
        tx: f64,
        ty: f64,
        scale: f64,
        shx: f64,
        shy: f64,
    ) -> Affine2 {
        let (cx, cy) = (
            (size.width as f64 - 1.0) / 2.0,
            (size.height as f64 - 1.0) / 2.0,
        );
        let (s, c) = rotate.to_radians().sin_cos();
        // rotation (counter-clockwise on screen, y down) * scale * shear
        let r = [c * scale, s * scale, -s * scale, c * scale];
        let (kx, ky) = (shx.to_radians().tan(), shy.to_radians().tan());
        let a = r[0] + r[1] * ky;
        let b = r[0] * kx + r[1];
        let d = r[2] + r[3] * ky;
        let e = r[2] * kx + r[3];
        let tx = tx * size.width as f64;
        let ty = ty * size.height as f64;
        Affine2([
            a,
            b,
            cx + tx - a * cx - b * cy,
            d,
            e,
            cy + ty - d * cx - e * cy,
        ])
    }
}

impl Transform for Affine {
    fn name(&self) -> &'static str {
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        let op = Self::NAME;
        check_p(op, self.p)?;
        check_range(op, "rotate", self.rotate, -360.0, 360.0)?;
        check_range(op, "translate_x", self.translate_x, -1.0, 1.0)?;
        check_range(op, "translate_y", self.translate_y, -1.0, 1.0)?;
        check_range(op, "scale", self.scale, 1e-3, 1e3)?;
        check_range(op, "shear_x", self.shear_x, -80.0, 80.0)?;
        check_range(op, "shear_y", self.shear_y, -80.0, 80.0)?;
        // The shear part is [[1, tan x], [tan y, 1]] (albumentations' form, the same for one
        // axis as torchvision's), whose determinant 1 - tan x tan y mirrors the image at 0 or
        // below and squeezes it onto a line near 0: shears in both axes may not draw a product
        // of tangents above MAX_SHEAR_PRODUCT (the image keeps at least half its area).
        let tan = |d: f64| d.to_radians().tan();
        let (x, y) = (self.shear_x, self.shear_y);
        let most = [x.0, x.1]
            .into_iter()
            .flat_map(|a| [y.0, y.1].map(|b| tan(a) * tan(b)))
            .fold(f64::NEG_INFINITY, f64::max);
        if most > MAX_SHEAR_PRODUCT {
            return Err(param(
                op,
                "shear_x/shear_y",
                format!(
                    "= ({}, {}) / ({}, {}) can draw tan(shear_x) tan(shear_y) = {most:.3}, above \
                     {MAX_SHEAR_PRODUCT}: the map would squeeze the image towards a line or \
                     mirror it; narrow one of the ranges (both within ±35.26°, or one of them 0)",
                    x.0, x.1, y.0, y.1
                ),
            ));
        }
        Ok(())
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if !rng.chance(self.p) {
            return Ok(size);
        }
        let rot = rng.uniform(self.rotate.0, self.rotate.1);
        let tx = rng.uniform(self.translate_x.0, self.translate_x.1);
        let ty = rng.uniform(self.translate_y.0, self.translate_y.1);
        let sc = rng.uniform(self.scale.0, self.scale.1);
        let shx = rng.uniform(self.shear_x.0, self.shear_x.1);
        let shy = rng.uniform(self.shear_y.0, self.shear_y.1);
        let inverse = Affine::matrix(size, rot, tx, ty, sc, shx, shy)
            .inverse()
            .ok_or_else(|| param(Self::NAME, "shear", "makes the map singular"))?;
        ops.push(Op::Affine {
            inverse,
            interp: self.interp,
            border: self.border,
        });
        Ok(size)
    }
}

/// Parameters of the single-part affine steps (`rotate`, `shift`, `shear`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limited {
    /// Probability of applying it (default 1).
    #[serde(default = "one")]
    pub p: f64,
    /// The limit either way.
    pub limit: f64,
    /// Interpolation.
    #[serde(default)]
    pub interp: Interp,
    /// What shows where the source lies outside the image.
    #[serde(default)]
    pub border: Border,
}

/// Parameters of `zoom`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ranged {
    /// Probability of applying it (default 1).
    #[serde(default = "one")]
    pub p: f64,
    /// The scale range.
    pub range: (f64, f64),
    /// Interpolation.
    #[serde(default)]
    pub interp: Interp,
    /// What shows where the source lies outside the image.
    #[serde(default)]
    pub border: Border,
}

impl Limited {
    fn affine(&self) -> Affine {
        Affine {
            p: self.p,
            interp: self.interp,
            border: self.border,
            ..Affine::default()
        }
    }
    /// The [`Affine`] of `rotate`: up to `limit` degrees either way.
    pub(crate) fn rotation(&self) -> Affine {
        Affine {
            rotate: (-self.limit, self.limit),
            ..self.affine()
        }
    }
    /// The [`Affine`] of `shift`: up to `limit` of the width and height either way.
    pub(crate) fn shift(&self) -> Affine {
        Affine {
            translate_x: (-self.limit, self.limit),
            translate_y: (-self.limit, self.limit),
            ..self.affine()
        }
    }
    /// The [`Affine`] of `shear`: up to `limit` degrees either way, in both directions.
    pub(crate) fn shear(&self) -> Affine {
        Affine {
            shear_x: (-self.limit, self.limit),
            shear_y: (-self.limit, self.limit),
            ..self.affine()
        }
    }
}

impl Ranged {
    /// The [`Affine`] of `zoom`: a scale factor in `range`.
    pub(crate) fn zoom(&self) -> Affine {
        Affine {
            p: self.p,
            scale: self.range,
            interp: self.interp,
            border: self.border,
            ..Affine::default()
        }
    }
}

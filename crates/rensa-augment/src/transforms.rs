//! The transforms a pipeline is made of, their parameter ranges, and how each draws its
//! parameters. Every transform has a probability `p` of being applied. They deserialize from
//! pipeline files (`{"op": "rotate", "limit": 30}`), with defaults for every omitted field.

use crate::error::{AugmentError, Result, check_p, check_range};
use crate::image::Size;
use crate::ops::{Affine2, Border, Interp, Op};
use crate::rng::SampleRng;
use serde::{Deserialize, Serialize};

/// Something that turns into concrete operations once its random parameters are drawn.
pub trait Transform: Send + Sync + std::fmt::Debug {
    /// The operation's name in pipeline files.
    fn name(&self) -> &'static str;
    /// Checks the parameters (a pipeline calls this before any image is touched).
    fn validate(&self) -> Result<()>;
    /// Draws the parameters for an image of `size` from `rng`, appends the resulting operations
    /// to `ops` and returns the size after them. Fails when the image cannot take the
    /// transform (a crop larger than the image).
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size>;
}

fn half() -> f64 {
    0.5
}
fn one() -> f64 {
    1.0
}

/// The largest side a transform may produce (a guard against sizes that cannot be allocated).
pub const MAX_SIDE: usize = 1 << 16;

fn check_side(op: &'static str, width: usize, height: usize) -> Result<()> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(param(
            op,
            "width/height",
            format!("= {width}x{height} must be between 1 and {MAX_SIDE}"),
        ));
    }
    Ok(())
}

fn param(op: &'static str, name: &'static str, message: impl Into<String>) -> AugmentError {
    AugmentError::Parameter {
        op,
        name,
        message: message.into(),
    }
}

macro_rules! flip {
    ($(#[$doc:meta])* $name:ident, $op:literal, $variant:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Probability of applying it (default 0.5).
            #[serde(default = "half")]
            pub p: f64,
        }
        impl Default for $name {
            fn default() -> Self {
                Self { p: 0.5 }
            }
        }
        impl Transform for $name {
            fn name(&self) -> &'static str {
                $op
            }
            fn validate(&self) -> Result<()> {
                check_p($op, self.p)
            }
            fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
                if rng.chance(self.p) {
                    ops.push($variant);
                }
                Ok(size)
            }
        }
    };
}

flip!(
    /// Mirror left-right (tf.image.random_flip_left_right).
    HorizontalFlip, "horizontal_flip", Op::HorizontalFlip
);
flip!(
    /// Mirror top-bottom.
    VerticalFlip, "vertical_flip", Op::VerticalFlip
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
        "rot90"
    }
    fn validate(&self) -> Result<()> {
        check_p("rot90", self.p)
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
    /// Vertical shear in degrees.
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
        "affine"
    }
    fn validate(&self) -> Result<()> {
        let op = "affine";
        check_p(op, self.p)?;
        check_range(op, "rotate", self.rotate, -360.0, 360.0)?;
        check_range(op, "translate_x", self.translate_x, -1.0, 1.0)?;
        check_range(op, "translate_y", self.translate_y, -1.0, 1.0)?;
        check_range(op, "scale", self.scale, 1e-3, 1e3)?;
        check_range(op, "shear_x", self.shear_x, -80.0, 80.0)?;
        check_range(op, "shear_y", self.shear_y, -80.0, 80.0)
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
            .ok_or_else(|| param("affine", "shear", "makes the map singular"))?;
        ops.push(Op::Affine {
            inverse,
            interp: self.interp,
            border: self.border,
        });
        Ok(size)
    }
}

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
    fn op_name(&self) -> &'static str {
        if self.random {
            "random_crop"
        } else {
            "center_crop"
        }
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
        "random_resized_crop"
    }
    fn validate(&self) -> Result<()> {
        let op = "random_resized_crop";
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
        let x = rng.int(0, size.width - cw);
        let y = rng.int(0, size.height - ch);
        ops.push(Op::Crop {
            x,
            y,
            width: cw,
            height: ch,
        });
        ops.push(Op::Resize {
            width: self.width,
            height: self.height,
            interp: self.interp,
        });
        Ok(Size::new(self.width, self.height))
    }
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
        "resize"
    }
    fn validate(&self) -> Result<()> {
        check_side("resize", self.width, self.height)
    }
    fn plan(&self, _rng: &mut SampleRng, _size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        ops.push(Op::Resize {
            width: self.width,
            height: self.height,
            interp: self.interp,
        });
        Ok(Size::new(self.width, self.height))
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
        "pad"
    }
    fn validate(&self) -> Result<()> {
        if [self.left, self.top, self.right, self.bottom]
            .iter()
            .any(|&v| v > MAX_SIDE)
        {
            return Err(param(
                "pad",
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
                "pad",
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

macro_rules! factor_op {
    ($(#[$doc:meta])* $name:ident, $op:literal, $default:expr, $max:expr, |$f:ident| $make:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct $name {
            /// Probability of applying it (default 1).
            pub p: f64,
            /// The range the value is drawn from.
            pub range: (f64, f64),
        }
        impl Default for $name {
            fn default() -> Self {
                Self { p: 1.0, range: $default }
            }
        }
        impl Transform for $name {
            fn name(&self) -> &'static str {
                $op
            }
            fn validate(&self) -> Result<()> {
                check_p($op, self.p)?;
                check_range($op, "range", self.range, $max.0, $max.1)
            }
            fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
                if rng.chance(self.p) {
                    let $f = rng.uniform(self.range.0, self.range.1) as f32;
                    ops.push($make);
                }
                Ok(size)
            }
        }
    };
}

factor_op!(
    /// Multiply by a factor (torchvision's brightness): default 0.8 to 1.2.
    Brightness, "brightness", (0.8, 1.2), (0.0, 10.0), |f| Op::Linear { alpha: f, beta: 0.0 }
);
factor_op!(
    /// Blend with the mean gray level by a factor: default 0.8 to 1.2.
    Contrast, "contrast", (0.8, 1.2), (0.0, 10.0), |f| Op::Contrast { factor: f }
);
factor_op!(
    /// Blend with each pixel's gray level by a factor: default 0.8 to 1.2.
    Saturation, "saturation", (0.8, 1.2), (0.0, 10.0), |f| Op::Saturation { factor: f }
);
factor_op!(
    /// Rotate the hue by a fraction of a turn: default -0.05 to 0.05.
    Hue, "hue", (-0.05, 0.05), (-0.5, 0.5), |f| Op::Hsv { hue: f, saturation: 0.0, value: 0.0 }
);
factor_op!(
    /// Gamma correction `255 (v/255)^gamma`: default 0.8 to 1.2.
    Gamma, "gamma", (0.8, 1.2), (0.01, 100.0), |f| Op::Gamma { gamma: f }
);
factor_op!(
    /// Gaussian blur with a standard deviation in pixels: default 0.1 to 2.0 (torchvision).
    GaussianBlur, "gaussian_blur", (0.1, 2.0), (0.01, 50.0), |f| Op::Blur { sigma: f }
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
        "color_jitter"
    }
    fn validate(&self) -> Result<()> {
        let op = "color_jitter";
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
        "brightness_contrast"
    }
    fn validate(&self) -> Result<()> {
        let op = "brightness_contrast";
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
        "hue_saturation_value"
    }
    fn validate(&self) -> Result<()> {
        let op = "hue_saturation_value";
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
        "grayscale"
    }
    fn validate(&self) -> Result<()> {
        check_p("grayscale", self.p)
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if rng.chance(self.p) {
            ops.push(Op::Grayscale);
        }
        Ok(size)
    }
}

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
        "gaussian_noise"
    }
    fn validate(&self) -> Result<()> {
        let op = "gaussian_noise";
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
        "erasing"
    }
    fn validate(&self) -> Result<()> {
        let op = "erasing";
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

/// Per-channel normalisation `(v/255 - mean) / std`, applied when the image becomes floats; it
/// must be the pipeline's last step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Normalize {
    /// Per-channel mean (default ImageNet's).
    pub mean: [f32; 3],
    /// Per-channel standard deviation (default ImageNet's).
    pub std: [f32; 3],
}
impl Default for Normalize {
    fn default() -> Self {
        Self {
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        }
    }
}
impl Transform for Normalize {
    fn name(&self) -> &'static str {
        "normalize"
    }
    fn validate(&self) -> Result<()> {
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return Err(param(
                "normalize",
                "mean/std",
                "must be finite, std positive",
            ));
        }
        Ok(())
    }
    fn plan(&self, _rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        ops.push(Op::Normalize {
            mean: self.mean,
            std: self.std,
        });
        Ok(size)
    }
}

/// Several steps applied in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compose {
    /// The steps.
    pub steps: Vec<Step>,
}
impl Transform for Compose {
    fn name(&self) -> &'static str {
        "compose"
    }
    fn validate(&self) -> Result<()> {
        self.steps.iter().try_for_each(|s| s.validate())
    }
    fn plan(&self, rng: &mut SampleRng, mut size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        for s in &self.steps {
            size = s.plan(rng, size, ops)?;
        }
        Ok(size)
    }
}

/// Applies its steps (in order) with probability `p`, or none of them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomApply {
    /// Probability.
    pub p: f64,
    /// The steps.
    pub steps: Vec<Step>,
}
impl Transform for RandomApply {
    fn name(&self) -> &'static str {
        "random_apply"
    }
    fn validate(&self) -> Result<()> {
        check_p("random_apply", self.p)?;
        self.steps.iter().try_for_each(|s| s.validate())
    }
    fn plan(&self, rng: &mut SampleRng, mut size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        if rng.chance(self.p) {
            for s in &self.steps {
                size = s.plan(rng, size, ops)?;
            }
        }
        Ok(size)
    }
}

/// Applies one of its steps, chosen uniformly or by `weights`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OneOf {
    /// The candidates.
    pub steps: Vec<Step>,
    /// Relative weights (default equal).
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
}
impl Transform for OneOf {
    fn name(&self) -> &'static str {
        "one_of"
    }
    fn validate(&self) -> Result<()> {
        if self.steps.is_empty() {
            return Err(param("one_of", "steps", "must not be empty"));
        }
        if let Some(w) = &self.weights
            && (w.len() != self.steps.len()
                || w.iter().any(|v| !(v.is_finite() && *v >= 0.0))
                || w.iter().sum::<f64>() <= 0.0)
        {
            return Err(param(
                "one_of",
                "weights",
                "need one finite non-negative weight per step, not all zero",
            ));
        }
        self.steps.iter().try_for_each(|s| s.validate())
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        let i = match &self.weights {
            None => rng.int(0, self.steps.len() - 1),
            Some(w) => {
                let mut t = rng.uniform(0.0, w.iter().sum());
                let mut pick = w.len() - 1;
                for (i, v) in w.iter().enumerate() {
                    if t < *v {
                        pick = i;
                        break;
                    }
                    t -= v;
                }
                pick
            }
        };
        self.steps[i].plan(rng, size, ops)
    }
}

/// Any transform of this crate, as it appears in a pipeline file: `{"op": "<name>", ...}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// [`HorizontalFlip`].
    HorizontalFlip(HorizontalFlip),
    /// [`VerticalFlip`].
    VerticalFlip(VerticalFlip),
    /// [`Rot90`].
    Rot90(Rot90),
    /// [`Affine`] with all its parts.
    Affine(Affine),
    /// Rotation only: `limit` degrees either way.
    Rotate(Limited),
    /// Translation only: `limit` of the size either way.
    Shift(Limited),
    /// Scale only: `range`.
    Zoom(Ranged),
    /// Shear only: `limit` degrees either way.
    Shear(Limited),
    /// [`Crop`] at a random position.
    RandomCrop(Sized),
    /// [`Crop`] in the centre.
    CenterCrop(Sized),
    /// [`RandomResizedCrop`].
    RandomResizedCrop(RandomResizedCrop),
    /// [`Resize`].
    Resize(Resize),
    /// [`Pad`].
    Pad(Pad),
    /// [`Brightness`].
    Brightness(Brightness),
    /// [`Contrast`].
    Contrast(Contrast),
    /// [`Saturation`].
    Saturation(Saturation),
    /// [`Hue`].
    Hue(Hue),
    /// [`ColorJitter`].
    ColorJitter(ColorJitter),
    /// [`BrightnessContrast`].
    BrightnessContrast(BrightnessContrast),
    /// [`HueSaturationValue`].
    HueSaturationValue(HueSaturationValue),
    /// [`Grayscale`].
    Grayscale(Grayscale),
    /// [`Gamma`].
    Gamma(Gamma),
    /// [`GaussianBlur`].
    GaussianBlur(GaussianBlur),
    /// [`GaussianNoise`].
    GaussianNoise(GaussianNoise),
    /// [`Erasing`].
    Erasing(Erasing),
    /// [`Normalize`].
    Normalize(Normalize),
    /// [`Compose`].
    Compose(Compose),
    /// [`RandomApply`].
    RandomApply(RandomApply),
    /// [`OneOf`].
    OneOf(OneOf),
}

/// The operation names a pipeline file may use.
pub const OPERATIONS: &[&str] = &[
    "horizontal_flip",
    "vertical_flip",
    "rot90",
    "affine",
    "rotate",
    "shift",
    "zoom",
    "shear",
    "random_crop",
    "center_crop",
    "random_resized_crop",
    "resize",
    "pad",
    "brightness",
    "contrast",
    "saturation",
    "hue",
    "color_jitter",
    "brightness_contrast",
    "hue_saturation_value",
    "grayscale",
    "gamma",
    "gaussian_blur",
    "gaussian_noise",
    "erasing",
    "normalize",
    "compose",
    "random_apply",
    "one_of",
];

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

/// Parameters of the crops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sized {
    /// Width.
    pub width: usize,
    /// Height.
    pub height: usize,
}

impl Step {
    /// The affine transform a single-part affine step stands for.
    fn as_affine(&self) -> Option<Affine> {
        let base = |p, interp, border| Affine {
            p,
            interp,
            border,
            ..Affine::default()
        };
        Some(match self {
            Step::Rotate(l) => Affine {
                rotate: (-l.limit, l.limit),
                ..base(l.p, l.interp, l.border)
            },
            Step::Shift(l) => Affine {
                translate_x: (-l.limit, l.limit),
                translate_y: (-l.limit, l.limit),
                ..base(l.p, l.interp, l.border)
            },
            Step::Shear(l) => Affine {
                shear_x: (-l.limit, l.limit),
                shear_y: (-l.limit, l.limit),
                ..base(l.p, l.interp, l.border)
            },
            Step::Zoom(r) => Affine {
                scale: r.range,
                ..base(r.p, r.interp, r.border)
            },
            _ => return None,
        })
    }

    fn with<T>(&self, f: impl FnOnce(&dyn Transform) -> T) -> T {
        match self {
            Step::HorizontalFlip(t) => f(t),
            Step::VerticalFlip(t) => f(t),
            Step::Rot90(t) => f(t),
            Step::Affine(t) => f(t),
            Step::Rotate(_) | Step::Shift(_) | Step::Zoom(_) | Step::Shear(_) => {
                f(&self.as_affine().expect("an affine step"))
            }
            Step::RandomCrop(s) => f(&Crop::random(s.width, s.height)),
            Step::CenterCrop(s) => f(&Crop::center(s.width, s.height)),
            Step::RandomResizedCrop(t) => f(t),
            Step::Resize(t) => f(t),
            Step::Pad(t) => f(t),
            Step::Brightness(t) => f(t),
            Step::Contrast(t) => f(t),
            Step::Saturation(t) => f(t),
            Step::Hue(t) => f(t),
            Step::ColorJitter(t) => f(t),
            Step::BrightnessContrast(t) => f(t),
            Step::HueSaturationValue(t) => f(t),
            Step::Grayscale(t) => f(t),
            Step::Gamma(t) => f(t),
            Step::GaussianBlur(t) => f(t),
            Step::GaussianNoise(t) => f(t),
            Step::Erasing(t) => f(t),
            Step::Normalize(t) => f(t),
            Step::Compose(t) => f(t),
            Step::RandomApply(t) => f(t),
            Step::OneOf(t) => f(t),
        }
    }

    /// Whether this step is, or contains, a normalisation.
    pub(crate) fn has_normalize(&self) -> bool {
        match self {
            Step::Normalize(_) => true,
            Step::Compose(Compose { steps })
            | Step::RandomApply(RandomApply { steps, .. })
            | Step::OneOf(OneOf { steps, .. }) => steps.iter().any(Step::has_normalize),
            _ => false,
        }
    }
}

impl Transform for Step {
    fn name(&self) -> &'static str {
        self.with(|t| t.name())
    }
    fn validate(&self) -> Result<()> {
        self.with(|t| t.validate())
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        self.with(|t| t.plan(rng, size, ops))
    }
}

macro_rules! into_step {
    ($($t:ident),*) => {
        $(impl From<$t> for Step {
            fn from(t: $t) -> Step {
                Step::$t(t)
            }
        })*
    };
}
into_step!(
    HorizontalFlip,
    VerticalFlip,
    Rot90,
    Affine,
    RandomResizedCrop,
    Resize,
    Pad,
    Brightness,
    Contrast,
    Saturation,
    Hue,
    ColorJitter,
    BrightnessContrast,
    HueSaturationValue,
    Grayscale,
    Gamma,
    GaussianBlur,
    GaussianNoise,
    Erasing,
    Normalize,
    Compose,
    RandomApply,
    OneOf
);

impl From<Crop> for Step {
    fn from(c: Crop) -> Step {
        let s = Sized {
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

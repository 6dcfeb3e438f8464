//! The transforms a pipeline is made of, their parameter ranges, and how each draws its
//! parameters. Every transform has a probability `p` of being applied. They deserialize from
//! pipeline files (`{"op": "rotate", "limit": 30}`), with defaults for every omitted field.
//!
//! By family:
//! - [`geometry`]: flips, quarter turns, and the affine family (rotation, shift, zoom, shear);
//! - [`crop`]: random, centre and random resized crops, resize, padding;
//! - [`colour`]: brightness, contrast, saturation, hue, gamma, colour jitter,
//!   brightness-contrast, HSV shifts, grayscale;
//! - [`filter`]: Gaussian blur, Gaussian noise, random erasing;
//! - [`normalize`]: the normalisation that ends a pipeline;
//! - [`combine`]: [`Compose`], [`RandomApply`], [`OneOf`].
//!
//! # Adding a transform
//! A transform is a struct with serde's `Deserialize` (its pipeline-file parameters) and an
//! implementation of [`Transform`] (its checks and the [`Op`]s it draws), in its family's file,
//! plus one line in the table below. The table gives it its pipeline-file name, its variant of
//! [`Step`] (and so its JSON and TOML form and the command-line form of
//! [`Pipeline::parse`](crate::Pipeline::parse)), its place in [`OPERATIONS`], its `NAME` and
//! `From<T> for Step`. A transform that needs a new kind of operation also adds an [`Op`]
//! variant; the compiler then lists every executor that must handle it.

mod registry;
mod support;

pub mod colour;
pub mod combine;
pub mod crop;
pub mod filter;
pub mod geometry;
pub mod normalize;

pub use colour::{
    Brightness, BrightnessContrast, ColorJitter, Contrast, Gamma, Grayscale, Hue,
    HueSaturationValue, Saturation,
};
pub use combine::{Compose, OneOf, RandomApply};
pub use crop::{Crop, CropSize, Pad, RandomResizedCrop, Resize};
pub use filter::{Erasing, GaussianBlur, GaussianNoise};
pub use geometry::{Affine, HorizontalFlip, Limited, Ranged, Rot90, VerticalFlip};
pub use normalize::Normalize;
pub(crate) use support::size_problem;
pub use support::{DEFAULT_MAX_PIXELS, MAX_SIDE, max_pixels, set_max_pixels};

use crate::error::Result;
use crate::image::Size;
use crate::ops::Op;
use crate::rng::SampleRng;

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
    /// The steps this transform is made of: those of a combinator, none for the others.
    fn steps(&self) -> &[Step] {
        &[]
    }
}

// The table of transforms: pipeline-file name => variant of `Step`(parameters). Everything a
// pipeline file, the command line or a plan knows about a transform comes from here.
registry::steps! {
    /// [`HorizontalFlip`].
    "horizontal_flip" => HorizontalFlip(HorizontalFlip),
    /// [`VerticalFlip`].
    "vertical_flip" => VerticalFlip(VerticalFlip),
    /// [`Rot90`].
    "rot90" => Rot90(Rot90),
    /// [`Affine`] with all its parts.
    "affine" => Affine(Affine),
    /// Rotation only: `limit` degrees either way.
    "rotate" => Rotate(Limited) as |l| l.rotation(),
    /// Translation only: `limit` of the size either way.
    "shift" => Shift(Limited) as |l| l.shift(),
    /// Scale only: `range`.
    "zoom" => Zoom(Ranged) as |r| r.zoom(),
    /// Shear only: `limit` degrees either way.
    "shear" => Shear(Limited) as |l| l.shear(),
    /// [`Crop`] at a random position.
    "random_crop" => RandomCrop(CropSize) as |s| Crop::random(s.width, s.height),
    /// [`Crop`] in the centre.
    "center_crop" => CenterCrop(CropSize) as |s| Crop::center(s.width, s.height),
    /// [`RandomResizedCrop`].
    "random_resized_crop" => RandomResizedCrop(RandomResizedCrop),
    /// [`Resize`].
    "resize" => Resize(Resize),
    /// [`Pad`].
    "pad" => Pad(Pad),
    /// [`Brightness`].
    "brightness" => Brightness(Brightness),
    /// [`Contrast`].
    "contrast" => Contrast(Contrast),
    /// [`Saturation`].
    "saturation" => Saturation(Saturation),
    /// [`Hue`].
    "hue" => Hue(Hue),
    /// [`ColorJitter`].
    "color_jitter" => ColorJitter(ColorJitter),
    /// [`BrightnessContrast`].
    "brightness_contrast" => BrightnessContrast(BrightnessContrast),
    /// [`HueSaturationValue`].
    "hue_saturation_value" => HueSaturationValue(HueSaturationValue),
    /// [`Grayscale`].
    "grayscale" => Grayscale(Grayscale),
    /// [`Gamma`].
    "gamma" => Gamma(Gamma),
    /// [`GaussianBlur`].
    "gaussian_blur" => GaussianBlur(GaussianBlur),
    /// [`GaussianNoise`].
    "gaussian_noise" => GaussianNoise(GaussianNoise),
    /// [`Erasing`].
    "erasing" => Erasing(Erasing),
    /// [`Normalize`].
    "normalize" => Normalize(Normalize),
    /// [`Compose`].
    "compose" => Compose(Compose),
    /// [`RandomApply`].
    "random_apply" => RandomApply(RandomApply),
    /// [`OneOf`].
    "one_of" => OneOf(OneOf),
}

impl Step {
    /// Whether this step is, or contains, a normalisation.
    pub(crate) fn has_normalize(&self) -> bool {
        matches!(self, Step::Normalize(_)) || self.steps().iter().any(Step::has_normalize)
    }
}

impl Transform for Step {
    fn name(&self) -> &'static str {
        self.registered_name()
    }
    fn validate(&self) -> Result<()> {
        self.with(|t| t.validate())
    }
    fn plan(&self, rng: &mut SampleRng, size: Size, ops: &mut Vec<Op>) -> Result<Size> {
        self.with(|t| t.plan(rng, size, ops))
    }
    fn steps(&self) -> &[Step] {
        // a form of another transform has plain parameters (a limit, a size), never steps
        self.own().map_or(&[], |t| t.steps())
    }
}

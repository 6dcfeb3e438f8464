//! Image data augmentation for training on burn: seeded per-image pipelines with two
//! executors that share one parameter draw.
//!
//! - **Transforms** ([`transforms`]): flips, quarter turns, rotation, shift, zoom, shear and
//!   general affine maps (folded into one matrix), random / centre / random-resized crops,
//!   resize (nearest, bilinear), padding (constant, reflect, edge), brightness, contrast,
//!   saturation, hue, colour jitter, brightness-contrast, HSV shifts, grayscale, gamma,
//!   Gaussian blur, Gaussian noise, random erasing, normalisation; combined with
//!   [`Compose`], [`RandomApply`] and [`OneOf`]. Batch mixing: [`MixUp`], [`CutMix`].
//! - **Reproducible draws**: every random parameter of sample `index` in `epoch` comes from a
//!   generator keyed by `(seed, epoch, index)` ([`SampleKey`]), so results do not depend on
//!   thread count, batch composition or backend. The draw is a [`Plan`] of concrete
//!   operations ([`Op`]) that can be logged as JSON and replayed.
//! - **Two executors**: [`Plan::apply`] and [`Pipeline::apply_batch`] run u8 kernels on the
//!   CPU (parallel over images), with each run of geometric operations resampled once;
//!   [`Pipeline::apply_tensor`] runs a batch on any burn backend (wgpu on a GPU) with one
//!   affine matrix per image and one `grid_sample_2d` pass, colour operations as per-image
//!   factors. Both give the same images within interpolation tolerance.
//! - **Pipelines from files**: [`Pipeline::load`] reads JSON or TOML, [`Pipeline::parse`] the
//!   command-line form `horizontal_flip rotate(limit=30) normalize`; bad input is a typed
//!   [`AugmentError`] naming the file, operation or parameter.
//!
//! ```
//! use rensa_augment::{Image, Pipeline, transforms::*};
//! let pipeline = Pipeline::new(7, vec![
//!     HorizontalFlip::default().into(),
//!     Affine::rotate(15.0).into(),
//!     ColorJitter::default().into(),
//!     Normalize::default().into(),
//! ])?;
//! let img = Image::filled(32, 24, 3, 128)?;
//! let plan = pipeline.plan(img.size(), 0, 42)?; // epoch 0, sample 42
//! let floats = plan.apply_f32(&img)?;           // CHW, normalised
//! assert_eq!(floats.len(), 3 * 24 * 32);
//! # Ok::<(), rensa_augment::AugmentError>(())
//! ```

pub mod cpu;
pub mod error;
pub mod image;
pub mod mix;
pub mod ops;
pub mod pipeline;
pub mod rng;
pub mod sheet;
pub mod tensor;
pub mod transforms;

pub use error::{AugmentError, Result};
pub use image::{Image, Size};
pub use mix::{BatchMix, CutMix, MixDraw, MixUp};
pub use ops::{Border, Interp, Op};
pub use pipeline::{Pipeline, Plan};
pub use rng::{SampleKey, SampleRng};
pub use sheet::contact_sheet;
pub use tensor::{apply_plans, images_to_tensor};
pub use transforms::{
    Compose, DEFAULT_MAX_PIXELS, OneOf, RandomApply, Step, Transform, max_pixels, set_max_pixels,
};

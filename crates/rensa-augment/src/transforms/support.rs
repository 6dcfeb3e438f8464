//! What the transform definitions share: default values, parameter checks and the macros for
//! the two common shapes (a probability only; a probability and one drawn factor).

use crate::error::{AugmentError, Result};
use std::sync::atomic::{AtomicUsize, Ordering};

pub(super) fn half() -> f64 {
    0.5
}
pub(super) fn one() -> f64 {
    1.0
}

/// The largest side a transform may produce (a guard against sizes that cannot be allocated).
pub const MAX_SIDE: usize = 1 << 16;

/// The default of [`max_pixels`]: 2^28 pixels (a 16384 x 16384 image, 768 MiB as RGB bytes and
/// 3 GiB as the floats of the tensor path).
pub const DEFAULT_MAX_PIXELS: usize = 1 << 28;

static MAX_PIXELS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_PIXELS);

/// The most pixels an image may have anywhere in this crate: decoded, given to
/// [`Image::new`](crate::Image::new), or produced by any step of a pipeline or a plan (so a
/// crafted pipeline, plan or image file is refused with an error instead of an allocation that
/// cannot succeed). [`DEFAULT_MAX_PIXELS`] unless set with [`set_max_pixels`].
pub fn max_pixels() -> usize {
    MAX_PIXELS.load(Ordering::Relaxed)
}

/// Sets [`max_pixels`] for the whole process.
pub fn set_max_pixels(pixels: usize) {
    MAX_PIXELS.store(pixels, Ordering::Relaxed);
}

/// Why `width x height` is not a size an image may have: a zero side, a side over
/// [`MAX_SIDE`], or more than [`max_pixels`] pixels.
pub(crate) fn size_problem(width: usize, height: usize) -> Option<String> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Some(format!(
            "{width}x{height}: each side must be between 1 and {MAX_SIDE}"
        ));
    }
    let limit = max_pixels();
    match width.checked_mul(height) {
        Some(n) if n <= limit => None,
        _ => Some(format!(
            "{width}x{height}: more than {limit} pixels (rensa_augment::set_max_pixels)"
        )),
    }
}

pub(super) fn check_side(op: &'static str, width: usize, height: usize) -> Result<()> {
    match size_problem(width, height) {
        None => Ok(()),
        Some(why) => Err(param(op, "width/height", format!("= {why}"))),
    }
}

pub(super) fn param(
    op: &'static str,
    name: &'static str,
    message: impl Into<String>,
) -> AugmentError {
    AugmentError::Parameter {
        op,
        name,
        message: message.into(),
    }
}

/// A transform with a probability `p` (default 0.5) and nothing to draw: it pushes `$op` or
/// nothing. Its name is the one in the table of [`super`].
macro_rules! flip {
    ($(#[$doc:meta])* $name:ident, $op:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Probability of applying it (default 0.5).
            #[serde(default = "crate::transforms::support::half")]
            pub p: f64,
        }
        impl Default for $name {
            fn default() -> Self {
                Self { p: 0.5 }
            }
        }
        impl $crate::transforms::Transform for $name {
            fn name(&self) -> &'static str {
                Self::NAME
            }
            fn validate(&self) -> $crate::Result<()> {
                $crate::error::check_p(Self::NAME, self.p)
            }
            fn plan(&self, rng: &mut $crate::SampleRng, size: $crate::Size, ops: &mut Vec<$crate::Op>)
                -> $crate::Result<$crate::Size> {
                $crate::transforms::support::maybe_push(rng, self.p, size, ops, |_| $op)
            }
        }
    };
}

/// A transform with a probability `p` (default 1) and a `range` (default `$default`, allowed
/// inside `$max`) that one factor `f` is drawn from, uniformly; `$make` is the operation made of
/// it. Its name is the one in the table of [`super`].
macro_rules! factor_op {
    ($(#[$doc:meta])* $name:ident, $default:expr, $max:expr, |$f:ident| $make:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
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
        impl $crate::transforms::Transform for $name {
            fn name(&self) -> &'static str {
                Self::NAME
            }
            fn validate(&self) -> $crate::Result<()> {
                $crate::error::check_p(Self::NAME, self.p)?;
                $crate::error::check_range(Self::NAME, "range", self.range, $max.0, $max.1)
            }
            fn plan(&self, rng: &mut $crate::SampleRng, size: $crate::Size, ops: &mut Vec<$crate::Op>)
                -> $crate::Result<$crate::Size> {
                let range = self.range;
                $crate::transforms::support::maybe_push(rng, self.p, size, ops, |rng| {
                    let $f = rng.uniform(range.0, range.1) as f32;
                    $make
                })
            }
        }
    };
}

pub(super) use {factor_op, flip};

/// With probability `p`, appends the operation `make` draws; the size is kept.
pub(crate) fn maybe_push(
    rng: &mut crate::SampleRng,
    p: f64,
    size: crate::Size,
    ops: &mut Vec<crate::Op>,
    make: impl FnOnce(&mut crate::SampleRng) -> crate::Op,
) -> crate::Result<crate::Size> {
    if rng.chance(p) {
        ops.push(make(rng));
    }
    Ok(size)
}

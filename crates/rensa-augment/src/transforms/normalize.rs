//! Normalisation, the step that turns the image into floats.

use super::Transform;
use super::support::param;
use crate::error::Result;
use crate::image::Size;
use crate::ops::Op;
use crate::rng::SampleRng;
use serde::{Deserialize, Serialize};

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
        Self::NAME
    }
    fn validate(&self) -> Result<()> {
        if self.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
            || self.mean.iter().any(|m| !m.is_finite())
        {
            return Err(param(
                Self::NAME,
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

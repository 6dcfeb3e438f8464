//! The crate's error type: every failure names the file, operation or parameter at fault.

use std::path::PathBuf;

/// What went wrong while reading images, building a pipeline or applying it.
#[derive(Debug, thiserror::Error)]
pub enum AugmentError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not an image in any format this crate reads.
    #[error("{name}: not an image in a supported format (PNG, JPEG, BMP, GIF)")]
    UnsupportedFormat {
        /// The file (or `<memory>`).
        name: String,
    },
    /// The image is truncated or corrupt.
    #[error("{name}: could not decode the image: {message}")]
    Decode {
        /// The file (or `<memory>`).
        name: String,
        /// What the decoder said.
        message: String,
    },
    /// The image could not be encoded or written.
    #[error("{name}: could not encode the image: {message}")]
    Encode {
        /// The file.
        name: String,
        /// What the encoder said.
        message: String,
    },
    /// An image with no pixels, or a buffer whose length does not match its size.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// A probability outside [0, 1].
    #[error("{op}: probability p = {p} is outside [0, 1]")]
    Probability {
        /// The operation.
        op: &'static str,
        /// The value given.
        p: f64,
    },
    /// A parameter outside its valid range.
    #[error("{op}: parameter `{name}` {message}")]
    Parameter {
        /// The operation.
        op: &'static str,
        /// The parameter.
        name: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A crop (or output size) larger than the image it is taken from.
    #[error("{op}: a {crop_width}x{crop_height} crop does not fit in a {width}x{height} image")]
    CropTooLarge {
        /// The operation.
        op: &'static str,
        /// Crop width.
        crop_width: usize,
        /// Crop height.
        crop_height: usize,
        /// Image width.
        width: usize,
        /// Image height.
        height: usize,
    },
    /// A pipeline with no steps.
    #[error("{source_name}: the pipeline has no steps")]
    EmptyPipeline {
        /// The file or string the pipeline came from.
        source_name: String,
    },
    /// An operation name that is not one of this crate's.
    #[error("{source_name}: unknown operation `{name}` (known: {known})")]
    UnknownOperation {
        /// The file or string the pipeline came from.
        source_name: String,
        /// The name given.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// A pipeline description that could not be parsed.
    #[error("{source_name}: {message}")]
    PipelineSyntax {
        /// The file or string the pipeline came from.
        source_name: String,
        /// What the parser said.
        message: String,
    },
    /// Images of a batch that cannot be stacked (different sizes or channel counts).
    #[error("batch: {0}")]
    Batch(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, AugmentError>;

/// Checks a probability.
pub(crate) fn check_p(op: &'static str, p: f64) -> Result<()> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(AugmentError::Probability { op, p })
    }
}

/// Checks that `range` is ordered, finite and inside `[min, max]`.
pub(crate) fn check_range(
    op: &'static str,
    name: &'static str,
    range: (f64, f64),
    min: f64,
    max: f64,
) -> Result<()> {
    let (lo, hi) = range;
    if !(lo.is_finite() && hi.is_finite()) || lo > hi || lo < min || hi > max {
        return Err(AugmentError::Parameter {
            op,
            name,
            message: format!("= ({lo}, {hi}) must be an ordered range inside [{min}, {max}]"),
        });
    }
    Ok(())
}

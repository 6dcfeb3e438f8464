//! The error type of rensa-nn.

/// What can go wrong when building a layer from its configuration or from given weights.
///
/// Shape misuse inside `forward` is a programming error and panics instead, with a message
/// naming the expected and the received shape.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum Error {
    /// A configuration value is out of its valid range.
    #[error("invalid configuration: `{field}` must be {expected}, got {got}")]
    Config {
        /// The configuration field, e.g. `hidden_size`.
        field: &'static str,
        /// What a valid value looks like.
        expected: &'static str,
        /// The value received.
        got: String,
    },
    /// Weights given to a `from_weights` constructor do not have the expected shape.
    #[error("invalid weights: `{name}` must have shape {expected:?}, got {got:?}")]
    WeightShape {
        /// Which weight, e.g. `weight_ih`.
        name: &'static str,
        /// The expected shape.
        expected: Vec<usize>,
        /// The shape received.
        got: Vec<usize>,
    },
}

impl Error {
    /// A [`Error::Config`] for `field`, which must be `expected` but is `got`.
    pub fn config(
        field: &'static str,
        expected: &'static str,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::Config {
            field,
            expected,
            got: got.to_string(),
        }
    }
}

/// Checks that every `(field, value)` is at least 1: the sizes of a configuration.
///
/// # Errors
/// An [`Error::Config`] naming the first field that is 0.
pub fn at_least_one(fields: &[(&'static str, usize)]) -> Result<()> {
    match fields.iter().find(|(_, v)| *v == 0) {
        Some((field, v)) => Err(Error::config(field, "at least 1", v)),
        None => Ok(()),
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

//! The error type of rensa-train.

/// What can stop training.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of its valid range (checked before any work starts).
    #[error("invalid training setting: `{field}` must be {expected}, got {got}")]
    Config {
        /// The setting, e.g. `batch_size`.
        field: &'static str,
        /// What a valid value looks like.
        expected: String,
        /// The value received.
        got: String,
    },
    /// The loss became NaN or infinite. With checkpoints, the last finished epoch's state is
    /// saved if it was not yet (so the checkpoints hold the last good state).
    #[error(
        "the loss became {value} at epoch {epoch}, batch {batch}: stopped (try a lower learning rate or gradient clipping)"
    )]
    NonFiniteLoss {
        /// Epoch (1-based).
        epoch: usize,
        /// Batch within the epoch (1-based).
        batch: usize,
        /// The loss value.
        value: f64,
    },
    /// A validation loss, a metric or the weights became NaN or infinite; the run stopped before
    /// saving, so the last good checkpoint is kept.
    #[error(
        "{what} became {value} at epoch {epoch} (after {step} optimiser steps): stopped, the last good checkpoint is kept"
    )]
    NonFinite {
        /// What went bad: `val_loss`, a metric's name, or the weights with the parameters named.
        what: String,
        /// Epoch (1-based).
        epoch: usize,
        /// Optimiser steps taken so far in the run.
        step: usize,
        /// The value (NaN or an infinity); NaN for the weights.
        value: f64,
    },
    /// A resume with other settings than the checkpoint was saved with.
    #[error(
        "{path} was saved with other settings: {}; resume with the same ones, or force it (`Checkpoints::forcing`, `--force`)",
        differences.join("; ")
    )]
    SettingsChanged {
        /// The checkpoint.
        path: String,
        /// One line per setting: `seed: saved 0, now 1`.
        differences: Vec<String>,
    },
    /// A fresh run into a folder that already holds a checkpoint.
    #[error(
        "{path} already holds a checkpoint (epoch {epoch}): resume it (`--resume`), or replace it (`Checkpoints::overwriting`, `--overwrite`)"
    )]
    CheckpointExists {
        /// The checkpoint.
        path: String,
        /// The epoch it was saved after.
        epoch: usize,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Data-parallel training failed between the peers: a peer did not answer in time (died,
    /// hung, unreachable), a collective call failed, or the peers disagree on the model or the
    /// settings.
    #[error("data-parallel training: {message}")]
    Peers {
        /// What happened, naming the peer.
        message: String,
    },
    /// A file was not in the expected format.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// What the caller does when the run is admitted ([`Fit::on_start`](crate::Fit::on_start))
    /// failed; nothing was trained.
    #[error("before the first step: {0}")]
    Start(#[source] BoxError),
}

/// Any error a caller's hook returns.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Error {
    /// A [`Error::Config`].
    pub fn config(
        field: &'static str,
        expected: impl Into<String>,
        got: impl std::fmt::Display,
    ) -> Self {
        Error::Config {
            field,
            expected: expected.into(),
            got: got.to_string(),
        }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

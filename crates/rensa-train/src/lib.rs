//! The training loop shared by rensa's models.
//!
//! A model says how to compute its loss on a batch of items ([`Objective`]); [`fit`] does the
//! rest with any burn optimiser: epochs of shuffled mini-batches, a Keras-style validation split
//! (the last fraction of the items), a [`History`] of losses saved as CSV and JSON, early stopping,
//! a guard that stops with an error instead of training on a NaN or infinite loss, and
//! checkpoints written atomically that a run can resume from ([`fit_with`]), learning-rate
//! schedules ([`fit_scheduled`]), and the model's own metrics per epoch
//! ([`Objective::metrics`]). [`fit_batches`] runs the same loop over batches made elsewhere: a
//! burn `DataLoader` or any iterator ([`BatchObjective`]). Weight decay and gradient clipping are burn's optimiser options.
//!
//! Shuffling is seeded and keyed by epoch ([`shuffled`]), so a run is reproducible.

mod checkpoint;
mod error;
mod fit;
mod history;
mod objective;
pub mod plot;
mod pool;
pub mod progress;
mod rng;

pub use checkpoint::Checkpoints;
pub use error::{Error, Result};
pub use fit::{BatchObjective, FitConfig, evaluate, fit, fit_batches, fit_scheduled, fit_with};
pub use history::{EpochRecord, History, write_atomic};
pub use objective::Objective;
pub use pool::in_thread_pool;
pub use rng::{SplitMix64, shuffled};

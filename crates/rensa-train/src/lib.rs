//! The training loop shared by rensa's models.
//!
//! A model says what one step on a batch computes ([`Objective::step`]): the loss, its named
//! parts (a VAE's reconstruction and KL), metrics (an exact-match rate, a codebook's usage) and,
//! when it has one, an update to state the optimiser does not own (a VQ-VAE's EMA codebook). The
//! step sees where the loop is ([`StepInfo`]: epoch, global step, learning rate), so a loss can
//! be annealed. [`Fit`] does the rest with any burn optimiser:
//!
//! ```text
//! Fit::new(config).checkpoints(c).scheduler(s).on_epoch(f).progress(true).run(model, &mut optim, data, &device)
//! ```
//!
//! epochs of batches from a [`Batches`] source ([`Items`]: a slice batched, shuffled per epoch
//! and split Keras-style for validation, without copying the dataset; [`Loaders`]: batches made
//! elsewhere, a burn `DataLoader` or any iterator), validation after every epoch, a [`History`]
//! of losses, parts and metrics saved as CSV and JSON and drawn by [`plot`], early stopping, a
//! guard that stops with an error instead of training on a NaN or infinite loss, a non-finite
//! validation loss or metric or non-finite weights, learning-rate schedules (burn's, or [`schedule::Anneal`] over the whole run), and checkpoints
//! that survive a crash at any moment (fsynced, published by one rename, with a manifest that
//! loading verifies before falling back to the previous one), saved with the run's settings so
//! that a resume with other ones is refused, and that a run resumes from bit-exactly (with
//! [`Items`]; with [`Loaders`] when the iterators are keyed by epoch; on one process or two
//! peers: see the `distributed` feature's strategies for more). A model
//! whose backward pass is hand-written trains in the same loop ([`Fit::run_manual`]). Weight
//! decay and gradient clipping are burn's optimiser options.
//!
//! Shuffling is seeded and keyed by epoch ([`shuffled`]), so a run is reproducible.

mod checkpoint;
mod config;
mod data;
#[cfg(feature = "distributed")]
pub mod distributed;
mod error;
mod fit;
mod guard;
mod history;
pub mod plot;
mod pool;
pub mod progress;
pub mod schedule;
mod step;

#[doc(hidden)]
pub use checkpoint::io_steps as checkpoint_io_steps;
pub use checkpoint::{
    Checkpoints, SavedCheckpoint, Settings, fingerprint, load_model, parameter_shapes,
};
pub use config::{FitConfig, MAX_EPOCHS};
pub use data::{Batches, Items, Loaders};
pub use error::{BoxError, Error, Result};
pub use fit::{Fit, backend_seed};
pub use history::{EpochRecord, History, write_atomic};
pub use pool::{Subnormals, in_thread_pool, in_thread_pool_with};
pub use rensa_data::rng::{SplitMix64, shuffled};
pub use step::{Objective, Output, StepInfo};

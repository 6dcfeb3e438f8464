//! The training settings.

use burn::config::Config;

use crate::Error;

/// How [`Fit`](crate::Fit) trains.
#[derive(Config, Debug)]
pub struct FitConfig {
    /// Passes over the training items.
    #[config(default = 10)]
    pub epochs: usize,
    /// Items per optimiser step (the last batch of an epoch may be smaller), for
    /// [`Items`](crate::Items).
    #[config(default = 32)]
    pub batch_size: usize,
    /// Fraction of the items, taken from the **end** and never trained on, used for the
    /// validation loss (as Keras's `validation_split` does), in `[0, 1)`; for
    /// [`Items`](crate::Items).
    #[config(default = 0.0)]
    pub validation_split: f64,
    /// Visit the training items in a new random order every epoch.
    #[config(default = true)]
    pub shuffle: bool,
    /// Seed of the shuffling (see [`shuffled`](crate::shuffled)); the backend is also seeded with
    /// [`backend_seed`](crate::backend_seed)`(seed, epoch)` at the start of every epoch.
    #[config(default = 0)]
    pub seed: u64,
    /// Learning rate of every step, unless a schedule is given
    /// ([`Fit::scheduler`](crate::Fit::scheduler)).
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Stop when the monitored loss (validation loss if there is a split, else training loss)
    /// has not improved for this many epochs.
    pub patience: Option<usize>,
    /// Hand back, at the end, the model of the epoch whose monitored loss (as `patience`
    /// watches it) was lowest instead of the last one, as Keras's
    /// `EarlyStopping(restore_best_weights=True)`; [`History::best_epoch`](crate::History::best_epoch)
    /// names that epoch. The run keeps a copy of that model, and its checkpoints keep it too
    /// (`best.bin`, when it is not the last epoch's), so a resumed run restores the same one.
    #[config(default = false)]
    pub restore_best: bool,
}

/// The most epochs a run may ask for (a billion: far beyond any run, and small enough that the
/// loop's epoch and step counts cannot overflow).
pub const MAX_EPOCHS: usize = 1_000_000_000;

impl FitConfig {
    /// `epochs` passes over the items in batches of `batch_size`, the two settings every run
    /// chooses (as Keras's `fit(epochs=..., batch_size=...)`), the rest at their defaults: the
    /// same as `FitConfig::new().with_epochs(epochs).with_batch_size(batch_size)`.
    pub fn for_epochs(epochs: usize, batch_size: usize) -> Self {
        Self::new().with_epochs(epochs).with_batch_size(batch_size)
    }

    /// The optimiser steps of the whole run on `items` items split and batched as
    /// [`Items`](crate::Items) does: `epochs * ceil(training items / batch_size)`, the length a
    /// schedule that anneals once over the run ([`Anneal`](crate::schedule::Anneal)) needs.
    /// Errors as [`check`](Self::check) does.
    pub fn steps(&self, items: usize) -> crate::Result<usize> {
        let train = self.check(items)?;
        self.epochs
            .checked_mul(train.div_ceil(self.batch_size))
            .ok_or_else(|| {
                Error::config(
                    "epochs",
                    "few enough that the run's steps can be counted",
                    self.epochs,
                )
            })
    }

    /// Checks the settings that do not depend on the data: epochs, learning rate, patience.
    pub fn check_epochs(&self) -> crate::Result<()> {
        if self.epochs == 0 {
            return Err(Error::config("epochs", "at least 1", 0));
        }
        if self.epochs > MAX_EPOCHS {
            return Err(Error::config(
                "epochs",
                format!("at most {MAX_EPOCHS}"),
                self.epochs,
            ));
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err(Error::config(
                "learning_rate",
                "a finite number > 0",
                self.learning_rate,
            ));
        }
        if self.patience == Some(0) {
            return Err(Error::config("patience", "at least 1 epoch", 0));
        }
        Ok(())
    }

    /// Checks the settings against the number of items; returns the number of training items.
    pub fn check(&self, items: usize) -> crate::Result<usize> {
        self.check_epochs()?;
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "at least 1", 0));
        }
        if !(0.0..1.0).contains(&self.validation_split) {
            return Err(Error::config(
                "validation_split",
                "a fraction in [0, 1)",
                self.validation_split,
            ));
        }
        let train = ((items as f64) * (1.0 - self.validation_split)).floor() as usize;
        if train == 0 {
            return Err(Error::config(
                "validation_split",
                format!("a split that leaves training items (there are {items} items)"),
                self.validation_split,
            ));
        }
        if self.validation_split > 0.0 && train == items {
            return Err(Error::config(
                "validation_split",
                format!(
                    "a split that leaves at least one validation item (there are {items} items)"
                ),
                self.validation_split,
            ));
        }
        if self.batch_size > train {
            return Err(Error::config(
                "batch_size",
                format!("at most the number of training items ({train})"),
                self.batch_size,
            ));
        }
        Ok(train)
    }
}

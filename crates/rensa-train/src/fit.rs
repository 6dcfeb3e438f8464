//! The training loop.

use burn::config::Config;
use burn::lr_scheduler::LrScheduler;
use burn::lr_scheduler::constant::ConstantLr;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::ElementConversion;
use burn::tensor::backend::AutodiffBackend;
use std::time::Instant;

use crate::checkpoint::{self, Checkpoints};
use crate::{EpochRecord, Error, History, Objective, shuffled};

/// How [`fit`] trains.
#[derive(Config, Debug)]
pub struct FitConfig {
    /// Passes over the training items.
    #[config(default = 10)]
    pub epochs: usize,
    /// Items per optimiser step (the last batch of an epoch may be smaller).
    #[config(default = 32)]
    pub batch_size: usize,
    /// Fraction of the items, taken from the **end** and never trained on, used for the
    /// validation loss (as Keras's `validation_split` does), in `[0, 1)`.
    #[config(default = 0.0)]
    pub validation_split: f64,
    /// Visit the training items in a new random order every epoch.
    #[config(default = true)]
    pub shuffle: bool,
    /// Seed of the shuffling (see [`shuffled`](crate::shuffled)).
    #[config(default = 0)]
    pub seed: u64,
    /// Learning rate passed to the optimiser (when no schedule is given to [`fit_scheduled`]).
    #[config(default = 1e-3)]
    pub learning_rate: f64,
    /// Stop when the monitored loss (validation loss if there is a split, else training loss)
    /// has not improved for this many epochs.
    pub patience: Option<usize>,
}

impl FitConfig {
    /// Checks the settings against the number of items; returns the number of training items.
    pub fn check(&self, items: usize) -> crate::Result<usize> {
        if self.epochs == 0 {
            return Err(Error::config("epochs", "at least 1", 0));
        }
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

/// Trains `model` on `items` with `optimizer`; calls `on_epoch` after every epoch (for progress
/// display) and returns the trained model and its [`History`]. Same as [`fit_with`] without
/// checkpoints.
pub fn fit<B, M, O>(
    config: &FitConfig,
    model: M,
    optimizer: &mut O,
    items: &[<M as Objective<B>>::Item],
    device: &B::Device,
    on_epoch: impl FnMut(&EpochRecord),
) -> crate::Result<(M, History)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Objective<B>,
    M::InnerModule: Objective<B::InnerBackend, Item = <M as Objective<B>>::Item>,
    O: Optimizer<M, B>,
{
    fit_with(config, None, model, optimizer, items, device, on_epoch)
}

/// [`fit`], saving [`Checkpoints`] (model, optimiser state, history) every `every` epochs and
/// after the last one, or resuming from one. Same as [`fit_scheduled`] with the constant
/// learning rate `config.learning_rate`.
pub fn fit_with<B, M, O>(
    config: &FitConfig,
    checkpoints: Option<&Checkpoints>,
    model: M,
    optimizer: &mut O,
    items: &[<M as Objective<B>>::Item],
    device: &B::Device,
    on_epoch: impl FnMut(&EpochRecord),
) -> crate::Result<(M, History)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Objective<B>,
    M::InnerModule: Objective<B::InnerBackend, Item = <M as Objective<B>>::Item>,
    O: Optimizer<M, B>,
{
    let mut constant = ConstantLr::new(config.learning_rate);
    fit_scheduled(
        config,
        checkpoints,
        &mut constant,
        model,
        optimizer,
        items,
        device,
        on_epoch,
    )
}

/// The training loop in full: [`fit_with`] with the learning rate of every optimiser step taken
/// from `scheduler` (any of burn's `LrScheduler`s: step, exponential, cosine annealing, linear,
/// Noam, or their composition), whose state is saved in the checkpoints along with the model's
/// and the optimiser's. Weight decay and gradient clipping are options of burn's optimisers
/// (`AdamConfig::with_weight_decay`, `with_grad_clipping`) and apply as configured.
///
/// Every epoch seeds the backend with `seed + epoch` and shuffles by `(seed, epoch)`, so a run
/// resumed from a checkpoint ends with the same weights as an uninterrupted one.
///
/// # Errors
/// A [`Error::Config`] before any work when a setting does not fit the data; a
/// [`Error::NonFiniteLoss`] as soon as a batch loss is NaN or infinite (no step is taken with it,
/// and the last checkpoint stays as it was); I/O and format errors of the checkpoint.
#[allow(clippy::too_many_arguments)]
pub fn fit_scheduled<B, M, O, S>(
    config: &FitConfig,
    checkpoints: Option<&Checkpoints>,
    scheduler: &mut S,
    mut model: M,
    optimizer: &mut O,
    items: &[<M as Objective<B>>::Item],
    device: &B::Device,
    mut on_epoch: impl FnMut(&EpochRecord),
) -> crate::Result<(M, History)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + Objective<B>,
    M::InnerModule: Objective<B::InnerBackend, Item = <M as Objective<B>>::Item>,
    O: Optimizer<M, B>,
    S: LrScheduler,
{
    let n_train = config.check(items.len())?;
    if let Some(c) = checkpoints
        && c.every == 0
    {
        return Err(Error::config("checkpoint every", "at least 1 epoch", 0));
    }
    let (train, valid) = items.split_at(n_train);
    let mut history = History::default();
    if let Some(c) = checkpoints.filter(|c| c.resume) {
        let (m, record, schedule, h) =
            checkpoint::load::<B, M, O::Record, S::Record<B>>(c, model, device)?;
        model = m;
        *optimizer = optimizer.clone().load_record(record);
        *scheduler = scheduler.clone().load_record::<B>(schedule);
        history = h;
    }

    for epoch in history.epochs.len() + 1..=config.epochs {
        if config
            .patience
            .is_some_and(|p| epochs_since_best(&history.epochs) >= p)
        {
            break;
        }
        let start = Instant::now();
        B::seed(device, config.seed.wrapping_add(epoch as u64));
        let order: Vec<usize> = if config.shuffle {
            shuffled(train.len(), config.seed, epoch)
        } else {
            (0..train.len()).collect()
        };
        let mut weighted = 0.0;
        let mut lr = f64::NAN;
        for (b, chunk) in order.chunks(config.batch_size).enumerate() {
            let batch: Vec<_> = chunk.iter().map(|&i| train[i].clone()).collect();
            let loss = model.loss(&batch, device);
            let value: f64 = loss.clone().into_scalar().elem();
            if !value.is_finite() {
                return Err(Error::NonFiniteLoss {
                    epoch,
                    batch: b + 1,
                    value,
                });
            }
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            lr = scheduler.step();
            model = optimizer.step(lr, model, grads);
            history.step_losses.push(value);
            weighted += value * batch.len() as f64;
        }
        let valid_model = model.valid();
        let val_loss =
            (!valid.is_empty()).then(|| evaluate(&valid_model, valid, config.batch_size, device));
        let metric_items = if valid.is_empty() { train } else { valid };
        let record = EpochRecord {
            epoch,
            loss: weighted / train.len() as f64,
            val_loss,
            seconds: start.elapsed().as_secs_f64(),
            items: train.len(),
            lr,
            metrics: valid_model
                .metrics(metric_items, device)
                .into_iter()
                .collect(),
        };
        on_epoch(&record);
        history.epochs.push(record);
        let stopping = config
            .patience
            .is_some_and(|p| epochs_since_best(&history.epochs) >= p);
        if let Some(c) = checkpoints
            && (epoch % c.every == 0 || epoch == config.epochs || stopping)
        {
            checkpoint::save::<B, M, O::Record, S::Record<B>>(
                c,
                &model,
                optimizer.to_record(),
                scheduler.to_record::<B>(),
                &history,
            )?;
        }
    }
    Ok((model, history))
}

/// Epochs since the monitored loss (validation loss if there is one, else training loss) was
/// last at its best; 0 for none.
fn epochs_since_best(epochs: &[EpochRecord]) -> usize {
    let monitored = |e: &EpochRecord| e.val_loss.unwrap_or(e.loss);
    let mut best = 0;
    for (i, e) in epochs.iter().enumerate() {
        if monitored(e) < monitored(&epochs[best]) {
            best = i;
        }
    }
    epochs.len().saturating_sub(best + 1)
}

/// The mean loss of `model` over `items`, in batches (weighted by batch size).
pub fn evaluate<B: burn::tensor::backend::Backend, M: Objective<B>>(
    model: &M,
    items: &[M::Item],
    batch_size: usize,
    device: &B::Device,
) -> f64 {
    let total: f64 = items
        .chunks(batch_size.max(1))
        .map(|chunk| {
            let v: f64 = model.loss(chunk, device).into_scalar().elem();
            v * chunk.len() as f64
        })
        .sum();
    total / items.len() as f64
}

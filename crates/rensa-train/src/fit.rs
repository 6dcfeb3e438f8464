//! The training loop.

use burn::config::Config;
use burn::lr_scheduler::LrScheduler;
use burn::lr_scheduler::constant::ConstantLr;
use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{ElementConversion, Tensor};
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
    /// Checks the settings that do not depend on the data: epochs, learning rate, patience.
    pub fn check_epochs(&self) -> crate::Result<()> {
        if self.epochs == 0 {
            return Err(Error::config("epochs", "at least 1", 0));
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
    S: LrScheduler,
{
    let n_train = config.check(items.len())?;
    let (train, valid) = items.split_at(n_train);
    let batch_size = config.batch_size;
    run_epochs(
        config,
        checkpoints,
        scheduler,
        model,
        optimizer,
        device,
        |epoch| {
            let order: Vec<usize> = if config.shuffle {
                shuffled(train.len(), config.seed, epoch)
            } else {
                (0..train.len()).collect()
            };
            order
                .chunks(batch_size)
                .map(|chunk| chunk.iter().map(|&i| train[i].clone()).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        },
        |model: &M, batch: &Vec<_>| (model.loss(batch, device), batch.len()),
        |valid_model: &M::InnerModule| {
            let val_loss =
                (!valid.is_empty()).then(|| evaluate(valid_model, valid, batch_size, device));
            let metric_items = if valid.is_empty() { train } else { valid };
            (val_loss, valid_model.metrics(metric_items, device))
        },
        on_epoch,
    )
}

/// A model trained on batches made elsewhere: by a burn `DataLoader` (whose iterator yields
/// them), or by any iterator. See [`fit_batches`].
pub trait BatchObjective<B: Backend> {
    /// One batch, e.g. the type a burn `Batcher` produces.
    type Batch;

    /// The mean loss over `batch`, a one-element tensor.
    fn batch_loss(&self, batch: &Self::Batch) -> Tensor<B, 1>;

    /// How many items `batch` holds (weights the epoch's mean loss).
    fn batch_len(batch: &Self::Batch) -> usize;

    /// Further metrics over `batch`, by name; [`fit_batches`] averages them over the validation
    /// batches, weighted by [`batch_len`](Self::batch_len). None by default.
    fn batch_metrics(&self, batch: &Self::Batch) -> Vec<(String, f64)> {
        let _ = batch;
        Vec::new()
    }
}

/// The training loop over batches that something else assembles: `train(epoch)` returns the
/// epoch's training batches (`|_| loader.iter()` for a burn `DataLoader`, which shuffles them
/// itself), `valid()` the validation batches (an empty iterator for none). From `config` it uses
/// `epochs`, `seed` (the backend is seeded with `seed + epoch` every epoch) and `patience`;
/// batching, shuffling and the validation split are the iterators' business, the learning rate
/// the `scheduler`'s. Checkpoints, resume, the NaN guard and the history work as in
/// [`fit_scheduled`].
///
/// # Errors
/// As [`fit_scheduled`]; also a [`Error::Config`] when an epoch has no training batches.
#[allow(clippy::too_many_arguments)]
pub fn fit_batches<B, M, O, S, I, V>(
    config: &FitConfig,
    checkpoints: Option<&Checkpoints>,
    scheduler: &mut S,
    model: M,
    optimizer: &mut O,
    device: &B::Device,
    mut train: impl FnMut(usize) -> I,
    mut valid: impl FnMut() -> V,
    on_epoch: impl FnMut(&EpochRecord),
) -> crate::Result<(M, History)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B> + BatchObjective<B>,
    M::InnerModule: BatchObjective<B::InnerBackend>,
    O: Optimizer<M, B>,
    S: LrScheduler,
    I: IntoIterator<Item = M::Batch>,
    V: IntoIterator<Item = <M::InnerModule as BatchObjective<B::InnerBackend>>::Batch>,
{
    config.check_epochs()?;
    run_epochs(
        config,
        checkpoints,
        scheduler,
        model,
        optimizer,
        device,
        &mut train,
        |model: &M, batch: &M::Batch| (model.batch_loss(batch), M::batch_len(batch)),
        |valid_model: &M::InnerModule| {
            let (mut total, mut n) = (0.0, 0usize);
            let mut metrics: std::collections::BTreeMap<String, f64> = Default::default();
            for batch in valid() {
                let len = <M::InnerModule as BatchObjective<B::InnerBackend>>::batch_len(&batch);
                let loss: f64 = valid_model.batch_loss(&batch).into_scalar().elem();
                total += loss * len as f64;
                n += len;
                for (name, value) in valid_model.batch_metrics(&batch) {
                    *metrics.entry(name).or_default() += value * len as f64;
                }
            }
            let metrics = metrics
                .into_iter()
                .map(|(name, sum)| (name, sum / n.max(1) as f64))
                .collect();
            ((n > 0).then(|| total / n as f64), metrics)
        },
        on_epoch,
    )
}

/// The loop both entry points share. `batches(epoch)` gives an epoch's batches, `step_loss` a
/// batch's mean loss and item count, `end_of_epoch` the validation loss and metrics.
#[allow(clippy::too_many_arguments)]
fn run_epochs<B, M, O, S, T, I>(
    config: &FitConfig,
    checkpoints: Option<&Checkpoints>,
    scheduler: &mut S,
    mut model: M,
    optimizer: &mut O,
    device: &B::Device,
    mut batches: impl FnMut(usize) -> I,
    step_loss: impl Fn(&M, &T) -> (Tensor<B, 1>, usize),
    mut end_of_epoch: impl FnMut(&M::InnerModule) -> (Option<f64>, Vec<(String, f64)>),
    mut on_epoch: impl FnMut(&EpochRecord),
) -> crate::Result<(M, History)>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    S: LrScheduler,
    I: IntoIterator<Item = T>,
{
    if let Some(c) = checkpoints
        && c.every == 0
    {
        return Err(Error::config("checkpoint every", "at least 1 epoch", 0));
    }
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
        let (mut weighted, mut items) = (0.0, 0usize);
        let mut lr = f64::NAN;
        for (b, batch) in batches(epoch).into_iter().enumerate() {
            let (loss, len) = step_loss(&model, &batch);
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
            weighted += value * len as f64;
            items += len;
        }
        if items == 0 {
            return Err(Error::config(
                "training batches",
                "at least one non-empty batch per epoch",
                format!("none in epoch {epoch}"),
            ));
        }
        let (val_loss, metrics) = end_of_epoch(&model.valid());
        let record = EpochRecord {
            epoch,
            loss: weighted / items as f64,
            val_loss,
            seconds: start.elapsed().as_secs_f64(),
            items,
            lr,
            metrics: metrics.into_iter().collect(),
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

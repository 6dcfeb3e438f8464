//! What a model says to be trained: one step's loss, its named parts and metrics, and any update
//! to state the optimiser does not own.

use burn::tensor::{ElementConversion, Tensor, backend::Backend};

/// Where the training loop is when it calls [`Objective::step`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepInfo {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Optimiser steps taken before this one in the whole run (so 0 at the first step); the
    /// clock of schedules such as KL annealing. Validation steps see the count of the epoch's
    /// end.
    pub step: usize,
    /// Batch within the epoch, from 1.
    pub batch: usize,
    /// The learning rate this step is taken with (NaN on validation batches).
    pub lr: f64,
    /// `true` on a training batch, `false` on a validation batch.
    pub training: bool,
}

/// A model's work on one batch, as the training loop uses it.
///
/// Implement it for every backend (`impl<B: Backend> Objective<B> for MyModel<B>`) so that the
/// same code gives the training step (on the autodiff backend) and the validation step (on the
/// inner backend, through `model.valid()`).
pub trait Objective<B: Backend>: Sized {
    /// One batch, as the data source gives it (host data such as
    /// [`WindowBatch`](rensa_data::sine::WindowBatch), or tensors a burn `Batcher` made).
    type Batch;

    /// The loss on `batch` and what else the step reports. `at` says where the loop is (epoch,
    /// global step, learning rate, training or validation).
    fn step(&self, batch: &Self::Batch, at: &StepInfo) -> Output<B, Self>;
}

/// What [`Objective::step`] returns.
///
/// ```
/// # use burn::tensor::{Tensor, backend::Backend};
/// # use rensa_train::Output;
/// # fn demo<B: Backend, M>(reconstruction: Tensor<B, 1>, kl: Tensor<B, 1>, beta: f64) -> Output<B, M> {
/// // A VAE's step: the loss is reconstruction + β·KL, and both parts go to the history.
/// Output::new(reconstruction.clone() + kl.clone() * beta, 32)
///     .with_part("reconstruction", reconstruction)
///     .with_part("kl", kl)
/// # }
/// ```
pub struct Output<B: Backend, M> {
    /// The mean loss over the batch, a one-element tensor: what the optimiser minimises (a
    /// tensor of another shape stops the run with an error naming it).
    pub loss: Tensor<B, 1>,
    /// Items in the batch (weights the epoch's means).
    pub items: usize,
    /// Named parts of the loss (one-element tensors), e.g. a VAE's reconstruction and KL terms:
    /// averaged over the epoch and recorded beside the loss.
    pub parts: Vec<(String, Tensor<B, 1>)>,
    /// Named metrics of the batch computed on the host, e.g. an exact-match rate or a codebook
    /// perplexity: averaged over the epoch and recorded.
    pub metrics: Vec<(String, f64)>,
    update: Option<Box<dyn FnOnce(M) -> M>>,
}

impl<B: Backend, M> Output<B, M> {
    /// A step's mean loss over `items` items.
    pub fn new(loss: Tensor<B, 1>, items: usize) -> Self {
        Self {
            loss,
            items,
            parts: Vec::new(),
            metrics: Vec::new(),
            update: None,
        }
    }

    /// Adds a named part of the loss.
    pub fn with_part(mut self, name: impl Into<String>, value: Tensor<B, 1>) -> Self {
        self.parts.push((name.into(), value));
        self
    }

    /// Adds a named metric.
    pub fn with_metric(mut self, name: impl Into<String>, value: f64) -> Self {
        self.metrics.push((name.into(), value));
        self
    }

    /// Changes the model after the optimiser's step (training batches only), for state the
    /// optimiser does not own: a VQ-VAE's EMA codebook, or weights a hand-written backward pass
    /// updates itself ([`Fit::run_manual`](crate::Fit::run_manual)).
    pub fn with_update(mut self, update: impl FnOnce(M) -> M + 'static) -> Self {
        self.update = Some(Box::new(update));
        self
    }

    /// Takes the update out (the loop applies it).
    pub(crate) fn take_update(&mut self) -> Option<Box<dyn FnOnce(M) -> M>> {
        self.update.take()
    }

    /// The loss and the parts as numbers, read from the device at once.
    ///
    /// # Errors
    /// A loss or part that is not a one-element tensor (a per-item loss not yet averaged).
    pub(crate) fn values(&self) -> crate::Result<(f64, Vec<(String, f64)>)> {
        let one = |t: &Tensor<B, 1>| t.dims() == [1];
        if !one(&self.loss) {
            return Err(crate::Error::config(
                "Output::loss",
                "a one-element tensor (the batch's mean loss)",
                format!("a tensor of shape {:?}", self.loss.dims()),
            ));
        }
        if let Some((name, part)) = self.parts.iter().find(|(_, p)| !one(p)) {
            return Err(crate::Error::config(
                "Output::parts",
                "one-element tensors",
                format!("part `{name}` of shape {:?}", part.dims()),
            ));
        }
        if self.parts.is_empty() {
            return Ok((self.loss.clone().into_scalar().elem(), Vec::new()));
        }
        let mut all = vec![self.loss.clone().detach()];
        all.extend(self.parts.iter().map(|(_, p)| p.clone().detach()));
        let values: Vec<f64> = Tensor::cat(all, 0)
            .into_data()
            .convert::<f64>()
            .to_vec()
            .expect("loss values");
        let parts = self
            .parts
            .iter()
            .zip(&values[1..])
            .map(|((name, _), &v)| (name.clone(), v))
            .collect();
        Ok((values[0], parts))
    }
}

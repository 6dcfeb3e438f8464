//! burn-train's step traits for the models (the `learner` feature), so that burn's own
//! `Learner` and `SupervisedTraining` train them as well as rensa-train's `Fit` does, with the
//! batchers its `DataLoaderBuilder` needs.
//!
//! ```ignore
//! let train = DataLoaderBuilder::new(WindowBatcher).batch_size(16).shuffle(0).build(InMemDataset::new(train_windows));
//! let valid = DataLoaderBuilder::new(WindowBatcher).batch_size(16).build(InMemDataset::new(valid_windows));
//! let result = SupervisedTraining::new("runs/learner", train, valid)
//!     .metric_train_numeric(LossMetric::new())
//!     .metric_valid_numeric(LossMetric::new())
//!     .num_epochs(80)
//!     .launch(Learner::new(model, AdamConfig::new().init(), 1e-3));
//! ```
//!
//! Both models report a `RegressionOutput` (the loss, and the predictions and targets as
//! `[items · steps, 1]`), so burn's loss metric applies as it is.

use burn::data::dataloader::batcher::Batcher;
use burn::module::{AutodiffModule, ModuleDisplay};
use burn::tensor::Tensor;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::train::{InferenceStep, RegressionOutput, TrainOutput, TrainStep};
use rensa_data::addition::Batch;
use rensa_data::sine::{Window, WindowBatch};
use rensa_nn::recurrent::{RecurrentBackend, RecurrentCell};

use crate::binary_addition::{Adder, Pairs, squared_error_loss};
use crate::seq2seq::Seq2Seq;

/// Lays out sine windows for burn's `DataLoader` (see [`WindowBatch::new`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowBatcher;

impl<B: Backend> Batcher<B, Window, WindowBatch> for WindowBatcher {
    fn batch(&self, items: Vec<Window>, _: &B::Device) -> WindowBatch {
        WindowBatch::new(&items.iter().collect::<Vec<_>>())
    }
}

/// Collects operand pairs for burn's `DataLoader`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PairBatcher;

impl<B: Backend> Batcher<B, (u32, u32), Pairs> for PairBatcher {
    fn batch(&self, items: Vec<(u32, u32)>, _: &B::Device) -> Pairs {
        items
    }
}

/// `[items, steps, 1]` predictions and targets as the `[items · steps, 1]` of a regression.
fn regression<B: Backend>(
    loss: Tensor<B, 1>,
    output: Tensor<B, 3>,
    targets: Tensor<B, 3>,
) -> RegressionOutput<B> {
    let [n, t, f] = output.dims();
    RegressionOutput::new(
        loss,
        output.reshape([n * t, f]),
        targets.reshape([n * t, f]),
    )
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> Seq2Seq<B, C> {
    /// Teacher-forced decoding of a batch as a regression (MSE loss).
    fn regression(&self, batch: &WindowBatch) -> RegressionOutput<B> {
        let (encoder_input, decoder_input, target) = batch.tensors::<B>(&self.device());
        let predicted = self.forward(encoder_input, decoder_input);
        let loss = (predicted.clone() - target.clone()).powi_scalar(2).mean();
        regression(loss, predicted, target)
    }
}

impl<B, C> TrainStep for Seq2Seq<B, C>
where
    B: AutodiffBackend + RecurrentBackend,
    C: RecurrentCell<B> + AutodiffModule<B> + ModuleDisplay,
    C::InnerModule: ModuleDisplay,
{
    type Input = WindowBatch;
    type Output = RegressionOutput<B>;

    fn step(&self, batch: WindowBatch) -> TrainOutput<RegressionOutput<B>> {
        let item = self.regression(&batch);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> InferenceStep for Seq2Seq<B, C> {
    type Input = WindowBatch;
    type Output = RegressionOutput<B>;

    fn step(&self, batch: WindowBatch) -> RegressionOutput<B> {
        self.regression(&batch)
    }
}

impl<B: RecurrentBackend> Adder<B> {
    /// The predicted bit probabilities of a batch as a regression (the squared-error loss).
    fn regression(&self, pairs: &Pairs) -> RegressionOutput<B> {
        let batch = Batch::<B>::new(pairs, &self.output.weight.device());
        let y = self.forward(batch.inputs);
        let loss = squared_error_loss(y.clone(), batch.targets.clone());
        regression(loss, y, batch.targets)
    }
}

impl<B: AutodiffBackend + RecurrentBackend> TrainStep for Adder<B> {
    type Input = Pairs;
    type Output = RegressionOutput<B>;

    fn step(&self, pairs: Pairs) -> TrainOutput<RegressionOutput<B>> {
        let item = self.regression(&pairs);
        TrainOutput::new(self, item.loss.backward(), item)
    }
}

impl<B: RecurrentBackend> InferenceStep for Adder<B> {
    type Input = Pairs;
    type Output = RegressionOutput<B>;

    fn step(&self, pairs: Pairs) -> RegressionOutput<B> {
        self.regression(&pairs)
    }
}

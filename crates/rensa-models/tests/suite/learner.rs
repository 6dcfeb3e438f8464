//! burn users keep the tool they know: burn-train's `Learner` trains the seq2seq model through
//! the `TrainStep`/`InferenceStep` implementations of the `learner` feature.

use burn::backend::{Autodiff, NdArray};
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::InMemDataset;
use burn::optim::AdamConfig;
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::{LossMetric, MetricDefinition};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};
use burn::train::{Learner, SupervisedTraining};
use rensa_data::sine::{WindowBatch, windows};
use rensa_models::learner::WindowBatcher;
use rensa_models::seq2seq::Seq2SeqConfig;
use rensa_nn::recurrent::RnnConfig;
use rensa_train::Objective;
use std::sync::Arc;

type Inner = NdArray;
type B = Autodiff<Inner>;

/// Renders nothing: the test runs headless and quiet.
struct Silent;

impl MetricsRendererTraining for Silent {
    fn update_train(&mut self, _: MetricState) {}
    fn update_valid(&mut self, _: MetricState) {}
    fn render_train(&mut self, _: TrainingProgress, _: Vec<ProgressType>) {}
    fn render_valid(&mut self, _: TrainingProgress, _: Vec<ProgressType>) {}
}

impl MetricsRendererEvaluation for Silent {
    fn update_test(&mut self, _: EvaluationName, _: MetricState) {}
    fn render_test(&mut self, _: EvaluationProgress, _: Vec<ProgressType>) {}
}

impl MetricsRenderer for Silent {
    fn manual_close(&mut self) {}
    fn register_metric(&mut self, _: MetricDefinition) {}
}

#[test]
fn burns_learner_trains_the_seq2seq_model() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let all = windows();
    let (train, valid) = all.split_at(60);
    // burn's Learner does not seed the backend: the start is fixed here.
    <B as burn::tensor::backend::Backend>::seed(&device, 0);
    let model = Seq2SeqConfig::new(10)
        .init::<B, RnnConfig>(&device)
        .unwrap();
    let step = rensa_train::StepInfo {
        epoch: 1,
        step: 0,
        batch: 1,
        lr: f64::NAN,
        training: false,
    };
    let every_valid = WindowBatch::new(&valid.iter().collect::<Vec<_>>());
    let before: f64 =
        rensa_testkit::to_f64_vec(Objective::<B>::step(&model, &every_valid, &step).loss)[0];

    let train_loader: Arc<dyn DataLoader<B, WindowBatch>> = DataLoaderBuilder::new(WindowBatcher)
        .batch_size(16)
        .shuffle(0)
        .build(InMemDataset::new(train.to_vec()));
    let valid_loader: Arc<dyn DataLoader<Inner, WindowBatch>> =
        DataLoaderBuilder::new(WindowBatcher)
            .batch_size(16)
            .build(InMemDataset::new(valid.to_vec()));
    let dir = std::env::temp_dir().join(format!("rensa-learner-{}", std::process::id()));
    let result = SupervisedTraining::new(&dir, train_loader, valid_loader)
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .with_metric_logger(InMemoryMetricLogger::new())
        .with_application_logger(None)
        .renderer(Silent)
        .num_epochs(30)
        .launch(Learner::new(
            model,
            AdamConfig::new().with_epsilon(1e-7).init(),
            1e-2,
        ));
    let trained = result.model;
    let after: f64 =
        rensa_testkit::to_f64_vec(Objective::<Inner>::step(&trained, &every_valid, &step).loss)[0];
    assert!(
        after < before / 10.0,
        "validation MSE went from {before} to {after} in 30 epochs"
    );
    let _ = std::fs::remove_dir_all(dir);
}

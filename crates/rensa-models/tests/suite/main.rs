//! rensa-models' tests in one binary (one link of burn, wgpu and CubeCL instead of four). Tests
//! that seed burn's shared ndarray generator or draw from it hold `rensa_testkit::rng_lock()`.

mod binary_addition_gradients;
mod binary_addition_train;
mod hred;
mod learner;
mod seq2seq;
mod token_seq2seq;
mod vae;
mod vqvae;
mod word2vec;

use rensa_models::binary_addition::{InitScheme, Weights};
use rensa_testkit::TestBackend;

/// The course's adder (16 hidden units, normally drawn weights) after seeding burn's shared
/// generator with `seed`. Callers hold `rensa_testkit::rng_lock()`.
fn course_weights(
    seed: u64,
    device: &burn::backend::ndarray::NdArrayDevice,
) -> Weights<TestBackend> {
    <TestBackend as burn::tensor::backend::Backend>::seed(device, seed);
    Weights::init(16, InitScheme::Normal, device)
}

/// Trains `model` on ndarray with `optimizer` on `items`, batched by `batch` (a tenth or more held
/// out as `config` says), as an example's `main` does; returns the model and its history.
fn train<M, T, X>(
    model: M,
    config: rensa_train::FitConfig,
    optimizer: burn::optim::AdamConfig,
    items: &[T],
    batch: impl Fn(&[&T]) -> X,
) -> (M, rensa_train::History)
where
    M: burn::module::AutodiffModule<TrainBackend> + rensa_train::Objective<TrainBackend, Batch = X>,
    M::InnerModule: rensa_train::Objective<TestBackend, Batch = X>,
{
    let device = Default::default();
    rensa_train::Fit::new(config)
        .run(
            model,
            &mut optimizer.init(),
            rensa_train::Items::new(items, batch),
            &device,
        )
        .expect("training runs")
}

/// The autodiff backend of the training tests.
type TrainBackend = burn::backend::Autodiff<TestBackend>;

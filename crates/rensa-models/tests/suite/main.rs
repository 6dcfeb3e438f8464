//! rensa-models' tests in one binary (one link of burn, wgpu and CubeCL instead of four). Tests
//! that seed burn's shared ndarray generator or draw from it hold `rensa_testkit::rng_lock()`.

mod binary_addition_gradients;
mod binary_addition_train;
mod learner;
mod seq2seq;
mod token_seq2seq;

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

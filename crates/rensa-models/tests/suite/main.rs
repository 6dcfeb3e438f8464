//! rensa-models' tests in one binary (one link of burn, wgpu and CubeCL instead of four). Tests
//! that seed burn's shared ndarray generator or draw from it hold `rensa_testkit::rng_lock()`.

mod binary_addition_gradients;
mod binary_addition_train;
mod learner;
mod seq2seq;

//! rensa: sequence and generative models on [burn](https://burn.dev).
//!
//! This umbrella crate re-exports the library crates so that one dependency is enough:
//!
//! | module | crate | what |
//! | --- | --- | --- |
//! | [`nn`] | `rensa-nn` | activations with derivatives, initialisers, RNN/LSTM/GRU layers |
//! | [`augment`] | `rensa-augment` | image augmentation: seeded pipelines, CPU u8 kernels, a batched tensor path |
//! | [`train`] | `rensa-train` | the training loop: epochs, validation split, history, early stopping |
//!
//! Enable the `ndarray` and/or `wgpu` feature for the backends you run on.

pub use rensa_augment as augment;
pub use rensa_nn as nn;
pub use rensa_train as train;

//! rensa: sequence and generative models on [burn](https://burn.dev).
//!
//! This umbrella crate re-exports the library crates so that one dependency is enough:
//!
//! | module | crate | what |
//! | --- | --- | --- |
//! | [`nn`] | `rensa-nn` | activations with derivatives, initialisers, RNN/LSTM/GRU layers |
//! | [`models`] | `rensa-models` | whole models: the binary-addition RNN, seq2seq encoder-decoders |
//! | [`data`] | `rensa-data` | datasets and batchers: sine windows, addition pairs, seeded sampling |
//! | [`augment`] | `rensa-augment` | image augmentation: seeded pipelines, CPU u8 kernels, a batched tensor path |
//! | [`train`] | `rensa-train` | the training loop: multi-part losses, validation, history, plots, checkpoints |
//!
//! Enable the `ndarray` and/or `wgpu` feature for the backends you run on, and `learner` to
//! train the models with burn-train's `Learner` as well.

pub use rensa_augment as augment;
pub use rensa_data as data;
pub use rensa_models as models;
pub use rensa_nn as nn;
pub use rensa_train as train;

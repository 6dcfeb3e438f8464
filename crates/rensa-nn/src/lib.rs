//! Layers for sequence models on [burn](https://burn.dev): activations with their explicit derivatives, weight
//! initialisers, recurrent networks (simple RNN, LSTM, GRU; stacked, bidirectional, masked),
//! attention (Bahdanau's additive score, Luong's dot, general and concat), convolutions as one
//! GEMM (plain and transposed) and latent layers
//! (a reparameterised Gaussian, a vector quantiser with EMA codebook updates), and the Bernoulli
//! likelihood of logits as one fused loss.
//!
//! Everything is generic over a burn backend; the recurrent layers over
//! [`RecurrentBackend`](recurrent::RecurrentBackend), which every backend rensa supports
//! implements (enable the `ndarray` and/or `wgpu` feature).
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use burn::tensor::Tensor;
//! use rensa_nn::recurrent::{LstmConfig, SequenceInput};
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! // Two stacked, bidirectional LSTM layers over 8 features, 16 hidden units per direction.
//! let lstm = LstmConfig::new(8, 16)
//!     .with_num_layers(2)
//!     .with_bidirectional(true)
//!     .init::<B>(&device)
//!     .unwrap();
//! let x = Tensor::<B, 3>::zeros([4, 10, 8], &device); // [batch, time, features]
//! // Sequences of lengths 10, 7, 3 and 1 (right-padded).
//! let out = lstm.forward(SequenceInput::new(x).with_lengths(&[10, 7, 3, 1]));
//! assert_eq!(out.output.dims(), [4, 10, 32]); // both directions concatenated
//! assert_eq!(out.state.hidden.dims(), [4, 4, 16]); // [layers * directions, batch, hidden]
//! ```

pub mod activation;
pub mod attention;
pub mod conv;
pub mod dense;
mod error;
pub mod init;
pub mod latent;
pub mod loss;
pub mod optim;
pub mod recurrent;

pub use error::{Error, Result, at_least_one};

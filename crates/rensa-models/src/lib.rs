//! Whole models built on rensa's layers, generic over the burn backend, each trainable with
//! rensa-train's [`Fit`](rensa_train::Fit) (they implement [`Objective`](rensa_train::Objective))
//! and, with the `learner` feature, with burn-train's `Learner`.
//!
//! - [`binary_addition`]: the RNN that learns 8-bit binary addition one bit at a time, with its
//!   backpropagation through time written out by hand ([`binary_addition::HandTrained`]) and
//!   the same network on rensa's layers for autodiff ([`binary_addition::Adder`]);
//! - [`seq2seq`]: an encoder-decoder over any recurrent cell, trained with teacher forcing and
//!   run autoregressively (the sin → cos exercise);
//! - [`hred`]: HRED, the hierarchical encoder-decoder for dialogue (an utterance encoder, a
//!   context encoder over the turns, a decoder), and with a latent variable per response
//!   [`vhred`];
//! - [`vae`]: the variational autoencoder (MLP and convolutional) over grey images;
//! - [`vqvae`]: the VQ-VAE (a discrete codebook) and the recurrent prior over its code grids;
//! - [`word2vec`]: CBOW and skip-gram with negative sampling or hierarchical softmax, a
//!   lock-free multi-threaded CPU trainer, the word2vec file formats and gensim's evaluations.
//!
//! ```
//! use burn::backend::{Autodiff, NdArray};
//! use burn::optim::AdamConfig;
//! use rensa_data::sine::{WindowBatch, windows};
//! use rensa_models::seq2seq::Seq2SeqConfig;
//! use rensa_nn::recurrent::RnnConfig;
//! use rensa_train::{Fit, FitConfig, Items};
//!
//! type B = Autodiff<NdArray>;
//! let device = Default::default();
//! let model = Seq2SeqConfig::new(10).init::<B, RnnConfig>(&device).unwrap();
//! let windows = windows();
//! let config = FitConfig::for_epochs(2, 16).with_validation_split(0.2);
//! let (model, history) = Fit::new(config)
//!     .run(model, &mut AdamConfig::new().init(), Items::new(&windows, WindowBatch::new), &device)
//!     .unwrap();
//! assert_eq!(history.epochs.len(), 2);
//! let cos = model.predict(&windows[0].encoder_input, 24, &device);
//! assert_eq!(cos.len(), 24);
//! ```

pub mod binary_addition;
pub mod hred;
#[cfg(feature = "learner")]
pub mod learner;
pub mod seq2seq;
pub mod vae;
pub mod vhred;
pub mod vqvae;
pub mod word2vec;

/// Checks that images of `rows x cols` pixels fit two stride-2 layers (a 4x smaller grid).
fn quarter_sides(rows: usize, cols: usize) -> rensa_nn::Result<()> {
    if rows % 4 != 0 || cols % 4 != 0 {
        return Err(rensa_nn::Error::config(
            "rows",
            "sides that are multiples of 4 (two stride-2 layers)",
            format!("{rows} x {cols}"),
        ));
    }
    Ok(())
}

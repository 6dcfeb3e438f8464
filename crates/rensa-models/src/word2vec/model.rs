//! A word2vec model: its vocabulary, its two weight matrices and how it trains.

use rensa_data::rng::SplitMix64;
use rensa_data::text::corpus::Corpus;
use rensa_data::text::words::{WordCounts, WordVocab};
use serde::{Deserialize, Serialize};

use super::Result;
use super::config::{Loss, Word2VecConfig};
use super::cpu;
use super::vectors::Embeddings;

/// Where a training run is, reported after every job of about 10,000 words.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The epoch being read (0-based).
    pub epoch: usize,
    /// Corpus words trained on so far, all epochs together.
    pub words: u64,
    /// Corpus words of the whole run (epochs × corpus).
    pub total_words: u64,
    /// The current learning rate.
    pub alpha: f32,
    /// The mean loss per prediction of the last job (with `compute_loss`).
    pub loss: Option<f64>,
    /// Seconds since training started.
    pub seconds: f64,
}

/// What a training run did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TrainReport {
    /// Seconds of training (the vocabulary scan not included, as in gensim's `train`).
    pub seconds: f64,
    /// Corpus words processed, all epochs (gensim's "raw words").
    pub words: u64,
    /// Words left after dropping rare words and subsampling (gensim's "effective words").
    pub effective_words: u64,
    /// Corpus words per second.
    pub words_per_second: f64,
    /// `(words so far, mean loss per prediction)` per job, with `compute_loss`.
    pub losses: Vec<(u64, f64)>,
}

/// A word2vec model (see the [module docs](super)).
#[derive(Clone, Debug)]
pub struct Word2Vec {
    config: Word2VecConfig,
    vocab: WordVocab,
    input: Vec<f32>,
    output: Vec<f32>,
}

impl Word2Vec {
    /// Builds the vocabulary of `corpus` (one streaming pass), initialises the model and trains
    /// it on the CPU with `config.threads` threads; `progress` hears about every job.
    ///
    /// # Errors
    /// A bad configuration, an unreadable corpus, or no word left after `min_count`.
    pub fn train(
        config: &Word2VecConfig,
        corpus: &Corpus,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(Self, TrainReport)> {
        config.validate()?;
        let counts = WordCounts::scan(corpus)?;
        let vocab = WordVocab::build(&counts, config.min_count, config.max_vocab)?;
        let mut model = Self::new(config.clone(), vocab)?;
        let report = model.fit(corpus, progress)?;
        Ok((model, report))
    }

    /// A model over `vocab`, untrained: input vectors uniform in `[-1/dims, 1/dims)` (gensim 4's
    /// initialisation; word2vec.c draws from half that range), output weights zero.
    ///
    /// # Errors
    /// A bad configuration, or hierarchical softmax over fewer than two words.
    pub fn new(config: Word2VecConfig, vocab: WordVocab) -> Result<Self> {
        config.validate()?;
        let rows = vocab.len();
        let output_rows = match config.loss {
            Loss::NegativeSampling => rows,
            Loss::HierarchicalSoftmax if rows >= 2 => rows - 1,
            Loss::HierarchicalSoftmax => {
                return Err(rensa_nn::Error::config(
                    "loss",
                    "negative sampling for a vocabulary of one word",
                    "hierarchical softmax",
                )
                .into());
            }
        };
        let dims = config.dims;
        let mut rng = SplitMix64::new(config.seed);
        let input = (0..rows * dims)
            .map(|_| {
                (2.0 * (rng.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 1.0) / dims as f32
            })
            .collect();
        Ok(Self {
            input,
            output: vec![0.0; output_rows * dims],
            config,
            vocab,
        })
    }

    /// Trains for `config.epochs` more passes over `corpus` (the learning rate decays from
    /// `alpha` to `min_alpha` again).
    ///
    /// # Errors
    /// The corpus cannot be read, or training diverged (a weight became infinite or NaN, see
    /// [`check_finite`](Self::check_finite)).
    pub fn fit(
        &mut self,
        corpus: &Corpus,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<TrainReport> {
        let report = cpu::fit(
            &self.config,
            &self.vocab,
            corpus,
            (&mut self.input, &mut self.output),
            progress,
        )?;
        self.check_finite()?;
        Ok(report)
    }

    /// Checks that every weight is finite, as training leaves them unless it diverged (a
    /// learning rate far too large lets the vectors overflow).
    ///
    /// # Errors
    /// [`Error::Vectors`](super::Error::Vectors) naming the first word or output row with a
    /// non-finite weight and the learning rate.
    pub fn check_finite(&self) -> Result<()> {
        let dims = self.config.dims.max(1);
        let diverged = |what: String| {
            Err(super::Error::Vectors(format!(
                "training diverged: {what} holds a non-finite weight (alpha {}; a smaller one \
                 keeps the weights finite)",
                self.config.alpha
            )))
        };
        if let Some(at) = self.input.iter().position(|v| !v.is_finite()) {
            return diverged(format!("the vector of {:?}", self.vocab.words()[at / dims]));
        }
        if let Some(at) = self.output.iter().position(|v| !v.is_finite()) {
            return diverged(format!("output row {}", at / dims));
        }
        Ok(())
    }

    /// The input and output weights, for a trainer.
    pub(crate) fn weights_mut(&mut self) -> (&mut [f32], &mut [f32]) {
        (&mut self.input, &mut self.output)
    }

    /// The settings.
    pub fn config(&self) -> &Word2VecConfig {
        &self.config
    }

    /// The vocabulary.
    pub fn vocab(&self) -> &WordVocab {
        &self.vocab
    }

    /// The input vectors (the word vectors), row-major `[vocab, dims]`.
    pub fn input(&self) -> &[f32] {
        &self.input
    }

    /// The output weights (negative sampling: one row per word; hierarchical softmax: one per
    /// inner node of the Huffman tree), row-major.
    pub fn output(&self) -> &[f32] {
        &self.output
    }

    /// The word vectors, for queries and saving.
    ///
    /// # Errors
    /// A vector holds a non-finite value (training diverged; [`fit`](Self::fit) says so too).
    pub fn embeddings(&self) -> Result<Embeddings> {
        Embeddings::new(
            self.vocab.words().to_vec(),
            self.config.dims,
            self.input.clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::word2vec::Architecture;

    #[test]
    fn weights_that_diverged_are_an_error_naming_the_word() {
        let vocab = WordVocab::from_counts(vec![("a".into(), 3), ("b".into(), 2)], 5).unwrap();
        let config = Word2VecConfig {
            dims: 4,
            ..Word2VecConfig::new(Architecture::Cbow)
        };
        let mut model = Word2Vec::new(config, vocab).unwrap();
        assert!(model.check_finite().is_ok() && model.embeddings().is_ok());
        model.input[5] = f32::INFINITY;
        let e = model.check_finite().unwrap_err().to_string();
        assert!(e.contains("diverged") && e.contains("\"b\""), "{e}");
        assert!(model.embeddings().is_err());
        model.input[5] = 0.0;
        model.output[2] = f32::NAN;
        let e = model.check_finite().unwrap_err().to_string();
        assert!(e.contains("output row 0"), "{e}");
    }
}

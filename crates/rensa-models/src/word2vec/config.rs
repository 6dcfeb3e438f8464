//! What a word2vec run is: the architecture, the loss and the hyperparameters.

use serde::{Deserialize, Serialize};

use rensa_data::text::corpus::MAX_SENTENCE_LENGTH;

use super::Result;

/// The most noise words per prediction [`Word2VecConfig::validate`] accepts.
pub const MAX_NEGATIVE: usize = 1_000;
/// The most worker threads [`Word2VecConfig::validate`] accepts.
pub const MAX_THREADS: usize = 1_024;
/// The default of [`Word2VecConfig::own_rows_bytes`]: 32 MiB, 83,886 rows of 100 dimensions.
pub const DEFAULT_OWN_ROWS_BYTES: usize = 32 << 20;
/// The default of [`Word2VecConfig::hot_rows_bytes`]: 1 MiB, 2,621 rows of 100 dimensions.
pub const DEFAULT_HOT_ROWS_BYTES: usize = 1 << 20;
/// The default of [`Word2VecConfig::merge_words`].
pub const DEFAULT_MERGE_WORDS: u64 = 40_000;
/// The default of [`Word2VecConfig::own_merge_words`].
pub const DEFAULT_OWN_MERGE_WORDS: u64 = 1_000_000;

// A configuration saved before these fields existed reads as it trained: before
// `own_rows_bytes`, each worker copied 1 MiB of each matrix; before `hot_rows_bytes`, it merged
// every own row every `merge_words` (all of them hot: the bytes are cut to the own rows).

fn saved_own_rows_bytes() -> usize {
    1 << 20
}

fn saved_hot_rows_bytes() -> usize {
    usize::MAX
}

fn default_own_merge_words() -> u64 {
    DEFAULT_OWN_MERGE_WORDS
}

fn default_merge_words() -> u64 {
    DEFAULT_MERGE_WORDS
}

/// Which word predicts which.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// Continuous bag of words: the (mean of the) context vectors predict the centre word.
    Cbow,
    /// Skip-gram: each context word's vector predicts the centre word (gensim's and
    /// word2vec.c's pairing; the same pairs as the centre predicting each context word).
    SkipGram,
}

/// How the softmax over the vocabulary is avoided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Loss {
    /// Negative sampling: the true word against `negative` noise words drawn from the
    /// unigram^0.75 distribution, each a logistic regression.
    NegativeSampling,
    /// Hierarchical softmax: a binary decision at each inner node on the word's path in a
    /// Huffman tree of the vocabulary (about log₂ V decisions per prediction).
    HierarchicalSoftmax,
}

/// The settings of a word2vec run; the defaults are gensim's (and the benchmark's): 100
/// dimensions, window 5, 5 negatives, sample 1e-3, min count 5, 5 epochs, learning rate 0.025
/// decaying linearly to 0.0001.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Word2VecConfig {
    /// CBOW or skip-gram.
    pub architecture: Architecture,
    /// Negative sampling or hierarchical softmax.
    pub loss: Loss,
    /// The size of each word vector.
    pub dims: usize,
    /// The largest context radius (each position draws its radius from `1..=window`).
    pub window: usize,
    /// Noise words per prediction (negative sampling).
    pub negative: usize,
    /// The exponent of the noise distribution.
    pub ns_exponent: f64,
    /// The subsampling threshold (0 turns subsampling off).
    pub sample: f64,
    /// Words rarer than this are dropped from the vocabulary.
    pub min_count: u64,
    /// At most this many words when given, chosen as gensim's `max_final_vocab` chooses them
    /// (the minimum count raised so that no class of equally frequent words is cut).
    pub max_vocab: Option<usize>,
    /// Passes over the corpus.
    pub epochs: usize,
    /// The learning rate at the start.
    pub alpha: f32,
    /// The learning rate at the end (it decays linearly in the words processed).
    pub min_alpha: f32,
    /// CBOW: average the context vectors (else sum them).
    pub cbow_mean: bool,
    /// Worker threads of the CPU trainer. One trains reproducibly, bit for bit; more train
    /// lock-free on shared weights (Hogwild), each with its own copy of the most frequent
    /// words' rows (`own_rows_bytes`), whose changes it merges into the shared ones: those of
    /// the most used rows (`hot_rows_bytes`) every `merge_words` corpus words, the others
    /// about every `own_merge_words`.
    pub threads: usize,
    /// With two threads or more: the bytes of each weight matrix's most used rows (the most
    /// frequent words'; with hierarchical softmax the output matrix's inner nodes nearest the
    /// root) that every worker keeps a copy of; 0 shares every row. Each worker holds two
    /// copies of them (its rows, and their state at its last merge) for each of the two
    /// matrices: with `threads` workers up to `4 * threads * own_rows_bytes` bytes beside the
    /// weights (256 MiB for two workers, 8 GiB for 64 at the default; lower it for many workers
    /// and a large vocabulary). The default, 32 MiB, holds every row of a vocabulary of up to
    /// 83,886 words of 100 dimensions: the workers then never write to the same memory while
    /// they train.
    #[serde(default = "saved_own_rows_bytes")]
    pub own_rows_bytes: usize,
    /// With two threads or more: the bytes of the most used of the own rows, merged every
    /// `merge_words` (cut to `own_rows_bytes`). The default, 1 MiB, are the rows every worker
    /// changes all the time, which must not drift apart for long.
    #[serde(default = "saved_hot_rows_bytes")]
    pub hot_rows_bytes: usize,
    /// With two threads or more: the corpus words a worker trains on between two merges of its
    /// hot rows into the shared ones (and once at its end, with every own row).
    #[serde(default = "default_merge_words")]
    pub merge_words: u64,
    /// With two threads or more: about how many corpus words a worker trains on between two
    /// merges of each own row that is not hot; every merge (every `merge_words`) takes the next
    /// slice of them, so a value at most `merge_words` merges them all every time.
    #[serde(default = "default_own_merge_words")]
    pub own_merge_words: u64,
    /// The seed of the initial vectors and of every draw.
    pub seed: u64,
    /// Track the loss (costs a logarithm per prediction).
    pub compute_loss: bool,
}

impl Default for Word2VecConfig {
    fn default() -> Self {
        Self {
            architecture: Architecture::Cbow,
            loss: Loss::NegativeSampling,
            dims: 100,
            window: 5,
            negative: 5,
            ns_exponent: 0.75,
            sample: 1e-3,
            min_count: 5,
            max_vocab: None,
            epochs: 5,
            alpha: 0.025,
            min_alpha: 0.0001,
            cbow_mean: true,
            threads: 1,
            own_rows_bytes: DEFAULT_OWN_ROWS_BYTES,
            hot_rows_bytes: DEFAULT_HOT_ROWS_BYTES,
            merge_words: DEFAULT_MERGE_WORDS,
            own_merge_words: DEFAULT_OWN_MERGE_WORDS,
            seed: 1,
            compute_loss: false,
        }
    }
}

impl Word2VecConfig {
    /// The defaults with another architecture.
    pub fn new(architecture: Architecture) -> Self {
        Self {
            architecture,
            ..Self::default()
        }
    }

    /// [`validate`](Self::validate), and what the batched trainer
    /// ([`Word2Vec::fit_tensor`](super::Word2Vec::fit_tensor)) needs besides: negative sampling
    /// and a `batch` of at least one prediction.
    ///
    /// # Errors
    /// The first field out of range, named.
    pub fn validate_tensor(&self, batch: usize) -> Result<()> {
        self.validate()?;
        if self.loss != Loss::NegativeSampling {
            return Err(rensa_nn::Error::config(
                "loss",
                "negative sampling for the tensor trainer (hierarchical softmax trains on the CPU)",
                "hierarchical softmax",
            )
            .into());
        }
        if batch == 0 {
            return Err(rensa_nn::Error::config("batch", "at least 1", "0").into());
        }
        Ok(())
    }

    /// Checks every field before any work starts.
    ///
    /// # Errors
    /// The first field out of range, named.
    pub fn validate(&self) -> Result<()> {
        let bad = |field, expected, got: String| {
            Err(rensa_nn::Error::config(field, expected, got).into())
        };
        for (field, v) in [
            ("dims", self.dims),
            ("window", self.window),
            ("epochs", self.epochs),
            ("threads", self.threads),
        ] {
            if v == 0 {
                return bad(field, "at least 1", v.to_string());
            }
        }
        // the most rensa's word2vec reader takes in: a model it could not read back is refused
        if self.dims as u64 > super::format::MAX_DIMS {
            return bad(
                "dims",
                "at most 2^20 (the largest a word2vec file may hold)",
                self.dims.to_string(),
            );
        }
        if self.loss == Loss::NegativeSampling && self.negative == 0 {
            return bad("negative", "at least 1 with negative sampling", "0".into());
        }
        // bounds far above any useful setting that keep the index arithmetic and the buffers
        // sized from them (a window's span, a prediction's noise draws, the job queue) finite
        for (field, v, max, expected) in [
            (
                "window",
                self.window,
                MAX_SENTENCE_LENGTH,
                "at most 10,000 (the longest sentence)",
            ),
            ("negative", self.negative, MAX_NEGATIVE, "at most 1,000"),
            ("threads", self.threads, MAX_THREADS, "at most 1,024"),
        ] {
            if v > max {
                return bad(field, expected, v.to_string());
            }
        }
        if !(self.sample.is_finite() && self.sample >= 0.0) {
            return bad("sample", "finite and >= 0", self.sample.to_string());
        }
        if !self.ns_exponent.is_finite() {
            return bad("ns_exponent", "finite", self.ns_exponent.to_string());
        }
        if !(self.alpha.is_finite() && self.alpha > 0.0) {
            return bad("alpha", "finite and > 0", self.alpha.to_string());
        }
        if !(self.min_alpha.is_finite() && self.min_alpha >= 0.0 && self.min_alpha <= self.alpha) {
            return bad(
                "min_alpha",
                "finite, >= 0 and <= alpha",
                self.min_alpha.to_string(),
            );
        }
        if self.merge_words == 0 {
            return bad("merge_words", "at least 1", "0".into());
        }
        if self.own_merge_words == 0 {
            return bad("own_merge_words", "at least 1", "0".into());
        }
        if self.max_vocab == Some(0) {
            return bad("max_vocab", "at least 1 when given", "0".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_saved_before_the_hot_rows_trains_as_it_did() {
        let saved = |own_rows_bytes: Option<usize>| {
            let mut fields = serde_json::to_value(Word2VecConfig::default()).unwrap();
            let fields = fields.as_object_mut().unwrap();
            for field in ["own_rows_bytes", "hot_rows_bytes", "own_merge_words"] {
                fields.remove(field);
            }
            if let Some(bytes) = own_rows_bytes {
                fields.insert("own_rows_bytes".into(), bytes.into());
            }
            serde_json::from_value::<Word2VecConfig>(fields.clone().into()).unwrap()
        };
        // with its own rows (a tuned 4 MiB): every one of them is hot, merged every merge_words
        let read = saved(Some(4 << 20));
        assert_eq!(read.own_rows_bytes, 4 << 20);
        assert!(read.hot_rows_bytes >= read.own_rows_bytes);
        // from before the own rows were a setting: the 1 MiB each worker copied then
        let read = saved(None);
        assert_eq!(read.own_rows_bytes, 1 << 20);
        assert!(read.hot_rows_bytes >= read.own_rows_bytes);
        read.validate().unwrap();
        // what is saved now reads back as it is
        let now = Word2VecConfig::default();
        let back: Word2VecConfig =
            serde_json::from_value(serde_json::to_value(&now).unwrap()).unwrap();
        assert_eq!(
            (
                back.own_rows_bytes,
                back.hot_rows_bytes,
                back.own_merge_words
            ),
            (
                DEFAULT_OWN_ROWS_BYTES,
                DEFAULT_HOT_ROWS_BYTES,
                DEFAULT_OWN_MERGE_WORDS
            )
        );
    }
}

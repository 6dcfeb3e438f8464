//! Word counts and a frequency-ranked vocabulary.

use std::collections::HashMap;
use std::io::BufRead;

use super::corpus::{Corpus, MAX_SENTENCE_LENGTH, Sentence, for_each_sentence};
use crate::{DataError, Result};

/// How often each word occurs in a corpus, and where it first occurs.
#[derive(Clone, Debug, Default)]
pub struct WordCounts {
    counts: HashMap<String, (u64, u64)>,
    corpus_words: u64,
    sentences: u64,
}

impl WordCounts {
    /// Counts the words of `corpus`, streaming it.
    ///
    /// # Errors
    /// As [`Corpus::for_each_sentence`].
    pub fn scan(corpus: &Corpus) -> Result<Self> {
        let mut counts = Self::default();
        corpus.for_each_sentence(|s| counts.add(s))?;
        Ok(counts)
    }

    /// Counts the words read from `reader` (`origin` in errors).
    ///
    /// # Errors
    /// As [`for_each_sentence`].
    pub fn from_reader(reader: impl BufRead, origin: &str) -> Result<Self> {
        let mut counts = Self::default();
        for_each_sentence(reader, origin, MAX_SENTENCE_LENGTH, |s| counts.add(s))?;
        Ok(counts)
    }

    /// Adds the words of one sentence.
    pub fn add(&mut self, sentence: &Sentence) {
        self.add_tokens(sentence.tokens());
    }

    /// Adds the words of one sentence given as tokens.
    pub fn add_tokens<'a>(&mut self, tokens: impl IntoIterator<Item = &'a str>) {
        for token in tokens {
            let order = self.counts.len() as u64;
            match self.counts.get_mut(token) {
                Some((count, _)) => *count += 1,
                None => {
                    self.counts.insert(token.to_string(), (1, order));
                }
            }
            self.corpus_words += 1;
        }
        self.sentences += 1;
    }

    /// All tokens read, vocabulary or not.
    pub fn corpus_words(&self) -> u64 {
        self.corpus_words
    }

    /// The sentences read.
    pub fn sentences(&self) -> u64 {
        self.sentences
    }

    /// The number of distinct words.
    pub fn distinct(&self) -> usize {
        self.counts.len()
    }

    /// How often `word` occurs.
    pub fn count(&self, word: &str) -> u64 {
        self.counts.get(word).map_or(0, |c| c.0)
    }
}

/// The vocabulary a model is trained on: words ranked by count, most frequent first, each with
/// its count. Words of equal count are in reverse order of first appearance, as gensim's
/// `KeyedVectors.sort_by_descending_frequency` ranks them, so that the two hold the same words
/// at the same ranks (and an evaluation restricted to the top 30,000 asks the same questions).
#[derive(Clone, Debug, PartialEq)]
pub struct WordVocab {
    words: Vec<String>,
    counts: Vec<u64>,
    index: HashMap<String, u32>,
    corpus_words: u64,
}

impl WordVocab {
    /// The words of `counts` that occur at least `min_count` times; with `max_size`, at most that
    /// many, chosen as gensim's `max_final_vocab` chooses them: the minimum count rises to one
    /// above the count of the word ranked `max_size + 1` (from 1) among all words, so a class of
    /// equally frequent words is kept whole or dropped whole, never cut by rank.
    ///
    /// # Errors
    /// No word is left (an empty corpus, a `min_count` above every count, or a `max_size` smaller
    /// than the most frequent words' tie class), or `max_size` is 0.
    pub fn build(counts: &WordCounts, min_count: u64, max_size: Option<usize>) -> Result<Self> {
        if max_size == Some(0) {
            return Err(vocab_err("max_size must be at least 1".into()));
        }
        let mut min = min_count.max(1);
        if let Some(max) = max_size.filter(|&m| m < counts.distinct()) {
            let mut all: Vec<u64> = counts.counts.values().map(|&(c, _)| c).collect();
            let (_, &mut next, _) = all.select_nth_unstable_by(max, |a, b| b.cmp(a));
            min = min.max(next + 1);
        }
        let mut kept: Vec<(&String, u64, u64)> = counts
            .counts
            .iter()
            .filter(|(_, (c, _))| *c >= min)
            .map(|(w, &(c, first))| (w, c, first))
            .collect();
        if kept.is_empty() {
            let why = if min > min_count.max(1) {
                format!(
                    " (the cap of {} words raises the minimum count to {min}: the words above \
                     it are fewer than the most frequent ones of equal count)",
                    max_size.unwrap_or_default()
                )
            } else {
                String::new()
            };
            return Err(vocab_err(format!(
                "no word occurs {min} times or more in {} tokens ({} distinct){why}",
                counts.corpus_words,
                counts.distinct()
            )));
        }
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
        let pairs = kept.into_iter().map(|(w, c, _)| (w.clone(), c)).collect();
        Self::from_counts(pairs, counts.corpus_words)
    }

    /// A vocabulary of the given words and counts, in the given order (a saved model's).
    ///
    /// # Errors
    /// A word repeats, a word is empty or holds whitespace, or the list is empty.
    pub fn from_counts(pairs: Vec<(String, u64)>, corpus_words: u64) -> Result<Self> {
        if pairs.is_empty() {
            return Err(vocab_err("the vocabulary is empty".into()));
        }
        let mut index = HashMap::with_capacity(pairs.len());
        let mut words = Vec::with_capacity(pairs.len());
        let mut counts = Vec::with_capacity(pairs.len());
        for (i, (word, count)) in pairs.into_iter().enumerate() {
            if word.is_empty() || word.chars().any(char::is_whitespace) {
                return Err(vocab_err(format!(
                    "word {i} ({word:?}) is empty or holds whitespace"
                )));
            }
            if index.insert(word.clone(), i as u32).is_some() {
                return Err(vocab_err(format!("word {word:?} occurs twice")));
            }
            words.push(word);
            counts.push(count);
        }
        Ok(Self {
            words,
            counts,
            index,
            corpus_words,
        })
    }

    /// The number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Always false: a vocabulary has at least one word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The words, most frequent first.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// The count of each word, in the order of [`words`](Self::words).
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The id (rank) of `word`.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// The word of id `id`.
    pub fn word(&self, id: u32) -> &str {
        &self.words[id as usize]
    }

    /// The sum of the vocabulary words' counts (the corpus without its rare words).
    pub fn retained_words(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// All tokens of the corpus the vocabulary was built from, rare words included.
    pub fn corpus_words(&self) -> u64 {
        self.corpus_words
    }
}

fn vocab_err(what: String) -> DataError {
    DataError::Format {
        origin: "vocabulary".into(),
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranked_as_gensim_ranks_with_min_count_and_cap() {
        let counts = WordCounts::from_reader("b a c a b d\nc e e\n".as_bytes(), "t").unwrap();
        assert_eq!(counts.corpus_words(), 9);
        assert_eq!(counts.sentences(), 2);
        // counts: b 2, a 2, c 2, d 1, e 2; first appearance b, a, c, d, e. gensim 4.4.0's
        // Word2Vec(min_count=2) on these sentences has index_to_key ['e', 'c', 'a', 'b'].
        let v = WordVocab::build(&counts, 2, None).unwrap();
        assert_eq!(v.words(), ["e", "c", "a", "b"]);
        assert_eq!(v.counts(), [2, 2, 2, 2]);
        assert_eq!(v.retained_words(), 8);
        assert_eq!(v.id("b"), Some(3));
        assert_eq!(v.id("d"), None);
        // a cap below the tie class of the most frequent words leaves none (gensim: an empty
        // vocabulary), and says why
        let err = WordVocab::build(&counts, 1, Some(2))
            .unwrap_err()
            .to_string();
        assert!(err.contains("raises the minimum count to 3"), "{err}");
        // gensim's max_final_vocab=3 on "b a c a b d x x x y y y y": ['y', 'x']: the count
        // ranked 4th is 2, so the words seen 3 times or more are kept
        let counts =
            WordCounts::from_reader("b a c a b d x x x y y y y\n".as_bytes(), "t").unwrap();
        let capped = WordVocab::build(&counts, 1, Some(3)).unwrap();
        assert_eq!(capped.words(), ["y", "x"]);
        // a cap at or above the number of distinct words changes nothing
        let all = WordVocab::build(&counts, 1, Some(7)).unwrap();
        assert_eq!(all.words(), ["y", "x", "a", "b", "d", "c"]);
    }

    #[test]
    fn empty_vocabularies_and_bad_lists_are_errors() {
        let counts = WordCounts::from_reader("a b c\n".as_bytes(), "t").unwrap();
        let err = WordVocab::build(&counts, 5, None).unwrap_err().to_string();
        assert!(err.contains("no word occurs 5 times"), "{err}");
        assert!(WordVocab::build(&counts, 1, Some(0)).is_err());
        let twice = WordVocab::from_counts(vec![("a".into(), 2), ("a".into(), 1)], 3);
        assert!(twice.unwrap_err().to_string().contains("twice"));
        let space = WordVocab::from_counts(vec![("a b".into(), 2)], 3);
        assert!(space.is_err());
    }
}

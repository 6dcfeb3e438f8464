//! Plain-text corpora for word embeddings, read as a stream (a corpus of any size is never held
//! in memory), and the tables word2vec samples from.
//!
//! - [`corpus`]: a corpus file as sentences of whitespace-separated tokens, one sentence per
//!   line, long lines cut into sentences of at most `max_sentence_length` tokens (gensim's
//!   `LineSentence`: no other normalisation, so the corpus decides case and punctuation);
//! - [`words`]: word counts and a frequency-ranked vocabulary with a minimum count and a size
//!   cap (equal counts in reverse order of first appearance, and the cap applied, as gensim
//!   ranks and caps them);
//! - [`sampling`]: frequent-word subsampling (Mikolov's formula as gensim applies it), the
//!   unigram^0.75 noise distribution for negative sampling, and context windows with random
//!   shrinking;
//! - [`english`]: the English corpus the word2vec benchmark trains on, assembled from registry
//!   packages (see [`crate::fetch::english_corpus`]).
//!
//! ```
//! use rensa_data::text::{corpus::Corpus, words::{WordCounts, WordVocab}};
//!
//! let text = "the cat sat on the mat\nthe dog sat\n";
//! let counts = WordCounts::from_reader(text.as_bytes(), "example").unwrap();
//! let vocab = WordVocab::build(&counts, 2, None).unwrap();
//! assert_eq!(vocab.words(), ["the", "sat"]);
//! assert_eq!(vocab.id("sat"), Some(1));
//! assert_eq!(counts.corpus_words(), 9);
//! # let _ = Corpus::new("unused.txt");
//! ```

pub mod corpus;
pub mod english;
pub mod sampling;
pub mod words;

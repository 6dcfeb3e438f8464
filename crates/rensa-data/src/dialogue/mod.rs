//! Dialogues: multi-turn conversations as data for hierarchical dialogue models (HRED, VHRED).
//!
//! A [`Dialogue`] is a list of turns (utterances), each a list of tokens; a dialogue model learns
//! to write every turn from the turns before it. This module holds what such a model is trained
//! on:
//!
//! - [`generated`]: seeded synthetic dialogues in which the last turn recalls something an earlier
//!   turn said (so a model that sees only the turn before cannot know it), some with several
//!   equally valid answers; the generator knows the exact conditional entropy of every answer,
//!   so the best achievable test perplexity is a number, not a guess;
//! - [`files`]: readers for the plain-text format of one dialogue per line (turns separated by a
//!   marker, as DailyDialog's `__eou__`) and for the chitchat dataset's JSON; a corrupt line or
//!   conversation in a large file is skipped and counted, never fatal;
//! - [`tokenize`], [`vocabulary`] (a minimum count and a size cap), [`split`] (train, validation
//!   and test by dialogue, so no conversation is in two of them);
//! - [`DialogueBatch`]: a padded batch of encoded dialogues as the models read it.
//!
//! ```
//! use rensa_data::dialogue::{Dialogue, tokenize, vocabulary};
//!
//! let d = Dialogue::from_texts(["Hi, how are you?", "I'm fine!", "good to hear ."]).unwrap();
//! assert_eq!(d.turns()[1], ["i'm", "fine", "!"]);
//! let vocab = vocabulary([&d], 1, None);
//! let ids = d.encode(&vocab);
//! assert_eq!(ids.len(), 3);
//! assert!(Dialogue::from_texts(["only one turn"]).is_err());
//! assert!(Dialogue::from_texts(["hello", "  "]).is_err());
//! ```

mod batch;
pub mod files;
pub mod generated;

pub use batch::DialogueBatch;

use crate::error::{DataError, Result};
use crate::rng::shuffled;
use crate::vocab::{SPECIALS, Vocabulary};
use std::collections::HashMap;

/// A conversation of at least two non-empty turns; see the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dialogue {
    turns: Vec<Vec<String>>,
}

/// Splits `text` into lower-case tokens: runs of letters and digits (an apostrophe inside a
/// word stays in it: `don't`, `i'm`) and every other visible character on its own. A byte-order
/// mark (U+FEFF, at the start of some UTF-8 files) separates tokens as a space does.
///
/// ```
/// use rensa_data::dialogue::tokenize;
/// assert_eq!(tokenize("Don't go!! 3.5km"), ["don't", "go", "!", "!", "3", ".", "5km"]);
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (k, &c) in chars.iter().enumerate() {
        let inner_apostrophe = matches!(c, '\'' | '’')
            && !word.is_empty()
            && chars.get(k + 1).is_some_and(|n| n.is_alphanumeric());
        if c.is_alphanumeric() || inner_apostrophe {
            word.extend(c.to_lowercase());
            continue;
        }
        if !word.is_empty() {
            tokens.push(std::mem::take(&mut word));
        }
        if !c.is_whitespace() && !c.is_control() && c != '\u{feff}' {
            tokens.push(c.to_lowercase().collect());
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    tokens
}

fn dialogue_error(what: String) -> DataError {
    DataError::Format {
        origin: "dialogue".into(),
        what,
    }
}

impl Dialogue {
    /// A dialogue of tokenised turns.
    ///
    /// # Errors
    /// [`DataError::Format`] for fewer than two turns (nothing to answer) or an empty turn,
    /// naming it.
    pub fn new(turns: Vec<Vec<String>>) -> Result<Self> {
        if turns.len() < 2 {
            return Err(dialogue_error(format!(
                "a dialogue needs at least 2 turns (a context and a response), got {}",
                turns.len()
            )));
        }
        if let Some(k) = turns.iter().position(Vec::is_empty) {
            return Err(dialogue_error(format!(
                "turn {} of {} is empty",
                k + 1,
                turns.len()
            )));
        }
        Ok(Self { turns })
    }

    /// A dialogue of raw texts, each [tokenized](tokenize).
    ///
    /// # Errors
    /// As [`new`](Self::new) (a text of only spaces is an empty turn).
    pub fn from_texts<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> Result<Self> {
        Self::new(texts.into_iter().map(|t| tokenize(t.as_ref())).collect())
    }

    /// The turns, in order.
    pub fn turns(&self) -> &[Vec<String>] {
        &self.turns
    }

    /// The last turn (the response to all the others).
    pub fn last(&self) -> &[String] {
        self.turns.last().expect("at least two turns")
    }

    /// The ids of every turn's tokens ([`UNK`](crate::vocab::UNK) for unknown ones).
    pub fn encode(&self, vocab: &Vocabulary) -> Vec<Vec<usize>> {
        self.turns.iter().map(|t| vocab.encode(t).ids).collect()
    }

    /// The same dialogue with every turn cut to its first `max_tokens` tokens (`max_tokens ≥ 1`).
    pub fn truncated(&self, max_tokens: usize) -> Self {
        let max_tokens = max_tokens.max(1);
        Self {
            turns: self
                .turns
                .iter()
                .map(|t| t[..t.len().min(max_tokens)].to_vec())
                .collect(),
        }
    }

    /// The dialogue cut into windows of at most `max_turns` turns (`max_turns ≥ 2`), each
    /// starting with the previous window's last turn, so that every turn after the first is a
    /// response in exactly one window. A dialogue of at most `max_turns` turns is one window.
    pub fn windows(&self, max_turns: usize) -> Vec<Dialogue> {
        let max_turns = max_turns.max(2);
        if self.turns.len() <= max_turns {
            return vec![self.clone()];
        }
        let mut out = Vec::new();
        let mut start = 0;
        while start + 1 < self.turns.len() {
            let end = (start + max_turns).min(self.turns.len());
            out.push(Self {
                turns: self.turns[start..end].to_vec(),
            });
            start = end - 1;
        }
        out
    }
}

/// The vocabulary of `dialogues`: the specials, then every token seen at least `min_count`
/// times, most frequent first (ties in alphabetical order, so the ids do not depend on the
/// order of the dialogues), at most `max_size` ids in all (the specials included: a
/// `max_size` below their number keeps only them).
pub fn vocabulary<'a>(
    dialogues: impl IntoIterator<Item = &'a Dialogue>,
    min_count: usize,
    max_size: Option<usize>,
) -> Vocabulary {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for d in dialogues {
        for t in d.turns.iter().flatten() {
            *counts.entry(t.as_str()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = counts
        .into_iter()
        .filter(|&(t, c)| c >= min_count.max(1) && !SPECIALS.contains(&t))
        .collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let room = max_size.map_or(usize::MAX, |m| m.saturating_sub(SPECIALS.len()));
    Vocabulary::from_tokens(ranked.into_iter().take(room).map(|(t, _)| t))
}

/// Dialogues split three ways by conversation.
#[derive(Clone, Debug, Default)]
pub struct Split<T> {
    /// What the model learns from.
    pub train: Vec<T>,
    /// What training watches (early stopping, plots).
    pub valid: Vec<T>,
    /// Held out until the end.
    pub test: Vec<T>,
}

/// Shuffles `items` with `seed` and splits them: the first `valid` share to validation, the
/// next `test` share to test, the rest to training (shares in `[0, 1)`, rounded down, summing
/// below 1).
///
/// # Panics
/// On shares out of range.
pub fn split<T>(items: Vec<T>, valid: f64, test: f64, seed: u64) -> Split<T> {
    assert!(
        (0.0..1.0).contains(&valid) && (0.0..1.0).contains(&test) && valid + test < 1.0,
        "split shares: expected valid and test in [0, 1) summing below 1, got {valid} and {test}"
    );
    let n = items.len();
    let order = shuffled(n, seed, 0);
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    let mut take = |ks: &[usize]| -> Vec<T> {
        ks.iter()
            .map(|&k| slots[k].take().expect("each index once"))
            .collect()
    };
    let (v, t) = ((valid * n as f64) as usize, (test * n as f64) as usize);
    let valid = take(&order[..v]);
    let test = take(&order[v..v + t]);
    let train = take(&order[v + t..]);
    Split { train, valid, test }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(turns: &[&str]) -> Dialogue {
        Dialogue::from_texts(turns.iter().copied()).unwrap()
    }

    #[test]
    fn tokens_are_lower_case_words_and_single_marks() {
        assert_eq!(
            tokenize("  Hello,WORLD… it's 5’o Müller\t:-)"),
            [
                "hello", ",", "world", "…", "it's", "5’o", "müller", ":", "-", ")"
            ]
        );
        assert!(tokenize(" \n\t").is_empty());
        assert_eq!(tokenize("'quoted'"), ["'", "quoted", "'"]);
        // a file's byte-order mark is not a token
        assert_eq!(tokenize("\u{feff}Hi there"), ["hi", "there"]);
        assert!(tokenize("\u{feff}").is_empty());
    }

    #[test]
    fn short_or_empty_dialogues_are_refused_with_the_reason() {
        let one = Dialogue::from_texts(["hi"]).unwrap_err().to_string();
        assert!(
            one.contains("at least 2 turns") && one.contains("got 1"),
            "{one}"
        );
        let empty = Dialogue::from_texts(["hi", "there", " "])
            .unwrap_err()
            .to_string();
        assert!(empty.contains("turn 3 of 3 is empty"), "{empty}");
    }

    #[test]
    fn windows_overlap_by_one_turn_and_cover_every_response_once() {
        let long = d(&["a", "b", "c", "d", "e", "f", "g"]);
        let w = long.windows(3);
        let firsts: Vec<&str> = w.iter().map(|x| x.turns()[0][0].as_str()).collect();
        assert_eq!(firsts, ["a", "c", "e"]);
        assert_eq!(w[2].turns().len(), 3);
        let responses: usize = w.iter().map(|x| x.turns().len() - 1).sum();
        assert_eq!(responses, 6);
        assert_eq!(d(&["a", "b"]).windows(5).len(), 1);
        // a last window of one turn would answer nothing: it is not made
        assert!(
            d(&["a", "b", "c", "d"])
                .windows(3)
                .iter()
                .all(|x| x.turns().len() >= 2)
        );
    }

    #[test]
    fn the_vocabulary_ranks_by_count_then_name_and_respects_its_limits() {
        let ds = [d(&["b a a", "c b a"]), d(&["a d", "zz zz zz"])];
        let v = vocabulary(&ds, 1, None);
        assert_eq!(&v.tokens()[4..], ["a", "zz", "b", "c", "d"]);
        let v = vocabulary(&ds, 2, None);
        assert_eq!(&v.tokens()[4..], ["a", "zz", "b"]);
        let v = vocabulary(&ds, 1, Some(6));
        assert_eq!(v.len(), 6);
        use crate::vocab::UNK;
        assert_eq!(ds[0].encode(&v)[1], [UNK, UNK, 4]);
    }

    #[test]
    fn a_split_is_a_seeded_partition() {
        let s = split((0..100).collect::<Vec<_>>(), 0.1, 0.2, 3);
        assert_eq!((s.train.len(), s.valid.len(), s.test.len()), (70, 10, 20));
        let mut all: Vec<i32> = [s.train.clone(), s.valid.clone(), s.test.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_eq!(
            split((0..100).collect::<Vec<_>>(), 0.1, 0.2, 3).test,
            s.test
        );
    }
}

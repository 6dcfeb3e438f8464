//! The standard evaluations of word vectors, computed as gensim computes them: analogy accuracy
//! on a `questions-words.txt`-style file (`evaluate_word_analogies`) and the Spearman rank
//! correlation with human similarity judgements (`evaluate_word_pairs`, WordSim-353, SimLex-999).
//!
//! Case-insensitive by default, as gensim: words are compared upper-cased, and where several
//! vocabulary words differ only in case the most frequent (the first) stands for them.

use std::collections::HashMap;
use std::path::Path;

use super::vectors::{AnalogyMethod, Embeddings};
use super::{Error, Result};

/// The number of most frequent words analogy questions are restricted to, as word2vec.c's
/// `compute-accuracy` and gensim's documentation use it.
pub const ANALOGY_VOCAB: usize = 30_000;

/// The number of most frequent words word-pair similarity is restricted to, gensim's default
/// for `evaluate_word_pairs` (a pair with a rarer word counts as out of the vocabulary).
pub const PAIRS_VOCAB: usize = 300_000;

fn file_err(path: &str, what: String) -> Error {
    Error::Data(rensa_data::DataError::Format {
        origin: path.to_string(),
        what,
    })
}

fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).map_err(|e| rensa_data::DataError::io(path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        file_err(
            &path.display().to_string(),
            format!("not UTF-8 ({})", e.utf8_error()),
        )
    })
}

/// Analogy questions `a b c d` (`a : b :: c : d`) in named sections.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Analogies {
    /// `(section name, questions)` in file order.
    pub sections: Vec<(String, Vec<[String; 4]>)>,
    /// Lines that did not hold four words (skipped, as gensim skips them).
    pub skipped_lines: usize,
}

impl Analogies {
    /// Reads a `questions-words.txt`-style file: `: section` lines, then four words per line.
    ///
    /// # Errors
    /// The file cannot be read, is not UTF-8, or has a question before the first section.
    pub fn read(path: &Path) -> Result<Self> {
        Self::parse(&read_text(path)?, &path.display().to_string())
    }

    /// Parses the text of such a file (`origin` in errors).
    ///
    /// # Errors
    /// A question comes before the first section.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let mut out = Self::default();
        for (no, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix(':') {
                out.sections.push((name.trim().to_string(), Vec::new()));
                continue;
            }
            let Some((_, questions)) = out.sections.last_mut() else {
                return Err(file_err(
                    origin,
                    format!("line {}: a question before any \": section\" line", no + 1),
                ));
            };
            match line.split_whitespace().collect::<Vec<_>>()[..] {
                [a, b, c, d] => questions.push([a, b, c, d].map(String::from)),
                _ => out.skipped_lines += 1,
            }
        }
        Ok(out)
    }

    /// The number of questions.
    pub fn len(&self) -> usize {
        self.sections.iter().map(|s| s.1.len()).sum()
    }

    /// Whether there is no question.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One section's result.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SectionScore {
    /// The section's name.
    pub name: String,
    /// Questions answered correctly.
    pub correct: usize,
    /// Questions whose four words are all in the restricted vocabulary.
    pub attempted: usize,
    /// Questions in the section.
    pub total: usize,
}

/// Analogy accuracy overall and per section.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AnalogyReport {
    /// Per section, in file order.
    pub sections: Vec<SectionScore>,
}

impl AnalogyReport {
    fn sum(&self, keep: impl Fn(&SectionScore) -> bool) -> (usize, usize, usize) {
        self.sections
            .iter()
            .filter(|s| keep(s))
            .fold((0, 0, 0), |(c, a, t), s| {
                (c + s.correct, a + s.attempted, t + s.total)
            })
    }

    /// Correct answers over attempted questions (gensim's score).
    pub fn accuracy(&self) -> f64 {
        let (c, a, _) = self.sum(|_| true);
        c as f64 / a.max(1) as f64
    }

    /// Attempted questions over all questions.
    pub fn coverage(&self) -> f64 {
        let (_, a, t) = self.sum(|_| true);
        a as f64 / t.max(1) as f64
    }

    /// Accuracy of the semantic sections (names not starting with `gram`) and of the
    /// syntactic ones.
    pub fn semantic_syntactic(&self) -> (f64, f64) {
        let acc = |(c, a, _): (usize, usize, usize)| c as f64 / a.max(1) as f64;
        (
            acc(self.sum(|s| !s.name.starts_with("gram"))),
            acc(self.sum(|s| s.name.starts_with("gram"))),
        )
    }
}

/// The upper-cased words of the first `restrict` rows, each mapped to its first (most
/// frequent) row, or the words as they are.
fn lookup(emb: &Embeddings, restrict: usize, case_insensitive: bool) -> HashMap<String, u32> {
    let mut map = HashMap::new();
    for (i, w) in emb.words().iter().take(restrict).enumerate() {
        let key = if case_insensitive {
            w.to_uppercase()
        } else {
            w.clone()
        };
        map.entry(key).or_insert(i as u32);
    }
    map
}

/// Answers every question with `method` among the `restrict` most frequent words (the three
/// question words, in any case variant, excluded) and counts the correct ones.
pub fn evaluate_analogies(
    emb: &Embeddings,
    analogies: &Analogies,
    method: AnalogyMethod,
    restrict: usize,
    case_insensitive: bool,
) -> AnalogyReport {
    let map = lookup(emb, restrict, case_insensitive);
    let restrict = restrict.min(emb.len());
    let norm = |w: &str| {
        if case_insensitive {
            w.to_uppercase()
        } else {
            w.to_string()
        }
    };
    // the upper-cased form of every restricted row, to exclude case variants of the question
    let keys: Vec<String> = emb.words()[..restrict].iter().map(|w| norm(w)).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sections = analogies
        .sections
        .iter()
        .map(|(name, questions)| {
            let known: Vec<([u32; 3], [String; 4])> = questions
                .iter()
                .filter_map(|q| {
                    let up = q.clone().map(|w| norm(&w));
                    let ids = [map.get(&up[0])?, map.get(&up[1])?, map.get(&up[2])?];
                    map.get(&up[3])?;
                    Some((ids.map(|&i| i), up))
                })
                .collect();
            let chunk = known.len().div_ceil(threads).max(1);
            let correct: usize = std::thread::scope(|s| {
                let handles: Vec<_> = known
                    .chunks(chunk)
                    .map(|part| {
                        let keys = &keys;
                        s.spawn(move || {
                            part.iter()
                                .filter(|(ids, up)| {
                                    let scores = emb.analogy_scores(*ids, method, restrict);
                                    let best = (0..restrict)
                                        .filter(|&i| !up[..3].contains(&keys[i]))
                                        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]));
                                    best.is_some_and(|b| keys[b] == up[3])
                                })
                                .count()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("an analogy worker"))
                    .sum()
            });
            SectionScore {
                name: name.clone(),
                correct,
                attempted: known.len(),
                total: questions.len(),
            }
        })
        .collect();
    AnalogyReport { sections }
}

/// Word pairs with a human similarity score.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WordPairs {
    /// `(word, word, score)`.
    pub pairs: Vec<(String, String, f64)>,
    /// Lines that were not `word <tab> word <tab> number` (skipped).
    pub skipped_lines: usize,
}

impl WordPairs {
    /// Reads a tab-separated file of `word word score` lines; `#` starts a comment line
    /// (WordSim-353 and SimLex-999 as gensim ships them).
    ///
    /// # Errors
    /// The file cannot be read or is not UTF-8.
    pub fn read(path: &Path) -> Result<Self> {
        Ok(Self::parse(&read_text(path)?))
    }

    /// Parses the text of such a file.
    pub fn parse(text: &str) -> Self {
        let mut out = Self::default();
        for line in text.lines() {
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split('\t').collect();
            match fields[..] {
                [a, b, s] if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => out.pairs.push((
                    a.trim().to_string(),
                    b.trim().to_string(),
                    s.trim().parse().expect("checked"),
                )),
                _ => out.skipped_lines += 1,
            }
        }
        out
    }
}

/// How well cosine similarities rank word pairs like people do.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PairReport {
    /// Spearman's ρ between the cosines and the human scores.
    pub spearman: f64,
    /// Pearson's r.
    pub pearson: f64,
    /// Pairs with both words known.
    pub evaluated: usize,
    /// Pairs with a word outside the vocabulary (left out).
    pub oov: usize,
}

/// Correlates the vectors' cosine similarities with the pairs' scores, over pairs whose words
/// are among the `restrict` most frequent.
pub fn evaluate_pairs(
    emb: &Embeddings,
    pairs: &WordPairs,
    restrict: usize,
    case_insensitive: bool,
) -> PairReport {
    let map = lookup(emb, restrict, case_insensitive);
    let norm = |w: &str| {
        if case_insensitive {
            w.to_uppercase()
        } else {
            w.to_string()
        }
    };
    let (mut model, mut human) = (Vec::new(), Vec::new());
    for (a, b, score) in &pairs.pairs {
        if let (Some(&i), Some(&j)) = (map.get(&norm(a)), map.get(&norm(b))) {
            model.push(super::cpu::dot(emb.unit(i), emb.unit(j)) as f64);
            human.push(*score);
        }
    }
    PairReport {
        spearman: pearson(&ranks(&model), &ranks(&human)),
        pearson: pearson(&model, &human),
        evaluated: model.len(),
        oov: pairs.pairs.len() - model.len(),
    }
}

/// Ranks from 1, ties given their mean rank.
pub fn ranks(x: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..x.len()).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let mut r = vec![0.0; x.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && x[order[j + 1]] == x[order[i]] {
            j += 1;
        }
        let mean = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            r[k] = mean;
        }
        i = j + 1;
    }
    r
}

/// Pearson's correlation (NaN for fewer than two points or a constant series).
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    if x.len() < 2 {
        return f64::NAN;
    }
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    sxy / (sxx * syy).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spearman_averages_ties_as_scipy_does() {
        // scipy 1.x: spearmanr([1, 2, 2, 3, 5], [5, 6, 7, 8, 7]).statistic = 0.7631578947368421
        let rho = pearson(
            &ranks(&[1.0, 2.0, 2.0, 3.0, 5.0]),
            &ranks(&[5.0, 6.0, 7.0, 8.0, 7.0]),
        );
        assert!((rho - 0.763_157_894_736_842_1).abs() < 1e-12, "{rho}");
        assert_eq!(ranks(&[3.0, 1.0, 3.0]), [2.5, 1.0, 2.5]);
    }

    #[test]
    fn analogy_files_parse_into_sections_and_bad_lines_are_counted() {
        let a = Analogies::parse(
            ": capitals\nAthens Greece Baghdad Iraq\nbad line\n\n: gram1\na b c d\n",
            "t",
        )
        .unwrap();
        assert_eq!(a.sections.len(), 2);
        assert_eq!(a.len(), 2);
        assert_eq!(a.skipped_lines, 1);
        let e = Analogies::parse("a b c d\n", "t").unwrap_err().to_string();
        assert!(e.contains("line 1"), "{e}");
        let p = WordPairs::parse("# header\nlove\tsex\t6.77\nbad\nx\ty\tz\n");
        assert_eq!(p.pairs, [("love".into(), "sex".into(), 6.77)]);
        assert_eq!(p.skipped_lines, 2);
    }

    #[test]
    fn analogies_are_scored_case_insensitively_excluding_the_question() {
        let words = ["king", "queen", "man", "woman", "King"]
            .map(String::from)
            .to_vec();
        let v = vec![1.0, 1.0, 1.0, -1.0, 0.1, 1.0, 0.1, -1.0, 1.0, 1.01];
        let e = Embeddings::new(words, 2, v).unwrap();
        let q = Analogies::parse(
            ": royal\nMAN KING WOMAN QUEEN\nman king woman prince\n",
            "t",
        )
        .unwrap();
        let r = evaluate_analogies(&e, &q, AnalogyMethod::Add, 100, true);
        // "King" (a case variant of the question's "king") may not be the answer
        assert_eq!(
            (
                r.sections[0].correct,
                r.sections[0].attempted,
                r.sections[0].total
            ),
            (1, 1, 2)
        );
        assert_eq!(r.accuracy(), 1.0);
        assert_eq!(r.coverage(), 0.5);
        let pairs =
            WordPairs::parse("king\tqueen\t8\nman\twoman\t8.5\nking\tman\t3\nqueen\tnobody\t1\n");
        let p = evaluate_pairs(&e, &pairs, 100, true);
        assert_eq!((p.evaluated, p.oov), (3, 1));
        // cosines king-queen 0, man-woman -0.98, king-man 0.77 rank 2, 1, 3; the scores 8, 8.5,
        // 3 rank 2, 3, 1: opposite orders but for the middle one, ρ = 1 − 6·8/(3·8) = −1
        assert!((p.spearman + 1.0).abs() < 1e-12, "ρ {}", p.spearman);
        assert_eq!(ranks(&[3.0, 1.0, 2.0, 1.0]), [4.0, 1.5, 3.0, 1.5]);
    }
}

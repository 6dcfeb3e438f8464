//! Word vectors and the queries on them: cosine similarity, nearest neighbours, analogies.

use std::collections::HashMap;

use super::cpu::dot;
use super::{Error, Result};

/// How an analogy `a : b :: c : ?` is answered (Levy and Goldberg 2014), over unit vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnalogyMethod {
    /// 3CosAdd (Mikolov et al.): the word `d` maximising `cos(d, b) − cos(d, a) + cos(d, c)`,
    /// gensim's `most_similar(positive=[b, c], negative=[a])`.
    Add,
    /// 3CosMul: the word maximising `cos'(d, b) · cos'(d, c) / (cos'(d, a) + 10⁻⁶)` with cosines
    /// shifted to `[0, 1]` (`cos' = (cos + 1) / 2`), gensim's `most_similar_cosmul`.
    Mul,
}

/// Words and their vectors (gensim's `KeyedVectors`), with unit-length copies for cosine
/// queries. Row `i` belongs to word `i`; files keep that order, most frequent first when a
/// model wrote them.
#[derive(Clone, Debug)]
pub struct Embeddings {
    words: Vec<String>,
    index: HashMap<String, u32>,
    dims: usize,
    vectors: Vec<f32>,
    unit: Vec<f32>,
}

impl Embeddings {
    /// Embeddings from words and their row-major vectors.
    ///
    /// # Errors
    /// `dims` is 0, the matrix does not have `words.len() × dims` values, a word repeats, is
    /// empty or holds whitespace, or a value is not finite.
    pub fn new(words: Vec<String>, dims: usize, vectors: Vec<f32>) -> Result<Self> {
        let bad = |what: String| Error::Vectors(what);
        if dims == 0 {
            return Err(bad("the vector size must be at least 1".into()));
        }
        if vectors.len() != words.len() * dims {
            return Err(bad(format!(
                "{} words of {dims} dimensions need {} values, got {}",
                words.len(),
                words.len() * dims,
                vectors.len()
            )));
        }
        let mut index = HashMap::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            if w.is_empty() || w.chars().any(char::is_whitespace) {
                return Err(bad(format!(
                    "word {i} ({w:?}) is empty or holds whitespace"
                )));
            }
            if index.insert(w.clone(), i as u32).is_some() {
                return Err(bad(format!("word {w:?} occurs twice")));
            }
        }
        if let Some(at) = vectors.iter().position(|v| !v.is_finite()) {
            return Err(bad(format!(
                "the vector of {:?} holds a non-finite value",
                words[at / dims]
            )));
        }
        let mut unit = vectors.clone();
        for row in unit.chunks_exact_mut(dims) {
            let norm = dot(row, row).sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|v| *v /= norm);
            }
        }
        Ok(Self {
            words,
            index,
            dims,
            vectors,
            unit,
        })
    }

    /// The number of words.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether there is no word.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The vector size.
    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The words in row order.
    pub fn words(&self) -> &[String] {
        &self.words
    }

    /// All vectors, row-major.
    pub fn vectors(&self) -> &[f32] {
        &self.vectors
    }

    /// The row of `word`.
    pub fn id(&self, word: &str) -> Option<u32> {
        self.index.get(word).copied()
    }

    /// The vector of `word`.
    pub fn vector(&self, word: &str) -> Option<&[f32]> {
        self.id(word).map(|i| self.row(&self.vectors, i))
    }

    /// The unit vector of row `id`.
    pub fn unit(&self, id: u32) -> &[f32] {
        self.row(&self.unit, id)
    }

    fn row<'a>(&self, m: &'a [f32], id: u32) -> &'a [f32] {
        let s = id as usize * self.dims;
        &m[s..s + self.dims]
    }

    /// The cosine similarity of two words.
    pub fn similarity(&self, a: &str, b: &str) -> Option<f32> {
        Some(dot(self.unit(self.id(a)?), self.unit(self.id(b)?)))
    }

    /// The `n` words nearest (by cosine) to `word`, itself excluded.
    ///
    /// # Errors
    /// `word` is not in the vocabulary.
    pub fn most_similar(&self, word: &str, n: usize) -> Result<Vec<(String, f32)>> {
        let id = self.known(word)?;
        Ok(self.nearest(self.unit(id), n, &[id], self.len()))
    }

    /// The `n` words among the first `restrict` rows nearest (by cosine) to `query`, the rows
    /// `exclude` left out.
    pub fn nearest(
        &self,
        query: &[f32],
        n: usize,
        exclude: &[u32],
        restrict: usize,
    ) -> Vec<(String, f32)> {
        assert_eq!(
            query.len(),
            self.dims,
            "a query of {} dimensions",
            self.dims
        );
        let norm = dot(query, query).sqrt().max(f32::MIN_POSITIVE);
        let scores: Vec<f32> = (0..restrict.min(self.len()) as u32)
            .map(|i| dot(self.unit(i), query) / norm)
            .collect();
        self.top(&scores, n, exclude)
    }

    fn top(&self, scores: &[f32], n: usize, exclude: &[u32]) -> Vec<(String, f32)> {
        let mut order: Vec<u32> = (0..scores.len() as u32)
            .filter(|i| !exclude.contains(i))
            .collect();
        let n = n.min(order.len());
        if n == 0 {
            return Vec::new();
        }
        let by_score = |a: &u32, b: &u32| scores[*b as usize].total_cmp(&scores[*a as usize]);
        order.select_nth_unstable_by(n - 1, by_score);
        order.truncate(n);
        order.sort_by(by_score);
        order
            .into_iter()
            .map(|i| (self.words[i as usize].clone(), scores[i as usize]))
            .collect()
    }

    fn known(&self, word: &str) -> Result<u32> {
        self.id(word)
            .ok_or_else(|| Error::Vectors(format!("{word:?} is not in the vocabulary")))
    }

    /// Answers `a : b :: c : ?` with the `n` best words among the first `restrict` rows, the
    /// three query words excluded.
    ///
    /// # Errors
    /// A query word is not in the vocabulary.
    pub fn analogy(
        &self,
        (a, b, c): (&str, &str, &str),
        method: AnalogyMethod,
        n: usize,
        restrict: usize,
    ) -> Result<Vec<(String, f32)>> {
        let ids = [self.known(a)?, self.known(b)?, self.known(c)?];
        let scores = self.analogy_scores(ids, method, restrict);
        Ok(self.top(&scores, n, &ids))
    }

    /// The score of every one of the first `restrict` rows as the answer to `a : b :: c : ?`
    /// (`ids` = the rows of a, b, c).
    pub fn analogy_scores(
        &self,
        [a, b, c]: [u32; 3],
        method: AnalogyMethod,
        restrict: usize,
    ) -> Vec<f32> {
        let rows = 0..restrict.min(self.len()) as u32;
        let (ua, ub, uc) = (self.unit(a), self.unit(b), self.unit(c));
        match method {
            AnalogyMethod::Add => {
                let q: Vec<f32> = (0..self.dims).map(|k| ub[k] - ua[k] + uc[k]).collect();
                rows.map(|i| dot(self.unit(i), &q)).collect()
            }
            AnalogyMethod::Mul => rows
                .map(|i| {
                    let d = self.unit(i);
                    let s = |x: &[f32]| (dot(d, x) + 1.0) / 2.0;
                    s(ub) * s(uc) / (s(ua) + 1e-6)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Embeddings {
        // king - man + woman = queen, in two dimensions (royalty, gender)
        let words = ["king", "queen", "man", "woman", "apple"]
            .map(String::from)
            .to_vec();
        let v = vec![1.0, 1.0, 1.0, -1.0, 0.1, 1.0, 0.1, -1.0, -1.0, 0.05];
        Embeddings::new(words, 2, v).unwrap()
    }

    #[test]
    fn analogies_and_neighbours_exclude_the_query() {
        let e = toy();
        for method in [AnalogyMethod::Add, AnalogyMethod::Mul] {
            let got = e.analogy(("man", "king", "woman"), method, 1, 100).unwrap();
            assert_eq!(got[0].0, "queen", "{method:?}");
        }
        let near = e.most_similar("king", 4).unwrap();
        assert_eq!(near.len(), 4);
        assert!(near.iter().all(|(w, _)| w != "king"));
        assert!(near.windows(2).all(|p| p[0].1 >= p[1].1));
        assert!((e.similarity("king", "king").unwrap() - 1.0).abs() < 1e-6);
        assert!(
            e.most_similar("prince", 3)
                .unwrap_err()
                .to_string()
                .contains("prince")
        );
        // restricted to the first two rows, the answer can only be among them
        let r = e
            .analogy(("man", "king", "woman"), AnalogyMethod::Add, 5, 2)
            .unwrap();
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn bad_matrices_are_errors() {
        let w = || vec!["a".to_string(), "b".to_string()];
        assert!(Embeddings::new(w(), 2, vec![0.0; 3]).is_err());
        assert!(Embeddings::new(w(), 0, vec![]).is_err());
        assert!(
            Embeddings::new(w(), 1, vec![0.0, f32::NAN])
                .unwrap_err()
                .to_string()
                .contains("\"b\"")
        );
        assert!(Embeddings::new(vec!["a".into(), "a".into()], 1, vec![0.0; 2]).is_err());
    }
}

//! What word2vec samples: which occurrences of frequent words to drop, which noise words to
//! contrast a true context with, and how wide each context window is.

use super::words::WordVocab;
use crate::rng::SplitMix64;
use crate::{DataError, Result};

/// Frequent-word subsampling: each occurrence of word `w` is kept with probability
/// `p(w) = (sqrt(c(w) / t) + 1) · t / c(w)` (at most 1), where `c(w)` is its count and
/// `t = sample · N` for the `N` words of the corpus that the vocabulary keeps: Mikolov et al.'s
/// discard rule as word2vec.c and gensim apply it (`sample = 1e-3` keeps every word rarer than
/// about 0.26% of the corpus). `sample = 0` keeps everything.
#[derive(Clone, Debug)]
pub struct Subsampler {
    keep: Vec<u32>,
    expected: f64,
}

impl Subsampler {
    /// The keep probabilities of `vocab`'s words for `sample`.
    ///
    /// # Errors
    /// `sample` is negative or not finite.
    pub fn new(vocab: &WordVocab, sample: f64) -> Result<Self> {
        if !(sample.is_finite() && sample >= 0.0) {
            return Err(DataError::Format {
                origin: "subsampling".into(),
                what: format!("sample must be finite and >= 0, got {sample}"),
            });
        }
        let retained = vocab.retained_words() as f64;
        let threshold = if sample == 0.0 {
            f64::INFINITY
        } else if sample < 1.0 {
            sample * retained
        } else {
            // gensim's reading of sample >= 1: an absolute count
            (sample * (3.0 + 5f64.sqrt()) / 2.0).floor()
        };
        let mut expected = 0.0;
        let keep = vocab
            .counts()
            .iter()
            .map(|&c| {
                let c = c as f64;
                let p = if threshold.is_infinite() {
                    1.0
                } else {
                    ((c / threshold).sqrt() + 1.0) * (threshold / c)
                };
                let p = p.min(1.0);
                expected += p * c;
                (p * u32::MAX as f64) as u32
            })
            .collect();
        Ok(Self { keep, expected })
    }

    /// The probability that an occurrence of word `id` is kept.
    pub fn keep_probability(&self, id: u32) -> f64 {
        self.keep[id as usize] as f64 / u32::MAX as f64
    }

    /// Whether to keep this occurrence of word `id` (one draw from `rng`).
    #[inline]
    pub fn keep(&self, id: u32, rng: &mut SplitMix64) -> bool {
        let k = self.keep[id as usize];
        k == u32::MAX || k >= (rng.next_u64() >> 32) as u32
    }

    /// The expected number of words kept per pass over the corpus.
    pub fn expected_words(&self) -> f64 {
        self.expected
    }
}

/// The noise distribution of negative sampling, `P(w) ∝ c(w)^power` (`power = 0.75` in
/// word2vec), drawn in constant time with Walker's alias method (Vose's construction): one
/// 64-bit random number per draw, no table of 10⁸ slots as in word2vec.c, no binary search as in
/// gensim, and the probabilities exact to 2⁻³².
#[derive(Clone, Debug)]
pub struct NoiseTable {
    threshold: Vec<u64>,
    alias: Vec<u32>,
}

impl NoiseTable {
    /// The table for `counts` raised to `power`.
    ///
    /// # Errors
    /// `counts` is empty or all zero, or `power` is not finite.
    pub fn new(counts: &[u64], power: f64) -> Result<Self> {
        let err = |what: String| DataError::Format {
            origin: "noise distribution".into(),
            what,
        };
        if !power.is_finite() {
            return Err(err(format!("power must be finite, got {power}")));
        }
        let weights: Vec<f64> = counts
            .iter()
            .map(|&c| if c == 0 { 0.0 } else { (c as f64).powf(power) })
            .collect();
        let total: f64 = weights.iter().sum();
        if counts.is_empty() || total <= 0.0 || !total.is_finite() {
            return Err(err("no word with a positive count".into()));
        }
        let n = counts.len();
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * n as f64 / total).collect();
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut threshold = vec![1u64 << 32; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| scaled[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            threshold[s] = (scaled[s] * 4_294_967_296.0).round() as u64;
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        // what is left (rounding) keeps its own slot entirely
        Ok(Self { threshold, alias })
    }

    /// The number of words.
    pub fn len(&self) -> usize {
        self.alias.len()
    }

    /// Always false.
    pub fn is_empty(&self) -> bool {
        self.alias.is_empty()
    }

    /// One draw from the distribution.
    #[inline]
    pub fn draw(&self, rng: &mut SplitMix64) -> u32 {
        let r = rng.next_u64();
        let slot = (((r >> 32) * self.alias.len() as u64) >> 32) as usize;
        if (r & 0xFFFF_FFFF) < self.threshold[slot] {
            slot as u32
        } else {
            self.alias[slot]
        }
    }

    /// The probability of each word that the table draws with (for checks).
    pub fn probabilities(&self) -> Vec<f64> {
        let n = self.alias.len() as f64;
        let mut p = vec![0.0; self.alias.len()];
        for (slot, (&t, &a)) in self.threshold.iter().zip(&self.alias).enumerate() {
            let own = t as f64 / 4_294_967_296.0;
            p[slot] += own / n;
            p[a as usize] += (1.0 - own) / n;
        }
        p
    }
}

/// The context radius of one position: word2vec's random window shrinking draws it uniformly
/// from `1..=window`, so near words are seen more often than far ones.
#[inline]
pub fn shrunk_window(window: usize, rng: &mut SplitMix64) -> usize {
    window - rng.below(window)
}

/// The positions `start..end` of a context of radius `radius` around `pos` in a sentence of
/// `len` words (`pos` itself inside, for the caller to skip).
#[inline]
pub fn context_span(pos: usize, len: usize, radius: usize) -> (usize, usize) {
    (pos.saturating_sub(radius), (pos + radius + 1).min(len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::words::WordVocab;

    fn vocab(counts: &[u64]) -> WordVocab {
        let pairs = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| (format!("w{i}"), c))
            .collect();
        WordVocab::from_counts(pairs, counts.iter().sum()).unwrap()
    }

    #[test]
    fn subsampling_follows_the_formula() {
        let v = vocab(&[10_000, 1_000, 10, 1]);
        let s = Subsampler::new(&v, 1e-3).unwrap();
        let t = 1e-3 * 11_011.0;
        for (id, &c) in v.counts().iter().enumerate() {
            let c = c as f64;
            let want = (((c / t).sqrt() + 1.0) * t / c).min(1.0);
            assert!((s.keep_probability(id as u32) - want).abs() < 1e-9);
        }
        assert_eq!(s.keep_probability(3), 1.0);
        let mut rng = SplitMix64::new(1);
        let kept = (0..100_000).filter(|_| s.keep(0, &mut rng)).count() as f64;
        let want = s.keep_probability(0) * 100_000.0;
        assert!((kept - want).abs() < 4.0 * want.sqrt(), "{kept} vs {want}");
        let all = Subsampler::new(&v, 0.0).unwrap();
        assert_eq!(all.expected_words(), 11_011.0);
        assert!(Subsampler::new(&v, -1.0).is_err());
        assert!(Subsampler::new(&v, f64::NAN).is_err());
    }

    #[test]
    fn the_alias_table_draws_the_three_quarter_power_distribution_exactly() {
        let counts = [500u64, 120, 120, 33, 7, 1, 0, 2];
        let table = NoiseTable::new(&counts, 0.75).unwrap();
        let z: f64 = counts.iter().map(|&c| (c as f64).powf(0.75)).sum();
        for (p, &c) in table.probabilities().iter().zip(&counts) {
            assert!((p - (c as f64).powf(0.75) / z).abs() < 1e-8, "{p} for {c}");
        }
        let mut rng = SplitMix64::new(9);
        let mut seen = [0usize; 8];
        for _ in 0..200_000 {
            seen[table.draw(&mut rng) as usize] += 1;
        }
        assert_eq!(seen[6], 0, "a word of count 0 is never drawn");
        let p0 = 500f64.powf(0.75) / z;
        assert!((seen[0] as f64 / 200_000.0 - p0).abs() < 0.01);
        assert!(NoiseTable::new(&[], 0.75).is_err());
        assert!(NoiseTable::new(&[0, 0], 0.75).is_err());
    }

    #[test]
    fn windows_shrink_uniformly_and_clip_at_the_sentence() {
        let mut rng = SplitMix64::new(2);
        let mut seen = [0usize; 6];
        for _ in 0..50_000 {
            seen[shrunk_window(5, &mut rng)] += 1;
        }
        assert_eq!(seen[0], 0);
        assert!(
            seen[1..].iter().all(|&c| (9_000..11_000).contains(&c)),
            "{seen:?}"
        );
        assert_eq!(context_span(1, 10, 3), (0, 5));
        assert_eq!(context_span(8, 10, 3), (5, 10));
    }
}

//! Decoding an autoregressive token model: greedy, beam search and sampling, for any decoder
//! that can take one step ([`StepDecoder`]). The token seq2seq and the dialogue models
//! ([`hred`](crate::hred)) share them.
//!
//! No search outputs `PAD` or `BOS`: they are never a target, so a model gives them little
//! probability but not none, and a sampled `BOS` fed back would restart the answer. Their
//! log-probabilities count as −∞ (as fairseq's search does with padding); `UNK` stays a
//! possible output.

use rensa_data::SplitMix64;
use rensa_data::vocab::{BOS, EOS, PAD};

/// Whether a search may output `token` (not `PAD` or `BOS`).
fn may_output(token: usize) -> bool {
    token != PAD && token != BOS
}

/// One decoded sequence.
#[derive(Clone, Debug, PartialEq)]
pub struct Decoded {
    /// The tokens, without `EOS` (a search never outputs `PAD` or `BOS`).
    pub tokens: Vec<usize>,
    /// The sum of the tokens' log-probabilities (`EOS` included when it was reached).
    pub log_prob: f64,
    /// Per output step, the attention weights over the source tokens (empty without
    /// attention).
    pub alignment: Vec<Vec<f32>>,
    /// Whether the output ended with `EOS`; `false`: cut at the search's `max_len`.
    pub finished: bool,
}

impl Decoded {
    fn empty() -> Self {
        Self {
            tokens: Vec::new(),
            log_prob: 0.0,
            alignment: Vec::new(),
            finished: false,
        }
    }
}

/// A decoder that a search drives one step at a time over a set of rows (hypotheses).
pub trait StepDecoder {
    /// Takes one step for every row, each fed its previous token `last[row]` (`BOS` at the
    /// start): the log-probabilities of the next token, row-major `[rows, vocab]`, and the
    /// attention weights, row-major `[rows, source]`, if the decoder attends.
    fn step(&mut self, last: &[usize]) -> (Vec<f32>, Option<Vec<f32>>);

    /// Keeps the state of rows `rows`, in that order (a row may repeat): a beam's reordering.
    fn keep(&mut self, rows: &[usize]);
}

fn row<T>(flat: &[T], rows: usize, k: usize) -> &[T] {
    let width = flat.len() / rows;
    &flat[k * width..(k + 1) * width]
}

/// Greedy decoding of `rows` rows: the most probable token at every step, until `EOS` or
/// `max_len` tokens.
pub fn greedy(decoder: &mut impl StepDecoder, rows: usize, max_len: usize) -> Vec<Decoded> {
    pick(decoder, rows, max_len, |log_p| {
        let (best, _) = log_p
            .iter()
            .enumerate()
            .filter(|&(i, _)| may_output(i))
            .fold((EOS, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                if v > bv { (i, v) } else { (bi, bv) }
            });
        best
    })
}

/// Ancestral sampling of `rows` rows: each token drawn from the model's distribution sharpened
/// or flattened by `temperature` (`p^(1/T)`, renormalised; `T → 0` is greedy, and `T = 0` is
/// [`greedy`] itself), with `rng`.
///
/// # Panics
/// On a temperature that is negative or not finite.
pub fn sample(
    decoder: &mut impl StepDecoder,
    rows: usize,
    max_len: usize,
    temperature: f64,
    rng: &mut SplitMix64,
) -> Vec<Decoded> {
    assert!(
        temperature.is_finite() && temperature >= 0.0,
        "sampling temperature: expected a finite number >= 0, got {temperature}"
    );
    if temperature == 0.0 {
        return greedy(decoder, rows, max_len);
    }
    pick(decoder, rows, max_len, |log_p| {
        let top = log_p
            .iter()
            .fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
        let weights: Vec<f64> = log_p
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                if may_output(k) {
                    ((f64::from(v) - top) / temperature).exp()
                } else {
                    0.0
                }
            })
            .collect();
        let total: f64 = weights.iter().sum();
        let mut u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * total;
        for (k, w) in weights.iter().enumerate() {
            if u < *w {
                return k;
            }
            u -= w;
        }
        // rounding left `u` past the last weight: the last token that may be output
        (0..weights.len())
            .rev()
            .find(|&k| weights[k] > 0.0)
            .unwrap_or(EOS)
    })
}

/// Decoding of `rows` rows, the next token of each chosen by `choose` from its
/// log-probabilities.
fn pick(
    decoder: &mut impl StepDecoder,
    rows: usize,
    max_len: usize,
    mut choose: impl FnMut(&[f32]) -> usize,
) -> Vec<Decoded> {
    let mut out: Vec<Decoded> = (0..rows).map(|_| Decoded::empty()).collect();
    let mut last = vec![BOS; rows];
    let mut done = vec![false; rows];
    for _ in 0..max_len {
        let (log_p, weights) = decoder.step(&last);
        for k in 0..rows {
            if done[k] {
                continue;
            }
            let lp = row(&log_p, rows, k);
            let token = choose(lp);
            out[k].log_prob += f64::from(lp[token]);
            if let Some(w) = &weights {
                out[k].alignment.push(row(w, rows, k).to_vec());
            }
            if token == EOS {
                done[k] = true;
                out[k].finished = true;
            } else {
                out[k].tokens.push(token);
            }
            last[k] = token;
        }
        if done.iter().all(|&d| d) {
            break;
        }
    }
    out
}

/// Beam search of width `width` from a decoder holding one row, at most `max_len` tokens: at
/// most `width` hypotheses that reached `EOS`, best first by `log p / lp(len)`, GNMT's length
/// penalty `lp(len) = ((5 + len) / 6)^alpha` where `len` counts the decoder's steps, `EOS`
/// included (`tokens.len() + 1`; as fairseq and OpenNMT count). `alpha = 0` ranks by the raw
/// log-probability, which favours short outputs (every token adds a negative term). The search
/// ends when `width` hypotheses have finished and no live one can score better, or at
/// `max_len`. Unfinished hypotheses ([`Decoded::finished`] false, `len = tokens.len()`) are
/// returned when none finished; a `max_len` of 0 gives one empty unfinished hypothesis, as
/// [`greedy`] does.
///
/// # Panics
/// On a width of 0.
pub fn beam(
    decoder: &mut impl StepDecoder,
    width: usize,
    max_len: usize,
    alpha: f64,
) -> Vec<Decoded> {
    assert!(width >= 1, "beam width: expected at least 1, got 0");
    if max_len == 0 {
        return vec![Decoded::empty()];
    }
    let penalty = |len: usize| ((5.0 + len as f64) / 6.0).powf(alpha);
    let mut live = vec![Decoded::empty()];
    let mut finished: Vec<(f64, Decoded)> = Vec::new();
    for step in 0..max_len {
        let n = live.len();
        let last: Vec<usize> = live
            .iter()
            .map(|d| d.tokens.last().copied().unwrap_or(BOS))
            .collect();
        let (log_p, weights) = decoder.step(&last);
        // every extension of every live hypothesis, best first
        let mut candidates: Vec<(f64, usize, usize)> = (0..n)
            .flat_map(|k| {
                let base = live[k].log_prob;
                row(&log_p, n, k)
                    .iter()
                    .enumerate()
                    .filter(|&(tok, _)| may_output(tok))
                    .map(move |(tok, &lp)| (base + f64::from(lp), k, tok))
            })
            .collect();
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut keep = Vec::new();
        let mut rows = Vec::new();
        for (score, k, tok) in candidates {
            if keep.len() == width {
                break;
            }
            let mut d = live[k].clone();
            d.log_prob = score;
            if let Some(w) = &weights {
                d.alignment.push(row(w, n, k).to_vec());
            }
            if tok == EOS {
                d.finished = true;
                finished.push((score / penalty(d.tokens.len() + 1), d));
                continue;
            }
            d.tokens.push(tok);
            keep.push(d);
            rows.push(k);
        }
        // Stop once `width` hypotheses finished and none of the live ones can still beat the
        // best of them: a live hypothesis's log p only falls as it grows, so its best possible
        // score is its log p under the longest length's penalty. (Stopping at the `width`-th
        // finished one returned hypotheses cut short whenever improbable early `EOS`s had
        // filled the count before the likely, longer ones finished.)
        let best_finished = finished
            .iter()
            .map(|(s, _)| *s)
            .fold(f64::NEG_INFINITY, f64::max);
        let best_live = keep
            .iter()
            .map(|d| d.log_prob / penalty(max_len))
            .fold(f64::NEG_INFINITY, f64::max);
        let settled = finished.len() >= width && best_finished >= best_live;
        if settled || keep.is_empty() || step + 1 == max_len {
            if finished.is_empty() {
                finished = keep
                    .into_iter()
                    .map(|d| (d.log_prob / penalty(d.tokens.len()), d))
                    .collect();
            }
            break;
        }
        decoder.keep(&rows);
        live = keep;
    }
    // finished hypotheses do not take a live slot, so more than `width` may have finished
    finished.sort_by(|a, b| b.0.total_cmp(&a.0));
    finished.truncate(width);
    finished.into_iter().map(|(_, d)| d).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A decoder over the vocabulary {PAD, BOS, EOS, UNK, a=4, b=5} whose next-token
    /// distribution depends only on the previous token: after BOS, a 0.6 / b 0.4; after a, EOS;
    /// after b, b 0.9 / EOS 0.1 ... a table, so every search has a hand-computable answer.
    struct Table {
        rows: usize,
        steps: usize,
    }

    fn dist(last: usize) -> [f32; 6] {
        let mut p = [1e-9f32; 6];
        match last {
            BOS => {
                p[4] = 0.6;
                p[5] = 0.4;
            }
            4 => p[EOS] = 1.0,
            _ => {
                p[5] = 0.45;
                p[EOS] = 0.55;
            }
        }
        p.map(|x| x.ln())
    }

    impl StepDecoder for Table {
        fn step(&mut self, last: &[usize]) -> (Vec<f32>, Option<Vec<f32>>) {
            assert_eq!(last.len(), self.rows);
            self.steps += 1;
            (last.iter().flat_map(|&l| dist(l)).collect(), None)
        }

        fn keep(&mut self, rows: &[usize]) {
            self.rows = rows.len();
        }
    }

    #[test]
    fn greedy_takes_the_most_likely_token_each_step() {
        let out = greedy(&mut Table { rows: 2, steps: 0 }, 2, 10);
        assert_eq!(out[0].tokens, [4]);
        assert!((out[1].log_prob - (0.6f64.ln() + 1.0f64.ln())).abs() < 1e-6);
    }

    #[test]
    fn output_cut_at_max_len_is_marked_unfinished() {
        // after b, EOS is likelier than b: only a search that may not end shows the cut
        let g = greedy(&mut Table { rows: 1, steps: 0 }, 1, 1);
        assert_eq!((g[0].tokens.as_slice(), g[0].finished), (&[4][..], false));
        let g = greedy(&mut Table { rows: 1, steps: 0 }, 1, 2);
        assert!(g[0].finished);
        let b = beam(&mut Table { rows: 1, steps: 0 }, 2, 1, 0.0);
        assert!(!b.is_empty() && b.iter().all(|d| !d.finished));
        let none = beam(&mut Table { rows: 1, steps: 0 }, 2, 0, 0.0);
        assert_eq!(none.len(), 1);
        assert!(none[0].tokens.is_empty() && !none[0].finished);
    }

    #[test]
    fn beam_finds_the_best_whole_sequence() {
        // greedy gives [a] with p 0.6; [b] has 0.4 · 0.55 = 0.22: the beam ranks them so
        let out = beam(&mut Table { rows: 1, steps: 0 }, 3, 10, 0.0);
        assert!(out.iter().all(|d| d.finished));
        assert_eq!(out[0].tokens, [4]);
        assert_eq!(out[1].tokens, [5]);
        assert!((out[1].log_prob - (0.4f64 * 0.55).ln()).abs() < 1e-5);
        assert!(out.windows(2).all(|w| w[0].log_prob >= w[1].log_prob));
    }

    #[test]
    fn sampling_follows_the_distribution_and_the_temperature() {
        let mut rng = SplitMix64::new(1);
        let out = sample(
            &mut Table {
                rows: 4000,
                steps: 0,
            },
            4000,
            10,
            1.0,
            &mut rng,
        );
        let a = out.iter().filter(|d| d.tokens == [4]).count() as f64 / 4000.0;
        assert!((a - 0.6).abs() < 0.03, "{a}");
        let cold = sample(
            &mut Table {
                rows: 500,
                steps: 0,
            },
            500,
            10,
            0.05,
            &mut rng,
        );
        assert!(cold.iter().all(|d| d.tokens == [4]));
        // T = 0 is greedy, log-probabilities included
        let zero = sample(&mut Table { rows: 3, steps: 0 }, 3, 10, 0.0, &mut rng);
        let greedy_out = greedy(&mut Table { rows: 3, steps: 0 }, 3, 10);
        for (z, g) in zero.iter().zip(&greedy_out) {
            assert_eq!((&z.tokens, z.log_prob), (&g.tokens, g.log_prob));
        }
        let long = out.iter().map(|d| d.tokens.len()).max().unwrap();
        assert!(long > 2, "b repeats with p 0.45: some samples run longer");
    }

    #[test]
    fn no_search_outputs_pad_or_bos() {
        // at temperature 10 the table's 1e-9 for PAD and BOS becomes about 12% each
        let mut rng = SplitMix64::new(3);
        let rows = 2000;
        let hot = sample(&mut Table { rows, steps: 0 }, rows, 10, 10.0, &mut rng);
        let specials = |d: &Decoded| d.tokens.iter().any(|&t| t == PAD || t == BOS);
        assert!(!hot.iter().any(specials));
        // and UNK, which a model may answer with, is still drawn
        assert!(
            hot.iter()
                .any(|d| d.tokens.contains(&rensa_data::vocab::UNK))
        );
        let wide = beam(&mut Table { rows: 1, steps: 0 }, 6, 10, 0.0);
        assert!(!wide.iter().any(specials), "{wide:?}");
    }

    /// After BOS: EOS 0.5, a 0.3, b 0.2; after a: EOS 0.9, a 0.1; after b: EOS.
    struct Early {
        rows: usize,
    }

    impl StepDecoder for Early {
        fn step(&mut self, last: &[usize]) -> (Vec<f32>, Option<Vec<f32>>) {
            let dist = |l: usize| {
                let mut p = [1e-9f32; 6];
                match l {
                    BOS => (p[EOS], p[4], p[5]) = (0.5, 0.3, 0.2),
                    4 => (p[EOS], p[4]) = (0.9, 0.1),
                    _ => p[EOS] = 1.0,
                }
                p.map(f32::ln)
            };
            (last.iter().flat_map(|&l| dist(l)).collect(), None)
        }

        fn keep(&mut self, rows: &[usize]) {
            self.rows = rows.len();
        }
    }

    #[test]
    fn beam_returns_at_most_width_hypotheses_ranked_with_eos_in_the_length() {
        // the empty answer finishes first but a longer one can still beat it under the penalty:
        // two finish for width 1 (three with alpha 2); only the best is returned
        for alpha in [1.0, 2.0] {
            let out = beam(&mut Early { rows: 1 }, 1, 10, alpha);
            assert_eq!(out.len(), 1, "alpha {alpha}: {out:?}");
            let lp = |d: &Decoded| ((5.0 + (d.tokens.len() + 1) as f64) / 6.0).powf(alpha);
            // the best by log p / lp(tokens + EOS): [a] with 0.3 · 0.9 against [] with 0.5
            let a = (0.3f64 * 0.9).ln() / ((5.0 + 2.0) / 6.0f64).powf(alpha);
            let empty = 0.5f64.ln() / ((5.0 + 1.0) / 6.0f64).powf(alpha);
            let want: &[usize] = if a > empty { &[4] } else { &[] };
            assert_eq!(out[0].tokens, want, "alpha {alpha}");
            assert!((out[0].log_prob / lp(&out[0]) - a.max(empty)).abs() < 1e-6);
        }
        let three = beam(&mut Early { rows: 1 }, 3, 10, 1.0);
        assert!(three.len() <= 3);
    }
}

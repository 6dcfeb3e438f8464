//! Test figures: perplexity of the responses (the last, dependent turn and all), how many valid
//! answers sampled responses cover, distinct-n of generated responses.

use burn::tensor::activation::log_softmax;
use rensa_data::SplitMix64;
use rensa_data::dialogue::DialogueBatch;
use rensa_data::dialogue::generated::Generated;
use rensa_data::tokens::PairBatch;
use rensa_launch::Inner;
use rensa_models::hred::Hred;
use rensa_models::seq2seq::search::Decoded;
use rensa_models::seq2seq::token::TokenSeq2Seq;
use rensa_nn::latent::active_units;
use rensa_nn::recurrent::RecurrentCell;
use std::collections::HashSet;

/// Dialogues per scoring batch.
const BATCH: usize = 64;

/// Summed negative log-likelihood (and KL) and tokens of a set of responses.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Tally {
    pub responses: usize,
    pub tokens: usize,
    pub nll: f64,
    pub kl: f64,
    /// VHRED: the importance-sampled `−log p` ([`Hred::importance_nll`]), summed.
    pub importance: f64,
}

impl Tally {
    fn add(&mut self, tokens: usize, nll: f64, kl: f64, importance: f64) {
        self.responses += 1;
        self.tokens += tokens;
        self.nll += nll;
        self.kl += kl;
        self.importance += importance;
    }

    /// `exp((nll + kl) / tokens)`: the perplexity (for a VHRED, its upper bound).
    pub fn perplexity(&self) -> f64 {
        ((self.nll + self.kl) / self.tokens.max(1) as f64).exp()
    }

    /// VHRED: the perplexity from the importance-sampled `−log p` (a tighter bound than
    /// [`perplexity`](Self::perplexity)'s).
    pub fn importance_perplexity(&self) -> f64 {
        (self.importance / self.tokens.max(1) as f64).exp()
    }

    /// KL per response.
    pub fn kl_per_response(&self) -> f64 {
        self.kl / self.responses.max(1) as f64
    }
}

/// The test responses scored: the last turns and all of them.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scores {
    pub last: Tally,
    pub all: Tally,
    /// VHRED: latent units whose posterior mean varies over the test responses.
    pub active_units: Option<usize>,
}

/// Scores an HRED or VHRED on the test dialogues; a VHRED's `−log p` is also estimated from
/// `importance` posterior draws per response.
pub fn score_hred<C: RecurrentCell<Inner>>(
    model: &Hred<Inner, C>,
    test: &[Vec<Vec<usize>>],
    importance: usize,
) -> Scores {
    let mut s = Scores::default();
    let mut means = Vec::new();
    for chunk in test.chunks(BATCH) {
        let refs: Vec<&Vec<Vec<usize>>> = chunk.iter().collect();
        let batch = DialogueBatch::of(&refs);
        let mut losses = model.forward(&batch, None);
        if let Some(m) = losses.posterior_means.take() {
            means.push(m);
        }
        let scores = Hred::<Inner, C>::scores_of(&batch, losses);
        let estimates = if model.is_variational() {
            model.importance_nll(&batch, importance)
        } else {
            scores.iter().map(|r| r.nll).collect()
        };
        for (r, estimate) in scores.iter().zip(estimates) {
            s.all.add(r.tokens, r.nll, r.kl, estimate);
            if r.last {
                s.last.add(r.tokens, r.nll, r.kl, estimate);
            }
        }
    }
    if !means.is_empty() {
        let means = burn::tensor::Tensor::cat(means, 0);
        // one response has no variance to measure (not reported rather than reported as 0)
        if means.dims()[0] >= 2 {
            s.active_units = Some(active_units(means, 0.01));
        }
    }
    s
}

/// A `(previous turn, turn)` pair of ids.
pub type Pair = (Vec<usize>, Vec<usize>);

/// The `(previous turn, turn)` pairs of dialogues, and whether each is a dialogue's last turn.
pub fn last_turn_pairs(dialogues: &[Vec<Vec<usize>>]) -> Vec<(Pair, bool)> {
    dialogues
        .iter()
        .flat_map(|d| {
            (1..d.len()).map(move |k| ((d[k - 1].clone(), d[k].clone()), k + 1 == d.len()))
        })
        .collect()
}

/// Scores a seq2seq over the previous turn on the test dialogues.
pub fn score_seq2seq<C: RecurrentCell<Inner>>(
    model: &TokenSeq2Seq<Inner, C>,
    test: &[Vec<Vec<usize>>],
) -> Scores {
    let device = model.device();
    let pairs = last_turn_pairs(test);
    let mut s = Scores::default();
    for chunk in pairs.chunks(BATCH) {
        let refs: Vec<&(Vec<usize>, Vec<usize>)> = chunk.iter().map(|(p, _)| p).collect();
        let batch = PairBatch::of(&refs);
        let logits = model.forward(&batch, None);
        let (_, _, target) = batch.tensors::<Inner>(&device);
        let mask = batch.target_mask::<Inner>(&device);
        let picked = log_softmax(logits, 2)
            .gather(2, target.unsqueeze_dim(2))
            .squeeze_dim::<2>(2);
        let nll: Vec<f32> = (picked * mask)
            .sum_dim(1)
            .neg()
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 values");
        for (k, (_, last)) in chunk.iter().enumerate() {
            let tokens = batch.target_lengths[k];
            let nll = f64::from(nll[k]);
            s.all.add(tokens, nll, 0.0, nll);
            if *last {
                s.last.add(tokens, nll, 0.0, nll);
            }
        }
    }
    s
}

/// How many of a context's valid answers a model's responses cover.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Coverage {
    /// Contexts with several valid answers that were tried.
    pub contexts: usize,
    /// Valid answers per context.
    pub forms: usize,
    /// Responses per context.
    pub samples: usize,
    /// Mean share of the valid answers hit: greedy decoding, the latent drawn afresh each time
    /// (VHRED; an HRED gives one answer).
    pub latent_greedy: f64,
    /// The same with beam search.
    pub latent_beam: f64,
    /// Ancestral sampling (temperature 1), the latent drawn afresh each time.
    pub sampled: f64,
    /// Share of all responses that are a valid answer.
    pub valid: f64,
}

/// The answer form `d` is, if it is one of `g`'s valid answers.
fn form_of(d: &Decoded, g: &Generated, vocab: &rensa_data::vocab::Vocabulary) -> Option<usize> {
    let words = vocab.decode(&d.tokens);
    g.answers
        .iter()
        .position(|a| a.iter().map(String::as_str).eq(words.iter().copied()))
}

/// Coverage of the valid answers of up to `contexts` multi-answer test dialogues, `samples`
/// responses each.
#[allow(clippy::too_many_arguments)]
pub fn coverage<C: RecurrentCell<Inner>>(
    model: &Hred<Inner, C>,
    test: &[Vec<Vec<usize>>],
    generated: &[Generated],
    vocab: &rensa_data::vocab::Vocabulary,
    contexts: usize,
    samples: usize,
    beam: usize,
    seed: u64,
) -> Coverage {
    let mut rng = SplitMix64::new(seed ^ 0xc0fe);
    let picked: Vec<usize> = (0..test.len())
        .filter(|&k| generated[k].answers.len() > 1)
        .take(contexts)
        .collect();
    let mut c = Coverage {
        contexts: picked.len(),
        samples,
        ..Coverage::default()
    };
    let (mut valid, mut all) = (0usize, 0usize);
    for &k in &picked {
        let g = &generated[k];
        c.forms = g.answers.len();
        let context = test[k][..test[k].len() - 1].to_vec();
        let copies = vec![context.clone(); samples];
        let max_len = 2 * g.answers.iter().map(Vec::len).max().unwrap_or(1) + 2;
        let greedy = model
            .greedy(&copies, max_len, &mut rng)
            .expect("a checked context");
        let sampled = model
            .sample(&copies, max_len, 1.0, &mut rng)
            .expect("a checked context");
        // an HRED's beam is the same every time
        let beams = if model.is_variational() { samples } else { 1 };
        let beamed: Vec<Decoded> = (0..beams)
            .map(|_| {
                model
                    .beam(&context, beam, max_len, 0.0, &mut rng)
                    .expect("a checked context")
                    .swap_remove(0)
            })
            .collect();
        let mut share = |responses: &[Decoded]| {
            let forms: HashSet<usize> = responses
                .iter()
                .filter_map(|d| form_of(d, g, vocab))
                .collect();
            valid += responses
                .iter()
                .filter(|d| form_of(d, g, vocab).is_some())
                .count();
            all += responses.len();
            forms.len() as f64 / g.answers.len() as f64
        };
        c.latent_greedy += share(&greedy);
        c.sampled += share(&sampled);
        c.latent_beam += share(&beamed);
    }
    let n = picked.len().max(1) as f64;
    c.latent_greedy /= n;
    c.sampled /= n;
    c.latent_beam /= n;
    c.valid = valid as f64 / all.max(1) as f64;
    c
}

/// distinct-1 and distinct-2 of `responses`: distinct unigrams and bigrams over all unigrams and
/// bigrams (the common form; Li et al., 2016 divide both by the number of tokens, which gives the
/// same distinct-1 and a distinct-2 smaller by the factor `bigrams / tokens`, where a response
/// of `n ≥ 1` tokens holds `n − 1` bigrams and an empty one none).
pub fn distinct(responses: &[Vec<usize>]) -> (f64, f64) {
    let mut ones = HashSet::new();
    let mut twos = HashSet::new();
    let (mut n1, mut n2) = (0usize, 0usize);
    for r in responses {
        for w in r {
            ones.insert(*w);
            n1 += 1;
        }
        for p in r.windows(2) {
            twos.insert((p[0], p[1]));
            n2 += 1;
        }
    }
    (
        ones.len() as f64 / n1.max(1) as f64,
        twos.len() as f64 / n2.max(1) as f64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_counts_unique_ngrams() {
        let (d1, d2) = distinct(&[vec![4, 5, 4], vec![4, 5]]);
        assert!((d1 - 2.0 / 5.0).abs() < 1e-12);
        assert!((d2 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(distinct(&[]), (0.0, 0.0));
    }

    #[test]
    fn tallies_give_perplexity_and_kl() {
        let mut t = Tally::default();
        t.add(4, 2.0, 0.0, 2.0);
        t.add(6, 3.0, 1.0, 3.5);
        assert!((t.perplexity() - (0.6f64).exp()).abs() < 1e-12);
        assert!((t.importance_perplexity() - (0.55f64).exp()).abs() < 1e-12);
        assert_eq!(t.kl_per_response(), 0.5);
    }
}

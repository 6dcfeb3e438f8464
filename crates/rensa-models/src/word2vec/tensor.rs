//! The batched trainer on any burn backend (for the GPU): the same model, updates and
//! learning-rate schedule as the [CPU trainer](super::cpu), applied to thousands of predictions
//! at once with tensor operations.
//!
//! The host streams the corpus, subsamples, shrinks windows and draws the noise words by the same
//! rules as the CPU trainer (from a random stream of its own, so not the same draws), and packs `batch` predictions (skip-gram pairs or CBOW positions) into
//! index tensors. The device gathers the rows (`select`), computes the scores and the gradients
//! written out by hand (no autodiff: `g = (label − σ(f))·α`, `Δv' = g·h`, `Δh = Σ g·v'`), and adds
//! them back with `select_assign(.., Add)`: a word that occurs several times in one batch gets
//! the sum of its updates, a minibatch step on the summed loss, on every backend. (Averaging a
//! word's updates instead left frequent words almost untrained: in a trial CBOW epoch on the
//! English corpus the loss stayed at ln 2, where sums came within about 10% of the sequential
//! CPU trainer's. On a tiny vocabulary, where every word occurs in most predictions of a batch,
//! the sums overshoot: use small batches there.)
//! `scatter_nd` would add rows in parallel, but burn 0.21's GPU kernel does so without atomics,
//! and a test of one prediction lost updates with it; `select_assign`'s GPU kernel is exact but
//! parallel only over the vector's dimensions (it walks the batch's rows in order), which bounds
//! its speed on a GPU. Negative sampling only; hierarchical softmax trains on the CPU.

use std::time::Instant;

use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, IndexingUpdateOp, Int, Tensor, TensorData};
use rensa_data::rng::SplitMix64;
use rensa_data::text::corpus::Corpus;
use rensa_data::text::sampling::{NoiseTable, Subsampler, context_span, shrunk_window};

use super::Result;
use super::config::Architecture;
use super::model::{Progress, TrainReport, Word2Vec};

/// gensim's clip: scores beyond ±6 are not trained on (as the CPU trainer; word2vec.c skips them
/// only in hierarchical softmax).
const MAX_EXP: f64 = 6.0;

/// One batch, on the host.
#[derive(Default)]
struct Batch {
    /// Skip-gram: the input word of each prediction; CBOW: `2·window` context slots each.
    inputs: Vec<i64>,
    /// CBOW: 1 for a real context slot, 0 for padding.
    input_mask: Vec<f32>,
    /// CBOW: the number of real context words of each prediction.
    counts: Vec<f32>,
    /// The true word, then the noise words, of each prediction.
    targets: Vec<i64>,
    /// 1 where a target is trained on (0: a noise word equal to the true one).
    weights: Vec<f32>,
    /// Predictions in the batch.
    len: usize,
}

impl Batch {
    fn clear(&mut self) {
        *self = Self {
            inputs: std::mem::take(&mut self.inputs),
            input_mask: std::mem::take(&mut self.input_mask),
            counts: std::mem::take(&mut self.counts),
            targets: std::mem::take(&mut self.targets),
            weights: std::mem::take(&mut self.weights),
            len: 0,
        };
        self.inputs.clear();
        self.input_mask.clear();
        self.counts.clear();
        self.targets.clear();
        self.weights.clear();
    }

    fn push_targets(
        &mut self,
        word: u32,
        negative: usize,
        noise: &NoiseTable,
        rng: &mut SplitMix64,
    ) {
        self.targets.push(word as i64);
        self.weights.push(1.0);
        for _ in 0..negative {
            let n = noise.draw(rng);
            self.targets.push(n as i64);
            self.weights.push(if n == word { 0.0 } else { 1.0 });
        }
        self.len += 1;
    }
}

fn ints<B: Backend, const D: usize>(
    v: &[i64],
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D, Int> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

fn floats<B: Backend, const D: usize>(
    v: &[f32],
    shape: [usize; D],
    device: &B::Device,
) -> Tensor<B, D> {
    Tensor::from_data(TensorData::new(v.to_vec(), shape), device)
}

/// The weights on the device and what a step needs.
struct Step<'a, B: Backend> {
    input: Tensor<B, 2>,
    output: Tensor<B, 2>,
    device: &'a B::Device,
    dims: usize,
    negative: usize,
    window: usize,
    cbow_mean: bool,
    loss: Option<Tensor<B, 1>>,
}

impl<B: Backend> Step<'_, B> {
    fn apply(&mut self, batch: &Batch, alpha: f32, architecture: Architecture, compute_loss: bool) {
        let (n, k1, d) = (batch.len, self.negative + 1, self.dims);
        if n == 0 {
            return;
        }
        let device = self.device;
        // h: [n, d], the hidden vector of each prediction
        let (h, slots) = match architecture {
            Architecture::SkipGram => {
                let ids = ints::<B, 1>(&batch.inputs, [n], device);
                (self.input.clone().select(0, ids), 1)
            }
            Architecture::Cbow => {
                let c = 2 * self.window;
                let ids = ints::<B, 1>(&batch.inputs, [n * c], device);
                let mask = floats::<B, 3>(&batch.input_mask, [n, c, 1], device);
                // [n, c, d] -> [n, d]
                let summed = (self.input.clone().select(0, ids).reshape([n, c, d]) * mask)
                    .sum_dim(1)
                    .reshape([n, d]);
                let h = if self.cbow_mean {
                    summed / floats::<B, 2>(&batch.counts, [n, 1], device)
                } else {
                    summed
                };
                (h, c)
            }
        };
        let targets = ints::<B, 1>(&batch.targets, [n * k1], device);
        // [n, k1, d]
        let out = self
            .output
            .clone()
            .select(0, targets.clone())
            .reshape([n, k1, d]);
        // [n, k1, 1]
        let f = (out.clone() * h.clone().unsqueeze_dim::<3>(1)).sum_dim(2);
        let weights = floats::<B, 3>(&batch.weights, [n, k1, 1], device);
        let mut label = vec![0f32; n * k1];
        label.iter_mut().step_by(k1).for_each(|l| *l = 1.0);
        let label = floats::<B, 3>(&label, [n, k1, 1], device);
        let in_range = f.clone().abs().lower_elem(MAX_EXP).float();
        let g = (label.clone() - sigmoid(f.clone())) * weights.clone() * in_range * alpha;
        if compute_loss {
            // −log σ(f) for the true word, −log σ(−f) for noise: softplus(∓f)
            let signed = f * (label * -2.0 + 1.0);
            let softplus =
                (signed.clone().clamp_min(0.0) + (signed.abs().neg().exp() + 1.0).log()) * weights;
            let sum = softplus.sum().reshape([1]);
            self.loss = Some(match self.loss.take() {
                Some(l) => l + sum,
                None => sum,
            });
        }
        // [n, d]
        let grad_h = (g.clone() * out).sum_dim(1).reshape([n, d]);
        // [n * k1, d]
        let grad_out = (g * h.unsqueeze_dim::<3>(1)).reshape([n * k1, d]);
        self.output =
            self.output
                .clone()
                .select_assign(0, targets, grad_out, IndexingUpdateOp::Add);
        let grad_in = match architecture {
            Architecture::SkipGram => grad_h,
            Architecture::Cbow => {
                // [n, slots, d]: every real context word gets the gradient, padding none
                let mut grad = grad_h.unsqueeze_dim::<3>(1)
                    * floats::<B, 3>(&batch.input_mask, [n, slots, 1], device);
                if !self.cbow_mean {
                    grad = grad / floats::<B, 3>(&batch.counts, [n, 1, 1], device);
                }
                grad.reshape([n * slots, d])
            }
        };
        let ids = ints::<B, 1>(&batch.inputs, [n * slots], device);
        self.input = self
            .input
            .clone()
            .select_assign(0, ids, grad_in, IndexingUpdateOp::Add);
    }
}

impl Word2Vec {
    /// Trains for `config.epochs` passes over `corpus` with the batched trainer on `device`
    /// (see the [module docs](self)), `batch` predictions per step (the last step of the run
    /// fewer; a step may end inside a sentence).
    ///
    /// # Errors
    /// Hierarchical softmax (CPU only), a batch of 0, an unreadable corpus, or training that
    /// diverged.
    pub fn fit_tensor<B: Backend>(
        &mut self,
        corpus: &Corpus,
        device: &B::Device,
        batch: usize,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<TrainReport> {
        let config = self.config().clone();
        config.validate_tensor(batch)?;
        let vocab = self.vocab().clone();
        let subsampler = Subsampler::new(&vocab, config.sample)?;
        let noise = NoiseTable::new(vocab.counts(), config.ns_exponent)?;
        let (v, d) = (vocab.len(), config.dims);
        let (input, output) = self.weights_mut();
        let mut step = Step::<B> {
            input: floats::<B, 2>(input, [v, d], device),
            output: floats::<B, 2>(output, [v, d], device),
            device,
            dims: d,
            negative: config.negative,
            window: config.window,
            cbow_mean: config.cbow_mean,
            loss: None,
        };
        let total = vocab.corpus_words().max(1) * config.epochs as u64;
        let start = Instant::now();
        let mut report = TrainReport::default();
        let mut rng = SplitMix64::new(config.seed ^ 0x7E45_0A11);
        let mut b = Batch::default();
        let (mut words, mut effective, mut predictions) = (0u64, 0u64, 0u64);
        let mut ids = Vec::new();
        let alpha_at = |words: u64| {
            (config.alpha
                - (config.alpha - config.min_alpha) * (words as f64 / total as f64) as f32)
                .max(config.min_alpha)
        };
        let mut flush = |b: &mut Batch,
                         step: &mut Step<'_, B>,
                         words: u64,
                         predictions: &mut u64,
                         last: bool| {
            step.apply(b, alpha_at(words), config.architecture, config.compute_loss);
            // the predictions trained: a noise draw equal to the true word has weight 0
            *predictions += b.weights.iter().filter(|&&w| w > 0.0).count() as u64;
            b.clear();
            let loss = if config.compute_loss && (last || *predictions >= 1 << 22) {
                let sum: f64 = step
                    .loss
                    .take()
                    .map_or(0.0, |l| l.into_scalar().elem::<f64>());
                let mean = sum / (*predictions).max(1) as f64;
                *predictions = 0;
                report.losses.push((words, mean));
                Some(mean)
            } else {
                None
            };
            progress(&Progress {
                epoch: (words * config.epochs as u64 / total).min(config.epochs as u64 - 1)
                    as usize,
                words,
                total_words: total,
                alpha: alpha_at(words),
                loss,
                seconds: start.elapsed().as_secs_f64(),
            });
        };
        for _ in 0..config.epochs {
            corpus.for_each_sentence(|sentence| {
                ids.clear();
                ids.extend(
                    sentence
                        .tokens()
                        .filter_map(|t| vocab.id(t))
                        .filter(|&id| subsampler.keep(id, &mut rng)),
                );
                words += sentence.len() as u64;
                effective += ids.len() as u64;
                for i in 0..ids.len() {
                    let (lo, hi) =
                        context_span(i, ids.len(), shrunk_window(config.window, &mut rng));
                    match config.architecture {
                        Architecture::SkipGram => {
                            for j in (lo..hi).filter(|&j| j != i) {
                                b.inputs.push(ids[j] as i64);
                                b.push_targets(ids[i], config.negative, &noise, &mut rng);
                                // each prediction stands alone: a step may end mid-sentence
                                if b.len >= batch {
                                    flush(&mut b, &mut step, words, &mut predictions, false);
                                }
                            }
                        }
                        Architecture::Cbow => {
                            if hi - lo < 2 {
                                continue;
                            }
                            let slots = 2 * config.window;
                            let mut used = 0;
                            for j in (lo..hi).filter(|&j| j != i) {
                                b.inputs.push(ids[j] as i64);
                                b.input_mask.push(1.0);
                                used += 1;
                            }
                            for _ in used..slots {
                                b.inputs.push(0);
                                b.input_mask.push(0.0);
                            }
                            b.counts.push(used as f32);
                            b.push_targets(ids[i], config.negative, &noise, &mut rng);
                            if b.len >= batch {
                                flush(&mut b, &mut step, words, &mut predictions, false);
                            }
                        }
                    }
                }
            })?;
        }
        flush(&mut b, &mut step, words, &mut predictions, true);
        let input_values: Vec<f32> = step.input.into_data().to_vec().expect("f32 weights");
        let output_values: Vec<f32> = step.output.into_data().to_vec().expect("f32 weights");
        let (input, output) = self.weights_mut();
        input.copy_from_slice(&input_values);
        output.copy_from_slice(&output_values);
        self.check_finite()?;
        report.seconds = start.elapsed().as_secs_f64();
        report.words = words;
        report.effective_words = effective;
        report.words_per_second = words as f64 / report.seconds.max(1e-9);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rensa_testkit::{TestBackend, WgpuBackend, wgpu_device_or_skip};

    fn sig(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// One prediction of each architecture, against the update rules computed in f64.
    fn one_step_matches_the_rules<B: Backend>(device: &B::Device) {
        let (v, d) = (4, 3);
        let w_in: Vec<f32> = (0..v * d)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 10.0)
            .collect();
        let w_out: Vec<f32> = (0..v * d)
            .map(|i| ((i * 5 % 13) as f32 - 6.0) / 9.0)
            .collect();
        let alpha = 0.1f32;
        for architecture in [Architecture::SkipGram, Architecture::Cbow] {
            let mut step = Step::<B> {
                input: floats::<B, 2>(&w_in, [v, d], device),
                output: floats::<B, 2>(&w_out, [v, d], device),
                device,
                dims: d,
                negative: 2,
                window: 1,
                cbow_mean: true,
                loss: None,
            };
            let mut batch = Batch::default();
            // predict word 1 from input 0 (skip-gram) or from inputs 0 and 3 (CBOW); noise
            // words 2 and 1 (the latter equals the true word: not trained on)
            let contexts: Vec<usize> = match architecture {
                Architecture::SkipGram => {
                    batch.inputs.push(0);
                    vec![0]
                }
                Architecture::Cbow => {
                    batch.inputs.extend([0, 3]);
                    batch.input_mask.extend([1.0, 1.0]);
                    batch.counts.push(2.0);
                    vec![0, 3]
                }
            };
            batch.targets.extend([1, 2, 1]);
            batch.weights.extend([1.0, 1.0, 0.0]);
            batch.len = 1;
            step.apply(&batch, alpha, architecture, true);
            // the rules, in f64
            let row =
                |m: &[f32], r: usize| -> Vec<f64> { (0..d).map(|k| m[r * d + k] as f64).collect() };
            let mut h = vec![0.0; d];
            for &c in &contexts {
                for k in 0..d {
                    h[k] += row(&w_in, c)[k] / contexts.len() as f64;
                }
            }
            let (mut want_in, mut want_out) = (
                w_in.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                w_out.iter().map(|&x| x as f64).collect::<Vec<_>>(),
            );
            let mut e = vec![0.0; d];
            let mut loss = 0.0;
            for (target, label) in [(1usize, 1.0), (2, 0.0)] {
                let o = row(&w_out, target);
                let f: f64 = (0..d).map(|k| o[k] * h[k]).sum();
                let g = (label - sig(f)) * alpha as f64;
                loss += if label == 1.0 {
                    -sig(f).ln()
                } else {
                    -(1.0 - sig(f)).ln()
                };
                for k in 0..d {
                    e[k] += g * o[k];
                    want_out[target * d + k] += g * h[k];
                }
            }
            for &c in &contexts {
                for k in 0..d {
                    want_in[c * d + k] += e[k];
                }
            }
            let got_in: Vec<f32> = step.input.into_data().to_vec().unwrap();
            let got_out: Vec<f32> = step.output.into_data().to_vec().unwrap();
            for (got, want) in got_in
                .iter()
                .zip(&want_in)
                .chain(got_out.iter().zip(&want_out))
            {
                assert!(
                    (*got as f64 - want).abs() < 1e-6,
                    "{architecture:?}: {got} vs {want}"
                );
            }
            let got_loss = step.loss.unwrap().into_scalar().elem::<f64>();
            assert!((got_loss - loss).abs() < 1e-5, "{got_loss} vs {loss}");
        }
    }

    #[test]
    fn one_step_follows_the_update_rules_on_ndarray() {
        one_step_matches_the_rules::<TestBackend>(&Default::default());
    }

    #[test]
    fn one_step_follows_the_update_rules_on_wgpu() {
        if let Some(device) = wgpu_device_or_skip() {
            one_step_matches_the_rules::<WgpuBackend>(&device);
        }
    }
}

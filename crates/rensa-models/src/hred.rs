//! HRED (Serban et al., 2016): a hierarchical encoder-decoder for dialogue.
//!
//! A dialogue is a sequence of utterances `u_1 … u_N`, each a sequence of words. HRED reads it
//! on two levels and writes each next utterance from what it read:
//!
//! ```text
//! utterance encoder   h_{n,t} = f_utt(e(w_{n,t}), h_{n,t−1}),     v_n = h_{n,T_n}
//! context encoder     c_n     = f_ctx(v_n, c_{n−1})
//! decoder             s_0 = tanh(W_0 [c_n; z_n] + b_0)
//!                     s_t = f_dec([e(w_{n+1,t−1}); c_n; z_n], s_{t−1})
//!                     p(w_{n+1,t} | w_{n+1,<t}, u_≤n) = softmax(W_o o_t + b_o),   o_t = s_t
//! ```
//!
//! (`z_n` only in [VHRED](crate::vhred); `v_n` joins both directions' final states when the
//! utterance encoder is bidirectional). Optionally the decoder also attends over the words of
//! the last utterance `u_n` (Luong's general score, read with the current state):
//! `a_t = attend(s_t, h_{n,·})`, `o_t = tanh(W_c [a_t; s_t])`. Training minimises the
//! cross-entropy of every response `u_2 … u_N` of every dialogue (each utterance encoded once,
//! the context encoder run once over the dialogue), per token.
//!
//! What sets HRED apart from seq2seq ([`seq2seq::token`](crate::seq2seq::token)): a seq2seq has
//! one encoder over one source sequence, whose final state is all the decoder knows; HRED has a
//! hierarchy, an utterance encoder for the words of each turn and a context encoder over the
//! turns, so a response can depend on a turn far back without the words in between passing
//! through one recurrent state.
//!
//! Decoding ([`Hred::greedy`], [`Hred::beam`], [`Hred::sample`]) encodes a context of one or more
//! turns and runs the decoder with [`seq2seq::search`](crate::seq2seq::search). Token ids follow
//! [`rensa_data::vocab`]; batches are [`DialogueBatch`]es.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use rensa_data::SplitMix64;
use rensa_data::dialogue::DialogueBatch;
use rensa_data::vocab::{BOS, EOS, PAD, UNK};
use rensa_nn::attention::{Attention, AttentionConfig, AttentionScore, Memory};
use rensa_nn::latent::{DiagonalGaussian, active_units};
use rensa_nn::recurrent::{
    Differentiation, Recurrent, RecurrentBackend, RecurrentCell, RecurrentConfig, RecurrentState,
    SequenceInput, SequenceOutput,
};
use rensa_train::{Objective, Output, StepInfo};

use crate::seq2seq::search::{self, Decoded, StepDecoder};
use crate::seq2seq::token::{host_f32, ids, row_ids};
use crate::vhred::{Latent, LatentConfig};

/// Configuration of an [`Hred`] (and, with a [`latent`](Self::latent), of a VHRED); the cell is
/// chosen by [`init`](Self::init)'s type parameter.
#[derive(Config, Debug)]
pub struct HredConfig {
    /// Vocabulary size (specials included).
    pub vocab: usize,
    /// Word embedding width (shared by the encoder and the decoder).
    #[config(default = 64)]
    pub embedding_size: usize,
    /// Hidden units of the utterance encoder (per direction).
    #[config(default = 128)]
    pub utterance_hidden: usize,
    /// A bidirectional utterance encoder.
    #[config(default = false)]
    pub bidirectional: bool,
    /// Hidden units of the context encoder.
    #[config(default = 128)]
    pub context_hidden: usize,
    /// Hidden units of the decoder.
    #[config(default = 128)]
    pub decoder_hidden: usize,
    /// Stacked layers of each of the three recurrent layers.
    #[config(default = 1)]
    pub num_layers: usize,
    /// The decoder attends over the words of the last context utterance.
    #[config(default = false)]
    pub attention: bool,
    /// In training, the share of decoder input words replaced by `UNK` (word drop).
    #[config(default = 0.0)]
    pub word_drop: f64,
    /// A latent variable per response: the model is a VHRED.
    #[config(default = "None")]
    pub latent: Option<LatentConfig>,
}

impl HredConfig {
    /// Builds the model with cells of config `K` (`RnnConfig`, `LstmConfig`, `GruConfig`).
    ///
    /// # Errors
    /// A vocabulary without tokens beyond the four specials, a zero size, a word-drop share
    /// outside `[0, 1)`, a bad latent setting.
    pub fn init<B: RecurrentBackend, K: RecurrentConfig>(
        &self,
        device: &B::Device,
    ) -> rensa_nn::Result<Hred<B, K::Cell<B>>> {
        use rensa_nn::Error;
        if self.vocab <= UNK + 1 {
            return Err(Error::config(
                "vocab",
                "more than the 4 special tokens",
                self.vocab,
            ));
        }
        rensa_nn::at_least_one(&[
            ("embedding_size", self.embedding_size),
            ("utterance_hidden", self.utterance_hidden),
            ("context_hidden", self.context_hidden),
            ("decoder_hidden", self.decoder_hidden),
            ("num_layers", self.num_layers),
        ])?;
        if !(0.0..1.0).contains(&self.word_drop) {
            return Err(Error::config(
                "word_drop",
                "a share in [0, 1)",
                self.word_drop,
            ));
        }
        let e = self.embedding_size;
        let u = self.utterance_hidden * if self.bidirectional { 2 } else { 1 };
        let (c, h, layers) = (self.context_hidden, self.decoder_hidden, self.num_layers);
        let latent = match &self.latent {
            Some(l) => Some(l.init(c, u, self.vocab, device)?),
            None => None,
        };
        let condition = c + latent.as_ref().map_or(0, |l| l.size);
        Ok(Hred {
            embedding: EmbeddingConfig::new(self.vocab, e).init(device),
            utterance_encoder: K::sized(e, self.utterance_hidden)
                .stacked(layers, self.bidirectional)
                .init_layer(device)?,
            context_encoder: K::sized(u, c).stacked(layers, false).init_layer(device)?,
            decoder: K::sized(e + condition, h)
                .stacked(layers, false)
                .init_layer(device)?,
            decoder_init: LinearConfig::new(condition, layers * h).init(device),
            attention: if self.attention {
                Some(
                    AttentionConfig::new(h, u)
                        .with_score(AttentionScore::General)
                        .init(device)?,
                )
            } else {
                None
            },
            combine: self
                .attention
                .then(|| LinearConfig::new(u + h, h).with_bias(false).init(device)),
            output: LinearConfig::new(h, self.vocab).init(device),
            latent,
            word_drop: self.word_drop,
        })
    }
}

/// A hierarchical encoder-decoder for dialogue, a VHRED when it has a [`latent`](Self::latent);
/// see the [module docs](self).
#[derive(Module, Debug)]
pub struct Hred<B: Backend, C: Module<B>> {
    /// Word embeddings.
    pub embedding: Embedding<B>,
    /// Reads the words of each utterance.
    pub utterance_encoder: Recurrent<B, C>,
    /// Reads the utterance vectors of a dialogue.
    pub context_encoder: Recurrent<B, C>,
    /// Writes a response.
    pub decoder: Recurrent<B, C>,
    /// `W_0`: the decoder's first state from `[c; z]`.
    pub decoder_init: Linear<B>,
    /// Attention over the words of the last utterance, if on.
    pub attention: Option<Attention<B>>,
    /// `W_c`, `[a_t; s_t] → o_t`, with attention.
    pub combine: Option<Linear<B>>,
    /// `W_o`: logits over the vocabulary.
    pub output: Linear<B>,
    /// VHRED's prior and posterior networks.
    pub latent: Option<Latent<B>>,
    /// Share of decoder input words dropped to `UNK` in training.
    #[module(skip)]
    pub word_drop: f64,
}

/// What [`Hred::forward`] computes for a batch, per response row.
#[derive(Clone, Debug)]
pub struct DialogueLosses<B: Backend> {
    /// `[responses]`: each response's negative log-likelihood, summed over its tokens (0 for an
    /// absent turn).
    pub nll: Tensor<B, 1>,
    /// VHRED: `[responses]`, `KL(q ‖ p)` of each response's latent (0 for an absent turn).
    pub kl: Option<Tensor<B, 1>>,
    /// VHRED with the bag-of-words loss: `[responses]`, its negative log-likelihood.
    pub bow: Option<Tensor<B, 1>>,
    /// VHRED: the posterior means of the real responses, `[real responses, latent]`.
    pub posterior_means: Option<Tensor<B, 2>>,
    /// VHRED: `[responses]`, `log p(z | c) − log q(z | c, u)` at the latent drawn for each
    /// response (0 for an absent turn): with `−nll` the log importance weight of that draw
    /// ([`Hred::importance_nll`]). Its mean over draws is `−KL`.
    pub log_ratio: Option<Tensor<B, 1>>,
}

/// The scores of one response of a batch ([`Hred::score`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResponseScore {
    /// The dialogue in the batch.
    pub dialogue: usize,
    /// The turn (from 1; 0 is never a response).
    pub turn: usize,
    /// Whether it is the dialogue's last turn.
    pub last: bool,
    /// Tokens predicted (its `EOS` included).
    pub tokens: usize,
    /// Negative log-likelihood in nats, summed over the tokens.
    pub nll: f64,
    /// VHRED: `KL(q ‖ p)` in nats (`nll + kl` bounds `−log p(response)`); 0 for HRED.
    pub kl: f64,
}

/// Why a context cannot be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ContextError {
    /// No turn at all.
    Empty,
    /// A turn without tokens (turn from 1).
    EmptyTurn(usize),
    /// A token id the model's vocabulary does not have.
    UnknownId {
        /// The turn, from 1.
        turn: usize,
        /// The id.
        id: usize,
        /// The model's vocabulary size.
        vocab: usize,
    },
}

impl std::fmt::Display for ContextError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ContextError::Empty => write!(
                f,
                "the context is empty: a response needs at least one turn"
            ),
            ContextError::EmptyTurn(t) => write!(f, "turn {t} of the context is empty"),
            ContextError::UnknownId { turn, id, vocab } => write!(
                f,
                "turn {turn} holds token id {id}, outside the model's vocabulary of {vocab}"
            ),
        }
    }
}

impl std::error::Error for ContextError {}

/// Padded utterance rows of several contexts: `[contexts · turns, steps]` ids, lengths (1 for
/// absent turns) and each context's turn count.
struct ContextRows {
    ids: Vec<usize>,
    lengths: Vec<usize>,
    counts: Vec<usize>,
    turns: usize,
    steps: usize,
}

impl ContextRows {
    fn new(contexts: &[Vec<Vec<usize>>]) -> Self {
        let turns = contexts.iter().map(Vec::len).max().unwrap_or(1);
        let steps = contexts.iter().flatten().map(Vec::len).max().unwrap_or(1);
        let mut rows = Self {
            ids: vec![PAD; contexts.len() * turns * steps],
            lengths: vec![1; contexts.len() * turns],
            counts: contexts.iter().map(Vec::len).collect(),
            turns,
            steps,
        };
        for (d, context) in contexts.iter().enumerate() {
            for (k, u) in context.iter().enumerate() {
                let row = d * turns + k;
                rows.ids[row * steps..][..u.len()].copy_from_slice(u);
                rows.lengths[row] = u.len();
            }
        }
        rows
    }
}

/// A batch's encoding ([`Hred::encode`]): the context vector of every response, a VHRED's
/// prior and posterior over each response's latent, and the attention memory (the previous
/// utterance's word states) when the decoder attends.
struct Encoded<B: Backend> {
    /// `[responses, C]`.
    contexts: Tensor<B, 2>,
    /// `(p(z | c), q(z | c, u))`.
    latent: Option<(DiagonalGaussian<B>, DiagonalGaussian<B>)>,
    memory: Option<Memory<B>>,
}

/// `log Σ exp(x_i)` without overflow.
fn log_sum_exp(x: &[f64]) -> f64 {
    let max = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + x.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Standard-normal noise `[rows, size]` from `rng` (Box-Muller), so that generation is
/// reproducible from a seed.
fn normal_noise<B: Backend>(
    rng: &mut SplitMix64,
    rows: usize,
    size: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    let mut uniform = || ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let values: Vec<f32> = (0..rows * size)
        .map(|_| {
            let (u1, u2) = (uniform(), uniform());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    Tensor::from_data(TensorData::new(values, [rows, size]), device)
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> Hred<B, C> {
    /// The device the weights are on.
    pub fn device(&self) -> B::Device {
        self.output.weight.device()
    }

    /// The vocabulary size.
    pub fn vocab(&self) -> usize {
        self.embedding.weight.dims()[0]
    }

    /// Whether the model is a VHRED.
    pub fn is_variational(&self) -> bool {
        self.latent.is_some()
    }

    /// The model with its recurrent layers differentiated the `differentiation` way.
    pub fn with_differentiation(self, differentiation: Differentiation) -> Self {
        Self {
            utterance_encoder: self.utterance_encoder.with_differentiation(differentiation),
            context_encoder: self.context_encoder.with_differentiation(differentiation),
            decoder: self.decoder.with_differentiation(differentiation),
            attention: self
                .attention
                .map(|a| a.with_differentiation(differentiation)),
            ..self
        }
    }

    fn dense<const D: usize>(&self, x: Tensor<B, D>, layer: &Linear<B>) -> Tensor<B, D> {
        rensa_nn::dense::linear(x, layer, self.decoder.differentiation)
    }

    /// Runs the utterance encoder over utterance rows `[rows, steps]`: the word states
    /// `[rows, steps, U]` and the utterance vectors `v` `[rows, U]`.
    pub fn encode_utterances(
        &self,
        utterances: Tensor<B, 2, Int>,
        lengths: &[usize],
    ) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let out = self
            .utterance_encoder
            .forward(SequenceInput::new(self.embedding.forward(utterances)).with_lengths(lengths));
        let [n, rows, h] = out.state.hidden.dims();
        let dirs = self.utterance_encoder.directions();
        let vectors = out
            .state
            .hidden
            .narrow(0, n - dirs, dirs)
            .swap_dims(0, 1)
            .reshape([rows, dirs * h]);
        (out.output, vectors)
    }

    /// Runs the context encoder over the utterance vectors `[dialogues · turns, U]` of
    /// dialogues with `counts` turns each.
    fn encode_context(
        &self,
        vectors: Tensor<B, 2>,
        counts: &[usize],
        turns: usize,
    ) -> SequenceOutput<B> {
        let [_, u] = vectors.dims();
        self.context_encoder.forward(
            SequenceInput::new(vectors.reshape([counts.len(), turns, u])).with_lengths(counts),
        )
    }

    /// The decoder's first state, `tanh(W_0 [c; z] + b_0)` for every layer.
    fn initial_state(&self, condition: Tensor<B, 2>) -> RecurrentState<B> {
        let [rows, _] = condition.dims();
        let (layers, h) = (self.decoder.num_layers, self.decoder.hidden_size());
        let mut state = self.decoder.zero_state(rows, &condition.device());
        state.hidden = self
            .decoder_init
            .forward(condition)
            .tanh()
            .reshape([rows, layers, h])
            .swap_dims(0, 1);
        state
    }

    /// `o_t` from decoder states `[rows, steps, H]` (attention over `memory` when on).
    fn readout(&self, states: Tensor<B, 3>, memory: Option<&Memory<B>>) -> Tensor<B, 3> {
        match (&self.attention, &self.combine, memory) {
            (Some(attention), Some(combine), Some(memory)) => {
                let context = attention.attend(states.clone(), memory).context;
                self.dense(Tensor::cat(vec![context, states], 2), combine)
                    .tanh()
            }
            _ => states,
        }
    }

    /// The losses of every response of `batch`, the decoder reading the true previous words
    /// (a share dropped to `UNK` when `word_drop` gives a generator). A VHRED draws each
    /// response's latent from its posterior.
    ///
    /// # Panics
    /// On a token id outside the model's vocabulary (data encoded with another vocabulary),
    /// naming the dialogue and turn: an embedding lookup would otherwise index out of bounds,
    /// or on a GPU read whatever lies there.
    pub fn forward(
        &self,
        batch: &DialogueBatch,
        word_drop: Option<&mut SplitMix64>,
    ) -> DialogueLosses<B> {
        self.decode(batch, &self.encode(batch), word_drop)
    }

    /// Runs the utterance and context encoders over `batch`: what [`decode`](Self::decode)
    /// conditions every response on.
    fn encode(&self, batch: &DialogueBatch) -> Encoded<B> {
        self.assert_known_ids(batch);
        let device = self.device();
        let turns = batch.turns;
        let responses = batch.responses();
        let (words, vectors) =
            self.encode_utterances(batch.utterance_tensor(&device), &batch.utterance_lengths);
        let contexts = self
            .encode_context(vectors.clone(), &batch.turn_counts, turns)
            .output;
        let c = contexts.dims()[2];
        let contexts = contexts.narrow(1, 0, turns - 1).reshape([responses, c]);
        // response row r = (d, k) reads utterance row d·turns + k − 1 and writes d·turns + k
        let (previous, written): (Vec<usize>, Vec<usize>) = (0..responses)
            .map(|r| {
                let (d, k) = batch.response_turn(r);
                (d * turns + k - 1, d * turns + k)
            })
            .unzip();
        let latent = self.latent.as_ref().map(|latent| {
            (
                latent.prior(contexts.clone()),
                latent.posterior(
                    contexts.clone(),
                    vectors.select(0, row_ids(&written, &device)),
                ),
            )
        });
        let memory = self.attention.as_ref().map(|a| {
            let keys = words.select(0, row_ids(&previous, &device));
            let lengths: Vec<usize> = previous
                .iter()
                .map(|&p| batch.utterance_lengths[p])
                .collect();
            a.memory(keys.clone(), keys).with_lengths(&lengths)
        });
        Encoded {
            contexts,
            latent,
            memory,
        }
    }

    /// Decodes every response of `batch` from its encoding (a VHRED: from a fresh draw of its
    /// latent) and scores it: the losses of [`forward`](Self::forward).
    fn decode(
        &self,
        batch: &DialogueBatch,
        encoded: &Encoded<B>,
        word_drop: Option<&mut SplitMix64>,
    ) -> DialogueLosses<B> {
        let device = self.device();
        let responses = batch.responses();
        let present: Vec<f32> = batch
            .target_lengths
            .iter()
            .map(|&l| if l > 0 { 1.0 } else { 0.0 })
            .collect();
        let present = Tensor::<B, 1>::from_data(TensorData::new(present, [responses]), &device);
        let real: Vec<usize> = (0..responses)
            .filter(|&r| batch.target_lengths[r] > 0)
            .collect();
        let mut kl = None;
        let mut log_ratio = None;
        let mut posterior_means = None;
        let contexts = encoded.contexts.clone();
        let condition = match &encoded.latent {
            Some((prior, posterior)) => {
                let z = posterior.sample();
                kl = Some(posterior.kl(prior) * present.clone());
                log_ratio = Some(
                    (prior.log_prob(z.clone()) - posterior.log_prob(z.clone())) * present.clone(),
                );
                posterior_means = Some(posterior.mean.clone().select(0, row_ids(&real, &device)));
                Tensor::cat(vec![contexts, z], 1)
            }
            None => contexts,
        };
        let mut input = batch.decoder_input.clone();
        if let Some(rng) = word_drop {
            drop_words(&mut input, self.word_drop, rng);
        }
        let steps = batch.response_steps;
        let embedded = self
            .embedding
            .forward(ids::<B>(&input, [responses, steps], &device));
        let repeated = condition.clone().unsqueeze_dim::<3>(1).repeat_dim(1, steps);
        let states = self
            .decoder
            .forward(
                SequenceInput::new(Tensor::cat(vec![embedded, repeated], 2))
                    .with_state(self.initial_state(condition.clone())),
            )
            .output;
        // The read-out and the softmax over the vocabulary, the costliest part with a large
        // vocabulary, only at the real target positions (not the padding).
        let o = self.readout(states, encoded.memory.as_ref());
        let h = o.dims()[2];
        let positions: Vec<usize> = (0..responses)
            .flat_map(|r| (0..batch.target_lengths[r]).map(move |t| r * steps + t))
            .collect();
        let n = positions.len();
        let logits = self.dense(
            o.reshape([responses * steps, h])
                .select(0, row_ids(&positions, &device)),
            &self.output,
        );
        let targets: Vec<usize> = positions.iter().map(|&p| batch.target[p]).collect();
        let picked = log_softmax(logits, 1).gather(1, ids::<B>(&targets, [n, 1], &device));
        // summed per response: a [responses, positions] 0/1 matrix times the column
        let owner: Vec<f32> = (0..responses)
            .flat_map(|r| {
                positions
                    .iter()
                    .map(move |&p| if p / steps == r { 1.0 } else { 0.0 })
            })
            .collect();
        let owner = Tensor::<B, 2>::from_data(TensorData::new(owner, [responses, n]), &device);
        let nll = owner.matmul(picked).reshape([responses]).neg();
        let bow = match self.latent.as_ref().and_then(|l| l.bow.as_ref()) {
            Some(head) => {
                // the response's words without their order (EOS left out)
                let (_, target) = batch.response_tensors::<B>(&device);
                let mask = batch.target_mask::<B>(&device);
                let words_only = mask * target.clone().not_equal_elem(EOS as i64).float();
                let log_p = log_softmax(head.forward(condition), 1).gather(1, target);
                Some((log_p * words_only).sum_dim(1).squeeze_dim(1).neg())
            }
            None => None,
        };
        DialogueLosses {
            nll,
            kl,
            bow,
            posterior_means,
            log_ratio,
        }
    }

    /// Every response of `batch` scored (no word drop; a VHRED's latent drawn from its
    /// posterior, so `nll + kl` is a one-sample estimate of the bound on `−log p`).
    ///
    /// # Panics
    /// As [`forward`](Self::forward).
    pub fn score(&self, batch: &DialogueBatch) -> Vec<ResponseScore> {
        Self::scores_of(batch, self.forward(batch, None))
    }

    /// `−log p(response | context)` of every real response of `batch` (in the order of
    /// [`score`](Self::score)), in nats.
    ///
    /// HRED: the negative log-likelihood, exact. VHRED: `p(u | c) = ∫ p(u | z, c) p(z | c) dz`
    /// has no closed form, and the bound `nll + kl` ([`score`](Self::score)) overstates
    /// `−log p` by `KL(q(z | c, u) ‖ p(z | c, u))`, the posterior's distance from the true one.
    /// This estimate draws `samples` latents `z_k` from the posterior `q` and averages the
    /// importance weights (Burda et al., 2016):
    ///
    /// ```text
    /// −log p(u | c) ≈ −log (1/K) Σ_k p(u | z_k, c) p(z_k | c) / q(z_k | c, u)
    /// ```
    ///
    /// Its mean is a bound on `−log p` too, never looser than `nll + kl` and tighter as `K`
    /// grows, reaching `−log p` in the limit (with `K = 1` its mean is the bound itself).
    ///
    /// # Panics
    /// If `samples` is 0, or as [`forward`](Self::forward).
    pub fn importance_nll(&self, batch: &DialogueBatch, samples: usize) -> Vec<f64> {
        assert!(samples > 0, "importance sampling needs at least one draw");
        let real: Vec<usize> = (0..batch.responses())
            .filter(|&r| batch.target_lengths[r] > 0)
            .collect();
        let draws = if self.latent.is_some() { samples } else { 1 };
        let mut weights = vec![Vec::with_capacity(draws); real.len()];
        // the encoders are deterministic: only the latent draw and the decoder repeat
        let encoded = self.encode(batch);
        for _ in 0..draws {
            let losses = self.decode(batch, &encoded, None);
            let nll = host_f32(losses.nll);
            let ratio = losses.log_ratio.map(host_f32);
            for (w, &r) in weights.iter_mut().zip(&real) {
                let ratio = ratio.as_ref().map_or(0.0, |q| f64::from(q[r]));
                w.push(ratio - f64::from(nll[r]));
            }
        }
        weights
            .iter()
            .map(|w| -(log_sum_exp(w) - (w.len() as f64).ln()))
            .collect()
    }

    /// The per-response scores of `losses`, computed by [`forward`](Self::forward) on `batch`
    /// (for a caller that also wants the losses' other parts, such as the posterior means).
    pub fn scores_of(batch: &DialogueBatch, losses: DialogueLosses<B>) -> Vec<ResponseScore> {
        let nll = host_f32(losses.nll);
        let kl = losses.kl.map(host_f32);
        (0..batch.responses())
            .filter(|&r| batch.target_lengths[r] > 0)
            .map(|r| {
                let (dialogue, turn) = batch.response_turn(r);
                ResponseScore {
                    dialogue,
                    turn,
                    last: batch.is_last(r),
                    tokens: batch.target_lengths[r],
                    nll: f64::from(nll[r]),
                    kl: kl.as_ref().map_or(0.0, |k| f64::from(k[r])),
                }
            })
            .collect()
    }

    /// Panics on a token id of `batch` outside the vocabulary (see [`forward`](Self::forward)).
    fn assert_known_ids(&self, batch: &DialogueBatch) {
        let vocab = self.vocab();
        let steps = batch.utterance_steps.max(1);
        if let Some(at) = batch.utterances.iter().position(|&id| id >= vocab) {
            let row = at / steps;
            panic!(
                "dialogue batch: token id {} (dialogue {}, turn {}) is not in the model's \
                 vocabulary of {vocab} ids: the data was encoded with another vocabulary",
                batch.utterances[at],
                row / batch.turns + 1,
                row % batch.turns + 1
            );
        }
    }

    /// Checks a context: at least one turn, none empty, every id in the vocabulary.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check_context(&self, context: &[Vec<usize>]) -> Result<(), ContextError> {
        if context.is_empty() {
            return Err(ContextError::Empty);
        }
        let vocab = self.vocab();
        for (k, turn) in context.iter().enumerate() {
            if turn.is_empty() {
                return Err(ContextError::EmptyTurn(k + 1));
            }
            if let Some(&id) = turn.iter().find(|&&id| id >= vocab) {
                return Err(ContextError::UnknownId {
                    turn: k + 1,
                    id,
                    vocab,
                });
            }
        }
        Ok(())
    }

    /// The decoder ready to answer each of `contexts` (a VHRED's latent drawn from its prior
    /// with `rng`).
    fn stepper(
        &self,
        contexts: &[Vec<Vec<usize>>],
        rng: &mut SplitMix64,
    ) -> Result<Stepper<'_, B, C>, ContextError> {
        for context in contexts {
            self.check_context(context)?;
        }
        let device = self.device();
        let rows = ContextRows::new(contexts);
        let n = contexts.len();
        let (words, vectors) = self.encode_utterances(
            ids::<B>(&rows.ids, [n * rows.turns, rows.steps], &device),
            &rows.lengths,
        );
        let state = self.encode_context(vectors, &rows.counts, rows.turns).state;
        let [layers, _, c] = state.hidden.dims();
        let context = state.hidden.narrow(0, layers - 1, 1).reshape([n, c]);
        let condition = match &self.latent {
            Some(latent) => {
                let prior: DiagonalGaussian<B> = latent.prior(context.clone());
                let z = prior.reparameterise(normal_noise(rng, n, latent.size, &device));
                Tensor::cat(vec![context, z], 1)
            }
            None => context,
        };
        let memory = self.attention.as_ref().map(|a| {
            let last: Vec<usize> = (0..n)
                .map(|d| d * rows.turns + rows.counts[d] - 1)
                .collect();
            let lengths: Vec<usize> = last.iter().map(|&r| rows.lengths[r]).collect();
            let keys = words.select(0, row_ids::<B>(&last, &device));
            a.memory(keys.clone(), keys).with_lengths(&lengths)
        });
        Ok(Stepper {
            model: self,
            state: self.initial_state(condition.clone()),
            condition,
            memory,
        })
    }

    /// The most probable next word at every step, for each context, at most `max_len` tokens
    /// (a VHRED draws each context's latent from its prior with `rng`); no contexts, no replies.
    ///
    /// # Errors
    /// A context that [`check_context`](Self::check_context) refuses.
    pub fn greedy(
        &self,
        contexts: &[Vec<Vec<usize>>],
        max_len: usize,
        rng: &mut SplitMix64,
    ) -> Result<Vec<Decoded>, ContextError> {
        if contexts.is_empty() {
            return Ok(Vec::new());
        }
        Ok(search::greedy(
            &mut self.stepper(contexts, rng)?,
            contexts.len(),
            max_len,
        ))
    }

    /// A response sampled word by word for each context at `temperature`
    /// ([`search::sample`]); a VHRED first draws the latent from its prior.
    ///
    /// # Errors
    /// A context that [`check_context`](Self::check_context) refuses.
    pub fn sample(
        &self,
        contexts: &[Vec<Vec<usize>>],
        max_len: usize,
        temperature: f64,
        rng: &mut SplitMix64,
    ) -> Result<Vec<Decoded>, ContextError> {
        if contexts.is_empty() {
            return Ok(Vec::new());
        }
        let mut stepper = self.stepper(contexts, rng)?;
        Ok(search::sample(
            &mut stepper,
            contexts.len(),
            max_len,
            temperature,
            rng,
        ))
    }

    /// Beam search of width `width` for one context ([`search::beam`]); a VHRED draws one latent
    /// from its prior for the whole beam.
    ///
    /// # Errors
    /// A context that [`check_context`](Self::check_context) refuses.
    pub fn beam(
        &self,
        context: &[Vec<usize>],
        width: usize,
        max_len: usize,
        alpha: f64,
        rng: &mut SplitMix64,
    ) -> Result<Vec<Decoded>, ContextError> {
        let mut stepper = self.stepper(std::slice::from_ref(&context.to_vec()), rng)?;
        Ok(search::beam(&mut stepper, width, max_len, alpha))
    }
}

/// An [`Hred`]'s decoder between steps of a search.
struct Stepper<'a, B: Backend, C: Module<B>> {
    model: &'a Hred<B, C>,
    state: RecurrentState<B>,
    condition: Tensor<B, 2>,
    memory: Option<Memory<B>>,
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> StepDecoder for Stepper<'_, B, C> {
    fn step(&mut self, last: &[usize]) -> (Vec<f32>, Option<Vec<f32>>) {
        let m = self.model;
        let n = last.len();
        let e = m.embedding.forward(ids::<B>(last, [n, 1], &m.device()));
        let width = e.dims()[2];
        let x = Tensor::cat(vec![e.reshape([n, width]), self.condition.clone()], 1);
        let (s, state) = m.decoder.step(x, self.state.clone());
        self.state = state;
        let (o, weights) = match (&m.attention, &m.combine, &self.memory) {
            (Some(attention), Some(combine), Some(memory)) => {
                let (context, weights) = attention.step(s.clone(), memory);
                (
                    m.dense(Tensor::cat(vec![context, s], 1), combine).tanh(),
                    Some(weights),
                )
            }
            _ => (s, None),
        };
        let logits = m.dense(o, &m.output);
        (host_f32(log_softmax(logits, 1)), weights.map(host_f32))
    }

    fn keep(&mut self, rows: &[usize]) {
        let rows = row_ids::<B>(rows, &self.model.device());
        self.state = RecurrentState {
            hidden: self.state.hidden.clone().select(1, rows.clone()),
            cell: self.state.cell.clone().map(|c| c.select(1, rows.clone())),
        };
        self.condition = self.condition.clone().select(0, rows.clone());
        self.memory = self.memory.as_ref().map(|m| m.select(rows));
    }
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> Objective<B> for Hred<B, C> {
    type Batch = DialogueBatch;

    /// The loss per predicted token: the responses' negative log-likelihood, plus for a VHRED
    /// the KL term (weighted by the annealing schedule in training, fully in validation) and, in
    /// training only, the weighted bag-of-words loss, so that the validation loss (what early
    /// stopping watches) is the bound. Parts: `nll`
    /// (per token, its exponential the perplexity), and for a VHRED `kl` (per response),
    /// `bound` (`nll + kl` per token) and `bow`; metrics: `kl_weight` and `active_units` (of the
    /// batch's posterior means). Like every part, an epoch's figure in the history is the mean
    /// of the batches' weighted by their tokens: close to, not exactly, the KL per response and
    /// the active units over the data (which the dialogue example's evaluation computes).
    fn step(&self, batch: &DialogueBatch, at: &StepInfo) -> Output<B, Self> {
        let mut rng = SplitMix64::new(0x0d1a_1095 ^ (at.step as u64).wrapping_mul(0x9e37_79b9));
        let drop = (at.training && self.word_drop > 0.0).then_some(&mut rng);
        let losses = self.forward(batch, drop);
        let tokens = batch.response_tokens();
        let per_token = 1.0 / tokens.max(1) as f64;
        let nll = losses.nll.sum();
        let (Some(latent), Some(kl)) = (&self.latent, losses.kl) else {
            return Output::new(nll.clone().mul_scalar(per_token), tokens)
                .with_part("nll", nll.mul_scalar(per_token));
        };
        let real = batch.target_lengths.iter().filter(|&&l| l > 0).count();
        let weight = if at.training {
            latent.kl_weight(at.step)
        } else {
            1.0
        };
        let kl = kl.sum();
        let mut loss = nll.clone() + kl.clone().mul_scalar(weight);
        let mut output_parts = vec![
            ("nll", nll.clone().mul_scalar(per_token)),
            ("kl", kl.clone().mul_scalar(1.0 / real.max(1) as f64)),
            ("bound", (nll + kl).mul_scalar(per_token)),
        ];
        if let Some(bow) = losses.bow {
            let bow = bow.sum();
            if at.training {
                loss = loss + bow.clone().mul_scalar(latent.bow_weight);
            }
            output_parts.push(("bow", bow.mul_scalar(per_token)));
        }
        let active = losses
            .posterior_means
            .filter(|m| m.dims()[0] > 1)
            .map_or(0, |m| active_units(m.detach(), 0.01));
        let mut output = Output::new(loss.mul_scalar(per_token), tokens)
            .with_metric("kl_weight", weight)
            .with_metric("active_units", active as f64);
        for (name, value) in output_parts {
            output = output.with_part(name, value);
        }
        output
    }
}

/// Word drop (Bowman et al., 2016): each word of `input` replaced by `UNK` with probability
/// `rate`; `PAD` and `BOS` are kept (`EOS` is never a decoder input).
fn drop_words(input: &mut [usize], rate: f64, rng: &mut SplitMix64) {
    let threshold = (rate * (1u64 << 53) as f64) as u64;
    for id in input.iter_mut().filter(|id| **id != PAD && **id != BOS) {
        if rng.next_u64() >> 11 < threshold {
            *id = UNK;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_drop_replaces_its_share_of_words_and_keeps_pad_and_bos() {
        let words: Vec<usize> = (0..30_000).map(|k| [BOS, 7, 8, 9, PAD][k % 5]).collect();
        for rate in [0.0, 0.3, 1.0] {
            let mut input = words.clone();
            drop_words(&mut input, rate, &mut SplitMix64::new(1));
            let mut dropped = 0;
            for (&was, &is) in words.iter().zip(&input) {
                if was == PAD || was == BOS {
                    assert_eq!(is, was);
                } else if is == UNK {
                    dropped += 1;
                } else {
                    assert_eq!(is, was);
                }
            }
            let share = f64::from(dropped) / 18_000.0;
            assert!((share - rate).abs() < 0.015, "rate {rate}: {share}");
        }
    }
}

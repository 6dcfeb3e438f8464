//! A sequence-to-sequence model over tokens, with or without attention.
//!
//! The encoder embeds the source tokens `x₁ … x_S` and runs a recurrent layer (any cell,
//! stacked, optionally bidirectional) over them, keeping every state `h̄_1 … h̄_S`. The decoder
//! starts from the encoder's final state (the two directions summed) and emits one token per
//! step from `p(y_t | y_<t, x) = softmax(W_o o_t)`. What `o_t` is sets the variants apart:
//!
//! - **no attention**: `s_t = f(e(y_{t−1}), s_{t−1})`, `o_t = s_t`: everything the decoder
//!   knows of the source passed through the encoder's final state (the bottleneck);
//! - **Bahdanau** (additive score): the context is read with the *previous* decoder state,
//!   `c_t = attend(s_{t−1}, h̄)`, and fed in: `s_t = f([e(y_{t−1}); c_t], s_{t−1})`,
//!   `o_t = [s_t; c_t]`;
//! - **Luong** (dot, general or concat score): the context is read with the *current* state,
//!   `c_t = attend(s_t, h̄)`, and combined into the attentional state
//!   `h̃_t = tanh(W_c [c_t; s_t])`, `o_t = h̃_t`; `h̃_{t−1}` is fed to the next step's input
//!   (input feeding): `s_t = f([e(y_{t−1}); h̃_{t−1}], s_{t−1})`. Without input feeding
//!   (`input_feeding: false`) the decoder reads only `e(y_{t−1})`, and teacher-forced training
//!   runs the decoder over the whole target at once.
//!
//! Training minimises the cross-entropy of the target tokens (padding left out) with teacher
//! forcing: the decoder reads the true previous token, or, with probability
//! `1 − teacher_forcing`, its own previous prediction. Decoding is greedy
//! ([`TokenSeq2Seq::greedy`]) or a beam search ([`TokenSeq2Seq::beam`]) with length
//! normalisation. Token ids follow [`rensa_data::vocab`]: `PAD`, `BOS`, `EOS`, `UNK` are 0-3.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Embedding, EmbeddingConfig, Linear, LinearConfig};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData, backend::Backend};
use rensa_data::SplitMix64;
use rensa_data::tokens::PairBatch;
use rensa_data::vocab::EOS;
use rensa_nn::attention::{Attention, AttentionConfig, AttentionScore, Memory};
use rensa_nn::recurrent::{
    Differentiation, Recurrent, RecurrentBackend, RecurrentCell, RecurrentConfig, RecurrentState,
    SequenceInput,
};
use rensa_train::{Objective, Output, StepInfo};

pub use super::search::Decoded;
use super::search::{self, StepDecoder};

/// Which attention the decoder uses (see the [module docs](self)).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Attend {
    /// None: the encoder's final state is all the decoder gets.
    None,
    /// Bahdanau: additive score, read with the previous decoder state, context fed in.
    Bahdanau,
    /// Luong with the dot score.
    LuongDot,
    /// Luong with the general score.
    LuongGeneral,
    /// Luong with the concat score.
    LuongConcat,
}

impl Attend {
    /// Every variant.
    pub const ALL: [Attend; 5] = [
        Attend::None,
        Attend::Bahdanau,
        Attend::LuongDot,
        Attend::LuongGeneral,
        Attend::LuongConcat,
    ];

    /// The name on a command line: `none`, `bahdanau`, `luong-dot`, `luong-general`,
    /// `luong-concat`.
    pub fn name(self) -> &'static str {
        match self {
            Attend::None => "none",
            Attend::Bahdanau => "bahdanau",
            Attend::LuongDot => "luong-dot",
            Attend::LuongGeneral => "luong-general",
            Attend::LuongConcat => "luong-concat",
        }
    }

    fn score(self) -> Option<AttentionScore> {
        match self {
            Attend::None => None,
            Attend::Bahdanau => Some(AttentionScore::Additive),
            Attend::LuongDot => Some(AttentionScore::Dot),
            Attend::LuongGeneral => Some(AttentionScore::General),
            Attend::LuongConcat => Some(AttentionScore::Concat),
        }
    }

    fn luong(self) -> bool {
        matches!(
            self,
            Attend::LuongDot | Attend::LuongGeneral | Attend::LuongConcat
        )
    }
}

impl std::str::FromStr for Attend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Attend::ALL.into_iter().find(|a| a.name() == s).ok_or_else(|| {
            format!("unknown attention {s:?}: none, bahdanau, luong-dot, luong-general or luong-concat")
        })
    }
}

/// Configuration of a [`TokenSeq2Seq`]; the cell is chosen by [`init`](Self::init)'s type
/// parameter.
#[derive(Config, Debug)]
pub struct TokenSeq2SeqConfig {
    /// Source vocabulary size (specials included).
    pub source_vocab: usize,
    /// Target vocabulary size (specials included).
    pub target_vocab: usize,
    /// Embedding width of both vocabularies.
    #[config(default = 32)]
    pub embedding_size: usize,
    /// Hidden units of the decoder and of each encoder direction.
    #[config(default = 64)]
    pub hidden_size: usize,
    /// Stacked layers of the encoder and of the decoder.
    #[config(default = 1)]
    pub num_layers: usize,
    /// A bidirectional encoder.
    #[config(default = false)]
    pub bidirectional: bool,
    /// The decoder's attention.
    #[config(default = "Attend::Bahdanau")]
    pub attention: Attend,
    /// The probability of feeding the true previous token in training (1: always).
    #[config(default = 1.0)]
    pub teacher_forcing: f64,
    /// Luong only: feed the attentional state `h̃_{t−1}` into the next step's input (Luong's
    /// input feeding, OpenNMT-py's default). Without it the decoder reads only the previous
    /// token, so with teacher forcing it runs over the whole target in one call and attends
    /// with every step at once (faster; the form of Keras's and TensorFlow's NMT tutorials).
    #[config(default = true)]
    pub input_feeding: bool,
}

impl TokenSeq2SeqConfig {
    /// Builds the model with cells of config `K` (`RnnConfig`, `LstmConfig`, `GruConfig`).
    ///
    /// # Errors
    /// A vocabulary without the four specials, a zero size, a teacher-forcing ratio outside
    /// `[0, 1]`, or Luong's dot score over a bidirectional encoder (keys twice the query's
    /// size: use the general score).
    pub fn init<B: RecurrentBackend, K: RecurrentConfig>(
        &self,
        device: &B::Device,
    ) -> rensa_nn::Result<TokenSeq2Seq<B, K::Cell<B>>> {
        use rensa_nn::Error;
        for (field, v) in [
            ("source_vocab", self.source_vocab),
            ("target_vocab", self.target_vocab),
        ] {
            if v <= EOS + 1 {
                return Err(Error::config(field, "more than the 4 special tokens", v));
            }
        }
        if self.embedding_size == 0 {
            return Err(Error::config("embedding_size", "at least 1", 0));
        }
        if !(0.0..=1.0).contains(&self.teacher_forcing) {
            return Err(Error::config(
                "teacher_forcing",
                "a probability in [0, 1]",
                self.teacher_forcing,
            ));
        }
        let (e, h) = (self.embedding_size, self.hidden_size);
        let keys = if self.bidirectional { 2 * h } else { h };
        let feeds = self.attention.luong() && self.input_feeding;
        let decoder_input = match self.attention {
            Attend::Bahdanau => e + keys,
            _ if feeds => e + h,
            _ => e,
        };
        let encoder = K::sized(e, h)
            .stacked(self.num_layers, self.bidirectional)
            .init_layer(device)?;
        let decoder = K::sized(decoder_input, h)
            .stacked(self.num_layers, false)
            .init_layer(device)?;
        let attention = match self.attention.score() {
            Some(score) => Some(
                AttentionConfig::new(h, keys)
                    .with_score(score)
                    .with_attention_size(Some(h))
                    .init(device)?,
            ),
            None => None,
        };
        let readout = if self.attention == Attend::Bahdanau {
            h + keys
        } else {
            h
        };
        Ok(TokenSeq2Seq {
            source_embedding: EmbeddingConfig::new(self.source_vocab, e).init(device),
            target_embedding: EmbeddingConfig::new(self.target_vocab, e).init(device),
            encoder,
            decoder,
            attention,
            combine: self
                .attention
                .luong()
                .then(|| LinearConfig::new(keys + h, h).with_bias(false).init(device)),
            output: LinearConfig::new(readout, self.target_vocab).init(device),
            attend: self.attention,
            teacher_forcing: self.teacher_forcing,
            input_feeding: feeds,
        })
    }
}

/// Encoder-decoder over tokens; see the [module docs](self).
#[derive(Module, Debug)]
pub struct TokenSeq2Seq<B: Backend, C: Module<B>> {
    /// Source token embeddings.
    pub source_embedding: Embedding<B>,
    /// Target token embeddings (the decoder's inputs).
    pub target_embedding: Embedding<B>,
    /// Reads the source.
    pub encoder: Recurrent<B, C>,
    /// Writes the target.
    pub decoder: Recurrent<B, C>,
    /// The decoder's attention over the encoder states, if it has one.
    pub attention: Option<Attention<B>>,
    /// Luong's `W_c`, `[c_t; s_t] → h̃_t`.
    pub combine: Option<Linear<B>>,
    /// `W_o`: logits over the target vocabulary.
    pub output: Linear<B>,
    /// The decoder's attention kind.
    #[module(skip)]
    pub attend: Attend,
    /// Probability of teacher forcing in training.
    #[module(skip)]
    pub teacher_forcing: f64,
    /// Whether Luong's attentional state is fed to the next step.
    #[module(skip)]
    pub input_feeding: bool,
}

/// The decoder's state between steps.
#[derive(Clone, Debug)]
pub struct DecoderState<B: Backend> {
    /// The recurrent state of every decoder layer.
    pub rnn: RecurrentState<B>,
    /// Luong's attentional state `h̃_{t−1}` (input feeding), `[batch, hidden]`.
    pub feed: Option<Tensor<B, 2>>,
}

impl<B: Backend> DecoderState<B> {
    /// The states of the batch rows `rows` (a beam search's reordering).
    pub fn select(&self, rows: Tensor<B, 1, Int>) -> Self {
        Self {
            rnn: RecurrentState {
                hidden: self.rnn.hidden.clone().select(1, rows.clone()),
                cell: self.rnn.cell.clone().map(|c| c.select(1, rows.clone())),
            },
            feed: self.feed.clone().map(|f| f.select(0, rows)),
        }
    }
}

/// What the encoder hands the decoder.
#[derive(Clone, Debug)]
pub struct Encoded<B: Backend> {
    /// The encoder states as the attention's memory (masked by the source lengths).
    pub memory: Option<Memory<B>>,
    /// The decoder's first state.
    pub state: DecoderState<B>,
}

pub(crate) fn ids<B: Backend>(
    v: &[usize],
    shape: [usize; 2],
    device: &B::Device,
) -> Tensor<B, 2, Int> {
    let data: Vec<i64> = v.iter().map(|&x| x as i64).collect();
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// `rows` as a 1-D id tensor (for `select`).
pub(crate) fn row_ids<B: Backend>(rows: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    ids::<B>(rows, [rows.len(), 1], device).reshape([rows.len()])
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> TokenSeq2Seq<B, C> {
    /// The device the weights are on.
    pub fn device(&self) -> B::Device {
        self.output.weight.device()
    }

    /// The model with its recurrent layers and its additive attention score differentiated the
    /// `differentiation` way.
    pub fn with_differentiation(self, differentiation: Differentiation) -> Self {
        Self {
            encoder: self.encoder.with_differentiation(differentiation),
            decoder: self.decoder.with_differentiation(differentiation),
            attention: self
                .attention
                .map(|a| a.with_differentiation(differentiation)),
            ..self
        }
    }

    /// `layer` (the attentional combination or the read-out) on the backend's GEMM, differentiated
    /// as the recurrent layers are.
    fn dense<const D: usize>(&self, x: Tensor<B, D>, layer: &Linear<B>) -> Tensor<B, D> {
        rensa_nn::dense::linear(x, layer, self.decoder.differentiation)
    }

    /// `tanh` on the backend's own kernel (Luong's attentional state), differentiated as the
    /// recurrent layers are.
    fn tanh<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        B::tanh(x, self.decoder.differentiation)
    }

    /// The target embeddings of one step's tokens `[batch, 1]`, as `[batch, embedding]`.
    fn embed_step(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 2> {
        let e = self.target_embedding.forward(tokens); // [batch, 1, E]
        let [b, _, width] = e.dims();
        e.reshape([b, width])
    }

    /// Encodes `source` `[batch, steps]` (right-padded, `lengths` each in `1..=steps`).
    pub fn encode(&self, source: Tensor<B, 2, Int>, lengths: &[usize]) -> Encoded<B> {
        let x = self.source_embedding.forward(source);
        let out = self
            .encoder
            .forward(SequenceInput::new(x).with_lengths(lengths));
        let layers = self.decoder.cells.len();
        // Bidirectional: index layer·2 + direction; the two directions are summed.
        let merge = |t: Tensor<B, 3>| {
            let [n, b, h] = t.dims();
            if n == layers {
                t
            } else {
                t.reshape([layers, 2, b, h])
                    .sum_dim(1)
                    .reshape([layers, b, h])
            }
        };
        let rnn = RecurrentState {
            hidden: merge(out.state.hidden),
            cell: out.state.cell.map(merge),
        };
        let memory = self.attention.as_ref().map(|a| {
            a.memory(out.output.clone(), out.output)
                .with_lengths(lengths)
        });
        let batch = lengths.len();
        let feed = self
            .input_feeding
            .then(|| Tensor::zeros([batch, self.decoder.hidden_size()], &self.device()));
        Encoded {
            memory,
            state: DecoderState { rnn, feed },
        }
    }

    /// One decoder step from the embedded previous tokens `[batch, embedding]`: the logits
    /// `[batch, target_vocab]`, the next state and the attention weights `[batch, source]`.
    pub fn decode_step(
        &self,
        previous: Tensor<B, 2>,
        state: DecoderState<B>,
        memory: Option<&Memory<B>>,
    ) -> (Tensor<B, 2>, DecoderState<B>, Option<Tensor<B, 2>>) {
        let DecoderState { rnn, feed } = state;
        match (&self.attention, memory) {
            (Some(attention), Some(memory)) if self.attend == Attend::Bahdanau => {
                let [layers, b, h] = rnn.hidden.dims();
                let top = rnn.hidden.clone().narrow(0, layers - 1, 1).reshape([b, h]);
                let (context, weights) = attention.step(top, memory);
                let x = Tensor::cat(vec![previous, context.clone()], 1);
                let (s, rnn) = self.decoder.step(x, rnn);
                let logits = self.dense(Tensor::cat(vec![s, context], 1), &self.output);
                (logits, DecoderState { rnn, feed }, Some(weights))
            }
            (Some(attention), Some(memory)) => {
                let combine = self.combine.as_ref().expect("Luong attention combines");
                let x = match feed {
                    Some(feed) => Tensor::cat(vec![previous, feed], 1),
                    None => previous,
                };
                let (s, rnn) = self.decoder.step(x, rnn);
                let (context, weights) = attention.step(s.clone(), memory);
                let attentional = self.tanh(self.dense(Tensor::cat(vec![context, s], 1), combine));
                let logits = self.dense(attentional.clone(), &self.output);
                let state = DecoderState {
                    rnn,
                    feed: self.input_feeding.then_some(attentional),
                };
                (logits, state, Some(weights))
            }
            _ => {
                let (s, rnn) = self.decoder.step(previous, rnn);
                (
                    self.dense(s, &self.output),
                    DecoderState { rnn, feed },
                    None,
                )
            }
        }
    }

    /// The decoder's logits `[batch, target_steps, target_vocab]` with teacher forcing: at each
    /// step the true previous token, or (with probability `1 − teacher_forcing`, drawn with
    /// `rng`) the model's own previous prediction. One draw per step, shared by the batch (as
    /// the course's and Keras tutorials' loops draw it): a step feeds every row its true token
    /// or every row its prediction.
    pub fn forward(&self, batch: &PairBatch, rng: Option<&mut SplitMix64>) -> Tensor<B, 3> {
        let device = self.device();
        let (source, decoder_input, _) = batch.tensors::<B>(&device);
        let encoded = self.encode(source, &batch.source_lengths);
        let inputs = self.target_embedding.forward(decoder_input); // [B, T, E]
        let [b, t, e] = inputs.dims();
        let always = self.teacher_forcing >= 1.0 || rng.is_none();
        if always && self.attend != Attend::Bahdanau && !self.input_feeding {
            // the whole target sequence in one call, then (Luong) every step's attention at once
            let rnn = encoded.state.rnn;
            let states = self
                .decoder
                .forward(SequenceInput::new(inputs).with_state(rnn))
                .output; // [B, T, H]
            return match (&self.attention, &self.combine, &encoded.memory) {
                (Some(attention), Some(combine), Some(memory)) => {
                    let context = attention.attend(states.clone(), memory).context;
                    let attentional = self.dense(Tensor::cat(vec![context, states], 2), combine);
                    self.dense(self.tanh(attentional), &self.output)
                }
                _ => self.dense(states, &self.output),
            };
        }
        let mut rng = rng;
        let mut state = encoded.state;
        let mut logits = Vec::with_capacity(t);
        for step in 0..t {
            let forced = always
                || step == 0
                || rng.as_deref_mut().is_some_and(|r| {
                    (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= self.teacher_forcing
                });
            let previous = if forced {
                inputs.clone().narrow(1, step, 1).reshape([b, e])
            } else {
                let last: Tensor<B, 2> = logits.last().cloned().expect("a previous step's logits");
                self.embed_step(last.detach().argmax(1))
            };
            let (l, next, _) = self.decode_step(previous, state, encoded.memory.as_ref());
            state = next;
            logits.push(l);
        }
        Tensor::stack(logits, 1)
    }

    /// The mean cross-entropy of the target tokens (their `EOS` included, padding left out)
    /// given `logits` from [`forward`](Self::forward).
    pub fn loss(&self, logits: Tensor<B, 3>, batch: &PairBatch) -> Tensor<B, 1> {
        let device = logits.device();
        let (_, _, target) = batch.tensors::<B>(&device);
        let mask = batch.target_mask::<B>(&device);
        let picked = log_softmax(logits, 2)
            .gather(2, target.unsqueeze_dim(2))
            .squeeze_dim::<2>(2);
        let tokens: usize = batch.target_lengths.iter().sum();
        (picked * mask).sum().neg().div_scalar(tokens as f64)
    }

    /// Greedy decoding of a batch of sources (ids, each non-empty), at most `max_len` tokens
    /// each: the most probable token at every step, until `EOS`.
    pub fn greedy(&self, sources: &[Vec<usize>], max_len: usize) -> Vec<Decoded> {
        search::greedy(&mut self.stepper(sources), sources.len(), max_len)
    }

    /// Beam search of width `width` for one source, at most `max_len` tokens
    /// ([`search::beam`]): the hypotheses that reached `EOS`, best first by
    /// `log p / lp(len)`, GNMT's length penalty `lp(len) = ((5 + len) / 6)^alpha`.
    pub fn beam(&self, source: &[usize], width: usize, max_len: usize, alpha: f64) -> Vec<Decoded> {
        search::beam(
            &mut self.stepper(std::slice::from_ref(&source.to_vec())),
            width,
            max_len,
            alpha,
        )
    }

    /// The decoder, one row per source, for a search.
    fn stepper(&self, sources: &[Vec<usize>]) -> Stepper<'_, B, C> {
        let (source, lengths) = pad(sources, &self.device());
        let encoded = self.encode(source, &lengths);
        Stepper {
            model: self,
            state: encoded.state,
            memory: encoded.memory,
        }
    }
}

/// A [`TokenSeq2Seq`]'s decoder between steps of a search.
struct Stepper<'a, B: Backend, C: Module<B>> {
    model: &'a TokenSeq2Seq<B, C>,
    state: DecoderState<B>,
    memory: Option<Memory<B>>,
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> StepDecoder for Stepper<'_, B, C> {
    fn step(&mut self, last: &[usize]) -> (Vec<f32>, Option<Vec<f32>>) {
        let device = self.model.device();
        let e = self
            .model
            .embed_step(ids::<B>(last, [last.len(), 1], &device));
        let (logits, next, weights) =
            self.model
                .decode_step(e, self.state.clone(), self.memory.as_ref());
        self.state = next;
        (host_f32(log_softmax(logits, 1)), weights.map(host_f32))
    }

    fn keep(&mut self, rows: &[usize]) {
        let rows = row_ids::<B>(rows, &self.model.device());
        self.state = self.state.select(rows.clone());
        self.memory = self.memory.as_ref().map(|m| m.select(rows));
    }
}

/// A float tensor's values on the host.
pub(crate) fn host_f32<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().expect("f32 values")
}

/// Pads `sources` into `[n, longest]` ids and their lengths.
///
/// # Panics
/// On an empty source.
fn pad<B: Backend>(sources: &[Vec<usize>], device: &B::Device) -> (Tensor<B, 2, Int>, Vec<usize>) {
    let pairs: Vec<(&[usize], &[usize])> = sources.iter().map(|s| (&s[..], &[][..])).collect();
    let batch = PairBatch::new(&pairs);
    let source = ids::<B>(&batch.source, [batch.batch, batch.source_steps], device);
    (source, batch.source_lengths)
}

fn host_usize<B: Backend>(t: Tensor<B, 2, Int>) -> Vec<usize> {
    t.into_data()
        .convert::<i64>()
        .to_vec::<i64>()
        .expect("integer ids")
        .into_iter()
        .map(|x| x as usize)
        .collect()
}

/// Token accuracy and exact sequence match of teacher-forced `logits` against the batch's
/// targets (positions past each target's `EOS` left out).
pub fn teacher_forced_accuracy<B: Backend>(logits: Tensor<B, 3>, batch: &PairBatch) -> (f64, f64) {
    let predicted = host_usize(logits.argmax(2).squeeze_dim::<2>(2));
    let steps = batch.target_steps;
    let (mut right, mut tokens, mut exact) = (0usize, 0usize, 0usize);
    for (b, &len) in batch.target_lengths.iter().enumerate() {
        let row = b * steps;
        let ok = (0..len)
            .filter(|&t| predicted[row + t] == batch.target[row + t])
            .count();
        right += ok;
        tokens += len;
        exact += usize::from(ok == len);
    }
    (
        right as f64 / tokens.max(1) as f64,
        exact as f64 / batch.batch.max(1) as f64,
    )
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> Objective<B> for TokenSeq2Seq<B, C> {
    type Batch = PairBatch;

    fn step(&self, batch: &PairBatch, at: &StepInfo) -> Output<B, Self> {
        let mut rng = SplitMix64::new(0x5eed_u64 ^ (at.step as u64).wrapping_mul(0x9e37_79b9));
        let rng = (at.training && self.teacher_forcing < 1.0).then_some(&mut rng);
        let logits = self.forward(batch, rng);
        let (token_acc, exact) = teacher_forced_accuracy(logits.clone().detach(), batch);
        Output::new(self.loss(logits, batch), batch.batch)
            .with_metric("token_accuracy", token_acc)
            .with_metric("exact", exact)
    }
}

//! Attention: each query looks at every key, weighs it by a score, and reads the weighted mean
//! of the values.
//!
//! A seq2seq encoder squeezes the whole input into its final state; with attention the decoder
//! keeps all encoder states `h̄_1 … h̄_S` and, at each step `t`, reads a mix of them chosen for
//! that step:
//!
//! ```text
//! score(q_t, k_s)  one number per query step t and key s
//! a_t = softmax_s(score(q_t, k_s))          the alignment weights, Σ_s a_ts = 1
//! c_t = Σ_s a_ts v_s                        the context vector
//! ```
//!
//! The scores ([`AttentionScore`]):
//! - **additive** (Bahdanau et al., 2015): `vᵀ tanh(W_q q + b + W_k k)`, learned `W_q`, `W_k`,
//!   `v` (and the bias `b`, as OpenNMT-py's `mlp` attention);
//! - **dot** (Luong et al., 2015): `qᵀ k`;
//! - **general** (Luong): `qᵀ W k`, learned `W`;
//! - **concat** (Luong): `vᵀ tanh(W [q; k])` — the additive score without its bias
//!   (`W [q; k] = W_q q + W_k k`).
//!
//! Dot and general may be scaled by `1/√d`, `d` the length of the product (Vaswani et al.'s
//! scaled dot product): the query size, which for dot is also the key size, and for general is
//! the size `W` projects a key to.
//!
//! Keys may be masked (padding, or any pattern): a masked key gets exactly zero weight. A
//! query whose keys are all masked gets a row of zero weights and a zero context (never NaN, in
//! f32 and f64: masked scores are filled with −1e30, which half precision cannot hold).
//!
//! Keys are projected once per sequence ([`Attention::memory`]), so that a decoder that
//! attends once per output step does not repeat the key projection (`W_k k` or `W k`).
//!
//! ```
//! use burn::backend::NdArray;
//! use burn::tensor::Tensor;
//! use rensa_nn::attention::{AttentionConfig, AttentionScore};
//!
//! type B = NdArray;
//! let device = Default::default();
//! let attention = AttentionConfig::new(8, 6)
//!     .with_score(AttentionScore::General)
//!     .init::<B>(&device)
//!     .unwrap();
//! let encoder_states = Tensor::<B, 3>::ones([2, 5, 6], &device); // [batch, keys, key size]
//! // The keys are also the values; the second sequence is 3 steps long.
//! let memory = attention
//!     .memory(encoder_states.clone(), encoder_states)
//!     .with_lengths(&[5, 3]);
//! let decoder_state = Tensor::<B, 2>::ones([2, 8], &device); // one query step
//! let (context, weights) = attention.step(decoder_state, &memory);
//! assert_eq!(context.dims(), [2, 6]);
//! assert_eq!(weights.dims(), [2, 5]); // weights of keys 3 and 4 of sequence 1 are exactly 0
//! ```

use burn::config::Config;
use burn::module::{Module, Param};
use burn::tensor::activation::softmax;
use burn::tensor::{Bool, Int, Tensor, TensorData, backend::Backend};

use crate::Error;
use crate::init::Init;
use crate::recurrent::{AdditiveScore, Differentiation, RecurrentBackend};

/// How a query and a key are scored (see the [module docs](self) for the formulas).
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum AttentionScore {
    /// Bahdanau's `vᵀ tanh(W_q q + b + W_k k)`.
    Additive,
    /// Luong's `qᵀ k` (query and key of one size).
    Dot,
    /// Luong's `qᵀ W k`.
    General,
    /// Luong's `vᵀ tanh(W [q; k])`.
    Concat,
}

impl AttentionScore {
    /// Whether the score has a hidden layer (`v`, `W_q`, `W_k`).
    fn is_additive(self) -> bool {
        matches!(self, AttentionScore::Additive | AttentionScore::Concat)
    }
}

/// Configuration of an [`Attention`] module.
#[derive(Config, Debug)]
pub struct AttentionConfig {
    /// Features of a query (the decoder state).
    pub query_size: usize,
    /// Features of a key (the encoder state).
    pub key_size: usize,
    /// The score.
    #[config(default = "AttentionScore::Additive")]
    pub score: AttentionScore,
    /// Units of the additive and concat scores' hidden layer; `None` takes the key size.
    #[config(default = "None")]
    pub attention_size: Option<usize>,
    /// Divide the dot and general scores by `√query_size`, the length of their products.
    #[config(default = false)]
    pub scaled: bool,
    /// Initialiser of the weight matrices (`v` is drawn as a one-column matrix).
    #[config(default = "Init::XAVIER_UNIFORM")]
    pub init: Init,
}

impl AttentionConfig {
    /// Checks the sizes and the initialiser.
    ///
    /// # Errors
    /// A zero size, a dot score between queries and keys of different sizes, scaling of an
    /// additive or concat score, or an invalid initialiser.
    pub fn validate(&self) -> crate::Result<()> {
        if self.query_size == 0 {
            return Err(Error::config("query_size", "at least 1", 0));
        }
        if self.key_size == 0 {
            return Err(Error::config("key_size", "at least 1", 0));
        }
        if self.attention_size == Some(0) {
            return Err(Error::config("attention_size", "at least 1", 0));
        }
        if self.score == AttentionScore::Dot && self.query_size != self.key_size {
            return Err(Error::config(
                "key_size",
                "the query size for a dot score (use General for different sizes)",
                format!("{} (query size {})", self.key_size, self.query_size),
            ));
        }
        if self.scaled && self.score.is_additive() {
            return Err(Error::config(
                "scaled",
                "false for an additive or concat score (only dot and general are scaled)",
                true,
            ));
        }
        self.init.validate("init")
    }

    /// Builds the module.
    ///
    /// # Errors
    /// As [`validate`](Self::validate).
    pub fn init<B: Backend>(&self, device: &B::Device) -> crate::Result<Attention<B>> {
        self.validate()?;
        let (q, k) = (self.query_size, self.key_size);
        let a = self.attention_size.unwrap_or(k);
        let matrix = |rows, cols| Param::from_tensor(self.init.matrix::<B>(rows, cols, device));
        let params = match self.score {
            AttentionScore::Dot => AttentionParams::default(),
            AttentionScore::General => AttentionParams {
                key_weight: Some(matrix(k, q)),
                ..Default::default()
            },
            AttentionScore::Additive | AttentionScore::Concat => AttentionParams {
                query_weight: Some(matrix(q, a)),
                query_bias: (self.score == AttentionScore::Additive)
                    .then(|| Param::from_tensor(Tensor::zeros([a], device))),
                key_weight: Some(matrix(k, a)),
                v: Some(Param::from_tensor(
                    self.init.matrix::<B>(a, 1, device).reshape([a]),
                )),
            },
        };
        Attention::from_params(self.score, self.scaled, q, k, params)
    }
}

/// The learned parameters of an [`Attention`] module, in rensa's `[in, out]` layout.
#[derive(Clone, Debug)]
pub struct AttentionParams<B: Backend> {
    /// Additive, concat: `W_q`, `[query_size, attention_size]`.
    pub query_weight: Option<Param<Tensor<B, 2>>>,
    /// Additive only: `b`, `[attention_size]`.
    pub query_bias: Option<Param<Tensor<B, 1>>>,
    /// Additive, concat: `W_k`, `[key_size, attention_size]`. General: `W` as the map from a key
    /// to query space, `[key_size, query_size]` (the score is `q · (k W)`, Luong's `W_a` is its
    /// transpose).
    pub key_weight: Option<Param<Tensor<B, 2>>>,
    /// Additive, concat: `v`, `[attention_size]`.
    pub v: Option<Param<Tensor<B, 1>>>,
}

impl<B: Backend> Default for AttentionParams<B> {
    fn default() -> Self {
        Self {
            query_weight: None,
            query_bias: None,
            key_weight: None,
            v: None,
        }
    }
}

/// Attention of queries over a [`Memory`] of keys and values. Built by [`AttentionConfig`] or
/// [`from_params`](Self::from_params).
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// `W_q` of the additive and concat scores, `[query_size, attention_size]`.
    pub query_weight: Option<Param<Tensor<B, 2>>>,
    /// The additive score's bias, `[attention_size]`.
    pub query_bias: Option<Param<Tensor<B, 1>>>,
    /// `W_k` (additive, concat) or `W` (general); see [`AttentionParams::key_weight`].
    pub key_weight: Option<Param<Tensor<B, 2>>>,
    /// `v` of the additive and concat scores, `[attention_size]`.
    pub v: Option<Param<Tensor<B, 1>>>,
    /// The score.
    #[module(skip)]
    pub score: AttentionScore,
    /// The factor the dot and general scores are multiplied by (`1/√query_size` when scaled).
    #[module(skip)]
    pub scale: f64,
    /// Features of a query.
    #[module(skip)]
    pub query_size: usize,
    /// Features of a key.
    #[module(skip)]
    pub key_size: usize,
    /// How `Autodiff` differentiates the projections and the additive and concat scores: one
    /// node each with a hand-written backward pass ([`Differentiation::Fused`], the default), or
    /// every tensor op recorded ([`Differentiation::Plain`]).
    #[module(skip)]
    pub differentiation: Differentiation,
}

/// The result of attending: the context vectors and the alignment weights they were read with.
#[derive(Clone, Debug)]
pub struct AttentionOutput<B: Backend> {
    /// `[batch, queries, value size]`: `c_t = Σ_s a_ts v_s`.
    pub context: Tensor<B, 3>,
    /// `[batch, queries, keys]`: `a_ts`, each row summing to 1 (0 where every key is masked).
    pub weights: Tensor<B, 3>,
}

/// What queries attend over: the keys (projected for the score), the values and an optional
/// mask. Made by [`Attention::memory`]; reused for every query step.
#[derive(Clone, Debug)]
pub struct Memory<B: Backend> {
    /// The keys as the score reads them, `[batch, keys, ·]`.
    keys: Tensor<B, 3>,
    /// `[batch, keys, value size]`.
    values: Tensor<B, 3>,
    /// `[batch, 1 or queries, keys]`, true where a key may be attended.
    mask: Option<Tensor<B, 3, Bool>>,
}

impl<B: Backend> Memory<B> {
    /// The batch size.
    pub fn batch(&self) -> usize {
        self.keys.dims()[0]
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.keys.dims()[1]
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values, `[batch, keys, value size]`.
    pub fn values(&self) -> &Tensor<B, 3> {
        &self.values
    }

    /// The memory of the sequences `rows` (indices into the batch, repeats allowed): what a
    /// beam search needs when it keeps several hypotheses of one source, or reorders them.
    pub fn select(&self, rows: Tensor<B, 1, Int>) -> Self {
        Self {
            keys: self.keys.clone().select(0, rows.clone()),
            values: self.values.clone().select(0, rows.clone()),
            mask: self.mask.clone().map(|m| m.select(0, rows)),
        }
    }

    /// Masks the keys past each sequence's length (right padding): sequence `b` attends to keys
    /// `0..lengths[b]`. A length of 0 masks every key of its sequence.
    ///
    /// # Panics
    /// Unless there is one length per sequence, each at most the number of keys.
    pub fn with_lengths(self, lengths: &[usize]) -> Self {
        let (batch, time) = (self.batch(), self.len());
        crate::recurrent::layer::check_lengths(
            "attention lengths",
            lengths,
            batch,
            0,
            (time, "the number of keys"),
        );
        let keep: Vec<bool> = lengths
            .iter()
            .flat_map(|&len| (0..time).map(move |t| t < len))
            .collect();
        let device = self.keys.device();
        let mask =
            Tensor::<B, 3, Bool>::from_data(TensorData::new(keep, [batch, 1, time]), &device);
        self.with_mask(mask)
    }

    /// Masks keys by an explicit mask, true where a key may be attended: `[batch, 1, keys]` for
    /// the same keys for every query, `[batch, queries, keys]` per query.
    ///
    /// # Panics
    /// When the mask's batch or key axis does not match the memory.
    pub fn with_mask(mut self, mask: Tensor<B, 3, Bool>) -> Self {
        let [b, _, k] = mask.dims();
        assert!(
            b == self.batch() && k == self.len(),
            "attention mask: expected [batch, 1 or queries, keys] = [{}, _, {}], got {:?}",
            self.batch(),
            self.len(),
            mask.dims()
        );
        self.mask = Some(mask);
        self
    }
}

impl<B: Backend> Attention<B> {
    /// A module from given parameters (checked against the score and the sizes).
    ///
    /// # Errors
    /// When a parameter the score needs is missing, one it does not use is given, or a shape is
    /// not the one in [`AttentionParams`].
    pub fn from_params(
        score: AttentionScore,
        scaled: bool,
        query_size: usize,
        key_size: usize,
        params: AttentionParams<B>,
    ) -> crate::Result<Self> {
        let shape2 = |p: &Option<Param<Tensor<B, 2>>>| p.as_ref().map(|p| p.val().dims());
        let shape1 = |p: &Option<Param<Tensor<B, 1>>>| p.as_ref().map(|p| p.val().dims()[0]);
        let a = shape2(&params.query_weight).map(|[_, a]| a);
        let expected = match score {
            AttentionScore::Dot => (None, None, None, None),
            AttentionScore::General => (None, None, Some([key_size, query_size]), None),
            AttentionScore::Additive | AttentionScore::Concat => {
                let a = a.unwrap_or(0).max(1);
                let bias = (score == AttentionScore::Additive).then_some(a);
                (Some([query_size, a]), bias, Some([key_size, a]), Some(a))
            }
        };
        let got = (
            shape2(&params.query_weight),
            shape1(&params.query_bias),
            shape2(&params.key_weight),
            shape1(&params.v),
        );
        if got != expected {
            return Err(Error::config(
                "attention parameters",
                "(query_weight, query_bias, key_weight, v) shaped for the score and sizes",
                format!("{got:?} for a {score:?} score (expected {expected:?})"),
            ));
        }
        Ok(Self {
            query_weight: params.query_weight,
            query_bias: params.query_bias,
            key_weight: params.key_weight,
            v: params.v,
            score,
            // qᵀ k and qᵀ (W k) both sum query_size products
            scale: if scaled {
                1.0 / (query_size as f64).sqrt()
            } else {
                1.0
            },
            query_size,
            key_size,
            differentiation: Differentiation::Fused,
        })
    }

    /// The same module, differentiated as `how` says (see [`Attention::differentiation`]).
    pub fn with_differentiation(mut self, how: Differentiation) -> Self {
        self.differentiation = how;
        self
    }
}

impl<B: RecurrentBackend> Attention<B> {
    /// The memory of `keys` `[batch, keys, key_size]` and `values` `[batch, keys, value
    /// size]`, with the keys projected for the score once. Add a mask with
    /// [`Memory::with_lengths`] or [`Memory::with_mask`].
    ///
    /// # Panics
    /// When the keys are not `key_size` wide or keys and values disagree in batch or length.
    pub fn memory(&self, keys: Tensor<B, 3>, values: Tensor<B, 3>) -> Memory<B> {
        let [b, s, k] = keys.dims();
        assert_eq!(
            k,
            self.key_size,
            "attention keys: expected [batch, keys, {}], got {:?}",
            self.key_size,
            keys.dims()
        );
        let [vb, vs, _] = values.dims();
        assert!(
            vb == b && vs == s,
            "attention values: expected [batch, keys, _] = [{b}, {s}, _] as the keys, got {:?}",
            values.dims()
        );
        let keys = match &self.key_weight {
            Some(w) => crate::dense::matmul(keys, w.val(), self.differentiation),
            None => keys,
        };
        Memory {
            keys,
            values,
            mask: None,
        }
    }

    /// The raw scores of `query` `[batch, queries, query_size]` against the memory's keys,
    /// `[batch, queries, keys]` (before masking and softmax).
    ///
    /// # Panics
    /// When the query is not `query_size` wide or its batch is not the memory's.
    pub fn scores(&self, query: Tensor<B, 3>, memory: &Memory<B>) -> Tensor<B, 3> {
        let [b, _, q] = query.dims();
        assert!(
            b == memory.batch() && q == self.query_size,
            "attention query: expected [batch, queries, query size] = [{}, _, {}], got {:?}",
            memory.batch(),
            self.query_size,
            query.dims()
        );
        let keys = memory.keys.clone();
        match (&self.query_weight, &self.v) {
            (Some(w_q), Some(v)) => {
                let mut q = crate::dense::matmul(query, w_q.val(), self.differentiation); // [B, T, A]
                if let Some(bias) = &self.query_bias {
                    q = q + bias.val().unsqueeze();
                }
                // vᵀ tanh(q + k) of every query-key pair: one fused kernel where the backend
                // has one (no [B, T, S, A] tensor), else tensor ops.
                let score = AdditiveScore {
                    queries: q,
                    keys,
                    v: v.val(),
                };
                B::additive_scores(score, self.differentiation)
            }
            _ => {
                let scores = query.matmul(keys.swap_dims(1, 2));
                if self.scale == 1.0 {
                    scores
                } else {
                    scores.mul_scalar(self.scale)
                }
            }
        }
    }

    /// Attends with every query step of `query` `[batch, queries, query_size]`.
    ///
    /// # Panics
    /// As [`scores`](Self::scores); when a per-query mask has another number of queries.
    pub fn attend(&self, query: Tensor<B, 3>, memory: &Memory<B>) -> AttentionOutput<B> {
        let scores = self.scores(query, memory);
        let weights = masked_softmax(scores, memory.mask.as_ref());
        let context = weights.clone().matmul(memory.values.clone());
        AttentionOutput { context, weights }
    }

    /// Attends with one query step `[batch, query_size]` (a decoder's loop): the context
    /// `[batch, value size]` and the weights `[batch, keys]`.
    ///
    /// The memory's mask must have one query row (`[batch, 1, keys]`, as key padding from
    /// lengths has); for a per-step mask (a causal one, say) narrow it to the step's row first
    /// ([`Memory::with_mask`] on `mask.slice([0..b, t..t + 1, 0..s])`).
    ///
    /// # Panics
    /// As [`attend`](Self::attend); when the mask has more than one query row.
    pub fn step(&self, query: Tensor<B, 2>, memory: &Memory<B>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let out = self.attend(query.unsqueeze_dim(1), memory);
        let [b, _, dv] = out.context.dims();
        let s = out.weights.dims()[2];
        (out.context.reshape([b, dv]), out.weights.reshape([b, s]))
    }

    /// [`memory`](Self::memory) and [`attend`](Self::attend) in one call, with key padding
    /// from `lengths` when given.
    pub fn forward(
        &self,
        query: Tensor<B, 3>,
        keys: Tensor<B, 3>,
        values: Tensor<B, 3>,
        lengths: Option<&[usize]>,
    ) -> AttentionOutput<B> {
        let mut memory = self.memory(keys, values);
        if let Some(lengths) = lengths {
            memory = memory.with_lengths(lengths);
        }
        self.attend(query, &memory)
    }
}

/// Softmax over the keys (the last axis) in which masked keys get exactly zero weight and a
/// row with no key left is all zero.
fn masked_softmax<B: Backend>(
    scores: Tensor<B, 3>,
    mask: Option<&Tensor<B, 3, Bool>>,
) -> Tensor<B, 3> {
    let Some(mask) = mask else {
        return softmax(scores, 2);
    };
    let [b, t, s] = scores.dims();
    let [_, mt, _] = mask.dims();
    assert!(
        mt == 1 || mt == t,
        "attention mask: expected 1 or {t} query rows, got {mt}"
    );
    let keep = mask.clone().expand([b, t, s]);
    // A large finite fill: exp(fill − max) is exactly 0 beside any real score, and a row that
    // is all fill stays finite (it is uniform before the multiplication by the mask zeroes it).
    let filled = scores.mask_fill(keep.clone().bool_not(), -1.0e30);
    softmax(filled, 2) * keep.float()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::NdArray;

    type B = NdArray;

    #[test]
    fn bad_configurations_are_refused() {
        let dev = Default::default();
        let dot = AttentionConfig::new(4, 5).with_score(AttentionScore::Dot);
        let err = dot.init::<B>(&dev).unwrap_err().to_string();
        assert!(err.contains("key_size") && err.contains("dot"), "{err}");
        let scaled = AttentionConfig::new(4, 4).with_scaled(true);
        assert!(
            scaled
                .init::<B>(&dev)
                .unwrap_err()
                .to_string()
                .contains("scaled")
        );
        assert!(AttentionConfig::new(0, 4).init::<B>(&dev).is_err());
        let zero = AttentionConfig::new(4, 4).with_attention_size(Some(0));
        assert!(zero.init::<B>(&dev).is_err());
    }

    #[test]
    fn parameters_of_the_wrong_shape_are_refused() {
        let dev = Default::default();
        let w = |r, c| Some(Param::from_tensor(Tensor::<B, 2>::zeros([r, c], &dev)));
        let params = AttentionParams {
            key_weight: w(4, 3),
            ..Default::default()
        };
        let err = Attention::from_params(AttentionScore::General, false, 4, 4, params)
            .unwrap_err()
            .to_string();
        assert!(err.contains("General") && err.contains("[4, 3]"), "{err}");
        let extra = AttentionParams {
            key_weight: w(4, 4),
            ..Default::default()
        };
        assert!(Attention::from_params(AttentionScore::Dot, false, 4, 4, extra).is_err());
    }
}

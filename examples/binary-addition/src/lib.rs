//! The course's first recurrent network: an RNN that learns to add two 8-bit numbers one bit at a
//! time, least significant bit first, carrying in its hidden state.
//!
//! The network (no biases, as in the course):
//!
//! ```text
//! u_t = x_t · W_in + z_{t-1} · W        x_t = [a_t, b_t]  (bit t of each operand)
//! z_t = f(u_t)                          f = sigmoid (the course), tanh or ReLU
//! y_t = sigmoid(z_t · W_out)            the predicted bit t of a + b
//! ```
//!
//! with the course's loss `Σ_t (y_t − d_t)² / 2` per pair (averaged over the pairs of a batch).
//!
//! Two trainers share the weights ([`Weights`]):
//! - [`bptt`]: backpropagation through time written out by hand with burn tensor ops, the
//!   course's `delta_out`, `delta` and weight gradients;
//! - [`Adder`]: the same network built from rensa's layers ([`Rnn`] and a bias-free
//!   [`Linear`]), differentiated by burn's autodiff and trained by burn's SGD.
//!
//! A test checks that both give the same gradients. The course applies `d_sigmoid` to the
//! output `y_t`, which is already a sigmoid (so it computes `σ(y)(1 − σ(y))` instead of
//! `y(1 − y)`); [`OutputDerivative::Course`] reproduces that slip for comparison.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor, TensorData};
use rensa_nn::activation::{Activation, d_sigmoid, d_sigmoid_from_output, sigmoid};
use rensa_nn::init::Init;
use rensa_nn::recurrent::{MergeMode, RecurrentBackend, Rnn, RnnCell, SequenceInput};
use rensa_train::SplitMix64;

/// Bits per number (the sum of two operands below [`OPERAND_LIMIT`] fits).
pub const BITS: usize = 8;
/// Operands are drawn from `0..OPERAND_LIMIT`, so their sum is below `2^BITS`.
pub const OPERAND_LIMIT: u32 = 1 << (BITS - 1);
/// Every pair of operands: `128 × 128`.
pub const ALL_PAIRS: usize = (OPERAND_LIMIT * OPERAND_LIMIT) as usize;
/// Inputs per step: one bit of each operand.
pub const INPUTS: usize = 2;

/// The bits of `n`, least significant first (the order the network reads them).
pub fn bits_lsb_first(n: u32) -> [f32; BITS] {
    std::array::from_fn(|t| ((n >> t) & 1) as f32)
}

/// The number whose bits, least significant first, are `bits` rounded to 0 or 1 (the course's
/// `np.round(y)`).
pub fn from_bits_lsb_first(bits: &[f32]) -> u32 {
    bits.iter()
        .enumerate()
        .map(|(t, &b)| u32::from(b >= 0.5) << t)
        .sum()
}

/// Random operand pairs, each operand uniform on `0..OPERAND_LIMIT` (the course's
/// `np.random.randint(largest_number / 2)`), from a seeded generator.
#[derive(Clone, Debug)]
pub struct PairSampler {
    rng: SplitMix64,
}

impl PairSampler {
    /// A sampler whose draws depend only on `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: SplitMix64::new(seed),
        }
    }

    /// The next pair `(a, b)`.
    pub fn pair(&mut self) -> (u32, u32) {
        let limit = OPERAND_LIMIT as usize;
        (self.rng.below(limit) as u32, self.rng.below(limit) as u32)
    }

    /// The next `n` pairs.
    pub fn pairs(&mut self, n: usize) -> Vec<(u32, u32)> {
        (0..n).map(|_| self.pair()).collect()
    }
}

/// Every pair `(a, b)` with `a, b < 128`, `a` major.
pub fn all_pairs() -> Vec<(u32, u32)> {
    (0..OPERAND_LIMIT)
        .flat_map(|a| (0..OPERAND_LIMIT).map(move |b| (a, b)))
        .collect()
}

/// A batch of additions laid out for the network.
#[derive(Clone, Debug)]
pub struct Batch<B: Backend> {
    /// `[N, BITS, 2]`: step `t` holds bit `t` of `a` and of `b`.
    pub inputs: Tensor<B, 3>,
    /// `[N, BITS, 1]`: bit `t` of `a + b`.
    pub targets: Tensor<B, 3>,
}

impl<B: Backend> Batch<B> {
    /// Encodes `pairs`.
    ///
    /// # Panics
    /// If `pairs` is empty or an operand is not below [`OPERAND_LIMIT`] (the sum would not fit
    /// in [`BITS`] bits).
    pub fn new(pairs: &[(u32, u32)], device: &B::Device) -> Self {
        assert!(!pairs.is_empty(), "a batch needs at least one pair");
        let mut inputs = Vec::with_capacity(pairs.len() * BITS * INPUTS);
        let mut targets = Vec::with_capacity(pairs.len() * BITS);
        for &(a, b) in pairs {
            assert!(
                a < OPERAND_LIMIT && b < OPERAND_LIMIT,
                "operands must be below {OPERAND_LIMIT}, got ({a}, {b})"
            );
            let (a_bits, b_bits) = (bits_lsb_first(a), bits_lsb_first(b));
            for t in 0..BITS {
                inputs.extend([a_bits[t], b_bits[t]]);
            }
            targets.extend(bits_lsb_first(a + b));
        }
        let n = pairs.len();
        Self {
            inputs: Tensor::from_data(TensorData::new(inputs, [n, BITS, INPUTS]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, BITS, 1]), device),
        }
    }

    /// Pairs in the batch.
    pub fn len(&self) -> usize {
        self.inputs.dims()[0]
    }

    /// Always false (a batch has at least one pair).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How the weights are drawn (the course's three options; no biases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitScheme {
    /// `weight_init_std · randn` with `weight_init_std = 1`: the course's default.
    Normal,
    /// The course's "Xavier": `randn / √fan_in`. (Glorot and Bengio's own normal form is
    /// `√(2 / (fan_in + fan_out))`, rensa's [`Init::XavierNormal`]; the course uses the fan-in
    /// form, also known as LeCun normal.)
    Xavier,
    /// The course's "He": `randn · √2 / √fan_in` ([`Init::HeNormal`]).
    He,
}

impl InitScheme {
    /// The initialiser of a `[fan_in, fan_out]` matrix.
    pub fn init(&self, fan_in: usize) -> Init {
        match self {
            InitScheme::Normal => Init::Normal {
                mean: 0.0,
                std: 1.0,
            },
            InitScheme::Xavier => Init::Normal {
                mean: 0.0,
                std: 1.0 / (fan_in as f64).sqrt(),
            },
            InitScheme::He => Init::HeNormal { gain: 1.0 },
        }
    }
}

/// The network's three weight matrices as plain tensors (what the hand-written trainer updates).
#[derive(Clone, Debug)]
pub struct Weights<B: Backend> {
    /// Input to hidden `[2, H]`.
    pub w_in: Tensor<B, 2>,
    /// Hidden to hidden `[H, H]`.
    pub w: Tensor<B, 2>,
    /// Hidden to output `[H, 1]`.
    pub w_out: Tensor<B, 2>,
}

/// The gradients of the loss with respect to each [`Weights`] matrix (same shapes).
pub type Gradients<B> = Weights<B>;

impl<B: Backend> Weights<B> {
    /// Draws the weights with `scheme` from the backend's generator (seed it first for a
    /// reproducible run).
    pub fn init(hidden: usize, scheme: InitScheme, device: &B::Device) -> Self {
        assert!(hidden > 0, "the hidden layer needs at least one unit");
        // The course's order: W_in, W_out, W.
        let w_in = scheme.init(INPUTS).matrix(INPUTS, hidden, device);
        let w_out = scheme.init(hidden).matrix(hidden, 1, device);
        let w = scheme.init(hidden).matrix(hidden, hidden, device);
        Self { w_in, w, w_out }
    }

    /// Hidden units.
    pub fn hidden_size(&self) -> usize {
        self.w.dims()[0]
    }

    /// `self − lr · grads`: one step of plain gradient descent (the course's update).
    pub fn sgd_step(self, grads: Gradients<B>, lr: f64) -> Self {
        Self {
            w_in: self.w_in - grads.w_in * lr,
            w: self.w - grads.w * lr,
            w_out: self.w_out - grads.w_out * lr,
        }
    }

    /// The predicted bits `[N, BITS, 1]` (probabilities) for a batch.
    pub fn forward(&self, inputs: Tensor<B, 3>, activation: Activation) -> Tensor<B, 3> {
        let [n, steps, _] = inputs.dims();
        let x = time_major(inputs);
        let (_, z) = hidden_states(self, x, n, steps, activation);
        let y = sigmoid(z.matmul(self.w_out.clone()));
        y.reshape([steps, n, 1]).swap_dims(0, 1)
    }
}

/// `[N, T, F]` → `[T·N, F]`, rows of step `t` at `t·N..(t+1)·N`.
fn time_major<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 2> {
    let [n, t, f] = x.dims();
    x.swap_dims(0, 1).reshape([t * n, f])
}

/// Runs the recurrence. Returns `z_0 .. z_{T-1}` (the states each step starts from, `z_0 = 0`)
/// and `z_1 .. z_T` (the states each step produces), both time-major `[T·N, H]`.
fn hidden_states<B: Backend>(
    weights: &Weights<B>,
    x: Tensor<B, 2>,
    n: usize,
    steps: usize,
    activation: Activation,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let h = weights.hidden_size();
    // The input half of every u_t at once: one product over all steps.
    let xw = x.matmul(weights.w_in.clone());
    let mut z = Vec::with_capacity(steps + 1);
    z.push(Tensor::zeros([n, h], &xw.device()));
    for t in 0..steps {
        let u = xw.clone().slice(t * n..(t + 1) * n) + z[t].clone().matmul(weights.w.clone());
        z.push(activation.forward(u));
    }
    let produced = Tensor::cat(z[1..].to_vec(), 0);
    z.pop();
    (Tensor::cat(z, 0), produced)
}

/// Which derivative of the output sigmoid [`bptt`] uses in `delta_out`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputDerivative {
    /// `y(1 − y)`: the derivative of `y = σ(v)` with respect to `v`, correct.
    #[default]
    Correct,
    /// The course's `d_sigmoid(y) = σ(y)(1 − σ(y))`: `d_sigmoid` applied to the already-activated
    /// output. Not the gradient of the loss; it still trains, because the factor stays in
    /// `[0.196, 0.25]` and never vanishes when the output saturates.
    Course,
}

/// What one pass of [`bptt`] computes.
#[derive(Clone, Debug)]
pub struct Bptt<B: Backend> {
    /// The loss, `Σ_t (y_t − d_t)² / 2` averaged over the pairs.
    pub loss: Tensor<B, 1>,
    /// The gradients of the loss.
    pub grads: Gradients<B>,
}

/// Backpropagation through time, written out as the course does, on a batch of pairs.
///
/// Forward, for `t = 1..T`: `u_t = x_t W_in + z_{t−1} W`, `z_t = f(u_t)`,
/// `y_t = σ(z_t W_out)`, and the output error
/// `delta_out_t = (y_t − d_t) / N · σ'` (the course's `d_mean_squared_error · d_sigmoid`).
///
/// Backward, for `t = T..1`: `delta_t = (delta_{t+1} Wᵀ + delta_out_t W_outᵀ) · f'(u_t)`
/// (`delta_{T+1} = 0`), and the weight gradients
/// `∂W_out = Σ_t z_tᵀ delta_out_t`, `∂W = Σ_t z_{t−1}ᵀ delta_t`, `∂W_in = Σ_t x_tᵀ delta_t`.
/// The course adds these up one step at a time; here each sum is one matrix product over all
/// steps stacked (the same numbers, far fewer operations). Likewise `x_t W_in` for every step is
/// one product before the loop. `f'(u_t)` is computed from `z_t = f(u_t)` (for the sigmoid,
/// `z(1 − z)`, equal to the course's `d_sigmoid(u)`).
///
/// With one pair (`N = 1`) this is exactly the course's exercise.
pub fn bptt<B: Backend>(
    weights: &Weights<B>,
    batch: &Batch<B>,
    activation: Activation,
    output_derivative: OutputDerivative,
) -> Bptt<B> {
    let [n, steps, _] = batch.inputs.dims();
    let x = time_major(batch.inputs.clone());
    let d = time_major(batch.targets.clone());
    let (z_prev, z) = hidden_states(weights, x.clone(), n, steps, activation);
    let y = sigmoid(z.clone().matmul(weights.w_out.clone()));

    let error = y.clone() - d;
    let loss = (error.clone() * error.clone()).sum() / (2 * n) as f64;
    let d_out = match output_derivative {
        OutputDerivative::Correct => d_sigmoid_from_output(y),
        OutputDerivative::Course => d_sigmoid(y),
    };
    let delta_out = error / n as f64 * d_out; // [T·N, 1]

    // The output's contribution to every delta_t, and f'(u_t), for all steps at once.
    let from_output = delta_out.clone().matmul(weights.w_out.clone().transpose());
    let f_prime = activation.derivative_from_output(z.clone());
    let w_t = weights.w.clone().transpose();
    let mut deltas = vec![None; steps];
    let mut next: Option<Tensor<B, 2>> = None;
    for t in (0..steps).rev() {
        let rows = t * n..(t + 1) * n;
        let mut back = from_output.clone().slice(rows.clone());
        if let Some(next) = next {
            back = back + next.matmul(w_t.clone());
        }
        let delta = back * f_prime.clone().slice(rows);
        deltas[t] = Some(delta.clone());
        next = Some(delta);
    }
    let delta = Tensor::cat(deltas.into_iter().flatten().collect(), 0); // [T·N, H]

    Bptt {
        loss,
        grads: Gradients {
            w_out: z.transpose().matmul(delta_out),
            w: z_prev.transpose().matmul(delta.clone()),
            w_in: x.transpose().matmul(delta),
        },
    }
}

/// The course's loss on predictions `y` and targets `d` (`[N, BITS, 1]` each):
/// `Σ_t (y_t − d_t)² / 2`, averaged over the pairs.
pub fn course_loss<B: Backend>(y: Tensor<B, 3>, d: Tensor<B, 3>) -> Tensor<B, 1> {
    let n = y.dims()[0];
    let e = y - d;
    (e.clone() * e).sum() / (2 * n) as f64
}

/// The network built from rensa's layers: a one-layer bias-free [`Rnn`] and a bias-free
/// [`Linear`] read-out followed by a sigmoid. Trained with burn's autodiff.
#[derive(Module, Debug)]
pub struct Adder<B: Backend> {
    /// The recurrent layer (`W_in` is its `weight_ih`, `W` its `weight_hh`).
    pub rnn: Rnn<B>,
    /// The read-out (`W_out` is its weight).
    pub output: Linear<B>,
}

impl<B: RecurrentBackend> Adder<B> {
    /// The network with the given weights.
    pub fn new(weights: Weights<B>, activation: Activation) -> rensa_nn::Result<Self> {
        let cell = RnnCell::from_weights(weights.w_in, weights.w, None, None, activation)?;
        Ok(Self {
            rnn: Rnn::from_cells(vec![cell], false, MergeMode::Concat, 0.0)?,
            output: Linear {
                weight: Param::from_tensor(weights.w_out),
                bias: None,
            },
        })
    }

    /// A copy of the weights.
    pub fn weights(&self) -> Weights<B> {
        let cell = self.rnn.cell(0, 0);
        Weights {
            w_in: cell.weights.weight_ih.val(),
            w: cell.weights.weight_hh.val(),
            w_out: self.output.weight.val(),
        }
    }

    /// The hidden activation.
    pub fn activation(&self) -> Activation {
        self.rnn.cell(0, 0).activation
    }

    /// The predicted bits `[N, BITS, 1]` (probabilities).
    pub fn forward(&self, inputs: Tensor<B, 3>) -> Tensor<B, 3> {
        let hidden = self.rnn.forward(SequenceInput::new(inputs)).output;
        sigmoid(self.output.forward(hidden))
    }

    /// The course's loss on a batch.
    pub fn loss(&self, batch: &Batch<B>) -> Tensor<B, 1> {
        course_loss(self.forward(batch.inputs.clone()), batch.targets.clone())
    }
}

/// How well a network adds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Accuracy {
    /// Pairs whose every bit is right.
    pub exact: usize,
    /// Pairs tried.
    pub pairs: usize,
    /// Wrong bits over all pairs.
    pub wrong_bits: usize,
}

impl Accuracy {
    /// The share of pairs added exactly, in `[0, 1]`.
    pub fn exact_share(&self) -> f64 {
        self.exact as f64 / self.pairs as f64
    }

    /// Scores predicted bit probabilities `[N, BITS, 1]` against `pairs`.
    pub fn score<B: Backend>(y: Tensor<B, 3>, pairs: &[(u32, u32)]) -> Self {
        let bits: Vec<f32> = y
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 predictions");
        let mut exact = 0;
        let mut wrong_bits = 0;
        for (&(a, b), row) in pairs.iter().zip(bits.chunks(BITS)) {
            let wrong = (from_bits_lsb_first(row) ^ (a + b)).count_ones() as usize;
            exact += usize::from(wrong == 0);
            wrong_bits += wrong;
        }
        Self {
            exact,
            pairs: pairs.len(),
            wrong_bits,
        }
    }
}

/// Exact-match accuracy over all 16,384 pairs.
pub fn accuracy_all_pairs<B: Backend>(
    weights: &Weights<B>,
    activation: Activation,
    device: &B::Device,
) -> Accuracy {
    let pairs = all_pairs();
    let batch = Batch::<B>::new(&pairs, device);
    Accuracy::score(weights.forward(batch.inputs, activation), &pairs)
}

/// The loss as an `f64`.
pub fn scalar<B: Backend>(loss: Tensor<B, 1>) -> f64 {
    loss.into_scalar().elem()
}

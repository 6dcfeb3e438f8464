//! An RNN that learns to add two 8-bit numbers one bit at a time, least significant bit first,
//! carrying in its hidden state (the data: [`rensa_data::addition`]).
//!
//! The network (no biases):
//!
//! ```text
//! u_t = x_t · W_in + z_{t-1} · W        x_t = [a_t, b_t]  (bit t of each operand)
//! z_t = f(u_t)                          f = sigmoid (the exercise's), tanh or ReLU
//! y_t = sigmoid(z_t · W_out)            the predicted bit t of a + b
//! ```
//!
//! with the loss `Σ_t (y_t − d_t)² / 2` per pair (averaged over the pairs of a batch), trained
//! by plain gradient descent (lr 0.1, one random pair per step, 10,000 steps in the exercise).
//!
//! Two trainers share the weights ([`Weights`]):
//! - [`bptt`]: backpropagation through time written out by hand with burn tensor ops
//!   (`delta_out`, the `delta` recurrence, the weight gradients), wrapped for the training loop
//!   as [`HandTrained`] (`Fit::run_manual`);
//! - [`Adder`]: the same network built from rensa's layers ([`Rnn`] and a bias-free
//!   [`Linear`]), differentiated by burn's autodiff and trained by burn's SGD (`Fit::run`).
//!
//! A test checks that both give the same gradients. The exercise's NumPy code applies
//! `d_sigmoid` to the output `y_t`, which is already a sigmoid (so it computes `σ(y)(1 − σ(y))`
//! instead of `y(1 − y)`); [`OutputDerivative::Course`] reproduces that slip for comparison.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::backend::Backend;
use burn::tensor::{ElementConversion, Tensor};
use rensa_data::addition::{BITS, Batch, INPUTS, all_pairs, from_bits_lsb_first};
use rensa_nn::activation::{Activation, d_sigmoid, d_sigmoid_from_output, sigmoid};
use rensa_nn::init::Init;
use rensa_nn::recurrent::{
    Differentiation, MergeMode, RecurrentBackend, Rnn, RnnCell, SequenceInput,
};
use rensa_train::{Objective, Output, StepInfo};

/// How the weights are drawn (the exercise's three options; no biases).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitScheme {
    /// `weight_init_std · randn` with `weight_init_std = 1`: the exercise's default.
    Normal,
    /// The exercise's "Xavier": `randn / √fan_in`. (Glorot and Bengio's own normal form is
    /// `√(2 / (fan_in + fan_out))`, rensa's [`Init::XavierNormal`]; the exercise uses the fan-in
    /// form, also known as LeCun normal.)
    Xavier,
    /// "He": `randn · √2 / √fan_in` ([`Init::HeNormal`]).
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
        // The exercise's order of draws: W_in, W_out, W.
        let w_in = scheme.init(INPUTS).matrix(INPUTS, hidden, device);
        let w_out = scheme.init(hidden).matrix(hidden, 1, device);
        let w = scheme.init(hidden).matrix(hidden, hidden, device);
        Self { w_in, w, w_out }
    }

    /// Hidden units.
    pub fn hidden_size(&self) -> usize {
        self.w.dims()[0]
    }

    /// `self − lr · grads`: one step of plain gradient descent.
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
    /// The exercise's `d_sigmoid(y) = σ(y)(1 − σ(y))`: `d_sigmoid` applied to the already-activated
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

/// Backpropagation through time, written out step by step, on a batch of pairs.
///
/// Forward, for `t = 1..T`: `u_t = x_t W_in + z_{t−1} W`, `z_t = f(u_t)`,
/// `y_t = σ(z_t W_out)`, and the output error
/// `delta_out_t = (y_t − d_t) / N · σ'` (`d_mean_squared_error · d_sigmoid` in the exercise).
///
/// Backward, for `t = T..1`: `delta_t = (delta_{t+1} Wᵀ + delta_out_t W_outᵀ) · f'(u_t)`
/// (`delta_{T+1} = 0`), and the weight gradients
/// `∂W_out = Σ_t z_tᵀ delta_out_t`, `∂W = Σ_t z_{t−1}ᵀ delta_t`, `∂W_in = Σ_t x_tᵀ delta_t`.
/// The exercise adds these up one step at a time; here each sum is one matrix product over all
/// steps stacked (the same numbers, far fewer operations). Likewise `x_t W_in` for every step is
/// one product before the loop. `f'(u_t)` is computed from `z_t = f(u_t)` (for the sigmoid,
/// `z(1 − z)`, equal to `d_sigmoid(u)`).
///
/// With one pair (`N = 1`) this is exactly the exercise's update.
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

/// The loss on predictions `y` and targets `d` (`[N, BITS, 1]` each):
/// `Σ_t (y_t − d_t)² / 2`, averaged over the pairs.
pub fn squared_error_loss<B: Backend>(y: Tensor<B, 3>, d: Tensor<B, 3>) -> Tensor<B, 1> {
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

    /// The network with its recurrence differentiated the `differentiation` way (see
    /// [`Differentiation`]).
    pub fn with_differentiation(self, differentiation: Differentiation) -> Self {
        Self {
            rnn: self.rnn.with_differentiation(differentiation),
            ..self
        }
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

    /// The loss `Σ_t (y_t − d_t)² / 2` on a batch, averaged over its pairs.
    pub fn loss(&self, batch: &Batch<B>) -> Tensor<B, 1> {
        squared_error_loss(self.forward(batch.inputs.clone()), batch.targets.clone())
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

/// The hand-written trainer as a module for the training loop: the weights as parameters (so
/// checkpoints save them), the hidden activation and the output derivative. Its step runs
/// [`bptt`] and returns the gradient-descent update with the step's learning rate; train it
/// with `Fit::run_manual` on any backend, no autodiff needed.
#[derive(Module, Debug)]
pub struct HandTrained<B: Backend> {
    /// Input to hidden `[2, H]`.
    pub w_in: Param<Tensor<B, 2>>,
    /// Hidden to hidden `[H, H]`.
    pub w: Param<Tensor<B, 2>>,
    /// Hidden to output `[H, 1]`.
    pub w_out: Param<Tensor<B, 2>>,
    /// The hidden activation.
    #[module(skip)]
    pub activation: Activation,
    /// Which derivative of the output sigmoid the backward pass uses.
    #[module(skip)]
    pub output_derivative: OutputDerivative,
}

impl<B: Backend> HandTrained<B> {
    /// The trainer of `weights`.
    pub fn new(
        weights: Weights<B>,
        activation: Activation,
        output_derivative: OutputDerivative,
    ) -> Self {
        Self {
            w_in: Param::from_tensor(weights.w_in),
            w: Param::from_tensor(weights.w),
            w_out: Param::from_tensor(weights.w_out),
            activation,
            output_derivative,
        }
    }

    /// A copy of the weights.
    pub fn weights(&self) -> Weights<B> {
        Weights {
            w_in: self.w_in.val(),
            w: self.w.val(),
            w_out: self.w_out.val(),
        }
    }

    /// `self − lr · grads`.
    fn descend(self, grads: Gradients<B>, lr: f64) -> Self {
        let step = |p: Param<Tensor<B, 2>>, g: Tensor<B, 2>| p.map(|w| w - g * lr);
        Self {
            w_in: step(self.w_in, grads.w_in),
            w: step(self.w, grads.w),
            w_out: step(self.w_out, grads.w_out),
            ..self
        }
    }
}

/// A batch of the training loop: operand pairs, encoded on the model's device at each step.
pub type Pairs = Vec<(u32, u32)>;

/// The exact-match metric's name in the history (`val_exact` on validation batches).
pub const EXACT: &str = "exact";

/// The validation output both trainers share: the loss and the share of exactly added pairs.
fn validation<B: Backend, M>(loss: Tensor<B, 1>, y: Tensor<B, 3>, pairs: &Pairs) -> Output<B, M> {
    let accuracy = Accuracy::score(y, pairs);
    Output::new(loss, pairs.len()).with_metric(EXACT, accuracy.exact_share())
}

impl<B: Backend> Objective<B> for HandTrained<B> {
    type Batch = Pairs;

    fn step(&self, pairs: &Pairs, at: &StepInfo) -> Output<B, Self> {
        let batch = Batch::<B>::new(pairs, &self.w.device());
        let weights = self.weights();
        if !at.training {
            let y = weights.forward(batch.inputs, self.activation);
            let loss = squared_error_loss(y.clone(), batch.targets);
            return validation(loss, y, pairs);
        }
        let pass = bptt(&weights, &batch, self.activation, self.output_derivative);
        let lr = at.lr;
        Output::new(pass.loss, pairs.len()).with_update(move |m: Self| m.descend(pass.grads, lr))
    }
}

impl<B: RecurrentBackend> Objective<B> for Adder<B> {
    type Batch = Pairs;

    fn step(&self, pairs: &Pairs, at: &StepInfo) -> Output<B, Self> {
        let batch = Batch::<B>::new(pairs, &self.output.weight.device());
        let y = self.forward(batch.inputs);
        let loss = squared_error_loss(y.clone(), batch.targets);
        if at.training {
            Output::new(loss, pairs.len())
        } else {
            validation(loss, y, pairs)
        }
    }
}

//! A sequence-to-sequence encoder-decoder over any recurrent cell.
//!
//! The encoder reads the input sequence `x₁ … x_T` and keeps only its final state
//! `h_T = f(x_T, h_{T−1})`; the decoder starts from that state and produces one output per step,
//! `s_t = g(y_{t−1}, s_{t−1})`, `ŷ_t = W s_t + b` (a linear read-out). In training the decoder
//! reads the true previous target `y_{t−1}` (teacher forcing, `y₀ = 0`) and the loss is the mean
//! squared error; at prediction time it reads its own previous output (autoregressive decoding).
//! One encoder state carries the whole input: that is what sets seq2seq apart from a hierarchical
//! model (HRED), which encodes each utterance and then runs a context encoder over them.
//!
//! With `SimpleRNN(10)` cells on the sin → cos windows of
//! [`rensa_data::sine`] this is the Keras exercise: `x` = 100 points on `[−3π, 3π]`, windows of 24
//! steps, Glorot-uniform input weights, orthogonal recurrent weights, zero biases, `Dense(1)` on
//! every step, Adam (lr 0.001, ε 1e-7), batch 16, the last 20% of the windows for validation.
//!
//! [`token`] holds the same encoder-decoder over tokens (embeddings, a softmax read-out), with
//! or without attention over the encoder states (Bahdanau, Luong), greedy and beam decoding;
//! [`search`] holds the decoding algorithms, for any decoder that takes one step at a time.

pub mod search;
pub mod token;

use burn::config::Config;
use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{ElementConversion, Tensor, backend::Backend};
use rensa_data::sine::{WindowBatch, column};
use rensa_nn::init::Init;
use rensa_nn::recurrent::{
    Differentiation, Recurrent, RecurrentBackend, RecurrentCell, RecurrentConfig, SequenceInput,
};
use rensa_train::{Objective, Output, StepInfo};

/// Configuration of a [`Seq2Seq`] model; the cell is chosen by [`init`](Self::init)'s type
/// parameter (`RnnConfig`, `LstmConfig` or `GruConfig`).
#[derive(Config, Debug)]
pub struct Seq2SeqConfig {
    /// Hidden units of the encoder and of the decoder.
    pub hidden_size: usize,
    /// Features per input step (1 for the sine windows).
    #[config(default = 1)]
    pub input_size: usize,
    /// Features per output step (1 for the sine windows).
    #[config(default = 1)]
    pub output_size: usize,
}

impl Seq2SeqConfig {
    /// Builds the model with cells of kind `K` (Keras's initialisers: Glorot-uniform input
    /// weights, orthogonal recurrent weights, zero biases; a Glorot-uniform read-out with zero
    /// bias).
    ///
    /// # Errors
    /// When a size is 0.
    pub fn init<B: RecurrentBackend, K: RecurrentConfig>(
        &self,
        device: &B::Device,
    ) -> rensa_nn::Result<Seq2Seq<B, K::Cell<B>>> {
        if self.output_size == 0 {
            return Err(rensa_nn::Error::config("output_size", "at least 1", 0));
        }
        let encoder = K::sized(self.input_size, self.hidden_size).init_layer(device)?;
        let decoder = K::sized(self.output_size, self.hidden_size).init_layer(device)?;
        let output = Linear {
            weight: Param::from_tensor(Init::XAVIER_UNIFORM.matrix(
                self.hidden_size,
                self.output_size,
                device,
            )),
            bias: Some(Param::from_tensor(Tensor::zeros(
                [self.output_size],
                device,
            ))),
        };
        Ok(Seq2Seq {
            encoder,
            decoder,
            output,
        })
    }
}

/// Encoder-decoder over any recurrent cell, with a linear read-out on every decoder step.
#[derive(Module, Debug)]
pub struct Seq2Seq<B: Backend, C: Module<B>> {
    /// Reads the input sequence; only its final state is used.
    pub encoder: Recurrent<B, C>,
    /// Starts from the encoder's final state.
    pub decoder: Recurrent<B, C>,
    /// Hidden to output, `[H, output_size]`.
    pub output: Linear<B>,
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> Seq2Seq<B, C> {
    /// Teacher-forced decoding.
    ///
    /// # Shapes
    /// - `encoder_input`: `[batch, T_in, input_size]`
    /// - `decoder_input`: `[batch, T_out, output_size]` (the targets shifted right by one step)
    /// - returns `[batch, T_out, output_size]`
    pub fn forward(
        &self,
        encoder_input: Tensor<B, 3>,
        decoder_input: Tensor<B, 3>,
    ) -> Tensor<B, 3> {
        let state = self
            .encoder
            .forward(SequenceInput::new(encoder_input))
            .state;
        let decoded = self
            .decoder
            .forward(SequenceInput::new(decoder_input).with_state(state)); // [batch, T_out, H]
        self.output.forward(decoded.output)
    }

    /// Autoregressive prediction of `steps` outputs from the encoder state of one sequence
    /// `encoder_input` (`[T_in]`, one feature per step): the decoder starts from 0 and reads its
    /// own previous output.
    pub fn predict(&self, encoder_input: &[f32], steps: usize, device: &B::Device) -> Vec<f32> {
        let x = column::<B>(encoder_input, 1, device); // [1, T_in, 1]
        let mut state = self.encoder.forward(SequenceInput::new(x)).state;
        let mut y = Tensor::<B, 2>::zeros([1, self.output.weight.dims()[1]], device);
        let mut out = Vec::with_capacity(steps);
        for _ in 0..steps {
            let (h, next) = self.decoder.step(y, state); // [1, H]
            state = next;
            y = self.output.forward(h); // [1, output_size]
            out.push(y.clone().into_scalar().elem::<f32>());
        }
        out
    }

    /// The mean squared error of teacher-forced decoding on a batch of windows.
    pub fn loss(&self, batch: &WindowBatch) -> Tensor<B, 1> {
        let (encoder_input, decoder_input, target) = batch.tensors::<B>(&self.device());
        let predicted = self.forward(encoder_input, decoder_input);
        (predicted - target).powi_scalar(2).mean()
    }

    /// The model with its encoder and decoder differentiated the `differentiation` way (see
    /// [`Differentiation`]).
    pub fn with_differentiation(self, differentiation: Differentiation) -> Self {
        Self {
            encoder: self.encoder.with_differentiation(differentiation),
            decoder: self.decoder.with_differentiation(differentiation),
            ..self
        }
    }

    /// The device the model's weights are on.
    pub fn device(&self) -> B::Device {
        self.output.weight.device()
    }
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> Objective<B> for Seq2Seq<B, C> {
    type Batch = WindowBatch;

    fn step(&self, batch: &WindowBatch, _: &StepInfo) -> Output<B, Self> {
        Output::new(self.loss(batch), batch.len)
    }
}

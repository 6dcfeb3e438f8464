//! The course's seq2seq exercise: an encoder RNN reads 24 steps of `sin(x)`, its final state
//! initialises a decoder RNN that produces the matching 24 steps of `cos(x)`.
//!
//! Faithful to the course's Keras model: x = 100 points on [−3π, 3π]; windows of 24 steps;
//! encoder and decoder `SimpleRNN(10)` (tanh, Glorot-uniform input weights, orthogonal recurrent
//! weights, zero biases); teacher forcing (the decoder reads the target shifted right by one,
//! starting at 0); `Dense(1)` on every step; Adam (lr 0.001), MSE, batch 16, validation split 0.2
//! (the last 20% of the windows), shuffled every epoch. After training it predicts
//! autoregressively from the encoder state of the windows starting at 0, 24, 49 and 74.

use burn::module::{Module, Param};
use burn::nn::Linear;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rensa_nn::init::Init;
use rensa_nn::recurrent::{
    GruConfig, LstmConfig, Recurrent, RecurrentBackend, RecurrentCell, RnnConfig, SequenceInput,
};
use rensa_train::Objective;

/// Points of the series.
pub const POINTS: usize = 100;
/// Steps per window.
pub const STEPS: usize = 24;
/// Where the autoregressive predictions start (the course's choice).
pub const PREDICTION_STARTS: [usize; 4] = [0, 24, 49, 74];

/// One training window: encoder input, decoder input (teacher forcing) and target.
#[derive(Clone, Debug)]
pub struct Window {
    /// `sin(x)` over the window, `[STEPS]`.
    pub encoder_input: Vec<f32>,
    /// The target shifted right by one step, starting at 0.
    pub decoder_input: Vec<f32>,
    /// `cos(x)` over the window.
    pub target: Vec<f32>,
}

/// `(x, sin x, cos x)` at the course's 100 points.
pub fn series() -> (Vec<f64>, Vec<f32>, Vec<f32>) {
    let x: Vec<f64> = (0..POINTS)
        .map(|i| {
            -3.0 * std::f64::consts::PI
                + 6.0 * std::f64::consts::PI * i as f64 / (POINTS - 1) as f64
        })
        .collect();
    let sin = x.iter().map(|v| v.sin() as f32).collect();
    let cos = x.iter().map(|v| v.cos() as f32).collect();
    (x, sin, cos)
}

/// The `POINTS − STEPS` = 76 windows, in order.
pub fn windows() -> Vec<Window> {
    let (_, sin, cos) = series();
    (0..POINTS - STEPS)
        .map(|i| {
            let target = cos[i..i + STEPS].to_vec();
            let mut decoder_input = vec![0.0];
            decoder_input.extend_from_slice(&target[..STEPS - 1]);
            Window {
                encoder_input: sin[i..i + STEPS].to_vec(),
                decoder_input,
                target,
            }
        })
        .collect()
}

/// Which recurrent cell the encoder and decoder use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// Simple RNN (the course's `SimpleRNN`).
    Rnn,
    /// LSTM.
    Lstm,
    /// GRU (reset-after form).
    Gru,
}

/// Encoder-decoder over any recurrent cell, with a linear read-out on every decoder step.
#[derive(Module, Debug)]
pub struct Seq2Seq<B: Backend, C: Module<B>> {
    /// Reads the input sequence; only its final state is used.
    pub encoder: Recurrent<B, C>,
    /// Starts from the encoder's final state.
    pub decoder: Recurrent<B, C>,
    /// `Dense(1)`: hidden to output, `[H, 1]`.
    pub output: Linear<B>,
}

/// Builds a seq2seq model with `hidden` units per RNN and Keras's initialisers.
pub trait BuildSeq2Seq<B: RecurrentBackend>: RecurrentCell<B> + Sized {
    /// The encoder and decoder layers (1 input feature, `hidden` units).
    fn layers(
        hidden: usize,
        device: &B::Device,
    ) -> rensa_nn::Result<(Recurrent<B, Self>, Recurrent<B, Self>)>;
}

impl<B: RecurrentBackend> BuildSeq2Seq<B> for rensa_nn::recurrent::RnnCell<B> {
    fn layers(
        hidden: usize,
        device: &B::Device,
    ) -> rensa_nn::Result<(Recurrent<B, Self>, Recurrent<B, Self>)> {
        let c = RnnConfig::new(1, hidden);
        Ok((c.init(device)?, c.init(device)?))
    }
}

impl<B: RecurrentBackend> BuildSeq2Seq<B> for rensa_nn::recurrent::LstmCell<B> {
    fn layers(
        hidden: usize,
        device: &B::Device,
    ) -> rensa_nn::Result<(Recurrent<B, Self>, Recurrent<B, Self>)> {
        let c = LstmConfig::new(1, hidden);
        Ok((c.init(device)?, c.init(device)?))
    }
}

impl<B: RecurrentBackend> BuildSeq2Seq<B> for rensa_nn::recurrent::GruCell<B> {
    fn layers(
        hidden: usize,
        device: &B::Device,
    ) -> rensa_nn::Result<(Recurrent<B, Self>, Recurrent<B, Self>)> {
        let c = GruConfig::new(1, hidden);
        Ok((c.init(device)?, c.init(device)?))
    }
}

impl<B: RecurrentBackend, C: BuildSeq2Seq<B>> Seq2Seq<B, C> {
    /// A new model: encoder and decoder of `hidden` units, Glorot-uniform read-out with zero bias.
    pub fn new(hidden: usize, device: &B::Device) -> rensa_nn::Result<Self> {
        let (encoder, decoder) = C::layers(hidden, device)?;
        let output = Linear {
            weight: Param::from_tensor(Init::XAVIER_UNIFORM.matrix(hidden, 1, device)),
            bias: Some(Param::from_tensor(Tensor::zeros([1], device))),
        };
        Ok(Self {
            encoder,
            decoder,
            output,
        })
    }
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> Seq2Seq<B, C> {
    /// Teacher-forced decoding.
    ///
    /// # Shapes
    /// - `encoder_input`, `decoder_input`: `[batch, STEPS, 1]`
    /// - returns `[batch, STEPS, 1]`
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
            .forward(SequenceInput::new(decoder_input).with_state(state)); // [batch, STEPS, H]
        self.output.forward(decoded.output)
    }

    /// Autoregressive prediction of `steps` outputs from the encoder state of `encoder_input`
    /// (`[STEPS]`): the decoder starts from 0 and reads its own previous output.
    pub fn predict(&self, encoder_input: &[f32], steps: usize, device: &B::Device) -> Vec<f32> {
        let x = column::<B>(encoder_input, 1, device);
        let mut state = self.encoder.forward(SequenceInput::new(x)).state;
        let mut y = Tensor::<B, 2>::zeros([1, 1], device);
        let mut out = Vec::with_capacity(steps);
        for _ in 0..steps {
            let (h, next) = self.decoder.step(y, state); // [1, H]
            state = next;
            y = self.output.forward(h); // [1, 1]
            out.push(y.clone().into_scalar().elem::<f32>());
        }
        out
    }
}

use burn::tensor::ElementConversion;

/// `[batch, STEPS, 1]` from `batch` concatenated windows.
fn column<B: Backend>(values: &[f32], batch: usize, device: &B::Device) -> Tensor<B, 3> {
    let steps = values.len() / batch;
    Tensor::from_data(TensorData::new(values.to_vec(), [batch, steps, 1]), device)
}

impl<B: RecurrentBackend, C: RecurrentCell<B>> Objective<B> for Seq2Seq<B, C> {
    type Item = Window;

    fn loss(&self, items: &[Window], device: &B::Device) -> Tensor<B, 1> {
        let gather = |f: fn(&Window) -> &Vec<f32>| -> Vec<f32> {
            items.iter().flat_map(|w| f(w).iter().copied()).collect()
        };
        let n = items.len();
        let predicted = self.forward(
            column(&gather(|w| &w.encoder_input), n, device),
            column(&gather(|w| &w.decoder_input), n, device),
        );
        let target = column::<B>(&gather(|w| &w.target), n, device);
        (predicted - target).powi_scalar(2).mean()
    }
}

/// Mean squared error between two equal-length series.
pub fn mse(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "mse: lengths differ ({} vs {})",
        a.len(),
        b.len()
    );
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_follow_the_course() {
        let w = windows();
        assert_eq!(w.len(), 76);
        let (x, sin, cos) = series();
        assert!(
            (x[0] + 3.0 * std::f64::consts::PI).abs() < 1e-12
                && (x[99] - 3.0 * std::f64::consts::PI).abs() < 1e-12
        );
        assert_eq!(w[5].encoder_input, sin[5..29].to_vec());
        assert_eq!(w[5].target, cos[5..29].to_vec());
        assert_eq!(w[5].decoder_input[0], 0.0);
        assert_eq!(w[5].decoder_input[1..], cos[5..28]);
    }
}

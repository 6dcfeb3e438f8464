//! The sin → cos sequence-to-sequence exercise's data.
//!
//! `x` is 100 evenly spaced points on `[−3π, 3π]`. Window `i` (for `i = 0 .. 100 − 24`) pairs
//! the 24 steps `sin(x_i) … sin(x_{i+23})` (the encoder's input) with `cos(x_i) … cos(x_{i+23})`
//! (the decoder's target). The decoder is trained with teacher forcing: its input at step `t` is
//! the target at step `t − 1`, and `0` at the first step. After training, a model is judged by
//! predicting autoregressively from the windows that start at [`PREDICTION_STARTS`].

use burn::tensor::{Tensor, TensorData, backend::Backend};

/// Points of the series.
pub const POINTS: usize = 100;
/// Steps per window.
pub const STEPS: usize = 24;
/// Where the autoregressive predictions of the exercise start.
pub const PREDICTION_STARTS: [usize; 4] = [0, 24, 49, 74];

/// One training window: encoder input, decoder input (teacher forcing) and target.
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    /// `sin(x)` over the window, [`STEPS`] values.
    pub encoder_input: Vec<f32>,
    /// The target shifted right by one step, starting at 0.
    pub decoder_input: Vec<f32>,
    /// `cos(x)` over the window.
    pub target: Vec<f32>,
}

/// `(x, sin x, cos x)` at the [`POINTS`] points of `[−3π, 3π]`.
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

/// Windows laid side by side, ready to become `[batch, steps, 1]` tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowBatch {
    /// Windows in the batch.
    pub len: usize,
    /// Steps per window.
    pub steps: usize,
    /// The encoder inputs, window after window.
    pub encoder_input: Vec<f32>,
    /// The decoder inputs, window after window.
    pub decoder_input: Vec<f32>,
    /// The targets, window after window.
    pub target: Vec<f32>,
}

impl WindowBatch {
    /// Lays out `windows` (borrowed: the dataset is not copied, only the batch's values).
    ///
    /// # Panics
    /// If `windows` is empty or the windows differ in length.
    pub fn new(windows: &[&Window]) -> Self {
        assert!(!windows.is_empty(), "a batch needs at least one window");
        let steps = windows[0].target.len();
        let gather = |f: fn(&Window) -> &Vec<f32>| -> Vec<f32> {
            let mut out = Vec::with_capacity(windows.len() * steps);
            for w in windows {
                let values = f(w);
                assert_eq!(
                    values.len(),
                    steps,
                    "every window of a batch needs {steps} steps, got {}",
                    values.len()
                );
                out.extend_from_slice(values);
            }
            out
        };
        Self {
            len: windows.len(),
            steps,
            encoder_input: gather(|w| &w.encoder_input),
            decoder_input: gather(|w| &w.decoder_input),
            target: gather(|w| &w.target),
        }
    }

    /// `(encoder_input, decoder_input, target)`, each `[len, steps, 1]`.
    pub fn tensors<B: Backend>(
        &self,
        device: &B::Device,
    ) -> (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>) {
        (
            column(&self.encoder_input, self.len, device),
            column(&self.decoder_input, self.len, device),
            column(&self.target, self.len, device),
        )
    }
}

/// `[batch, values.len() / batch, 1]` from `batch` sequences laid end to end.
pub fn column<B: Backend>(values: &[f32], batch: usize, device: &B::Device) -> Tensor<B, 3> {
    let steps = values.len() / batch;
    Tensor::from_data(TensorData::new(values.to_vec(), [batch, steps, 1]), device)
}

/// Mean squared error between two equal-length series.
///
/// # Panics
/// If the lengths differ.
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
    fn windows_pair_sin_with_cos_and_shift_the_decoder_input() {
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

    #[test]
    fn a_batch_lays_windows_end_to_end() {
        let w = windows();
        let batch = WindowBatch::new(&[&w[3], &w[0]]);
        assert_eq!((batch.len, batch.steps), (2, STEPS));
        assert_eq!(batch.target[..STEPS], w[3].target[..]);
        assert_eq!(batch.target[STEPS..], w[0].target[..]);
        assert_eq!(batch.decoder_input[STEPS..], w[0].decoder_input[..]);
        let (e, _, t) = batch.tensors::<burn::backend::NdArray>(&Default::default());
        assert_eq!(e.dims(), [2, STEPS, 1]);
        let t: Vec<f32> = t.into_data().to_vec().unwrap();
        assert_eq!(t, batch.target);
    }

    #[test]
    #[should_panic(expected = "at least one window")]
    fn an_empty_batch_is_refused() {
        WindowBatch::new(&[]);
    }
}

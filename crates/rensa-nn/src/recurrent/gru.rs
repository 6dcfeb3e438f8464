//! The GRU cell, in both of its forms.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::{CellKind, GateWeights, RecurrentBackend, RecurrentCell};
use crate::Result;

/// GRU cell with fused gates in the order (r, z, n) (PyTorch's order):
///
/// ```text
/// r = σ(x Wᵢᵣ + bᵢᵣ + h Wₕᵣ + bₕᵣ)
/// z = σ(x W_iz + b_iz + h W_hz + b_hz)
/// n = tanh(x Wᵢₙ + bᵢₙ + r ⊙ (h Wₕₙ + bₕₙ))      reset after (cuDNN, PyTorch, Keras default)
/// n = tanh(x Wᵢₙ + bᵢₙ + (r ⊙ h) Wₕₙ + bₕₙ)      reset before (the original form, Cho et al. 2014)
/// h' = (1 − z) ⊙ n + z ⊙ h
/// ```
///
/// The course writes the update as `h' = (1 − z) ⊙ h + z ⊙ n`, i.e. its `z` is `1 − z` here;
/// PyTorch, Keras and burn-nn use the form above. Built by [`GruConfig`](super::GruConfig) or
/// [`from_weights`](Self::from_weights).
#[derive(Module, Debug)]
pub struct GruCell<B: Backend> {
    /// Weights `[I, 3H]`, `[H, 3H]` and biases `[3H]`.
    pub weights: GateWeights<B>,
    /// Apply the reset gate after the recurrent matmul (cuDNN/PyTorch form).
    pub reset_after: bool,
}

impl<B: RecurrentBackend> GruCell<B> {
    /// A cell from given weights (`weight_ih` `[I, 3H]`, `weight_hh` `[H, 3H]`, biases `[3H]`,
    /// gate order r, z, n).
    pub fn from_weights(
        weight_ih: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
        bias_ih: Option<Tensor<B, 1>>,
        bias_hh: Option<Tensor<B, 1>>,
        reset_after: bool,
    ) -> Result<Self> {
        Ok(Self {
            weights: GateWeights::new(3, weight_ih, weight_hh, bias_ih, bias_hh)?,
            reset_after,
        })
    }
}

impl<B: RecurrentBackend> RecurrentCell<B> for GruCell<B> {
    const GATES: usize = 3;
    const HAS_CELL_STATE: bool = false;

    fn weights(&self) -> &GateWeights<B> {
        &self.weights
    }

    fn kind(&self) -> CellKind {
        CellKind::Gru {
            reset_after: self.reset_after,
        }
    }
}

//! The LSTM cell.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::{CellKind, GateWeights, RecurrentBackend, RecurrentCell};
use crate::Result;

/// LSTM cell with fused gates in the order (i, f, g, o) (PyTorch's and Keras's order):
///
/// ```text
/// [i f g o] = x Wᵢₕ + h Wₕₕ + b
/// i, f, o = σ(i), σ(f), σ(o);  g = tanh(g)
/// c' = f ⊙ c + i ⊙ g
/// h' = o ⊙ tanh(c')
/// ```
///
/// (The course's numpy `LSTM` class orders its slices f, g, i, o; the equations are the same.)
/// Built by [`LstmConfig`](super::LstmConfig) or [`from_weights`](Self::from_weights).
#[derive(Module, Debug)]
pub struct LstmCell<B: Backend> {
    /// Weights `[I, 4H]`, `[H, 4H]` and biases `[4H]`.
    pub weights: GateWeights<B>,
}

impl<B: RecurrentBackend> LstmCell<B> {
    /// A cell from given weights (`weight_ih` `[I, 4H]`, `weight_hh` `[H, 4H]`, biases `[4H]`,
    /// gate order i, f, g, o).
    pub fn from_weights(
        weight_ih: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
        bias_ih: Option<Tensor<B, 1>>,
        bias_hh: Option<Tensor<B, 1>>,
    ) -> Result<Self> {
        Ok(Self {
            weights: GateWeights::new(4, weight_ih, weight_hh, bias_ih, bias_hh)?,
        })
    }
}

impl<B: RecurrentBackend> RecurrentCell<B> for LstmCell<B> {
    const GATES: usize = 4;
    const HAS_CELL_STATE: bool = true;

    fn weights(&self) -> &GateWeights<B> {
        &self.weights
    }

    fn kind(&self) -> CellKind {
        CellKind::Lstm
    }
}

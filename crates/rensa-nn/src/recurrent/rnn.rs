//! The simple (Elman) RNN cell.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::{CellKind, GateWeights, RecurrentBackend, RecurrentCell};
use crate::Result;
use crate::activation::Activation;

/// Simple RNN cell: `h' = act(x Wᵢₕ + bᵢₕ + h Wₕₕ + bₕₕ)` with `act` tanh (default), ReLU,
/// sigmoid or leaky ReLU. Built by [`RnnConfig`](super::RnnConfig) or
/// [`from_weights`](Self::from_weights).
#[derive(Module, Debug)]
pub struct RnnCell<B: Backend> {
    /// Weights `[I, H]`, `[H, H]` and biases `[H]`.
    pub weights: GateWeights<B>,
    /// The output activation.
    #[module(skip)]
    pub activation: Activation,
}

impl<B: RecurrentBackend> RnnCell<B> {
    /// A cell from given weights (`weight_ih` `[I, H]`, `weight_hh` `[H, H]`, biases `[H]`).
    pub fn from_weights(
        weight_ih: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
        bias_ih: Option<Tensor<B, 1>>,
        bias_hh: Option<Tensor<B, 1>>,
        activation: Activation,
    ) -> Result<Self> {
        activation.validate()?;
        Ok(Self {
            weights: GateWeights::new(1, weight_ih, weight_hh, bias_ih, bias_hh)?,
            activation,
        })
    }
}

impl<B: RecurrentBackend> RecurrentCell<B> for RnnCell<B> {
    const GATES: usize = 1;
    const HAS_CELL_STATE: bool = false;

    fn weights(&self) -> &GateWeights<B> {
        &self.weights
    }

    fn kind(&self) -> CellKind {
        CellKind::Rnn {
            activation: self.activation,
        }
    }
}

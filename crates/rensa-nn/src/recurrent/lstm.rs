//! The LSTM cell.

use burn::module::Module;
use burn::tensor::{Tensor, backend::Backend};

use super::{
    CellState, Differentiation, GateWeights, Recurrence, RecurrentBackend, RecurrentCell, plain,
};
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

    fn step(&self, input: Tensor<B, 2>, state: CellState<B>) -> CellState<B> {
        self.check_state(&state, input.dims()[0]);
        let xw = self
            .weights
            .project_step(input, self.weights.folded_bias(0));
        let c = state.cell.expect("checked: an LSTM state has a cell");
        let (hidden, cell) = plain::lstm_step(xw, state.hidden, c, self.weights.weight_hh.val());
        CellState {
            hidden,
            cell: Some(cell),
        }
    }

    fn sequence(
        &self,
        input: Tensor<B, 3>,
        state: CellState<B>,
        mask: Option<Tensor<B, 2>>,
        reverse: bool,
        differentiation: Differentiation,
    ) -> (Tensor<B, 3>, CellState<B>) {
        self.check_state(&state, input.dims()[0]);
        let projected = self
            .weights
            .project(input, self.weights.folded_bias(0), differentiation);
        let seq = Recurrence {
            projected,
            mask,
            reverse,
            differentiation,
        };
        let c0 = state.cell.expect("checked: an LSTM state has a cell");
        let (out, hidden, cell) =
            B::lstm_recurrence(seq, state.hidden, c0, self.weights.weight_hh.val());
        (
            out,
            CellState {
                hidden,
                cell: Some(cell),
            },
        )
    }
}

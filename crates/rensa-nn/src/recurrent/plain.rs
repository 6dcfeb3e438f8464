//! One step of each cell written with ordinary tensor ops on any backend: what the cells' step
//! API runs, and what the reference recurrences of [`tape`](super::tape) (the provided
//! implementations of [`RecurrentBackend`](super::RecurrentBackend)) unroll over time.

use burn::tensor::{Tensor, backend::Backend};

use super::sequence::{CellKind, CellState, RecurrentWeights};
use crate::activation::{Activation, sigmoid};

/// Splits `[batch, k·H]` into `k` tensors `[batch, H]`.
fn split_gates<B: Backend, const K: usize>(gates: Tensor<B, 2>) -> [Tensor<B, 2>; K] {
    let h = gates.dims()[1] / K;
    core::array::from_fn(|k| gates.clone().narrow(1, k * h, h))
}

/// The activated gates `[i, f, g, o]` (`[batch, H]` each) of one LSTM step from the step's
/// input projection `xw` (`[batch, 4H]`).
pub fn lstm_gates<B: Backend>(
    xw: Tensor<B, 2>,
    h: Tensor<B, 2>,
    weight_hh: Tensor<B, 2>,
) -> [Tensor<B, 2>; 4] {
    let gates = xw + h.matmul(weight_hh); // [batch, 4H]
    // Activate all gates at once and pick the parts: fewer (tracked) ops than activating
    // each slice, which is what dominates at small sizes.
    let hidden = gates.dims()[1] / 4;
    let s = sigmoid(gates.clone()); // [batch, 4H]: i, f, o are used
    [
        s.clone().narrow(1, 0, hidden),
        s.clone().narrow(1, hidden, hidden),
        gates.narrow(1, 2 * hidden, hidden).tanh(),
        s.narrow(1, 3 * hidden, hidden),
    ]
}

/// One LSTM step from the step's input projection `xw` (`[batch, 4H]`): the new `h` and `c`.
pub fn lstm_step<B: Backend>(
    xw: Tensor<B, 2>,
    h: Tensor<B, 2>,
    c: Tensor<B, 2>,
    weight_hh: Tensor<B, 2>,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let [i, f, g, o] = lstm_gates(xw, h, weight_hh);
    let c = f * c + i * g;
    let h = o * c.clone().tanh();
    (h, c)
}

/// One simple-RNN step.
pub fn rnn_step<B: Backend>(
    xw: Tensor<B, 2>,
    h: Tensor<B, 2>,
    weight_hh: Tensor<B, 2>,
    activation: Activation,
) -> Tensor<B, 2> {
    activation.forward(xw + h.matmul(weight_hh))
}

/// A GRU step's gates: what the step computes before mixing `h' = n + z ⊙ (h − n)`, and what
/// a hand-written backward pass keeps.
#[derive(Clone, Debug)]
pub struct GruGates<B: Backend> {
    /// Reset gate `r`, `[batch, H]`.
    pub r: Tensor<B, 2>,
    /// Update gate `z`, `[batch, H]`.
    pub z: Tensor<B, 2>,
    /// Candidate `n`, `[batch, H]`.
    pub n: Tensor<B, 2>,
    /// Reset-after form only: the recurrent part of the candidate, `h Wₕₙ + bₕₙ`.
    pub hn: Option<Tensor<B, 2>>,
}

impl<B: Backend> GruGates<B> {
    /// The state after the step from the state `h` before it: `h' = (1 − z) ⊙ n + z ⊙ h`.
    pub fn next_state(&self, h: Tensor<B, 2>) -> Tensor<B, 2> {
        self.n.clone() + self.z.clone() * (h - self.n.clone())
    }
}

/// The gates of one GRU step (see [`CellKind::Gru`] for the two forms).
/// `xw` is `[batch, 3H]`.
pub fn gru_gates<B: Backend>(
    xw: Tensor<B, 2>,
    h: Tensor<B, 2>,
    weight_hh: Tensor<B, 2>,
    bias_hn: Option<Tensor<B, 1>>,
    reset_after: bool,
) -> GruGates<B> {
    let hidden = h.dims()[1];
    let [x_rz, x_n] = [
        xw.clone().narrow(1, 0, 2 * hidden),
        xw.narrow(1, 2 * hidden, hidden),
    ];
    if reset_after {
        let hw = h.matmul(weight_hh); // [batch, 3H]
        let rz = sigmoid(x_rz + hw.clone().narrow(1, 0, 2 * hidden));
        let [r, z] = split_gates::<B, 2>(rz);
        let mut hn = hw.narrow(1, 2 * hidden, hidden); // [batch, H]
        if let Some(b) = bias_hn {
            hn = hn + b.unsqueeze();
        }
        let n = (x_n + r.clone() * hn.clone()).tanh();
        GruGates {
            r,
            z,
            n,
            hn: Some(hn),
        }
    } else {
        let w_rz = weight_hh.clone().narrow(1, 0, 2 * hidden); // [H, 2H]
        let w_n = weight_hh.narrow(1, 2 * hidden, hidden); // [H, H]
        let rz = sigmoid(x_rz + h.clone().matmul(w_rz));
        let [r, z] = split_gates::<B, 2>(rz);
        let n = (x_n + (r.clone() * h).matmul(w_n)).tanh();
        GruGates { r, z, n, hn: None }
    }
}

/// One step of a cell of kind `cell` from the step's input projection `xw` (`[batch, G·H]`,
/// foldable biases added): the state after the step.
pub fn step<B: Backend>(
    cell: CellKind,
    xw: Tensor<B, 2>,
    state: CellState<B>,
    weights: RecurrentWeights<B>,
) -> CellState<B> {
    let RecurrentWeights { weight_hh, bias_hn } = weights;
    match cell {
        CellKind::Rnn { activation } => CellState {
            hidden: rnn_step(xw, state.hidden, weight_hh, activation),
            cell: None,
        },
        CellKind::Lstm => {
            let c = state.cell.expect("an LSTM state has a memory cell");
            let (hidden, c) = lstm_step(xw, state.hidden, c, weight_hh);
            CellState {
                hidden,
                cell: Some(c),
            }
        }
        CellKind::Gru { reset_after } => CellState {
            hidden: gru_gates(xw, state.hidden.clone(), weight_hh, bias_hn, reset_after)
                .next_state(state.hidden),
            cell: None,
        },
    }
}

//! What a recurrence is, independent of the backend that runs it: the kind of cell
//! ([`CellKind`]), its time-major inputs ([`Recurrence`]), its recurrent parameters
//! ([`RecurrentWeights`]), the state it carries ([`CellState`]), how autodiff differentiates it
//! ([`Differentiation`]), and the two tensor operations the reference path needs from a backend
//! ([`SequenceOps`]). The reference path ([`plain`](super::plain), [`tape`](super::tape)) and the
//! backend trait ([`RecurrentBackend`](super::RecurrentBackend)) both build on this module, which
//! builds on neither.

use burn::config::Config;
use burn::tensor::{Tensor, backend::Backend};

use crate::activation::Activation;

/// The kind of cell a recurrence runs, with the settings its gate math needs. Every backend
/// matches on it once per method.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CellKind {
    /// Simple RNN: `h' = act(xₜWᵢₕ + b + h Wₕₕ)`; `Wₕₕ` is `[H, H]`.
    Rnn {
        /// The output activation.
        activation: Activation,
    },
    /// LSTM with gate order (i, f, g, o); `Wₕₕ` is `[H, 4H]`; the state has a memory cell.
    Lstm,
    /// GRU with gate order (r, z, n); `Wₕₕ` is `[H, 3H]`. `reset_after` selects the
    /// cuDNN/PyTorch form `n = tanh(xWₙ + r ⊙ (hWₕₙ + b_hn))`; otherwise the original form
    /// `n = tanh(xWₙ + (r ⊙ h)Wₕₙ)`.
    Gru {
        /// Apply the reset gate after the recurrent matmul.
        reset_after: bool,
    },
}

impl CellKind {
    /// Fused gates: RNN 1, LSTM 4, GRU 3.
    pub const fn gates(&self) -> usize {
        match self {
            CellKind::Rnn { .. } => 1,
            CellKind::Lstm => 4,
            CellKind::Gru { .. } => 3,
        }
    }

    /// Whether the state has an LSTM memory cell.
    pub const fn has_cell_state(&self) -> bool {
        matches!(self, CellKind::Lstm)
    }

    /// How many trailing gates of the recurrent bias `bₕₕ` cannot be folded into the input
    /// projection: the candidate's in the reset-after GRU (it is multiplied by `r`), else none.
    pub const fn unfoldable_bias_gates(&self) -> usize {
        match self {
            CellKind::Gru { reset_after: true } => 1,
            _ => 0,
        }
    }
}

/// The input sequence of one recurrence and how to run it over time (part of a
/// [`RecurrenceCall`]).
#[derive(Clone, Debug)]
pub struct Recurrence<B: Backend> {
    /// Input projections for all steps with the foldable biases added, `[batch, time, G·H]`
    /// (G gates of H units, in the cell's gate order).
    pub projected: Tensor<B, 3>,
    /// `1.0` where a step belongs to its sequence and `0.0` on padding, `[batch, time]`; `None`
    /// when every sequence has the full length.
    pub mask: Option<Tensor<B, 2>>,
    /// Run from the last step to the first (the backward direction of a bidirectional layer).
    pub reverse: bool,
    /// How `Autodiff` differentiates the recurrence (inner backends ignore it).
    pub differentiation: Differentiation,
}

/// One recurrence to run: what [`RecurrentBackend::recurrence`](super::RecurrentBackend::recurrence)
/// and [`forward_tape`](super::RecurrentBackend::forward_tape) receive.
#[derive(Clone, Debug)]
pub struct RecurrenceCall<B: Backend> {
    /// The cell that runs each step.
    pub cell: CellKind,
    /// The projected inputs, the mask and the direction.
    pub seq: Recurrence<B>,
    /// The state before the first processed step.
    pub state: CellState<B>,
    /// The recurrent weights.
    pub weights: RecurrentWeights<B>,
}

/// The recurrent parameters of a recurrence: `Wₕₕ` (`[H, G·H]`) and, for the reset-after GRU
/// with a recurrent bias, the candidate's recurrent bias `bₕₙ` (`[H]`), the one bias that cannot
/// be folded into the input projection.
#[derive(Clone, Debug)]
pub struct RecurrentWeights<B: Backend> {
    /// `Wₕₕ`, `[H, G·H]`.
    pub weight_hh: Tensor<B, 2>,
    /// `bₕₙ`, `[H]` (reset-after GRU only).
    pub bias_hn: Option<Tensor<B, 1>>,
}

/// The state a cell carries from one step to the next.
#[derive(Clone, Debug)]
pub struct CellState<B: Backend> {
    /// Hidden state (also the cell's output), `[batch, hidden]`.
    pub hidden: Tensor<B, 2>,
    /// LSTM memory cell, `[batch, hidden]`; `None` for the simple RNN and the GRU.
    pub cell: Option<Tensor<B, 2>>,
}

/// How autodiff differentiates a recurrence: a choice of each layer (its config's
/// `differentiation` field, [`Recurrent::with_differentiation`](super::Recurrent::with_differentiation)),
/// so that two models in one process can differ. Both give the same gradients.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Differentiation {
    /// Each recurrence (one layer, one direction, the whole sequence) is a single graph node
    /// whose backward pass is the hand-written BPTT over its tape, on the native kernels of
    /// ndarray and wgpu; the input projection is one node on the backend's GEMM.
    Fused,
    /// Every step's tensor operations are recorded and burn's autodiff differentiates them
    /// (for teaching and checking).
    Plain,
}

// Written out: burn's `Config` derive does not let `#[derive(Default)]` see `#[default]`.
#[allow(clippy::derivable_impls)]
impl Default for Differentiation {
    fn default() -> Self {
        Self::Fused
    }
}

/// The two tensor operations the reference recurrences need beyond burn's, which `Autodiff`
/// implements with graph nodes of its own. Every backend rensa supports implements it (the
/// provided methods serve all but `Autodiff`).
pub trait SequenceOps: Backend {
    /// Whether autodiff tracks `tensor`: a leaf that requires gradients, or anything computed
    /// from one. (burn's `is_require_grad` is true for leaves only.)
    fn is_tracked<const D: usize>(tensor: &Tensor<Self, D>) -> bool {
        tensor.is_require_grad()
    }

    /// Splits `[batch, time, F]` into `time` tensors `[batch, F]`. Under `Autodiff` this is a
    /// single graph node, whose backward assembles the per-step gradients once instead of
    /// writing a full-size zero tensor for every step as a per-step `slice` would.
    fn unstack_time(x: Tensor<Self, 3>) -> Vec<Tensor<Self, 2>> {
        let [batch, _, features] = x.dims();
        x.swap_dims(0, 1)
            .iter_dim(0)
            .map(|step| step.reshape([batch, features]))
            .collect()
    }
}

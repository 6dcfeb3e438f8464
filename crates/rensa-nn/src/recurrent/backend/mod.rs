//! The seam between recurrent layers and the code that runs a recurrence over time.
//!
//! [`RecurrentBackend`] is a backend extension trait (burn's custom-kernel pattern): layers and
//! models are generic over it, and each backend may override how a whole sequence is run. A cell
//! is described by its [`CellKind`](super::CellKind), so the trait has one method per job, whatever the cell:
//! [`recurrence`](RecurrentBackend::recurrence) (inference),
//! [`forward_tape`](RecurrentBackend::forward_tape) and
//! [`backward_tape`](RecurrentBackend::backward_tape) (training: `Autodiff` builds its one-node
//! recurrence from this pair), and [`dense`](RecurrentBackend::dense) (the input projection).
//! The provided methods run the reference recurrences of [`tape`](super::tape) with ordinary
//! tensor ops; a backend with a fused kernel overrides them, matching on the kind once, without
//! any change to layers or models.
//!
//! Every recurrence receives the input projection of **all** time steps (one matmul done by the
//! cell, biases folded in), so a step does only the recurrent matmul and the pointwise gate math.
//!
//! Masking semantics shared by every implementation: on a padded step the state is carried over
//! unchanged and the output is zero, so final states are those of each sequence's own last step
//! (in the reverse direction, the state stays at its initial value through the padding and the
//! sequence starts at its own last step). Every method returns the outputs `[batch, time, H]` in
//! time order (also when `reverse`) and the final state.

mod autodiff;

use burn::tensor::Tensor;

use super::sequence::{CellState, Differentiation, RecurrenceCall, SequenceOps};
use super::tape::{self, BackwardCall, Tape, TapeGrads};

/// How a backend runs recurrences over time; see the [module docs](self).
pub trait RecurrentBackend: SequenceOps {
    /// A recurrence (`call.cell` over `call.seq` from `call.state`): the outputs and the final
    /// state.
    fn recurrence(call: RecurrenceCall<Self>) -> (Tensor<Self, 3>, CellState<Self>) {
        tape::recurrence(call)
    }

    /// [`recurrence`](Self::recurrence) keeping a [`Tape`] (the gates and states of every step,
    /// as the course's `LSTM.cache`) for [`backward_tape`](Self::backward_tape).
    fn forward_tape(call: RecurrenceCall<Self>) -> (Tensor<Self, 3>, CellState<Self>, Tape<Self>) {
        tape::forward(call)
    }

    /// The hand-written backward pass over a tape made by
    /// [`forward_tape`](Self::forward_tape) of the same backend.
    fn backward_tape(call: BackwardCall<Self>) -> TapeGrads<Self> {
        tape::backward(call)
    }

    /// `a · b` for `[m, k] × [k, n]`: the input projection of all steps at once (and, under
    /// `Autodiff`, its two gradient products). The provided version is burn's `matmul`; a backend
    /// with a faster GEMM for these tall products overrides it. `differentiation` matters to
    /// `Autodiff` only: [`Differentiation::Plain`] records a plain `matmul`.
    fn dense(
        a: Tensor<Self, 2>,
        b: Tensor<Self, 2>,
        differentiation: Differentiation,
    ) -> Tensor<Self, 2> {
        let _ = differentiation;
        a.matmul(b)
    }
}

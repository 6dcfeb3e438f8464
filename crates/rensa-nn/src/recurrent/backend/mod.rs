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
//! The trait also carries the one attention score that is costly in tensor ops,
//! [`additive_scores`](RecurrentBackend::additive_scores) (Bahdanau's and Luong's concat score
//! over all query-key pairs), for the same reason: one fused kernel instead of four tensors of
//! `[batch, queries, keys, units]`.
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

    /// `tanh` of every element, with `tanh' = 1 − tanh²` as its derivative. The provided
    /// version is burn's `tanh`; ndarray overrides it with rensa's vectorised one (burn-ndarray
    /// computes an f32 `tanh` in f64, one element at a time), `Autodiff` with one node whose
    /// backward pass reads the output (with [`Differentiation::Plain`], burn's `tanh`).
    fn tanh<const D: usize>(x: Tensor<Self, D>, how: Differentiation) -> Tensor<Self, D> {
        let _ = how;
        x.tanh()
    }

    /// The additive attention score of every query against every key,
    /// `s[b,i,j] = Σₐ vₐ·tanh(q[b,i,a] + k[b,j,a])` ([`AdditiveScore`]):
    /// `[batch, queries, keys]`. The provided version is [`additive_scores_reference`];
    /// `Autodiff` makes it one node whose backward pass is
    /// [`additive_scores_backward`](Self::additive_scores_backward) (with
    /// [`Differentiation::Plain`] it records the reference's tensor ops instead).
    fn additive_scores(score: AdditiveScore<Self>, how: Differentiation) -> Tensor<Self, 3> {
        let _ = how;
        additive_scores_reference(score)
    }

    /// The gradients of [`additive_scores`](Self::additive_scores) from the scores' gradient `d`
    /// `[batch, queries, keys]`. The provided version is
    /// [`additive_scores_backward_reference`].
    fn additive_scores_backward(
        score: AdditiveScore<Self>,
        d: Tensor<Self, 3>,
    ) -> AdditiveScore<Self> {
        additive_scores_backward_reference(score, d)
    }
}

/// The inputs of an additive attention score, or (from a backward pass) their gradients.
#[derive(Clone, Debug)]
pub struct AdditiveScore<B: burn::tensor::backend::Backend> {
    /// The projected queries `q`, `[batch, queries, A]`.
    pub queries: Tensor<B, 3>,
    /// The projected keys `k`, `[batch, keys, A]`.
    pub keys: Tensor<B, 3>,
    /// `v`, `[A]`.
    pub v: Tensor<B, 1>,
}

/// `tanh(q[b,i,·] + k[b,j,·])` of every pair as a `[batch, queries, keys, A]` tensor.
fn additive_hidden<B: burn::tensor::backend::Backend>(
    q: Tensor<B, 3>,
    k: Tensor<B, 3>,
) -> Tensor<B, 4> {
    (q.unsqueeze_dim::<4>(2) + k.unsqueeze_dim::<4>(1)).tanh()
}

/// [`RecurrentBackend::additive_scores`] with tensor ops: `tanh` of the broadcast sum
/// `[batch, queries, keys, A]`, then one product with `v`.
pub fn additive_scores_reference<B: burn::tensor::backend::Backend>(
    score: AdditiveScore<B>,
) -> Tensor<B, 3> {
    let AdditiveScore { queries, keys, v } = score;
    let [b, t, a] = queries.dims();
    let s = keys.dims()[1];
    additive_hidden(queries, keys)
        .reshape([b, t * s, a])
        .matmul(v.reshape([1, a, 1]))
        .reshape([b, t, s])
}

/// [`RecurrentBackend::additive_scores_backward`] with tensor ops: with `h = tanh(q + k)` and
/// `g = d ⊙ v ⊙ (1 − h²)` over `[batch, queries, keys, A]`, `∂q = Σⱼ g`, `∂k = Σᵢ g` and
/// `∂v = Σ d ⊙ h`.
pub fn additive_scores_backward_reference<B: burn::tensor::backend::Backend>(
    score: AdditiveScore<B>,
    d: Tensor<B, 3>,
) -> AdditiveScore<B> {
    let AdditiveScore { queries, keys, v } = score;
    let [b, t, a] = queries.dims();
    let s = keys.dims()[1];
    let h = additive_hidden(queries, keys);
    let d = d.unsqueeze_dim::<4>(3);
    let d_v = (d.clone() * h.clone())
        .reshape([b * t * s, a])
        .sum_dim(0)
        .reshape([a]);
    let g = d * v.reshape([1, 1, 1, a]) * (h.clone() * h).neg().add_scalar(1.0);
    AdditiveScore {
        queries: g.clone().sum_dim(2).reshape([b, t, a]),
        keys: g.sum_dim(1).reshape([b, s, a]),
        v: d_v,
    }
}

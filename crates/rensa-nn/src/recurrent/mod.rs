//! Recurrent networks: simple RNN, LSTM and GRU cells with fused gate weights, and a sequence
//! layer over any of them ([`Recurrent`]: stacked, bidirectional, masked).
//!
//! - A **cell** ([`RnnCell`], [`LstmCell`], [`GruCell`]) has a single-step API
//!   ([`RecurrentCell::zero_state`], [`RecurrentCell::step`]) and a whole-sequence one
//!   ([`RecurrentCell::sequence`]) on the same weights.
//! - The **layer** ([`Rnn`], [`Lstm`], [`Gru`]) takes batch-first input `[batch, time, features]`,
//!   optional per-sequence lengths (right padding) and an optional initial state, and returns
//!   every output plus the final state of every layer and direction.
//! - How a sequence is run over time is the backend's business ([`RecurrentBackend`]); the
//!   default runs plain tensor ops: one matmul for the input projection of all steps, then per step
//!   one recurrent matmul and the gate math. burn's ndarray backend runs native loops instead
//!   (the `cpu` module, with the `ndarray` feature: one GEMM and one fused pointwise pass per step);
//!   burn's wgpu backends (CubeCL, and fusion over it) run CubeCL kernels (the `cube` module, with
//!   the `wgpu` feature: each step's recurrent matmul and gate math in one kernel, the whole
//!   sequence in one launch for hidden sizes up to 256, and the backward pass in one launch).
//! - Under `Autodiff`, each recurrence (one layer, one direction, the whole sequence) is **one**
//!   graph node: the forward pass keeps a [`Tape`] (the gates and states, as the course's
//!   `LSTM.cache`) and the backward pass is the hand-written BPTT ([`tape`], or the native kernels
//!   on ndarray and wgpu). A layer built with [`Differentiation::Plain`] records every step's ops instead, for
//!   teaching and checking; both give the same gradients.
//!
//! Weight layout is burn's `[in, out]`; gates are fused side by side (`[I, G·H]`, `[H, G·H]`) in
//! PyTorch's order: LSTM (i, f, g, o), GRU (r, z, n). To import PyTorch weights, transpose
//! `weight_ih_l0`/`weight_hh_l0`; Keras's `kernel`/`recurrent_kernel` already have this layout
//! (Keras's GRU order is z, r, n: swap the first two blocks).

mod backend;
mod cell;
#[cfg(feature = "ndarray")]
pub(crate) mod cpu;
#[cfg(feature = "wgpu")]
pub mod cube;
mod gru;
pub(crate) mod layer;
mod lstm;
#[cfg(feature = "ndarray")]
mod ndarray_impl;
pub mod plain;
mod rnn;
mod sequence;
pub mod tape;

pub use backend::{
    AdamStep, AdditiveScore, DenseLayer, RecurrentBackend, Window, adam_step_reference,
    additive_scores_backward_reference, additive_scores_reference,
    bernoulli_nll_backward_reference, bernoulli_nll_reference, dense_layer_backward_reference,
    dense_layer_reference, fold_reference, unfold_reference,
};
pub use cell::{GateWeights, RecurrentCell};
pub use gru::GruCell;
pub use layer::{
    Gru, GruConfig, Lstm, LstmConfig, MergeMode, Recurrent, RecurrentConfig, RecurrentState, Rnn,
    RnnConfig, SequenceInput, SequenceOutput, length_mask,
};
pub use lstm::LstmCell;
pub use rnn::RnnCell;
pub use sequence::{
    CellKind, CellState, Differentiation, Recurrence, RecurrenceCall, RecurrentWeights, SequenceOps,
};
pub use tape::{BackwardCall, SavedStep, Tape, TapeData, TapeGrads, Upstream};

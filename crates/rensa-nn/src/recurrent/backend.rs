//! The seam between recurrent layers and the code that runs a recurrence over time.
//!
//! [`RecurrentBackend`] is a backend extension trait (burn's custom-kernel pattern): layers and
//! models are generic over it, and each backend may override how a whole sequence is run. The
//! provided methods run the recurrence with ordinary tensor ops ([`plain`]); a backend that has
//! a fused kernel overrides them without any change to layers or models.
//!
//! Every recurrence receives the input projection of **all** time steps (one matmul done by the
//! cell, biases folded in), so a step does only the recurrent matmul and the pointwise gate math.
//! Per-step inputs come from [`RecurrentBackend::unstack_time`], whose autodiff version is a
//! single graph node: its backward assembles the per-step gradients once, instead of writing a
//! full-size zero tensor for every step as a per-step `slice` would.

use burn::config::Config;
use burn::tensor::{Tensor, backend::Backend};

use super::tape::{self, Tape, TapeGrads, Upstream};
use crate::activation::Activation;

/// The time-major work of one recurrence: what every `*_recurrence` method receives.
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

impl Default for Differentiation {
    fn default() -> Self {
        Self::Fused
    }
}

/// Masking semantics shared by every implementation: on a padded step the state is carried over
/// unchanged and the output is zero, so final states are those of each sequence's own last step
/// (in the reverse direction, the state stays at its initial value through the padding and the
/// sequence starts at its own last step).
///
/// Every method returns the outputs `[batch, time, H]` in time order (also when `reverse`) and
/// the final state(s) `[batch, H]`.
pub trait RecurrentBackend: Backend {
    /// Simple RNN: `h' = act(xₜWᵢₕ + b + h Wₕₕ)`. `weight_hh` is `[H, H]`.
    fn rnn_recurrence(
        seq: Recurrence<Self>,
        h0: Tensor<Self, 2>,
        weight_hh: Tensor<Self, 2>,
        activation: Activation,
    ) -> (Tensor<Self, 3>, Tensor<Self, 2>) {
        plain::rnn(seq, h0, weight_hh, activation)
    }

    /// LSTM with gate order (i, f, g, o); `weight_hh` is `[H, 4H]`. Returns outputs, `h`, `c`.
    fn lstm_recurrence(
        seq: Recurrence<Self>,
        h0: Tensor<Self, 2>,
        c0: Tensor<Self, 2>,
        weight_hh: Tensor<Self, 2>,
    ) -> (Tensor<Self, 3>, Tensor<Self, 2>, Tensor<Self, 2>) {
        plain::lstm(seq, h0, c0, weight_hh)
    }

    /// GRU with gate order (r, z, n); `weight_hh` is `[H, 3H]`.
    ///
    /// `reset_after` selects the cuDNN/PyTorch form `n = tanh(xWₙ + r ⊙ (hWₕₙ + b_hn))`; otherwise
    /// the original form `n = tanh(xWₙ + (r ⊙ h)Wₕₙ)`. `bias_hn` (`[H]`) is the recurrent bias of
    /// the candidate, which only the reset-after form cannot fold into the projection.
    fn gru_recurrence(
        seq: Recurrence<Self>,
        h0: Tensor<Self, 2>,
        weight_hh: Tensor<Self, 2>,
        bias_hn: Option<Tensor<Self, 1>>,
        reset_after: bool,
    ) -> (Tensor<Self, 3>, Tensor<Self, 2>) {
        plain::gru(seq, h0, weight_hh, bias_hn, reset_after)
    }

    /// `a · b` for `[m, k] × [k, n]`: the input projection of all steps at once (and, under
    /// `Autodiff`, its two gradient products). The provided version is burn's `matmul`; a backend
    /// with a faster GEMM for these tall products overrides it.
    /// `differentiation` matters to `Autodiff` only: [`Differentiation::Plain`] records a
    /// plain `matmul`.
    fn dense(
        a: Tensor<Self, 2>,
        b: Tensor<Self, 2>,
        differentiation: Differentiation,
    ) -> Tensor<Self, 2> {
        let _ = differentiation;
        a.matmul(b)
    }

    /// [`rnn_recurrence`](Self::rnn_recurrence) keeping a [`Tape`] for
    /// [`rnn_backward_tape`](Self::rnn_backward_tape). `Autodiff` builds its one-node recurrence
    /// from this pair; the provided versions use tensor ops ([`tape`](super::tape)).
    fn rnn_forward_tape(
        seq: Recurrence<Self>,
        h0: Tensor<Self, 2>,
        weight_hh: Tensor<Self, 2>,
        activation: Activation,
    ) -> (Tensor<Self, 3>, Tensor<Self, 2>, Tape<Self>) {
        tape::rnn_forward(seq, h0, weight_hh, activation)
    }

    /// The simple RNN's hand-written backward pass over a tape.
    fn rnn_backward_tape(
        tape: Tape<Self>,
        weight_hh: Tensor<Self, 2>,
        activation: Activation,
        up: Upstream<Self>,
    ) -> TapeGrads<Self> {
        tape::rnn_backward(tape, weight_hh, activation, up)
    }

    /// [`lstm_recurrence`](Self::lstm_recurrence) keeping a [`Tape`] (the course's
    /// `LSTM.cache` for every step).
    fn lstm_forward_tape(
        seq: Recurrence<Self>,
        h0: Tensor<Self, 2>,
        c0: Tensor<Self, 2>,
        weight_hh: Tensor<Self, 2>,
    ) -> (
        Tensor<Self, 3>,
        Tensor<Self, 2>,
        Tensor<Self, 2>,
        Tape<Self>,
    ) {
        tape::lstm_forward(seq, h0, c0, weight_hh)
    }

    /// The LSTM's hand-written backward pass over a tape (the course's `LSTM.backward`).
    fn lstm_backward_tape(
        tape: Tape<Self>,
        weight_hh: Tensor<Self, 2>,
        up: Upstream<Self>,
    ) -> TapeGrads<Self> {
        tape::lstm_backward(tape, weight_hh, up)
    }

    /// [`gru_recurrence`](Self::gru_recurrence) keeping a [`Tape`].
    fn gru_forward_tape(
        seq: Recurrence<Self>,
        h0: Tensor<Self, 2>,
        weight_hh: Tensor<Self, 2>,
        bias_hn: Option<Tensor<Self, 1>>,
        reset_after: bool,
    ) -> (Tensor<Self, 3>, Tensor<Self, 2>, Tape<Self>) {
        tape::gru_forward(seq, h0, weight_hh, bias_hn, reset_after)
    }

    /// The GRU's hand-written backward pass over a tape. `has_bias_hn`: whether the forward pass
    /// had a candidate recurrent bias (whose gradient is then returned).
    fn gru_backward_tape(
        tape: Tape<Self>,
        weight_hh: Tensor<Self, 2>,
        reset_after: bool,
        has_bias_hn: bool,
        up: Upstream<Self>,
    ) -> TapeGrads<Self> {
        tape::gru_backward(tape, weight_hh, reset_after, has_bias_hn, up)
    }

    /// Whether autodiff tracks `tensor`: a leaf that requires gradients, or anything computed from
    /// one. (burn's `is_require_grad` is true for leaves only.)
    fn is_tracked<const D: usize>(tensor: &Tensor<Self, D>) -> bool {
        tensor.is_require_grad()
    }

    /// Splits `[batch, time, F]` into `time` tensors `[batch, F]`.
    fn unstack_time(x: Tensor<Self, 3>) -> Vec<Tensor<Self, 2>> {
        let [batch, _, features] = x.dims();
        x.swap_dims(0, 1)
            .iter_dim(0)
            .map(|step| step.reshape([batch, features]))
            .collect()
    }
}

/// The recurrences written with ordinary tensor ops: the provided implementations of
/// [`RecurrentBackend`], public so that an overriding backend can fall back to them and tests can
/// compare against them.
pub mod plain {
    use super::*;
    use crate::activation::sigmoid;

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

    /// The gates of one GRU step (see [`RecurrentBackend::gru_recurrence`] for the two forms).
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

    /// One GRU step (see [`RecurrentBackend::gru_recurrence`] for the two forms). `xw` is
    /// `[batch, 3H]`.
    pub fn gru_step<B: Backend>(
        xw: Tensor<B, 2>,
        h: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
        bias_hn: Option<Tensor<B, 1>>,
        reset_after: bool,
    ) -> Tensor<B, 2> {
        let GruGates { z, n, .. } = gru_gates(xw, h.clone(), weight_hh, bias_hn, reset_after);
        // h' = (1 − z) ⊙ n + z ⊙ h
        n.clone() + z * (h - n)
    }

    /// [`RecurrentBackend::rnn_recurrence`] with ordinary tensor ops (the taped forward pass of
    /// [`tape`](super::tape), its tape dropped).
    pub fn rnn<B: RecurrentBackend>(
        seq: Recurrence<B>,
        h0: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
        activation: Activation,
    ) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let (out, h, _) = tape::rnn_forward(seq, h0, weight_hh, activation);
        (out, h)
    }

    /// [`RecurrentBackend::lstm_recurrence`] with ordinary tensor ops.
    pub fn lstm<B: RecurrentBackend>(
        seq: Recurrence<B>,
        h0: Tensor<B, 2>,
        c0: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, Tensor<B, 2>, Tensor<B, 2>) {
        let (out, h, c, _) = tape::lstm_forward(seq, h0, c0, weight_hh);
        (out, h, c)
    }

    /// [`RecurrentBackend::gru_recurrence`] with ordinary tensor ops.
    pub fn gru<B: RecurrentBackend>(
        seq: Recurrence<B>,
        h0: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
        bias_hn: Option<Tensor<B, 1>>,
        reset_after: bool,
    ) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let (out, h, _) = tape::gru_forward(seq, h0, weight_hh, bias_hn, reset_after);
        (out, h)
    }
}

mod autodiff_impl {
    //! `Autodiff<B>`: the simple-RNN, LSTM and GRU recurrences are one graph node each with a
    //! hand-written backward pass; `unstack_time` is a custom node.
    use super::{Differentiation, RecurrentBackend, plain};
    use crate::activation::Activation;
    use crate::recurrent::tape::{Tape, TapeGrads, Upstream};
    use burn::backend::Autodiff;
    use burn::backend::autodiff::NodeId;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::tensor::backend::Backend;
    use burn::tensor::ops::FloatTensor;
    use burn::tensor::{DType, Shape, Tensor, TensorMetadata, TensorPrimitive};
    use std::sync::{Arc, Mutex};

    /// Gradients parked by [`Take`] nodes for the node they hang from, which reads these slots
    /// instead of a gradient of its own: the steps of `unstack_time`'s `Collect` node, or the
    /// results of a recurrence node (outputs, final `h`, then final `c` for the LSTM).
    type Slots<B> = Arc<Mutex<Vec<Option<FloatTensor<B>>>>>;

    /// Identity node in front of the per-step `Take` nodes; its backward assembles their
    /// gradients into one `[batch, time, F]` gradient (zeros for steps that received none).
    #[derive(Debug)]
    struct Collect;

    /// An identity on one part of its parent's work (step `t` of the collected tensor, or result
    /// `t` of a recurrence); its backward parks the gradient in slot `t` of the parent's
    /// [`Slots`].
    ///
    /// This is how a node gets several outputs: a burn graph node has one, so the parent outputs
    /// a placeholder and each real output is a `Take` child of it. The parent's backward pass
    /// runs after its children's and reads the slots; nothing is registered for the placeholder.
    #[derive(Debug)]
    struct Take;

    impl<B: Backend> Backward<B, 1> for Collect {
        type State = (Slots<B>, [usize; 3], B::Device, DType);

        fn backward(
            self,
            ops: Ops<Self::State, 1>,
            _grads_in: &mut Gradients,
            _: &mut Checkpointer,
        ) {
            let (slots, [batch, _, features], device, dtype) = ops.state;
            let grads = std::mem::take(&mut *slots.lock().expect("unstack gradient slots"));
            let [Some(parent)] = ops.parents else { return };
            let steps = grads
                .into_iter()
                .map(|g| {
                    let g = g.unwrap_or_else(|| {
                        B::float_zeros(Shape::new([batch, features]), &device, dtype.into())
                    });
                    B::float_reshape(g, Shape::new([batch, 1, features]))
                })
                .collect();
            _grads_in.register::<B>(parent.id, B::float_cat(steps, 1));
        }
    }

    impl<B: Backend> Backward<B, 1> for Take {
        type State = (Slots<B>, usize);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (slots, t) = ops.state;
            let grad = grads.consume::<B>(&ops.node);
            slots.lock().expect("unstack gradient slots")[t] = Some(grad);
        }
    }

    fn t2<B: Backend>(p: FloatTensor<B>) -> Tensor<B, 2> {
        Tensor::from_primitive(TensorPrimitive::Float(p))
    }

    fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
        t.into_primitive().tensor()
    }

    /// The upstream gradients of a recurrence from its [`Slots`]: zeros for a result that
    /// received none (e.g. the outputs of an encoder whose final state alone is used).
    fn upstream<B: Backend, X>(s: &NodeState<B, X>, cell_state: bool) -> Upstream<B> {
        let mut parked =
            std::mem::take(&mut *s.slots.lock().expect("recurrence gradient slots")).into_iter();
        let [batch, time, hidden] = s.dims;
        let device = B::float_device(&s.weight_hh);
        let dtype = s.weight_hh.dtype();
        let mut next = |shape: Shape| {
            let g = parked.next().flatten();
            g.unwrap_or_else(|| B::float_zeros(shape, &device, dtype.into()))
        };
        let d_output = next(Shape::new([batch, time, hidden]));
        let d_h = next(Shape::new([batch, hidden]));
        let d_c = cell_state.then(|| next(Shape::new([batch, hidden])));
        Upstream {
            d_output: Tensor::from_primitive(TensorPrimitive::Float(d_output)),
            d_h: t2(d_h),
            d_c: d_c.map(t2),
        }
    }

    /// Registers the gradients of a recurrence node's parents (in the order projected, h0, then
    /// c0 for the LSTM, weight, then the candidate bias for the GRU).
    fn register<B: Backend, const P: usize>(
        grads: &mut Gradients,
        parents: [Option<NodeId>; P],
        d: TapeGrads<B>,
    ) {
        let mut values: Vec<Option<FloatTensor<B>>> =
            vec![Some(prim(d.d_projected)), Some(prim(d.d_h0))];
        if let Some(dc) = d.d_c0 {
            values.push(Some(prim(dc)));
        }
        values.push(Some(prim(d.d_weight)));
        if P > values.len() {
            values.push(d.d_bias_hn.map(prim));
        }
        for (parent, value) in parents.into_iter().zip(values) {
            if let (Some(id), Some(v)) = (parent, value) {
                grads.register::<B>(id, v);
            }
        }
    }

    /// What every recurrence node keeps: the tape, the recurrent weights, the shape and where its
    /// results' [`Take`] nodes park their gradients.
    #[derive(Clone, Debug)]
    struct NodeState<B: Backend, X> {
        tape: Tape<B>,
        weight_hh: FloatTensor<B>,
        /// `[batch, time, H]`.
        dims: [usize; 3],
        slots: Slots<B>,
        /// The cell's own settings.
        extra: X,
    }

    /// The simple-RNN recurrence as one node; results: outputs, final `h`.
    #[derive(Debug)]
    struct RnnNode;

    /// The LSTM recurrence as one node; results: outputs, final `h`, final `c`.
    #[derive(Debug)]
    struct LstmNode;

    /// The GRU recurrence (either form) as one node; results: outputs, final `h`.
    #[derive(Debug)]
    struct GruNode;

    impl<B: RecurrentBackend> Backward<B, 3> for RnnNode {
        type State = NodeState<B, Activation>;

        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let s = ops.state;
            let up = upstream(&s, false);
            let d = B::rnn_backward_tape(s.tape, t2(s.weight_hh), s.extra, up);
            register(grads, ops.parents.map(|p| p.map(|p| p.id)), d);
        }
    }

    impl<B: RecurrentBackend> Backward<B, 4> for LstmNode {
        type State = NodeState<B, ()>;

        fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
            let s = ops.state;
            let up = upstream(&s, true);
            let d = B::lstm_backward_tape(s.tape, t2(s.weight_hh), up);
            register(grads, ops.parents.map(|p| p.map(|p| p.id)), d);
        }
    }

    impl<B: RecurrentBackend> Backward<B, 4> for GruNode {
        /// (reset_after, has a candidate bias)
        type State = NodeState<B, (bool, bool)>;

        fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
            let s = ops.state;
            let (reset_after, has_bias) = s.extra;
            let up = upstream(&s, false);
            let d = B::gru_backward_tape(s.tape, t2(s.weight_hh), reset_after, has_bias, up);
            register(grads, ops.parents.map(|p| p.map(|p| p.id)), d);
        }
    }

    /// `a · b` through the inner backend's [`RecurrentBackend::dense`], forward and backward.
    #[derive(Debug)]
    struct DenseNode;

    impl<B: RecurrentBackend> Backward<B, 2> for DenseNode {
        /// The two factors.
        type State = (FloatTensor<B>, FloatTensor<B>);

        /// `∂a = g · bᵀ`, `∂b = aᵀ · g`, each computed only when its factor is tracked.
        fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
            let (a, b) = ops.state;
            let g = t2::<B>(grads.consume::<B>(&ops.node));
            let [p_a, p_b] = ops.parents;
            if let Some(p) = p_a {
                grads.register::<B>(
                    p.id,
                    prim(B::dense(
                        g.clone(),
                        t2::<B>(b).transpose(),
                        Differentiation::Fused,
                    )),
                );
            }
            if let Some(p) = p_b {
                grads.register::<B>(
                    p.id,
                    prim(B::dense(t2::<B>(a).transpose(), g, Differentiation::Fused)),
                );
            }
        }
    }

    /// The inner-backend view of a recurrence's inputs.
    fn inner<B: RecurrentBackend, C: CheckpointStrategy>(
        seq: super::Recurrence<Autodiff<B, C>>,
    ) -> (super::Recurrence<B>, FloatTensor<Autodiff<B, C>>) {
        let projected = seq.projected.into_primitive().tensor();
        let seq = super::Recurrence {
            projected: Tensor::from_primitive(TensorPrimitive::Float(projected.primitive.clone())),
            mask: seq
                .mask
                .map(|m| t2::<B>(m.into_primitive().tensor().primitive)),
            reverse: seq.reverse,
            differentiation: seq.differentiation,
        };
        (seq, projected)
    }

    /// An autodiff tensor's value on the inner backend, and its primitive (for its graph node).
    fn parts<B: Backend, C: CheckpointStrategy, const D: usize>(
        t: Tensor<Autodiff<B, C>, D>,
    ) -> (Tensor<B, D>, FloatTensor<Autodiff<B, C>>) {
        let t = t.into_primitive().tensor();
        (
            Tensor::from_primitive(TensorPrimitive::Float(t.primitive.clone())),
            t,
        )
    }

    /// `value` as output `k` of `parent` (a [`Take`] child of it, parking its gradient in
    /// `slots`; untracked when `parent` is).
    fn take<B: Backend, C: CheckpointStrategy>(
        parent: &FloatTensor<Autodiff<B, C>>,
        slots: &Slots<B>,
        k: usize,
        value: FloatTensor<B>,
    ) -> FloatTensor<Autodiff<B, C>> {
        match Backward::<B, 1>::prepare::<C>(Take, [parent.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((slots.clone(), k), value),
            OpsKind::UnTracked(prep) => prep.finish(value),
        }
    }

    /// Records a recurrence node (when something upstream is tracked) whose results are
    /// `results` (outputs, then the final states), each behind its own [`Take`] node, and returns
    /// the results as autodiff tensors.
    fn finish<B, C, N, const P: usize, const R: usize>(
        node: N,
        parents: [FloatTensor<Autodiff<B, C>>; P],
        state: impl FnOnce(Slots<B>) -> N::State,
        results: [FloatTensor<B>; R],
    ) -> [FloatTensor<Autodiff<B, C>>; R]
    where
        B: RecurrentBackend,
        C: CheckpointStrategy,
        N: Backward<B, P>,
    {
        let slots: Slots<B> = Arc::new(Mutex::new(vec![None; R]));
        // The node's own output is a placeholder; its results are the `Take` children.
        let anchor = B::float_zeros(
            [1].into(),
            &B::float_device(&results[0]),
            results[0].dtype().into(),
        );
        let anchor = match node
            .prepare::<C>(parents.map(|p| p.node))
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(state(slots.clone()), anchor),
            OpsKind::UnTracked(prep) => prep.finish(anchor),
        };
        let mut k = 0;
        results.map(|value| {
            k += 1;
            take::<B, C>(&anchor, &slots, k - 1, value)
        })
    }

    fn wrap<A: Backend, const D: usize>(t: FloatTensor<A>) -> Tensor<A, D> {
        Tensor::from_primitive(TensorPrimitive::Float(t))
    }

    impl<B: RecurrentBackend, C: CheckpointStrategy> RecurrentBackend for Autodiff<B, C> {
        fn dense(
            a: Tensor<Self, 2>,
            b: Tensor<Self, 2>,
            differentiation: Differentiation,
        ) -> Tensor<Self, 2> {
            if differentiation == Differentiation::Plain {
                return a.matmul(b);
            }
            let (a_in, a_p) = parts(a);
            let (b_in, b_p) = parts(b);
            let out = prim(B::dense(a_in.clone(), b_in.clone(), Differentiation::Fused));
            let parents = [a_p.node.clone(), b_p.node.clone()];
            let out = match DenseNode.prepare::<C>(parents).compute_bound().stateful() {
                OpsKind::Tracked(prep) => prep.finish((prim(a_in), prim(b_in)), out),
                OpsKind::UnTracked(prep) => prep.finish(out),
            };
            Tensor::from_primitive(TensorPrimitive::Float(out))
        }

        fn rnn_recurrence(
            seq: super::Recurrence<Self>,
            h0: Tensor<Self, 2>,
            weight_hh: Tensor<Self, 2>,
            activation: Activation,
        ) -> (Tensor<Self, 3>, Tensor<Self, 2>) {
            if seq.differentiation == Differentiation::Plain {
                return plain::rnn(seq, h0, weight_hh, activation);
            }
            let dims = seq.projected.dims();
            let (seq, n_projected) = inner(seq);
            let (h0, n_h0) = parts(h0);
            let (w, n_w) = parts(weight_hh);
            let (out, h, tape) = B::rnn_forward_tape(seq, h0, w.clone(), activation);
            let hidden = out.dims()[2];
            let state = move |slots| NodeState {
                tape,
                weight_hh: prim(w),
                dims: [dims[0], dims[1], hidden],
                slots,
                extra: activation,
            };
            let parents = [n_projected, n_h0, n_w];
            let [out, h] = finish::<B, C, _, 3, 2>(RnnNode, parents, state, [prim(out), prim(h)]);
            (wrap(out), wrap(h))
        }

        fn lstm_recurrence(
            seq: super::Recurrence<Self>,
            h0: Tensor<Self, 2>,
            c0: Tensor<Self, 2>,
            weight_hh: Tensor<Self, 2>,
        ) -> (Tensor<Self, 3>, Tensor<Self, 2>, Tensor<Self, 2>) {
            if seq.differentiation == Differentiation::Plain {
                return plain::lstm(seq, h0, c0, weight_hh);
            }
            let dims = seq.projected.dims();
            let (seq, n_projected) = inner(seq);
            let (h0, n_h0) = parts(h0);
            let (c0, n_c0) = parts(c0);
            let (w, n_w) = parts(weight_hh);
            let (out, h, c, tape) = B::lstm_forward_tape(seq, h0, c0, w.clone());
            let hidden = out.dims()[2];
            let state = move |slots| NodeState {
                tape,
                weight_hh: prim(w),
                dims: [dims[0], dims[1], hidden],
                slots,
                extra: (),
            };
            let parents = [n_projected, n_h0, n_c0, n_w];
            let results = [prim(out), prim(h), prim(c)];
            let [out, h, c] = finish::<B, C, _, 4, 3>(LstmNode, parents, state, results);
            (wrap(out), wrap(h), wrap(c))
        }

        fn gru_recurrence(
            seq: super::Recurrence<Self>,
            h0: Tensor<Self, 2>,
            weight_hh: Tensor<Self, 2>,
            bias_hn: Option<Tensor<Self, 1>>,
            reset_after: bool,
        ) -> (Tensor<Self, 3>, Tensor<Self, 2>) {
            if seq.differentiation == Differentiation::Plain {
                return plain::gru(seq, h0, weight_hh, bias_hn, reset_after);
            }
            let dims = seq.projected.dims();
            let (seq, n_projected) = inner(seq);
            let (h0, n_h0) = parts(h0);
            let (w, n_w) = parts(weight_hh);
            let has_bias = bias_hn.is_some();
            // Without a candidate bias the fourth parent is an untracked placeholder.
            let (bias, n_bias) = match bias_hn {
                Some(b) => {
                    let (b, node) = parts(b);
                    (Some(b), node)
                }
                None => (None, parts(Tensor::<Self, 1>::zeros([1], &w.device())).1),
            };
            let (out, h, tape) = B::gru_forward_tape(seq, h0, w.clone(), bias, reset_after);
            let hidden = out.dims()[2];
            let state = move |slots| NodeState {
                tape,
                weight_hh: prim(w),
                dims: [dims[0], dims[1], hidden],
                slots,
                extra: (reset_after, has_bias),
            };
            let parents = [n_projected, n_h0, n_w, n_bias];
            let [out, h] = finish::<B, C, _, 4, 2>(GruNode, parents, state, [prim(out), prim(h)]);
            (wrap(out), wrap(h))
        }

        fn is_tracked<const D: usize>(tensor: &Tensor<Self, D>) -> bool {
            tensor.clone().into_primitive().tensor().is_tracked()
        }

        fn unstack_time(x: Tensor<Self, 3>) -> Vec<Tensor<Self, 2>> {
            let dims = x.dims();
            let x = x.into_primitive().tensor();
            let inner = Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(x.primitive.clone()));
            let steps: Vec<FloatTensor<B>> = B::unstack_time(inner)
                .into_iter()
                .map(|s| s.into_primitive().tensor())
                .collect();

            let slots: Slots<B> = Arc::new(Mutex::new(vec![None; dims[1]]));
            let collected = match Backward::<B, 1>::prepare::<C>(Collect, [x.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let state = (
                        slots.clone(),
                        dims,
                        B::float_device(&x.primitive),
                        x.primitive.dtype(),
                    );
                    prep.finish(state, x.primitive)
                }
                // Nothing to differentiate: the steps below come out untracked too.
                OpsKind::UnTracked(prep) => prep.finish(x.primitive),
            };
            steps
                .into_iter()
                .enumerate()
                .map(|(t, step)| wrap(take::<B, C>(&collected, &slots, t, step)))
                .collect()
        }
    }
}

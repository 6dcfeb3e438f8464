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

use burn::tensor::{Tensor, backend::Backend};

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

    /// Per-step inputs and masks in processing order, plus a place for the outputs.
    struct Steps<B: Backend> {
        inputs: Vec<Tensor<B, 2>>,
        masks: Option<Vec<Tensor<B, 2>>>,
        reverse: bool,
    }

    impl<B: RecurrentBackend> Steps<B> {
        fn new(seq: Recurrence<B>) -> Self {
            let inputs = B::unstack_time(seq.projected);
            // [batch, time] -> time × [batch, 1]
            let masks = seq.mask.map(|m| B::unstack_time(m.unsqueeze_dim(2)));
            Self {
                inputs,
                masks,
                reverse: seq.reverse,
            }
        }

        /// Step indices in processing order.
        fn order(&self) -> Vec<usize> {
            let t = self.inputs.len();
            if self.reverse {
                (0..t).rev().collect()
            } else {
                (0..t).collect()
            }
        }

        /// Keeps `old` where the step is padding: `old + m ⊙ (new − old)`.
        fn carry(&self, t: usize, old: Tensor<B, 2>, new: Tensor<B, 2>) -> Tensor<B, 2> {
            match &self.masks {
                Some(m) => old.clone() + (new - old) * m[t].clone(),
                None => new,
            }
        }

        /// The step's output: zero on padding.
        fn output(&self, t: usize, h_new: Tensor<B, 2>) -> Tensor<B, 2> {
            match &self.masks {
                Some(m) => h_new * m[t].clone(),
                None => h_new,
            }
        }

        /// Stacks outputs collected in processing order into `[batch, time, H]` in time order.
        fn gather(&self, mut outputs: Vec<Tensor<B, 2>>) -> Tensor<B, 3> {
            if self.reverse {
                outputs.reverse();
            }
            Tensor::stack(outputs, 1)
        }
    }

    /// Splits `[batch, k·H]` into `k` tensors `[batch, H]`.
    fn split_gates<B: Backend, const K: usize>(gates: Tensor<B, 2>) -> [Tensor<B, 2>; K] {
        let h = gates.dims()[1] / K;
        core::array::from_fn(|k| gates.clone().narrow(1, k * h, h))
    }

    /// One LSTM step from the step's input projection `xw` (`[batch, 4H]`).
    pub fn lstm_step<B: Backend>(
        xw: Tensor<B, 2>,
        h: Tensor<B, 2>,
        c: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
    ) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let gates = xw + h.matmul(weight_hh); // [batch, 4H]
        // Activate all gates at once and pick the parts: fewer (tracked) ops than activating
        // each slice, which is what dominates at small sizes.
        let hidden = c.dims()[1];
        let s = sigmoid(gates.clone()); // [batch, 4H]: i, f, o are used
        let (i, f, o) = (
            s.clone().narrow(1, 0, hidden),
            s.clone().narrow(1, hidden, hidden),
            s.narrow(1, 3 * hidden, hidden),
        );
        let g = gates.narrow(1, 2 * hidden, hidden).tanh();
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

    /// One GRU step (see [`RecurrentBackend::gru_recurrence`] for the two forms). `xw` is
    /// `[batch, 3H]`.
    pub fn gru_step<B: Backend>(
        xw: Tensor<B, 2>,
        h: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
        bias_hn: Option<Tensor<B, 1>>,
        reset_after: bool,
    ) -> Tensor<B, 2> {
        let hidden = h.dims()[1];
        let [x_rz, x_n] = [
            xw.clone().narrow(1, 0, 2 * hidden),
            xw.narrow(1, 2 * hidden, hidden),
        ];
        let (n, z) = if reset_after {
            let hw = h.clone().matmul(weight_hh); // [batch, 3H]
            let rz = sigmoid(x_rz + hw.clone().narrow(1, 0, 2 * hidden));
            let [r, z] = split_gates::<B, 2>(rz);
            let mut hn = hw.narrow(1, 2 * hidden, hidden); // [batch, H]
            if let Some(b) = bias_hn {
                hn = hn + b.unsqueeze();
            }
            ((x_n + r * hn).tanh(), z)
        } else {
            let w_rz = weight_hh.clone().narrow(1, 0, 2 * hidden); // [H, 2H]
            let w_n = weight_hh.narrow(1, 2 * hidden, hidden); // [H, H]
            let rz = sigmoid(x_rz + h.clone().matmul(w_rz));
            let [r, z] = split_gates::<B, 2>(rz);
            ((x_n + (r * h.clone()).matmul(w_n)).tanh(), z)
        };
        // h' = (1 − z) ⊙ n + z ⊙ h
        n.clone() + z * (h - n)
    }

    /// [`RecurrentBackend::rnn_recurrence`] with ordinary tensor ops.
    pub fn rnn<B: RecurrentBackend>(
        seq: Recurrence<B>,
        h0: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
        activation: Activation,
    ) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let steps = Steps::new(seq);
        let mut h = h0;
        let mut outputs = Vec::with_capacity(steps.inputs.len());
        for t in steps.order() {
            let h_new = rnn_step(
                steps.inputs[t].clone(),
                h.clone(),
                weight_hh.clone(),
                activation,
            );
            outputs.push(steps.output(t, h_new.clone()));
            h = steps.carry(t, h, h_new);
        }
        (steps.gather(outputs), h)
    }

    /// [`RecurrentBackend::lstm_recurrence`] with ordinary tensor ops.
    pub fn lstm<B: RecurrentBackend>(
        seq: Recurrence<B>,
        h0: Tensor<B, 2>,
        c0: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, Tensor<B, 2>, Tensor<B, 2>) {
        let steps = Steps::new(seq);
        let (mut h, mut c) = (h0, c0);
        let mut outputs = Vec::with_capacity(steps.inputs.len());
        for t in steps.order() {
            let (h_new, c_new) = lstm_step(
                steps.inputs[t].clone(),
                h.clone(),
                c.clone(),
                weight_hh.clone(),
            );
            outputs.push(steps.output(t, h_new.clone()));
            h = steps.carry(t, h, h_new);
            c = steps.carry(t, c, c_new);
        }
        (steps.gather(outputs), h, c)
    }

    /// [`RecurrentBackend::gru_recurrence`] with ordinary tensor ops.
    pub fn gru<B: RecurrentBackend>(
        seq: Recurrence<B>,
        h0: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
        bias_hn: Option<Tensor<B, 1>>,
        reset_after: bool,
    ) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let steps = Steps::new(seq);
        let mut h = h0;
        let mut outputs = Vec::with_capacity(steps.inputs.len());
        for t in steps.order() {
            let h_new = gru_step(
                steps.inputs[t].clone(),
                h.clone(),
                weight_hh.clone(),
                bias_hn.clone(),
                reset_after,
            );
            outputs.push(steps.output(t, h_new.clone()));
            h = steps.carry(t, h, h_new);
        }
        (steps.gather(outputs), h)
    }
}

/// Whether `Autodiff` runs each simple-RNN and LSTM recurrence as one graph node with a hand-written
/// backward pass (the default) or as ordinary tracked tensor ops.
static FUSED_AUTODIFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Chooses how autodiff differentiates recurrences, for the whole process: `true` (the default)
/// runs each simple-RNN and LSTM recurrence (one layer, one direction, the whole sequence) as a single
/// graph node whose backward pass is the hand-written BPTT; `false` records every step's tensor
/// operations and lets autodiff differentiate them (the plain path, for teaching and checking).
/// Both give the same gradients. The LSTM is fused the same way; GRU uses the plain path for
/// now.
pub fn set_fused_autodiff(fused: bool) {
    FUSED_AUTODIFF.store(fused, std::sync::atomic::Ordering::Relaxed);
}

/// See [`set_fused_autodiff`].
pub fn fused_autodiff() -> bool {
    FUSED_AUTODIFF.load(std::sync::atomic::Ordering::Relaxed)
}

mod autodiff_impl {
    //! `Autodiff<B>`: the simple-RNN and LSTM recurrences are one graph node each with a
    //! hand-written backward pass; GRU stays the provided plain-ops one (tracked by autodiff);
    //! `unstack_time` is a custom node.
    use super::{RecurrentBackend, plain};
    use crate::activation::Activation;
    use burn::backend::Autodiff;
    use burn::backend::autodiff::checkpoint::base::Checkpointer;
    use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
    use burn::backend::autodiff::grads::Gradients;
    use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
    use burn::tensor::backend::Backend;
    use burn::tensor::ops::FloatTensor;
    use burn::tensor::{DType, Shape, Tensor, TensorMetadata, TensorPrimitive};
    use std::sync::{Arc, Mutex};

    /// Per-step gradients, filled by the `Take` nodes and drained by their `Collect` node.
    type Slots<B> = Arc<Mutex<Vec<Option<FloatTensor<B>>>>>;

    /// Identity node in front of the per-step `Take` nodes; its backward assembles their
    /// gradients into one `[batch, time, F]` gradient (zeros for steps that received none).
    #[derive(Debug)]
    struct Collect;

    /// Step `t` of the collected tensor; its backward parks the gradient in slot `t`.
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

    /// The simple-RNN recurrence as one node. Its output is `[batch, time + 1, H]`: the outputs
    /// followed by the final state.
    #[derive(Debug)]
    struct RnnNode;

    /// What the RNN node's backward pass needs, per step in processing order.
    #[derive(Clone, Debug)]
    struct RnnState<B: Backend> {
        /// The state each step started from, `[batch, H]`.
        h_prev: Vec<FloatTensor<B>>,
        /// The activation's output at each step, `[batch, H]`.
        h_new: Vec<FloatTensor<B>>,
        /// `[batch, 1]` per step, when some sequences are shorter.
        masks: Option<Vec<FloatTensor<B>>>,
        /// The time index of each processing step.
        order: Vec<usize>,
        weight_hh: FloatTensor<B>,
        activation: Activation,
    }

    fn t2<B: Backend>(p: FloatTensor<B>) -> Tensor<B, 2> {
        Tensor::from_primitive(TensorPrimitive::Float(p))
    }

    fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
        t.into_primitive().tensor()
    }

    /// A recurrence's inputs on the inner backend, per step.
    struct Unrolled<B: Backend> {
        /// Step inputs `[batch, G·H]` in time order.
        xs: Vec<Tensor<B, 2>>,
        /// `[batch, 1]` per step in time order.
        masks: Option<Vec<Tensor<B, 2>>>,
        /// Time indices in processing order.
        order: Vec<usize>,
    }

    fn unroll<B: RecurrentBackend>(
        projected: FloatTensor<B>,
        mask: Option<FloatTensor<B>>,
        reverse: bool,
    ) -> Unrolled<B> {
        let x = Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(projected));
        let time = x.dims()[1];
        Unrolled {
            xs: B::unstack_time(x),
            masks: mask.map(|m| B::unstack_time(t2::<B>(m).unsqueeze_dim(2))),
            order: if reverse {
                (0..time).rev().collect()
            } else {
                (0..time).collect()
            },
        }
    }

    /// Keeps `old` on padding: `old + m ⊙ (new − old)`.
    fn carry<B: Backend>(
        old: Tensor<B, 2>,
        new: Tensor<B, 2>,
        m: Option<&Tensor<B, 2>>,
    ) -> Tensor<B, 2> {
        match m {
            Some(m) => old.clone() + (new - old) * m.clone(),
            None => new,
        }
    }

    /// The gradient that reaches a step's new state, `(dY + d_state) ⊙ m`, and the part of
    /// `d_state` carried past the step on padding, `d_state ⊙ (1 − m)`. (On padding the output
    /// is zero, so `dY` reaches nothing there.)
    fn through_step<B: Backend>(
        d_output: Option<Tensor<B, 2>>,
        d_state: Tensor<B, 2>,
        m: Option<&FloatTensor<B>>,
    ) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
        let total = match d_output {
            Some(dy) => dy + d_state.clone(),
            None => d_state.clone(),
        };
        match m {
            Some(m) => {
                let m = t2::<B>(m.clone());
                let keep = m.clone().neg() + 1.0;
                (total * m, Some(d_state * keep))
            }
            None => (total, None),
        }
    }

    /// Row `t` of `[batch, time, H]` as `[batch, H]`.
    fn row<B: Backend>(g: &Tensor<B, 3>, t: usize) -> Tensor<B, 2> {
        let [batch, _, hidden] = g.dims();
        g.clone()
            .slice([0..batch, t..t + 1, 0..hidden])
            .reshape([batch, hidden])
    }

    /// Splits a node's `[batch, time + k, H]` output into the outputs and `k` states.
    fn split_joined<B: Backend>(
        out: Tensor<B, 3>,
        time: usize,
    ) -> (Tensor<B, 3>, Vec<Tensor<B, 2>>) {
        let [batch, total, hidden] = out.dims();
        let states = (time..total).map(|t| row(&out, t)).collect();
        (out.slice([0..batch, 0..time, 0..hidden]), states)
    }

    /// `Σ_t aᵀ_t b_t` over the steps, as one product of the row-stacked steps.
    fn sum_outer<B: Backend>(a: Vec<FloatTensor<B>>, b: Vec<Tensor<B, 2>>) -> FloatTensor<B> {
        let a = Tensor::cat(a.into_iter().map(t2::<B>).collect(), 0);
        prim(a.transpose().matmul(Tensor::cat(b, 0)))
    }

    impl<B: Backend> Backward<B, 3> for RnnNode {
        type State = RnnState<B>;

        /// Backpropagation through time. For processing steps k = T−1 … 0 (time index t):
        /// the gradient reaching the step's new state is `g = (dY_t + dh) ⊙ m_t` (an output
        /// on padding is zero, so `dY_t` reaches nothing there), the
        /// pre-activation gradient `da_t = g ⊙ act'(h_new)`, and the state before the step gets
        /// `dh ← dh ⊙ (1 − m_t) + da_t Wₕₕᵀ` (`m_t = 1` without a mask). Then
        /// `∂projected = da`, `∂h0 = dh` and `∂Wₕₕ = Σ_t h_prevᵀ da_t`, one product over all
        /// steps.
        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let s = ops.state;
            let time = s.order.len();
            let g: Tensor<B, 3> =
                Tensor::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
            let w_t = t2::<B>(s.weight_hh).transpose();
            let mut dh = row(&g, time);
            let mut da: Vec<Option<Tensor<B, 2>>> = vec![None; time];
            for k in (0..time).rev() {
                let t = s.order[k];
                let mask = s.masks.as_ref().map(|m| &m[k]);
                let (g_new, carried) = through_step(Some(row(&g, t)), dh, mask);
                let d = g_new
                    * s.activation
                        .derivative_from_output(t2::<B>(s.h_new[k].clone()));
                dh = d.clone().matmul(w_t.clone());
                if let Some(c) = carried {
                    dh = dh + c;
                }
                da[t] = Some(d);
            }
            let da: Vec<Tensor<B, 2>> = da.into_iter().flatten().collect();
            let [p_projected, p_h0, p_weight] = ops.parents;
            if let Some(p) = p_weight {
                let rows = s.order.iter().map(|&t| da[t].clone()).collect();
                grads.register::<B>(p.id, sum_outer(s.h_prev, rows));
            }
            if let Some(p) = p_projected {
                grads.register::<B>(p.id, prim(Tensor::stack::<3>(da, 1)));
            }
            if let Some(p) = p_h0 {
                grads.register::<B>(p.id, prim(dh));
            }
        }
    }

    /// The LSTM recurrence as one node. Its output is `[batch, time + 2, H]`: the outputs, then
    /// the final `h` and `c`.
    #[derive(Debug)]
    struct LstmNode;

    /// One LSTM step as the backward pass needs it (the course's `LSTM.cache`).
    #[derive(Clone, Debug)]
    struct LstmStep<B: Backend> {
        h_prev: FloatTensor<B>,
        c_prev: FloatTensor<B>,
        /// Activated gates i, f, g, o, `[batch, H]` each.
        gates: [FloatTensor<B>; 4],
        /// `tanh(c_new)`.
        tanh_c: FloatTensor<B>,
        /// `[batch, 1]`, when some sequences are shorter.
        mask: Option<FloatTensor<B>>,
    }

    #[derive(Clone, Debug)]
    struct LstmState<B: Backend> {
        /// In processing order.
        steps: Vec<LstmStep<B>>,
        order: Vec<usize>,
        weight_hh: FloatTensor<B>,
    }

    impl<B: Backend> Backward<B, 4> for LstmNode {
        type State = LstmState<B>;

        /// The course's `LSTM.backward`, step by step from the last: with `dh`, `dc` the
        /// gradients of the state after the step and `dY_t` the output's,
        /// `do = dh' ⊙ tanh(c')`, `dc' = dc + dh' ⊙ o ⊙ (1 − tanh²(c'))`, `di = dc' ⊙ g`,
        /// `dg = dc' ⊙ i`, `df = dc' ⊙ c`, and through the activations
        /// `da = [di·i(1−i), df·f(1−f), dg·(1−g²), do·o(1−o)]`; then `dh ← da Wₕₕᵀ`,
        /// `dc ← dc' ⊙ f` (plus the parts carried past padding). `∂projected = da`,
        /// `∂Wₕₕ = Σ_t h_prevᵀ da_t` as one product.
        fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
            let s = ops.state;
            let time = s.order.len();
            let g: Tensor<B, 3> =
                Tensor::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
            let w_t = t2::<B>(s.weight_hh).transpose();
            let (mut dh, mut dc) = (row(&g, time), row(&g, time + 1));
            let mut da: Vec<Option<Tensor<B, 2>>> = vec![None; time];
            let mut h_prev = Vec::with_capacity(time);
            for (k, step) in s.steps.into_iter().enumerate().rev() {
                let t = s.order[k];
                let (gh, carried_h) = through_step(Some(row(&g, t)), dh, step.mask.as_ref());
                let (gc, carried_c) = through_step(None, dc, step.mask.as_ref());
                let [i, f, gg, o] = step.gates.map(t2::<B>);
                let tc = t2::<B>(step.tanh_c);
                let d_o = gh.clone() * tc.clone();
                let dc_new = gc + gh * o.clone() * (tc.clone() * tc).neg().add_scalar(1.0);
                let d_i = dc_new.clone() * gg.clone();
                let d_g = dc_new.clone() * i.clone();
                let d_f = dc_new.clone() * t2::<B>(step.c_prev);
                let sig = |x: Tensor<B, 2>| x.clone() * x.neg().add_scalar(1.0);
                let d = Tensor::cat(
                    vec![
                        d_i * sig(i),
                        d_f * sig(f.clone()),
                        d_g * (gg.clone() * gg).neg().add_scalar(1.0),
                        d_o * sig(o),
                    ],
                    1,
                );
                dh = d.clone().matmul(w_t.clone());
                dc = dc_new * f;
                if let Some(c) = carried_h {
                    dh = dh + c;
                }
                if let Some(c) = carried_c {
                    dc = dc + c;
                }
                da[t] = Some(d);
                h_prev.push(step.h_prev);
            }
            h_prev.reverse();
            let da: Vec<Tensor<B, 2>> = da.into_iter().flatten().collect();
            let [p_projected, p_h0, p_c0, p_weight] = ops.parents;
            if let Some(p) = p_weight {
                let rows = s.order.iter().map(|&t| da[t].clone()).collect();
                grads.register::<B>(p.id, sum_outer(h_prev, rows));
            }
            if let Some(p) = p_projected {
                grads.register::<B>(p.id, prim(Tensor::stack::<3>(da, 1)));
            }
            if let Some(p) = p_h0 {
                grads.register::<B>(p.id, prim(dh));
            }
            if let Some(p) = p_c0 {
                grads.register::<B>(p.id, prim(dc));
            }
        }
    }

    impl<B: RecurrentBackend, C: CheckpointStrategy> RecurrentBackend for Autodiff<B, C> {
        fn rnn_recurrence(
            seq: super::Recurrence<Self>,
            h0: Tensor<Self, 2>,
            weight_hh: Tensor<Self, 2>,
            activation: Activation,
        ) -> (Tensor<Self, 3>, Tensor<Self, 2>) {
            if !super::fused_autodiff() {
                return plain::rnn(seq, h0, weight_hh, activation);
            }
            let time = seq.projected.dims()[1];
            let projected = seq.projected.into_primitive().tensor();
            let h0 = h0.into_primitive().tensor();
            let weight = weight_hh.into_primitive().tensor();
            let mask = seq.mask.map(|m| m.into_primitive().tensor().primitive);
            let steps = unroll::<B>(projected.primitive.clone(), mask, seq.reverse);
            let w = t2::<B>(weight.primitive.clone());

            // Forward on the inner backend, untracked, keeping what the backward pass needs.
            let mut h = t2::<B>(h0.primitive.clone());
            let mut outputs: Vec<Option<Tensor<B, 2>>> = vec![None; time];
            let (mut h_prev, mut h_new) = (Vec::with_capacity(time), Vec::with_capacity(time));
            for &t in &steps.order {
                let new = plain::rnn_step(steps.xs[t].clone(), h.clone(), w.clone(), activation);
                let m = steps.masks.as_ref().map(|m| &m[t]);
                h_prev.push(prim(h.clone()));
                h_new.push(prim(new.clone()));
                outputs[t] = Some(match m {
                    Some(m) => new.clone() * m.clone(),
                    None => new.clone(),
                });
                h = carry(h, new, m);
            }
            let mut rows: Vec<Tensor<B, 2>> = outputs.into_iter().flatten().collect();
            rows.push(h);
            let joined = prim(Tensor::stack::<3>(rows, 1)); // [batch, time + 1, H]

            let parents = [projected.node.clone(), h0.node.clone(), weight.node.clone()];
            let out = match Backward::<B, 3>::prepare::<C>(RnnNode, parents)
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let masks = steps
                        .masks
                        .map(|m| steps.order.iter().map(|&t| prim(m[t].clone())).collect());
                    let state = RnnState {
                        h_prev,
                        h_new,
                        masks,
                        order: steps.order,
                        weight_hh: weight.primitive.clone(),
                        activation,
                    };
                    prep.finish(state, joined)
                }
                OpsKind::UnTracked(prep) => prep.finish(joined),
            };
            let (outputs, states) = split_joined(
                Tensor::<Self, 3>::from_primitive(TensorPrimitive::Float(out)),
                time,
            );
            let [last] = states.try_into().expect("one final state");
            (outputs, last)
        }

        fn lstm_recurrence(
            seq: super::Recurrence<Self>,
            h0: Tensor<Self, 2>,
            c0: Tensor<Self, 2>,
            weight_hh: Tensor<Self, 2>,
        ) -> (Tensor<Self, 3>, Tensor<Self, 2>, Tensor<Self, 2>) {
            if !super::fused_autodiff() {
                return plain::lstm(seq, h0, c0, weight_hh);
            }
            let time = seq.projected.dims()[1];
            let hidden = h0.dims()[1];
            let projected = seq.projected.into_primitive().tensor();
            let (h0, c0) = (h0.into_primitive().tensor(), c0.into_primitive().tensor());
            let weight = weight_hh.into_primitive().tensor();
            let mask = seq.mask.map(|m| m.into_primitive().tensor().primitive);
            let steps = unroll::<B>(projected.primitive.clone(), mask, seq.reverse);
            let w = t2::<B>(weight.primitive.clone());

            let mut h = t2::<B>(h0.primitive.clone());
            let mut c = t2::<B>(c0.primitive.clone());
            let mut outputs: Vec<Option<Tensor<B, 2>>> = vec![None; time];
            let mut saved = Vec::with_capacity(time);
            for &t in &steps.order {
                let pre = steps.xs[t].clone() + h.clone().matmul(w.clone()); // [batch, 4H]
                let s = crate::activation::sigmoid(pre.clone());
                let gate =
                    |k: usize, from: &Tensor<B, 2>| from.clone().narrow(1, k * hidden, hidden);
                let (i, f, o) = (gate(0, &s), gate(1, &s), gate(3, &s));
                let g = gate(2, &pre).tanh();
                let c_new = f.clone() * c.clone() + i.clone() * g.clone();
                let tc = c_new.clone().tanh();
                let h_new = o.clone() * tc.clone();
                let m = steps.masks.as_ref().map(|m| &m[t]);
                outputs[t] = Some(match m {
                    Some(m) => h_new.clone() * m.clone(),
                    None => h_new.clone(),
                });
                saved.push(LstmStep {
                    h_prev: prim(h.clone()),
                    c_prev: prim(c.clone()),
                    gates: [prim(i), prim(f), prim(g), prim(o)],
                    tanh_c: prim(tc),
                    mask: m.map(|m| prim(m.clone())),
                });
                h = carry(h, h_new, m);
                c = carry(c, c_new, m);
            }
            let mut rows: Vec<Tensor<B, 2>> = outputs.into_iter().flatten().collect();
            rows.push(h);
            rows.push(c);
            let joined = prim(Tensor::stack::<3>(rows, 1)); // [batch, time + 2, H]

            let parents = [
                projected.node.clone(),
                h0.node.clone(),
                c0.node.clone(),
                weight.node.clone(),
            ];
            let out = match Backward::<B, 4>::prepare::<C>(LstmNode, parents)
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => {
                    let state = LstmState {
                        steps: saved,
                        order: steps.order,
                        weight_hh: weight.primitive.clone(),
                    };
                    prep.finish(state, joined)
                }
                OpsKind::UnTracked(prep) => prep.finish(joined),
            };
            let (outputs, states) = split_joined(
                Tensor::<Self, 3>::from_primitive(TensorPrimitive::Float(out)),
                time,
            );
            let [h, c] = states.try_into().expect("final h and c");
            (outputs, h, c)
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
            let wrap = |t| Tensor::<Self, 2>::from_primitive(TensorPrimitive::Float(t));

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
                .map(|(t, step)| {
                    let out = match Backward::<B, 1>::prepare::<C>(Take, [collected.node.clone()])
                        .compute_bound()
                        .stateful()
                    {
                        OpsKind::Tracked(prep) => prep.finish((slots.clone(), t), step),
                        OpsKind::UnTracked(prep) => prep.finish(step),
                    };
                    wrap(out)
                })
                .collect()
        }
    }
}

#[cfg(feature = "ndarray")]
mod ndarray_impl {
    use burn::backend::ndarray::{
        FloatNdArrayElement, IntNdArrayElement, NdArray, NdArrayTensor, QuantElement, SharedArray,
    };

    impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> super::RecurrentBackend
        for NdArray<E, I, Q>
    where
        NdArrayTensor: From<SharedArray<E>>,
        NdArrayTensor: From<SharedArray<I>>,
    {
    }
}

#[cfg(feature = "wgpu")]
mod cube_impl {
    use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};
    use burn_fusion::{Fusion, FusionBackend};

    impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> super::RecurrentBackend
        for CubeBackend<R, F, I, BT>
    {
    }

    impl<B: FusionBackend> super::RecurrentBackend for Fusion<B> {}
}

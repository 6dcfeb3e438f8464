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

/// Whether `Autodiff` runs each simple-RNN recurrence as one graph node with a hand-written
/// backward pass (the default) or as ordinary tracked tensor ops.
static FUSED_AUTODIFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Chooses how autodiff differentiates recurrences, for the whole process: `true` (the default)
/// runs each simple-RNN recurrence (one layer, one direction, the whole sequence) as a single
/// graph node whose backward pass is the hand-written BPTT; `false` records every step's tensor
/// operations and lets autodiff differentiate them (the plain path, for teaching and checking).
/// Both give the same gradients. LSTM and GRU use the plain path for now.
pub fn set_fused_autodiff(fused: bool) {
    FUSED_AUTODIFF.store(fused, std::sync::atomic::Ordering::Relaxed);
}

/// See [`set_fused_autodiff`].
pub fn fused_autodiff() -> bool {
    FUSED_AUTODIFF.load(std::sync::atomic::Ordering::Relaxed)
}

mod autodiff_impl {
    //! `Autodiff<B>`: the simple-RNN recurrence is one graph node with a hand-written backward
    //! pass; LSTM and GRU stay the provided plain-ops ones (tracked by autodiff); `unstack_time`
    //! is a custom node.
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
        dims: [usize; 3],
    }

    fn t2<B: Backend>(p: FloatTensor<B>) -> Tensor<B, 2> {
        Tensor::from_primitive(TensorPrimitive::Float(p))
    }

    fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
        t.into_primitive().tensor()
    }

    impl<B: Backend> Backward<B, 3> for RnnNode {
        type State = RnnState<B>;

        /// Backpropagation through time. For processing steps k = T−1 … 0 (time index t):
        /// the gradient reaching the step's new state is `g = (dY_t + dh) ⊙ m_t`, the
        /// pre-activation gradient `da_t = g ⊙ act'(h_new)`, and the state before the step gets
        /// `dh ← dh ⊙ (1 − m_t) + da_t Wₕₕᵀ` (`m_t = 1` without a mask). Then
        /// `∂projected = da`, `∂h0 = dh` and `∂Wₕₕ = Σ_t h_prevᵀ da_t`, one product over all
        /// steps.
        fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
            let s = ops.state;
            let [batch, time, hidden] = s.dims;
            let g: Tensor<B, 3> =
                Tensor::from_primitive(TensorPrimitive::Float(grads.consume::<B>(&ops.node)));
            let w_t = t2::<B>(s.weight_hh).transpose();
            let mut dh: Tensor<B, 2> = g
                .clone()
                .slice([0..batch, time..time + 1, 0..hidden])
                .reshape([batch, hidden]);
            let mut da: Vec<Option<Tensor<B, 2>>> = vec![None; time];
            for k in (0..time).rev() {
                let t = s.order[k];
                let dy: Tensor<B, 2> = g
                    .clone()
                    .slice([0..batch, t..t + 1, 0..hidden])
                    .reshape([batch, hidden]);
                let (g_new, carried) = match &s.masks {
                    Some(masks) => {
                        let m = t2::<B>(masks[k].clone());
                        let keep = m.clone().neg() + 1.0;
                        ((dy + dh.clone()) * m, Some(dh * keep))
                    }
                    None => (dy + dh, None),
                };
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
                // Σ_t h_prevᵀ da_t as one product over all (step, batch) rows.
                let h_prev = Tensor::cat(s.h_prev.into_iter().map(t2::<B>).collect(), 0);
                let da_rows = Tensor::cat(s.order.iter().map(|&t| da[t].clone()).collect(), 0);
                grads.register::<B>(p.id, prim(h_prev.transpose().matmul(da_rows)));
            }
            if let Some(p) = p_projected {
                grads.register::<B>(p.id, prim(Tensor::stack::<3>(da, 1)));
            }
            if let Some(p) = p_h0 {
                grads.register::<B>(p.id, prim(dh));
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
            let [batch, time, hidden] = seq.projected.dims();
            let projected = seq.projected.into_primitive().tensor();
            let h0 = h0.into_primitive().tensor();
            let weight = weight_hh.into_primitive().tensor();
            let x =
                Tensor::<B, 3>::from_primitive(TensorPrimitive::Float(projected.primitive.clone()));
            let w = t2::<B>(weight.primitive.clone());
            let xs = B::unstack_time(x);
            let masks: Option<Vec<Tensor<B, 2>>> = seq.mask.map(|m| {
                let m = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(
                    m.into_primitive().tensor().primitive,
                ));
                B::unstack_time(m.unsqueeze_dim(2))
            });
            let order: Vec<usize> = if seq.reverse {
                (0..time).rev().collect()
            } else {
                (0..time).collect()
            };

            // Forward on the inner backend, untracked, keeping what the backward pass needs.
            let mut h = t2::<B>(h0.primitive.clone());
            let mut outputs: Vec<Option<Tensor<B, 2>>> = vec![None; time];
            let (mut h_prev, mut h_new) = (Vec::with_capacity(time), Vec::with_capacity(time));
            let mut step_masks = masks.as_ref().map(|_| Vec::with_capacity(time));
            for &t in &order {
                let new = plain::rnn_step(xs[t].clone(), h.clone(), w.clone(), activation);
                h_prev.push(prim(h.clone()));
                h_new.push(prim(new.clone()));
                match &masks {
                    Some(m) => {
                        let m = m[t].clone();
                        outputs[t] = Some(new.clone() * m.clone());
                        h = h.clone() + (new - h) * m.clone();
                        step_masks.as_mut().expect("masks").push(prim(m));
                    }
                    None => {
                        outputs[t] = Some(new.clone());
                        h = new;
                    }
                }
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
                    let state = RnnState {
                        h_prev,
                        h_new,
                        masks: step_masks,
                        order,
                        weight_hh: weight.primitive.clone(),
                        activation,
                        dims: [batch, time, hidden],
                    };
                    prep.finish(state, joined)
                }
                OpsKind::UnTracked(prep) => prep.finish(joined),
            };
            let out = Tensor::<Self, 3>::from_primitive(TensorPrimitive::Float(out));
            let outputs = out.clone().slice([0..batch, 0..time, 0..hidden]);
            let last = out
                .slice([0..batch, time..time + 1, 0..hidden])
                .reshape([batch, hidden]);
            (outputs, last)
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

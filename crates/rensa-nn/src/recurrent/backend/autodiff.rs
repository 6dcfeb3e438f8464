//! `Autodiff<B>`: every recurrence is one graph node with a hand-written backward pass (with
//! [`Differentiation::Fused`]), the input projection one node on the inner backend's GEMM, and
//! `unstack_time` a custom node.

use super::{AdditiveScore, DenseLayer, RecurrentBackend, Window};
use crate::recurrent::sequence::{
    CellKind, CellState, Differentiation, Recurrence, RecurrenceCall, RecurrentWeights, SequenceOps,
};
use crate::recurrent::tape::{self, BackwardCall, Tape, Upstream};
use burn::backend::Autodiff;
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

    fn backward(self, ops: Ops<Self::State, 1>, _grads_in: &mut Gradients, _: &mut Checkpointer) {
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
fn upstream<B: Backend>(s: &NodeState<B>) -> Upstream<B> {
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
    let d_c = s
        .cell
        .has_cell_state()
        .then(|| next(Shape::new([batch, hidden])));
    Upstream {
        d_output: Tensor::from_primitive(TensorPrimitive::Float(d_output)),
        d_h: t2(d_h),
        d_c: d_c.map(t2),
    }
}

/// What a recurrence node keeps: its kind, the tape, the recurrent weights, the shape and where
/// its results' [`Take`] nodes park their gradients.
#[derive(Clone, Debug)]
struct NodeState<B: Backend> {
    cell: CellKind,
    tape: Tape<B>,
    weight_hh: FloatTensor<B>,
    bias_hn: Option<FloatTensor<B>>,
    /// `[batch, time, H]`.
    dims: [usize; 3],
    slots: Slots<B>,
}

/// A recurrence (any cell, one layer, one direction, the whole sequence) as one node. Parents:
/// the projection, `h0`, `c0`, `Wₕₕ`, `bₕₙ` (an untracked placeholder where the cell has no
/// such input); results: the outputs, the final `h`, and the final `c` of an LSTM.
#[derive(Debug)]
struct RecurrenceNode;

impl<B: RecurrentBackend> Backward<B, 5> for RecurrenceNode {
    type State = NodeState<B>;

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        let up = upstream(&s);
        let weights = RecurrentWeights {
            weight_hh: t2(s.weight_hh),
            bias_hn: s.bias_hn.map(wrap),
        };
        let d = B::backward_tape(BackwardCall {
            cell: s.cell,
            tape: s.tape,
            weights,
            up,
        });
        let values = [
            Some(prim(d.d_projected)),
            Some(prim(d.d_h0)),
            d.d_c0.map(prim),
            Some(prim(d.d_weight)),
            d.d_bias_hn.map(prim),
        ];
        for (parent, value) in ops.parents.into_iter().zip(values) {
            if let (Some(p), Some(v)) = (parent, value) {
                grads.register::<B>(p.id, v);
            }
        }
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

/// A dense layer through the inner backend's [`RecurrentBackend::dense_layer`], forward and
/// backward.
#[derive(Debug)]
struct DenseLayerNode;

impl<B: RecurrentBackend> Backward<B, 3> for DenseLayerNode {
    /// The input, the weight, the layer's output when it ends in a ReLU, and whether it has a
    /// bias.
    type State = (FloatTensor<B>, FloatTensor<B>, Option<FloatTensor<B>>, bool);

    /// The pre-activation's gradient `g` (and its row sums, `∂b`) by the inner backend's
    /// [`RecurrentBackend::dense_layer_backward`], then `∂x = g · Wᵀ` and `∂W = xᵀ · g`, each
    /// computed only when its parent is tracked.
    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, w, relu_output, bias) = ops.state;
        let d = t2::<B>(grads.consume::<B>(&ops.node));
        let [p_x, p_w, p_b] = ops.parents;
        let (g, sums) = B::dense_layer_backward(relu_output.map(t2::<B>), d, bias && p_b.is_some());
        if let (Some(p), Some(sums)) = (p_b, sums) {
            grads.register::<B>(p.id, prim(sums));
        }
        if let Some(p) = p_x {
            let dx = B::dense(g.clone(), t2::<B>(w).transpose(), Differentiation::Fused);
            grads.register::<B>(p.id, prim(dx));
        }
        if let Some(p) = p_w {
            let dw = B::dense(t2::<B>(x).transpose(), g, Differentiation::Fused);
            grads.register::<B>(p.id, prim(dw));
        }
    }
}

/// The additive attention score through the inner backend's
/// [`RecurrentBackend::additive_scores`], forward and backward.
#[derive(Debug)]
struct AdditiveScoreNode;

impl<B: RecurrentBackend> Backward<B, 3> for AdditiveScoreNode {
    /// The projected queries and keys and `v`.
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    /// One call of the inner backend's backward pass; a gradient is registered only for a
    /// tracked parent.
    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (q, k, v) = ops.state;
        let d = grads.consume::<B>(&ops.node);
        let score = AdditiveScore {
            queries: wrap(q),
            keys: wrap(k),
            v: wrap(v),
        };
        let g = B::additive_scores_backward(score, wrap(d));
        let [p_q, p_k, p_v] = ops.parents;
        for (parent, grad) in [
            (p_q, prim(g.queries)),
            (p_k, prim(g.keys)),
            (p_v, prim(g.v)),
        ] {
            if let Some(p) = parent {
                grads.register::<B>(p.id, grad);
            }
        }
    }
}

/// im2col through the inner backend's [`RecurrentBackend::unfold`]; the backward pass is its
/// adjoint, [`RecurrentBackend::fold`].
#[derive(Debug)]
struct UnfoldNode;

impl<B: RecurrentBackend> Backward<B, 1> for UnfoldNode {
    type State = Window;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = t2::<B>(grads.consume::<B>(&ops.node));
        if let [Some(parent)] = ops.parents {
            grads.register::<B>(
                parent.id,
                prim(B::fold(g, ops.state, Differentiation::Fused)),
            );
        }
    }
}

/// col2im through the inner backend's [`RecurrentBackend::fold`]; the backward pass is its
/// adjoint, [`RecurrentBackend::unfold`].
#[derive(Debug)]
struct FoldNode;

impl<B: RecurrentBackend> Backward<B, 1> for FoldNode {
    type State = Window;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g: Tensor<B, 4> = wrap(grads.consume::<B>(&ops.node));
        if let [Some(parent)] = ops.parents {
            grads.register::<B>(
                parent.id,
                prim(B::unfold(g, ops.state, Differentiation::Fused)),
            );
        }
    }
}

/// `tanh` through the inner backend's [`RecurrentBackend::tanh`]; the backward pass is
/// `g ⊙ (1 − y²)` from the output `y`.
#[derive(Debug)]
struct TanhNode<const D: usize>;

impl<B: RecurrentBackend, const D: usize> Backward<B, 1> for TanhNode<D> {
    /// The output.
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let y: Tensor<B, D> = wrap(ops.state);
        let g: Tensor<B, D> = wrap(grads.consume::<B>(&ops.node));
        if let [Some(parent)] = ops.parents {
            let d = g * (y.clone() * y).neg().add_scalar(1.0);
            grads.register::<B>(parent.id, prim(d));
        }
    }
}

/// The Bernoulli negative log-likelihood through the inner backend's
/// [`RecurrentBackend::bernoulli_nll`], forward and backward.
#[derive(Debug)]
struct BernoulliNode;

impl<B: RecurrentBackend> Backward<B, 2> for BernoulliNode {
    /// The logits and the targets.
    type State = (FloatTensor<B>, FloatTensor<B>);

    /// `∂l = g (σ(l) − x)` by the inner backend, and `∂x = −g l` when the targets are tracked
    /// (they rarely are: they are usually the data).
    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (l, x) = ops.state;
        let (l, x) = (t2::<B>(l), t2::<B>(x));
        let g: Tensor<B, 1> = wrap(grads.consume::<B>(&ops.node));
        let [p_l, p_x] = ops.parents;
        if let Some(p) = p_x {
            grads.register::<B>(p.id, prim(l.clone().neg() * g.clone().unsqueeze_dim(1)));
        }
        if let Some(p) = p_l {
            grads.register::<B>(p.id, prim(B::bernoulli_nll_backward(l, x, g)));
        }
    }
}

/// The inner-backend view of a recurrence's inputs.
fn inner<B: RecurrentBackend, C: CheckpointStrategy>(
    seq: Recurrence<Autodiff<B, C>>,
) -> (Recurrence<B>, FloatTensor<Autodiff<B, C>>) {
    let projected = seq.projected.into_primitive().tensor();
    let seq = Recurrence {
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

impl<B: RecurrentBackend, C: CheckpointStrategy> SequenceOps for Autodiff<B, C> {
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

/// An untracked one-element stand-in for a parent the cell does not have.
fn placeholder<B: Backend, C: CheckpointStrategy>(
    like: &Tensor<B, 2>,
) -> FloatTensor<Autodiff<B, C>> {
    parts(Tensor::<Autodiff<B, C>, 1>::zeros([1], &like.device())).1
}

/// An optional input's value on the inner backend and its graph node (a placeholder when absent).
fn optional<B: Backend, C: CheckpointStrategy, const D: usize>(
    t: Option<Tensor<Autodiff<B, C>, D>>,
    like: &Tensor<B, 2>,
) -> (Option<Tensor<B, D>>, FloatTensor<Autodiff<B, C>>) {
    match t {
        Some(t) => {
            let (t, node) = parts(t);
            (Some(t), node)
        }
        None => (None, placeholder::<B, C>(like)),
    }
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

    fn dense_layer(layer: DenseLayer<Self>, how: Differentiation) -> Tensor<Self, 2> {
        if how == Differentiation::Plain {
            return super::dense_layer_reference(layer, how);
        }
        let relu = layer.relu;
        let (x, n_x) = parts(layer.input);
        let (w, n_w) = parts(layer.weight);
        let (bias, n_b) = optional(layer.bias, &w);
        let has_bias = bias.is_some();
        let y = B::dense_layer(
            DenseLayer {
                input: x.clone(),
                weight: w.clone(),
                bias,
                relu,
            },
            Differentiation::Fused,
        );
        let out = prim(y.clone());
        let parents = [n_x.node, n_w.node, n_b.node];
        let out = match DenseLayerNode
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = (prim(x), prim(w), relu.then(|| prim(y)), has_bias);
                prep.finish(state, out)
            }
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        wrap(out)
    }

    fn tanh<const D: usize>(x: Tensor<Self, D>, how: Differentiation) -> Tensor<Self, D> {
        if how == Differentiation::Plain {
            return x.tanh();
        }
        let (x_in, x_p) = parts(x);
        let y = prim(B::tanh(x_in, Differentiation::Fused));
        let out = match TanhNode::<D>
            .prepare::<C>([x_p.node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(y.clone(), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        wrap(out)
    }

    fn unfold(x: Tensor<Self, 4>, window: Window, how: Differentiation) -> Tensor<Self, 2> {
        if how == Differentiation::Plain {
            return super::unfold_reference(x, window);
        }
        let (x_in, x_p) = parts(x);
        let out = prim(B::unfold(x_in, window, Differentiation::Fused));
        let out = match UnfoldNode
            .prepare::<C>([x_p.node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(window, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        wrap(out)
    }

    fn fold(columns: Tensor<Self, 2>, window: Window, how: Differentiation) -> Tensor<Self, 4> {
        if how == Differentiation::Plain {
            return super::fold_reference(columns, window);
        }
        let (c_in, c_p) = parts(columns);
        let out = prim(B::fold(c_in, window, Differentiation::Fused));
        let out = match FoldNode.prepare::<C>([c_p.node]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(window, out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        wrap(out)
    }

    fn bernoulli_nll(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 2>,
        how: Differentiation,
    ) -> Tensor<Self, 1> {
        if how == Differentiation::Plain {
            return super::bernoulli_nll_reference(logits, targets);
        }
        let ((l_in, l_p), (x_in, x_p)) = (parts(logits), parts(targets));
        let out = prim(B::bernoulli_nll(
            l_in.clone(),
            x_in.clone(),
            Differentiation::Fused,
        ));
        let out = match BernoulliNode
            .prepare::<C>([l_p.node, x_p.node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((prim(l_in), prim(x_in)), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        wrap(out)
    }

    fn additive_scores(score: AdditiveScore<Self>, how: Differentiation) -> Tensor<Self, 3> {
        if how == Differentiation::Plain {
            return super::additive_scores_reference(score);
        }
        let AdditiveScore {
            queries: q,
            keys: k,
            v,
        } = score;
        let ((q_in, q_p), (k_in, k_p), (v_in, v_p)) = (parts(q), parts(k), parts(v));
        let inner = AdditiveScore {
            queries: q_in.clone(),
            keys: k_in.clone(),
            v: v_in.clone(),
        };
        let out = prim(B::additive_scores(inner, Differentiation::Fused));
        let parents = [q_p.node, k_p.node, v_p.node];
        let out = match AdditiveScoreNode
            .prepare::<C>(parents)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((prim(q_in), prim(k_in), prim(v_in)), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        wrap(out)
    }

    fn recurrence(call: RecurrenceCall<Self>) -> (Tensor<Self, 3>, CellState<Self>) {
        if call.seq.differentiation == Differentiation::Plain {
            return tape::recurrence(call);
        }
        let RecurrenceCall {
            cell,
            seq,
            state,
            weights,
        } = call;
        let dims = seq.projected.dims();
        let (seq, n_projected) = inner(seq);
        let (h0, n_h0) = parts(state.hidden);
        let (w, n_w) = parts(weights.weight_hh);
        let (c0, n_c0) = optional(state.cell, &w);
        let (bias, n_bias) = optional(weights.bias_hn, &w);
        let (out, last, tape) = B::forward_tape(RecurrenceCall {
            cell,
            seq,
            state: CellState {
                hidden: h0,
                cell: c0,
            },
            weights: RecurrentWeights {
                weight_hh: w.clone(),
                bias_hn: bias.clone(),
            },
        });
        let hidden = out.dims()[2];
        let state = move |slots| NodeState {
            cell,
            tape,
            weight_hh: prim(w),
            bias_hn: bias.map(prim),
            dims: [dims[0], dims[1], hidden],
            slots,
        };
        let parents = [n_projected, n_h0, n_c0, n_w, n_bias];
        match last.cell {
            Some(c) => {
                let results = [prim(out), prim(last.hidden), prim(c)];
                let [out, h, c] = finish::<B, C, _, 5, 3>(RecurrenceNode, parents, state, results);
                let last = CellState {
                    hidden: wrap(h),
                    cell: Some(wrap(c)),
                };
                (wrap(out), last)
            }
            None => {
                let results = [prim(out), prim(last.hidden)];
                let [out, h] = finish::<B, C, _, 5, 2>(RecurrenceNode, parents, state, results);
                let last = CellState {
                    hidden: wrap(h),
                    cell: None,
                };
                (wrap(out), last)
            }
        }
    }
}

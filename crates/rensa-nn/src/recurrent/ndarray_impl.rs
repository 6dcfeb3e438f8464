//! burn's ndarray backend runs every recurrence with the native CPU kernels of [`cpu`]: inference
//! through `recurrence`, training through the tape pair that `Autodiff` builds its one-node
//! recurrence from. The kernels' buffers stay in the tape between the forward and the backward
//! pass; tensors cross the boundary once per call.

use std::sync::Arc;

use burn::backend::ndarray::{
    FloatNdArrayElement, IntNdArrayElement, NdArray, NdArrayTensor, QuantElement, SharedArray,
};
use burn::tensor::{DType, Element, Tensor, TensorPrimitive};
use ndarray::{Ix2, Ix3, IxDyn};

use super::backend::{
    AdamStep, AdditiveScore, DenseLayer, RecurrentBackend, Window, adam_step_reference,
    additive_scores_backward_reference, additive_scores_reference,
    bernoulli_nll_backward_reference, bernoulli_nll_reference, check_adam_shapes,
    dense_layer_backward_reference, dense_layer_reference, fold_reference, unfold_reference,
};
use super::cpu::{self, Dims, Real};
use super::sequence::{
    CellKind, CellState, Differentiation, Recurrence, RecurrenceCall, RecurrentWeights, SequenceOps,
};
use super::tape::{self, BackwardCall, Tape, TapeData, TapeGrads, Upstream};
use crate::activation::Activation;

/// The float types the kernels run in, with the ndarray storage they come in.
trait NativeFloat: Real + Element {
    /// The array behind a float primitive of this element type.
    fn array(t: NdArrayTensor) -> SharedArray<Self>;
    /// A float primitive holding `a`.
    fn primitive(a: SharedArray<Self>) -> NdArrayTensor;
}

macro_rules! native_float {
    ($ty:ty, $variant:ident) => {
        impl NativeFloat for $ty {
            fn array(t: NdArrayTensor) -> SharedArray<Self> {
                match t {
                    NdArrayTensor::$variant(storage) => storage.into_shared(),
                    other => panic!(
                        "the recurrent kernels run in {}, got a {:?} tensor",
                        stringify!($ty),
                        burn::tensor::TensorMetadata::dtype(&other)
                    ),
                }
            }
            fn primitive(a: SharedArray<Self>) -> NdArrayTensor {
                NdArrayTensor::from(a)
            }
        }
    };
}
native_float!(f32, F32);
native_float!(f64, F64);

/// The backends whose float tensors are ndarray arrays.
trait NdBackend: RecurrentBackend<FloatTensorPrimitive = NdArrayTensor> {}
impl<B: RecurrentBackend<FloatTensorPrimitive = NdArrayTensor>> NdBackend for B {}

/// A tensor's values, row-major (one `memcpy` when the array is contiguous).
fn values<B: NdBackend, T: NativeFloat, const D: usize>(t: Tensor<B, D>) -> Vec<T> {
    let a = T::array(t.into_primitive().tensor());
    match a.as_slice() {
        Some(contiguous) => contiguous.to_vec(),
        None => strided_values(a),
    }
}

/// A tensor's array, row-major and contiguous: the tensor's own when it already is (no copy).
fn contiguous<B: NdBackend, T: NativeFloat, const D: usize>(t: Tensor<B, D>) -> SharedArray<T> {
    let shape = t.dims();
    let a = T::array(t.into_primitive().tensor());
    if a.as_slice().is_some() {
        return a;
    }
    SharedArray::from_shape_vec(IxDyn(&shape), strided_values(a)).expect("values match the shape")
}

/// The values of a strided (not contiguous row-major) array, row-major.
fn strided_values<T: NativeFloat>(a: SharedArray<T>) -> Vec<T> {
    // Iterate with a fixed dimensionality, which is far cheaper per element than the dynamic one.
    match a.ndim() {
        3 => a
            .into_dimensionality::<Ix3>()
            .expect("3-D")
            .iter()
            .copied()
            .collect(),
        2 => a
            .into_dimensionality::<Ix2>()
            .expect("2-D")
            .iter()
            .copied()
            .collect(),
        _ => a.iter().copied().collect(),
    }
}

/// A tensor owning `v` (no copy).
fn tensor<B: NdBackend, T: NativeFloat, const D: usize>(
    v: Vec<T>,
    shape: [usize; D],
) -> Tensor<B, D> {
    let a = SharedArray::<T>::from_shape_vec(IxDyn(&shape), v).expect("buffer matches its shape");
    Tensor::from_primitive(TensorPrimitive::Float(T::primitive(a)))
}

/// The kernel's view of a recurrence: dimensions, projection and mask values.
struct Prepared<T> {
    dims: Dims,
    /// The projection's own array, borrowed by the kernels (contiguous, row-major).
    projected: SharedArray<T>,
    mask: Option<Vec<T>>,
}

impl<T: NativeFloat> Prepared<T> {
    fn inputs<'a>(&'a self, h0: &'a [T], c0: &'a [T]) -> cpu::Inputs<'a, T> {
        cpu::Inputs {
            projected: self.projected.as_slice().expect("a contiguous projection"),
            h0,
            c0,
            mask: self.mask.as_deref(),
        }
    }
}

fn prepare<B: NdBackend, T: NativeFloat>(seq: &Recurrence<B>, hidden: usize) -> Prepared<T> {
    let [batch, time, _] = seq.projected.dims();
    let projected = contiguous(seq.projected.clone());
    Prepared {
        dims: Dims {
            batch,
            time,
            hidden,
            reverse: seq.reverse,
        },
        projected,
        mask: seq.mask.clone().map(values),
    }
}

/// A native tape: the kernel's buffers plus what they were made with.
struct Native<T, K> {
    dims: Dims,
    mask: Option<Vec<T>>,
    buffers: K,
}

fn native_tape<B: NdBackend, T: NativeFloat, K: Send + Sync + 'static>(
    seq: &Recurrence<B>,
    p: Prepared<T>,
    buffers: Option<K>,
) -> Tape<B> {
    let native = Native {
        dims: p.dims,
        mask: p.mask,
        buffers: buffers.expect("the forward pass kept its tape"),
    };
    Tape {
        data: TapeData::Native(Arc::new(native)),
        mask: seq.mask.clone(),
        reverse: seq.reverse,
    }
}

/// The native buffers of a tape made by this backend's kernels in element type `T`, or `None`
/// for a tape of the tensor-op path (which runs its own backward pass).
///
/// # Panics
/// On native buffers of another type (another cell's, or another element type's): a tape must
/// reach the backward pass of the recurrence that made it.
fn native<B: NdBackend, T: Real, K: Send + Sync + 'static>(
    tape: &Tape<B>,
) -> Option<&Native<T, K>> {
    match &tape.data {
        TapeData::Native(any) => Some(any.downcast_ref::<Native<T, K>>().unwrap_or_else(|| {
            panic!(
                "the ndarray backward pass for {} got a tape of other native buffers",
                std::any::type_name::<K>()
            )
        })),
        TapeData::Steps(_) => None,
    }
}

/// The gradients from the kernel's, as tensors.
fn grads<B: NdBackend, T: NativeFloat>(
    d: cpu::Backward<T>,
    d_projected: Vec<T>,
    dims: &Dims,
    gates: usize,
) -> TapeGrads<B> {
    let (b, h) = (dims.batch, dims.hidden);
    TapeGrads {
        d_projected: tensor(d_projected, [b, dims.time, gates * h]),
        d_h0: tensor(d.d_h0, [b, h]),
        d_c0: (!d.d_c0.is_empty()).then(|| tensor(d.d_c0, [b, h])),
        d_weight: tensor(d.d_weight, [h, gates * h]),
        d_bias_hn: (!d.d_bias_hn.is_empty()).then(|| tensor(d.d_bias_hn, [h])),
    }
}

/// A zeroed buffer for a recurrence's outputs (`width` 1) or its projection's gradient
/// (`width` G), `[batch, time, width·H]`.
fn buffer<T: NativeFloat>(dims: &Dims, width: usize) -> Vec<T> {
    vec![T::zero(); dims.batch * dims.time * width * dims.hidden]
}

/// What a forward pass over tensors returns: outputs, `h`, `c` when there is one, and the tape.
type Outputs<B> = (
    Tensor<B, 3>,
    Tensor<B, 2>,
    Option<Tensor<B, 2>>,
    Option<Tape<B>>,
);

/// Runs a kernel's forward pass over the parts of the batch ([`cpu::par_forward`], whose advice
/// on `run` applies) from the initial states `h0` and `c0` (empty without a cell) and returns its
/// results as tensors, with the tape when `keep`.
fn forward<B: NdBackend, T: NativeFloat, K: Send + Sync + 'static>(
    seq: &Recurrence<B>,
    p: Prepared<T>,
    (h0, c0): (&[T], &[T]),
    gates: usize,
    keep: bool,
    run: impl Fn(&Dims, cpu::Inputs<'_, T>, &mut [T]) -> cpu::Forward<T, K> + Sync,
) -> Outputs<B> {
    let (b, t, h) = (p.dims.batch, p.dims.time, p.dims.hidden);
    let mut output = buffer(&p.dims, 1);
    let f = cpu::par_forward(&p.dims, gates, p.inputs(h0, c0), &mut output, run);
    (
        tensor(output, [b, t, h]),
        tensor(f.h, [b, h]),
        (!f.c.is_empty()).then(|| tensor(f.c, [b, h])),
        keep.then(|| native_tape(seq, p, f.tape)),
    )
}

/// Runs a kernel's backward pass over the parts of the batch ([`cpu::par_backward`], whose
/// advice on `run` applies) and returns the gradients as tensors.
fn backward<B: NdBackend, T: NativeFloat, K: Sync>(
    n: &Native<T, Vec<K>>,
    gates: usize,
    up: &UpValues<T>,
    run: impl Fn(&Dims, &K, cpu::Grads<'_, T>, &mut [T]) -> cpu::Backward<T> + Sync,
) -> TapeGrads<B> {
    let mut d_projected = buffer(&n.dims, gates);
    let d = cpu::par_backward(
        &n.dims,
        gates,
        &n.buffers,
        up.grads(n),
        &mut d_projected,
        run,
    );
    grads(d, d_projected, &n.dims, gates)
}

fn rnn<B: NdBackend, T: NativeFloat>(
    seq: Recurrence<B>,
    h0: Tensor<B, 2>,
    weight_hh: Tensor<B, 2>,
    activation: Activation,
    keep: bool,
) -> (Tensor<B, 3>, Tensor<B, 2>, Option<Tape<B>>) {
    let p = prepare::<B, T>(&seq, h0.dims()[1]);
    let (h0, w) = (values(h0), values(weight_hh));
    let (out, h, _, tape) = forward(
        &seq,
        p,
        (&h0, &[]),
        1,
        keep,
        #[inline(always)]
        |d, x, o| cpu::rnn_forward(d, x.projected, x.h0, &w, x.mask, activation, keep, o),
    );
    (out, h, tape)
}

fn lstm<B: NdBackend, T: NativeFloat>(
    seq: Recurrence<B>,
    h0: Tensor<B, 2>,
    c0: Tensor<B, 2>,
    weight_hh: Tensor<B, 2>,
    keep: bool,
) -> (Tensor<B, 3>, Tensor<B, 2>, Tensor<B, 2>, Option<Tape<B>>) {
    let p = prepare::<B, T>(&seq, h0.dims()[1]);
    let (h0, c0, w) = (values(h0), values(c0), values(weight_hh));
    let (out, h, c, tape) = forward(
        &seq,
        p,
        (&h0, &c0),
        4,
        keep,
        #[inline(always)]
        |d, x, o| cpu::lstm_forward(d, x.projected, x.h0, x.c0, &w, x.mask, keep, o),
    );
    (out, h, c.expect("an LSTM's final cell"), tape)
}

fn gru<B: NdBackend, T: NativeFloat>(
    seq: Recurrence<B>,
    h0: Tensor<B, 2>,
    weight_hh: Tensor<B, 2>,
    bias_hn: Option<Tensor<B, 1>>,
    reset_after: bool,
    keep: bool,
) -> (Tensor<B, 3>, Tensor<B, 2>, Option<Tape<B>>) {
    let p = prepare::<B, T>(&seq, h0.dims()[1]);
    let (h0, w) = (values(h0), values(weight_hh));
    let bias: Vec<T> = bias_hn.map(values).unwrap_or_default();
    let (out, h, _, tape) = forward(
        &seq,
        p,
        (&h0, &[]),
        3,
        keep,
        #[inline(always)]
        |d, x, o| {
            let (mask, h0) = (x.mask, x.h0);
            cpu::gru_forward(d, x.projected, h0, &w, &bias, reset_after, mask, keep, o)
        },
    );
    (out, h, tape)
}

/// `a · b` with the kernels' GEMM, straight on burn-ndarray's arrays.
fn dense<B: NdBackend, T: NativeFloat>(a: Tensor<B, 2>, b: Tensor<B, 2>) -> Tensor<B, 2> {
    let [m, k] = a.dims();
    let [k2, n] = b.dims();
    assert_eq!(k, k2, "dense: [{m}, {k}] x [{k2}, {n}]");
    let a = T::array(a.into_primitive().tensor());
    let b = T::array(b.into_primitive().tensor());
    let a = a.view().into_dimensionality::<Ix2>().expect("2-D");
    let b = b.view().into_dimensionality::<Ix2>().expect("2-D");
    let mut out = vec![T::zero(); m * n];
    cpu::matmul(a, b, &mut out);
    tensor(out, [m, n])
}

/// A dense layer with the bias added by the GEMM and the ReLU in place.
fn dense_layer<B: NdBackend, T: NativeFloat>(layer: DenseLayer<B>) -> Tensor<B, 2> {
    let [m, k] = layer.input.dims();
    let [k2, n] = layer.weight.dims();
    assert_eq!(k, k2, "dense_layer: [{m}, {k}] x [{k2}, {n}]");
    let bias = layer.bias.map(values::<B, T, 1>);
    let x = T::array(layer.input.into_primitive().tensor());
    let w = T::array(layer.weight.into_primitive().tensor());
    let x = x.view().into_dimensionality::<Ix2>().expect("2-D");
    let w = w.view().into_dimensionality::<Ix2>().expect("2-D");
    tensor(cpu::dense_layer(x, w, bias.as_deref(), layer.relu), [m, n])
}

/// The pointwise part of a dense layer's backward pass: one pass for the ReLU's mask and the
/// bias's sums together (or the sums alone without a ReLU).
fn dense_layer_back<B: NdBackend, T: NativeFloat>(
    relu_output: Option<Tensor<B, 2>>,
    d: Tensor<B, 2>,
    bias: bool,
) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
    let [rows, cols] = d.dims();
    let mut sums = bias.then(|| vec![T::zero(); cols]);
    let g = match relu_output {
        Some(y) => {
            assert_eq!(
                y.dims(),
                [rows, cols],
                "dense_layer_backward: output and gradient"
            );
            let (y, d) = (contiguous::<B, T, 2>(y), contiguous::<B, T, 2>(d));
            let g = cpu::relu_backward(
                y.as_slice().expect("contiguous"),
                d.as_slice().expect("contiguous"),
                cols,
                sums.as_deref_mut(),
            );
            tensor(g, [rows, cols])
        }
        None => {
            if let Some(sums) = &mut sums {
                let a = contiguous::<B, T, 2>(d.clone());
                *sums = cpu::column_sums(a.as_slice().expect("contiguous"), cols);
            }
            d
        }
    };
    (g, sums.map(|s| tensor(s, [cols])))
}

/// Runs `$run::<f32>` or `$run::<f64>` for the backend's float type `$e`, else `$fallback`.
macro_rules! by_float {
    ($e:ty, $run:ident ( $($arg:expr),* ), $fallback:expr) => {
        match <$e as Element>::dtype() {
            DType::F32 => $run::<Self, f32>($($arg),*),
            DType::F64 => $run::<Self, f64>($($arg),*),
            _ => $fallback,
        }
    };
}

/// The upstream gradients as the kernels take them.
struct UpValues<T> {
    /// The gradient's own array when it is contiguous (it usually is).
    d_output: SharedArray<T>,
    d_h: Vec<T>,
    d_c: Vec<T>,
}

impl<T: NativeFloat> UpValues<T> {
    fn new<B: NdBackend>(up: Upstream<B>) -> Self {
        Self {
            d_output: contiguous(up.d_output),
            d_h: values(up.d_h),
            d_c: up.d_c.map(values).unwrap_or_default(),
        }
    }

    fn grads<'a, K>(&'a self, n: &'a Native<T, K>) -> cpu::Grads<'a, T> {
        cpu::Grads {
            d_output: self.d_output.as_slice().expect("a contiguous gradient"),
            d_h: &self.d_h,
            d_c: &self.d_c,
            mask: n.mask.as_deref(),
        }
    }
}

fn rnn_back<B: NdBackend, T: NativeFloat>(
    call: BackwardCall<B>,
    activation: Activation,
) -> TapeGrads<B> {
    let Some(n) = native::<B, T, Vec<cpu::RnnTape<T>>>(&call.tape) else {
        return tape::backward(call);
    };
    let (w, up) = (values(call.weights.weight_hh), UpValues::new(call.up));
    backward(
        n,
        1,
        &up,
        #[inline(always)]
        |d, k, g, o| cpu::rnn_backward(d, k, &w, g.mask, activation, g.d_output, g.d_h, o),
    )
}

fn lstm_back<B: NdBackend, T: NativeFloat>(call: BackwardCall<B>) -> TapeGrads<B> {
    let Some(n) = native::<B, T, Vec<cpu::LstmTape<T>>>(&call.tape) else {
        return tape::backward(call);
    };
    let (w, up) = (values(call.weights.weight_hh), UpValues::new(call.up));
    backward(
        n,
        4,
        &up,
        #[inline(always)]
        |d, k, g, o| cpu::lstm_backward(d, k, &w, g.mask, g.d_output, g.d_h, g.d_c, o),
    )
}

fn gru_back<B: NdBackend, T: NativeFloat>(
    call: BackwardCall<B>,
    reset_after: bool,
) -> TapeGrads<B> {
    let Some(n) = native::<B, T, Vec<cpu::GruTape<T>>>(&call.tape) else {
        return tape::backward(call);
    };
    let has_bias_hn = call.weights.bias_hn.is_some();
    let (w, up) = (values(call.weights.weight_hh), UpValues::new(call.up));
    let mut g = backward(
        n,
        3,
        &up,
        #[inline(always)]
        |d, k, g, o| cpu::gru_backward(d, k, &w, reset_after, g.mask, g.d_output, g.d_h, o),
    );
    if !has_bias_hn {
        g.d_bias_hn = None;
    }
    g
}

/// A recurrence of any kind on the kernels: outputs, final state and, when `keep`, the tape.
fn run<B: NdBackend, T: NativeFloat>(
    call: RecurrenceCall<B>,
    keep: bool,
) -> (Tensor<B, 3>, CellState<B>, Option<Tape<B>>) {
    let (seq, state) = (call.seq, call.state);
    let RecurrentWeights { weight_hh, bias_hn } = call.weights;
    let hidden_only = |hidden| CellState { hidden, cell: None };
    match call.cell {
        CellKind::Rnn { activation } => {
            let (out, h, tape) = rnn::<B, T>(seq, state.hidden, weight_hh, activation, keep);
            (out, hidden_only(h), tape)
        }
        CellKind::Lstm => {
            let c0 = state.cell.expect("an LSTM state has a memory cell");
            let (out, h, c, tape) = lstm::<B, T>(seq, state.hidden, c0, weight_hh, keep);
            let state = CellState {
                hidden: h,
                cell: Some(c),
            };
            (out, state, tape)
        }
        CellKind::Gru { reset_after } => {
            let (out, h, tape) =
                gru::<B, T>(seq, state.hidden, weight_hh, bias_hn, reset_after, keep);
            (out, hidden_only(h), tape)
        }
    }
}

/// `tanh` on the native vectorised loop.
fn tanh<B: NdBackend, T: NativeFloat, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    let dims = x.dims();
    let mut v = values::<B, T, D>(x);
    cpu::tanh_in_place(&mut v);
    tensor(v, dims)
}

/// im2col on the native loops.
fn unfold<B: NdBackend, T: NativeFloat>(x: Tensor<B, 4>, window: Window) -> Tensor<B, 2> {
    assert_eq!(
        x.dims(),
        [
            window.batch,
            window.image[0],
            window.image[1],
            window.channels
        ],
        "unfold: an image batch of the window"
    );
    let shape = window.columns_shape();
    tensor(
        cpu::unfold::<T>(
            contiguous::<B, T, 4>(x).as_slice().expect("contiguous"),
            window,
        ),
        shape,
    )
}

/// col2im on the native loops.
fn fold<B: NdBackend, T: NativeFloat>(columns: Tensor<B, 2>, window: Window) -> Tensor<B, 4> {
    assert_eq!(
        columns.dims(),
        window.columns_shape(),
        "fold: the columns of the window"
    );
    let shape = [
        window.batch,
        window.image[0],
        window.image[1],
        window.channels,
    ];
    let columns = contiguous::<B, T, 2>(columns);
    tensor(
        cpu::fold::<T>(columns.as_slice().expect("contiguous"), window),
        shape,
    )
}

/// The Bernoulli loss's logits and targets as the kernels read them, and the row length.
fn bernoulli_inputs<B: NdBackend, T: NativeFloat>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
) -> (SharedArray<T>, SharedArray<T>, [usize; 2]) {
    let dims = logits.dims();
    assert_eq!(
        targets.dims(),
        dims,
        "bernoulli_nll: targets {:?} do not match logits {:?}",
        targets.dims(),
        dims
    );
    (contiguous(logits), contiguous(targets), dims)
}

/// The Bernoulli negative log-likelihood per row on the native loop.
fn bernoulli<B: NdBackend, T: NativeFloat>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let (l, x, [rows, cols]) = bernoulli_inputs::<B, T>(logits, targets);
    let loss = cpu::bernoulli_nll(
        l.as_slice().expect("contiguous"),
        x.as_slice().expect("contiguous"),
        cols,
    );
    tensor(loss, [rows])
}

/// Its gradient in the logits on the native loop.
fn bernoulli_back<B: NdBackend, T: NativeFloat>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
    d: Tensor<B, 1>,
) -> Tensor<B, 2> {
    let (l, x, [rows, cols]) = bernoulli_inputs::<B, T>(logits, targets);
    assert_eq!(
        d.dims(),
        [rows],
        "bernoulli_nll_backward: one gradient per row"
    );
    let grad = cpu::bernoulli_nll_backward(
        l.as_slice().expect("contiguous"),
        x.as_slice().expect("contiguous"),
        &values::<B, T, 1>(d),
        cols,
    );
    tensor(grad, [rows, cols])
}

/// The additive attention score on the native kernel.
fn additive<B: NdBackend, T: NativeFloat>(score: AdditiveScore<B>) -> Tensor<B, 3> {
    let d = score_dims(&score);
    let AdditiveScore { queries, keys, v } = score;
    let scores = cpu::additive_scores::<T>(&values(queries), &values(keys), &values(v), d);
    tensor(scores, [d.batch, d.queries, d.keys])
}

/// The additive attention score's gradients on the native kernel.
fn additive_back<B: NdBackend, T: NativeFloat>(
    score: AdditiveScore<B>,
    g: Tensor<B, 3>,
) -> AdditiveScore<B> {
    let d = score_dims(&score);
    let (q, k, v) = (values(score.queries), values(score.keys), values(score.v));
    let grads = cpu::additive_scores_backward::<T>(&q, &k, &v, &values(g), d);
    AdditiveScore {
        queries: tensor(grads.d_q, [d.batch, d.queries, d.units]),
        keys: tensor(grads.d_k, [d.batch, d.keys, d.units]),
        v: tensor(grads.d_v, [d.units]),
    }
}

fn score_dims<B: NdBackend>(score: &AdditiveScore<B>) -> cpu::ScoreDims {
    let [batch, queries, units] = score.queries.dims();
    let [kb, keys, ka] = score.keys.dims();
    assert!(
        kb == batch && ka == units,
        "additive scores: keys {:?} do not match queries {:?}",
        score.keys.dims(),
        score.queries.dims()
    );
    cpu::ScoreDims {
        batch,
        queries,
        keys,
        units,
    }
}

/// One Adam step on the native loop, updating the parameter and the moments in place (each
/// array is copied first only if another tensor shares it).
fn adam<B: NdBackend, T: NativeFloat, const D: usize>(
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    moment_1: Tensor<B, D>,
    moment_2: Tensor<B, D>,
    step: AdamStep,
) -> [Tensor<B, D>; 3] {
    check_adam_shapes(&param, &grad, &moment_1, &moment_2);
    let mut p = contiguous::<B, T, D>(param);
    let g = contiguous::<B, T, D>(grad);
    let mut m = contiguous::<B, T, D>(moment_1);
    let mut v = contiguous::<B, T, D>(moment_2);
    let (second, correction) = step.corrections();
    // the scalars converted from f32 (the learning rate from f64) as burn's scalar ops do
    let lit = |x: f32| T::lit(f64::from(x));
    let scalars = cpu::AdamScalars {
        beta_1: (lit(step.beta_1), lit(1.0 - step.beta_1)),
        beta_2: (lit(step.beta_2), lit(1.0 - step.beta_2)),
        correction: lit(correction),
        epsilon: lit(step.epsilon * second),
        lr: T::lit(step.lr),
        weight_decay: step.weight_decay.map(lit),
    };
    cpu::adam_step(
        p.as_slice_mut().expect("contiguous"),
        g.as_slice().expect("contiguous"),
        m.as_slice_mut().expect("contiguous"),
        v.as_slice_mut().expect("contiguous"),
        &scalars,
    );
    [p, m, v].map(|a| Tensor::from_primitive(TensorPrimitive::Float(T::primitive(a))))
}

/// The backward pass of a recurrence of any kind over its tape.
fn back<B: NdBackend, T: NativeFloat>(call: BackwardCall<B>) -> TapeGrads<B> {
    match call.cell {
        CellKind::Rnn { activation } => rnn_back::<B, T>(call, activation),
        CellKind::Lstm => lstm_back::<B, T>(call),
        CellKind::Gru { reset_after } => gru_back::<B, T>(call, reset_after),
    }
}

impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> SequenceOps for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
}

impl<E: FloatNdArrayElement, I: IntNdArrayElement, Q: QuantElement> RecurrentBackend
    for NdArray<E, I, Q>
where
    NdArrayTensor: From<SharedArray<E>>,
    NdArrayTensor: From<SharedArray<I>>,
{
    fn dense(a: Tensor<Self, 2>, b: Tensor<Self, 2>, _: Differentiation) -> Tensor<Self, 2> {
        by_float!(E, dense(a, b), a.matmul(b))
    }

    fn recurrence(call: RecurrenceCall<Self>) -> (Tensor<Self, 3>, CellState<Self>) {
        let (out, state, _) = by_float!(E, run(call, false), return tape::recurrence(call));
        (out, state)
    }

    fn forward_tape(call: RecurrenceCall<Self>) -> (Tensor<Self, 3>, CellState<Self>, Tape<Self>) {
        let (out, state, tape) = by_float!(E, run(call, true), return tape::forward(call));
        (out, state, tape.expect("kept"))
    }

    fn backward_tape(call: BackwardCall<Self>) -> TapeGrads<Self> {
        by_float!(E, back(call), tape::backward(call))
    }

    fn tanh<const D: usize>(x: Tensor<Self, D>, _: Differentiation) -> Tensor<Self, D> {
        match <E as Element>::dtype() {
            DType::F32 => tanh::<Self, f32, D>(x),
            DType::F64 => tanh::<Self, f64, D>(x),
            _ => x.tanh(),
        }
    }

    fn additive_scores(score: AdditiveScore<Self>, _: Differentiation) -> Tensor<Self, 3> {
        by_float!(E, additive(score), additive_scores_reference(score))
    }

    fn unfold(x: Tensor<Self, 4>, window: Window, _: Differentiation) -> Tensor<Self, 2> {
        by_float!(E, unfold(x, window), unfold_reference(x, window))
    }

    fn fold(columns: Tensor<Self, 2>, window: Window, _: Differentiation) -> Tensor<Self, 4> {
        by_float!(E, fold(columns, window), fold_reference(columns, window))
    }

    fn additive_scores_backward(
        score: AdditiveScore<Self>,
        d: Tensor<Self, 3>,
    ) -> AdditiveScore<Self> {
        by_float!(
            E,
            additive_back(score, d),
            additive_scores_backward_reference(score, d)
        )
    }

    fn bernoulli_nll(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 2>,
        _: Differentiation,
    ) -> Tensor<Self, 1> {
        by_float!(
            E,
            bernoulli(logits, targets),
            bernoulli_nll_reference(logits, targets)
        )
    }

    fn bernoulli_nll_backward(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 2>,
        d: Tensor<Self, 1>,
    ) -> Tensor<Self, 2> {
        by_float!(
            E,
            bernoulli_back(logits, targets, d),
            bernoulli_nll_backward_reference(logits, targets, d)
        )
    }

    fn dense_layer(layer: DenseLayer<Self>, how: Differentiation) -> Tensor<Self, 2> {
        by_float!(E, dense_layer(layer), dense_layer_reference(layer, how))
    }

    fn dense_layer_backward(
        relu_output: Option<Tensor<Self, 2>>,
        d: Tensor<Self, 2>,
        bias: bool,
    ) -> (Tensor<Self, 2>, Option<Tensor<Self, 1>>) {
        by_float!(
            E,
            dense_layer_back(relu_output, d, bias),
            dense_layer_backward_reference(relu_output, d, bias)
        )
    }

    fn adam_step<const D: usize>(
        param: Tensor<Self, D>,
        grad: Tensor<Self, D>,
        moment_1: Tensor<Self, D>,
        moment_2: Tensor<Self, D>,
        step: AdamStep,
    ) -> [Tensor<Self, D>; 3] {
        match <E as Element>::dtype() {
            DType::F32 => adam::<Self, f32, D>(param, grad, moment_1, moment_2, step),
            DType::F64 => adam::<Self, f64, D>(param, grad, moment_1, moment_2, step),
            _ => adam_step_reference(param, grad, moment_1, moment_2, step),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{contiguous, values};
    use burn::backend::NdArray;
    use burn::tensor::Tensor;

    #[test]
    fn strided_tensors_reach_the_kernels_row_major() {
        let device = Default::default();
        let t = Tensor::<NdArray, 1, burn::tensor::Int>::arange(0..24, &device)
            .float()
            .reshape([2, 3, 4])
            .swap_dims(0, 2); // [4, 3, 2], a strided view
        let expected: Vec<f32> = t.to_data().to_vec().unwrap();
        let a = contiguous::<NdArray, f32, 3>(t.clone());
        assert_eq!(a.shape(), &[4, 3, 2]);
        assert_eq!(a.as_slice().unwrap(), &expected[..]);
        assert_eq!(values::<NdArray, f32, 3>(t), expected);
        let row_major = Tensor::<NdArray, 1>::from_floats([1.0, 2.0, 3.0], &device);
        assert_eq!(
            contiguous::<NdArray, f32, 1>(row_major).as_slice().unwrap(),
            &[1.0, 2.0, 3.0]
        );
    }
}

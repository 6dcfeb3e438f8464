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
//! `[batch, queries, keys, units]`. And the two data movements of a convolution
//! ([`unfold`](RecurrentBackend::unfold), "im2col", and its adjoint
//! [`fold`](RecurrentBackend::fold), "col2im"), which in tensor ops are dozens of strided copies.
//! And the Bernoulli likelihood of logits ([`bernoulli_nll`](RecurrentBackend::bernoulli_nll),
//! a VAE's reconstruction term), nine passes over the batch in tensor ops and one here; and one
//! Adam step ([`adam_step`](RecurrentBackend::adam_step), [`crate::optim::FusedAdam`]), thirteen
//! passes over a parameter tensor in tensor ops and one here. And a whole dense layer
//! ([`dense_layer`](RecurrentBackend::dense_layer): product, bias and ReLU), whose bias and ReLU
//! are three passes each way in tensor ops, and one each way here.
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

/// How a backend runs recurrences over time (burn's custom-kernel pattern: layers and models are
/// generic over this extension trait). One method per job, whatever the cell: inference, the
/// training tape's forward and backward passes, the input projection, and a few costly tensor
/// ops (the additive attention score, im2col and col2im, the Bernoulli likelihood, an Adam
/// step). Every method has a reference implementation in burn's tensor ops; a backend with a
/// fused kernel overrides it without any change to layers or models.
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

    /// im2col: the `k_h · k_w` shifted windows of a channels-last image batch `x`
    /// `[N, H, W, C]` as one row per output pixel, `[N · H_out · W_out, k_h · k_w · C]` (columns
    /// in `(u, v, c)` order; pixels in the padding read 0). The provided version is
    /// [`unfold_reference`]; `Autodiff` makes it one node whose backward pass is
    /// [`fold`](Self::fold) (with [`Differentiation::Plain`] it records the reference's ops).
    fn unfold(x: Tensor<Self, 4>, window: Window, how: Differentiation) -> Tensor<Self, 2> {
        let _ = how;
        unfold_reference(x, window)
    }

    /// col2im, the adjoint of [`unfold`](Self::unfold): adds each row's `(u, v, c)` entries back
    /// into the pixels they were read from, `[N · H_out · W_out, k_h · k_w · C]` →
    /// `[N, H, W, C]` (entries that fall into the padding are dropped). A transposed
    /// convolution's output, and a convolution's input gradient. The provided version is
    /// [`fold_reference`].
    fn fold(columns: Tensor<Self, 2>, window: Window, how: Differentiation) -> Tensor<Self, 4> {
        let _ = how;
        fold_reference(columns, window)
    }

    /// The Bernoulli negative log-likelihood of every row, `[rows, cols]` → `[rows]`:
    /// `Σⱼ softplus(l_ij) − x_ij l_ij` for logits `l` and targets `x` in `[0, 1]`
    /// ([`crate::loss::bernoulli_nll`]). The provided version is [`bernoulli_nll_reference`];
    /// ndarray overrides it with one vectorised pass, `Autodiff` with one node whose backward
    /// pass is [`bernoulli_nll_backward`](Self::bernoulli_nll_backward) (with
    /// [`Differentiation::Plain`] it records the reference's tensor ops instead).
    fn bernoulli_nll(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 2>,
        how: Differentiation,
    ) -> Tensor<Self, 1> {
        let _ = how;
        bernoulli_nll_reference(logits, targets)
    }

    /// The gradient of [`bernoulli_nll`](Self::bernoulli_nll) in the logits from the rows'
    /// gradient `d` `[rows]`: `d_i (σ(l_ij) − x_ij)`. The provided version is
    /// [`bernoulli_nll_backward_reference`].
    fn bernoulli_nll_backward(
        logits: Tensor<Self, 2>,
        targets: Tensor<Self, 2>,
        d: Tensor<Self, 1>,
    ) -> Tensor<Self, 2> {
        bernoulli_nll_backward_reference(logits, targets, d)
    }

    /// A dense layer in one call, `x W + b` or `relu(x W + b)` ([`DenseLayer`]): `[rows, in]` →
    /// `[rows, out]`. The provided version is [`dense_layer_reference`]
    /// ([`dense`](Self::dense), then burn's add and `relu`); ndarray overrides it with the bias
    /// added by the GEMM and the ReLU in place, `Autodiff` with one node whose backward pass is
    /// [`dense_layer_backward`](Self::dense_layer_backward) and two [`dense`](Self::dense)
    /// products (with [`Differentiation::Plain`] it records the reference's ops instead).
    fn dense_layer(layer: DenseLayer<Self>, how: Differentiation) -> Tensor<Self, 2> {
        dense_layer_reference(layer, how)
    }

    /// The pointwise part of a dense layer's backward pass, from the gradient `d` of its output
    /// `[rows, out]`: the gradient of the pre-activation `x W + b` (`d` where the output is
    /// positive and 0 elsewhere when `relu_output` is the ReLU's output, else `d`) and, when
    /// `bias`, its sum over the rows (the bias's gradient). The provided version is
    /// [`dense_layer_backward_reference`].
    fn dense_layer_backward(
        relu_output: Option<Tensor<Self, 2>>,
        d: Tensor<Self, 2>,
        bias: bool,
    ) -> (Tensor<Self, 2>, Option<Tensor<Self, 1>>) {
        dense_layer_backward_reference(relu_output, d, bias)
    }

    /// One Adam step of a parameter tensor from its gradient and moments (all of one shape): the new
    /// parameter, first and second moments, `[θ, m, v]`, as burn's `Adam` computes them
    /// ([`crate::optim::FusedAdam`]). The provided version is [`adam_step_reference`], burn's
    /// tensor operations; ndarray overrides it with one pass that updates the three in place.
    ///
    /// # Panics
    /// When the four tensors differ in shape.
    fn adam_step<const D: usize>(
        param: Tensor<Self, D>,
        grad: Tensor<Self, D>,
        moment_1: Tensor<Self, D>,
        moment_2: Tensor<Self, D>,
        step: AdamStep,
    ) -> [Tensor<Self, D>; 3] {
        adam_step_reference(param, grad, moment_1, moment_2, step)
    }
}

/// The settings of one Adam step ([`RecurrentBackend::adam_step`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamStep {
    /// The learning rate.
    pub lr: f64,
    /// The first moment's decay `β₁`.
    pub beta_1: f32,
    /// The second moment's decay `β₂`.
    pub beta_2: f32,
    /// `ε` of the denominator `√v̂ + ε`.
    pub epsilon: f32,
    /// An L2 penalty added to the gradient, `penalty · θ + g` (burn's `WeightDecay`).
    pub weight_decay: Option<f32>,
    /// The step's number `t`, from 1.
    pub time: usize,
}

impl AdamStep {
    /// `(√(1 − β₂ᵗ), √(1 − β₂ᵗ) / (1 − β₁ᵗ))`, computed in `f32` as burn's `Adam` does: the
    /// update is `m · c / (√v + ε √(1 − β₂ᵗ))` with `c` the second, which equals
    /// `m̂ / (√v̂ + ε)` for the bias-corrected moments `m̂ = m / (1 − β₁ᵗ)`,
    /// `v̂ = v / (1 − β₂ᵗ)`.
    pub fn corrections(&self) -> (f32, f32) {
        let t = i32::try_from(self.time).unwrap_or(i32::MAX);
        let second = (1.0 - self.beta_2.powi(t)).sqrt();
        (second, second / (1.0 - self.beta_1.powi(t)))
    }
}

/// Panics unless the four tensors of an Adam step have one shape.
pub(crate) fn check_adam_shapes<B: burn::tensor::backend::Backend, const D: usize>(
    param: &Tensor<B, D>,
    grad: &Tensor<B, D>,
    moment_1: &Tensor<B, D>,
    moment_2: &Tensor<B, D>,
) {
    let dims = param.dims();
    assert!(
        grad.dims() == dims && moment_1.dims() == dims && moment_2.dims() == dims,
        "adam_step: parameter {dims:?}, gradient {:?}, moments {:?} and {:?}",
        grad.dims(),
        moment_1.dims(),
        moment_2.dims()
    );
}

/// [`RecurrentBackend::adam_step`] with burn's tensor operations, in burn's order.
pub fn adam_step_reference<B: burn::tensor::backend::Backend, const D: usize>(
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    moment_1: Tensor<B, D>,
    moment_2: Tensor<B, D>,
    step: AdamStep,
) -> [Tensor<B, D>; 3] {
    check_adam_shapes(&param, &grad, &moment_1, &moment_2);
    let grad = match step.weight_decay {
        Some(penalty) => param.clone().mul_scalar(penalty).add(grad),
        None => grad,
    };
    let m = moment_1
        .mul_scalar(step.beta_1)
        .add(grad.clone().mul_scalar(1.0 - step.beta_1));
    let v = moment_2
        .mul_scalar(step.beta_2)
        .add(grad.square().mul_scalar(1.0 - step.beta_2));
    let (second, correction) = step.corrections();
    let update = m
        .clone()
        .mul_scalar(correction)
        .div(v.clone().sqrt().add_scalar(step.epsilon * second));
    [param - update.mul_scalar(step.lr), m, v]
}

/// [`RecurrentBackend::bernoulli_nll`] with tensor ops: `max(l, 0) + log1p(e^{−|l|}) − x l`,
/// summed over each row.
pub fn bernoulli_nll_reference<B: burn::tensor::backend::Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
) -> Tensor<B, 1> {
    let softplus = logits.clone().clamp_min(0.0) + logits.clone().abs().neg().exp().log1p();
    (softplus - targets * logits).sum_dim(1).squeeze_dim(1)
}

/// [`RecurrentBackend::bernoulli_nll_backward`] with tensor ops: `d_i (σ(l_ij) − x_ij)`.
pub fn bernoulli_nll_backward_reference<B: burn::tensor::backend::Backend>(
    logits: Tensor<B, 2>,
    targets: Tensor<B, 2>,
    d: Tensor<B, 1>,
) -> Tensor<B, 2> {
    (burn::tensor::activation::sigmoid(logits) - targets) * d.unsqueeze_dim(1)
}

/// A dense layer's input and parameters ([`RecurrentBackend::dense_layer`]).
#[derive(Clone, Debug)]
pub struct DenseLayer<B: burn::tensor::backend::Backend> {
    /// `x`, `[rows, in]`.
    pub input: Tensor<B, 2>,
    /// `W`, `[in, out]` (burn's `Linear` layout).
    pub weight: Tensor<B, 2>,
    /// `b`, `[out]`.
    pub bias: Option<Tensor<B, 1>>,
    /// Whether the layer's output is `relu(x W + b)` rather than `x W + b`.
    pub relu: bool,
}

/// [`RecurrentBackend::dense_layer`] as [`RecurrentBackend::dense`] and burn's tensor ops.
///
/// # Panics
/// When the input's width is not the weight's rows, or the bias's length not its columns.
pub fn dense_layer_reference<B: RecurrentBackend>(
    layer: DenseLayer<B>,
    how: Differentiation,
) -> Tensor<B, 2> {
    let DenseLayer {
        input,
        weight,
        bias,
        relu,
    } = layer;
    let [_, outputs] = weight.dims();
    let y = B::dense(input, weight, how);
    let y = match bias {
        Some(b) => {
            assert_eq!(
                b.dims(),
                [outputs],
                "dense_layer: a bias of {outputs} values"
            );
            y + b.unsqueeze()
        }
        None => y,
    };
    if relu {
        burn::tensor::activation::relu(y)
    } else {
        y
    }
}

/// [`RecurrentBackend::dense_layer_backward`] with burn's tensor ops (the masking of burn's own
/// `relu` backward pass: zero where the output is at most 0).
pub fn dense_layer_backward_reference<B: burn::tensor::backend::Backend>(
    relu_output: Option<Tensor<B, 2>>,
    d: Tensor<B, 2>,
    bias: bool,
) -> (Tensor<B, 2>, Option<Tensor<B, 1>>) {
    let d = match relu_output {
        Some(y) => d.mask_fill(y.lower_equal_elem(0.0), 0.0),
        None => d,
    };
    let sums = bias.then(|| d.clone().sum_dim(0).squeeze_dim(0));
    (d, sums)
}

/// The geometry of a convolution's sliding window: a batch of `batch` channels-last images of
/// `image` = `[H, W]` pixels and `channels` channels, zero-padded by `padding` on both sides, read
/// by a `kernel` = `[k_h, k_w]` window moved by `stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Images `N`.
    pub batch: usize,
    /// `[H, W]`.
    pub image: [usize; 2],
    /// Channels `C`.
    pub channels: usize,
    /// `[k_h, k_w]`.
    pub kernel: [usize; 2],
    /// Steps of the window along rows and columns (at least 1).
    pub stride: [usize; 2],
    /// Zeros on both sides of the rows and of the columns.
    pub padding: [usize; 2],
}

impl Window {
    /// `[H_out, W_out]`: positions of the window, `(H + 2p − k) / s + 1`; `None` when the padded
    /// image is smaller than the kernel or a stride is 0.
    pub fn output(&self) -> Option<[usize; 2]> {
        let side = |i: usize| {
            let stride = self.stride[i];
            (stride > 0)
                .then_some(())
                .and((self.image[i] + 2 * self.padding[i]).checked_sub(self.kernel[i]))
                .map(|d| d / stride + 1)
        };
        Some([side(0)?, side(1)?])
    }

    /// The `[rows, columns]` of the unfolded matrix.
    ///
    /// # Panics
    /// When the window does not fit ([`output`](Self::output) is `None`).
    pub fn columns_shape(&self) -> [usize; 2] {
        let [ho, wo] = self.output().expect("a window that fits the padded image");
        let [kh, kw] = self.kernel;
        [self.batch * ho * wo, kh * kw * self.channels]
    }

    fn image_shape(&self) -> [usize; 4] {
        [self.batch, self.image[0], self.image[1], self.channels]
    }
}

/// [`RecurrentBackend::unfold`] with tensor ops and no strided slice: with `u = s·q + r`, input
/// row `s·i + u` is row `i + q` of phase `r` of the padded image viewed as `[rows / s, s]`, so
/// each of the `k_h · k_w` taps is one unit-stride slice.
///
/// # Panics
/// If `x` is not `[N, H, W, C]` of the window, or the window does not fit.
pub fn unfold_reference<B: burn::tensor::backend::Backend>(
    x: Tensor<B, 4>,
    window: Window,
) -> Tensor<B, 2> {
    assert_eq!(
        x.dims(),
        window.image_shape(),
        "unfold: an image batch of the window"
    );
    let [rows, cols] = window.columns_shape();
    let [ho, wo] = window.output().expect("checked by columns_shape");
    let Window {
        batch: n,
        image: [h, w],
        channels: c,
        kernel: [kh, kw],
        stride: [sh, sw],
        padding: [ph, pw],
    } = window;
    let (qh, qw) = (kh.div_ceil(sh), kw.div_ceil(sw));
    let (mh, mw) = (ho + qh - 1, wo + qw - 1);
    let phases = x
        .pad(
            [
                (ph, (sh * mh).saturating_sub(h + ph)),
                (pw, (sw * mw).saturating_sub(w + pw)),
                (0, 0),
            ],
            0.0,
        )
        .slice([0..n, 0..sh * mh, 0..sw * mw, 0..c])
        .reshape([n, mh, sh, mw, sw, c]);
    let mut taps = Vec::with_capacity(kh * kw);
    for u in 0..kh {
        for v in 0..kw {
            let (q, r, qq, rr) = (u / sh, u % sh, v / sw, v % sw);
            taps.push(phases.clone().slice([
                0..n,
                q..q + ho,
                r..r + 1,
                qq..qq + wo,
                rr..rr + 1,
                0..c,
            ]));
        }
    }
    // [N, H_out, 1, W_out, k_h·k_w, C]
    Tensor::cat(taps, 4).reshape([rows, cols])
}

/// [`RecurrentBackend::fold`] with tensor ops: tap `u = s·q + r` of output row `i` lands on row
/// `i + q` of phase `r`; each phase is a sum of shifted taps, and the phases interleave into
/// the padded image, which is then cropped.
///
/// # Panics
/// If `columns` is not `[N · H_out · W_out, k_h · k_w · C]` of the window.
pub fn fold_reference<B: burn::tensor::backend::Backend>(
    columns: Tensor<B, 2>,
    window: Window,
) -> Tensor<B, 4> {
    assert_eq!(
        columns.dims(),
        window.columns_shape(),
        "fold: the columns of the window"
    );
    let [ho, wo] = window.output().expect("checked by columns_shape");
    let Window {
        batch: n,
        image: [h, w],
        channels: c,
        kernel: [kh, kw],
        stride: [sh, sw],
        padding: [ph, pw],
    } = window;
    let taps = columns.reshape([n, ho, wo, kh, kw, c]);
    let (qh, qw) = (kh.div_ceil(sh), kw.div_ceil(sw));
    let (mh, mw) = (ho + qh - 1, wo + qw - 1);
    let device = taps.device();
    let mut phase_rows = Vec::with_capacity(sh);
    for r in 0..sh {
        let mut phase_cols = Vec::with_capacity(sw);
        for rr in 0..sw {
            let mut sum: Option<Tensor<B, 4>> = None;
            for q in (0..qh).filter(|q| sh * q + r < kh) {
                for qq in (0..qw).filter(|qq| sw * qq + rr < kw) {
                    let (u, v) = (sh * q + r, sw * qq + rr);
                    let tap = taps
                        .clone()
                        .slice([0..n, 0..ho, 0..wo, u..u + 1, v..v + 1, 0..c])
                        .reshape([n, ho, wo, c])
                        .pad([(q, qh - 1 - q), (qq, qw - 1 - qq), (0, 0)], 0.0);
                    sum = Some(match sum {
                        Some(s) => s + tap,
                        None => tap,
                    });
                }
            }
            let phase = sum.unwrap_or_else(|| Tensor::zeros([n, mh, mw, c], &device));
            phase_cols.push(phase.reshape([n, mh, 1, mw, 1, c]));
        }
        phase_rows.push(Tensor::cat(phase_cols, 4));
    }
    // the padded image, extended or cut to hold rows p..p+H
    Tensor::cat(phase_rows, 2)
        .reshape([n, sh * mh, sw * mw, c])
        .pad(
            [
                (0, (h + ph).saturating_sub(sh * mh)),
                (0, (w + pw).saturating_sub(sw * mw)),
                (0, 0),
            ],
            0.0,
        )
        .slice([0..n, ph..ph + h, pw..pw + w, 0..c])
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

//! The reference recurrences, written with ordinary tensor ops on any backend: a forward pass
//! that keeps a tape of what the hand-written backward pass needs ([`forward`]), that backward
//! pass ([`backward`]), and the forward pass alone ([`recurrence`]). They are the provided
//! implementations of [`RecurrentBackend`](super::RecurrentBackend): `Autodiff` runs every
//! recurrence as one graph node built from the tape pair, and a backend with native kernels
//! overrides them and keeps its own buffers in the tape.

use std::any::Any;
use std::sync::Arc;

use burn::tensor::{Tensor, backend::Backend};

use super::plain;
use super::sequence::{
    CellKind, CellState, Recurrence, RecurrenceCall, RecurrentWeights, SequenceOps,
};
use crate::activation::Activation;

/// What a recurrence's forward pass saved for its backward pass.
#[derive(Clone)]
pub struct Tape<B: Backend> {
    /// The saved values.
    pub data: TapeData<B>,
    /// The mask the forward pass ran with, `[batch, time]`.
    pub mask: Option<Tensor<B, 2>>,
    /// Whether it ran from the last step to the first.
    pub reverse: bool,
}

/// The saved values of a [`Tape`].
#[derive(Clone)]
pub enum TapeData<B: Backend> {
    /// Per processing step (the first processed first), what the tensor-op forward pass saved.
    Steps(Vec<SavedStep<B>>),
    /// A backend's own buffers (downcast by the backend that made them; a tape of another type
    /// reaching that backend is a programming error and panics, naming both).
    Native(Arc<dyn Any + Send + Sync>),
}

/// What the tensor-op forward pass saves of one step, `[batch, H]` each (the course's
/// `LSTM.cache`, and its counterparts for the other cells).
#[derive(Clone, Debug)]
pub enum SavedStep<B: Backend> {
    /// Simple RNN: the state before and after the step.
    Rnn {
        /// `h` before the step.
        h_prev: Tensor<B, 2>,
        /// `h'`, the step's output.
        h_new: Tensor<B, 2>,
    },
    /// LSTM: the states before the step, the activated gates and `tanh(c')`.
    Lstm {
        /// `h` before the step.
        h_prev: Tensor<B, 2>,
        /// `c` before the step.
        c_prev: Tensor<B, 2>,
        /// Input gate.
        i: Tensor<B, 2>,
        /// Forget gate.
        f: Tensor<B, 2>,
        /// Candidate.
        g: Tensor<B, 2>,
        /// Output gate.
        o: Tensor<B, 2>,
        /// `tanh(c')`.
        tanh_c: Tensor<B, 2>,
    },
    /// GRU: the state before the step and the gates.
    Gru {
        /// `h` before the step.
        h_prev: Tensor<B, 2>,
        /// The gates `r`, `z`, `n` (and `hn` in the reset-after form).
        gates: plain::GruGates<B>,
    },
}

impl<B: Backend> SavedStep<B> {
    fn kind_name(&self) -> &'static str {
        match self {
            SavedStep::Rnn { .. } => "simple-RNN",
            SavedStep::Lstm { .. } => "LSTM",
            SavedStep::Gru { .. } => "GRU",
        }
    }
}

impl<B: Backend> core::fmt::Debug for Tape<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let data = match &self.data {
            TapeData::Steps(steps) => format!("{} steps of tensors", steps.len()),
            TapeData::Native(_) => "native buffers".to_string(),
        };
        f.debug_struct("Tape")
            .field("data", &data)
            .field("masked", &self.mask.is_some())
            .field("reverse", &self.reverse)
            .finish()
    }
}

/// The gradients of a recurrence's inputs, from its tape.
#[derive(Clone, Debug)]
pub struct TapeGrads<B: Backend> {
    /// Of the input projection, `[batch, time, G·H]`.
    pub d_projected: Tensor<B, 3>,
    /// Of the initial hidden state.
    pub d_h0: Tensor<B, 2>,
    /// Of the initial memory cell (LSTM).
    pub d_c0: Option<Tensor<B, 2>>,
    /// Of the recurrent weights `[H, G·H]`.
    pub d_weight: Tensor<B, 2>,
    /// Of the GRU's candidate recurrent bias `[H]` (reset-after form with a bias).
    pub d_bias_hn: Option<Tensor<B, 1>>,
}

/// The upstream gradients a backward pass starts from.
#[derive(Clone, Debug)]
pub struct Upstream<B: Backend> {
    /// Of the outputs, `[batch, time, H]`.
    pub d_output: Tensor<B, 3>,
    /// Of the final hidden state.
    pub d_h: Tensor<B, 2>,
    /// Of the final memory cell (LSTM).
    pub d_c: Option<Tensor<B, 2>>,
}

/// One backward pass to run: what
/// [`RecurrentBackend::backward_tape`](super::RecurrentBackend::backward_tape) receives.
#[derive(Clone, Debug)]
pub struct BackwardCall<B: Backend> {
    /// The cell the forward pass ran.
    pub cell: CellKind,
    /// What the forward pass saved.
    pub tape: Tape<B>,
    /// The recurrent weights the forward pass ran with.
    pub weights: RecurrentWeights<B>,
    /// The gradients of the results.
    pub up: Upstream<B>,
}

/// A recurrence's inputs per step, in time order, and the order the steps run in.
struct Unrolled<B: Backend> {
    xs: Vec<Tensor<B, 2>>,
    /// `[batch, 1]` per step.
    masks: Option<Vec<Tensor<B, 2>>>,
    order: Vec<usize>,
    /// The mask and direction, for the tape.
    mask: Option<Tensor<B, 2>>,
    reverse: bool,
}

impl<B: SequenceOps> Unrolled<B> {
    fn new(seq: Recurrence<B>) -> Self {
        let time = seq.projected.dims()[1];
        Self {
            xs: B::unstack_time(seq.projected),
            masks: seq
                .mask
                .as_ref()
                .map(|m| B::unstack_time(m.clone().unsqueeze_dim(2))),
            order: if seq.reverse {
                (0..time).rev().collect()
            } else {
                (0..time).collect()
            },
            mask: seq.mask,
            reverse: seq.reverse,
        }
    }

    fn time(&self) -> usize {
        self.xs.len()
    }

    fn mask(&self, t: usize) -> Option<&Tensor<B, 2>> {
        self.masks.as_ref().map(|m| &m[t])
    }

    /// The outputs stacked in time order, and the tape of the saved steps.
    fn finish(
        self,
        outputs: Vec<Option<Tensor<B, 2>>>,
        saved: Vec<SavedStep<B>>,
    ) -> (Tensor<B, 3>, Tape<B>) {
        let tape = Tape {
            data: TapeData::Steps(saved),
            mask: self.mask,
            reverse: self.reverse,
        };
        (stack_time(outputs), tape)
    }
}

/// A step of [`unwind`]: its time index, what the forward pass saved, its mask.
type UnwoundStep<B> = (usize, SavedStep<B>, Option<Tensor<B, 2>>);

/// A tape's saved steps from the last processed to the first, each with its time index and its
/// mask (`[batch, 1]`), and the number of steps.
fn unwind<B: SequenceOps>(tape: Tape<B>) -> (usize, impl Iterator<Item = UnwoundStep<B>>) {
    let (mask, reverse) = (tape.mask.clone(), tape.reverse);
    let saved = steps(tape);
    let time = saved.len();
    let masks = mask.map(|m| B::unstack_time(m.unsqueeze_dim(2)));
    let steps = saved.into_iter().enumerate().rev().map(move |(k, step)| {
        let t = if reverse { time - 1 - k } else { k };
        (t, step, masks.as_ref().map(|m| m[t].clone()))
    });
    (time, steps)
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

/// `x`, plus `extra` where there is one (what a step carries past padding).
fn plus<B: Backend>(x: Tensor<B, 2>, extra: Option<Tensor<B, 2>>) -> Tensor<B, 2> {
    match extra {
        Some(e) => x + e,
        None => x,
    }
}

/// A step's output: zero on padding.
fn masked<B: Backend>(h: &Tensor<B, 2>, m: Option<&Tensor<B, 2>>) -> Tensor<B, 2> {
    match m {
        Some(m) => h.clone() * m.clone(),
        None => h.clone(),
    }
}

/// The gradient that reaches a step's new state, `(dY + d_state) ⊙ m`, and the part of
/// `d_state` carried past the step on padding, `d_state ⊙ (1 − m)`. (On padding the output is
/// zero, so `dY` reaches nothing there.)
fn through_step<B: Backend>(
    d_output: Option<Tensor<B, 2>>,
    d_state: Tensor<B, 2>,
    m: Option<&Tensor<B, 2>>,
) -> (Tensor<B, 2>, Option<Tensor<B, 2>>) {
    let total = match d_output {
        Some(dy) => dy + d_state.clone(),
        None => d_state.clone(),
    };
    match m {
        Some(m) => {
            let keep = m.clone().neg() + 1.0;
            (total * m.clone(), Some(d_state * keep))
        }
        None => (total, None),
    }
}

/// Row `t` of `[batch, time, H]` as `[batch, H]`.
pub(crate) fn row<B: Backend>(g: &Tensor<B, 3>, t: usize) -> Tensor<B, 2> {
    let [batch, _, hidden] = g.dims();
    g.clone()
        .slice([0..batch, t..t + 1, 0..hidden])
        .reshape([batch, hidden])
}

/// `Σ_t aᵀ_t b_t` over the steps, as one product of the row-stacked steps.
fn sum_outer<B: Backend>(a: Vec<Tensor<B, 2>>, b: Vec<Tensor<B, 2>>) -> Tensor<B, 2> {
    Tensor::cat(a, 0).transpose().matmul(Tensor::cat(b, 0))
}

fn steps<B: Backend>(tape: Tape<B>) -> Vec<SavedStep<B>> {
    match tape.data {
        TapeData::Steps(steps) => steps,
        TapeData::Native(_) => panic!(
            "a backend's native tape reached the tensor-op backward pass: the backend that made it must run its backward pass"
        ),
    }
}

/// The panic of a backward pass given another cell's tape.
fn wrong_step(expected: &str, got: &SavedStep<impl Backend>) -> ! {
    panic!(
        "the {expected} backward pass got a tape of {} steps",
        got.kind_name()
    )
}

/// `x ⊙ (1 − x)`: `σ'` from `σ`'s output.
fn d_sigmoid<B: Backend>(s: Tensor<B, 2>) -> Tensor<B, 2> {
    s.clone() * s.neg().add_scalar(1.0)
}

/// `1 − t²`: `tanh'` from `tanh`'s output.
fn d_tanh<B: Backend>(t: Tensor<B, 2>) -> Tensor<B, 2> {
    (t.clone() * t).neg().add_scalar(1.0)
}

/// Stacks per-step gradients collected by time index into `[batch, time, W]`.
fn stack_time<B: Backend>(rows: Vec<Option<Tensor<B, 2>>>) -> Tensor<B, 3> {
    Tensor::stack(rows.into_iter().flatten().collect(), 1)
}

/// Simple-RNN backward. For processing steps from the last: `g = (dY_t + dh) ⊙ m_t`,
/// `da_t = g ⊙ act'(h_new)`, `dh ← dh ⊙ (1 − m_t) + da_t Wₕₕᵀ`; then `∂projected = da`,
/// `∂h0 = dh`, `∂Wₕₕ = Σ_t h_prevᵀ da_t` as one product.
fn rnn_backward<B: SequenceOps>(
    tape: Tape<B>,
    weight_hh: Tensor<B, 2>,
    activation: Activation,
    up: Upstream<B>,
) -> TapeGrads<B> {
    let (time, steps) = unwind(tape);
    let w_t = weight_hh.transpose();
    let mut dh = up.d_h;
    let mut da = vec![None; time];
    let (mut left, mut right) = (Vec::with_capacity(time), Vec::with_capacity(time));
    for (t, step, m) in steps {
        let SavedStep::Rnn { h_prev, h_new } = step else {
            wrong_step("simple-RNN", &step)
        };
        let m = m.as_ref();
        let (g, carried) = through_step(Some(row(&up.d_output, t)), dh, m);
        let d = g * activation.derivative_from_output(h_new);
        dh = plus(d.clone().matmul(w_t.clone()), carried);
        left.push(h_prev);
        right.push(d.clone());
        da[t] = Some(d);
    }
    TapeGrads {
        d_projected: stack_time(da),
        d_h0: dh,
        d_c0: None,
        d_weight: sum_outer(left, right),
        d_bias_hn: None,
    }
}

/// The course's `LSTM.backward`, step by step from the last: with `dh`, `dc` the gradients of
/// the state after the step, `do = dh' ⊙ tanh(c')`, `dc' = dc + dh' ⊙ o ⊙ (1 − tanh²(c'))`,
/// `di = dc' ⊙ g`, `dg = dc' ⊙ i`, `df = dc' ⊙ c`, and through the activations
/// `da = [di·i(1−i), df·f(1−f), dg·(1−g²), do·o(1−o)]`; then `dh ← da Wₕₕᵀ`, `dc ← dc' ⊙ f`
/// (plus the parts carried past padding). `∂projected = da`, `∂Wₕₕ = Σ_t h_prevᵀ da_t`.
fn lstm_backward<B: SequenceOps>(
    tape: Tape<B>,
    weight_hh: Tensor<B, 2>,
    up: Upstream<B>,
) -> TapeGrads<B> {
    let (time, steps) = unwind(tape);
    let w_t = weight_hh.transpose();
    let mut dh = up.d_h;
    let mut dc = up.d_c.expect("an LSTM's cell-state gradient");
    let mut da = vec![None; time];
    let (mut left, mut right) = (Vec::with_capacity(time), Vec::with_capacity(time));
    for (t, step, m) in steps {
        let SavedStep::Lstm {
            h_prev,
            c_prev,
            i,
            f,
            g,
            o,
            tanh_c: tc,
        } = step
        else {
            wrong_step("LSTM", &step)
        };
        let m = m.as_ref();
        let (gh, carried_h) = through_step(Some(row(&up.d_output, t)), dh, m);
        let (gc, carried_c) = through_step(None, dc, m);
        let d_o = gh.clone() * tc.clone();
        let dc_new = gc + gh * o.clone() * d_tanh(tc);
        let d = Tensor::cat(
            vec![
                dc_new.clone() * g.clone() * d_sigmoid(i.clone()),
                dc_new.clone() * c_prev * d_sigmoid(f.clone()),
                dc_new.clone() * i * d_tanh(g),
                d_o * d_sigmoid(o),
            ],
            1,
        );
        dh = plus(d.clone().matmul(w_t.clone()), carried_h);
        dc = plus(dc_new * f, carried_c);
        da[t] = Some(d.clone());
        left.push(h_prev);
        right.push(d);
    }
    TapeGrads {
        d_projected: stack_time(da),
        d_h0: dh,
        d_c0: Some(dc),
        d_weight: sum_outer(left, right),
        d_bias_hn: None,
    }
}

/// GRU backward. With `g` the gradient reaching `h' = n + z ⊙ (h − n)`: `dn = g ⊙ (1 − z)`,
/// `dz = g ⊙ (h − n)`, `dh = g ⊙ z`, `daₙ = dn ⊙ (1 − n²)`, `da_z = dz ⊙ z(1 − z)`. Reset after
/// (`aₙ = xₙ + r ⊙ hn`): `dr = daₙ ⊙ hn`, `∂hn = daₙ ⊙ r`, and the recurrent matmul's gradient
/// is `[da_r, da_z, ∂hn]` (`∂bₕₙ = Σ ∂hn`). Reset before (`aₙ = xₙ + (r ⊙ h) Wₕₙ`):
/// `∂(r ⊙ h) = daₙ Wₕₙᵀ`, `dr = ∂(r ⊙ h) ⊙ h`, `dh += ∂(r ⊙ h) ⊙ r`, `∂Wₕₙ = Σ (r ⊙ h)ᵀ daₙ`.
/// In both, `da_r = dr ⊙ r(1 − r)` and `∂projected = [da_r, da_z, daₙ]`.
fn gru_backward<B: SequenceOps>(
    tape: Tape<B>,
    weight_hh: Tensor<B, 2>,
    reset_after: bool,
    has_bias_hn: bool,
    up: Upstream<B>,
) -> TapeGrads<B> {
    let (time, steps) = unwind(tape);
    let hidden = weight_hh.dims()[0];
    let w_t = weight_hh.transpose(); // [3H, H]
    let (w_rz_t, w_n_t) = (
        w_t.clone().narrow(0, 0, 2 * hidden),
        w_t.clone().narrow(0, 2 * hidden, hidden),
    );
    let mut dh = up.d_h;
    let mut da = vec![None; time];
    let (mut left, mut right) = (Vec::with_capacity(time), Vec::with_capacity(time));
    let (mut left_n, mut right_n, mut d_hn_rows) = (Vec::new(), Vec::new(), Vec::new());
    for (t, step, m) in steps {
        let SavedStep::Gru {
            h_prev: h,
            gates: plain::GruGates { r, z, n, hn },
        } = step
        else {
            wrong_step("GRU", &step)
        };
        let m = m.as_ref();
        let (g, carried) = through_step(Some(row(&up.d_output, t)), dh, m);
        let dn = g.clone() * z.clone().neg().add_scalar(1.0);
        let dz = g.clone() * (h.clone() - n.clone());
        dh = g * z.clone();
        let da_n = dn * d_tanh(n);
        let da_z = dz * d_sigmoid(z);
        if reset_after {
            let hn = hn.expect("a reset-after GRU step keeps hn");
            let da_r = da_n.clone() * hn * d_sigmoid(r.clone());
            let d_hn = da_n.clone() * r;
            let d_hw = Tensor::cat(vec![da_r.clone(), da_z.clone(), d_hn.clone()], 1);
            dh = dh + d_hw.clone().matmul(w_t.clone());
            right.push(d_hw);
            d_hn_rows.push(d_hn);
            da[t] = Some(Tensor::cat(vec![da_r, da_z, da_n], 1));
        } else {
            let d_rh = da_n.clone().matmul(w_n_t.clone());
            let da_r = d_rh.clone() * h.clone() * d_sigmoid(r.clone());
            let d_rz = Tensor::cat(vec![da_r, da_z], 1);
            dh = dh + d_rh * r.clone() + d_rz.clone().matmul(w_rz_t.clone());
            left_n.push(r * h.clone());
            right_n.push(da_n.clone());
            right.push(d_rz.clone());
            da[t] = Some(Tensor::cat(vec![d_rz, da_n], 1));
        }
        dh = plus(dh, carried);
        left.push(h);
    }
    let mut d_weight = sum_outer(left, right);
    if !reset_after {
        d_weight = Tensor::cat(vec![d_weight, sum_outer(left_n, right_n)], 1);
    }
    let d_bias_hn = (reset_after && has_bias_hn)
        .then(|| Tensor::cat(d_hn_rows, 0).sum_dim(0).reshape([hidden]));
    TapeGrads {
        d_projected: stack_time(da),
        d_h0: dh,
        d_c0: None,
        d_weight,
        d_bias_hn,
    }
}

/// The forward pass of a recurrence of kind `cell`, keeping its [`Tape`]: the outputs
/// `[batch, time, H]` in time order, the final state and the tape.
pub fn forward<B: SequenceOps>(call: RecurrenceCall<B>) -> (Tensor<B, 3>, CellState<B>, Tape<B>) {
    let RecurrenceCall {
        cell,
        seq,
        state,
        weights: RecurrentWeights { weight_hh, bias_hn },
    } = call;
    let steps = Unrolled::new(seq);
    let mut outputs = vec![None; steps.time()];
    let mut saved = Vec::with_capacity(steps.time());
    let CellState {
        mut hidden,
        cell: mut c,
    } = state;
    for &t in &steps.order {
        let (xw, h_prev) = (steps.xs[t].clone(), hidden.clone());
        // the step's new state (and memory cell), and what the backward pass needs of it
        let (h_new, c_new, save) = match cell {
            CellKind::Rnn { activation } => {
                let h_new = plain::rnn_step(xw, h_prev.clone(), weight_hh.clone(), activation);
                let save = SavedStep::Rnn {
                    h_prev,
                    h_new: h_new.clone(),
                };
                (h_new, None, save)
            }
            // the course's `LSTM.cache`
            CellKind::Lstm => {
                let c_prev = c.clone().expect("an LSTM state has a memory cell");
                let [i, f, g, o] = plain::lstm_gates(xw, h_prev.clone(), weight_hh.clone());
                let c_new = f.clone() * c_prev.clone() + i.clone() * g.clone();
                let tanh_c = c_new.clone().tanh();
                let h_new = o.clone() * tanh_c.clone();
                let save = SavedStep::Lstm {
                    h_prev,
                    c_prev,
                    i,
                    f,
                    g,
                    o,
                    tanh_c,
                };
                (h_new, Some(c_new), save)
            }
            CellKind::Gru { reset_after } => {
                let w = (weight_hh.clone(), bias_hn.clone());
                let gates = plain::gru_gates(xw, h_prev.clone(), w.0, w.1, reset_after);
                let h_new = gates.next_state(h_prev.clone());
                (h_new, None, SavedStep::Gru { h_prev, gates })
            }
        };
        let m = steps.mask(t);
        outputs[t] = Some(masked(&h_new, m));
        saved.push(save);
        hidden = carry(hidden, h_new, m);
        c = c.zip(c_new).map(|(old, new)| carry(old, new, m));
    }
    let (out, tape) = steps.finish(outputs, saved);
    (out, CellState { hidden, cell: c }, tape)
}

/// The recurrence of kind `cell` with ordinary tensor ops: [`forward`], its tape dropped.
pub fn recurrence<B: SequenceOps>(call: RecurrenceCall<B>) -> (Tensor<B, 3>, CellState<B>) {
    let (out, state, _) = forward(call);
    (out, state)
}

/// The hand-written backward pass of a recurrence of kind `cell` over its tape: the gradients
/// of the projection, the initial state, `Wₕₕ` and, when `weights` has one, `bₕₙ`.
pub fn backward<B: SequenceOps>(call: BackwardCall<B>) -> TapeGrads<B> {
    let BackwardCall {
        cell,
        tape,
        weights,
        up,
    } = call;
    let has_bias_hn = weights.bias_hn.is_some();
    let weight_hh = weights.weight_hh;
    match cell {
        CellKind::Rnn { activation } => rnn_backward(tape, weight_hh, activation, up),
        CellKind::Lstm => lstm_backward(tape, weight_hh, up),
        CellKind::Gru { reset_after } => {
            gru_backward(tape, weight_hh, reset_after, has_bias_hn, up)
        }
    }
}

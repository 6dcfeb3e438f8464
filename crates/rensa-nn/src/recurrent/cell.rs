//! The cell abstraction and the fused gate weights every cell is built on.

use burn::module::{Module, Param, ParamId};
use burn::tensor::{Tensor, backend::Backend};

use super::sequence::{
    CellKind, CellState, Differentiation, Recurrence, RecurrenceCall, RecurrentWeights,
};
use super::{RecurrentBackend, plain};
use crate::init::Init;
use crate::{Error, Result};

/// A recurrent cell: one step at a time ([`step`](Self::step)) or a whole sequence
/// ([`sequence`](Self::sequence), which runs through the backend's [`RecurrentBackend`]
/// recurrence). Both use the same weights and give the same numbers.
pub trait RecurrentCell<B: RecurrentBackend>: Module<B> {
    /// Number of fused gates (RNN 1, LSTM 4, GRU 3).
    const GATES: usize;
    /// Whether the state has an LSTM memory cell.
    const HAS_CELL_STATE: bool;

    /// The gate weights.
    fn weights(&self) -> &GateWeights<B>;

    /// What kind of cell it is, with the settings of its gate math: what the backend's
    /// recurrence and [`plain::step`] match on.
    fn kind(&self) -> CellKind;

    /// Features per input step.
    fn input_size(&self) -> usize {
        self.weights().input_size()
    }

    /// Hidden units.
    fn hidden_size(&self) -> usize {
        self.weights().hidden_size()
    }

    /// The all-zero state for a batch.
    fn zero_state(&self, batch_size: usize, device: &B::Device) -> CellState<B> {
        let zeros = || Tensor::zeros([batch_size, self.hidden_size()], device);
        CellState {
            hidden: zeros(),
            cell: Self::HAS_CELL_STATE.then(zeros),
        }
    }

    /// One step: the state after reading `input`.
    ///
    /// # Shapes
    /// - `input`: `[batch, input_size]`; `state`: `[batch, hidden_size]` (and a memory cell for an
    ///   LSTM)
    fn step(&self, input: Tensor<B, 2>, state: CellState<B>) -> CellState<B> {
        self.check_state(&state, input.dims()[0]);
        let weights = self.weights();
        let (bias, bias_hn) = weights.split_biases(self.kind());
        let xw = weights.project_step(input, bias);
        let recurrent = RecurrentWeights {
            weight_hh: weights.weight_hh.val(),
            bias_hn,
        };
        plain::step(self.kind(), xw, state, recurrent)
    }

    /// A whole sequence from `state`, through the backend's
    /// [`recurrence`](RecurrentBackend::recurrence).
    ///
    /// # Shapes
    /// - `input`: `[batch, time, input_size]`
    /// - `mask`: `[batch, time]`, 1 on real steps and 0 on right padding (see
    ///   [`RecurrentBackend`] for the semantics)
    /// - returns the outputs `[batch, time, hidden_size]` and the final state.
    ///
    /// `reverse` runs from the last step to the first; `differentiation` says how autodiff
    /// differentiates the recurrence (one fused node or every step's ops).
    fn sequence(
        &self,
        input: Tensor<B, 3>,
        state: CellState<B>,
        mask: Option<Tensor<B, 2>>,
        reverse: bool,
        differentiation: Differentiation,
    ) -> (Tensor<B, 3>, CellState<B>) {
        self.check_state(&state, input.dims()[0]);
        let weights = self.weights();
        let (bias, bias_hn) = weights.split_biases(self.kind());
        let seq = Recurrence {
            projected: weights.project(input, bias, differentiation),
            mask,
            reverse,
            differentiation,
        };
        let recurrent = RecurrentWeights {
            weight_hh: weights.weight_hh.val(),
            bias_hn,
        };
        B::recurrence(RecurrenceCall {
            cell: self.kind(),
            seq,
            state,
            weights: recurrent,
        })
    }

    /// Panics unless `state` fits this cell and a batch of `batch`.
    fn check_state(&self, state: &CellState<B>, batch: usize) {
        let expected = [batch, self.hidden_size()];
        let cell = state.cell.as_ref();
        check_state_shapes(
            &state.hidden,
            cell,
            Self::HAS_CELL_STATE,
            expected,
            "",
            "shape [batch, hidden]",
        );
    }
}

/// Panics unless a state's hidden tensor, and its cell tensor where the cell has one (LSTM) and
/// only then, have the shape `expected`. `what` prefixes the message ("initial " for a layer's
/// state); `layout` names the axes.
pub(crate) fn check_state_shapes<B: Backend, const D: usize>(
    hidden: &Tensor<B, D>,
    cell: Option<&Tensor<B, D>>,
    has_cell: bool,
    expected: [usize; D],
    what: &str,
    layout: &str,
) {
    let shape = |t: &Tensor<B, D>, name: &str| {
        assert_eq!(
            t.dims(),
            expected,
            "{what}{name} state: expected {layout} = {expected:?}, got {:?}",
            t.dims()
        )
    };
    shape(hidden, "hidden");
    match (cell, has_cell) {
        (Some(c), true) => shape(c, "cell"),
        (None, true) => panic!("{what}cell state: an LSTM needs a cell state, got none"),
        (Some(_), false) => panic!("{what}cell state: only an LSTM has a cell state, got one"),
        (None, false) => {}
    }
}

/// Fused gate weights: `G` gates of `H` units side by side.
///
/// - `weight_ih`: `[input_size, G·H]`, `weight_hh`: `[H, G·H]` (burn's `x.matmul(w)` layout; the
///   transpose of PyTorch's `weight_ih_l0`, the same as Keras's `kernel`/`recurrent_kernel`)
/// - `bias_ih`, `bias_hh`: `[G·H]` each, both optional. Keras has only the input bias (plus a
///   recurrent one for its reset-after GRU); PyTorch and burn-nn have both.
#[derive(Module, Debug)]
pub struct GateWeights<B: Backend> {
    /// Input-to-gates weights `[input_size, G·H]`.
    pub weight_ih: Param<Tensor<B, 2>>,
    /// Hidden-to-gates weights `[H, G·H]`.
    pub weight_hh: Param<Tensor<B, 2>>,
    /// Input-side bias `[G·H]`.
    pub bias_ih: Option<Param<Tensor<B, 1>>>,
    /// Recurrent-side bias `[G·H]`.
    pub bias_hh: Option<Param<Tensor<B, 1>>>,
}

/// A trainable parameter from a tensor. A tensor that autodiff already tracks (computed from
/// other tracked tensors, e.g. weights produced by a hypernetwork or a gradient check) is kept as
/// it is, so gradients flow through it to where it came from; any other tensor (data, or a
/// transposed copy of imported weights) becomes a new trainable leaf.
fn param<B: RecurrentBackend, const D: usize>(t: Tensor<B, D>) -> Param<Tensor<B, D>> {
    if B::is_tracked(&t) {
        Param::initialized(ParamId::new(), t)
    } else {
        Param::from_tensor(t.detach())
    }
}

/// How to initialise a [`GateWeights`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct GateInit {
    pub gates: usize,
    pub input_size: usize,
    pub hidden_size: usize,
    pub bias: bool,
    pub recurrent_bias: bool,
    pub input_init: Init,
    pub recurrent_init: Init,
    pub bias_init: Init,
    /// Set this gate's input bias to 1 (the LSTM forget gate).
    pub unit_bias_gate: Option<usize>,
}

impl<B: RecurrentBackend> GateWeights<B> {
    /// Builds the weights from given tensors (e.g. copied from PyTorch or Keras), checking every
    /// shape against `gates` and the sizes implied by `weight_hh`.
    pub fn new(
        gates: usize,
        weight_ih: Tensor<B, 2>,
        weight_hh: Tensor<B, 2>,
        bias_ih: Option<Tensor<B, 1>>,
        bias_hh: Option<Tensor<B, 1>>,
    ) -> Result<Self> {
        let [h, gh] = weight_hh.dims();
        let shape_err = |name, expected: &[usize], got: &[usize]| Error::WeightShape {
            name,
            expected: expected.to_vec(),
            got: got.to_vec(),
        };
        if h == 0 || gh != gates * h {
            return Err(shape_err(
                "weight_hh",
                &[h.max(1), gates * h.max(1)],
                &[h, gh],
            ));
        }
        let [i, gh_in] = weight_ih.dims();
        if i == 0 || gh_in != gh {
            return Err(shape_err("weight_ih", &[i.max(1), gh], &[i, gh_in]));
        }
        for (name, b) in [("bias_ih", &bias_ih), ("bias_hh", &bias_hh)] {
            if let Some(b) = b
                && b.dims() != [gh]
            {
                return Err(shape_err(name, &[gh], &b.dims()));
            }
        }
        Ok(Self {
            weight_ih: param(weight_ih),
            weight_hh: param(weight_hh),
            bias_ih: bias_ih.map(param),
            bias_hh: bias_hh.map(param),
        })
    }

    pub(crate) fn init(spec: GateInit, device: &B::Device) -> Self {
        let gh = spec.gates * spec.hidden_size;
        let bias_ih = spec.bias.then(|| {
            let b = spec.bias_init.vector::<B>(gh, device);
            match spec.unit_bias_gate {
                Some(gate) => {
                    let h = spec.hidden_size;
                    #[allow(clippy::single_range_in_vec_init)]
                    // one range per dimension: a 1-D slice
                    let forget = [gate * h..(gate + 1) * h];
                    b.slice_assign(forget, Tensor::<B, 1>::ones([h], device))
                }
                None => b,
            }
        });
        let bias_hh =
            (spec.bias && spec.recurrent_bias).then(|| spec.bias_init.vector::<B>(gh, device));
        Self::new(
            spec.gates,
            spec.input_init.matrix(spec.input_size, gh, device),
            spec.recurrent_init.matrix(spec.hidden_size, gh, device),
            bias_ih,
            bias_hh,
        )
        .expect("initialised weights have consistent shapes")
    }

    /// Input projection of a whole sequence, one matmul for all steps.
    ///
    /// # Shapes
    /// `[batch, time, input_size]` -> `[batch, time, G·H]`
    pub fn project(
        &self,
        input: Tensor<B, 3>,
        bias: Option<Tensor<B, 1>>,
        differentiation: Differentiation,
    ) -> Tensor<B, 3> {
        let [batch, time, features] = input.dims();
        self.check_features(features, "input [batch, time, features]");
        let gh = self.weight_ih.dims()[1];
        let xw = B::dense(
            input.reshape([batch * time, features]),
            self.weight_ih.val(),
            differentiation,
        ) // [batch·time, G·H]
        .reshape([batch, time, gh]);
        match bias {
            Some(b) => xw + b.unsqueeze::<3>(),
            None => xw,
        }
    }
}

impl<B: Backend> GateWeights<B> {
    /// Features per input step.
    pub fn input_size(&self) -> usize {
        self.weight_ih.dims()[0]
    }

    /// Hidden units.
    pub fn hidden_size(&self) -> usize {
        self.weight_hh.dims()[0]
    }

    /// The bias added to the input projection: `bias_ih + bias_hh`, except the recurrent bias of
    /// the last `keep_recurrent` gates, which stays inside the recurrence (the reset-after GRU's
    /// candidate).
    pub fn folded_bias(&self, keep_recurrent: usize) -> Option<Tensor<B, 1>> {
        let h = self.hidden_size();
        let hh = self.bias_hh.as_ref().map(|b| {
            let b = b.val();
            if keep_recurrent == 0 {
                b
            } else {
                let gh = b.dims()[0];
                let folded = gh - keep_recurrent * h;
                let zeros = Tensor::zeros([keep_recurrent * h], &b.device());
                Tensor::cat(vec![b.narrow(0, 0, folded), zeros], 0)
            }
        });
        match (self.bias_ih.as_ref().map(|b| b.val()), hh) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        }
    }

    /// The bias folded into the input projection and, for a cell whose last recurrent gate
    /// bias cannot be folded ([`CellKind::unfoldable_bias_gates`]: the reset-after GRU's
    /// candidate), that bias `bₕₙ`.
    pub fn split_biases(&self, kind: CellKind) -> (Option<Tensor<B, 1>>, Option<Tensor<B, 1>>) {
        match kind.unfoldable_bias_gates() {
            0 => (self.folded_bias(0), None),
            gates => (self.folded_bias(gates), self.recurrent_bias_tail(gates)),
        }
    }

    /// The recurrent bias of the last `gates` gates, `[gates·H]`, if there is one.
    pub fn recurrent_bias_tail(&self, gates: usize) -> Option<Tensor<B, 1>> {
        let h = self.hidden_size();
        self.bias_hh.as_ref().map(|b| {
            let gh = b.dims()[0];
            b.val().narrow(0, gh - gates * h, gates * h)
        })
    }

    /// Input projection of one step.
    ///
    /// # Shapes
    /// `[batch, input_size]` -> `[batch, G·H]`
    pub fn project_step(&self, input: Tensor<B, 2>, bias: Option<Tensor<B, 1>>) -> Tensor<B, 2> {
        self.check_features(input.dims()[1], "input [batch, features]");
        let xw = input.matmul(self.weight_ih.val());
        match bias {
            Some(b) => xw + b.unsqueeze::<2>(),
            None => xw,
        }
    }

    fn check_features(&self, got: usize, what: &str) {
        assert_eq!(
            got,
            self.input_size(),
            "{what}: expected {} features (the layer's input_size), got {got}",
            self.input_size()
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::init::Init;
    use crate::recurrent::{GruConfig, LstmConfig};
    use rensa_testkit::{TestBackend as B, to_f64_vec};

    #[test]
    fn keras_defaults_unit_forget_bias_and_no_recurrent_bias() {
        // draws random weights: not while a seeded test of this binary relies on its draws
        let _rng = rensa_testkit::rng_lock();
        let dev = Default::default();
        let lstm = LstmConfig::new(2, 3).init::<B>(&dev).unwrap();
        let w = &lstm.cells[0].weights;
        let b = to_f64_vec(w.bias_ih.as_ref().unwrap().val());
        assert_eq!(
            b,
            [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        assert!(w.bias_hh.is_none());
        let plain = LstmConfig::new(2, 3)
            .with_unit_forget_bias(false)
            .with_bias_init(Init::Constant { value: 0.5 });
        let b = to_f64_vec(
            plain.init::<B>(&dev).unwrap().cells[0]
                .weights
                .bias_ih
                .as_ref()
                .unwrap()
                .val(),
        );
        assert!(b.iter().all(|&v| v == 0.5));
        let gru = GruConfig::new(2, 3).init::<B>(&dev).unwrap();
        assert!(
            gru.cells[0].weights.bias_hh.is_some(),
            "the reset-after GRU keeps its recurrent bias"
        );
        let rnn = crate::recurrent::RnnConfig::new(2, 3)
            .init::<B>(&dev)
            .unwrap();
        assert_eq!(rnn.cells[0].weights.bias_ih.as_ref().unwrap().dims(), [3]);
        assert!(
            LstmConfig::new(2, 3)
                .with_bias(false)
                .init::<B>(&dev)
                .unwrap()
                .cells[0]
                .weights
                .bias_ih
                .is_none()
        );
    }
}

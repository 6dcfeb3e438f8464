//! The recurrences on burn's CubeCL backends (wgpu; and the fusion backend over them): one
//! kernel fuses each step's recurrent matmul with its gate pointwise math, and for small hidden
//! sizes one launch runs the whole sequence ([`kernel`]).
//!
//! Inference (`*_recurrence`) and the forward half of training (`*_forward_tape`) run the kernel;
//! the tape it writes (gate activations and states for every step, as the course's
//! `LSTM.cache`) feeds the hand-written backward pass of [`tape`](super::tape).
//!
//! Under burn's fusion backend (the default `Wgpu`) a recurrence is one custom operation in the
//! fusion stream: the operations before it are flushed, and it runs the kernel on the inner
//! CubeCL backend's tensors.

pub mod kernel;

use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive, backend::Backend};
use burn_cubecl::cubecl::prelude::{CubeCount, CubeDim};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

use super::backend::{Recurrence, RecurrentBackend};
use super::tape::{self, Tape, TapeData};
use crate::activation::Activation;

/// What one recurrence run computes (everything the kernel needs to know but the tensors).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spec {
    /// [`kernel::RNN`], [`kernel::LSTM`], [`kernel::GRU_BEFORE`] or [`kernel::GRU_AFTER`].
    pub cell: u32,
    /// The simple RNN's activation code ([`kernel::ACT_TANH`] and friends).
    pub activation: u32,
    /// Leaky ReLU's negative slope.
    pub alpha: f32,
    /// Whether a mask is given.
    pub masked: bool,
    /// Run from the last step to the first.
    pub reverse: bool,
    /// Keep the activations for the backward pass.
    pub tape: bool,
    /// Whether the reset-after GRU has a candidate recurrent bias.
    pub has_bias_hn: bool,
}

impl Spec {
    /// Saved activations per unit: LSTM `i, f, g, o, tanh(c)`; GRU `r, z, n` (and `hn` in the
    /// reset-after form); the simple RNN keeps only its states.
    fn saved_width(&self) -> usize {
        match self.cell {
            kernel::LSTM => 5,
            kernel::GRU_BEFORE => 3,
            kernel::GRU_AFTER => 4,
            _ => 0,
        }
    }
}

/// The tensors of one recurrence run (`projected`, `mask`, `h0`, `c0`, `weight`, `bias_hn`, as in
/// [`kernel`]).
#[derive(Clone, Debug)]
pub struct Inputs<B: Backend> {
    /// `[B, T, G·H]`.
    pub projected: FloatTensor<B>,
    /// `[B, T]`.
    pub mask: Option<FloatTensor<B>>,
    /// `[B, H]`.
    pub h0: FloatTensor<B>,
    /// `[B, H]` (LSTM).
    pub c0: Option<FloatTensor<B>>,
    /// `[H, G·H]`.
    pub weight: FloatTensor<B>,
    /// `[H]` (reset-after GRU with a bias).
    pub bias_hn: Option<FloatTensor<B>>,
}

/// What a run returns: `states [B, T, H]` (the state after each time step, carried over
/// padding), `cells` likewise for the LSTM, and `saved [B, T, S·H]` when a tape is kept.
#[derive(Clone, Debug)]
pub struct Outputs<B: Backend> {
    /// `[B, T, H]`.
    pub states: FloatTensor<B>,
    /// `[B, T, H]` (LSTM).
    pub cells: Option<FloatTensor<B>>,
    /// `[B, T, S·H]` (when taped, and not for the simple RNN).
    pub saved: Option<FloatTensor<B>>,
}

/// Backends that run a recurrence with the CubeCL kernel.
pub trait CubeRecurrence: Backend {
    /// Runs one recurrence with the kernel. The caller checks [`supported`] first.
    fn run_recurrence(spec: Spec, inputs: Inputs<Self>) -> Outputs<Self>;
}

/// Shared memory every WebGPU device offers a workgroup (the specification's minimum limit).
const SHARED_BYTES_GUARANTEED: usize = 16 * 1024;

/// Planes of `H` values one batch row keeps in shared memory.
fn planes(spec: &Spec) -> usize {
    if spec.cell == kernel::GRU_BEFORE {
        4
    } else {
        2
    }
}

/// Whether the kernel takes a recurrence of `hidden` units of `elem_bytes` each: one batch row's
/// state must fit the shared memory every device offers (f32 LSTM, GRU reset-after and simple
/// RNN up to 2048 units, GRU reset-before up to 1024). Larger layers run with tensor ops.
pub fn supported(spec: &Spec, hidden: usize, elem_bytes: usize) -> bool {
    hidden > 0 && planes(spec) * hidden * elem_bytes <= SHARED_BYTES_GUARANTEED
}

/// Batch rows per cube: up to 4 (each weight read serves every row), fewer for small batches
/// (more cubes) and as shared memory requires.
fn choose_rows(spec: &Spec, batch: usize, hidden: usize, elem: usize, shared_bytes: usize) -> u32 {
    let preferred = if batch >= 64 {
        4
    } else if batch >= 16 {
        2
    } else {
        1
    };
    let shared = shared_bytes.max(SHARED_BYTES_GUARANTEED);
    [4u32, 2, 1]
        .into_iter()
        .filter(|&r| r <= preferred)
        .find(|&r| planes(spec) * r as usize * hidden * elem <= shared)
        .unwrap_or(1)
}

/// Hidden sizes up to this run the whole sequence in one launch (one unit per thread); larger
/// ones split the units over cubes and launch once per step (the reset-before GRU, whose
/// candidate needs every unit's reset gate, always runs in one launch).
const PERSISTENT_MAX_HIDDEN: usize = 256;

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> CubeRecurrence
    for CubeBackend<R, F, I, BT>
{
    fn run_recurrence(spec: Spec, inputs: Inputs<Self>) -> Outputs<Self> {
        let projected = into_contiguous(inputs.projected);
        let h0 = into_contiguous(inputs.h0);
        let weight = into_contiguous(inputs.weight);
        let [batch, time, _] = projected.meta.shape().dims::<3>();
        let hidden = h0.meta.shape().dims::<2>()[1];
        let client = projected.client.clone();
        let device = projected.device.clone();
        let dtype = projected.dtype;
        let empty = |shape: Vec<usize>| {
            empty_device_dtype::<R>(client.clone(), device.clone(), shape.into(), dtype)
        };
        let states = empty(vec![batch, time, hidden]);
        let cells = (spec.cell == kernel::LSTM).then(|| empty(vec![batch, time, hidden]));
        let width = spec.saved_width();
        let saved = (spec.tape && width > 0).then(|| empty(vec![batch, time, width * hidden]));
        if batch == 0 || time == 0 {
            return Outputs {
                states,
                cells,
                saved,
            };
        }
        let props = client.properties().hardware.clone();
        let rows = choose_rows(
            &spec,
            batch,
            hidden,
            dtype.size(),
            props.max_shared_memory_size,
        );
        // Inputs a run does not use are bound to `projected` and never read; so are the outputs
        // it does not write.
        let dummy = || projected.clone();
        let mask = inputs.mask.map(into_contiguous).unwrap_or_else(dummy);
        let c0 = inputs.c0.map(into_contiguous).unwrap_or_else(dummy);
        let bias_hn = inputs.bias_hn.map(into_contiguous).unwrap_or_else(dummy);
        let cells_arg = cells.clone().unwrap_or_else(|| empty(vec![1]));
        let saved_arg = saved.clone().unwrap_or_else(|| empty(vec![1]));

        let max_threads = props.max_cube_dim.0.min(props.max_units_per_cube).max(32) as usize;
        let threads = (hidden.div_ceil(32) * 32).min(256).min(max_threads);
        let persistent = hidden <= PERSISTENT_MAX_HIDDEN || spec.cell == kernel::GRU_BEFORE;
        let block = if persistent { hidden } else { threads };
        let cube_count = CubeCount::Static(
            batch.div_ceil(rows as usize) as u32,
            hidden.div_ceil(block) as u32,
            1,
        );
        let launches: Vec<(u32, u32)> = if persistent {
            vec![(0, time as u32)]
        } else {
            (0..time as u32).map(|s| (s, 1)).collect()
        };
        for (start, steps) in launches {
            kernel::recurrence_kernel::launch::<F, R>(
                &client,
                cube_count.clone(),
                CubeDim::new_1d(threads as u32),
                projected.clone().into_tensor_arg(),
                mask.clone().into_tensor_arg(),
                h0.clone().into_tensor_arg(),
                c0.clone().into_tensor_arg(),
                weight.clone().into_tensor_arg(),
                bias_hn.clone().into_tensor_arg(),
                states.clone().into_tensor_arg(),
                cells_arg.clone().into_tensor_arg(),
                saved_arg.clone().into_tensor_arg(),
                start,
                steps,
                block as u32,
                spec.alpha,
                spec.cell,
                spec.activation,
                spec.masked,
                spec.reverse,
                spec.tape,
                spec.has_bias_hn,
                rows,
                hidden as u32,
            );
        }
        Outputs {
            states,
            cells,
            saved,
        }
    }
}

fn t3<B: Backend>(p: FloatTensor<B>) -> Tensor<B, 3> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// A recurrence's results from the kernel's buffers.
struct Ran<B: Backend> {
    out: Tensor<B, 3>,
    h: Tensor<B, 2>,
    c: Option<Tensor<B, 2>>,
    tape: Option<Tape<B>>,
}

/// Runs `seq` with the kernel, or returns `None` when the kernel does not take it.
fn run<B: CubeRecurrence>(
    mut spec: Spec,
    seq: &Recurrence<B>,
    h0: &Tensor<B, 2>,
    c0: Option<&Tensor<B, 2>>,
    weight_hh: &Tensor<B, 2>,
    bias_hn: Option<&Tensor<B, 1>>,
) -> Option<Ran<B>> {
    let [batch, time, hidden] = {
        let [b, t, _] = seq.projected.dims();
        [b, t, h0.dims()[1]]
    };
    let elem = seq.projected.dtype().size();
    if !supported(&spec, hidden, elem) || time == 0 || batch == 0 {
        return None;
    }
    spec.masked = seq.mask.is_some();
    spec.reverse = seq.reverse;
    spec.has_bias_hn = bias_hn.is_some();
    let outputs = B::run_recurrence(
        spec,
        Inputs {
            projected: prim(seq.projected.clone()),
            mask: seq.mask.clone().map(prim),
            h0: prim(h0.clone()),
            c0: c0.cloned().map(prim),
            weight: prim(weight_hh.clone()),
            bias_hn: bias_hn.cloned().map(prim),
        },
    );
    let states = t3::<B>(outputs.states);
    let cells = outputs.cells.map(t3::<B>);
    let last = if seq.reverse { 0 } else { time - 1 };
    let h = tape::row(&states, last);
    let c = cells.as_ref().map(|c| tape::row(c, last));
    let out = match &seq.mask {
        Some(m) => states.clone() * m.clone().unsqueeze_dim::<3>(2),
        None => states.clone(),
    };
    let tape = spec.tape.then(|| {
        let saved = outputs.saved.map(t3::<B>);
        let part = |row: &Tensor<B, 2>, k: usize| row.clone().narrow(1, k * hidden, hidden);
        let steps = (0..time)
            .map(|k| {
                let t = if seq.reverse { time - 1 - k } else { k };
                let prev = |buffer: &Tensor<B, 3>, initial: &Tensor<B, 2>| {
                    if k == 0 {
                        initial.clone()
                    } else {
                        tape::row(buffer, if seq.reverse { t + 1 } else { t - 1 })
                    }
                };
                let mut step = vec![prev(&states, h0)];
                match spec.cell {
                    kernel::RNN => step.push(tape::row(&states, t)),
                    kernel::LSTM => {
                        let c0 = c0.expect("an LSTM's initial cell");
                        step.push(prev(cells.as_ref().expect("LSTM cells"), c0));
                        let s = tape::row(saved.as_ref().expect("taped"), t);
                        step.extend((0..5).map(|g| part(&s, g)));
                    }
                    cell => {
                        let s = tape::row(saved.as_ref().expect("taped"), t);
                        let kept = if cell == kernel::GRU_AFTER { 4 } else { 3 };
                        step.extend((0..kept).map(|g| part(&s, g)));
                    }
                }
                step
            })
            .collect();
        Tape {
            data: TapeData::Steps(steps),
            mask: seq.mask.clone(),
            reverse: seq.reverse,
        }
    });
    Some(Ran { out, h, c, tape })
}

fn spec(cell: u32, tape: bool) -> Spec {
    Spec {
        cell,
        activation: kernel::ACT_TANH,
        alpha: 0.0,
        masked: false,
        reverse: false,
        tape,
        has_bias_hn: false,
    }
}

fn rnn_spec(activation: Activation, tape: bool) -> Spec {
    let (code, alpha) = match activation {
        Activation::Tanh => (kernel::ACT_TANH, 0.0),
        Activation::Relu => (kernel::ACT_RELU, 0.0),
        Activation::Sigmoid => (kernel::ACT_SIGMOID, 0.0),
        Activation::LeakyRelu { alpha } => (kernel::ACT_LEAKY, alpha as f32),
    };
    Spec {
        activation: code,
        alpha,
        ..spec(kernel::RNN, tape)
    }
}

fn gru_cell(reset_after: bool) -> u32 {
    if reset_after {
        kernel::GRU_AFTER
    } else {
        kernel::GRU_BEFORE
    }
}

/// The recurrence methods of [`RecurrentBackend`] on the kernel, falling back to tensor ops
/// where it does not apply. The same for the CubeCL backend and the fusion backend over it.
macro_rules! kernel_recurrences {
    () => {
        fn rnn_recurrence(
            seq: Recurrence<Self>,
            h0: Tensor<Self, 2>,
            weight_hh: Tensor<Self, 2>,
            activation: Activation,
        ) -> (Tensor<Self, 3>, Tensor<Self, 2>) {
            match run(
                rnn_spec(activation, false),
                &seq,
                &h0,
                None,
                &weight_hh,
                None,
            ) {
                Some(r) => (r.out, r.h),
                None => crate::recurrent::plain::rnn(seq, h0, weight_hh, activation),
            }
        }

        fn lstm_recurrence(
            seq: Recurrence<Self>,
            h0: Tensor<Self, 2>,
            c0: Tensor<Self, 2>,
            weight_hh: Tensor<Self, 2>,
        ) -> (Tensor<Self, 3>, Tensor<Self, 2>, Tensor<Self, 2>) {
            match run(
                spec(kernel::LSTM, false),
                &seq,
                &h0,
                Some(&c0),
                &weight_hh,
                None,
            ) {
                Some(r) => (r.out, r.h, r.c.expect("LSTM cell")),
                None => crate::recurrent::plain::lstm(seq, h0, c0, weight_hh),
            }
        }

        fn gru_recurrence(
            seq: Recurrence<Self>,
            h0: Tensor<Self, 2>,
            weight_hh: Tensor<Self, 2>,
            bias_hn: Option<Tensor<Self, 1>>,
            reset_after: bool,
        ) -> (Tensor<Self, 3>, Tensor<Self, 2>) {
            let s = spec(gru_cell(reset_after), false);
            match run(s, &seq, &h0, None, &weight_hh, bias_hn.as_ref()) {
                Some(r) => (r.out, r.h),
                None => crate::recurrent::plain::gru(seq, h0, weight_hh, bias_hn, reset_after),
            }
        }

        fn rnn_forward_tape(
            seq: Recurrence<Self>,
            h0: Tensor<Self, 2>,
            weight_hh: Tensor<Self, 2>,
            activation: Activation,
        ) -> (Tensor<Self, 3>, Tensor<Self, 2>, Tape<Self>) {
            match run(
                rnn_spec(activation, true),
                &seq,
                &h0,
                None,
                &weight_hh,
                None,
            ) {
                Some(r) => (r.out, r.h, r.tape.expect("taped")),
                None => crate::recurrent::tape::rnn_forward(seq, h0, weight_hh, activation),
            }
        }

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
            match run(
                spec(kernel::LSTM, true),
                &seq,
                &h0,
                Some(&c0),
                &weight_hh,
                None,
            ) {
                Some(r) => (r.out, r.h, r.c.expect("LSTM cell"), r.tape.expect("taped")),
                None => crate::recurrent::tape::lstm_forward(seq, h0, c0, weight_hh),
            }
        }

        fn gru_forward_tape(
            seq: Recurrence<Self>,
            h0: Tensor<Self, 2>,
            weight_hh: Tensor<Self, 2>,
            bias_hn: Option<Tensor<Self, 1>>,
            reset_after: bool,
        ) -> (Tensor<Self, 3>, Tensor<Self, 2>, Tape<Self>) {
            let s = spec(gru_cell(reset_after), true);
            match run(s, &seq, &h0, None, &weight_hh, bias_hn.as_ref()) {
                Some(r) => (r.out, r.h, r.tape.expect("taped")),
                None => {
                    crate::recurrent::tape::gru_forward(seq, h0, weight_hh, bias_hn, reset_after)
                }
            }
        }
    };
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> RecurrentBackend
    for CubeBackend<R, F, I, BT>
{
    kernel_recurrences!();
}

mod fusion {
    //! The kernel as one custom operation of burn's fusion stream.
    use super::*;
    use burn::tensor::DType;
    use burn_fusion::stream::{Operation, OperationStreams};
    use burn_fusion::{Fusion, FusionBackend, FusionRuntime};
    use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};

    /// The recurrence as a fusion-stream operation: reads its inputs' handles, runs the inner
    /// backend's kernel and registers its outputs.
    #[derive(Debug)]
    struct RecurrenceOp<B> {
        desc: CustomOpIr,
        spec: Spec,
        has_c0: bool,
        _backend: core::marker::PhantomData<B>,
    }

    impl<B: FusionBackend + CubeRecurrence> Operation<B::FusionRuntime> for RecurrenceOp<B> {
        fn execute(
            &self,
            handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
        ) {
            let mut ins = self
                .desc
                .inputs
                .iter()
                .map(|ir| handles.get_float_tensor::<B>(ir));
            let mut next = || ins.next().expect("a recurrence input");
            let projected = next();
            let mask = self.spec.masked.then(&mut next);
            let h0 = next();
            let c0 = self.has_c0.then(&mut next);
            let weight = next();
            let bias_hn = self.spec.has_bias_hn.then(&mut next);
            drop(ins);
            let out = B::run_recurrence(
                self.spec,
                Inputs {
                    projected,
                    mask,
                    h0,
                    c0,
                    weight,
                    bias_hn,
                },
            );
            let mut ids = self.desc.outputs.iter().map(|ir| ir.id);
            let produced = [Some(out.states), out.cells, out.saved];
            for tensor in produced.into_iter().flatten() {
                let id = ids.next().expect("a declared output");
                handles.register_float_tensor::<B>(&id, tensor);
            }
        }
    }

    impl<B: FusionBackend + CubeRecurrence> CubeRecurrence for Fusion<B> {
        fn run_recurrence(spec: Spec, inputs: Inputs<Self>) -> Outputs<Self> {
            let client = inputs.projected.client.clone();
            let dtype: DType = inputs.projected.dtype;
            let [batch, time, _] = inputs.projected.shape.dims::<3>();
            let hidden = inputs.h0.shape.dims::<2>()[1];
            let has_c0 = inputs.c0.is_some();
            let tensors: Vec<_> = [
                Some(inputs.projected),
                inputs.mask,
                Some(inputs.h0),
                inputs.c0,
                Some(inputs.weight),
                inputs.bias_hn,
            ]
            .into_iter()
            .flatten()
            .collect();
            let streams = OperationStreams::with_inputs(tensors.iter());
            let input_irs: Vec<TensorIr> = tensors.into_iter().map(|t| t.into_ir()).collect();
            let lstm = spec.cell == kernel::LSTM;
            let width = spec.saved_width();
            let taped = spec.tape && width > 0;
            let uninit = |shape: [usize; 3]| {
                TensorIr::uninit(client.create_empty_handle(), shape.into(), dtype)
            };
            let mut output_irs = vec![uninit([batch, time, hidden])];
            if lstm {
                output_irs.push(uninit([batch, time, hidden]));
            }
            if taped {
                output_irs.push(uninit([batch, time, width * hidden]));
            }
            let desc = CustomOpIr {
                id: "rensa_recurrence".to_owned(),
                inputs: input_irs,
                outputs: output_irs,
            };
            let op = RecurrenceOp::<B> {
                desc: desc.clone(),
                spec,
                has_c0,
                _backend: core::marker::PhantomData,
            };
            let mut outs = client
                .register(streams, OperationIr::Custom(desc), op)
                .into_iter();
            let states = outs.next().expect("states");
            let cells = lstm.then(|| outs.next().expect("cells"));
            let saved = taped.then(|| outs.next().expect("saved"));
            Outputs {
                states,
                cells,
                saved,
            }
        }
    }

    impl<B: FusionBackend + CubeRecurrence> RecurrentBackend for Fusion<B> {
        kernel_recurrences!();
    }
}

//! The recurrences on burn's CubeCL backends (wgpu; and the fusion backend over them): one
//! kernel fuses each step's recurrent matmul with its gate pointwise math, and for small hidden
//! sizes one launch runs the whole sequence ([`kernel`]).
//!
//! Inference (`recurrence`) and the forward half of training (`forward_tape`) run the forward
//! kernel; its tape (gate activations and states for every step, as the course's `LSTM.cache`)
//! stays in device buffers, and the backward half (`backward_tape`) runs the hand-written BPTT
//! as one more launch ([`kernel::backward_kernel()`]), then one matmul per weight gradient over all
//! `B·T` rows. Sizes the kernels do not take ([`supported`], [`backward_supported`]) run with
//! tensor ops ([`tape`]).
//!
//! Under burn's fusion backend (the default `Wgpu`) each kernel run is one custom operation in
//! the fusion stream: the operations before it are flushed, and it runs on the inner CubeCL
//! backend's tensors.

pub mod kernel;

use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive, backend::Backend};
use burn_cubecl::cubecl::client::ComputeClient;
use burn_cubecl::cubecl::prelude::{CubeCount, CubeDim};
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::ops::numeric::empty_device_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

use super::backend::RecurrentBackend;
use super::plain::GruGates;
use super::sequence::{CellKind, CellState, Recurrence, RecurrenceCall, SequenceOps};
use super::tape::{self, BackwardCall, SavedStep, Tape, TapeData, TapeGrads, Upstream};
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
    /// Saved activations per unit ([`kernel::saved_units`]).
    fn saved_width(&self) -> usize {
        kernel::saved_units(self.cell) as usize
    }
}

/// The tensors of one forward run (`projected`, `mask`, `h0`, `c0`, `weight`, `bias_hn`, as in
/// [`kernel`]). The run structs are generic over `T`: a backend's tensor primitive, or for the
/// outputs a shape (`Vec<usize>`) when the fusion backend declares them before the run.
#[derive(Clone, Debug)]
pub struct Inputs<T> {
    /// `[B, T, G·H]`.
    pub projected: T,
    /// `[B, T]`.
    pub mask: Option<T>,
    /// `[B, H]`.
    pub h0: T,
    /// `[B, H]` (LSTM).
    pub c0: Option<T>,
    /// `[H, G·H]`.
    pub weight: T,
    /// `[H]` (reset-after GRU with a bias).
    pub bias_hn: Option<T>,
}

/// What a forward run returns: `states [B, T, H]` (the state after each time step, carried over
/// padding), `cells` likewise for the LSTM, and `saved [B, T, S·H]` when a tape is kept.
#[derive(Clone, Debug)]
pub struct Outputs<T> {
    /// `[B, T, H]`.
    pub states: T,
    /// `[B, T, H]` (LSTM).
    pub cells: Option<T>,
    /// `[B, T, S·H]` (when taped, and not for the simple RNN).
    pub saved: Option<T>,
}

/// The tensors of one backward run: the forward run's tape, its inputs and the upstream
/// gradients (`weight_t` is `Wₕₕᵀ`, `[G·H, H]`).
#[derive(Clone, Debug)]
pub struct BackInputs<T> {
    /// `[B, T, H]`.
    pub states: T,
    /// `[B, T, H]` (LSTM).
    pub cells: Option<T>,
    /// `[B, T, S·H]` (not for the simple RNN).
    pub saved: Option<T>,
    /// `[B, H]`.
    pub h0: T,
    /// `[B, H]` (LSTM).
    pub c0: Option<T>,
    /// `[B, T]`.
    pub mask: Option<T>,
    /// `[B, T, H]`.
    pub d_output: T,
    /// `[B, H]`.
    pub d_h: T,
    /// `[B, H]` (LSTM).
    pub d_c: Option<T>,
    /// `[G·H, H]`.
    pub weight_t: T,
}

/// What a backward run returns.
#[derive(Clone, Debug)]
pub struct BackOutputs<T> {
    /// Of the input projection, `[B, T, G·H]`.
    pub d_projected: T,
    /// Of the initial state, `[B, H]`.
    pub d_h0: T,
    /// Of the initial memory cell, `[B, H]` (LSTM).
    pub d_c0: Option<T>,
    /// Of the reset-after GRU's `hn = h Wₕₙ + bₕₙ`, `[B, T, H]`.
    pub d_hn: Option<T>,
}

/// Conversions to and from a fixed order of optional slots, which is how the fusion backend
/// passes a run's tensors around.
pub trait Slots<T>: Sized {
    /// The fields in their declared order.
    fn into_slots(self) -> Vec<Option<T>>;
    /// The inverse of [`into_slots`](Self::into_slots).
    fn from_slots(slots: Vec<Option<T>>) -> Self;
}

macro_rules! slots {
    ($ty:ident { $($req:ident),* } { $($opt:ident),* } order: [$($field:ident),*]) => {
        impl<T> Slots<T> for $ty<T> {
            fn into_slots(self) -> Vec<Option<T>> {
                let $ty { $($req,)* $($opt,)* } = self;
                $(let $req = Some($req);)*
                vec![$($field),*]
            }
            fn from_slots(slots: Vec<Option<T>>) -> Self {
                let mut it = slots.into_iter();
                $(let $field = it.next().expect("a slot for every field");)*
                $(let $req = $req.expect(concat!("a ", stringify!($req), " tensor"));)*
                Self { $($req,)* $($opt,)* }
            }
        }
    };
}
slots!(Inputs { projected, h0, weight } { mask, c0, bias_hn }
    order: [projected, mask, h0, c0, weight, bias_hn]);
slots!(Outputs { states } { cells, saved } order: [states, cells, saved]);
slots!(BackInputs { states, h0, d_output, d_h, weight_t } { cells, saved, c0, mask, d_c }
    order: [states, cells, saved, h0, c0, mask, d_output, d_h, d_c, weight_t]);
slots!(BackOutputs { d_projected, d_h0 } { d_c0, d_hn } order: [d_projected, d_h0, d_c0, d_hn]);

impl Spec {
    /// The shapes of a forward run's outputs.
    pub fn forward_shapes(&self, batch: usize, time: usize, hidden: usize) -> Outputs<Vec<usize>> {
        let width = self.saved_width();
        Outputs {
            states: vec![batch, time, hidden],
            cells: (self.cell == kernel::LSTM).then(|| vec![batch, time, hidden]),
            saved: (self.tape && width > 0).then(|| vec![batch, time, width * hidden]),
        }
    }

    /// The shapes of a backward run's outputs.
    pub fn backward_shapes(
        &self,
        batch: usize,
        time: usize,
        hidden: usize,
    ) -> BackOutputs<Vec<usize>> {
        let gates = kernel::gates(self.cell) as usize;
        BackOutputs {
            d_projected: vec![batch, time, gates * hidden],
            d_h0: vec![batch, hidden],
            d_c0: (self.cell == kernel::LSTM).then(|| vec![batch, hidden]),
            d_hn: (self.cell == kernel::GRU_AFTER).then(|| vec![batch, time, hidden]),
        }
    }
}

/// Backends that run a recurrence with the CubeCL kernels.
pub trait CubeRecurrence: Backend {
    /// Runs one recurrence forwards. The caller checks [`supported`] first.
    fn run_forward(spec: Spec, inputs: Inputs<FloatTensor<Self>>) -> Outputs<FloatTensor<Self>>;
    /// Runs the backward pass of a taped forward run. The caller checks
    /// [`backward_supported`] first.
    fn run_backward(
        spec: Spec,
        inputs: BackInputs<FloatTensor<Self>>,
    ) -> BackOutputs<FloatTensor<Self>>;
}

/// Shared memory every WebGPU device offers a workgroup (the specification's minimum limit).
const SHARED_BYTES_GUARANTEED: usize = 16 * 1024;

/// Values per batch row and unit the forward kernel keeps in shared memory.
fn forward_planes(spec: &Spec) -> usize {
    if spec.cell == kernel::GRU_BEFORE {
        4
    } else {
        2
    }
}

/// Whether the forward kernel takes a recurrence of `hidden` units of `elem_bytes` each: one
/// batch row's state must fit the shared memory every device offers (f32 LSTM, GRU reset-after
/// and simple RNN up to 2048 units, GRU reset-before up to 1024). Larger layers run with tensor
/// ops.
pub fn supported(spec: &Spec, hidden: usize, elem_bytes: usize) -> bool {
    hidden > 0 && forward_planes(spec) * hidden * elem_bytes <= SHARED_BYTES_GUARANTEED
}

/// Whether the backward kernel takes it: one batch row's gate gradients must fit (f32 LSTM up to
/// 1024 units, GRU 1365, simple RNN 4096). Otherwise the kernel's tape is handed to the
/// tensor-op backward pass.
pub fn backward_supported(spec: &Spec, hidden: usize, elem_bytes: usize) -> bool {
    hidden > 0 && kernel::gates(spec.cell) as usize * hidden * elem_bytes <= SHARED_BYTES_GUARANTEED
}

/// Batch rows per cube: up to 4 (each weight read serves every row), fewer for small batches
/// (more cubes) and as shared memory requires (`row_bytes` per row).
fn choose_rows<R: CubeRuntime>(client: &ComputeClient<R>, batch: usize, row_bytes: usize) -> u32 {
    let shared_bytes = client.properties().hardware.max_shared_memory_size;
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
        .find(|&r| r as usize * row_bytes <= shared)
        .unwrap_or(1)
}

/// `t` made contiguous, or `unused` in its place: kernel arguments a run neither reads nor
/// writes are bound to some other buffer.
fn or_unused<R: CubeRuntime>(t: Option<CubeTensor<R>>, unused: &CubeTensor<R>) -> CubeTensor<R> {
    t.map(into_contiguous).unwrap_or_else(|| unused.clone())
}

/// Hidden sizes up to this run the whole sequence in one launch (one unit per thread); larger
/// ones split the units over cubes and launch once per step (the reset-before GRU, whose
/// candidate needs every unit's reset gate, always runs in one launch).
const PERSISTENT_MAX_HIDDEN: usize = 256;

/// Threads per cube for `hidden` units: one per unit, in whole warps, at most 256.
fn threads_for<R: CubeRuntime>(client: &ComputeClient<R>, hidden: usize) -> u32 {
    let props = &client.properties().hardware;
    let max_threads = props.max_cube_dim.0.min(props.max_units_per_cube).max(32) as usize;
    (hidden.div_ceil(32) * 32).min(256).min(max_threads) as u32
}

/// Allocates uninitialised tensors of any shape on `like`'s device, of its element type.
fn empty_like<R: CubeRuntime>(
    like: &CubeTensor<R>,
) -> impl Fn(Vec<usize>) -> CubeTensor<R> + use<R> {
    let (client, device, dtype) = (like.client.clone(), like.device.clone(), like.dtype);
    move |shape| empty_device_dtype::<R>(client.clone(), device.clone(), shape.into(), dtype)
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> CubeRecurrence
    for CubeBackend<R, F, I, BT>
{
    fn run_forward(spec: Spec, inputs: Inputs<CubeTensor<R>>) -> Outputs<CubeTensor<R>> {
        let projected = into_contiguous(inputs.projected);
        let [batch, time, _] = projected.meta.shape().dims::<3>();
        let hidden = inputs.h0.meta.shape().dims::<2>()[1];
        let (client, dtype) = (projected.client.clone(), projected.dtype);
        let empty = empty_like(&projected);
        let out = spec.forward_shapes(batch, time, hidden);
        let out = Outputs {
            states: empty(out.states),
            cells: out.cells.map(&empty),
            saved: out.saved.map(&empty),
        };
        if batch == 0 || time == 0 {
            return out;
        }
        let row_bytes = forward_planes(&spec) * hidden * dtype.size();
        let rows = choose_rows(&client, batch, row_bytes);
        // Inputs a run does not use are bound to `projected` and never read; outputs it does
        // not write to a one-element buffer.
        let unused_out = empty(vec![1]);
        let h0 = into_contiguous(inputs.h0);
        let weight = into_contiguous(inputs.weight);
        let mask = or_unused(inputs.mask, &projected);
        let c0 = or_unused(inputs.c0, &projected);
        let bias_hn = or_unused(inputs.bias_hn, &projected);
        let cells = or_unused(out.cells.clone(), &unused_out);
        let saved = or_unused(out.saved.clone(), &unused_out);

        let threads = threads_for(&client, hidden);
        let persistent = hidden <= PERSISTENT_MAX_HIDDEN || spec.cell == kernel::GRU_BEFORE;
        let block = if persistent { hidden } else { threads as usize };
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
                CubeDim::new_1d(threads),
                projected.clone().into_tensor_arg(),
                mask.clone().into_tensor_arg(),
                h0.clone().into_tensor_arg(),
                c0.clone().into_tensor_arg(),
                weight.clone().into_tensor_arg(),
                bias_hn.clone().into_tensor_arg(),
                out.states.clone().into_tensor_arg(),
                cells.clone().into_tensor_arg(),
                saved.clone().into_tensor_arg(),
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
        out
    }

    fn run_backward(spec: Spec, inputs: BackInputs<CubeTensor<R>>) -> BackOutputs<CubeTensor<R>> {
        let states = into_contiguous(inputs.states);
        let [batch, time, hidden] = states.meta.shape().dims::<3>();
        let (client, dtype) = (states.client.clone(), states.dtype);
        let empty = empty_like(&states);
        let shapes = spec.backward_shapes(batch, time, hidden);
        let out = BackOutputs {
            d_projected: empty(shapes.d_projected),
            d_h0: empty(shapes.d_h0),
            d_c0: shapes.d_c0.map(&empty),
            d_hn: shapes.d_hn.map(&empty),
        };
        let gates = kernel::gates(spec.cell) as usize;
        let row_bytes = gates * hidden * dtype.size();
        let rows = choose_rows(&client, batch, row_bytes);
        let unused_out = empty(vec![1]);
        let cells = or_unused(inputs.cells, &states);
        let saved = or_unused(inputs.saved, &states);
        let c0 = or_unused(inputs.c0, &states);
        let mask = or_unused(inputs.mask, &states);
        let d_c = or_unused(inputs.d_c, &states);
        let d_c0 = or_unused(out.d_c0.clone(), &unused_out);
        let d_hn = or_unused(out.d_hn.clone(), &unused_out);
        kernel::backward_kernel::launch::<F, R>(
            &client,
            CubeCount::Static(batch.div_ceil(rows as usize) as u32, 1, 1),
            CubeDim::new_1d(threads_for(&client, hidden)),
            states.into_tensor_arg(),
            cells.into_tensor_arg(),
            saved.into_tensor_arg(),
            into_contiguous(inputs.h0).into_tensor_arg(),
            c0.into_tensor_arg(),
            mask.into_tensor_arg(),
            into_contiguous(inputs.d_output).into_tensor_arg(),
            into_contiguous(inputs.d_h).into_tensor_arg(),
            d_c.into_tensor_arg(),
            into_contiguous(inputs.weight_t).into_tensor_arg(),
            out.d_projected.clone().into_tensor_arg(),
            d_hn.into_tensor_arg(),
            out.d_h0.clone().into_tensor_arg(),
            d_c0.into_tensor_arg(),
            spec.alpha,
            spec.cell,
            spec.activation,
            spec.masked,
            spec.reverse,
            rows,
            hidden as u32,
        );
        out
    }
}

fn t3<B: Backend>(p: FloatTensor<B>) -> Tensor<B, 3> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

fn t2<B: Backend>(p: FloatTensor<B>) -> Tensor<B, 2> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

fn prim<B: Backend, const D: usize>(t: Tensor<B, D>) -> FloatTensor<B> {
    t.into_primitive().tensor()
}

/// The kernel's tape: the forward run's buffers and the inputs the backward pass reads again.
struct KernelTape<B: Backend> {
    spec: Spec,
    states: Tensor<B, 3>,
    cells: Option<Tensor<B, 3>>,
    saved: Option<Tensor<B, 3>>,
    h0: Tensor<B, 2>,
    c0: Option<Tensor<B, 2>>,
}

/// A recurrence's results from the kernel's buffers.
struct Ran<B: Backend> {
    out: Tensor<B, 3>,
    h: Tensor<B, 2>,
    c: Option<Tensor<B, 2>>,
    tape: Option<Tape<B>>,
}

/// Panics, naming the tensor and both shapes, when a recurrence's inputs do not agree with
/// `projected [B, T, G·H]` and `h0 [B, H]`: the kernels index them unchecked on the device, where
/// an out-of-range read gives wrong numbers instead of an error.
fn check_shapes<B: Backend>(
    spec: &Spec,
    seq: &Recurrence<B>,
    h0: &Tensor<B, 2>,
    c0: Option<&Tensor<B, 2>>,
    weight_hh: &Tensor<B, 2>,
    bias_hn: Option<&Tensor<B, 1>>,
) {
    let [batch, time, width] = seq.projected.dims();
    let hidden = h0.dims()[1];
    let gh = kernel::gates(spec.cell) as usize * hidden;
    let expect = |name: &str, got: &[usize], want: &[usize]| {
        assert_eq!(
            got, want,
            "recurrence: {name} has shape {got:?}, expected {want:?}"
        );
    };
    expect("projected", &[batch, time, width], &[batch, time, gh]);
    expect("h0", &h0.dims(), &[batch, hidden]);
    expect("weight_hh", &weight_hh.dims(), &[hidden, gh]);
    if let Some(c0) = c0 {
        expect("c0", &c0.dims(), &[batch, hidden]);
    }
    if let Some(mask) = &seq.mask {
        expect("mask", &mask.dims(), &[batch, time]);
    }
    if let Some(b) = bias_hn {
        expect("bias_hn", &b.dims(), &[hidden]);
    }
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
    let [batch, time, _] = seq.projected.dims();
    let hidden = h0.dims()[1];
    check_shapes(&spec, seq, h0, c0, weight_hh, bias_hn);
    let elem = seq.projected.dtype().size();
    if !supported(&spec, hidden, elem) || time == 0 || batch == 0 {
        return None;
    }
    spec.masked = seq.mask.is_some();
    spec.reverse = seq.reverse;
    spec.has_bias_hn = bias_hn.is_some();
    let outputs = B::run_forward(
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
    let saved = outputs.saved.map(t3::<B>);
    let last = if seq.reverse { 0 } else { time - 1 };
    let h = tape::row(&states, last);
    let c = cells.as_ref().map(|c| tape::row(c, last));
    let out = match &seq.mask {
        Some(m) => states.clone() * m.clone().unsqueeze_dim::<3>(2),
        None => states.clone(),
    };
    let tape = spec.tape.then(|| {
        let kept = KernelTape {
            spec,
            states,
            cells,
            saved,
            h0: h0.clone(),
            c0: c0.cloned(),
        };
        let data = if backward_supported(&spec, hidden, elem) {
            TapeData::Native(std::sync::Arc::new(kept))
        } else {
            TapeData::Steps(kept.steps())
        };
        Tape {
            data,
            mask: seq.mask.clone(),
            reverse: seq.reverse,
        }
    });
    Some(Ran { out, h, c, tape })
}

impl<B: Backend> KernelTape<B> {
    /// The tape as the tensor-op backward pass reads it: per processing step, what it saves
    /// (see [`SavedStep`]).
    fn steps(&self) -> Vec<SavedStep<B>> {
        let [_, time, hidden] = self.states.dims();
        let reverse = self.spec.reverse;
        let part = |row: &Tensor<B, 2>, k: usize| row.clone().narrow(1, k * hidden, hidden);
        (0..time)
            .map(|k| {
                let t = if reverse { time - 1 - k } else { k };
                let prev = |buffer: &Tensor<B, 3>, initial: &Tensor<B, 2>| {
                    if k == 0 {
                        initial.clone()
                    } else {
                        tape::row(buffer, if reverse { t + 1 } else { t - 1 })
                    }
                };
                let h_prev = prev(&self.states, &self.h0);
                let saved = || tape::row(self.saved.as_ref().expect("taped"), t);
                match self.spec.cell {
                    kernel::RNN => SavedStep::Rnn {
                        h_prev,
                        h_new: tape::row(&self.states, t),
                    },
                    kernel::LSTM => {
                        let cells = self.cells.as_ref().expect("LSTM cells");
                        let s = saved();
                        SavedStep::Lstm {
                            h_prev,
                            c_prev: prev(cells, self.c0.as_ref().expect("LSTM initial cell")),
                            i: part(&s, 0),
                            f: part(&s, 1),
                            g: part(&s, 2),
                            o: part(&s, 3),
                            tanh_c: part(&s, 4),
                        }
                    }
                    cell => {
                        let s = saved();
                        let gates = GruGates {
                            r: part(&s, 0),
                            z: part(&s, 1),
                            n: part(&s, 2),
                            hn: (cell == kernel::GRU_AFTER).then(|| part(&s, 3)),
                        };
                        SavedStep::Gru { h_prev, gates }
                    }
                }
            })
            .collect()
    }
}

/// The kernel's tape in `tape`, or `None` for a tape of the tensor-op path (which runs its own
/// backward pass).
///
/// # Panics
/// On native buffers that are not this backend's kernel tape.
fn kernel_tape<B: Backend>(tape: &Tape<B>) -> Option<&KernelTape<B>> {
    match &tape.data {
        TapeData::Native(any) => Some(any.downcast_ref::<KernelTape<B>>().unwrap_or_else(|| {
            panic!("the CubeCL backward pass got a tape of another backend's native buffers")
        })),
        TapeData::Steps(_) => None,
    }
}

/// The backward pass of a kernel tape: the kernel for the recurrence, then the weight gradients
/// as one product over all `B·T` rows.
fn backward<B: CubeRecurrence>(
    k: &KernelTape<B>,
    mask: Option<Tensor<B, 2>>,
    weight_hh: Tensor<B, 2>,
    up: Upstream<B>,
) -> TapeGrads<B> {
    let spec = k.spec;
    let [batch, time, hidden] = k.states.dims();
    let out = B::run_backward(
        spec,
        BackInputs {
            states: prim(k.states.clone()),
            cells: k.cells.clone().map(prim),
            saved: k.saved.clone().map(prim),
            h0: prim(k.h0.clone()),
            c0: k.c0.clone().map(prim),
            mask: mask.map(prim),
            d_output: prim(up.d_output),
            d_h: prim(up.d_h),
            d_c: up.d_c.map(prim),
            weight_t: prim(weight_hh.transpose()),
        },
    );
    let d_projected = t3::<B>(out.d_projected);
    // The state before each time step, by time index.
    let first = k.h0.clone().unsqueeze_dim::<3>(1);
    let h_prev = if time == 1 {
        first
    } else if spec.reverse {
        Tensor::cat(vec![k.states.clone().narrow(1, 1, time - 1), first], 1)
    } else {
        Tensor::cat(vec![first, k.states.clone().narrow(1, 0, time - 1)], 1)
    };
    let rows = |t: Tensor<B, 3>| {
        let [_, _, width] = t.dims();
        t.reshape([batch * time, width])
    };
    let outer = |a: Tensor<B, 3>, b: Tensor<B, 3>| rows(a).transpose().matmul(rows(b));
    let mut d_bias_hn = None;
    let d_weight = match spec.cell {
        kernel::GRU_AFTER => {
            let d_hn = t3::<B>(out.d_hn.expect("GRU ∂hn"));
            if spec.has_bias_hn {
                d_bias_hn = Some(rows(d_hn.clone()).sum_dim(0).reshape([hidden]));
            }
            let rec = Tensor::cat(vec![d_projected.clone().narrow(2, 0, 2 * hidden), d_hn], 2);
            outer(h_prev, rec)
        }
        kernel::GRU_BEFORE => {
            let r = k.saved.clone().expect("taped").narrow(2, 0, hidden);
            let rz = outer(h_prev.clone(), d_projected.clone().narrow(2, 0, 2 * hidden));
            let n = outer(
                r * h_prev,
                d_projected.clone().narrow(2, 2 * hidden, hidden),
            );
            Tensor::cat(vec![rz, n], 1)
        }
        _ => outer(h_prev, d_projected.clone()),
    };
    TapeGrads {
        d_projected,
        d_h0: t2::<B>(out.d_h0),
        d_c0: out.d_c0.map(t2::<B>),
        d_weight,
        d_bias_hn,
    }
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

/// The kernel spec of a recurrence of kind `cell`.
fn spec_of(cell: CellKind, tape: bool) -> Spec {
    match cell {
        CellKind::Rnn { activation } => rnn_spec(activation, tape),
        CellKind::Lstm => spec(kernel::LSTM, tape),
        CellKind::Gru { reset_after } => spec(gru_cell(reset_after), tape),
    }
}

/// What a kernel's recurrence gives back: outputs, final state and the tape when kept.
type CellRun<B> = (Tensor<B, 3>, CellState<B>, Option<Tape<B>>);

/// Runs a recurrence of kind `cell` on the kernel: outputs, final state and the tape when
/// `keep`; `None` when the kernel does not take it.
fn run_cell<B: CubeRecurrence>(call: &RecurrenceCall<B>, keep: bool) -> Option<CellRun<B>> {
    let (state, weights) = (&call.state, &call.weights);
    let ran = run(
        spec_of(call.cell, keep),
        &call.seq,
        &state.hidden,
        state.cell.as_ref(),
        &weights.weight_hh,
        weights.bias_hn.as_ref(),
    )?;
    let state = CellState {
        hidden: ran.h,
        cell: ran.c,
    };
    Some((ran.out, state, ran.tape))
}

/// The recurrence methods of [`RecurrentBackend`] on the kernels, falling back to tensor ops
/// where they do not apply. The same for the CubeCL backend and the fusion backend over it.
macro_rules! kernel_recurrences {
    () => {
        fn recurrence(call: RecurrenceCall<Self>) -> (Tensor<Self, 3>, CellState<Self>) {
            match run_cell(&call, false) {
                Some((out, last, _)) => (out, last),
                None => tape::recurrence(call),
            }
        }

        fn forward_tape(
            call: RecurrenceCall<Self>,
        ) -> (Tensor<Self, 3>, CellState<Self>, Tape<Self>) {
            match run_cell(&call, true) {
                Some((out, last, kept)) => (out, last, kept.expect("taped")),
                None => tape::forward(call),
            }
        }

        fn backward_tape(call: BackwardCall<Self>) -> TapeGrads<Self> {
            match kernel_tape(&call.tape) {
                Some(k) => backward(k, call.tape.mask.clone(), call.weights.weight_hh, call.up),
                None => tape::backward(call),
            }
        }
    };
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> SequenceOps
    for CubeBackend<R, F, I, BT>
{
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> RecurrentBackend
    for CubeBackend<R, F, I, BT>
{
    kernel_recurrences!();
}

mod fusion {
    //! The kernels as custom operations of burn's fusion stream.
    use super::*;
    use burn_fusion::stream::{Operation, OperationStreams};
    use burn_fusion::{Fusion, FusionBackend, FusionRuntime, FusionTensor};
    use burn_ir::{CustomOpIr, HandleContainer, OperationIr, TensorIr};

    /// A kernel run as a fusion-stream operation: reads its inputs' handles, runs the inner
    /// backend's kernel and registers its outputs.
    #[derive(Debug)]
    struct KernelOp<B> {
        desc: CustomOpIr,
        spec: Spec,
        backward: bool,
        /// Which input slots hold a tensor.
        present: Vec<bool>,
        _backend: core::marker::PhantomData<B>,
    }

    impl<B: FusionBackend + CubeRecurrence> Operation<B::FusionRuntime> for KernelOp<B> {
        fn execute(
            &self,
            handles: &mut HandleContainer<<B::FusionRuntime as FusionRuntime>::FusionHandle>,
        ) {
            let mut irs = self.desc.inputs.iter();
            let slots: Vec<_> = self
                .present
                .iter()
                .map(|&p| p.then(|| handles.get_float_tensor::<B>(irs.next().expect("an input"))))
                .collect();
            let outputs = if self.backward {
                B::run_backward(self.spec, BackInputs::from_slots(slots)).into_slots()
            } else {
                B::run_forward(self.spec, Inputs::from_slots(slots)).into_slots()
            };
            let mut ids = self.desc.outputs.iter().map(|ir| ir.id);
            for tensor in outputs.into_iter().flatten() {
                let id = ids.next().expect("a declared output");
                handles.register_float_tensor::<B>(&id, tensor);
            }
        }
    }

    /// Registers a kernel run on the stream of its inputs and returns its outputs.
    fn register<B: FusionBackend + CubeRecurrence>(
        spec: Spec,
        backward: bool,
        inputs: Vec<Option<FusionTensor<B::FusionRuntime>>>,
        output_shapes: Vec<Option<Vec<usize>>>,
    ) -> Vec<Option<FusionTensor<B::FusionRuntime>>> {
        let first = inputs.iter().flatten().next().expect("an input tensor");
        let (client, dtype) = (first.client.clone(), first.dtype);
        let present: Vec<bool> = inputs.iter().map(Option::is_some).collect();
        let tensors: Vec<_> = inputs.into_iter().flatten().collect();
        let streams = OperationStreams::with_inputs(tensors.iter());
        let input_irs: Vec<TensorIr> = tensors.into_iter().map(|t| t.into_ir()).collect();
        let output_irs: Vec<TensorIr> = output_shapes
            .iter()
            .flatten()
            .map(|shape| {
                TensorIr::uninit(client.create_empty_handle(), shape.clone().into(), dtype)
            })
            .collect();
        let desc = CustomOpIr {
            id: if backward {
                "rensa_recurrence_backward"
            } else {
                "rensa_recurrence"
            }
            .to_owned(),
            inputs: input_irs,
            outputs: output_irs,
        };
        let op = KernelOp::<B> {
            desc: desc.clone(),
            spec,
            backward,
            present,
            _backend: core::marker::PhantomData,
        };
        let mut outs = client
            .register(streams, OperationIr::Custom(desc), op)
            .into_iter();
        output_shapes
            .into_iter()
            .map(|shape| shape.map(|_| outs.next().expect("a registered output")))
            .collect()
    }

    impl<B: FusionBackend + CubeRecurrence> CubeRecurrence for Fusion<B> {
        fn run_forward(
            spec: Spec,
            inputs: Inputs<FloatTensor<Self>>,
        ) -> Outputs<FloatTensor<Self>> {
            let [batch, time, _] = inputs.projected.shape.dims::<3>();
            let hidden = inputs.h0.shape.dims::<2>()[1];
            let shapes = spec.forward_shapes(batch, time, hidden).into_slots();
            Outputs::from_slots(register::<B>(spec, false, inputs.into_slots(), shapes))
        }

        fn run_backward(
            spec: Spec,
            inputs: BackInputs<FloatTensor<Self>>,
        ) -> BackOutputs<FloatTensor<Self>> {
            let [batch, time, hidden] = inputs.states.shape.dims::<3>();
            let shapes = spec.backward_shapes(batch, time, hidden).into_slots();
            BackOutputs::from_slots(register::<B>(spec, true, inputs.into_slots(), shapes))
        }
    }

    impl<B: FusionBackend + CubeRecurrence> SequenceOps for Fusion<B> {}

    impl<B: FusionBackend + CubeRecurrence> RecurrentBackend for Fusion<B> {
        kernel_recurrences!();
    }
}

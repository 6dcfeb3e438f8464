//! The CubeCL recurrence kernel (wgpu; a software adapter in CI) against the same recurrences
//! written with tensor ops, on the fusion backend (burn's default `Wgpu`) and on the CubeCL
//! backend without fusion: outputs and final states for every cell, masked and reversed, with
//! hidden sizes that take each launch shape (one launch for the sequence with one and several
//! batch rows per cube, units split over cubes with a launch per step, more units than threads).
//! The taped forward pass with the backward kernel against the tensor-op tape pair: every
//! gradient. (Whole layers, stacked and bidirectional, are compared in `fused.rs`.)

use burn::backend::wgpu::{CubeBackend, WgpuRuntime};
use burn::tensor::Tensor;
use rensa_nn::activation::Activation;
use rensa_nn::recurrent::{
    BackwardCall, CellKind, CellState, Differentiation, Recurrence, RecurrenceCall,
    RecurrentBackend, RecurrentWeights, TapeGrads, Upstream, length_mask, tape,
};
use rensa_testkit::{Tolerance, WgpuBackend, assert_close, normal_tensor, wgpu_device_or_skip};

/// The CubeCL backend under burn's default `Wgpu`, without the fusion layer.
type Cube = CubeBackend<WgpuRuntime, f32, i32, u32>;
/// burn's default `Wgpu`: CubeCL under the fusion layer.
type W = WgpuBackend;

#[derive(Clone, Copy, Debug)]
enum Cell {
    Rnn(Activation),
    Lstm,
    Gru { reset_after: bool, bias: bool },
}

impl Cell {
    fn kind(self) -> CellKind {
        match self {
            Cell::Rnn(activation) => CellKind::Rnn { activation },
            Cell::Lstm => CellKind::Lstm,
            Cell::Gru { reset_after, .. } => CellKind::Gru { reset_after },
        }
    }

    fn gates(self) -> usize {
        self.kind().gates()
    }
}

/// One case: a recurrence to run, and its name for the messages.
struct Case<B: RecurrentBackend> {
    what: String,
    call: RecurrenceCall<B>,
}

/// A case of `cell` over `[batch, time, hidden]`, with random inputs, state and weights.
fn case<B: RecurrentBackend>(
    cell: Cell,
    [batch, time, hidden]: [usize; 3],
    masked: bool,
    reverse: bool,
    device: &B::Device,
) -> Case<B> {
    let what = format!(
        "{} {cell:?} B={batch} T={time} H={hidden} masked={masked} reverse={reverse}",
        std::any::type_name::<B>()
    );
    let g = cell.gates();
    let projected = normal_tensor::<B, 3>(1, [batch, time, g * hidden], 1.0, device);
    // Small recurrent weights keep the states away from saturation, where every path agrees.
    let weight_hh = normal_tensor::<B, 2>(
        2,
        [hidden, g * hidden],
        1.0 / (hidden as f64).sqrt(),
        device,
    );
    let hidden_state = normal_tensor::<B, 2>(3, [batch, hidden], 0.5, device);
    let c0 = normal_tensor::<B, 2>(4, [batch, hidden], 0.5, device);
    let bias = normal_tensor::<B, 1>(5, [hidden], 0.5, device);
    let mask = masked.then(|| {
        let lengths: Vec<usize> = (0..batch).map(|b| 1 + (b * 5) % time).collect();
        length_mask::<B>(&lengths, batch, time, device)
    });
    let call = RecurrenceCall {
        cell: cell.kind(),
        seq: Recurrence {
            projected,
            mask,
            reverse,
            differentiation: Differentiation::Fused,
        },
        state: CellState {
            hidden: hidden_state,
            cell: matches!(cell, Cell::Lstm).then_some(c0),
        },
        weights: RecurrentWeights {
            weight_hh,
            bias_hn: matches!(cell, Cell::Gru { bias: true, .. }).then_some(bias),
        },
    };
    Case { what, call }
}

/// Runs one case through the backend's kernel and through the tensor-op recurrence, and
/// compares outputs and final states.
fn check<B: RecurrentBackend>(c: Case<B>) {
    let Case { what, call } = c;
    let (o, last) = B::recurrence(call.clone());
    let (po, plast) = tape::recurrence(call);
    let tol = Tolerance::F32_LOOSE;
    assert_close(o, po, tol, &format!("{what}: outputs"));
    assert_close(last.hidden, plast.hidden, tol, &format!("{what}: final h"));
    assert_eq!(last.cell.is_some(), plast.cell.is_some(), "{what}: final c");
    if let (Some(c), Some(pc)) = (last.cell, plast.cell) {
        assert_close(c, pc, tol, &format!("{what}: final c"));
    }
}

/// The simple RNN with a sigmoid (a kernel path of its own).
const SIGMOID_RNN: Cell = Cell::Rnn(Activation::Sigmoid);
/// The reset-after GRU with its recurrent candidate bias `bₕₙ`.
const GRU_AFTER: Cell = Cell::Gru {
    reset_after: true,
    bias: true,
};
/// The reset-before GRU (no `bₕₙ`).
const GRU_BEFORE: Cell = Cell::Gru {
    reset_after: false,
    bias: false,
};

const CELLS: [Cell; 7] = [
    Cell::Rnn(Activation::Tanh),
    Cell::Rnn(Activation::Relu),
    Cell::Rnn(Activation::LeakyRelu { alpha: 0.2 }),
    Cell::Lstm,
    GRU_AFTER,
    Cell::Gru {
        reset_after: true,
        bias: false,
    },
    GRU_BEFORE,
];

fn all_cells<B: RecurrentBackend>(device: &B::Device) {
    for cell in CELLS {
        // One batch row per cube, hidden size below a warp.
        check(case::<B>(cell, [3, 5, 5], true, false, device));
        // Several rows per cube (and a partial last cube), reversed.
        check(case::<B>(cell, [70, 4, 24], true, true, device));
    }
}

/// The taped forward pass and the backward pass of the backend (the kernels) against the tensor-op
/// pair, from the same upstream gradients.
fn check_grads<B: RecurrentBackend>(c: Case<B>) {
    let Case { what, call } = c;
    let [batch, time, _] = call.seq.projected.dims();
    let hidden = call.weights.weight_hh.dims()[0];
    let device = &call.seq.projected.device();
    let up = Upstream {
        d_output: normal_tensor::<B, 3>(6, [batch, time, hidden], 1.0, device),
        d_h: normal_tensor::<B, 2>(7, [batch, hidden], 1.0, device),
        d_c: (call.cell == CellKind::Lstm)
            .then(|| normal_tensor::<B, 2>(8, [batch, hidden], 1.0, device)),
    };
    let (cell, weights) = (call.cell, call.weights.clone());
    let (_, _, tape) = B::forward_tape(call.clone());
    let (_, _, plain_tape) = tape::forward(call);
    let backward = |tape| BackwardCall {
        cell,
        tape,
        weights: weights.clone(),
        up: up.clone(),
    };
    let kernel: TapeGrads<B> = B::backward_tape(backward(tape));
    let reference = tape::backward(backward(plain_tape));
    fn close<B: RecurrentBackend, const D: usize>(k: Tensor<B, D>, r: Tensor<B, D>, what: String) {
        assert_close(k, r, Tolerance::F32_LOOSE, &what);
    }
    close(
        kernel.d_projected,
        reference.d_projected,
        format!("{what}: d projected"),
    );
    close(kernel.d_h0, reference.d_h0, format!("{what}: d h0"));
    close(
        kernel.d_weight,
        reference.d_weight,
        format!("{what}: d weight_hh"),
    );
    for (k, r, name) in [
        (kernel.d_c0, reference.d_c0, "c0"),
        (
            kernel.d_bias_hn.map(|b| b.unsqueeze()),
            reference.d_bias_hn.map(|b| b.unsqueeze()),
            "bias_hn",
        ),
    ] {
        assert_eq!(k.is_some(), r.is_some(), "{what}: d {name}");
        if let (Some(k), Some(r)) = (k, r) {
            close(k, r, format!("{what}: d {name}"));
        }
    }
}

#[test]
fn backward_kernel_equals_tensor_op_backward() {
    let Some(device) = wgpu_device_or_skip() else {
        return;
    };
    for cell in CELLS {
        check_grads(case::<W>(cell, [3, 5, 5], true, false, &device));
        check_grads(case::<W>(cell, [70, 4, 24], true, true, &device));
    }
    // More units than threads; unmasked, one step.
    check_grads(case::<W>(Cell::Lstm, [2, 3, 300], false, true, &device));
    check_grads(case::<W>(GRU_BEFORE, [2, 3, 300], true, false, &device));
    check_grads(case::<W>(SIGMOID_RNN, [4, 1, 8], false, false, &device));
    check_grads(case::<Cube>(GRU_AFTER, [5, 3, 40], true, true, &device));
}

#[test]
fn kernel_equals_tensor_ops_on_both_wgpu_backends() {
    let Some(device) = wgpu_device_or_skip() else {
        return;
    };
    all_cells::<WgpuBackend>(&device);
    // Units split over cubes, a launch per step (the reset-before GRU: more units than threads
    // in one launch); and the sigmoid RNN unmasked forwards.
    for cell in [Cell::Lstm, GRU_BEFORE, Cell::Rnn(Activation::Tanh)] {
        check(case::<W>(cell, [2, 3, 300], true, true, &device));
    }
    check(case::<W>(SIGMOID_RNN, [4, 6, 8], false, false, &device));
    check(case::<W>(Cell::Lstm, [4, 6, 8], false, false, &device));
    // The same kernels on the CubeCL backend without fusion.
    check(case::<Cube>(Cell::Lstm, [70, 4, 24], true, true, &device));
    check(case::<Cube>(GRU_AFTER, [3, 5, 300], false, false, &device));
}

/// Sizes past the kernels' shared-memory limits: a reset-before GRU of 1100 units runs with
/// tensor ops throughout; an LSTM of 1100 units runs the forward kernel, whose buffers are then
/// handed to the tensor-op backward pass as per-step tensors. Both give the tensor-op results.
#[test]
fn large_hidden_sizes_fall_back_to_tensor_ops() {
    let Some(device) = wgpu_device_or_skip() else {
        return;
    };
    check(case::<W>(GRU_BEFORE, [1, 2, 1100], false, false, &device));
    check_grads(case::<W>(GRU_BEFORE, [1, 2, 1100], false, false, &device));
    check_grads(case::<W>(Cell::Lstm, [2, 3, 1100], true, true, &device));
}

/// Inputs whose shapes disagree are refused with the tensor's name and both shapes (on the
/// device an out-of-range read would give wrong numbers silently).
#[test]
fn mismatched_shapes_are_named() {
    let Some(device) = wgpu_device_or_skip() else {
        return;
    };
    let mut c = case::<W>(Cell::Lstm, [2, 3, 8], false, false, &device);
    c.call.weights.weight_hh = normal_tensor::<WgpuBackend, 2>(2, [8, 24], 0.3, &device);
    let run = std::panic::AssertUnwindSafe(|| WgpuBackend::recurrence(c.call));
    let panic = std::panic::catch_unwind(run).unwrap_err();
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(
        message.contains("recurrence: weight_hh has shape [8, 24], expected [8, 32]"),
        "{message}"
    );
}

//! The CubeCL recurrence kernel (wgpu; a software adapter in CI) against the same recurrences
//! written with tensor ops, on the fusion backend (burn's default `Wgpu`) and on the CubeCL
//! backend without fusion: outputs and final states for every cell, masked and reversed, with
//! hidden sizes that take each launch shape (one launch for the sequence with one and several
//! batch rows per cube, units split over cubes with a launch per step, more units than threads).
//! The taped forward pass with the backward kernel against the tensor-op tape pair: every
//! gradient. (Whole layers, stacked and bidirectional, are compared in `tests/fused.rs`.)

use burn::backend::wgpu::{CubeBackend, WgpuRuntime};
use burn::tensor::Tensor;
use rensa_nn::activation::Activation;
use rensa_nn::recurrent::{
    CellKind, CellState, Differentiation, Recurrence, RecurrentBackend, RecurrentWeights,
    TapeGrads, Upstream, length_mask, tape,
};
use rensa_testkit::{Tolerance, WgpuBackend, assert_close, normal_tensor, wgpu_device};

/// The CubeCL backend under burn's default `Wgpu`, without the fusion layer.
type Cube = CubeBackend<WgpuRuntime, f32, i32, u32>;

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

/// Runs one case through the backend's kernel and through the tensor-op recurrence, and
/// compares outputs and final states.
/// One case's inputs.
struct Case<B: RecurrentBackend> {
    what: String,
    seq: Recurrence<B>,
    weight: Tensor<B, 2>,
    h0: Tensor<B, 2>,
    c0: Tensor<B, 2>,
    bias: Tensor<B, 1>,
}

impl<B: RecurrentBackend> Case<B> {
    /// The initial state and the recurrent weights the cell takes.
    fn inputs(&self, cell: Cell) -> (CellState<B>, RecurrentWeights<B>) {
        let state = CellState {
            hidden: self.h0.clone(),
            cell: matches!(cell, Cell::Lstm).then(|| self.c0.clone()),
        };
        let weights = RecurrentWeights {
            weight_hh: self.weight.clone(),
            bias_hn: matches!(cell, Cell::Gru { bias: true, .. }).then(|| self.bias.clone()),
        };
        (state, weights)
    }
}

fn case<B: RecurrentBackend>(
    cell: Cell,
    batch: usize,
    time: usize,
    hidden: usize,
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
    let weight = normal_tensor::<B, 2>(
        2,
        [hidden, g * hidden],
        1.0 / (hidden as f64).sqrt(),
        device,
    );
    let h0 = normal_tensor::<B, 2>(3, [batch, hidden], 0.5, device);
    let c0 = normal_tensor::<B, 2>(4, [batch, hidden], 0.5, device);
    let bias = normal_tensor::<B, 1>(5, [hidden], 0.5, device);
    let mask = masked.then(|| {
        let lengths: Vec<usize> = (0..batch).map(|b| 1 + (b * 5) % time).collect();
        length_mask::<B>(&lengths, batch, time, device)
    });
    let seq = Recurrence {
        projected,
        mask,
        reverse,
        differentiation: Differentiation::Fused,
    };
    Case {
        what,
        seq,
        weight,
        h0,
        c0,
        bias,
    }
}

/// Runs one case through the backend's kernel and through the tensor-op recurrence, and
/// compares outputs and final states.
fn check<B: RecurrentBackend>(
    cell: Cell,
    batch: usize,
    time: usize,
    hidden: usize,
    masked: bool,
    reverse: bool,
    device: &B::Device,
) {
    let c = case::<B>(cell, batch, time, hidden, masked, reverse, device);
    let (state, weights) = c.inputs(cell);
    let (seq, what, kind) = (c.seq, c.what, cell.kind());
    let (o, last) = B::recurrence(kind, seq.clone(), state.clone(), weights.clone());
    let (po, plast) = tape::recurrence(kind, seq, state, weights);
    let tol = Tolerance::F32_LOOSE;
    assert_close(o, po, tol, &format!("{what}: outputs"));
    assert_close(last.hidden, plast.hidden, tol, &format!("{what}: final h"));
    assert_eq!(last.cell.is_some(), plast.cell.is_some(), "{what}: final c");
    if let (Some(c), Some(pc)) = (last.cell, plast.cell) {
        assert_close(c, pc, tol, &format!("{what}: final c"));
    }
}

const CELLS: [Cell; 7] = [
    Cell::Rnn(Activation::Tanh),
    Cell::Rnn(Activation::Relu),
    Cell::Rnn(Activation::LeakyRelu { alpha: 0.2 }),
    Cell::Lstm,
    Cell::Gru {
        reset_after: true,
        bias: true,
    },
    Cell::Gru {
        reset_after: true,
        bias: false,
    },
    Cell::Gru {
        reset_after: false,
        bias: false,
    },
];

fn all_cells<B: RecurrentBackend>(device: &B::Device) {
    for cell in CELLS {
        // One batch row per cube, hidden size below a warp.
        check::<B>(cell, 3, 5, 5, true, false, device);
        // Several rows per cube (and a partial last cube), reversed.
        check::<B>(cell, 70, 4, 24, true, true, device);
    }
}

/// The taped forward pass and the backward pass of the backend (the kernels) against the tensor-op
/// pair, from the same upstream gradients.
fn check_grads<B: RecurrentBackend>(
    cell: Cell,
    batch: usize,
    time: usize,
    hidden: usize,
    masked: bool,
    reverse: bool,
    device: &B::Device,
) {
    let c = case::<B>(cell, batch, time, hidden, masked, reverse, device);
    let (state, weights) = c.inputs(cell);
    let (seq, what, kind) = (c.seq, c.what, cell.kind());
    let up = Upstream {
        d_output: normal_tensor::<B, 3>(6, [batch, time, hidden], 1.0, device),
        d_h: normal_tensor::<B, 2>(7, [batch, hidden], 1.0, device),
        d_c: matches!(cell, Cell::Lstm)
            .then(|| normal_tensor::<B, 2>(8, [batch, hidden], 1.0, device)),
    };
    let (_, _, t) = B::forward_tape(kind, seq.clone(), state.clone(), weights.clone());
    let (_, _, pt) = tape::forward(kind, seq, state, weights.clone());
    let kernel: TapeGrads<B> = B::backward_tape(kind, t, weights.clone(), up.clone());
    let reference = tape::backward(kind, pt, weights, up);
    let tol = Tolerance::F32_LOOSE;
    assert_close(
        kernel.d_projected,
        reference.d_projected,
        tol,
        &format!("{what}: d projected"),
    );
    assert_close(kernel.d_h0, reference.d_h0, tol, &format!("{what}: d h0"));
    assert_close(
        kernel.d_weight,
        reference.d_weight,
        tol,
        &format!("{what}: d weight_hh"),
    );
    assert_eq!(
        kernel.d_c0.is_some(),
        reference.d_c0.is_some(),
        "{what}: d c0"
    );
    if let (Some(k), Some(r)) = (kernel.d_c0, reference.d_c0) {
        assert_close(k, r, tol, &format!("{what}: d c0"));
    }
    assert_eq!(
        kernel.d_bias_hn.is_some(),
        reference.d_bias_hn.is_some(),
        "{what}: d bias_hn"
    );
    if let (Some(k), Some(r)) = (kernel.d_bias_hn, reference.d_bias_hn) {
        assert_close(k, r, tol, &format!("{what}: d bias_hn"));
    }
}

#[test]
fn backward_kernel_equals_tensor_op_backward() {
    let device = wgpu_device();
    for cell in CELLS {
        check_grads::<WgpuBackend>(cell, 3, 5, 5, true, false, &device);
        check_grads::<WgpuBackend>(cell, 70, 4, 24, true, true, &device);
    }
    // More units than threads; unmasked, one step.
    check_grads::<WgpuBackend>(Cell::Lstm, 2, 3, 300, false, true, &device);
    check_grads::<WgpuBackend>(
        Cell::Gru {
            reset_after: false,
            bias: false,
        },
        2,
        3,
        300,
        true,
        false,
        &device,
    );
    check_grads::<WgpuBackend>(
        Cell::Rnn(Activation::Sigmoid),
        4,
        1,
        8,
        false,
        false,
        &device,
    );
    check_grads::<Cube>(
        Cell::Gru {
            reset_after: true,
            bias: true,
        },
        5,
        3,
        40,
        true,
        true,
        &device,
    );
}

#[test]
fn kernel_equals_tensor_ops_on_fusion_backend() {
    let device = wgpu_device();
    all_cells::<WgpuBackend>(&device);
    // Units split over cubes, a launch per step (the reset-before GRU: more units than threads
    // in one launch); and the sigmoid RNN unmasked forwards.
    for cell in [
        Cell::Lstm,
        Cell::Gru {
            reset_after: false,
            bias: false,
        },
        Cell::Rnn(Activation::Tanh),
    ] {
        check::<WgpuBackend>(cell, 2, 3, 300, true, true, &device);
    }
    check::<WgpuBackend>(
        Cell::Rnn(Activation::Sigmoid),
        4,
        6,
        8,
        false,
        false,
        &device,
    );
    check::<WgpuBackend>(Cell::Lstm, 4, 6, 8, false, false, &device);
}

#[test]
fn kernel_equals_tensor_ops_on_cubecl_backend() {
    let device = wgpu_device();
    check::<Cube>(Cell::Lstm, 70, 4, 24, true, true, &device);
    check::<Cube>(
        Cell::Gru {
            reset_after: true,
            bias: true,
        },
        3,
        5,
        300,
        false,
        false,
        &device,
    );
}

/// Sizes past the kernels' shared-memory limits: a reset-before GRU of 1100 units runs with
/// tensor ops throughout; an LSTM of 1100 units runs the forward kernel, whose buffers are then
/// handed to the tensor-op backward pass as per-step tensors. Both give the tensor-op results.
#[test]
fn large_hidden_sizes_fall_back_to_tensor_ops() {
    let device = wgpu_device();
    let gru_before = Cell::Gru {
        reset_after: false,
        bias: false,
    };
    check::<WgpuBackend>(gru_before, 1, 2, 1100, false, false, &device);
    check_grads::<WgpuBackend>(gru_before, 1, 2, 1100, false, false, &device);
    check_grads::<WgpuBackend>(Cell::Lstm, 2, 3, 1100, true, true, &device);
}

/// Inputs whose shapes disagree are refused with the tensor's name and both shapes (on the
/// device an out-of-range read would give wrong numbers silently).
#[test]
#[should_panic(expected = "recurrence: weight_hh has shape [8, 24], expected [8, 32]")]
fn mismatched_shapes_are_named() {
    let device = wgpu_device();
    let c = case::<WgpuBackend>(Cell::Lstm, 2, 3, 8, false, false, &device);
    let (state, mut weights) = c.inputs(Cell::Lstm);
    weights.weight_hh = normal_tensor::<WgpuBackend, 2>(2, [8, 24], 0.3, &device);
    let _ = WgpuBackend::recurrence(CellKind::Lstm, c.seq, state, weights);
}

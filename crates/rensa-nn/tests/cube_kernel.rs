//! The CubeCL recurrence kernel (wgpu; a software adapter in CI) against the same recurrences
//! written with tensor ops, on the fusion backend (burn's default `Wgpu`) and on the CubeCL
//! backend without fusion: outputs and final states for every cell, masked and reversed, with
//! hidden sizes that take each launch shape (one launch for the sequence with one and several
//! batch rows per cube, units split over cubes with a launch per step, more units than threads).
//! The taped forward pass and its gradients are compared in `tests/fused.rs`.

use burn::backend::wgpu::{CubeBackend, WgpuRuntime};
use rensa_nn::activation::Activation;
use rensa_nn::recurrent::{Recurrence, RecurrentBackend, length_mask, plain};
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
    fn gates(self) -> usize {
        match self {
            Cell::Rnn(_) => 1,
            Cell::Lstm => 4,
            Cell::Gru { .. } => 3,
        }
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
    };
    let tol = Tolerance::F32_LOOSE;
    match cell {
        Cell::Rnn(act) => {
            let (o, h) = B::rnn_recurrence(seq.clone(), h0.clone(), weight.clone(), act);
            let (po, ph) = plain::rnn(seq, h0, weight, act);
            assert_close(o, po, tol, &format!("{what}: outputs"));
            assert_close(h, ph, tol, &format!("{what}: final h"));
        }
        Cell::Lstm => {
            let (o, h, c) = B::lstm_recurrence(seq.clone(), h0.clone(), c0.clone(), weight.clone());
            let (po, ph, pc) = plain::lstm(seq, h0, c0, weight);
            assert_close(o, po, tol, &format!("{what}: outputs"));
            assert_close(h, ph, tol, &format!("{what}: final h"));
            assert_close(c, pc, tol, &format!("{what}: final c"));
        }
        Cell::Gru {
            reset_after,
            bias: with_bias,
        } => {
            let b = with_bias.then_some(bias);
            let (o, h) = B::gru_recurrence(
                seq.clone(),
                h0.clone(),
                weight.clone(),
                b.clone(),
                reset_after,
            );
            let (po, ph) = plain::gru(seq, h0, weight, b, reset_after);
            assert_close(o, po, tol, &format!("{what}: outputs"));
            assert_close(h, ph, tol, &format!("{what}: final h"));
        }
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

/// Hidden sizes whose state does not fit the shared memory every device has run with tensor
/// ops, with the same results.
#[test]
fn large_hidden_sizes_fall_back_to_tensor_ops() {
    let device = wgpu_device();
    check::<WgpuBackend>(
        Cell::Gru {
            reset_after: false,
            bias: false,
        },
        1,
        2,
        1100,
        false,
        false,
        &device,
    );
}

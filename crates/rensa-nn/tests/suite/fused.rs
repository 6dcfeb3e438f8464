//! The fused autodiff path (one graph node per recurrence, hand-written backward) against the
//! plain path (every step's ops recorded) on the same weights and inputs: outputs, final states
//! and every gradient.

use burn::tensor::backend::{AutodiffBackend, Backend};
use rensa_nn::activation::Activation;
use rensa_nn::init::Init;
use rensa_nn::recurrent::{
    Differentiation, GruConfig, LstmConfig, Recurrent, RecurrentBackend, RecurrentCell,
    RecurrentConfig, RecurrentState, RnnConfig, SequenceInput,
};
use rensa_testkit::{
    TestAutodiff, Tolerance, WgpuAutodiff, assert_slices_close, normal_tensor, to_f64_vec,
    wgpu_device_or_skip,
};

/// Which of a layer's results the loss is made of.
#[derive(Clone, Copy, Debug)]
enum Uses {
    /// The outputs and the final states.
    All,
    /// The outputs only (the final states receive no gradient).
    Outputs,
    /// The final states only, as an encoder's are (the outputs receive no gradient).
    States,
}

/// Everything a forward and backward pass produce, flattened and named.
fn run<B, C>(
    layer: &Recurrent<B, C>,
    lengths: Option<&[usize]>,
    uses: Uses,
    device: &B::Device,
) -> Vec<(String, Vec<f64>)>
where
    B: RecurrentBackend + AutodiffBackend,
    C: RecurrentCell<B>,
{
    let [batch, time, input] = [lengths.map_or(3, <[usize]>::len), 6, 4];
    let x = normal_tensor::<B, 3>(1, [batch, time, input], 1.0, device).require_grad();
    let dims = [
        layer.num_layers * layer.directions(),
        batch,
        layer.hidden_size(),
    ];
    let h0 = normal_tensor::<B, 3>(2, dims, 0.5, device).require_grad();
    let c0 = C::HAS_CELL_STATE.then(|| normal_tensor::<B, 3>(5, dims, 0.5, device).require_grad());
    let mut seq = SequenceInput::new(x.clone()).with_state(RecurrentState {
        hidden: h0.clone(),
        cell: c0.clone(),
    });
    if let Some(l) = lengths {
        seq = seq.with_lengths(l);
    }
    let out = layer.forward(seq);
    // A loss that weighs every output and final state differently.
    let w_out = normal_tensor::<B, 3>(3, out.output.dims(), 1.0, device);
    let w_h = normal_tensor::<B, 3>(4, dims, 1.0, device);
    let outputs = (out.output.clone() * w_out).sum();
    let mut states = (out.state.hidden.clone() * w_h).sum();
    if let Some(c) = out.state.cell.clone() {
        states = states + (c * normal_tensor::<B, 3>(6, dims, 1.0, device)).sum();
    }
    let loss = match uses {
        Uses::All => outputs + states,
        Uses::Outputs => outputs,
        Uses::States => states,
    };
    let grads = loss.backward();
    let mut all = vec![
        ("output".to_string(), to_f64_vec(out.output)),
        ("final h".to_string(), to_f64_vec(out.state.hidden)),
        ("d input".to_string(), to_f64_vec(x.grad(&grads).unwrap())),
        ("d h0".to_string(), to_f64_vec(h0.grad(&grads).unwrap())),
    ];
    if let (Some(c), Some(c0)) = (out.state.cell, c0) {
        all.push(("final c".to_string(), to_f64_vec(c)));
        all.push(("d c0".to_string(), to_f64_vec(c0.grad(&grads).unwrap())));
    }
    for l in 0..layer.num_layers {
        for dir in 0..layer.directions() {
            let w = layer.cell(l, dir).weights();
            let name = |n: &str| format!("d {n} (layer {l}, direction {dir})");
            all.push((
                name("weight_ih"),
                to_f64_vec(w.weight_ih.grad(&grads).unwrap()),
            ));
            all.push((
                name("weight_hh"),
                to_f64_vec(w.weight_hh.grad(&grads).unwrap()),
            ));
            if let Some(b) = &w.bias_ih {
                all.push((name("bias_ih"), to_f64_vec(b.grad(&grads).unwrap())));
            }
            if let Some(b) = &w.bias_hh {
                all.push((name("bias_hh"), to_f64_vec(b.grad(&grads).unwrap())));
            }
        }
    }
    all
}

/// (activation, layers, bidirectional, lengths)
type Case = (Activation, usize, bool, Option<&'static [usize]>);

/// 70 sequences: the native CPU kernels split a batch this size into parts that run on
/// separate threads (`cpu::batch_parts`), so this case checks the split and the join.
const LENGTHS_70: [usize; 70] = {
    let mut l = [6; 70];
    let mut i = 0;
    while i < 70 {
        l[i] = 1 + (i * 7) % 6;
        i += 1;
    }
    l
};

const CASES: [Case; 6] = [
    (Activation::Tanh, 1, false, None),
    (Activation::Sigmoid, 1, false, Some(&[6, 4, 1])),
    (Activation::Relu, 2, false, None),
    (Activation::Tanh, 2, true, Some(&[2, 6, 5])),
    (Activation::LeakyRelu { alpha: 0.1 }, 1, true, None),
    (Activation::Tanh, 2, true, Some(&LENGTHS_70)),
];

/// Compares the two paths on the layers `config` describes (given a case's activation, which
/// only the simple RNN reads), stacked and directed as each case says.
fn compare<B, K>(
    device: &B::Device,
    tol: Tolerance,
    which: &[usize],
    uses: Uses,
    config: impl Fn(Activation) -> K,
) where
    B: RecurrentBackend + AutodiffBackend,
    K: RecurrentConfig,
{
    for case in which.iter().map(|&k| CASES[k]) {
        <B as Backend>::seed(device, 9);
        let (activation, layers, bidirectional, _) = case;
        let layer = config(activation)
            .stacked(layers, bidirectional)
            .init_layer::<B>(device)
            .unwrap();
        let fused = run(&layer, case.3, uses, device);
        let layer = layer.with_differentiation(Differentiation::Plain);
        let plain = run(&layer, case.3, uses, device);
        for ((name, f), (_, p)) in fused.iter().zip(&plain) {
            assert_slices_close(
                f,
                p,
                tol,
                &format!(
                    "{} {name}: {case:?}, loss from {uses:?}",
                    std::any::type_name::<K>()
                ),
            );
        }
    }
}

fn rnn(activation: Activation) -> RnnConfig {
    RnnConfig::new(4, 5).with_activation(activation)
}

fn lstm(_: Activation) -> LstmConfig {
    LstmConfig::new(4, 5)
}

/// GRU in the form `reset_after`, with both biases drawn at random so that the candidate's
/// recurrent bias (a parent of its own in the reset-after node) matters.
fn gru(reset_after: bool) -> impl Fn(Activation) -> GruConfig {
    move |_| {
        GruConfig::new(4, 5)
            .with_reset_after(reset_after)
            .with_bias_init(Init::Normal {
                mean: 0.0,
                std: 0.5,
            })
    }
}

#[test]
fn fused_recurrences_equal_the_plain_path() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let all = [0, 1, 2, 3, 4, 5];
    let cpu = |which: &[usize], uses| {
        compare::<TestAutodiff, _>(&device, Tolerance::F32, which, uses, rnn);
        compare::<TestAutodiff, _>(&device, Tolerance::F32, which, uses, lstm);
        for reset_after in [true, false] {
            compare::<TestAutodiff, _>(&device, Tolerance::F32, which, uses, gru(reset_after));
        }
    };
    cpu(&all, Uses::All);
    // A result that receives no gradient: the other's reach the recurrence alone.
    cpu(&[1, 3], Uses::Outputs);
    cpu(&[1, 3], Uses::States);
    // On wgpu (a software adapter in CI, where every shader compiles slowly): the stacked,
    // bidirectional, masked case.
    let Some(wgpu) = wgpu_device_or_skip() else {
        return;
    };
    let tol = Tolerance::F32_LOOSE;
    compare::<WgpuAutodiff, _>(&wgpu, tol, &[3], Uses::All, rnn);
    compare::<WgpuAutodiff, _>(&wgpu, tol, &[3], Uses::All, lstm);
    compare::<WgpuAutodiff, _>(&wgpu, tol, &[3], Uses::All, gru(true));
    compare::<WgpuAutodiff, _>(&wgpu, tol, &[3], Uses::All, gru(false));
    compare::<WgpuAutodiff, _>(&wgpu, tol, &[3], Uses::States, lstm);
}

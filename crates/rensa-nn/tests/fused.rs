//! The fused autodiff path (one graph node per recurrence, hand-written backward) against the
//! plain path (every step's ops recorded) on the same weights and inputs: outputs, final states
//! and every gradient. One test in its own binary, because the switch is process-wide.

use rensa_nn::activation::Activation;
use rensa_nn::recurrent::{RecurrentState, Rnn, RnnConfig, SequenceInput, set_fused_autodiff};
use rensa_testkit::{
    TestAutodiff, Tolerance, WgpuAutodiff, assert_slices_close, normal_tensor, to_f64_vec,
    wgpu_device,
};

/// Everything a forward and backward pass produce, flattened.
fn run<B: rensa_nn::recurrent::RecurrentBackend + burn::tensor::backend::AutodiffBackend>(
    rnn: &Rnn<B>,
    lengths: Option<&[usize]>,
    device: &B::Device,
) -> Vec<(String, Vec<f64>)> {
    let [batch, time, input] = [3, 6, 4];
    let x = normal_tensor::<B, 3>(1, [batch, time, input], 1.0, device).require_grad();
    let states = rnn.num_layers * rnn.directions();
    let h0 =
        normal_tensor::<B, 3>(2, [states, batch, rnn.hidden_size()], 0.5, device).require_grad();
    let mut seq = SequenceInput::new(x.clone()).with_state(RecurrentState {
        hidden: h0.clone(),
        cell: None,
    });
    if let Some(l) = lengths {
        seq = seq.with_lengths(l);
    }
    let out = rnn.forward(seq);
    // A loss that weighs every output and the final state differently.
    let w_out = normal_tensor::<B, 3>(3, out.output.dims(), 1.0, device);
    let w_state = normal_tensor::<B, 3>(4, out.state.hidden.dims(), 1.0, device);
    let loss = (out.output.clone() * w_out).sum() + (out.state.hidden.clone() * w_state).sum();
    let grads = loss.backward();
    let mut all = vec![
        ("output".to_string(), to_f64_vec(out.output)),
        ("final state".to_string(), to_f64_vec(out.state.hidden)),
        ("d input".to_string(), to_f64_vec(x.grad(&grads).unwrap())),
        ("d h0".to_string(), to_f64_vec(h0.grad(&grads).unwrap())),
    ];
    for layer in 0..rnn.num_layers {
        for dir in 0..rnn.directions() {
            let w = &rnn.cell(layer, dir).weights;
            let name = |n: &str| format!("d {n} (layer {layer}, direction {dir})");
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
        }
    }
    all
}

fn compare<B: rensa_nn::recurrent::RecurrentBackend + burn::tensor::backend::AutodiffBackend>(
    device: &B::Device,
    tol: Tolerance,
    which: &[usize],
) {
    let cases: [(Activation, usize, bool, Option<&[usize]>); 5] = [
        (Activation::Tanh, 1, false, None),
        (Activation::Sigmoid, 1, false, Some(&[6, 4, 1])),
        (Activation::Relu, 2, false, None),
        (Activation::Tanh, 2, true, Some(&[2, 6, 5])),
        (Activation::LeakyRelu { alpha: 0.1 }, 1, true, None),
    ];
    for (activation, layers, bidirectional, lengths) in which.iter().map(|&k| cases[k]) {
        <B as burn::tensor::backend::Backend>::seed(device, 9);
        let rnn: Rnn<B> = RnnConfig::new(4, 5)
            .with_activation(activation)
            .with_num_layers(layers)
            .with_bidirectional(bidirectional)
            .init(device)
            .unwrap();
        set_fused_autodiff(true);
        let fused = run(&rnn, lengths, device);
        set_fused_autodiff(false);
        let plain = run(&rnn, lengths, device);
        set_fused_autodiff(true);
        for ((name, f), (_, p)) in fused.iter().zip(&plain) {
            assert_slices_close(
                f,
                p,
                tol,
                &format!(
                    "{name}: {activation:?}, {layers} layer(s), bidirectional {bidirectional}, lengths {lengths:?}"
                ),
            );
        }
    }
}

#[test]
fn fused_rnn_equals_the_plain_path() {
    compare::<TestAutodiff>(&Default::default(), Tolerance::F32, &[0, 1, 2, 3, 4]);
    // On wgpu (a software adapter in CI, where every shader compiles slowly): the stacked,
    // bidirectional, masked case.
    compare::<WgpuAutodiff>(&wgpu_device(), Tolerance::F32_LOOSE, &[3]);
}

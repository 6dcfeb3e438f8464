//! The hand-written BPTT against central finite differences of the loss, in f64.

use burn::tensor::{Tensor, TensorData};
use rensa_data::addition::*;
use rensa_models::binary_addition::*;
use rensa_nn::activation::Activation;
use rensa_testkit::{F64Backend, Tolerance, assert_slices_close, f64_device, to_f64_vec};

type B = F64Backend;

#[test]
fn bptt_matches_finite_differences() {
    let _rng = rensa_testkit::rng_lock();
    let device = f64_device();
    let pairs = PairSampler::new(9).pairs(3);
    let batch = Batch::<B>::new(&pairs, &device);
    let eps = 1e-6;
    for activation in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
        <B as burn::tensor::backend::Backend>::seed(&device, 21);
        let w = Weights::<B>::init(6, InitScheme::Xavier, &device);
        let hand = bptt(&w, &batch, activation, OutputDerivative::Correct);
        let loss = |w: &Weights<B>| -> f64 {
            squared_error_loss(
                w.forward(batch.inputs.clone(), activation),
                batch.targets.clone(),
            )
            .into_scalar()
        };
        let matrices = [
            ("W_in", w.w_in.clone(), hand.grads.w_in),
            ("W", w.w.clone(), hand.grads.w),
            ("W_out", w.w_out.clone(), hand.grads.w_out),
        ];
        for (k, (name, value, grad)) in matrices.into_iter().enumerate() {
            let shape = value.dims();
            let values = to_f64_vec(value);
            let numeric: Vec<f64> = (0..values.len())
                .map(|i| {
                    let at = |delta: f64| {
                        let mut v = values.clone();
                        v[i] += delta;
                        let t = Tensor::<B, 2>::from_data(TensorData::new(v, shape), &device);
                        let mut moved = w.clone();
                        match k {
                            0 => moved.w_in = t,
                            1 => moved.w = t,
                            _ => moved.w_out = t,
                        }
                        loss(&moved)
                    };
                    (at(eps) - at(-eps)) / (2.0 * eps)
                })
                .collect();
            assert_slices_close(
                &to_f64_vec(grad),
                &numeric,
                Tolerance::new(1e-8, 1e-6),
                &format!("d{name} ({activation:?})"),
            );
        }
    }
}

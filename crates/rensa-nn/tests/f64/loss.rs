//! The fused Bernoulli loss in f64: finite differences of its gradients in the logits and the
//! targets, and ndarray's native loop against the tensor-op reference.

use burn::tensor::{Tensor, TensorData, Tolerance};
use rensa_nn::loss::bernoulli_nll;
use rensa_nn::recurrent::{Differentiation, bernoulli_nll_reference};
use rensa_testkit::{F64Backend, GradCheck, f64_device, seeded_normal};

const ROWS: usize = 5;
const COLS: usize = 23;

/// Targets in `[0, 1]`.
fn targets() -> Vec<f64> {
    (0..ROWS * COLS)
        .map(|i| ((i * 37) % 11) as f64 / 10.0)
        .collect()
}

#[test]
fn fused_bernoulli_gradients() {
    let weights = seeded_normal(3, ROWS, 1.0);
    let dev = f64_device();
    for how in [Differentiation::Fused, Differentiation::Plain] {
        GradCheck::default().check(&[seeded_normal(1, ROWS * COLS, 3.0), targets()], |xs| {
            let l = xs[0].clone().reshape([ROWS, COLS]);
            let x = xs[1].clone().reshape([ROWS, COLS]);
            let w = Tensor::from_data(TensorData::new(weights.clone(), [ROWS]), &dev);
            (bernoulli_nll(l, x, how) * w).sum()
        });
    }
}

#[test]
fn native_loop_matches_the_reference_in_f64() {
    let dev = f64_device();
    // logits up to about ±150, past where `exp` would overflow in f32
    let l = Tensor::<F64Backend, 2>::from_data(
        TensorData::new(seeded_normal(2, ROWS * COLS, 50.0), [ROWS, COLS]),
        &dev,
    );
    let x = Tensor::<F64Backend, 2>::from_data(TensorData::new(targets(), [ROWS, COLS]), &dev);
    let ours = bernoulli_nll(l.clone(), x.clone(), Differentiation::Fused).into_data();
    let reference = bernoulli_nll_reference(l, x).into_data();
    ours.assert_approx_eq::<f64>(&reference, Tolerance::relative(1e-12));
}

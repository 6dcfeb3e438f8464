//! Training: the course's settings reach a perfect adder; both trainers take the same steps.

use burn::backend::Autodiff;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::Tensor;
use rensa_data::addition::*;
use rensa_models::binary_addition::*;
use rensa_nn::activation::Activation;
use rensa_testkit::{TestBackend, Tolerance, assert_close};

#[test]
fn bits_are_least_significant_first() {
    let _rng = rensa_testkit::rng_lock();
    assert_eq!(bits_lsb_first(6), [0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    assert_eq!(from_bits_lsb_first(&bits_lsb_first(173)), 173);
    assert_eq!(from_bits_lsb_first(&[0.51, 0.49, 0.9]), 0b101);
    let pairs = all_pairs();
    assert_eq!(pairs.len(), ALL_PAIRS);
    assert_eq!(pairs[1], (0, 1));
    assert_eq!(pairs[ALL_PAIRS - 1], (127, 127));
    let batch = Batch::<TestBackend>::new(&[(3, 5)], &Default::default());
    let x: Vec<f32> = batch.inputs.into_data().to_vec().unwrap();
    assert_eq!(&x[..6], &[1.0, 1.0, 1.0, 0.0, 0.0, 1.0]); // (a_0, b_0), (a_1, b_1), (a_2, b_2)
    let d: Vec<f32> = batch.targets.into_data().to_vec().unwrap();
    assert_eq!(&d[..4], &[0.0, 0.0, 0.0, 1.0]); // 8
}

#[test]
#[should_panic(expected = "operands must be below 128")]
fn operands_that_would_overflow_are_refused() {
    let _rng = rensa_testkit::rng_lock();
    Batch::<TestBackend>::new(&[(128, 1)], &Default::default());
}

/// The course's run: sigmoid, normal init, SGD lr 0.1, 10,000 single pairs.
#[test]
fn ten_thousand_single_pairs_make_a_perfect_adder() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let mut w = super::course_weights(0, &device);
    let before = accuracy_all_pairs(&w, Activation::Sigmoid, &device);
    let mut sampler = PairSampler::new(0);
    for _ in 0..10_000 {
        let batch = Batch::new(&sampler.pairs(1), &device);
        let pass = bptt(&w, &batch, Activation::Sigmoid, OutputDerivative::Correct);
        w = w.sgd_step(pass.grads, 0.1);
    }
    let after = accuracy_all_pairs(&w, Activation::Sigmoid, &device);
    assert!(before.exact < ALL_PAIRS / 10, "untrained: {before:?}");
    assert_eq!(after.exact, ALL_PAIRS, "trained: {after:?}");
    assert_eq!(after.wrong_bits, 0);
}

/// burn's SGD on the autodiff model and the hand-written update take the same steps.
#[test]
fn both_trainers_follow_the_same_path() {
    let _rng = rensa_testkit::rng_lock();
    type AD = Autodiff<TestBackend>;
    let device = Default::default();
    let mut w = super::course_weights(4, &device);
    let lift = |t: Tensor<TestBackend, 2>| Tensor::<AD, 2>::from_inner(t);
    let mut model = Adder::<AD>::new(
        Weights {
            w_in: lift(w.w_in.clone()),
            w: lift(w.w.clone()),
            w_out: lift(w.w_out.clone()),
        },
        Activation::Sigmoid,
    )
    .unwrap();
    let mut optimizer = SgdConfig::new().init::<AD, Adder<AD>>();
    let mut sampler = PairSampler::new(1);
    for _ in 0..200 {
        let pairs = sampler.pairs(4);
        let pass = bptt(
            &w,
            &Batch::new(&pairs, &device),
            Activation::Sigmoid,
            OutputDerivative::Correct,
        );
        w = w.sgd_step(pass.grads, 0.5);
        let loss = model.loss(&Batch::new(&pairs, &device));
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optimizer.step(0.5, model, grads);
    }
    let m = model.weights();
    assert_close(
        m.w_in.inner(),
        w.w_in,
        Tolerance::F32_LOOSE,
        "W_in after 200 steps",
    );
    assert_close(m.w.inner(), w.w, Tolerance::F32_LOOSE, "W after 200 steps");
    assert_close(
        m.w_out.inner(),
        w.w_out,
        Tolerance::F32_LOOSE,
        "W_out after 200 steps",
    );
}

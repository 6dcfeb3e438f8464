//! The hand-written BPTT against burn's autodiff on the same network, and the course's slip.

use burn::backend::Autodiff;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use rensa_data::addition::*;
use rensa_models::binary_addition::*;
use rensa_nn::activation::Activation;
use rensa_nn::recurrent::RecurrentBackend;
use rensa_testkit::{
    TestBackend, Tolerance, WgpuBackend, assert_close, to_f64_vec, wgpu_device_or_skip,
};

fn lift<B: Backend>(w: &Weights<B>) -> Weights<Autodiff<B>> {
    Weights {
        w_in: Tensor::from_inner(w.w_in.clone()),
        w: Tensor::from_inner(w.w.clone()),
        w_out: Tensor::from_inner(w.w_out.clone()),
    }
}

/// The loss and gradients burn's autodiff computes through rensa's layers.
fn autodiff<B: Backend>(
    w: &Weights<B>,
    pairs: &[(u32, u32)],
    activation: Activation,
    device: &B::Device,
) -> Bptt<B>
where
    Autodiff<B>: RecurrentBackend,
{
    let model = Adder::new(lift(w), activation).unwrap();
    let batch = Batch::<B>::new(pairs, device);
    let loss = model.loss(&Batch {
        inputs: Tensor::from_inner(batch.inputs),
        targets: Tensor::from_inner(batch.targets),
    });
    let grads = loss.backward();
    let cell = model.rnn.cell(0, 0);
    Bptt {
        loss: loss.inner(),
        grads: Weights {
            w_in: cell.weights.weight_ih.grad(&grads).unwrap(),
            w: cell.weights.weight_hh.grad(&grads).unwrap(),
            w_out: model.output.weight.grad(&grads).unwrap(),
        },
    }
}

fn check_equal<B: Backend>(
    pairs: &[(u32, u32)],
    activation: Activation,
    scheme: InitScheme,
    device: &B::Device,
) where
    Autodiff<B>: RecurrentBackend,
{
    B::seed(device, 7);
    let w = Weights::<B>::init(16, scheme, device);
    let hand = bptt(
        &w,
        &Batch::new(pairs, device),
        activation,
        OutputDerivative::Correct,
    );
    let auto = autodiff(&w, pairs, activation, device);
    let what = |name: &str| format!("{name} ({activation:?}, {scheme:?}, {} pairs)", pairs.len());
    assert_close(hand.loss, auto.loss, Tolerance::F32, &what("loss"));
    assert_close(
        hand.grads.w_in,
        auto.grads.w_in,
        Tolerance::F32,
        &what("dW_in"),
    );
    assert_close(hand.grads.w, auto.grads.w, Tolerance::F32, &what("dW"));
    assert_close(
        hand.grads.w_out,
        auto.grads.w_out,
        Tolerance::F32,
        &what("dW_out"),
    );
}

#[test]
fn hand_written_bptt_equals_autodiff_for_one_pair() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    for (a, b) in [(0, 0), (127, 127), (45, 83), (1, 64)] {
        check_equal::<TestBackend>(&[(a, b)], Activation::Sigmoid, InitScheme::Normal, &device);
    }
}

#[test]
fn hand_written_bptt_equals_autodiff_for_batches_and_every_activation() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let pairs = PairSampler::new(3).pairs(24);
    for activation in [Activation::Sigmoid, Activation::Tanh, Activation::Relu] {
        for scheme in [InitScheme::Normal, InitScheme::Xavier, InitScheme::He] {
            check_equal::<TestBackend>(&pairs, activation, scheme, &device);
        }
    }
}

#[test]
fn hand_written_bptt_equals_autodiff_on_wgpu() {
    let _rng = rensa_testkit::rng_lock();
    let Some(device) = wgpu_device_or_skip() else {
        return;
    };
    let pairs = PairSampler::new(5).pairs(8);
    for activation in [Activation::Sigmoid, Activation::Tanh] {
        check_equal::<WgpuBackend>(&pairs, activation, InitScheme::Normal, &device);
    }
}

/// The course computes `delta_out` with `d_sigmoid(y)`, where `y` is already the sigmoid's
/// output: the factor is `σ(y)(1 − σ(y))` instead of `y(1 − y)`. Only `delta_out` changes, so
/// the gradients differ from autodiff's, most of all where the output is saturated.
#[test]
fn the_courses_output_derivative_is_not_the_gradient() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let w = super::course_weights(11, &device);
    let pairs = [(45, 83)];
    let batch = Batch::new(&pairs, &device);
    let correct = bptt(&w, &batch, Activation::Sigmoid, OutputDerivative::Correct);
    let course = bptt(&w, &batch, Activation::Sigmoid, OutputDerivative::Course);
    let auto = autodiff(&w, &pairs, Activation::Sigmoid, &device);
    assert_close(
        correct.grads.w_out.clone(),
        auto.grads.w_out,
        Tolerance::F32,
        "correct dW_out",
    );

    // Same loss (the forward pass is the same), different gradients.
    assert_close(
        course.loss.clone(),
        correct.loss.clone(),
        Tolerance::F32,
        "loss",
    );
    let (c, k) = (
        to_f64_vec(correct.grads.w_out.clone()),
        to_f64_vec(course.grads.w_out),
    );
    let rel = c
        .iter()
        .zip(&k)
        .map(|(c, k)| (c - k).abs() / c.abs().max(1e-12))
        .fold(0.0, f64::max);
    assert!(
        rel > 0.05,
        "the course's dW_out should differ, max relative difference {rel}"
    );

    // With a one-step network the ratio is exact: dW_out = z · (y − d) · factor, so the course's
    // gradient over the correct one is σ(y)(1 − σ(y)) / (y(1 − y)), whatever z is.
    let one = [(1, 0)]; // a = 1: only the first bit is set
    let batch = Batch::<TestBackend>::new(&one, &device);
    let x = batch.inputs.clone().slice([0..1, 0..1]);
    let d = batch.targets.clone().slice([0..1, 0..1]);
    let one_step = Batch {
        inputs: x.clone(),
        targets: d,
    };
    let correct = bptt(
        &w,
        &one_step,
        Activation::Sigmoid,
        OutputDerivative::Correct,
    );
    let course = bptt(&w, &one_step, Activation::Sigmoid, OutputDerivative::Course);
    let y = w.forward(x, Activation::Sigmoid).into_scalar() as f64;
    let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
    let expected_ratio = sig(y) * (1.0 - sig(y)) / (y * (1.0 - y));
    for (c, k) in to_f64_vec(correct.grads.w_out)
        .iter()
        .zip(to_f64_vec(course.grads.w_out))
    {
        if c.abs() > 1e-6 {
            assert!(
                ((k / c) - expected_ratio).abs() < 1e-3 * expected_ratio,
                "ratio {} vs σ(y)(1 − σ(y)) / (y(1 − y)) = {expected_ratio}",
                k / c
            );
        }
    }
}

/// A confidently wrong output: the true gradient through a saturated sigmoid almost vanishes,
/// the course's factor stays near 0.2.
#[test]
fn the_courses_factor_does_not_vanish_when_the_output_saturates() {
    let _rng = rensa_testkit::rng_lock();
    let device = Default::default();
    let mut w = super::course_weights(1, &device);
    // Every hidden unit positive (sigmoid), so a large W_out saturates y near 1.
    w.w_out = Tensor::full([16, 1], 5.0, &device);
    let batch = Batch::new(&[(0, 0)], &device); // every target bit is 0
    let correct = bptt(&w, &batch, Activation::Sigmoid, OutputDerivative::Correct);
    let course = bptt(&w, &batch, Activation::Sigmoid, OutputDerivative::Course);
    let norm = |t: Tensor<TestBackend, 2>| to_f64_vec(t).iter().map(|v| v * v).sum::<f64>().sqrt();
    let (c, k) = (norm(correct.grads.w_out), norm(course.grads.w_out));
    assert!(
        k > 100.0 * c,
        "the course's |dW_out| {k} should dwarf the true {c} when y saturates"
    );
}

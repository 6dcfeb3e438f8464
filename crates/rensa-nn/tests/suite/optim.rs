//! FusedAdam against burn's Adam: the same parameters after several steps (with and without
//! weight decay and clipping), checkpoints that move between the two, the native step against
//! the tensor-op reference, and in-place updates that never touch a shared buffer.

use burn::backend::{Autodiff, NdArray};
use burn::grad_clipping::GradientClippingConfig;
use burn::nn::{Linear, LinearConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Record, Recorder};
use burn::tensor::{Tensor, TensorData};
use rensa_nn::optim::FusedAdamConfig;
use rensa_nn::recurrent::{AdamStep, RecurrentBackend, adam_step_reference};

type B = Autodiff<NdArray>;

/// A layer to train (tests that compare two optimizers train clones of one: the global RNG is
/// shared by the tests running at once). Its parameters are drawn here: burn initialises them
/// lazily, and a clone taken before would draw its own.
fn model() -> Linear<B> {
    let m = LinearConfig::new(9, 5).init(&Default::default());
    let _ = values(&m);
    m
}

/// One step of `optim` on a squared-output loss of batch `k` (a fixed formula).
fn step<O: Optimizer<Linear<B>, B>>(optim: &mut O, model: Linear<B>, k: u64) -> Linear<B> {
    let x: Vec<f32> = (0..54)
        .map(|i| ((i as f32 + 0.5) * (k as f32 + 1.3)).sin())
        .collect();
    let x = Tensor::<B, 2>::from_data(TensorData::new(x, [6, 9]), &Default::default());
    let loss = model.forward(x).powi_scalar(2).sum();
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    optim.step(1e-2, model, grads)
}

fn values(m: &Linear<B>) -> Vec<f32> {
    let mut v = m.weight.val().into_data().to_vec::<f32>().unwrap();
    v.extend(
        m.bias
            .as_ref()
            .unwrap()
            .val()
            .into_data()
            .to_vec::<f32>()
            .unwrap(),
    );
    v
}

#[test]
fn fused_adam_takes_burns_steps_exactly() {
    let settings: [(Option<f32>, Option<GradientClippingConfig>); 3] = [
        (None, None),
        (Some(0.05), None),
        (None, Some(GradientClippingConfig::Norm(0.5))),
    ];
    for (decay, clip) in settings {
        let mut burns = AdamConfig::new()
            .with_weight_decay(decay.map(WeightDecayConfig::new))
            .with_grad_clipping(clip.clone())
            .init();
        let mut fused = FusedAdamConfig::new()
            .with_weight_decay(decay.map(WeightDecayConfig::new))
            .with_grad_clipping(clip.clone())
            .init();
        let mut a = model();
        let mut b = a.clone(); // sharing a's buffers until the first in-place step copies them
        for k in 0..6 {
            a = step(&mut burns, a, k);
            b = step(&mut fused, b, k);
            assert_eq!(
                values(&a),
                values(&b),
                "step {k}, decay {decay:?}, clipping {clip:?}"
            );
        }
    }
}

/// A record saved as a checkpoint saves it (burn's binary format, full precision) and loaded as
/// another record type.
fn through_bytes<R: Record<B>, S: Record<B>>(record: R) -> S {
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let bytes = Recorder::<B>::record(&recorder, record, ()).expect("saved");
    Recorder::<B>::load(&recorder, bytes, &Default::default()).expect("loaded as the other type")
}

#[test]
fn checkpoints_move_between_burns_adam_and_fused_adam() {
    let mut burns = AdamConfig::new().init();
    let mut a = model();
    for k in 0..3 {
        a = step(&mut burns, a, k);
    }
    // burn's state into FusedAdam, and on: the same as burn's Adam going on
    let mut fused = FusedAdamConfig::new().init();
    fused = fused.load_record(through_bytes(burns.to_record()));
    let mut b = a.clone();
    for k in 3..6 {
        a = step(&mut burns, a, k);
        b = step(&mut fused, b, k);
        assert_eq!(values(&a), values(&b), "step {k}");
    }
    // and back
    let mut burns_again = AdamConfig::new().init::<B, Linear<B>>();
    burns_again = burns_again.load_record(through_bytes(fused.to_record()));
    let c = step(&mut burns_again, b.clone(), 6);
    let b = step(&mut fused, b, 6);
    assert_eq!(values(&b), values(&c));
}

fn flat(values: Vec<f32>) -> Tensor<NdArray, 1> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n]), &Default::default())
}

fn ramp(n: usize, k: f32, scale: f32) -> Vec<f32> {
    (0..n).map(|i| (i as f32 * k).sin() * scale).collect()
}

#[test]
fn native_step_matches_the_reference() {
    let n = 70_001; // several parallel tasks and a ragged end
    for (time, weight_decay) in [(1, None), (17, Some(0.01)), (5000, None)] {
        let step = AdamStep {
            lr: 3e-3,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            weight_decay,
            time,
        };
        let inputs = || {
            (
                flat(ramp(n, 0.37, 0.5)),
                flat(ramp(n, 1.3, 1e-2)),
                flat(ramp(n, 0.11, 1e-3)),
                flat(ramp(n, 0.7, 1e-5).iter().map(|v| v.abs()).collect()),
            )
        };
        let (p, g, m, v) = inputs();
        let native = NdArray::adam_step(p, g, m, v, step);
        let (p, g, m, v) = inputs();
        let reference = adam_step_reference(p, g, m, v, step);
        for (name, (a, b)) in ["parameter", "m", "v"]
            .iter()
            .zip(native.into_iter().zip(reference))
        {
            assert_eq!(
                a.into_data().to_vec::<f32>().unwrap(),
                b.into_data().to_vec::<f32>().unwrap(),
                "{name} at step {time}"
            );
        }
    }
}

/// Adam's first step at learning rate `lr`, PyTorch's `ε`.
fn first_step(lr: f64) -> AdamStep {
    AdamStep {
        lr,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-8,
        weight_decay: None,
        time: 1,
    }
}

#[test]
fn a_shared_parameter_buffer_is_copied_not_overwritten() {
    let p = flat(vec![1.0, 2.0, 3.0]);
    let kept = p.clone(); // shares p's buffer
    let zeros = || flat(vec![0.0; 3]);
    let step = first_step(0.1);
    let [updated, _, _] = NdArray::adam_step(p, flat(vec![1.0, -1.0, 0.5]), zeros(), zeros(), step);
    assert_eq!(kept.into_data().to_vec::<f32>().unwrap(), [1.0, 2.0, 3.0]);
    let updated = updated.into_data().to_vec::<f32>().unwrap();
    // the first step moves every weight by lr against its gradient's sign
    for (u, want) in updated.iter().zip([0.9, 2.1, 2.9]) {
        assert!((u - want).abs() < 1e-5, "{updated:?}");
    }
}

#[test]
#[should_panic(expected = "adam_step")]
fn mismatched_lengths_are_refused() {
    let step = first_step(0.1);
    let _ = NdArray::adam_step(
        flat(vec![0.0; 3]),
        flat(vec![0.0; 2]),
        flat(vec![0.0; 3]),
        flat(vec![0.0; 3]),
        step,
    );
}

#[test]
fn the_state_is_one_record_per_parameter_tensor() {
    let mut fused = FusedAdamConfig::new().init();
    let _ = step(&mut fused, model(), 0);
    assert_eq!(fused.to_record().len(), 2, "the weight's and the bias's");
}

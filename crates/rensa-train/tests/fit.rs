//! The training loop on a model small enough to know the answer: y = 2x + 1 with one linear unit.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, SgdConfig};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rensa_testkit::{TestAutodiff as B, to_f64_vec};
use rensa_train::{Error, FitConfig, Objective, fit};

#[derive(Module, Debug)]
struct Line<B: Backend> {
    linear: Linear<B>,
}

impl<B: Backend> Objective<B> for Line<B> {
    type Item = (f32, f32);

    fn loss(&self, items: &[(f32, f32)], device: &B::Device) -> Tensor<B, 1> {
        let n = items.len();
        let x = Tensor::<B, 2>::from_data(
            TensorData::new(items.iter().map(|p| p.0).collect(), [n, 1]),
            device,
        );
        let y = Tensor::<B, 2>::from_data(
            TensorData::new(items.iter().map(|p| p.1).collect(), [n, 1]),
            device,
        );
        (self.linear.forward(x) - y).powi_scalar(2).mean()
    }
}

fn data(n: usize) -> Vec<(f32, f32)> {
    (0..n)
        .map(|i| {
            let x = i as f32 / n as f32 * 4.0 - 2.0;
            (x, 2.0 * x + 1.0)
        })
        .collect()
}

fn model() -> Line<B> {
    let device = Default::default();
    B::seed(&device, 1);
    Line {
        linear: LinearConfig::new(1, 1).init(&device),
    }
}

fn weights(m: &Line<B>) -> Vec<f64> {
    let mut w = to_f64_vec(m.linear.weight.val());
    w.extend(to_f64_vec(m.linear.bias.as_ref().unwrap().val()));
    w
}

#[test]
fn learns_a_line_with_validation_and_is_reproducible() {
    let items = data(50);
    let config = FitConfig::new()
        .with_epochs(60)
        .with_batch_size(8)
        .with_validation_split(0.2)
        .with_learning_rate(0.05);
    let mut seen = Vec::new();
    let (m, h) = fit(
        &config,
        model(),
        &mut AdamConfig::new().init(),
        &items,
        &Default::default(),
        |e| seen.push(e.epoch),
    )
    .unwrap();
    assert_eq!(seen, (1..=60).collect::<Vec<_>>());
    assert_eq!(h.epochs.len(), 60);
    // 40 training items in batches of 8: 5 steps per epoch.
    assert_eq!(h.step_losses.len(), 300);
    let last = h.last().unwrap();
    assert!(
        last.loss < 1e-3 && last.val_loss.unwrap() < 1e-2,
        "{last:?}"
    );
    assert!(h.epochs[0].loss > 10.0 * last.loss);
    let w = weights(&m);
    assert!(
        (w[0] - 2.0).abs() < 0.05 && (w[1] - 1.0).abs() < 0.05,
        "{w:?}"
    );

    // Same seed, same everything.
    let (m2, h2) = fit(
        &config,
        model(),
        &mut AdamConfig::new().init(),
        &items,
        &Default::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(weights(&m2), w);
    assert_eq!(h2.step_losses, h.step_losses);
    // Another shuffling seed: a different path.
    let (_, h3) = fit(
        &config.clone().with_seed(9),
        model(),
        &mut AdamConfig::new().init(),
        &items,
        &Default::default(),
        |_| {},
    )
    .unwrap();
    assert_ne!(h3.step_losses, h.step_losses);
}

#[test]
fn validation_items_are_the_last_ones_and_never_trained_on() {
    // Training items follow y = 2x + 1; the last 20% are off the line. A model trained on the
    // first 80% only fits the line, so its validation loss stays large.
    let mut items = data(50);
    for p in &mut items[40..] {
        p.1 += 10.0;
    }
    let config = FitConfig::new()
        .with_epochs(60)
        .with_batch_size(8)
        .with_validation_split(0.2)
        .with_learning_rate(0.05);
    let (_, h) = fit(
        &config,
        model(),
        &mut AdamConfig::new().init(),
        &items,
        &Default::default(),
        |_| {},
    )
    .unwrap();
    let last = h.last().unwrap();
    assert!(
        last.loss < 1e-2 && last.val_loss.unwrap() > 50.0,
        "{last:?}"
    );
}

#[test]
fn early_stopping_stops_when_the_loss_stalls() {
    // Learning rate 0: nothing improves after the first epoch.
    let config = FitConfig::new()
        .with_epochs(50)
        .with_batch_size(10)
        .with_patience(Some(3))
        .with_learning_rate(1e-30);
    let (_, h) = fit(
        &config,
        model(),
        &mut SgdConfig::new().init(),
        &data(20),
        &Default::default(),
        |_| {},
    )
    .unwrap();
    assert_eq!(
        h.epochs.len(),
        4,
        "one epoch sets the best, three more without improvement"
    );
}

#[test]
fn a_non_finite_loss_stops_training_with_an_error() {
    let mut items = data(20);
    items[7].1 = f32::NAN;
    let config = FitConfig::new()
        .with_epochs(3)
        .with_batch_size(20)
        .with_shuffle(false);
    let err = fit(
        &config,
        model(),
        &mut SgdConfig::new().init(),
        &items,
        &Default::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteLoss {
                epoch: 1,
                batch: 1,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("NaN"), "{err}");
}

#[test]
fn bad_settings_are_rejected_before_training() {
    let items = data(10);
    let check = |c: FitConfig, field: &str| {
        let err = c.check(items.len()).unwrap_err().to_string();
        assert!(err.contains(field), "{err} should name {field}");
    };
    check(FitConfig::new().with_epochs(0), "epochs");
    check(FitConfig::new().with_batch_size(0), "batch_size");
    check(FitConfig::new().with_batch_size(11), "batch_size");
    check(
        FitConfig::new()
            .with_batch_size(9)
            .with_validation_split(0.2),
        "batch_size",
    );
    check(
        FitConfig::new()
            .with_batch_size(4)
            .with_validation_split(1.0),
        "validation_split",
    );
    check(
        FitConfig::new()
            .with_batch_size(4)
            .with_validation_split(1e-17),
        "validation_split",
    );
    check(
        FitConfig::new().with_batch_size(4).with_learning_rate(0.0),
        "learning_rate",
    );
    check(
        FitConfig::new()
            .with_batch_size(4)
            .with_learning_rate(f64::NAN),
        "learning_rate",
    );
    check(
        FitConfig::new().with_batch_size(4).with_patience(Some(0)),
        "patience",
    );
    assert_eq!(
        FitConfig::new()
            .with_batch_size(4)
            .with_validation_split(0.2)
            .check(10)
            .unwrap(),
        8
    );
    let err = fit(
        &FitConfig::new().with_batch_size(0),
        model(),
        &mut SgdConfig::new().init(),
        &items,
        &Default::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(matches!(
        err,
        Error::Config {
            field: "batch_size",
            ..
        }
    ));
}

//! The training loop on a model small enough to know the answer: y = 2x + 1 with one linear unit.

use burn::module::{Module, Param};
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

    fn metrics(&self, items: &[(f32, f32)], device: &B::Device) -> Vec<(String, f64)> {
        let x = Tensor::<B, 1>::from_floats(
            items.iter().map(|p| p.0).collect::<Vec<_>>().as_slice(),
            device,
        );
        let y: Vec<f64> = to_f64_vec(self.linear.forward(x.unsqueeze_dim::<2>(1)));
        let mae = items
            .iter()
            .zip(&y)
            .map(|(p, y)| (p.1 as f64 - y).abs())
            .sum::<f64>()
            / items.len() as f64;
        vec![("mae".to_string(), mae)]
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

/// A fixed start (not from the backend's RNG, which tests running in parallel share).
fn model() -> Line<B> {
    let device = Default::default();
    let mut linear: Linear<B> = LinearConfig::new(1, 1).init(&device);
    linear.weight = Param::from_tensor(Tensor::from_floats([[-0.3]], &device));
    linear.bias = Some(Param::from_tensor(Tensor::from_floats([0.2], &device)));
    Line { linear }
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
        .with_shuffle(false)
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

fn run_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rensa-train-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one() {
    use rensa_train::{Checkpoints, fit_with};
    let items = data(40);
    let device = Default::default();
    let full = FitConfig::new()
        .with_epochs(6)
        .with_batch_size(8)
        .with_validation_split(0.25)
        .with_learning_rate(0.05)
        .with_seed(3);

    let straight_dir = run_dir("straight");
    let (straight, h_straight) = fit_with(
        &full,
        Some(&Checkpoints::new(&straight_dir, 2)),
        model(),
        &mut AdamConfig::new().init(),
        &items,
        &device,
        |_| {},
    )
    .unwrap();

    // Stop after 3 epochs (saving every epoch), then resume to 6 with a fresh model and optimiser.
    let dir = run_dir("resumed");
    let first = full.clone().with_epochs(3);
    fit_with(
        &first,
        Some(&Checkpoints::new(&dir, 1)),
        model(),
        &mut AdamConfig::new().init(),
        &items,
        &device,
        |_| {},
    )
    .unwrap();
    let mut resumed_epochs = Vec::new();
    let ckpt = Checkpoints::new(&dir, 1).resuming(true);
    let (resumed, h_resumed) = fit_with(
        &full,
        Some(&ckpt),
        model(),
        &mut AdamConfig::new().init(),
        &items,
        &device,
        |e| resumed_epochs.push(e.epoch),
    )
    .unwrap();
    assert_eq!(resumed_epochs, vec![4, 5, 6]);
    assert_eq!(
        weights(&resumed),
        weights(&straight),
        "resumed weights differ"
    );
    assert_eq!(h_resumed.step_losses, h_straight.step_losses);
    assert_eq!(h_resumed.epochs.len(), 6);
    // The checkpoint of the finished run holds its final history.
    assert_eq!(
        rensa_train::History::load(&dir.join("checkpoint"))
            .unwrap()
            .epochs
            .len(),
        6
    );
    assert!(!dir.join("checkpoint.tmp").exists() && !dir.join("checkpoint.old").exists());
    let _ = std::fs::remove_dir_all(&straight_dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_nan_leaves_the_last_good_checkpoint_and_bad_checkpoints_are_errors() {
    use rensa_train::{Checkpoints, fit_with};
    let device = Default::default();
    let dir = run_dir("nan");
    let config = FitConfig::new()
        .with_epochs(2)
        .with_batch_size(5)
        .with_shuffle(false);
    fit_with(
        &config,
        Some(&Checkpoints::new(&dir, 1)),
        model(),
        &mut SgdConfig::new().init(),
        &data(10),
        &device,
        |_| {},
    )
    .unwrap();
    let saved = std::fs::read(dir.join("checkpoint/model.bin")).unwrap();
    // Resume to 4 epochs on data that now gives a NaN: the error leaves the checkpoint as it was.
    let mut bad = data(10);
    bad[2].1 = f32::NAN;
    let ckpt = Checkpoints::new(&dir, 1).resuming(true);
    let err = fit_with(
        &config.clone().with_epochs(4),
        Some(&ckpt),
        model(),
        &mut SgdConfig::new().init(),
        &bad,
        &device,
        |_| {},
    )
    .unwrap_err();
    assert!(
        matches!(err, Error::NonFiniteLoss { epoch: 3, .. }),
        "{err}"
    );
    assert_eq!(
        std::fs::read(dir.join("checkpoint/model.bin")).unwrap(),
        saved
    );
    // A corrupt model file is an error naming it.
    std::fs::write(dir.join("checkpoint/model.bin"), b"garbage").unwrap();
    let err = fit_with(
        &config.clone().with_epochs(4),
        Some(&ckpt),
        model(),
        &mut SgdConfig::new().init(),
        &data(10),
        &device,
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("model.bin"), "{err}");
    // Resuming where there is no checkpoint is an error too.
    let empty = run_dir("empty");
    let err = fit_with(
        &config,
        Some(&Checkpoints::new(&empty, 1).resuming(true)),
        model(),
        &mut SgdConfig::new().init(),
        &data(10),
        &device,
        |_| {},
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("no checkpoint to resume from"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn a_schedule_sets_every_steps_rate_and_resumes_exactly() {
    use burn::lr_scheduler::exponential::ExponentialLrSchedulerConfig;
    use rensa_train::{Checkpoints, fit_scheduled};
    let items = data(40);
    let device = Default::default();
    let full = FitConfig::new()
        .with_epochs(4)
        .with_batch_size(10)
        .with_validation_split(0.25)
        .with_seed(5);
    let schedule = || ExponentialLrSchedulerConfig::new(0.1, 0.8).init().unwrap();

    let straight_dir = run_dir("sched-straight");
    let (straight, history) = fit_scheduled(
        &full,
        Some(&Checkpoints::new(&straight_dir, 4)),
        &mut schedule(),
        model(),
        &mut SgdConfig::new().init(),
        &items,
        &device,
        |_| {},
    )
    .unwrap();
    // 3 steps per epoch (30 training items, batches of 10): the last step of epoch e is step 3e,
    // whose rate is 0.1 * 0.8^(3e - 1).
    for e in &history.epochs {
        let expected = 0.1 * 0.8f64.powi(3 * e.epoch as i32 - 1);
        assert!(
            (e.lr - expected).abs() < 1e-12,
            "epoch {}: lr {} vs {expected}",
            e.epoch,
            e.lr
        );
        assert_eq!(e.items, 30);
        assert!(e.items_per_second() > 0.0);
    }

    let dir = run_dir("sched-resumed");
    fit_scheduled(
        &full.clone().with_epochs(2),
        Some(&Checkpoints::new(&dir, 1)),
        &mut schedule(),
        model(),
        &mut SgdConfig::new().init(),
        &items,
        &device,
        |_| {},
    )
    .unwrap();
    assert!(dir.join("checkpoint/scheduler.bin").exists());
    let (resumed, h) = fit_scheduled(
        &full,
        Some(&Checkpoints::new(&dir, 1).resuming(true)),
        &mut schedule(),
        model(),
        &mut SgdConfig::new().init(),
        &items,
        &device,
        |_| {},
    )
    .unwrap();
    assert_eq!(
        weights(&resumed),
        weights(&straight),
        "resumed weights differ"
    );
    assert_eq!(h.step_losses, history.step_losses);
    assert_eq!(h.epochs[3].lr, history.epochs[3].lr);
    let _ = std::fs::remove_dir_all(&straight_dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metrics_are_kept_per_epoch_on_the_validation_items() {
    let items = data(40);
    let config = FitConfig::new()
        .with_epochs(3)
        .with_batch_size(10)
        .with_validation_split(0.25)
        .with_learning_rate(0.05);
    let (trained, history) = fit(
        &config,
        model(),
        &mut AdamConfig::new().init(),
        &items,
        &Default::default(),
        |_| {},
    )
    .unwrap();
    let last = history.last().unwrap();
    let expected = trained.metrics(&items[30..], &Default::default())[0].1;
    assert!((last.metrics["mae"] - expected).abs() < 1e-9);
    let csv = history.to_csv();
    assert!(
        csv.starts_with("epoch,loss,val_loss,seconds,items,lr,mae\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4);
}

/// Gradient clipping and weight decay are burn's optimiser options; fit applies them.
#[test]
fn burns_gradient_clipping_bounds_every_step() {
    use burn::grad_clipping::GradientClippingConfig;
    let items = data(20);
    let config = FitConfig::new()
        .with_epochs(1)
        .with_batch_size(20)
        .with_shuffle(false)
        .with_learning_rate(0.5);
    let clipped =
        SgdConfig::new().with_gradient_clipping(Some(GradientClippingConfig::Value(0.01)));
    let (m, _) = fit(
        &config,
        model(),
        &mut clipped.init(),
        &items,
        &Default::default(),
        |_| {},
    )
    .unwrap();
    let before = weights(&model());
    for (a, b) in weights(&m).iter().zip(&before) {
        assert!(
            ((a - b).abs() - 0.5 * 0.01).abs() < 1e-6,
            "one clipped step moves by lr * 0.01: {a} vs {b}"
        );
    }
}

/// Batches made elsewhere (here a plain iterator; a burn `DataLoader` is used the same way,
/// `|_| loader.iter()`).
struct XY<B: Backend> {
    x: Tensor<B, 2>,
    y: Tensor<B, 2>,
}

impl<B: Backend> rensa_train::BatchObjective<B> for Line<B> {
    type Batch = XY<B>;

    fn batch_loss(&self, batch: &XY<B>) -> Tensor<B, 1> {
        (self.linear.forward(batch.x.clone()) - batch.y.clone())
            .powi_scalar(2)
            .mean()
    }

    fn batch_len(batch: &XY<B>) -> usize {
        batch.x.dims()[0]
    }

    fn batch_metrics(&self, batch: &XY<B>) -> Vec<(String, f64)> {
        let err = (self.linear.forward(batch.x.clone()) - batch.y.clone())
            .abs()
            .mean();
        vec![("mae".to_string(), to_f64_vec(err)[0])]
    }
}

fn batches<B: Backend>(items: &[(f32, f32)], size: usize) -> Vec<XY<B>> {
    let device = Default::default();
    items
        .chunks(size)
        .map(|c| XY {
            x: Tensor::from_data(
                TensorData::new(c.iter().map(|p| p.0).collect(), [c.len(), 1]),
                &device,
            ),
            y: Tensor::from_data(
                TensorData::new(c.iter().map(|p| p.1).collect(), [c.len(), 1]),
                &device,
            ),
        })
        .collect()
}

#[test]
fn fit_batches_trains_on_batches_from_an_iterator_like_fit_on_items() {
    use burn::lr_scheduler::constant::ConstantLr;
    use rensa_train::{fit_batches, fit_with};
    type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
    let items = data(40);
    let (train, valid) = items.split_at(30);
    let config = FitConfig::new()
        .with_epochs(5)
        .with_batch_size(10)
        .with_validation_split(0.25)
        .with_shuffle(false)
        .with_learning_rate(0.05);
    let device = Default::default();
    let mut seen_epochs = Vec::new();
    let (from_batches, h) = fit_batches(
        &config,
        None,
        &mut ConstantLr::new(0.05),
        model(),
        &mut AdamConfig::new().init(),
        &device,
        |epoch| {
            seen_epochs.push(epoch);
            batches::<B>(train, 10)
        },
        || batches::<Inner>(valid, 7),
        |_| {},
    )
    .unwrap();
    assert_eq!(seen_epochs, vec![1, 2, 3, 4, 5]);
    // The same batches in the same order as fit without shuffling: the same training.
    let (from_items, h_items) = fit_with(
        &config,
        None,
        model(),
        &mut AdamConfig::new().init(),
        &items,
        &device,
        |_| {},
    )
    .unwrap();
    rensa_testkit::assert_slices_close(
        &weights(&from_batches),
        &weights(&from_items),
        rensa_testkit::Tolerance::F32,
        "weights",
    );
    rensa_testkit::assert_slices_close(
        &h.step_losses,
        &h_items.step_losses,
        rensa_testkit::Tolerance::F32,
        "step losses",
    );
    let (last, last_items) = (h.last().unwrap(), h_items.last().unwrap());
    assert_eq!(last.items, 30);
    assert!((last.val_loss.unwrap() - last_items.val_loss.unwrap()).abs() < 1e-5);
    assert!((last.metrics["mae"] - last_items.metrics["mae"]).abs() < 1e-5);

    // No training batches is an error, not a division by zero.
    let err = fit_batches(
        &config,
        None,
        &mut ConstantLr::new(0.05),
        model(),
        &mut AdamConfig::new().init(),
        &device,
        |_| Vec::<XY<B>>::new(),
        Vec::<XY<Inner>>::new,
        |_| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("training batches"), "{err}");
}

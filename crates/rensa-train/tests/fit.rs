//! The training loop on a model small enough to know the answer: y = 2x + 1 with one linear unit.

use burn::module::{AutodiffModule, Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::{AdamConfig, SgdConfig};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rensa_testkit::{TestAutodiff as B, to_f64_vec};
use rensa_train::{Error, Fit, FitConfig, Items, Objective, Output, StepInfo};
use std::path::Path;

#[derive(Module, Debug)]
struct Line<B: Backend> {
    linear: Linear<B>,
}

/// A batch of `(x, y)` points, kept on the host.
type Points = Vec<(f32, f32)>;

fn points(batch: &[&(f32, f32)]) -> Points {
    batch.iter().map(|&&p| p).collect()
}

impl<B: Backend> Line<B> {
    fn xy(&self, items: &[(f32, f32)]) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let device = self.linear.weight.device();
        let n = items.len();
        let column = |f: fn(&(f32, f32)) -> f32| {
            Tensor::<B, 2>::from_data(
                TensorData::new(items.iter().map(f).collect(), [n, 1]),
                &device,
            )
        };
        (column(|p| p.0), column(|p| p.1))
    }

    fn mae(&self, items: &[(f32, f32)]) -> f64 {
        let (x, y) = self.xy(items);
        to_f64_vec((self.linear.forward(x) - y).abs().mean())[0]
    }
}

impl<B: Backend> Objective<B> for Line<B> {
    type Batch = Points;

    fn step(&self, items: &Points, at: &StepInfo) -> Output<B, Self> {
        let (x, y) = self.xy(items);
        let loss = (self.linear.forward(x) - y).powi_scalar(2).mean();
        let output = Output::new(loss, items.len());
        if at.training {
            output
        } else {
            output.with_metric("mae", self.mae(items))
        }
    }
}

/// Runs a configured loop on the fixed start ([`model`]) over `items` with a fresh optimiser.
trait TrainLine {
    fn adam(self, items: &[(f32, f32)]) -> rensa_train::Result<(Line<B>, rensa_train::History)>;
    fn sgd(self, items: &[(f32, f32)]) -> rensa_train::Result<(Line<B>, rensa_train::History)>;
}

impl<S: burn::lr_scheduler::LrScheduler> TrainLine for Fit<'_, S> {
    fn adam(self, items: &[(f32, f32)]) -> rensa_train::Result<(Line<B>, rensa_train::History)> {
        let mut optimizer = AdamConfig::new().init();
        self.run(
            model(),
            &mut optimizer,
            Items::new(items, points),
            &Default::default(),
        )
    }

    fn sgd(self, items: &[(f32, f32)]) -> rensa_train::Result<(Line<B>, rensa_train::History)> {
        let mut optimizer = SgdConfig::new().init();
        self.run(
            model(),
            &mut optimizer,
            Items::new(items, points),
            &Default::default(),
        )
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
    let config = FitConfig::for_epochs(60, 8)
        .with_validation_split(0.2)
        .with_learning_rate(0.05);
    let mut seen = Vec::new();
    let (m, h) = Fit::new(config.clone())
        .on_epoch(|e| seen.push(e.epoch))
        .adam(&items)
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
    let (m2, h2) = Fit::new(config.clone()).adam(&items).unwrap();
    assert_eq!(weights(&m2), w);
    assert_eq!(h2.step_losses, h.step_losses);
    // Another shuffling seed: a different path.
    let (_, h3) = Fit::new(config.clone().with_seed(9)).adam(&items).unwrap();
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
    let config = FitConfig::for_epochs(60, 8)
        .with_validation_split(0.2)
        .with_learning_rate(0.05);
    let (_, h) = Fit::new(config.clone()).adam(&items).unwrap();
    let last = h.last().unwrap();
    assert!(
        last.loss < 1e-2 && last.val_loss.unwrap() > 50.0,
        "{last:?}"
    );
}

#[test]
fn validation_items_given_apart_are_all_validated_and_never_trained_on() {
    // All 40 training items lie on y = 2x + 1; the 10 validation items are off it.
    let train = data(40);
    let mut valid = data(10);
    for p in &mut valid {
        p.1 += 10.0;
    }
    let run = |config: FitConfig| {
        let mut optimizer = AdamConfig::new().init();
        Fit::new(config).run(
            model(),
            &mut optimizer,
            Items::with_validation(&train, &valid, points),
            &Default::default(),
        )
    };
    let config = FitConfig::for_epochs(60, 8).with_learning_rate(0.05);
    let (_, h) = run(config.clone()).unwrap();
    let last = h.last().unwrap();
    // every training item is trained on: 40 items in batches of 8 are 5 steps an epoch
    assert_eq!(h.step_losses.len(), 60 * 5);
    // the loss on the line's ten points is 100 for a model that fits the line
    assert!(
        last.loss < 1e-2 && (last.val_loss.unwrap() - 100.0).abs() < 1.0,
        "{last:?}"
    );
    // a split of the training items as well is refused, naming the setting
    let err = run(config.clone().with_validation_split(0.2)).unwrap_err();
    assert!(err.to_string().contains("validation_split"), "{err}");
    // no validation items: no validation loss
    let mut optimizer = AdamConfig::new().init();
    let (_, h) = Fit::new(FitConfig::for_epochs(2, 8))
        .run(
            model(),
            &mut optimizer,
            Items::with_validation(&train, &[], points),
            &Default::default(),
        )
        .unwrap();
    assert!(h.epochs.iter().all(|e| e.val_loss.is_none()), "{h:?}");
}

/// Training items on y = 2x + 1, validation items on y = 0.5x + 0.5: from the start (slope
/// −0.3) the model passes the validation line's slope on its way to the training line's, so the
/// validation loss falls and then rises again.
fn diverging_validation() -> (Points, Points) {
    let valid = data(10)
        .into_iter()
        .map(|(x, _)| (x, 0.5 * x + 0.5))
        .collect();
    (data(40), valid)
}

fn fit_line(
    config: FitConfig,
    (train, valid): (&Points, &Points),
    checkpoints: Option<rensa_train::Checkpoints>,
) -> rensa_train::Result<(Line<B>, rensa_train::History)> {
    let mut optimizer = AdamConfig::new().init();
    let mut fit = Fit::new(config);
    if let Some(c) = checkpoints {
        fit = fit.checkpoints(c);
    }
    fit.run(
        model(),
        &mut optimizer,
        Items::with_validation(train, valid, points),
        &Default::default(),
    )
}

#[test]
fn restore_best_hands_back_the_best_epochs_model() {
    let (train, valid) = diverging_validation();
    let config = FitConfig::for_epochs(30, 8)
        .with_learning_rate(0.02)
        .with_seed(4);
    let (last, h) = fit_line(config.clone(), (&train, &valid), None).unwrap();
    let best = h.best_epoch().unwrap();
    assert!(
        best > 1 && best < 30,
        "the validation loss should bottom out inside the run: best epoch {best}"
    );
    let (restored, h2) = fit_line(config.with_restore_best(true), (&train, &valid), None).unwrap();
    // the same run, and the model of the best epoch: its validation loss is that epoch's
    assert_eq!(h2.step_losses, h.step_losses);
    assert_eq!(h2.best_epoch(), Some(best));
    let mse = |m: &Line<B>| {
        let (x, y) = m.valid().xy(&valid);
        to_f64_vec((m.valid().linear.forward(x) - y).powi_scalar(2).mean())[0]
    };
    let recorded = h.epochs[best - 1].val_loss.unwrap();
    assert!(
        (mse(&restored) - recorded).abs() < 1e-5 * recorded,
        "{} vs {recorded}",
        mse(&restored)
    );
    assert!(mse(&last) > recorded, "the last model is worse");
}

#[test]
fn restore_best_survives_a_resume_and_needs_a_checkpoint_that_kept_it() {
    use rensa_train::Checkpoints;
    let (train, valid) = diverging_validation();
    let config = FitConfig::for_epochs(30, 8)
        .with_learning_rate(0.02)
        .with_seed(4)
        .with_restore_best(true);
    let (straight, h) = fit_line(config.clone(), (&train, &valid), None).unwrap();
    let best = h.best_epoch().unwrap();
    // stopped after an epoch past the best (so the checkpoint keeps best.bin), then resumed
    let dir = run_dir("restore-best");
    let first = config.clone().with_epochs(best + 2);
    fit_line(first, (&train, &valid), Some(Checkpoints::new(&dir, 1))).unwrap();
    let saved = Checkpoints::new(&dir, 1).latest().unwrap().unwrap();
    assert!(saved.path.join("best.bin").is_file());
    // what a program using the trained model loads: the best epoch's model, named as such
    assert_eq!(saved.best_model_file(), Some(saved.path.join("best.bin")));
    assert_eq!(saved.returned_model_file(), saved.path.join("best.bin"));
    assert_eq!(
        (saved.epoch, saved.returned_epoch().unwrap()),
        (best + 2, best)
    );
    let loaded = rensa_train::load_model(
        model(),
        &saved.returned_model_file().with_extension(""),
        &Default::default(),
    )
    .unwrap();
    let (stopped, _) =
        fit_line(config.clone().with_epochs(best + 2), (&train, &valid), None).unwrap();
    assert_eq!(weights(&loaded), weights(&stopped));
    let resume = Checkpoints::new(&dir, 1).resuming(true);
    let (resumed, h_resumed) =
        fit_line(config.clone(), (&train, &valid), Some(resume.clone())).unwrap();
    assert_eq!(h_resumed.best_epoch(), Some(best));
    assert_eq!(weights(&resumed), weights(&straight));
    // a run saved without restore_best cannot restore an epoch it did not keep
    let plain = run_dir("restore-best-plain");
    let first = config
        .clone()
        .with_epochs(best + 2)
        .with_restore_best(false);
    fit_line(first, (&train, &valid), Some(Checkpoints::new(&plain, 1))).unwrap();
    let saved = Checkpoints::new(&plain, 1).latest().unwrap().unwrap();
    assert_eq!(saved.best_model_file(), None);
    assert_eq!(saved.returned_model_file(), saved.model_file());
    assert_eq!(saved.returned_epoch().unwrap(), best + 2);
    let err = fit_line(
        config.clone(),
        (&train, &valid),
        Some(Checkpoints::new(&plain, 1).resuming(true)),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("restore_best") && err.contains(&format!("epoch {best}")),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&plain);
}

#[test]
fn early_stopping_stops_when_the_loss_stalls() {
    // Learning rate 0: nothing improves after the first epoch.
    let config = FitConfig::for_epochs(50, 10)
        .with_patience(Some(3))
        .with_shuffle(false)
        .with_learning_rate(1e-30);
    let (_, h) = Fit::new(config.clone()).sgd(&data(20)).unwrap();
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
    let config = FitConfig::for_epochs(3, 20).with_shuffle(false);
    let err = Fit::new(config.clone()).sgd(&items).unwrap_err();
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
    check(FitConfig::new().with_epochs(usize::MAX), "epochs");
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
    let err = Fit::new(FitConfig::new().with_batch_size(0))
        .sgd(&items)
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
    use rensa_train::Checkpoints;
    let items = data(40);
    let full = FitConfig::for_epochs(6, 8)
        .with_validation_split(0.25)
        .with_learning_rate(0.05)
        .with_seed(3);

    let straight_dir = run_dir("straight");
    let (straight, h_straight) = Fit::new(full.clone())
        .checkpoints(Checkpoints::new(&straight_dir, 2))
        .adam(&items)
        .unwrap();

    // Stop after 3 epochs (saving every epoch), then resume to 6 with a fresh model and optimiser.
    let dir = run_dir("resumed");
    let first = full.clone().with_epochs(3);
    Fit::new(first.clone())
        .checkpoints(Checkpoints::new(&dir, 1))
        .adam(&items)
        .unwrap();
    let mut resumed_epochs = Vec::new();
    let ckpt = Checkpoints::new(&dir, 1).resuming(true);
    // files of others beside the checkpoints: kept, and no reason for a save to fail
    std::fs::write(ckpt.root().join(".DS_Store"), b"finder").unwrap();
    std::fs::create_dir_all(ckpt.root().join(".git")).unwrap();
    std::fs::write(ckpt.root().join(".git/HEAD"), b"ref").unwrap();
    let (resumed, h_resumed) = Fit::new(full.clone())
        .checkpoints(ckpt.clone())
        .on_epoch(|e| resumed_epochs.push(e.epoch))
        .adam(&items)
        .unwrap();
    assert_eq!(resumed_epochs, vec![4, 5, 6]);
    assert_eq!(
        weights(&resumed),
        weights(&straight),
        "resumed weights differ"
    );
    assert_eq!(h_resumed.step_losses, h_straight.step_losses);
    assert_eq!(h_resumed.epochs.len(), 6);
    // The checkpoint of the finished run holds its final history, and nothing else is left.
    let latest = ckpt.latest().unwrap().unwrap();
    assert_eq!(latest.epoch, 6);
    assert_eq!(
        rensa_train::History::load(&latest.path)
            .unwrap()
            .epochs
            .len(),
        6
    );
    let mut left: Vec<String> = std::fs::read_dir(ckpt.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [".DS_Store", ".git", "epoch-000006-000005"]);
    assert!(ckpt.root().join(".git/HEAD").is_file());
    let _ = std::fs::remove_dir_all(&straight_dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_nan_leaves_the_last_good_checkpoint_and_bad_checkpoints_are_errors() {
    use rensa_train::Checkpoints;
    let dir = run_dir("nan");
    let config = FitConfig::for_epochs(2, 5).with_shuffle(false);
    Fit::new(config.clone())
        .checkpoints(Checkpoints::new(&dir, 1))
        .sgd(&data(10))
        .unwrap();
    let ckpt = Checkpoints::new(&dir, 1).resuming(true);
    let model_file = ckpt.latest().unwrap().unwrap().model_file();
    let saved = std::fs::read(&model_file).unwrap();
    // Resume to 4 epochs on data that now gives a NaN: the error leaves the checkpoint as it was.
    let mut bad = data(10);
    bad[2].1 = f32::NAN;
    let err = Fit::new(config.clone().with_epochs(4))
        .checkpoints(ckpt.clone())
        .sgd(&bad)
        .unwrap_err();
    assert!(
        matches!(err, Error::NonFiniteLoss { epoch: 3, .. }),
        "{err}"
    );
    assert_eq!(std::fs::read(&model_file).unwrap(), saved);
    // A corrupt model file (no other checkpoint to fall back to) is an error naming it.
    std::fs::write(&model_file, b"garbage").unwrap();
    let err = Fit::new(config.clone().with_epochs(4))
        .checkpoints(ckpt.clone())
        .sgd(&data(10))
        .unwrap_err();
    assert!(err.to_string().contains("model.bin"), "{err}");
    // Resuming where there is no checkpoint is an error too.
    let empty = run_dir("empty");
    let err = Fit::new(config.clone())
        .checkpoints(Checkpoints::new(&empty, 1).resuming(true))
        .sgd(&data(10))
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("no complete checkpoint to resume from"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn a_corrupt_manifest_or_history_is_named_when_nothing_else_can_be_resumed() {
    use rensa_train::Checkpoints;
    let dir = run_dir("corrupt-meta");
    let config = FitConfig::for_epochs(2, 5).with_seed(1);
    Fit::new(config.clone())
        .checkpoints(Checkpoints::new(&dir, 1))
        .sgd(&data(10))
        .unwrap();
    let saved = Checkpoints::new(&dir, 1).latest().unwrap().unwrap().path;
    let resume = || {
        Fit::new(config.clone().with_epochs(3))
            .checkpoints(Checkpoints::new(&dir, 1).resuming(true))
            .sgd(&data(10))
    };
    for (file, damage, reason) in [
        (
            "manifest.json",
            &b"{ \"model.bin\": "[..],
            "corrupt manifest",
        ),
        (
            "manifest.json",
            &b"{}"[..],
            "the manifest lists no model.bin",
        ),
        ("history.json", &b"[]"[..], "history.json has 2 bytes"),
        ("settings.json", &b"{}"[..], "settings.json has 2 bytes"),
    ] {
        let path = saved.join(file);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, damage).unwrap();
        let err = resume().map(|_| ()).unwrap_err().to_string();
        assert!(
            err.contains("no complete checkpoint") && err.contains(reason),
            "{file}: {err}"
        );
        std::fs::write(&path, good).unwrap();
    }
    // put back, it resumes
    let (_, history) = resume().unwrap();
    assert_eq!(history.epochs.len(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn load_model_reads_burns_format_and_refuses_crafted_and_cut_files() {
    use burn::record::{BinFileRecorder, FullPrecisionSettings};
    let device = Default::default();
    let dir = run_dir("load-model");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model");
    let file = path.with_extension("bin");
    let model: Linear<B> = LinearConfig::new(3, 2).init(&device);
    // (read before saving: a clone of a module whose parameters are not yet drawn draws its own)
    let weights = to_f64_vec(model.weight.val());
    model
        .save_file(
            path.clone(),
            &BinFileRecorder::<FullPrecisionSettings>::new(),
        )
        .unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let fresh = || -> Linear<B> { LinearConfig::new(3, 2).init(&device) };
    let back = rensa_train::load_model(fresh(), &path, &device).unwrap();
    assert_eq!(to_f64_vec(back.weight.val()), weights);
    let refused = |content: &[u8]| {
        std::fs::write(&file, content).unwrap();
        rensa_train::load_model(fresh(), &path, &device)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    // The record starts with a string: a length prefix of 2^40 bytes is refused, not allocated
    // (bincode would otherwise ask for 1 TiB and abort the process).
    let e = refused(&[0xfd, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert!(
        e.contains("model.bin") && e.contains("claims more memory"),
        "{e}"
    );
    for cut in 0..bytes.len() {
        refused(&bytes[..cut]);
    }
    // The weight's 24 bytes (6 f32, length prefix 24) cut to 4 with a prefix of 4, its shape
    // [2, 3] kept: the data no longer fills the shape (read past its end before the check).
    let data: Vec<u8> = weights
        .iter()
        .flat_map(|&w| (w as f32).to_le_bytes())
        .collect();
    let mut prefixed = vec![24u8];
    prefixed.extend(&data);
    let at = bytes
        .windows(prefixed.len())
        .position(|w| w == prefixed)
        .expect("the weight's bytes in the file");
    let mut crafted = bytes[..at].to_vec();
    crafted.push(4);
    crafted.extend(&data[..4]);
    crafted.extend(&bytes[at + prefixed.len()..]);
    let e = refused(&crafted);
    assert!(
        e.contains("model.bin") && e.contains("does not fit its shapes"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_schedule_sets_every_steps_rate_and_resumes_exactly() {
    use burn::lr_scheduler::exponential::ExponentialLrSchedulerConfig;
    use rensa_train::Checkpoints;
    let items = data(40);
    let full = FitConfig::for_epochs(4, 10)
        .with_validation_split(0.25)
        .with_seed(5);
    let schedule = || ExponentialLrSchedulerConfig::new(0.1, 0.8).init().unwrap();

    let straight_dir = run_dir("sched-straight");
    let (straight, history) = Fit::new(full.clone())
        .checkpoints(Checkpoints::new(&straight_dir, 4))
        .scheduler(schedule())
        .sgd(&items)
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
    Fit::new(full.clone().with_epochs(2))
        .checkpoints(Checkpoints::new(&dir, 1))
        .scheduler(schedule())
        .sgd(&items)
        .unwrap();
    let latest = Checkpoints::new(&dir, 1).latest().unwrap().unwrap();
    assert!(latest.path.join("scheduler.bin").exists());
    let (resumed, h) = Fit::new(full.clone())
        .checkpoints(Checkpoints::new(&dir, 1).resuming(true))
        .scheduler(schedule())
        .sgd(&items)
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
    let config = FitConfig::for_epochs(3, 10)
        .with_validation_split(0.25)
        .with_learning_rate(0.05);
    let (trained, history) = Fit::new(config.clone()).adam(&items).unwrap();
    let last = history.last().unwrap();
    let expected = trained.mae(&items[30..]);
    assert!((last.metrics["val_mae"] - expected).abs() < 1e-6);
    let csv = history.to_csv();
    assert!(
        csv.starts_with("epoch,loss,val_loss,seconds,items,lr,val_mae\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4);
}

/// Gradient clipping and weight decay are burn's optimiser options; fit applies them.
#[test]
fn burns_gradient_clipping_bounds_every_step() {
    use burn::grad_clipping::GradientClippingConfig;
    let items = data(20);
    let config = FitConfig::for_epochs(1, 20)
        .with_shuffle(false)
        .with_learning_rate(0.5);
    let clipped =
        SgdConfig::new().with_gradient_clipping(Some(GradientClippingConfig::Value(0.01)));
    let (m, _) = Fit::new(config.clone())
        .run(
            model(),
            &mut clipped.init(),
            Items::new(&items, points),
            &Default::default(),
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

/// Batches made elsewhere (here plain vectors; a burn `DataLoader` is used the same way,
/// `|_| loader.iter()`) train like the same batches made by `Items`.
#[test]
fn loaders_train_on_batches_from_an_iterator_like_items() {
    use rensa_train::Loaders;
    let items = data(40);
    let (train, valid) = items.split_at(30);
    let config = FitConfig::for_epochs(5, 10)
        .with_validation_split(0.25)
        .with_shuffle(false)
        .with_learning_rate(0.05);
    let device = Default::default();
    let mut seen_epochs = Vec::new();
    let chunks = |items: &[(f32, f32)], size: usize| -> Vec<Points> {
        items.chunks(size).map(<[_]>::to_vec).collect()
    };
    let (from_batches, h) = Fit::new(config.clone())
        .run(
            model(),
            &mut AdamConfig::new().init(),
            Loaders::new(
                |epoch| {
                    seen_epochs.push(epoch);
                    chunks(train, 10)
                },
                || chunks(valid, 7),
            ),
            &device,
        )
        .unwrap();
    assert_eq!(seen_epochs, vec![1, 2, 3, 4, 5]);
    // The same batches in the same order as Items without shuffling: the same training.
    let (from_items, h_items) = Fit::new(config.clone()).adam(&items).unwrap();
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
    assert!((last.metrics["val_mae"] - last_items.metrics["val_mae"]).abs() < 1e-5);
    // No training batches is an error, not a division by zero.
    let err = Fit::new(config)
        .run(
            model(),
            &mut AdamConfig::new().init(),
            Loaders::new(|_| Vec::<Points>::new(), Vec::<Points>::new),
            &device,
        )
        .unwrap_err();
    assert!(err.to_string().contains("training batches"), "{err}");
}

/// A run that fails in an epoch whose predecessors were not saved yet (checkpoints every 5
/// epochs) saves the last finished epoch first, whatever the failure: here epoch 3 brings no
/// training batch.
#[test]
fn an_empty_epoch_leaves_the_last_finished_epoch_saved() {
    use rensa_train::{Checkpoints, Loaders};
    let items = data(30);
    let config = FitConfig::for_epochs(6, 10)
        .with_validation_split(0.2)
        .with_learning_rate(0.05);
    let dir = run_dir("empty-epoch");
    let ckpt = Checkpoints::new(&dir, 5);
    let device = Default::default();
    let err = Fit::new(config.clone())
        .checkpoints(ckpt.clone())
        .run(
            model(),
            &mut AdamConfig::new().init(),
            Loaders::new(
                |epoch| {
                    if epoch < 3 {
                        items[..24].chunks(8).map(<[_]>::to_vec).collect()
                    } else {
                        Vec::<Points>::new()
                    }
                },
                || vec![items[24..].to_vec()],
            ),
            &device,
        )
        .unwrap_err();
    assert!(err.to_string().contains("training batches"), "{err}");
    let saved = ckpt.latest().unwrap().expect("the last good epoch saved");
    assert_eq!(saved.epoch, 2);
    let history = rensa_train::History::load(&saved.path).unwrap();
    assert_eq!((history.epochs.len(), history.step_losses.len()), (2, 6));
    // and the run resumes from it once the batches come back
    let mut resumed_epochs = Vec::new();
    let (_, history) = Fit::new(config)
        .checkpoints(ckpt.resuming(true))
        .on_epoch(|e| resumed_epochs.push(e.epoch))
        .run(
            model(),
            &mut AdamConfig::new().init(),
            Loaders::new(
                |_| {
                    items[..24]
                        .chunks(8)
                        .map(<[_]>::to_vec)
                        .collect::<Vec<Points>>()
                },
                || vec![items[24..].to_vec()],
            ),
            &device,
        )
        .unwrap();
    assert_eq!(resumed_epochs, [3, 4, 5, 6]);
    assert_eq!(history.step_losses.len(), 18);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Trains 2 epochs into a checkpoint, lets `craft` rewrite `file` in the saved folder (given
/// the folder and the trained model), makes the manifest vouch for the new file as a crafted
/// checkpoint's would, and resumes to 3 epochs: the resume's error.
fn resume_after_crafting(name: &str, file: &str, craft: impl FnOnce(&Path, Line<B>)) -> String {
    use rensa_train::Checkpoints;
    let items = data(20);
    let config = FitConfig::for_epochs(2, 8).with_validation_split(0.2);
    let dir = run_dir(name);
    let (trained, _) = Fit::new(config.clone())
        .checkpoints(Checkpoints::new(&dir, 1))
        .adam(&items)
        .unwrap();
    let saved = Checkpoints::new(&dir, 1).latest().unwrap().unwrap();
    craft(&saved.path, trained);
    let manifest_path = saved.path.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    let bytes = std::fs::read(saved.path.join(file)).unwrap();
    manifest[file] = serde_json::json!({
        "bytes": bytes.len(),
        "fnv1a64": rensa_train::fingerprint(&bytes),
    });
    std::fs::write(&manifest_path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let err = Fit::new(config.with_epochs(3))
        .checkpoints(Checkpoints::new(&dir, 1).resuming(true))
        .adam(&items)
        .unwrap_err()
        .to_string();
    let _ = std::fs::remove_dir_all(&dir);
    err
}

/// burn's optimisers take a loaded state as it is: a checkpoint whose optimiser state was made
/// for other parameters under the same ids is refused at the first step, not trained on.
#[test]
fn an_optimizer_state_that_does_not_fit_the_model_is_refused_on_resume() {
    use burn::optim::{GradientsParams, Optimizer};
    use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
    let err = resume_after_crafting("crafted-optimizer", "optimizer.bin", |folder, trained| {
        // Adam's state of a line with three outputs, under the trained line's parameter ids
        let device = Default::default();
        let mut linear: Linear<B> = LinearConfig::new(1, 3).init(&device);
        linear.weight = Param::initialized(trained.linear.weight.id, linear.weight.val());
        let bias_id = trained.linear.bias.as_ref().unwrap().id;
        linear.bias = linear.bias.map(|b| Param::initialized(bias_id, b.val()));
        let wide = Line { linear };
        let mut adam = AdamConfig::new().init::<B, Line<B>>();
        let (x, _) = wide.xy(&data(20));
        let grads = GradientsParams::from_grads(wide.linear.forward(x).sum().backward(), &wide);
        let _ = adam.step(0.01, wide, grads);
        Recorder::<B>::record(
            &BinFileRecorder::<FullPrecisionSettings>::new(),
            adam.to_record(),
            folder.join("optimizer"),
        )
        .unwrap();
    });
    assert!(
        err.contains("optimizer.bin") && err.contains("does not fit the model"),
        "{err}"
    );
}

/// A checkpoint whose history is not its own (an epoch missing) is refused on resume, naming
/// the history.
#[test]
fn a_history_that_does_not_match_its_checkpoint_is_refused() {
    let err = resume_after_crafting("crafted-history", "history.json", |folder, _| {
        let path = folder.join("history.json");
        let mut history: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        history["epochs"].as_array_mut().unwrap().pop();
        std::fs::write(&path, serde_json::to_vec(&history).unwrap()).unwrap();
    });
    assert!(
        err.contains("history.json") && err.contains("the history records epochs [1]"),
        "{err}"
    );
}

/// A step whose loss (or part) is not one number: the loop stops with an error that says so.
#[derive(Module, Debug)]
struct Unreduced<B: Backend> {
    line: Line<B>,
    /// Whether the loss itself is left per item (else only a part is).
    loss: bool,
}

impl<B: Backend> Objective<B> for Unreduced<B> {
    type Batch = Points;

    fn step(&self, items: &Points, _: &StepInfo) -> Output<B, Self> {
        let (x, y) = self.line.xy(items);
        let per_item = (self.line.linear.forward(x) - y)
            .powi_scalar(2)
            .reshape([-1]);
        if self.loss {
            Output::new(per_item, items.len())
        } else {
            Output::new(per_item.clone().mean(), items.len())
                .with_part("mean", per_item.clone().mean())
                .with_part("squares", per_item)
        }
    }
}

#[test]
fn a_loss_or_part_of_several_numbers_is_an_error_naming_it() {
    let items = data(20);
    for (loss, expected) in [
        (
            true,
            "`Output::loss` must be a one-element tensor (the batch's mean loss), got a \
                tensor of shape [8]",
        ),
        (
            false,
            "`Output::parts` must be one-element tensors, got part `squares` of shape [8]",
        ),
    ] {
        let err = Fit::new(FitConfig::for_epochs(1, 8).with_validation_split(0.2))
            .run(
                Unreduced {
                    line: model(),
                    loss,
                },
                &mut AdamConfig::new().init(),
                Items::new(&items, points),
                &Default::default(),
            )
            .unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
}

/// A model whose step reports parts and metrics, sees the loop's position and updates state the
/// optimiser does not own (a counter, as an EMA codebook would be).
#[derive(Module, Debug)]
struct Counting<B: Backend> {
    line: Line<B>,
    /// Training steps seen, updated by the step's own update.
    count: Param<Tensor<B, 1>>,
}

static SEEN: std::sync::Mutex<Vec<(usize, usize, usize, bool)>> = std::sync::Mutex::new(Vec::new());

impl<B: Backend> Objective<B> for Counting<B> {
    type Batch = Points;

    fn step(&self, items: &Points, at: &StepInfo) -> Output<B, Self> {
        SEEN.lock()
            .unwrap()
            .push((at.epoch, at.step, at.batch, at.training));
        let (x, y) = self.line.xy(items);
        let error = self.line.linear.forward(x) - y;
        let squared = error.clone().powi_scalar(2).mean();
        let absolute = error.abs().mean();
        Output::new(squared.clone() + absolute.clone(), items.len())
            .with_part("squared", squared)
            .with_part("absolute", absolute)
            .with_metric("step", at.step as f64)
            .with_update(|m: Self| Self {
                count: m.count.map(|c| c + 1.0),
                ..m
            })
    }
}

#[test]
fn parts_metrics_and_updates_reach_the_history_and_the_model() {
    let device = Default::default();
    let model = Counting {
        line: model(),
        count: Param::from_tensor(Tensor::zeros([1], &device)),
    };
    let config = FitConfig::for_epochs(2, 10)
        .with_validation_split(0.25)
        .with_shuffle(false);
    let items = data(40);
    SEEN.lock().unwrap().clear();
    let (trained, history) = Fit::new(config)
        .run(
            model,
            &mut SgdConfig::new().init(),
            Items::new(&items, points),
            &device,
        )
        .unwrap();
    // 3 training batches per epoch, each followed by the update; one validation batch.
    assert_eq!(to_f64_vec(trained.count.val()), vec![6.0]);
    let seen = SEEN.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            (1, 0, 1, true),
            (1, 1, 2, true),
            (1, 2, 3, true),
            (1, 3, 1, false),
            (2, 3, 1, true),
            (2, 4, 2, true),
            (2, 5, 3, true),
            (2, 6, 1, false),
        ]
    );
    for e in &history.epochs {
        let m = &e.metrics;
        assert!(
            (m["squared"] + m["absolute"] - e.loss).abs() < 1e-5,
            "{e:?}"
        );
        assert!(
            (m["val_squared"] + m["val_absolute"] - e.val_loss.unwrap()).abs() < 1e-5,
            "{e:?}"
        );
        // The mean of the steps 0, 1, 2 (then 3, 4, 5) weighted by 10 items each.
        assert_eq!(m["step"], 3.0 * e.epoch as f64 - 2.0);
    }
    assert!(history.to_csv().starts_with(
        "epoch,loss,val_loss,seconds,items,lr,absolute,squared,step,val_absolute,val_squared,val_step\n"
    ));
    let summary = history.epochs[0].summary();
    assert!(summary.contains("val_squared"), "{summary}");
}

/// A model that computes its own gradients trains in the same loop through its updates: the
/// hand-written gradient of the squared error with plain gradient descent takes the same steps
/// as autodiff with burn's SGD.
#[derive(Module, Debug)]
struct HandLine<B: Backend> {
    w: Param<Tensor<B, 1>>,
    b: Param<Tensor<B, 1>>,
}

impl<B: Backend> Objective<B> for HandLine<B> {
    type Batch = Points;

    fn step(&self, items: &Points, at: &StepInfo) -> Output<B, Self> {
        let n = items.len() as f64;
        let (w, b) = (to_f64_vec(self.w.val())[0], to_f64_vec(self.b.val())[0]);
        let (mut loss, mut dw, mut db) = (0.0, 0.0, 0.0);
        for &(x, y) in items {
            let e = w * x as f64 + b - y as f64;
            loss += e * e / n;
            dw += 2.0 * e * x as f64 / n;
            db += 2.0 * e / n;
        }
        let device = self.w.device();
        let lr = at.lr;
        Output::new(Tensor::from_floats([loss as f32], &device), items.len()).with_update(
            move |m: Self| Self {
                w: m.w.map(|w| w - dw * lr),
                b: m.b.map(|b| b - db * lr),
            },
        )
    }
}

#[test]
fn run_manual_trains_a_model_that_updates_itself_like_autodiff_with_sgd() {
    type Inner = rensa_testkit::TestBackend;
    let device = Default::default();
    let config = FitConfig::for_epochs(4, 8)
        .with_learning_rate(0.05)
        .with_seed(2);
    let items = data(32);
    let hand = HandLine::<Inner> {
        w: Param::from_tensor(Tensor::from_floats([-0.3], &device)),
        b: Param::from_tensor(Tensor::from_floats([0.2], &device)),
    };
    let (hand, h_hand) = Fit::new(config.clone())
        .run_manual(hand, Items::new(&items, points), &device)
        .unwrap();
    let (auto, h_auto) = Fit::new(config.clone()).sgd(&items).unwrap();
    let mut w = to_f64_vec(hand.w.val());
    w.extend(to_f64_vec(hand.b.val()));
    rensa_testkit::assert_slices_close(
        &w,
        &weights(&auto),
        rensa_testkit::Tolerance::F32,
        "weights",
    );
    rensa_testkit::assert_slices_close(
        &h_hand.step_losses,
        &h_auto.step_losses,
        rensa_testkit::Tolerance::F32,
        "losses",
    );
    // A step that returns no update is refused rather than silently not training.
    let err = Fit::new(config)
        .run_manual(model().valid(), Items::new(&items, points), &device)
        .unwrap_err();
    assert!(err.to_string().contains("update"), "{err}");
}

#[test]
fn stop_when_ends_the_run_after_the_epoch_that_asks() {
    let items = data(20);
    let config = FitConfig::for_epochs(10, 10);
    let (_, history) = Fit::new(config.clone())
        .stop_when(|e| e.epoch == 3)
        .sgd(&items)
        .unwrap();
    assert_eq!(history.epochs.len(), 3);
    // with checkpoints: a resume of the stopped run stays stopped, as the run did
    use rensa_train::Checkpoints;
    let dir = run_dir("stop-when");
    let rule = |e: &rensa_train::EpochRecord| e.epoch >= 3;
    let (stopped, history) = Fit::new(config.clone())
        .stop_when(rule)
        .checkpoints(Checkpoints::new(&dir, 5))
        .sgd(&items)
        .unwrap();
    assert_eq!(history.epochs.len(), 3);
    let (resumed, history) = Fit::new(config)
        .stop_when(rule)
        .checkpoints(Checkpoints::new(&dir, 5).resuming(true))
        .sgd(&items)
        .unwrap();
    assert_eq!(history.epochs.len(), 3);
    assert_eq!(
        to_f64_vec(resumed.linear.weight.val()),
        to_f64_vec(stopped.linear.weight.val())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_resume_with_other_settings_is_refused_unless_forced() {
    use rensa_train::Checkpoints;
    let dir = run_dir("settings");
    let config = FitConfig::for_epochs(2, 5).with_seed(1);
    Fit::new(config.clone())
        .settings([("hidden", 10)])
        .checkpoints(Checkpoints::new(&dir, 1))
        .sgd(&data(10))
        .unwrap();
    let resume = Checkpoints::new(&dir, 1).resuming(true);
    let err = Fit::new(config.clone().with_epochs(3).with_seed(2))
        .settings([("hidden", 12)])
        .checkpoints(resume.clone())
        .sgd(&data(10))
        .unwrap_err();
    let Error::SettingsChanged { differences, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(
        differences,
        &["hidden: saved 10, now 12", "seed: saved 1, now 2"]
    );
    assert!(err.to_string().contains("--force"), "{err}");
    // More epochs are not a different run.
    Fit::new(config.clone().with_epochs(3))
        .settings([("hidden", 10)])
        .checkpoints(resume.clone())
        .sgd(&data(10))
        .unwrap();
    // Forced, the run goes on and the history says so.
    let (_, h) = Fit::new(config.clone().with_epochs(4).with_seed(2))
        .settings([("hidden", 10)])
        .checkpoints(resume.clone().forcing(true))
        .sgd(&data(10))
        .unwrap();
    assert_eq!(h.epochs.len(), 4);
    assert_eq!(
        h.notes,
        ["epoch 3: resumed by force with other settings: seed: saved 1, now 2"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_fresh_run_does_not_overwrite_a_checkpoint_unless_told() {
    use rensa_train::Checkpoints;
    let dir = run_dir("overwrite");
    let config = FitConfig::for_epochs(1, 5);
    let fresh = Checkpoints::new(&dir, 1);
    Fit::new(config.clone())
        .checkpoints(fresh.clone())
        .sgd(&data(10))
        .unwrap();
    let err = Fit::new(config.clone())
        .checkpoints(fresh.clone())
        .sgd(&data(10))
        .unwrap_err();
    assert!(
        matches!(err, Error::CheckpointExists { epoch: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("--overwrite"), "{err}");
    Fit::new(config.with_epochs(2))
        .checkpoints(fresh.clone().overwriting(true))
        .sgd(&data(10))
        .unwrap();
    assert_eq!(fresh.latest().unwrap().unwrap().epoch, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_non_finite_validation_loss_or_weight_stops_the_run_before_saving() {
    use rensa_train::Checkpoints;
    let dir = run_dir("nan-valid");
    let ckpt = Checkpoints::new(&dir, 1);
    let config = FitConfig::for_epochs(1, 5)
        .with_validation_split(0.5)
        .with_shuffle(false);
    Fit::new(config.clone())
        .checkpoints(ckpt.clone())
        .sgd(&data(10))
        .unwrap();
    let model_file = ckpt.latest().unwrap().unwrap().model_file();
    let saved = std::fs::read(&model_file).unwrap();
    // The validation half (the last items, Keras's split) holds a NaN target.
    let mut bad = data(10);
    bad[9].1 = f32::NAN;
    let err = Fit::new(config.clone().with_epochs(2))
        .checkpoints(ckpt.clone().resuming(true))
        .sgd(&bad)
        .unwrap_err();
    let Error::NonFinite { what, epoch, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!((what.as_str(), *epoch), ("val_loss", 2));
    assert_eq!(ckpt.latest().unwrap().unwrap().epoch, 1);
    assert_eq!(std::fs::read(&model_file).unwrap(), saved);

    // A step so large that the weights overflow f32 while the loss before it was finite.
    // (The rate is a saved setting: the resume is forced.)
    let err = Fit::new(config.with_epochs(2).with_learning_rate(1e39))
        .checkpoints(ckpt.clone().resuming(true).forcing(true))
        .sgd(&data(10))
        .unwrap_err();
    let Error::NonFinite {
        what, epoch, step, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(
        what.starts_with("the weights (") && what.contains("weight"),
        "{what}"
    );
    assert_eq!((*epoch, *step), (2, 2));
    assert_eq!(ckpt.latest().unwrap().unwrap().epoch, 1);
    assert_eq!(std::fs::read(&model_file).unwrap(), saved);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn loading_falls_back_past_an_incomplete_checkpoint() {
    use rensa_train::Checkpoints;
    let dir = run_dir("fallback");
    let ckpt = Checkpoints::new(&dir, 1);
    let config = FitConfig::for_epochs(2, 5);
    let (_, straight) = Fit::new(config.clone().with_epochs(3))
        .sgd(&data(10))
        .unwrap();
    Fit::new(config.clone())
        .checkpoints(ckpt.clone())
        .sgd(&data(10))
        .unwrap();
    // What a crash after the rename of a newer save but before its files were complete would
    // leave (a power loss without fsync): a newer folder whose manifest does not verify.
    let good = ckpt.latest().unwrap().unwrap();
    let newer = ckpt.root().join("epoch-000003-000099");
    std::fs::create_dir_all(&newer).unwrap();
    for f in std::fs::read_dir(&good.path).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, newer.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(newer.join("model.bin"), b"").unwrap();
    let latest = ckpt.latest().unwrap().unwrap();
    assert_eq!(latest.path, good.path);
    assert_eq!(latest.skipped.len(), 1);
    assert!(
        latest.skipped[0].contains("model.bin has 0 bytes"),
        "{:?}",
        latest.skipped
    );
    let (_, h) = Fit::new(config.with_epochs(3))
        .checkpoints(ckpt.clone().resuming(true))
        .sgd(&data(10))
        .unwrap();
    assert_eq!(h.step_losses, straight.step_losses);
    assert_eq!(h.notes.len(), 1);
    assert!(h.notes[0].contains("resumed past an incomplete checkpoint"));
    // The save of epoch 3 cleared the broken folder.
    assert_eq!(std::fs::read_dir(ckpt.root()).unwrap().count(), 1);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The training run of the crash test: 4 epochs, a checkpoint after each, resuming whatever
/// `dir` holds. Returns the final weights and step losses, as bit patterns.
fn crash_run(dir: &std::path::Path) -> (Vec<u64>, Vec<u64>) {
    use rensa_train::Checkpoints;
    let ckpt = Checkpoints::new(dir, 1);
    let resume = ckpt.latest().unwrap().is_some();
    let config = FitConfig::for_epochs(4, 4)
        .with_validation_split(0.25)
        .with_seed(9);
    let (m, h) = Fit::new(config)
        .checkpoints(ckpt.resuming(resume))
        .adam(&data(16))
        .unwrap();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect();
    (bits(&weights(&m)), bits(&h.step_losses))
}

/// The child process of the crash test (does nothing in a plain test run): trains into
/// `RENSA_CRASH_DIR` and prints the result and how many file-system steps its saves took.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("RENSA_CRASH_DIR") else {
        return;
    };
    let (w, losses) = crash_run(std::path::Path::new(&dir));
    println!("result {w:?} {losses:?}");
    println!("io steps {}", rensa_train::checkpoint_io_steps());
}

/// Runs [`crash_child`] in a child process; with `pause`, kills it with SIGKILL at that
/// file-system step of its saves and returns `None`, else returns its output.
fn crash_child_process(dir: &std::path::Path, pause: Option<u64>) -> Option<String> {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env("RENSA_CRASH_DIR", dir)
        .env_remove("RENSA_TRAIN_PAUSE_AT_IO")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(k) = pause {
        cmd.env("RENSA_TRAIN_PAUSE_AT_IO", k.to_string());
    }
    let mut child = cmd.spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    if let Some(k) = pause {
        let mut line = String::new();
        loop {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "the child ended without reaching io step {k}"
            );
            // (after the harness's "test crash_child ... " on the same line)
            if line.contains("paused at checkpoint io step") {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        return None;
    }
    let mut text = String::new();
    out.read_to_string(&mut text).unwrap();
    assert!(child.wait().unwrap().success(), "the child failed: {text}");
    Some(text)
}

/// A training process killed with SIGKILL at random moments of its checkpoint saves (each
/// file write, fsync, rename and removal is a moment; seeded) always resumes, and ends with the
/// weights and losses of an uninterrupted run, bit for bit. `RENSA_CRASH_CASES` sets the number
/// of kills (200 by default).
#[test]
#[cfg(unix)]
fn a_run_killed_during_a_save_resumes_to_the_same_weights() {
    let cases: u64 = std::env::var("RENSA_CRASH_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let reference_dir = run_dir("crash-reference");
    let reference = crash_child_process(&reference_dir, None).unwrap();
    let result = |text: &str| {
        // (the first line follows the harness's "test crash_child ... ")
        text.lines()
            .find_map(|l| l.find("result ").map(|at| l[at..].to_string()))
            .expect("a result line")
    };
    let steps: u64 = reference
        .lines()
        .find_map(|l| l.strip_prefix("io steps "))
        .and_then(|n| n.trim().parse().ok())
        .expect("an io step count");
    assert!(steps > 20, "{steps} io steps");
    let mut rng = rensa_train::SplitMix64::new(2026);
    for case in 0..cases {
        let k = 1 + rng.next_u64() % steps;
        let dir = run_dir(&format!("crash-{case}"));
        crash_child_process(&dir, Some(k));
        let resumed = crash_child_process(&dir, None).unwrap();
        assert_eq!(
            result(&resumed),
            result(&reference),
            "case {case}: killed at io step {k} of {steps}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = std::fs::remove_dir_all(&reference_dir);
}

#[test]
fn shards_split_every_batch_without_overlap_and_give_every_peer_the_same_count() {
    use rensa_train::{Batches, Loaders};
    let items: Vec<(f32, f32)> = (0..23).map(|i| (i as f32, 0.0)).collect();
    let config = FitConfig::for_epochs(1, 8);
    let mut source = Items::new(&items, points);
    let whole: Vec<Points> = source.train(&config, 1).collect();
    for world in [1, 2, 3] {
        let shards: Vec<Vec<Points>> = (0..world)
            .map(|rank| source.train_shard(&config, 1, rank, world).collect())
            .collect();
        // batches of 8, 8 and 7 items: every batch has at least `world` items
        for (b, batch) in whole.iter().enumerate() {
            let joined: Points = shards.iter().flat_map(|s| s[b].clone()).collect();
            assert_eq!(
                &joined, batch,
                "world {world}, batch {b}: the shards rebuild the batch"
            );
            let sizes: Vec<usize> = shards.iter().map(|s| s[b].len()).collect();
            assert!(
                sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
                "{sizes:?}"
            );
        }
    }
    // a last batch smaller than the number of peers is skipped by all
    let config = FitConfig::for_epochs(1, 10).with_shuffle(false);
    let counts: Vec<usize> = (0..4)
        .map(|rank| source.train_shard(&config, 1, rank, 4).count())
        .collect();
    assert_eq!(
        counts,
        [2, 2, 2, 2],
        "23 items in batches of 10: the batch of 3 is skipped"
    );

    // other sources hand out whole batches in turn and drop an incomplete last round
    let mut loaders = Loaders::new(|_| 0..7, std::iter::empty::<i32>);
    let turns: Vec<Vec<i32>> = (0..3)
        .map(|rank| loaders.train_shard(&config, 1, rank, 3).collect())
        .collect();
    assert_eq!(turns, [vec![0, 3], vec![1, 4], vec![2, 5]]);
}

/// The line, whose training loss turns NaN from epoch `nan_from` on, and which reports the
/// metric `first` (1.0) on the first batch of every epoch only.
#[derive(Module, Debug)]
struct Flaky<B: Backend> {
    line: Line<B>,
    nan_from: usize,
}

impl<B: Backend> Objective<B> for Flaky<B> {
    type Batch = Points;

    fn step(&self, items: &Points, at: &StepInfo) -> Output<B, Self> {
        let (x, y) = self.line.xy(items);
        let mut loss = (self.line.linear.forward(x) - y).powi_scalar(2).mean();
        if at.training && at.epoch >= self.nan_from {
            loss = loss * f32::NAN;
        }
        let output = Output::new(loss, items.len());
        if at.batch == 1 {
            output.with_metric("first", 1.0)
        } else {
            output
        }
    }
}

#[test]
fn a_failed_run_leaves_its_last_finished_epoch_and_partial_metrics_are_their_batches_mean() {
    use rensa_train::Checkpoints;
    let dir = run_dir("last-good");
    let flaky = |nan_from| Flaky {
        line: model(),
        nan_from,
    };
    let config = FitConfig::for_epochs(6, 5).with_shuffle(false);
    let run = |config: &FitConfig, nan_from, checkpoints: Option<Checkpoints>| {
        let mut fit = Fit::new(config.clone());
        if let Some(c) = checkpoints {
            fit = fit.checkpoints(c);
        }
        fit.run(
            flaky(nan_from),
            &mut AdamConfig::new().init(),
            Items::new(&data(10), points),
            &Default::default(),
        )
    };
    // checkpoints every 5 epochs, the loss NaN in epoch 3: epoch 2 is saved as it ended
    let err = run(&config, 3, Some(Checkpoints::new(&dir, 5))).unwrap_err();
    assert!(
        matches!(err, Error::NonFiniteLoss { epoch: 3, .. }),
        "{err}"
    );
    let saved = Checkpoints::new(&dir, 5).latest().unwrap().unwrap();
    assert_eq!(saved.epoch, 2);
    let history = rensa_train::History::load(&saved.path).unwrap();
    assert_eq!((history.epochs.len(), history.step_losses.len()), (2, 4));
    // it is the model of a run stopped after epoch 2, and a resume goes on from it
    let (two, _) = run(&config.clone().with_epochs(2), 99, None).unwrap();
    let loaded = rensa_train::load_model(
        flaky(99),
        &saved.model_file().with_extension(""),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(weights(&loaded.line), weights(&two.line));
    let (_, resumed) = run(&config, 99, Some(Checkpoints::new(&dir, 5).resuming(true))).unwrap();
    assert_eq!(resumed.epochs.len(), 6);
    // `first`, reported on one of the two batches, is that batch's value, not half of it
    assert!(
        resumed.epochs.iter().all(|e| e.metrics["first"] == 1.0),
        "{resumed:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

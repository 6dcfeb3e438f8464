//! Data-parallel training between local peers (threads of this process): the same parameters
//! as a run of one on the whole batches, refused peers, a peer that never comes.
//!
//! burn-collective's local server is one per process and backend, so these tests take turns.
#![cfg(feature = "distributed")]

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::AdamConfig;
use burn::tensor::{Tensor, TensorData, backend::Backend};
use rensa_testkit::{TestAutodiff as B, to_f64_vec};
use rensa_train::distributed::{Cluster, Peer};
use rensa_train::{
    Checkpoints, Error, Fit, FitConfig, History, Items, Objective, Output, StepInfo,
};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static TURN: Mutex<()> = Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A two-layer perceptron 3 → 8 → 1 (tanh), with a fixed start.
#[derive(Module, Debug)]
struct Mlp<B: Backend> {
    hidden: Linear<B>,
    out: Linear<B>,
}

type Point = ([f32; 3], f32);

impl<B: Backend> Objective<B> for Mlp<B> {
    type Batch = Vec<Point>;

    fn step(&self, items: &Vec<Point>, _: &StepInfo) -> Output<B, Self> {
        let device = self.out.weight.device();
        let n = items.len();
        let x: Vec<f32> = items.iter().flat_map(|p| p.0).collect();
        let y: Vec<f32> = items.iter().map(|p| p.1).collect();
        let x = Tensor::<B, 2>::from_data(TensorData::new(x, [n, 3]), &device);
        let y = Tensor::<B, 2>::from_data(TensorData::new(y, [n, 1]), &device);
        let h = self.hidden.forward(x).tanh();
        let error = self.out.forward(h) - y;
        let mae = to_f64_vec(error.clone().abs().mean())[0];
        Output::new(error.powi_scalar(2).mean(), n).with_metric("mae", mae)
    }
}

fn fixed(rows: usize, cols: usize, k: f32) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| ((i as f32 + 1.0) * k).sin() * 0.5)
        .collect()
}

fn model(hidden: usize) -> Mlp<B> {
    let device = Default::default();
    let mut first: Linear<B> = LinearConfig::new(3, hidden).init(&device);
    first.weight = Param::from_data(TensorData::new(fixed(3, hidden, 0.7), [3, hidden]), &device);
    first.bias = Some(Param::from_data(
        TensorData::new(fixed(1, hidden, 1.3), [hidden]),
        &device,
    ));
    let mut out: Linear<B> = LinearConfig::new(hidden, 1).init(&device);
    out.weight = Param::from_data(TensorData::new(fixed(hidden, 1, 2.1), [hidden, 1]), &device);
    out.bias = Some(Param::from_data(TensorData::new(vec![0.1], [1]), &device));
    Mlp { hidden: first, out }
}

fn data(n: usize) -> Vec<Point> {
    (0..n)
        .map(|i| {
            let x = [
                (i as f32 * 0.37).sin(),
                (i as f32 * 0.11).cos(),
                i as f32 / n as f32,
            ];
            (x, x[0] * x[1] - 0.5 * x[2] + 0.2)
        })
        .collect()
}

fn weights(m: &Mlp<B>) -> Vec<f64> {
    let mut w = Vec::new();
    for layer in [&m.hidden, &m.out] {
        w.extend(to_f64_vec(layer.weight.val()));
        w.extend(to_f64_vec(layer.bias.as_ref().unwrap().val()));
    }
    w
}

fn config() -> FitConfig {
    FitConfig::for_epochs(4, 16)
        .with_learning_rate(0.02)
        .with_validation_split(0.25)
}

fn fit(peer: Option<Peer>, hidden: usize) -> rensa_train::Result<(Mlp<B>, History)> {
    let items = data(80);
    let mut fit = Fit::new(config()).settings([("hidden", hidden)]);
    if let Some(peer) = peer {
        fit = fit.distributed(peer);
    }
    fit.run(
        model(hidden),
        &mut AdamConfig::new().init(),
        Items::new(&items, |b: &[&Point]| b.iter().map(|&&p| p).collect()),
        &Default::default(),
    )
}

fn max_difference(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn local_peers_end_with_the_parameters_of_a_run_of_one() {
    let _turn = turn();
    let (alone, history) = fit(None, 8).unwrap();
    let start = weights(&model(8));
    let expected = weights(&alone);
    // 60 training items in batches of 16: 4 steps per epoch (the last of 12 items)
    assert_eq!(history.step_losses.len(), 16);
    assert!(
        max_difference(&start, &expected) > 1e-2,
        "the run of one moved the weights"
    );
    // 2 and 4 peers cut the batches of 16 and 12 evenly; 3 peers into shards of 5, 5, 6 and
    // 4, 4, 4, where only the item weighting gives the whole batch's gradient
    for peers in [2, 3, 4] {
        let results = Cluster::local(peers)
            .run(|peer| fit(Some(peer), 8))
            .unwrap();
        assert_eq!(results.len(), peers);
        for (i, (m, h)) in results.iter().enumerate() {
            let d = max_difference(&weights(m), &expected);
            assert!(
                d < 1e-5,
                "{peers} peers, peer {i}: parameters differ by {d}"
            );
            // the history holds the figures of the whole batches, as a run of one's
            let loss_d = max_difference(&h.step_losses, &history.step_losses);
            assert!(
                loss_d < 1e-5,
                "{peers} peers, peer {i}: step losses differ by {loss_d}"
            );
            assert_eq!(h.epochs.len(), history.epochs.len());
            for (e, f) in h.epochs.iter().zip(&history.epochs) {
                assert_eq!(e.items, f.items);
                assert!((e.val_loss.unwrap() - f.val_loss.unwrap()).abs() < 1e-5);
                assert!((e.metrics["val_mae"] - f.metrics["val_mae"]).abs() < 1e-5);
                assert!((e.metrics["mae"] - f.metrics["mae"]).abs() < 1e-5);
            }
        }
    }
}

#[test]
fn a_peer_with_another_model_or_settings_is_refused_before_training() {
    let _turn = turn();
    let results = Cluster::local(2).run(|peer| {
        let hidden = if peer.rank() == 0 { 8 } else { 6 };
        match fit(Some(peer), hidden) {
            Ok(_) => Err(Error::Peers {
                message: "a peer with another model trained".into(),
            }),
            Err(e) => Ok(e.to_string()),
        }
    });
    for message in results.unwrap() {
        assert!(
            message.contains("setting `hidden`") && message.contains("parameter shapes"),
            "{message}"
        );
        assert!(!message.contains("setting `seed`"), "{message}");
    }
}

#[test]
fn a_peer_that_stops_early_stops_the_others_instead_of_leaving_them_alone() {
    let _turn = turn();
    // peer 1 fails at its first step (a batch size the model refuses); peer 0 must not go on
    // training on its own shards
    let results = Cluster::local(2).run(|peer| {
        let rank = peer.rank();
        let items = data(80);
        let batcher = move |b: &[&Point]| -> Vec<Point> {
            let mut v: Vec<Point> = b.iter().map(|&&p| p).collect();
            if rank == 1 {
                v[0].0[0] = f32::NAN;
            }
            v
        };
        Fit::new(config())
            .settings([("hidden", 8)])
            .distributed(peer)
            .run(
                model(8),
                &mut AdamConfig::new().init(),
                Items::new(&items, batcher),
                &Default::default(),
            )
    });
    // the NaN reaches both through the summed loss: both stop at the first step
    let e = results.unwrap_err().to_string();
    assert!(e.contains("the loss became NaN at epoch 1, batch 1"), "{e}");

    let results = Cluster::local(2).run(|peer| {
        let epochs = if peer.rank() == 0 { 4 } else { 2 };
        let items = data(80);
        Fit::new(config().with_epochs(epochs))
            .distributed(peer)
            .run(
                model(8),
                &mut AdamConfig::new().init(),
                Items::new(&items, |b: &[&Point]| b.iter().map(|&&p| p).collect()),
                &Default::default(),
            )
    });
    let e = results.unwrap_err().to_string();
    assert!(e.contains("different epochs"), "{e}");

    // sources that give the peers different numbers of batches: an error, not a hang
    let results = Cluster::local(2)
        .with_timeout(Duration::from_secs(10))
        .run(|peer| {
            let batches = if peer.rank() == 0 { 6 } else { 4 };
            let items = data(80);
            let chunks: Vec<Vec<Point>> = items.chunks(8).map(<[_]>::to_vec).collect();
            Fit::new(config()).distributed(peer).run(
                model(8),
                &mut AdamConfig::new().init(),
                rensa_train::Loaders::new(
                    move |_| chunks[..batches].to_vec(),
                    std::iter::empty::<Vec<Point>>,
                ),
                &Default::default(),
            )
        });
    let e = results.unwrap_err().to_string();
    assert!(e.contains("data-parallel training"), "{e}");
}

#[test]
fn a_batch_smaller_than_the_number_of_peers_is_refused() {
    let _turn = turn();
    let peers = Cluster::local(4).peers().unwrap();
    let items = data(80);
    let started = std::cell::Cell::new(false);
    let e = Fit::new(config().with_batch_size(3))
        .distributed(peers[0].clone())
        .on_start(|| -> Result<(), std::io::Error> {
            started.set(true);
            Ok(())
        })
        .run(
            model(8),
            &mut AdamConfig::new().init(),
            Items::new(&items, |b: &[&Point]| b.iter().map(|&&p| p).collect()),
            &Default::default(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("batch_size") && e.contains("number of peers (4)"),
        "{e}"
    );
    // refused before it was admitted: the caller's files were not written
    assert!(!started.get());
    // batches made elsewhere are handed out whole: the batch size is not theirs to check
    let results = Cluster::local(2).run(|peer| {
        let chunks: Vec<Vec<Point>> = data(80).chunks(8).map(<[_]>::to_vec).collect();
        Fit::new(config().with_batch_size(1)).distributed(peer).run(
            model(8),
            &mut AdamConfig::new().init(),
            rensa_train::Loaders::new(move |_| chunks.clone(), std::iter::empty::<Vec<Point>>),
            &Default::default(),
        )
    });
    assert!(results.is_ok(), "{:?}", results.err());
}

#[test]
fn a_peer_that_never_comes_stops_the_others_within_the_timeout() {
    let _turn = turn();
    let peers = Cluster::local(2)
        .with_timeout(Duration::from_secs(2))
        .peers()
        .unwrap();
    let start = Instant::now();
    let e = fit(Some(peers[0].clone()), 8).unwrap_err().to_string();
    let waited = start.elapsed();
    assert!(
        e.contains("peer 0 waited 2 s") && e.contains("registration"),
        "{e}"
    );
    // the message above proves the 2 s timeout; the bound only catches a hang (loaded machines)
    assert!(waited < Duration::from_secs(30), "{waited:?}");
    // the process can train again afterwards
    let results = Cluster::local(2).run(|peer| fit(Some(peer), 8));
    assert_eq!(results.unwrap().len(), 2);
}

#[test]
fn a_run_saved_by_two_peers_resumes_alone_to_the_weights_of_a_run_of_one() {
    let _turn = turn();
    let dir = std::env::temp_dir().join(format!("rensa-distributed-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let items = data(80);
    let batcher = |b: &[&Point]| -> Vec<Point> { b.iter().map(|&&p| p).collect() };
    let run = |peer: Option<Peer>, epochs: usize, resume: bool| {
        let mut fit = Fit::new(config().with_epochs(epochs))
            .settings([("hidden", 8)])
            .checkpoints(Checkpoints::new(&dir, 1).resuming(resume));
        if let Some(peer) = peer {
            fit = fit.distributed(peer);
        }
        fit.run(
            model(8),
            &mut AdamConfig::new().init(),
            Items::new(&items, batcher),
            &Default::default(),
        )
    };
    let results = Cluster::local(2)
        .run(|peer| run(Some(peer), 2, false))
        .unwrap();
    assert_eq!(results.len(), 2);
    let saved = Checkpoints::new(&dir, 1).latest().unwrap().unwrap();
    assert_eq!(saved.epoch, 2);
    // the two peers' run goes on alone to epoch 4 and ends where a run of one does
    let (resumed, _) = run(None, 4, true).unwrap();
    let (alone, _) = fit(None, 8).unwrap();
    let d = max_difference(&weights(&resumed), &weights(&alone));
    assert!(d < 1e-5, "resumed alone: parameters differ by {d}");
    let _ = std::fs::remove_dir_all(&dir);
}

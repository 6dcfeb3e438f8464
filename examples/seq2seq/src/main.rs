//! `cargo run --release -p seq2seq [--features wgpu] -- [--epochs 80] [--cell rnn|lstm|gru] ...`
//!
//! The sin → cos encoder-decoder ([`rensa_models::seq2seq`]) on its built-in windows
//! ([`rensa_data::sine`]), trained with rensa-train's `Fit`; this file is the command line, the
//! table and the pictures.
//!
//! Data-parallel training (`rensa_train::distributed`): `--peers N` trains on N threads of this
//! process; `--nodes M --node-id K --orchestrator ws://HOST:PORT --node-address ws://HOST:PORT`
//! joins M processes (node 0 serves the orchestrator and writes the results).

use anyhow::{Context, Result, bail};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, ModuleDisplay};
use burn::optim::decay::WeightDecayConfig;
use clap::Parser;
use rensa_data::sine::{PREDICTION_STARTS, STEPS, WindowBatch, mse, series, windows};
use rensa_launch::peers::{PeersArgs, run_peers};
use rensa_launch::{Cell, Common, Device, Inner, Train};
use rensa_models::seq2seq::{Seq2Seq, Seq2SeqConfig};
use rensa_nn::recurrent::{GruConfig, LstmConfig, RecurrentCell, RecurrentConfig, RnnConfig};
use rensa_train::distributed::{Peer, Traffic};
use rensa_train::{Checkpoints, Fit, FitConfig, History, Items};
use std::path::{Path, PathBuf};

/// An encoder-decoder RNN learns to map sin(x) to cos(x): the encoder reads 24 steps of sin, its
/// final state starts the decoder, which produces the 24 steps of cos (teacher forcing).
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about = None)]
struct Args {
    /// Passes over the training windows.
    #[arg(long, default_value_t = 80)]
    epochs: usize,
    /// Windows per optimiser step.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Hidden units of the encoder and the decoder.
    #[arg(long, default_value_t = 10, value_parser = rensa_launch::at_least_one)]
    hidden: usize,
    /// Recurrent cell of the encoder and the decoder.
    #[arg(long, value_enum, default_value_t = Cell::Rnn)]
    cell: Cell,
    /// Adam's learning rate.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.001)]
    lr: f64,
    /// Clip each gradient to this L2 norm before the step (burn's gradient clipping; off by
    /// default).
    #[arg(long)]
    clip_norm: Option<f32>,
    /// Adam's weight decay (L2 penalty added to the gradients; off by default).
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Seed of the weights and of the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the results: history.csv/.json, loss.png, prediction.png and checkpoints/.
    #[arg(long, default_value = "runs/seq2seq")]
    out: PathBuf,
    /// Save a checkpoint (model, optimiser, history, settings) into `<out>/checkpoints` every
    /// this many epochs (and after the last one).
    #[arg(long, default_value_t = 10, value_parser = rensa_launch::at_least_one)]
    checkpoint_every: usize,
    /// Continue the run saved in `--out` up to `--epochs` (same settings, same seed: the same
    /// final weights as an uninterrupted run).
    #[arg(long, conflicts_with = "predict")]
    resume: bool,
    /// With --resume: go on even if the settings differ from those the run was saved with (the
    /// differences are noted in its history).
    #[arg(long, requires = "resume")]
    force: bool,
    /// Start afresh even if `--out` holds a checkpoint (the first save replaces it).
    #[arg(long, conflicts_with_all = ["resume", "predict"])]
    overwrite: bool,
    /// Do not train: load the model saved in `--out` and predict.
    #[arg(long)]
    predict: bool,
    #[command(flatten)]
    peers: PeersArgs,
    #[command(flatten)]
    common: Common,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.predict && (args.peers.peers > 1 || args.peers.nodes > 1) {
        bail!("--predict runs alone: drop --peers and --nodes");
    }
    rensa_launch::launch(&args.common, true, |device| match args.cell {
        Cell::Rnn => run::<RnnConfig>(&args, device),
        Cell::Lstm => run::<LstmConfig>(&args, device),
        Cell::Gru => run::<GruConfig>(&args, device),
    })
}

fn check(args: &Args, config: &FitConfig) -> Result<()> {
    config.check(windows().len()).context("bad settings")?;
    for (name, value) in [
        ("--clip-norm", args.clip_norm),
        ("--weight-decay", args.weight_decay),
    ] {
        if let Some(v) = value
            && !(v.is_finite() && v > 0.0)
        {
            bail!("{name} must be a finite number > 0, got {v}");
        }
    }
    Ok(())
}

fn run<K: RecurrentConfig>(args: &Args, device: &Device) -> Result<()>
where
    K::Cell<Train>: AutodiffModule<Train, InnerModule = K::Cell<Inner>> + ModuleDisplay,
    K::Cell<Inner>: ModuleDisplay,
{
    let config = FitConfig::for_epochs(args.epochs, args.batch_size)
        .with_validation_split(0.2)
        .with_learning_rate(args.lr)
        .with_seed(args.seed);
    check(args, &config)?;
    let model_config = Seq2SeqConfig::new(args.hidden);
    if args.predict {
        return predict::<K>(args, &model_config, device);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;

    let cluster = args.peers.cluster()?;
    <Train as burn::tensor::backend::Backend>::seed(device, args.seed);
    // made once and cloned for every peer: they start from the same weights
    let model = std::sync::Mutex::new(
        model_config
            .init::<Train, K>(device)?
            .with_differentiation(args.common.differentiation()),
    );
    // Keras's Adam: epsilon 1e-7 (burn's default is 1e-5). burn's Adam step, fused on ndarray.
    let adam = rensa_nn::optim::FusedAdamConfig::new()
        .with_epsilon(1e-7)
        .with_grad_clipping(args.clip_norm.map(GradientClippingConfig::Norm))
        .with_weight_decay(args.weight_decay.map(WeightDecayConfig::new));
    let items = windows();
    let data: Vec<u8> = items
        .iter()
        .flat_map(|w| w.encoder_input.iter().chain(&w.target))
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let checkpoints = Checkpoints::new(&args.out, args.checkpoint_every)
        .resuming(args.resume)
        .forcing(args.force)
        .overwriting(args.overwrite);
    let train = |peer: Option<Peer>| -> Result<_> {
        let leader = peer.as_ref().is_none_or(Peer::is_leader);
        let mut fit = Fit::new(config.clone())
            .settings([
                ("cell", format!("{:?}", args.cell)),
                ("hidden", args.hidden.to_string()),
                ("optimizer", "adam(epsilon 1e-7)".to_string()),
                ("clip_norm", format!("{:?}", args.clip_norm)),
                ("weight_decay", format!("{:?}", args.weight_decay)),
                ("data", rensa_train::fingerprint(&data)),
            ])
            .checkpoints(checkpoints.clone())
            .progress(leader && !args.common.quiet);
        if let Some(peer) = peer.clone() {
            fit = fit.distributed(peer);
        }
        let model = model.lock().expect("model").clone();
        let (model, history) = fit.run(
            model,
            &mut adam.init(),
            Items::new(&items, WindowBatch::new),
            device,
        )?;
        Ok((model, history, peer))
    };
    let (model, history, peer) = match &cluster {
        None => train(None)?,
        Some(cluster) => {
            let mut results = run_peers(cluster, &args.common, |peer| train(Some(peer)))?;
            let first = results.remove(0);
            if !first.2.as_ref().is_some_and(Peer::is_leader) {
                println!(
                    "node {}: trained {} epochs with the other peers; node 0 writes the results",
                    args.peers.node_id,
                    first.1.epochs.len()
                );
                return Ok(());
            }
            first
        }
    };
    if let Some(peer) = &peer {
        report_traffic(peer, &peer.traffic(), &history);
    }
    history.save(&args.out)?;

    let valid = model.valid();
    let errors = prediction_errors(&valid, device);
    plot(&args.out, &history, &valid, device)?;
    report(args, &history, &errors);
    Ok(())
}

/// The all-reduces' share of the training time and the bytes per step (read by `cargo xtask
/// bench distributed`).
fn report_traffic(peer: &Peer, traffic: &Traffic, history: &History) {
    let seconds = history.seconds();
    let items: usize = history.epochs.iter().map(|e| e.items).sum();
    println!(
        "data-parallel: {} peers, {} steps, {:.0} samples/s, all-reduce {:.1}% of the training time \
         ({:.3} ms per step), {} bytes per step from each peer",
        peer.world(),
        traffic.steps,
        items as f64 / seconds,
        100.0 * traffic.step_seconds / seconds,
        1e3 * traffic.step_seconds / traffic.steps.max(1) as f64,
        traffic.step_bytes / traffic.steps.max(1),
    );
}

fn report(args: &Args, history: &History, errors: &[f64]) {
    let last = history.last().expect("at least one epoch");
    let secs = history.seconds();
    println!(
        "seq2seq sin -> cos: cell {:?}, hidden {}, {} epochs, batch {}, lr {}, seed {}",
        args.cell,
        args.hidden,
        history.epochs.len(),
        args.batch_size,
        args.lr,
        args.seed
    );
    println!(
        "| train time | per epoch | loss | val_loss | autoregressive MSE from {:?} | mean |",
        PREDICTION_STARTS
    );
    println!("| ---: | ---: | ---: | ---: | --- | ---: |");
    println!(
        "| {secs:.2} s | {:.1} ms | {:.5} | {:.5} | {} | {:.5} |",
        1e3 * secs / history.epochs.len() as f64,
        last.loss,
        last.val_loss.unwrap_or(f64::NAN),
        list(errors),
        mean(errors)
    );
    println!(
        "history: {}; pictures: {}, {}",
        args.out.join("history.csv").display(),
        args.out.join("loss.png").display(),
        args.out.join("prediction.png").display()
    );
}

fn list(values: &[f64]) -> String {
    values
        .iter()
        .map(|e| format!("{e:.5}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Autoregressive MSE from each of the exercise's start points.
fn prediction_errors<C: RecurrentCell<Inner>>(
    model: &Seq2Seq<Inner, C>,
    device: &Device,
) -> Vec<f64> {
    let (_, sin, cos) = series();
    PREDICTION_STARTS
        .iter()
        .map(|&i| {
            mse(
                &model.predict(&sin[i..i + STEPS], STEPS, device),
                &cos[i..i + STEPS],
            )
        })
        .collect()
}

/// `loss.png` (loss and val_loss per epoch) and `prediction.png` (the autoregressive predictions
/// from each start point against cos x) in `out`.
fn plot<C: RecurrentCell<Inner>>(
    out: &Path,
    history: &History,
    model: &Seq2Seq<Inner, C>,
    device: &Device,
) -> Result<()> {
    use rensa_train::plot::{Series, line_chart};
    rensa_train::plot::history(
        &out.join("loss.png"),
        "seq2seq sin -> cos: training",
        history,
    )?;
    let (x, sin, cos) = series();
    let mut lines = vec![Series::new(
        "cos x (target)",
        x.iter()
            .copied()
            .zip(cos.iter().map(|&v| v as f64))
            .collect(),
    )];
    for &i in &PREDICTION_STARTS {
        let predicted = model.predict(&sin[i..i + STEPS], STEPS, device);
        lines.push(Series::new(
            format!("predicted from step {i}"),
            x[i..i + STEPS]
                .iter()
                .copied()
                .zip(predicted.iter().map(|&v| v as f64))
                .collect(),
        ));
    }
    line_chart(
        &out.join("prediction.png"),
        "autoregressive predictions",
        "x",
        "cos x",
        &lines,
        false,
    )?;
    Ok(())
}

/// `--predict`: the model of the newest checkpoint in `<out>/checkpoints`, without training.
fn predict<K: RecurrentConfig>(args: &Args, config: &Seq2SeqConfig, device: &Device) -> Result<()>
where
    K::Cell<Inner>: ModuleDisplay,
{
    let saved = rensa_launch::trained::latest(&args.out)?;
    let path = saved.returned_model_file().with_extension("");
    let model = rensa_train::load_model(config.init::<Inner, K>(device)?, &path, device)
        .with_context(|| {
            format!(
                "cannot load {} (was it saved with the same --cell and --hidden?)",
                path.with_extension("bin").display()
            )
        })?;
    let errors = prediction_errors(&model, device);
    println!(
        "model: {} (cell {:?}, hidden {})",
        path.with_extension("bin").display(),
        args.cell,
        model.encoder.hidden_size() // as saved
    );
    println!("| autoregressive MSE from {:?} | mean |", PREDICTION_STARTS);
    println!("| --- | ---: |");
    println!("| {} | {:.5} |", list(&errors), mean(&errors));
    Ok(())
}

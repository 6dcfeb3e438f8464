//! `cargo run --release -p seq2seq [--features wgpu] -- [--epochs 80] [--cell rnn|lstm|gru] ...`

use anyhow::{Context, Result, bail};
use burn::backend::Autodiff;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, Module};
use burn::optim::AdamConfig;
use burn::optim::decay::WeightDecayConfig;
use clap::{Parser, ValueEnum};
use rensa_nn::recurrent::{GruCell, LstmCell, RecurrentBackend, RnnCell};
use rensa_train::{Checkpoints, FitConfig, fit_with};
use seq2seq::{BuildSeq2Seq, PREDICTION_STARTS, STEPS, Seq2Seq, mse, series, windows};
use std::path::PathBuf;

/// A caching allocator: see the workspace manifest (glibc maps and unmaps every large tensor).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "wgpu")]
type Inner = burn::backend::Wgpu;
#[cfg(not(feature = "wgpu"))]
type Inner = burn::backend::NdArray;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Cell {
    Rnn,
    Lstm,
    Gru,
}

/// The course's seq2seq exercise: an encoder-decoder RNN learns to map sin(x) to cos(x).
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
    #[arg(long, default_value_t = 10)]
    hidden: usize,
    /// Recurrent cell of the encoder and the decoder.
    #[arg(long, value_enum, default_value_t = Cell::Rnn)]
    cell: Cell,
    /// Adam's learning rate.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.001)]
    lr: f64,
    /// Clip each gradient to this L2 norm before the step (burn's gradient clipping; off by
    /// default, as in the course).
    #[arg(long)]
    clip_norm: Option<f32>,
    /// Adam's weight decay (L2 penalty added to the gradients; off by default).
    #[arg(long)]
    weight_decay: Option<f32>,
    /// Threads of the CPU backend's pool (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Differentiate the recurrence step by step with burn's autodiff instead of rensa's
    /// hand-written backward pass for the whole sequence (same gradients, slower; for teaching
    /// and checking).
    #[arg(long)]
    plain_autodiff: bool,
    /// Seed of the weights and of the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the results: history.csv/.json, loss.png, prediction.png and checkpoint/.
    #[arg(long, default_value = "runs/seq2seq")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Save a checkpoint (model, optimiser, history) into `<out>/checkpoint` every this many epochs
    /// (and after the last one).
    #[arg(long, default_value_t = 10)]
    checkpoint_every: usize,
    /// Continue the run saved in `--out` up to `--epochs` (same settings, same seed: the same
    /// final weights as an uninterrupted run).
    #[arg(long, conflicts_with = "predict")]
    resume: bool,
    /// Do not train: load the model saved in `--out` and predict.
    #[arg(long)]
    predict: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = Default::default();
    println!("backend: {}", describe_backend(&device));
    // Inside the pool, the CPU backend's small operations run without a thread hand-off each.
    rensa_train::in_thread_pool(args.threads, || train_or_predict(&args, &device))
        .context("--threads")?
}

fn train_or_predict(args: &Args, device: &burn::tensor::Device<Inner>) -> Result<()> {
    rensa_nn::recurrent::set_fused_autodiff(!args.plain_autodiff);
    match args.cell {
        Cell::Rnn => run::<Autodiff<Inner>, RnnCell<Autodiff<Inner>>>(args, device),
        Cell::Lstm => run::<Autodiff<Inner>, LstmCell<Autodiff<Inner>>>(args, device),
        Cell::Gru => run::<Autodiff<Inner>, GruCell<Autodiff<Inner>>>(args, device),
    }
}

fn run<B, C>(args: &Args, device: &B::Device) -> Result<()>
where
    B: burn::tensor::backend::AutodiffBackend + RecurrentBackend,
    B::InnerBackend: RecurrentBackend,
    C: BuildSeq2Seq<B> + burn::module::AutodiffModule<B> + burn::module::ModuleDisplay,
    C::InnerModule:
        rensa_nn::recurrent::RecurrentCell<B::InnerBackend> + burn::module::ModuleDisplay,
{
    if args.hidden == 0 {
        bail!("--hidden must be at least 1, got 0");
    }
    let items = windows();
    let config = FitConfig::new()
        .with_epochs(args.epochs)
        .with_batch_size(args.batch_size)
        .with_validation_split(0.2)
        .with_learning_rate(args.lr)
        .with_seed(args.seed);
    config.check(items.len()).context("bad settings")?;
    if args.checkpoint_every == 0 {
        bail!("--checkpoint-every must be at least 1, got 0");
    }
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
    if args.predict {
        return predict::<B, C>(args, device);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;

    <B as burn::tensor::backend::Backend>::seed(device, args.seed);
    let model = Seq2Seq::<B, C>::new(args.hidden, device)?;
    // Keras's Adam: epsilon 1e-7 (burn's default is 1e-5).
    let mut optimizer = AdamConfig::new()
        .with_epsilon(1e-7)
        .with_grad_clipping(args.clip_norm.map(GradientClippingConfig::Norm))
        .with_weight_decay(args.weight_decay.map(WeightDecayConfig::new))
        .init();

    let bar = rensa_train::progress::bar(args.epochs as u64, "epoch", args.quiet);
    let checkpoints = Checkpoints::new(&args.out, args.checkpoint_every).resuming(args.resume);
    let (model, history) = fit_with(
        &config,
        Some(&checkpoints),
        model,
        &mut optimizer,
        &items,
        device,
        |e| {
            bar.set_message(format!(
                "loss {:.5} val_loss {:.5} ({:.0} windows/s)",
                e.loss,
                e.val_loss.unwrap_or(f64::NAN),
                e.items_per_second()
            ));
            bar.inc(1);
        },
    )?;
    bar.finish_and_clear();
    history.save(&args.out)?;

    let valid = model.valid();
    let errors = prediction_errors(&valid, device);
    plot(&args.out, &history, &valid, device)?;
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
        errors
            .iter()
            .map(|e| format!("{e:.5}"))
            .collect::<Vec<_>>()
            .join(", "),
        errors.iter().sum::<f64>() / errors.len() as f64
    );
    println!(
        "history: {}; pictures: {}, {}",
        args.out.join("history.csv").display(),
        args.out.join("loss.png").display(),
        args.out.join("prediction.png").display()
    );
    Ok(())
}

/// Autoregressive MSE from each of the course's start points.
fn prediction_errors<B: RecurrentBackend, C: rensa_nn::recurrent::RecurrentCell<B>>(
    model: &Seq2Seq<B, C>,
    device: &B::Device,
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
fn plot<B: RecurrentBackend, C: rensa_nn::recurrent::RecurrentCell<B>>(
    out: &std::path::Path,
    history: &rensa_train::History,
    model: &Seq2Seq<B, C>,
    device: &B::Device,
) -> Result<()> {
    use rensa_train::plot::{Series, line_chart};
    let epochs = |f: fn(&rensa_train::EpochRecord) -> Option<f64>| -> Vec<(f64, f64)> {
        history
            .epochs
            .iter()
            .filter_map(|e| f(e).map(|v| (e.epoch as f64, v)))
            .collect()
    };
    line_chart(
        &out.join("loss.png"),
        "seq2seq sin -> cos: training",
        "epoch",
        "MSE (log scale)",
        &[
            Series::new("loss", epochs(|e| Some(e.loss))),
            Series::new("val_loss", epochs(|e| e.val_loss)),
        ],
        true,
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

/// `--predict`: the model saved in `<out>/checkpoint`, without training.
fn predict<B, C>(args: &Args, device: &B::Device) -> Result<()>
where
    B: burn::tensor::backend::AutodiffBackend + RecurrentBackend,
    B::InnerBackend: RecurrentBackend,
    C: BuildSeq2Seq<B> + AutodiffModule<B> + burn::module::ModuleDisplay,
    C::InnerModule:
        rensa_nn::recurrent::RecurrentCell<B::InnerBackend> + burn::module::ModuleDisplay,
{
    let path = args.out.join("checkpoint").join("model");
    if !path.with_extension("bin").exists() {
        bail!(
            "no saved model at {}: train first (same --out)",
            path.with_extension("bin").display()
        );
    }
    let recorder = burn::record::BinFileRecorder::<burn::record::FullPrecisionSettings>::new();
    let model = Seq2Seq::<B, C>::new(args.hidden, device)?
        .load_file(&path, &recorder, device)
        .with_context(|| {
            format!(
                "cannot load {} (was it saved with the same --cell and --hidden?)",
                path.with_extension("bin").display()
            )
        })?;
    let errors = prediction_errors(&model.valid(), device);
    println!(
        "model: {} (cell {:?}, hidden {})",
        path.with_extension("bin").display(),
        args.cell,
        model.encoder.hidden_size() // as saved
    );
    println!("| autoregressive MSE from {:?} | mean |", PREDICTION_STARTS);
    println!("| --- | ---: |");
    println!(
        "| {} | {:.5} |",
        errors
            .iter()
            .map(|e| format!("{e:.5}"))
            .collect::<Vec<_>>()
            .join(", "),
        errors.iter().sum::<f64>() / errors.len() as f64
    );
    Ok(())
}

/// The backend in words; for wgpu, the adapter it picked (a software adapter is said so).
fn describe_backend(device: &burn::tensor::Device<Inner>) -> String {
    #[cfg(feature = "wgpu")]
    {
        rensa_nn::describe_wgpu_adapter(device)
    }
    #[cfg(not(feature = "wgpu"))]
    {
        let _ = device;
        "ndarray (CPU)".to_string()
    }
}

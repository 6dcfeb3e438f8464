//! `cargo run --release -p binary-addition [--features wgpu] -- [--trainer bptt|autodiff] ...`
//!
//! The binary-addition RNN ([`rensa_models::binary_addition`]) on random operand pairs
//! ([`rensa_data::addition`]), trained in rensa-train's loop by the hand-written backward pass or
//! by autodiff; this file is the command line, the printing and the loss curve.

use anyhow::{Context, Result, bail};
use burn::optim::SgdConfig;
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use clap::{Parser, ValueEnum};
use rensa_data::addition::{ALL_PAIRS, BITS, Batch, PairSampler, all_pairs, from_bits_lsb_first};
use rensa_launch::{Common, Device, Inner, Train};
use rensa_models::binary_addition::{
    Adder, EXACT, HandTrained, InitScheme, OutputDerivative, Pairs, Weights, accuracy_all_pairs,
};
use rensa_nn::activation::Activation;
use rensa_train::plot::{Series, line_chart};
use rensa_train::{Fit, FitConfig, History, Loaders};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Trainer {
    /// Backpropagation through time written out with tensor ops.
    Bptt,
    /// burn's autodiff on the same network built from rensa's layers, with burn's SGD.
    Autodiff,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Init {
    /// randn (weight_init_std = 1).
    Normal,
    /// randn / sqrt(fan_in) (the exercise's "Xavier", LeCun normal).
    Xavier,
    /// randn * sqrt(2) / sqrt(fan_in) (He).
    He,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Act {
    Sigmoid,
    Tanh,
    Relu,
}

/// An RNN that learns 8-bit binary addition (a, b < 128), bit by bit, least significant first,
/// trained by hand-written backpropagation through time or by autodiff.
///
/// Writes loss.csv and loss.png (the loss every --plot-interval iterations) to --out and prints
/// the exact-match accuracy over all 16,384 pairs.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Args {
    /// How the gradients are computed.
    #[arg(long, value_enum, default_value_t = Trainer::Bptt)]
    trainer: Trainer,
    /// How the weights are drawn.
    #[arg(long, value_enum, default_value_t = Init::Normal)]
    init: Init,
    /// Activation of the hidden layer (the output is always a sigmoid).
    #[arg(long, value_enum, default_value_t = Act::Sigmoid)]
    activation: Act,
    /// Learning rate of plain gradient descent.
    #[arg(long, allow_negative_numbers = true, default_value_t = 0.1)]
    lr: f64,
    /// Optimiser steps.
    #[arg(long, default_value_t = 10_000, value_parser = rensa_launch::at_least_one)]
    iters: usize,
    /// Pairs per step (the exercise: 1). The loss is averaged over the batch, so a larger batch
    /// usually wants a larger --lr.
    #[arg(long, default_value_t = 1, value_parser = rensa_launch::at_least_one)]
    batch: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 16, value_parser = rensa_launch::at_least_one)]
    hidden: usize,
    /// Seed of the weights and of the pairs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Reproduce the exercise's slip: d_sigmoid applied to the already-activated output
    /// (--trainer bptt only).
    #[arg(long)]
    course_derivative: bool,
    /// Check all 16,384 pairs every --eval-every steps and stop as soon as every sum is exact.
    #[arg(long)]
    until_exact: bool,
    /// Steps between the checks of --until-exact.
    #[arg(long, default_value_t = 250, value_parser = rensa_launch::at_least_one)]
    eval_every: usize,
    /// Steps per point of the loss curve (plot_interval); each point is the mean loss over
    /// those steps.
    #[arg(long, default_value_t = 100, value_parser = rensa_launch::at_least_one)]
    plot_interval: usize,
    /// Folder for loss.csv and loss.png.
    #[arg(long, default_value = "runs/binary-addition")]
    out: PathBuf,
    /// Print one JSON line with the results (for scripts and `cargo xtask bench`); implies
    /// --quiet.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    common: Common,
}

impl Args {
    fn check(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be a finite number > 0, got {}", self.lr);
        }
        if self.course_derivative && self.trainer == Trainer::Autodiff {
            bail!(
                "--course-derivative reproduces a slip of the hand-written backward pass; autodiff always differentiates correctly (use --trainer bptt)"
            );
        }
        Ok(())
    }

    fn activation(&self) -> Activation {
        match self.activation {
            Act::Sigmoid => Activation::Sigmoid,
            Act::Tanh => Activation::Tanh,
            Act::Relu => Activation::Relu,
        }
    }

    fn init(&self) -> InitScheme {
        match self.init {
            Init::Normal => InitScheme::Normal,
            Init::Xavier => InitScheme::Xavier,
            Init::He => InitScheme::He,
        }
    }
}

/// What a training run ends with: the trained weights and what was measured.
struct Trained {
    weights: Weights<Inner>,
    steps: usize,
    train_seconds: f64,
    /// (step, mean loss over the preceding interval)
    curve: Vec<(usize, f64)>,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    args.check()?;
    args.common.quiet |= args.json;
    rensa_launch::launch(&args.common.clone(), !args.json, |device| {
        run(&args, device)
    })
}

fn run(args: &Args, device: &Device) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;

    Inner::seed(device, args.seed);
    let weights = Weights::<Inner>::init(args.hidden, args.init(), device);
    let run = train(args, weights, device)?;
    let accuracy = accuracy_all_pairs(&run.weights, args.activation(), device);

    write_curve(args, &run.curve)?;
    let final_loss = run.curve.last().map_or(f64::NAN, |p| p.1);
    if args.json {
        println!(
            "{{\"backend\": {:?}, \"trainer\": \"{:?}\", \"batch\": {}, \"steps\": {}, \"train_s\": {:.4}, \"final_loss\": {:.6}, \"exact_all_pairs\": {:.6}, \"wrong_bits\": {}}}",
            rensa_launch::describe_backend(device),
            args.trainer,
            args.batch,
            run.steps,
            run.train_seconds,
            final_loss,
            accuracy.exact_share(),
            accuracy.wrong_bits,
        );
        return Ok(());
    }
    show_examples(args, &run.weights, device);
    println!();
    println!("trainer             {:?}", args.trainer);
    println!(
        "steps               {} of {} pair(s)",
        run.steps, args.batch
    );
    println!(
        "training time       {:.3} s ({:.0} steps/s)",
        run.train_seconds,
        run.steps as f64 / run.train_seconds
    );
    println!(
        "loss (last {:>4})    {final_loss:.5}",
        args.plot_interval.min(run.steps)
    );
    println!(
        "exact sums          {} of {ALL_PAIRS} ({:.2}%), {} wrong bits",
        accuracy.exact,
        100.0 * accuracy.exact_share(),
        accuracy.wrong_bits
    );
    println!(
        "wrote               {}/loss.csv, {}/loss.png",
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

/// Trains with either trainer in rensa-train's loop. An epoch is `--plot-interval` steps (or
/// `--eval-every` with `--until-exact`, whose check of all 16,384 pairs is the epoch's
/// validation); every step draws `--batch` fresh pairs from one seeded sampler.
fn train(args: &Args, weights: Weights<Inner>, device: &Device) -> Result<Trained> {
    let epoch_steps = if args.until_exact {
        args.eval_every
    } else {
        args.plot_interval
    };
    let config = FitConfig::new()
        .with_epochs(args.iters.div_ceil(epoch_steps))
        .with_learning_rate(args.lr)
        .with_seed(args.seed);
    let mut sampler = PairSampler::new(args.seed);
    let (iters, batch) = (args.iters, args.batch);
    let everything = all_pairs();
    let data = Loaders::new(
        move |epoch: usize| {
            let steps = epoch_steps.min(iters - (epoch - 1) * epoch_steps);
            (0..steps)
                .map(|_| sampler.pairs(batch))
                .collect::<Vec<Pairs>>()
        },
        || args.until_exact.then(|| everything.clone()),
    );
    let fit = Fit::new(config)
        .progress(!args.common.quiet)
        .stop_when(|e| e.metrics.get(&format!("val_{EXACT}")) == Some(&1.0));
    let (weights, history) = match args.trainer {
        Trainer::Bptt => {
            let derivative = if args.course_derivative {
                OutputDerivative::Course
            } else {
                OutputDerivative::Correct
            };
            let model = HandTrained::new(weights, args.activation(), derivative);
            let (model, history) = fit.run_manual(model, data, device)?;
            (model.weights(), history)
        }
        Trainer::Autodiff => {
            let weights = Weights::<Train> {
                w_in: Tensor::from_inner(weights.w_in),
                w: Tensor::from_inner(weights.w),
                w_out: Tensor::from_inner(weights.w_out),
            };
            let model = Adder::<Train>::new(weights, args.activation())?
                .with_differentiation(args.common.differentiation());
            let mut optimizer = SgdConfig::new().init::<Train, Adder<Train>>();
            let (model, history) = fit.run(model, &mut optimizer, data, device)?;
            let w = model.weights();
            let weights = Weights {
                w_in: w.w_in.inner(),
                w: w.w.inner(),
                w_out: w.w_out.inner(),
            };
            (weights, history)
        }
    };
    Ok(Trained {
        weights,
        steps: history.step_losses.len(),
        train_seconds: history.seconds(),
        curve: curve(&history, args.plot_interval),
    })
}

/// The loss curve: the mean step loss over every `interval` steps (the last point over what is
/// left), at the step that ends it.
fn curve(history: &History, interval: usize) -> Vec<(usize, f64)> {
    let mut step = 0;
    history
        .step_losses
        .chunks(interval)
        .map(|chunk| {
            step += chunk.len();
            (step, chunk.iter().sum::<f64>() / chunk.len() as f64)
        })
        .collect()
}

/// Prints a few additions with the predicted and true bits.
fn show_examples(args: &Args, weights: &Weights<Inner>, device: &Device) {
    let pairs = PairSampler::new(args.seed ^ 0x5eed).pairs(4);
    let batch = Batch::<Inner>::new(&pairs, device);
    let y: Vec<f32> = weights
        .forward(batch.inputs, args.activation())
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32 predictions");
    for (&(a, b), bits) in pairs.iter().zip(y.chunks(BITS)) {
        let sum = from_bits_lsb_first(bits);
        let mark = if sum == a + b { "ok" } else { "WRONG" };
        println!(
            "{a:>3} + {b:>3} = {sum:>3}   pred {:08b}  true {:08b}  {mark}",
            sum,
            a + b
        );
    }
}

fn write_curve(args: &Args, curve: &[(usize, f64)]) -> Result<()> {
    let mut csv = String::from("step,loss\n");
    for (step, loss) in curve {
        csv.push_str(&format!("{step},{loss}\n"));
    }
    let path = args.out.join("loss.csv");
    rensa_train::write_atomic(&path, csv.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    let points: Vec<(f64, f64)> = curve.iter().map(|&(s, l)| (s as f64, l)).collect();
    let trainer = match args.trainer {
        Trainer::Bptt => "hand-written BPTT",
        Trainer::Autodiff => "autodiff",
    };
    let title = format!(
        "binary addition: {trainer}, batch {}, lr {}",
        args.batch, args.lr
    );
    let path = args.out.join("loss.png");
    line_chart(
        &path,
        &title,
        "step",
        "loss",
        &[Series::new("loss", points)],
        true,
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

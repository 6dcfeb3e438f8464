//! `cargo run --release -p binary-addition [--features wgpu] -- [--trainer bptt|autodiff] ...`

use anyhow::{Context, Result, bail};
use binary_addition::{
    ALL_PAIRS, Adder, BITS, Batch, InitScheme, OutputDerivative, PairSampler, Weights,
    accuracy_all_pairs, bptt, from_bits_lsb_first, scalar,
};
use burn::backend::Autodiff;
use burn::optim::{GradientsParams, Optimizer, SgdConfig};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use clap::{Parser, ValueEnum};
use rensa_nn::activation::Activation;
use rensa_train::plot::{Series, line_chart};
use std::path::PathBuf;
use std::time::Instant;

/// A caching allocator: see the workspace manifest (glibc maps and unmaps every large tensor).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "wgpu")]
type Inner = burn::backend::Wgpu;
#[cfg(not(feature = "wgpu"))]
type Inner = burn::backend::NdArray;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Trainer {
    /// The course's backpropagation through time, written out with tensor ops.
    Bptt,
    /// burn's autodiff on the same network built from rensa's layers, with burn's SGD.
    Autodiff,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Init {
    /// randn (the course's weight_init_std = 1).
    Normal,
    /// randn / sqrt(fan_in) (the course's "Xavier").
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

/// The course's RNN that learns 8-bit binary addition (a, b < 128), bit by bit, least
/// significant first, trained by hand-written backpropagation through time or by autodiff.
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
    #[arg(long, default_value_t = 10_000)]
    iters: usize,
    /// Pairs per step (the course: 1). The loss is averaged over the batch, so a larger batch
    /// usually wants a larger --lr.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Hidden units.
    #[arg(long, default_value_t = 16)]
    hidden: usize,
    /// Seed of the weights and of the pairs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Reproduce the course's slip: d_sigmoid applied to the already-activated output
    /// (--trainer bptt only).
    #[arg(long)]
    course_derivative: bool,
    /// Check all 16,384 pairs every --eval-every steps and stop as soon as every sum is exact.
    #[arg(long)]
    until_exact: bool,
    /// Steps between the checks of --until-exact.
    #[arg(long, default_value_t = 250)]
    eval_every: usize,
    /// Steps per point of the loss curve (the course's plot_interval); each point is the mean
    /// loss over those steps.
    #[arg(long, default_value_t = 100)]
    plot_interval: usize,
    /// Folder for loss.csv and loss.png.
    #[arg(long, default_value = "runs/binary-addition")]
    out: PathBuf,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
    /// Threads of the CPU backend's pool (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Differentiate the recurrence step by step with burn's autodiff instead of rensa's
    /// hand-written backward pass for the whole sequence (same gradients, slower; for teaching
    /// and checking).
    #[arg(long)]
    plain_autodiff: bool,
    /// Print one JSON line with the results (for scripts and `cargo xtask bench`).
    #[arg(long)]
    json: bool,
}

impl Args {
    fn check(&self) -> Result<()> {
        if !(self.lr.is_finite() && self.lr > 0.0) {
            bail!("--lr must be a finite number > 0, got {}", self.lr);
        }
        for (name, value) in [
            ("--iters", self.iters),
            ("--batch", self.batch),
            ("--hidden", self.hidden),
            ("--eval-every", self.eval_every),
            ("--plot-interval", self.plot_interval),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1, got 0");
            }
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

/// What a training run ends with: the trained state (weights or model) and what was measured.
struct Trained<S> {
    state: S,
    steps: usize,
    train_seconds: f64,
    /// (step, mean loss over the preceding interval)
    curve: Vec<(usize, f64)>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    args.check()?;
    // Inside the pool, the CPU backend's small operations run without a thread hand-off each.
    rensa_train::in_thread_pool(args.threads, || run(&args)).context("--threads")?
}

fn run(args: &Args) -> Result<()> {
    rensa_nn::recurrent::set_fused_autodiff(!args.plain_autodiff);
    let device = Default::default();
    if !args.json {
        println!("backend: {}", describe_backend(&device));
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create the output folder {}", args.out.display()))?;

    <Inner as Backend>::seed(&device, args.seed);
    let weights = Weights::<Inner>::init(args.hidden, args.init(), &device);
    let run = match args.trainer {
        Trainer::Bptt => train_bptt(args, weights, &device)?,
        Trainer::Autodiff => train_autodiff(args, weights, &device)?,
    };
    let accuracy = accuracy_all_pairs(&run.state, args.activation(), &device);

    write_curve(args, &run.curve)?;
    let final_loss = run.curve.last().map_or(f64::NAN, |p| p.1);
    if args.json {
        println!(
            "{{\"backend\": {:?}, \"trainer\": \"{:?}\", \"batch\": {}, \"steps\": {}, \"train_s\": {:.4}, \"final_loss\": {:.6}, \"exact_all_pairs\": {:.6}, \"wrong_bits\": {}}}",
            describe_backend(&device),
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
    show_examples(args, &run.state, &device);
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

/// The training loop both trainers share: draws the pairs, keeps the loss curve, checks for a
/// non-finite loss and (with --until-exact) for a perfect adder. `step` takes one optimiser
/// step on a batch and returns its loss.
fn train<B: Backend, S>(
    args: &Args,
    device: &B::Device,
    mut state: S,
    weights: impl Fn(&S) -> Weights<B>,
    mut step: impl FnMut(S, &Batch<B>) -> (S, Tensor<B, 1>),
) -> Result<Trained<S>> {
    let mut sampler = PairSampler::new(args.seed);
    let bar = rensa_train::progress::bar(args.iters as u64, "step", args.quiet || args.json);
    let mut curve = Vec::new();
    let mut interval_loss: Option<Tensor<B, 1>> = None;
    let mut in_interval = 0;
    let start = Instant::now();
    let mut steps = 0;
    while steps < args.iters {
        let batch = Batch::<B>::new(&sampler.pairs(args.batch), device);
        let (next, loss) = step(state, &batch);
        state = next;
        steps += 1;
        in_interval += 1;
        interval_loss = Some(match interval_loss {
            Some(sum) => sum + loss,
            None => loss,
        });
        if in_interval == args.plot_interval || steps == args.iters {
            let mean =
                scalar(interval_loss.take().expect("at least one step")) / in_interval as f64;
            if !mean.is_finite() {
                bail!(
                    "the loss became {mean} by step {steps}; try a smaller --lr (now {}) or another --init",
                    args.lr
                );
            }
            curve.push((steps, mean));
            bar.set_message(format!(
                "loss {mean:.4}, {:.0} steps/s",
                steps as f64 / start.elapsed().as_secs_f64()
            ));
            in_interval = 0;
        }
        bar.inc(1);
        if args.until_exact && steps % args.eval_every == 0 {
            let accuracy = accuracy_all_pairs(&weights(&state), args.activation(), device);
            if accuracy.exact == ALL_PAIRS {
                if in_interval > 0 {
                    let mean = scalar(interval_loss.take().expect("steps in interval"))
                        / in_interval as f64;
                    curve.push((steps, mean));
                }
                break;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    bar.finish_and_clear();
    Ok(Trained {
        state,
        steps,
        train_seconds: seconds,
        curve,
    })
}

fn train_bptt(
    args: &Args,
    weights: Weights<Inner>,
    device: &burn::tensor::Device<Inner>,
) -> Result<Trained<Weights<Inner>>> {
    let activation = args.activation();
    let derivative = if args.course_derivative {
        OutputDerivative::Course
    } else {
        OutputDerivative::Correct
    };
    train(
        args,
        device,
        weights,
        |w| w.clone(),
        |w, batch| {
            let pass = bptt(&w, batch, activation, derivative);
            (w.sgd_step(pass.grads, args.lr), pass.loss)
        },
    )
}

fn train_autodiff(
    args: &Args,
    weights: Weights<Inner>,
    device: &burn::tensor::Device<Inner>,
) -> Result<Trained<Weights<Inner>>> {
    type B = Autodiff<Inner>;
    let weights = Weights::<B> {
        w_in: Tensor::from_inner(weights.w_in),
        w: Tensor::from_inner(weights.w),
        w_out: Tensor::from_inner(weights.w_out),
    };
    let model = Adder::<B>::new(weights, args.activation())?;
    let mut optimizer = SgdConfig::new().init::<B, Adder<B>>();
    let trained = train::<B, _>(
        args,
        device,
        model,
        |m| m.weights(),
        |model, batch| {
            let loss = model.loss(batch);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            let model = optimizer.step(args.lr, model, grads);
            (model, loss)
        },
    )?;
    let w = trained.state.weights();
    Ok(Trained {
        state: Weights {
            w_in: w.w_in.inner(),
            w: w.w.inner(),
            w_out: w.w_out.inner(),
        },
        steps: trained.steps,
        train_seconds: trained.train_seconds,
        curve: trained.curve,
    })
}

/// Prints a few additions the way the course does.
fn show_examples(args: &Args, weights: &Weights<Inner>, device: &burn::tensor::Device<Inner>) {
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

/// The backend in words; for wgpu, the adapter it picked.
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

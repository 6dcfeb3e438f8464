//! `cargo run --release -p vq-vae [--features wgpu] -- [--quantizer ema|plain] [--codes 512] ...`
//!
//! A VQ-VAE ([`rensa_models::vqvae`]) on Fashion-MNIST (fetched once from Debian's
//! `dataset-fashion-mnist`, see [`rensa_data::fetch`]) or any folder of MNIST-style IDX files
//! (`--data DIR`), then a GRU prior over the code grids of the training images, whose samples
//! the decoder turns into new images. Writes the test reconstruction error, the codebook's usage
//! and perplexity, the prior's test negative log-likelihood in bits per code, loss curves and
//! pictures: reconstructions beside their originals, the codebook-usage histogram and samples.

use anyhow::{Result, bail};
use burn::module::AutodiffModule;
use burn::tensor::{Int, Tensor, backend::Backend};
use clap::Parser;
use rensa_data::idx::{ImageBatch, Labelled, Split};
use rensa_launch::images::{
    ImageData, Resume, Run, data_setting, median, reconstruction_grid, rows_of,
};
use rensa_launch::{Common, Device, Inner, Train};
use rensa_models::vqvae::{CodeBatch, CodePrior, CodePriorConfig, VqVae, VqVaeConfig};
use rensa_nn::latent::{CodeUsage, VectorQuantizerConfig};
use rensa_train::History;
use std::path::PathBuf;

/// A VQ-VAE encodes an image into a grid of entries of a learned codebook and decodes it back;
/// a recurrent prior over the code grids then samples new images.
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    data: ImageData,
    /// The quantiser: `ema` (the codebook follows moving averages of the encoder outputs, dead
    /// codes are re-seeded) or `plain` (the codebook learns by the gradient of its loss, no
    /// re-seeding).
    #[arg(long, default_value = "ema", value_parser = ["ema", "plain"])]
    quantizer: String,
    /// Codes in the codebook, K.
    #[arg(long, default_value_t = 512, value_parser = rensa_launch::at_least_one)]
    codes: usize,
    /// Size of a code, D.
    #[arg(long, default_value_t = 64, value_parser = rensa_launch::at_least_one)]
    dim: usize,
    /// Channels of the encoder's and decoder's hidden layers.
    #[arg(long, default_value_t = 64, value_parser = rensa_launch::at_least_one)]
    hidden: usize,
    /// β, the weight of the commitment loss.
    #[arg(long, default_value_t = 0.25)]
    commitment: f64,
    /// γ, the decay of the EMA codebook (with `--quantizer ema`).
    #[arg(long, default_value_t = 0.99)]
    decay: f64,
    /// With `--quantizer ema`: re-seed a code from an encoder output when its running usage
    /// (encoder outputs assigned to it per batch, moving average) falls below this; 0: never.
    #[arg(long, default_value_t = 0.01)]
    reseed_below: f64,
    /// Passes over the training images.
    #[arg(long, default_value_t = 10, value_parser = rensa_launch::at_least_one)]
    epochs: usize,
    /// Images per optimiser step.
    #[arg(long, default_value_t = 128, value_parser = rensa_launch::at_least_one)]
    batch_size: usize,
    /// Adam's learning rate (for the VQ-VAE and the prior).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Passes of the code prior over the training images' code grids (0: no prior, no samples).
    #[arg(long, default_value_t = 10)]
    prior_epochs: usize,
    /// Hidden units of the prior's GRU.
    #[arg(long, default_value_t = 256, value_parser = rensa_launch::at_least_one)]
    prior_hidden: usize,
    /// Seed of the weights, the shuffling, the re-seeding and the samples.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the results: results.json, history.csv/.json, loss.png, the pictures,
    /// checkpoints/ and prior/ (the prior's history and checkpoints).
    #[arg(long, default_value = "runs/vq-vae")]
    out: PathBuf,
    #[command(flatten)]
    resume: Resume,
    #[command(flatten)]
    common: Common,
}

fn main() -> Result<()> {
    let args = Args::parse();
    for (flag, v, ok) in [
        ("--lr", args.lr, args.lr.is_finite() && args.lr > 0.0),
        (
            "--commitment",
            args.commitment,
            args.commitment.is_finite() && args.commitment >= 0.0,
        ),
        ("--decay", args.decay, args.decay > 0.0 && args.decay < 1.0),
        (
            "--reseed-below",
            args.reseed_below,
            args.reseed_below.is_finite() && args.reseed_below >= 0.0,
        ),
    ] {
        if !ok {
            bail!("{flag} is out of range: {v} (see --help)");
        }
    }
    let data = args.data.load(args.batch_size)?;
    rensa_launch::launch(&args.common, true, |device| run(&args, &data, device))
}

fn ema(args: &Args) -> bool {
    args.quantizer == "ema"
}

/// The variance of the training pixels (in `[0, 1]`), which scales the reconstruction error.
fn pixel_variance(images: &Labelled) -> f64 {
    let pixels = &images.images.pixels;
    let n = pixels.len().max(1) as f64;
    let mean = pixels.iter().map(|&p| f64::from(p) / 255.0).sum::<f64>() / n;
    let var = pixels
        .iter()
        .map(|&p| (f64::from(p) / 255.0 - mean).powi(2))
        .sum::<f64>()
        / n;
    // a blank data set would divide by zero; its reconstruction is trivial anyway
    var.max(1e-6)
}

fn model_config(args: &Args, data: &Split) -> VqVaeConfig {
    let quantizer = VectorQuantizerConfig::new(args.codes, args.dim)
        .with_commitment(args.commitment)
        .with_ema_decay(ema(args).then_some(args.decay))
        .with_reseed_below((ema(args) && args.reseed_below > 0.0).then_some(args.reseed_below));
    VqVaeConfig::new()
        .with_rows(data.train.images.rows)
        .with_cols(data.train.images.cols)
        .with_hidden(args.hidden)
        .with_quantizer(quantizer)
        .with_data_variance(pixel_variance(&data.train))
}

/// Test-set figures.
#[derive(serde::Serialize)]
struct Results {
    quantizer: String,
    codes: usize,
    dim: usize,
    epochs: usize,
    seed: u64,
    test_images: usize,
    /// Mean squared error per pixel (pixels in [0, 1]) of the reconstructions.
    test_mse: f64,
    /// Share of the codes the test images use.
    codes_used: f64,
    /// `exp` of the entropy of the test images' code frequencies.
    perplexity: f64,
    /// Last epoch's training loss (reconstruction / σ² + codebook terms).
    train_loss: f64,
    median_epoch_seconds: f64,
    /// The code prior's test negative log-likelihood, bits per code (absent without a prior).
    prior_bits_per_code: Option<f64>,
    /// Bits per code of a uniform prior, `log2 K`, for comparison.
    uniform_bits_per_code: f64,
    prior_epochs: usize,
    prior_median_epoch_seconds: Option<f64>,
}

/// The training options of a run in `out`.
fn training<'a>(
    args: &'a Args,
    out: &'a std::path::Path,
    epochs: usize,
    resume: &'a Resume,
) -> Run<'a> {
    Run {
        epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        out,
        resume,
        progress: !args.common.quiet,
    }
}

fn run(args: &Args, data: &Split, device: &Device) -> Result<()> {
    let config = model_config(args, data);
    <Train as Backend>::seed(device, args.seed);
    let model = config.init::<Train>(device)?;
    let settings = vec![
        ("quantizer", args.quantizer.clone()),
        ("codes", args.codes.to_string()),
        ("dim", args.dim.to_string()),
        ("hidden", args.hidden.to_string()),
        ("commitment", args.commitment.to_string()),
        ("decay", args.decay.to_string()),
        ("reseed_below", args.reseed_below.to_string()),
        ("optimizer", "adam".to_string()),
        data_setting(&data.train),
    ];
    let title = format!("VQ-VAE ({}) training loss", args.quantizer);
    let items = data.train.items();
    let (model, history) = training(args, &args.out, args.epochs, &args.resume).fit(
        model,
        settings,
        &items,
        ImageBatch::of,
        &title,
        device,
    )?;
    let model = model.valid();
    let (mse, usage) = evaluate(&model, &data.test, device);
    let mut results = Results {
        quantizer: args.quantizer.clone(),
        codes: args.codes,
        dim: args.dim,
        epochs: history.epochs.len(),
        seed: args.seed,
        test_images: data.test.len(),
        test_mse: mse,
        codes_used: usage.used(),
        perplexity: usage.perplexity(),
        train_loss: history.last().map_or(f64::NAN, |e| e.loss),
        median_epoch_seconds: epoch_median(&history),
        prior_bits_per_code: None,
        uniform_bits_per_code: (args.codes as f64).log2(),
        prior_epochs: args.prior_epochs,
        prior_median_epoch_seconds: None,
    };
    pictures(args, &model, &data.test, &usage, device)?;
    if args.prior_epochs > 0 {
        let (bits, seconds) = prior(args, &model, data, device)?;
        results.prior_bits_per_code = Some(bits);
        results.prior_median_epoch_seconds = Some(seconds);
    }
    report(args, &results);
    rensa_train::write_atomic(
        &args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    Ok(())
}

fn epoch_median(history: &History) -> f64 {
    median(history.epochs.iter().map(|e| e.seconds).collect())
}

/// The test reconstruction MSE per pixel and the codes the test images use. The decoder's output
/// is not clamped to the pixels' range [0, 1] (the pictures clamp it); a VAE's Bernoulli mean
/// lies in it by construction, so against the VAE's error this one is, if anything, overstated.
fn evaluate(model: &VqVae<Inner>, test: &Labelled, device: &Device) -> (f64, CodeUsage) {
    let mut usage = CodeUsage::new(model.codes());
    let mut squared = 0.0;
    for chunk in test.items().chunks(1000) {
        let refs: Vec<_> = chunk.iter().collect();
        let x = ImageBatch::of(&refs).grid(device);
        let out = model.forward(x.clone());
        squared += (out.reconstruction - x).powi_scalar(2).sum().into_scalar() as f64;
        usage.add(out.quantized.indices);
    }
    let (rows, cols) = model.image_size();
    (squared / (test.len() * rows * cols) as f64, usage)
}

/// The code grids of a set of images, in raster order.
fn code_grids(model: &VqVae<Inner>, set: &Labelled, device: &Device) -> Vec<Vec<u32>> {
    let (h, w) = model.grid_size();
    let mut grids = Vec::with_capacity(set.len());
    for chunk in set.items().chunks(1000) {
        let refs: Vec<_> = chunk.iter().collect();
        let codes: Vec<i64> = model
            .codes_of(ImageBatch::of(&refs).grid(device))
            .into_data()
            .convert::<i64>()
            .to_vec()
            .expect("i64 codes");
        grids.extend(
            codes
                .chunks(h * w)
                .map(|g| g.iter().map(|&c| c as u32).collect()),
        );
    }
    grids
}

/// Trains the code prior on the training images' grids; writes its history, loss curve and the
/// decoded samples. Returns its test bits per code and its median epoch time.
fn prior(args: &Args, model: &VqVae<Inner>, data: &Split, device: &Device) -> Result<(f64, f64)> {
    let dir = args.out.join("prior");
    let train = code_grids(model, &data.train, device);
    let test = code_grids(model, &data.test, device);
    <Train as Backend>::seed(device, args.seed ^ 0x9e10);
    let config = CodePriorConfig::new(args.codes).with_hidden(args.prior_hidden);
    let prior = config.init::<Train>(device)?;
    let codes: Vec<u8> = train
        .iter()
        .flatten()
        .flat_map(|c| c.to_le_bytes())
        .collect();
    let grids = format!(
        "{} training grids, {}",
        train.len(),
        rensa_train::fingerprint(&codes)
    );
    // The prior resumes only a prior trained on these very grids. A run stopped before its
    // prior saved a checkpoint has none, and a resume that trained the VQ-VAE further (more
    // epochs) encodes the images into other grids: either way the prior starts afresh.
    let mut resume = args.resume.clone();
    if resume.resume {
        let saved = match resume.checkpoints(&dir).latest()? {
            Some(latest) => latest.settings()?.get("grids").cloned(),
            None => None,
        };
        if saved.as_ref() != Some(&grids) {
            resume.resume = false;
            resume.force = false;
            resume.overwrite = true;
        }
    }
    let settings = vec![
        ("codes", args.codes.to_string()),
        ("prior_hidden", args.prior_hidden.to_string()),
        ("grids", grids),
    ];
    let (prior, history) = training(args, &dir, args.prior_epochs, &resume).fit(
        prior,
        settings,
        &train,
        CodeBatch::of,
        "code prior: negative log-likelihood, nats per code",
        device,
    )?;
    let prior: CodePrior<Inner> = prior.valid();
    let (mut nats, mut count) = (0.0, 0usize);
    for chunk in test.chunks(1000) {
        let refs: Vec<_> = chunk.iter().collect();
        let batch = CodeBatch::of(&refs);
        let codes: Tensor<Inner, 2, Int> = Tensor::from_data(
            burn::tensor::TensorData::new(
                batch
                    .codes
                    .iter()
                    .map(|&c| i64::from(c))
                    .collect::<Vec<_>>(),
                [batch.count, batch.length],
            ),
            device,
        );
        nats += prior.neg_log_likelihood(codes).sum().into_scalar() as f64;
        count += batch.count * batch.length;
    }
    <Inner as Backend>::seed(device, args.seed ^ 0x5a3b);
    let (h, w) = model.grid_size();
    let samples = prior.sample(64, h * w, 1.0).reshape([64, h, w]);
    let (rows, cols) = model.image_size();
    let images = model
        .decode_codes(samples)
        .clamp(0.0, 1.0)
        .reshape([64, rows * cols]);
    rensa_train::plot::image_grid(
        &args.out.join("samples.png"),
        "code grids drawn from the GRU prior, decoded",
        &rows_of(images),
        (rows, cols),
        8,
        3,
    )?;
    Ok((
        nats / count.max(1) as f64 / std::f64::consts::LN_2,
        epoch_median(&history),
    ))
}

/// Reconstructions beside their originals and the codebook-usage histogram.
fn pictures(
    args: &Args,
    model: &VqVae<Inner>,
    test: &Labelled,
    usage: &CodeUsage,
    device: &Device,
) -> Result<()> {
    let (rows, cols) = model.image_size();
    let items = test.items();
    let first: Vec<_> = items.iter().take(32).collect();
    let x = ImageBatch::of(&first).grid(device);
    let n = first.len();
    let originals = rows_of(x.clone().reshape([n, rows * cols]));
    let out = model.forward(x);
    reconstruction_grid(
        &args.out.join("reconstructions.png"),
        &originals,
        &rows_of(out.reconstruction.clamp(0.0, 1.0).reshape([n, rows * cols])),
        (rows, cols),
    )?;
    let mut counts: Vec<f64> = usage.counts().iter().map(|&c| c as f64).collect();
    counts.sort_by(|a, b| b.total_cmp(a));
    rensa_train::plot::bar_chart(
        &args.out.join("codebook-usage.png"),
        &format!(
            "test-set assignments per code, most used first ({:.0}% of {} codes used, perplexity {:.0})",
            100.0 * usage.used(),
            usage.counts().len(),
            usage.perplexity()
        ),
        "code (by rank)",
        "assignments",
        &counts,
    )?;
    Ok(())
}

fn report(args: &Args, r: &Results) {
    println!(
        "VQ-VAE ({} quantiser, K = {}, D = {}) after {} epochs, seed {}: {:.1} s per epoch (median)",
        r.quantizer, r.codes, r.dim, r.epochs, r.seed, r.median_epoch_seconds
    );
    println!(
        "| test images | reconstruction MSE | codes used | perplexity | prior bits per code (uniform) |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {:.5} | {:.1}% | {:.1} | {} ({:.2}) |",
        r.test_images,
        r.test_mse,
        100.0 * r.codes_used,
        r.perplexity,
        r.prior_bits_per_code
            .map_or("–".to_string(), |b| format!("{b:.3}")),
        r.uniform_bits_per_code
    );
    println!(
        "results: {}; pictures: loss.png, reconstructions.png, codebook-usage.png{} in {}",
        args.out.join("results.json").display(),
        if r.prior_bits_per_code.is_some() {
            ", samples.png, prior/loss.png"
        } else {
            ""
        },
        args.out.display()
    );
}

//! `cargo run --release -p vae [--features wgpu] -- [--architecture mlp|conv] [--latent 20] ...`
//!
//! A variational autoencoder ([`rensa_models::vae`]) on Fashion-MNIST (fetched once from
//! Debian's `dataset-fashion-mnist`, see [`rensa_data::fetch`]) or any folder of MNIST-style IDX
//! files (`--data DIR`), trained with rensa-train's `Fit`. Writes the test −ELBO, the loss curves
//! and pictures: reconstructions beside their originals, samples from the prior, interpolations
//! between test images in latent space, and, for a 2-D latent, the map of the test images' codes.

use anyhow::{Result, bail};
use burn::module::AutodiffModule;
use burn::tensor::{Tensor, backend::Backend};
use clap::Parser;
use rensa_data::idx::{ImageBatch, Labelled, Split};
use rensa_launch::images::{
    ImageData, Resume, Run, data_setting, median, reconstruction_grid, rows_of,
};
use rensa_launch::{Common, Device, Inner, Train};
use rensa_models::vae::{Architecture, Vae, VaeConfig};
use rensa_train::History;
use std::path::PathBuf;

/// A variational autoencoder learns to encode images into a Gaussian over a small latent space
/// and to decode them back; decoding draws from N(0, I) makes new images.
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about = None)]
struct Args {
    #[command(flatten)]
    data: ImageData,
    /// Encoder and decoder: `mlp` (784-400-20, as pytorch/examples) or `conv` (two stride-2
    /// convolutions each way to and from a 7x7 grid).
    #[arg(long, default_value = "mlp", value_parser = parse_architecture)]
    architecture: Architecture,
    /// Dimensions of the latent code (2 draws the map of the test codes).
    #[arg(long, default_value_t = 20, value_parser = rensa_launch::at_least_one)]
    latent: usize,
    /// Units of the hidden layers (the MLP's; the convolutional model's between the convolutions'
    /// grid and the latent).
    #[arg(long, default_value_t = 400, value_parser = rensa_launch::at_least_one)]
    hidden: usize,
    /// Passes over the training images.
    #[arg(long, default_value_t = 10, value_parser = rensa_launch::at_least_one)]
    epochs: usize,
    /// Images per optimiser step.
    #[arg(long, default_value_t = 128, value_parser = rensa_launch::at_least_one)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed of the weights, the shuffling and the noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the results: results.json, history.csv/.json, loss.png, the pictures and
    /// checkpoints/.
    #[arg(long, default_value = "runs/vae")]
    out: PathBuf,
    #[command(flatten)]
    resume: Resume,
    #[command(flatten)]
    common: Common,
}

fn parse_architecture(s: &str) -> Result<Architecture, String> {
    match s {
        "mlp" => Ok(Architecture::Mlp),
        "conv" => Ok(Architecture::Conv),
        other => Err(format!(
            "unknown architecture {other:?} (expected mlp or conv)"
        )),
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if !(args.lr.is_finite() && args.lr > 0.0) {
        bail!("--lr must be a finite number > 0, got {}", args.lr);
    }
    let data = args.data.load(args.batch_size)?;
    rensa_launch::launch(&args.common, true, |device| run(&args, &data, device))
}

fn model_config(args: &Args, data: &Split) -> VaeConfig {
    VaeConfig::new()
        .with_rows(data.train.images.rows)
        .with_cols(data.train.images.cols)
        .with_latent(args.latent)
        .with_hidden(args.hidden)
        .with_architecture(args.architecture)
}

fn architecture_name(a: Architecture) -> &'static str {
    match a {
        Architecture::Mlp => "mlp",
        Architecture::Conv => "conv",
    }
}

fn run(args: &Args, data: &Split, device: &Device) -> Result<()> {
    let config = model_config(args, data);
    <Train as Backend>::seed(device, args.seed);
    let model = config.init::<Train>(device)?;
    let name = architecture_name(args.architecture);
    let run = Run {
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        seed: args.seed,
        out: &args.out,
        resume: &args.resume,
        progress: !args.common.quiet,
    };
    let settings = vec![
        ("architecture", name.to_string()),
        ("latent", args.latent.to_string()),
        ("hidden", args.hidden.to_string()),
        ("image_size", format!("{} x {}", config.rows, config.cols)),
        ("optimizer", "adam".to_string()),
        data_setting(&data.train),
    ];
    let title = format!("VAE ({name}) training, nats per image");
    let items = data.train.items();
    let (model, history) = run.fit(model, settings, &items, ImageBatch::of, &title, device)?;
    let model = model.valid();
    <Inner as Backend>::seed(device, args.seed ^ 0x7e57);
    let results = evaluate(args, &model, &data.test, &history, device);
    pictures(args, &model, &data.test, device)?;
    report(args, &results);
    rensa_train::write_atomic(
        &args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    Ok(())
}

/// Test-set figures, in nats per image.
#[derive(serde::Serialize)]
struct Results {
    architecture: String,
    latent: usize,
    epochs: usize,
    seed: u64,
    test_images: usize,
    /// `−ELBO` with one posterior sample per image (as pytorch/examples reports its test loss).
    test_neg_elbo: f64,
    test_reconstruction: f64,
    test_kl: f64,
    /// Mean squared error per pixel (pixels in [0, 1]) of the reconstructions (the decoder's
    /// means at the posterior means): comparable with an autoencoder's, e.g. the VQ-VAE's.
    test_mse: f64,
    /// Last epoch's training `−ELBO`.
    train_neg_elbo: f64,
    train_seconds: f64,
    seconds_per_epoch: f64,
    /// The median of the epochs' times.
    median_epoch_seconds: f64,
}

fn evaluate(
    args: &Args,
    model: &Vae<Inner>,
    test: &Labelled,
    history: &History,
    device: &Device,
) -> Results {
    let items = test.items();
    let (mut recon, mut kl, mut squared) = (0.0, 0.0, 0.0);
    for chunk in items.chunks(1000) {
        let refs: Vec<_> = chunk.iter().collect();
        let x = ImageBatch::of(&refs).flat(device);
        let elbo = model.elbo(x.clone());
        recon += elbo.reconstruction.sum().into_scalar() as f64;
        kl += elbo.kl.sum().into_scalar() as f64;
        squared += (model.reconstruct(x.clone()) - x)
            .powi_scalar(2)
            .sum()
            .into_scalar() as f64;
    }
    let n = items.len() as f64;
    let secs = history.seconds();
    Results {
        architecture: architecture_name(args.architecture).into(),
        latent: args.latent,
        epochs: history.epochs.len(),
        seed: args.seed,
        test_images: items.len(),
        test_neg_elbo: (recon + kl) / n,
        test_reconstruction: recon / n,
        test_kl: kl / n,
        test_mse: squared / (n * (model.image_size().0 * model.image_size().1) as f64),
        train_neg_elbo: history.last().map_or(f64::NAN, |e| e.loss),
        train_seconds: secs,
        seconds_per_epoch: secs / history.epochs.len().max(1) as f64,
        median_epoch_seconds: median(history.epochs.iter().map(|e| e.seconds).collect()),
    }
}

fn report(args: &Args, r: &Results) {
    println!(
        "VAE ({}, latent {}) after {} epochs, seed {}: {:.1} s ({:.1} s per epoch)",
        r.architecture, r.latent, r.epochs, r.seed, r.train_seconds, r.seconds_per_epoch
    );
    println!(
        "| test images | test -ELBO (nats) | reconstruction | KL | reconstruction MSE | train -ELBO |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {:.2} | {:.2} | {:.2} | {:.5} | {:.2} |",
        r.test_images,
        r.test_neg_elbo,
        r.test_reconstruction,
        r.test_kl,
        r.test_mse,
        r.train_neg_elbo
    );
    println!(
        "results: {}; pictures: loss.png, reconstructions.png, samples.png, interpolations.png{} in {}",
        args.out.join("results.json").display(),
        if args.latent == 2 {
            ", latent-map.png"
        } else {
            ""
        },
        args.out.display()
    );
}

/// The pictures: reconstructions (originals on the odd rows, reconstructions below them),
/// samples from the prior, interpolations and, for a 2-D latent, the map of the test codes.
fn pictures(args: &Args, model: &Vae<Inner>, test: &Labelled, device: &Device) -> Result<()> {
    use rensa_train::plot::{image_grid, scatter};
    let size = model.image_size();
    let items = test.items();
    let first: Vec<_> = items.iter().take(32).collect();
    let x = ImageBatch::of(&first).flat(device);
    reconstruction_grid(
        &args.out.join("reconstructions.png"),
        &rows_of(x.clone()),
        &rows_of(model.reconstruct(x)),
        size,
    )?;
    image_grid(
        &args.out.join("samples.png"),
        "decoded draws from the prior N(0, I)",
        &rows_of(model.sample(64)),
        size,
        8,
        3,
    )?;
    // from one test image's code to another's, in ten steps
    let pairs = 6.min(items.len() / 2).max(1);
    let ends: Vec<_> = items.iter().take(2 * pairs).collect();
    let means = model.encode(ImageBatch::of(&ends).flat(device)).mean;
    let mut codes = Vec::new();
    for p in 0..pairs {
        // the second end of the last pair is its first when there is a single test image
        let second = (2 * p + 1).min(ends.len() - 1);
        let a = means.clone().slice(2 * p..2 * p + 1);
        let b = means.clone().slice(second..second + 1);
        for s in 0..10 {
            let t = s as f64 / 9.0;
            codes.push(a.clone().mul_scalar(1.0 - t) + b.clone().mul_scalar(t));
        }
    }
    image_grid(
        &args.out.join("interpolations.png"),
        "straight lines in latent space between two test images' codes",
        &rows_of(model.decode(Tensor::cat(codes, 0))),
        size,
        10,
        3,
    )?;
    if model.latent() == 2 {
        let mut points = Vec::new();
        for chunk in items.chunks(1000) {
            let refs: Vec<_> = chunk.iter().collect();
            let batch = ImageBatch::of(&refs);
            let m = rows_of(model.encode(batch.flat(device)).mean);
            points.extend(
                m.iter()
                    .zip(&batch.labels)
                    .map(|(z, &l)| (z[0] as f64, z[1] as f64, l as usize)),
            );
        }
        let names = args.data.class_names(test.classes);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        scatter(
            &args.out.join("latent-map.png"),
            "posterior means of the test images",
            &points,
            &names,
        )?;
    }
    Ok(())
}

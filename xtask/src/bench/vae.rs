//! `cargo xtask bench vae`: the `vae` example on Fashion-MNIST — the MLP of pytorch/examples
//! and the convolutional VAE over three seeds, test −ELBO in nats and reconstruction MSE — and,
//! with `--peers`, the same
//! MLP written independently in numpy (`xtask/peers/numpy_vae.py`, same seeds) and in
//! Keras/TensorFlow-CPU (`xtask/peers/keras_vae.py`) for the epoch time.

use anyhow::{Context, Result};
use std::fmt::Write as _;

use super::{BenchArgs, cpu_description, example_binary, median, record_run, run_binary};
use crate::peers::{last_json, run_script, workspace_root};

pub(super) const EPOCHS: usize = 10;
const SEEDS: [u64; 3] = [0, 1, 2];
/// The fewest epochs of a speed comparison: Keras's first epoch, which traces and compiles, is
/// not timed, and TensorFlow's epochs vary (3.6 to 5.0 s on one machine in one run), so with
/// fewer timed epochs the median is a coin toss (with 3, two were timed). The Keras run trains
/// as many epochs as rensa's.
const SPEED_EPOCHS: usize = 5;

/// What one run of the example reports (`results.json`).
struct Outcome {
    neg_elbo: f64,
    reconstruction: f64,
    kl: f64,
    mse: f64,
    epoch_seconds: f64,
}

fn run_example(
    binary: &std::path::Path,
    data: &str,
    architecture: &str,
    seed: u64,
    epochs: usize,
) -> Result<Outcome> {
    let out = workspace_root().join(format!("target/bench-vae/{architecture}-{seed}"));
    let (epochs, seed_s) = (epochs.to_string(), seed.to_string());
    eprintln!("vae bench: {architecture}, seed {seed}...");
    run_binary(
        binary,
        &[
            "--quiet",
            "--overwrite",
            "--data",
            data,
            "--architecture",
            architecture,
            "--epochs",
            &epochs,
            "--seed",
            &seed_s,
            "--checkpoint-every",
            &epochs,
            "--out",
            out.to_str().context("a UTF-8 path")?,
        ],
    )?;
    let r: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).context("the example's results.json")?,
    )?;
    let num = |k: &str| r[k].as_f64().with_context(|| format!("results.json: {k}"));
    Ok(Outcome {
        neg_elbo: num("test_neg_elbo")?,
        reconstruction: num("test_reconstruction")?,
        kl: num("test_kl")?,
        mse: num("test_mse")?,
        epoch_seconds: num("median_epoch_seconds")?,
    })
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let dir = rensa_data::fetch::fashion_mnist()?;
    let data = dir.to_str().context("a UTF-8 data path")?.to_string();
    let binary = example_binary("vae", args.backend)?;
    let (epochs, seeds) = (args.epochs_or(EPOCHS), args.seeds_of(&SEEDS));
    let mut table = String::from(
        "| model | seed | test −ELBO (nats) | reconstruction | KL | reconstruction MSE | s per epoch (median) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut mlp = Vec::new();
    let mut mlp_seconds = Vec::new();
    for &seed in seeds {
        let o = run_example(&binary, &data, "mlp", seed, epochs)?;
        writeln!(
            table,
            "| rensa MLP 784-400-20 | {seed} | {:.2} | {:.2} | {:.2} | {:.5} | {:.2} |",
            o.neg_elbo, o.reconstruction, o.kl, o.mse, o.epoch_seconds
        )?;
        mlp.push(o.neg_elbo);
        mlp_seconds.push(o.epoch_seconds);
    }
    let mut notes = vec![format!(
        "rensa MLP over seeds {seeds:?}: mean {:.2} nats.",
        mean(&mlp)
    )];
    let mut conv = Vec::new();
    for &seed in seeds {
        let o = run_example(&binary, &data, "conv", seed, epochs)?;
        writeln!(
            table,
            "| rensa convolutional | {seed} | {:.2} | {:.2} | {:.2} | {:.5} | {:.2} |",
            o.neg_elbo, o.reconstruction, o.kl, o.mse, o.epoch_seconds
        )?;
        conv.push(o.neg_elbo);
    }
    notes.push(format!(
        "The convolutional VAE over the same seeds: mean {:.2} nats, {:.2} below the MLP's (bar: 3).",
        mean(&conv),
        mean(&mlp) - mean(&conv)
    ));
    if args.peers {
        let mut numpy = Vec::new();
        for &seed in seeds {
            eprintln!("vae bench: numpy peer, seed {seed}...");
            let out = run_script(
                "numpy_vae.py",
                &[data.clone(), epochs.to_string(), seed.to_string()],
            )?;
            let v = last_json(&out, "the numpy peer")?;
            let num = |k: &str| v[k].as_f64().with_context(|| format!("numpy peer: {k}"));
            writeln!(
                table,
                "| numpy MLP (independent, `numpy_vae.py`) | {seed} | {:.2} | {:.2} | {:.2} | – | {:.2} |",
                num("test_neg_elbo")?,
                num("test_reconstruction")?,
                num("test_kl")?,
                num("seconds_per_epoch")?
            )?;
            numpy.push(num("test_neg_elbo")?);
        }
        eprintln!("vae bench: Keras peer...");
        let out = run_script(
            "keras_vae.py",
            &[data.clone(), epochs.to_string(), "0".into()],
        )?;
        let v = last_json(&out, "the Keras peer")?;
        let keras_seconds = v["seconds_per_epoch"]
            .as_f64()
            .context("seconds_per_epoch")?;
        writeln!(
            table,
            "| {} MLP ({epochs} epochs, speed only) | 0 | {:.2} | – | – | – | {:.2} |",
            v["peer"].as_str().unwrap_or("keras"),
            v["test_neg_elbo"].as_f64().unwrap_or(f64::NAN),
            keras_seconds
        )?;
        let rensa_seconds = median(mlp_seconds);
        let speed = if epochs >= SPEED_EPOCHS {
            format!(
                "{:.2}x (rensa's median over its MLP runs, {rensa_seconds:.2} s; Keras's median of epochs 2-{epochs})",
                keras_seconds / rensa_seconds
            )
        } else {
            format!("not compared (fewer than {SPEED_EPOCHS} epochs)")
        };
        notes.push(format!(
            "rensa − numpy, mean over the seeds: {:+.2} nats (per seed: {}). Epoch time, Keras / rensa: {speed}.",
            mean(&mlp) - mean(&numpy),
            mlp.iter()
                .zip(&numpy)
                .map(|(a, b)| format!("{:+.2}", a - b))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    println!("\n{table}\n{}", notes.join("\n"));
    let backend = args.backend_name();
    record_run(
        args,
        ("VAE on Fashion-MNIST", backend),
        &cpu_description(),
        &format!(
            "The release `vae` example: Bernoulli pixels, Adam lr 1e-3, batch 128, {epochs} epochs on the \
             60,000 training images; test −ELBO on the 10,000 test images with one posterior sample per \
             image (as pytorch/examples reports its test loss), in nats per image. {}{}",
            notes.join(" "),
            args.shortened_note()
        ),
        &table,
    )?;
    Ok(())
}

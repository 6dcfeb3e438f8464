//! `cargo xtask bench vq-vae`: the `vq-vae` example on Fashion-MNIST, ten epochs, with the EMA
//! quantiser (and dead-code re-seeding) and with the plain one (codebook by its loss's gradient,
//! no re-seeding): test reconstruction MSE, share of the 512 codes the test images use,
//! perplexity; the GRU code prior (EMA model) in bits per code. The convolutional VAE's MSE, for
//! the comparison, comes from the last `cargo xtask bench vae` run (its results in
//! `target/bench-vae`), when there is one.

use anyhow::{Context, Result};
use std::fmt::Write as _;

use super::{BenchArgs, cpu_description, example_binary, record_run, run_binary};
use crate::peers::workspace_root;

const EPOCHS: usize = 10;
const PRIOR_EPOCHS: usize = 6;

/// Runs the example; returns its results.json.
fn run_example(
    binary: &std::path::Path,
    data: &str,
    quantizer: &str,
    prior_epochs: usize,
) -> Result<serde_json::Value> {
    let out = workspace_root().join(format!("target/bench-vq-vae/{quantizer}"));
    eprintln!("vq-vae bench: {quantizer} quantiser...");
    run_binary(
        binary,
        &[
            "--quiet",
            "--overwrite",
            "--data",
            data,
            "--quantizer",
            quantizer,
            "--epochs",
            &EPOCHS.to_string(),
            "--prior-epochs",
            &prior_epochs.to_string(),
            "--checkpoint-every",
            &EPOCHS.to_string(),
            "--out",
            out.to_str().context("a UTF-8 path")?,
        ],
    )?;
    Ok(serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).context("the example's results.json")?,
    )?)
}

/// The convolutional VAE's test MSE per seed from the last `bench vae` run, only from runs of
/// the bench's full length (a shortened run would be an easier comparison).
fn conv_vae_mse() -> Vec<(u64, f64)> {
    (0..3)
        .filter_map(|seed| {
            let path = workspace_root().join(format!("target/bench-vae/conv-{seed}/results.json"));
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
            let full = v["architecture"].as_str() == Some("conv")
                && v["epochs"].as_u64() == Some(super::vae::EPOCHS as u64);
            if !full {
                eprintln!(
                    "vq-vae bench: target/bench-vae/conv-{seed} is not a {}-epoch convolutional run; left out",
                    super::vae::EPOCHS
                );
                return None;
            }
            Some((seed, v["test_mse"].as_f64()?))
        })
        .collect()
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let dir = rensa_data::fetch::fashion_mnist()?;
    let data = dir.to_str().context("a UTF-8 data path")?.to_string();
    let binary = example_binary("vq-vae", args.backend)?;
    let mut table = String::from(
        "| quantiser | test reconstruction MSE | codes used (of 512) | perplexity | prior bits per code (uniform 9) | s per epoch (median) |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    let mut mse = Vec::new();
    for (quantizer, label, prior) in [
        ("ema", "EMA (γ 0.99) + re-seeding below 0.01", PRIOR_EPOCHS),
        ("plain", "plain (gradient, no re-seeding)", 0),
    ] {
        let r = run_example(&binary, &data, quantizer, prior)?;
        let num = |k: &str| r[k].as_f64().with_context(|| format!("results.json: {k}"));
        writeln!(
            table,
            "| {label} | {:.5} | {:.1}% | {:.1} | {} | {:.1} |",
            num("test_mse")?,
            100.0 * num("codes_used")?,
            num("perplexity")?,
            r["prior_bits_per_code"]
                .as_f64()
                .map_or("–".to_string(), |b| format!("{b:.3}")),
            num("median_epoch_seconds")?
        )?;
        mse.push((label, num("test_mse")?));
    }
    let conv = conv_vae_mse();
    let comparison = if conv.is_empty() {
        "No convolutional VAE results in target/bench-vae to compare with (run `cargo xtask bench vae`).".to_string()
    } else {
        let mean = conv.iter().map(|(_, m)| m).sum::<f64>() / conv.len() as f64;
        writeln!(
            table,
            "| (convolutional VAE, `bench vae`, seeds {:?}: mean of its reconstruction MSEs) | {mean:.5} | – | – | – | – |",
            conv.iter().map(|(s, _)| *s).collect::<Vec<_>>()
        )?;
        format!(
            "Reconstruction MSE, VQ-VAE / convolutional VAE (the posterior means decoded, from the last `bench vae` run): {}.",
            mse.iter()
                .map(|(label, m)| format!("{label} {:.2}", m / mean))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    println!("\n{table}\n{comparison}");
    let backend = match args.backend {
        super::BackendKind::Ndarray => "ndarray",
        super::BackendKind::Wgpu => "wgpu",
    };
    record_run(
        args,
        ("VQ-VAE on Fashion-MNIST", backend),
        &cpu_description(),
        &format!(
            "The release `vq-vae` example, seed 0: encoder to a 7x7 grid, K = 512 codes of D = 64, β 0.25, \
             Adam lr 1e-3, batch 128, {EPOCHS} epochs on the 60,000 training images; test figures on the \
             10,000 test images (MSE per pixel in [0, 1]). Code prior: GRU 256 over the 49 codes in raster \
             order, {PRIOR_EPOCHS} epochs on the training images' codes, test negative log-likelihood. {comparison}"
        ),
        &table,
    )?;
    Ok(())
}

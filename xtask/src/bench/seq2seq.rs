//! `cargo xtask bench seq2seq`: the main command (the course's sin -> cos exercise, 80 epochs)
//! over three seeds on ndarray, against the same exercise in Keras/TensorFlow-CPU with `--peers`.

use anyhow::{Context, Result};
use std::fmt::Write as _;

use super::{BackendKind, BenchArgs, cpu_description, median, record_run, run_example};
use crate::peers::{run_script, workspace_root};

const SEEDS: [u64; 3] = [0, 1, 2];
const EPOCHS: usize = 80;

/// What one run reports.
struct Run {
    /// rensa: the sum of its epochs; Keras: the wall time of `model.fit` (its first epoch traces
    /// and compiles the training and validation functions).
    train_s: f64,
    /// Epochs 2 to the last, training and validation: the time both programs spend on the same
    /// work once set up.
    later_s: f64,
    val_loss: f64,
    autoregressive_mean: f64,
}

/// The seconds of every epoch after the first in a history.csv the example wrote
/// (`epoch,loss,val_loss,seconds,...`).
fn later_epochs(history_csv: &std::path::Path) -> Result<f64> {
    let text = std::fs::read_to_string(history_csv)
        .with_context(|| format!("reading {}", history_csv.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .context("an empty history.csv")?
        .split(',')
        .collect();
    let column = header
        .iter()
        .position(|&c| c == "seconds")
        .context("history.csv has no seconds column")?;
    lines
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(column)
                .and_then(|v| v.parse::<f64>().ok())
                .with_context(|| format!("history.csv row {l:?}"))
        })
        .sum()
}

/// Runs the release seq2seq example once and reads its backend line and result row.
fn rensa(backend: BackendKind, seed: u64, extra: &[&str]) -> Result<(Run, String)> {
    let out_dir = workspace_root()
        .join("target/bench-seq2seq")
        .join(seed.to_string());
    let (epochs, seed) = (EPOCHS.to_string(), seed.to_string());
    // Every measured run is a fresh one into the same folder.
    let mut args = vec![
        "--quiet",
        "--overwrite",
        "--epochs",
        &epochs,
        "--seed",
        &seed,
        "--out",
        out_dir.to_str().context("a UTF-8 path")?,
    ];
    args.extend(extra);
    let stdout = run_example("seq2seq", backend, &args)?;
    let backend_line = stdout
        .lines()
        .find(|l| l.starts_with("backend:"))
        .unwrap_or("backend: ?")
        .to_string();
    // | 2.63 s | 32.9 ms | loss | val_loss | e0, e24, e49, e74 | mean |
    let row = stdout
        .lines()
        .find(|l| l.starts_with("| ") && l.contains(" s |"))
        .with_context(|| format!("no result row in the seq2seq output:\n{stdout}"))?;
    let cells: Vec<&str> = row
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    let num = |s: &str| {
        s.split_whitespace()
            .next()
            .unwrap_or("")
            .parse::<f64>()
            .with_context(|| format!("result row: {row}"))
    };
    Ok((
        Run {
            train_s: num(cells[0])?,
            later_s: later_epochs(&out_dir.join("history.csv"))?,
            val_loss: num(cells[3])?,
            autoregressive_mean: num(cells[5])?,
        },
        backend_line,
    ))
}

fn keras(seed: u64) -> Result<Run> {
    let out = run_script("keras_seq2seq.py", &[EPOCHS.to_string(), seed.to_string()])?;
    let v = crate::peers::last_json(&out, "the Keras peer")?;
    let errors: Vec<f64> = v["autoregressive_mse"]
        .as_array()
        .context("autoregressive_mse")?
        .iter()
        .filter_map(|e| e.as_f64())
        .collect();
    let epochs: Vec<f64> = v["epoch_s"]
        .as_array()
        .context("epoch_s")?
        .iter()
        .filter_map(|e| e.as_f64())
        .collect();
    Ok(Run {
        train_s: v["train_s"].as_f64().context("train_s")?,
        later_s: epochs.iter().skip(1).sum(),
        val_loss: v["val_loss"].as_f64().context("val_loss")?,
        autoregressive_mean: errors.iter().sum::<f64>() / errors.len().max(1) as f64,
    })
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let mut rows: Vec<(String, Vec<Run>)> = Vec::new();
    let backend_name = args.backend_name();
    eprintln!("seq2seq bench: {EPOCHS} epochs, seeds {SEEDS:?}, {backend_name}");
    let mut backend_line = String::new();
    for (name, extra) in [
        ("", &[][..]),
        (", plain autodiff path", &["--plain-autodiff"][..]),
    ] {
        let mut runs = Vec::new();
        for &seed in &SEEDS {
            let (run, line) = rensa(args.backend, seed, extra)?;
            backend_line = line;
            runs.push(run);
        }
        rows.push((format!("rensa ({backend_name}{name})"), runs));
    }
    if args.peers {
        eprintln!("running the Keras/TensorFlow peer...");
        rows.push((
            "Keras/TF-CPU".into(),
            SEEDS.iter().map(|&s| keras(s)).collect::<Result<_>>()?,
        ));
    }
    let mean =
        |runs: &[Run], f: fn(&Run) -> f64| runs.iter().map(f).sum::<f64>() / runs.len() as f64;
    let rensa_time = median(rows[0].1.iter().map(|r| r.train_s).collect());
    let rensa_later = median(rows[0].1.iter().map(|r| r.later_s).collect());
    let mut table = format!(
        "| program | train time (median of 3) | time / rensa time | epochs 2-{EPOCHS} (median of 3) | epochs 2-{EPOCHS} / rensa's | val_loss (mean) | autoregressive MSE (mean) | per seed: time / val_loss |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n",
    );
    for (name, runs) in &rows {
        let t = median(runs.iter().map(|r| r.train_s).collect());
        let later = median(runs.iter().map(|r| r.later_s).collect());
        let per_seed = runs
            .iter()
            .map(|r| format!("{:.2} s / {:.5}", r.train_s, r.val_loss))
            .collect::<Vec<_>>()
            .join("; ");
        writeln!(
            table,
            "| {name} | {t:.2} s | {:.2}x | {later:.2} s | {:.2}x | {:.5} | {:.5} | {per_seed} |",
            t / rensa_time,
            later / rensa_later,
            mean(runs, |r| r.val_loss),
            mean(runs, |r| r.autoregressive_mean)
        )?;
    }
    println!("\n{table}");
    record_run(
        args,
        ("seq2seq", backend_name),
        &format!("{}; rensa {backend_line}", cpu_description()),
        &format!(
            "The course's sin -> cos exercise, {EPOCHS} epochs, batch 16, seeds {SEEDS:?}; rensa's release example \
             (`cargo run --release -p seq2seq`) then Keras run one after the other on the same machine. \
             rensa's train time is the sum of its epochs (start-up, model construction and prediction excluded); \
             Keras's is the wall time of `model.fit`, whose first epoch traces and compiles its training and \
             validation functions. Epochs 2-{EPOCHS} (training and validation, each program's own epoch times) \
             leave both first epochs out. The plain-path row records every step for autodiff \
             (`--plain-autodiff`) instead of rensa's fused recurrence node."
        ),
        &table,
    )?;
    Ok(())
}

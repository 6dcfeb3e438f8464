//! `cargo xtask bench seq2seq`: the main command (the course's sin -> cos exercise, 80 epochs)
//! over three seeds on ndarray, against the same exercise in Keras/TensorFlow-CPU with `--peers`.

use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::process::Command;

use super::{BenchArgs, cpu_description, median, record, today};
use crate::peers::{run_script, workspace_root};

const SEEDS: [u64; 3] = [0, 1, 2];
const EPOCHS: usize = 80;

/// What one run reports.
struct Run {
    train_s: f64,
    val_loss: f64,
    autoregressive_mean: f64,
}

/// Runs the release seq2seq example once and reads its result row.
fn rensa(seed: u64) -> Result<Run> {
    let out_dir = workspace_root()
        .join("target/bench-seq2seq")
        .join(seed.to_string());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "run",
            "--release",
            "--quiet",
            "-p",
            "seq2seq",
            "--",
            "--quiet",
            "--epochs",
        ])
        .arg(EPOCHS.to_string())
        .arg("--seed")
        .arg(seed.to_string())
        .arg("--out")
        .arg(&out_dir)
        .output()
        .context("running the seq2seq example")?;
    if !out.status.success() {
        bail!(
            "seq2seq failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8(out.stdout)?;
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
    Ok(Run {
        train_s: num(cells[0])?,
        val_loss: num(cells[3])?,
        autoregressive_mean: num(cells[5])?,
    })
}

fn keras(seed: u64) -> Result<Run> {
    let out = run_script("keras_seq2seq.py", &[EPOCHS.to_string(), seed.to_string()])?;
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .context("no JSON from the Keras peer")?;
    let v: serde_json::Value = serde_json::from_str(line)?;
    let errors: Vec<f64> = v["autoregressive_mse"]
        .as_array()
        .context("autoregressive_mse")?
        .iter()
        .filter_map(|e| e.as_f64())
        .collect();
    Ok(Run {
        train_s: v["train_s"].as_f64().context("train_s")?,
        val_loss: v["val_loss"].as_f64().context("val_loss")?,
        autoregressive_mean: errors.iter().sum::<f64>() / errors.len().max(1) as f64,
    })
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.backend != super::BackendKind::Ndarray {
        eprintln!("seq2seq bench: only the ndarray backend is measured so far; skipped");
        return Ok(());
    }
    let mut rows: Vec<(String, Vec<Run>)> = Vec::new();
    eprintln!("seq2seq bench: {EPOCHS} epochs, seeds {SEEDS:?}");
    rows.push((
        "rensa (ndarray)".into(),
        SEEDS.iter().map(|&s| rensa(s)).collect::<Result<_>>()?,
    ));
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
    let mut table = String::from(
        "| program | train time (median of 3) | time / rensa time | val_loss (mean) | autoregressive MSE (mean) | per seed: time / val_loss |\n| --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    for (name, runs) in &rows {
        let t = median(runs.iter().map(|r| r.train_s).collect());
        let per_seed = runs
            .iter()
            .map(|r| format!("{:.2} s / {:.5}", r.train_s, r.val_loss))
            .collect::<Vec<_>>()
            .join("; ");
        writeln!(
            table,
            "| {name} | {t:.2} s | {:.2}x | {:.5} | {:.5} | {per_seed} |",
            t / rensa_time,
            mean(runs, |r| r.val_loss),
            mean(runs, |r| r.autoregressive_mean)
        )?;
    }
    println!("\n{table}");
    if !args.no_record {
        let mut section = String::new();
        writeln!(section, "## {} · seq2seq · ndarray\n", today())?;
        writeln!(section, "- Machine: {}", cpu_description())?;
        writeln!(section, "- Command: `{}`", super::command_line())?;
        writeln!(
            section,
            "- The course's sin -> cos exercise, {EPOCHS} epochs, batch 16, seeds {SEEDS:?}; rensa's release example \
             (`cargo run --release -p seq2seq`) then Keras run one after the other on the same machine. \
             Train time excludes start-up and prediction.\n"
        )?;
        section.push_str(&table);
        record(&section)?;
    }
    Ok(())
}

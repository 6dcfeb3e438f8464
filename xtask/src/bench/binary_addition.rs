//! `cargo xtask bench binary-addition`: the course's binary-addition RNN, 10,000 single-pair
//! steps with the hand-written BPTT and with autodiff, plus the batched mode trained until every
//! sum is exact, against the course's numpy code with `--peers`.

use anyhow::{Context, Result};
use std::fmt::Write as _;

use super::{BackendKind, BenchArgs, cpu_description, median, record_run, run_example};
use crate::peers::run_script;

const SEEDS: [u64; 3] = [0, 1, 2];
const ITERS: usize = 10_000;
/// The batched mode: 32 pairs per step, lr 2, stop once all 16,384 sums are exact (checked
/// every 50 steps, the checks included in the time).
const BATCHED: &[&str] = &[
    "--batch",
    "32",
    "--lr",
    "2",
    "--until-exact",
    "--eval-every",
    "50",
];

/// What one run reports.
struct Run {
    train_s: f64,
    steps: usize,
    exact: f64,
    backend: String,
}

fn parse(stdout: &str, who: &str) -> Result<Run> {
    let v = crate::peers::last_json(stdout, who)?;
    Ok(Run {
        train_s: v["train_s"].as_f64().context("train_s")?,
        steps: v["steps"]
            .as_u64()
            .or_else(|| v["iters"].as_u64())
            .context("steps")? as usize,
        exact: v["exact_all_pairs"].as_f64().context("exact_all_pairs")?,
        backend: v["backend"].as_str().unwrap_or("").to_string(),
    })
}

fn rensa(backend: BackendKind, seed: u64, extra: &[&str]) -> Result<Run> {
    let mut args = vec!["--json", "--iters", "10000", "--out"];
    let out = crate::peers::workspace_root().join("target/bench-binary-addition");
    let out = out.to_str().context("a UTF-8 path")?.to_string();
    args.push(&out);
    let seed = seed.to_string();
    args.extend(["--seed", &seed]);
    args.extend(extra);
    parse(
        &run_example("binary-addition", backend, &args)?,
        "binary-addition",
    )
}

pub fn run(args: &BenchArgs) -> Result<()> {
    eprintln!("binary-addition bench: {ITERS} steps, seeds {SEEDS:?}");
    let mut rows: Vec<(String, Vec<Run>)> = Vec::new();
    let mut adapter = String::new();
    let configs: [(&str, &[&str]); 4] = [
        ("hand-written BPTT, 1 pair/step", &["--trainer", "bptt"]),
        (
            "autodiff + burn SGD, 1 pair/step",
            &["--trainer", "autodiff"],
        ),
        (
            "autodiff, plain path (every step recorded), 1 pair/step",
            &["--trainer", "autodiff", "--plain-autodiff"],
        ),
        ("hand-written BPTT, batched until exact", BATCHED),
    ];
    let backend_name = args.backend_name();
    for (name, extra) in configs {
        let mut runs = Vec::new();
        for &seed in &SEEDS {
            let run = rensa(args.backend, seed, extra)?;
            adapter = format!("rensa backend: {}", run.backend);
            runs.push(run);
        }
        rows.push((format!("rensa ({backend_name}): {name}"), runs));
    }
    if args.peers {
        eprintln!("running the course's numpy code...");
        let runs = SEEDS
            .iter()
            .map(|&s| {
                parse(
                    &run_script(
                        "numpy_binary_addition.py",
                        &[ITERS.to_string(), s.to_string()],
                    )?,
                    "the numpy peer",
                )
            })
            .collect::<Result<Vec<_>>>()?;
        rows.push(("course numpy (1 pair/step)".into(), runs));
    }
    let reference = median(rows[0].1.iter().map(|r| r.train_s).collect());
    let numpy = args
        .peers
        .then(|| median(rows[rows.len() - 1].1.iter().map(|r| r.train_s).collect()));
    let mut table = String::from(
        "| program | train time (median of 3) | time / BPTT time | numpy time / time | steps | exact sums over all 16,384 pairs (per seed) |\n| --- | ---: | ---: | ---: | ---: | --- |\n",
    );
    for (name, runs) in &rows {
        let t = median(runs.iter().map(|r| r.train_s).collect());
        // the batched mode trains other steps (32 pairs, lr 2, until exact) than numpy's
        // 10,000 single pairs: no ratio between them
        let same_work = !name.contains("batched");
        let speedup = numpy
            .filter(|_| same_work)
            .map_or("-".to_string(), |n| format!("{:.1}x", n / t));
        let steps = runs
            .iter()
            .map(|r| r.steps.to_string())
            .collect::<Vec<_>>()
            .join(" / ");
        let exact = runs
            .iter()
            .map(|r| format!("{:.2}%", 100.0 * r.exact))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(
            table,
            "| {name} | {t:.3} s | {:.2}x | {speedup} | {steps} | {exact} |",
            t / reference
        )?;
    }
    println!("\n{adapter}\n{table}");
    record_run(
        args,
        ("binary-addition", backend_name),
        &format!("{}; {adapter}", cpu_description()),
        &format!(
            "The course's RNN (16 sigmoid units, normal init, lr 0.1), seeds {SEEDS:?}; the release example \
             (`cargo run --release -p binary-addition`) and the course's numpy code (xtask/peers/numpy_binary_addition.py) \
             one after the other. Train time is the training loop only; the batched rows include the accuracy checks \
             (`{}`). The autodiff rows: rensa's fused recurrence node (default) and the plain path (`--plain-autodiff`).",
            BATCHED.join(" ")
        ),
        &table,
    )?;
    Ok(())
}

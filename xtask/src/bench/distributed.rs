//! `cargo xtask bench distributed`: data-parallel training of the seq2seq example (an LSTM
//! encoder-decoder) on ndarray: samples/s of one process on one thread, of two processes on one
//! thread each (an orchestrator on 127.0.0.1, the ring between them), of two peers on threads of
//! one process, and of one process on two threads; the all-reduce's share of the training time
//! and the bytes each peer hands to it per step.

use anyhow::{Context, Result, bail};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{BackendKind, BenchArgs, cpu_description, example_binary, median, record_run};
use crate::peers::workspace_root;

/// The model and run: big enough that a step is not all overhead, small enough for 2 cores.
const MODEL: [&str; 10] = [
    "--cell",
    "lstm",
    "--hidden",
    "128",
    "--batch-size",
    "32",
    "--epochs",
    "50",
    "--checkpoint-every",
    "1000",
];

/// One configuration's figures from one run.
#[derive(Clone, Copy, Default)]
struct Figures {
    samples_per_s: f64,
    allreduce_share: f64,
    allreduce_ms: f64,
    bytes_per_step: f64,
}

fn out_dir(name: &str) -> PathBuf {
    workspace_root().join("target/bench-distributed").join(name)
}

/// Samples per second of a finished run, from its history (items and seconds of every epoch).
fn samples_per_s(out: &Path) -> Result<f64> {
    let text = std::fs::read_to_string(out.join("history.json"))
        .with_context(|| format!("reading {}", out.join("history.json").display()))?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    let epochs = v["epochs"].as_array().context("history.json: epochs")?;
    let (mut items, mut seconds) = (0.0, 0.0);
    for e in epochs {
        items += e["items"].as_f64().context("items")?;
        seconds += e["seconds"].as_f64().context("seconds")?;
    }
    Ok(items / seconds)
}

/// The `data-parallel:` line of a leader's output.
fn traffic(stdout: &str, figures: &mut Figures) -> Result<()> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("data-parallel:"))
        .with_context(|| format!("no data-parallel line in:\n{stdout}"))?;
    let number_before = |marker: &str| -> Result<f64> {
        let head = &line[..line
            .find(marker)
            .with_context(|| format!("{marker} in {line}"))?];
        head.split_whitespace()
            .last()
            .and_then(|w| w.trim_start_matches('(').parse().ok())
            .with_context(|| format!("a number before {marker} in {line}"))
    };
    figures.allreduce_share = number_before("% of the training time")?;
    figures.allreduce_ms = number_before(" ms per step")?;
    figures.bytes_per_step = number_before(" bytes per step")?;
    Ok(())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn run_one(binary: &Path, name: &str, extra: &[&str]) -> Result<Figures> {
    let out = out_dir(name);
    let mut args = vec![
        "--quiet",
        "--overwrite",
        "--out",
        out.to_str().context("UTF-8")?,
    ];
    args.extend(MODEL);
    args.extend(extra);
    let stdout = super::run_binary(binary, &args)?;
    let mut f = Figures {
        samples_per_s: samples_per_s(&out)?,
        ..Figures::default()
    };
    if extra.contains(&"--peers") {
        traffic(&stdout, &mut f)?;
    }
    Ok(f)
}

/// Two processes of one thread each, node 0 serving the orchestrator.
fn run_two_processes(binary: &Path) -> Result<Figures> {
    let orchestrator = format!("ws://127.0.0.1:{}", free_port()?);
    let mut children = Vec::new();
    for node in [1, 0] {
        let out = out_dir(&format!("two-processes-{node}"));
        let address = format!("ws://127.0.0.1:{}", free_port()?);
        let child = Command::new(binary)
            .current_dir(workspace_root())
            .args(["--quiet", "--overwrite", "--threads", "1", "--out"])
            .arg(&out)
            .args(MODEL)
            .args(["--nodes", "2", "--node-id", &node.to_string()])
            .args(["--orchestrator", &orchestrator, "--node-address", &address])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting a node")?;
        children.push((node, out, child));
    }
    let mut leader = None;
    for (node, out, child) in children {
        let output = child.wait_with_output()?;
        if !output.status.success() {
            bail!(
                "node {node} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if node == 0 {
            leader = Some((out, String::from_utf8(output.stdout)?));
        }
    }
    let (out, stdout) = leader.context("node 0")?;
    let mut f = Figures {
        samples_per_s: samples_per_s(&out)?,
        ..Figures::default()
    };
    traffic(&stdout, &mut f)?;
    Ok(f)
}

fn medians(runs: &[Figures]) -> Figures {
    let m = |f: fn(&Figures) -> f64| median(runs.iter().map(f).collect());
    Figures {
        samples_per_s: m(|f| f.samples_per_s),
        allreduce_share: m(|f| f.allreduce_share),
        allreduce_ms: m(|f| f.allreduce_ms),
        bytes_per_step: m(|f| f.bytes_per_step),
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.backend != BackendKind::Ndarray {
        bail!("bench distributed runs on ndarray (processes of one CPU thread each)");
    }
    let binary = example_binary("seq2seq", BackendKind::Ndarray)?;
    let runs = args.runs.unwrap_or(3);
    type Config<'a> = (&'a str, &'a [&'a str]);
    let configs: [Config; 3] = [
        ("1 process, 1 thread", &["--threads", "1"]),
        ("1 process, 2 threads", &["--threads", "2"]),
        (
            "1 process, 2 peers (threads)",
            &["--threads", "2", "--peers", "2"],
        ),
    ];
    let mut rows: Vec<(String, Figures)> = Vec::new();
    let mut two = Vec::new();
    let mut each: Vec<Vec<Figures>> = vec![Vec::new(); configs.len()];
    // interleaved, so that the machine's drift reaches every configuration alike
    for r in 0..runs {
        for (i, (name, extra)) in configs.iter().enumerate() {
            let f = run_one(&binary, &format!("c{i}"), extra)?;
            eprintln!("run {}: {name}: {:.0} samples/s", r + 1, f.samples_per_s);
            each[i].push(f);
        }
        let f = run_two_processes(&binary)?;
        eprintln!(
            "run {}: 2 processes: {:.0} samples/s, all-reduce {:.1}%",
            r + 1,
            f.samples_per_s,
            f.allreduce_share
        );
        two.push(f);
    }
    for ((name, _), runs) in configs.iter().zip(&each) {
        rows.push((name.to_string(), medians(runs)));
    }
    rows.push((
        "2 processes (nodes), 1 thread each".to_string(),
        medians(&two),
    ));
    let base = rows[0].1.samples_per_s;
    let mut table = String::from(
        "| configuration | samples/s | vs 1 process, 1 thread | all-reduce share of training time | all-reduce per step | bytes per step from each peer |\n| --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (name, f) in &rows {
        let comm = if f.bytes_per_step > 0.0 {
            format!(
                "{:.1}% | {:.3} ms | {:.0}",
                f.allreduce_share, f.allreduce_ms, f.bytes_per_step
            )
        } else {
            "— | — | —".to_string()
        };
        writeln!(
            table,
            "| {name} | {:.0} | {:.2}x | {comm} |",
            f.samples_per_s,
            f.samples_per_s / base
        )?;
    }
    println!("{table}");
    let about = format!(
        "The seq2seq example ({}) trained with data parallelism (rensa-train `distributed`, \
         burn-collective 0.21): every step's batch of 32 is cut into one shard per peer and the \
         gradients are summed over the peers in one all-reduce (local: tree; between \
         processes: ring over WebSocket on 127.0.0.1). Samples/s from the runs' histories \
         (training windows over epoch time, which includes the validation pass every peer runs in full), medians of {runs} interleaved runs; the all-reduce figures are \
         the leader's (time waiting for the other peer included).",
        MODEL.join(" ")
    );
    record_run(
        args,
        ("data-parallel training", "ndarray"),
        &cpu_description(),
        &about,
        &table,
    )
}

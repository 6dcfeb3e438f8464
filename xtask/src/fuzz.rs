//! `cargo xtask fuzz TARGET --minutes N`: runs one target of rensa-augment's property-based fuzz
//! harness (`crates/rensa-augment/tests/suite/fuzz.rs`) with fresh seeds until the time is up, and
//! reports how many cases ran, all without a panic (a failing case stops the run and prints
//! the shrunk input and the seed that reproduces it).

use anyhow::{Context, Result, bail};
use clap::Args;
use std::process::Command;
use std::time::{Duration, Instant};

/// The fuzz targets, by name, and the test that runs each.
const TARGETS: &[(&str, &str)] = &[
    (
        "pipelines",
        "fuzz::pipelines_of_every_operation_and_combinator",
    ),
    ("plans", "fuzz::plans_replayed_from_corrupted_json"),
];

/// `cargo xtask fuzz` arguments.
#[derive(Args, Clone, Debug)]
pub struct FuzzArgs {
    /// What to fuzz: `pipelines` (pipeline JSON of every operation and nested combinators, on
    /// the CPU and the tensor path) or `plans` (plans replayed from corrupted JSON).
    pub target: String,
    /// How long to run.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Cases per seed (one run of the test binary).
    #[arg(long, default_value_t = 20_000)]
    pub cases_per_seed: u64,
    /// The first seed; each later run takes the next.
    #[arg(long, default_value_t = 1)]
    pub first_seed: u64,
}

pub fn run(args: FuzzArgs) -> Result<()> {
    let Some(&(_, test)) = TARGETS.iter().find(|(name, _)| *name == args.target) else {
        let names: Vec<&str> = TARGETS.iter().map(|(n, _)| *n).collect();
        bail!(
            "unknown fuzz target `{}` (known: {})",
            args.target,
            names.join(", ")
        );
    };
    if !(args.minutes > 0.0 && args.minutes.is_finite()) {
        bail!("--minutes must be a positive number, got {}", args.minutes);
    }
    let build = Command::new(env!("CARGO"))
        .args([
            "test",
            "--release",
            "-p",
            "rensa-augment",
            "--test",
            "suite",
            "--no-run",
        ])
        .status()
        .context("building the fuzz harness")?;
    if !build.success() {
        bail!("building the fuzz harness failed");
    }
    let deadline = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    let (mut seed, mut total) = (args.first_seed, 0u64);
    while Instant::now() < deadline {
        let out = Command::new(env!("CARGO"))
            .args([
                "test",
                "--release",
                "-q",
                "-p",
                "rensa-augment",
                "--test",
                "suite",
            ])
            .args(["--", test, "--exact", "--nocapture"])
            .env("RENSA_FUZZ_CASES", args.cases_per_seed.to_string())
            .env("RENSA_FUZZ_SEED", seed.to_string())
            .output()
            .context("running the fuzz harness")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
            bail!(
                "fuzz {}: a case failed with RENSA_FUZZ_SEED={seed} (after {total} passing cases)",
                args.target
            );
        }
        if !stdout.contains("no panic") {
            bail!("the fuzz harness printed no count:\n{stdout}");
        }
        total += args.cases_per_seed;
        seed += 1;
        eprintln!("fuzz {}: {total} cases, no panic", args.target);
    }
    println!(
        "fuzz {}: {total} cases (seeds {}..{seed}, {} per seed) in {} minutes, no panic",
        args.target, args.first_seed, args.cases_per_seed, args.minutes
    );
    Ok(())
}

//! Benchmarks: timing helpers, machine description and BENCHMARKS.md records.

mod attention;
mod augment;
mod binary_addition;
mod distributed;
mod hred;
mod recurrent;
mod seq2seq;
mod vae;
mod vqvae;
mod word2vec;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

/// `--prebuilt` and `--record-to` of this run, set once by [`run`] for the helpers below.
static PREBUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
static RECORD_TO: OnceLock<Option<PathBuf>> = OnceLock::new();

/// `cargo xtask bench` arguments.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// Which benchmarks to run (default: `recurrent`, `seq2seq`, `binary-addition` and `augment`;
    /// the others train models for minutes to hours and run only when named).
    #[arg(value_enum)]
    pub which: Vec<Which>,
    /// The burn backend rensa and burn-nn run on.
    #[arg(long, value_enum, default_value_t = BackendKind::Ndarray)]
    pub backend: BackendKind,
    /// Also run the Python peers (creates `.venv-peers` with TensorFlow, albumentations and gensim on first use).
    #[arg(long)]
    pub peers: bool,
    /// Include the large case that runs by default only on a GPU: the recurrent shape (128, 100,
    /// 512, 1024).
    #[arg(long)]
    pub large: bool,
    /// Timed runs per measurement (after warm-up); default depends on the size.
    #[arg(long)]
    pub runs: Option<usize>,
    /// Print only; do not append to BENCHMARKS.md.
    #[arg(long)]
    pub no_record: bool,
    /// `attention`, `hred-chitchat`: example runs at once, each on one thread (1: one run at a time on all cores).
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// `vae`, `hred`, `hred-chitchat`, `word2vec-tensor`: train for this many epochs
    /// instead of the bench's own number (`hred` then also evaluates on fewer samples). A short
    /// run for speed figures (on a lent GPU machine, say): its quality figures are not the
    /// bars', and its record says so.
    #[arg(long, value_parser = at_least_one)]
    pub epochs: Option<usize>,
    /// `vae`: run only the first N of the bench's seeds.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub seeds: Option<usize>,
    /// Run the examples' binaries found in DIR, named as in `target/bench-bin` (`vae-wgpu`, ...),
    /// instead of building them: for a machine without cargo (see `cargo xtask gpu-bundle`).
    #[arg(long, value_name = "DIR")]
    pub prebuilt: Option<PathBuf>,
    /// Append the records to FILE instead of the workspace's BENCHMARKS.md.
    #[arg(long, value_name = "FILE")]
    pub record_to: Option<PathBuf>,
}

/// A count of 1 or more, for clap.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("expected a whole number of at least 1, got {s:?}")),
    }
}

impl BenchArgs {
    /// The epochs to train for: `--epochs` when given, else the bench's own `default`.
    pub fn epochs_or(&self, default: usize) -> usize {
        self.epochs.unwrap_or(default)
    }

    /// The first `--seeds` of `seeds` (all of them without the flag).
    pub fn seeds_of<'a, T>(&self, seeds: &'a [T]) -> &'a [T] {
        &seeds[..self.seeds.unwrap_or(seeds.len()).min(seeds.len())]
    }

    /// For the record of a bench that honours `--epochs`: what a shortened run is (empty
    /// without the flag).
    pub fn shortened_note(&self) -> String {
        match self.epochs {
            Some(n) => format!(
                " Shortened to {n} epoch(s) by `--epochs`: a speed run, whose quality figures are \
                 not the bars'; a rate over one or two epochs includes the first one's warm-up \
                 (on wgpu: shader compilation and autotuning)."
            ),
            None => String::new(),
        }
    }

    /// The backend's name in records.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            BackendKind::Ndarray => "ndarray",
            BackendKind::Wgpu => "wgpu",
        }
    }
}

/// The benchmarks.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// RNN/LSTM/GRU forward+backward: rensa vs burn-nn (and Keras/TF with --peers).
    Recurrent,
    /// The seq2seq example over 3 seeds (and the Keras exercise with --peers).
    Seq2seq,
    /// The binary-addition example over 3 seeds (and the course's numpy code with --peers).
    BinaryAddition,
    /// Image augmentation: per-operation images/s (and albumentations with --peers), all-core and tensor-path throughput.
    Augment,
    /// The attention example: held-out exact match with and without attention (reverse, dates).
    Attention,
    /// The attention example's date model: training examples/s (against Keras/TF with --peers).
    AttentionSpeed,
    /// The vae example on Fashion-MNIST: test -ELBO over 3 seeds, MLP and convolutional (against
    /// numpy, and Keras/TF for the epoch time, with --peers).
    Vae,
    /// The dialogue example on generated dialogues: HRED against the exact perplexity floor, a
    /// seq2seq over the last turn, VHRED with and without its remedies for posterior collapse.
    Hred,
    /// The dialogue example on the chitchat dataset: HRED and VHRED perplexity, distinct-n.
    HredChitchat,
    /// The vq-vae example on Fashion-MNIST: reconstruction MSE, codebook usage and perplexity with
    /// the EMA and the plain quantiser, and the code prior's bits per code.
    VqVae,
    /// The word2vec example on the English corpus: words/s, analogy accuracy and word-similarity
    /// correlations of CBOW and skip-gram over 3 seeds (against gensim with --peers).
    Word2vec,
    /// The word2vec example's CPU trainer with one and two worker threads (run it on an idle
    /// machine).
    Word2vecThreads,
    /// The word2vec example's batched tensor trainer on --backend, with the evaluation.
    Word2vecTensor,
    /// Data-parallel training of the seq2seq example: samples/s of 1 and 2 processes (and
    /// threads), the all-reduce's share of the time and its bytes per step.
    Distributed,
}

/// The backends a benchmark can run on.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// burn's ndarray backend (CPU).
    Ndarray,
    /// burn's wgpu backend (GPU through Vulkan/Metal/DX12, or a software adapter).
    Wgpu,
}

pub fn run(args: BenchArgs) -> Result<()> {
    if cfg!(debug_assertions) {
        // `cargo xtask` builds in the dev profile, which the tests share; measure optimised code.
        return rerun_in_release();
    }
    PREBUILT.get_or_init(|| args.prebuilt.clone());
    RECORD_TO.get_or_init(|| args.record_to.clone());
    let which = if args.which.is_empty() {
        vec![
            Which::Recurrent,
            Which::Seq2seq,
            Which::BinaryAddition,
            Which::Augment,
        ]
    } else {
        args.which.clone()
    };
    for w in which {
        match w {
            Which::Recurrent => recurrent::run(&args)?,
            Which::Seq2seq => seq2seq::run(&args)?,
            Which::BinaryAddition => binary_addition::run(&args)?,
            Which::Augment => augment::run(&args)?,
            Which::Attention => attention::run(&args)?,
            Which::AttentionSpeed => attention::speed(&args)?,
            Which::Vae => vae::run(&args)?,
            Which::VqVae => vqvae::run(&args)?,
            Which::Hred => hred::run(&args)?,
            Which::HredChitchat => hred::chitchat(&args)?,
            Which::Word2vec => word2vec::run(&args)?,
            Which::Word2vecThreads => word2vec::threads(&args)?,
            Which::Word2vecTensor => word2vec::tensor(&args)?,
            Which::Distributed => distributed::run(&args)?,
        }
    }
    Ok(())
}

/// Runs this same command from a release build of xtask.
fn rerun_in_release() -> Result<()> {
    eprintln!("building the benchmarks in release mode...");
    let status = crate::peers::xtask_with_tasks(true)
        .args(std::env::args_os().skip(1))
        .status()
        .context("running cargo")?;
    if !status.success() {
        anyhow::bail!("the release benchmark run failed ({status})");
    }
    Ok(())
}

/// Builds the release binary of the example `package` (with the `wgpu` feature for that backend)
/// and copies it to `target/bench-bin/`, so that every run of a bench uses the one build made
/// at its start, even if the sources (or the release build) change while it runs.
///
/// With `--prebuilt DIR` the binary is taken from DIR as it is, and nothing is built.
pub fn example_binary(package: &str, backend: BackendKind) -> Result<std::path::PathBuf> {
    let exe = std::env::consts::EXE_SUFFIX;
    let name = format!("{package}-{backend:?}{exe}").to_lowercase();
    if let Some(dir) = PREBUILT.get().and_then(Option::as_ref) {
        let path = std::path::absolute(dir.join(&name))?;
        anyhow::ensure!(
            path.is_file(),
            "--prebuilt: no {} (the {package} example built for {backend:?})",
            path.display()
        );
        return Ok(path);
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = crate::peers::workspace_root();
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(&root)
        .args(["build", "--release", "--quiet", "-p", package]);
    if backend == BackendKind::Wgpu {
        cmd.args(["--features", "wgpu"]);
    }
    let status = cmd
        .status()
        .with_context(|| format!("building the {package} example"))?;
    anyhow::ensure!(
        status.success(),
        "building the {package} example failed ({status})"
    );
    let built = root.join(format!("target/release/{package}{exe}"));
    let dir = root.join("target/bench-bin");
    std::fs::create_dir_all(&dir)?;
    let copy = dir.join(name);
    std::fs::copy(&built, &copy)
        .with_context(|| format!("copying {} to {}", built.display(), copy.display()))?;
    Ok(copy)
}

/// The record's remark on `--jobs`: empty for one run at a time.
pub fn jobs_note(jobs: usize, figures: &str) -> String {
    if jobs > 1 {
        format!("{jobs} runs at a time, one thread each: {figures}.")
    } else {
        String::new()
    }
}

/// Runs `run` on every case, `jobs` at a time; with more than one job each case gets one
/// thread (`Some(1)`), else all of them (`None`). The results in the order of `cases`.
pub fn run_jobs<C: Sync, T: Send>(
    jobs: usize,
    cases: &[C],
    run: impl Fn(&C, Option<usize>) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if jobs <= 1 {
        return cases.iter().map(|c| run(c, None)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<T>>>> =
        cases.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..jobs.min(cases.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(case) = cases.get(i) else { break };
                    let outcome = run(case, Some(1));
                    *results[i].lock().expect("a result slot") = Some(outcome);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|r| {
            r.into_inner()
                .expect("a result slot")
                .expect("every case ran")
        })
        .collect()
}

/// Runs an example's binary (from [`example_binary`]) in the workspace root; its standard output.
pub fn run_binary(binary: &std::path::Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(binary)
        .current_dir(crate::peers::workspace_root())
        .args(args)
        .output()
        .with_context(|| format!("running {}", binary.display()))?;
    if !out.status.success() {
        anyhow::bail!(
            "{} failed ({}):\n{}",
            binary.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Builds the example `package` for `backend` and runs it with `args` (see [`example_binary`]).
pub fn run_example(package: &str, backend: BackendKind, args: &[&str]) -> Result<String> {
    run_binary(&example_binary(package, backend)?, args)
}

/// Wall time of one call in milliseconds. `run` must return only once the device finished.
pub fn time_ms(run: impl FnOnce()) -> f64 {
    let start = Instant::now();
    run();
    start.elapsed().as_secs_f64() * 1e3
}

/// The median of measurements.
pub fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "median of no measurements");
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// "model name, N cores" from /proc/cpuinfo.
pub fn cpu_description() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = info
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // the widest vector extension, on which several kernels' speed depends
    let flags: Vec<&str> = info
        .lines()
        .find_map(|l| l.strip_prefix("flags"))
        .map(|f| {
            f.trim_start_matches([' ', '\t', ':'])
                .split_whitespace()
                .collect()
        })
        .unwrap_or_default();
    let isa = if flags.contains(&"avx512f") {
        ", AVX-512"
    } else if flags.contains(&"avx2") {
        ", AVX2, no AVX-512"
    } else {
        ""
    };
    format!("{model}, {cores} cores{isa}")
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Appends a section to BENCHMARKS.md, or to `--record-to`'s file (creating it with its header if
/// needed).
pub fn record(section: &str) -> Result<()> {
    let path = match RECORD_TO.get().and_then(Option::as_ref) {
        Some(path) => path.clone(),
        None => crate::peers::workspace_root().join("BENCHMARKS.md"),
    };
    let mut text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "# Benchmarks\n\nFigures measured with `cargo xtask bench`; each section says when, on what machine and \
             backend, and with which command. Ratios compare programs measured in the same run.\n"
                .to_string()
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push('\n');
    text.push_str(section);
    // Written to a temporary file and renamed, so an interrupted write never truncates the record.
    rensa_train::write_atomic(&path, text.as_bytes())?;
    eprintln!("appended to {}", path.display());
    Ok(())
}

/// Appends a run to BENCHMARKS.md unless `--no-record`: a heading `## date · title · backend`,
/// the machine (with the wgpu adapter on that backend), the command line, `about` (what was
/// measured and how) and the table.
pub fn record_run(
    args: &BenchArgs,
    heading: (&str, &str),
    machine: &str,
    about: &str,
    table: &str,
) -> Result<()> {
    if args.no_record {
        return Ok(());
    }
    let (title, backend) = heading;
    // On wgpu the adapter, unless the bench's own machine line names it (an example's report).
    let machine = match args.backend {
        BackendKind::Wgpu if !machine.contains("wgpu") => {
            format!("{}; host {machine}", wgpu_adapter().0)
        }
        _ => machine.to_string(),
    };
    record(&format!(
        "## {} · {title} · {backend}\n\n- Machine: {machine}\n- Command: `{}`\n- {about}\n\n{table}",
        today(),
        command_line()
    ))
}

/// Initialises wgpu (once per process) and describes the adapter it picked; `true` when it is
/// not a CPU (software) adapter.
pub fn wgpu_adapter() -> (String, bool) {
    static ADAPTER: OnceLock<(String, bool)> = OnceLock::new();
    ADAPTER
        .get_or_init(|| {
            use burn::backend::wgpu::{WgpuDevice, graphics::AutoGraphicsApi, init_setup};
            let setup = init_setup::<AutoGraphicsApi>(&WgpuDevice::default(), Default::default());
            let info = setup.adapter.get_info();
            let kind = format!("{:?}", info.device_type);
            let on_gpu = kind != "Cpu";
            let note = if on_gpu {
                ""
            } else {
                " — a software adapter: these are not GPU figures"
            };
            (
                format!(
                    "wgpu adapter \"{}\" ({kind}, {:?}, driver {} {}){note}",
                    info.name, info.backend, info.driver, info.driver_info
                ),
                on_gpu,
            )
        })
        .clone()
}

/// The command line that was run, for the record.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo xtask {}", args.join(" "))
}

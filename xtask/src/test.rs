//! `cargo xtask test`: the whole test suite, on ndarray and on wgpu.

use anyhow::{Context, Result, bail};
use clap::Args;
use std::path::Path;
use std::process::Command;

/// `cargo xtask test` arguments.
#[derive(Args, Clone, Debug)]
pub struct TestArgs {
    /// Do not try to install a Vulkan driver (fail instead when none is found).
    #[arg(long)]
    pub no_install: bool,
    /// Run the suite this many times in a row, stopping at the first failure (a stress run:
    /// a test that passes only sometimes shows here).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Skip the check that the seq2seq example, built with `--features wgpu`, trains on the
    /// adapter wgpu finds and, with no adapter at all, exits with a clear error.
    #[arg(long)]
    pub no_wgpu_example: bool,
    /// Extra arguments passed to `cargo test` (after `--workspace`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub cargo_args: Vec<String>,
}

use rensa_testkit::vulkan_present;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

/// Makes sure a Vulkan loader and driver are present, installing Mesa's (which includes the
/// lavapipe software driver) with apt-get when running as root on Debian/Ubuntu.
pub fn ensure_vulkan(install: bool) -> Result<()> {
    if vulkan_present() {
        return Ok(());
    }
    let hint = "the wgpu tests need a Vulkan driver: `apt-get install mesa-vulkan-drivers libvulkan1` \
                (Mesa's lavapipe runs them on the CPU when there is no GPU)";
    if !install || !is_root() || !Path::new("/usr/bin/apt-get").exists() {
        bail!("no Vulkan driver found; {hint}");
    }
    eprintln!("installing Mesa's Vulkan drivers (lavapipe) for the wgpu tests...");
    let apt = |args: &[&str]| -> Result<()> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("apt-get {} failed ({status}); {hint}", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", "mesa-vulkan-drivers", "libvulkan1"])?;
    if !vulkan_present() {
        bail!("Mesa's Vulkan drivers were installed but no driver was found; {hint}");
    }
    Ok(())
}

/// The features the suite is built with; the wgpu example check adds its own to the same set, so
/// that it reuses the suite's build.
const SUITE_FEATURES: &str = "xtask/tasks";

pub fn run(args: TestArgs) -> Result<()> {
    ensure_vulkan(!args.no_install)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = crate::peers::workspace_root();
    for run in 1..=args.repeat {
        if args.repeat > 1 {
            eprintln!("== cargo test, run {run} of {}", args.repeat);
        }
        let status = Command::new(&cargo)
            .current_dir(&root)
            // xtask's own tests (the benches' parsing and tables) need its `tasks` feature
            .args(["test", "--workspace", "--features", SUITE_FEATURES])
            .args(&args.cargo_args)
            // the wgpu tests fail instead of skipping when the driver is missing
            .env("RENSA_REQUIRE_WGPU", "1")
            .status()
            .context("running cargo test")?;
        if !status.success() {
            bail!(
                "cargo test failed ({status}) in run {run} of {}",
                args.repeat
            );
        }
    }
    if args.repeat > 1 {
        eprintln!("== all {} runs of the suite passed", args.repeat);
    }
    if !args.no_wgpu_example {
        wgpu_example(&cargo, &root)?;
    }
    Ok(())
}

/// The README's GPU command, as a user runs it: the seq2seq example built with `--features wgpu`
/// trains one epoch on the adapter wgpu picks (lavapipe on a machine without a GPU), and started
/// where wgpu finds no adapter at all (the Vulkan loader pointed at a driver list that does not
/// exist) it exits non-zero with rensa's error, not a panic.
///
/// The build shares the suite's target folder and resolves features as the suite's build did:
/// the whole workspace with `xtask/tasks`, and the examples too, so that the dev-dependencies'
/// features count (burn's `train`, say). Only rensa-launch (with `wgpu`) and seq2seq compile
/// again: 46 s here, where `cargo build -p seq2seq --features wgpu` rebuilt 68 crates, burn among
/// them, in 4 min 49 s. The program is the user's, with those extra features of its
/// dependencies on.
fn wgpu_example(cargo: &str, root: &Path) -> Result<()> {
    eprintln!("== the seq2seq example with --features wgpu");
    let status = Command::new(cargo)
        .current_dir(root)
        .args([
            "build",
            "--workspace",
            "--features",
            &format!("{SUITE_FEATURES},seq2seq/wgpu"),
            "--bin",
            "seq2seq",
            "--examples",
        ])
        .status()
        .context("building the seq2seq example with --features wgpu")?;
    if !status.success() {
        bail!("building the seq2seq example with --features wgpu failed ({status})");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join("debug").join("seq2seq");
    let out = target.join("tmp").join("wgpu-example");
    let run = |no_adapter: bool| -> Result<std::process::Output> {
        let mut command = Command::new(&binary);
        command
            .current_dir(root)
            .args(["--epochs", "1", "--overwrite", "--quiet", "--out"])
            .arg(&out)
            .env("RUST_BACKTRACE", "0");
        if no_adapter {
            let nothing = target.join("tmp").join("no-such-vulkan-driver.json");
            command
                .env("VK_DRIVER_FILES", &nothing)
                .env("VK_ICD_FILENAMES", &nothing);
        }
        command
            .output()
            .with_context(|| format!("starting {}", binary.display()))
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let trained = run(false)?;
    let said = text(&trained);
    if !trained.status.success() || !said.contains("backend: wgpu") {
        bail!(
            "the seq2seq example with --features wgpu did not train on wgpu ({}):\n{said}",
            trained.status
        );
    }
    eprintln!(
        "{}",
        said.lines()
            .find(|l| l.contains("backend: wgpu"))
            .unwrap_or_default()
    );
    let refused = run(true)?;
    let said = text(&refused);
    if refused.status.success()
        || !said.contains("wgpu found no graphics adapter")
        || said.contains("panicked")
    {
        bail!(
            "with no wgpu adapter, the seq2seq example should exit non-zero with a clear error, \
             not a panic ({}):\n{said}",
            refused.status
        );
    }
    eprintln!("with no adapter: {}", said.trim());
    Ok(())
}

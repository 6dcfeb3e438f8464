//! The Python peers: a virtual environment that xtask creates on request, and the project's own
//! peer scripts under `xtask/peers/`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The packages the peer scripts need, pinned to the versions the figures were taken with.
const REQUIREMENTS: &[&str] = &[
    "tensorflow-cpu==2.21.0",
    "numpy",
    "albumentations==2.0.8",
    "opencv-python-headless==5.0.0.93",
    "gensim==4.4.0",
];

/// The workspace root (the parent of `xtask/`): where xtask was built, or, for a binary carried to
/// another machine (`cargo xtask gpu-bundle`), the current directory when that is gone.
pub fn workspace_root() -> PathBuf {
    let built = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace");
    if built.join("Cargo.toml").is_file() {
        return built.to_path_buf();
    }
    std::env::current_dir().unwrap_or_else(|_| built.to_path_buf())
}

/// The venv's python, creating the venv and installing the requirements on first use.
pub fn python() -> Result<PathBuf> {
    let venv = workspace_root().join(".venv-peers");
    let python = venv.join("bin/python");
    let stamp = venv.join(".rensa-requirements");
    let wanted = REQUIREMENTS.join("\n");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(python);
    }
    eprintln!(
        "creating the peers' virtual environment in {} (once)...",
        venv.display()
    );
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )?;
    run(
        Command::new(&python)
            .args(["-m", "pip", "install", "--quiet"])
            .args(REQUIREMENTS),
        "pip install of the peers' requirements",
    )?;
    std::fs::write(&stamp, wanted)?;
    Ok(python)
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("{what}: could not start"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Runs `xtask/peers/<script>` with `args` in the venv and returns its stdout.
pub fn run_script(script: &str, args: &[String]) -> Result<String> {
    run_script_with(&python()?, script, args)
}

/// Runs `xtask/peers/<script>` with `args` in the machine's own `python3` (`$RENSA_PEER_PYTHON`
/// when set): for peers installed there, such as PyTorch on a GPU machine.
pub fn run_system_script(script: &str, args: &[String]) -> Result<String> {
    let python = std::env::var_os("RENSA_PEER_PYTHON").unwrap_or_else(|| "python3".into());
    run_script_with(Path::new(&python), script, args)
}

fn run_script_with(python: &Path, script: &str, args: &[String]) -> Result<String> {
    let path = workspace_root().join("xtask/peers").join(script);
    let out = Command::new(python)
        .arg(&path)
        .args(args)
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}):\n{}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

#[cfg(feature = "tasks")]
/// The last JSON object line a program printed (the peers and the examples' `--json` print
/// their results that way); `who` names the program in the error.
pub fn last_json(stdout: &str, who: &str) -> Result<serde_json::Value> {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| format!("no JSON line from {who}:\n{stdout}"))?;
    serde_json::from_str(line).with_context(|| format!("{who} printed malformed JSON: {line}"))
}

/// `cargo run [--release] --package xtask --features tasks --`, from the workspace root: xtask
/// again with every command built (the default build has only `test`); the caller adds the
/// command's arguments.
pub fn xtask_with_tasks(release: bool) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root()).arg("run");
    if release {
        command.arg("--release");
    }
    command.args(["--quiet", "--package", "xtask", "--features", "tasks", "--"]);
    command
}

//! `cargo xtask gpu-bundle`: the wgpu benchmarks packed for a GPU machine that has neither cargo
//! nor a network, such as a lent cloud GPU whose time is counted in minutes.
//!
//! It builds here, in release, xtask itself and the examples the benches run (`attention`, `vae`,
//! `dialogue`, `word2vec`, each with the `wgpu` feature), strips them, and packs them with the
//! data those benches read (Fashion-MNIST, the English corpus, word2vec's evaluation files) into
//! `.gpu/bundle.tar.xz`; with `--vulkan-loader` it also downloads the Vulkan loader's Debian
//! packages into `.gl/` (machines whose image has the NVIDIA driver but no loader). Both folders
//! are git-ignored. On the GPU machine, in a copy of the repository with those two folders,
//! `sh xtask/gpu/run.sh` unpacks them and runs each wgpu bench under a time limit, with PyTorch
//! (cuDNN) beside the recurrent layers; the records go to `$OUT/BENCHMARKS-gpu.md`.

use anyhow::{Context, Result, ensure};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bench::{BackendKind, example_binary};
use crate::peers::workspace_root;

/// The examples the wgpu benches of `xtask/gpu/run.sh` run.
const EXAMPLES: [&str; 4] = ["attention", "vae", "dialogue", "word2vec"];

/// The Vulkan loader and the GL dispatch libraries that NVIDIA's Vulkan driver loads.
const LOADER_PACKAGES: [&str; 7] = [
    "libvulkan1",
    "libegl1",
    "libglvnd0",
    "libopengl0",
    "libgl1",
    "libglx0",
    "libgles2",
];

/// What the lending tools carry with a command, at most: the working tree and the carried
/// folders together.
const CARRY_LIMIT: u64 = 64 << 20;

/// `cargo xtask gpu-bundle` arguments.
#[derive(clap::Args, Clone, Debug)]
pub struct GpuBundleArgs {
    /// Also download the Vulkan loader's Debian packages (amd64) into `.gl/` with apt-get.
    #[arg(long)]
    pub vulkan_loader: bool,
}

pub fn run(args: GpuBundleArgs) -> Result<()> {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building xtask in release...");
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "--quiet",
            "-p",
            "xtask",
            "--features",
            "tasks",
        ])
        .status()
        .context("running cargo")?;
    ensure!(status.success(), "building xtask failed ({status})");

    let stage = root.join(".gpu/stage");
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    let bin = stage.join("bin");
    std::fs::create_dir_all(&bin)?;
    let exe = std::env::consts::EXE_SUFFIX;
    copy_stripped(
        &root.join(format!("target/release/xtask{exe}")),
        &bin.join(format!("xtask{exe}")),
    )?;
    for package in EXAMPLES {
        eprintln!("building the {package} example with wgpu...");
        let built = example_binary(package, BackendKind::Wgpu)?;
        copy_stripped(
            &built,
            &bin.join(built.file_name().context("a binary's name")?),
        )?;
    }

    let data = stage.join("data");
    // Raw IDX files (read, so checked, and written back unzipped): xz packs the raw images
    // about 14% smaller than their gzip files are.
    let fashion = rensa_data::fetch::fashion_mnist()?;
    let to = data.join("fashion-mnist");
    std::fs::create_dir_all(&to)?;
    for name in rensa_data::idx::MNIST_FILES {
        let from = [fashion.join(name), fashion.join(format!("{name}.gz"))]
            .into_iter()
            .find(|p| p.is_file())
            .with_context(|| format!("no {name} or {name}.gz in {}", fashion.display()))?;
        rensa_data::idx::Idx::read(&from)?.write(&to.join(name))?;
    }
    let corpus = rensa_data::fetch::english_corpus()?;
    let english = corpus.parent().context("the corpus's folder")?;
    copy_files(english, &data.join("english"), &["corpus.txt"])?;
    if english.join("SOURCES.txt").is_file() {
        copy_files(english, &data.join("english"), &["SOURCES.txt"])?;
    }
    copy_files(
        &rensa_data::fetch::word2vec_evaluation()?,
        &data.join("word2vec-eval"),
        &rensa_data::fetch::EVALUATION_FILES,
    )?;

    let bundle = root.join(".gpu/bundle.tar.xz");
    eprintln!(
        "packing {} (a few minutes: xz with a dictionary that spans the binaries, which share most \
         of their code)...",
        bundle.display()
    );
    pack(&stage, &["bin", "data"], &bundle)?;
    std::fs::remove_dir_all(&stage)?;

    if args.vulkan_loader {
        download_loader(&root.join(".gl"))?;
    }
    let carried = dir_size(&root.join(".gpu"))? + dir_size(&root.join(".gl")).unwrap_or(0);
    let tree = tree_size(&root)?;
    let mib = |bytes: u64| bytes as f64 / f64::from(1 << 20);
    println!(
        "{}: {:.1} MiB with .gl/, {:.1} MiB with the working tree that travels beside it \
         (the lending tools carry {} MiB)\n\
         on the GPU machine, in the repository root, with .gpu and .gl carried: sh xtask/gpu/run.sh",
        bundle.display(),
        mib(carried),
        mib(carried + tree),
        CARRY_LIMIT >> 20
    );
    ensure!(
        carried + tree <= CARRY_LIMIT,
        "the bundle and the working tree are over the {} MiB that is carried",
        CARRY_LIMIT >> 20
    );
    Ok(())
}

/// `tar` of `names` in `dir`, through xz's preset 9 with a 256 MiB dictionary into `to` (written
/// beside it and renamed, so that a failed pack leaves no truncated bundle). The binaries are
/// some 40 MB each and mostly the same code (burn, wgpu, CubeCL): xz's default dictionary
/// (8 MiB) sees none of that, this one packs them in half the space.
fn pack(dir: &Path, names: &[&str], to: &Path) -> Result<()> {
    let partial = to.with_extension("xz.partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut tar = Command::new("tar")
        .arg("-cf")
        .arg("-")
        .arg("-C")
        .arg(dir)
        .args(names)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("running tar")?;
    let status = Command::new("xz")
        .args(["--lzma2=preset=9,dict=256MiB", "-T1", "-c"])
        .stdin(tar.stdout.take().context("tar's output")?)
        .stdout(file)
        .status()
        .context("running xz")?;
    let tar_status = tar.wait()?;
    // xz first: when it fails, tar dies of the broken pipe and would hide why.
    ensure!(status.success(), "xz failed ({status})");
    ensure!(tar_status.success(), "tar failed ({tar_status})");
    std::fs::rename(&partial, to)
        .with_context(|| format!("renaming {} to {}", partial.display(), to.display()))?;
    Ok(())
}

/// Copies `from` to `to` without its symbols (with `strip` where there is one; a plain copy
/// otherwise).
fn copy_stripped(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    match Command::new("strip").arg(to).status() {
        Ok(s) if s.success() => {}
        _ => eprintln!("(no strip: {} is carried with its symbols)", to.display()),
    }
    Ok(())
}

fn copy_files(from: &Path, to: &Path, names: &[&str]) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for name in names {
        std::fs::copy(from.join(name), to.join(name))
            .with_context(|| format!("copying {}", from.join(name).display()))?;
    }
    Ok(())
}

fn download_loader(dir: &Path) -> Result<()> {
    eprintln!(
        "downloading the Vulkan loader's packages into {}...",
        dir.display()
    );
    std::fs::create_dir_all(dir)?;
    let lists = std::env::temp_dir().join("rensa-apt-amd64");
    std::fs::create_dir_all(lists.join("partial"))?;
    let options = [
        "-oAPT::Architecture=amd64".to_string(),
        "-oAPT::Architectures=amd64".to_string(),
        format!("-oDir::State::Lists={}", lists.display()),
    ];
    let status = Command::new("apt-get")
        .args(&options)
        .args(["-qq", "update"])
        .status()
        .context("running apt-get (the Vulkan loader is downloaded with it)")?;
    ensure!(status.success(), "apt-get update failed ({status})");
    let status = Command::new("apt-get")
        .current_dir(dir)
        .args(&options)
        .args(["-qq", "download"])
        .args(LOADER_PACKAGES)
        .status()
        .context("running apt-get download")?;
    ensure!(status.success(), "apt-get download failed ({status})");
    Ok(())
}

/// The bytes of the files git tracks or would track (untracked and not ignored): the working
/// tree that travels with a command.
fn tree_size(root: &Path) -> Result<u64> {
    let out = Command::new("git")
        .current_dir(root)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .context("running git ls-files")?;
    ensure!(out.status.success(), "git ls-files failed ({})", out.status);
    Ok(out
        .stdout
        .split(|&b| b == 0)
        .filter(|p| !p.is_empty())
        .filter_map(|p| std::fs::metadata(root.join(String::from_utf8_lossy(p).as_ref())).ok())
        .map(|m| m.len())
        .sum())
}

fn dir_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let entry = entry?;
            let meta = entry.metadata()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

